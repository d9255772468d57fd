"""The pot ledger, derived from money movements and never stored.

For every pot:
    allocated = Σ allocate + Σ forfeit                        (forfeited deposits add to a pot)
    committed = Σ commit − Σ release − Σ recover − Σ repay   (held by grants)
    paid      = Σ pay − Σ recover − Σ repay                  (drawn, net of money back)
    available = allocated − committed
Identity (tested): allocated = committed + available, 0 ≤ paid ≤ committed,
available ≥ 0.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, cast

from sqlalchemy import bindparam, func, insert, literal_column, null, select, union_all
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.store.models import MoneyMovement, MovementKind, Payment, Pot, Programme
from engine.store.rawsql import RawStatement

# Core tables: typed columns, and the ids read back are never None
_POT = Pot.__table__
_PROG = Programme.__table__
_MOVE = MoneyMovement.__table__
_PAY = Payment.__table__
# built once: every money command books through it; straight to the driver
# (store/rawsql.py), the new row's id given back by RETURNING (SQLite >= 3.35, PostgreSQL)
_BOOK = RawStatement(insert(_MOVE).values({
    c: bindparam(c)
    for c in ("pot_id", "kind", "amount_pence", "booked_on", "item_ref", "grant_id", "note")
}).returning(_MOVE.c.id))  # fmt: skip


@dataclass
class PotLedger:
    pot_id: int
    name: str
    programme: str
    allocated_pence: int = 0
    committed_pence: int = 0
    paid_pence: int = 0
    released_pence: int = 0
    recovered_pence: int = 0
    repaid_pence: int = 0
    forfeited_pence: int = 0

    @property
    def available_pence(self) -> int:
        return self.allocated_pence - self.committed_pence

    def identity_holds(self) -> bool:
        return (
            self.allocated_pence == self.committed_pence + self.available_pence
            and 0 <= self.paid_pence <= self.committed_pence
            and self.available_pence >= 0
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["available_pence"] = self.available_pence
        return d


def book(
    conn: Connection,
    pot_id: int,
    kind: MovementKind,
    amount_pence: int,
    booked_on: dt.date,
    item_ref: str | None,
    grant_id: int | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Insert one money movement; return what the audit event records of it
    (its id and money fields), from which the ledgers are re-derived
    (engine/read/reconcile.py). Handlers book through ``UnitOfWork.book``."""
    movement_id = int(_BOOK.execute(conn, {
        "pot_id": pot_id, "kind": kind.value, "amount_pence": amount_pence,
        "booked_on": booked_on, "item_ref": item_ref, "grant_id": grant_id, "note": note,
    }).fetchone()[0])  # fmt: skip
    return {
        "id": movement_id, "pot_id": pot_id, "kind": kind.value, "amount_pence": amount_pence,
        "booked_on": booked_on.isoformat(), "item_ref": item_ref, "grant_id": grant_id,
    }  # fmt: skip


def ledger(
    session: Session | Connection, programme_id: int | None = None, pot_ids: list[int] | None = None
) -> list[PotLedger]:
    """Ledger lines for every pot (of one programme, or some pots), in pot order."""
    q = select(_POT.c.id, _POT.c.name, _PROG.c.name).join(_PROG, _PROG.c.id == _POT.c.programme_id)
    if programme_id is not None:
        q = q.where(_POT.c.programme_id == programme_id)
    if pot_ids is not None:
        q = q.where(_POT.c.id.in_(pot_ids))
    pots = {
        pid: PotLedger(pid, name, prog)
        for pid, name, prog in cast(
            Iterable[tuple[int, str, str]], session.execute(q.order_by(_POT.c.id))
        )
    }
    if not pots:
        return []
    sums: dict[int, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(_MOVE.c.pot_id, _MOVE.c.kind, func.sum(_MOVE.c.amount_pence))
        .where(_MOVE.c.pot_id.in_(list(pots)))
        .group_by(_MOVE.c.pot_id, _MOVE.c.kind)
    )
    for pot_id, kind, total in cast(Iterable[tuple[int, str, int | None]], rows):
        sums[pot_id][kind] = int(total or 0)
    for pot_id, line in pots.items():
        fill_pot_line(line, sums.get(pot_id, {}))
    return list(pots.values())


