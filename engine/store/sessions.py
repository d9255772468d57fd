"""Server-side web sessions: one ``web_session`` row per sign-in.

The browser's cookie (signed by Starlette's session middleware) carries a
random session id; only its SHA-256 is stored, so a copy of the table signs
nobody in. Every request looks the row up (:func:`find_session`): a session
revoked, idle longer than ``QUORUM_SESSION_IDLE_MINUTES`` or older than
``QUORUM_SESSION_MAX_HOURS`` signs nobody in, whatever the cookie says. Time
is the caller's clock (the app's injectable clock), so tests move it.

:func:`revoke_sessions` is the one call that ends all of a person's sessions
(sign out everywhere, a password change, a change to their roles); it runs on
the caller's connection, so inside a command it commits or rolls back with the
command. API bearer tokens are separate (``api_token``) and are not touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from engine.store.db import write_connection
from engine.store.models import WebSession

TOUCH_SECONDS = 60  # last_seen_at is written at most this often per session
MAX_USER_AGENT = 300
# reasons recorded in revoked_reason
SIGNED_OUT = "signed out"
IDLE = "idle timeout"
EXPIRED = "absolute timeout"
PASSWORD_CHANGED = "password changed"
ROLES_CHANGED = "roles changed"
EVERYWHERE = "signed out everywhere"


@dataclass(frozen=True)
class Limits:
    """How long a session lives: unused (idle) and in all (absolute)."""

    idle: dt.timedelta
    absolute: dt.timedelta


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def open_session(engine: Engine, person_id: int, now: dt.datetime, user_agent: str = "") -> str:
    """A new session for ``person_id``; the id to put in the cookie (shown once)."""
    session_id = secrets.token_urlsafe(32)
    with write_connection(engine) as conn, conn.begin():
        conn.execute(
            insert(WebSession).values(
                person_id=person_id,
                token_hash=session_hash(session_id),
                created_at=now,
                last_seen_at=now,
                user_agent=(user_agent or "")[:MAX_USER_AGENT],
                revoked_reason="",
            )
        )
    return session_id


def find_session(engine: Engine, session_id: str, now: dt.datetime, limits: Limits) -> int | None:
    """The person a live session belongs to, or None (unknown, revoked, idle or
    too old; an idle or too old one is marked revoked with the reason)."""
    digest = session_hash(session_id)
    with engine.connect() as conn:
        row = conn.execute(
            select(
                col(WebSession.id),
                col(WebSession.person_id),
                col(WebSession.created_at),
                col(WebSession.last_seen_at),
                col(WebSession.revoked_at),
            ).where(col(WebSession.token_hash) == digest)
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    created, seen = _aware(row.created_at), _aware(row.last_seen_at)
    ended = None
    if now - created >= limits.absolute:
        ended = EXPIRED
    elif now - seen >= limits.idle:
        ended = IDLE
    if ended is not None:
        with write_connection(engine) as conn, conn.begin():
            _revoke(conn, col(WebSession.id) == row.id, ended, now)
        return None
    if (now - seen).total_seconds() >= TOUCH_SECONDS:
        with write_connection(engine) as conn, conn.begin():
            conn.execute(
                update(WebSession)
                .where(col(WebSession.id) == row.id, col(WebSession.revoked_at).is_(None))
                .values(last_seen_at=now)
            )
    return int(row.person_id)


def end_session(
    engine: Engine, session_id: str, now: dt.datetime, reason: str = SIGNED_OUT
) -> None:
    """Revoke one session (sign-out). Unknown or already revoked: nothing to do."""
    with write_connection(engine) as conn, conn.begin():
        _revoke(conn, col(WebSession.token_hash) == session_hash(session_id), reason, now)


def revoke_sessions(conn: Connection, person_id: int, reason: str, now: dt.datetime) -> int:
    """End every live web session of ``person_id`` on ``conn`` (the caller's
    transaction: a command's ``uow.conn``, ``uow.now``); how many were live."""
    return _revoke(conn, col(WebSession.person_id) == person_id, reason, now)


def _revoke(conn: Connection, which: object, reason: str, now: dt.datetime) -> int:
    done = conn.execute(
        update(WebSession)
        .where(which, col(WebSession.revoked_at).is_(None))  # type: ignore[arg-type]
        .values(revoked_at=now, revoked_reason=reason)
    )
    return done.rowcount or 0
