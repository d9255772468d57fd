"""Shared fixtures: a fresh database (SQLite file, and PostgreSQL when the
test asks for it), a fixed clock, and a Quorum service on top."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.store.db import create_schema, make_engine

pytest_plugins = ["pgfixture"]

SHARED = Path(__file__).resolve().parents[2] / "shared"
BIDS_CSV = SHARED / "data" / "bids-2011-04.csv"


@pytest.fixture(scope="session", autouse=True)
def _session_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Checkpoints written before a test's own folder is set (module-scoped fixtures
    that start `quorum serve` or run a sweep) go to a folder of the session's, never
    to var/checkpoints of the checkout, where `make run` would later find another
    database's checkpoints and refuse its own."""
    folder = tmp_path_factory.mktemp("checkpoints")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUORUM_CHECKPOINT_DIR", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _checkpoint_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's audit checkpoints (written by every sweep) go to its own folder,
    not var/checkpoints in the working directory (subprocesses inherit it)."""
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("QUORUM_CHECKPOINT_DIR", str(folder))
    return folder


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(dt.date(2011, 4, 1))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'quorum.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs twice: on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'quorum.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def engine(sqlite_url: str):
    eng = make_engine(sqlite_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def q(engine, clock: FixedClock) -> Quorum:
    return Quorum(engine, clock)
