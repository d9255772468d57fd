"""Database engines, SQLite settings, schema creation and migrations.

SQLite is the embedded default (``sqlite:///quorum.db``); PostgreSQL is used
by URL (``postgresql+psycopg://...``), from ``--db`` or ``QUORUM_DATABASE_URL``.

SQLite settings for a system of record (see docs/operations.md):
- ``journal_mode=WAL``: readers never block the writer, and a crash mid-write
  cannot corrupt the file.
- ``synchronous=NORMAL`` (default; ``QUORUM_SQLITE_SYNCHRONOUS=FULL`` to
  change): every commit survives a process crash; a power cut can lose the
  last commits but never corrupts. Because nothing leaves Quorum before it is
  durable, the outbox dispatcher forces a WAL checkpoint (an fsync) before it
  sends anything, so no message is ever sent for a change a power cut undid.
- ``foreign_keys=ON``, ``busy_timeout=10000``, and every write transaction
  starts with ``BEGIN IMMEDIATE`` so two writers queue instead of deadlocking.
- Taking the write lock polls every millisecond (:func:`_begin_immediate`), up
  to the same 10 s: SQLite's own busy handler backs off to a try every 100 ms,
  so a command that found the lock taken by a chunk of the sweep slept through
  the sweep's pause between chunks and waited for the next chunk too, unless
  the pause outlasted the back-off (100 ms a chunk, ~40% of a catch-up). With
  every writer polling, the sweep leaves the database to others for a few
  milliseconds (engine/entry/scheduler.py ``Yield``). Only the write
  lock's wait changes: other waits on the busy handler (a reader's transaction,
  the dispatcher's ``wal_checkpoint(FULL)``: :func:`wal_checkpoint_full`) keep
  SQLite's 10 s, and readers in WAL mode take no lock a writer holds. A
  connection keeps the busy timeout last set, so a run of commands sets none.
- ``wal_autocheckpoint=10000`` pages (SQLite's default is 1000): the WAL is
  copied back into the database (with its fsyncs) a tenth as often. Commit time
  in a lifecycle (bench/lifecycle.py) fell from 5.0 to 3.2 ms (median of 5×30).
  The WAL file grows to about 40 MB before it is reused; with ``NORMAL`` the
  commits since the last checkpoint are those a power cut can lose (more of
  them now), and the dispatcher's checkpoint before sending still keeps any
  message from leaving for one of them.
"""

from __future__ import annotations

import sqlite3
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import event, insert, inspect
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel, create_engine

from engine.settings import get_settings
from engine.store import models  # noqa: F401  (registers every table)

if TYPE_CHECKING:  # alembic is imported only when migrations run
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(explicit: str | None = None) -> str:
    """The URL in force: explicit > QUORUM_DATABASE_URL > sqlite:///quorum.db."""
    url = explicit or get_settings().database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


BUSY_TIMEOUT_MS = 10_000  # how long a statement waits for a lock before "database is locked"
LOCK_POLL_MS = 1  # taking the write lock: SQLite's handler sleeps this, tries again, gives up
_SQLITE_BUSY = 5

# pages of WAL between automatic checkpoints (the module docstring says why 10000)
WAL_AUTOCHECKPOINT_PAGES = 10000


def sqlite_synchronous() -> str:
    return get_settings().sqlite_synchronous  # NORMAL, FULL or EXTRA (Settings checks)


def make_engine(url: str | None = None, **kwargs: object) -> Engine:
    """A new Engine with Quorum's connection settings applied."""
    url = database_url(url)
    if url.startswith("sqlite"):
        # Every transaction ends in an explicit COMMIT or ROLLBACK (ours or the
        # context manager's), so the pool's extra rollback on return is skipped.
        kwargs.setdefault("pool_reset_on_return", None)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
    else:
        # No pool_pre_ping: it cost a round trip (SELECT 1) at every checkout, 36 a
        # lifecycle (bench/lifecycle.py). A connection the server dropped while idle
        # (a restart, a failover) fails at its first statement instead, as a DBAPIError
        # with ``connection_invalidated``; SQLAlchemy then renews every connection the
        # pool held. The command bus runs its transaction again on a fresh connection
        # when that first statement (the chain head's lock) fails so — nothing had run
        # (engine/commands/service.py ``_begin``); elsewhere the web answers 503 "try
        # again" (quorum_web/app.py) and the scheduler's next tick runs again.
        engine = create_engine(url, **kwargs)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    synchronous = sqlite_synchronous()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:  # the DB-API connection
        # Take transaction control from pysqlite so BEGIN IMMEDIATE is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        # as a write transaction runs (_begin_immediate); anything else sets
        # BUSY_TIMEOUT_MS first (_busy_timeout)
        cur.execute(f"PRAGMA busy_timeout={LOCK_POLL_MS}")
        _record.info[_BUSY] = LOCK_POLL_MS
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cur.close()

    # BEGIN is the dialect's (it does nothing on pysqlite), not a "begin" event: any
    # listener on the engine makes SQLAlchemy dispatch every engine event (begin, commit,
    # each statement's before/after) on every connection, ~10 µs a command for nothing
    # (bench/lifecycle.py); a test's own listener still works as before.
    def do_begin(proxied: Any) -> None:  # the pool's connection (SQLAlchemy's fairy)
        # Writers (the command path, see write_connection) take the write lock up
        # front so two writers queue instead of deadlocking; readers start a
        # deferred transaction and never block anyone in WAL mode.
        # Straight to the driver: this runs once per transaction on the hot path.
        driver = proxied.driver_connection
        if proxied.info.get(WRITE_OPTION) is proxied:
            _busy_timeout(proxied, LOCK_POLL_MS)
            _begin_immediate(driver)
        else:
            _busy_timeout(proxied, BUSY_TIMEOUT_MS)
            driver.execute("BEGIN")

    engine.dialect.do_begin = do_begin  # type: ignore[assignment]  # this engine's own


