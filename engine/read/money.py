"""Read-side views of the money that moves after approval: grants with their
milestones, payments, repayment schedules and recoveries; delegated decisions
with their signatures; deposits with their settlement.

Like ``engine.read.views``: plain dicts, amounts in pence, a fixed handful of
queries however many items there are (no query per row).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.clock import SystemClock
from engine.read.delegation import delegated_items
from engine.store.ledger import grant_lines
from engine.store.models import (
    Bid,
    DelegatedDecision,
    Deposit,
    DepositShare,
    Evidence,
    Grant,
    GrantChange,
    Milestone,
    Organisation,
    Payment,
    Person,
    Pot,
    Recovery,
    RepaymentInstalment,
)

Reader = Session | Connection


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _milestones(conn: Reader, grant_ids: list[int]) -> dict[int, list[dict]]:
    paid = dict(
        conn.execute(
            select(Payment.milestone_id, func.sum(Payment.amount_pence))
            .where(Payment.grant_id.in_(grant_ids))
            .group_by(Payment.milestone_id)
        ).all()
    )
    evidence: dict[int, str] = {}
    for milestone_id, state in conn.execute(
        select(Evidence.milestone_id, Evidence.state)
        .join(Milestone, Milestone.id == Evidence.milestone_id)
        .where(Milestone.grant_id.in_(grant_ids))
        .order_by(Evidence.id)
    ):
        evidence[milestone_id] = state  # the latest submission's state
    out: dict[int, list[dict]] = defaultdict(list)
    for m in conn.execute(
        select(Milestone.__table__)
        .where(Milestone.grant_id.in_(grant_ids))
        .order_by(Milestone.grant_id, Milestone.seq)
    ):
        out[m.grant_id].append(
            {
                "seq": m.seq,
                "outcome": m.outcome,
                "due_on": _iso(m.due_on),
                "payment_pence": m.payment_pence,
                "paid_pence": int(paid.get(m.id) or 0),
                "state": m.state,
                "evidence": evidence.get(m.id),
                "verified_on": _iso(m.verified_on),
            }
        )
    return out


def _payments(conn: Reader, grant_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for p in conn.execute(
        select(Payment.__table__, Milestone.seq, Person.name.label("released_by"))
        .join(Milestone, Milestone.id == Payment.milestone_id)
        .join(Person, Person.id == Payment.released_by_id)
        .where(Payment.grant_id.in_(grant_ids))
        .order_by(Payment.id)
    ):
        out[p.grant_id].append(
            {
                "ref": p.ref,
                "milestone": p.seq,
                "amount_pence": p.amount_pence,
                "released_by": p.released_by,
                "released_on": _iso(p.released_on),
            }
        )
    return out


def _changes(conn: Reader, grant_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for c in conn.execute(
        select(GrantChange.__table__)
        .where(GrantChange.grant_id.in_(grant_ids))
        .order_by(GrantChange.id)
    ):
        out[c.grant_id].append(
            {
                "kind": c.kind,
                "approved_by": c.approved_by,
                "approved_on": _iso(c.approved_on),
                "reason": c.reason,
                "before": c.before,
                "after": c.after,
            }
        )
    return out


def _instalments(conn: Reader, grant_ids: list[int], today: dt.date) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for r in conn.execute(
        select(RepaymentInstalment.__table__)
        .where(RepaymentInstalment.grant_id.in_(grant_ids))
        .order_by(RepaymentInstalment.grant_id, RepaymentInstalment.seq)
    ):
        owing = r.amount_pence - r.repaid_pence
        late_now = owing > 0 and r.due_on < today
        repaid_late = owing == 0 and r.repaid_on is not None and r.repaid_on > r.due_on
        out[r.grant_id].append(
            {
                "seq": r.seq,
                "due_on": _iso(r.due_on),
                "amount_pence": r.amount_pence,
                "repaid_pence": r.repaid_pence,
                "repaid_on": _iso(r.repaid_on),
                "late": late_now,
                "days_late": (today - r.due_on).days if late_now else 0,
                "repaid_late": repaid_late,
            }
        )
    return out


def _recoveries(conn: Reader, grant_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for r in conn.execute(
        select(Recovery.__table__).where(Recovery.grant_id.in_(grant_ids)).order_by(Recovery.id)
    ):
        out[r.grant_id].append(
            {
                "ref": r.ref,
                "state": r.state,
                "demanded_pence": r.demanded_pence,
                "recovered_pence": r.recovered_pence,
                "written_off_pence": r.written_off_pence,
                "outstanding_pence": r.demanded_pence - r.recovered_pence - r.written_off_pence,
                "demanded_on": _iso(r.demanded_on),
                "reason": r.reason,
                "authority": r.authority,
            }
        )
    return out


def grants(
    conn: Reader, today: dt.date | None = None, accountable_body_id: int | None = None
) -> list[dict]:
    """Every grant with its money (derived from movements), milestones,
    repayment schedule (late instalments flagged as of ``today``) and recoveries."""
    today = today or SystemClock().today()
    q = (
        select(
            Grant.__table__,
            Bid.ref.label("bid_ref"),
            Bid.title,
            Organisation.name.label("body"),
            Pot.name.label("pot"),
            DelegatedDecision.ref.label("dd_ref"),
        )
        .join(Bid, Bid.id == Grant.bid_id)
        .join(Organisation, Organisation.id == Grant.accountable_body_id)
        .join(Pot, Pot.id == Grant.pot_id)
        .outerjoin(DelegatedDecision, DelegatedDecision.id == Grant.delegated_decision_id)
        .order_by(Grant.id)
    )
    if accountable_body_id is not None:
        q = q.where(Grant.accountable_body_id == accountable_body_id)
    rows = conn.execute(q).all()
    ids = [g.id for g in rows]
    if not ids:
        return []
    money = grant_lines(conn, ids)
    milestones = _milestones(conn, ids)
    instalments = _instalments(conn, ids, today)
    recoveries = _recoveries(conn, ids)
    payments = _payments(conn, ids)
    changes = _changes(conn, ids)
    out = []
    for g in rows:
        line = money[g.id]
        out.append(
            {
                "ref": g.ref,
                "kind": "grant",
                "bid": g.bid_ref,
                "title": g.title,
                "accountable_body": g.body,
                "pot": g.pot,
                "state": g.state,
                "version": g.version,
                "approved_on": _iso(g.approved_on),
                "approved_by": g.dd_ref or "Board",
                "ends_on": _iso(g.ends_on),
                "closed_on": _iso(g.closed_on),
                "invest_to_save": g.invest_to_save,
                "awarded_pence": line.awarded_pence,
                "paid_pence": line.paid_pence,
                "released_pence": line.released_pence,
                "recovered_pence": line.recovered_pence,
                "repaid_pence": line.repaid_pence,
                "committed_pence": line.committed_pence,
                "unpaid_pence": line.unpaid_pence,
                "milestones": milestones.get(g.id, []),
                "repayments": instalments.get(g.id, []),
                "recoveries": recoveries.get(g.id, []),
                "payments": payments.get(g.id, []),
                "changes": changes.get(g.id, []),
            }
        )
    return out


def delegated_decisions(conn: Reader) -> list[dict]:
    """Every delegated decision with its signatures: the record a council publishes
    (built by the delegation module, which also renders the Board's report)."""
    bind = conn.connection() if isinstance(conn, Session) else conn
    return delegated_items(bind)


def deposits(conn: Reader) -> list[dict]:
    rows = conn.execute(
        select(Deposit.__table__, Grant.ref.label("grant_ref"), Pot.name.label("pot"))
        .outerjoin(Grant, Grant.id == Deposit.grant_id)
        .join(Pot, Pot.id == Deposit.pot_id)
        .order_by(Deposit.id)
    ).all()
    if not rows:
        return []
    shares: dict[int, list[dict]] = defaultdict(list)
    for s in conn.execute(
        select(DepositShare.__table__, Organisation.name.label("partner"))
        .join(Organisation, Organisation.id == DepositShare.organisation_id)
        .where(DepositShare.deposit_id.in_([r.id for r in rows]))
        .order_by(DepositShare.id)
    ):
        shares[s.deposit_id].append(
            {
                "partner": s.partner,
                "amount_pence": s.amount_pence,
                "refunded_pence": s.refunded_pence,
                "forfeited_pence": s.forfeited_pence,
            }
        )
    return [
        {
            "ref": r.ref,
            "kind": "deposit",
            "grant": r.grant_ref,
            "pot": r.pot,
            "state": r.state,
            "total_pence": r.total_pence,
            "basis": r.basis,
            "target_pence": r.target_pence,
            "target_on": _iso(r.target_on),
            "lodged_on": _iso(r.lodged_on),
            "settled_on": _iso(r.settled_on),
            "settlement": r.settlement,
            "shares": shares.get(r.id, []),
        }
        for r in rows
    ]
