"""A long agenda read by the page (issue 15: a Board whose agenda holds every scored
bid, 100,000 at the largest size, shows 200 items at a time): a page of the agenda,
its size and one item's place are read without reading the agenda whole
(engine/read/agenda.py agenda_page, agenda_position), and are always what the whole
agenda (meeting_agenda) says: with an officer's order, a stored (legacy) agenda,
delegated decisions to report, report items and bids referred to another meeting.
Moving one item stores an order as short as the move allows."""

from __future__ import annotations

import datetime as dt

import pytest
from meetingkit import assert_pages_agree
from moneykit import CHAIR, MEMBERS, OFFICER, VICE1, VICE2, bid_refs, money_board
from sqlalchemy import event, select, update

from engine.read import kept
from engine.read.agenda import agenda_page, meeting_agenda
from engine.store.models import Meeting

BID = {"sponsor": "Rutland CC", "grant": "1,000", "savings": "5,000 2 years", "round": "R2"}


def whole(engine, ref: str) -> list[str]:
    with engine.connect() as c:
        row = c.execute(select(Meeting.__table__).where(Meeting.ref == ref)).one()
        return meeting_agenda(c, row)


def check(engine, ref: str) -> list[str]:
    found = whole(engine, ref)
    with engine.connect() as c:
        assert_pages_agree(c, ref, found)
    return found


@pytest.fixture
def board(db_url: str):
    """Two scheduled Boards; 12 bids of a round decided unscored (on the agenda from
    scheduling); a delegated decision to report; a report item."""
    q, engine, clock = money_board(db_url)
    q.execute("open_round", {"ref": "R2", "name": "Open", "pot": "Projects",
                             "closes": "2011-12-31", "rules": "efficiency-bids-2011",
                             "scoring": "optional"}, OFFICER)  # fmt: skip
    for ref, date in (("BOARD-JUN", "2011-06-20"), ("BOARD-SEP", "2011-09-19")):
        q.execute("schedule_meeting", {"ref": ref, "title": "Board", "date": date,
                                       "quorum": 3, "members": MEMBERS}, OFFICER)  # fmt: skip
    clock.set(dt.date(2011, 5, 1))
    refs = [q.execute("submit_bid", {"title": f"Bid {i}", **BID}, OFFICER)["ref"]
            for i in range(12)]  # fmt: skip
    (asked,) = bid_refs(engine, "Delegated ask")
    dd = q.execute("request_delegated_decision",
                   {"bid": asked, "reasons": "before the Board", "alternatives": "wait"},
                   OFFICER)  # fmt: skip
    for who in (CHAIR, VICE1, VICE2):
        q.execute("sign", {"item": dd["ref"], "decision": "approve"}, who)
    q.execute("add_report_item", {"meeting": "BOARD-JUN", "title": "Budget monitoring",
                                  "presenter": "Olive"}, OFFICER)  # fmt: skip
    yield q, engine, clock, refs, dd["ref"]
    engine.dispose()


def test_every_page_and_place_agree_with_the_whole_agenda(board) -> None:
    q, engine, clock, refs, dd = board
    natural = check(engine, "BOARD-JUN")
    assert natural[:12] == refs and natural[12:] == [dd, "BOARD-JUN/R1"]
    # an officer's order puts the report, a late bid and the delegated decision first
    q.execute("order_agenda", {"meeting": "BOARD-JUN",
                               "items": ["BOARD-JUN/R1", refs[9], dd]}, OFFICER)  # fmt: skip
    ordered = check(engine, "BOARD-JUN")
    assert ordered[:3] == ["BOARD-JUN/R1", refs[9], dd] and len(ordered) == 14
    # two bids referred back to September leave June's agenda once resubmitted; one
    # was decided at June and stays on it
    clock.set(dt.date(2011, 6, 20))
    q.execute("record_attendance", {"meeting": "BOARD-JUN", "present": MEMBERS}, OFFICER)
    for ref in refs[3:5]:
        q.execute("decide", {"meeting": "BOARD-JUN", "item": ref, "outcome": "refer_back",
                             "missing": "costs", "to_meeting": "BOARD-SEP"}, OFFICER)
    q.execute("resubmit_bid", {"ref": refs[4]}, OFFICER)
    june = check(engine, "BOARD-JUN")
    assert refs[3] in june and refs[4] in june  # decided here, so still on it
    september = check(engine, "BOARD-SEP")
    assert refs[3] in september and refs[4] in september  # referred to it
    # closed, June keeps what it dealt with; a bid referred to September is on no
    # other scheduled meeting's agenda
    q.execute("schedule_meeting", {"ref": "BOARD-JUL", "title": "Board", "date": "2011-07-18",
                                   "quorum": 3, "members": MEMBERS}, OFFICER)  # fmt: skip
    july = check(engine, "BOARD-JUL")
    assert refs[3] not in july and refs[4] not in july and refs[5] in july
    # a meeting scheduled before the agenda followed events: its stored refs first
    with engine.begin() as c:
        c.execute(update(Meeting.__table__).where(Meeting.ref == "BOARD-SEP")
                  .values(agenda=[refs[11], refs[0], "B-0099"]))
    kept.forget()  # written behind the commands' back: what is kept cannot know
    legacy = check(engine, "BOARD-SEP")
    assert legacy[:3] == [refs[11], refs[0], "B-0099"]


