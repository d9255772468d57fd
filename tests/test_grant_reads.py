"""The reads the money commands make in one statement (issue 15 item 1) give what
the reads they replace gave: a grant's money summed in the columns of its row
(engine/store/ledger.py grant_money_columns) is its ledger line and what was paid
on each milestone; rows straight from the driver (engine/store/rawsql.py RawRows)
are typed as SQLAlchemy types them; a ref from the highest id read with other rows
(engine/store/refs.py ref_after) is next_ref's. Year one of the 2011/13 projects
(tests/scenarios/money-2011-12.yaml) has every kind of grant movement: payments in
parts, a clawback recovered, a repayment, commitments released."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from engine.entry.replay import run
from engine.store.db import make_engine
from engine.store.ledger import grant_lines, grant_money, grant_money_columns, grant_money_from
from engine.store.models import Bid, Evidence, Grant, Milestone, MovementKind, Payment, Return
from engine.store.rawsql import RawRows, RawValues
from engine.store.refs import next_ref, next_refs, ref_after

SCENARIO = Path(__file__).parent / "scenarios" / "money-2011-12.yaml"
G, M, P = Grant.__table__, Milestone.__table__, Payment.__table__
B = Bid.__table__


@pytest.fixture
def year_db(db_url: str) -> str:
    assert run(SCENARIO, db_url).to_json()["ok"]
    return db_url


def test_a_grants_money_read_with_its_milestones_is_its_ledger_line(year_db: str) -> None:
    read = RawRows(
        select(G.c.id.label("grant_id"), M.c.id.label("m_id"),
               *grant_money_columns(G.c.id, M.c.id))
        .select_from(G.outerjoin(M, M.c.grant_id == G.c.id))
        .order_by(G.c.id, M.c.seq)
    )  # fmt: skip
    engine = make_engine(year_db)
    with engine.connect() as conn:
        rows = read.rows(conn)
        lines = grant_lines(conn)
        paid: dict[int, int] = {
            mid: int(total)
            for mid, total in conn.execute(
                select(P.c.milestone_id, func.sum(P.c.amount_pence)).group_by(P.c.milestone_id)
            )
            if mid is not None
        }
        by_grant: dict[int, list] = {}
        for r in rows:
            by_grant.setdefault(r.grant_id, []).append(r)
        kinds = set()
        for grant_id, its in by_grant.items():
            line, on = grant_money_from(
                grant_id, its[0], ((r.m_id, r.money_milestone_paid) for r in its if r.m_id)
            )
            assert line == lines.get(grant_id, line.__class__(grant_id)), grant_id
            assert (line, on) == grant_money(conn, grant_id), grant_id
            assert on == {r.m_id: paid[r.m_id] for r in its if r.m_id in paid}, grant_id
            kinds |= {k for k in MovementKind if getattr(its[0], f"money_{k.value}", None)}
    engine.dispose()
    # the scenario moves money every way a grant's line counts
    assert {MovementKind.COMMIT, MovementKind.PAY, MovementKind.RECOVER} <= kinds, kinds


def test_rows_straight_from_the_driver_are_typed_as_sqlalchemy_types_them(year_db: str) -> None:
    engine = make_engine(year_db)
    with engine.connect() as conn:
        for table in (Grant.__table__, Milestone.__table__, Evidence.__table__, Return.__table__):
            stmt = select(table).order_by(table.c.id)
            raw = RawRows(stmt).rows(conn)
            assert raw, table.name
            assert [tuple(r) for r in raw] == [tuple(r) for r in conn.execute(stmt)], table.name
            assert [r._asdict() for r in raw] == [dict(r._mapping) for r in conn.execute(stmt)]
        # a ref made from the highest id read with other rows is the one next_ref makes
        top = conn.execute(select(func.max(P.c.id))).scalar()
        assert ref_after("payment", top) == next_ref(conn, Payment, "payment")
        assert ref_after("return", None) == "RET-0001"
    engine.dispose()


def test_rows_inserted_in_one_statement_are_the_rows_sqlalchemy_inserts(year_db: str) -> None:
    """rawsql.RawValues (a bid's milestones, a meeting's members, a round's scores in
    multi-row INSERTs): the same rows as SQLAlchemy's INSERT of each, dates and
    defaults converted alike, taken ``chunk`` rows a statement, RETURNING every row."""
    engine = make_engine(year_db)
    profile = [(f"Outcome {k}", dt.date(2012, 1 + k, 28), 1000 * k) for k in range(7)]
    with engine.connect() as conn:
        bid_id = conn.execute(select(func.min(B.c.id))).scalar()
        common = {"bid_id": bid_id, "state": "planned", "version": 1}
        returned = RawValues(M, ("seq", "outcome", "due_on", "payment_pence"),
                             returning=("seq", "id"), chunk=3).insert(
            conn, [(100 + k, *row) for k, row in enumerate(profile)], common)
        conn.execute(insert(M), [
            {**common, "seq": 200 + k, "outcome": o, "due_on": d, "payment_pence": p}
            for k, (o, d, p) in enumerate(profile)])
        rows = {r.seq: r for r in conn.execute(select(M).where(M.c.seq >= 100))}
        assert sorted(returned) == sorted((s, r.id) for s, r in rows.items() if s < 200)
        for k in range(len(profile)):
            ours, theirs = rows[100 + k]._asdict(), rows[200 + k]._asdict()
            for row in (ours, theirs):
                del row["id"], row["seq"]
            assert ours == theirs
        assert ours["due_on"] == profile[-1][1]
        # refs read together are the refs read one at a time
        assert next_refs(conn, (Payment, "payment"), (Grant, "grant")) == [
            next_ref(conn, Payment, "payment"), next_ref(conn, Grant, "grant")]
        conn.rollback()
    engine.dispose()
