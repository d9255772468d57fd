"""The programme dashboard: pots, and per partnership (a grant's accountable
body) what was awarded and paid, savings delivered against anticipated, and
late returns.

    programme_dashboard(conn, today, programme_id=None) -> dict

Plain dicts, amounts in pence, in a fixed number of queries (six) however
many grants and returns there are. Savings per grant are its latest accepted
savings return with a period ending on or before ``today`` (the figures are
cumulative, to date), summed per partnership; a grant with no accepted savings
return counts nothing. A return is late when it is due or queried and its due
date is before ``today`` (as ``quorum returns late``); cancelled grants are
left out of grants, awarded, savings and late returns (``paid_pence``, net of
money recovered or repaid, counts every grant, as the pots do).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.read.savings import to_date_by_grant
from engine.store.ledger import grant_lines, ledger
from engine.store.models import Grant, Organisation, Pot, Return

Reader = Session | Connection

GRANT = Grant.__table__
ORG = Organisation.__table__
POT = Pot.__table__
RET = Return.__table__
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


def _grants(conn: Reader, programme_id: int | None) -> list[Any]:
    q = (
        select(GRANT.c.id, GRANT.c.state, GRANT.c.accountable_body_id, ORG.c.name)
        .join(ORG, ORG.c.id == GRANT.c.accountable_body_id)
        .join(POT, POT.c.id == GRANT.c.pot_id)
    )
    if programme_id is not None:
        q = q.where(POT.c.programme_id == programme_id)
    return list(conn.execute(q))


def _latest_savings(conn: Reader, today: dt.date) -> dict[int, tuple[int, int]]:
    """grant id -> (delivered, anticipated): delivered to date as the accepted returns'
    schedule reads them (per period or running totals: engine/read/savings.py, issue 13),
    anticipated as the latest accepted return states it."""
    return to_date_by_grant(conn, today)


def _late_returns(conn: Reader, today: dt.date) -> dict[int, int]:
    """grant id -> its late returns."""
    return {
        r.grant_id: int(r.late)
        for r in conn.execute(
            select(RET.c.grant_id, func.count().label("late"))
            .where(RET.c.state.in_(OUTSTANDING_RETURN), RET.c.due_on < today)
            .group_by(RET.c.grant_id)
        )
    }


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
    grants = _grants(conn, programme_id)
    money = grant_lines(conn) if grants else {}
    savings = _latest_savings(conn, today) if grants else {}
    late = _late_returns(conn, today) if grants else {}
    by_body: dict[str, dict] = {}
    for g in grants:
        row = by_body.setdefault(
            g.name, {"partnership": g.name, **{k: 0 for k in PARTNERSHIP_KEYS}}
        )
        grant_line = money.get(g.id)
        if grant_line is not None:
            row["paid_pence"] += grant_line.paid_pence
        if g.state == "cancelled":
            continue
        row["grants"] += 1
        if grant_line is not None:
            row["awarded_pence"] += grant_line.awarded_pence
        delivered, anticipated = savings.get(g.id, (0, 0))
        row["savings_delivered_pence"] += delivered
        row["savings_anticipated_pence"] += anticipated
        row["late_returns"] += late.get(g.id, 0)
    partnerships = sorted(by_body.values(), key=lambda r: r["partnership"].lower())
    return {
        "as_of": today.isoformat(),
        "pots": pots,
        "pot_totals": {k: sum(p[k] for p in pots) for k in POT_KEYS},
        "partnerships": partnerships,
        "partnership_totals": {k: sum(p[k] for p in partnerships) for k in PARTNERSHIP_KEYS},
    }
