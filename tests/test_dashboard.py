"""The programme dashboard's figures and its SVG charts."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from moneykit import OFFICER, OFFICER2, SPONSOR, SPONSOR2, grant_ref, money_board
from sqlalchemy import event, insert, select

from engine.read import kept
from engine.read.dashboard import programme_dashboard
from engine.read.partnership_money import partnership_figures
from engine.store.models import Bid, Decision, Grant, Programme, Return
from quorum_web.charts import late_returns_chart, pots_chart, savings_chart
from quorum_web.pages_board import dashboard_view

SVG = "{http://www.w3.org/2000/svg}"


def savings(q, grant: str, period_end: str, delivered: str, anticipated: str, by: str) -> str:
    out = q.execute(
        "submit_return",
        {"grant": grant, "kind": "savings", "period_end": period_end,
         "savings_delivered": delivered, "savings_anticipated": anticipated},
        by,
    )  # fmt: skip
    return out["return"]


def board_with_returns(url: str):
    q, engine, clock = money_board(url)
    ict = grant_ref(engine, "Shared ICT")  # Rutland CC, £100,000
    its = grant_ref(engine, "Invest to save")  # Melton BC, £60,000
    clock.set(dt.date(2011, 7, 5))
    q.execute("submit_evidence", {"grant": ict, "milestone": 1, "summary": "let"}, SPONSOR)
    q.execute("verify_milestone", {"grant": ict, "milestone": 1}, OFFICER)
    q.execute("release_payment", {"grant": ict, "milestone": 1}, OFFICER2)  # £40,000
    r1 = savings(q, ict, "2011-06-30", "1,000", "400,000", SPONSOR)
    q.execute("accept_return", {"return": r1}, OFFICER)
    clock.set(dt.date(2011, 10, 10))
    r2 = savings(q, ict, "2011-09-30", "5,000", "420,000", SPONSOR)
    q.execute("accept_return", {"return": r2}, OFFICER)
    savings(q, its, "2011-09-30", "9,999", "9,999", SPONSOR2)  # submitted, not accepted
    with engine.begin() as c:
        gid = c.execute(select(Grant.id).where(Grant.ref == its)).scalar_one()
        c.execute(
            insert(Return).values(
                ref="R-9001", grant_id=gid, kind="progress", period_start=dt.date(2011, 4, 1),
                period_end=dt.date(2011, 6, 30), due_on=dt.date(2011, 7, 30), state="due",
                version=1,
            )
        )  # fmt: skip
    return q, engine, clock


def test_dashboard_figures(db_url) -> None:
    q, engine, clock = board_with_returns(db_url)
    try:
        with engine.connect() as conn:
            d = programme_dashboard(conn, dt.date(2011, 10, 10))
    finally:
        engine.dispose()
    pots = {p["name"]: p for p in d["pots"]}
    assert pots["Projects"] == {
        "name": "Projects", "programme": "P",
        "allocated_pence": 75_000_000, "committed_pence": 16_000_000, "paid_pence": 4_000_000,
        "released_pence": 0, "recovered_pence": 0, "repaid_pence": 0,
        "available_pence": 59_000_000,
    }  # fmt: skip
    assert pots["Governance"]["available_pence"] == 5_000_000
    assert d["pot_totals"]["allocated_pence"] == 80_000_000
    assert d["partnerships"] == [
        {"partnership": "Melton BC", "grants": 1, "awarded_pence": 6_000_000, "paid_pence": 0,
         "savings_delivered_pence": 0, "savings_anticipated_pence": 0, "late_returns": 1},
        {"partnership": "Rutland CC", "grants": 1, "awarded_pence": 10_000_000,
         "paid_pence": 4_000_000, "savings_delivered_pence": 600_000,  # Q1 + Q2: per period
         "savings_anticipated_pence": 42_000_000, "late_returns": 0},
    ]  # fmt: skip
    assert d["partnership_totals"]["awarded_pence"] == 16_000_000
    assert d["partnership_totals"]["late_returns"] == 1
    assert d["as_of"] == "2011-10-10"


def test_dashboard_as_of_an_earlier_day(sqlite_url) -> None:
    q, engine, clock = board_with_returns(sqlite_url)
    try:
        with engine.connect() as conn:
            d = programme_dashboard(conn, dt.date(2011, 7, 10))
    finally:
        engine.dispose()
    rutland = next(p for p in d["partnerships"] if p["partnership"] == "Rutland CC")
    assert rutland["savings_delivered_pence"] == 100_000  # the September return is not yet
    assert all(p["late_returns"] == 0 for p in d["partnerships"])  # R-9001 is due 30 July


def test_dashboard_runs_a_fixed_number_of_queries(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    try:
        seen: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
        with engine.connect() as conn:
            programme_dashboard(conn, dt.date(2011, 10, 10))
        small = len(seen)
        clock.set(dt.date(2011, 10, 10))
        for title in ("Shared ICT", "Invest to save"):
            g = grant_ref(engine, title)
            savings(q, g, "2011-06-30", "1", "2", OFFICER)
            savings(q, g, "2011-09-30", "1", "2", OFFICER)
        seen.clear()
        with engine.connect() as conn:
            programme_dashboard(conn, dt.date(2011, 10, 10))
        assert len(seen) == small <= 6
    finally:
        engine.dispose()


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    assert root.find(f".//{SVG}script") is None  # nothing runs
    assert "<?xml" not in text  # inline in a page
    return root


def _text(root: ET.Element) -> str:
    return " ".join(t for t in root.itertext())


def test_charts_are_svg_naming_pots_and_partnerships(sqlite_url) -> None:
    q, engine, clock = board_with_returns(sqlite_url)
    try:
        with engine.connect() as conn:
            d = programme_dashboard(conn, dt.date(2011, 10, 10))
    finally:
        engine.dispose()
    pots = _text(_svg(pots_chart(d["pots"])))
    for word in ("Projects", "Governance", "Allocated", "Committed", "Paid", "Available",
                 "£750,000", "£590,000"):  # fmt: skip
        assert word in pots
    saved = _text(_svg(savings_chart(d["partnerships"])))
    assert "Rutland CC" in saved and "£6,000" in saved and "£420,000" in saved  # Q1 + Q2
    assert "Melton BC" not in saved  # no accepted savings return: left out
    late = _text(_svg(late_returns_chart(d["partnerships"])))
    assert "Melton BC" in late and "Rutland CC" not in late


def test_charts_escape_names_and_say_when_empty() -> None:
    odd = [{"name": 'R&D <"pot">', "allocated_pence": 100, "committed_pence": 0,
            "paid_pence": 0, "available_pence": 100}]  # fmt: skip
    assert 'R&D <"pot">' in _text(_svg(pots_chart(odd)))
    assert "No savings returns accepted yet" in _text(_svg(savings_chart([])))
    assert "No late returns" in _text(_svg(late_returns_chart([{"partnership": "A", "late": 0}])))


def test_the_kept_dashboard_stands_through_scores_and_is_redrawn_by_anything_else(
    sqlite_url,
) -> None:
    """The dashboard page's figures are kept between requests: a score overridden
    (a round's traffic) leaves them standing; any other command draws them afresh,
    and what is kept is always what drawing afresh gives."""
    q, engine, clock = board_with_returns(sqlite_url)
    day = dt.date(2011, 10, 10)
    q.execute("open_round", {"ref": "R9", "name": "Late", "pot": "Projects",
                             "closes": "2011-10-20", "rules": "efficiency-bids-2011"}, OFFICER)
    ask = q.execute("submit_bid", {"title": "Scored", "sponsor": "Rutland CC", "grant": "1,000",
                                   "savings": "5,000 per annum", "partnership": "no",
                                   "round": "R9"}, OFFICER)["ref"]
    clock.set(dt.date(2011, 10, 21))
    q.execute("close_round", {"round": "R9"}, OFFICER)
    q.execute("score_round", {"round": "R9"}, OFFICER)

    def fresh():
        with engine.connect() as conn:
            return programme_dashboard(conn, day), partnership_figures(conn, day)

    def kept_now():
        with engine.connect() as conn:
            view = dashboard_view(conn, day)  # the page's: figures and charts
        assert set(view["charts"]) == {"pots", "savings", "late"}
        return view["board"], view["allocations"]

    kept.forget()
    drawn = kept.DRAWN.get("dashboard page", 0)
    assert kept_now() == fresh() and kept.DRAWN["dashboard page"] == drawn + 1
    q.execute("override_score", {"ref": ask, "criterion": "partnership", "points": 0,
                                 "reason": "no partner"}, OFFICER)
    assert kept_now() == fresh() and kept.DRAWN["dashboard page"] == drawn + 1  # stood
    its = grant_ref(engine, "Invest to save")
    before = fresh()
    q.execute("submit_evidence", {"grant": its, "milestone": 1, "summary": "done"}, SPONSOR2)
    q.execute("verify_milestone", {"grant": its, "milestone": 1}, OFFICER)
    q.execute("release_payment", {"grant": its, "milestone": 1}, OFFICER2)
    after = kept_now()
    assert after == fresh() != before and kept.DRAWN["dashboard page"] == drawn + 2  # redrawn
    after[0]["pots"].clear()  # a caller's copy: what is kept is untouched
    assert kept_now() == fresh()


def test_a_reversed_grant_counts_only_what_was_paid_and_a_programme_only_its_own(db_url) -> None:
    """Sums by partnership in SQL (not grant by grant): a grant whose approval was
    reversed (cancelled) is left out of grants and awarded but not of paid, and a
    programme's dashboard holds only its own partnerships."""
    q, engine, clock = board_with_returns(db_url)
    try:
        with engine.connect() as conn:
            decision = conn.execute(
                select(Decision.ref).join(Bid, Bid.ref == Decision.item_ref)
                .where(Bid.title == "Invest to save")).scalar_one()
        q.execute("reverse_decision", {"decision": decision, "reason": "approved in error"},
                  OFFICER)
        q.execute("create_programme", {"name": "Q", "pots": {"Other": "1,000"}}, "system")
        with engine.connect() as conn:
            d = programme_dashboard(conn, dt.date(2011, 10, 10))
            assert conn.execute(select(Grant.state).where(
                Grant.ref == grant_ref(engine, "Invest to save"))).scalar_one() == "cancelled"
            other = conn.execute(select(Programme.id).where(Programme.name == "Q")).scalar_one()
            mine = conn.execute(select(Programme.id).where(Programme.name == "P")).scalar_one()
            empty = programme_dashboard(conn, dt.date(2011, 10, 10), programme_id=other)
            own = programme_dashboard(conn, dt.date(2011, 10, 10), programme_id=mine)
    finally:
        engine.dispose()
    melton = next(p for p in d["partnerships"] if p["partnership"] == "Melton BC")
    assert melton == {"partnership": "Melton BC", "grants": 0, "awarded_pence": 0,
                      "paid_pence": 0, "savings_delivered_pence": 0,
                      "savings_anticipated_pence": 0, "late_returns": 0}  # R-9001 left out
    assert d["partnership_totals"]["awarded_pence"] == 10_000_000
    assert d["partnership_totals"]["paid_pence"] == 4_000_000
    assert empty["partnerships"] == [] and [p["name"] for p in empty["pots"]] == ["Other"]
    assert own["partnerships"] == d["partnerships"]
