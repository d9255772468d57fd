"""The sweep in chunks (issue 15 item 4, engine/commands/sweep.py "in chunks").

- Stopped after some chunks (the driver abandoned mid-sweep: no last step), the
  chunks' messages are written ``sweeping`` — none can be sent — and the next
  sweep goes on from the last chunk committed: every message exactly once, its
  counts whole, the audit chain verifying; a third sweep queues nothing.
- A command issued while a sweep runs in another thread gets in between chunks
  and succeeds, and the sweep's work is complete afterwards (real SQLite file,
  and PostgreSQL).
- The last step still decides over ALL the sweep's messages: a catch-up holds the
  chunks' messages too, and a person's many messages go as one digest.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from bench.bench_sweep import setup as seed_returns
from engine.commands.notices import catchup_waiting
from engine.commands.service import Quorum
from engine.commands.sweep import Part, _none_queued
from engine.domain.actor import Actor
from engine.domain.clock import FixedClock
from engine.domain.errors import ValidationError
from engine.entry.scheduler import (
    YIELD_MAX_S,
    YIELD_S,
    Yield,
    sweep,
    sweep_in_chunks,
    wal_checkpointer,
)
from engine.settings import Settings, override_settings
from engine.store import audit
from engine.store.db import make_engine
from engine.store.models import AuditEvent, Outbox, SweepRun

AS_OF = dt.date(2012, 1, 16)
PER_GRANT = 10  # messages per grant at AS_OF (tests/test_sweep_crash.py)
N = 60
CHUNK = 7  # grants per chunk: 9 chunks for 60 grants


def statuses(engine) -> dict[str, int]:  # noqa: ANN001
    with engine.connect() as c:
        return dict(c.execute(select(Outbox.status, func.count()).where(
            Outbox.key.like("return:%")).group_by(Outbox.status)).all())  # fmt: skip


def distinct_keys(engine) -> tuple[int, int]:  # noqa: ANN001
    with engine.connect() as c:
        return tuple(c.execute(select(func.count(), func.count(Outbox.key.distinct())).where(
            Outbox.key.like("return:%"))).one())  # fmt: skip


def sweeps_recorded(engine) -> int:  # noqa: ANN001
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.command == "sweep")).scalar() or 0)  # fmt: skip


def chain_ok(engine) -> bool:  # noqa: ANN001
    with Session(engine) as s:
        return audit.verify(s).ok


@pytest.fixture
def chunked():
    # chunks by grants alone (QUORUM_SWEEP_CHUNK_MS=0): the number of chunks is known
    with override_settings(Settings(sweep_chunk=CHUNK, sweep_chunk_ms=0, digest_threshold=10_000)):
        yield


def test_a_sweep_abandoned_after_some_chunks_goes_on_from_there_exactly_once(
    db_url: str, chunked: None
) -> None:
    seed_returns(db_url, N)
    engine = make_engine(db_url)
    clock = FixedClock(AS_OF)
    q = Quorum(engine, clock)
    system = Actor.system("scheduler")
    steps = [q.execute("sweep_chunk", {"as_of": AS_OF}, system) for _ in range(3)]
    assert [s["more"] for s in steps] == [True, True, True]
    assert [s["swept_to"] for s in steps] == [CHUNK, 2 * CHUNK, 3 * CHUNK]
    # abandoned here (the process died): what the three chunks wrote is kept, and
    # none of it can be sent (the dispatcher takes only queued rows)
    assert statuses(engine) == {"sweeping": 3 * CHUNK * PER_GRANT}
    assert sweeps_recorded(engine) == 0
    out = sweep(engine, AS_OF, clock)  # the next sweep of the day: from chunk 4 on
    assert out["messages_queued_total"] == PER_GRANT * N  # the first chunks' counted too
    assert out["messages_queued"] == {
        "escalate-chair": 4 * N, "escalate-director": 4 * N, "reminder-14": 2 * N}  # fmt: skip
    assert statuses(engine) == {"queued": PER_GRANT * N}
    assert distinct_keys(engine) == (PER_GRANT * N, PER_GRANT * N)
    with engine.connect() as c:
        runs = c.execute(select(SweepRun.phase, SweepRun.after, SweepRun.counts)).all()
    assert [(r.phase, r.after) for r in runs] == [("done", N)]
    assert runs[0].counts["chunks"] == -(-N // CHUNK)  # each grant swept once: 9 chunks
    assert sweeps_recorded(engine) == 1 and chain_ok(engine)
    again = sweep(engine, AS_OF, clock)
    assert again["messages_queued_total"] == 0
    assert distinct_keys(engine) == (PER_GRANT * N, PER_GRANT * N)
    assert sweeps_recorded(engine) == 2 and chain_ok(engine)
    engine.dispose()


def test_a_sweep_of_another_day_takes_up_an_abandoned_one(sqlite_url: str, chunked: None) -> None:
    seed_returns(sqlite_url, N)
    engine = make_engine(sqlite_url)
    clock = FixedClock(AS_OF + dt.timedelta(days=1))
    q = Quorum(engine, clock)
    q.execute("sweep_chunk", {"as_of": AS_OF}, Actor.system("scheduler"))
    assert statuses(engine) == {"sweeping": CHUNK * PER_GRANT}
    out = sweep(engine, AS_OF + dt.timedelta(days=1), clock)
    # the day before's chunk is carried: nothing of it lost, nothing doubled
    assert out["messages_queued_total"] == PER_GRANT * N
    assert statuses(engine) == {"queued": PER_GRANT * N}
    with engine.connect() as c:
        assert sorted(c.execute(select(SweepRun.phase)).scalars()) == ["abandoned", "done"]
    assert chain_ok(engine)
    engine.dispose()


def test_a_command_between_chunks_succeeds_and_the_sweep_completes(
    db_url: str, chunked: None
) -> None:
    """A second thread issues commands in a loop while the sweep runs: each one
    succeeds (none refused ``database is locked``), some while the sweep is
    part-way, and the sweep's work is whole afterwards."""
    seed_returns(db_url, N)
    engine = make_engine(db_url)
    clock = FixedClock(AS_OF)
    q = Quorum(engine, clock)
    done = threading.Event()
    results: list[object] = []
    during: list[int] = []  # commands that committed while the sweep was part-way

    def running() -> bool:
        with engine.connect() as c:
            return c.execute(select(SweepRun.id).where(SweepRun.phase == "running")).first() \
                is not None

    def person() -> None:
        i = 0
        while not done.is_set():
            before = running()
            try:
                results.append(q.execute("register_organisation",
                                         {"name": f"Interleaved {i}", "kind": "other"}, "system"))
            except Exception as exc:  # noqa: BLE001  reported below
                results.append(exc)
            if before and running():
                during.append(i)
            i += 1

    other = threading.Thread(target=person)
    steps: list[int] = []
    original = q.execute

    def slow_driver(name: str, args, actor):  # noqa: ANN001
        out = original(name, args, actor)
        if name == "sweep_chunk":
            steps.append(out["swept_to"])
            if len(steps) == 1:
                other.start()  # the person starts once the sweep is under way
            while out["more"] and len(during) < len(steps) and other.is_alive():
                threading.Event().wait(0.005)  # a command gets in before the next chunk
        return out

    q.execute = slow_driver  # type: ignore[method-assign]
    try:
        out = sweep_in_chunks(q, {"as_of": AS_OF}, Actor.system("scheduler"))
    finally:
        done.set()
        if other.is_alive() or other.ident is not None:
            other.join(timeout=60)
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    assert len(steps) == -(-N // CHUNK) and during  # commands got in while it was part-way
    assert out["messages_queued_total"] == PER_GRANT * N
    assert statuses(engine) == {"queued": PER_GRANT * N}
    assert distinct_keys(engine) == (PER_GRANT * N, PER_GRANT * N)
    assert chain_ok(engine)
    engine.dispose()


def test_a_catch_up_sure_to_hold_writes_the_rest_held_and_still_holds_them_all(
    sqlite_url: str,
) -> None:
    """A catch-up (the gate held at its start: nothing recorded for years) holds all
    its messages once it has more than QUORUM_DIGEST_THRESHOLD: as soon as its
    chunks have queued more, the later chunks write theirs ``held`` at once (none
    rewritten at the end). Abandoned there, and finished under a higher threshold,
    the last step still holds every message (the chunks decided it), exactly once."""
    seed_returns(sqlite_url, N)
    engine = make_engine(sqlite_url)
    clock = FixedClock(AS_OF)
    q = Quorum(engine, clock)
    system = Actor.system("scheduler")
    with override_settings(Settings(sweep_chunk=CHUNK, sweep_chunk_ms=0, digest_threshold=100)):
        steps = [q.execute("sweep_chunk", {"as_of": AS_OF}, system) for _ in range(3)]
    assert [s["swept_to"] for s in steps] == [CHUNK, 2 * CHUNK, 3 * CHUNK]
    # 70 messages after the first chunk (not > 100): the second's still sweeping;
    # 140 after it: the third chunk's written held
    assert statuses(engine) == {"sweeping": 2 * CHUNK * PER_GRANT, "held": CHUNK * PER_GRANT}
    # held, but not yet to be confirmed: the sweep's last step decides over them all
    with pytest.raises(ValidationError, match="still running"):
        q.execute("confirm_catchup", {}, system)
    with engine.connect() as c:
        assert catchup_waiting(c) == (0, 0)
    with override_settings(Settings(sweep_chunk=CHUNK, sweep_chunk_ms=0,
                                    digest_threshold=10_000)):  # fmt: skip
        out = sweep(engine, AS_OF, clock)
    assert out["messages_queued_total"] == PER_GRANT * N
    assert out["held"] == PER_GRANT * N  # more than the threshold now in force: decided
    assert statuses(engine) == {"held": PER_GRANT * N}
    assert distinct_keys(engine) == (PER_GRANT * N, PER_GRANT * N)
    assert sweeps_recorded(engine) == 1 and chain_ok(engine)
    with engine.connect() as c:  # finished: all of them to confirm, at once
        assert catchup_waiting(c)[0] == PER_GRANT * N
    assert q.execute("confirm_catchup", {}, system)["released"] == PER_GRANT * N
    engine.dispose()


def test_a_sweep_that_is_no_catch_up_writes_sweeping_whatever_its_count(
    sqlite_url: str, chunked: None
) -> None:
    """Not a catch-up (a sweep ran yesterday): every chunk writes ``sweeping``, for the
    last step to digest or queue, however many messages there are."""
    seed_returns(sqlite_url, N)
    engine = make_engine(sqlite_url)
    clock = FixedClock(AS_OF)
    q = Quorum(engine, clock)
    system = Actor.system("scheduler")
    # a sweep recorded today, as of a day before any return was in reach: no message
    first = q.execute("sweep", {"as_of": dt.date(2011, 4, 1)}, system)
    assert first["messages_queued_total"] == 0 and not first.get("held")
    with override_settings(Settings(sweep_chunk=CHUNK, sweep_chunk_ms=0, digest_threshold=10)):
        steps = [q.execute("sweep_chunk", {"as_of": AS_OF}, system) for _ in range(3)]
    assert all(s["more"] for s in steps)
    assert statuses(engine) == {"sweeping": 3 * CHUNK * PER_GRANT}
    engine.dispose()


def test_the_checkpointer_copies_the_wal_back_while_the_sweep_runs(tmp_path) -> None:
    """While a sweep runs on SQLite, a thread copies what is committed back into the
    database file (engine/entry/scheduler.py wal_checkpointer); without it, commits
    stay in the WAL until the autocheckpoint at 10,000 pages, paid by whichever
    commit crosses it."""
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (x TEXT)")

    def write() -> None:  # ~500 KB, well under the autocheckpoint's 40 MB
        with engine.begin() as c:
            c.exec_driver_sql("INSERT INTO t SELECT hex(randomblob(500)) FROM "
                              "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                              "WHERE i < 500) SELECT i FROM n)")  # fmt: skip

    write()
    time.sleep(0.3)
    assert path.stat().st_size < 100_000  # still in the WAL: nothing copied it back
    with wal_checkpointer(engine):
        write()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and path.stat().st_size < 1_000_000:
            time.sleep(0.02)
    assert path.stat().st_size >= 1_000_000  # both writes copied into the database
    engine.dispose()


