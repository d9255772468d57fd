"""The throwaway PostgreSQL fixtures themselves (tests/pgserver.py, tests/pgfixture.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from pgserver import PgServer


def _current_database(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SELECT current_database()")).scalar_one())
    finally:
        engine.dispose()


def test_roundtrip(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+psycopg://")
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE bid (id serial PRIMARY KEY, title text NOT NULL)"))
            conn.execute(
                sa.text("INSERT INTO bid (title) VALUES (:a), (:b)"),
                {"a": "Community orchard", "b": "Élan youth choir"},
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, title FROM bid ORDER BY id")).all()
            server_version = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
            fsync = conn.execute(sa.text("SHOW fsync")).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "Community orchard"), (2, "Élan youth choir")]
    assert int(server_version) >= 130000
    assert fsync in {"on", "off"}


@pytest.fixture
def other_pg_url(pg_server: PgServer) -> Iterator[str]:
    name = "t_other_db"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


def test_databases_are_distinct(pg_url: str, other_pg_url: str, pg_server: PgServer) -> None:
    first, second = _current_database(pg_url), _current_database(other_pg_url)
    assert first != second
    assert first != pg_server.database and second == "t_other_db"

    # Tables in one database are invisible in the other.
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (x int)"))
    finally:
        engine.dispose()
    other = sa.create_engine(other_pg_url)
    try:
        with other.connect() as conn:
            found = conn.execute(sa.text("SELECT to_regclass('only_here')")).scalar_one()
    finally:
        other.dispose()
    assert found is None


def test_drop_terminates_leftover_connections(pg_server: PgServer) -> None:
    url = pg_server.create_database("t_leaky")
    engine = sa.create_engine(url)
    conn = engine.connect()  # deliberately left open
    conn.execute(sa.text("SELECT 1"))
    try:
        pg_server.drop_database("t_leaky")
        main = sa.create_engine(pg_server.url)
        with main.connect() as c:
            left = c.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = 't_leaky'")
            ).scalar_one()
        main.dispose()
        assert left == 0
    finally:
        conn.invalidate()
        engine.dispose()
