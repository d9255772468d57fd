"""The one place a command's messages are written: each to the outbox (the email,
sent after commit by notifications/dispatch.py) and, when it is addressed to a
person registered here, as that person's in-app notification (the
/notifications page) — in the same transaction, under the same key, so a
message and its notice exist together or not at all.

    queue(conn, messages, now, directory=None)   the outbox rows and the notices
    mark_read(conn, person_id, now, notice_id=None) -> int   (None: all unread)

A message dict is what ``UnitOfWork.notify`` collects (the outbox columns) with
two optional extras: ``item`` (the ref it is about) and ``link`` (that item's
page), and ``status`` (default ``queued``): a message written ``held`` (waiting
for an officer to confirm a catch-up sweep) or ``digested`` (sent inside a
digest) gets no notice of its own — its digest has one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.store.directory import Directory
from engine.store.models import Notification, Outbox, Person
from engine.store.rawsql import RawStatement

__all__ = ["QUEUED", "HELD", "DIGESTED", "SWEEPING", "queue", "rows", "write", "mark_read"]

OUT = Outbox.__table__
NOTE = Notification.__table__
PERSON = Person.__table__

QUEUED = "queued"
HELD = "held"  # a catch-up sweep's message, until an officer confirms (engine/commands/sweep.py)
DIGESTED = "digested"  # recorded, and sent inside a digest message instead of alone
SWEEPING = "sweeping"  # written by a chunk of the sweep; its last step holds, digests or queues it
_EXTRAS = ("item", "link")
# on the tables, not the models: an ORM insert costs its bulk-persistence pass per call
_INSERT_OUTBOX = insert(OUT)
_INSERT_NOTE = insert(NOTE)
# most commands queue a message: its two rows in the usual columns go straight to the
# driver (engine/store/rawsql.py; 0.1 ms a command less, bench/lifecycle.py), others
# (a sweep's extra columns) through SQLAlchemy as above
OUTBOX_COLUMNS = frozenset(
    ("key", "channel", "to_addr", "template", "subject", "context", "created_at", "status",
     "attempts")
)  # fmt: skip
NOTE_COLUMNS = ("key", "person_id", "what", "item_ref", "link", "created_at")
_RAW_OUTBOX = RawStatement(
    insert(OUT).values({c: bindparam(c, type_=OUT.c[c].type) for c in sorted(OUTBOX_COLUMNS)})
)
_RAW_NOTE = RawStatement(
    insert(NOTE).values({c: bindparam(c, type_=NOTE.c[c].type) for c in NOTE_COLUMNS})
)


def queue(
    conn: Connection,
    messages: Sequence[dict[str, Any]],
    now: dt.datetime,
    directory: Directory | None = None,
) -> None:
    """Write ``messages`` to the outbox, and a notice for each one still to be
    sent whose address is a registered, active person's (:func:`rows`)."""
    if messages:
        write(conn, *rows(conn, messages, now, directory))


def write(conn: Connection, outbox: list[dict[str, Any]], notes: list[dict[str, Any]]) -> None:
    """Write the rows :func:`rows` made."""
    if not outbox:
        return
    if all(r.keys() == OUTBOX_COLUMNS for r in outbox):
        _insert_raw(conn, _RAW_OUTBOX, outbox)
    else:
        conn.execute(_INSERT_OUTBOX, outbox[0] if len(outbox) == 1 else outbox)
    if notes:
        _insert_raw(conn, _RAW_NOTE, notes)


def rows(
    conn: Connection,
    messages: Sequence[dict[str, Any]],
    now: dt.datetime,
    directory: Directory | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The outbox rows of ``messages`` and the notices (columns :data:`NOTE_COLUMNS`)
    that go with them: :func:`queue` writes them (the command bus on PostgreSQL, in
    the statement that ends the command: engine/store/tail.py). The people come from
    ``directory`` (the command's cached one, when nothing in this transaction changed
    it), else from one query: a submit_bid measured 0.15 ms (9%) faster without the
    query (bench/profile_commands.py)."""
    outbox = [_outbox_row(m, now) for m in messages]
    told = [m for m in messages if m.get("status", QUEUED) == QUEUED]
    addresses = sorted({m["to_addr"].lower() for m in told})
    people: dict[str, int] = {}
    if directory is not None:
        for address in addresses:
            p = directory.person(address)
            if p is not None and p.active:
                people[address] = p.id
        addresses = []
    for i in range(0, len(addresses), 500):
        found = select(PERSON.c.id, PERSON.c.email).where(
            func.lower(PERSON.c.email).in_(addresses[i : i + 500]), PERSON.c.active.is_(True)
        )
        people.update((str(r.email).lower(), int(r.id)) for r in conn.execute(found))
    notes = [
        {
            "key": m["key"],
            "person_id": people[m["to_addr"].lower()],
            "what": m["subject"],
            "item_ref": m.get("item") or "",
            "link": m.get("link") or "",
            "created_at": now,
        }
        for m in told
        if m["to_addr"].lower() in people
    ]
    return outbox, notes


def _outbox_row(message: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A message's outbox row: its columns without the extras, stamped queued (unless
    it says otherwise) now, never tried."""
    row = dict(message)
    for extra in _EXTRAS:
        row.pop(extra, None)
    row["created_at"] = now
    row["status"] = message.get("status", QUEUED)
    row["attempts"] = 0
    return row


def _insert_raw(conn: Connection, stmt: RawStatement, rows: list[dict[str, Any]]) -> None:
    """Rows straight to the driver; a duplicate key is SQLAlchemy's IntegrityError, as
    through ``conn.execute`` (the bus refuses the command: "refused by the database")."""
    try:
        if len(rows) == 1:
            stmt.execute(conn, rows[0])
        else:
            stmt.executemany(conn, rows)
    except conn.dialect.loaded_dbapi.IntegrityError as exc:
        raise IntegrityError(str(stmt.stmt), rows, exc) from None


def mark_read(
    conn: Connection, person_id: int, now: dt.datetime, notice_id: int | None = None
) -> int:
    """Mark one of this person's notices read (or all their unread ones); how many
    changed. Someone else's notice is never touched (it counts 0)."""
    where = [NOTE.c.person_id == person_id, NOTE.c.read_at.is_(None)]
    if notice_id is not None:
        where.append(NOTE.c.id == notice_id)
    return int(conn.execute(update(NOTE).where(*where).values(read_at=now)).rowcount or 0)
