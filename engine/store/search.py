"""Search indexes: what makes a list's ``?q=`` an index look-up, not a scan.

A list's search (engine/read/listing.py) is a case-insensitive substring
match, ``lower(column) LIKE '%q%'``, over the columns of :data:`SEARCHED`.
Without an index every search reads every row of the tables it looks in.

- SQLite: one FTS5 table per searched table, ``<table>_search``, with the
  ``trigram`` tokenizer. It is *contentless* (``content=''``) and
  ``case_sensitive 1``, and holds SQLite's own ``lower(column)`` of each
  column, put there by triggers on insert, update (of a searched column) and
  delete (not ``columnsize=0``: a contentless table lists its rows from the
  column sizes, and without them cannot be read whole, as tests' dumps of
  every table do). So a trigram phrase query of ``q.lower()`` matches exactly the rows
  ``lower(column) LIKE '%q%'`` matches: the same ``lower()`` (ASCII-only in
  SQLite), no other folding. (An external-content table would have to fold
  case with FTS5's own Unicode folding, which is not SQLite's ``lower()``: a
  non-ASCII letter would match in one and not the other.) A trigram query
  needs at least 3 characters: shorter searches keep the scan.
- PostgreSQL: a ``pg_trgm`` GIN index on ``lower(column)``, ``<table>_<column>_trgm``:
  the same ``lower(column) LIKE`` uses it. If the extension cannot be created
  (not installed: Debian's postgresql-contrib has it), the indexes are left
  out, a warning says so, and searches scan as before.

The audit trail is only ever appended to (its chain of hashes would break on
an edit), and every command appends a handful of lines: triggers indexing them
trigram by trigram cost each command ~30 µs a line (the whole lifecycle
benchmark 20 % slower, below its floor target). So the tables of
:data:`APPENDED` have no triggers: :func:`catch_up` indexes the rows appended
since its last run (the scheduler runs it every two minutes, 5,000 lines a
transaction), and a search looks the newer rows up by scan, keyed above
what the index holds (:func:`indexed_upto`): the same rows, found. On
PostgreSQL they have no trigram indexes (a GIN index is written with each
line): an audit search there scans, one page at a time.

Traps: a SQLite migration that rebuilds a searched table
(``batch_alter_table`` copies it and drops the old one) drops its triggers
with it: call :func:`install_triggers` again after it (tests/test_search.py
checks a migrated database has every trigger a new one has). The contentless
index must be told the *old* values when a row goes (the ``'delete'``
command): the triggers pass ``lower(old.column)``, the same as was indexed.

:data:`SEARCHED` is the schema as it is now; a migration keeps its own copy of
what it created (0033).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import column, func, select, text
from sqlalchemy import table as sa_table
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

MIN_INDEXED = 3  # characters: a trigram index cannot answer a shorter substring

# table -> (its integer key, the text columns the lists search)
SEARCHED: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "bid": ("id", ("ref", "title")),
    "organisation": ("id", ("name",)),
    "grant_award": ("id", ("ref",)),
    "grant_return": ("id", ("ref",)),
    "delegated_decision": ("id", ("ref", "title")),
    "action": ("id", ("what", "owner")),
    "meeting": ("id", ("ref",)),
    "audit_event": ("seq", ("item_ref", "actor", "command", "reason")),
}

Searched = Mapping[str, tuple[str, Sequence[str]]]

# tables only ever appended to: indexed by catch_up, not by triggers (module doc)
APPENDED = frozenset({"audit_event"})


def fts_table(table: str) -> str:
    """The SQLite FTS5 table indexing ``table``."""
    return f"{table}_search"


def trgm_index(table: str, column: str) -> str:
    """The PostgreSQL pg_trgm index on ``lower(table.column)``."""
    return f"ix_{table}_{column}_trgm"


def is_search_object(name: str | None, searched: Searched = SEARCHED) -> bool:
    """An FTS5 table (or one of its shadow tables) or a trigram index: made by
    this module, not described by the models (Alembic's comparison skips them)."""
    if not name:
        return False
    for table, (_, columns) in searched.items():
        if name == fts_table(table) or name.startswith(fts_table(table) + "_"):
            return True
        if name in {trgm_index(table, c) for c in columns}:
            return True
    return False


def _q(name: str) -> str:
    return f'"{name}"'


def _sqlite_triggers(table: str, key: str, columns: Sequence[str]) -> list[str]:
    fts = fts_table(table)
    cols = ", ".join(_q(c) for c in columns)
    new = ", ".join(f"lower(new.{_q(c)})" for c in columns)
    old = ", ".join(f"lower(old.{_q(c)})" for c in columns)
    add = f"INSERT INTO {_q(fts)}(rowid, {cols}) VALUES (new.{_q(key)}, {new});"
    drop = (f"INSERT INTO {_q(fts)}({_q(fts)}, rowid, {cols}) "
            f"VALUES ('delete', old.{_q(key)}, {old});")
    return [
        f"CREATE TRIGGER {_q(fts + '_ai')} AFTER INSERT ON {_q(table)} BEGIN {add} END",
        f"CREATE TRIGGER {_q(fts + '_ad')} AFTER DELETE ON {_q(table)} BEGIN {drop} END",
        f"CREATE TRIGGER {_q(fts + '_au')} AFTER UPDATE OF {cols}, {_q(key)} ON {_q(table)} "
        f"BEGIN {drop} {add} END",
    ]


def install_triggers(conn: Connection, table: str, searched: Searched = SEARCHED) -> None:
    """(Re)create the SQLite triggers keeping ``table``'s index in step (none for
    a table of :data:`APPENDED`: see :func:`catch_up`)."""
    key, columns = searched[table]
    for suffix in ("_ai", "_ad", "_au"):
        conn.execute(text(f"DROP TRIGGER IF EXISTS {_q(fts_table(table) + suffix)}"))
    if table in APPENDED:
        return
    for stmt in _sqlite_triggers(table, key, columns):
        conn.execute(text(stmt))


def indexed_upto(table: str) -> Any:
    """SQL: the highest key of ``table`` (one of :data:`APPENDED`) its SQLite index
    holds (0: none); the rows above it are searched by scan. Read from the FTS5
    table's own row-size table, keyed by rowid: one step."""
    sizes = sa_table(fts_table(table) + "_docsize", column("id"))
    return select(func.coalesce(func.max(sizes.c.id), 0)).scalar_subquery()


def catch_up(conn: Connection, searched: Searched = SEARCHED, limit: int | None = None) -> int:
    """Index the rows of the :data:`APPENDED` tables appended since the last time,
    the oldest first, at most ``limit`` of each (SQLite; elsewhere nothing to do).
    Returns the rows indexed. The scheduler runs it in short transactions."""
    if conn.dialect.name != "sqlite":
        return 0
    added = 0
    for table in sorted(APPENDED & set(searched)):
        key, columns = searched[table]
        fts = fts_table(table)
        cols = ", ".join(_q(c) for c in columns)
        lowered = ", ".join(f"lower({_q(c)})" for c in columns)
        added += conn.execute(text(
            f"INSERT INTO {_q(fts)}(rowid, {cols}) SELECT {_q(key)}, {lowered} "
            f"FROM {_q(table)} WHERE {_q(key)} > "
            f"(SELECT coalesce(max(id), 0) FROM {_q(fts + '_docsize')}) ORDER BY {_q(key)}"
            + ("" if limit is None else f" LIMIT {int(limit)}")
        )).rowcount or 0
    return added


def _pg_trgm(conn: Connection) -> bool:
    """Whether pg_trgm is there (created if it can be); a warning if not."""
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
        return True
    try:
        with conn.begin_nested():  # a failed CREATE must not abort the migration's transaction
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except Exception as exc:  # noqa: BLE001 - any refusal (not installed, no privilege)
        log.warning(
            "search indexes: PostgreSQL extension pg_trgm could not be created (%s); "
            "list searches will scan their tables (docs/operations.md, Search indexes)",
            str(exc).splitlines()[0],
        )
        return False
    return True


def install(conn: Connection, searched: Searched = SEARCHED) -> None:
    """Create the search indexes of ``searched`` and fill them from the rows there."""
    if conn.dialect.name == "sqlite":
        for table, (key, columns) in searched.items():
            fts = fts_table(table)
            cols = ", ".join(_q(c) for c in columns)
            conn.execute(text(
                f"CREATE VIRTUAL TABLE {_q(fts)} USING fts5({cols}, content='', "
                "tokenize='trigram case_sensitive 1')"
            ))
            lowered = ", ".join(f"lower({_q(c)})" for c in columns)
            conn.execute(text(
                f"INSERT INTO {_q(fts)}(rowid, {cols}) SELECT {_q(key)}, {lowered} "
                f"FROM {_q(table)}"
            ))
            install_triggers(conn, table, searched)
    elif conn.dialect.name == "postgresql":
        if not _pg_trgm(conn):
            return
        for table, (_, columns) in searched.items():
            if table in APPENDED:
                continue  # a GIN index written with every line: scanned instead (module doc)
            for c in columns:
                conn.execute(text(
                    f"CREATE INDEX IF NOT EXISTS {_q(trgm_index(table, c))} ON {_q(table)} "
                    f"USING gin (lower({_q(c)}) gin_trgm_ops)"
                ))


def uninstall(conn: Connection, searched: Searched = SEARCHED) -> None:
    """Drop the search indexes of ``searched`` (the extension stays)."""
    for table, (_, columns) in searched.items():
        if conn.dialect.name == "sqlite":
            for suffix in ("_ai", "_ad", "_au"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {_q(fts_table(table) + suffix)}"))
            conn.execute(text(f"DROP TABLE IF EXISTS {_q(fts_table(table))}"))
        elif conn.dialect.name == "postgresql":
            for c in columns:
                conn.execute(text(f"DROP INDEX IF EXISTS {_q(trgm_index(table, c))}"))



_FTS5_OWN = re.compile(r"'main'\.'\w+_search_(?:data|idx|docsize|config|content)'")


def fts5_own_statement(sql: str) -> bool:
    """A statement SQLite's FTS5 module runs for itself, inside the statement (or
    trigger) that wrote to a search index: reading its configuration, writing its
    shadow tables. A count of the statements sent (tests, bench/lifecycle.py) leaves
    these out, as it leaves out the programs of triggers."""
    return sql.removeprefix("-- ") == "PRAGMA 'main'.data_version" or bool(_FTS5_OWN.search(sql))
