"""Rungs with the same terms, to roles other than the sponsor, queued by one statement
(engine/commands/sweep.py ``_merged``): each message as when its rung is queued
alone — key, template, subject, context — and counted under its own rung."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moneykit import CHAIR, DIRECTOR, money_board
from sqlalchemy import select

from engine.entry.scheduler import sweep
from engine.store.models import Outbox

D = dt.date
Q1 = "RET-G-0001-progress-2011-06-30"  # due Monday 1 August 2011
SAME_DAY = ("as_of", "days_late", "days_before")  # what differs between two days' sweeps


@pytest.fixture
def second_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second database of the same kind as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'apart.db'}"
        return
    server = request.getfixturevalue("pg_server")
    name = f"t_merged_apart_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


def messages(engine: Any) -> dict[str, tuple[str, str, str, dict]]:
    with engine.connect() as c:
        rows = c.execute(
            select(Outbox.key, Outbox.to_addr, Outbox.template, Outbox.subject, Outbox.context)
            .where(Outbox.key.like("return:%"))
        ).all()
    return {r.key: (r.to_addr, r.template, r.subject, r.context) for r in rows}


def test_director_and_chair_in_one_sweep_read_as_when_queued_one_by_one(
    db_url: str, second_url: str
) -> None:
    # a first sweep 28 days after Q1's due date: both escalations at once (one statement)
    _, together, clock = money_board(db_url)
    clock.set(D(2011, 8, 29))
    out = sweep(together, clock=clock)
    assert out["messages_queued"] == {"escalate-director": 4, "escalate-chair": 4}
    both = messages(together)
    together.dispose()
    # the same board swept at +14 (the Director alone) and at +28 (the Chair alone)
    _, apart, clock = money_board(second_url)
    clock.set(D(2011, 8, 15))
    assert sweep(apart, clock=clock)["messages_queued"] == {"escalate-director": 4}
    clock.set(D(2011, 8, 29))
    assert sweep(apart, clock=clock)["messages_queued"] == {"escalate-chair": 4}
    alone = messages(apart)
    apart.dispose()
    assert sorted(both) == sorted(alone)  # the same keys: 4 returns x 2 rungs
    for key, (to, template, subject, ctx) in both.items():
        to1, template1, subject1, ctx1 = alone[key]
        assert (to, template, subject) == (to1, template1, subject1)
        assert set(ctx) == set(ctx1)
        assert {k: v for k, v in ctx.items() if k not in SAME_DAY} == {
            k: v for k, v in ctx1.items() if k not in SAME_DAY}  # fmt: skip
    director = both[f"return:{Q1}:escalate-director:{DIRECTOR}"]
    chair = both[f"return:{Q1}:escalate-chair:{CHAIR}"]
    assert director[2].startswith("Escalated to the Director") and chair[2].startswith(
        "Escalated to the Chair")  # fmt: skip
    assert (director[3]["role_code"], director[3]["rung"], director[3]["escalation_to"],
            director[3]["escalation_on"], director[3]["days_late"]) == (
        "director", "escalate-director", "chair", "2011-08-29", 28)  # fmt: skip
    assert (chair[3]["role_code"], chair[3]["rung"], chair[3]["escalation_to"],
            chair[3]["escalation_on"], chair[3]["days_late"]) == (
        "chair", "escalate-chair", None, None, 28)  # fmt: skip


LADDER = """
name: ladder-merged
version: "1"
default:
  ladder:
    - {rung: esc-a, template: return_escalation, from: 14, to: [director],
       subject: "{SUBJECT_A}"}
    - {rung: esc-b, template: return_escalation, from: 14, to: [chair, director],
       subject: "{SUBJECT_B}"}
"""


def run_ladder(db_url: str, tmp_path: Path, subject_a: str, subject_b: str) -> dict:
    (tmp_path / "reminders.yaml").write_text(
        LADDER.replace("{SUBJECT_A}", subject_a).replace("{SUBJECT_B}", subject_b))
    _, engine, clock = money_board(db_url)
    clock.set(D(2011, 8, 20))
    out = sweep(engine, clock=clock, reminder_rules=str(tmp_path / "reminders.yaml"))
    n = len(messages(engine))
    engine.dispose()
    return {**out["messages_queued"], "rows": n}


def test_merged_rungs_are_counted_each_under_its_own_name(db_url: str, tmp_path: Path) -> None:
    # three sends in one statement (esc-b to two roles): 4 returns each
    assert run_ladder(db_url, tmp_path, "A {kind}", "B {kind}") == {
        "esc-a": 4, "esc-b": 8, "rows": 12}  # fmt: skip


def test_rungs_sharing_a_subject_are_queued_one_by_one_and_counted(
    db_url: str, tmp_path: Path
) -> None:
    # the same template and subject: the rows would not say which rung wrote them, so
    # each rung has its own statement, counted by its own row count
    assert run_ladder(db_url, tmp_path, "same {kind}", "same {kind}") == {
        "esc-a": 4, "esc-b": 8, "rows": 12}  # fmt: skip
