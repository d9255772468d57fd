"""Bid intake through the command bus, on SQLite and on PostgreSQL.

Every scenario goes through ``Quorum.execute`` exactly as an entry point would.
Refusals are checked twice: the error names the offending field (or role), and
the database is byte-for-byte what it was before the command (``dump``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from engine.commands.service import Quorum
from engine.domain.errors import (
    ConflictError,
    NotFound,
    PermissionDenied,
    TransitionRefused,
    ValidationError,
)
from engine.store import audit
from engine.store.db import create_schema, make_engine
from engine.store.models import (
    AuditEvent,
    Bid,
    BidPartner,
    CommandLog,
    Milestone,
    Organisation,
    Outbox,
)

ALPHA = "Alpha County Council"
BETA = "Beta District Council"
OFFICER = "officer@board.example.org"
SPONSOR_A = "sponsor@alpha.example.org"
SPONSOR_B = "sponsor@beta.example.org"
CHAIR = "chair@alpha.example.org"
CHAIR_NO_ORG = "chair@board.example.org"


def dump(engine) -> dict[str, list[tuple]]:
    """Every row of every table, each table ordered by its primary key."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


@dataclass
class World:
    q: Quorum
    engine: object

    def run(self, name: str, args: dict, actor: str, **kw):
        return self.q.execute(name, args, actor, **kw)

    def bid(self, ref: str) -> Bid:
        with Session(self.engine) as s:
            return s.execute(select(Bid).where(Bid.ref == ref)).scalar_one()

    def history(self, ref: str) -> list[AuditEvent]:
        with Session(self.engine) as s:
            return audit.history(s, ref)

    def count(self, model) -> int:
        with Session(self.engine) as s:
            return s.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def world(db_url, clock):
    engine = make_engine(db_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute(
        "create_programme",
        {"name": "Transformation Fund", "pots": {"Main": "1,000,000", "Small grants": "50,000"}},
        "system",
    )
    q.execute("register_organisation", {"name": ALPHA, "kind": "county"}, "system")
    q.execute("register_organisation", {"name": BETA, "kind": "district"}, "system")
    people = [
        ("Olive Officer", OFFICER, ["officer"], None),
        ("Sam Sponsor", SPONSOR_A, ["sponsor"], ALPHA),
        ("Bea Sponsor", SPONSOR_B, ["sponsor"], BETA),
        ("Carl Chair", CHAIR, ["chair", "board_member"], ALPHA),
        ("Nora Chair", CHAIR_NO_ORG, ["chair"], None),
    ]
    for name, email, roles, org in people:
        args = {"name": name, "email": email, "roles": roles}
        if org:
            args["organisation"] = org
        q.execute("register_person", args, "system")
    yield World(q, engine)
    engine.dispose()


def good_bid(**overrides) -> dict:
    args = {
        "title": "Shared back office",
        "sponsor": ALPHA,
        "grant": "100,000",
        "pot": "Main",
        "savings": "£250,000 per year",
        "partners": [BETA],
        "builds_on_proven": "yes",
        "milestones": [
            {"outcome": "Business case agreed", "due": "2011-06-30", "payment": "40,000"},
            {"outcome": "Service live", "due": "31/03/2012", "payment": "60,000"},
        ],
    }
    args.update(overrides)
    return {k: v for k, v in args.items() if v is not None}


# ---------------------------------------------------------------- happy path


def test_submit_amend_withdraw_with_audit_events(world):
    sent = world.run("submit_bid", good_bid(), SPONSOR_A)
    assert sent["ref"] == "B-0001"
    assert sent["state"] == "submitted"

    bid = world.bid("B-0001")
    assert bid.title == "Shared back office"
    assert bid.grant_requested_pence == 10_000_000
    assert bid.state == "submitted"
    assert bid.version == 1
    assert bid.partnership == "yes"  # partners given, partnership not stated
    assert bid.savings_basis == "per_annum"
    assert bid.savings_amount_pence == 25_000_000
    with Session(world.engine) as s:
        alpha = s.execute(select(Organisation).where(Organisation.name == ALPHA)).scalar_one()
        assert bid.sponsor_id == alpha.id
        partners = s.execute(
            select(Organisation.name)
            .join(BidPartner, BidPartner.organisation_id == Organisation.id)
            .where(BidPartner.bid_id == bid.id)
        ).scalars().all()
        assert partners == [BETA]
        pays = s.execute(
            select(Milestone.seq, Milestone.payment_pence).where(Milestone.bid_id == bid.id)
            .order_by(Milestone.seq)
        ).all()
        assert [tuple(p) for p in pays] == [(1, 4_000_000), (2, 6_000_000)]
        queued = s.execute(select(Outbox).order_by(Outbox.id)).scalars().all()
        # the sponsor's receipt, and the officer told of the new bid (issue 14)
        assert [(m.template, m.to_addr) for m in queued] == [
            ("bid_received", SPONSOR_A), ("officer_notice", OFFICER)]
        assert queued[0].key.startswith("bid_received:B-0001")
        assert queued[0].status == "queued"

    [submitted] = world.history("B-0001")
    assert (submitted.command, submitted.actor) == ("submit_bid", SPONSOR_A)
    assert json.loads(submitted.before) == {}
    after = json.loads(submitted.after)
    assert after["title"] == "Shared back office"
    assert after["grant_requested_pence"] == 10_000_000
    assert after["partners"] == [BETA]
    assert [m["payment_pence"] for m in after["milestones"]] == [4_000_000, 6_000_000]

    amended = world.run(
        "amend_bid",
        {
            "ref": "B-0001",
            "version": 1,
            "title": "Shared back office (phase 1)",
            "grant": "90,000",
            "milestones": [
                {"outcome": "Business case agreed", "due": "2011-06-30", "payment": "30,000"},
                {"outcome": "Service live", "due": "2012-03-31", "payment": "60,000"},
            ],
            "reason": "scope reduced after board feedback",
        },
        SPONSOR_A,
    )
    assert amended["version"] == 2
    assert amended["changed"] == ["grant_requested_pence", "milestones", "title"]
    bid = world.bid("B-0001")
    assert (bid.title, bid.grant_requested_pence, bid.version) == (
        "Shared back office (phase 1)", 9_000_000, 2,
    )

    events = world.history("B-0001")
    assert [e.command for e in events] == ["submit_bid", "amend_bid"]
    change = events[1]
    assert change.reason == "scope reduced after board feedback"
    assert json.loads(change.before)["title"] == "Shared back office"
    assert json.loads(change.after)["title"] == "Shared back office (phase 1)"
    assert json.loads(change.before)["grant_requested_pence"] == 10_000_000
    assert json.loads(change.after)["grant_requested_pence"] == 9_000_000
    # only what changed is recorded
    assert set(json.loads(change.after)) == {"title", "grant_requested_pence", "milestones"}

    gone = world.run("withdraw_bid", {"ref": "B-0001", "reason": "merged with B-0002"}, OFFICER)
    assert (gone["ref"], gone["state"]) == ("B-0001", "withdrawn")
    assert world.bid("B-0001").state == "withdrawn"
    events = world.history("B-0001")
    assert [e.command for e in events] == ["submit_bid", "amend_bid", "withdraw_bid"]
    assert json.loads(events[2].before) == {"state": "submitted"}
    assert json.loads(events[2].after) == {"state": "withdrawn"}
    assert events[2].actor == OFFICER
    assert events[2].reason == "merged with B-0002"

    with Session(world.engine) as s:
        result = audit.verify(s)
    assert result.ok, result.message()


def test_officer_may_submit_for_any_authority(world):
    res = world.run("submit_bid", good_bid(sponsor=BETA, partners=None), OFFICER)
    assert res["state"] == "submitted"
    assert world.bid(res["ref"]).submitted_on.isoformat() == "2011-04-01"


# ---------------------------------------------------------------- refusals


def _refused(world, name, args, actor, exc_type):
    before = dump(world.engine)
    with pytest.raises(exc_type) as info:
        world.run(name, args, actor)
    assert dump(world.engine) == before, "a refused command changed the database"
    return info.value


@pytest.mark.parametrize(
    "overrides, exc_type, field, words",
    [
        pytest.param({"grant": "-5,000", "milestones": None}, ValidationError, "grant",
                     ["negative"], id="negative-grant"),
        pytest.param(
            {"milestones": [
                {"outcome": "Business case agreed", "due": "2011-06-30", "payment": "40,000"},
                {"outcome": "Service live", "due": "2012-03-31", "payment": "50,000"},
            ]},
            ValidationError, "milestones", ["£90,000", "£100,000"], id="profile-not-grant",
        ),
        pytest.param({"sponsor": "Gamma Borough Council"}, NotFound, "sponsor",
                     ["Gamma Borough Council"], id="unknown-sponsor"),
        pytest.param(
            {"milestones": [
                {"outcome": "Everything", "due": "31/02/2011", "payment": "100,000"},
            ]},
            ValidationError, "milestones[1].due", ["31/02/2011"], id="unreadable-date",
        ),
        pytest.param({"colour": "blue"}, ValidationError, "colour", ["unknown field"],
                     id="unknown-field"),
    ],
)
def test_submit_refusals_name_the_field_and_change_nothing(world, overrides, exc_type, field,
                                                          words):
    world.run("submit_bid", good_bid(title="Already here"), SPONSOR_A)  # so tables are not empty
    err = _refused(world, "submit_bid", good_bid(**overrides), SPONSOR_A, exc_type)
    assert err.field == field
    assert field in str(err)
    for word in words:
        assert word in str(err)


def test_chair_may_not_submit_and_is_told_which_role(world):
    err = _refused(world, "submit_bid", good_bid(), CHAIR, PermissionDenied)
    assert "role" in str(err)
    assert "sponsor" in str(err) and "officer" in str(err)


def test_chair_without_authority_is_told_which_role(world):
    """The role is checked before the authority scope: a chair belonging to no authority
    is told the role it lacks, not that it may act only for its own authority."""
    err = _refused(world, "submit_bid", good_bid(), CHAIR_NO_ORG, PermissionDenied)
    assert "role" in str(err)
    assert "sponsor" in str(err) and "officer" in str(err)


def test_sponsor_may_not_submit_for_another_authority(world):
    err = _refused(world, "submit_bid", good_bid(sponsor=BETA, partners=None), SPONSOR_A,
                   PermissionDenied)
    assert SPONSOR_A in str(err)
    assert "own authority" in str(err)


def test_sponsor_may_not_amend_or_withdraw_another_authoritys_bid(world):
    world.run("submit_bid", good_bid(), SPONSOR_A)
    # another authority's bid is refused exactly as a bid that does not exist (issue 11)
    for ref in ("B-0001", "B-0999"):
        for name, args in (
            ("amend_bid", {"ref": ref, "title": "Hijacked", "version": 99}),
            ("withdraw_bid", {"ref": ref, "reason": "no", "version": 99}),
            ("resubmit_bid", {"ref": ref, "version": 99}),
        ):
            err = _refused(world, name, args, SPONSOR_B, NotFound)
            assert (err.message, err.field) == (f"{name}: ref: no bid {ref!r}", "ref")


def test_amend_after_withdraw_is_refused(world):
    world.run("submit_bid", good_bid(), SPONSOR_A)
    world.run("withdraw_bid", {"ref": "B-0001", "reason": "not ready"}, SPONSOR_A)
    err = _refused(world, "amend_bid", {"ref": "B-0001", "title": "Second try"}, SPONSOR_A,
                   TransitionRefused)
    assert "withdrawn" in str(err)
    assert err.item == "B-0001"


def test_amending_only_the_profile_makes_the_old_version_stale(world):
    """Milestones are part of the bid: changing only them still moves the bid's version,
    so a caller holding the old version is told the bid changed under it."""
    world.run("submit_bid", good_bid(), SPONSOR_A)
    resplit = [
        {"outcome": "Business case agreed", "due": "2011-06-30", "payment": "50,000"},
        {"outcome": "Service live", "due": "2012-03-31", "payment": "50,000"},
    ]
    res = world.run("amend_bid", {"ref": "B-0001", "version": 1, "milestones": resplit},
                    SPONSOR_A)
    assert res["changed"] == ["milestones"]
    assert res["version"] == 2
    assert world.bid("B-0001").version == 2
    _refused(world, "amend_bid", {"ref": "B-0001", "version": 1, "title": "Mine"}, SPONSOR_A,
             ConflictError)


def test_stale_version_is_a_conflict(world):
    world.run("submit_bid", good_bid(), SPONSOR_A)
    world.run("amend_bid", {"ref": "B-0001", "version": 1, "title": "New title"}, OFFICER)
    err = _refused(world, "amend_bid", {"ref": "B-0001", "version": 1, "title": "Mine"},
                   SPONSOR_A, ConflictError)
    assert "version 1" in str(err) and "version 2" in str(err)


def test_amend_with_nothing_new_is_refused(world):
    world.run("submit_bid", good_bid(), SPONSOR_A)
    _refused(world, "amend_bid", {"ref": "B-0001", "title": "Shared back office"}, SPONSOR_A,
             ValidationError)


def test_amend_grant_without_new_profile_is_refused(world):
    world.run("submit_bid", good_bid(), SPONSOR_A)
    err = _refused(world, "amend_bid", {"ref": "B-0001", "grant": "120,000"}, SPONSOR_A,
                   ValidationError)
    assert err.field == "milestones"


# ---------------------------------------------------------------- idempotency


def test_same_key_twice_gives_one_bid_one_event_same_result(world):
    events_before = world.count(AuditEvent)
    first = world.run("submit_bid", good_bid(), SPONSOR_A, key="intake-2011-04-01-row-7")
    state = dump(world.engine)
    second = world.run("submit_bid", good_bid(), SPONSOR_A, key="intake-2011-04-01-row-7")
    assert second == first
    assert dump(world.engine) == state  # the retry wrote nothing at all
    assert world.count(Bid) == 1
    assert world.count(AuditEvent) == events_before + 1
    assert len(world.history(first["ref"])) == 1
    assert world.count(CommandLog) == 1
    # a different key is a different command
    third = world.run("submit_bid", good_bid(), SPONSOR_A, key="intake-2011-04-01-row-8")
    assert third["ref"] != first["ref"]
    assert world.count(Bid) == 2
