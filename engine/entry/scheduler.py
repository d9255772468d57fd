"""The scheduler: one APScheduler per process, in-memory job store, one process at a time.

Deadlines live in the database, never in scheduler jobs (DESIGN.md): the
scheduler runs three jobs, whatever the number of returns —

- ``sweep``: the deadline sweep (engine/commands/sweep.py), daily at 07:00 Europe/London
  (``QUORUM_SWEEP_AT``, ``QUORUM_TIMEZONE``), and once at start to catch up on
  any days the scheduler was down; it also expires the delegated-decision
  requests past their expiry date (their workflow's ``expire`` step);
- ``dispatch_outbox``: the dispatcher (notifications/dispatch.py), every 30 s
  (``QUORUM_DISPATCH_SECONDS``), and once at start;
- ``lock_watch`` (PostgreSQL): checks the lock's connection is alive.

APScheduler 3 must never share a job store between schedulers, so each
process has its own in-memory store, and only one process schedules at a
time: it holds :class:`SchedulerLock` for its whole life — on PostgreSQL a
session-level advisory lock (``pg_try_advisory_lock``) on a connection of its
own, on SQLite an exclusive ``flock`` on ``<database>.scheduler.lock`` next to
the database file. A second scheduler waits for the lock or exits saying who
holds it. The lock is the first line only: even two schedulers at once send
nothing twice (the outbox's unique keys, the dispatcher's row claiming).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Connection, Engine, make_url

from engine.commands.service import Quorum
from engine.domain.actor import Actor
from engine.domain.clock import Clock, SystemClock
from engine.domain.errors import QuorumError, ValidationError
from engine.settings import (
    DEFAULT_DISPATCH_SECONDS,
    DEFAULT_TIMEZONE,
    SettingsError,
    get_settings,
    parse_dispatch_seconds,
    parse_sweep_at,
    parse_timezone,
)
from engine.settings import Settings as AppSettings
from engine.store import search
from engine.store.checkpoints import Checkpoint, write_checkpoint
from engine.store.db import write_connection
from notifications.channels import channel_from_config
from notifications.dispatch import dispatch

log = logging.getLogger("quorum.scheduler")

# PostgreSQL advisory lock key: the first 8 bytes of sha256("quorum:scheduler"), signed
LOCK_KEY = int.from_bytes(hashlib.sha256(b"quorum:scheduler").digest()[:8], "big", signed=True)
LOCK_WATCH_SECONDS = 30
SEARCH_CATCH_UP_SECONDS = 120  # the audit lines appended since, indexed for search
SEARCH_CATCH_UP_ROWS = 5000  # a transaction at a time


class LockHeld(QuorumError):
    """Another scheduler holds the lock."""

    code = "scheduler_running"
    http_status = 409


def sweep(
    engine: Engine,
    as_of: dt.date | None = None,
    clock: Clock | None = None,
    *,
    returns_rules: str | None = None,
    reminder_rules: str | None = None,
    actor: str = "scheduler",
) -> dict:
    """Run one sweep through the command bus, in chunks (:func:`sweep_in_chunks`),
    as the system; then the audit checkpoint."""
    args: dict[str, Any] = {}
    if as_of is not None:
        args["as_of"] = as_of
    if returns_rules:
        args["returns_rules"] = returns_rules
    if reminder_rules:
        args["reminder_rules"] = reminder_rules
    out = sweep_in_chunks(Quorum(engine, clock), args, Actor.system(actor))
    checkpoint_after_sweep(engine, clock)
    return out


YIELD_S = 0.004  # the sweep's pause between chunks (SQLite), on a machine that is not busy
YIELD_MAX_S = 0.05


class Yield:
    """The sweep's pause between chunks (SQLite). A command that found the write
    lock taken tries again every millisecond (engine/store/db.py
    ``_begin_immediate``), so it takes the lock as soon as the chunk commits:
    the pause only has to outlast its next try — YIELD_S — and, on a busy
    machine, the waiting process being woken late: twice as late as the sweep's
    own last pause woke (the same run queue), YIELD_MAX_S at most. (It was up to
    100 ms, to outlast SQLite's own busy handler, which backs off to a try every
    100 ms: a third of a catch-up's time at 100,000 grants.) PostgreSQL queues
    lock waiters: no pause."""

    def __init__(self) -> None:
        self.late = 0.0  # how late the last pauses woke (halved at each pause)

    def seconds(self) -> float:
        return min(YIELD_MAX_S, YIELD_S + 2 * self.late)

    def __call__(self) -> None:
        want = self.seconds()
        started = time.perf_counter()
        time.sleep(want)
        self.late = max(time.perf_counter() - started - want, self.late / 2)


FIRST_CHUNK = 20  # grants
# The fewest grants a chunk takes (QUORUM_SWEEP_CHUNK permitting). A chunk has a
# fixed cost — a dozen small statements, each a round trip: ~10 ms on a quiet
# PostgreSQL, 20-40 ms on a busy one — beside ~0.25 ms a grant of real work (a
# catch-up: 10 messages a grant). Sized by the last chunk's pace alone, chunks
# on a busy machine shrank until the fixed cost filled the budget (~20 grants a
# chunk at 100,000 grants), and the sweep crawled. 100 grants amortise it and
# stay ~50 ms of work: at three times that on a loaded machine a command still
# waits less than 250 ms behind a chunk.
LEAST_CHUNK = 100  # grants
LEAST_ROWS = 10  # messages released by a sweep_release


def next_chunk(
    done: int, held: float, most: int | None = None, least: int = LEAST_ROWS
) -> int | None:
    """How many grants (or messages) the next chunk takes: as many as fit in
    QUORUM_SWEEP_CHUNK_MS at the pace of the last chunk (``done`` in ``held``
    seconds), at most ``most`` (default QUORUM_SWEEP_CHUNK; None: that), at least
    ``least``; and no more than twice the last, so one quick chunk does not make
    the next a long one."""
    budget = get_settings().sweep_chunk_ms / 1000
    if not budget or done <= 0 or held <= 0:
        return None
    cap = most if most is not None else get_settings().sweep_chunk
    return min(cap, max(least, min(2 * done, int(done * budget / held))))


def sweep_in_chunks(
    q: Quorum, args: dict[str, Any], actor: str | Actor, *, pause: bool = True
) -> dict:
    """The sweep as ``sweep_chunk`` commands, QUORUM_SWEEP_CHUNK grants each at most
    and as many as take QUORUM_SWEEP_CHUNK_MS (:func:`next_chunk`), in a short
    transaction of its own, then the ``sweep`` command for its last step
    (engine/commands/sweep.py "in chunks": the catch-up hold and the digests
    decided over all the sweep's messages, the audit event), then
    ``sweep_release`` commands releasing its messages as decided, 10 x
    QUORUM_SWEEP_CHUNK at a time; between chunks, the database is left to other
    commands for a moment (:class:`Yield`). Stopped part-way, the next sweep
    goes on from the last chunk committed."""
    with wal_checkpointer(q.engine) if pause else contextlib.nullcontext():
        return _sweep_in_chunks(q, dict(args), actor, pause=pause)


CHECKPOINT_EVERY = 0.05  # seconds between the checkpointer's passes


@contextlib.contextmanager
def wal_checkpointer(engine: Engine) -> Iterator[None]:
    """On SQLite, a thread copying the WAL back into the database (``PRAGMA
    wal_checkpoint(PASSIVE)``, its own connection) every CHECKPOINT_EVERY seconds
    while the sweep runs. A sweep writes a WAL of 10,000 pages (the autocheckpoint,
    engine/store/db.py) every few chunks; without this, the commit that crosses it
    copies and fsyncs 40 MB before returning — ~120 ms in the sweep's chunk, or in
    the command of a person that happened to commit then (43 such commits in a
    100k catch-up). A passive checkpoint takes no lock that writers wait on and
    runs beside the next chunk (the driver lets go of the GIL in SQLite's calls);
    once it has copied every frame the next writer starts the WAL afresh, so the
    autocheckpoint is seldom reached. Durability is unchanged: it only makes
    committed pages durable sooner (the dispatcher still checkpoints before
    sending, notifications/dispatch.py)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        yield  # PostgreSQL checkpoints by itself; a database in memory has no WAL
        return
    stop = threading.Event()

    database = str(engine.url.database)

    def run() -> None:
        # a connection of its own, not the engine's pool: none of the sweep's
        # statements, and nothing for the pool's other users to inherit
        raw = sqlite3.connect(database, isolation_level=None)
        try:
            while not stop.wait(CHECKPOINT_EVERY):
                # outside any transaction: a checkpoint cannot run inside one
                raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception:  # never the sweep's failure: the autocheckpoint still runs
            log.exception("WAL checkpointer stopped")
        finally:
            raw.close()

    thread = threading.Thread(target=run, name="quorum-wal-checkpointer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _sweep_in_chunks(q: Quorum, args: dict[str, Any], actor: str | Actor, *, pause: bool) -> dict:
    sqlite = q.engine.dialect.name == "sqlite"
    # QUORUM_SWEEP_CHUNK; with a time budget, a few grants first (the process's first
    # chunk also prepares the sweep's statements), then as the last chunk's pace says
    size: int | None = FIRST_CHUNK if get_settings().sweep_chunk_ms else None
    pause = pause and sqlite
    wait = Yield()
    while True:
        started = time.perf_counter()
        step = q.execute("sweep_chunk", {**args, **({"grants": size} if size else {})}, actor)
        held = time.perf_counter() - started
        args.setdefault("as_of", dt.date.fromisoformat(step["as_of"]))  # one day throughout
        if not step["more"]:
            break
        size = next_chunk(int(step.get("grants") or 0), held, least=LEAST_CHUNK)
        if pause:
            wait()
    # the last step: decide (hold? digests?), record; its messages released in chunks
    out = q.execute("sweep", {**args, "release": "in_chunks"}, actor)
    rows: int | None = None
    while out.pop("releasing", None):
        started = time.perf_counter()
        step = q.execute("sweep_release", {"rows": rows} if rows else {}, actor)
        held = time.perf_counter() - started
        if not step["more"]:
            break
        rows = next_chunk(int(step.get("rows") or 0), held, 100 * get_settings().sweep_chunk)
        if pause:
            wait()
        out["releasing"] = True
    return out


def checkpoint_after_sweep(engine: Engine, clock: Clock | None = None) -> Checkpoint | None:
    """Every sweep ends by writing a signed checkpoint of the audit chain's head
    outside the database (engine/store/checkpoints.py). The sweep's own work is
    committed already: a chain that no longer verifies is logged, not signed."""
    try:
        return write_checkpoint(engine, (clock or SystemClock()).now())
    except QuorumError as exc:
        log.error("audit checkpoint not written: %s", exc.message)
        return None


def outbox_folder() -> Path:
    return get_settings().outbox_dir


# the option each setting's message names, for the refusal's field
_FIELDS = {
    "sweep_at": "QUORUM_SWEEP_AT",
    "timezone": "QUORUM_TIMEZONE",
    "dispatch_every": "QUORUM_DISPATCH_SECONDS",
}


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    sweep_hour: int = 7
    sweep_minute: int = 0
    timezone: str = DEFAULT_TIMEZONE
    dispatch_seconds: int = DEFAULT_DISPATCH_SECONDS

    @property
    def sweep_at(self) -> str:
        return f"{self.sweep_hour:02d}:{self.sweep_minute:02d}"


def settings(
    sweep_at: str | None = None,
    timezone: str | None = None,
    dispatch_seconds: int | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Explicit values > QUORUM_SWEEP_AT / QUORUM_TIMEZONE / QUORUM_DISPATCH_SECONDS > defaults.
    A bad value is refused naming the setting and what is allowed."""
    try:
        conf = get_settings() if env is None else AppSettings.from_env(env)
        hh, mm = parse_sweep_at(sweep_at or conf.sweep_at)
        tz = parse_timezone(timezone or conf.timezone)
        every = (
            conf.dispatch_seconds
            if dispatch_seconds is None
            else parse_dispatch_seconds(dispatch_seconds)
        )
    except SettingsError as exc:
        field = next(
            (f for f, words in _FIELDS.items() if words in exc.message), "settings"
        )
        raise ValidationError(exc.message, field=field) from None
    return Settings(hh, mm, tz, every)


# ------------------------------------------------------------------ the lock


HOLDER_LOOKS = 50  # times a refusal looks, 10 ms apart, for the lock holder's pid in its file


class SchedulerLock:
    """One scheduler per database: a PostgreSQL session advisory lock, or an
    exclusive flock on a file next to the SQLite database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kind = engine.dialect.name
        self._conn: Connection | None = None
        self._fd: int | None = None
        self._local = False
        self.path: Path | None = None
        if self.kind == "sqlite":
            database = make_url(str(engine.url)).database
            if database and database != ":memory:" and not database.startswith("file:"):
                self.path = (
                    Path(database).resolve().with_name(Path(database).name + ".scheduler.lock")
                )

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None or self._local

    def describe(self) -> str:
        if self.kind == "postgresql":
            return f"PostgreSQL advisory lock {LOCK_KEY}"
        if self.path is not None:
            return f"lock file {self.path}"
        return "an in-process lock (in-memory database)"

    def try_acquire(self) -> bool:
        if self.kind == "postgresql":
            conn = self.engine.connect()
            try:
                got = bool(
                    conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({LOCK_KEY})").scalar()
                )
                conn.commit()  # a session lock outlives the transaction; the connection is ours
            except Exception:
                conn.close()
                raise
            if got:
                self._conn = conn
            else:
                conn.close()
            return got
        if self.path is None:
            self._local = True
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds the lock, as far as can be told."""
        try:
            if self.kind == "postgresql":
                with self.engine.connect() as conn:
                    pid = conn.exec_driver_sql(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        f"AND objid = {LOCK_KEY & 0xFFFFFFFF} AND classid = "
                        f"{(LOCK_KEY >> 32) & 0xFFFFFFFF} LIMIT 1"
                    ).scalar()
                return f"database backend pid {pid}" if pid else "another session"
            if self.path is not None and self.path.exists():
                # the holder writes its pid just after taking the lock: a refusal read
                # in between finds the file empty, so look again for a moment
                text = ""
                for _ in range(HOLDER_LOOKS):
                    text = self.path.read_text().strip()
                    if text:
                        break
                    time.sleep(0.01)
                return f"process {text}" if text else "another process"
        except Exception:  # only for the message
            pass
        return "another process"

    def acquire(self, wait: bool = False, poll: float = 2.0, timeout: float | None = None) -> None:
        """Take the lock, or raise :class:`LockHeld` (``wait``: keep trying)."""
        started = time.monotonic()
        announced = False
        while True:
            if self.try_acquire():
                return
            if not wait or (timeout is not None and time.monotonic() - started >= timeout):
                raise LockHeld(
                    f"another scheduler is running ({self.holder()} holds the {self.describe()}); "
                    "only one scheduler may run at a time — stop it first, or pass --wait to "
                    "take over when it stops"
                )
            if not announced:
                log.warning("another scheduler holds the %s (%s); waiting for it",
                            self.describe(), self.holder())  # fmt: skip
                announced = True
            time.sleep(poll)

    def alive(self) -> bool:
        """Is the lock still ours? (PostgreSQL: the session holding it is still up.)"""
        if self.kind != "postgresql":
            return self.held
        if self._conn is None:
            return False
        try:
            self._conn.exec_driver_sql("SELECT 1").scalar()
            self._conn.commit()
            return True
        except Exception:
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY})")
                self._conn.commit()
            except Exception:  # the session is gone: so is its lock
                pass
            finally:
                try:
                    self._conn.close()
                except Exception:
                    pass
                self._conn = None
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        self._local = False


# ------------------------------------------------------------------ the scheduler


class QuorumScheduler:
    """The process's scheduler and its lock. ``shutdown`` stops both."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        config: Settings | None = None,
        channel: Any = None,
    ) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.config = config or settings()
        self.lock = SchedulerLock(engine)
        self._channel = channel
        self.scheduler: BackgroundScheduler | None = None
        self.runs: dict[str, int] = {"sweep": 0, "dispatch_outbox": 0}

    @property
    def holds_lock(self) -> bool:
        return self.scheduler is not None

    def channel(self) -> Any:
        if self._channel is None:
            self._channel = channel_from_config()  # QUORUM_MAIL=file|smtp
        return self._channel

    # --- jobs -----------------------------------------------------------
    def run_sweep(self) -> dict | None:
        try:
            summary = sweep(self.engine, clock=self.clock)
        except Exception:
            log.exception("sweep failed; it runs again at the next scheduled time")
            return None
        self.runs["sweep"] += 1
        log.info(
            "sweep as of %s: %d return(s) created, %d message(s) queued %s, "
            "%d delegated request(s) expired",
            summary["as_of"],
            summary["returns_created_total"],
            summary["messages_queued_total"],
            summary["messages_queued"] or "",
            len(summary["delegated_expired"]),
        )
        return summary

    def run_dispatch(self) -> None:
        try:
            channel = self.channel()
            summary = dispatch(self.engine, channel, clock=self.clock)
        except Exception:
            log.exception("dispatch failed; it runs again in %d s", self.config.dispatch_seconds)
            return
        self.runs["dispatch_outbox"] += 1
        if summary:
            line = summary.line() if hasattr(summary, "line") else str(summary)
            log.info("outbox: %s", line)

    def run_search_catch_up(self) -> None:
        """Index the audit lines appended since the last run (engine/store/search.py
        APPENDED), SEARCH_CATCH_UP_ROWS a transaction, so a command waits at most
        for one."""
        try:
            while True:
                # a write transaction (BEGIN IMMEDIATE on SQLite): queued behind a
                # command's, never refused for having read first
                with write_connection(self.engine) as conn, conn.begin():
                    added = search.catch_up(conn, limit=SEARCH_CATCH_UP_ROWS)
                if added < SEARCH_CATCH_UP_ROWS:
                    break
        except Exception:
            log.exception("search catch-up failed; it runs again in %d s",
                          SEARCH_CATCH_UP_SECONDS)

    def watch_lock(self) -> None:
        if self.lock.alive():
            return
        log.error("the scheduler lock's database session was lost; pausing until it is back")
        assert self.scheduler is not None
        for job in ("sweep", "dispatch_outbox"):
            self.scheduler.pause_job(job)
        self.lock.release()
        try:
            self.lock.acquire(wait=False)
        except (LockHeld, Exception) as exc:  # another scheduler took over, or no database
            log.error("could not take the lock back (%s); this scheduler stays paused", exc)
            return
        for job in ("sweep", "dispatch_outbox"):
            self.scheduler.resume_job(job)
        log.info("lock taken back; jobs resumed")

    # --- life -----------------------------------------------------------
    def start(self, *, wait: bool = False, poll: float = 2.0, dispatch: bool = True) -> None:
        """Take the lock (or raise LockHeld), then start the jobs; the sweep and
        the dispatcher also run once straight away, to catch up."""
        self.lock.acquire(wait=wait, poll=poll)
        cfg = self.config
        scheduler = BackgroundScheduler(timezone=cfg.timezone)
        now = dt.datetime.now(dt.UTC)
        scheduler.add_job(
            self.run_sweep,
            "cron",
            hour=cfg.sweep_hour,
            minute=cfg.sweep_minute,
            id="sweep",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=6 * 3600,
            next_run_time=now,  # catch up at start, then daily
        )
        if dispatch:
            scheduler.add_job(
                self.run_dispatch,
                "interval",
                seconds=cfg.dispatch_seconds,
                id="dispatch_outbox",
                max_instances=1,
                coalesce=True,
                next_run_time=now + dt.timedelta(seconds=1),  # after the catch-up sweep
            )
        if self.engine.dialect.name == "sqlite":
            scheduler.add_job(
                self.run_search_catch_up,
                "interval",
                seconds=SEARCH_CATCH_UP_SECONDS,
                id="search_catch_up",
                max_instances=1,
                coalesce=True,
                next_run_time=now + dt.timedelta(seconds=2),
            )
        if self.lock.kind == "postgresql":
            scheduler.add_job(
                self.watch_lock,
                "interval",
                seconds=LOCK_WATCH_SECONDS,
                id="lock_watch",
                max_instances=1,
                coalesce=True,
            )
        scheduler.start()
        self.scheduler = scheduler
        log.info(
            "scheduler running (pid %d), holding the %s: sweep daily at %s %s and at start, "
            "dispatch every %d s",
            os.getpid(),
            self.lock.describe(),
            cfg.sweep_at,
            cfg.timezone,
            cfg.dispatch_seconds,
        )

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler is not None:
            try:
                self.scheduler.shutdown(wait=wait)
            finally:
                self.scheduler = None
        self.lock.release()


def start(
    engine: Engine, interval_seconds: int | None = None, clock: Clock | None = None
) -> QuorumScheduler | None:
    """The scheduler inside another process (``quorum serve``): started if this
    process can take the lock; otherwise None (another scheduler runs the jobs,
    and this process only serves)."""
    sched = QuorumScheduler(
        engine, clock=clock, config=settings(dispatch_seconds=interval_seconds)
    )
    try:
        sched.start(wait=False)
    except LockHeld as exc:
        log.warning("not starting the scheduler here: %s", exc.message)
        return None
    return sched


def run_forever(
    engine: Engine,
    *,
    config: Settings | None = None,
    wait: bool = False,
    poll: float = 2.0,
    stop: threading.Event | None = None,
) -> None:
    """``quorum scheduler run``: hold the lock and run the jobs until SIGTERM or
    SIGINT (or ``stop`` is set); raises LockHeld if another scheduler runs."""
    stop = stop or threading.Event()
    sched = QuorumScheduler(engine, config=config)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        sched.start(wait=wait, poll=poll)
        while not stop.wait(1.0):
            pass
        log.info("scheduler stopping")
    finally:
        sched.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
