"""Accounts, read side: the API tokens a person holds (never the token itself),
for the CLI (`quorum token list`) and the account page. The commands that make
and revoke them are engine/commands/handlers/accounts.py."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.store.models import ApiToken, Person


def tokens(conn: object, email: str | None = None) -> list[dict]:
    """API tokens (never the token itself): id, person, name, made, last used, revoked."""
    q = (
        select(
            ApiToken.id,
            ApiToken.name,
            ApiToken.created_at,
            ApiToken.last_used_at,
            ApiToken.revoked_at,
            Person.email,
        )
        .join(Person, Person.id == ApiToken.person_id)
        .order_by(ApiToken.id)
    )
    if email:
        q = q.where(func.lower(Person.email) == email.strip().lower())
    return [
        {
            "id": t.id,
            "person": t.email,
            "name": t.name,
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in conn.execute(q)  # type: ignore[attr-defined]
    ]
