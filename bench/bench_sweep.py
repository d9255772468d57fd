"""The deadline sweep over 100,000 open returns, on SQLite and PostgreSQL.

    python -m bench.bench_sweep [--grants 12500] [--db sqlite,postgresql]
                                [--out bench/results/sweep.json]

Setup (not measured): a programme, 50 accountable bodies each with a sponsor
contact, a Director and a Chair (through the commands), then in bulk G grants
approved in the first quarter of 2011/12 and, for each, the eight returns the shipped schedule
(rules/returns.yaml) gives it for 2011/12 — progress and savings for four
quarters — all outstanding: 100,000 open returns for G = 12,500.

The SQLite set-up is built once per size and migration head and kept in
bench/.cache/ (git-ignored; delete it to build afresh); each run sweeps a copy.
``python -m bench.profile_sweep`` shows where a catch-up's and a quiet day's time
goes, statement by statement, on the same cached database.

Measured: each sweep runs in a fresh child process (``--child``), which
reports the sweep's wall time (``time.perf_counter`` around
``engine.commands.sweep.sweep``: the whole command — transaction, materialisation
check, facts through durable_rules, the outbox INSERT ... SELECTs, the audit
event — and, in the first sweep of the process, registering the ladder with
durable_rules and compiling the statements) and its own peak RSS (VmHWM:
everything the sweeping process ever held, imports included; not ru_maxrss,
which on Linux carries the parent's peak across fork and exec), and the CPU
seconds the sweeping process used (``sweep_cpu_s``: its threads, user and
system; on a shared machine the wall time stretches with the load average,
reported before and after each sweep, the CPU time much less). The sweeps,
in order, on one database:

1. ``catch_up`` 2012-01-16: the first sweep ever — Q1 and Q2 returns are late
   past +28 days (Director and Chair escalations) and Q3 is 14 days from due
   (first reminder): 125,000 messages queued at once. For information: a
   scheduler that ran from the start never meets it.
2. ``quiet_day`` 2012-01-17: nothing new to send; every outstanding return in
   reach of the ladder is still considered (the escalations have no end).
3. ``cohort_day`` 2012-01-27: the Q3 cohort's second reminder (25,000 messages).
4. ``chase_day`` 2012-01-31: the Q3 cohort's chase (25,000 messages).

Baselines, measured in each child before its sweep, on the same database:
``count``, a bare ``SELECT count(*)`` over the open returns; ``bare_insert``, one
``INSERT ... SELECT`` of one outbox-shaped row per open return (key from the
ref, fixed texts, an empty context) into a temporary copy of the outbox,
without the ladder, recipients or context — rolled back. And, after a sweep
that queued messages, ``write_floor``: what writing those messages costs at the
least — the same rows, read back, inserted into an empty copy of the outbox
with its primary key, unique key and status index, ``ON CONFLICT DO NOTHING``,
committed (the bare insert above has no index, a tiny row and no commit).
Reported: seconds, ratios sweep / baseline, peak RSS; targets: every daily
sweep (2-4) under 2 s and every sweep's process under 300 MB peak RSS (the
catch-up is reported against 2 s too). Results: bench/results/sweep.json.

Commands during the sweep (issue 15 item 4): the sweep works in chunks of
QUORUM_SWEEP_CHUNK grants, each its own short transaction, the driver leaving the
database to others between chunks. To measure what a person sees, each child
starts a second process (``--commander``) that issues a write command
(``register_organisation``, through the bus like the web) in a loop from before
the sweep until after it, recording each command's latency; reported for the
commands issued DURING the sweep: how many, failures (``database is locked``),
the longest and the 95th percentile, and the same commands' p95 with no sweep
running (before it) for comparison. Targets at 100,000 grants: a quiet day < 1 s,
the catch-up < 10 s, no command waiting more than 250 ms.

Not loading the returns into Python: the sweep reads only the distinct
(kind, state, due date) facts (``facts`` in each result: 6 here); the peak RSS
of the same sweeps over 10x fewer returns is measured too (``--small``) and
compared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cache import upgraded_from_older  # noqa: E402
from bench.common import ROOT, code_version, cpu_name  # noqa: E402
from engine.settings import get_settings  # noqa: E402

SWEEPS = (
    ("catch_up", dt.date(2012, 1, 16)),
    ("quiet_day", dt.date(2012, 1, 17)),
    ("cohort_day", dt.date(2012, 1, 27)),
    ("chase_day", dt.date(2012, 1, 31)),
)
DAILY = ("quiet_day", "cohort_day", "chase_day")
TARGET_S = 2.0
TARGET_RSS_MB = 300.0
# issue 15 item 4, at 100,000 grants: a quiet day < 1 s, the catch-up < 10 s, and no
# command waits more than 250 ms behind a sweep
TARGET_QUIET_S = 1.0
TARGET_CATCH_UP_S = 10.0
TARGET_WAIT_S = 0.25
ORGS = 50


# ---------------------------------------------------------------- setup (not measured)


def setup(url: str, n_grants: int) -> int:
    """The programme, people and, in bulk, grants and their open returns. Returns
    the number of open returns."""
    from sqlalchemy import insert, select

    from engine.commands.service import Quorum
    from engine.commands.sweep import return_ref
    from engine.domain.clock import FixedClock
    from engine.store.db import create_schema, make_engine
    from engine.store.models import Bid, Grant, Organisation, Pot, Return
    from rules.returns import load_return_rules, periods

    engine = make_engine(url)
    create_schema(engine)
    q = Quorum(engine, FixedClock(dt.date(2010, 4, 1)))
    calls = [("create_programme", {"name": "Bench", "pots": {"Projects": "1,000,000"}})]
    calls += [
        ("register_organisation", {"name": f"Partnership {i:02d}", "kind": "other"})
        for i in range(ORGS)
    ]
    calls += [
        ("register_person", {"name": "Dee Director", "email": "director@bench.example",
                             "roles": ["director", "officer"]}),
        ("register_person", {"name": "Cal Chair", "email": "chair@bench.example",
                             "roles": ["chair"]}),
    ]  # fmt: skip
    calls += [
        ("register_person", {"name": f"Sponsor {i:02d}", "email": f"sponsor{i:02d}@bench.example",
                             "roles": ["sponsor"], "organisation": f"Partnership {i:02d}"})
        for i in range(ORGS)
    ]  # fmt: skip
    q.execute_batch(calls, "system")
    rules = load_return_rules()
    quarters = list(periods("quarter", dt.date(2011, 4, 1), dt.date(2012, 3, 31)))
    with engine.begin() as conn:
        org_ids = list(
            conn.execute(
                select(Organisation.id)
                .where(Organisation.name.startswith("Partnership "))
                .order_by(Organisation.name)
            ).scalars()
        )
        pot_id = conn.execute(select(Pot.id)).scalar()
        bids, grants, returns = [], [], []
        for i in range(n_grants):
            approved = dt.date(2011, 4, 1) + dt.timedelta(days=i % 91)  # in Q1 2011/12
            bids.append(
                {"id": i + 1, "ref": f"BB-{i:06d}", "title": f"Project {i}",
                 "sponsor_id": org_ids[i % ORGS], "pot_id": pot_id,
                 "grant_requested_pence": 1_000_000, "state": "approved",
                 "submitted_on": approved, "version": 1}
            )  # fmt: skip
            grants.append(
                {"id": i + 1, "ref": f"GB-{i:06d}", "bid_id": i + 1,
                 "accountable_body_id": org_ids[i % ORGS], "pot_id": pot_id,
                 "awarded_pence": 1_000_000, "state": "active", "approved_on": approved,
                 "version": 1}
            )  # fmt: skip
            for line in rules.default.lines:
                for ps, pe in quarters:
                    returns.append(
                        {"ref": return_ref(f"GB-{i:06d}", line.kind, pe), "grant_id": i + 1,
                         "kind": line.kind, "period_start": ps, "period_end": pe,
                         "due_on": line.due(pe, rules.calendar), "state": "due", "version": 1}
                    )  # fmt: skip
        conn.execute(insert(Bid), bids)
        conn.execute(insert(Grant), grants)
        for start in range(0, len(returns), 20_000):
            conn.execute(insert(Return), returns[start : start + 20_000])
    with engine.connect() as conn:  # statistics, as a database in use would have them
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return len(returns)


CACHE = ROOT / "bench" / ".cache"  # git-ignored: set-up databases kept for the next run


def cache_file(n_grants: int, head: str | None = None) -> Path:
    """Where the set-up SQLite database of ``n_grants`` is kept: by size and migration head
    (a schema change makes a new one: from one of an older head, upgraded, bench/cache.py)."""
    from engine.store.db import head_revision

    return CACHE / f"sweep-{n_grants}-{head or head_revision()}.db"


def cached_setup(path: Path, n_grants: int) -> int:
    """The set-up database at ``path`` (SQLite), copied from the cache when there, else
    built and kept there. Returns the number of open returns."""
    import shutil
    import sqlite3

    kept = cache_file(n_grants)
    for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        old.unlink(missing_ok=True)
    if not kept.exists() and upgraded_from_older(lambda h: cache_file(n_grants, h), path):
        shutil.copyfile(path, kept.with_suffix(".tmp"))
        kept.with_suffix(".tmp").rename(kept)
    if not kept.exists():
        built = setup(f"sqlite:///{path}", n_grants)
        CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, kept.with_suffix(".tmp"))
        kept.with_suffix(".tmp").rename(kept)
        return built
    shutil.copyfile(kept, path)
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM grant_return WHERE state IN "
                              "('due', 'queried')").fetchone()[0])


# ---------------------------------------------------------------- the child: one sweep


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM): of this program only — unlike
    ru_maxrss, which on Linux keeps the parent's peak across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def child(url: str, as_of: str) -> dict:
    from engine.domain.clock import FixedClock
    from engine.entry.scheduler import sweep
    from engine.store.db import make_engine

    day = dt.date.fromisoformat(as_of)
    engine = make_engine(url)
    rss_start = peak_rss_mb()  # after the imports
    with engine.connect() as conn:
        t0 = time.perf_counter()
        open_returns = conn.exec_driver_sql(
            "SELECT count(*) FROM grant_return WHERE state IN ('due', 'queried')"
        ).scalar()
        count_s = time.perf_counter() - t0
        conn.rollback()
    with engine.connect() as conn:
        temp = "CREATE TEMP TABLE bench_outbox AS SELECT * FROM outbox WHERE 1 = 0"
        conn.exec_driver_sql(temp)
        t0 = time.perf_counter()
        bare = conn.exec_driver_sql(
            "INSERT INTO bench_outbox (key, channel, to_addr, template, subject, context, "
            "created_at, status, attempts) SELECT 'return:' || ref || ':bare:x', 'email', "
            "'x@bench.example', 'return_chase', 'bare', '{}', due_on, 'queued', 0 "
            "FROM grant_return WHERE state IN ('due', 'queried')"
        ).rowcount
        bare_s = time.perf_counter() - t0
        conn.rollback()
    engine.dispose()
    engine = make_engine(url)
    clock = FixedClock(day)
    commands = os.environ.get("BENCH_SWEEP_COMMANDS", "1") == "1"  # 0: the sweep alone
    commander = Commander(url, as_of) if commands else None
    load = os.getloadavg()[0]
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    wall0 = time.time()
    summary = sweep(engine, day, clock)
    sweep_s = time.perf_counter() - t0
    cpu_s = _cpu_s() - cpu0
    during = commander.stop(wall0, time.time()) if commander is not None else None
    floor_s, floor_rows = (
        write_floor(engine, day) if summary["messages_queued_total"] else (None, None)
    )
    engine.dispose()
    return {
        "as_of": as_of,
        "open_returns": open_returns,
        "sweep_s": round(sweep_s, 4),
        "sweep_cpu_s": round(cpu_s, 4),
        "count_s": round(count_s, 4),
        "bare_insert_s": round(bare_s, 4),
        "bare_insert_rows": bare,
        "write_floor_s": None if floor_s is None else round(floor_s, 4),
        "write_floor_rows": floor_rows,
        "messages_queued": summary["messages_queued_total"],
        "by_rung": summary["messages_queued"],
        "returns_created": summary["returns_created_total"],
        "facts": summary["facts"],
        "rss_before_sweep_mb": round(rss_start, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "chunk_grants": get_settings().sweep_chunk,
        "loadavg": round(load, 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
        "commands_during": during,
    }


def _cpu_s() -> float:
    """CPU seconds this process has used (user + system, every thread: the sweep's
    and its WAL checkpointer's): what the sweep costs whatever else the machine
    runs, beside its wall time, which a busy machine stretches."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Commander:
    """A second process issuing commands in a loop around the sweep (``--commander``)."""

    def __init__(self, url: str, as_of: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bench-commander-"))
        self.stop_file = self.folder / "stop"
        self.out_file = self.folder / "latencies.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_sweep", "--commander", url, as_of,
             str(self.stop_file), str(self.out_file)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        ready = self.folder / "ready"
        deadline = time.monotonic() + 120
        while not ready.exists():  # it has issued its first commands: warm
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the commander process did not start")
            time.sleep(0.01)
        time.sleep(0.5)  # a few commands with no sweep running: the baseline

    def stop(self, start: float, end: float) -> dict:
        time.sleep(0.3)  # a few after it too
        self.stop_file.write_text("")
        self.proc.wait(timeout=120)
        rows = json.loads(self.out_file.read_text())
        during = [r for r in rows if start <= r[0] <= end]
        before = [r for r in rows if r[0] < start]
        waits = sorted(r[1] for r in during)
        idle = sorted(r[1] for r in before)
        return {
            "commands": len(during),
            "failed": sum(1 for r in during if not r[2]),
            "errors": sorted({r[3] for r in during if not r[2]})[:3],
            "max_ms": round(1000 * waits[-1], 1) if waits else None,
            "p95_ms": round(1000 * _pct(waits, 95), 1) if waits else None,
            "median_ms": round(1000 * _pct(waits, 50), 1) if waits else None,
            "no_sweep_p95_ms": round(1000 * _pct(idle, 95), 1) if idle else None,
            "no_sweep_commands": len(idle),
        }


def _pct(sorted_values: list[float], p: int) -> float:
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def commander(url: str, as_of: str, stop_file: str, out_file: str) -> None:
    """Issue ``register_organisation`` in a loop until ``stop_file`` exists; each
    command's (start wall time, latency in seconds, ok, error) to ``out_file``."""
    from engine.commands.service import Quorum
    from engine.domain.clock import FixedClock
    from engine.store.db import make_engine

    engine = make_engine(url)
    # the set-up's day: its audit events leave the catch-up gate as it was (a first
    # sweep after a gap, or a restore, still holds its messages)
    q = Quorum(engine, FixedClock(dt.date(2010, 4, 1)))
    rows: list[tuple[float, float, bool, str]] = []
    stop = Path(stop_file)
    ready = stop.with_name("ready")
    i = 0
    while not stop.exists():
        wall, t0 = time.time(), time.perf_counter()
        try:
            q.execute("register_organisation",
                      {"name": f"Commander {as_of} {os.getpid()} {i}", "kind": "other"}, "system")
            ok, err = True, ""
        except Exception as exc:  # noqa: BLE001  recorded: a refusal is what we measure
            ok, err = False, str(exc).splitlines()[0][:200]
        rows.append((wall, time.perf_counter() - t0, ok, err))
        i += 1
        if i == 3:
            ready.write_text("")
        time.sleep(0.01)  # a person's pace, roughly: 100 commands a second at most
    engine.dispose()
    Path(out_file).write_text(json.dumps(rows))


def write_floor(engine, day: dt.date) -> tuple[float, int]:  # noqa: ANN001
    """What writing the messages the sweep just queued costs at the least: the same
    rows (read back from the outbox) inserted into an empty copy of the outbox with
    its constraints and indexes (primary key, unique key, status), with ON CONFLICT
    DO NOTHING, in one transaction, committed — no selection, no context to build.
    Measured after the sweep, then the copy is dropped. Seconds, and rows written."""
    sqlite = engine.dialect.name == "sqlite"
    cols = "key, channel, to_addr, template, subject, context, created_at, status, attempts"
    with engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql(
                "CREATE TABLE bench_floor (id INTEGER NOT NULL PRIMARY KEY, key VARCHAR NOT NULL "
                "UNIQUE, channel VARCHAR NOT NULL, to_addr VARCHAR NOT NULL, template VARCHAR NOT "
                "NULL, subject VARCHAR NOT NULL, context JSON NOT NULL, created_at DATETIME NOT "
                "NULL, status VARCHAR NOT NULL, attempts INTEGER NOT NULL, next_attempt_at "
                "DATETIME, sent_at DATETIME, last_error VARCHAR)"
            )
            conn.exec_driver_sql("CREATE INDEX ix_bench_floor_status ON bench_floor (status)")
        else:  # the outbox's defaults, constraints and indexes
            conn.exec_driver_sql("CREATE TABLE bench_floor (LIKE outbox INCLUDING ALL)")
        conn.commit()
    where = f"created_at >= '{day.isoformat()}'"  # the sweeps run in date order
    with engine.connect() as conn:
        t0 = time.perf_counter()
        rows = conn.exec_driver_sql(
            f"INSERT INTO bench_floor ({cols}) SELECT {cols} FROM outbox WHERE {where} "
            "ON CONFLICT DO NOTHING"
        ).rowcount
        conn.commit()
        floor_s = time.perf_counter() - t0
    with engine.connect() as conn:
        conn.exec_driver_sql("DROP TABLE bench_floor")
        conn.commit()
    return floor_s, rows


def run_child(url: str, as_of: dt.date) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_sweep", "--child", url, as_of.isoformat()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"sweep child failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_db(kind: str, n_grants: int, tmp: Path, pg) -> dict:  # noqa: ANN001
    import uuid

    t0 = time.perf_counter()
    if kind == "sqlite":
        path = tmp / f"sweep-{n_grants}.db"
        url = f"sqlite:///{path}"
        n = cached_setup(path, n_grants)
    else:
        url = pg.create_database(f"bench_sweep_{uuid.uuid4().hex[:8]}")
        n = setup(url, n_grants)
    print(f"{kind}: {n} open returns set up in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = {}
    for name, day in SWEEPS:
        r = run_child(url, day)
        r["vs_count"] = round(r["sweep_s"] / r["count_s"], 1) if r["count_s"] else None
        r["vs_bare_insert"] = round(r["sweep_s"] / r["bare_insert_s"], 2)
        r["vs_write_floor"] = (
            round(r["sweep_s"] / r["write_floor_s"], 2) if r["write_floor_s"] else None
        )
        rows[name] = r
        print(
            f"  {name:<10} {day}: sweep {r['sweep_s']:.3f} s ({r['sweep_cpu_s']:.2f} s CPU, load "
            f"{r['loadavg']}), {r['messages_queued']} queued "
            f"({r['facts']} facts); count(*) {r['count_s']:.3f} s (x{r['vs_count']}), bare "
            f"INSERT..SELECT of {r['bare_insert_rows']} rows {r['bare_insert_s']:.3f} s "
            f"(x{r['vs_bare_insert']}); writing its messages alone "
            f"{r['write_floor_s'] if r['write_floor_s'] is not None else '-'} s; "
            f"peak RSS {r['peak_rss_mb']} MB",
            flush=True,
        )
        if r["commands_during"]:
            c = r["commands_during"]
            print(f"    commands during it: {c['commands']} ({c['failed']} failed), longest "
                  f"{c['max_ms']} ms, p95 {c['p95_ms']} ms (no sweep: p95 "
                  f"{c['no_sweep_p95_ms']} ms)", flush=True)
    return {"open_returns": n, "url_kind": kind, "sweeps": rows}


def machine() -> dict:
    import platform
    import sqlite3

    import sqlalchemy

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "loadavg": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--child"]:
        print(json.dumps(child(argv[1], argv[2])))
        return 0
    if argv[:1] == ["--commander"]:
        commander(*argv[1:5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grants", type=int, default=12_500, help="grants (8 open returns each)")
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--small", type=int, default=1_250, help="grants for the memory comparison")
    ap.add_argument("--out", type=Path, default=Path("bench/results/sweep.json"))
    opts = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    result: dict = {
        "benchmark": "sweep",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_version(),
        "grants": opts.grants,
        "targets": {"daily_sweep_s": TARGET_S, "peak_rss_mb": TARGET_RSS_MB,
                    "quiet_day_s": TARGET_QUIET_S, "catch_up_s": TARGET_CATCH_UP_S,
                    "command_wait_ms": TARGET_WAIT_S * 1000},
        "databases": {},
    }
    pg = None
    kinds = [k.strip() for k in opts.db.split(",") if k.strip()]
    with tempfile.TemporaryDirectory(prefix="quorum-bench-sweep-") as tmp:
        try:
            if "postgresql" in kinds:
                from pgserver import PgServer

                pg = PgServer()
                pg.start()
            for kind in kinds:
                big = run_db(kind, opts.grants, Path(tmp), pg)
                small = run_db(kind, opts.small, Path(tmp), pg)
                rss_big = max(r["peak_rss_mb"] for r in big["sweeps"].values())
                rss_small = max(r["peak_rss_mb"] for r in small["sweeps"].values())
                daily = [big["sweeps"][k]["sweep_s"] for k in DAILY]
                big["small"] = {"open_returns": small["open_returns"], "sweeps": small["sweeps"]}
                big["peak_rss_mb"] = rss_big
                big["peak_rss_mb_at_tenth"] = rss_small
                big["met"] = {
                    "daily_sweeps_under_2s": max(daily) < TARGET_S,
                    "catch_up_under_2s": big["sweeps"]["catch_up"]["sweep_s"] < TARGET_S,
                    "peak_rss_under_300mb": rss_big < TARGET_RSS_MB,
                    "quiet_day_under_1s": big["sweeps"]["quiet_day"]["sweep_s"] < TARGET_QUIET_S,
                    "catch_up_under_10s": big["sweeps"]["catch_up"]["sweep_s"]
                    < TARGET_CATCH_UP_S,
                    "no_command_waits_over_250ms": all(
                        (r["commands_during"] or {}).get("max_ms") is not None
                        and not r["commands_during"]["failed"]
                        and r["commands_during"]["max_ms"] < TARGET_WAIT_S * 1000
                        for r in big["sweeps"].values()
                    ),
                }
                result["databases"][kind] = big
        finally:
            if pg is not None:
                pg.stop()
    result["machine"]["loadavg_after"] = os.getloadavg()[0]
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nsweep over {opts.grants * 8} open returns:")
    for kind, r in result["databases"].items():
        print(
            f"  {kind}: daily sweeps "
            + ", ".join(f"{k} {r['sweeps'][k]['sweep_s']:.3f} s" for k in DAILY)
            + f"; catch-up {r['sweeps']['catch_up']['sweep_s']:.3f} s "
            f"({r['sweeps']['catch_up']['messages_queued']} messages); peak RSS "
            f"{r['peak_rss_mb']} MB ({r['peak_rss_mb_at_tenth']} MB at a tenth); met {r['met']}"
        )
    print(f"written to {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
