"""Load: *My work* and the round page under 20 concurrent users, on PostgreSQL
with 10,000 bids and 2,000 grants (issue 6).

Set-up (not measured): a throwaway PostgreSQL (tests/pgserver.py); a programme,
authorities and 20 users (officers, board members, sponsors) made by commands;
10,000 synthetic bids inserted in bulk into ONE round (the worst case for the
round page), the round closed and scored by ``score_round`` (real Score and
CriterionScore rows); 2,000 of the bids (with two-line milestone profiles)
approved at a Board meeting by ``decide`` (real grants, ledger commitments and
audit events); some milestones evidenced and verified so that *My work* has
evidence to verify and payments to release.

Measured: the app served by uvicorn in a subprocess (ONE worker process,
``--workers 1``; FastAPI runs the sync page handlers in its thread pool);
20 asyncio tasks, each a user signed in with its own session cookie, requesting
for a fixed duration in a closed loop (no think time):

- ``/`` (*My work*) by every user;
- ``/rounds/{ref}`` (the 10,000-bid round) by the staff users;
- baseline, same load, same run: ``/healthz`` (the app's stack and one
  ``SELECT 1``), and the bare view functions timed in-process on the same
  database (no HTTP).

Reported: p50/p95/p99 per page and requests/s; target p95 < 150 ms.

    python -m bench.bench_web --seconds 20 --out bench/results/web.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, code_version, cpu_name  # noqa: E402

ROUND = "LOAD-2011"
PAST_ROUND = "LOAD-2010"  # setup(apart=True): the bids that became grants
TARGET_P95_MS = 150.0
PASSWORD = "bench-password-2011"
OFFICERS = [f"officer{i}@bench.example" for i in range(1, 6)]
BOARD = [
    ("Cllr Chair", "chair@bench.example", ["chair", "board_member"]),
    ("Cllr Vice One", "vice1@bench.example", ["vice_chair", "board_member"]),
    ("Cllr Vice Two", "vice2@bench.example", ["vice_chair", "board_member"]),
    ("Cllr Member", "member@bench.example", ["board_member"]),
    ("Fin Finance", "finance@bench.example", ["finance"]),
]
N_ORGS = 40
SPONSORS = [f"sponsor{i}@bench.example" for i in range(1, 11)]  # orgs 0..9


def users() -> list[str]:
    return OFFICERS + [e for _, e, _ in BOARD] + SPONSORS


def staff() -> list[str]:
    return OFFICERS + [e for _, e, _ in BOARD]


# ------------------------------------------------------------------ set-up


def setup(url: str, n_bids: int, n_grants: int, seed: int, apart: bool = False) -> dict:
    """Bulk data, valid for the app (see the module's docstring). ``apart``: the
    bids that become grants are in a round of their own (PAST_ROUND), so the
    round ROUND ranks only the bids still awaiting a decision."""
    from sqlalchemy import insert, select

    from bench.bench_scoring import synthetic_bids
    from engine.commands.service import Quorum
    from engine.domain.clock import FixedClock
    from engine.store.db import create_schema, make_engine
    from engine.store.models import Bid, BidPartner, Milestone, Organisation, Round

    t_start = time.perf_counter()
    engine = make_engine(url)
    create_schema(engine)
    clock = FixedClock(dt.date(2011, 3, 1))
    q = Quorum(engine, clock)
    people = [
        ("register_person", {"name": f"Officer {i + 1}", "email": e, "roles": ["officer"]})
        for i, e in enumerate(OFFICERS)
    ]
    people += [("register_person", {"name": n, "email": e, "roles": r}) for n, e, r in BOARD]
    people += [
        (
            "register_person",
            {
                "name": f"Sponsor {i + 1}",
                "email": e,
                "roles": ["sponsor"],
                "organisation": f"Council {i:02d}",
            },
        )
        for i, e in enumerate(SPONSORS)
    ]
    q.execute_batch(
        [("create_programme", {"name": "Load", "pots": {"Projects": "1,000,000,000"}})]
        + [("register_organisation", {"name": f"Council {i:02d}"}) for i in range(N_ORGS)]
        + people,
        "system",
    )
    q.execute_batch(
        [("set_password", {"email": e, "password": PASSWORD}) for e in users()], "system"
    )
    rounds = [ROUND, PAST_ROUND] if apart else [ROUND]
    for ref in rounds:
        q.execute("open_round", {"ref": ref, "name": f"Load round {ref}", "pot": "Projects",
                                 "closes": "2011-03-31", "rules": "efficiency-bids-2011"},
                  OFFICERS[0])  # fmt: skip
    bids = synthetic_bids(n_bids, seed)
    # the grants must fit the pot (at most £1bn, the most Quorum accepts): asks are
    # ~£200,000 on average, so beyond ~4,000 grants each ask is scaled down
    shrink = max(1, -(-n_grants * 20_000_000 // 80_000_000_000))  # pence: £200k, £800m
    for b in bids:
        b["grant_requested_pence"] = max(100_00, b["grant_requested_pence"] // shrink // 100 * 100)
    rnd = random.Random(seed)
    chosen = sorted(rnd.sample(range(n_bids), n_grants))
    decided = set(chosen) if apart else set()
    with engine.begin() as conn:
        orgs = list(conn.execute(select(Organisation.id).order_by(Organisation.id)).scalars())
        round_of = {row.ref: row for row in conn.execute(select(Round.ref, Round.id, Round.pot_id))}
        r, past = round_of[ROUND], round_of.get(PAST_ROUND)
        rows = []
        for i, b in enumerate(bids):
            fields = {k: v for k, v in b.items() if k != "partner_count"}
            rows.append(
                {
                    **fields,
                    "title": f"Bid {b['ref']}",
                    "sponsor_id": orgs[i % N_ORGS],
                    "pot_id": r.pot_id,
                    "round_id": past.id if i in decided and past else r.id,
                    "state": "submitted",
                    "submitted_on": dt.date(2011, 3, 1) + dt.timedelta(days=i % 28),
                    "version": 1,
                    "partnership_as_written": b["partnership"],
                    "savings_readable": True,
                }
            )
        ids = (
            conn.execute(insert(Bid).returning(Bid.id, sort_by_parameter_order=True), rows)
            .scalars()
            .all()
        )
        partners = [
            {"bid_id": bid_id, "organisation_id": orgs[(k + 1 + j) % N_ORGS]}
            for j, (bid_id, b) in enumerate(zip(ids, bids, strict=True))
            for k in range(b["partner_count"])
        ]
        if partners:
            conn.execute(insert(BidPartner), partners)
        # a two-line milestone profile on every bid, as submitted bids carry
        conn.execute(
            insert(Milestone),
            [
                {
                    "bid_id": bid_id,
                    "seq": seq,
                    "outcome": f"Milestone {seq}",
                    "due_on": dt.date(2011, 6 + 3 * seq, 28),
                    "payment_pence": (b["grant_requested_pence"] // 2)
                    if seq == 1
                    else (b["grant_requested_pence"] - b["grant_requested_pence"] // 2),
                    "state": "planned",
                    "version": 1,
                }
                for bid_id, b in zip(ids, bids, strict=True)
                for seq in (1, 2)
            ],
        )
    t_bids = time.perf_counter()
    clock.set(dt.date(2011, 4, 1))
    scored = {"scored": 0}
    for ref in rounds:
        q.execute("close_round", {"round": ref}, OFFICERS[0])
        scored["scored"] += q.execute("score_round", {"round": ref}, OFFICERS[0])["scored"]
    t_scored = time.perf_counter()
    members = [n for n, _, r in BOARD if "board_member" in r]
    q.execute(
        "schedule_meeting",
        {
            "ref": "LOAD-BOARD",
            "title": "Board",
            "date": "2011-04-20",
            "quorum": 2,
            "members": members,
        },
        OFFICERS[0],
    )
    clock.set(dt.date(2011, 4, 20))
    q.execute("record_attendance", {"meeting": "LOAD-BOARD", "present": members}, OFFICERS[0])
    refs = [bids[i]["ref"] for i in chosen]
    grants = []
    for k in range(0, len(refs), 250):
        out = q.execute_batch(
            [
                ("decide", {"meeting": "LOAD-BOARD", "item": ref, "outcome": "approve"})
                for ref in refs[k : k + 250]
            ],
            OFFICERS[0],
        )
        grants += [o["grant"] for o in out]
    t_grants = time.perf_counter()
    # work waiting: evidence on 300 milestones, 150 of them verified by officer 1
    clock.set(dt.date(2011, 7, 1))
    evidenced = grants[:300]
    q.execute_batch(
        [("submit_evidence", {"grant": g, "milestone": 1, "summary": "done"}) for g in evidenced],
        OFFICERS[0],
    )
    q.execute_batch(
        [("verify_milestone", {"grant": g, "milestone": 1}) for g in evidenced[:150]],
        OFFICERS[0],
    )
    t_end = time.perf_counter()
    engine.dispose()
    return {
        "bids": n_bids,
        "grants": len(grants),
        "scored": scored["scored"],
        "milestones_evidenced": len(evidenced),
        "milestones_verified": 150,
        "setup_s": {
            "commands_and_bulk_bids": round(t_bids - t_start, 1),
            "close_and_score_round": round(t_scored - t_bids, 1),
            "decide_grants": round(t_grants - t_scored, 1),
            "evidence": round(t_end - t_grants, 1),
        },
    }


# ------------------------------------------------------------------ the load


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(url: str, port: int, log: Path) -> subprocess.Popen:
    """uvicorn, one worker, on the app factory without the scheduler."""
    code = (
        "import uvicorn\n"
        "from quorum_web.app import create_app\n"
        f"app = create_app({url!r}, scheduler=False)\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, workers=1, log_level='warning',"
        " access_log=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def wait_up(base: str, proc: subprocess.Popen) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base) as c:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"the app exited with {proc.returncode}")
            try:
                if (await c.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the app did not start")


async def signed_in(base: str, email: str):  # noqa: ANN201
    """An httpx client holding ``email``'s session cookie (signed in through /login)."""
    import re

    import httpx

    c = httpx.AsyncClient(base_url=base, timeout=60)
    page = await c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = await c.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
    if r.status_code != 303:
        raise SystemExit(f"{email}: sign-in answered {r.status_code}")
    return c


async def load(
    base: str,
    clients: dict,
    plan: dict[str, list[str]],
    seconds: float,
    think: tuple[float, float] | None = None,
) -> dict:
    """Every user requests its paths in turn for ``seconds``, waiting a random
    ``think`` time (seconds, uniform) after each answer, and arriving after a
    random wait of up to one think time; None: back to back, all at once."""
    pause = random.Random(7)
    times: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    stop = time.perf_counter() + seconds

    async def user(email: str) -> None:
        c, paths, k = clients[email], plan[email], 0
        if think:  # users arrive spread over one think time, not all at the same instant
            await asyncio.sleep(pause.uniform(0, think[1]))
        while time.perf_counter() < stop:
            path = paths[k % len(paths)]
            k += 1
            t0 = time.perf_counter()
            r = await c.get(path)
            took = (time.perf_counter() - t0) * 1000
            key = "/rounds/{ref}" if path.startswith("/rounds/") else path
            if r.status_code != 200:
                errors[key] = errors.get(key, 0) + 1
            times.setdefault(key, []).append(took)
            if think:
                await asyncio.sleep(pause.uniform(*think))

    t0 = time.perf_counter()
    await asyncio.gather(*(user(e) for e in plan))
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 2), "times": times, "errors": errors}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def summary(run: dict) -> dict:
    out = {}
    for key, ms in sorted(run["times"].items()):
        out[key] = {
            "requests": len(ms),
            "errors": run["errors"].get(key, 0),
            "rps": round(len(ms) / run["wall_s"], 1),
            "p50_ms": round(pct(ms, 50), 1),
            "p95_ms": round(pct(ms, 95), 1),
            "p99_ms": round(pct(ms, 99), 1),
            "mean_ms": round(statistics.fmean(ms), 1),
        }
    return out


