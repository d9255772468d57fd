"""Read-side views of the money that moves after approval: grants with their
milestones, payments, repayment schedules and recoveries; delegated decisions
with their signatures; deposits with their settlement.

Like ``engine.read.views``: plain dicts typed by their shapes
(engine/read/shapes.py), amounts in pence, a fixed handful of queries however
many items there are (no query per row).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.clock import SystemClock
from engine.read import shapes
from engine.read.delegation import delegated_items
from engine.store.ledger import grant_lines
from engine.store.models import (
    AdvancePayment,
    Bid,
    DelegatedDecision,
    Deposit,
    DepositShare,
    Evidence,
    Grant,
    GrantChange,
    Milestone,
    Organisation,
    OrgKind,
    Payment,
    Person,
    Pot,
    Recovery,
    RepaymentInstalment,
)

Reader = Session | Connection

# Core tables: their columns type-check in queries (SQLModel types a model's
# attributes as their Python values)
BID_T = Bid.__table__
DD_T = DelegatedDecision.__table__
DEPOSIT_T = Deposit.__table__
SHARE_T = DepositShare.__table__
EVIDENCE_T = Evidence.__table__
GRANT_T = Grant.__table__
CHANGE_T = GrantChange.__table__
MILESTONE_T = Milestone.__table__
ORG_T = Organisation.__table__
PAYMENT_T = Payment.__table__
PERSON_T = Person.__table__
POT_T = Pot.__table__
RECOVERY_T = Recovery.__table__
INSTALMENT_T = RepaymentInstalment.__table__
ADVANCE_T = AdvancePayment.__table__


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _milestones(conn: Reader, grant_ids: list[int]) -> dict[int, list[shapes.GrantMilestone]]:
    paid: dict[int, int | None] = {
        p.milestone_id: p.paid
        for p in conn.execute(
            select(PAYMENT_T.c.milestone_id, func.sum(PAYMENT_T.c.amount_pence).label("paid"))
            .where(PAYMENT_T.c.grant_id.in_(grant_ids))
            .group_by(PAYMENT_T.c.milestone_id)
        )
    }
    evidence: dict[int, str] = {}
    for e in conn.execute(
        select(EVIDENCE_T.c.milestone_id, EVIDENCE_T.c.state)
        .join(MILESTONE_T, MILESTONE_T.c.id == EVIDENCE_T.c.milestone_id)
        .where(MILESTONE_T.c.grant_id.in_(grant_ids))
        .order_by(EVIDENCE_T.c.id)
    ):
        evidence[e.milestone_id] = e.state  # the latest submission's state
    out: dict[int, list[shapes.GrantMilestone]] = defaultdict(list)
    for m in conn.execute(
        select(MILESTONE_T)
        .where(MILESTONE_T.c.grant_id.in_(grant_ids))
        .order_by(MILESTONE_T.c.grant_id, MILESTONE_T.c.seq)
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


def _payments(conn: Reader, grant_ids: list[int]) -> dict[int, list[shapes.PaymentLine]]:
    out: dict[int, list[shapes.PaymentLine]] = defaultdict(list)
    paid_to = ORG_T.alias("paid_to")
    for p in conn.execute(
        select(PAYMENT_T, MILESTONE_T.c.seq, PERSON_T.c.name.label("released_by"),
               paid_to.c.name.label("paid_to"))
        .join(MILESTONE_T, MILESTONE_T.c.id == PAYMENT_T.c.milestone_id)
        .join(PERSON_T, PERSON_T.c.id == PAYMENT_T.c.released_by_id)
        .outerjoin(paid_to, paid_to.c.id == PAYMENT_T.c.paid_to_id)
        .where(PAYMENT_T.c.grant_id.in_(grant_ids))
        .order_by(PAYMENT_T.c.id)
    ):
        out[p.grant_id].append(
            {
                "ref": p.ref,
                "milestone": p.seq,
                "amount_pence": p.amount_pence,
                "released_by": p.released_by,
                "released_on": _iso(p.released_on),
                "paid_to": p.paid_to,
            }
        )
    return out


def _advances(conn: Reader, grant_ids: list[int]) -> dict[int, list[shapes.AdvanceLine]]:
    """Advance payments (not against a milestone) per grant, with who asked,
    who decided and who received them (issue 13)."""
    out: dict[int, list[shapes.AdvanceLine]] = defaultdict(list)
    asker, decider, paid_to = PERSON_T.alias("asker"), PERSON_T.alias("decider"), ORG_T.alias()
    for a in conn.execute(
        select(ADVANCE_T, asker.c.name.label("asker"), decider.c.name.label("decider"),
               paid_to.c.name.label("paid_to"))
        .outerjoin(asker, asker.c.id == ADVANCE_T.c.requested_by_id)
        .outerjoin(decider, decider.c.id == ADVANCE_T.c.decided_by_id)
        .outerjoin(paid_to, paid_to.c.id == ADVANCE_T.c.paid_to_id)
        .where(ADVANCE_T.c.grant_id.in_(grant_ids))
        .order_by(ADVANCE_T.c.id)
    ):
        out[a.grant_id].append({
            "ref": a.ref, "amount_pence": a.amount_pence, "reason": a.reason, "state": a.state,
            "requested_by": a.asker or "the system", "requested_on": a.requested_on.isoformat(),
            "decided_by": a.decider, "decided_on": _iso(a.decided_on), "paid_to": a.paid_to,
        })
    return out


def _changes(conn: Reader, grant_ids: list[int]) -> dict[int, list[shapes.GrantChange]]:
    out: dict[int, list[shapes.GrantChange]] = defaultdict(list)
    for c in conn.execute(
        select(CHANGE_T).where(CHANGE_T.c.grant_id.in_(grant_ids)).order_by(CHANGE_T.c.id)
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


def _instalments(
    conn: Reader, grant_ids: list[int], today: dt.date
) -> dict[int, list[shapes.Instalment]]:
    out: dict[int, list[shapes.Instalment]] = defaultdict(list)
    for r in conn.execute(
        select(INSTALMENT_T)
        .where(INSTALMENT_T.c.grant_id.in_(grant_ids))
        .order_by(INSTALMENT_T.c.grant_id, INSTALMENT_T.c.seq)
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


def _recoveries(conn: Reader, grant_ids: list[int]) -> dict[int, list[shapes.RecoveryLine]]:
    out: dict[int, list[shapes.RecoveryLine]] = defaultdict(list)
    for r in conn.execute(
        select(RECOVERY_T).where(RECOVERY_T.c.grant_id.in_(grant_ids)).order_by(RECOVERY_T.c.id)
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
    conn: Reader,
    today: dt.date | None = None,
    accountable_body_id: int | None = None,
    refs: Sequence[str] | None = None,
) -> list[shapes.Grant]:
    """Every grant with its money (derived from movements), milestones,
    repayment schedule (late instalments flagged as of ``today``) and recoveries."""
    today = today or SystemClock().today()
    body_of = ORG_T.alias("body_of")  # a partnership's accountable body
    q = (
        select(
            GRANT_T,
            BID_T.c.ref.label("bid_ref"),
            BID_T.c.title,
            ORG_T.c.name.label("body"),
            ORG_T.c.kind.label("body_kind"),
            body_of.c.name.label("receiving_body"),
            POT_T.c.name.label("pot"),
            DD_T.c.ref.label("dd_ref"),
        )
        .join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
        .join(ORG_T, ORG_T.c.id == GRANT_T.c.accountable_body_id)
        .outerjoin(body_of, body_of.c.id == ORG_T.c.accountable_body_id)
        .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id)
        .outerjoin(DD_T, DD_T.c.id == GRANT_T.c.delegated_decision_id)
        .order_by(GRANT_T.c.id)
    )
    if accountable_body_id is not None:
        q = q.where(GRANT_T.c.accountable_body_id == accountable_body_id)
    if refs is not None:  # one page of a list (engine/read/lists.py)
        q = q.where(GRANT_T.c.ref.in_(refs))
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
    advances = _advances(conn, ids)
    out: list[shapes.Grant] = []
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
                "partnership": g.body_kind == OrgKind.SUB_REGIONAL_PARTNERSHIP,
                "receiving_body": g.receiving_body
                if g.body_kind == OrgKind.SUB_REGIONAL_PARTNERSHIP
                else g.body,
                "advances": advances.get(g.id, []),
                "advances_paid_pence": sum(
                    a["amount_pence"] for a in advances.get(g.id, []) if a["state"] == "paid"
                ),
            }
        )
    return out


def delegated_decisions(conn: Reader) -> list[shapes.DelegatedDecision]:
    """Every delegated decision with its signatures: the record a council publishes
    (built by the delegation module, which also renders the Board's report)."""
    bind = conn.connection() if isinstance(conn, Session) else conn
    return delegated_items(bind)


def deposits(conn: Reader) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(DEPOSIT_T, GRANT_T.c.ref.label("grant_ref"), POT_T.c.name.label("pot"))
        .outerjoin(GRANT_T, GRANT_T.c.id == DEPOSIT_T.c.grant_id)
        .join(POT_T, POT_T.c.id == DEPOSIT_T.c.pot_id)
        .order_by(DEPOSIT_T.c.id)
    ).all()
    if not rows:
        return []
    shares: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in conn.execute(
        select(SHARE_T, ORG_T.c.name.label("partner"))
        .join(ORG_T, ORG_T.c.id == SHARE_T.c.organisation_id)
        .where(SHARE_T.c.deposit_id.in_([r.id for r in rows]))
        .order_by(SHARE_T.c.id)
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
