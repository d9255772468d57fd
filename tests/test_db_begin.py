"""How SQLite transactions begin (engine/store/db.py): a write connection's with
BEGIN IMMEDIATE (the write lock taken up front, so writers queue), every other
with a deferred BEGIN (a reader never holds the write lock), and without any
engine event listener (each one makes SQLAlchemy dispatch every engine event)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import event, text

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
    assert sent == ["BEGIN IMMEDIATE", "SELECT 1", "COMMIT", "BEGIN", "SELECT 2", "COMMIT",
                    "BEGIN", "SELECT 3", "COMMIT", "BEGIN IMMEDIATE", "SELECT 4", "COMMIT"]


def test_a_write_connection_closed_unused_leaves_no_write_mark(traced) -> None:
    """The mark is for that checkout only: the same driver connection handed out
    next to a reader begins deferred."""
    eng, sent = traced
    with write_connection(eng):
        pass
    with eng.connect() as conn, conn.begin():
        conn.execute(text("SELECT 1"))
    assert sent == ["BEGIN", "SELECT 1", "COMMIT"]


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
