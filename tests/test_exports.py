"""CSV and XLSX exports round-trip through the csv module and openpyxl; ICS of due dates."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from openpyxl import load_workbook

from engine.read.exports import deadlines_ics, to_csv, to_xlsx

COLUMNS = [
    ("ref", "Ref"),
    ("title", "Project"),
    ("grant_requested_pence", "Grant requested"),
    ("submitted_on", "Submitted"),
    ("invest_to_save", "Invest to save"),
    ("savings.amount_pence", "Savings"),
    ("partners", "Partners"),
    ("score.points", "Points"),
    ("created_at", "Created"),
]
ROWS = [
    {
        "ref": "B-0001",
        "title": "Shared ICT — Café £ «naïve»",
        "grant_requested_pence": 10_000_001,  # £100,000.01
        "submitted_on": "2011-04-20",
        "invest_to_save": False,
        "savings": {"amount_pence": 213_741_600},
        "partners": ["Rutland CC", "Melton BC"],
        "score": {"points": 7},
        "created_at": "2011-04-20T09:30:00+01:00",
    },
    {
        "ref": "B-0002",
        "title": '=HYPERLINK("http://evil.example","click")',
        "grant_requested_pence": 5,
        "submitted_on": dt.date(2011, 4, 21),
        "invest_to_save": True,
        "savings": {"amount_pence": None},
        "partners": [],
        "score": None,
        "created_at": None,
    },
]


def test_csv_round_trip_in_pounds() -> None:
    data = to_csv(ROWS, COLUMNS)
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    assert b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == [
        "Ref", "Project", "Grant requested (£)", "Submitted", "Invest to save", "Savings (£)",
        "Partners", "Points", "Created",
    ]  # fmt: skip
    assert rows[1] == [
        "B-0001", "Shared ICT — Café £ «naïve»", "100000.01", "2011-04-20", "no", "2137416.00",
        "Rutland CC; Melton BC", "7", "2011-04-20T09:30:00+01:00",
    ]  # fmt: skip
    # a formula typed into a title is defused; tiny sums keep two decimals
    assert rows[2][:6] == [
        "B-0002", "'=HYPERLINK(\"http://evil.example\",\"click\")", "0.05", "2011-04-21", "yes",
        "",
    ]  # fmt: skip
    assert rows[2][6:] == ["", "", ""]
    assert Decimal(rows[1][2]) * 100 == ROWS[0]["grant_requested_pence"]


def test_csv_raw_pence() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(ROWS, COLUMNS, raw_pence=True).decode(
        "utf-8-sig"))))  # fmt: skip
    assert rows[0]["Grant requested (pence)"] == "10000001"
    assert rows[1]["Grant requested (pence)"] == "5"


def test_csv_of_nothing_is_a_header() -> None:
    assert to_csv([], [("ref", "Ref")]).decode("utf-8-sig") == "Ref\r\n"


def test_xlsx_round_trip_types_and_formats() -> None:
    wb = load_workbook(io.BytesIO(to_xlsx(ROWS, COLUMNS, sheet="Bids: 2011/12")))
    ws = wb.active
    assert ws.title == "Bids  2011 12"
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]] == [
        "Ref", "Project", "Grant requested (£)", "Submitted", "Invest to save", "Savings (£)",
        "Partners", "Points", "Created",
    ]  # fmt: skip
    assert all(c.font.b for c in ws[1])
    a = ws[2]
    assert a[1].value == "Shared ICT — Café £ «naïve»"
    assert a[2].value == 100000.01 and a[2].number_format == '"£"#,##0.00'
    assert a[3].value == dt.datetime(2011, 4, 20) and a[3].number_format == "d mmm yyyy"
    assert a[3].is_date
    assert a[4].value is False
    assert a[5].value == 2137416 and a[5].data_type == "n"
    assert a[6].value == "Rutland CC; Melton BC"
    assert a[7].value == 7
    assert a[8].value == dt.datetime(2011, 4, 20, 8, 30)  # as UTC
    b = ws[3]
    assert b[1].value == '=HYPERLINK("http://evil.example","click")'
    assert b[1].data_type == "s"  # text, never a formula
    assert b[2].value == 0.05
    assert b[3].value == dt.datetime(2011, 4, 21)
    assert b[4].value is True
    assert b[5].value is None and b[7].value is None
    assert ws.auto_filter.ref == "A1:I3"


def test_xlsx_raw_pence() -> None:
    ws = load_workbook(io.BytesIO(to_xlsx(ROWS, COLUMNS, raw_pence=True))).active
    assert ws["C1"].value == "Grant requested (pence)"
    assert ws["C2"].value == 10_000_001 and ws["C2"].number_format == "#,##0"


def test_deadlines_ics_is_the_calendar_export(sqlite_url) -> None:
    from moneykit import money_board

    q, engine, clock = money_board(sqlite_url)
    try:
        with engine.connect() as conn:
            ics = deadlines_ics(conn, dt.datetime(2011, 4, 20, 12, tzinfo=dt.UTC))
    finally:
        engine.dispose()
    assert ics.startswith(b"BEGIN:VCALENDAR")
    assert ics.count(b"BEGIN:VEVENT") >= 5  # the two grants' five milestones at least
    assert b"Contract let" in ics
