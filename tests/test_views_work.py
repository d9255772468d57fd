"""*My work*: what waits for each role, oldest first, scoped, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from moneykit import (
    CHAIR,
    DIRECTOR,
    FINANCE,
    MEMBERS,
    OFFICER,
    OFFICER2,
    SPONSOR,
    SPONSOR2,
    bid_refs,
    grant_ref,
    money_board,
)
from sqlalchemy import event, insert, select

from engine.read.work import my_work, sections_for
from engine.store.models import Grant, Return

VICE1 = "vera@m.example"
ASH = "ash@m.example"  # Cllr Ash, board member
OTTO = OFFICER2


def work(q, engine, who: str, today: dt.date) -> dict:
    with engine.connect() as conn:
        return my_work(conn, q.actor(who), today)


def refs(w: dict, section: str) -> list:
    return [(i["ref"], i.get("milestone")) for i in w["sections"][section]["items"]]


def test_sections_follow_roles() -> None:
    assert sections_for({"officer"}) == [
        "catchup_to_confirm",
        "bids_received",
        "bids_to_score",
        "papers_to_publish",
        "evidence_to_verify",
        "payments_to_release",
        "returns_to_review",
        "offers_awaiting",  # issue 16
        "late_returns",
        "late_repayments",
        "recoveries_outstanding",
        "risks_above_threshold",
        "returns_red",  # issue 13 item 6
    ]
    assert sections_for({"finance"}) == [
        "payments_to_release",
        "late_repayments",
        "recoveries_outstanding",
    ]
    assert sections_for({"chair", "board_member"}) == [
        "signatures_awaited",
        "role_changes_to_decide",
        "next_meeting",
    ]
    assert sections_for({"director"}) == [
        "late_returns",
        "late_repayments",
        "recoveries_outstanding",
        "role_changes_to_decide",
        "risks_above_threshold",
        "returns_red",  # issue 13 item 6
    ]
    assert sections_for({"sponsor"}) == [
        "referred_back",
        "evidence_rejected",
        "returns_late",
        "returns_queried",
        "returns_due",
    ]
    assert sections_for({"auditor"}) == []


def test_evidence_payments_four_eyes_and_sponsor_scope(db_url) -> None:
    q, engine, clock = money_board(db_url)
    try:
        ict = grant_ref(engine, "Shared ICT")  # Rutland CC
        its = grant_ref(engine, "Invest to save")  # Melton BC
        clock.set(dt.date(2011, 7, 1))
        today = clock.today()
        q.execute("submit_evidence", {"grant": ict, "milestone": 1, "summary": "let"}, SPONSOR)
        clock.set(dt.date(2011, 7, 4))
        q.execute("submit_evidence", {"grant": its, "milestone": 1, "summary": "in"}, SPONSOR2)
        today = clock.today()

        olive = work(q, engine, OFFICER, today)
        ev = olive["sections"]["evidence_to_verify"]
        assert ev["count"] == 2
        assert refs(olive, "evidence_to_verify") == [(ict, 1), (its, 1)]  # oldest first
        first = ev["items"][0]
        assert first["since"] == "2011-07-01" and first["due"] == "2011-06-30"
        assert first["link"] == f"/grants/{ict}#milestone-1"
        assert first["title"] == "Shared ICT — milestone 1: Contract let"
        assert first["amount_pence"] == 4_000_000
        assert olive["sections"]["payments_to_release"]["count"] == 0

        q.execute("verify_milestone", {"grant": ict, "milestone": 1}, OFFICER)
        q.execute(
            "reject_evidence", {"grant": its, "milestone": 1, "reason": "no signed contract"}, OTTO
        )
        olive = work(q, engine, OFFICER, today)
        assert olive["sections"]["evidence_to_verify"]["count"] == 0
        # four eyes: the verifier is not asked to pay; another officer and finance are
        assert olive["sections"]["payments_to_release"]["count"] == 0
        for payer in (OFFICER2, FINANCE):
            w = work(q, engine, payer, today)
            pay = w["sections"]["payments_to_release"]
            assert refs(w, "payments_to_release") == [(ict, 1)]
            assert pay["items"][0]["amount_pence"] == 4_000_000
            assert pay["items"][0]["since"] == "2011-07-04"
        assert "evidence_to_verify" not in work(q, engine, FINANCE, today)["sections"]

        # a part payment leaves the rest to release
        q.execute("release_payment", {"grant": ict, "milestone": 1, "amount": "15,000"}, OFFICER2)
        w = work(q, engine, FINANCE, today)
        assert w["sections"]["payments_to_release"]["items"][0]["amount_pence"] == 2_500_000
        q.execute("release_payment", {"grant": ict, "milestone": 1}, FINANCE)
        assert work(q, engine, OFFICER2, today)["sections"]["payments_to_release"]["count"] == 0

        # sponsors: each sees only its own authority's items
        mel = work(q, engine, SPONSOR2, today)
        rejected = mel["sections"]["evidence_rejected"]["items"]
        assert [(i["ref"], i["milestone"], i["reason"]) for i in rejected] == [
            (its, 1, "no signed contract")
        ]
        assert rejected[0]["since"] == "2011-07-04"
        sam = work(q, engine, SPONSOR, today)
        assert sam["sections"]["evidence_rejected"]["count"] == 0
        assert set(sam["sections"]) == set(sections_for({"sponsor"}))
        assert "payments_to_release" not in sam["sections"]
    finally:
        engine.dispose()


def test_returns_review_queried_late_and_due(db_url) -> None:
    q, engine, clock = money_board(db_url)
    try:
        ict = grant_ref(engine, "Shared ICT")
        its = grant_ref(engine, "Invest to save")
        clock.set(dt.date(2011, 7, 10))
        q.execute(
            "submit_return",
            {
                "grant": ict,
                "kind": "savings",
                "period_end": "2011-06-30",
                "savings_delivered": "1,000",
                "savings_anticipated": "400,000",
            },
            SPONSOR,
        )
        # scheduled returns, as the returns schedule makes them: one due, one overdue
        with engine.begin() as c:
            ids = dict(c.execute(select(Grant.ref, Grant.id)).all())
            c.execute(
                insert(Return),
                [
                    dict(ref="R-9001", grant_id=ids[its], kind="progress",
                         period_start=dt.date(2011, 4, 1), period_end=dt.date(2011, 6, 30),
                         due_on=dt.date(2011, 7, 8), state="due", version=1),
                    dict(ref="R-9002", grant_id=ids[its], kind="progress",
                         period_start=dt.date(2011, 7, 1), period_end=dt.date(2011, 9, 30),
                         due_on=dt.date(2011, 10, 30), state="due", version=1),
                    dict(ref="R-9003", grant_id=ids[ict], kind="progress",
                         period_start=dt.date(2011, 4, 1), period_end=dt.date(2011, 6, 30),
                         due_on=dt.date(2011, 7, 30), state="due", version=1),
                ],
            )  # fmt: skip
        today = clock.today()
        olive = work(q, engine, OFFICER, today)
        review = olive["sections"]["returns_to_review"]["items"]
        assert [i["grant"] for i in review] == [ict]
        assert review[0]["link"].startswith("/returns/") and review[0]["since"] == "2011-07-10"
        late = olive["sections"]["late_returns"]["items"]
        assert [(i["ref"], i["days_late"]) for i in late] == [("R-9001", 2)]
        assert "late_returns" in work(q, engine, DIRECTOR, today)["sections"]

        mel = work(q, engine, SPONSOR2, today)
        assert refs(mel, "returns_late") == [("R-9001", None)]
        assert mel["sections"]["returns_due"]["count"] == 0  # R-9002 is months away
        later = work(q, engine, SPONSOR2, dt.date(2011, 10, 10))
        assert refs(later, "returns_due") == [("R-9002", None)]
        sam = work(q, engine, SPONSOR, today)
        assert refs(sam, "returns_due") == [("R-9003", None)]
        assert sam["sections"]["returns_late"]["count"] == 0

        ret = review[0]["ref"]
        q.execute("query_return", {"return": ret, "reason": "which quarter?"}, OFFICER)
        sam = work(q, engine, SPONSOR, today)
        assert refs(sam, "returns_queried") == [(ret, None)]
        assert work(q, engine, SPONSOR2, today)["sections"]["returns_queried"]["count"] == 0
        assert work(q, engine, OFFICER, today)["sections"]["returns_to_review"]["count"] == 0
    finally:
        engine.dispose()


def test_scoring_referral_signatures_and_agenda(db_url) -> None:
    q, engine, clock = money_board(db_url)
    try:
        clock.set(dt.date(2011, 5, 2))
        q.execute(
            "open_round",
            {"ref": "R2", "name": "Round 2", "pot": "Projects", "closes": "2011-05-31",
             "rules": "efficiency-bids-2011"},
            OFFICER,
        )  # fmt: skip
        q.execute(
            "submit_bid",
            {"title": "Shared legal", "sponsor": "Melton BC", "grant": "20,000",
             "savings": "none", "round": "R2"},
            SPONSOR2,
        )  # fmt: skip
        (legal,) = bid_refs(engine, "Shared legal")
        clock.set(dt.date(2011, 6, 1))
        q.execute("close_round", {"round": "R2"}, OFFICER)
        today = clock.today()
        olive = work(q, engine, OFFICER, today)
        to_score = olive["sections"]["bids_to_score"]["items"]
        assert [(i["ref"], i["link"], i["since"]) for i in to_score] == [
            (legal, "/rounds/R2", "2011-05-31")
        ]
        q.execute("score_round", {"round": "R2"}, OFFICER)
        assert work(q, engine, OFFICER, today)["sections"]["bids_to_score"]["count"] == 0

        # the delegated ask waits for the chair and both vice chairs until one signs
        (ask,) = bid_refs(engine, "Delegated ask")
        dd = q.execute(
            "request_delegated_decision",
            {"bid": ask, "reasons": "urgent", "alternatives": "wait for the Board"},
            OFFICER,
        )
        dd_ref = dd.get("ref") or dd.get("item")
        for who in (CHAIR, VICE1):
            sig = work(q, engine, who, today)["sections"]["signatures_awaited"]
            assert [(i["ref"], i["bid"], i["amount_pence"]) for i in sig["items"]] == [
                (dd_ref, ask, 3_000_000)
            ]
            assert sig["items"][0]["link"] == f"/delegated/{dd_ref}"
        q.execute("sign", {"item": dd_ref, "decision": "approve"}, CHAIR)
        assert work(q, engine, CHAIR, today)["sections"]["signatures_awaited"]["count"] == 0
        assert work(q, engine, VICE1, today)["sections"]["signatures_awaited"]["count"] == 1
        # after its expiry date it is no longer asked for
        expired = work(q, engine, VICE1, today + dt.timedelta(days=60))
        assert expired["sections"]["signatures_awaited"]["count"] == 0
        # a board member the scheme does not count (only a committee's members sign)
        assert work(q, engine, ASH, today)["sections"]["signatures_awaited"]["count"] == 0

        # the next meeting: a board member sees the agenda as it stands
        q.execute(
            "schedule_meeting",
            {"ref": "BOARD-JUL", "title": "Board", "date": "2011-07-13", "quorum": 3,
             "members": MEMBERS},
            OFFICER,
        )  # fmt: skip
        ash = work(q, engine, ASH, today)
        nxt = ash["sections"]["next_meeting"]
        assert nxt["meeting"]["ref"] == "BOARD-JUL" and nxt["meeting"]["agenda_fixed"] is False
        assert legal in [i["ref"] for i in nxt["items"]]
        # the agenda waits on a board member: counted, so the headline equals the sections
        # (issue 14; before, the agenda was listed with a count but left out of the total)
        assert ash["total"] == nxt["count"] == len(nxt["items"]) >= 1

        clock.set(dt.date(2011, 7, 13))
        q.execute("record_attendance", {"meeting": "BOARD-JUL", "present": MEMBERS}, OFFICER)
        q.execute(
            "decide",
            {"meeting": "BOARD-JUL", "item": legal, "outcome": "refer_back",
             "missing": "quantify the savings"},
            OFFICER,
        )  # fmt: skip
        today = clock.today()
        ash = work(q, engine, ASH, today)
        # attendance no longer fixes the agenda (it follows events until the meeting closes)
        assert ash["sections"]["next_meeting"]["meeting"]["agenda_fixed"] is False
        # decided (referred back: it waits on the sponsor now): it leaves the board's My work
        assert legal not in [i["ref"] for i in ash["sections"]["next_meeting"]["items"]]
        assert ash["total"] == sum(s["count"] for s in ash["sections"].values())
        mel = work(q, engine, SPONSOR2, today)
        back = mel["sections"]["referred_back"]["items"]
        assert [(i["ref"], i["missing"], i["since"]) for i in back] == [
            (legal, "quantify the savings", "2011-07-13")
        ]
        assert back[0]["link"] == f"/bids/{legal}"
        assert work(q, engine, SPONSOR, today)["sections"]["referred_back"]["count"] == 0
    finally:
        engine.dispose()


def test_repayments_and_recoveries(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    try:
        ict = grant_ref(engine, "Shared ICT")
        its = grant_ref(engine, "Invest to save")
        clock.set(dt.date(2011, 5, 2))
        q.execute(
            "set_repayment_schedule",
            {"grant": its, "instalments": [{"due": "2011-09-30", "amount": "20,000"},
                                          {"due": "2011-12-31", "amount": "40,000"}]},
            OFFICER,
        )  # fmt: skip
        clock.set(dt.date(2011, 7, 5))
        q.execute("submit_evidence", {"grant": ict, "milestone": 1, "summary": "x"}, OFFICER)
        q.execute("verify_milestone", {"grant": ict, "milestone": 1}, OFFICER)
        q.execute("release_payment", {"grant": ict, "milestone": 1}, OFFICER2)
        q.execute(
            "demand_refund",
            {"grant": ict, "amount": "10,000", "reason": "savings not made",
             "authority": "Board 13 July 2011, minute 4"},
            CHAIR,
        )  # fmt: skip
        today = dt.date(2011, 10, 10)
        fay = work(q, engine, FINANCE, today)
        late = fay["sections"]["late_repayments"]["items"]
        assert [(i["ref"], i["instalment"], i["amount_pence"], i["days_late"]) for i in late] == [
            (its, 1, 2_000_000, 10)
        ]
        rec = fay["sections"]["recoveries_outstanding"]["items"]
        assert [(i["grant"], i["amount_pence"]) for i in rec] == [(ict, 1_000_000)]
        assert rec[0]["link"].startswith("/recoveries/")
    finally:
        engine.dispose()


@pytest.mark.parametrize("who", [OFFICER, FINANCE, CHAIR, SPONSOR2, ASH])
def test_a_fixed_number_of_queries(sqlite_url, who) -> None:
    """The number of queries does not grow with the number of items."""
    q, engine, clock = money_board(sqlite_url)
    try:
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

        def count() -> int:
            statements.clear()
            w = work(q, engine, who, clock.today())
            return len(statements), w["total"]

        clock.set(dt.date(2011, 8, 1))
        before, _ = count()
        for title in ("Shared ICT", "Invest to save"):
            g = grant_ref(engine, title)
            for seq in (1, 2):
                q.execute("submit_evidence", {"grant": g, "milestone": seq, "summary": "s"},
                          OFFICER)  # fmt: skip
                q.execute("verify_milestone", {"grant": g, "milestone": seq}, OFFICER2)
        after, total = count()
        assert after == before
        if who in (OFFICER, FINANCE):
            assert total >= 4
    finally:
        engine.dispose()


def test_the_page_reads_only_the_oldest_of_a_large_section(sqlite_url) -> None:
    """My work's page (``shown``) counts offers awaiting acceptance in SQL and reads
    only the oldest so many: the same counts and the same first items as reading
    every one."""
    q, engine, clock = money_board(sqlite_url, accept_offers=False)  # two letters wait
    today = dt.date(2011, 6, 1)
    full = work(q, engine, OFFICER, today)
    with engine.connect() as conn:
        one = my_work(conn, q.actor(OFFICER), today, shown=1)
    assert full["sections"]["offers_awaiting"]["count"] == 2
    assert one["total"] == full["total"]
    for key, section in full["sections"].items():
        assert one["sections"][key]["count"] == section["count"], key
    assert refs(one, "offers_awaiting") == refs(full, "offers_awaiting")[:1]
