"""Idempotency keys: one caller's one command, run once (docs/security.md "Idempotency").

A key is scoped to (actor, command, key): the same text sent by another
caller, or on another command, is another key. The command bus
(engine/commands/service.py) takes a key one of two ways.

The usual way (SQLite and PostgreSQL): :func:`record`, at the end of the
command's own transaction, writes the key's row ``done`` with the result
(``INSERT ... ON CONFLICT DO NOTHING``): one statement a keyed command. The
writers' lock the transaction holds (SQLite's BEGIN IMMEDIATE, PostgreSQL's
row lock on ``audit_head``, taken first) means no other request sees or
writes the key while the command runs, so nothing is claimed before it; a
refused or killed run leaves nothing behind. (Until issue 15 the key was
claimed first and completed at the end, on PostgreSQL in a transaction of
its own: 725 statements a lifecycle; then 465 on both databases, and 345 on
PostgreSQL once the key's insert carried the command's other last writes:
engine/store/tail.py.) When the key already has a row, or the command is refused
while it has one, the bus rolls back and takes the key the polling way below,
which decides: the first result, a refusal naming the fields that differ, a
wait, or a take-over.

The polling way (a key that already has a row):

1. :func:`claim`, in a short transaction of its own:
   no live row -> insert one ``running`` with a fresh token and a lease
   (``lease_until``) -> :class:`Claimed`; a live row with another
   fingerprint -> :class:`KeyReused` naming the fields that differ (never a
   value: only hashes are kept); ``done`` -> :class:`Done` with the stored
   result; ``running`` within its lease -> :class:`Busy` (the bus waits and
   asks again, then answers 409 "in progress").
2. :func:`complete`, inside the command's own transaction: the row becomes
   ``done`` with the result, but only if it still carries this run's token.
   So the effects and the result commit together or not at all.
3. :func:`release` after a refusal or a failure: the row is deleted (if
   still ours), so a retry runs the command afresh (nothing was written).

The traps, and the line that handles each:

- Two first requests at once, the usual way: the writers' lock runs them one
  after the other; the second's :func:`record` finds the first's row, so its
  run is rolled back and it gets the first's result the polling way.
- Two claims at once, the polling way: the primary key lets one insert win; the
  other's IntegrityError sends it round again (``claim`` is retried by the
  bus) and it finds the winner's row.
- A process killed while its command runs: its transaction rolls back, its
  ``running`` row stays. The row holds the key only until ``lease_until``;
  after that :func:`claim` takes it over (``_take_over``: UPDATE ... WHERE
  token = the one read, so two retries cannot both take it).
- A run slower than its lease, taken over by a retry: :func:`complete`
  finds another token and refuses, so that run rolls back and only the
  retry's effects stay (the audit head lock serialises the two).
- Expired keys: a row past ``expires_at`` counts as absent (taken over like a
  lapsed one) and :func:`prune` (the daily sweep) deletes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import col

from engine.domain.errors import KeyReused
from engine.store.models import CommandLog, Person
from engine.store.rawsql import RawStatement

RUNNING = "running"
DONE = "done"
# How long a claim holds its key while the command runs: well above the slowest
# command (a sweep of a large board takes seconds); a killed process's key is free
# again after it.
LEASE = dt.timedelta(minutes=2)


# json.dumps(..., sort_keys=True, default=str) made once (json.dumps builds an encoder
# per call when given options): the same text, so stored fingerprints still match
_FIELD_JSON = json.JSONEncoder(sort_keys=True, default=str)
_ascii = json.encoder.encode_basestring_ascii  # the encoder's own (ensure_ascii) string escape


@dataclass(frozen=True)
class Fingerprint:
    """SHA-256 of each argument (by field name) and of them all."""

    digest: str
    fields: dict[str, str]

    @classmethod
    def of(cls, canonical: dict[str, Any]) -> Fingerprint:
        fields = {name: _sha256(field_json(name, value)) for name, value in canonical.items()}
        return cls(_sha256(json.dumps(sorted(fields.items()))), fields)

    def differing(self, stored: dict[str, str]) -> list[str]:
        names = set(self.fields) | set(stored)
        return sorted(n for n in names if self.fields.get(n) != stored.get(n))


def field_json(name: str, value: Any) -> str:
    """``_FIELD_JSON.encode([name, value])``, the text a field's hash is taken of
    (kept: stored fingerprints must still match). Every keyed command hashes each of
    its arguments: text, whole numbers, yes/no and nothing are written here directly
    (the encoder's own escaping, its ``[a, b]`` separators), 2 µs a field less;
    anything else goes through the encoder."""
    kind = type(value)
    if kind is str:
        text = _ascii(value)
    elif kind is int:
        text = int.__repr__(value)
    elif value is None:
        text = "null"
    elif kind is bool:
        text = "true" if value else "false"
    else:
        return _FIELD_JSON.encode([name, value])
    return f"[{_ascii(name)}, {text}]"


@dataclass(frozen=True)
class Key:
    """Whose key, on which command."""

    actor: str
    command: str
    key: str

    def params(self) -> dict[str, str]:
        return {"k_actor": self.actor, "k_command": self.command, "k_key": self.key}


@dataclass(frozen=True)
class Claimed:
    token: str
    replaced: str | None = None  # the token of an expired or lapsed claim taken over


@dataclass(frozen=True)
class Done:
    result: dict[str, Any]


@dataclass(frozen=True)
class Busy:
    pass


def scope(conn: Connection, person_id: int | None, label: str) -> str:
    """The caller a key belongs to: ``person:<id>``, else ``actor:<label>`` (the
    system and the scheduler). An email is looked up (case-insensitive)."""
    if person_id is None:
        person_id = conn.execute(_PERSON_BY_EMAIL, {"k_email": label.strip().lower()}).scalar()
    return scope_of(person_id, label)


def scope_of(person_id: int | None, label: str) -> str:
    """:func:`scope` when the caller's person id is known (the command's cached
    directory: no query)."""
    return f"person:{person_id}" if person_id is not None else f"actor:{label.strip().lower()}"


_PERSON_BY_EMAIL = select(col(Person.id)).where(
    func.lower(Person.email) == bindparam("k_email")
)


_PK = and_(
    col(CommandLog.actor) == bindparam("k_actor"),
    col(CommandLog.command) == bindparam("k_command"),
    col(CommandLog.key) == bindparam("k_key"),
)  # bind names that are no column's: execute() params matching a column would be SET
_READ = select(
    col(CommandLog.status),
    col(CommandLog.token),
    col(CommandLog.request_hash),
    col(CommandLog.field_hashes),
    col(CommandLog.result),
    col(CommandLog.lease_until),
    col(CommandLog.expires_at),
).where(_PK)
# Built once (a statement made per call costs more in SQLAlchemy than SQLite takes to
# run it: bench/profile_commands.py); the values are bound at execute.
_LOG = CommandLog.__table__
_CLAIM_VALUES = ("request_hash", "field_hashes", "status", "token", "lease_until", "result",
                 "at", "expires_at")  # fmt: skip
# on SQLite every keyed command runs the insert-or-ignore and the completion; they
# write only (text, JSON, datetimes): straight to the driver, with SQLAlchemy's own
# conversions (engine/store/rawsql.py). Neither can raise a lost race.
_CLAIM_ROW = {
    "actor": bindparam("k_actor"), "command": bindparam("k_command"), "key": bindparam("k_key"),
    **{c: bindparam(f"v_{c}", type_=_LOG.c[c].type) for c in _CLAIM_VALUES},
}  # fmt: skip
_INSERT = insert(_LOG).values(_CLAIM_ROW)
# INSERT ... ON CONFLICT DO NOTHING, in each dialect's own words (built once each)
RECORD = {
    "sqlite": sqlite_insert(_LOG).values(_CLAIM_ROW).on_conflict_do_nothing(),
    "postgresql": pg_insert(_LOG).values(_CLAIM_ROW).on_conflict_do_nothing(),
}
_INSERT_OR_IGNORE = {dialect: RawStatement(stmt) for dialect, stmt in RECORD.items()}
_TAKE_OVER = (
    update(_LOG)
    .where(_PK, _LOG.c.token == bindparam("seen"))
    .values({c: bindparam(f"v_{c}") for c in _CLAIM_VALUES})
)
IN_RUN_DIALECTS = frozenset(_INSERT_OR_IGNORE)  # where the bus claims keys in the command's run
_COMPLETE = RawStatement(
    update(_LOG)
    .where(_PK, _LOG.c.token == bindparam("k_token"))
    .values({c: bindparam(f"v_{c}", type_=_LOG.c[c].type)
             for c in ("status", "result", "at", "expires_at")})
)  # fmt: skip
_RELEASE = delete(_LOG).where(_PK, _LOG.c.token == bindparam("k_token"))


def claim(
    conn: Connection, key: Key, fp: Fingerprint, now: dt.datetime, ttl: dt.timedelta
) -> Claimed | Done | Busy:
    """Step 1 (its own transaction). Raises KeyReused; an IntegrityError means
    another claim won the insert: ask again."""
    pk = key.params()
    token = uuid.uuid4().hex
    row = conn.execute(_READ, pk).first()
    values = _values(fp, token, now, ttl)
    if row is None:
        # through SQLAlchemy: a lost race must surface as its IntegrityError (the bus
        # asks again); the driver's own error would escape it
        conn.execute(_INSERT, {**pk, **values})
        return Claimed(token)
    lapsed = _utc(row.lease_until) <= now if row.status == RUNNING else False
    if _utc(row.expires_at) <= now or lapsed:
        # an expired key may be used again; a lapsed claim (its process died) is taken over
        taken = conn.execute(_TAKE_OVER, {**pk, **values, "seen": row.token})
        return Claimed(token, row.token) if taken.rowcount == 1 else Busy()
    if row.request_hash and row.request_hash != fp.digest:  # "": logged before 0005
        differ = fp.differing(row.field_hashes or {})
        raise KeyReused(
            f"idempotency key {key.key!r} was first used with other arguments: "
            f"{', '.join(differ) or 'the command'} — use a new key for a new request",
            field="key",
        )
    if row.status == DONE:
        return Done(row.result)
    return Busy()


def record(
    conn: Connection, key: Key, fp: Fingerprint, result: dict[str, Any], now: dt.datetime,
    ttl: dt.timedelta,
) -> bool:  # fmt: skip
    """Steps 1 and 2 at once, at the end of the command's own transaction (which holds
    the writers' lock): the key's row written ``done`` with the result, unless the key
    already has a row (``ON CONFLICT DO NOTHING``): False, and the bus rolls back and
    asks that row (:func:`claim`). One statement for a new key."""
    return record_values(conn, done_values(key, fp, result, now, ttl))


def record_values(conn: Connection, values: dict[str, Any]) -> bool:
    """:func:`record` given its parameters (:func:`done_values`)."""
    return bool(_INSERT_OR_IGNORE[conn.dialect.name].execute(conn, values).rowcount == 1)


def done_values(
    key: Key, fp: Fingerprint, result: dict[str, Any], now: dt.datetime, ttl: dt.timedelta
) -> dict[str, Any]:
    """The parameters of :func:`record`'s statement (:data:`RECORD`;
    engine/store/tail.py sends it with the command's other last writes)."""
    return {**key.params(), **_values(fp, uuid.uuid4().hex, now, ttl),
            "v_status": DONE, "v_result": result, "v_lease_until": now}  # fmt: skip


