"""Human references for items: B-0001 (bid), G-0001 (grant), ..."""

from __future__ import annotations

import re
from functools import cache

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from engine.rawsql import RawStatement

PREFIX = {
    "bid": "B",
    "grant": "G",
    "delegated_decision": "DD",
    "round": "RD",
    "meeting": "M",
    "decision": "D",
    "deposit": "DEP",
    "recovery": "REC",
    "return": "RET",
    "programme_change": "PC",
}


def next_ref(conn: Connection, model: type[SQLModel], kind: str) -> str:
    """The next automatic reference: prefix and (highest id + 1).

    Unique without probing: writers are serialised (audit.lock_head), ids only
    grow, so max(id) + 1 exceeds every earlier automatic number; and explicit
    refs may not look automatic (see check_explicit_ref)."""
    n = (_max_id(model.__table__).execute(conn).fetchone()[0] or 0) + 1
    return f"{PREFIX[kind]}-{n:04d}"


def looks_automatic(ref: str, kind: str) -> bool:
    return re.fullmatch(rf"{re.escape(PREFIX[kind])}-\d+", ref.strip(), re.IGNORECASE) is not None


@cache
def _max_id(table: Table) -> RawStatement:
    """Built once per table; an integer result, so straight to the driver (engine/rawsql.py)."""
    return RawStatement(select(func.max(table.c.id)))
