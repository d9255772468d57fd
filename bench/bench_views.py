"""The read views and the REST API's read endpoints on a round of 10,000 bids,
before/after, in one run (issue 10: views return typed shapes).

bench/compare.py runs each checkout's own benchmark modules; this one is new,
so it drives both checkouts itself, the same way: one database built once
(bench/bench_web.py's set-up on SQLite: 10,000 scored bids in one round, 2,000
grants with milestones), then, round after round, the measuring part of THIS
script run by each checkout's own ``.venv/bin/python`` in that checkout's
directory (so it imports that checkout's engine and quorum_web), base and new
interleaved, the order swapped every other round (ABBA).

Measured in-process, each the median of ``--repeat`` calls:

- the views: ``views.bids`` (all bids), ``views.round_ranking`` (the round),
  ``money.grants``, ``views.meetings``, ``money.delegated_decisions``,
  ``returns.returns``, ``views.pots``;
- the API: ``GET /api/v1/bids``, ``/api/v1/rounds/{ref}``, ``/api/v1/grants``
  through FastAPI's TestClient with an officer's API token (the view, the
  response model's validation and the JSON).

    python bench/bench_views.py --base /work/base-views --rounds 5 \\
        --out bench/results/compare-issue10-views.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROUND = "LOAD-2011"
OFFICER = "officer1@bench.example"
TOKEN_FILE = "token.txt"


# ------------------------------------------------------------------ in a checkout


def measure(db: Path, repeat: int) -> dict[str, float]:
    """Run in a checkout's directory by its own Python: median ms per call."""
    sys.path.insert(0, os.getcwd())
    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from engine.domain.clock import FixedClock
    from engine.read import money, returns, views
    from engine.store.db import make_engine
    from quorum_web.app import create_app

    url = f"sqlite:///{db}"
    today = dt.date(2011, 7, 1)
    engine = make_engine(url)
    out: dict[str, float] = {}

    def timed(name: str, call) -> None:  # noqa: ANN001
        call()  # warm
        ms = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            call()
            ms.append((time.perf_counter() - t0) * 1000)
        out[name] = statistics.median(ms)

    def in_session(fn):  # noqa: ANN001, ANN202
        def call() -> None:
            with Session(engine) as s:
                fn(s)

        return call

    def in_conn(fn):  # noqa: ANN001, ANN202
        def call() -> None:
            with engine.connect() as conn:
                fn(conn)

        return call

    timed("views.bids", in_session(lambda s: views.bids(s)))
    timed("views.round_ranking", in_session(lambda s: views.round_ranking(s, ROUND)))
    timed("money.grants", in_conn(lambda c: money.grants(c, today)))
    timed("views.meetings", in_session(lambda s: views.meetings(s)))
    timed("money.delegated_decisions", in_conn(lambda c: money.delegated_decisions(c)))
    timed("returns.returns", in_conn(lambda c: returns.returns(c, today)))
    timed("views.pots", in_session(lambda s: views.pots(s)))
    engine.dispose()

    token = (db.parent / TOKEN_FILE).read_text().strip()
    app = create_app(url, scheduler=False, clock=FixedClock(today))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"

        def get(path: str):  # noqa: ANN202
            def call() -> None:
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])

            return call

        timed("GET /api/v1/bids", get("/api/v1/bids"))
        timed("GET /api/v1/rounds/{ref}", get(f"/api/v1/rounds/{ROUND}"))
        timed("GET /api/v1/grants", get("/api/v1/grants"))
    return out


# ------------------------------------------------------------------ the driver


def build(db: Path, bids: int, grants: int) -> dict:
    """The database both checkouts read (built by this checkout's code; the
    schema is the same on both sides)."""
    sys.path.insert(0, str(HERE.parents[1]))
    from bench.bench_web import setup
    from engine.commands.handlers.accounts import new_token, token_hash
    from engine.commands.service import Quorum
    from engine.domain.clock import FixedClock
    from engine.store.db import make_engine

    url = f"sqlite:///{db}"
    data = setup(url, bids, grants, 2011)
    engine = make_engine(url)
    secret = new_token()
    Quorum(engine, FixedClock(dt.date(2011, 7, 1))).execute(
        "create_api_token",
        {"email": OFFICER, "name": "bench", "token_sha256": token_hash(secret)},
        "system",
    )
    engine.dispose()
    (db.parent / TOKEN_FILE).write_text(secret)
    return data


