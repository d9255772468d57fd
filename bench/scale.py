"""The scaling curve (issue 15 item 5): every list page and the round page at
several sizes (default 1,000, 10,000 and 100,000: at size n, a round of n bids
scored and awaiting a decision, and n grants decided from the n bids of another
round: the issue's "100k bids and 100k grants"), cold and warm, with writes
going on, and the web worker's memory.

For each size, in the same run:

- set-up (not measured): bench.bench_web.setup on a fresh SQLite file (two
  rounds, scored; one round's bids decided at a Board, the grants; evidence
  waiting).
  The built file is kept in ``bench/.cache/`` (git-ignored), keyed by the
  size, the seed, the migration head and a hash of the set-up code, and
  copied on the next run instead of built again (the 100,000 set-up takes
  many minutes); ``--no-cache`` builds afresh, ``--cache-dir`` moves it;
- the app served by uvicorn (one worker, bench.bench_web.start_app);
- **cold**: the first request of each page after the worker starts;
- **warm**: ``--requests`` requests of each page in turn, one user;
- **with writes**: the same again while a writer overrides a score of a bid
  in the round once a second (each write moves the round's ranking), every
  request of the round page following a write;
- **users** (the issue's target load): ``--users`` people (default 20) signed
  in at once, each going through every page ``--user-rounds`` times in an
  order of their own, reading each page for a random 0.5-1.5 s before the next
  (people, not a load generator), while the writer writes once a second;
- the worker's resident memory (VmRSS) after each phase;
- the baseline of the same run: ``/healthz`` (the app's stack and one
  ``SELECT 1``), so the ratios survive a busy machine.

Written to ``bench/results/scale.json``; the targets (issue 15): every page
p95 < 150 ms and worker RSS < 300 MB at 100,000.

    python -m bench.scale --sizes 1000,10000,100000 --out bench/results/scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import inspect
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_scoring import synthetic_bids  # noqa: E402
from bench.bench_web import (  # noqa: E402
    OFFICERS,
    ROUND,
    TARGET_P95_MS,
    free_port,
    machine,
    pct,
    setup,
    signed_in,
    start_app,
    summary,
    wait_up,
)
from bench.cache import checkpoint, upgraded_from_older  # noqa: E402
from bench.common import ROOT, code_version  # noqa: E402
from engine.store.db import MIGRATIONS  # noqa: E402

CACHE = ROOT / "bench" / ".cache"

TARGET_RSS_MB = 300.0
PAGES = ["/healthz", "/", "/bids", "/grants", "/returns", "/delegated", "/meetings",
         f"/rounds/{ROUND}", "/dashboard"]
# with --meeting-pages: the Board that decided every grant (its agenda holds every
# scored bid, 100,000 items at the largest size) and its first item's page
MEETING_PAGES = ["/meetings/LOAD-BOARD", "/meetings/LOAD-BOARD/items/1"]


def search_pages(n: int) -> list[str]:
    """A list's search box at ``n`` bids (engine/store/search.py): a bid-reference
    prefix that about 1% of the bids (refs ``S-000001``...) and their audit lines
    have, and a sponsor's name (one council of 40: ~2.5% of the grants)."""
    free = len(str(max(1, n // 100))) - 1  # the digits the 1% leaves free
    prefix = "S-" + f"{12 * 10**free:06d}"[: 6 - free]
    return [f"/bids?q={prefix}", "/grants?q=Council+07", f"/audit?q={prefix}"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Writer(threading.Thread):
    """Overrides a criterion's points of a random scored bid of the round, once a
    second, through the command path (another process's write, as the app sees it)."""

    def __init__(self, url: str, seed: int) -> None:
        super().__init__(daemon=True)
        from sqlalchemy import select

        from engine.commands.service import Quorum
        from engine.domain.clock import FixedClock
        from engine.store.db import make_engine
        from engine.store.models import Bid

        self.engine = make_engine(url)
        self.q = Quorum(self.engine, FixedClock(dt.date(2011, 4, 20)))
        with self.engine.connect() as conn:
            self.refs = list(conn.execute(
                select(Bid.ref).where(Bid.state == "scored").limit(5000)).scalars())
        self.rnd = random.Random(seed)
        self.stop = threading.Event()
        self.writes = 0
        self.errors = 0
        self.last = 0.0  # perf_counter of the last write

    def run(self) -> None:
        while not self.stop.wait(1.0):
            ref = self.rnd.choice(self.refs)
            try:
                self.q.execute("override_score", {
                    "ref": ref, "criterion": "partnership", "points": self.rnd.choice([0, 1]),
                    "reason": "scale benchmark"}, OFFICERS[1])
                self.writes += 1
                self.last = time.perf_counter()
            except Exception:  # noqa: BLE001 (a refused write is counted, the load goes on)
                self.errors += 1


async def measure(
    base: str, pid: int, requests: int, writer: Writer | None, pages: list[str]
) -> dict:
    client = await signed_in(base, OFFICERS[0])
    out: dict[str, dict] = {}
    try:
        for path in pages:
            ms, errors = [], 0
            for _ in range(requests):
                if writer is not None and path.startswith("/rounds/"):
                    seen = writer.last
                    while writer.last == seen and writer.is_alive():  # the next write first
                        await asyncio.sleep(0.05)
                t0 = time.perf_counter()
                r = await client.get(path)
                took = (time.perf_counter() - t0) * 1000
                errors += r.status_code != 200
                ms.append(took)
            out[path] = {"requests": len(ms), "errors": errors,
                         "p50_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1),
                         "max_ms": round(max(ms), 1), "bytes": len(r.content)}
        out["rss_mb"] = {"worker": rss_mb(pid)}
    finally:
        await client.aclose()
    return out


THINK_S = (0.5, 1.5)  # how long a person reads a page before the next (uniform)


async def users_load(
    base: str, pid: int, users: int, rounds: int, pages: list[str], seed: int = 2011
) -> dict:
    """``users`` people at once, each through every page ``rounds`` times in an
    order of their own, reading each page for a random THINK_S before the next
    (arriving spread over one reading time); per page p50/p95/p99."""
    order = random.Random(seed)
    clients: list = []
    times: dict[str, list[float]] = {}
    errors: dict[str, int] = {}

    async def person(c: object, paths: list[str], wait: list[float]) -> None:
        await asyncio.sleep(wait[0])
        for path, pause in zip(paths, wait[1:], strict=True):
            t0 = time.perf_counter()
            r = await c.get(path)  # type: ignore[attr-defined]
            key = "/rounds/{ref}" if path.startswith("/rounds/") else path
            times.setdefault(key, []).append((time.perf_counter() - t0) * 1000)
            errors[key] = errors.get(key, 0) + (r.status_code != 200)
            await asyncio.sleep(pause)

    try:
        plans = []
        for i in range(users):
            clients.append(await signed_in(base, OFFICERS[i % len(OFFICERS)]))
            paths = [p for _ in range(rounds) for p in order.sample(pages, len(pages))]
            wait = [order.uniform(0, THINK_S[1])] + [order.uniform(*THINK_S) for _ in paths]
            plans.append((paths, wait))
        t0 = time.perf_counter()
        await asyncio.gather(*(person(c, *plan) for c, plan in zip(clients, plans, strict=True)))
        wall = time.perf_counter() - t0
    finally:
        for c in clients:
            await c.aclose()
    out: dict = summary({"times": times, "errors": errors, "wall_s": wall})
    out["users"] = {"count": users, "rounds": rounds, "think_s": list(THINK_S),
                    "wall_s": round(wall, 1)}
    out["rss_mb"] = {"worker": rss_mb(pid)}
    return out


async def cold(base: str, pages: list[str]) -> dict:
    client = await signed_in(base, OFFICERS[0])
    out = {}
    try:
        for path in pages:
            t0 = time.perf_counter()
            r = await client.get(path)
            out[path] = {"ms": round((time.perf_counter() - t0) * 1000, 1),
                         "status": r.status_code}
    finally:
        await client.aclose()
    return out


def migration_head() -> str:
    from alembic.script import ScriptDirectory

    return "+".join(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def cache_key(n: int, seed: int, head: str | None = None) -> str:
    """What the built database depends on: size, seed, schema (``head``: the
    current migration head unless given), set-up code."""
    code = inspect.getsource(setup) + inspect.getsource(synthetic_bids)
    digest = hashlib.sha256(code.encode()).hexdigest()[:12]
    return f"scale-{n}-seed{seed}-g{n}-head{head or migration_head()}-{digest}"


def built_db(n: int, seed: int, work: Path, cache: Path | None) -> tuple[Path, dict, str]:
    """The set-up's database for ``n`` bids at ``work``: a copy of the cached
    file when there is one for this key; else a copy of one cached at an older
    migration head, upgraded (bench/cache.py) and cached under this key; else
    built (and cached). Returns the path, what was built, and where it came
    from ("cache", "upgraded from <head>" or "built")."""
    db = work / f"scale-{n}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if cache is None:
        return db, setup(f"sqlite:///{db}", 2 * n, n, seed, apart=True), "built"
    key = cache_key(n, seed)
    kept, meta = cache / f"{key}.db", cache / f"{key}.json"
    if kept.exists() and meta.exists():
        shutil.copyfile(kept, db)
        return db, json.loads(meta.read_text()), "cache"

    def older(head: str) -> Path:
        at = cache / f"{cache_key(n, seed, head)}.db"
        return at if at.with_suffix(".json").exists() else cache / "-"

    came = upgraded_from_older(older, db)
    if came is not None:
        built = json.loads((cache / f"{cache_key(n, seed, came)}.json").read_text())
        how = f"upgraded from {came}"
    else:
        # n bids awaiting a decision (the round page ranks them) and n grants
        built = setup(f"sqlite:///{db}", 2 * n, n, seed, apart=True)
        checkpoint(db)  # everything in the main file before copying it
        how = "built"
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"scale-{n}-seed{seed}-*"):  # an older key of this size
        old.unlink()
    tmp = cache / f"{key}.db.part"
    shutil.copyfile(db, tmp)
    tmp.replace(kept)
    meta.write_text(json.dumps(built, indent=2) + "\n")
    return db, built, how


def one_size(
    n: int, requests: int, seed: int, work: Path, users: int = 20, rounds: int = 3,
    cache: Path | None = CACHE,
) -> dict:
    t0 = time.perf_counter()
    db, built, came = built_db(n, seed, work, cache)
    pages = PAGES + search_pages(n)
    url = f"sqlite:///{db}"
    setup_s = round(time.perf_counter() - t0, 1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_app(url, port, work / f"app-{n}.log")
    try:
        asyncio.run(wait_up(base, proc))
        result: dict = {"bids": built["bids"], "grants": built["grants"], "setup_s": setup_s,
                        "setup_from": came, "search_pages": search_pages(n),
                        "rss_mb_started": rss_mb(proc.pid)}
        result["cold"] = asyncio.run(cold(base, pages))
        result["warm"] = asyncio.run(measure(base, proc.pid, requests, None, pages))
        writer = Writer(url, seed)
        writer.start()
        try:
            result["with_writes"] = asyncio.run(measure(base, proc.pid, requests, writer, pages))
            before = writer.writes
            if users:
                result["users"] = asyncio.run(
                    users_load(base, proc.pid, users, rounds, pages, seed))
                result["users"]["writes"] = {"done": writer.writes - before}
        finally:
            writer.stop.set()
            writer.join(10)
        result["with_writes"]["writes"] = {"done": writer.writes, "refused": writer.errors}
        pages = {k: v for k, v in result["with_writes"].items() if k.startswith("/")}
        base_p50 = pages["/healthz"]["p50_ms"] or 1.0
        result["vs_healthz_p50"] = {k: round(v["p50_ms"] / base_p50, 1)
                                    for k, v in pages.items() if k != "/healthz"}
        # the targets are judged under the load: the users phase (else the
        # one-user phase with writes)
        judged = result["users"] if users else result["with_writes"]
        judged_pages = {k: v for k, v in judged.items() if k.startswith("/")}
        worst = max((v["p95_ms"], k) for k, v in judged_pages.items())
        rss = max(result["with_writes"]["rss_mb"]["worker"], judged["rss_mb"]["worker"])
        result["targets"] = {
            "judged_on": f"{users} users with writes" if users else "one user with writes",
            "worst_page_p95_ms": {"page": worst[1], "p95_ms": worst[0],
                                  "target": TARGET_P95_MS, "met": worst[0] < TARGET_P95_MS},
            "worker_rss_mb": {"value": rss, "target": TARGET_RSS_MB, "met": rss < TARGET_RSS_MB},
        }
        return result
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="bids per run, comma separated")
    ap.add_argument("--requests", type=int, default=20, help="requests per page per phase")
    ap.add_argument("--users", type=int, default=20,
                    help="people signed in at once in the users phase (0: skip it)")
    ap.add_argument("--user-rounds", type=int, default=3,
                    help="times each user goes through every page in the users phase")
    ap.add_argument("--seed", type=int, default=2011)
    ap.add_argument("--cache-dir", type=Path, default=CACHE,
                    help="where built databases are kept and reused, keyed by size, seed, "
                    "migration head and the set-up code's hash (default bench/.cache/)")
    ap.add_argument("--no-cache", action="store_true",
                    help="build every size afresh (and keep nothing)")
    ap.add_argument("--meeting-pages", action="store_true",
                    help="also the Board meeting that decided every grant and its first "
                    "item (an agenda of every scored bid: 100,000 items at 100,000 bids)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/scale.json"))
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.meeting_pages:
        PAGES.extend(MEETING_PAGES)
    out: dict = {"benchmark": "scale", "code": code_version(), "machine": machine(),
                 "load_average_before": os.getloadavg(), "sizes": []}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="quorum-scale-") as tmp:
        for n in sizes:
            print(f"{n} bids: setting up ...", flush=True)
            r = one_size(n, args.requests, args.seed, Path(tmp), args.users, args.user_rounds,
                         None if args.no_cache else args.cache_dir)
            out["sizes"].append(r)
            t = r["targets"]
            print(f"  set-up {r['setup_s']} s"
                  f" ({r['setup_from']}); "
                  f"judged on {t['judged_on']}: worst p95 "
                  f"{t['worst_page_p95_ms']['p95_ms']} ms "
                  f"({t['worst_page_p95_ms']['page']}); worker RSS "
                  f"{t['worker_rss_mb']['value']} MB", flush=True)
            for page, v in r["with_writes"].items():
                if page.startswith("/"):
                    crowd = r.get("users", {}).get(page.replace(ROUND, "{ref}"), {})
                    print(f"    {page:<26} p50 {v['p50_ms']:>8} ms  p95 {v['p95_ms']:>8} ms  "
                          f"(warm p95 {r['warm'][page]['p95_ms']} ms, cold "
                          f"{r['cold'][page]['ms']} ms; {args.users} users p95 "
                          f"{crowd.get('p95_ms', '-')} ms)", flush=True)
    out["load_average_after"] = os.getloadavg()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
