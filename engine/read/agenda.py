"""A meeting's agenda, derived from events from the moment it is scheduled.

While a meeting is scheduled its agenda follows events: every bid of its
programme awaiting a Board decision (scored, deferred, referred back, and
referred back then resubmitted), then every delegated decision of the
programme to report (decided, not yet reported at a meeting). Items the
meeting has already dealt with stay on it: bids it decided and delegated
decisions reported to it. Attendance does not change the agenda. When the
meeting closes the agenda is frozen into ``meeting.agenda`` (close_meeting),
and a closed meeting shows that list.

A meeting scheduled before this rule had its agenda stored when attendance was
recorded; those stored refs are kept, first, in their own order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.store.models import Bid, Decision, DelegatedDecision, Pot
from workflows.bid import AWAITING_DECISION
from workflows.delegated import DECIDED

BID_T = Bid.__table__
DD_T = DelegatedDecision.__table__
POT_T = Pot.__table__
DECISION_T = Decision.__table__


def meeting_agenda(conn: Session | Connection, meeting: Any) -> list[str]:
    """The agenda of ``meeting`` (a meeting row: id, programme_id, state, agenda)."""
    stored = list(meeting.agenda or [])
    if meeting.state != "scheduled":
        return stored
    decided_here = select(DECISION_T.c.item_ref).where(DECISION_T.c.meeting_id == meeting.id)
    bids: list[str] = list(conn.execute(
        select(BID_T.c.ref)
        .join(POT_T, POT_T.c.id == BID_T.c.pot_id)
        .where(
            POT_T.c.programme_id == meeting.programme_id,
            or_(BID_T.c.state.in_(AWAITING_DECISION), BID_T.c.ref.in_(decided_here)),
        )
        .order_by(BID_T.c.id)
    ).scalars())
    delegated: list[str] = list(conn.execute(
        select(DD_T.c.ref)
        .join(POT_T, POT_T.c.id == DD_T.c.pot_id)
        .where(
            POT_T.c.programme_id == meeting.programme_id,
            or_(
                DD_T.c.state.in_(DECIDED) & DD_T.c.reported_meeting_id.is_(None),
                DD_T.c.reported_meeting_id == meeting.id,
            ),
        )
        .order_by(DD_T.c.decided_on, DD_T.c.id)
    ).scalars())
    seen = set(stored)
    out = list(stored)
    for ref in [*bids, *delegated]:
        if ref not in seen:
            seen.add(ref)
            out.append(ref)
    return out
