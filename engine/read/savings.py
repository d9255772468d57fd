"""Savings delivered, per period and to date, per grant, council, partnership,
programme or any group a target counts (issue 13; docs/returns.md "Savings as
reported").

Only **accepted** savings returns count, each at its figure as it stands (the
latest restatement, else as reported), read the way its schedule declared
when it was submitted (``grant_return.reading``); the two views are derived
by :func:`engine.domain.savings_views.derive`, so a group's to-date total is
always the sum of its grants' per-period savings up to the date. Every total
comes with the words saying how it was derived.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.money import format_pence
from engine.domain.savings_views import PeriodSavings, Reported, derive, describe, period_label
from engine.domain.words import short_date
from engine.store.models import (
    Deposit,
    DepositCount,
    DepositShare,
    Grant,
    Organisation,
    OrgKind,
    Pot,
    Programme,
    Return,
)

R = Return.__table__
G = Grant.__table__
ORG = Organisation.__table__
POT = Pot.__table__
PROG = Programme.__table__
DEP = Deposit.__table__
COUNT = DepositCount.__table__
SHARE = DepositShare.__table__

Reader = Session | Connection

__all__ = [
    "SavingsScope",
    "deposit_scope",
    "grant_page_savings",
    "grant_savings",
    "savings_by",
    "scope_grants",
    "to_date_by_grant",
    "total_for",
]


@dataclass(frozen=True)
class SavingsScope:
    """What a savings target counts: grants (ids), councils (organisation ids: their
    grants), a partnership (organisation id: the grants to it), within a programme
    (its id; alone: every grant of the programme)."""

    grants: tuple[int, ...] = ()
    councils: tuple[int, ...] = ()
    partnership: int | None = None
    programme_id: int | None = None
    labels: tuple[str, ...] = field(default=(), compare=False)  # for people: what it counts

    @property
    def empty(self) -> bool:
        return not (self.grants or self.councils or self.partnership or self.programme_id)


def _kind_words(periods: Sequence[PeriodSavings]) -> str:
    if not periods:
        return "quarterly"
    p = periods[0]
    months = (p.period_end.year - p.period_start.year) * 12 + p.period_end.month
    months -= p.period_start.month - 1
    return "half-yearly" if months == 6 else "quarterly" if months == 3 else "savings"


def _accepted(
    conn: Reader, grant_ids: Iterable[int], by: dt.date | None
) -> dict[int, list[Reported]]:
    ids = sorted(set(grant_ids))
    out: dict[int, list[Reported]] = defaultdict(list)
    if not ids:
        return out
    q = select(
        R.c.grant_id, R.c.ref, R.c.period_start, R.c.period_end, R.c.reading,
        R.c.savings_delivered_pence, R.c.restated_delivered_pence, R.c.restatements,
    ).where(R.c.kind == "savings", R.c.state == "accepted", R.c.grant_id.in_(ids))  # fmt: skip
    if by is not None:
        q = q.where(R.c.period_end <= by)
    for r in conn.execute(q.order_by(R.c.grant_id, R.c.period_end)):
        out[r.grant_id].append(
            Reported(
                r.ref, r.period_start, r.period_end, r.reading,
                int(r.savings_delivered_pence or 0),
                None if r.restated_delivered_pence is None else int(r.restated_delivered_pence),
                int(r.restatements or 0),
            )
        )  # fmt: skip
    return out


def _grant_view(ref: str, periods: list[PeriodSavings]) -> dict[str, Any]:
    total = periods[-1].to_date_pence if periods else 0
    return {
        "grant": ref,
        "to_date_pence": total,
        "per_period_sum_pence": sum(p.per_period_pence for p in periods),
        "periods": [p.to_dict() for p in periods],
        "last_period_end": periods[-1].period_end.isoformat() if periods else None,
        "derivation": describe(periods, _kind_words(periods)),
    }


def grant_savings(conn: Reader, grant_id: int, by: dt.date | None = None) -> dict[str, Any]:
    """One grant's accepted savings in both views (up to ``by``, if given):
    ``periods`` (each with ``per_period_pence`` and ``to_date_pence``), ``to_date_pence``
    and ``derivation`` ("sum of 4 quarterly returns, Q1–Q4 2012/13, one restated")."""
    ref = conn.execute(select(G.c.ref).where(G.c.id == grant_id)).scalar() or ""
    return _grant_view(ref, derive(_accepted(conn, [grant_id], by).get(grant_id, [])))


def to_date_by_grant(conn: Reader, by: dt.date | None = None) -> dict[int, tuple[int, int]]:
    """grant id -> (savings delivered to date, savings anticipated as its latest return
    states them), from its accepted returns up to ``by``; one query."""
    q = select(
        R.c.grant_id, R.c.ref, R.c.period_start, R.c.period_end, R.c.reading,
        R.c.savings_delivered_pence, R.c.restated_delivered_pence, R.c.restatements,
        R.c.savings_anticipated_pence,
    ).where(R.c.kind == "savings", R.c.state == "accepted")  # fmt: skip
    if by is not None:
        q = q.where(R.c.period_end <= by)
    reports: dict[int, list[Reported]] = defaultdict(list)
    anticipated: dict[int, int] = {}
    for r in conn.execute(q.order_by(R.c.grant_id, R.c.period_end)):
        reports[r.grant_id].append(
            Reported(
                r.ref, r.period_start, r.period_end, r.reading,
                int(r.savings_delivered_pence or 0),
                None if r.restated_delivered_pence is None else int(r.restated_delivered_pence),
                int(r.restatements or 0),
            )
        )  # fmt: skip
        anticipated[r.grant_id] = int(r.savings_anticipated_pence or 0)
    return {
        gid: (derive(rows)[-1].to_date_pence, anticipated[gid]) for gid, rows in reports.items()
    }


def scope_grants(conn: Reader, scope: SavingsScope) -> list[Any]:
    """The grants a scope counts (not cancelled), by ref: rows of id, ref, body."""
    q = (
        select(G.c.id, G.c.ref, ORG.c.name.label("body"))
        .join(ORG, ORG.c.id == G.c.accountable_body_id)
        .join(POT, POT.c.id == G.c.pot_id)
        .where(G.c.state != "cancelled")
    )
    chosen: list[ColumnElement[bool]] = []
    if scope.grants:
        chosen.append(G.c.id.in_(scope.grants))
    bodies = [*scope.councils, *([scope.partnership] if scope.partnership else [])]
    if bodies:
        in_bodies: ColumnElement[bool] = G.c.accountable_body_id.in_(bodies)
        if scope.programme_id is not None:
            in_bodies = in_bodies & (POT.c.programme_id == scope.programme_id)
        chosen.append(in_bodies)
    if not chosen:
        if scope.programme_id is None:
            return []
        chosen.append(POT.c.programme_id == scope.programme_id)
    return list(conn.execute(q.where(or_(*chosen)).order_by(G.c.ref)))


def total_for(conn: Reader, scope: SavingsScope, by: dt.date) -> dict[str, Any]:
    """The savings a target counts, to ``by``: the sum over the scope's grants of
    their accepted per-period savings in periods ending on or before ``by``; with
    each grant's periods and the words of the derivation."""
    grants = scope_grants(conn, scope)
    reported = _accepted(conn, [g.id for g in grants], by)
    views = []
    for g in grants:
        view = _grant_view(g.ref, derive(reported.get(g.id, [])))
        view["body"] = g.body
        views.append(view)
    total = sum(v["to_date_pence"] for v in views)
    counted = [v for v in views if v["periods"]]
    if not grants:
        words = "no grants in scope"
    elif not counted:
        words = f"no accepted savings return for a period ending by {short_date(by)}"
    else:
        words = "; ".join(
            f"{v['grant']} ({v['body']}) {format_pence(v['to_date_pence'])}: {v['derivation']}"
            for v in counted
        )
    return {
        "counts": list(scope.labels),
        "grants": views,
        "delivered_pence": total,
        "per_period_sum_pence": sum(v["per_period_sum_pence"] for v in views),
        "by": by.isoformat(),
        "derivation": words,
    }


