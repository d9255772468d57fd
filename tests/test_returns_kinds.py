"""Monitoring and benefits returns: the scheduled ones (engine/commands/sweep.py) can be
sent in and accepted like quarterly ones; ad hoc ones must end on a period of
their kind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from moneykit import OFFICER, SPONSOR, dump, money_board
from sqlalchemy import select
from test_sweep import LADDER, SCHEDULE

from engine.domain.errors import ValidationError
from engine.entry.scheduler import sweep
from engine.store.models import Return

D = dt.date


def test_scheduled_monitoring_and_benefits_returns_are_sent_in(sqlite_url, tmp_path: Path):
    q, engine, clock = money_board(sqlite_url)
    (tmp_path / "returns.yaml").write_text(SCHEDULE)
    (tmp_path / "reminders.yaml").write_text(LADDER)
    files = {"returns_rules": str(tmp_path / "returns.yaml"),
             "reminder_rules": str(tmp_path / "reminders.yaml")}  # fmt: skip
    clock.set(D(2011, 10, 25))
    sweep(engine, clock=clock, **files)
    out = q.execute(
        "submit_return",
        {"grant": "G-0001", "kind": "monitoring", "period_end": "2011-09-30"},
        SPONSOR,
    )
    assert out["return"] == "RET-G-0001-monitoring-2011-09-30"
    assert (out["period_start"], out["due_on"], out["state"]) == (
        "2011-04-01", "2011-10-31", "submitted")
    q.execute("accept_return", {"return": out["return"]}, OFFICER)

    clock.set(D(2011, 11, 10))
    q.execute("close_grant", {"grant": "G-0001", "reason": "delivered early"}, OFFICER)
    sweep(engine, clock=clock, **files)
    clock.set(D(2011, 12, 1))
    out = q.execute(
        "submit_return",
        {"grant": "G-0001", "kind": "benefits", "period_end": "2011-11-10"},
        SPONSOR,
    )
    assert (out["return"], out["period_start"]) == ("RET-G-0001-benefits-2011-11-10",
                                                    "2011-04-20")
    with engine.connect() as c:
        states = dict(c.execute(select(Return.ref, Return.state)).all())
    assert states["RET-G-0001-monitoring-2011-09-30"] == "accepted"
    assert states["RET-G-0001-benefits-2011-11-10"] == "submitted"


def test_ad_hoc_returns_must_end_on_a_period_of_their_kind(sqlite_url):
    q, engine, clock = money_board(sqlite_url)
    clock.set(D(2011, 11, 1))
    before = dump(engine)
    with pytest.raises(ValidationError, match="not the end of a financial half-year"):
        q.execute("submit_return",
                  {"grant": "G-0001", "kind": "monitoring", "period_end": "2011-06-30"}, SPONSOR)
    with pytest.raises(ValidationError, match="after today"):
        q.execute("submit_return",
                  {"grant": "G-0001", "kind": "benefits", "period_end": "2012-03-31"}, SPONSOR)
    assert dump(engine) == before
    out = q.execute("submit_return",
                    {"grant": "G-0001", "kind": "monitoring", "period_end": "2011-09-30"},
                    SPONSOR)
    # 30 Sep + 30 days is Sunday 30 Oct: due the next working day
    assert (out["period_start"], out["due_on"]) == ("2011-04-01", "2011-10-31")
