"""The writes that end every command, in one statement on PostgreSQL.

Every command the bus (engine/commands/service.py) runs ends the same way: its
audit events appended to the chain, the chain head moved, its messages written
to the outbox with their in-app notices, and the caller's idempotency key
written ``done`` with the result. On SQLite each is its own statement (no round
trip: a statement is a call into the library). On PostgreSQL each statement is
a round trip, so they go as one: data-modifying ``WITH`` clauses of the key's
``INSERT ... ON CONFLICT DO NOTHING`` (:class:`engine.store.rawsql.RawChain`),
three to five round trips fewer per command (bench/lifecycle.py). The rows are
the same ones, made by the same functions (:func:`audit.chained`,
:func:`notices.rows`, :func:`idempotency.done_values`).

The traps, and the line that handles each:

- The clauses share one snapshot and cannot see each other's rows: none reads
  what another writes (each is a plain INSERT or the head's UPDATE by id).
- A duplicate outbox key (or any constraint) fails the one statement: raised as
  SQLAlchemy's IntegrityError, as the separate statements were (``_run``), and
  the bus refuses the command and rolls back.
- The key already has a row: ``ON CONFLICT DO NOTHING`` writes nothing for it,
  the rowcount is 0 and the bus rolls the whole transaction back (the other
  clauses' rows with it), as before.
- A command with many events or messages (a sweep, a bulk import) would make
  a statement per shape: above :data:`MOST` rows of a kind, or a message with
  other columns than the usual ones, the statements go one by one.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from engine.settings import Settings
from engine.store import audit, auditkeys, idempotency, notices
from engine.store.auditkeys import Keyring
from engine.store.directory import Directory
from engine.store.models import AuditEvent, AuditHead
from engine.store.rawsql import RawChain

MOST = 4  # rows of one kind (events, outbox rows, notices) sent in the one statement


def write(
    conn: Connection,
    head: audit.Head,
    events: list[audit.PendingEvent],
    actor: str,
    at: dt.datetime,
    messages: list[dict[str, Any]],
    directory: Directory | None,
    *,
    directory_changed: bool = False,
    key: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> bool:
    """Append ``events`` after the locked ``head`` (and move it), queue ``messages``
    (notices: people from ``directory``, else read) and, with ``key`` (the
    parameters of :func:`idempotency.done_values`), write the key done (the audit keyring
    that ``settings`` name, default those in force, read only when there are events). False: the
    key has a row already (nothing of it written; the caller rolls back)."""
    keys = auditkeys.keyring(settings) if events else None
    outbox, notes = notices.rows(conn, messages, at, directory) if messages else ([], [])
    if (
        conn.dialect.name == "postgresql"
        and len(events) <= MOST
        and len(outbox) <= MOST
        and len(notes) <= MOST
        and all(r.keys() == notices.OUTBOX_COLUMNS for r in outbox)
        and (events or outbox or key is not None)
    ):
        return _one_statement(conn, head, events, actor, at, outbox, notes,
                              directory_changed, key, keys)  # fmt: skip
    audit.append(conn, head, events, actor, at, directory_changed=directory_changed, keys=keys)
    notices.write(conn, outbox, notes)
    if key is None:
        return True
    return idempotency.record_values(conn, key)


def _one_statement(
    conn: Connection, head: audit.Head, events: list[audit.PendingEvent], actor: str,
    at: dt.datetime, outbox: list[dict[str, Any]], notes: list[dict[str, Any]],
    directory_changed: bool, key: dict[str, Any] | None, keys: Keyring | None,
) -> bool:  # fmt: skip
    params: dict[str, Any] = dict(key) if key is not None else {}
    for r, row in enumerate(audit.chained(head, events, actor, at, keys)):
        params.update(zip(_EVENT_NAMES[r], row, strict=True))
    if events:
        params["h_seq"], params["h_hash"] = head.last_seq, head.last_hash
    for r, orow in enumerate(outbox):
        params.update((f"o{r}_{c}", v) for c, v in orow.items())
    for r, nrow in enumerate(notes):
        params.update((f"n{r}_{c}", v) for c, v in nrow.items())
    stmt = _statement(len(events), len(outbox), len(notes), directory_changed and bool(events),
                      key is not None)  # fmt: skip
    try:
        cursor = stmt.execute(conn, params)
    except conn.dialect.loaded_dbapi.IntegrityError as exc:  # as through SQLAlchemy
        raise IntegrityError(str(stmt.stmt), params, exc) from None
    if events and directory_changed:
        head.directory_seq = head.last_seq
    return key is None or cursor.rowcount == 1


_EVENT_NAMES = [tuple(f"e{r}_{c}" for c in audit.COLUMNS) for r in range(MOST)]
_EVENT = AuditEvent.__table__
_HEAD = AuditHead.__table__


@lru_cache(maxsize=256)
def _statement(events: int, outbox: int, notes: int, directory: bool, key: bool) -> RawChain:
    """The one statement for a shape of command end, built once per shape."""
    parts: list[Any] = []
    if events:
        parts.append(insert(_EVENT).values(
            [{c: bindparam(n) for c, n in zip(audit.COLUMNS, _EVENT_NAMES[r], strict=True)}
             for r in range(events)]
        ))  # fmt: skip
        moved: dict[str, Any] = {"last_seq": bindparam("h_seq"), "last_hash": bindparam("h_hash")}
        if directory:
            moved["directory_seq"] = bindparam("h_seq")
        parts.append(update(_HEAD).where(col(AuditHead.id) == 1).values(moved))
    for rows, table, columns, prefix in (
        (outbox, notices.OUT, sorted(notices.OUTBOX_COLUMNS), "o"),
        (notes, notices.NOTE, notices.NOTE_COLUMNS, "n"),
    ):
        if rows:
            parts.append(insert(table).values(
                [{c: bindparam(f"{prefix}{r}_{c}", type_=table.c[c].type) for c in columns}
                 for r in range(rows)]
            ))  # fmt: skip
    if key:
        parts.append(idempotency.RECORD["postgresql"])
    return RawChain(parts[:-1], parts[-1])
