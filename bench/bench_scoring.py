"""Scoring throughput: RuleSet.score (durable_rules) against a bare ruleset and plain Python.

Run from the repository root::

    python -m bench.bench_scoring --n 10000 --out bench/results/scoring.json

In one process, on N synthetic bids (:func:`synthetic_bids`, turned into facts
once with ``rules.scoring.bid_facts``), for each of R rounds (default 10):

(1) score: ``RuleSet.score(facts)`` -- the product path: facts checked,
    criteria asserted as facts into durable_rules in chunks of
    ``rules.durable_adapter.CHUNK`` per fresh session, recommendations posted
    as events the same way, results and reasons built in Python;
(2) bare: the floor -- the *same* messages (built before the clock starts)
    sent straight into a bare durable_rules ruleset made by hand on a stock
    ``durable.engine.Host`` with the same compiled conditions and a trivial
    action (a counter), same chunking, same ``delete_state`` per chunk;
(3) python: ``RuleSet.score_python(facts)`` -- the same compiled conditions
    evaluated in plain Python, with the same results and reasons.

Reported: seconds, microseconds per bid and ratios score/bare and
score/python (medians over the rounds), RSS after every round (it must not
grow), and for information how much making the facts costs and whether
recommendations are cheaper as events or as facts.

``synthetic_bids(n, seed)`` gives bid-row mappings (the keys bid_facts reads),
for reuse by other benchmarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import code_version, cpu_name  # noqa: E402

RULES = "efficiency-bids-2011"
RSS_GROWTH_LIMIT_MB = 15.0  # after round 2, RSS may not grow by more than this

# ---------------------------------------------------------------- synthetic bids

_SAVINGS_FORMS = (
    "{amt} {years} years",
    "{amt} over {years} years",
    "{amt} per annum",
    "{amt} a year",
    "{amt}",
    "{amt} anticipated",
    "{lo}/ {hi} annual saving",
    "{lo}/ {hi} anticipated",
    "{lo} - {hi} per annum",
    "{m}m per annum",
    "£{m}m over {years} years",
    "none specified",
    "None Specified",
    "tbc",
    "",
    "up to {amt}",  # a bound: kept as written, unreadable
    "lots",  # unreadable
    "{half} per annum",  # breakeven exactly 2 years: the boundary
    "{zero} per annum",  # stated, but nothing a year
)


def _pounds(p: int) -> str:
    return f"{p:,}"


def synthetic_bids(n: int, seed: int = 2011) -> list[dict]:
    """``n`` bid rows as the engine stores them (the keys ``bid_facts`` reads).

    Grants of £1,000 to £400,000; savings written in the ways bid authors
    write them (totals, per annum, over N years, ranges, "none specified",
    bounds and nonsense), including breakeven exactly at two years; partnership
    and track record yes/no/not stated; partner counts 0 to 4."""
    from engine.domain.savings import parse_savings

    rnd = random.Random(seed)
    bids = []
    for i in range(n):
        grant_pounds = rnd.randrange(10, 4001) * 100
        years = rnd.randint(1, 10)
        amt = rnd.randrange(1, 3001) * 500
        lo = rnd.randrange(1, 200) * 1000
        form = rnd.choice(_SAVINGS_FORMS)
        text = form.format(
            amt=_pounds(amt),
            years=years,
            lo=_pounds(lo),
            hi=_pounds(lo + rnd.randrange(0, 200) * 1000),
            m=rnd.randint(1, 12),
            half=_pounds(grant_pounds // 2),
            zero="0",
        )
        parsed = parse_savings(text)
        partnership = rnd.choice(("yes", "yes", "no", "not_stated"))
        bids.append(
            {
                "ref": f"S-{i + 1:06d}",
                "grant_requested_pence": grant_pounds * 100,
                "savings_text": parsed.text,
                "savings_basis": parsed.basis.value,
                "savings_amount_pence": parsed.amount_pence,
                "savings_high_pence": parsed.high_pence,
                "savings_years": parsed.years,
                "savings_annual": parsed.annual,
                "partnership": partnership,
                "partner_count": rnd.choice((0, 0, 0, 1, 2, 4)),
                "builds_on_proven": rnd.choice(("yes", "yes", "no", "not_stated")),
                "invest_to_save": rnd.random() < 0.2,
            }
        )
    return bids


# ---------------------------------------------------------------- measurements


def rss_mb() -> float:
    """Resident set size of this process, from /proc/self/statm."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class Bare:
    """A bare durable_rules ruleset: the rule set's compiled conditions, trivial actions.

    Built by hand on a host of its own (not the adapter's), without the stock
    host's background timer threads (they call into the C engine unsynchronised:
    the error 307 seen once here; rules/durable_adapter.py lists the trap), under
    names of its own; messages go in chunks of CHUNK per fresh session, each
    session deleted after its chunk succeeds and abandoned if its call raised,
    exactly as the adapter does."""

    def __init__(self, rs) -> None:
        from rules.durable_adapter import quiet_host

        self.fired = 0
        self.host = quiet_host()
        crit_rules, rec_rules = rs.durable_definitions().values()
        self.crit = f"bare:{rs.durable_names[0]}"
        self.rec = f"bare:{rs.durable_names[1]}"

        def act(c) -> None:
            self.fired += 1

        self.host.register_rulesets(
            {
                self.crit: {r: {"all": [{"m": m}], "run": act} for r, m in crit_rules.items()},
                self.rec: {r: {"all": [{"m": m}], "run": act} for r, m in rec_rules.items()},
            }
        )
        self.round = 0

    def batches(self, messages: list[dict], part: str) -> list[tuple[str, list[dict]]]:
        from rules.conditions import ALWAYS_FIELD, ALWAYS_VALUE
        from rules.durable_adapter import CHUNK

        self.round += 1
        out = []
        for start in range(0, len(messages), CHUNK):
            sid = f"bare-{part}-{self.round}-{start}"
            out.append(
                (
                    sid,
                    [
                        {**m, "id": str(i), "sid": sid, ALWAYS_FIELD: ALWAYS_VALUE}
                        for i, m in enumerate(messages[start : start + CHUNK], start=start)
                    ],
                )
            )
        return out

    def run(self, crit_batches: list, rec_batches: list) -> None:
        host = self.host
        # delete_state after a call that raised segfaults (the adapter's trap list):
        # a failed chunk's session is left, and the error goes up
        for sid, batch in crit_batches:
            host.assert_facts(self.crit, batch)
            host.delete_state(self.crit, sid)
        for sid, batch in rec_batches:
            host.post_batch(self.rec, batch)
            host.delete_state(self.rec, sid)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def run(n: int, rounds: int, seed: int) -> dict:
    from rules import durable_adapter
    from rules.scoring import bid_facts, load_rule_set

    rs = load_rule_set(RULES)
    bids = synthetic_bids(n, seed)
    facts_s, facts = timed(lambda: [bid_facts(b) for b in bids])

    # warm-up (registers the rulesets, fills caches); checks the two paths agree
    warm = facts[: min(n, 500)]
    if rs.score(warm) != rs.score_python(warm):
        raise SystemExit("score and score_python disagree on the warm-up bids")
    bare = Bare(rs)
    expected = rs.score_python(facts)
    crit_messages = rs.criteria_messages(facts)
    rec_messages = [rs.recommend_message(f, rs.outcomes_python(f)) for f in facts]
    bare.run(bare.batches(crit_messages[:500], "w"), bare.batches(rec_messages[:500], "w"))

    rows = []
    rss_start = rss_mb()
    for r in range(rounds):
        score_s, scores = timed(rs.score, facts)
        if scores != expected:
            raise SystemExit(f"round {r + 1}: score differs from score_python")
        crit_b, rec_b = bare.batches(crit_messages, "c"), bare.batches(rec_messages, "r")
        bare.fired = 0
        bare_s, _ = timed(bare.run, crit_b, rec_b)
        if bare.fired != n * (len(rs.criteria) + 1):
            raise SystemExit(f"round {r + 1}: the bare ruleset fired {bare.fired} actions")
        python_s, _ = timed(rs.score_python, facts)
        rank_s, _ = timed(rs.rank, facts, scores)
        rows.append(
            {
                "round": r + 1,
                "score_s": score_s,
                "bare_s": bare_s,
                "python_s": python_s,
                "rank_s": rank_s,
                "rss_mb": round(rss_mb(), 1),
            }
        )
        print(
            f"round {r + 1:2d}: score {score_s * 1e6 / n:6.1f} us/bid  "
            f"bare {bare_s * 1e6 / n:6.1f}  python {python_s * 1e6 / n:5.1f}  "
            f"rss {rows[-1]['rss_mb']:.1f} MB",
            file=sys.stderr,
            flush=True,
        )

    # information: recommendations through the adapter as events or as facts
    rec_name = rs.durable_names[1]
    modes = {}
    for mode in ("events", "facts", "events", "facts"):
        seconds, _ = timed(durable_adapter.run, rec_name, rec_messages, mode)
        modes.setdefault(mode, []).append(seconds * 1e6 / n)

    def med(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    score_s, bare_s, python_s = med("score_s"), med("bare_s"), med("python_s")
    after_two = [row["rss_mb"] for row in rows[1:]]
    growth = (max(after_two) - after_two[0]) if after_two else 0.0
    return {
        "rules": f"{rs.name} {rs.version}",
        "rules_sha256": rs.sha256,
        "chunk": durable_adapter.CHUNK,
        "recommend_mode": "events",
        "median": {
            "score_s": score_s,
            "bare_s": bare_s,
            "python_s": python_s,
            "score_us_per_bid": score_s * 1e6 / n,
            "bare_us_per_bid": bare_s * 1e6 / n,
            "python_us_per_bid": python_s * 1e6 / n,
            "rank_us_per_bid": med("rank_s") * 1e6 / n,
        },
        "ratios": {"score_vs_bare": score_s / bare_s, "score_vs_python": score_s / python_s},
        "bid_facts_us_per_bid": facts_s * 1e6 / n,
        "recommend_mode_us_per_bid": {m: min(v) for m, v in modes.items()},
        "rss": {
            "before_rounds_mb": round(rss_start, 1),
            "after_each_round_mb": [row["rss_mb"] for row in rows],
            "growth_after_round_2_mb": round(growth, 1),
            "limit_mb": RSS_GROWTH_LIMIT_MB,
            "flat": growth < RSS_GROWTH_LIMIT_MB,
        },
        "rounds": rows,
        "adapter_stats": durable_adapter.stats(),
    }


# ---------------------------------------------------------------- report


def machine() -> dict:
    import durable

    cpu = cpu_name()
    try:
        from importlib.metadata import version

        durable_version = version("durable_rules")
    except Exception:  # pragma: no cover
        durable_version = getattr(durable, "__version__", "")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "durable_rules": durable_version,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="bids per round (default 10000)")
    ap.add_argument("--rounds", type=int, default=10, help="repeated rounds (default 10)")
    ap.add_argument("--seed", type=int, default=2011)
    ap.add_argument("--out", type=Path, default=Path("bench/results/scoring.json"))
    opts = ap.parse_args(argv)
    if opts.n < 1 or opts.rounds < 1:
        ap.error("--n and --rounds must be at least 1")
    load_before = os.getloadavg()
    figures = run(opts.n, opts.rounds, opts.seed)
    result = {
        "benchmark": "scoring",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine(),
            "load_average_1m_before": round(load_before[0], 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "code": code_version(),
        "n": opts.n,
        "rounds_count": opts.rounds,
        "seed": opts.seed,
        "statistic": "median over rounds",
        **figures,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    m, ratios = figures["median"], figures["ratios"]
    print(f"\n{opts.n} bids x {opts.rounds} rounds ({figures['rules']}), medians:")
    for label, key in (
        ("RuleSet.score (durable_rules)", "score"),
        ("bare durable_rules", "bare"),
        ("RuleSet.score_python", "python"),
    ):
        print(f"  {label:30} {m[key + '_s']:.3f} s  {m[key + '_us_per_bid']:6.1f} us/bid")
    print(f"  score/bare {ratios['score_vs_bare']:.2f}x   score/python "
          f"{ratios['score_vs_python']:.1f}x")  # fmt: skip
    print(f"  bid_facts {figures['bid_facts_us_per_bid']:.1f} us/bid; recommendations as "
          f"{figures['recommend_mode_us_per_bid']}")  # fmt: skip
    rss = figures["rss"]
    print(f"  RSS after each round (MB): {rss['after_each_round_mb']} -> "
          f"{'flat' if rss['flat'] else 'GROWING'}")  # fmt: skip
    print(f"written to {opts.out}")
    return 0 if rss["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
