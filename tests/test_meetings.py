"""Meetings and decisions: quorum, interests, votes, money, referral, reversal.

Each refusal must say what is wrong and leave the database exactly as it was."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import MetaData, select, text
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import MoneyRuleBroken, TransitionRefused, ValidationError
from engine.read import views
from engine.store.db import create_schema, make_engine
from engine.store.ledger import ledger
from engine.store.models import Grant

OFFICER = "officer@b.example"
MEMBERS = [f"Cllr {n}" for n in ("Ash", "Birch", "Cedar", "Damson", "Elm", "Fir", "Gorse")]


def dump(engine) -> dict:
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as c:
        return {
            t.name: [tuple(r) for r in c.execute(t.select().order_by(*t.primary_key.columns))]
            for t in meta.sorted_tables
        }


@pytest.fixture
def board(db_url: str):
    clock = FixedClock(dt.date(2011, 3, 1))
    engine = make_engine(db_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute_batch(
        [
            ("create_programme", {"name": "P", "pots": {"Projects": "300,000"}}),
            ("register_organisation", {"name": "Rutland CC"}),
            ("register_organisation", {"name": "Melton BC"}),
            ("register_person", {"name": "Olive", "email": OFFICER, "roles": ["officer"]}),
            (
                "register_person",
                {
                    "name": "Sam",
                    "email": "sam@rutland.example",
                    "roles": ["sponsor"],
                    "organisation": "Rutland CC",
                },
            ),
        ]
        + [
            (
                "register_person",
                {
                    "name": n,
                    "email": f"{n.split()[1].lower()}@b.example",
                    "roles": ["board_member"],
                },
            )
            for n in MEMBERS
        ],
        "system",
    )
    q.execute(
        "open_round",
        {
            "ref": "R1",
            "name": "Round",
            "pot": "Projects",
            "closes": "2011-03-31",
            "rules": "efficiency-bids-2011",
        },
        OFFICER,
    )
    bids = [
        # all three criteria met: 7 points, recommended for approval
        {
            "title": "Shared ICT",
            "sponsor": "Rutland CC",
            "grant": "100,000",
            "savings": "2,137,416 5 years",
            "partnership": "yes",
            "builds_on_proven": "yes",
        },
        {
            "title": "Big ask",
            "sponsor": "Melton BC",
            "grant": "250,000",
            "savings": "1m per annum",
            "partnership": "yes",
            "builds_on_proven": "yes",
        },
        {
            "title": "Vague",
            "sponsor": "Rutland CC",
            "grant": "40,000",
            "savings": "none specified",
            "partnership": "yes",
            "builds_on_proven": "yes",
        },
    ]
    for b in bids:
        q.execute("submit_bid", {**b, "round": "R1"}, OFFICER)
    clock.set(dt.date(2011, 4, 1))
    q.execute("close_round", {"round": "R1"}, OFFICER)
    q.execute("score_round", {"round": "R1"}, OFFICER)
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-APR",
            "title": "Board",
            "date": "2011-04-20",
            "quorum": 5,
            "members": MEMBERS,
        },
        OFFICER,
    )
    clock.set(dt.date(2011, 4, 20))
    q.execute("record_attendance", {"meeting": "BOARD-APR", "present": MEMBERS[:5]}, OFFICER)
    yield q, engine, clock
    engine.dispose()


def decide(q: Quorum, item: str, outcome: str, **kw):
    return q.execute(
        "decide", {"meeting": "BOARD-APR", "item": item, "outcome": outcome, **kw}, OFFICER
    )


def projects(engine):
    with Session(engine) as s:
        return next(line for line in ledger(s) if line.name == "Projects")


def test_approval_commits_money_and_makes_a_grant(board) -> None:
    q, engine, _ = board
    out = decide(q, "B-0001", "approve", amount="80,000", votes={"for": 4, "against": 1})
    assert out["state"] == "approved" and out["grant"] == "G-0001"
    line = projects(engine)
    assert (line.committed_pence, line.available_pence) == (8_000_000, 22_000_000)
    assert line.identity_holds()
    with Session(engine) as s:
        grant = s.execute(select(Grant)).scalars().one()
    assert (grant.awarded_pence, grant.state) == (8_000_000, "active")
    meeting = views.meetings(Session(engine))[0]
    assert meeting["decisions"][0]["votes"] == {"for": 4, "against": 1, "abstain": 0}


def test_approving_beyond_the_pot_is_refused_and_nothing_changes(board) -> None:
    q, engine, _ = board
    decide(q, "B-0001", "approve")  # 100,000 of 300,000
    before = dump(engine)
    with pytest.raises(
        MoneyRuleBroken, match=r"overcommit the Projects pot: £200,000 is available"
    ):
        decide(q, "B-0002", "approve")  # 250,000
    assert dump(engine) == before
    decide(q, "B-0002", "approve", amount="200,000")  # a lower amount fits
    assert projects(engine).available_pence == 0


def test_an_inquorate_meeting_cannot_decide(board) -> None:
    q, engine, _ = board
    q.execute("record_attendance", {"meeting": "BOARD-APR", "present": MEMBERS[:4]}, OFFICER)
    before = dump(engine)
    with pytest.raises(ValidationError, match="not quorate for B-0001: 4 members present"):
        decide(q, "B-0001", "approve")
    assert dump(engine) == before


def test_a_declared_interest_removes_a_member_from_the_vote_and_the_quorum(board) -> None:
    q, engine, _ = board
    q.execute(
        "declare_interest",
        {
            "meeting": "BOARD-APR",
            "item": "B-0001",
            "member": "Cllr Ash",
            "nature": "council tenant",
        },
        OFFICER,
    )
    before = dump(engine)
    with pytest.raises(ValidationError, match="not quorate for B-0001.*Cllr Ash declared"):
        decide(q, "B-0001", "approve")  # 5 present, 1 conflicted: 4 may take part
    assert dump(engine) == before
    decide(q, "B-0003", "reject")  # the interest is in B-0001 only: 5 may take part
    q.execute("record_attendance", {"meeting": "BOARD-APR", "present": MEMBERS[:6]}, OFFICER)
    before = dump(engine)
    with pytest.raises(ValidationError, match="Cllr Ash declared an interest in this item"):
        decide(q, "B-0001", "approve", votes={"for": ["Cllr Ash", "Cllr Birch"]})
    with pytest.raises(
        ValidationError,
        match="6 votes recorded but only 5 members present may "
        "vote on this item \\(Cllr Ash declared an interest",
    ):
        decide(q, "B-0001", "approve", votes={"for": 6})
    assert dump(engine) == before
    decide(
        q,
        "B-0001",
        "approve",
        votes={"for": ["Cllr Birch", "Cllr Cedar", "Cllr Damson"], "against": ["Cllr Elm"]},
    )


def test_a_carried_vote_needs_more_for_than_against(board) -> None:
    q, engine, _ = board
    before = dump(engine)
    with pytest.raises(ValidationError, match="2 for and 2 against do not carry"):
        decide(q, "B-0001", "approve", votes={"for": 2, "against": 2, "abstain": 1})
    with pytest.raises(ValidationError, match="6 votes recorded but only 5 members present"):
        decide(q, "B-0001", "approve", votes={"for": 6})
    assert dump(engine) == before


def test_referred_bid_returns_on_the_next_agenda_and_withdrawn_leaves_it(board) -> None:
    q, engine, clock = board
    decide(q, "B-0003", "refer_back")  # missing comes from the score
    with Session(engine) as s:
        d = views.meetings(s)[0]["decisions"][0]
    assert "cashable savings" in d["missing"]
    decide(q, "B-0002", "defer")
    q.execute("amend_bid", {"ref": "B-0003", "savings": "30,000 per annum"}, "sam@rutland.example")
    q.execute("resubmit_bid", {"ref": "B-0003"}, "sam@rutland.example")
    q.execute("withdraw_bid", {"ref": "B-0001", "reason": "merged"}, "sam@rutland.example")
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-JUN",
            "title": "Board",
            "date": "2011-06-15",
            "quorum": 5,
            "members": MEMBERS,
        },
        OFFICER,
    )
    clock.set(dt.date(2011, 6, 15))
    out = q.execute("record_attendance", {"meeting": "BOARD-JUN", "present": MEMBERS}, OFFICER)
    assert out["agenda"] == ["B-0002", "B-0003"]
    q.execute("decide", {"meeting": "BOARD-JUN", "item": "B-0003", "outcome": "approve"}, OFFICER)


def test_decisions_are_reversed_not_edited(board) -> None:
    q, engine, _ = board
    first = decide(q, "B-0001", "approve")
    with pytest.raises(TransitionRefused, match="cannot approve bid B-0001 while it is approved"):
        decide(q, "B-0001", "approve")
    rev = q.execute(
        "reverse_decision",
        {"decision": first["decision"], "reason": "approved in error: wrong bid"},
        OFFICER,
    )
    assert rev["state"] == "scored"
    line = projects(engine)
    assert (line.committed_pence, line.released_pence, line.available_pence) == (
        0,
        10_000_000,
        30_000_000,
    )
    with Session(engine) as s:
        outcomes = [d["outcome"] for d in views.meetings(s)[0]["decisions"]]
        assert s.execute(select(Grant.state)).scalar() == "cancelled"
        # the original decision row is untouched
        assert s.execute(text("select outcome from decision where ref = 'D-0001'")).scalar() == (
            "approve"
        )
    assert outcomes == ["approve", "reversed"]
    decide(q, "B-0001", "reject")


def test_letters_are_queued_for_the_sponsor(board) -> None:
    q, engine, _ = board
    decide(q, "B-0001", "approve", amount="90,000")
    decide(q, "B-0003", "refer_back", missing="quantify the cashable savings")
    with Session(engine) as s:
        mail = [m for m in views.outbox(s) if m["to"] == "sam@rutland.example"]
    subjects = [m["subject"] for m in mail]
    assert "Bid B-0001 approved: Shared ICT" in subjects
    assert "Bid B-0003 referred back: Vague" in subjects


def test_a_decision_before_the_meeting_date_is_refused(board) -> None:
    q, _, clock = board
    clock.set(dt.date(2011, 4, 19))
    with pytest.raises(ValidationError, match="takes place on 2011-04-20"):
        decide(q, "B-0001", "approve")
