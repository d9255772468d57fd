"""A programme with a Board, to test meetings and their actions on:

    q, engine, clock = new_board(db_url, dt.date(2011, 4, 1), members=MEMBERS,
                                 organisations=[{"name": "Rutland CC"}])

Programme "P" with a Projects pot of £300,000; the organisations given; the
officer (OFFICER, named ``officer_name``); the people given; then each member
("Cllr Ash": ash@b.example) as a board member. The clock is at ``start``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.store.db import create_schema, make_engine

OFFICER = "officer@b.example"


def member_email(name: str) -> str:
    """Cllr Ash -> ash@b.example"""
    return f"{name.split()[1].lower()}@b.example"


def new_board(
    db_url: str,
    start: dt.date,
    *,
    members: Sequence[str],
    organisations: Sequence[dict[str, Any]],
    people: Sequence[dict[str, Any]] = (),
    officer_name: str = "Olive",
) -> tuple[Quorum, Engine, FixedClock]:
    clock = FixedClock(start)
    engine = make_engine(db_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute_batch(
        [
            ("create_programme", {"name": "P", "pots": {"Projects": "300,000"}}),
            *[("register_organisation", dict(o)) for o in organisations],
            ("register_person", {"name": officer_name, "email": OFFICER, "roles": ["officer"]}),
            *[("register_person", dict(p)) for p in people],
            *[
                ("register_person",
                 {"name": n, "email": member_email(n), "roles": ["board_member"]})
                for n in members
            ],  # fmt: skip
        ],
        "system",
    )
    return q, engine, clock
