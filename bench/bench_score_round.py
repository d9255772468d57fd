"""End to end: ``score_round`` on N synthetic bids through the whole command path.

Facts in (bids read from the database), points and reasons out (a Score and
one CriterionScore per criterion per bid, the bids moved to ``scored``, one
audit event per bid, all in one transaction), repeated R times on the same
round (each a new, audited scoring). Measured in the same run:

- the floor this dependency sets: the same facts posted straight into a bare
  durable_rules ruleset (bench.bench_scoring.Bare), same chunking;
- the same criteria as plain Python (RuleSet.score_python).

Targets (issue 3): under 2 s in all for 10,000 bids; Quorum's own overhead
(end to end minus the bare floor) at most 1.5x the floor; memory flat across
repeated rounds.

    python -m bench.bench_score_round --n 10000 --rounds 10 --out bench/results/score_round.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_scoring import RULES, Bare, machine, rss_mb, synthetic_bids  # noqa: E402

OFFICER = "officer@bench.example"


def setup(url: str, n: int, seed: int):  # noqa: ANN201
    """A programme, a closed round and ``n`` submitted bids (inserted in bulk:
    setting up is not what is measured)."""
    from sqlalchemy import insert, select

    from engine.commands.service import Quorum
    from engine.domain.clock import FixedClock
    from engine.store.db import create_schema, make_engine
    from engine.store.models import Bid, BidPartner, Organisation, Round

    engine = make_engine(url)
    create_schema(engine)
    clock = FixedClock(dt.date(2011, 3, 1))
    q = Quorum(engine, clock)
    q.execute_batch(
        [
            ("create_programme", {"name": "Bench", "pots": {"Projects": "1,000,000,000"}}),
            ("register_person", {"name": "Officer", "email": OFFICER, "roles": ["officer"]}),
        ]
        + [("register_organisation", {"name": f"Council {i}"}) for i in range(6)],
        "system",
    )
    q.execute(
        "open_round",
        {
            "ref": "BENCH",
            "name": "Bench round",
            "pot": "Projects",
            "closes": "2011-03-31",
            "rules": RULES,
        },
        OFFICER,
    )
    bids = synthetic_bids(n, seed)
    with engine.begin() as conn:
        orgs = list(conn.execute(select(Organisation.id).order_by(Organisation.id)).scalars())
        rnd = conn.execute(select(Round.id, Round.pot_id)).first()
        rows = []
        for b in bids:
            fields = {k: v for k, v in b.items() if k != "partner_count"}
            rows.append(
                {
                    **fields,
                    "title": f"Bid {b['ref']}",
                    "sponsor_id": orgs[0],
                    "pot_id": rnd.pot_id,
                    "round_id": rnd.id,
                    "state": "submitted",
                    "submitted_on": dt.date(2011, 3, 20),
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
            {"bid_id": bid_id, "organisation_id": orgs[1 + k]}
            for bid_id, b in zip(ids, bids, strict=True)
            for k in range(b["partner_count"])
        ]
        if partners:
            conn.execute(insert(BidPartner), partners)
    clock.set(dt.date(2011, 4, 1))
    q.execute("close_round", {"round": "BENCH"}, OFFICER)
    return engine, q, bids


def run(n: int, rounds: int, seed: int) -> dict:
    from engine.store.audit import verify
    from rules.scoring import bid_facts, load_rule_set

    rs = load_rule_set(RULES)
    with tempfile.TemporaryDirectory(prefix="quorum-bench-score-") as tmp:
        engine, q, bids = setup(f"sqlite:///{Path(tmp) / 'bench.db'}", n, seed)
        facts = [bid_facts(b) for b in bids]
        bare = Bare(rs)
        crit = rs.criteria_messages(facts)
        rec = [rs.recommend_message(f, rs.outcomes_python(f)) for f in facts]
        bare.run(bare.batches(crit[:500], "w"), bare.batches(rec[:500], "w"))  # warm-up
        rs.score(facts[:500])
        rows = []
        for r in range(rounds):
            t0 = time.perf_counter()
            out = q.execute("score_round", {"round": "BENCH"}, OFFICER)
            e2e = time.perf_counter() - t0
            if out["scored"] != n:
                raise SystemExit(f"round {r + 1}: scored {out['scored']} of {n}")
            t0 = time.perf_counter()
            bare.run(bare.batches(crit, f"c{r}"), bare.batches(rec, f"r{r}"))
            floor = time.perf_counter() - t0
            t0 = time.perf_counter()
            rs.score_python(facts)
            python = time.perf_counter() - t0
            rows.append(
                {
                    "round": r + 1,
                    "end_to_end_s": round(e2e, 4),
                    "bare_durable_s": round(floor, 4),
                    "python_s": round(python, 4),
                    "rss_mb": round(rss_mb(), 1),
                }
            )
            print(
                f"round {r + 1}: end to end {e2e:.3f} s, bare durable_rules {floor:.3f} s, "
                f"plain Python {python:.3f} s, RSS {rows[-1]['rss_mb']} MB",
                flush=True,
            )
        from sqlmodel import Session

        with Session(engine) as s:
            chain = verify(s)
        engine.dispose()
    med = {
        k: statistics.median(r[k] for r in rows)
        for k in ("end_to_end_s", "bare_durable_s", "python_s")
    }
    overhead = med["end_to_end_s"] - med["bare_durable_s"]
    rss = [r["rss_mb"] for r in rows]
    return {
        "benchmark": "score_round",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "n": n,
        "rounds_count": rounds,
        "seed": seed,
        "rules": RULES,
        "statistic": "median over rounds",
        "median": med,
        "us_per_bid": {k.removesuffix("_s"): round(v / n * 1e6, 1) for k, v in med.items()},
        "ratios": {
            "end_to_end_vs_bare": round(med["end_to_end_s"] / med["bare_durable_s"], 2),
            "own_overhead_vs_bare": round(overhead / med["bare_durable_s"], 2),
            "end_to_end_vs_python": round(med["end_to_end_s"] / med["python_s"], 2),
        },
        "targets": {
            "under_2s": med["end_to_end_s"] < 2.0,
            "own_overhead_at_most_1_5x_floor": overhead <= 1.5 * med["bare_durable_s"],
            "memory_flat": max(rss[2:]) - rss[1] < 15 if len(rss) > 2 else None,
        },
        "rss_mb_after_each_round": rss,
        "audit_chain_ok": chain.ok,
        "audit_events": chain.events,
        "rounds": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2011)
    ap.add_argument("--out", type=Path, default=Path("bench/results/score_round.json"))
    opts = ap.parse_args(argv)
    result = run(opts.n, opts.rounds, opts.seed)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    m, r, t = result["median"], result["ratios"], result["targets"]
    print(f"\nscore_round, {opts.n} bids, median of {opts.rounds} rounds:")
    print(
        f"  end to end {m['end_to_end_s']:.3f} s; bare durable_rules {m['bare_durable_s']:.3f} s;"
        f" plain Python {m['python_s']:.3f} s"
    )
    print(
        f"  end to end / bare {r['end_to_end_vs_bare']}x; own overhead / bare "
        f"{r['own_overhead_vs_bare']}x; end to end / plain Python {r['end_to_end_vs_python']}x"
    )
    print(f"  targets: {t}")
    print(f"  audit chain ok: {result['audit_chain_ok']} ({result['audit_events']} events)")
    print(f"written to {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
