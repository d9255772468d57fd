"""Accounts: passwords (argon2) and API tokens for machine clients.

Passwords are hashed with argon2id (argon2-cffi's defaults); a hash made with
older parameters is re-hashed at the next successful sign-in. Nothing secret
ever reaches the audit trail or the idempotency log: events say *that* a
password was set or a token made, never the password, the hash or the token.

Nobody sets another person's password: a person changes their own with their
current one, or through a single-use link emailed to their own address
(``request_password_reset``: an officer or director may send anyone one;
``reset_password`` uses it, once, before it expires — QUORUM_RESET_LINK_MINUTES).
Only the SHA-256 of a link's token is stored. The system actor sets a first
password only (an installation's bootstrap, the demo, tests).

API tokens are made by the entry point (``quorum token create``), which shows
the token once; the command stores only its SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, delete, func, insert, select, update
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain import totp
from engine.domain.actor import SYSTEM
from engine.domain.errors import ConflictError, NotFound, PermissionDenied, ValidationError
from engine.settings import get_settings
from engine.store.factors import factor_of
from engine.store.links import base_url
from engine.store.models import ApiToken, PasswordReset, Person, SecondFactor
from engine.store.sessions import EVERYWHERE, PASSWORD_CHANGED, revoke_sessions

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
TOKEN_PREFIX = "qk_"
RESET_PREFIX = "qr_"
RESET_PATH = "/password/reset"  # the web page that takes a reset link (quorum_web)


@cache
def hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches ``stored``; a person without a password never matches.
    (A dummy hash is checked when there is none, so timing does not say which.)"""
    try:
        return hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    try:
        return hasher().check_needs_rehash(stored)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return hasher().hash(secrets.token_urlsafe(16))