def test_the_pause_between_chunks_grows_with_how_late_the_sweep_wakes() -> None:
    """Commands poll the write lock every millisecond, so the sweep pauses only a few
    ms between chunks; on a busy machine longer (a waiting command wakes late
    too): twice its own last lateness, which halves at each pause, within a bound."""
    wait = Yield()
    assert wait.seconds() == YIELD_S
    wait.late = 0.01
    assert wait.seconds() == pytest.approx(YIELD_S + 0.02)
    wait.late = 1.0
    assert wait.seconds() == YIELD_MAX_S
    wait.late = 0.01
    wait()  # woke on time (or late): what it remembers is at least half the last
    assert wait.late >= 0.005


def test_a_chunk_with_no_message_yet_skips_the_outbox_look_up_and_still_queues_once(
    sqlite_url: str, chunked: None
) -> None:
    """A chunk none of whose grants has a return message yet queues without looking
    each message up in the outbox first (sweep.py ``_none_queued``, by the keys'
    prefix ``return:RET-<grant ref>-``). Fooled — the grants renamed after their
    messages were queued, so the prefix finds none — the unique key still queues
    each message once, and the counts count only those written."""
    seed_returns(sqlite_url, N)
    engine = make_engine(sqlite_url)
    clock = FixedClock(AS_OF + dt.timedelta(days=1))
    q = Quorum(engine, clock)
    for _ in range(2):
        q.execute("sweep_chunk", {"as_of": AS_OF}, Actor.system("scheduler"))
    with engine.connect() as c:
        assert not _none_queued(c, Part(span=(0, CHUNK)))
        assert _none_queued(c, Part(span=(2 * CHUNK, 3 * CHUNK)))
    with engine.begin() as c:  # the second chunk's grants renamed: their keys unseen
        c.exec_driver_sql(f"UPDATE grant_award SET ref = 'ZZ-' || id WHERE id > {CHUNK} "
                          f"AND id <= {2 * CHUNK}")  # fmt: skip
    with engine.connect() as c:
        assert _none_queued(c, Part(span=(CHUNK, 2 * CHUNK)))
    # a sweep of the next day takes the stopped one up, sweeping every grant again
    out = sweep(engine, AS_OF + dt.timedelta(days=1), clock)
    assert out["messages_queued_total"] == PER_GRANT * N  # the renamed grants' not twice
    assert distinct_keys(engine) == (PER_GRANT * N, PER_GRANT * N)
    assert statuses(engine) == {"queued": PER_GRANT * N}
    assert chain_ok(engine)
    engine.dispose()
