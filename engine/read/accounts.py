"""Accounts, read side: the API tokens a person holds (never the token itself),
for the CLI (`quorum token list`) and the account page; people, their roles and
role changes (the people page, `quorum people`). The commands that make and
revoke them are engine/commands/handlers/accounts.py and roles.py."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.store.models import (
    ApiToken,
    Organisation,
    PasswordReset,
    Person,
    PersonRole,
    RoleChange,
)


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


# ------------------------------------------------------------------ people and role changes


def people(conn: object) -> list[dict]:
    """Every person: email, name, organisation, roles, active, whether they have a password."""
    roles: dict[int, list[str]] = {}
    for pid, role in conn.execute(select(PersonRole.person_id, PersonRole.role)):  # type: ignore[attr-defined]
        roles.setdefault(pid, []).append(role)
    orgs = dict(conn.execute(select(Organisation.id, Organisation.name)).all())  # type: ignore[attr-defined]
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
        for p in conn.execute(  # type: ignore[attr-defined]
            select(
                Person.id,
                Person.email,
                Person.name,
                Person.organisation_id,
                Person.active,
                Person.password_hash,
            ).order_by(Person.email)
        )
    ]


def role_changes(conn: object, *, state: str | None = None) -> list[dict]:
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
        for r in conn.execute(q)  # type: ignore[attr-defined]
    ]


def reset_link_owner(conn: object, digest: str) -> str | None:
    """The email of the person a reset link (its token's SHA-256) was sent to, if any."""
    return conn.execute(  # type: ignore[attr-defined]
        select(Person.email)
        .join(PasswordReset, PasswordReset.person_id == Person.id)
        .where(PasswordReset.token_hash == digest)
    ).scalar()