def savings_by(
    conn: Reader, group: str, by: dt.date | None = None, programme_id: int | None = None
) -> list[dict[str, Any]]:
    """Savings delivered per ``group`` (``grant``, ``council``, ``partnership`` or
    ``programme``): each row's name, ``to_date_pence``, the per-period figures summed
    by period, and how it was derived. Councils are the accountable bodies that are
    not partnerships; partnerships, those that are; ``body``: every accountable body.
    ``programme_id``: that programme's grants only."""
    if group not in ("grant", "council", "partnership", "programme", "body"):
        raise ValueError(f"savings_by: group {group!r}")
    q = (
        select(G.c.id, G.c.ref, ORG.c.name.label("body"), ORG.c.kind, PROG.c.name.label("prog"))
        .join(ORG, ORG.c.id == G.c.accountable_body_id)
        .join(POT, POT.c.id == G.c.pot_id)
        .join(PROG, PROG.c.id == POT.c.programme_id)
        .where(G.c.state != "cancelled")
        .order_by(G.c.ref)
    )
    if programme_id is not None:
        q = q.where(POT.c.programme_id == programme_id)
    rows = conn.execute(q).all()
    partnership = OrgKind.SUB_REGIONAL_PARTNERSHIP.value
    if group == "council":
        rows = [r for r in rows if r.kind != partnership]
    elif group == "partnership":
        rows = [r for r in rows if r.kind == partnership]
    reported = _accepted(conn, [r.id for r in rows], by)
    groups: dict[str, list[tuple[str, list[PeriodSavings]]]] = defaultdict(list)
    for r in rows:
        name = {"grant": r.ref, "programme": r.prog}.get(group, r.body)
        groups[name].append((r.ref, derive(reported.get(r.id, []))))
    out = []
    for name, members in sorted(groups.items(), key=lambda kv: kv[0].lower()):
        per: dict[tuple[dt.date, dt.date], int] = defaultdict(int)
        for _, periods in members:
            for p in periods:
                per[(p.period_start, p.period_end)] += p.per_period_pence
        running = 0
        series = []
        for (start, end), pence in sorted(per.items(), key=lambda kv: kv[0][1]):
            running += pence
            series.append({"period": period_label(start, end), "period_end": end.isoformat(),
                           "per_period_pence": pence, "to_date_pence": running})  # fmt: skip
        with_returns = [(ref, ps) for ref, ps in members if ps]
        words = (
            "; ".join(f"{ref}: {describe(ps, _kind_words(ps))}" for ref, ps in with_returns)
            if group != "grant"
            else (describe(with_returns[0][1], _kind_words(with_returns[0][1]))
                  if with_returns else "no accepted savings returns")
        )  # fmt: skip
        out.append({
            group: name,
            "grants": len(members),
            "to_date_pence": running,
            "periods": series,
            "derivation": words or "no accepted savings returns",
        })  # fmt: skip
    return out


