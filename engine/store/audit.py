"""The audit trail: append-only, hash-chained events, keyed.

Each event's hash covers its own fields (with the money movements the command
booked) and the previous event's hash, so altering, deleting or re-ordering
any stored event breaks the chain; ``verify`` names every event that no
longer matches. The hash is an HMAC-SHA256 with a key kept outside the
database (engine/store/auditkeys.py): someone who can write to the database
but does not hold the key cannot make a rewritten event verify, even by
recomputing every later hash. The event stores the id of its key (rotation).

Events written before the chain was keyed (up to ``audit_head.legacy_seq``,
recorded by migration 0008) keep their unkeyed sha256 (:func:`event_hash`) and
verify with it; every later event must be keyed. The signed checkpoints
(engine/store/checkpoints.py) pin the head outside the database, which is what
catches a rewrite of the legacy part or a truncation.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from engine.store.auditkeys import DEV_KEY_ID, Keyring, keyring
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


def _keyed_body(
    seq: int, at: str, actor: str, command: str, item_ref: str, before: str, after: str,
    reason: str, prev_hash: str, money: str, key_id: str,
) -> bytes:  # fmt: skip
    n = str(seq)
    return (
        f"{len(n)}:{n};{len(at)}:{at};{len(actor)}:{actor};{len(command)}:{command};"
        f"{len(item_ref)}:{item_ref};{len(before)}:{before};{len(after)}:{after};"
        f"{len(reason)}:{reason};{len(prev_hash)}:{prev_hash};{len(money)}:{money};"
        f"{len(key_id)}:{key_id};"
    ).encode()


def keyed_hash(
    keys: Keyring, key_id: str, seq: int, at: str, actor: str, command: str, item_ref: str,
    before: str, after: str, reason: str, prev_hash: str, money: str,
) -> str:  # fmt: skip
    """HMAC-SHA256 (key ``key_id``) over the event's fields, its money and the key id,
    each length-prefixed as in :func:`event_hash`."""
    body = _keyed_body(
        seq, at, actor, command, item_ref, before, after, reason, prev_hash, money, key_id
    )
    return keys.mac(key_id, body)


@dataclass
class PendingEvent:
    command: str
    item_ref: str
    before: dict[str, Any]
    after: dict[str, Any]
    reason: str = ""
    money: list[dict[str, Any]] | None = None  # movements booked (engine/store/ledger.py book)


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
# PostgreSQL: through SQLAlchemy, not straight to the driver. It is the first statement
# of every write transaction and the pool does not ping at checkout (engine/store/db.py):
# a connection the server dropped while idle fails here as a DBAPIError marked
# ``connection_invalidated`` (the pool renews its connections), before anything ran.
_HEAD_LOCKED = _HEAD.with_for_update()
COLUMNS = (
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
    "money",
    "key_id",
)
_INSERT = RawStatement(insert(AuditEvent).values({c: bindparam(c) for c in COLUMNS}))
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
    if conn.dialect.name == "postgresql":
        row = conn.execute(_HEAD_LOCKED).first()
    else:
        row = _READ_HEAD.execute(conn).fetchone()
    if row is None:
        raise RuntimeError("audit_head row missing: run 'quorum db upgrade'")
    return Head(row[0], row[1], row[2])


_BEGIN_LOCKED: dict[str, str] = {}  # dialect -> "BEGIN; SELECT ... FOR UPDATE"


def begin_and_lock_head(conn: Connection) -> Head:
    """Begin ``conn``'s transaction and lock the chain's head in one round trip
    (PostgreSQL; elsewhere :func:`lock_head` in the transaction begun).

    psycopg sends BEGIN as a round trip of its own before a transaction's first
    statement; a command's first statement is always this lock, so the bus sends
    both as one query (the simple protocol takes several statements). The traps,
    and the line that handles each:

    - psycopg would send its own BEGIN first: the driver connection is put in
      autocommit mode for this checkout (``driver.autocommit = True``); the server
      is in the transaction from our BEGIN until COMMIT or ROLLBACK, which psycopg
      sends whatever its mode (``commit()``/``rollback()`` look at the server's
      state). The bus puts the mode back when the transaction ends
      (:func:`end_begun`), before the connection goes back to the pool.
    - A query of several statements cannot be a prepared statement: ``prepare=False``.
    - Its first result is BEGIN's: ``nextset()`` moves to the head's row.
    - Straight to the driver, a dropped connection would not be SQLAlchemy's
      DBAPIError marked ``connection_invalidated`` (the bus retries on it): the
      dialect says whether it is a disconnect, the connection is invalidated and
      the error raised as SQLAlchemy would (:func:`_raise_as_sqlalchemy`).
    """
    dialect = conn.dialect
    if dialect.name != "postgresql":
        return lock_head(conn)
    sql = _BEGIN_LOCKED.get(dialect.name)
    if sql is None:
        sql = _BEGIN_LOCKED[dialect.name] = "BEGIN; " + str(
            _HEAD_LOCKED.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        )
    driver: Any = conn.connection.driver_connection  # (psycopg's Connection)
    cursor = None
    try:
        driver.autocommit = True  # (the connection is idle: just checked out)
        cursor = driver.cursor()
        cursor.execute(sql, prepare=False)
        cursor.nextset()
        row = cursor.fetchone()
    except dialect.loaded_dbapi.Error as exc:
        _raise_as_sqlalchemy(conn, exc, sql, cursor)
    finally:
        if cursor is not None:
            cursor.close()
    if row is None:
        raise RuntimeError("audit_head row missing: run 'quorum db upgrade'")
    return Head(row[0], row[1], row[2])


def end_begun(conn: Connection) -> None:
    """After the transaction :func:`begin_and_lock_head` began has ended (committed or
    rolled back): the driver connection back in its usual mode. One that cannot be
    (broken, or still in a transaction) is invalidated: the pool never hands it out
    again."""
    if conn.dialect.name != "postgresql" or conn.invalidated or conn.closed:
        return
    driver: Any = conn.connection.driver_connection
    if driver is None or not driver.autocommit:
        return
    try:
        driver.autocommit = False
    except conn.dialect.loaded_dbapi.Error as exc:
        conn.invalidate(exc)


@contextmanager
def begun(conn: Connection) -> Iterator[None]:
    """A block whose end runs :func:`end_begun` (put it outside the transaction's)."""
    try:
        yield
    finally:
        end_begun(conn)


def _raise_as_sqlalchemy(conn: Connection, exc: Any, sql: str, cursor: Any) -> None:
    disconnect = bool(conn.dialect.is_disconnect(exc, conn.connection, cursor))
    if disconnect:
        conn.invalidate(exc)
    raise DBAPIError.instance(
        sql, None, exc, conn.dialect.loaded_dbapi.Error,
        connection_invalidated=disconnect, dialect=conn.dialect,
    ) from exc  # fmt: skip


def chained(
    head: Head, events: Sequence[PendingEvent], actor: str, at: dt.datetime,
    keys: Keyring | None = None,
) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    """The rows of ``events`` (values in :data:`COLUMNS` order) after the (locked)
    head, each hashed after the one before; the head follows each row made.

    Events may share their ``before``/``after`` objects (a command recording many
    items alike): each object is encoded once. A generator: the driver may take the
    rows one at a time. ``keys``: the keyring (default: the settings' in force)."""
    at_s = at.astimezone(dt.UTC).isoformat()
    keys = keys if keys is not None else keyring()
    key_id = keys.current
    encoded: dict[int, tuple[Any, str]] = {}  # id -> (the object, kept alive; its JSON)

    def encode(value: Any) -> str:
        found = encoded.get(id(value))
        if found is None:
            found = encoded[id(value)] = (value, canonical(value))
        return found[1]

    seq, prev = head.last_seq, head.last_hash or GENESIS
    for ev in events:
        seq += 1
        before, after = encode(ev.before), encode(ev.after)
        money = canonical(ev.money) if ev.money else ""
        h = keyed_hash(
            keys, key_id, seq, at_s, actor, ev.command, ev.item_ref, before, after,
            ev.reason, prev, money,
        )
        head.last_seq, head.last_hash = seq, h
        yield (
            seq, at_s, actor, ev.command, ev.item_ref, before, after, ev.reason, prev, h,
            money, key_id,
        )
        prev = h


def append(
    conn: Connection,
    head: Head,
    events: list[PendingEvent],
    actor: str,
    at: dt.datetime,
    directory_changed: bool = False,
    keys: Keyring | None = None,
) -> None:
    """Append events after the (locked) head and move the head (:func:`chained`:
    the rows go to the driver as they are made)."""
    if not events:
        return
    rows = chained(head, events, actor, at, keys)
    if len(events) == 1:
        _INSERT.execute(conn, dict(zip(COLUMNS, next(rows), strict=True)))
    else:
        _INSERT.executemany_values(conn, COLUMNS, rows)
    move = _MOVE_HEAD_AND_DIRECTORY if directory_changed else _MOVE_HEAD
    move.execute(conn, {"seq": head.last_seq, "hash": head.last_hash})
    if directory_changed:
        head.directory_seq = head.last_seq


MAX_PROBLEMS = 50


@dataclass
class VerifyResult:
    """The chain checked: ``events`` is how many verified before the first
    problem (all of them when ``ok``); ``problems`` names each problem found."""

    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str = ""
    problems: list[str] = field(default_factory=list)
    total: int = 0  # events stored
    last_hash: str = GENESIS  # the stored hash of the last event
    legacy_seq: int = 0  # events up to here carry the legacy unkeyed hash
    legacy_movement: int = 0
    development_key: bool = False  # some event was verified with the development key
    key_ids: list[str] = field(default_factory=list)  # the keys the events name
    pinned: dict[int, str] = field(default_factory=dict)  # stored hash at the seqs asked for

    def message(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.events} events"
        return f"audit chain broken at event {self.first_bad_seq}: {self.problem}"


def verify(
    session: Session,
    batch: int = 5000,
    keys: Keyring | None = None,
    *,
    pins: Collection[int] = (),
    since: tuple[int, str] | None = None,
) -> VerifyResult:
    """Check every event: its link to the one before, its hash (HMAC with the key
    it names, or the legacy sha256 up to the recorded boundary), and the head.
    Every problem is named (up to :data:`MAX_PROBLEMS`), the first one first.

    ``pins``: seqs whose stored hash to report (``pinned``; the checkpoints'
    counts). ``since``: (seq, hash) already known good (a checkpoint's): only the
    events after it are checked, the first against that hash."""
    keys = keys if keys is not None else keyring()
    head = session.get(AuditHead, 1)
    legacy = head.legacy_seq if head is not None else 0
    result = VerifyResult(True, 0, legacy_seq=legacy,
                          legacy_movement=head.legacy_movement if head is not None else 0)
    more = 0

    def bad(seq: int, problem: str) -> None:
        nonlocal more
        if result.ok:
            result.ok, result.first_bad_seq, result.problem = False, seq, problem
        if len(result.problems) < MAX_PROBLEMS:
            result.problems.append(f"event {seq}: {problem}")
        else:
            more += 1

    prev, expected_seq, count = GENESIS, 1, 0
    last = 0
    if since is not None:
        last, prev = since
        expected_seq = last + 1
    used: set[str] = set()
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
            what = f"({ev.command} {ev.item_ref} by {ev.actor} at {ev.at})"
            if ev.seq != expected_seq:
                gap = (f"event {expected_seq} is missing" if ev.seq == expected_seq + 1 else
                       f"events {expected_seq} to {ev.seq - 1} are missing")  # fmt: skip
                bad(expected_seq, gap)
            elif ev.prev_hash != prev:
                bad(ev.seq, f"({ev.command} {ev.item_ref}) does not follow event {ev.seq - 1}")
            if ev.seq <= legacy:
                if ev.key_id or ev.money:
                    bad(ev.seq, f"{what} is before the keyed chain began (event {legacy + 1}) "
                                "but carries a key id or money: it was rewritten")  # fmt: skip
                h = event_hash(ev.seq, ev.at, ev.actor, ev.command, ev.item_ref, ev.before,
                               ev.after, ev.reason, ev.prev_hash)  # fmt: skip
                if h != ev.hash:
                    bad(ev.seq, f"{what} was altered after it was written (legacy unkeyed hash)")
            elif not ev.key_id:
                bad(ev.seq, f"{what} has no key id, but every event after {legacy} is keyed: "
                            "it was inserted or rewritten without the key")  # fmt: skip
            elif not keys.has(ev.key_id):
                bad(ev.seq, f"{what} names audit key {ev.key_id!r}, which the keyring "
                            f"({keys.source}) does not hold: add it, or the event was forged")
            else:
                used.add(ev.key_id)
                h = keyed_hash(keys, ev.key_id, ev.seq, ev.at, ev.actor, ev.command,
                               ev.item_ref, ev.before, ev.after, ev.reason, ev.prev_hash,
                               ev.money)  # fmt: skip
                if not hmac.compare_digest(h, ev.hash):
                    bad(ev.seq, f"{what} was altered after it was written (its HMAC under "
                                f"key {ev.key_id!r} does not match)")  # fmt: skip
            if ev.seq in pins:
                result.pinned[ev.seq] = ev.hash
            if result.ok:
                count += 1
            prev, expected_seq, last = ev.hash, ev.seq + 1, ev.seq
            result.total += 1
        session.expunge_all()
    result.last_hash = prev
    if head is not None and head.last_seq != last:
        bad(last + 1 if head.last_seq > last else head.last_seq + 1,
            f"the chain head says {head.last_seq} events, found {last}")  # fmt: skip
    elif head is not None and last and head.last_hash != prev:
        bad(last, f"the chain head's hash is not event {last}'s hash")
    if more:
        result.problems.append(f"... and {more} more problems in the chain")
    result.events = count
    result.key_ids = sorted(used)
    result.development_key = DEV_KEY_ID in used or (not used and keys.development)
    return result


def history(session: Session, item_ref: str) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.item_ref) == item_ref)
            .order_by(col(AuditEvent.seq))
        ).scalars()
    )