def actor_for(conn, email: str):  # noqa: ANN001, ANN201
    from sqlalchemy import select

    from engine.commands.service import Actor
    from engine.store.models import Person, PersonRole

    p = conn.execute(
        select(Person.id, Person.name, Person.email, Person.organisation_id).where(
            Person.email == email
        )
    ).one()
    roles = frozenset(
        conn.execute(select(PersonRole.role).where(PersonRole.person_id == p.id)).scalars()
    )
    return Actor(p.name, p.email, roles, p.id, p.organisation_id)


def in_process(url: str, repeat: int) -> dict:
    """The bare view functions the pages call, on the same database, one at a
    time: no HTTP, no sign-in check, no template."""
    from sqlmodel import Session

    from engine.read import views
    from engine.read.work import my_work
    from engine.store.db import make_engine

    engine = make_engine(url)
    today = dt.datetime.now(dt.UTC).date()
    out: dict[str, dict] = {}
    with engine.connect() as conn:
        actors = {e: actor_for(conn, e) for e in (OFFICERS[1], BOARD[0][1], SPONSORS[0])}
    for email, actor in actors.items():
        ms = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            with engine.connect() as conn:
                my_work(conn, actor, today)
            ms.append((time.perf_counter() - t0) * 1000)
        out[f"my_work({email.split('@')[0]})"] = {
            "p50_ms": round(pct(ms, 50), 1),
            "p95_ms": round(pct(ms, 95), 1),
        }
    ms = []
    for _ in range(max(3, repeat // 4)):
        t0 = time.perf_counter()
        with Session(engine) as s:
            views.round_ranking(s, ROUND)
        ms.append((time.perf_counter() - t0) * 1000)
    out["round_ranking(whole round)"] = {
        "p50_ms": round(pct(ms, 50), 1),
        "p95_ms": round(pct(ms, 95), 1),
    }
    engine.dispose()
    return out


def machine() -> dict:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


async def measure(
    url: str, seconds: float, warmup: float, think: tuple[float, float] | None
) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"quorum-bench-web-{port}.log"
    proc = start_app(url, port, log)
    try:
        await wait_up(base, proc)
        everyone = users()
        clients = {}
        for e in everyone:  # sign in one after another (argon2 is deliberately slow)
            clients[e] = await signed_in(base, e)
        pages_plan = {e: (["/", f"/rounds/{ROUND}"] if e in staff() else ["/"]) for e in everyone}
        health_plan = {e: ["/healthz"] for e in everyone}
        await load(base, clients, pages_plan, warmup, think)  # warm-up: caches, connections
        base_run = await load(base, clients, health_plan, seconds, think)
        page_run = await load(base, clients, pages_plan, seconds, think)
        saturated = await load(base, clients, pages_plan, seconds / 2)
        for c in clients.values():
            await c.aclose()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {
        "baseline_http": summary(base_run),
        "pages": summary(page_run),
        "saturated": summary(saturated),
        "server_log": str(log),
    }


def run(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from pgserver import PgServer

    url = args.url
    pg = None
    try:
        if url is None:
            pg = PgServer().start()
            url = pg.create_database("bench_web")
            data = setup(url, args.bids, args.grants, args.seed)
            print(f"set up: {json.dumps(data)}", flush=True)
        else:
            data = {"bids": args.bids, "grants": args.grants, "note": "existing database"}
        think = (args.think_min, args.think_max) if args.think_max > 0 else None
        http = asyncio.run(measure(url, args.seconds, args.warmup, think))
        bare = in_process(url, args.repeat)
    finally:
        if pg is not None:
            pg.stop()
    pages = http["pages"]
    targets = {
        key: {
            "p95_ms": pages[key]["p95_ms"],
            "target_ms": TARGET_P95_MS,
            "pass": pages[key]["p95_ms"] < TARGET_P95_MS and pages[key]["errors"] == 0,
        }
        for key in ("/", "/rounds/{ref}")
        if key in pages
    }
    health = http["baseline_http"].get("/healthz", {})
    return {
        "benchmark": "web",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_version(),
        "database": "PostgreSQL (tests/pgserver.py, throwaway, fsync off)",
        "server": "uvicorn, 1 worker process (sync handlers in its thread pool), no scheduler",
        "clients": {
            "users": len(users()),
            "concurrency": len(users()),
            "mix": {
                "officers": len(OFFICERS),
                "board_and_finance": len(BOARD),
                "sponsors": len(SPONSORS),
            },
            "loop": "each user: request, wait for the answer, think, repeat; staff "
            "alternate / and the round page, sponsors ask for / (the round page is staff only)",
            "think_s": [args.think_min, args.think_max] if args.think_max > 0 else None,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
        },
        "data": data,
        "pages": pages,
        "saturated_no_think_time": {
            "note": "information, not the target: the same 20 users with no think time, "
            "i.e. the throughput ceiling of one worker on this machine",
            **http["saturated"],
        },
        "baseline": {"http /healthz, same load": health, "in_process_views": bare},
        "ratios_p95_vs_healthz": {
            k: round(v["p95_ms"] / health["p95_ms"], 1) for k, v in pages.items()
        }
        if health
        else {},
        "targets": targets,
        "all_pass": all(t["pass"] for t in targets.values()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bids", type=int, default=10_000)
    ap.add_argument("--grants", type=int, default=2_000)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured load, per phase")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--think-min", type=float, default=1.0, help="seconds a user waits, at least")
    ap.add_argument("--think-max", type=float, default=3.0, help="...at most (0: no waiting)")
    ap.add_argument("--repeat", type=int, default=20, help="in-process view timings")
    ap.add_argument("--seed", type=int, default=2011)
    ap.add_argument("--url", help="use this already loaded database (skips the set-up)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/web.json"))
    opts = ap.parse_args(argv)
    result = run(opts)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{result['clients']['concurrency']} concurrent users, {opts.seconds:.0f} s:")
    rows = dict(result["pages"])
    if result["baseline"]["http /healthz, same load"]:
        rows["/healthz (baseline)"] = result["baseline"]["http /healthz, same load"]
    for key, v in result["saturated_no_think_time"].items():
        if isinstance(v, dict):
            rows[f"{key} (no think)"] = v
    for key, v in rows.items():
        print(
            f"  {key:<26} p50 {v['p50_ms']:>7.1f} ms  p95 {v['p95_ms']:>7.1f} ms  "
            f"p99 {v['p99_ms']:>7.1f} ms  {v['rps']:>6.1f} req/s  errors {v['errors']}"
        )
    for key, v in result["baseline"]["in_process_views"].items():
        print(f"  in process {key:<28} p50 {v['p50_ms']:>7.1f} ms  p95 {v['p95_ms']:>7.1f} ms")
    for key, t in result["targets"].items():
        print(
            f"  target p95 < {TARGET_P95_MS:.0f} ms on {key}: "
            f"{'PASS' if t['pass'] else 'FAIL'} ({t['p95_ms']} ms)"
        )
    return 0 if result["all_pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
