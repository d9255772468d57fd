"""How SQLite transactions begin (engine/store/db.py): a write connection's with
BEGIN IMMEDIATE (the write lock taken up front, so writers queue), every other
with a deferred BEGIN (a reader never holds the write lock), and without any
engine event listener (each one makes SQLAlchemy dispatch every engine event)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import event, text
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import QuorumError
from engine.store import audit
from engine.store.db import create_schema, make_engine, write_connection


@pytest.fixture
def traced(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    create_schema(eng)
    sent: list[str] = []

    @event.listens_for(eng, "connect")
    def _trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(sent.append)

    eng.dispose()
    yield eng, sent
    eng.dispose()


def test_writers_begin_immediate_readers_deferred(traced) -> None:
    eng, sent = traced
    assert not eng._has_events  # no engine listener of ours: no per-event dispatch
    with write_connection(eng) as conn, conn.begin():
        conn.execute(text("SELECT 1"))
    with eng.connect() as conn, conn.begin():
        conn.execute(text("SELECT 2"))
    with eng.begin() as conn:
        conn.execute(text("SELECT 3"))
    with write_connection(eng) as conn:  # SQLAlchemy's autobegin: still a writer's
        conn.execute(text("SELECT 4"))
        conn.commit()
    # the busy timeout is set as the kind of transaction changes (a writer polls for
    # the lock every ms, others wait 10 s: engine/store/db.py), not per transaction
    assert sent == ["BEGIN IMMEDIATE", "SELECT 1", "COMMIT",
                    "PRAGMA busy_timeout=10000", "BEGIN", "SELECT 2", "COMMIT",
                    "BEGIN", "SELECT 3", "COMMIT",
                    "PRAGMA busy_timeout=1", "BEGIN IMMEDIATE", "SELECT 4", "COMMIT"]


def test_a_write_connection_closed_unused_leaves_no_write_mark(traced) -> None:
    """The mark is for that checkout only: the same driver connection handed out
    next to a reader begins deferred."""
    eng, sent = traced
    with write_connection(eng):
        pass
    with eng.connect() as conn, conn.begin():
        conn.execute(text("SELECT 1"))
    assert sent == ["PRAGMA busy_timeout=10000", "BEGIN", "SELECT 1", "COMMIT"]


def test_a_writer_holds_the_write_lock_from_its_begin_a_reader_does_not(tmp_path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    create_schema(eng)
    other = sqlite3.connect(tmp_path / "q.db", isolation_level=None, timeout=0)
    try:
        with eng.connect() as reader, reader.begin():
            reader.execute(text("SELECT count(*) FROM audit_head"))
            other.execute("BEGIN IMMEDIATE")  # a reader does not stop a writer
            other.execute("COMMIT")
        with write_connection(eng) as conn, conn.begin():
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # before the writer ran anything
    finally:
        other.close()
        eng.dispose()


# ---------------------------------------------------------------- PostgreSQL


def _pg_quorum(pg_url: str) -> tuple[Any, Any, list[str]]:
    eng = make_engine(pg_url)
    create_schema(eng)
    sent: list[str] = []

    class Seen(psycopg.Cursor):
        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            sent.append(str(query))
            return super().execute(query, params, **kw)

    @event.listens_for(eng, "connect")
    def _cursor(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.cursor_factory = Seen

    eng.dispose()
    return eng, Quorum(eng, FixedClock(dt.date(2011, 4, 1))), sent


def test_postgresql_command_begins_with_its_head_lock_in_one_query(pg_url) -> None:
    eng, q, sent = _pg_quorum(pg_url)
    try:
        q.execute("create_programme", {"name": "P", "pots": {"Capital": "£1m"}}, "system",
                  key="k1")  # fmt: skip
        assert sent[0].startswith("BEGIN; SELECT audit_head.last_seq"), sent[0]
        assert sent[0].endswith("FOR UPDATE"), sent[0]
        with eng.connect() as conn:  # the pooled connection is back in its usual mode
            driver = conn.connection.driver_connection
            assert driver is not None and driver.autocommit is False
            assert conn.execute(text("SELECT count(*) FROM programme")).scalar() == 1
        # a refused command: rolled back, and the connection too back in its mode
        with pytest.raises(QuorumError):
            q.execute("create_programme", {"name": "P", "pots": {"Capital": "£1m"}}, "system")
        # a retry of the key gets the first result; nothing made twice
        q.execute("create_programme", {"name": "P", "pots": {"Capital": "£1m"}}, "system",
                  key="k1")  # fmt: skip
        with eng.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None and driver.autocommit is False
            with conn.begin():  # a reader's transaction is a transaction
                conn.execute(text("SELECT 1"))
                assert driver.info.transaction_status == pq.TransactionStatus.INTRANS
            assert conn.execute(text("SELECT count(*) FROM programme")).scalar() == 1
        with Session(eng) as s:
            assert audit.verify(s).ok
    finally:
        eng.dispose()



def test_postgresql_rows_each_in_a_savepoint_inside_the_one_transaction(pg_url) -> None:
    """execute_rows (an import): each row in a savepoint of the transaction the head
    lock began; a refused row undone alone with ``partial``, all of them without."""
    eng, q, _ = _pg_quorum(pg_url)
    calls = [("create_programme", {"name": "A", "pots": {"Capital": "£1m"}}),
             ("create_programme", {"name": "A", "pots": {"Capital": "£1m"}}),  # refused
             ("create_programme", {"name": "B", "pots": {"Capital": "£1m"}})]  # fmt: skip
    try:
        outcomes, committed = q.execute_rows(calls, "system")
        assert not committed and isinstance(outcomes[1], QuorumError)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM programme")).scalar() == 0
        outcomes, committed = q.execute_rows(calls, "system", partial=True)
        assert committed and isinstance(outcomes[1], QuorumError)
        with eng.connect() as conn:
            names = conn.execute(text("SELECT name FROM programme ORDER BY name")).scalars()
            assert list(names) == ["A", "B"]
            driver = conn.connection.driver_connection
            assert driver is not None and driver.autocommit is False
        with Session(eng) as s:
            assert audit.verify(s).ok
    finally:
        eng.dispose()
