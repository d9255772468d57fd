"""Human references for items: B-0001 (bid), G-0001 (grant), ..."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

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


def next_ref(session: Session, model: type[SQLModel], kind: str) -> str:
    """The next free reference. Safe because writers are serialised (see audit.lock_head)."""
    prefix = PREFIX[kind]
    n = (session.execute(select(func.max(model.id))).scalar() or 0) + 1
    while True:
        ref = f"{prefix}-{n:04d}"
        if session.execute(select(model.id).where(model.ref == ref)).first() is None:
            return ref
        n += 1