def fill_pot_line(line: PotLedger, s: Mapping[str, int]) -> None:
    """A pot's ledger line from the sums of its movements by kind (pence): the one
    arithmetic the ledger and ``quorum audit verify`` (engine/read/reconcile.py) share."""
    back = s.get(MovementKind.RECOVER, 0) + s.get(MovementKind.REPAY, 0)
    line.forfeited_pence = s.get(MovementKind.FORFEIT, 0)
    line.allocated_pence = s.get(MovementKind.ALLOCATE, 0) + line.forfeited_pence
    line.released_pence = s.get(MovementKind.RELEASE, 0)
    line.recovered_pence = s.get(MovementKind.RECOVER, 0)
    line.repaid_pence = s.get(MovementKind.REPAY, 0)
    line.committed_pence = s.get(MovementKind.COMMIT, 0) - line.released_pence - back
    line.paid_pence = s.get(MovementKind.PAY, 0) - back


def pot_line(session: Session | Connection, pot_id: int) -> PotLedger:
    return ledger(session, pot_ids=[pot_id])[0]


# one pot's sums by kind: text and integers, straight to the driver (store/rawsql.py)
_POT_SUMS = RawStatement(
    select(_MOVE.c.kind, func.sum(_MOVE.c.amount_pence))
    .where(_MOVE.c.pot_id == bindparam("pot_id"))
    .group_by(_MOVE.c.kind)
)


def pot_line_named(conn: Connection, pot_id: int, name: str, programme: str) -> PotLedger:
    """:func:`pot_line` of a pot whose name and programme the caller has (the cached
    directory): one statement, its movements' sums."""
    line = PotLedger(pot_id, name, programme)
    fill_pot_line(line, {
        kind: int(total or 0) for kind, total in _POT_SUMS.execute(conn, {"pot_id": pot_id})
    })  # fmt: skip
    return line


@dataclass
class GrantLedger:
    """One grant's money, derived from its movements like the pot's:
    committed = awarded − released − recovered − repaid (still held for it),
    paid = Σ pay − recovered − repaid (drawn, net of money back),
    unpaid = committed − paid (what may still be paid out).
    Invariants (tested): 0 ≤ paid ≤ committed ≤ awarded."""

    grant_id: int
    awarded_pence: int = 0
    paid_out_pence: int = 0  # Σ pay, before any money came back
    released_pence: int = 0
    recovered_pence: int = 0
    repaid_pence: int = 0

    @property
    def committed_pence(self) -> int:
        return self.awarded_pence - self.released_pence - self.recovered_pence - self.repaid_pence

    @property
    def paid_pence(self) -> int:
        return self.paid_out_pence - self.recovered_pence - self.repaid_pence

    @property
    def unpaid_pence(self) -> int:
        return self.committed_pence - self.paid_pence

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            committed_pence=self.committed_pence,
            paid_pence=self.paid_pence,
            unpaid_pence=self.unpaid_pence,
        )
        return d


def grant_lines(
    conn: Session | Connection, grant_ids: list[int] | None = None
) -> dict[int, GrantLedger]:
    """Ledger lines for grants (all, or some), by grant id. ``awarded`` is the
    grant's commit movements, so a reversal's release shows as released."""
    q = (
        select(_MOVE.c.grant_id, _MOVE.c.kind, func.sum(_MOVE.c.amount_pence))
        .where(_MOVE.c.grant_id.is_not(None))
        .group_by(_MOVE.c.grant_id, _MOVE.c.kind)
    )
    if grant_ids is not None:
        q = q.where(_MOVE.c.grant_id.in_(grant_ids))
    out: dict[int, GrantLedger] = {gid: GrantLedger(gid) for gid in grant_ids or []}
    for grant_id, kind, total in cast(Iterable[tuple[int, str, int | None]], conn.execute(q)):
        add_movements(out.setdefault(grant_id, GrantLedger(grant_id)), kind, int(total or 0))
    return out


def add_movements(line: GrantLedger, kind: str, amount: int) -> None:
    """A grant's (or grants') sum of movements of one kind, into its line."""
    if kind == MovementKind.COMMIT:
        line.awarded_pence = amount
    elif kind == MovementKind.PAY:
        line.paid_out_pence = amount
    elif kind == MovementKind.RELEASE:
        line.released_pence = amount
    elif kind == MovementKind.RECOVER:
        line.recovered_pence = amount
    elif kind == MovementKind.REPAY:
        line.repaid_pence = amount


