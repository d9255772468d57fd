"""The migrations and the models describe the same schema, on SQLite and PostgreSQL.

``create_schema`` (create_all + stamp) is the fast path for a new database and
``upgrade`` (Alembic) the path for an existing one; both must give the same
database, and that database must match ``SQLModel.metadata`` exactly.
"""

from __future__ import annotations

import pprint
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from engine.store.db import create_schema, current_revision, head_revision, make_engine, upgrade
from engine.store.search import is_search_object


@pytest.fixture
def second_url(db_url, request, tmp_path):
    """Another empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'created.db'}"
        return
    server = request.getfixturevalue("pg_server")
    name = f"t_schema_created_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def migrated(db_url):
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def created(second_url):
    eng = make_engine(second_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def test_upgrade_matches_the_models(migrated):
    assert current_revision(migrated) == head_revision()
    with migrated.connect() as conn:
        # the search indexes (engine/store/search.py) are made beside the models, not by them
        ctx = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, type_, parent: not is_search_object(name),
        })
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == [], "migrations differ from models:\n" + pprint.pformat(diff)


def _affinity(t: sa.types.TypeEngine) -> str:
    while isinstance(t, sa.types.TypeDecorator):  # sqlmodel's AutoString, UTCDateTime
        t = t.impl_instance
    for generic in (sa.Boolean, sa.Integer, sa.Numeric, sa.DateTime, sa.Date, sa.JSON, sa.Text,
                    sa.String):
        if isinstance(t, generic):
            return generic.__name__
    return type(t).__name__


def describe(eng) -> dict[str, dict]:
    insp = sa.inspect(eng)
    out: dict[str, dict] = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            # order is not meaningful: a later migration adds columns at the end
            "columns": sorted(
                (c["name"], _affinity(c["type"]), bool(c["nullable"]))
                for c in insp.get_columns(table)
            ),
            "primary_key": tuple(insp.get_pk_constraint(table)["constrained_columns"]),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in insp.get_indexes(table)
            ),
            "unique": sorted(
                tuple(sorted(uc["column_names"])) for uc in insp.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"],
                 tuple(fk["referred_columns"]))
                for fk in insp.get_foreign_keys(table)
            ),
        }
    return out


def test_create_schema_and_upgrade_give_the_same_database(migrated, created):
    made, moved = describe(created), describe(migrated)
    assert set(made) == set(moved)
    assert set(made) >= {t.name for t in SQLModel.metadata.sorted_tables} | {"alembic_version"}
    for table in sorted(made):
        assert made[table] == moved[table], (
            f"table {table} differs\ncreate_schema:\n{pprint.pformat(made[table])}\n"
            f"upgrade:\n{pprint.pformat(moved[table])}"
        )
    assert current_revision(created) == current_revision(migrated) == head_revision()


def test_every_model_column_is_in_the_migrated_database(migrated):
    """A direct check against the models, independent of Alembic's comparison."""
    have = describe(migrated)
    for table in SQLModel.metadata.sorted_tables:
        cols = {name: (aff, null) for name, aff, null in have[table.name]["columns"]}
        for col in table.columns:
            assert col.name in cols, f"{table.name}.{col.name} missing"
            assert cols[col.name] == (_affinity(col.type), bool(col.nullable)), (
                f"{table.name}.{col.name}: database has {cols[col.name]}, model has "
                f"{(_affinity(col.type), bool(col.nullable))}"
            )


def test_both_have_the_audit_head_row(migrated, created):
    for eng in (created, migrated):
        with eng.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, last_seq, last_hash FROM audit_head")).all()
        assert [tuple(r) for r in rows] == [(1, 0, "")], eng.url


def test_money_beyond_32_bits_after_upgrade(migrated):
    """£50m is 5,000,000,000 pence: more than a 32-bit INTEGER holds (PostgreSQL)."""
    import datetime as dt

    from sqlmodel import Session

    from engine.commands.service import Quorum
    from engine.domain.clock import FixedClock
    from engine.store.ledger import ledger

    q = Quorum(migrated, FixedClock(dt.date(2011, 4, 1)))
    q.execute("create_programme", {"name": "Big", "pots": {"Capital": "£50m"}}, "system")
    with Session(migrated) as s:
        (line,) = ledger(s)
    assert line.allocated_pence == 5_000_000_000
