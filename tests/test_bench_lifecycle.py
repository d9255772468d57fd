"""bench/lifecycle.py runs to the end on SQLite, each variant doing the whole
lifecycle (a benchmark that crashes half-way measures nothing: issue 15)."""

from __future__ import annotations

from sqlalchemy import create_engine, func, select

from bench import lifecycle


def test_each_variant_runs_whole_lifecycles(tmp_path) -> None:
    quorum = lifecycle.run_quorum(f"sqlite:///{tmp_path / 'q.db'}", 1)  # verifies the audit chain
    floor_url = f"sqlite:///{tmp_path / 'floor.db'}"
    floor = lifecycle.run_floor(floor_url, 1)
    spiff = lifecycle.run_spiff(f"sqlite:///{tmp_path / 'spiff.db'}", 1)
    for r in (quorum, floor, spiff):
        assert r["lifecycles"] == 1 and r["sql_per_lifecycle"] > 36  # a statement a step at least
    # Quorum's guarantees cost statements; the floor does the least that can work
    assert quorum["sql_per_lifecycle"] > spiff["sql_per_lifecycle"] > floor["sql_per_lifecycle"]
    engine = create_engine(floor_url)
    with engine.connect() as c:
        states = dict(c.execute(
            select(lifecycle.ITEM.c.ref, lifecycle.ITEM.c.state)
            .where(lifecycle.ITEM.c.ref.in_(["G1", "G1/4", "G1/Q8", "B1"]))
        ).all())
        records = c.execute(select(func.count()).select_from(lifecycle.RECORD)).scalar_one()
        figures = c.execute(
            select(lifecycle.ITEM.c.amount_pence).where(lifecycle.ITEM.c.kind == "return")
        ).scalars().all()
    engine.dispose()
    assert states == {"B1": "approved", "G1": "closed", "G1/4": "paid", "G1/Q8": "accepted"}
    # warm-up and timed, as Quorum writes them: the score and 3 criterion scores, 3
    # meeting members, the commitment, offer letter and decision, 4 evidence, 4
    # payments and their 4 money movements; a return is one row with its figures, as
    # Quorum writes it (no second row per return)
    assert records == 2 * (1 + 3 + 3 + 3 + 4 + 4 + 4)
    assert figures == [1_000_000] * 16
