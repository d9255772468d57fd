"""Command throughput: Quorum's full command path against bare SQLAlchemy Core.

Run from the repository root::

    python -m bench.bench_commands --n 2000 --sync NORMAL --out bench/results/commands.json
    python bench/bench_commands.py --n 2000 --sync FULL --out bench/results/commands-full.json

In one process, on databases made by the same ``make_engine`` (so the same
pragmas: WAL, the chosen ``synchronous``, foreign keys, BEGIN IMMEDIATE), in a
temporary directory:

(a) Quorum: N ``submit_bid`` (an officer, a two-line milestone profile), then N
    ``amend_bid`` changing the title, each through ``Quorum.execute`` — actor
    lookup, authorisation, workflow check, handler, audit hash chain, outbox,
    one transaction per command.
(b) baseline: on a fresh database created the same way, a bare SQLAlchemy Core
    INSERT of the same bid rows (same table, same column values, read back
    from the Quorum run), then an UPDATE of each row's title; one transaction
    per row.
(c) for information only (not a target): "same writes", the SQL statements a
    command ends up writing (bid + 2 milestones + audit event + audit head +
    outbox for a submission; bid + audit event + audit head for an amendment),
    issued as bare Core statements, one transaction per command — the floor
    for the command path if all Python work above the SQL were free.

Targets: >= 2,000 commands/s, and >= 25% of the bare rate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import code_version, cpu_name  # noqa: E402

TARGET_RATE = 2000.0  # commands per second
TARGET_RATIO = 0.25  # of the bare SQLAlchemy Core rate
WARMUP = 20

OFFICER = "officer@bench.example"
SPONSOR = "Bench County Council"
POT = "Efficiency"
SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


# ---------------------------------------------------------------- setup


def new_engine(path: Path):  # noqa: ANN201
    """An engine made exactly as Quorum makes one, on a new schema."""
    from engine.store.db import create_schema, make_engine

    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    return engine


def seed(q) -> None:  # noqa: ANN001
    """The reference data both databases need (not timed)."""
    q.execute("create_programme", {"name": "Bench Programme", "pots": {POT: "50m"}}, "system")
    q.execute("register_organisation", {"name": SPONSOR, "kind": "county"}, "system")
    q.execute(
        "register_person",
        {"name": "Olive Officer", "email": OFFICER, "roles": ["officer"]},
        "system",
    )


def submit_args(i: int) -> dict:
    return {
        "title": f"Shared back-office pilot {i}",
        "sponsor": SPONSOR,
        "grant": "100,000",
        "savings": "50,000 per annum",
        "pot": POT,
        "partnership": "no",
        "builds_on_proven": "yes",
        "milestones": [
            {"outcome": "Pilot service live", "due": "2011-09-30", "payment": "60,000"},
            {"outcome": "Evaluation published", "due": "2012-03-31", "payment": "40,000"},
        ],
    }


def amend_args(ref: str, i: int) -> dict:
    return {"ref": ref, "title": f"Shared back-office pilot {i} (revised scope)"}


def read_settings(engine) -> dict:  # noqa: ANN001
    """The settings actually in force on a connection of this engine."""
    with engine.connect() as conn:
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        fks = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
        busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        conn.rollback()
    return {
        "journal_mode": str(journal).upper(),
        "synchronous": SYNC_NAMES.get(int(sync), str(sync)),
        "foreign_keys": bool(fks),
        "busy_timeout_ms": int(busy),
        "begin": "BEGIN IMMEDIATE for writes, both sides (engine.store.db.write_connection)",
    }


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


# ---------------------------------------------------------------- (a) Quorum


def run_quorum(path: Path, n: int) -> dict:
    from sqlmodel import Session

    from engine.commands.service import Quorum
    from engine.store.audit import verify

    engine = new_engine(path)
    q = Quorum(engine)
    seed(q)

    # warm-up: statement caches, pools, imports, page cache
    for i in range(WARMUP):
        ref = q.execute("submit_bid", submit_args(-1 - i), OFFICER)["ref"]
        q.execute("amend_bid", amend_args(ref, -1 - i), OFFICER)

    refs: list[str] = []
    t0 = time.perf_counter()
    for i in range(n):
        refs.append(q.execute("submit_bid", submit_args(i), OFFICER)["ref"])
    t1 = time.perf_counter()
    for i, ref in enumerate(refs):
        q.execute("amend_bid", amend_args(ref, i), OFFICER)
    t2 = time.perf_counter()

    with Session(engine) as s:
        check = verify(s)
        if not check.ok:
            raise SystemExit(f"audit chain broken after the run: {check.message()}")
    settings = read_settings(engine)
    engine.dispose()
    return {
        "engine_settings": settings,
        "submit_s": t1 - t0,
        "amend_s": t2 - t1,
        "refs": refs,
        "audit_events": check.events,
    }


def bid_rows(path: Path, refs: list[str] | None = None) -> list[dict]:
    """The bid rows as Quorum wrote them (every column but id), in id order."""
    from sqlalchemy import select

    from engine.store.db import make_engine
    from engine.store.models import Bid

    table = Bid.__table__
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]
        conn.rollback()
    engine.dispose()
    if refs is not None:
        wanted = set(refs)
        rows = [r for r in rows if r["ref"] in wanted]
    return rows


def as_submitted(row: dict) -> dict:
    """A bid row as submit_bid first inserted it (before the title was amended)."""
    out = {k: v for k, v in row.items() if k != "id"}
    out["title"] = out["title"].replace(" (revised scope)", "")
    out["version"] = 1
    return out


# ---------------------------------------------------------------- (b) baseline


def run_baseline(path: Path, rows: list[dict], warm: list[dict]) -> dict:
    """Bare Core: INSERT each bid row, then UPDATE each row's title; one
    transaction (BEGIN IMMEDIATE ... COMMIT) per row."""
    from sqlalchemy import bindparam, insert, update

    from engine.commands.service import Quorum
    from engine.store.db import write_connection
    from engine.store.models import Bid

    engine = new_engine(path)
    seed(Quorum(engine))  # same organisation / pot / person ids for the foreign keys
    table = Bid.__table__
    ins = insert(table)
    upd = update(table).where(table.c.id == bindparam("b_id")).values(title=bindparam("b_title"))

    def one_pass(batch: list[dict]) -> tuple[float, float]:
        ids = []
        t0 = time.perf_counter()
        for row in batch:
            with write_connection(engine) as conn, conn.begin():
                ids.append(conn.execute(ins, as_submitted(row)).inserted_primary_key[0])
        t1 = time.perf_counter()
        for bid_id, row in zip(ids, batch, strict=True):
            with write_connection(engine) as conn, conn.begin():
                conn.execute(upd, {"b_id": bid_id, "b_title": row["title"]})
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    one_pass(warm)
    insert_s, update_s = one_pass(rows)
    settings = read_settings(engine)
    engine.dispose()
    return {"engine_settings": settings, "insert_s": insert_s, "update_s": update_s}


# ---------------------------------------------------------------- (c) same writes


def run_same_writes(path: Path, rows: list[dict], warm: list[dict]) -> dict:
    """For information: the rows a command writes, as bare Core, one
    transaction per command. No reads, no validation, no ORM, no hashing
    beyond one sha256 per audit event."""
    from sqlalchemy import bindparam, insert, update

    from engine.commands.service import Quorum
    from engine.store.db import write_connection
    from engine.store.models import AuditEvent, AuditHead, Bid, Milestone, Outbox

    engine = new_engine(path)
    seed(Quorum(engine))
    bid_t, ms_t = Bid.__table__, Milestone.__table__
    ev_t, head_t, out_t = AuditEvent.__table__, AuditHead.__table__, Outbox.__table__
    ins_bid, ins_ms, ins_ev, ins_out = insert(bid_t), insert(ms_t), insert(ev_t), insert(out_t)
    upd_head = (
        update(head_t)
        .where(head_t.c.id == 1)
        .values(last_seq=bindparam("h_seq"), last_hash=bindparam("h_hash"))
    )
    upd_bid = (
        update(bid_t)
        .where(bid_t.c.id == bindparam("b_id"))
        .values(title=bindparam("b_title"), version=bindparam("b_version"))
    )
    with engine.connect() as conn:
        seq = conn.execute(head_t.select()).one().last_seq
        conn.rollback()
    state = {"seq": seq}

    def event(conn, ref: str, body: str) -> None:  # noqa: ANN001
        state["seq"] += 1
        h = hashlib.sha256(f"{state['seq']}{body}".encode()).hexdigest()
        now = dt.datetime.now(dt.UTC).isoformat()
        conn.execute(
            ins_ev,
            {
                "seq": state["seq"],
                "at": now,
                "actor": OFFICER,
                "command": "x",
                "item_ref": ref,
                "before": "{}",
                "after": body,
                "reason": "",
                "prev_hash": h,
                "hash": h,
            },
        )
        conn.execute(upd_head, {"h_seq": state["seq"], "h_hash": h})

    def one_pass(batch: list[dict]) -> tuple[float, float]:
        ids = []
        t0 = time.perf_counter()
        for row in batch:
            with write_connection(engine) as conn, conn.begin():
                bid_id = conn.execute(ins_bid, as_submitted(row)).inserted_primary_key[0]
                conn.execute(
                    ins_ms,
                    [
                        {
                            "bid_id": bid_id,
                            "seq": 1,
                            "outcome": "Pilot service live",
                            "due_on": dt.date(2011, 9, 30),
                            "payment_pence": 6_000_000,
                            "state": "planned",
                            "version": 1,
                        },
                        {
                            "bid_id": bid_id,
                            "seq": 2,
                            "outcome": "Evaluation published",
                            "due_on": dt.date(2012, 3, 31),
                            "payment_pence": 4_000_000,
                            "state": "planned",
                            "version": 1,
                        },
                    ],
                )
                event(conn, row["ref"], json.dumps({"title": row["title"]}))
                conn.execute(
                    ins_out,
                    {
                        "key": f"bid_received:{row['ref']}",
                        "channel": "email",
                        "to_addr": OFFICER,
                        "template": "bid_received",
                        "subject": row["title"],
                        "context": {"ref": row["ref"]},
                        "created_at": dt.datetime.now(dt.UTC),
                        "status": "queued",
                        "attempts": 0,
                    },
                )
            ids.append(bid_id)
        t1 = time.perf_counter()
        for bid_id, row in zip(ids, batch, strict=True):
            with write_connection(engine) as conn, conn.begin():
                conn.execute(upd_bid, {"b_id": bid_id, "b_title": row["title"], "b_version": 2})
                event(conn, row["ref"], json.dumps({"title": row["title"]}))
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    one_pass(warm)
    submit_s, amend_s = one_pass(rows)
    engine.dispose()
    return {"submit_s": submit_s, "amend_s": amend_s}


# ---------------------------------------------------------------- report


def machine() -> dict:
    import sqlite3

    import sqlalchemy

    cpu = cpu_name()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
    }


def run_once(workdir: Path, n: int, same_writes: bool) -> dict:
    qpath = workdir / "quorum.db"
    quorum = run_quorum(qpath, n)
    all_rows = bid_rows(qpath)
    timed = set(quorum["refs"])
    rows = [r for r in all_rows if r["ref"] in timed]
    warm = [r for r in all_rows if r["ref"] not in timed]
    if len(rows) != n:
        raise SystemExit(f"expected {n} timed bids in the Quorum database, found {len(rows)}")
    base_path = workdir / "baseline.db"
    baseline = run_baseline(base_path, rows, warm)

    # the baseline wrote the same bid rows (all columns but the version Quorum bumps)
    qrows = [{k: v for k, v in r.items() if k != "version"} for r in all_rows]
    brows = [{k: v for k, v in r.items() if k != "version"} for r in bid_rows(base_path)]
    if qrows != brows:
        raise SystemExit(
            "baseline bid rows differ from Quorum's: the comparison is not like for like"
        )

    out = {
        "settings_quorum": quorum["engine_settings"],
        "settings_baseline": baseline["engine_settings"],
        "quorum": {
            "submit_per_s": rate(n, quorum["submit_s"]),
            "amend_per_s": rate(n, quorum["amend_s"]),
            "combined_per_s": rate(2 * n, quorum["submit_s"] + quorum["amend_s"]),
            "submit_s": quorum["submit_s"],
            "amend_s": quorum["amend_s"],
            "audit_events_verified": quorum["audit_events"],
        },
        "baseline": {
            "insert_per_s": rate(n, baseline["insert_s"]),
            "update_per_s": rate(n, baseline["update_s"]),
            "combined_per_s": rate(2 * n, baseline["insert_s"] + baseline["update_s"]),
            "insert_s": baseline["insert_s"],
            "update_s": baseline["update_s"],
        },
    }
    if same_writes:
        sw = run_same_writes(workdir / "same_writes.db", rows, warm)
        out["same_writes"] = {
            "submit_per_s": rate(n, sw["submit_s"]),
            "amend_per_s": rate(n, sw["amend_s"]),
            "combined_per_s": rate(2 * n, sw["submit_s"] + sw["amend_s"]),
            "submit_s": sw["submit_s"],
            "amend_s": sw["amend_s"],
        }
    for p in workdir.iterdir():
        p.unlink()
    return out


def median_of(runs: list[dict], section: str, key: str) -> float:
    return statistics.median(r[section][key] for r in runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="bids per phase (default 2000)")
    ap.add_argument(
        "--sync",
        default="NORMAL",
        choices=["NORMAL", "FULL", "EXTRA"],
        type=str.upper,
        help="SQLite synchronous level (QUORUM_SQLITE_SYNCHRONOUS)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="independent runs on fresh databases; rates are the median (default 3)",
    )
    ap.add_argument("--out", type=Path, default=Path("bench/results/commands.json"))
    ap.add_argument("--tmp", type=Path, default=None, help="where the temporary databases go")
    ap.add_argument(
        "--no-same-writes", action="store_true", help="skip the informational 'same writes' run"
    )
    opts = ap.parse_args(argv)
    if opts.n < 1 or opts.repeat < 1:
        ap.error("--n and --repeat must be at least 1")

    # make_engine reads this: both databases get the same pragmas from the same code
    os.environ["QUORUM_SQLITE_SYNCHRONOUS"] = opts.sync

    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="quorum-bench-", dir=opts.tmp) as tmp:
        for i in range(opts.repeat):
            print(
                f"run {i + 1}/{opts.repeat}: n={opts.n} synchronous={opts.sync} in {tmp} ...",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run_once(Path(tmp), opts.n, not opts.no_same_writes))

    settings = runs[0]["settings_quorum"]
    for r in runs:
        if r["settings_quorum"] != settings or r["settings_baseline"] != settings:
            raise SystemExit(f"settings differ between databases: {r}")
    if settings["synchronous"] != opts.sync:
        raise SystemExit(f"asked for synchronous={opts.sync}, got {settings['synchronous']}")

    q = {k: median_of(runs, "quorum", k) for k in ("submit_per_s", "amend_per_s", "combined_per_s")}
    b = {
        k: median_of(runs, "baseline", k)
        for k in ("insert_per_s", "update_per_s", "combined_per_s")
    }
    ratios = {
        "submit_vs_insert": q["submit_per_s"] / b["insert_per_s"],
        "amend_vs_update": q["amend_per_s"] / b["update_per_s"],
        "combined": q["combined_per_s"] / b["combined_per_s"],
    }
    targets = {
        "rate_target_per_s": TARGET_RATE,
        "ratio_target": TARGET_RATIO,
        "combined_rate_met": q["combined_per_s"] >= TARGET_RATE,
        "submit_rate_met": q["submit_per_s"] >= TARGET_RATE,
        "amend_rate_met": q["amend_per_s"] >= TARGET_RATE,
        "combined_ratio_met": ratios["combined"] >= TARGET_RATIO,
        "submit_ratio_met": ratios["submit_vs_insert"] >= TARGET_RATIO,
        "amend_ratio_met": ratios["amend_vs_update"] >= TARGET_RATIO,
    }
    targets["all_met"] = all(v for k, v in targets.items() if k.endswith("_met"))
    same = None
    if "same_writes" in runs[0]:
        same = {
            k: median_of(runs, "same_writes", k)
            for k in ("submit_per_s", "amend_per_s", "combined_per_s")
        }

    result = {
        "benchmark": "commands",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine(),
            "load_average_1m_before": round(load_before[0], 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "code": code_version(),
        "settings": {
            **settings,
            "requested_synchronous": opts.sync,
            "tmp_dir": opts.tmp and str(opts.tmp) or tempfile.gettempdir(),
        },
        "n": opts.n,
        "warmup_commands": 2 * WARMUP,
        "repeat": opts.repeat,
        "statistic": "median over repeats",
        "quorum": q,
        "baseline": b,
        "ratios": ratios,
        "targets": targets,
        "same_writes_informational": same,
        "runs": [{k: v for k, v in r.items() if not k.startswith("settings")} for r in runs],
    }

    rows = [
        (
            "submit_bid / INSERT",
            q["submit_per_s"],
            b["insert_per_s"],
            ratios["submit_vs_insert"],
            same and same["submit_per_s"],
        ),
        (
            "amend_bid / UPDATE",
            q["amend_per_s"],
            b["update_per_s"],
            ratios["amend_vs_update"],
            same and same["amend_per_s"],
        ),
        (
            "combined",
            q["combined_per_s"],
            b["combined_per_s"],
            ratios["combined"],
            same and same["combined_per_s"],
        ),
    ]
    print(f"\nQuorum command throughput: n={opts.n} per phase, median of {opts.repeat} run(s)")
    print(
        f"SQLite {result['machine']['sqlite']}, journal_mode={settings['journal_mode']}, "
        f"synchronous={settings['synchronous']}, Python {result['machine']['python']}, "
        f"{result['machine']['nproc']} CPU(s)\n"
    )
    print(
        f"{'phase':<22}{'Quorum cmd/s':>14}{'bare rows/s':>14}{'Quorum/bare':>13}"
        f"{'same-writes/s':>15}"
    )
    for name, qr, br, ratio, sw in rows:
        sw_s = f"{sw:>15,.0f}" if sw is not None else f"{'-':>15}"
        print(f"{name:<22}{qr:>14,.0f}{br:>14,.0f}{ratio:>12.1%}{sw_s}")
    ok = "MET" if targets["combined_rate_met"] else "NOT MET"
    print(
        f"\ntarget >= {TARGET_RATE:,.0f} commands/s (combined): {ok}"
        f"  [submit {'met' if targets['submit_rate_met'] else 'not met'},"
        f" amend {'met' if targets['amend_rate_met'] else 'not met'}]"
    )
    ok = "MET" if targets["combined_ratio_met"] else "NOT MET"
    print(
        f"target >= {TARGET_RATIO:.0%} of bare rate (combined): {ok}"
        f"  [submit {'met' if targets['submit_ratio_met'] else 'not met'},"
        f" amend {'met' if targets['amend_ratio_met'] else 'not met'}]"
    )

    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
