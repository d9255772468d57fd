"""Where a sweep's time goes, statement by statement (SQLite), on the cached bench database.

    python -m bench.profile_sweep [--grants 100000] [--top 15] [--plan]

The set-up database of bench/bench_sweep.py (cached under bench/.cache/) is copied,
the catch-up sweep (2012-01-16) run and profiled, the state after it kept in the
cache too, then a quiet day (2012-01-17) profiled on a copy of that. For each sweep:
wall time, statements, and the statements taking the most time in all (SQLAlchemy's
before/after_cursor_execute events), with EXPLAIN QUERY PLAN for the slowest
(``--plan``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event  # noqa: E402

from bench.bench_sweep import cache_file, cached_setup  # noqa: E402


def profile(path: Path, day: dt.date, top: int, plan: bool) -> dict:
    from engine.domain.clock import FixedClock
    from engine.entry.scheduler import sweep
    from engine.store.db import make_engine

    engine = make_engine(f"sqlite:///{path}")
    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    params_of: dict[str, object] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        took = time.perf_counter() - conn.info.pop("t0", time.perf_counter())
        s = stats[statement]
        s[0] += 1
        s[1] += took
        s[2] = max(s[2], took)
        params_of.setdefault(statement, parameters)

    from engine.commands.service import Quorum
    from engine.store.rawsql import RawStatement

    raw_execute, bus_execute = RawStatement.execute, Quorum.execute

    def timed_raw(self, conn, params=None):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        try:
            return raw_execute(self, conn, params)
        finally:
            sql, _, _ = self._for(conn)
            s = stats["RAW " + sql]
            s[0] += 1
            s[1] += time.perf_counter() - t
            s[2] = max(s[2], time.perf_counter() - t)

    commands: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    took_each: list[tuple[float, str, int]] = []

    def timed_bus(self, name, *args, **kw):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        try:
            return bus_execute(self, name, *args, **kw)
        finally:
            c = commands[name]
            c[0] += 1
            c[1] += time.perf_counter() - t
            c[2] = max(c[2], time.perf_counter() - t)
            took_each.append((round(time.perf_counter() - t, 3), name, len(took_each)))

    RawStatement.execute, Quorum.execute = timed_raw, timed_bus
    t0 = time.perf_counter()
    try:
        out = sweep(engine, day, FixedClock(day))
    finally:
        RawStatement.execute, Quorum.execute = raw_execute, bus_execute
    wall = time.perf_counter() - t0
    n = sum(int(s[0]) for s in stats.values())
    in_sql = sum(s[1] for s in stats.values())
    print(f"\n{day}: {wall:.2f} s wall, {n} statements ({len(stats)} distinct), "
          f"{in_sql:.2f} s in SQL; queued {out['messages_queued_total']}, created "
          f"{out['returns_created_total']}")
    for name, (count, total, worst) in commands.items():
        print(f"  command {name}: x{int(count)}, {total:.3f} s, longest {worst:.3f} s")
    print("  longest commands (s, name, position):", sorted(took_each, reverse=True)[:6])
    ranked = sorted(stats.items(), key=lambda kv: -kv[1][1])[:top]
    for stmt, (count, total, worst) in ranked:
        one = " ".join(stmt.split())
        print(f"  {total:7.3f} s  x{int(count):<5} max {worst:.3f}  {one[:150]}")
    if plan:
        with engine.connect() as conn:
            for stmt, _ in [r for r in ranked if not r[0].startswith("RAW ")][:4]:
                print("\n" + " ".join(stmt.split())[:400])
                raw = conn.connection.driver_connection
                for row in raw.execute("EXPLAIN QUERY PLAN " + stmt, params_of[stmt]):
                    print("   ", row)
    engine.dispose()
    return {"wall_s": wall, "statements": n}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grants", type=int, default=100_000)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--plan", action="store_true")
    ap.add_argument("--work", type=Path, default=Path("/tmp/quorum-profile-sweep"))
    ap.add_argument("--only", choices=["catch_up", "quiet_day", "both"], default="both")
    ap.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2012, 1, 17),
                    help="the day after the catch-up to profile (2012-01-27: a cohort's reminders)")
    opts = ap.parse_args()
    opts.work.mkdir(parents=True, exist_ok=True)
    db = opts.work / "sweep.db"
    after = cache_file(opts.grants).with_name(cache_file(opts.grants).stem + "-caught-up.db")
    if opts.only != "quiet_day" or not after.exists():
        cached_setup(db, opts.grants)
        profile(db, dt.date(2012, 1, 16), opts.top, opts.plan)
        shutil.copyfile(db, after)
    if opts.only != "catch_up":
        for old in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            old.unlink(missing_ok=True)
        shutil.copyfile(after, db)
        profile(db, opts.day, opts.top, opts.plan)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
