"""QUORUM_CLOCK_START: a rehearsal or training server (``quorum serve``) whose
clock starts at an agreed date-time and runs on from there; restarted with a
later start, time has passed for every date rule (tests/test_browser_year.py
walks a programme year this way)."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from webkit import set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import StartedClock, SystemClock
from engine.settings import Settings, SettingsError, reset_settings
from engine.store.db import create_schema, make_engine
from quorum_web.app import create_app

OFFICER = "olive@clock.example"


def test_a_started_clock_starts_where_it_is_told_and_runs_on() -> None:
    start = dt.datetime(2027, 7, 19, 23, 30, tzinfo=dt.UTC)
    clock = StartedClock(start)
    first = clock.now()
    assert abs((first - start).total_seconds()) < 2
    assert clock.today() == dt.date(2027, 7, 20)  # 00:30 BST: already the 20th in London
    assert StartedClock(dt.date(2027, 4, 5)).today() == dt.date(2027, 4, 5)  # 09:00 that day


def test_the_setting_is_read_and_a_bad_value_names_it() -> None:
    s = Settings.from_env({"QUORUM_CLOCK_START": "2027-04-05T09:00:00+00:00"})
    assert s.clock_start == dt.datetime(2027, 4, 5, 9, tzinfo=dt.UTC)
    assert Settings.from_env({}).clock_start is None
    with pytest.raises(SettingsError) as bad:
        Settings.from_env({"QUORUM_CLOCK_START": "next Tuesday"})
    assert "QUORUM_CLOCK_START" in str(bad.value)


def test_the_served_app_runs_on_the_started_clock(sqlite_url, monkeypatch) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    q = Quorum(engine)
    q.execute("register_person", {"name": "Olive", "email": OFFICER, "roles": ["officer"]},
              "system")  # fmt: skip
    set_passwords(q, OFFICER)
    assert isinstance(create_app(sqlite_url, scheduler=False).state.clock, SystemClock)
    monkeypatch.setenv("QUORUM_CLOCK_START", "2027-04-05T09:00:00Z")
    reset_settings()
    app = create_app(sqlite_url, scheduler=False)
    assert isinstance(app.state.clock, StartedClock)
    with TestClient(app) as client:
        assert sign_in(client, OFFICER).status_code == 303
        assert "As of 2027-04-05" in client.get("/").text  # My work's date
    engine.dispose()
