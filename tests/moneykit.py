"""A funded programme to test the money commands on: people for every role,
two grants made at a Board meeting and one bid waiting for a delegated decision.

    q, engine, clock = money_board(db_url)

After it: the date is 2011-04-20 (the Board met); grants G for "Shared ICT"
(£100,000 to Rutland CC, three milestones £40k/£40k/£20k) and "Invest to save"
(£60,000 to Melton BC, invest-to-save, two milestones £30k/£30k) are active,
their offer letters accepted by Sam and Mel (``accept_offer``);
bid "Delegated ask" (£30,000, Rutland CC, Projects pot, no round) is submitted.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import MetaData, select
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.read.offers import open_letter
from engine.store.db import create_schema, make_engine
from engine.store.ledger import grant_lines, ledger
from engine.store.models import Bid, Grant

OFFICER = "olive@m.example"  # officer: verifies evidence
OFFICER2 = "otto@m.example"  # officer: releases payments (four eyes)
FINANCE = "fay@m.example"  # finance: may release payments
DIRECTOR = "dee@m.example"
CHAIR = "chris@m.example"
VICE1 = "vera@m.example"
VICE2 = "victor@m.example"
SPONSOR = "sam@rutland.example"  # Rutland CC
SPONSOR2 = "mel@melton.example"  # Melton BC
MEMBERS = [f"Cllr {n}" for n in ("Ash", "Birch", "Cedar", "Damson", "Elm")]


def money_board(
    db_url: str, accept_offers: bool = True, conditions: dict[str, list] | None = None
) -> tuple[Quorum, object, FixedClock]:
    """``conditions``: bid title -> the conditions the Board approves it on."""
    clock = FixedClock(dt.date(2011, 3, 1))
    engine = make_engine(db_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    people = [
        ("Olive", OFFICER, ["officer"], None),
        ("Otto", OFFICER2, ["officer"], None),
        ("Fay", FINANCE, ["finance"], None),
        ("Dee", DIRECTOR, ["director"], None),
        ("Chris", CHAIR, ["chair", "board_member"], None),
        ("Vera", VICE1, ["vice_chair", "board_member"], None),
        ("Victor", VICE2, ["vice_chair", "board_member"], None),
        ("Sam", SPONSOR, ["sponsor"], "Rutland CC"),
        ("Mel", SPONSOR2, ["sponsor"], "Melton BC"),
    ] + [(n, f"{n.split()[1].lower()}@m.example", ["board_member"], None) for n in MEMBERS]
    q.execute_batch(
        [
            (
                "create_programme",
                {"name": "P", "pots": {"Projects": "750,000", "Governance": "50,000"}},
            ),
            ("register_organisation", {"name": "Rutland CC", "population": 37000}),
            ("register_organisation", {"name": "Melton BC", "population": 51000}),
            ("register_organisation", {"name": "Harborough DC", "population": 85000}),
        ]
        + [
            (
                "register_person",
                {"name": n, "email": e, "roles": r, **({"organisation": o} if o else {})},
            )
            for n, e, r, o in people
        ],
        "system",
    )
    q.execute(
        "open_round",
        {
            "ref": "R1",
            "name": "Round",
            "pot": "Projects",
            "closes": "2011-03-31",
            "rules": "efficiency-bids-2011",
        },
        OFFICER,
    )
    q.execute(
        "submit_bid",
        {
            "title": "Shared ICT",
            "sponsor": "Rutland CC",
            "grant": "100,000",
            "savings": "2,137,416 5 years",
            "partnership": "yes",
            "builds_on_proven": "yes",
            "round": "R1",
            "milestones": [
                {"outcome": "Contract let", "due": "2011-06-30", "payment": "40,000"},
                {"outcome": "System live", "due": "2011-12-31", "payment": "40,000"},
                {"outcome": "Savings report", "due": "2012-03-31", "payment": "20,000"},
            ],
        },
        OFFICER,
    )
    q.execute(
        "submit_bid",
        {
            "title": "Invest to save",
            "sponsor": "Melton BC",
            "grant": "60,000",
            "savings": "500,000 3 years",
            "partnership": "yes",
            "builds_on_proven": "yes",
            "invest_to_save": True,
            "round": "R1",
            "milestones": [
                {"outcome": "Team in post", "due": "2011-07-31", "payment": "30,000"},
                {"outcome": "Savings banked", "due": "2011-10-31", "payment": "30,000"},
            ],
        },
        OFFICER,
    )
    q.execute(
        "submit_bid",
        {
            "title": "Delegated ask",
            "sponsor": "Rutland CC",
            "grant": "30,000",
            "savings": "100,000 2 years",
            "partnership": "yes",
            "pot": "Projects",
        },
        OFFICER,
    )
    clock.set(dt.date(2011, 4, 1))
    q.execute("close_round", {"round": "R1"}, OFFICER)
    q.execute("score_round", {"round": "R1"}, OFFICER)
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-APR",
            "title": "Board",
            "date": "2011-04-20",
            "quorum": 3,
            "members": MEMBERS,
        },
        OFFICER,
    )
    clock.set(dt.date(2011, 4, 20))
    q.execute("record_attendance", {"meeting": "BOARD-APR", "present": MEMBERS}, OFFICER)
    for title, ref in zip(("Shared ICT", "Invest to save"),
                          bid_refs(engine, "Shared ICT", "Invest to save"), strict=True):
        extra = {"conditions": conditions[title]} if title in (conditions or {}) else {}
        q.execute("decide", {"meeting": "BOARD-APR", "item": ref, "outcome": "approve", **extra},
                  OFFICER)
    if accept_offers:  # each recipient accepts its offer letter (issue 16: no payment before)
        accept_offer(q, grant_ref(engine, "Shared ICT"), SPONSOR)
        accept_offer(q, grant_ref(engine, "Invest to save"), SPONSOR2)
    return q, engine, clock


def accept_offer(q: Quorum, grant: str, by: str) -> dict:
    """The recipient's contact ``by`` accepts ``grant``'s offer letter awaiting an answer
    (the letter as it stands: its hash read as the grant's page shows it)."""
    with q.engine.connect() as c:
        found = open_letter(c, grant)
    assert found is not None, f"{grant} has no offer letter awaiting an answer"
    return q.execute("accept_offer", {"offer": found[0], "sha256": found[1]}, by)


def bid_refs(engine, *titles: str) -> list[str]:
    with engine.connect() as c:
        found = dict(c.execute(select(Bid.title, Bid.ref)).all())
    return [found[t] for t in titles]


def grant_ref(engine, title: str) -> str:
    with engine.connect() as c:
        return c.execute(
            select(Grant.ref).join(Bid, Bid.id == Grant.bid_id).where(Bid.title == title)
        ).scalar_one()


def dump(engine) -> dict:
    """Every row of every table: compare before and after a refused command."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as c:
        return {
            t.name: [tuple(r) for r in c.execute(t.select().order_by(*t.primary_key.columns))]
            for t in meta.sorted_tables
        }


def refused(engine, call, exc: type[Exception], *needles: str) -> str:  # noqa: ANN001
    """``call()`` is refused with ``exc`` whose message holds every needle, and
    nothing changes (every row of every table); the message."""
    before = dump(engine)
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert dump(engine) == before
    return message


def assert_money_adds_up(engine) -> None:
    """The ledger identities for every pot and every grant."""
    with Session(engine) as s:
        for line in ledger(s):
            assert line.identity_holds(), line
        for g in grant_lines(s).values():
            assert 0 <= g.paid_pence <= g.committed_pence <= g.awarded_pence, g
