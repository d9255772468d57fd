"""bench/scale.py measures every page at a (tiny) size to the end: each page
answers 200 in every phase, the writer really writes during the last phase,
and the targets are judged from the figures (a benchmark that crashes or
measures error pages measures nothing: issue 15)."""

from __future__ import annotations

from bench import scale
from bench.cache import upgraded_from_older
from engine.store.db import current_revision, head_revision, make_engine, upgrade


def test_the_scaling_run_measures_every_page_cold_warm_and_with_writes(tmp_path) -> None:
    r = scale.one_size(200, 2, 2011, tmp_path, users=3, rounds=1)
    # size n: n bids awaiting a decision in the round, n grants from another round's
    assert r["bids"] == 400 and r["grants"] == 200
    every = scale.PAGES + scale.search_pages(200)  # the lists' search boxes too
    assert {p: v["status"] for p, v in r["cold"].items()} == {p: 200 for p in every}
    for phase in ("warm", "with_writes"):
        pages = {k: v for k, v in r[phase].items() if k.startswith("/")}
        assert set(pages) == set(every)
        assert all(v["errors"] == 0 and v["requests"] == 2 for v in pages.values()), pages
        assert r[phase]["rss_mb"]["worker"] > 0
    assert r["with_writes"]["writes"]["done"] >= 2  # a write before each round page request
    # the load: several people at once, every page, while the writer writes
    crowd = {k: v for k, v in r["users"].items() if k.startswith("/")}
    assert set(crowd) == {p.replace(scale.ROUND, "{ref}") for p in every}
    assert all(v["errors"] == 0 and v["requests"] == 3 for v in crowd.values()), crowd
    assert r["users"]["users"]["count"] == 3 and r["users"]["writes"]["done"] >= 1
    worst = max(v["p95_ms"] for v in crowd.values())
    assert r["targets"]["judged_on"] == "3 users with writes"
    assert r["targets"]["worst_page_p95_ms"]["p95_ms"] == worst
    assert r["targets"]["worst_page_p95_ms"]["met"] == (worst < scale.TARGET_P95_MS)


def test_a_set_up_cached_at_an_older_migration_head_is_upgraded_not_rebuilt(tmp_path) -> None:
    older = tmp_path / "older.db"
    eng = make_engine(f"sqlite:///{older}")
    upgrade(eng, "0032")
    eng.dispose()
    missing = tmp_path / "none.db"
    db = tmp_path / "work.db"
    came = upgraded_from_older(lambda head: older if head == "0032" else missing, db)
    assert came == "0032"
    eng = make_engine(f"sqlite:///{db}")
    assert current_revision(eng) == head_revision() != "0032"
    eng.dispose()
    assert upgraded_from_older(lambda head: missing, tmp_path / "other.db") is None
