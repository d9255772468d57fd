"""Repayments, read side: a grant's instalments with what is repaid and
outstanding (:func:`repayment_schedule`) and the instalments now late
(:func:`late_instalments`), for the views, the sweep's summary and the CLI.

The commands that change them are engine/commands/handlers/recovery.py.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from engine.store.models import Grant, RepaymentInstalment

INST_T = RepaymentInstalment.__table__
GRANT_T = Grant.__table__
_INSTALMENTS = (
    select(INST_T).where(INST_T.c.grant_id == bindparam("grant_id")).order_by(INST_T.c.seq)
)


def repayment_schedule(conn: Connection, grant_id: int, today: dt.date) -> list[dict]:
    """A grant's instalments for views: each with what is repaid and outstanding,
    ``status`` (repaid / part_repaid / due / late), ``late`` (late now),
    ``repaid_late`` (cleared after its due date) and ``days_late`` (now, or
    when it was cleared)."""
    out = []
    for r in conn.execute(_INSTALMENTS, {"grant_id": grant_id}):
        outstanding = r.amount_pence - r.repaid_pence
        late = outstanding > 0 and r.due_on < today
        if outstanding == 0:
            status = "repaid"
            days = max((r.repaid_on - r.due_on).days, 0) if r.repaid_on else 0
        else:
            status = "late" if late else ("part_repaid" if r.repaid_pence else "due")
            days = (today - r.due_on).days if late else 0
        out.append(
            {
                "seq": r.seq,
                "due_on": r.due_on.isoformat(),
                "amount_pence": r.amount_pence,
                "repaid_pence": r.repaid_pence,
                "outstanding_pence": outstanding,
                "repaid_on": r.repaid_on.isoformat() if r.repaid_on else None,
                "status": status,
                "late": late,
                "repaid_late": outstanding == 0 and days > 0,
                "days_late": days,
            }
        )
    return out


def late_instalments(conn: Connection, today: dt.date, grant_id: int | None = None) -> list[dict]:
    """Instalments whose due date has passed (before ``today``) and which are not
    fully repaid, oldest first: grant ref, seq, due, amount, repaid, days late.
    One query; used by the reminder sweep and the views."""
    q = (
        select(
            GRANT_T.c.ref,
            INST_T.c.grant_id,
            INST_T.c.seq,
            INST_T.c.due_on,
            INST_T.c.amount_pence,
            INST_T.c.repaid_pence,
        )
        .join(GRANT_T, GRANT_T.c.id == INST_T.c.grant_id)
        .where(INST_T.c.due_on < today, INST_T.c.repaid_pence < INST_T.c.amount_pence)
        .order_by(INST_T.c.due_on, GRANT_T.c.ref, INST_T.c.seq)
    )
    if grant_id is not None:
        q = q.where(INST_T.c.grant_id == grant_id)
    return [
        {
            "grant": r.ref,
            "grant_id": r.grant_id,
            "seq": r.seq,
            "due_on": r.due_on.isoformat(),
            "amount_pence": r.amount_pence,
            "repaid_pence": r.repaid_pence,
            "outstanding_pence": r.amount_pence - r.repaid_pence,
            "days_late": (today - r.due_on).days,
        }
        for r in conn.execute(q)
    ]
