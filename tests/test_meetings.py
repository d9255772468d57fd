"""Meetings and decisions: quorum, interests, votes, money, referral, reversal.

Each refusal must say what is wrong and leave the database exactly as it was."""

from __future__ import annotations

import datetime as dt

import pytest
from boardkit import OFFICER, new_board
from moneykit import dump
from sqlalchemy import select, text
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.domain.errors import MoneyRuleBroken, TransitionRefused, ValidationError
from engine.read import views
from engine.read.papers import paper_context
from engine.store.ledger import ledger
from engine.store.models import Grant, Outbox
from notifications import papers as paper_render
from notifications.render import body

MEMBERS = [f"Cllr {n}" for n in ("Ash", "Birch", "Cedar", "Damson", "Elm", "Fir", "Gorse")]


@pytest.fixture
def board(db_url: str):
    q, engine, clock = new_board(
        db_url,
        dt.date(2011, 3, 1),
        members=MEMBERS,
        organisations=[{"name": "Rutland CC"}, {"name": "Melton BC"}],
        people=[
            {
                "name": "Sam",
                "email": "sam@rutland.example",
                "roles": ["sponsor"],
                "organisation": "Rutland CC",
            }
        ],
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
    decide(q, "B-0003", "refer_back", missing="quantify the cashable savings")
    with Session(engine) as s:
        d = views.meetings(s)[0]["decisions"][0]
    assert d["missing"] == "quantify the cashable savings"
    assert d["reasons"] == "The Board referred it back."  # none given: the default line
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


def schedule(q: Quorum, ref: str, date: str) -> None:
    q.execute("schedule_meeting", {"ref": ref, "title": "Board", "date": date, "quorum": 5,
                                   "members": MEMBERS}, OFFICER)


def meeting(engine, ref: str) -> dict:
    with Session(engine) as s:
        return next(m for m in views.meetings(s) if m["ref"] == ref)


def test_a_scheduled_meeting_has_its_agenda_before_anyone_attends(board) -> None:
    q, engine, _ = board
    schedule(q, "BOARD-JUN", "2011-06-15")
    jun = meeting(engine, "BOARD-JUN")
    assert jun["present"] == [] and not jun["quorate"]
    assert jun["agenda"] == ["B-0001", "B-0002", "B-0003"]  # every scored bid, from scheduling
    for fmt in ("md", "html"):  # the agenda paper too, before attendance
        paper = paper_render.render("agenda", paper_context(engine, "agenda", "BOARD-JUN"), fmt)
        assert all(ref in paper for ref in jun["agenda"]) and "Shared ICT" in paper
    # attendance records who is present; it does not change the agenda
    apr = meeting(engine, "BOARD-APR")
    assert apr["agenda"] == ["B-0001", "B-0002", "B-0003"]
    # an item decided at a meeting stays on that meeting's agenda, and leaves the next one's
    decide(q, "B-0001", "approve")
    assert meeting(engine, "BOARD-APR")["agenda"] == ["B-0001", "B-0002", "B-0003"]
    assert meeting(engine, "BOARD-JUN")["agenda"] == ["B-0002", "B-0003"]
    # closing freezes it
    q.execute("close_meeting", {"meeting": "BOARD-APR"}, OFFICER)
    with engine.connect() as c:
        stored = c.execute(text("select agenda from meeting where ref = 'BOARD-APR'")).scalar()
    assert "B-0003" in str(stored) and meeting(engine, "BOARD-APR")["agenda"] == [
        "B-0001", "B-0002", "B-0003"]


BOARD_REASONS = ("The Board wants the benefits the project will deliver identified, and how "
                 "they support the partnership's efficiency targets")


def test_a_referral_keeps_the_boards_reasons_and_returns_on_the_next_agenda(board) -> None:
    q, engine, clock = board
    with engine.connect() as c:  # the scoring rules' unmet criterion for B-0003
        scored = c.execute(text("select missing from score where bid_id = 3")).scalar()
    scoring_words = "generate cashable savings"
    assert scoring_words in str(scored)
    decide(q, "B-0003", "refer_back", reasons=BOARD_REASONS,
           missing="a costed savings plan with the cashable gains per year")
    schedule(q, "BOARD-JUN", "2011-06-15")
    assert meeting(engine, "BOARD-JUN")["agenda"] == ["B-0001", "B-0002", "B-0003"]
    decide(q, "B-0001", "approve")
    decide(q, "B-0002", "reject")
    q.execute("close_meeting", {"meeting": "BOARD-APR"}, OFFICER)
    # referred back and not yet resubmitted: it waits for the sponsor
    assert meeting(engine, "BOARD-JUN")["agenda"] == ["B-0003"]
    clock.set(dt.date(2011, 5, 2))
    q.execute("amend_bid", {"ref": "B-0003", "savings": "30,000 per annum"}, "sam@rutland.example")
    q.execute("resubmit_bid", {"ref": "B-0003"}, "sam@rutland.example")
    jun = meeting(engine, "BOARD-JUN")
    assert jun["present"] == [] and jun["agenda"] == ["B-0003"]  # before anyone attends
    paper = paper_render.render("agenda", paper_context(engine, "agenda", "BOARD-JUN"), "md")
    assert "| 1 | B-0003 | bid | Vague | Rutland CC | £40,000 | resubmitted | decide " in paper
    with Session(engine) as s:
        assert next(b for b in views.bids(s) if b["ref"] == "B-0003")["state"] == "resubmitted"

    # the minutes: the Board's reasons and what it asks for, not the scoring rules' reasons
    decision = meeting(engine, "BOARD-APR")["decisions"][0]
    assert decision["reasons"] == BOARD_REASONS
    assert decision["missing"] == "a costed savings plan with the cashable gains per year"
    for fmt in ("md", "html"):
        minutes = paper_render.render("minutes", paper_context(engine, "minutes", "BOARD-APR"),
                                      fmt)
        assert "The Board's reasons: " + BOARD_REASONS.replace("'", "&#39;" if fmt == "html"
                                                               else "'") in minutes
        assert "The Board asks for: a costed savings plan" in minutes
        assert scoring_words not in minutes

    # the sponsor's message: the same words
    with Session(engine) as s:
        mail = s.execute(select(Outbox).where(Outbox.template == "referred_back")).scalars().all()
        assert [m.to_addr for m in mail] == ["sam@rutland.example"]
        txt, html = body(mail[0].template, mail[0].context)
    assert BOARD_REASONS in txt and "a costed savings plan with the cashable gains" in txt
    assert scoring_words not in txt
    assert html is not None and "a costed savings plan" in html and scoring_words not in html


def test_a_referral_must_say_what_the_board_asks_for(board) -> None:
    q, engine, _ = board
    before = dump(engine)
    with pytest.raises(ValidationError, match="decide: missing: say what the Board asks") as e:
        decide(q, "B-0003", "refer_back", reasons=BOARD_REASONS)
    assert e.value.field == "missing"
    assert dump(engine) == before