def grant_line(conn: Session | Connection, grant_id: int) -> GrantLedger:
    """:func:`grant_lines` of one grant (a statement built once: commands ask per grant)."""
    line = GrantLedger(grant_id)
    for kind, total in cast(
        Iterable[tuple[str, int | None]], conn.execute(_GRANT_LINE, {"grant_id": grant_id})
    ):
        add_movements(line, kind, int(total or 0))
    return line


_GRANT_LINE = (
    select(_MOVE.c.kind, func.sum(_MOVE.c.amount_pence))
    .where(_MOVE.c.grant_id == bindparam("grant_id"))
    .group_by(_MOVE.c.kind)
)


# a grant's money and what was paid on each of its milestones, in one statement: the
# movements' sums by kind ("m", kind, total) then the payments' by milestone ("p",
# milestone id, total); text and integers, so straight to the driver (store/rawsql.py)
_GRANT_MONEY = RawStatement(
    union_all(
        select(literal_column("'m'"), _MOVE.c.kind, null(), func.sum(_MOVE.c.amount_pence))
        .where(_MOVE.c.grant_id == bindparam("grant_id"))
        .group_by(_MOVE.c.kind),
        select(literal_column("'p'"), null(), _PAY.c.milestone_id, func.sum(_PAY.c.amount_pence))
        .where(_PAY.c.grant_id == bindparam("grant_id"))
        .group_by(_PAY.c.milestone_id),
    )
)


# the kinds of movement a grant's line sums (_add)
_GRANT_KINDS = (MovementKind.COMMIT, MovementKind.PAY, MovementKind.RELEASE,
                MovementKind.RECOVER, MovementKind.REPAY)  # fmt: skip


def grant_money_columns(grant_id: Any, milestone_id: Any) -> list[Any]:
    """Columns for a read of a grant's row with its milestones' (``grant_id`` and
    ``milestone_id``: those rows' columns): the grant's movements summed by kind
    (``money_<kind>``) and what was paid on the row's milestone
    (``money_milestone_paid``), each through its index. :func:`grant_money_from`
    makes the grant's line and its paid-by-milestone of them, as :func:`grant_money`
    reads them in a statement of their own."""
    cols: list[Any] = [
        select(func.sum(_MOVE.c.amount_pence))
        .where(_MOVE.c.grant_id == grant_id, _MOVE.c.kind == kind.value)
        .scalar_subquery()
        .label(f"money_{kind.value}")
        for kind in _GRANT_KINDS
    ]
    cols.append(
        select(func.sum(_PAY.c.amount_pence))
        .where(_PAY.c.grant_id == grant_id, _PAY.c.milestone_id == milestone_id)
        .scalar_subquery()
        .label("money_milestone_paid")
    )
    return cols


def grant_money_from(
    grant_id: int, sums: Any, paid: Iterable[tuple[int, int | None]]
) -> tuple[GrantLedger, dict[int, int]]:
    """:func:`grant_money` from the columns of :func:`grant_money_columns`: ``sums``
    a row with the ``money_<kind>`` columns, ``paid`` (milestone id, its
    ``money_milestone_paid``) pairs."""
    line = GrantLedger(grant_id)
    for kind in _GRANT_KINDS:
        add_movements(line, kind, int(getattr(sums, f"money_{kind.value}") or 0))
    return line, {mid: int(total) for mid, total in paid if total is not None}


def grant_money(conn: Connection, grant_id: int) -> tuple[GrantLedger, dict[int, int]]:
    """:func:`grant_line` of one grant and the pence paid on each of its milestones
    (milestone id -> pence), read together: a payment, a verification and a closure
    need both."""
    line = GrantLedger(grant_id)
    paid: dict[int, int] = {}
    for tag, kind, milestone_id, total in _GRANT_MONEY.execute(conn, {"grant_id": grant_id}):
        if tag == "m":
            add_movements(line, kind, int(total or 0))
        elif milestone_id is not None:
            paid[int(milestone_id)] = int(total or 0)
    return line, paid
