"""The SQLite settings engine/store/db.py applies to every connection (docs/operations.md
"SQLite settings"), read back from SQLite itself."""

from __future__ import annotations

import sqlite3
import threading
import time

from engine.store.db import (
    BUSY_TIMEOUT_MS,
    LOCK_POLL_MS,
    WAL_AUTOCHECKPOINT_PAGES,
    make_engine,
    sqlite_synchronous,
    write_connection,
)


def test_every_connection_gets_the_documented_settings(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        with engine.connect() as conn:
            read = {
                p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout",
                          "wal_autocheckpoint")
            }  # fmt: skip
    finally:
        engine.dispose()
    synchronous = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}[sqlite_synchronous()]  # as SQLite says
    assert read == {"journal_mode": "wal", "synchronous": synchronous, "foreign_keys": 1,
                    "busy_timeout": 10000, "wal_autocheckpoint": 10000}  # fmt: skip
    assert WAL_AUTOCHECKPOINT_PAGES == 10000


def test_a_write_transaction_polls_for_the_lock_and_anything_else_keeps_the_busy_timeout(
    tmp_path,
) -> None:
    """A write transaction takes the lock with a 1 ms busy timeout, retried (db.py
    ``_begin_immediate``); a reader's transaction, and the dispatcher's checkpoint,
    wait with SQLite's 10 s as before. Each set only when it changes."""
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        with write_connection(engine) as conn, conn.begin():
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == LOCK_POLL_MS
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
    finally:
        engine.dispose()


def test_a_writer_waiting_for_the_lock_gets_it_within_milliseconds_of_its_release(
    tmp_path,
) -> None:
    """Another connection holds the write lock for 240 ms. SQLite's own busy handler
    would try again only at 328 ms (it backs off: 1, 2, 5, 10, 15, 20, 25, 25, 25,
    50, 50, then every 100 ms), 88 ms after the release; the write transaction
    polls every millisecond and has the lock within a few ms (the median of
    three: a busy machine may wake it late once)."""
    path = tmp_path / "q.db"
    engine = make_engine(f"sqlite:///{path}")
    late: list[float] = []
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        for _ in range(3):
            holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            holder.execute("BEGIN IMMEDIATE")
            released = [0.0]

            def release(h: sqlite3.Connection = holder, released: list = released) -> None:
                time.sleep(0.24)
                released[0] = time.perf_counter()
                h.execute("COMMIT")

            thread = threading.Thread(target=release)
            thread.start()
            with write_connection(engine) as conn, conn.begin():
                got = time.perf_counter()
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            thread.join()
            holder.close()
            late.append(got - released[0])
    finally:
        engine.dispose()
    assert sorted(late)[1] < 0.04, late  # the median of three
