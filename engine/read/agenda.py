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

from engine.domain.errors import NotFound
from engine.store.models import (
    Bid,
    BidKind,
    Decision,
    DelegatedDecision,
    Meeting,
    Organisation,
    Pot,
    Round,
)
from workflows.bid import AWAITING_DECISION, UNSCORED_FROM
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
    # an unscored item awaiting a decision: an allocation, or a bid of a round that
    # does not require scoring (rules/guards.py may_decide_unscored). A bid of no round
    # is decided unscored only when someone asks (a delegated request, `decide`).
    rounds_t = Round.__table__
    unscored = BID_T.c.state.in_(UNSCORED_FROM) & or_(
        BID_T.c.kind == BidKind.ALLOCATION.value,
        BID_T.c.round_id.in_(
            select(rounds_t.c.id).where(rounds_t.c.scoring_required.is_(False))),
    )
    bids: list[str] = list(conn.execute(
        select(BID_T.c.ref)
        .join(POT_T, POT_T.c.id == BID_T.c.pot_id)
        .where(
            POT_T.c.programme_id == meeting.programme_id,
            or_(BID_T.c.state.in_(AWAITING_DECISION), unscored, BID_T.c.ref.in_(decided_here)),
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


def agenda_paper(conn: Session | Connection, meeting_ref: str) -> dict[str, Any]:
    """The agenda paper's context: the meeting and its items in agenda order, each
    with its kind, title, who it is for, amount, state and what the Board is asked."""
    meet = Meeting.__table__
    m = conn.execute(select(meet).where(meet.c.ref == meeting_ref)).first()
    if m is None:
        raise NotFound(f"paper agenda: no meeting {meeting_ref!r}", field="meeting")
    refs = meeting_agenda(conn, m)
    org = Organisation.__table__
    found: dict[str, dict[str, Any]] = {}
    for b in conn.execute(
        select(BID_T.c.ref, BID_T.c.title, BID_T.c.state, BID_T.c.grant_requested_pence,
               org.c.name.label("sponsor"))
        .join(org, org.c.id == BID_T.c.sponsor_id)
        .where(BID_T.c.ref.in_(refs))
    ):
        asked = "decide (resubmitted)" if b.state == "resubmitted" else "decide"
        found[b.ref] = {"ref": b.ref, "kind": "bid", "title": b.title, "for": b.sponsor,
                        "amount_pence": b.grant_requested_pence, "state": b.state,
                        "asked": asked}
    for d in conn.execute(
        select(DD_T.c.ref, DD_T.c.title, DD_T.c.state, DD_T.c.amount_pence)
        .where(DD_T.c.ref.in_(refs))
    ):
        asked = "endorse" if d.state in ("approved", "endorsed") else "note (for information)"
        found[d.ref] = {"ref": d.ref, "kind": "delegated decision", "title": d.title, "for": "",
                        "amount_pence": d.amount_pence, "state": d.state, "asked": asked}
    return {
        "meeting": {"ref": m.ref, "title": m.title, "date": m.held_on.isoformat(),
                    "state": m.state},
        "items": [found[r] for r in refs if r in found],
    }