def deposit_scope(conn: Reader, dep: Any, programme_id: int) -> SavingsScope:
    """What a deposit counts, as stored (``deposit_count``); a deposit lodged before
    issue 13 counts its grant, or (against a pot only) its partners' grants from that pot."""
    rows = conn.execute(
        select(COUNT.c.kind, COUNT.c.grant_id, COUNT.c.organisation_id, G.c.ref, ORG.c.name)
        .outerjoin(G, G.c.id == COUNT.c.grant_id)
        .outerjoin(ORG, ORG.c.id == COUNT.c.organisation_id)
        .where(COUNT.c.deposit_id == dep.id)
        .order_by(COUNT.c.id)
    ).all()
    if not rows:
        if dep.grant_id is not None:
            return SavingsScope(grants=(dep.grant_id,), labels=("its grant",))
        ids: Sequence[int] = conn.execute(
            select(G.c.id).where(
                G.c.pot_id == dep.pot_id,
                G.c.accountable_body_id.in_(
                    select(SHARE.c.organisation_id).where(SHARE.c.deposit_id == dep.id)
                ),
            )
        ).scalars().all()
        return SavingsScope(grants=tuple(ids), labels=("the partners' grants from its pot",))
    partnership = next((r.organisation_id for r in rows if r.kind == "partnership"), None)
    return SavingsScope(
        grants=tuple(r.grant_id for r in rows if r.kind == "grant"),
        councils=tuple(r.organisation_id for r in rows if r.kind == "council"),
        partnership=partnership,
        programme_id=programme_id,
        labels=tuple(f"{r.kind} {r.ref if r.kind == 'grant' else r.name}" for r in rows),
    )


