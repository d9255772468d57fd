"""The audit trail: append-only, hash-chained events.

Each event's hash covers its own fields and the previous event's hash, so
altering, deleting or re-ordering any stored event breaks every hash after it;
``verify`` names the first event whose stored hash no longer matches.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from engine.store.models import AuditEvent, AuditHead
from engine.store.rawsql import RawStatement

GENESIS = "0" * 64


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value)
    raise TypeError(f"cannot put {type(value).__name__} into an audit event")


# json.dumps with these arguments, made once (json.dumps builds an encoder per call)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_json_default)


def canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) with dates as ISO strings."""
    return _CANONICAL.encode(value)


def event_hash(
    seq: int,
    at: str,
    actor: str,
    command: str,
    item_ref: str,
    before: str,
    after: str,
    reason: str,
    prev_hash: str,
) -> str:
    """sha256 over the event's fields, each length-prefixed (unambiguous without
    re-encoding the JSON already in ``before`` and ``after``)."""
    n = str(seq)
    body = (
        f"{len(n)}:{n};{len(at)}:{at};{len(actor)}:{actor};{len(command)}:{command};"
        f"{len(item_ref)}:{item_ref};{len(before)}:{before};{len(after)}:{after};"
        f"{len(reason)}:{reason};{len(prev_hash)}:{prev_hash};"
    )
    return sha256(body.encode()).hexdigest()


@dataclass
class PendingEvent:
    command: str
    item_ref: str
    before: dict[str, Any]
    after: dict[str, Any]
    reason: str = ""


@dataclass
class Head:
    last_seq: int
    last_hash: str
    directory_seq: int


# Every command runs these three; they carry only text and integers, so they
# go straight to the driver (engine/store/rawsql.py).
_HEAD = select(
    col(AuditHead.last_seq), col(AuditHead.last_hash), col(AuditHead.directory_seq)
).where(col(AuditHead.id) == 1)
_READ_HEAD = RawStatement(_HEAD)
_READ_HEAD_LOCKED = RawStatement(_HEAD.with_for_update())
_COLUMNS = (
    "seq",
    "at",
    "actor",
    "command",
    "item_ref",
    "before",
    "after",
    "reason",
    "prev_hash",
    "hash",
)
_INSERT = RawStatement(insert(AuditEvent).values({c: bindparam(c) for c in _COLUMNS}))
_MOVE_HEAD = RawStatement(
    update(AuditHead)
    .where(col(AuditHead.id) == 1)
    .values(last_seq=bindparam("seq"), last_hash=bindparam("hash"))
)
_MOVE_HEAD_AND_DIRECTORY = RawStatement(
    update(AuditHead)
    .where(col(AuditHead.id) == 1)
    .values(last_seq=bindparam("seq"), last_hash=bindparam("hash"), directory_seq=bindparam("seq"))
)


def lock_head(conn: Connection) -> Head:
    """Read (and on PostgreSQL row-lock) the chain's tip for this transaction.

    Every write transaction starts here, so writers are serialised: SQLite's
    BEGIN IMMEDIATE already holds the database's write lock; PostgreSQL waits
    on this row."""
    stmt = _READ_HEAD_LOCKED if conn.dialect.name == "postgresql" else _READ_HEAD
    row = stmt.execute(conn).fetchone()
    if row is None:
        raise RuntimeError("audit_head row missing: run 'quorum db upgrade'")
    return Head(row[0], row[1], row[2])


def append(
    conn: Connection,
    head: Head,
    events: list[PendingEvent],
    actor: str,
    at: dt.datetime,
    directory_changed: bool = False,
) -> None:
    """Append events after the (locked) head and move the head.

    Events may share their ``before``/``after`` objects (a command recording
    many items alike): each object is encoded once. The rows go to the driver
    as they are made (a generator), hashing each after the one before."""
    if not events:
        return
    at_s = at.astimezone(dt.UTC).isoformat()
    encoded: dict[int, tuple[Any, str]] = {}  # id -> (the object, kept alive; its JSON)
    tip: list[Any] = [head.last_seq, head.last_hash or GENESIS]  # seq and hash of the last row

    def encode(value: Any) -> str:
        found = encoded.get(id(value))
        if found is None:
            found = encoded[id(value)] = (value, canonical(value))
        return found[1]

    def rows() -> Iterator[tuple[Any, ...]]:
        seq, prev = tip
        for ev in events:
            seq += 1
            before, after = encode(ev.before), encode(ev.after)
            h = event_hash(
                seq, at_s, actor, ev.command, ev.item_ref, before, after, ev.reason, prev
            )
            tip[:] = seq, h
            yield (seq, at_s, actor, ev.command, ev.item_ref, before, after, ev.reason, prev, h)
            prev = h

    if len(events) == 1:
        _INSERT.execute(conn, dict(zip(_COLUMNS, next(rows()), strict=True)))
    else:
        _INSERT.executemany_values(conn, _COLUMNS, rows())
    seq, prev = tip
    move = _MOVE_HEAD_AND_DIRECTORY if directory_changed else _MOVE_HEAD
    move.execute(conn, {"seq": seq, "hash": prev})
    head.last_seq, head.last_hash = seq, prev
    if directory_changed:
        head.directory_seq = seq


@dataclass
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str = ""

    def message(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.events} events"
        return f"audit chain broken at event {self.first_bad_seq}: {self.problem}"


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Recompute every hash in order; report the first event that fails."""
    prev, expected_seq, count = GENESIS, 1, 0
    last = 0
    while True:
        rows: Sequence[AuditEvent] = (
            session.execute(
                select(AuditEvent)
                .where(col(AuditEvent.seq) > last)
                .order_by(col(AuditEvent.seq))
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                return VerifyResult(False, count, expected_seq, f"event {expected_seq} is missing")
            if ev.prev_hash != prev:
                return VerifyResult(
                    False,
                    count,
                    ev.seq,
                    f"({ev.command} {ev.item_ref}) does not follow event {ev.seq - 1}",
                )
            h = event_hash(
                ev.seq,
                ev.at,
                ev.actor,
                ev.command,
                ev.item_ref,
                ev.before,
                ev.after,
                ev.reason,
                ev.prev_hash,
            )
            if h != ev.hash:
                return VerifyResult(
                    False,
                    count,
                    ev.seq,
                    f"({ev.command} {ev.item_ref} by {ev.actor} at {ev.at}) was altered "
                    "after it was written",
                )
            prev, expected_seq, count, last = ev.hash, ev.seq + 1, count + 1, ev.seq
        session.expunge_all()
    head = session.get(AuditHead, 1)
    if head is not None and head.last_seq != count:
        return VerifyResult(
            False, count, count + 1, f"the chain head says {head.last_seq} events, found {count}"
        )
    return VerifyResult(True, count)


def history(session: Session, item_ref: str) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.item_ref) == item_ref)
            .order_by(col(AuditEvent.seq))
        ).scalars()
    )
