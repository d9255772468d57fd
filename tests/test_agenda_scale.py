"""The agenda is read in a number of statements that does not grow with the
number of items on it (an O(n²) slip once read the referrals once per bid:
at 10,000 bids a meeting's attendance took minutes)."""

from __future__ import annotations

import datetime as dt

from moneykit import MEMBERS, OFFICER, money_board
from sqlalchemy import event, select

from engine.read.agenda import meeting_agenda
from engine.store.models import Meeting


def test_the_agenda_costs_the_same_statements_for_2_or_22_items(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    q.execute("open_round", {"ref": "R2", "name": "Open", "pot": "Projects",
                             "closes": "2011-12-31", "rules": "efficiency-bids-2011",
                             "scoring": "optional"}, OFFICER)
    q.execute("schedule_meeting", {"ref": "BOARD-JUN", "title": "Board", "date": "2011-06-20",
                                   "quorum": 3, "members": MEMBERS}, OFFICER)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def agenda() -> tuple[int, list[str]]:
        with engine.connect() as conn:
            meeting = conn.execute(
                select(Meeting.__table__).where(Meeting.__table__.c.ref == "BOARD-JUN")).one()
            statements.clear()
            items = meeting_agenda(conn, meeting)
            return len(statements), items

    def submit(n: int) -> None:
        for i in range(n):
            q.execute("submit_bid", {"title": f"Open bid {len(statements)}-{i}",
                                     "sponsor": "Rutland CC", "grant": "1,000",
                                     "savings": "5,000 2 years", "round": "R2"}, OFFICER)

    clock.set(dt.date(2011, 5, 1))
    submit(2)
    few, items = agenda()
    assert len([r for r in items if r.startswith("B-")]) >= 2
    submit(20)
    many, more = agenda()
    assert len(more) == len(items) + 20  # every new bid is on the agenda ...
    assert many == few  # ... read in the same statements