def grant_page_savings(conn: Reader, grant_id: int, today: dt.date) -> dict[str, Any]:
    """What the grant's page shows of savings: both views of its accepted returns with
    how they were derived, and the deposits whose target counts it — settled ones with
    their stored calculation, open ones with the savings counted so far."""
    grant = conn.execute(
        select(G.c.id, G.c.accountable_body_id).where(G.c.id == grant_id)
    ).one()
    body = grant.accountable_body_id
    counting = select(COUNT.c.deposit_id).where(
        (COUNT.c.grant_id == grant_id) | (COUNT.c.organisation_id == body)
    )
    deps = conn.execute(
        select(DEP, POT.c.programme_id)
        .join(POT, POT.c.id == DEP.c.pot_id)
        .where((DEP.c.grant_id == grant_id) | DEP.c.id.in_(counting))
        .order_by(DEP.c.id)
    ).all()
    deposits = []
    for d in deps:
        scope = deposit_scope(conn, d, d.programme_id)
        if grant_id not in {g.id for g in scope_grants(conn, scope)}:
            continue
        deposits.append(_deposit_line(conn, d, today))
    return {"view": grant_savings(conn, grant_id), "deposits": deposits}


def _deposit_line(conn: Reader, d: Any, today: dt.date) -> dict[str, Any]:
    scope = deposit_scope(conn, d, d.programme_id)
    if d.settlement:
        words = str(d.settlement.get("explanation", ""))
        delivered = int(d.settlement.get("delivered_pence", 0))
    else:
        counted = total_for(conn, scope, min(today, d.target_on))
        delivered = counted["delivered_pence"]
        words = (
            f"so far {format_pence(delivered)} of {format_pence(d.target_pence)} by "
            f"{short_date(d.target_on)} ({counted['derivation']})"
        )
    return {
        "ref": d.ref, "state": d.state, "total_pence": d.total_pence,
        "target_pence": d.target_pence, "target_on": d.target_on.isoformat(),
        "counts": list(scope.labels), "delivered_pence": delivered, "calculation": words,
    }  # fmt: skip


def savings_paper(conn: Reader, programme_id: int, as_of: dt.date) -> dict[str, Any]:
    """For a board paper: the programme's savings delivered to ``as_of`` per accountable
    body (each with how it was derived), and its deposits with their calculation."""
    deps = conn.execute(
        select(DEP, POT.c.programme_id)
        .join(POT, POT.c.id == DEP.c.pot_id)
        .where(POT.c.programme_id == programme_id)
        .order_by(DEP.c.id)
    ).all()
    bodies = [r for r in savings_by(conn, "body", as_of, programme_id) if r["periods"]]
    return {
        "savings_by_body": bodies,
        "savings_total_pence": sum(r["to_date_pence"] for r in bodies),
        "deposits": [_deposit_line(conn, d, as_of) for d in deps],
    }
