"""A meeting's actions through the reminder ladder (rules/reminders.yaml, the
ladder with ``applies_to: actions``; engine/commands/chasing.py): a reminder
before the due date, a chase after, escalation to the officers and the Chair;
each rung once per action and recipient however often the sweep runs; nothing
once the action is closed; an action due by a target meeting is due that day."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from boardkit import OFFICER, new_board
from sqlalchemy import select

from engine.domain.errors import NotFound
from engine.entry.scheduler import sweep
from engine.store.models import Outbox
from notifications.render import body
from rules.reminders import RemindersError, load_ladder_rules, parse_ladder_rules

MEMBERS = ["Cllr Alder", "Cllr Bramble", "Cllr Hazel"]
CHAIR = "chair@b.example"
CONTACT = "wren@wessex.example"  # the partnership's sponsor contact
MOOR = "clerk@moorside.example"  # an organisation with no contact: its own address
D = dt.date


@pytest.fixture
def board(db_url: str):
    q, engine, clock = new_board(
        db_url, D(2012, 5, 1), members=MEMBERS, officer_name="Tamsin Thorne",
        organisations=[
            {"name": "Wessex Improvement Partnership", "kind": "sub_regional_partnership"},
            {"name": "Moorside DC", "kind": "district", "email": MOOR},
        ],
        people=[
            {"name": "Rowan Wren", "email": CONTACT, "roles": ["sponsor"],
             "organisation": "Wessex Improvement Partnership"},
            {"name": "Cllr Quill", "email": CHAIR, "roles": ["chair"]},
        ],
    )  # fmt: skip
    for ref, day in (("WIB-MAY", "2012-05-16"), ("WIB-JUL", "2012-07-18")):
        q.execute("schedule_meeting", {"ref": ref, "title": "Wessex Improvement Board",
                                       "date": day, "quorum": 2, "members": MEMBERS}, OFFICER)
    clock.set(D(2012, 5, 16))
    rec = {"meeting": "WIB-MAY"}
    q.execute("record_action", {**rec, "what": "Circulate the draft business plan",
                                "owner": "Cllr Bramble", "due": "2012-06-15"}, OFFICER)
    q.execute("record_action", {**rec, "what": "Report progress against the targets",
                                "owner": "Wessex Improvement Partnership",
                                "owner_kind": "partnership", "target_meeting": "WIB-JUL"},
              OFFICER)  # fmt: skip
    q.execute("add_action", {**rec, "what": "Book the venue for the away day",
                             "owner": "The events team", "due": "2012-06-01"}, OFFICER)
    q.execute("record_action", {**rec, "what": "Confirm the shared legal service's costs",
                                "owner": "Moorside DC", "owner_kind": "organisation",
                                "due": "2012-06-15"}, OFFICER)  # fmt: skip
    yield q, engine, clock
    engine.dispose()


def sweep_on(engine, clock, day: dt.date) -> dict:
    clock.set(day)
    return sweep(engine, clock=clock)


def messages(engine) -> list[Outbox]:
    with engine.connect() as c:
        return list(
            c.execute(select(Outbox).where(Outbox.key.like("action:%")).order_by(Outbox.id))
        )


def keys(engine) -> list[str]:
    return [m.key for m in messages(engine)]


def test_reminder_before_due_chase_after_and_escalation(board) -> None:
    q, engine, clock = board
    out = sweep_on(engine, clock, D(2012, 6, 8))  # A1 and A4 due in 7 days; A3 7 days late
    assert out["actions_queued"] == {"chase": 1, "reminder-7": 2}
    assert out["actions_queued_total"] == 3
    assert out["messages_queued"] == {}  # no returns here: their summary is unchanged
    assert keys(engine) == [
        "action:WIB-MAY/A1:reminder-7:bramble@b.example",  # a person: their email
        "action:WIB-MAY/A3:chase:officer@b.example",  # free text: who recorded it
        "action:WIB-MAY/A4:reminder-7:clerk@moorside.example",  # no contact: its address
    ]
    first = messages(engine)[0]
    assert first.subject == "Reminder: action WIB-MAY/A1 is due on Friday 15 June 2012"
    text, _ = body(first.template, first.context)
    assert "REMINDER: action 1 of the Wessex Improvement Board, 16 May 2012 is due on " \
           "Friday 15 June 2012, in 7 days." in text
    assert "Circulate the draft business plan" in text and "WIB-MAY/A1" in text

    # the day after the due date: the owners are chased, told who is next and when
    out = sweep_on(engine, clock, D(2012, 6, 16))  # A3 (due 1 June): 15 days late
    assert out["actions_queued"] == {"chase": 2, "escalate-officer": 1}
    chase = next(m for m in messages(engine) if m.key.startswith("action:WIB-MAY/A1:chase"))
    assert chase.subject == "Overdue: action WIB-MAY/A1 was due on Friday 15 June 2012"
    text, _ = body(chase.template, chase.context)
    assert "It is 1 day late." in text
    assert "referred to the programme team on Friday 29 June 2012" in text

    # 14 days late: the officers; 28 days late: the Chair (the free-text one, due 1 June)
    out = sweep_on(engine, clock, D(2012, 6, 29))
    assert out["actions_queued"] == {"escalate-chair": 1, "escalate-officer": 2}
    escalated = [m for m in messages(engine) if ":escalate-" in m.key]
    assert [(m.key, m.to_addr) for m in escalated] == [
        ("action:WIB-MAY/A3:escalate-officer:officer@b.example", OFFICER),
        ("action:WIB-MAY/A1:escalate-officer:officer@b.example", OFFICER),
        ("action:WIB-MAY/A3:escalate-chair:chair@b.example", CHAIR),
        ("action:WIB-MAY/A4:escalate-officer:officer@b.example", OFFICER),
    ]
    to_chair = escalated[2]
    assert to_chair.subject == ("Escalated to the Chair: action WIB-MAY/A3 (The events team) "
                                "is 28 days overdue")
    text, _ = body(to_chair.template, to_chair.context)
    assert "owned by The events team, is still open\n28 days after it was due on " \
           "Friday 1 June 2012. It is referred to you as Chair." in text


def test_a_second_sweep_the_same_day_or_later_queues_nothing_twice(board) -> None:
    q, engine, clock = board
    assert sweep_on(engine, clock, D(2012, 6, 8))["actions_queued_total"] == 3
    before = keys(engine)
    again = sweep(engine, clock=clock)
    assert again["actions_queued"] == {} and again["actions_queued_total"] == 0
    assert sweep_on(engine, clock, D(2012, 6, 10))["actions_queued"] == {}  # same rungs
    assert keys(engine) == before


def test_a_sweep_that_fails_part_way_keeps_no_message_and_the_next_sends_each_once(board) -> None:
    """The actions' messages are queued in the sweep's one transaction: a sweep that
    fails after queueing them (here: a refused command later in the same
    transaction) keeps none, and the next sweep queues each exactly once."""
    q, engine, clock = board
    clock.set(D(2012, 6, 8))
    with pytest.raises(NotFound):
        q.execute_batch([("sweep", {}), ("close_action", {"action": "WIB-MAY/A9",
                         "outcome": "done", "reason": "x"})], "officer@b.example")  # fmt: skip
    assert keys(engine) == []
    assert sweep(engine, clock=clock)["actions_queued_total"] == 3
    assert sweep(engine, clock=clock)["actions_queued_total"] == 0
    assert len(keys(engine)) == len(set(keys(engine))) == 3


def test_a_closed_action_is_no_longer_chased(board) -> None:
    q, engine, clock = board
    sweep_on(engine, clock, D(2012, 6, 8))
    clock.set(D(2012, 6, 12))
    q.execute("close_action", {"action": "WIB-MAY/A1", "outcome": "done",
                               "reason": "circulated on 11 June"}, OFFICER)
    q.execute("close_action", {"action": "WIB-MAY/A4", "outcome": "dropped",
                               "reason": "the service was not taken up"}, CHAIR)
    q.execute("close_action", {"action": "WIB-MAY/A3", "outcome": "done",
                               "reason": "booked"}, OFFICER)
    before = keys(engine)
    for day in (D(2012, 6, 16), D(2012, 6, 29), D(2012, 7, 13)):
        assert sweep_on(engine, clock, day)["actions_queued"].get("chase") is None
    # only the open one, due by the July Board, is reminded
    assert [k for k in keys(engine) if k not in before] == [
        "action:WIB-MAY/A2:reminder-7:wren@wessex.example"]


def test_an_action_due_by_a_target_meeting_is_due_on_its_date(board) -> None:
    q, engine, clock = board
    assert "WIB-MAY/A2" not in str(sweep_on(engine, clock, D(2012, 7, 10)))
    assert not [k for k in keys(engine) if "/A2:" in k]  # 8 days before: not yet
    sweep_on(engine, clock, D(2012, 7, 11))  # 7 days before the July Board
    (msg,) = [m for m in messages(engine) if "/A2:" in m.key]
    assert msg.key == "action:WIB-MAY/A2:reminder-7:wren@wessex.example"  # the contact
    assert (msg.context["due_on"], msg.context["target_meeting"]) == (
        "2012-07-18", "Wessex Improvement Board, 18 July 2012")
    text, _ = body(msg.template, msg.context)
    assert "Due:     Wednesday 18 July 2012 (the Wessex Improvement Board, 18 July 2012)" in text
    # moved to a later date: due then (a rung already sent is not sent again)
    q.execute("move_action", {"action": "WIB-MAY/A2", "due": "2012-07-30"}, OFFICER)
    sweep_on(engine, clock, D(2012, 7, 19))
    assert [k for k in keys(engine) if "/A2:" in k] == [msg.key]  # not yet late
    assert sweep_on(engine, clock, D(2012, 7, 31))["actions_queued"] == {"chase": 1}
    assert keys(engine)[-1] == "action:WIB-MAY/A2:chase:wren@wessex.example"


def test_quorum_sweep_says_what_it_queued_about_actions(board, db_url: str) -> None:
    q, engine, clock = board
    q.execute("register_organisation", {"name": "Heath Trust"}, "system")  # no contact, no email
    q.execute("record_action", {"meeting": "WIB-MAY", "what": "Send the trust's accounts",
                                "owner": "Heath Trust", "owner_kind": "organisation",
                                "due": "2012-06-14"}, OFFICER)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "QUORUM_DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "engine.entry.cli", "--db", db_url, "sweep", "--as-of",
         "2012-06-08"], capture_output=True, text=True, timeout=120,
        env=dict(env, PYTHONPATH=str(Path(__file__).resolve().parents[1])))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "  actions: 3 message(s) queued (chase 1, reminder-7 2)" in out.stdout
    # an owner with nobody to tell is said (and counted in the sweep's audit event)
    assert "warning: 1 action(s) with nobody to send reminder-7 to owner" in out.stderr


def test_the_shipped_ladder_for_actions_agrees_in_durable_rules_and_python() -> None:
    rules = load_ladder_rules()
    ladder = rules.ladder_for("actions", "any programme")
    assert ladder is not None and ladder.applies_to == "actions"
    assert rules.ladder_for("returns", "any programme") is rules.default
    facts = [{"ref": f"a{d}", "days_from_due": d, "owner_kind": kind}
             for d in range(-10, 40) for kind in ("person", "text")]  # fmt: skip
    fired = ladder.applicable(facts)
    assert fired == ladder.applicable_python(facts)
    by = {f["ref"] + f["owner_kind"]: names for f, names in zip(facts, fired, strict=True)}
    assert by["a-8person"] == set() and by["a-7person"] == {"reminder-7"}
    assert by["a1text"] == {"chase"} and by["a14text"] == {"escalate-officer"}
    assert by["a28person"] == {"escalate-officer", "escalate-chair"}
    assert [x.applies_to for x in rules.ladders()] == ["returns", "actions"]


PROGRAMME_LADDERS = """
name: r
version: "1"
default:
  ladder:
    - {rung: chase, template: return_chase, from: 1, to: [sponsor]}
