"""The per-process cache of people, roles, organisations and pots is never
stale inside a command, even when another process changed them."""

from __future__ import annotations

import pytest

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import NotFound
from engine.store.db import create_schema, make_engine


@pytest.fixture
def two_services(db_url: str, clock: FixedClock):
    engine_a, engine_b = make_engine(db_url), make_engine(db_url)
    create_schema(engine_a)
    a, b = Quorum(engine_a, clock), Quorum(engine_b, clock)
    a.execute("create_programme", {"name": "P", "pots": {"Projects": 1000}}, "system")
    a.execute(
        "register_person", {"name": "O", "email": "o@x.example", "roles": ["officer"]}, "system"
    )
    yield a, b
    engine_a.dispose()
    engine_b.dispose()


def test_a_person_and_an_authority_added_elsewhere_are_seen_at_once(two_services) -> None:
    a, b = two_services
    a.execute("register_organisation", {"name": "Rutland CC"}, "o@x.example")  # a caches
    b.execute("register_organisation", {"name": "Melton BC"}, "o@x.example")
    b.execute(
        "register_person",
        {
            "name": "M",
            "email": "m@melton.example",
            "roles": ["sponsor"],
            "organisation": "Melton BC",
        },
        "o@x.example",
    )
    # a has never seen Melton BC or m@: its next command must
    out = a.execute(
        "submit_bid", {"title": "T", "sponsor": "Melton BC", "grant": 10}, "m@melton.example"
    )
    assert out["state"] == "submitted"


def test_a_pot_added_elsewhere_is_seen_and_an_unknown_one_refused(two_services) -> None:
    a, b = two_services
    a.execute("register_organisation", {"name": "Rutland CC"}, "o@x.example")
    with pytest.raises(NotFound, match="no pot called 'Governance'"):
        a.execute(
            "submit_bid",
            {"title": "T", "sponsor": "Rutland CC", "grant": 10, "pot": "Governance"},
            "o@x.example",
        )
    b.execute(
        "ratify_programme_change",
        {"pots": {"Governance": 500}, "ratified_by": "Board", "reason": "new pot"},
        "o@x.example",
    )
    out = a.execute(
        "submit_bid",
        {"title": "T", "sponsor": "Rutland CC", "grant": 10, "pot": "Governance"},
        "o@x.example",
    )
    assert out["state"] == "submitted"


def test_a_refused_directory_change_leaves_no_trace_in_the_cache(two_services) -> None:
    a, _ = two_services
    calls = [
        ("register_organisation", {"name": "Ghost DC"}),
        ("submit_bid", {"title": "T", "sponsor": "Ghost DC", "grant": -1}),
    ]
    with pytest.raises(Exception, match="negative"):
        a.execute_batch(calls, "o@x.example")
    with pytest.raises(NotFound, match="unknown authority 'Ghost DC'"):
        a.execute("submit_bid", {"title": "T", "sponsor": "Ghost DC", "grant": 10}, "o@x.example")
