"""Accounts, read side: the API tokens a person holds (never the token itself),
for the CLI (`quorum token list`) and the account page; people, their roles and
role changes (the people page, `quorum people`). The commands that make and
revoke them are engine/commands/handlers/accounts.py and roles.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import col

from engine.domain import totp
from engine.store.models import (
    ApiToken,
    Organisation,
    PasswordReset,
    Person,
    PersonRole,
    RoleChange,
    SecondFactor,
    WebSession,
)
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
# ------------------------------------------------------------------ people and role changes


def people(conn: Connection | Session) -> list[dict]:
    """Every person: email, name, organisation, roles, active, whether they have a password."""
    roles: dict[int, list[str]] = {}
    for pid, role in conn.execute(select(col(PersonRole.person_id), col(PersonRole.role))):
        roles.setdefault(pid, []).append(role)
    orgs = dict(conn.execute(select(col(Organisation.id), col(Organisation.name))).all())
    return [
        {
            "id": p.id,
            "email": p.email,
            "name": p.name,
            "organisation": orgs.get(p.organisation_id),
            "roles": sorted(roles.get(p.id, [])),
            "active": bool(p.active),
            "has_password": p.password_hash is not None,
        }
        for p in conn.execute(
            select(
                col(Person.id),
                col(Person.email),
                col(Person.name),
                col(Person.organisation_id),
                col(Person.active),
                col(Person.password_hash),
            ).order_by(col(Person.email))
        )
    ]


def role_changes(conn: Connection | Session, *, state: str | None = None) -> list[dict]:
    """Role change requests, newest first (``state``: only those in it)."""
    asker = Person.__table__.alias("asker")
    decider = Person.__table__.alias("decider")
    rc = RoleChange.__table__
    q = (
        select(rc, asker.c.email.label("asker_email"), decider.c.email.label("decider_email"))
        .outerjoin(asker, asker.c.id == rc.c.requested_by_id)
        .outerjoin(decider, decider.c.id == rc.c.decided_by_id)
        .order_by(rc.c.id.desc())
    )
    if state is not None:
        q = q.where(rc.c.state == state)
    return [
        {
            "ref": r.ref,
            "state": r.state,
            "person_id": r.person_id,
            "name": r.name,
            "email": r.email,
            "new_person": r.person_id is None,
            "add": list(r.add_roles),
            "remove": list(r.remove_roles),
            "reason": r.reason,
            "requested_by_id": r.requested_by_id,
            "requested_by": r.asker_email or "system",
            "requested_at": r.requested_at.isoformat(timespec="minutes"),
            "expires_at": r.expires_at.isoformat(timespec="minutes"),
            "decided_by": r.decider_email,
            "decided_at": r.decided_at.isoformat(timespec="minutes") if r.decided_at else None,
            "decision_reason": r.decision_reason,
            "version": r.version,
        }
        for r in conn.execute(q)
    ]


def reset_link_owner(conn: Connection | Session, digest: str) -> str | None:
    """The email of the person a reset link (its token's SHA-256) was sent to, if any."""
    return conn.execute(
        select(col(Person.email))
        .join(PasswordReset, col(PasswordReset.person_id) == col(Person.id))
        .where(col(PasswordReset.token_hash) == digest)
    ).scalar()
