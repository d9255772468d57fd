"""The round page's kept ranking (engine/read/rankings.py, issue 15 item 3).

After every kind of change that can move a ranking — an override, a decision
(the pot's money moves), a withdrawal, a decision elsewhere, a re-score, a write
that touches nothing in the round — every page of the kept ranking is exactly
the matching slice of the whole ranking computed afresh
(views.round_ranking), funding line included. And it is kept, not recomputed:
a page after a one-bid change reads the same statements whatever the round's
size, and a write elsewhere leaves the order untouched.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.entry.replay import run
from engine.read import rankings, views
from engine.store.db import make_engine
from engine.store.models import Bid, BidPartner, Organisation, Round

DEMO = Path(__file__).resolve().parents[1] / "engine" / "data" / "demo.yaml"
OFFICER = "officer@quorum.example"
MEMBERS = ["Cllr Clare Chair", "Cllr Victor Vice", "Cllr Vera Vice", "Cllr Bob Member"]
ROUND = "EFF-2011"
SIZE = 4  # 26 bids: seven pages, the funding line somewhere inside


@pytest.fixture
def demo(db_url: str):
    rankings.forget()
    assert run(DEMO, db_url).ok
    engine = make_engine(db_url)
    clock = FixedClock(dt.date(2011, 4, 20))
    yield Quorum(engine, clock), engine
    rankings.forget()
    engine.dispose()


LINE = ("rank", "ref", "state", "funding", "points", "grant_requested_pence", "criteria")


def pages_agree(engine) -> int:  # noqa: ANN001
    """Every page of the kept ranking against the fresh whole; the number ranked."""
    with Session(engine) as s:
        whole = views.round_ranking(s, ROUND)
    n = 1
    while True:
        with Session(engine) as s:
            page = rankings.ranking_page(s, ROUND, n, SIZE)
        want = whole["bids"][(n - 1) * SIZE : n * SIZE]
        assert [{k: b[k] for k in LINE} for b in page.ranking["bids"]] == [
            {k: b[k] for k in LINE} for b in want], f"page {n}"
        for key in ("available_pence", "requested_pence", "funded_pence", "remaining_pence",
                    "state", "rules_version"):
            assert page.ranking[key] == whole[key], key
        assert page.total == len(whole["bids"])
        line = whole["below_line"][0] if whole["below_line"] else None
        assert page.line_ref == line
        if line is not None:
            at = next(b["rank"] for b in whole["bids"] if b["ref"] == line)
            assert page.line_page == (at - 1) // SIZE + 1
        if n >= page.pages:
            return page.total
        n += 1


def test_pages_of_the_kept_ranking_match_the_fresh_ranking_after_every_change(demo) -> None:
    q, engine = demo
    assert pages_agree(engine) == 26
    with Session(engine) as s:
        whole = views.round_ranking(s, ROUND)
    top, second, low = whole["bids"][0], whole["bids"][1], whole["bids"][-1]

    # an override lifts the last bid's points: it moves up
    q.execute("override_score", {"ref": low["ref"], "criterion": "savings", "points": 5,
                                 "reason": "savings evidenced at interview"}, OFFICER)
    assert pages_agree(engine) == 26
    with Session(engine) as s:
        assert views.round_ranking(s, ROUND)["bids"][-1]["ref"] != low["ref"]

    # a decision: the bid is committed and the pot's money moves, so the line moves
    q.execute("schedule_meeting", {"ref": "BOARD-APR", "title": "Board", "date": "2011-04-20",
                                   "quorum": 3, "members": MEMBERS}, OFFICER)
    q.execute("record_attendance", {"meeting": "BOARD-APR", "present": MEMBERS}, OFFICER)
    q.execute("decide", {"meeting": "BOARD-APR", "item": top["ref"], "outcome": "approve"},
              OFFICER)
    assert pages_agree(engine) == 26
    q.execute("decide", {"meeting": "BOARD-APR", "item": second["ref"], "outcome": "refer_back",
                         "missing": "a costed plan"}, OFFICER)
    assert pages_agree(engine) == 26

    # a withdrawal takes a bid out of the ranking
    third = whole["bids"][2]["ref"]
    q.execute("withdraw_bid", {"ref": third, "reason": "merged with another bid"}, OFFICER)
    assert pages_agree(engine) == 25

    # a write that touches nothing in the round
    q.execute("register_organisation", {"name": "Wessex Unitary Council"}, "system")
    assert pages_agree(engine) == 25


def test_the_ranking_is_kept_and_only_what_changed_is_reread(demo) -> None:
    q, engine = demo
    work = rankings.WORK

    def page() -> tuple[int, int, int]:
        with Session(engine) as s:
            rankings.ranking_page(s, ROUND, 1, SIZE)
        return work.rebuilds, work.bids_reread, work.lines_drawn

    assert page() == (1, 0, 1)  # the first page ranks the round
    assert page() == (1, 0, 1)  # nothing since: kept as it was
    with Session(engine) as s:
        low = views.round_ranking(s, ROUND)["bids"][-1]["ref"]
    q.execute("override_score", {"ref": low, "criterion": "savings", "points": 5,
                                 "reason": "savings evidenced"}, OFFICER)
    assert page() == (1, 1, 2)  # that bid alone re-read, the line redrawn
    q.execute("register_organisation", {"name": "Wessex Unitary Council"}, "system")
    assert page() == (1, 1, 2)  # nothing of the round changed
    q.execute("score_round", {"round": ROUND}, OFFICER)  # the round itself: ranked afresh
    assert page()[0] == 2
    assert pages_agree(engine) == 26


def test_many_writes_on_few_bids_reread_those_bids_not_the_round(demo, monkeypatch) -> None:
    """What decides a fresh ranking is how many ITEMS changed since, not how many
    events: a score overridden again and again while nobody looks is one bid
    re-read; more items than REBUILD_AFTER (here 2) rank the round afresh."""
    q, engine = demo
    monkeypatch.setattr(rankings, "REBUILD_AFTER", 2)
    work = rankings.WORK

    def page() -> tuple[int, int]:
        with Session(engine) as s:
            rankings.ranking_page(s, ROUND, 1, SIZE)
        return work.rebuilds, work.bids_reread

    assert page() == (1, 0)
    with Session(engine) as s:
        bids = [b["ref"] for b in views.round_ranking(s, ROUND)["bids"]]
    for points in (5, 0, 5, 0, 5):  # five events on one bid
        q.execute("override_score", {"ref": bids[-1], "criterion": "savings",
                                     "points": points, "reason": "checked again"}, OFFICER)
    assert page() == (1, 1)  # that bid alone re-read
    assert pages_agree(engine) == 26
    for ref in bids[:3]:  # three bids: more than REBUILD_AFTER items
        q.execute("override_score", {"ref": ref, "criterion": "savings", "points": 0,
                                     "reason": "not evidenced"}, OFFICER)
    assert page()[0] == 2  # ranked afresh
    assert pages_agree(engine) == 26


def test_the_lean_read_gives_what_the_whole_records_give(demo) -> None:
    """views.ranked_entries (what ranking afresh reads) agrees with ranked_entry over
    whole records, bid by bid: score, criteria, facts (partners counted), state, ask;
    withdrawn bids and unscored ones left out alike."""
    q, engine = demo
    with Session(engine) as s:
        whole = views.round_ranking(s, ROUND)["bids"]
    q.execute("withdraw_bid", {"ref": whole[0]["ref"], "reason": "merged"}, OFFICER)
    q.execute("override_score", {"ref": whole[1]["ref"], "criterion": "savings",
                                 "points": 0, "reason": "not evidenced"}, OFFICER)
    with Session(engine) as s:  # two partners on a bid (set here: the read is tested)
        bid_id = s.execute(select(Bid.id).where(Bid.ref == whole[2]["ref"])).scalar_one()
        s.add_all([BidPartner(bid_id=bid_id, organisation_id=org)
                   for org in s.execute(select(Organisation.id).limit(2)).scalars()])
        s.commit()
    with Session(engine) as s:
        round_id = s.execute(select(Round.id).where(Round.ref == ROUND)).scalar_one()
        records = views.bids(s, round_id=round_id)
        lean = views.ranked_entries(s, round_id, [r["id"] for r in records])
    want = []
    for r in records:
        entry = views.ranked_entry(r)
        if entry is not None:
            want.append((r["id"], r["ref"], r["state"], r["grant_requested_pence"], *entry))
    assert [tuple(e) for e in lean] == want
    assert len(want) == len(records) - 1
    assert [e.facts["partner_count"] for e in lean if e.ref == whole[2]["ref"]] == [2]
