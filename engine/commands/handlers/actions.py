"""The action register: numbered actions recorded at a meeting, each with an
owner (a person, a partnership or an organisation) and a due date or a target
meeting; closed as done or dropped with a note and who closed it.

Every state an action takes comes from workflows/action.py. Its ref is
"<meeting ref>/A<number>" (numbered per meeting, as the minutes number them).
Open actions from earlier meetings are listed under matters arising
(engine/read/actions.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.lookups import find_owner, load_meeting
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import NotFound, ValidationError
from engine.store.models import Action, Meeting
from workflows.action import ACTION
from workflows.meeting import MEETING

OWNER_KINDS = ("person", "partnership", "organisation")
OUTCOMES = {"done": "complete", "dropped": "drop"}  # close_action outcome -> step

ACTION_T = Action.__table__
MEETING_T = Meeting.__table__


def action_ref(meeting_ref: str, number: int) -> str:
    return f"{meeting_ref}/A{number}"


def _when(uow: UnitOfWork, m: Any, due: dt.date | None, target: str) -> int | None:
    """Check "by when" against the meeting that records the action; the target
    meeting's id (None for a due date)."""
    if due is None and not target:
        raise ValidationError(
            f"{uow.command}: due: give a due date or a target_meeting", field="due")
    if due is not None and target:
        raise ValidationError(
            f"{uow.command}: due: give a due date or a target_meeting, not both", field="due")
    if due is not None:
        if due < m.held_on:
            raise ValidationError(
                f"{uow.command}: due: {due.isoformat()} is before the meeting {m.ref} "
                f"({m.held_on.isoformat()}); an action is due on or after the meeting "
                "that records it", field="due")
        return None
    t = uow.conn.execute(select(MEETING_T).where(MEETING_T.c.ref == target)).first()
    if t is None:
        raise NotFound(f"{uow.command}: target_meeting: no meeting {target!r}",
                       field="target_meeting")
    if t.programme_id != m.programme_id or t.held_on <= m.held_on:
        raise ValidationError(
            f"{uow.command}: target_meeting: {t.ref} ({t.held_on.isoformat()}) is not a "
            f"later meeting of {m.ref}'s programme; an action is taken to a later meeting",
            field="target_meeting")
    return int(t.id)


def _load(uow: UnitOfWork, ref: str) -> Any:
    meeting_ref, sep, number = ref.rpartition("/A")
    row = None
    if sep and number.isdigit():
        row = uow.conn.execute(
            select(ACTION_T, MEETING_T.c.ref.label("meeting_ref"),
                   MEETING_T.c.held_on, MEETING_T.c.programme_id)
            .join(MEETING_T, MEETING_T.c.id == ACTION_T.c.meeting_id)
            .where(MEETING_T.c.ref == meeting_ref, ACTION_T.c.number == int(number))
        ).first()
    if row is None:
        raise NotFound(f"{uow.command}: action: no action {ref!r} (refs look like "
                       "<meeting>/A<number>)", field="action", item=ref)
    return row


@command("record_action", summary="Record a numbered action with its owner and due date or meeting")
def record_action(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(ACTION, "record")
    m = load_meeting(uow, args.text("meeting"))
    what = args.text("what", max_len=2000)
    who = args.text("owner", max_len=200)
    kind = args.choice("owner_kind", OWNER_KINDS, default="person")
    due = args.date("due", required=False)
    target = args.text("target_meeting", required=False, max_len=40)
    args.done()
    uow.step(MEETING, "add_action", m.state, m.ref)
    owner, owner_id = find_owner(uow, kind, who, "partnership or organisation")
    target_id = _when(uow, m, due, target)
    number = (uow.conn.execute(
        select(func.max(col(Action.number))).where(col(Action.meeting_id) == m.id)
    ).scalar() or 0) + 1
    ref = action_ref(m.ref, number)
    created = uow.fire(ACTION, "record", "new", ref)
    inserted_id(uow.conn.execute(insert(Action).values(
        meeting_id=m.id, number=number, what=what, owner=owner, owner_kind=kind,
        owner_id=owner_id, due_on=due, target_meeting_id=target_id, state=created.dest,
        version=1)))
    after = {"what": what, "owner": owner, "owner_kind": kind,
             **({"due": due} if due else {"target_meeting": target})}
    uow.record(ref, {}, after)
    return {"action": ref, "meeting": m.ref, "number": number, "owner": owner,
            **({"due": due.isoformat()} if due else {"target_meeting": target})}


@command("close_action", summary="Close an action as done or dropped, with a note")
def close_action(uow: UnitOfWork, args: Args) -> Result:
    ref = args.text("action", max_len=60)
    outcome = args.choice("outcome", tuple(OUTCOMES))
    note = args.text("reason", max_len=2000)  # kept as the action's note
    args.done()
    uow.authorise(ACTION, OUTCOMES[outcome])
    a = _load(uow, ref)
    uow.check_version(ref, a.version, args)
    closing = uow.fire(ACTION, OUTCOMES[outcome], a.state, ref)
    by = uow.actor.name or uow.actor.label
    version = uow.update_versioned(
        Action, a.id, a.version, {"note": note, "closed_by": by, "closed_on": uow.today},
        ref, closing)
    uow.record(ref, {"state": a.state}, {"state": closing.dest, "closed_by": by}, note)
    return {"action": ref, "state": closing.dest, "closed_by": by, "version": version}


@command("move_action", summary="Give an open action a new due date or target meeting")
def move_action(uow: UnitOfWork, args: Args) -> Result:
    ref = args.text("action", max_len=60)
    due = args.date("due", required=False)
    target = args.text("target_meeting", required=False, max_len=40)
    reason = args.text("reason", required=False, max_len=2000)
    args.done()
    uow.authorise(ACTION, "move")
    a = _load(uow, ref)
    uow.check_version(ref, a.version, args)
    moving = uow.fire(ACTION, "move", a.state, ref)
    m = uow.conn.execute(select(MEETING_T).where(MEETING_T.c.id == a.meeting_id)).one()
    target_id = _when(uow, m, due, target)
    version = uow.update_versioned(
        Action, a.id, a.version, {"due_on": due, "target_meeting_id": target_id}, ref, moving)
    uow.record(ref, {"due": a.due_on, "target_meeting_id": a.target_meeting_id},
               {"due": due, "target_meeting": target or None}, reason)
    return {"action": ref, "version": version,
            **({"due": due.isoformat()} if due else {"target_meeting": target})}