_BUSY = "quorum_busy_timeout_ms"  # the connection's busy timeout now (its pool record's info)


def _busy_timeout(proxied: Any, ms: int) -> None:
    """Set the connection's busy timeout, unless it is that already: a write
    transaction runs with LOCK_POLL_MS (its statements never wait for a lock: it
    holds the write lock, and WAL readers take none), anything else with
    BUSY_TIMEOUT_MS. A connection keeps the last one set, so a run of commands on
    one connection sets nothing: no statement more a command (the lifecycle's
    statement budgets, tests/test_lifecycle_statements.py)."""
    if proxied.info.get(_BUSY) != ms:
        proxied.driver_connection.execute(f"PRAGMA busy_timeout={ms}")
        proxied.info[_BUSY] = ms


def wal_checkpoint_full(engine: Engine) -> None:
    """``PRAGMA wal_checkpoint(FULL)`` on a connection of ``engine``, outside any
    transaction, waiting for the writer (up to BUSY_TIMEOUT_MS, SQLite's busy
    handler) so every change committed before it is in the database file, synced
    (the dispatcher's, before it sends: notifications/dispatch.py)."""
    raw = engine.raw_connection()
    try:
        _busy_timeout(raw, BUSY_TIMEOUT_MS)
        raw.cursor().execute("PRAGMA wal_checkpoint(FULL)")
    finally:
        raw.close()


def _begin_immediate(driver: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, with the busy timeout at LOCK_POLL_MS: tried for the write
    lock every millisecond until it is free, for BUSY_TIMEOUT_MS at most (then
    "database is locked", as before).

    Python's sqlite3 cannot install a busy handler of its own, and SQLite's
    (``busy_timeout``) backs off: it tries after 1, 2, 5, 10, 15, 20, 25, 25, 25,
    50, 50 and then every 100 ms, so a writer that has waited a while misses a
    lock freed for less than 100 ms. With the timeout at LOCK_POLL_MS, SQLite
    sleeps that long once and tries again (in C, the GIL released), then says
    busy, and this loop asks again at once."""
    deadline = 0.0
    while True:
        try:
            driver.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", _SQLITE_BUSY) & 0xFF != _SQLITE_BUSY:
                raise
            now = time.monotonic()
            if not deadline:
                deadline = now + BUSY_TIMEOUT_MS / 1000
            elif now >= deadline:
                raise


WRITE_OPTION = "quorum_write"


# engine -> the same engine with the write option set (SQLAlchemy's OptionEngine: the
# same pool and events), made once: a connection's own execution_options() call copied
# its options and ran its event hooks on every command
_writers: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def write_connection(engine: Engine) -> Connection:
    """A connection whose transactions are write transactions (BEGIN IMMEDIATE on SQLite).

    SQLite: the pool's connection handed out this time is marked in its ``info``
    (kept with the driver's connection across checkouts) by itself, so only this
    checkout begins IMMEDIATE: a later checkout of the same driver connection is
    another object and begins a reader's deferred transaction."""
    writer = _writers.get(engine)
    if writer is None:
        writer = _writers[engine] = engine.execution_options(**{WRITE_OPTION: True})
    conn = writer.connect()
    if engine.dialect.name == "sqlite":
        proxied = conn.connection
        proxied.info[WRITE_OPTION] = proxied
    return conn


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_schema(engine: Engine) -> None:
    """Create every table from the models and stamp the migration head.

    Equivalent to ``upgrade`` on an empty database (tested), and faster."""
    SQLModel.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(models.AuditHead).values(id=1, last_seq=0, last_hash="", directory_seq=0)
        )
    from alembic import command

    command.stamp(alembic_config(engine), "head")


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with Alembic."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database, or migrate an existing one."""
    if is_empty(engine):
        create_schema(engine)
    else:
        upgrade(engine)


@cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = alembic_config(None)  # type: ignore[arg-type]
    return ScriptDirectory.from_config(cfg).get_current_head() or ""
