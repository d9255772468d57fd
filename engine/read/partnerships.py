"""Partnerships' accountable bodies and advance payments as papers read them (issue 13).

- :func:`accountable_bodies`: each partnership with its accountable body (or none);
- :func:`advances_for_meeting`: the advances paid on a meeting's programme since
  the meeting before it, up to its date, for the board papers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.store.models import (
    AdvancePayment,
    Bid,
    Grant,
    Meeting,
    Organisation,
    OrgKind,
    Person,
    Pot,
)

Reader = Session | Connection
ADV_T = AdvancePayment.__table__
GRANT_T = Grant.__table__
BID_T = Bid.__table__
ORG_T = Organisation.__table__
POT_T = Pot.__table__
MEET_T = Meeting.__table__
PERSON_T = Person.__table__


def accountable_bodies(conn: Reader) -> list[dict[str, Any]]:
    """Every partnership, by name, with its accountable body (None: not named)."""
    body = ORG_T.alias("body")
    return [
        {"partnership": r.name, "accountable_body": r.body}
        for r in conn.execute(
            select(ORG_T.c.name, body.c.name.label("body"))
            .outerjoin(body, body.c.id == ORG_T.c.accountable_body_id)
            .where(ORG_T.c.kind == OrgKind.SUB_REGIONAL_PARTNERSHIP.value)
            .order_by(ORG_T.c.name)
        )
    ]


def advances_for_meeting(conn: Reader, meeting_ref: str) -> list[dict[str, Any]]:
    """Advances paid on the meeting's programme after the previous meeting (of the
    same programme) and up to this one's date, oldest first: each with its grant,
    project, the grant's body, who received it, the amount, reason and approver."""
    m = conn.execute(select(MEET_T).where(MEET_T.c.ref == meeting_ref)).first()
    if m is None:
        raise NotFound(f"advances: no meeting {meeting_ref!r}", field="meeting")
    earlier = and_(MEET_T.c.programme_id == m.programme_id,
                   or_(MEET_T.c.held_on < m.held_on,
                       and_(MEET_T.c.held_on == m.held_on, MEET_T.c.id < m.id)))
    last = conn.execute(select(MEET_T.c.held_on).where(earlier)
                        .order_by(MEET_T.c.held_on.desc()).limit(1)).scalar()
    holder, paid_to = ORG_T.alias("holder"), ORG_T.alias("paid_to")
    q = (
        select(ADV_T, GRANT_T.c.ref.label("grant"), BID_T.c.title,
               holder.c.name.label("holder"), paid_to.c.name.label("paid_to_name"),
               PERSON_T.c.name.label("approved_by"))
        .join(GRANT_T, GRANT_T.c.id == ADV_T.c.grant_id)
        .join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
        .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id)
        .join(holder, holder.c.id == GRANT_T.c.accountable_body_id)
        .outerjoin(paid_to, paid_to.c.id == ADV_T.c.paid_to_id)
        .outerjoin(PERSON_T, PERSON_T.c.id == ADV_T.c.decided_by_id)
        .where(POT_T.c.programme_id == m.programme_id, ADV_T.c.state == "paid",
               ADV_T.c.decided_on <= m.held_on)
        .order_by(ADV_T.c.decided_on, ADV_T.c.id)
    )
    if last is not None:
        q = q.where(ADV_T.c.decided_on > last)
    return [
        {"ref": a.ref, "grant": a.grant, "title": a.title, "holder": a.holder,
         "paid_to": a.paid_to_name, "amount_pence": a.amount_pence, "reason": a.reason,
         "paid_on": a.decided_on.isoformat(), "approved_by": a.approved_by or "the system"}
        for a in conn.execute(q)
    ]
