"""Signed single-use links (e.g. "sign this delegated decision" in an email).

The engine makes them when it queues a message (no web app import); the web app
checks and uses them. A token is signed with the installation's secret
(``QUORUM_SECRET_KEY`` or the generated key kept in ``app_setting``), bound to
one purpose, one item and one person's email, carries its own expiry (set by
the caller's clock, so tests and the app's clock agree) and a random id that is
recorded in ``used_link`` when it is used: it works once.

    make_link_token(secret, purpose, item, email, expires_at=None) -> str
    read_link_token(secret, token, purpose, max_age, actor, now=None) -> dict
    use_link(engine_or_conn, jti, now)
    link_secret(conn) -> str          (inside a command's transaction)
    base_url() -> str                 (QUORUM_BASE_URL, default http://127.0.0.1:8000)
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from engine.domain.errors import PermissionDenied, ValidationError
from engine.settings import get_settings
from engine.store.db import write_connection
from engine.store.models import AppSetting, UsedLink

SIGN_PURPOSE = "sign"
SIGN_LINK_DAYS = 7
SECRET_SETTING = "session_secret"


def base_url() -> str:
    return get_settings().base_url


def env_secret() -> str | None:
    return get_settings().secret_key  # at least 32 characters (Settings checks)


def link_secret(conn: Connection) -> str:
    """The installation's secret, read (or made, once) on a connection that is
    already in a transaction: a command's. A concurrent maker wins the race and
    its key is used (the insert runs in a savepoint)."""
    env = env_secret()
    if env:
        return env
    query = select(col(AppSetting.value)).where(col(AppSetting.name) == SECRET_SETTING)
    found = conn.execute(query).scalar()
    if found:
        return found
    try:
        with conn.begin_nested():
            conn.execute(
                insert(AppSetting).values(name=SECRET_SETTING, value=secrets.token_urlsafe(48))
            )
    except IntegrityError:
        pass
    return conn.execute(query).scalar_one()


def link_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="quorum-link")


def make_link_token(
    secret: str, purpose: str, item: str, email: str, expires_at: dt.datetime | None = None
) -> str:
    """A signed token for one person to do one thing to one item, once
    (``expires_at``: when it stops working, by the caller's clock)."""
    data: dict[str, Any] = {
        "p": purpose,
        "i": item,
        "e": email.lower(),
        "j": secrets.token_urlsafe(12),
    }
    if expires_at is not None:
        data["x"] = _utc(expires_at).isoformat()
    return link_serializer(secret).dumps(data)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def read_link_token(
    secret: str,
    token: str,
    purpose: str,
    max_age: dt.timedelta,
    actor: Any,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Check a link's signature, age and addressee (it still needs sign-in).
    ``now``: the app's clock, checked against the expiry the token carries."""
    expired = "this link has expired; open the item from My work"
    try:
        data = link_serializer(secret).loads(token, max_age=int(max_age.total_seconds()))
    except SignatureExpired:
        raise ValidationError(expired) from None
    except BadSignature:
        raise ValidationError("this link is not valid (it was changed or cut short)") from None
    if not isinstance(data, dict) or data.get("p") != purpose:
        raise ValidationError("this link is for something else")
    if data.get("x") and now is not None and _utc(now) > dt.datetime.fromisoformat(data["x"]):
        raise ValidationError(expired)
    if data.get("e") != (getattr(actor, "email", None) or "").lower():
        raise PermissionDenied(
            f"this link was sent to {data.get('e')}; you are signed in as "
            f"{getattr(actor, 'email', None)}"
        )
    return data


def link_used(conn: Connection, jti: str) -> bool:
    return (
        conn.execute(select(col(UsedLink.jti)).where(col(UsedLink.jti) == jti)).first() is not None
    )


def use_link(target: Engine | Connection, jti: str, now: dt.datetime) -> None:
    """Record a link as used; a second use is refused. On a Connection it joins
    that connection's transaction (in a savepoint), so it is undone with it."""
    refused = ValidationError("this link has already been used")
    if isinstance(target, Connection):
        try:
            with target.begin_nested():
                target.execute(insert(UsedLink).values(jti=jti, used_at=now))
        except IntegrityError:
            raise refused from None
        return
    try:
        with write_connection(target) as conn, conn.begin():
            conn.execute(insert(UsedLink).values(jti=jti, used_at=now))
    except IntegrityError:
        raise refused from None