programmes:
  P:
    - applies_to: actions
      ladder:
        - {rung: nudge, template: action_chase, from: 3, to: [owner, director],
           when: {owner_kind: text}}
"""


def test_ladders_declare_what_they_apply_to() -> None:
    rules = parse_ladder_rules(PROGRAMME_LADDERS, "r.yaml")
    assert rules.ladder_for("actions", "Other") is None  # no default ladder: not chased
    nudge = rules.ladder_for("actions", "P")
    assert nudge is not None and [r.name for r in nudge.rungs] == ["nudge"]
    assert rules.ladder_for("returns", "P") is rules.default
    assert nudge.next_escalation(nudge.rungs[0]) is None  # no later rung


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("applies_to: actions", "applies_to: minutes",
         "r.yaml: programmes.P[0].applies_to: 'minutes' is not something a ladder applies "
         "to; use: returns, actions"),
        ("to: [owner, director]", "to: [sponsor]",
         "programmes.P[0].ladder[0].to[0]: 'sponsor' is not a recipient; use: owner, officer"),
        ("when: {owner_kind: text}", "when: {kind: savings}",
         "unknown fact 'kind'; facts are: days_from_due, owner_kind"),
        ("from: 3,", "from: 3, subject: \"{grant_ref}\",",
         "{grant_ref} is not a subject field; use: {action_ref}"),
        ("  P:\n", "  P:\n    - applies_to: returns\n      ladder: [{rung: a, template: b, "
         "from: 1, to: [sponsor]}]\n    - applies_to: returns\n      ladder: [{rung: a, "
         "template: b, from: 1, to: [sponsor]}]\n",
         "programmes.P[1].applies_to: a second ladder for returns"),
        ("default:\n  ladder:\n    - {rung: chase, template: return_chase, from: 1, to: [sponsor]}",
         "default: []",
         "r.yaml: default: needs a ladder with applies_to: returns"),
    ],
)  # fmt: skip
def test_a_bad_ladder_for_actions_is_refused_naming_the_key(old, new, says) -> None:
    assert old in PROGRAMME_LADDERS
    with pytest.raises(RemindersError) as err:
        parse_ladder_rules(PROGRAMME_LADDERS.replace(old, new, 1), "r.yaml")
    assert says in err.value.message