def new_token() -> str:
    """A fresh bearer token (shown once; only its SHA-256 is stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(
            f"set_password: {field}: is {len(password)} characters; use at least {MIN_PASSWORD}",
            field=field,
        )
    if len(password) > MAX_PASSWORD:
        raise ValidationError(
            f"set_password: {field}: is longer than {MAX_PASSWORD} characters", field=field
        )


def _person(
    uow: UnitOfWork, email: str, field: str = "email"
) -> Row[int | None, str, str | None, bool]:
    row = uow.conn.execute(
        select(
            col(Person.id), col(Person.email), col(Person.password_hash), col(Person.active)
        ).where(func.lower(col(Person.email)) == email.strip().lower())
    ).first()
    if row is None:
        raise NotFound(f"{uow.command}: {field}: no person with email {email!r}", field=field)
    return row


def _is_admin(uow: UnitOfWork) -> bool:
    return bool(uow.actor.roles & {"officer", SYSTEM})


SESSION_ADMINS = frozenset({"officer", "director", SYSTEM})
FACTOR_ADMINS = frozenset({"director", SYSTEM})


@command(
    "set_password",
    summary="Change your own password (give your current one); nobody sets another's",
)
def set_password(uow: UnitOfWork, args: Args) -> Result:
    email = args.text("email", required=False, max_len=254) or uow.actor.email
    password = args.raw("password")
    current = args.raw("current_password")
    args.done()
    if not isinstance(password, str) or not password:
        raise ValidationError("set_password: password: is required", field="password")
    person = _person(uow, email)
    own = uow.actor.person_id == person.id
    system = SYSTEM in uow.actor.roles
    if not own and not system:
        raise PermissionDenied(
            f"set_password: {uow.actor.label} may set only their own password: nobody sets "
            "another person's; send them a reset link (request_password_reset), which "
            "goes to their own address",
            field="email",
        )
    if system and person.password_hash is not None:
        # the bootstrap (first director, demo, tests) sets a first password only
        raise PermissionDenied(
            f"set_password: {person.email} already has a password; the system sets only a "
            "first one — send a reset link instead (quorum people reset EMAIL)",
            field="email",
        )
    if own and not system:
        # a signed-in person proves it is them, even an officer changing their own
        if not isinstance(current, str) or not verify_password(person.password_hash, current):
            raise ValidationError(
                "set_password: current_password: is wrong (give your current password to "
                "change it)",
                field="current_password",
            )
    _check_password(password)
    # (the web app gives the person who changed their own password a fresh session)
    _store_password(uow, person.id, password)
    uow.record(
        f"PERSON:{person.email}",
        {"password": "set" if person.password_hash else "none"},
        {"password": "changed"},
    )
    return {"person": person.email, "password": "changed"}


def _store_password(uow: UnitOfWork, person_id: int, password: str) -> None:
    """A new password (its hash) for ``person_id``, their failed sign-ins forgotten,
    and every web session of theirs ended (API tokens are separate)."""
    uow.conn.execute(
        update(Person)
        .where(col(Person.id) == person_id)
        .values(password_hash=hash_password(password), failed_logins=0, locked_until=None)
    )
    revoke_sessions(uow.conn, person_id, PASSWORD_CHANGED, uow.now)


# ------------------------------------------------------------------ reset links


def reset_link(token: str) -> str:
    return f"{base_url()}{RESET_PATH}?token={token}"


def issue_reset_link(
    uow: UnitOfWork, person_id: int, email: str, name: str, *, welcome: bool = False
) -> dt.datetime:
    """A new single-use link to set ``person_id``'s password, emailed to their own
    address (earlier unused links stop working). Only the SHA-256 of its token is
    stored; the token is in the email alone, never in a result or the audit trail."""
    now = uow.now
    uow.conn.execute(
        update(PasswordReset)
        .where(
            col(PasswordReset.person_id) == person_id,
            col(PasswordReset.used_at).is_(None),
            col(PasswordReset.expires_at) > now,
        )
        .values(expires_at=now)
    )
    token = RESET_PREFIX + secrets.token_urlsafe(32)
    expires = now + dt.timedelta(minutes=get_settings().reset_link_minutes)
    reset_id = inserted_id(
        uow.conn.execute(
            insert(PasswordReset).values(
                person_id=person_id,
                token_hash=token_hash(token),
                requested_by_id=uow.actor.person_id,
                created_at=now,
                expires_at=expires,
            )
        )
    )
    asked_by = "you" if uow.actor.person_id == person_id else uow.actor.name
    uow.record(
        f"PERSON:{email}",
        {},
        {"reset_link": reset_id, "expires_at": expires.isoformat(timespec="minutes")},
        "a link to set a password, sent to the person's own address",
        command=uow.command,
    )
    uow.notify(
        key=f"password_reset:{reset_id}",
        to=email,
        template="password_reset",
        subject="Set your Quorum password" if welcome else "Reset your Quorum password",
        context={
            "name": name,
            "link": reset_link(token),
            "expires_at": expires.isoformat(timespec="minutes"),
            "minutes": get_settings().reset_link_minutes,
            "asked_by": asked_by,
            "welcome": welcome,
        },
    )
    return expires


@command(
    "request_password_reset",
    summary="Email a person a single-use link to set their own password (it expires)",
)
def request_password_reset(uow: UnitOfWork, args: Args) -> Result:
    email = args.text("email", required=False, max_len=254) or uow.actor.email
    args.done()
    person = _person(uow, email)
    own = uow.actor.person_id == person.id
    if not own and not uow.actor.roles & {"officer", "director", SYSTEM}:
        raise PermissionDenied(
            f"request_password_reset: {uow.actor.label} may ask for a link only for "
            "themselves (an officer or director may send anyone one)",
            field="email",
        )
    if not person.active:
        raise ValidationError(
            f"request_password_reset: email: {person.email} is deactivated", field="email"
        )
    name = uow.conn.execute(
        select(col(Person.name)).where(col(Person.id) == person.id)
    ).scalar_one()
    expires = issue_reset_link(uow, person.id, person.email, name)
    return {
        "person": person.email,
        "reset_link": "sent to their own address",
        "expires_at": expires.isoformat(timespec="minutes"),
    }


@command(
    "reset_password",
    summary="Set your password with the single-use link emailed to you",
)
def reset_password(uow: UnitOfWork, args: Args) -> Result:
    token = args.text("token", max_len=200)
    password = args.raw("password")
    args.done()
    if not isinstance(password, str) or not password:
        raise ValidationError("reset_password: password: is required", field="password")
    link = uow.conn.execute(
        select(
            col(PasswordReset.id),
            col(PasswordReset.person_id),
            col(PasswordReset.used_at),
            col(PasswordReset.expires_at),
            col(Person.email),
            col(Person.name),
        )
        .join(Person, col(Person.id) == col(PasswordReset.person_id))
        .where(col(PasswordReset.token_hash) == token_hash(token.strip()))
    ).first()
    # someone else's link is the same refusal as no link: it proves nothing about them
    if link is None or link.person_id != uow.actor.person_id:
        raise NotFound(
            "reset_password: token: this link is not valid; ask for a new one", field="token"
        )
    if link.used_at is not None:
        raise ValidationError(
            "reset_password: token: this link has been used already; ask for a new one",
            field="token",
        )
    if link.expires_at <= uow.now:
        raise ValidationError(
            f"reset_password: token: this link expired at "
            f"{link.expires_at.isoformat(timespec='minutes')}; ask for a new one",
            field="token",
        )
    _check_password(password)
    used = uow.conn.execute(
        update(PasswordReset)
        .where(col(PasswordReset.id) == link.id, col(PasswordReset.used_at).is_(None))
        .values(used_at=uow.now)
    )
    if used.rowcount != 1:
        raise ConflictError(
            "reset_password: token: this link was used at the same time; ask for a new one",
            field="token",
        )
    # whoever held a session of theirs signs in with the new password
    _store_password(uow, link.person_id, password)
    uow.record(
        f"PERSON:{link.email}",
        {"reset_link": link.id},
        {"password": "changed", "reset_link": "used"},
    )
    uow.notify(
        key=f"password_changed:{link.id}",
        to=link.email,
        template="password_changed",
        subject="Your Quorum password was changed",
        context={"name": link.name, "at": uow.now.isoformat(timespec="minutes")},
    )
    return {"person": link.email, "password": "changed"}


@command(
    "create_api_token",
    summary="Register an API token (its SHA-256) for a person: 'quorum token create'",
)
def create_api_token(uow: UnitOfWork, args: Args) -> Result:
    email = args.text("email", required=False, max_len=254) or uow.actor.email
    name = args.text("name", required=False, max_len=100)
    digest = args.text("token_sha256", max_len=64).lower()
    args.done()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValidationError(
            "create_api_token: token_sha256: must be 64 hexadecimal characters",
            field="token_sha256",
        )
    person = _person(uow, email)
    # a token acts as its person: only they (or the system, from the CLI) may make one
    if uow.actor.person_id != person.id and SYSTEM not in uow.actor.roles:
        raise PermissionDenied(
            f"create_api_token: {uow.actor.label} may make tokens only for themselves",
            field="email",
        )
    if not person.active:
        raise ValidationError(
            f"create_api_token: email: {person.email} is deactivated", field="email"
        )
    taken = uow.conn.execute(
        select(col(ApiToken.id)).where(col(ApiToken.token_hash) == digest)
    ).first()
    if taken is not None:
        raise ValidationError(
            "create_api_token: token_sha256: that token is already registered",
            field="token_sha256",
        )
    token_id = inserted_id(uow.conn.execute(
        insert(ApiToken).values(
            person_id=person.id, name=name, token_hash=digest, created_at=uow.now
        )
    ))
    uow.record(f"PERSON:{person.email}", {}, {"api_token": token_id, "name": name})
    return {"token": token_id, "person": person.email, "name": name}


@command("revoke_api_token", summary="Revoke an API token: it stops working at once")
def revoke_api_token(uow: UnitOfWork, args: Args) -> Result:
    token_id = args.integer("token", minimum=1)
    args.done()
    row = uow.conn.execute(
        select(col(ApiToken.id), col(ApiToken.revoked_at), col(Person.email))
        .join(Person, col(Person.id) == col(ApiToken.person_id))
        .where(col(ApiToken.id) == token_id)
    ).first()
    if row is None:
        raise NotFound(f"revoke_api_token: token: no token {token_id}", field="token")
    own = uow.actor.email and uow.actor.email.lower() == row.email.lower()
    if not own and not _is_admin(uow):
        raise PermissionDenied(
            f"revoke_api_token: {uow.actor.label} may revoke only their own tokens",
            field="token",
        )
    if row.revoked_at is not None:
        raise ValidationError(
            f"revoke_api_token: token: token {token_id} was already revoked", field="token"
        )
    uow.conn.execute(
        update(ApiToken).where(col(ApiToken.id) == token_id).values(revoked_at=uow.now)
    )
    uow.record(f"PERSON:{row.email}", {"api_token": token_id}, {"revoked": True})
    return {"token": token_id, "person": row.email, "revoked": True}



# ---------------------------------------------------------------- web sessions


@command(
    "sign_out_everywhere",
    summary="End every web session of a person (yours; an officer or director: anyone's)",
)
def sign_out_everywhere(uow: UnitOfWork, args: Args) -> Result:
    email = args.text("email", required=False, max_len=254) or uow.actor.email
    args.done()
    if not email:
        raise ValidationError("sign_out_everywhere: email: whose sessions?", field="email")
    person = _person(uow, email)
    if uow.actor.person_id != person.id and not uow.actor.roles & SESSION_ADMINS:
        raise PermissionDenied(
            f"sign_out_everywhere: {uow.actor.label} may sign out only themselves "
            "(an officer or director may sign out anyone)",
            field="email",
        )
    ended = revoke_sessions(uow.conn, person.id, EVERYWHERE, uow.now)
    uow.record(f"PERSON:{person.email}", {}, {"web_sessions_ended": ended})
    return {"person": person.email, "sessions_ended": ended}


# ---------------------------------------------------------------- second factor


@command(
    "confirm_second_factor",
    summary="Confirm the second factor (TOTP) you set up, with a code from your app",
)
def confirm_second_factor(uow: UnitOfWork, args: Args) -> Result:
    code = args.text("code", max_len=20)
    args.done()
    pid = uow.actor.person_id
    factor = factor_of(uow.conn, pid) if pid is not None else None
    if factor is None:
        raise ValidationError(
            "confirm_second_factor: code: you have not started setting up a second factor "
            "(Account page: Set up a second factor)",
            field="code",
        )
    if factor.confirmed_at is not None:
        raise ValidationError(
            "confirm_second_factor: code: your second factor is already confirmed", field="code"
        )
    try:
        step = totp.check(factor.secret, code, uow.now, factor.last_step)
    except totp.CodeRefused as why:
        raise ValidationError(f"confirm_second_factor: code: {why}", field="code") from None
    uow.conn.execute(
        update(SecondFactor)
        .where(col(SecondFactor.id) == factor.id)
        .values(confirmed_at=uow.now, last_step=step)
    )
    uow.record(f"PERSON:{uow.actor.email}", {"second_factor": None}, {"second_factor": "confirmed"})
    return {"person": uow.actor.email, "second_factor": "confirmed"}


@command(
    "remove_second_factor",
    summary="Remove a second factor (your own, with a current code; a director: anyone's)",
)
def remove_second_factor(uow: UnitOfWork, args: Args) -> Result:
    email = args.text("email", required=False, max_len=254) or uow.actor.email
    code = args.text("otp", required=False, max_len=20)
    args.done()
    person = _person(uow, email or "")
    own = uow.actor.person_id == person.id
    if not own and not uow.actor.roles & FACTOR_ADMINS:
        raise PermissionDenied(
            f"remove_second_factor: {uow.actor.label} may remove only their own second factor "
            "(a director may remove anyone's, e.g. after a lost phone)",
            field="email",
        )
    factor = factor_of(uow.conn, person.id)
    if factor is None:
        raise NotFound(
            f"remove_second_factor: email: {person.email} has no second factor", field="email"
        )
    if own and factor.confirmed_at is not None and SYSTEM not in uow.actor.roles:
        if not code:
            raise ValidationError(
                "remove_second_factor: otp: give a current code from your authenticator app "
                "to remove it",
                field="otp",
            )
        try:
            totp.check(factor.secret, code, uow.now, factor.last_step)
        except totp.CodeRefused as why:
            raise ValidationError(f"remove_second_factor: otp: {why}", field="otp") from None
    uow.conn.execute(delete(SecondFactor).where(col(SecondFactor.id) == factor.id))
    before = "confirmed" if factor.confirmed_at is not None else "not confirmed"
    uow.record(f"PERSON:{person.email}", {"second_factor": before}, {"second_factor": None})
    return {"person": person.email, "second_factor": "removed"}
