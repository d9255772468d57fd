"""Sign-in, sessions, CSRF, lock-out, API tokens, roles per route, signed links.

- **Passwords**: argon2id (engine/commands/handlers/accounts.py), re-hashed at sign-in
  when the hasher's parameters change. ``set_password`` is a command.
- **Sessions**: server-side, one ``web_session`` row per sign-in
  (engine/store/sessions.py). Starlette's signed cookie (itsdangerous,
  SameSite=Lax, HttpOnly, ``Secure`` when ``https_only``) carries a random
  session id (only its SHA-256 is stored) and the CSRF token; every request
  looks the row up, so a session revoked (sign-out, password change, role
  change, "sign out everywhere"), idle longer than QUORUM_SESSION_IDLE_MINUTES
  or older than QUORUM_SESSION_MAX_HOURS signs nobody in, even with a cookie
  copied before (docs/security.md).
- **Secret key**: ``QUORUM_SECRET_KEY`` if set; otherwise one generated on first
  start and kept in the database (``app_setting``), so every web process on the
  same database shares it (docs/operations.md).
- **CSRF**: every HTML form carries the session's token in a hidden field; a
  POST without it, or with another, is refused with 403 before anything runs.
  API requests with a bearer token are exempt (no ambient credential).
- **Lock-out**: 5 wrong passwords lock the person's sign-in for 15 minutes
  (counted in ``person``; the app's clock decides when it ends); a successful
  sign-in resets the count.
- **API tokens**: ``Authorization: Bearer <token>``; only the SHA-256 is stored.
- **Roles**: :func:`require` builds a route dependency naming the roles a page
  or endpoint allows; its refusal is the same ``PermissionDenied`` the
  commands raise (403). Sign-in bookkeeping (failed counts, last use of a
  token) is written directly, not as audited commands.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from engine.commands.handlers.accounts import (
    hash_password,
    needs_rehash,
    token_hash,
    verify_password,
)
from engine.domain.actor import Actor
from engine.domain.clock import Clock
from engine.domain.errors import PermissionDenied, QuorumError
from engine.domain.fields import text_problem
from engine.settings import get_settings
from engine.store import sessions
from engine.store.db import write_connection
from engine.store.models import ApiToken, AppSetting, Person, PersonRole, Role

SESSION_COOKIE = "quorum_session"
SESSION_ID = "sid"  # the cookie's key for the server-side session's id
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_FAILED = 5
LOCK_MINUTES = 15
TOKEN_TOUCH_SECONDS = 60  # last_used_at is written at most this often per token

ALL_ROLES = frozenset(r.value for r in Role)
STAFF = ALL_ROLES - {"sponsor"}  # everyone but sponsors: programme-wide views


class NotSignedIn(Exception):
    """No (valid) session or token: pages redirect to /login, the API answers 401."""

    def __init__(self, message: str = "sign in first") -> None:
        super().__init__(message)
        self.message = message


class CsrfRefused(QuorumError):
    code = "csrf"
    http_status = 403


class SignInRefused(QuorumError):
    code = "sign_in"
    http_status = 401


# ------------------------------------------------------------------ the secret key


def secret_key(engine: Engine) -> str:
    """QUORUM_SECRET_KEY, else the installation's generated key (made once, race-free)."""
    env = get_settings().secret_key  # at least 32 characters (Settings checks)
    if env:
        return env
    with engine.connect() as conn:
        found = conn.execute(
            select(AppSetting.value).where(AppSetting.name == "session_secret")
        ).scalar()
    if found:
        return found
    try:
        with write_connection(engine) as conn, conn.begin():
            conn.execute(
                insert(AppSetting).values(name="session_secret", value=secrets.token_urlsafe(48))
            )
    except IntegrityError:
        pass  # another process made it first: use theirs
    with engine.connect() as conn:
        return conn.execute(
            select(AppSetting.value).where(AppSetting.name == "session_secret")
        ).scalar_one()


# ------------------------------------------------------------------ people


@dataclass(frozen=True)
class SignedIn:
    actor: Actor
    via: str  # "session" or "token"


def _roles(conn: object, person_id: int) -> frozenset[str]:
    return frozenset(
        conn.execute(select(PersonRole.role).where(PersonRole.person_id == person_id)).scalars()  # type: ignore[attr-defined]
    )


