"""The programme dashboard: pots, and per partnership (a grant's accountable
body) what was awarded and paid, savings delivered against anticipated, and
late returns.

    programme_dashboard(conn, today, programme_id=None) -> dict

Plain dicts, amounts in pence, in a fixed number of queries however many
grants and returns there are, summed by partnership in SQL. Savings per
grant are its latest accepted savings return with a period ending on or
before ``today`` (the figures are cumulative, to date), summed per
partnership; a grant with no accepted savings return counts nothing. A
return is late when it is due or queried and its due date is before
``today`` (as ``quorum returns late``); cancelled grants are left out of
grants, awarded, savings and late returns (``paid_pence``, net of money
recovered or repaid, counts every grant, as the pots do).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.read.savings import to_date_by_grant
from engine.store.ledger import GrantLedger, add_movements, ledger
from engine.store.models import Grant, MoneyMovement, Organisation, Pot, Return

Reader = Session | Connection

GRANT = Grant.__table__
ORG = Organisation.__table__
POT = Pot.__table__
RET = Return.__table__
MOVE = MoneyMovement.__table__
OUTSTANDING_RETURN = ("due", "queried")  # as rules.reminders.OUTSTANDING

POT_KEYS = (
    "allocated_pence",
    "committed_pence",
    "paid_pence",
    "released_pence",
    "recovered_pence",
    "repaid_pence",
    "available_pence",
)
PARTNERSHIP_KEYS = (
    "grants",
    "awarded_pence",
    "paid_pence",
    "savings_delivered_pence",
    "savings_anticipated_pence",
    "late_returns",
)


def _in_programme(q: Any, programme_id: int | None) -> Any:
    if programme_id is None:
        return q
    return q.join(POT, POT.c.id == GRANT.c.pot_id).where(POT.c.programme_id == programme_id)


_CANCELLED = (GRANT.c.state == "cancelled").label("cancelled")


def _by_body(conn: Reader, programme_id: int | None) -> dict[int, dict]:
    """body id -> its row: name, grants (cancelled left out), awarded and paid
    (paid counts cancelled grants too), from sums in SQL by body: 100,000 grants
    are never read one by one (the dashboard's peak was 66 MB at 100,000)."""
    rows: dict[int, dict] = {}
    counted = _in_programme(
        select(GRANT.c.accountable_body_id, ORG.c.name, _CANCELLED, func.count().label("n"))
        .join(ORG, ORG.c.id == GRANT.c.accountable_body_id), programme_id,
    ).group_by(GRANT.c.accountable_body_id, ORG.c.name, _CANCELLED)
    for r in conn.execute(counted):
        row = rows.setdefault(r.accountable_body_id, {"partnership": r.name,
                                                      **{k: 0 for k in PARTNERSHIP_KEYS}})
        if not r.cancelled:
            row["grants"] += int(r.n)
    money = _in_programme(
        select(GRANT.c.accountable_body_id, _CANCELLED, MOVE.c.kind,
               func.sum(MOVE.c.amount_pence).label("total"))
        .join(MOVE, MOVE.c.grant_id == GRANT.c.id), programme_id,
    ).group_by(GRANT.c.accountable_body_id, _CANCELLED, MOVE.c.kind)
    lines: dict[tuple[int, bool], GrantLedger] = {}
    for r in conn.execute(money):
        line = lines.setdefault((r.accountable_body_id, bool(r.cancelled)), GrantLedger(0))
        add_movements(line, r.kind, int(r.total or 0))
    for (body, cancelled), line in lines.items():
        rows[body]["paid_pence"] += line.paid_pence
        if not cancelled:
            rows[body]["awarded_pence"] += line.awarded_pence
    return rows


def _late_returns(conn: Reader, today: dt.date, programme_id: int | None) -> dict[int, int]:
    """body id -> the late returns of its grants (cancelled grants left out)."""
    q = _in_programme(
        select(GRANT.c.accountable_body_id, func.count().label("late"))
        .join(RET, RET.c.grant_id == GRANT.c.id)
        .where(RET.c.state.in_(OUTSTANDING_RETURN), RET.c.due_on < today,
               GRANT.c.state != "cancelled"), programme_id,
    ).group_by(GRANT.c.accountable_body_id)
    return {r.accountable_body_id: int(r.late) for r in conn.execute(q)}


def _savings(conn: Reader, today: dt.date, programme_id: int | None) -> dict[int, tuple[int, int]]:
    """body id -> (delivered, anticipated) summed over its grants (cancelled left
    out): delivered to date as the accepted returns' schedule reads them (per
    period or running totals: engine/read/savings.py, issue 13), anticipated as
    the latest accepted return states it."""
    by_grant = to_date_by_grant(conn, today)
    if not by_grant:
        return {}
    with_savings = select(RET.c.grant_id).where(RET.c.kind == "savings",
                                                RET.c.state == "accepted")
    out: dict[int, tuple[int, int]] = {}
    for g in conn.execute(_in_programme(
        select(GRANT.c.id, GRANT.c.accountable_body_id)
        .where(GRANT.c.id.in_(with_savings), GRANT.c.state != "cancelled"), programme_id,
    )):
        delivered, anticipated = by_grant.get(g.id, (0, 0))
        was = out.get(g.accountable_body_id, (0, 0))
        out[g.accountable_body_id] = (was[0] + delivered, was[1] + anticipated)
    return out


def programme_dashboard(conn: Reader, today: dt.date, programme_id: int | None = None) -> dict:
    """Pots and partnerships as of ``today`` (see the module docstring).

    Returns ``{"as_of", "pots": [...], "pot_totals": {...}, "partnerships": [...],
    "partnership_totals": {...}}``; a pot has ``name``, ``programme`` and the
    ``POT_KEYS``; a partnership has ``partnership`` (the body's name) and the
    ``PARTNERSHIP_KEYS``, sorted by name."""
    pots = []
    for line in ledger(conn, programme_id=programme_id):  # 2 queries
        d = line.to_dict()
        pots.append({"name": line.name, "programme": line.programme,
                     **{k: d[k] for k in POT_KEYS}})  # fmt: skip
    by_body = _by_body(conn, programme_id)
    late = _late_returns(conn, today, programme_id) if by_body else {}
    savings = _savings(conn, today, programme_id) if by_body else {}
    for body, row in by_body.items():
        row["late_returns"] = late.get(body, 0)
        row["savings_delivered_pence"], row["savings_anticipated_pence"] = \
            savings.get(body, (0, 0))
    partnerships = sorted(by_body.values(), key=lambda r: r["partnership"].lower())
    return {
        "as_of": today.isoformat(),
        "pots": pots,
        "pot_totals": {k: sum(p[k] for p in pots) for k in POT_KEYS},
        "partnerships": partnerships,
        "partnership_totals": {k: sum(p[k] for p in partnerships) for k in PARTNERSHIP_KEYS},
    }
