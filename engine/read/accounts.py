"""Accounts, read side: the API tokens a person holds (never the token itself),
for the CLI (`quorum token list`) and the account page. The commands that make
and revoke them are engine/commands/handlers/accounts.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.store.models import ApiToken, Person

TOKEN_T = ApiToken.__table__
PERSON_T = Person.__table__


def tokens(conn: Connection | Session, email: str | None = None) -> list[dict[str, Any]]:
    """API tokens (never the token itself): id, person, name, made, last used, revoked."""
    q = (
        select(
            TOKEN_T.c.id,
            TOKEN_T.c.name,
            TOKEN_T.c.created_at,
            TOKEN_T.c.last_used_at,
            TOKEN_T.c.revoked_at,
            PERSON_T.c.email,
        )
        .join(PERSON_T, PERSON_T.c.id == TOKEN_T.c.person_id)
        .order_by(TOKEN_T.c.id)
    )
    if email:
        q = q.where(func.lower(PERSON_T.c.email) == email.strip().lower())
    return [
        {
            "id": t.id,
            "person": t.email,
            "name": t.name,
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in conn.execute(q)
    ]
