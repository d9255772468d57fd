"""A pot's balance is summed by kind on every command that checks its money
(decide, pay, release...): over every movement of the pot, so it grows with the
grants in it. The sums come from the covering index on money_movement (pot_id,
kind, amount_pence) alone, not from the table's rows (migration 0034): held here
by the query plan on both databases, never by a time. The pot's newest movement
(max(id), the kept rankings' money tip) stays one step on the index on pot_id."""

from __future__ import annotations

import datetime as dt

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.store.db import create_schema, make_engine
from engine.store.ledger import _POT_SUMS


def test_a_pots_sums_are_read_from_the_covering_index(db_url: str) -> None:
    engine = make_engine(db_url)
    create_schema(engine)
    Quorum(engine, FixedClock(dt.date(2011, 3, 1))).execute(
        "create_programme", {"name": "P", "pots": {"Projects": "100,000"}}, "system")
    with engine.connect() as c:
        sql, _, _ = _POT_SUMS._for(c)
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(r[3]) for r in c.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + sql, (1,)))
            assert "COVERING INDEX ix_money_movement_pot_kind_amount" in plan, plan
            newest = " ".join(str(r[3]) for r in c.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT max(id) FROM money_movement WHERE pot_id = ?", (1,)))
            assert "ix_money_movement_pot_id" in newest, newest
        else:
            # a tiny table never vacuumed: PostgreSQL's index-only scan needs the
            # visibility map, so ask only that the pot is found by this index
            c.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(r[0] for r in c.exec_driver_sql(
                "EXPLAIN " + sql, {"pot_id": 1}))
            assert "ix_money_movement_pot_kind_amount" in plan, plan
    engine.dispose()
