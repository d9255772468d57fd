"""Crash safety of the sweep and the scheduler, with real processes and real SIGKILL.

- A sweep killed mid-run (``quorum sweep`` in a child process, SIGKILLed) and run
  again queues every due message exactly once; run a third time, nothing. On
  SQLite the kill lands after some of its chunks committed (each chunk is a
  transaction of its own: what they wrote stays, written ``sweeping``, which is
  never sent, and the next sweep goes on from there); on PostgreSQL the child is
  held inside its first chunk (this test keeps an uncommitted outbox row with one
  of the keys the sweep will write, so its INSERT waits) and killed there: nothing
  is left behind.
- Two schedulers started at once: one holds the lock (a PostgreSQL advisory lock, or
  a lock file next to the SQLite database) and runs; the other exits saying who holds
  it. One started with ``--wait`` takes over when the holder is SIGKILLed.
- With the lock bypassed, two sweeps at once queue nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from bench.bench_sweep import setup as seed_returns
from engine.commands.sweep import return_ref
from engine.entry.scheduler import FIRST_CHUNK, LOCK_KEY
from engine.store.db import create_schema, make_engine
from engine.store.models import AuditEvent, Outbox, Return

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2012-01-16"
PER_GRANT = 10  # at AS_OF: Q1, Q2 x 2 kinds to the Director and the Chair; Q3 x 2 reminded
VICTIM = "quorum-sweep-victim"


def env(**extra: str) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("QUORUM_") or k == "QUORUM_CHECKPOINT_DIR"}  # conftest's
    full.update(PYTHONPATH=str(REPO), **extra)
    return full


def cli(*args: str, db: str, **popen) -> subprocess.Popen:  # noqa: ANN003
    return subprocess.Popen(
        [sys.executable, "-m", "engine.entry.cli", "--db", db, *args],
        env=popen.pop("env", None) or env(),
        **popen,
    )


def sweep_once(url: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "engine.entry.cli", "--db", url,
         "sweep", "--as-of", AS_OF, "--json"],
        capture_output=True, text=True, env=env(), timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def counts(url: str) -> tuple[int, int, int, int]:
    """(return messages, distinct keys, returns, sweep audit events)"""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            msgs, distinct = c.execute(
                select(func.count(), func.count(Outbox.key.distinct())).where(
                    Outbox.key.like("return:%")
                )
            ).one()
            rets = c.execute(select(func.count()).select_from(Return)).scalar()
            sweeps = c.execute(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.command == "sweep")
            ).scalar()
    finally:
        engine.dispose()
    return msgs, distinct, rets, sweeps


def swept_to(path: Path) -> int:
    """How far the sweep in progress has gone (the highest grant id of its last
    chunk committed), read beside it."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        row = conn.execute("SELECT max(after) FROM sweep_run WHERE phase = 'running'").fetchone()
        return int(row[0] or 0)
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()


def statuses(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path, timeout=5)
    try:
        return dict(conn.execute("SELECT status, count(*) FROM outbox WHERE key LIKE 'return:%' "
                                 "GROUP BY status").fetchall())  # fmt: skip
    finally:
        conn.close()


def test_sweep_killed_mid_run_on_sqlite_then_every_message_exactly_once(tmp_path: Path) -> None:
    """The sweep works in chunks of QUORUM_SWEEP_CHUNK grants, each committed on its
    own: killed after some chunks, what they wrote stays, none of it sendable
    (``sweeping``, or ``held`` once a catch-up is sure to hold), and the next
    sweep goes on from there — every message exactly once, counted whole; a
    third sweep queues nothing."""
    n = 4000
    for attempt in range(3):
        path = tmp_path / f"big-{attempt}.db"
        url = f"sqlite:///{path}"
        returns = seed_returns(url, n)
        child = cli("sweep", "--as-of", AS_OF, db=url, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, env=env(QUORUM_SWEEP_CHUNK="100"))  # fmt: skip
        while child.poll() is None:
            if swept_to(path) >= 500:  # five chunks committed, at least
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        child.wait(timeout=60)
        if child.returncode == -signal.SIGKILL:
            break
        # it finished before it could be caught mid-run: try again on a fresh database
    else:
        pytest.fail("could not kill the sweep part-way")
    msgs, distinct, rets, sweeps = counts(url)
    assert 0 < msgs < PER_GRANT * n and msgs == distinct  # some chunks' messages, once each
    assert (rets, sweeps) == (returns, 0)  # no last step: no sweep recorded
    # none of them can be sent yet: the first chunk's are ``sweeping`` (the last step
    # decides); once the sweep has more than QUORUM_DIGEST_THRESHOLD (10) messages, a
    # catch-up (the gate held: nothing recorded for years) is sure to hold them all,
    # and the later chunks write theirs ``held`` at once (sweep.py ``_written``)
    assert statuses(path) == {"sweeping": FIRST_CHUNK * PER_GRANT,
                              "held": msgs - FIRST_CHUNK * PER_GRANT}  # fmt: skip
    first = sweep_once(url)
    assert first["messages_queued_total"] == PER_GRANT * n
    assert first["messages_queued"] == {
        "escalate-chair": 4 * n, "escalate-director": 4 * n, "reminder-14": 2 * n
    }  # fmt: skip
    assert counts(url) == (PER_GRANT * n, PER_GRANT * n, returns, 1)
    # all released as the sweep's start decided: the database's newest event is
    # years old, so this first sweep is a catch-up and holds them for an officer
    assert statuses(path) == {"held": PER_GRANT * n}
    assert sweep_once(url)["messages_queued_total"] == 0
    assert counts(url) == (PER_GRANT * n, PER_GRANT * n, returns, 2)


