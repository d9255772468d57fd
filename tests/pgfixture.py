"""Pytest plugin: a throwaway PostgreSQL server per session, a fresh database per test.

Load it with ``pytest_plugins = ["pgfixture"]`` in the top-level conftest.py (or
``-p pgfixture``), with ``tests/`` on sys.path.

Fixtures:

``pg_server`` (session)
    A started :class:`pgserver.PgServer`. Without PostgreSQL binaries the test is
    skipped, except when the ``CI`` environment variable is true: then it errors, so CI
    cannot silently skip the PostgreSQL tests. ``QUORUM_TEST_PG_URL`` selects an
    existing server instead of starting one.
``pg_url`` (function)
    SQLAlchemy URL (``postgresql+psycopg://...``) of a new, uniquely named, empty
    database, dropped after the test (other connections to it are terminated first).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
from pgserver import PgServer, unavailable_reason

_TRUE = {"1", "true", "yes", "on", "y"}


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in _TRUE


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reason = unavailable_reason()
    if reason is not None:
        if _ci():
            pytest.fail(f"PostgreSQL is required when CI is set: {reason}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {reason}")
    server = PgServer()
    server.start()  # a failure here is an error (with the server log), never a skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    # t_<test name>_<random>: readable in pg_stat_activity, unique across xdist workers.
    stem = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower()).strip("_")[:40]
    name = f"t_{stem}_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        pg_server.drop_database(name)