def stored(conn: Connection, key: Key) -> bool:
    """Whether the key has a row (whatever its state)."""
    return conn.execute(_READ, key.params()).first() is not None


def _values(fp: Fingerprint, token: str, now: dt.datetime, ttl: dt.timedelta) -> dict[str, Any]:
    """A claim's columns, as the statements above bind them."""
    return {
        "v_request_hash": fp.digest,
        "v_field_hashes": fp.fields,
        "v_status": RUNNING,
        "v_token": token,
        "v_lease_until": now + LEASE,
        "v_result": {},
        "v_at": now,
        "v_expires_at": now + ttl,
    }


def complete(
    conn: Connection, key: Key, token: str, result: dict[str, Any], now: dt.datetime,
    ttl: dt.timedelta,
) -> bool:
    """Step 2 (in the command's transaction): False if the claim was taken over."""
    done = _COMPLETE.execute(
        conn,
        {**key.params(), "k_token": token, "v_status": DONE, "v_result": result, "v_at": now,
         "v_expires_at": now + ttl},
    )  # fmt: skip
    return bool(done.rowcount == 1)


def release(conn: Connection, key: Key, token: str) -> None:
    """Step 3 (its own transaction): forget a claim whose command did nothing."""
    conn.execute(_RELEASE, {**key.params(), "k_token": token})


def prune(conn: Connection, now: dt.datetime) -> int:
    """Delete expired keys (not a claim still within its lease). Returns how many."""
    gone = conn.execute(
        delete(CommandLog).where(
            col(CommandLog.expires_at) <= now,
            or_(col(CommandLog.status) == DONE, col(CommandLog.lease_until) <= now),
        )
    )
    return gone.rowcount


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
