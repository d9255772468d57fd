"""close_round reads the round with its bids counted (one statement): the count is
the round's bids, and a round that does not exist is refused naming the field."""

from __future__ import annotations

import datetime as dt

import pytest

from bench import lifecycle
from engine.domain.errors import NotFound
from engine.store.models import Round


def test_closing_a_round_counts_its_bids_and_refuses_an_unknown_one(tmp_path) -> None:
    q, engine, clock = lifecycle.quorum_setup(f"sqlite:///{tmp_path / 'q.db'}")
    lifecycle.quorum_lifecycle(q, clock, 0)  # round R0: one bid, closed, decided
    clock.set(dt.date(2011, 3, 1))
    for ref in ("R1", "R2"):
        q.execute("open_round", {"ref": ref, "name": ref, "pot": "Projects",
                                 "closes": "2011-03-31", "rules": "efficiency-bids-2011"},
                  lifecycle.OFFICER)
    clock.set(dt.date(2011, 3, 10))
    for title in ("One", "Two"):
        q.execute("submit_bid", {"title": title, "sponsor": "Bench DC", "grant": "10,000",
                                 "savings": "50,000 5 years", "round": "R1"}, lifecycle.SPONSOR)
    clock.set(dt.date(2011, 4, 1))
    assert q.execute("close_round", {"round": "R1"}, lifecycle.OFFICER)["bids"] == 2
    assert q.execute("close_round", {"round": "R2"}, lifecycle.OFFICER)["bids"] == 0
    with pytest.raises(NotFound, match=r"close_round: round: no round 'R9'") as refused:
        q.execute("close_round", {"round": "R9"}, lifecycle.OFFICER)
    assert refused.value.field == "round"
    with engine.connect() as conn:
        states = dict(conn.execute(Round.__table__.select().with_only_columns(
            Round.__table__.c.ref, Round.__table__.c.state)).all())
    assert states == {"R0": "closed", "R1": "closed", "R2": "closed"}
    engine.dispose()
