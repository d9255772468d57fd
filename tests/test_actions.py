"""The action register: numbered actions with owners of each kind, matters
arising at the next meeting (in its minutes paper), closing done or dropped
with a note and who closed it; refusals name the rule and change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from boardkit import OFFICER, new_board
from moneykit import dump
from sqlalchemy import select

from engine.commands.service import Quorum
from engine.domain.errors import NotFound, TransitionRefused, ValidationError
from engine.entry import replay
from engine.read.actions import matters_arising, meeting_actions
from engine.read.papers import paper_context
from engine.store.models import AuditEvent, Outbox
from notifications.papers import render

MEMBERS = ["Cllr Ash", "Cllr Birch", "Cllr Cedar"]


@pytest.fixture
def board(db_url: str):
    q, engine, clock = new_board(
        db_url, dt.date(2011, 4, 1), members=MEMBERS, officer_name="Olive Officer",
        organisations=[{"name": "Rutland CC", "kind": "unitary"},
                       {"name": "Leicestershire SRP", "kind": "sub_regional_partnership"}])
    for ref, day in (("BOARD-APR", "2011-04-20"), ("BOARD-JUN", "2011-06-15"),
                     ("BOARD-SEP", "2011-09-21")):
        q.execute("schedule_meeting", {"ref": ref, "title": "Improvement Board", "date": day,
                                       "quorum": 2, "members": MEMBERS}, OFFICER)
    clock.set(dt.date(2011, 4, 20))
    return q, engine, clock


def record(q: Quorum, **args) -> dict:
    return q.execute("record_action", {"meeting": "BOARD-APR", **args}, OFFICER)


def test_actions_numbered_listed_under_matters_arising_and_closed(board) -> None:
    q, engine, clock = board
    a1 = record(q, what="Open a further bidding round", owner="Olive Officer",
                due="31/05/2011")
    a2 = record(q, what="Report the partnership's targets", owner="Leicestershire SRP",
                owner_kind="partnership", target_meeting="BOARD-JUN")
    a3 = record(q, what="Re-work the county-wide scheme", owner="Rutland CC",
                owner_kind="organisation", due="2011-09-30")
    assert [a["action"] for a in (a1, a2, a3)] == [
        "BOARD-APR/A1", "BOARD-APR/A2", "BOARD-APR/A3"]

    with engine.connect() as c:
        recorded = meeting_actions(c, "BOARD-APR")
    assert [(a["number"], a["owner"], a["owner_kind"], a["by"], a["state"]) for a in recorded] == [
        (1, "Olive Officer", "person", "2011-05-31", "open"),
        (2, "Leicestershire SRP", "partnership", "Improvement Board (2011-06-15)", "open"),
        (3, "Rutland CC", "organisation", "2011-09-30", "open"),
    ]
    md = render("minutes", paper_context(engine, "minutes", "BOARD-APR"), "md")
    assert "| 2 | Report the partnership's targets | Leicestershire SRP | " \
           "Improvement Board (2011-06-15) |" in md
    assert "Matters arising" not in md  # the first meeting has none

    clock.set(dt.date(2011, 5, 10))
    done = q.execute("close_action", {"action": "BOARD-APR/A1", "outcome": "done",
                                      "reason": "round R2 opened on 9 May"}, OFFICER)
    assert done["state"] == "done" and done["closed_by"] == "Olive Officer"
    q.execute("close_action", {"action": "BOARD-APR/A3", "outcome": "dropped",
                               "reason": "the scheme was withdrawn"}, OFFICER)

    with engine.connect() as c:
        arising = matters_arising(c, "BOARD-JUN")
    assert [(a["ref"], a["state"], a["due"], a["closed_by"], a["closed_on"], a["note"])
            for a in arising] == [
        ("BOARD-APR/A1", "done", False, "Olive Officer", "2011-05-10",
         "round R2 opened on 9 May"),
        ("BOARD-APR/A2", "open", True, "", None, ""),
        ("BOARD-APR/A3", "dropped", False, "Olive Officer", "2011-05-10",
         "the scheme was withdrawn"),
    ]
    ctx = paper_context(engine, "minutes", "BOARD-JUN")
    md = render("minutes", ctx, "md")
    assert "## Matters arising" in md
    assert "| BOARD-APR/A2 | Report the partnership's targets | Leicestershire SRP | " \
           "Improvement Board (2011-06-15) | open, due |" in md
    assert "| BOARD-APR/A1 | Open a further bidding round | Olive Officer | 2011-05-31 | " \
           "done 2011-05-10 (Olive Officer): round R2 opened on 9 May |" in md
    html = render("minutes", ctx, "html")
    assert "<h2>Matters arising</h2>" in html and "the scheme was withdrawn" in html
    # and on the next meeting's agenda, before anyone attends
    agenda = render("agenda", paper_context(engine, "agenda", "BOARD-JUN"), "md")
    assert "## Matters arising" in agenda
    assert "| BOARD-APR/A2 | Report the partnership's targets | Leicestershire SRP | " \
           "Improvement Board (2011-06-15) | open, due |" in agenda
    assert "<h2>Matters arising</h2>" in render(
        "agenda", paper_context(engine, "agenda", "BOARD-JUN"), "html")

    # closed actions are reported once; the open one stays until it is closed
    q.execute("move_action", {"action": "BOARD-APR/A2", "target_meeting": "BOARD-SEP",
                              "reason": "the targets are agreed in July"}, OFFICER)
    with engine.connect() as c:
        arising = matters_arising(c, "BOARD-SEP")
    assert [(a["ref"], a["state"], a["due"], a["target_meeting"]) for a in arising] == [
        ("BOARD-APR/A2", "open", True, "BOARD-SEP")]

    with engine.connect() as c:
        events = c.execute(
            select(AuditEvent.__table__.c.command, AuditEvent.__table__.c.reason)
            .where(AuditEvent.__table__.c.item_ref.like("BOARD-APR/A%"))
            .order_by(AuditEvent.__table__.c.seq)
        ).all()
    assert [tuple(e) for e in events] == [
        ("record_action", ""), ("record_action", ""), ("record_action", ""),
        ("close_action", "round R2 opened on 9 May"),
        ("close_action", "the scheme was withdrawn"),
        ("move_action", "the targets are agreed in July"),
    ]


def test_refusals_name_the_rule_and_change_nothing(board) -> None:
    q, engine, clock = board
    record(q, what="Open a further bidding round", owner="Olive Officer", due="2011-05-31")
    q.execute("close_action", {"action": "BOARD-APR/A1", "outcome": "done",
                               "reason": "opened"}, OFFICER)
    before = dump(engine)
    refusals = [
        (TransitionRefused, {"action": "BOARD-APR/A1", "outcome": "dropped", "reason": "x"},
         "close_action",
         "cannot drop action BOARD-APR/A1 while it is done: drop is allowed only when it "
         "is open"),
        (NotFound, {"action": "BOARD-APR/A9", "outcome": "done", "reason": "x"}, "close_action",
         "no action 'BOARD-APR/A9'"),
        (NotFound, {"meeting": "BOARD-APR", "what": "w", "owner": "Nobody", "due": "2011-05-01"},
         "record_action", "owner: no person 'Nobody'"),
        (NotFound, {"meeting": "BOARD-APR", "what": "w", "owner": "Nowhere SRP",
                    "owner_kind": "partnership", "due": "2011-05-01"},
         "record_action", "owner: no partnership 'Nowhere SRP'"),
        (ValidationError, {"meeting": "BOARD-APR", "what": "w", "owner": "Rutland CC",
                           "owner_kind": "partnership", "due": "2011-05-01"},
         "record_action", "Rutland CC is not a partnership (it is a unitary)"),
        (ValidationError, {"meeting": "BOARD-APR", "what": "w", "owner": "Olive Officer",
                           "due": "2011-04-19"},
         "record_action", "due: 2011-04-19 is before the meeting BOARD-APR (2011-04-20); an "
         "action is due on or after the meeting that records it"),
        (ValidationError, {"meeting": "BOARD-JUN", "what": "w", "owner": "Olive Officer",
                           "target_meeting": "BOARD-APR"},
         "record_action", "BOARD-APR (2011-04-20) is not a later meeting"),
        (ValidationError, {"meeting": "BOARD-APR", "what": "w", "owner": "Olive Officer"},
         "record_action", "due: give a due date or a target_meeting"),
    ]
    for error, args, name, words in refusals:
        with pytest.raises(error) as e:
            q.execute(name, args, OFFICER)
        assert words in str(e.value), (name, args)
    with pytest.raises(Exception, match="needs the role"):
        q.execute("record_action", {"meeting": "BOARD-APR", "what": "w",
                                    "owner": "Olive Officer", "due": "2011-05-01"},
                  "ash@b.example")
    assert dump(engine) == before


def test_the_worked_example_in_docs_replays() -> None:
    """tests/scenarios/actions-2012.yaml (docs/meetings.md, docs/scenarios.md "Actions
    chased"): actions recorded at a meeting, chased by the daily sweep (advance_clock),
    closed; the emails queued, and the July Board's matters arising in its minutes."""
    papers: list[str] = []
    queued: list[tuple[str, str, str]] = []

    def at_each_step(record, engine) -> None:
        try:
            papers.append(
                render("minutes", paper_context(engine, "minutes", "WIB-2012-07-18"), "md"))
        except NotFound:  # before the July meeting is scheduled
            pass
        with engine.connect() as c:
            queued[:] = [tuple(r) for r in c.execute(
                select(Outbox.key, Outbox.to_addr, Outbox.subject).order_by(Outbox.id))]

    result = replay.run(Path(__file__).parent / "scenarios" / "actions-2012.yaml",
                        after_step=at_each_step)
    assert result.ok, result.failed
    sweeps = [s.result for s in result.steps if s.do == "advance_clock"]
    assert [s.get("actions_queued", {}) for s in sweeps] == [
        {"chase": 1, "reminder-7": 1}, {}, {"reminder-7": 1}, {}]
    assert queued == [
        ("action:WIB-2012-05-16/A1:reminder-7:tamsin@wessex.example", "tamsin@wessex.example",
         "Reminder: action WIB-2012-05-16/A1 is due on Friday 15 June 2012"),
        ("action:WIB-2012-05-16/A1:chase:tamsin@wessex.example", "tamsin@wessex.example",
         "Overdue: action WIB-2012-05-16/A1 was due on Friday 15 June 2012"),
        ("action:WIB-2012-05-16/A2:reminder-7:rowan@vale.example", "rowan@vale.example",
         "Reminder: action WIB-2012-05-16/A2 is due on Wednesday 18 July 2012"),
    ]
    july = papers[-1]
    assert "| WIB-2012-05-16/A2 | Show how each project supports the partnership's " \
           "efficiency targets | Vale Councils Partnership | Wessex Improvement Board " \
           "(2012-07-18) | done 2012-07-18 (Tamsin Thorne): Reported to the Board under " \
           "matters arising |" in july
    assert "dropped 2012-06-20 (Cllr Quill): Moorside DC withdrew from the shared service |" \
           in july
    assert "done 2012-06-18 (Tamsin Thorne): Round 2 opened on 18 June |" in july