def test_a_page_sends_the_same_statements_for_14_or_54_items(board) -> None:
    """A page of the agenda, drawn afresh or kept, sends the same statements however
    long the agenda, and reads the refs of its own bids only: counted, never timed."""
    q, engine, clock, _refs, _dd = board
    if engine.dialect.name != "sqlite":
        pytest.skip("statements are traced through SQLite's trace callback")
    sent: list[str] = []

    @event.listens_for(engine, "connect")
    def trace(dbapi, _record) -> None:  # noqa: ANN001  every statement, raw ones too
        dbapi.set_trace_callback(sent.append)

    engine.dispose()  # new connections, traced

    def page() -> list[str]:
        with engine.connect() as c:
            row = c.execute(select(Meeting.__table__).where(Meeting.ref == "BOARD-JUN")).one()
            sent.clear()
            assert len(agenda_page(c, row, slice(3, 8)).refs) == 5
            return list(sent)

    few = page()
    assert page() != few and len(page()) < len(few)  # kept: the bids are not read again
    kept.forget()
    assert page() == few
    clock.set(dt.date(2011, 5, 1))
    for i in range(40):
        q.execute("submit_bid", {"title": f"More {i}", **BID}, OFFICER)
    assert len(whole(engine, "BOARD-JUN")) == 54
    kept.forget()
    many = page()
    assert len(many) == len(few) > 0
    kept_page = page()
    assert [s.split(" WHERE")[0] for s in kept_page] == [
        s.split(" WHERE")[0] for s in page()]
    (refs_read,) = [s for s in kept_page if s.startswith("SELECT bid.ref") and " IN (" in s]
    assert refs_read.count(",") == 4  # the five ids of items 4 to 8


def test_moving_an_item_stores_an_order_no_longer_than_the_move_needs(board) -> None:
    q, engine, _clock, refs, dd = board
    q.execute("order_agenda", {"meeting": "BOARD-JUN", "move": refs[2], "direction": "up"},
              OFFICER)
    with engine.connect() as c:
        order = c.execute(select(Meeting.agenda_order).where(Meeting.ref == "BOARD-JUN")).scalar()
    assert order == [refs[0], refs[2], refs[1]]  # not all 14 items
    after = check(engine, "BOARD-JUN")
    assert after == [refs[0], refs[2], refs[1], *refs[3:], dd, "BOARD-JUN/R1"]
    # a longer order already there is kept to its length, the move inside it
    q.execute("order_agenda", {"meeting": "BOARD-JUN",
                               "items": ["BOARD-JUN/R1", dd, *refs[:5]]}, OFFICER)
    q.execute("order_agenda", {"meeting": "BOARD-JUN", "move": dd, "direction": "up"}, OFFICER)
    assert check(engine, "BOARD-JUN") == [dd, "BOARD-JUN/R1", *refs]
    with engine.connect() as c:
        order = c.execute(select(Meeting.agenda_order).where(Meeting.ref == "BOARD-JUN")).scalar()
    assert order == [dd, "BOARD-JUN/R1", *refs[:5]]
