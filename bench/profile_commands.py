"""Where the time goes in one command: SQL statements, and a cProfile breakdown.

    python -m bench.profile_commands --n 1000 [--sync NORMAL] [--pstats bench/results/profile]

Same workload as bench_commands (submit_bid with a two-line milestone profile,
then amend_bid changing the title, as an officer), on a temporary database.
Three passes per phase on fresh databases, so the measurements do not disturb
one another:

1. plain timing (the reference ms/command);
2. SQL: every statement the driver runs is counted and timed with engine
   events (before/after_cursor_execute, commit), grouped by statement shape;
3. cProfile: cumulative time in the parts of the command path (actor lookup,
   audit head, handler pieces, ORM flush, audit append, outbox, commit ...).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_commands import OFFICER, WARMUP, amend_args, new_engine, seed, submit_args  # noqa: E402

# (label, file suffix, function name) -> cumulative time of that function
PARTS = [
    ("Quorum.execute_batch (whole command)", "engine/commands/service.py", "execute_batch"),
    ("  write_connection (pool checkout)", "engine/store/db.py", "write_connection"),
    ("  audit.lock_head (read/lock the chain head)", "engine/store/audit.py", "lock_head"),
    ("  directory reload (after reference data changed)", "engine/store/directory.py", "load"),
    ("  handler: submit_bid", "engine/commands/handlers/intake.py", "submit_bid"),
    ("  handler: amend_bid", "engine/commands/handlers/intake.py", "amend_bid"),
    ("    load_bid (SELECT bid)", "engine/commands/handlers/intake.py", "load_bid"),
    (
        "    find_organisation (cached)",
        "engine/commands/handlers/directory.py",
        "find_organisation",
    ),
    ("    find_pot (cached directory)", "engine/commands/handlers/programme.py", "find_pot"),
    ("    next_ref (max(id))", "engine/store/refs.py", "next_ref"),
    (
        "    read_milestones (Args, dates, pounds)",
        "engine/commands/handlers/intake.py",
        "read_milestones",
    ),
    (
        "    _savings_fields / parse_savings",
        "engine/commands/handlers/intake.py",
        "_savings_fields",
    ),
    ("    Workflow.check (transitions Machine)", "workflows/base.py", "check"),
    (
        "    _write_profile (INSERT milestones)",
        "engine/commands/handlers/intake.py",
        "_write_profile",
    ),
    (
        "    update_versioned (UPDATE ... WHERE version)",
        "engine/commands/uow.py",
        "update_versioned",
    ),
    (
        "  audit.append (canonical JSON, sha256, INSERT, UPDATE head)",
        "engine/store/audit.py",
        "append",
    ),
    ("    audit.canonical (json.dumps)", "engine/store/audit.py", "canonical"),
    ("  transaction exit (COMMIT)", "sqlalchemy/engine/util.py", "__exit__"),
    (
        "  Connection._execute_context (SQLAlchemy statements)",
        "sqlalchemy/engine/base.py",
        "_execute_context",
    ),
    (
        "  cursor.execute (sqlite3 C: all SQL)",
        "~",
        "<method 'execute' of 'sqlite3.Cursor' objects>",
    ),
]


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[float, int]:
    total, calls = 0.0, 0
    for (file, _line, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name and (file.endswith(suffix) or suffix == "~" and file == "~"):
            # recursive functions are counted once: cProfile's ct already excludes re-entry
            total += ct
            calls += nc
    return total, calls


def shape(sql: str) -> str:
    s = " ".join(sql.split())
    s = re.sub(r"\(\?(, \?)*\)", "(?)", s)
    s = re.sub(r"VALUES \(.*?\)(, \(.*?\))*", "VALUES (...)", s)
    m = re.match(r"(SELECT|INSERT INTO|UPDATE|DELETE FROM|BEGIN IMMEDIATE|PRAGMA)\s*(.*)", s)
    if not m:
        return s[:70]
    kind, rest = m.groups()
    if kind == "SELECT":
        frm = re.search(r"FROM (\w+)", rest)
        cols = rest.split(" FROM ")[0]
        cols = cols if len(cols) < 40 else cols[:37] + "..."
        return f"SELECT {cols} FROM {frm.group(1) if frm else '?'}"
    if kind in ("INSERT INTO", "UPDATE", "DELETE FROM"):
        return f"{kind} {rest.split()[0]}"
    return kind


def fresh(tmp: Path, name: str):  # noqa: ANN201
    from engine.commands.service import Quorum

    engine = new_engine(tmp / f"{name}.db")
    q = Quorum(engine)
    seed(q)
    for i in range(WARMUP):
        ref = q.execute("submit_bid", submit_args(-1 - i), OFFICER)["ref"]
        q.execute("amend_bid", amend_args(ref, -1 - i), OFFICER)
    return engine, q


def run_phase(q, phase: str, n: int, refs: list[str]) -> None:  # noqa: ANN001
    if phase == "submit":
        for i in range(n):
            refs.append(q.execute("submit_bid", submit_args(i), OFFICER)["ref"])
    else:
        for i, ref in enumerate(refs):
            q.execute("amend_bid", amend_args(ref, i), OFFICER)


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy import event

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--sync", default="NORMAL", type=str.upper)
    ap.add_argument(
        "--pstats",
        type=Path,
        default=None,
        help="write <prefix>-submit.pstats and <prefix>-amend.pstats",
    )
    ap.add_argument("--top", type=int, default=25, help="also print the top N functions by tottime")
    opts = ap.parse_args(argv)
    os.environ["QUORUM_SQLITE_SYNCHRONOUS"] = opts.sync
    n = opts.n

    with tempfile.TemporaryDirectory(prefix="quorum-prof-") as tmpd:
        tmp = Path(tmpd)
        # 1. plain timing
        _, q = fresh(tmp, "plain")
        refs: list[str] = []
        plain = {}
        for phase in ("submit", "amend"):
            t0 = time.perf_counter()
            run_phase(q, phase, n, refs)
            plain[phase] = (time.perf_counter() - t0) / n * 1e3

        # 2. SQL statements
        engine, q = fresh(tmp, "sql")
        sql_by_phase: dict[str, dict[str, list[float]]] = {}
        current: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        started: list[float] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ARG001
            started.append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, params, context, executemany):  # noqa: ANN001, ARG001
            dt_ = time.perf_counter() - started.pop()
            rec = current[shape(statement)]
            rec[0] += 1
            rec[1] += dt_

        # what SQLite itself runs (its trace callback): the statements sent straight to
        # the driver (engine/store/rawsql.py: the audit head and event, the idempotency
        # claim...) never pass SQLAlchemy's cursor events above
        ran = [0]

        @event.listens_for(engine, "connect")
        def _trace(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.set_trace_callback(lambda _sql: ran.__setitem__(0, ran[0] + 1))

        engine.dispose()
        # COMMIT goes through the DBAPI connection, not a cursor: time it on the pool's
        # "commit" path by wrapping the dialect's do_commit.
        dialect = engine.dialect
        orig_commit = dialect.do_commit

        def timed_commit(dbapi_conn):  # noqa: ANN001, ANN202
            t = time.perf_counter()
            orig_commit(dbapi_conn)
            rec = current["COMMIT (dbapi)"]
            rec[0] += 1
            rec[1] += time.perf_counter() - t

        dialect.do_commit = timed_commit  # type: ignore[method-assign]
        # BEGIN IMMEDIATE is run by exec_driver_sql inside the 'begin' event: it is a
        # cursor execute, so it is counted above.
        refs = []
        sql_wall = {}
        ran_by_phase = {}
        for phase in ("submit", "amend"):
            current.clear()
            ran[0] = 0
            t0 = time.perf_counter()
            run_phase(q, phase, n, refs)
            sql_wall[phase] = (time.perf_counter() - t0) / n * 1e3
            sql_by_phase[phase] = {k: list(v) for k, v in current.items()}
            ran_by_phase[phase] = ran[0]
        dialect.do_commit = orig_commit  # type: ignore[method-assign]

        # 3. cProfile
        _, q = fresh(tmp, "prof")
        refs = []
        prof_stats = {}
        prof_wall = {}
        for phase in ("submit", "amend"):
            pr = cProfile.Profile()
            t0 = time.perf_counter()
            pr.enable()
            run_phase(q, phase, n, refs)
            pr.disable()
            prof_wall[phase] = (time.perf_counter() - t0) / n * 1e3
            st = pstats.Stats(pr)
            prof_stats[phase] = st
            if opts.pstats:
                opts.pstats.parent.mkdir(parents=True, exist_ok=True)
                st.dump_stats(f"{opts.pstats}-{phase}.pstats")

    print(f"n={n} per phase, synchronous={opts.sync}\n")
    for phase in ("submit", "amend"):
        print(
            f"=== {phase}: {plain[phase]:.3f} ms/command unprofiled "
            f"({1e3 / plain[phase]:,.0f}/s); with SQL timing {sql_wall[phase]:.3f} ms; "
            f"under cProfile {prof_wall[phase]:.3f} ms"
        )
        print("\n  SQL statements per command (count, ms/command inside the sqlite3 driver):")
        rows = sorted(sql_by_phase[phase].items(), key=lambda kv: -kv[1][1])
        tot_c = tot_t = 0.0
        for k, (c, t) in rows:
            tot_c += c
            tot_t += t
            print(f"    {c / n:5.2f} x  {t / n * 1e3:7.3f} ms  {k}")
        print(
            f"    {tot_c / n:5.2f} x  {tot_t / n * 1e3:7.3f} ms  TOTAL in driver "
            f"({tot_t / n * 1e3 / sql_wall[phase]:.0%} of the command)"
        )
        print(
            f"    {ran_by_phase[phase] / n:5.2f} statements SQLite ran per command (its trace: "
            "BEGIN, COMMIT and those sent straight to the driver included)"
        )
        st = prof_stats[phase]
        total = st.total_tt  # type: ignore[attr-defined]
        print(
            f"\n  cProfile cumulative, ms/command (profiled; share of profiled total "
            f"{total / n * 1e3:.3f} ms):"
        )
        for label, suffix, name in PARTS:
            ct, calls = cumulative(st, suffix, name)
            if calls == 0:
                continue
            print(f"    {ct / n * 1e3:7.3f} ms {ct / total:5.0%}  {calls / n:6.2f} calls  {label}")
        print(f"\n  top {opts.top} functions by own time:")
        items = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[: opts.top]  # type: ignore[attr-defined]
        for (file, line, func), (_cc, nc, tt, ct, _c) in items:
            short = re.sub(r".*site-packages/", "", file)
            short = re.sub(r".*/work/main/", "", short)
            print(
                f"    {tt / n * 1e3:7.3f} ms own {ct / n * 1e3:7.3f} cum {nc / n:7.1f} calls"
                f"  {short}:{line} {func}"
            )
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
