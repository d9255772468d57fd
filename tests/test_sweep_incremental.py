"""A sweep goes on from the last one (issue 15 item 4; engine/commands/sweep.py
"from the last sweep", engine/store/models.py ``sweep_change``).

- A quiet day costs what falls due that day, not the number of grants: its
  statements (counted at the driver) are the same for 40 grants and for 400.
- Going on from the last sweep writes exactly what a whole sweep writes, day by
  day, whatever changed in between: a return queried back (a revision), a new
  Director, a body's address, a new grant, a new quarter's returns — the same
  outbox keys and statuses as the same days swept whole (the triggers dropped,
  which makes every sweep a whole one).
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, update

from bench.bench_sweep import setup as seed_returns
from bench.lifecycle import counting
from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.entry.scheduler import sweep
from engine.settings import Settings, override_settings
from engine.store.db import make_engine
from engine.store.models import (
    Bid,
    Grant,
    Organisation,
    Outbox,
    Return,
    SweepRun,
    drop_sweep_triggers_ddl,
)

CATCH_UP = dt.date(2012, 1, 16)  # the first sweep: everything in reach (bench_sweep)


def quiet_day_statements(url: str, n_grants: int) -> tuple[int, int]:
    seed_returns(url, n_grants)
    engine = make_engine(url)
    first = sweep(engine, CATCH_UP, FixedClock(CATCH_UP))
    assert first["messages_queued_total"] > 0
    day = CATCH_UP + dt.timedelta(days=1)
    count = counting(engine)
    out = sweep(engine, day, FixedClock(day))
    n = count[0]
    with engine.connect() as c:
        since = c.execute(select(SweepRun.since).order_by(SweepRun.id.desc())).scalar()
    engine.dispose()
    assert since == CATCH_UP  # it went on from the catch-up
    return n, out["messages_queued_total"]


def test_a_quiet_day_costs_the_same_statements_at_40_and_400_grants(tmp_path) -> None:
    got = []
    for n in (40, 400):
        with override_settings(Settings(sweep_chunk=25, sweep_chunk_ms=0, digest_threshold=100_000,
                                        checkpoint_dir=tmp_path / f"checkpoints-{n}")):
            got.append(quiet_day_statements(f"sqlite:///{tmp_path / f'{n}.db'}", n))
    small, large = got
    assert small[1] == large[1] == 0  # nothing new to send on a quiet day
    assert large[0] == small[0], (small, large)  # a whole sweep: 16 chunks at 400, 2 at 40
    assert large[0] < 80


def outbox(engine) -> list[tuple[str, str]]:  # noqa: ANN001
    with engine.connect() as c:
        return sorted((k, s) for k, s in c.execute(select(Outbox.key, Outbox.status)))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_going_on_from_the_last_sweep_writes_what_whole_sweeps_write(
    tmp_path, kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'on.db'}", f"sqlite:///{tmp_path / 'whole.db'}"]
    else:
        server = request.getfixturevalue("pg_server")
        names = [f"t_sweep_{which}_{uuid.uuid4().hex[:12]}" for which in ("on", "whole")]
        urls = [server.create_database(name) for name in names]
        request.addfinalizer(lambda: [server.drop_database(name) for name in names])
    engines = []
    for url in urls:
        seed_returns(url, 30)
        engines.append(make_engine(url))
    with engines[1].begin() as c:  # no changes recorded: every sweep is a whole one
        for ddl in drop_sweep_triggers_ddl(kind):
            c.exec_driver_sql(ddl)

    def change(day: dt.date) -> None:
        """The same change to both databases before the sweep of ``day``."""
        for engine in engines:
            q = Quorum(engine, FixedClock(day))
            with engine.begin() as c:
                if day == dt.date(2012, 1, 20):  # a return sent in, then queried back
                    c.execute(update(Return).where(Return.grant_id == 3, Return.kind == "progress",
                                                   Return.period_end == dt.date(2011, 6, 30))
                              .values(state="queried", revisions=Return.revisions + 1))  # fmt: skip
                if day == dt.date(2012, 1, 24):  # a body's own address (its contact leaves)
                    c.execute(update(Organisation).where(Organisation.name == "Partnership 07")
                              .values(email="office7@bench.example"))  # fmt: skip
                if day == dt.date(2012, 2, 3):  # a new grant, approved last summer
                    c.execute(Bid.__table__.insert().values(
                        id=31, ref="BB-NEW", title="New", sponsor_id=1, pot_id=1,
                        grant_requested_pence=1, state="approved",
                        submitted_on=dt.date(2011, 7, 1), version=1))  # fmt: skip
                    c.execute(Grant.__table__.insert().values(
                        id=31, ref="GB-NEW", bid_id=31, accountable_body_id=2, pot_id=1,
                        awarded_pence=1, state="active", approved_on=dt.date(2011, 7, 1),
                        version=1))  # fmt: skip
            if day == dt.date(2012, 1, 27):  # a second Director
                q.execute("register_person", {"name": "Dora Deputy", "email": "dora@bench.example",
                                              "roles": ["director"]}, "system")  # fmt: skip

    days = [CATCH_UP + dt.timedelta(days=i) for i in (0, 1, 2, 4, 8, 11, 12, 15, 18, 19)]
    days += [dt.date(2012, 4, 2), dt.date(2012, 4, 3), dt.date(2012, 5, 20)]  # a new quarter
    for day in days:
        change(day)
        outs = []
        for i, engine in enumerate(engines):
            with override_settings(Settings(sweep_chunk=7, digest_threshold=100_000,
                                            checkpoint_dir=tmp_path / f"checkpoints-{i}")):
                outs.append(sweep(engine, day, FixedClock(day)))
        assert outs[0]["messages_queued"] == outs[1]["messages_queued"], day
        assert outs[0]["returns_created"] == outs[1]["returns_created"], day
        assert outbox(engines[0]) == outbox(engines[1]), day
    with engines[0].connect() as c:
        modes = list(c.execute(select(SweepRun.as_of, SweepRun.since).order_by(SweepRun.id)))
        created = c.execute(select(func.count()).select_from(Return).where(
            Return.period_end > dt.date(2012, 3, 31))).scalar()  # fmt: skip
    assert created and created > 0
    assert modes[0].since is None and sum(m.since is not None for m in modes) >= 6, modes
    total = len(outbox(engines[0]))
    assert total > 300
    for engine in engines:
        engine.dispose()