def run_side(checkout: Path, db: Path, repeat: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-views-"))
    try:  # a copy per run: neither side reads pages the other left in a cache
        shutil.copy(db, work / db.name)
        shutil.copy(db.parent / TOKEN_FILE, work / TOKEN_FILE)
        done = subprocess.run(
            [str(checkout / ".venv/bin/python"), str(HERE), "--measure", str(work / db.name),
             "--repeat", str(repeat)],  # fmt: skip
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{checkout}: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True
    ).stdout.strip()


def compare(opts: argparse.Namespace) -> dict:
    base, new = opts.base.resolve(), opts.new.resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-views-db-"))
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    try:
        db = work / "views.db"
        data = build(db, opts.bids, opts.grants)
        print(f"built: {json.dumps(data)}", flush=True)
        runs: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
        loads = []
        for i in range(opts.rounds):
            order = ("base", "new") if i % 2 == 0 else ("new", "base")
            for side in order:
                loads.append(os.getloadavg()[0])
                figures = run_side(base if side == "base" else new, db, opts.repeat)
                runs[side].append(figures)
                print(f"round {i + 1} {side}: {json.dumps(figures)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = {}
    for name in runs["base"][0]:
        b = [r[name] for r in runs["base"]]
        n = [r[name] for r in runs["new"]]
        paired = [n_i / b_i - 1 for b_i, n_i in zip(b, n, strict=True)]
        table[name] = {
            "base_ms": [round(x, 2) for x in b],
            "new_ms": [round(x, 2) for x in n],
            "base_median_ms": round(statistics.median(b), 2),
            "new_median_ms": round(statistics.median(n), 2),
            "change": round(statistics.median(n) / statistics.median(b) - 1, 4),
            "paired_median": round(statistics.median(paired), 4),
            "paired_range": [round(min(paired), 4), round(max(paired), 4)],
        }
    return {
        "benchmark": "views (bench/bench_views.py)",
        "started": started.isoformat(timespec="seconds"),
        "minutes": round((time.perf_counter() - t0) / 60, 1),
        "base": {"path": str(base), "commit": git(base, "rev-parse", "HEAD"),
                 "subject": git(base, "log", "-1", "--format=%s")},  # fmt: skip
        "new": {"path": str(new), "commit": git(new, "rev-parse", "HEAD"),
                "subject": git(new, "log", "-1", "--format=%s"),
                "uncommitted": git(new, "status", "--porcelain", "-uno")},  # fmt: skip
        "rounds": opts.rounds,
        "repeat": opts.repeat,
        "data": data,
        "load_average_1min": [round(min(loads), 2), round(max(loads), 2)],
        "cpus": os.cpu_count(),
        "figures": table,
        "tolerance": opts.tolerance,
        "within_tolerance": all(f["paired_median"] <= opts.tolerance for f in table.values()),
    }


def markdown(result: dict) -> str:
    lines = [
        "# Before/after: the read views and the API's read endpoints (issue 10, build point 2)",
        "",
        f"- base: `{result['base']['commit'][:7]}` {result['base']['subject']} "
        f"({result['base']['path']})",
        f"- new: `{result['new']['commit'][:7]}` {result['new']['subject']} "
        f"({result['new']['path']})",
        f"- data: {result['data']['bids']:,} bids in one scored round, "
        f"{result['data']['grants']:,} grants (bench/bench_web.py's set-up, on SQLite)",
        f"- {result['rounds']} rounds, base/new interleaved (ABBA), each run the median of "
        f"{result['repeat']} calls in a fresh process on a fresh copy of the database",
        f"- started {result['started']}, took {result['minutes']} min; 1-minute load average "
        f"{result['load_average_1min'][0]}–{result['load_average_1min'][1]} "
        f"({result['cpus']} CPUs, shared)",
        "- *change*: new median / base median − 1; *paired*: median and range of new_i / "
        "base_i − 1 over the rounds (what counts on a loaded machine); "
        f"⚠: paired median slower by more than {result['tolerance']:.0%}",
        "",
        "| figure | base ms | new ms | change | paired median | paired range |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in result["figures"].items():
        flag = " ⚠" if f["paired_median"] > result["tolerance"] else ""
        lines.append(
            f"| {name} | {f['base_median_ms']:.1f} | {f['new_median_ms']:.1f} | "
            f"{f['change']:+.1%} | {f['paired_median']:+.1%}{flag} | "
            f"{f['paired_range'][0]:+.1%} … {f['paired_range'][1]:+.1%} |"
        )
    lines += [
        "",
        "All within tolerance." if result["within_tolerance"] else "Some figures flagged ⚠.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="the checkout before the change")
    ap.add_argument("--new", type=Path, default=HERE.parents[1], help="default: this")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=7, help="calls per figure per run")
    ap.add_argument("--bids", type=int, default=10_000)
    ap.add_argument("--grants", type=int, default=2_000)
    ap.add_argument("--tolerance", type=float, default=0.15)
    ap.add_argument("--out", type=Path, default=Path("bench/results/compare-issue10-views.json"))
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one side's run
    opts = ap.parse_args(argv)
    if opts.measure:
        print(json.dumps(measure(opts.measure, opts.repeat)))
        return 0
    if opts.base is None:
        ap.error("--base is required")
    result = compare(opts)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    opts.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