def test_sweep_killed_mid_run_on_postgresql_then_every_message_exactly_once(pg_url) -> None:
    n = 400
    returns = seed_returns(pg_url, n)
    blocker = make_engine(pg_url)
    held = blocker.connect()
    held.begin()
    # the first message the sweep writes (the first rung in the ladder: Q3's reminder)
    key = (
        f"return:{return_ref('GB-000000', 'progress', dt.date(2011, 12, 31))}"
        ":reminder-14:sponsor00@bench.example"
    )
    held.execute(insert(Outbox).values(key=key, to_addr="x@example", template="t", subject="s",
                                       context={}, created_at=dt.datetime.now(dt.UTC)))  # fmt: skip
    victim_url = f"{pg_url}?application_name={VICTIM}"
    child = cli("sweep", "--as-of", AS_OF, db=victim_url, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)  # fmt: skip
    watch = blocker.connect()
    deadline = time.monotonic() + 120
    waiting = None
    while time.monotonic() < deadline and child.poll() is None:
        waiting = watch.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event_type = 'Lock'",
            (VICTIM,),
        ).scalar()
        watch.rollback()
        if waiting:
            break
        time.sleep(0.05)
    assert waiting, f"the sweep never reached the blocked INSERT: {child.stderr.read()!r}"
    child.send_signal(signal.SIGKILL)  # mid-run: returns created, messages being written
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    held.rollback()
    held.close()
    while watch.exec_driver_sql(  # its server session ends with the statement it was in
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (VICTIM,)
    ).scalar():
        watch.rollback()
        assert time.monotonic() < deadline, "the killed sweep's session never ended"
        time.sleep(0.05)
    watch.close()
    blocker.dispose()
    assert counts(pg_url) == (0, 0, returns, 0)
    assert sweep_once(pg_url)["messages_queued_total"] == PER_GRANT * n
    assert counts(pg_url) == (PER_GRANT * n, PER_GRANT * n, returns, 1)
    assert sweep_once(pg_url)["messages_queued_total"] == 0
    assert counts(pg_url)[:2] == (PER_GRANT * n, PER_GRANT * n)


def test_two_sweeps_at_once_queue_nothing_twice(db_url: str) -> None:
    """The lock bypassed: two sweeps run at once (the audit chain's head lock
    serialises their transactions; the unique keys would hold even without it)."""
    n = 300
    returns = seed_returns(db_url, n)
    kids = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.entry.cli",
                "--db",
                db_url,
                "sweep",
                "--as-of",
                AS_OF,
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = []
    for kid in kids:
        stdout, stderr = kid.communicate(timeout=300)
        assert kid.returncode == 0, stderr
        outs.append(json.loads(stdout)["messages_queued_total"])
    assert sorted(outs) == [0, PER_GRANT * n]
    assert counts(db_url) == (PER_GRANT * n, PER_GRANT * n, returns, 2)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def wait_for(predicate, timeout: float = 90, what: str = "") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_two_schedulers_started_at_once_only_one_runs(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    create_schema(engine)
    engine.dispose()
    mail = env(QUORUM_MAIL="file", QUORUM_OUTBOX_DIR=str(tmp_path / "mail"))
    logs = {name: (tmp_path / f"{name}.out", tmp_path / f"{name}.err") for name in "abc"}

    def start(name: str, *extra: str) -> subprocess.Popen:
        out, err = logs[name]
        return cli("scheduler", "run", "--dispatch-every", "3600", *extra, db=db_url,
                   env=mail, stdout=out.open("w"), stderr=err.open("w"))  # fmt: skip

    a, b = start("a"), start("b")  # at once
    try:
        wait_for(lambda: a.poll() is not None or b.poll() is not None, what="one to give up")
        loser, winner = (a, b) if a.poll() is not None else (b, a)
        lname = "a" if loser is a else "b"
        assert loser.returncode == 1
        refusal = read(logs[lname][1])
        assert refusal.startswith("error: another scheduler is running (")
        assert "only one scheduler may run at a time" in refusal and "Traceback" not in refusal
        if db_url.startswith("postgresql"):
            assert f"holds the PostgreSQL advisory lock {LOCK_KEY})" in refusal
        else:
            assert f"process {winner.pid} holds the lock file" in refusal
        wname = "b" if lname == "a" else "a"
        wait_for(lambda: "scheduler running" in read(logs[wname][1]), what="the winner to run")
        assert winner.poll() is None
        if db_url.startswith("postgresql"):
            engine = make_engine(db_url)
            with engine.connect() as conn:
                holders = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    f"AND objid = {LOCK_KEY & 0xFFFFFFFF}"
                ).scalar()
            engine.dispose()
            assert holders == 1
        c = start("c", "--wait")  # waits for the lock...
        wait_for(lambda: "waiting for it" in read(logs["c"][1]), what="the third to wait")
        winner.send_signal(signal.SIGKILL)  # ...and takes over when its holder dies
        winner.wait(timeout=30)
        wait_for(lambda: "scheduler running" in read(logs["c"][1]), what="the take-over")
        c.send_signal(signal.SIGTERM)
        c.wait(timeout=60)
        assert c.returncode == 0, read(logs["c"][1])
        assert "scheduler stopped" in read(logs["c"][0])
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()
