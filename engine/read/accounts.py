"""Accounts, read side: the API tokens a person holds (never the token itself),
for the CLI (`quorum token list`) and the account page, and a person's live web
sessions. The commands that make and revoke them are
engine/commands/handlers/accounts.py."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from engine.domain import totp
from engine.store.models import ApiToken, Person, SecondFactor, WebSession
from engine.store.sessions import Limits


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


def web_sessions(conn: Connection, person_id: int, now: dt.datetime, limits: Limits) -> list[dict]:
    """A person's live web sessions (newest first): signed in, last seen, browser,
    and when each ends if unused. ``limits``: engine.store.sessions.Limits."""
    q = (
        select(
            WebSession.id, WebSession.created_at, WebSession.last_seen_at, WebSession.user_agent
        )
        .where(WebSession.person_id == person_id, WebSession.revoked_at.is_(None))  # type: ignore[union-attr]
        .order_by(WebSession.id.desc())  # type: ignore[union-attr]
    )
    out = []
    for s in conn.execute(q):  # type: ignore[attr-defined]
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


def second_factor(conn: Connection, person_id: int | None, email: str = "") -> dict | None:
    """A person's second factor: None (none), or {confirmed_at} when confirmed, or,
    while not yet confirmed, {secret, uri} to show them (their own page only)."""
    if person_id is None:
        return None
    row = conn.execute(
        select(SecondFactor.secret, SecondFactor.confirmed_at).where(
            SecondFactor.person_id == person_id
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