def _actor(conn: object, row: object) -> Actor:
    return Actor(row.name, row.email, _roles(conn, row.id), row.id, row.organisation_id)  # type: ignore[attr-defined]


_PERSON_COLS = (
    Person.id,
    Person.name,
    Person.email,
    Person.organisation_id,
    Person.active,
    Person.password_hash,
    Person.failed_logins,
    Person.locked_until,
)


class Auth:
    """Sign-in and identity for one app (its engine and clock)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # --- sign-in --------------------------------------------------------
    def sign_in(self, email: str, password: str) -> Actor:
        """The actor, or SignInRefused saying why."""
        email = (email or "").strip().lower()
        for field, problem in (
            ("email", text_problem(email, "email")),
            ("password", text_problem(password or "", "password", lines=True)),
        ):
            if problem is not None:  # a NUL is a 500 on PostgreSQL: never sent to the database
                raise SignInRefused(problem, field=field)
        now = self.clock.now()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*_PERSON_COLS).where(func.lower(Person.email) == email)
            ).first()
        if row is not None and row.locked_until is not None and row.locked_until > now:
            raise SignInRefused(_locked_message(row.locked_until), field="password")
        ok = verify_password(row.password_hash if row is not None else None, password or "")
        if row is None or not ok:
            if row is not None:
                locked = self._count_failure(row.id, now)
                if locked is not None:
                    raise SignInRefused(
                        f"wrong email or password. {MAX_FAILED} wrong attempts: "
                        + _locked_message(locked),
                        field="password",
                    )
            raise SignInRefused("wrong email or password", field="password")
        if not row.active:
            raise SignInRefused(f"{row.email} is deactivated; ask an officer", field="email")
        changes: dict = {}
        if row.failed_logins or row.locked_until is not None:
            changes.update(failed_logins=0, locked_until=None)
        if needs_rehash(row.password_hash):
            changes["password_hash"] = hash_password(password)
        if changes:
            with write_connection(self.engine) as conn, conn.begin():
                conn.execute(update(Person).where(Person.id == row.id).values(**changes))
        with self.engine.connect() as conn:
            return _actor(conn, row)

    def _count_failure(self, person_id: int, now: dt.datetime) -> dt.datetime | None:
        """Count one wrong password; the time the lock ends if this one locks it."""
        with write_connection(self.engine) as conn, conn.begin():
            n = conn.execute(
                update(Person)
                .where(Person.id == person_id)
                .values(failed_logins=Person.failed_logins + 1)
                .returning(Person.failed_logins)
            ).scalar_one()
            if n < MAX_FAILED:
                return None
            until = now + dt.timedelta(minutes=LOCK_MINUTES)
            conn.execute(
                update(Person)
                .where(Person.id == person_id)
                .values(failed_logins=0, locked_until=until)
            )
            return until

    # --- who is asking --------------------------------------------------
    @staticmethod
    def limits() -> sessions.Limits:
        settings = get_settings()
        return sessions.Limits(
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
            absolute=dt.timedelta(hours=settings.session_max_hours),
        )

    def from_session(self, session: dict) -> Actor | None:
        """The person of a live server-side session (the cookie's ``sid``), else None."""
        sid = session.get(SESSION_ID)
        if not isinstance(sid, str) or not sid:
            return None
        pid = sessions.find_session(self.engine, sid, self.clock.now(), self.limits())
        if pid is None:
            return None  # revoked, idle or too old: sign in again
        with self.engine.connect() as conn:
            row = conn.execute(select(*_PERSON_COLS).where(Person.id == pid)).first()
            if row is None or not row.active:
                return None
            return _actor(conn, row)

    def from_token(self, token: str) -> Actor:
        digest = token_hash(token)
        now = self.clock.now()
        with self.engine.connect() as conn:
            found = conn.execute(
                select(
                    ApiToken.id.label("token_id"),
                    ApiToken.revoked_at,
                    ApiToken.last_used_at,
                    *_PERSON_COLS,
                )
                .join(Person, Person.id == ApiToken.person_id)
                .where(ApiToken.token_hash == digest)
            ).first()
            if found is None or found.revoked_at is not None:
                raise NotSignedIn("the API token is not valid (unknown or revoked)")
            if not found.active:
                raise NotSignedIn(f"{found.email} is deactivated")
            actor = _actor(conn, found)
        last = found.last_used_at
        if last is None or (now - last).total_seconds() >= TOKEN_TOUCH_SECONDS or now < last:
            with write_connection(self.engine) as conn, conn.begin():
                conn.execute(
                    update(ApiToken).where(ApiToken.id == found.token_id).values(last_used_at=now)
                )
        return actor

    def start_session(self, request: Request, actor: Actor) -> None:
        """A fresh server-side session for a signed-in person: a new id and a new
        CSRF token (no fixation); the one the browser had, if any, is ended."""
        self.end_session(request)
        sid = sessions.open_session(
            self.engine,
            actor.person_id,  # type: ignore[arg-type]
            self.clock.now(),
            request.headers.get("user-agent", ""),
        )
        request.session.clear()
        request.session.update({SESSION_ID: sid, "csrf": secrets.token_urlsafe(32)})
        if hasattr(request.state, "signed_in"):
            del request.state.signed_in

    def end_session(self, request: Request, reason: str = sessions.SIGNED_OUT) -> None:
        """Revoke this browser's session (sign-out) and forget it in the cookie."""
        sid = request.session.get(SESSION_ID)
        if isinstance(sid, str) and sid:
            sessions.end_session(self.engine, sid, self.clock.now(), reason)
        request.session.clear()

    def refresh_session(self, request: Request, actor: Actor) -> None:
        """Keep this browser signed in after its person changed their own password
        (which ended all their sessions): a new session, kept flash message."""
        flash = request.session.get("flash")
        self.start_session(request, actor)
        if flash:
            request.session["flash"] = flash

    def identify(self, request: Request) -> SignedIn | None:
        """The signed-in actor (bearer token first, then the session), cached per request."""
        if hasattr(request.state, "signed_in"):
            return request.state.signed_in
        found: SignedIn | None = None
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise NotSignedIn("Authorization must be 'Bearer <token>'")
            found = SignedIn(self.from_token(token.strip()), "token")
        else:
            actor = self.from_session(request.session)
            if actor is not None:
                found = SignedIn(actor, "session")
            elif SESSION_ID in request.session:
                request.session.pop(SESSION_ID, None)
        request.state.signed_in = found
        return found


def _locked_message(until: dt.datetime) -> str:
    return (
        f"sign-in is locked until {until.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        "try again then (or ask an officer for a password link)"
    )


# ------------------------------------------------------------------ roles per route


def require(roles: Iterable[str] | None = None) -> Callable[[Request], Actor]:
    """A dependency: the signed-in Actor if they hold one of ``roles`` (None: any
    signed-in person). Not signed in: NotSignedIn; signed in without the role:
    PermissionDenied (403)."""
    allowed = frozenset(roles) if roles is not None else ALL_ROLES

    def current_actor(request: Request) -> Actor:
        auth: Auth = request.app.state.auth
        who = auth.identify(request)
        if who is None:
            raise NotSignedIn()
        if not who.actor.roles & allowed:
            raise PermissionDenied(
                f"{request.url.path} is for {', '.join(sorted(allowed))}; "
                f"{who.actor.label} has {', '.join(sorted(who.actor.roles)) or 'no roles'}"
            )
        return who.actor

    current_actor.roles = allowed  # type: ignore[attr-defined]
    return current_actor


# ------------------------------------------------------------------ CSRF


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, sent: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
        raise CsrfRefused(
            "this form has expired or did not come from Quorum (its security token is "
            "missing or wrong); reload the page and try again",
            field=CSRF_FIELD,
        )


async def check_form_csrf(request: Request) -> dict:
    """Parse the form and check its CSRF field; the form's fields as a dict.
    A dependency (``form: dict = Depends(check_form_csrf)``): the body is read
    on the event loop, then the endpoint, a plain ``def``, runs in the thread
    pool, so its transaction and password checks never block the loop."""
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))  # type: ignore[arg-type]
    return form  # type: ignore[return-value]


def start_session(request: Request, actor: Actor) -> None:
    """A fresh server-side session for a signed-in person (see :meth:`Auth.start_session`)."""
    auth: Auth = request.app.state.auth
    auth.start_session(request, actor)


# ------------------------------------------------------------------ signed single-use links
# (engine/store/links.py: the engine makes them when it queues an email)
from engine.store.links import link_serializer, make_link_token, read_link_token, use_link  # noqa: E402

__all__ = ["link_serializer", "make_link_token", "read_link_token", "use_link"]
