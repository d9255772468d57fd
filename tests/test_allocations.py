"""Allocations: funding requests that are not bids (issue 12, Build item 1).

An officer (or the Director) proposes funding for a purpose and a recipient
from a named pot — a year of salaries, a quarter's events, a contribution to
a peer review, interim funding — and the Board decides it at a meeting, or
the Chair and a Vice Chair under the scheme of delegation, unscored. A round
says whether its bids must be scored before a decision (``scoring``). An
allocation without milestones gets one for the whole amount, so its grant
pays only against verified evidence. The scenario allocations-2012.yaml
replays a year of them with every pot's balance exact.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from meetingkit import decide_on_page
from moneykit import assert_money_adds_up, refused
from sqlalchemy import select
from sqlmodel import Session
from test_cli import quorum
from test_shapes import check, views_of
from webkit import set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import (
    MoneyRuleBroken,
    NotFound,
    PermissionDenied,
    TransitionRefused,
    ValidationError,
)
from engine.entry.replay import run
from engine.read.agenda import meeting_agenda
from engine.read.papers import agenda_paper, bids_paper
from engine.store.db import create_schema, make_engine
from engine.store.ledger import ledger
from engine.store.models import Bid, Grant, Meeting, Milestone, Round
from quorum_web.app import create_app

SCENARIO = Path(__file__).parent / "scenarios" / "allocations-2012.yaml"
SCHEME = "tests/rules/wessex-delegation-2012.yaml"
OFFICER = "orla@wessex.example"
OFFICER2 = "owen@wessex.example"
DIRECTOR = "dana@wessex.example"
CHAIR = "chair@wessex.example"
VICE1 = "vice1@wessex.example"
VICE2 = "vice2@wessex.example"
SPONSOR = "sue@tamarford.example"
MEMBERS = ["Cllr Chair", "Cllr Vice One", "Cllr Vice Two", "Cllr Marsh", "Cllr Heath"]
TEAM = "Wessex Programme Team"
COUNCIL = "Tamarford BC"
REGIONAL = "Regional programmes"
SUPPORT = "Support for councils in difficulty"


@pytest.fixture
def wessex(sqlite_url: str):
    clock = FixedClock(dt.date(2012, 4, 2))
    engine = make_engine(sqlite_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    people = [
        ("Orla Officer", OFFICER, ["officer"], None),
        ("Owen Officer", OFFICER2, ["officer"], None),
        ("Dana Director", DIRECTOR, ["director"], None),
        ("Cllr Chair", CHAIR, ["chair", "board_member"], None),
        ("Cllr Vice One", VICE1, ["vice_chair", "board_member"], None),
        ("Cllr Vice Two", VICE2, ["vice_chair", "board_member"], None),
        ("Cllr Marsh", "marsh@wessex.example", ["board_member"], None),
        ("Cllr Heath", "heath@wessex.example", ["board_member"], None),
        ("Sue Tamar", SPONSOR, ["sponsor"], COUNCIL),
    ]
    q.execute_batch(
        [
            ("register_organisation", {"name": TEAM, "kind": "programme_team"}),
            ("register_organisation", {"name": COUNCIL, "kind": "district"}),
            ("register_organisation", {"name": "Avonmere Partnership",
                                       "kind": "sub_regional_partnership"}),
            ("create_programme", {"name": "Wessex Improvement Partnership 2012/13",
                                  "pots": {REGIONAL: "400,000", SUPPORT: "100,000"}}),
            # its own allocations: no offer waits on acceptance (as allocations-2012.yaml)
            ("configure_payments", {"offer_acceptance_required": "no"}),
        ]
        + [
            ("register_person",
             {"name": n, "email": e, "roles": r, **({"organisation": o} if o else {})})
            for n, e, r, o in people
        ],
        "system",
    )
    yield q, engine, clock
    engine.dispose()


def propose(q: Quorum, by: str = OFFICER, **kw) -> dict:
    args = {"purpose": "Programme managers: salaries and on-costs 2012/13", "recipient": TEAM,
            "pot": REGIONAL, "amount": "96,000",
            "reasons": "Two programme managers for the year; recommended for approval"}
    return q.execute("propose_allocation", {**args, **kw}, by)


def pot(engine, name: str):
    with Session(engine) as s:
        return next(line for line in ledger(s) if line.name == name)


def milestones(engine, ref: str) -> list[tuple]:
    with Session(engine) as s:
        bid = s.exec(select(Bid).where(Bid.ref == ref)).one()[0]
        rows = s.exec(select(Milestone).where(Milestone.bid_id == bid.id)
                      .order_by(Milestone.seq)).all()
        return [(m[0].outcome, m[0].due_on, m[0].payment_pence, m[0].state) for m in rows]


def board(q: Quorum, clock: FixedClock, ref: str = "WIP-BOARD", on: str = "2012-06-14") -> str:
    q.execute("schedule_meeting", {"ref": ref, "title": "Wessex Improvement Board", "date": on,
                                   "quorum": 3, "members": MEMBERS}, OFFICER)
    return ref


# ------------------------------------------------------------------ proposing


def test_proposing_each_kind_of_allocation(wessex) -> None:
    q, engine, clock = wessex
    salaries = propose(q)
    assert salaries == {"ref": "AL-0001", "kind": "allocation", "state": "submitted",
                        "recipient": TEAM, "pot": REGIONAL, "amount_pence": 9_600_000,
                        "pot_available_pence": 40_000_000, "milestones": 1}
    # no milestones: one for the whole amount, its purpose, due at the end of the year
    assert milestones(engine, "AL-0001") == [
        ("Programme managers: salaries and on-costs 2012/13", dt.date(2013, 3, 31),
         9_600_000, "planned")]
    events = propose(
        q, by=DIRECTOR, purpose="Events and workshops, July to September 2012",
        amount="18,500", due="2012-09-30", reasons="The quarter's programme of events",
        items=[{"what": "Procurement masterclass, 12 July", "cost": "4,500"},
               {"what": "Shared services workshop, 9 August", "cost": "6,000"},
               {"what": "Members' seminar, 20 September", "cost": "8,000"}])
    assert events["ref"] == "AL-0002"
    assert milestones(engine, "AL-0002") == [
        ("Events and workshops, July to September 2012", dt.date(2012, 9, 30), 1_850_000,
         "planned")]
    review = propose(q, purpose="Contribution to the peer review of Tamarford BC",
                     recipient=COUNCIL, pot=SUPPORT, amount="15,000",
                     reasons="The council pays the review team's expenses")
    interim = propose(
        q, purpose="Shared procurement programme: interim funding for phase 2",
        recipient="Avonmere Partnership", amount="60,000",
        reasons="Keeps the team in post while the Board considers the whole phase",
        milestones=[{"outcome": "Phase 2 plan to the Board", "due": "2012-07-31",
                     "payment": "20,000"},
                    {"outcome": "Category strategies agreed", "due": "2012-10-31",
                     "payment": "40,000"}])
    assert (review["pot"], review["recipient"], review["pot_available_pence"]) == (
        SUPPORT, COUNCIL, 10_000_000)
    assert [m[2] for m in milestones(engine, interim["ref"])] == [2_000_000, 4_000_000]
    with Session(engine) as s:
        rows = {b.ref: b for b in s.exec(select(Bid)).scalars()}
    assert {r.kind for r in rows.values()} == {"allocation"}
    assert rows["AL-0002"].items == [
        {"what": "Procurement masterclass, 12 July", "cost_pence": 450_000},
        {"what": "Shared services workshop, 9 August", "cost_pence": 600_000},
        {"what": "Members' seminar, 20 September", "cost_pence": 800_000}]
    assert rows["AL-0001"].reasons.startswith("Two programme managers")
    assert all(r.round_id is None and r.savings_text == "" for r in rows.values())
    # nothing is committed until a decision
    assert pot(engine, REGIONAL).committed_pence == 0


def test_refusals_name_the_field(wessex) -> None:
    q, engine, clock = wessex
    refused(engine, lambda: propose(q, pot="Salaries"), NotFound,
            "propose_allocation: pot: no pot called 'Salaries'", REGIONAL)
    refused(engine, lambda: propose(q, recipient="Nowhere DC"), NotFound,
            "propose_allocation: recipient: unknown authority 'Nowhere DC'")
    refused(engine, lambda: propose(q, amount="-5,000"), ValidationError,
            "propose_allocation: amount:", "negative")
    refused(engine, lambda: propose(q, purpose=""), ValidationError,
            "propose_allocation: purpose: is required")
    refused(engine, lambda: propose(q, reasons=""), ValidationError,
            "propose_allocation: reasons: is required")
    refused(engine, lambda: propose(q, amount="10,000", items=[
        {"what": "Seminar", "cost": "8,000"}, {"what": "Workshop", "cost": "4,000"}]),
        ValidationError, "propose_allocation: items: the items' costs add up to £12,000")
    refused(engine, lambda: propose(q, items=[{"what": "Seminar"}]), ValidationError,
            "items[1].cost")
    refused(engine, lambda: propose(q, amount="50,000", milestones=[
        {"outcome": "Half", "due": "2012-09-30", "payment": "20,000"}]),
        ValidationError, "milestones: payments add up to £20,000")
    refused(engine, lambda: propose(q, due="2012-12-31", milestones=[
        {"outcome": "All", "due": "2012-09-30", "payment": "96,000"}]),
        ValidationError, "propose_allocation: due: give due only without milestones")
    refused(engine, lambda: propose(q, savings="1m"), ValidationError, "unknown field")
    refused(engine, lambda: propose(q, by=SPONSOR), PermissionDenied,
            "propose_allocation needs the role director or officer")


# ------------------------------------------------------------------ decided at a meeting


def test_the_board_approves_an_unscored_allocation_at_a_meeting(wessex) -> None:
    q, engine, clock = wessex
    ref = propose(q)["ref"]
    other = propose(q, purpose="Events, July to September", amount="18,500")["ref"]
    meeting = board(q, clock)
    with engine.connect() as conn:  # on the agenda from scheduling, before anyone attends
        m = conn.execute(select(Meeting.__table__).where(Meeting.ref == meeting)).first()
        assert meeting_agenda(conn, m) == [ref, other]
    paper = agenda_paper(engine, meeting)
    assert [(i["ref"], i["for"], i["amount_pence"], i["asked"]) for i in paper["items"]] == [
        (ref, TEAM, 9_600_000, "decide"), (other, TEAM, 1_850_000, "decide")]
    clock.set(dt.date(2012, 6, 14))
    q.execute("record_attendance", {"meeting": meeting, "present": MEMBERS}, OFFICER)
    out = q.execute("decide", {"meeting": meeting, "item": ref, "outcome": "approve",
                               "reasons": "approved as recommended",
                               "votes": {"for": 5, "against": 0}}, OFFICER)
    assert (out["state"], out["amount_pence"], out["grant"]) == ("approved", 9_600_000, "G-0001")
    line = pot(engine, REGIONAL)
    assert (line.allocated_pence, line.committed_pence, line.available_pence) == (
        40_000_000, 9_600_000, 30_400_000)
    assert line.allocated_pence == line.committed_pence + line.available_pence
    with Session(engine) as s:
        grant = s.exec(select(Grant).where(Grant.ref == "G-0001")).one()[0]
        assert (grant.awarded_pence, grant.accountable_body_id is not None) == (9_600_000, True)
    assert milestones(engine, ref)[0][3] == "planned"
    # the Board may also defer one unscored; a lower approval later
    q.execute("decide", {"meeting": meeting, "item": other, "outcome": "defer",
                         "reasons": "wait for the events calendar"}, OFFICER)
    assert_money_adds_up(engine)
    # a reversal puts the allocation back where it was and releases the money
    back = q.execute("reverse_decision", {"decision": out["decision"],
                                          "reason": "minuted against the wrong pot"}, OFFICER)
    assert back["state"] == "submitted"
    assert pot(engine, REGIONAL).committed_pence == 0


def test_an_allocation_beyond_the_pot_is_refused(wessex) -> None:
    q, engine, clock = wessex
    ref = propose(q, pot=SUPPORT, amount="120,000", recipient=COUNCIL,
                  purpose="Improvement support for Tamarford BC")["ref"]
    meeting = board(q, clock)
    clock.set(dt.date(2012, 6, 14))
    q.execute("record_attendance", {"meeting": meeting, "present": MEMBERS}, OFFICER)
    refused(engine, lambda: q.execute("decide", {"meeting": meeting, "item": ref,
                                                 "outcome": "approve"}, OFFICER),
            MoneyRuleBroken, f"overcommit the {SUPPORT} pot")
    out = q.execute("decide", {"meeting": meeting, "item": ref, "outcome": "approve",
                               "amount": "100,000"}, OFFICER)
    line = pot(engine, SUPPORT)
    assert (out["amount_pence"], line.committed_pence, line.available_pence) == (
        10_000_000, 10_000_000, 0)


# ------------------------------------------------------------------ rounds and scoring


def open_round(q: Quorum, ref: str, **kw) -> None:
    q.execute("open_round", {"ref": ref, "name": f"Round {ref}", "pot": REGIONAL,
                             "closes": "2012-05-31", "rules": "efficiency-bids-2011", **kw},
              OFFICER)


def bid_in(q: Quorum, round_ref: str, title: str) -> str:
    return q.execute("submit_bid", {"title": title, "sponsor": COUNCIL, "grant": "20,000",
                                    "savings": "40,000 2 years", "partnership": "yes",
                                    "round": round_ref}, OFFICER)["ref"]


def test_a_round_that_requires_scoring_refuses_an_unscored_decision(wessex) -> None:
    q, engine, clock = wessex
    open_round(q, "SCORED")
    with Session(engine) as s:
        assert s.exec(select(Round)).one()[0].scoring_required is True
    ref = bid_in(q, "SCORED", "Shared legal services")
    meeting = board(q, clock)
    with engine.connect() as conn:  # not on the agenda until it is scored
        m = conn.execute(select(Meeting.__table__).where(Meeting.ref == meeting)).first()
        assert meeting_agenda(conn, m) == []
    clock.set(dt.date(2012, 6, 14))
    q.execute("record_attendance", {"meeting": meeting, "present": MEMBERS}, OFFICER)
    for outcome in ("approve", "reject", "defer"):
        refused(engine, lambda o=outcome: q.execute(
            "decide", {"meeting": meeting, "item": ref, "outcome": o}, OFFICER),
            TransitionRefused, f"decide: item: {ref} has not been scored",
            "round SCORED requires scoring", "may_decide_unscored", "score it first")
    q.execute("close_round", {"round": "SCORED"}, OFFICER)
    q.execute("score_round", {"round": "SCORED"}, OFFICER)
    out = q.execute("decide", {"meeting": meeting, "item": ref, "outcome": "approve"}, OFFICER)
    assert out["state"] == "approved"


def test_a_round_with_optional_scoring_lets_its_bids_be_decided_unscored(wessex) -> None:
    q, engine, clock = wessex
    open_round(q, "QUICK", scoring="optional")
    with Session(engine) as s:
        assert s.exec(select(Round)).one()[0].scoring_required is False
    first, second = bid_in(q, "QUICK", "Joint fraud team"), bid_in(q, "QUICK", "Shared audit")
    meeting = board(q, clock)
    with engine.connect() as conn:
        m = conn.execute(select(Meeting.__table__).where(Meeting.ref == meeting)).first()
        assert meeting_agenda(conn, m) == [first, second]
    clock.set(dt.date(2012, 6, 14))
    q.execute("record_attendance", {"meeting": meeting, "present": MEMBERS}, OFFICER)
    out = q.execute("decide", {"meeting": meeting, "item": first, "outcome": "approve"}, OFFICER)
    assert (out["state"], out["grant"]) == ("approved", "G-0001")
    refer = q.execute("decide", {"meeting": meeting, "item": second, "outcome": "refer_back",
                                 "missing": "name the partner councils"}, OFFICER)
    assert refer["state"] == "referred_back"
    assert pot(engine, REGIONAL).committed_pence == 2_000_000
    refused(engine, lambda: open_round(q, "BAD", scoring="sometimes"), ValidationError,
            "open_round: scoring:")


def test_allocations_are_not_in_the_ranked_bids_paper(wessex) -> None:
    q, engine, clock = wessex
    open_round(q, "SCORED")
    ref = bid_in(q, "SCORED", "Shared legal services")
    propose(q)
    q.execute("close_round", {"round": "SCORED"}, OFFICER)
    q.execute("score_round", {"round": "SCORED"}, OFFICER)
    paper = bids_paper(engine, "SCORED")
    assert [b["ref"] for b in paper["round"]["bids"]] == [ref]


# ------------------------------------------------------------------ delegated


def test_the_chair_and_the_vice_chairs_approve_an_allocation_under_delegation(wessex) -> None:
    q, engine, clock = wessex
    ref = propose(q, purpose="Contribution to the peer review of Tamarford BC",
                  recipient=COUNCIL, pot=SUPPORT, amount="15,000",
                  reasons="The council pays the expenses")["ref"]
    clock.set(dt.date(2012, 5, 8))
    dd = q.execute("request_delegated_decision",
                   {"bid": ref, "reasons": "a council in difficulty asked for a peer review",
                    "alternatives": "wait for the June Board (the review team is free now)",
                    "scheme": SCHEME}, OFFICER)
    assert (dd["bid"], dd["pot"], dd["pot_balance_pence"], dd["amount_pence"]) == (
        ref, SUPPORT, 10_000_000, 1_500_000)
    q.execute("sign", {"item": dd["ref"], "decision": "approve"}, CHAIR)
    waiting = q.execute("sign", {"item": dd["ref"], "decision": "approve"}, VICE1)
    assert waiting["state"] == "awaiting_signatures"  # every one of them signs
    out = q.execute("sign", {"item": dd["ref"], "decision": "approve"}, VICE2)
    assert out["state"] == "approved" and out["grant"] == "G-0001"
    line = pot(engine, SUPPORT)
    assert (line.committed_pence, line.available_pence) == (1_500_000, 8_500_000)
    with Session(engine) as s:
        assert s.exec(select(Bid).where(Bid.ref == ref)).one()[0].state == "approved"
    # reported to the next Board, which endorses it
    meeting = board(q, clock)
    clock.set(dt.date(2012, 6, 14))
    with engine.connect() as conn:
        m = conn.execute(select(Meeting.__table__).where(Meeting.ref == meeting)).first()
        assert meeting_agenda(conn, m) == [dd["ref"]]
    q.execute("record_attendance", {"meeting": meeting, "present": MEMBERS}, OFFICER)
    assert q.execute("endorse", {"meeting": meeting, "item": dd["ref"]}, OFFICER)
    assert_money_adds_up(engine)


# ------------------------------------------------------------------ paid against its milestone


def test_an_allocation_without_milestones_is_paid_only_against_verified_evidence(wessex) -> None:
    q, engine, clock = wessex
    ref = propose(q, purpose="Events and workshops, July to September 2012",
                  amount="18,500", due="2012-09-30", reasons="the quarter's events")["ref"]
    meeting = board(q, clock)
    clock.set(dt.date(2012, 6, 14))
    q.execute("record_attendance", {"meeting": meeting, "present": MEMBERS}, OFFICER)
    grant = q.execute("decide", {"meeting": meeting, "item": ref, "outcome": "approve"},
                      OFFICER)["grant"]
    pay = lambda by=OFFICER2: q.execute(  # noqa: E731
        "release_payment", {"grant": grant, "milestone": 1}, by)
    clock.set(dt.date(2012, 10, 2))
    refused(engine, pay, TransitionRefused, "verified")
    q.execute("submit_evidence", {"grant": grant, "milestone": 1,
                                  "summary": "three events held; 140 attended"}, OFFICER)
    refused(engine, pay, TransitionRefused, "verified")
    q.execute("verify_milestone", {"grant": grant, "milestone": 1}, OFFICER)
    refused(engine, lambda: pay(OFFICER), PermissionDenied, "four eyes")
    paid = pay()
    assert paid["amount_pence"] == 1_850_000
    line = pot(engine, REGIONAL)
    assert (line.committed_pence, line.paid_pence) == (1_850_000, 1_850_000)
    assert milestones(engine, ref)[0][3] == "paid"


# ------------------------------------------------------------------ the year, replayed


def test_the_2012_allocations_scenario_replays_with_every_pot_exact(db_url: str) -> None:
    result = run(SCENARIO, db_url)
    assert result.ok, result.failed
    errors = [s for s in result.steps if s.expected_error]
    assert len(errors) == 6  # the refusals the scenario expects, each naming its rule
    said = " | ".join(s.message for s in errors)
    assert "Cllr Idris Vane has already signed DD-0001 on 2012-04-06 (approved)" in said
    assert "Cllr Idris Vane declared an interest in DD-0003" in said
    pots = {p["name"]: p for p in result.snapshot["pots"]}
    regional, support = pots[REGIONAL], pots[SUPPORT]
    # Regional programmes £400,000: salaries £96,000, Q2 events £18,500, interim £60,000
    # (at the Board), Q3 events £21,000 — £195,500 committed, £18,500 + £20,000 paid
    assert (regional["allocated_pence"], regional["committed_pence"],
            regional["available_pence"], regional["paid_pence"]) == (
        40_000_000, 19_550_000, 20_450_000, 3_850_000)
    # Support for councils in difficulty £100,000: two peer reviews, £15,000 and £12,500
    assert (support["allocated_pence"], support["committed_pence"],
            support["available_pence"], support["paid_pence"]) == (
        10_000_000, 2_750_000, 7_250_000, 0)
    for p in (regional, support):
        assert p["allocated_pence"] == p["committed_pence"] + p["available_pence"]
    grants = {i["ref"]: i for i in result.snapshot["items"] if i["kind"] == "grant"}
    assert {(g["bid"], g["awarded_pence"]) for g in grants.values()} == {
        ("AL-0001", 9_600_000), ("AL-0002", 1_850_000), ("AL-0003", 1_500_000),
        ("AL-0004", 6_000_000), ("AL-0005", 2_100_000), ("AL-0006", 1_250_000)}
    delegated = [i for i in result.snapshot["items"] if i["kind"] == "delegated_decision"]
    assert sorted((d["ref"], d["state"]) for d in delegated) == [
        (f"DD-000{n}", "endorsed") for n in range(1, 6)]
    # "the Chair and the Vice Chairs" as written: every signature on the record, the
    # Vice Chair with an interest standing aside, the concurrence after an urgent approval
    signed = {d["ref"]: [(x["name"].split()[-1], x["decision"]) for x in d["signatures"]]
              for d in delegated}
    assert signed == {
        "DD-0001": [("Hale", "approve"), ("Vane", "approve"), ("Lowe", "approve")],
        "DD-0002": [("Hale", "approve"), ("Lowe", "approve"), ("Vane", "approve")],
        "DD-0003": [("Hale", "approve"), ("Vane", "stand_aside"), ("Lowe", "approve")],
        "DD-0004": [("Hale", "approve"), ("Vane", "approve"), ("Lowe", "concur")],
        "DD-0005": [("Hale", "approve"), ("Lowe", "approve"), ("Vane", "approve")],
    }
    by_ref = {d["ref"]: d for d in delegated}
    assert [(i["name"], i["nature"]) for i in by_ref["DD-0003"]["interests"]] == [
        ("Cllr Idris Vane", "a former member of Tamarford BC's cabinet")]
    assert by_ref["DD-0004"]["route"] == "urgency"
    assert {d["scheme"] for d in delegated} == {"wessex-delegation 2012.2"}
    allocations = [i for i in result.snapshot["items"] if i.get("bid_kind") == "allocation"]
    assert len(allocations) == 6 and all(a["state"] == "approved" for a in allocations)


def test_the_scenarios_views_have_their_shapes(sqlite_url: str) -> None:
    result = run(SCENARIO, sqlite_url)
    assert result.ok, result.failed
    engine = make_engine(sqlite_url)
    try:
        for rows in views_of(engine, dt.date(2013, 3, 31)).values():
            for row, shape in rows:
                check(row, shape)
    finally:
        engine.dispose()


# ------------------------------------------------------------------ the web


def test_the_bid_pages_show_an_allocation(wessex, sqlite_url: str) -> None:
    q, engine, clock = wessex
    propose(q, purpose="Events and workshops, July to September 2012", amount="18,500",
            reasons="The quarter's programme of events",
            items=[{"what": "Procurement masterclass, 12 July", "cost": "4,500"}])
    set_passwords(q, OFFICER)
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    with TestClient(app) as c:
        assert sign_in(c, OFFICER).status_code == 303
        page = c.get("/bids/AL-0001")
        assert page.status_code == 200, page.text
        text = page.text
        assert 'id="bid-kind">Allocation' in text
        assert TEAM in text and REGIONAL in text and "£18,500" in text
        assert "Procurement masterclass, 12 July" in text and "£4,500" in text
        assert "The quarter&#39;s programme of events" in text
        assert ">Savings as written</dt>" not in text  # (the amend form still offers it)
        listing = c.get("/bids")
        assert listing.status_code == 200
        assert "Allocation</span> Events and workshops" in listing.text


def test_a_delegated_request_for_an_unscored_bid_of_a_scored_round_is_refused(wessex) -> None:
    q, engine, clock = wessex
    open_round(q, "SCORED")
    ref = bid_in(q, "SCORED", "Shared legal services")
    refused(engine, lambda: q.execute(
        "request_delegated_decision",
        {"bid": ref, "reasons": "urgent", "alternatives": "wait", "scheme": SCHEME}, OFFICER),
        TransitionRefused, "request_delegated_decision: item:", "may_decide_unscored",
        "score it first")


def test_quorum_do_propose_allocation_from_the_command_line(wessex, sqlite_url: str) -> None:
    out = quorum("do", "propose_allocation", "purpose=Peer review of Tamarford BC",
                 f"recipient={COUNCIL}", f"pot={SUPPORT}", "amount=15,000",
                 "reasons=the council pays the expenses",
                 'items=[{what: "Review team, five days", cost: "15,000"}]',
                 db=sqlite_url, actor=OFFICER)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["ref"], result["kind"], result["amount_pence"], result["milestones"]) == (
        "AL-0001", "allocation", 1_500_000, 1)
    bad = quorum("do", "propose_allocation", "purpose=x", f"recipient={COUNCIL}",
                 "pot=Nowhere", "amount=1", "reasons=y", db=sqlite_url, actor=OFFICER)
    assert bad.returncode == 1 and "propose_allocation: pot: no pot called 'Nowhere'" in bad.stderr


def test_the_meeting_page_offers_the_board_a_decision_on_an_allocation(
    wessex, sqlite_url: str
) -> None:
    """An allocation is decided unscored: the meeting page offers its Decide form, and
    the form's decision goes through the same command (the *_unscored steps)."""
    q, engine, clock = wessex
    propose(q, purpose="Shared procurement: interim funding", amount="60,000",
            reasons="keeps the team in post")
    meeting = board(q, clock)
    clock.set(dt.date(2012, 6, 14))
    q.execute("record_attendance", {"meeting": meeting, "present": MEMBERS}, OFFICER)
    set_passwords(q, OFFICER)
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    with TestClient(app) as c:
        assert sign_in(c, OFFICER).status_code == 303
        page = c.get(f"/meetings/{meeting}/items/1")  # issue 14: the item's own page
        assert page.status_code == 200
        form = page.text[page.text.index('id="form-decide"'):]
        form = form[: form.index("</form>")]
        assert 'value="approve"' in form and 'value="refer_back"' in form
        assert "disabled" not in form
        done = decide_on_page(c, meeting, 1, outcome="approve",
                              reasons="interim funding approved")
        assert done.status_code == 303, done.text[:500]
    with Session(engine) as s:
        assert s.exec(select(Bid).where(Bid.ref == "AL-0001")).one()[0].state == "approved"
    paper = agenda_paper(engine, meeting)
    assert [(i["ref"], i["kind"]) for i in paper["items"]] == [("AL-0001", "allocation")]
