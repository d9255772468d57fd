"""Exports of any list: CSV and XLSX from rows (dicts) and columns; ICS of due dates.

    to_csv(rows, columns, *, raw_pence=False) -> bytes
    to_xlsx(rows, columns, *, sheet="Export", raw_pence=False) -> bytes
    deadlines_ics(conn, stamp) -> bytes

``columns`` is a list of ``(key, header)``: which values to take from each row,
in order, and what to call them. A key may be dotted to reach into a nested
dict (``"score.points"``, ``"savings.amount_pence"``); a missing key is an
empty cell.

Money. A key ending in ``_pence`` is money in integer pence. By default it is
shown in pounds: the header gains " (£)" and the value is a number of pounds
with two decimals (CSV text ``1234.56``, no "£" sign and no thousands
separators so that spreadsheets read it as a number; XLSX a number formatted
``£#,##0.00``). With ``raw_pence=True`` it stays integer pence and the header
gains " (pence)" — exact, for reconciliation or re-import.

Other values: ``None`` is empty; booleans are ``yes``/``no`` in CSV and
booleans in XLSX; dates (``date`` objects or ISO ``YYYY-MM-DD`` text, as the
views give them) stay ISO text in CSV and become date cells (``d mmm yyyy``)
in XLSX; ISO date-times likewise (UTC, ``d mmm yyyy hh:mm``); lists are joined
with "; "; dicts are JSON.

Spreadsheet formula injection: text that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return (a bid title, a reason — anything a user
typed) is prefixed with an apostrophe in CSV and stored as plain text (never a
formula) in XLSX.

CSV is UTF-8 with a byte-order mark (Excel then reads "£" and accents
correctly) and CRLF line ends (RFC 4180).

ICS: the due-date calendar is built once, in :mod:`engine.read.returns`
(``calendar_ics``, also behind ``quorum calendar export``); ``deadlines_ics``
is that builder.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from engine.read.returns import calendar_ics

__all__ = ["to_csv", "to_xlsx", "deadlines_ics", "CSV_TYPE", "XLSX_TYPE", "ICS_TYPE"]

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ICS_TYPE = "text/calendar; charset=utf-8"

Columns = Sequence[tuple[str, str]]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MONEY_FORMAT = '"£"#,##0.00'
PENCE_FORMAT = "#,##0"
DATE_FORMAT = "d mmm yyyy"
DATETIME_FORMAT = "d mmm yyyy hh:mm"


def _get(row: Mapping[str, Any], key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _is_money(key: str) -> bool:
    return key.rsplit(".", 1)[-1].endswith("_pence")


def _header(key: str, header: str, raw_pence: bool) -> str:
    if not _is_money(key):
        return header
    return f"{header} (pence)" if raw_pence else f"{header} (£)"


def _pounds(pence: int) -> Decimal:
    return (Decimal(int(pence)) / 100).quantize(Decimal("0.01"))


def _safe_text(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    return str(value)


def _csv_cell(key: str, value: Any, raw_pence: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_money(key) and isinstance(value, int):
        return str(value) if raw_pence else f"{_pounds(value)}"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return _safe_text(_text(value))


def to_csv(
    rows: Iterable[Mapping[str, Any]], columns: Columns, *, raw_pence: bool = False
) -> bytes:
    """The rows as CSV (UTF-8 with BOM, CRLF), one header line: see the module doc."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([_header(k, h, raw_pence) for k, h in columns])
    for row in rows:
        w.writerow([_csv_cell(k, _get(row, k), raw_pence) for k, _ in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _as_datetime(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _xlsx_value(key: str, value: Any, raw_pence: bool) -> tuple[Any, str | None]:
    """(cell value, number format or None)."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return value, None
    if _is_money(key) and isinstance(value, int):
        return (value, PENCE_FORMAT) if raw_pence else (_pounds(value), MONEY_FORMAT)
    if isinstance(value, (int, float, Decimal)):
        return value, None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value, DATETIME_FORMAT
    if isinstance(value, dt.date):
        return value, DATE_FORMAT
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value), DATE_FORMAT
        except ValueError:
            return value, None
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        parsed = _as_datetime(value)
        if parsed is not None:
            return parsed, DATETIME_FORMAT
    return _text(value), "@"


def deadlines_ics(conn: Any, stamp: dt.datetime, organisation: str | None = None) -> bytes:
    """Every due date (returns, milestones, repayment instalments) as an iCalendar
    file, one all-day event each with a stable uid; ``stamp`` is the DTSTAMP
    (pass the clock's now); ``organisation``: only that body's (a sponsor's).
    The builder behind ``quorum calendar export``."""
    return calendar_ics(conn, stamp, organisation)


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def to_xlsx(
    rows: Iterable[Mapping[str, Any]],
    columns: Columns,
    *,
    sheet: str = "Export",
    raw_pence: bool = False,
) -> bytes:
    """The rows as one XLSX sheet: bold, frozen header row with a filter; money,
    dates and numbers as typed cells with number formats (see the module doc)."""
    return to_xlsx_book([(sheet, rows, columns)], raw_pence=raw_pence)


def to_xlsx_book(
    sheets: Sequence[tuple[str, Iterable[Mapping[str, Any]], Columns]],
    *,
    raw_pence: bool = False,
) -> bytes:
    """Several sheets in one workbook, each as :func:`to_xlsx` writes its one."""
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

    wb = Workbook()
    first = wb.active
    assert isinstance(first, Worksheet)  # a new workbook's one sheet (typed as maybe a chart)
    for i, (sheet, rows, columns) in enumerate(sheets):
        ws = first if i == 0 else wb.create_sheet()
        _fill_sheet(ws, sheet, rows, columns, raw_pence)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _fill_sheet(
    ws: Any, sheet: str, rows: Iterable[Mapping[str, Any]], columns: Columns, raw_pence: bool
) -> None:
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws.title = _SHEET_BAD.sub(" ", sheet)[:31] or "Export"
    bold = Font(bold=True)
    headers = [_header(k, h, raw_pence) for k, h in columns]
    widths = [len(h) for h in headers]
    for c, text in enumerate(headers, start=1):
        cell = ws.cell(row=1, column=c)
        cell.value = text
        cell.data_type = TYPE_STRING
        cell.font = bold
    n = 1
    for n, row in enumerate(rows, start=2):
        for c, (key, _) in enumerate(columns, start=1):
            value, fmt = _xlsx_value(key, _get(row, key), raw_pence)
            cell = ws.cell(row=n, column=c)
            cell.value = value
            if fmt == "@":  # text: never a formula, whatever it starts with
                cell.data_type = TYPE_STRING
            elif fmt:
                cell.number_format = fmt
            shown = len(str(value)) if value is not None else 0
            if fmt == MONEY_FORMAT:
                shown += 4  # "£" and thousands separators
            widths[c - 1] = max(widths[c - 1], shown)
    ws.freeze_panes = "A2"
    if columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(n, 1)}"
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(max(width + 2, 8), 60)



# ------------------------------------------------------------------ streamed (list exports)


def csv_chunks(
    rows: Iterable[Mapping[str, Any]], columns: Columns, *, raw_pence: bool = False,
    batch: int = 200,
) -> Iterator[bytes]:
    """:func:`to_csv` a ``batch`` of rows at a time: the same bytes, never all in memory."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")
    w.writerow([_header(k, h, raw_pence) for k, h in columns])
    for n, row in enumerate(rows, start=1):
        w.writerow([_csv_cell(k, _get(row, k), raw_pence) for k, _ in columns])
        if n % batch == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")


def xlsx_chunks(
    rows: Iterable[Mapping[str, Any]], columns: Columns, *, sheet: str = "Export",
    raw_pence: bool = False, chunk: int = 64 * 1024,
) -> Iterator[bytes]:
    """One sheet as :func:`to_xlsx` writes it (bold frozen header with a filter,
    typed cells), through openpyxl's write-only mode: rows go to a temporary
    file as they come, so memory does not grow with the list. Columns are
    sized by their headers (a streamed sheet cannot measure rows it has not
    seen)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_SHEET_BAD.sub(" ", sheet)[:31] or "Export")
    headers = [_header(k, h, raw_pence) for k, h in columns]
    for c, text in enumerate(headers, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(max(len(text) + 4, 12), 60)
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    head = []
    for text in headers:
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = TYPE_STRING
        cell.font = bold
        head.append(cell)
    ws.append(head)
    last = 1
    for last, row in enumerate(rows, start=2):  # noqa: B007 (the last row's number is kept)
        cells = []
        for key, _ in columns:
            value, fmt = _xlsx_value(key, _get(row, key), raw_pence)
            cell = WriteOnlyCell(ws, value=value)
            if fmt == "@":  # text: never a formula, whatever it starts with
                cell.data_type = TYPE_STRING
            elif fmt:
                cell.number_format = fmt
            cells.append(cell)
        ws.append(cells)
    if columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{last}"
    with tempfile.TemporaryFile() as f:
        wb.save(f)
        f.seek(0)
        while data := f.read(chunk):
            yield data
