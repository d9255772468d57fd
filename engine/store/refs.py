"""Human references for items: B-0001 (bid), G-0001 (grant), ..."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, select
from sqlalchemy.engine import Connection

from engine.domain.errors import ValidationError
from engine.store.models import TableModel
from engine.store.rawsql import RawStatement

PREFIX = {
    "bid": "B",
    "allocation": "AL",  # a bid row of kind allocation (handlers/allocations.py)
    "grant": "G",
    "delegated_decision": "DD",
    "round": "RD",
    "meeting": "M",
    "decision": "D",
    "deposit": "DEP",
    "recovery": "REC",
    "return": "RET",
    "programme_change": "PC",
    "payment": "P",
    "role_change": "RC",
    "risk": "RK",
    "accountable_body_change": "ABC",
    "advance_payment": "ADV",
}


def next_ref(conn: Connection, model: type[TableModel], kind: str) -> str:
    """The next automatic reference: prefix and (highest id + 1).

    Unique without probing: writers are serialised (audit.lock_head), ids only
    grow, so max(id) + 1 exceeds every earlier automatic number; and explicit
    refs may not look automatic (see check_explicit_ref)."""
    return ref_after(kind, _max_id(model.__table__).execute(conn).fetchone()[0])


def ref_after(kind: str, max_id: int | None) -> str:
    """:func:`next_ref` from the table's highest id, read by the caller in this
    transaction after the write lock (e.g. with the rows the command reads anyway)."""
    return f"{PREFIX[kind]}-{(max_id or 0) + 1:04d}"


def ref_for(
    conn: Connection, model: type[TableModel], kind: str, ref: str | None, command: str
) -> str:
    """The item's reference: the next automatic one, or the caller's own —
    refused if it is taken or looks automatic (which keeps next_ref probe-free)."""
    if not ref:
        return next_ref(conn, model, kind)
    if looks_automatic(ref, kind):
        raise ValidationError(
            f"{command}: ref: {ref!r} looks like an automatic reference "
            f"({PREFIX[kind]}-0001...); leave ref out to get one, or choose another",
            field="ref",
        )
    if conn.execute(_ref_taken(model.__table__), {"ref": ref}).first():
        raise ValidationError(f"{command}: ref: {ref!r} is already used", field="ref")
    return ref


@cache
def _ref_taken(table: Table) -> Select[Any]:
    return select(table.c.id).where(table.c.ref == bindparam("ref"))


def looks_automatic(ref: str, kind: str) -> bool:
    return re.fullmatch(rf"{re.escape(PREFIX[kind])}-\d+", ref.strip(), re.IGNORECASE) is not None


@cache
def _max_id(table: Table) -> RawStatement:
    """Built once per table; an integer result, so straight to the driver (store/rawsql.py)."""
    return RawStatement(select(func.max(table.c.id)))


def next_refs(conn: Connection, *items: tuple[type[TableModel], str]) -> list[str]:
    """:func:`next_ref` for several tables (model, kind) in one statement (a decision
    that makes a grant: the decision's ref and the grant's)."""
    tables = tuple(model.__table__ for model, _ in items)
    row = _max_ids(tables).execute(conn).fetchone()
    return [ref_after(kind, max_id) for (_, kind), max_id in zip(items, row, strict=True)]


@cache
def _max_ids(tables: tuple[Table, ...]) -> RawStatement:
    return RawStatement(select(*(select(func.max(t.c.id)).scalar_subquery() for t in tables)))
