"""Accounts, read side: the API tokens a person holds (never the token itself),
for the CLI (`quorum token list`) and the account page, and a person's live web
sessions. The commands that make and revoke them are
engine/commands/handlers/accounts.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import col

from engine.domain import totp
from engine.store.models import ApiToken, Person, SecondFactor, WebSession
from engine.store.sessions import Limits

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


def web_sessions(
    conn: Connection, person_id: int, now: dt.datetime, limits: Limits
) -> list[dict[str, Any]]:
    """A person's live web sessions (newest first): signed in, last seen, browser,
    and when each ends if unused. ``limits``: engine.store.sessions.Limits."""
    q = (
        select(
            col(WebSession.id),
            col(WebSession.created_at),
            col(WebSession.last_seen_at),
            col(WebSession.user_agent),
        )
        .where(col(WebSession.person_id) == person_id, col(WebSession.revoked_at).is_(None))
        .order_by(col(WebSession.id).desc())
    )
    out: list[dict[str, Any]] = []
    for s in conn.execute(q):
        created = _aware(s.created_at)
        seen = _aware(s.last_seen_at)
        ends = min(created + limits.absolute, seen + limits.idle)
        if ends <= now:
            continue  # ended already (marked revoked when next presented)
        out.append(
            {
                "id": s.id,
                "created_at": created.isoformat(),
                "last_seen_at": seen.isoformat(),
                "user_agent": s.user_agent,
                "ends_at": ends.isoformat(),
            }
        )
    return out


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def second_factor(
    conn: Connection, person_id: int | None, email: str = ""
) -> dict[str, Any] | None:
    """A person's second factor: None (none), or {confirmed_at} when confirmed, or,
    while not yet confirmed, {secret, uri} to show them (their own page only)."""
    if person_id is None:
        return None
    row = conn.execute(
        select(col(SecondFactor.secret), col(SecondFactor.confirmed_at)).where(
            col(SecondFactor.person_id) == person_id
        )
    ).first()
    if row is None:
        return None
    if row.confirmed_at is not None:
        return {"confirmed_at": _aware(row.confirmed_at).isoformat()}
    return {
        "confirmed_at": None,
        "secret": row.secret,
        "uri": totp.provisioning_uri(row.secret, email),
    }
