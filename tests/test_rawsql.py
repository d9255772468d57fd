"""engine/store/rawsql.py: statements sent straight to the driver store exactly what
SQLAlchemy would, on SQLite and PostgreSQL; rows given as tuples
(``executemany_values``) exactly what rows given as dicts do."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    text,
)

from engine.store.db import make_engine
from engine.store.models import CommandLog
from engine.store.rawsql import RawStatement

META = MetaData()
THING = Table(
    "thing",
    META,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
    Column("day", Date),
    Column("data", JSON),
    Column("flag", Boolean),
    Column("n", Integer),
)
COLUMNS = ("name", "day", "data", "flag", "n")
INSERT = RawStatement(
    insert(THING).values({c: bindparam(c, type_=THING.c[c].type) for c in COLUMNS})
)
DAY = dt.date(2011, 4, 20)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    META.create_all(eng)
    yield eng
    eng.dispose()


def stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(THING).order_by(THING.c.id))]


def rows() -> list[dict]:
    shared = ["a", "b"]  # one object in several rows
    return [
        {"name": "one", "day": DAY, "data": shared, "flag": True, "n": 1},
        {"name": "two", "day": DAY, "data": [1], "flag": False, "n": 2},
        {"name": "three", "day": None, "data": [True], "flag": True, "n": 3},
        {"name": "four", "day": DAY, "data": shared, "flag": None, "n": None},
        {"name": "five", "day": dt.date(2011, 5, 1), "data": [1.0], "flag": True, "n": 5},
    ]


def test_tuples_store_what_dicts_store(engine):
    with engine.begin() as conn:
        INSERT.executemany(conn, rows())
    by_dicts = stored(engine)
    with engine.begin() as conn:
        conn.execute(THING.delete())
    keys = ("n", "data", "name", "flag", "day")  # not the statement's order
    with engine.begin() as conn:  # a generator: the driver takes the rows one at a time
        INSERT.executemany_values(conn, keys, (tuple(r[k] for k in keys) for r in rows()))
    by_tuples = stored(engine)
    assert [r[1:] for r in by_tuples] == [r[1:] for r in by_dicts]
    # converted per object, not per equal value: 1, True and 1.0 stay themselves
    assert [r[3] for r in by_tuples] == [["a", "b"], [1], [True], ["a", "b"], [1.0]]
    assert by_tuples[0][2] == DAY and by_tuples[2][2] is None


def test_common_values_are_given_once(engine):
    with engine.begin() as conn:
        INSERT.executemany_values(
            conn,
            ("name", "n"),
            [("x", 1), ("y", 2)],
            {"day": DAY, "data": {"k": [1, 2]}, "flag": False},
        )
    assert [r[1:] for r in stored(engine)] == [
        ("x", DAY, {"k": [1, 2]}, False, 1),
        ("y", DAY, {"k": [1, 2]}, False, 2),
    ]


def test_parameters_that_do_not_fit_are_refused(engine):
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="do not fit"):
            INSERT.executemany_values(conn, ("name", "colour"), [("x", "red")])
        with pytest.raises(ValueError, match="do not fit"):
            INSERT.executemany_values(conn, ("name", "n"), [("x", 1)], {"n": 2})
    assert stored(engine) == []


STAMP = Table(
    "stamp", META,
    Column("id", Integer, primary_key=True),
    Column("at", CommandLog.__table__.c.at.type),  # the models' datetime (UTC, aware)
)


def test_a_datetime_is_stored_as_sqlalchemy_stores_it(engine):
    at = dt.datetime(2011, 4, 20, 9, 30, 5, 123, tzinfo=dt.UTC)
    raw = RawStatement(insert(STAMP).values(id=bindparam("id"), at=bindparam("at")))
    with engine.begin() as conn:
        conn.execute(insert(STAMP), {"id": 1, "at": at})
        raw.execute(conn, {"id": 2, "at": at})
    with engine.connect() as conn:
        as_text = conn.execute(
            text("SELECT CAST(at AS TEXT) FROM stamp ORDER BY id")
        ).scalars().all()
        read = conn.execute(select(STAMP.c.at).order_by(STAMP.c.id)).scalars().all()
    assert as_text[0] == as_text[1]  # the same text (SQLite compares these as text)
    assert read[0] == read[1] == at
