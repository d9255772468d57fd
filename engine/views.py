"""Read-side views: what lists, reports and ``replay --json`` show.

Plain dicts with amounts in pence, built with a handful of queries (no
per-row queries), shared by the CLI, the web pages and the REST API.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlmodel import Session

from engine import audit
from engine.ledger import ledger
from engine.models import AuditEvent, Bid, BidPartner, Milestone, Organisation, Outbox, Pot


def bids(session: Session, state: str | None = None, sponsor_id: int | None = None) -> list[dict]:
    q = (
        select(Bid, Organisation.name, Pot.name)
        .join(Organisation, Organisation.id == Bid.sponsor_id)
        .outerjoin(Pot, Pot.id == Bid.pot_id)
        .order_by(Bid.id)
    )
    if state:
        q = q.where(Bid.state == state)
    if sponsor_id is not None:
        q = q.where(Bid.sponsor_id == sponsor_id)
    rows = session.execute(q).all()
    ids = [b.id for b, _, _ in rows]
    partners: dict[int, list[str]] = defaultdict(list)
    milestones: dict[int, list[dict]] = defaultdict(list)
    if ids:
        for bid_id, name in session.execute(
            select(BidPartner.bid_id, Organisation.name)
            .join(Organisation, Organisation.id == BidPartner.organisation_id)
            .where(BidPartner.bid_id.in_(ids))
            .order_by(Organisation.name)
        ):
            partners[bid_id].append(name)
        for m in session.execute(
            select(Milestone)
            .where(Milestone.bid_id.in_(ids))
            .order_by(Milestone.bid_id, Milestone.seq)
        ).scalars():
            milestones[m.bid_id].append(
                {
                    "seq": m.seq,
                    "outcome": m.outcome,
                    "due_on": m.due_on.isoformat(),
                    "payment_pence": m.payment_pence,
                    "state": m.state,
                }
            )
    return [
        {
            "ref": b.ref,
            "kind": "bid",
            "title": b.title,
            "state": b.state,
            "version": b.version,
            "sponsor": sponsor,
            "pot": pot,
            "grant_requested_pence": b.grant_requested_pence,
            "savings_as_written": b.savings_text,
            "savings": {
                "basis": b.savings_basis,
                "amount_pence": b.savings_amount_pence,
                "high_pence": b.savings_high_pence,
                "years": b.savings_years,
                "annual": b.savings_annual,
                "readable": b.savings_readable,
            },
            "partnership": b.partnership,
            "partners": partners.get(b.id, []),
            "builds_on_proven": b.builds_on_proven,
            "invest_to_save": b.invest_to_save,
            "published_points": b.published_points,
            "submitted_on": b.submitted_on.isoformat(),
            "milestones": milestones.get(b.id, []),
        }
        for b, sponsor, pot in rows
    ]


def items(session: Session) -> list[dict]:
    """Every workflow item (bids now; grants, decisions, returns... as they arrive)."""
    return bids(session)


def pots(session: Session) -> list[dict]:
    return [
        {
            "name": line.name,
            "programme": line.programme,
            "allocated_pence": line.allocated_pence,
            "committed_pence": line.committed_pence,
            "paid_pence": line.paid_pence,
            "released_pence": line.released_pence,
            "recovered_pence": line.recovered_pence,
            "repaid_pence": line.repaid_pence,
            "available_pence": line.available_pence,
            "identity_holds": line.identity_holds(),
        }
        for line in ledger(session)
    ]


def outbox(session: Session) -> list[dict]:
    return [
        {
            "key": m.key,
            "to": m.to_addr,
            "template": m.template,
            "subject": m.subject,
            "status": m.status,
            "attempts": m.attempts,
            "created_at": m.created_at.isoformat() if m.created_at else None,
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        }
        for m in session.execute(select(Outbox).order_by(Outbox.id)).scalars()
    ]


def audit_summary(session: Session) -> dict:
    result = audit.verify(session)
    return {
        "events": session.execute(select(func.count()).select_from(AuditEvent)).scalar() or 0,
        "chain_ok": result.ok,
        "problem": None if result.ok else result.message(),
    }


def select_one():  # noqa: ANN201
    """A trivial query for health checks."""
    return select(func.count()).select_from(Pot)
