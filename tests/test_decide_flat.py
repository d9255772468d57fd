"""``decide`` costs the same whatever the size of the meeting's agenda (issue 15
item 4): the meeting is read without its agenda lists (an officer's order, a
frozen agenda: as long as the agenda), and nothing else it reads grows with
the items awaiting a decision. Statements are counted (every one the database
is sent, the bus's own included), never timed."""

from __future__ import annotations

import datetime as dt

from moneykit import MEMBERS, OFFICER, money_board
from sqlalchemy import event

from engine.store.search import fts5_own_statement

BID = {"sponsor": "Rutland CC", "grant": "1,000", "savings": "5,000 2 years", "round": "R2"}


def test_decide_sends_the_same_statements_for_an_agenda_of_3_or_43_items(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    q.execute("open_round", {"ref": "R2", "name": "Open", "pot": "Projects",
                             "closes": "2011-12-31", "rules": "efficiency-bids-2011",
                             "scoring": "optional"}, OFFICER)  # fmt: skip
    q.execute("schedule_meeting", {"ref": "BOARD-JUN", "title": "Board", "date": "2011-06-20",
                                   "quorum": 3, "members": MEMBERS}, OFFICER)  # fmt: skip
    clock.set(dt.date(2011, 5, 1))

    def submit(n: int, tag: str) -> list[str]:
        return [q.execute("submit_bid", {"title": f"Bid {tag}{i}", **BID}, OFFICER)["ref"]
                for i in range(n)]  # fmt: skip

    first = submit(3, "a")
    clock.set(dt.date(2011, 6, 20))
    q.execute("record_attendance", {"meeting": "BOARD-JUN", "present": MEMBERS}, OFFICER)
    sent: list[str] = []

    @event.listens_for(engine, "connect")
    def trace(dbapi, _record) -> None:  # noqa: ANN001  every statement, raw ones too
        # FTS5's own statements aside (its configuration, read once per connection)
        dbapi.set_trace_callback(lambda s: None if fts5_own_statement(s) else sent.append(s))

    engine.dispose()  # new connections, traced

    def decide(ref: str) -> list[str]:
        sent.clear()
        q.execute("decide", {"meeting": "BOARD-JUN", "item": ref, "outcome": "reject",
                             "reasons": "not this year"}, OFFICER)  # fmt: skip
        return list(sent)

    few = decide(first[0])
    clock.set(dt.date(2011, 5, 1))
    later = submit(40, "b")
    clock.set(dt.date(2011, 6, 20))
    # an officer's order of the whole agenda: stored with the meeting, as long as it
    agenda = q.execute("order_agenda", {"meeting": "BOARD-JUN",
                                        "items": [*reversed(later), first[1]]}, OFFICER)["agenda"]
    assert len(agenda) >= 42
    many = decide(first[1])
    assert len(many) == len(few) > 0
    assert not [s for s in many if "agenda" in s]  # the agenda lists are not read

    def shape(s: str) -> str:  # the statement's verb and table, values aside
        return " ".join(s.split()[:3])

    assert [shape(s) for s in many] == [shape(s) for s in few]
