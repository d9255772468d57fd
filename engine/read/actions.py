"""The action register as the papers show it: the actions a meeting recorded
(its minutes' "Actions"), and the next meeting's matters arising.

Matters arising of a meeting are the actions recorded at earlier meetings of
its programme that are still open (``due`` when their target meeting is this
one or their due date is on or before it), and those closed since the last
meeting before it, so that each is reported done or dropped once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.read.shapes import MeetingAction
from engine.store.models import Action, Meeting

ACTION_T = Action.__table__
MEETING_T = Meeting.__table__
TARGET_T = aliased(MEETING_T, name="target")


def _meeting(conn: Connection, ref: str) -> Any:
    m = conn.execute(select(MEETING_T).where(MEETING_T.c.ref == ref)).first()
    if m is None:
        raise NotFound(f"no meeting {ref!r}", field="meeting", item=ref)
    return m


def register(
    conn: Session | Connection, *where: Any, at: Any = None
) -> list[MeetingAction]:
    """Actions (those matching ``where``; all if none) in meeting and number order;
    ``at``: the meeting whose matters arising they are (sets ``due``)."""
    rows = conn.execute(
        select(ACTION_T, MEETING_T.c.ref.label("meeting_ref"),
               TARGET_T.c.ref.label("target_ref"), TARGET_T.c.title.label("target_title"),
               TARGET_T.c.held_on.label("target_on"))
        .join(MEETING_T, MEETING_T.c.id == ACTION_T.c.meeting_id)
        .outerjoin(TARGET_T, TARGET_T.c.id == ACTION_T.c.target_meeting_id)
        .where(*where)
        .order_by(MEETING_T.c.held_on, MEETING_T.c.id, ACTION_T.c.number)
    )
    out: list[MeetingAction] = []
    for a in rows:
        due = False
        if at is not None and a.state == "open":
            due = a.target_meeting_id == at.id or (
                a.due_on is not None and a.due_on <= at.held_on)
        out.append({
            "ref": f"{a.meeting_ref}/A{a.number}", "meeting": a.meeting_ref,
            "number": a.number, "what": a.what, "owner": a.owner,
            "owner_kind": a.owner_kind,
            "due_on": a.due_on.isoformat() if a.due_on else None,
            "target_meeting": a.target_ref,
            "by": (a.due_on.isoformat() if a.due_on
                   else f"{a.target_title} ({a.target_on.isoformat()})" if a.target_ref
                   else ""),
            "state": a.state, "note": a.note, "closed_by": a.closed_by,
            "closed_on": a.closed_on.isoformat() if a.closed_on else None,
            "due": due,
        })
    return out


def meeting_actions(conn: Connection, meeting_ref: str) -> list[MeetingAction]:
    """The actions recorded at a meeting, in number order."""
    m = _meeting(conn, meeting_ref)
    return register(conn, ACTION_T.c.meeting_id == m.id)


def matters_arising(conn: Connection, meeting_ref: str) -> list[MeetingAction]:
    """The actions the meeting goes through under matters arising (see the module)."""
    m = _meeting(conn, meeting_ref)
    earlier = and_(MEETING_T.c.programme_id == m.programme_id,
                   or_(MEETING_T.c.held_on < m.held_on,
                       and_(MEETING_T.c.held_on == m.held_on, MEETING_T.c.id < m.id)))
    last = conn.execute(
        select(MEETING_T.c.held_on).where(earlier)
        .order_by(MEETING_T.c.held_on.desc(), MEETING_T.c.id.desc()).limit(1)
    ).scalar()
    if last is None:
        return []
    reported = ACTION_T.c.state == "open"
    closed_since = and_(ACTION_T.c.closed_on.is_not(None), ACTION_T.c.closed_on >= last)
    return register(conn, earlier, or_(reported, closed_since), at=m)
