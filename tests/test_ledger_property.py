"""Property: whatever mix of intake and programme commands is run, and whether
each is accepted or refused, the pot ledger stays consistent.

Each example runs a random sequence of commands against a fresh SQLite
database and a small model kept here, and after every command checks:

- the command was accepted or refused (with the expected error) as the model predicts;
- every pot's ledger identity holds;
- each pot's allocation equals the model's, and the net effect of the recorded
  programme changes (which form an unbroken chain of totals);
- a refused command left the database exactly as it was (money tables first);
- an accepted intake command left the money tables as they were.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import (
    ConflictError,
    MoneyRuleBroken,
    NotFound,
    PermissionDenied,
    QuorumError,
    TransitionRefused,
    ValidationError,
)
from engine.store.db import create_schema, make_engine
from engine.store.ledger import ledger
from engine.store.models import Bid, MoneyMovement, Pot, ProgrammeChange

PROGRAMME = "Transformation Fund"
ORGS = {"A": "Alpha County Council", "B": "Beta District Council"}
OFFICER = "officer@board.example.org"
DIRECTOR = "director@board.example.org"
SPONSORS = {"A": "sponsor@alpha.example.org", "B": "sponsor@beta.example.org"}
POT_NAMES = ["Main", "Small", "Capital"]  # Capital does not exist until a change creates it
MONEY_TABLES = [MoneyMovement.__table__, ProgrammeChange.__table__, Pot.__table__]


# ---------------------------------------------------------------- commands as data


@dataclass(frozen=True)
class Submit:
    kind: str  # valid / negative / profile / sponsor / scope
    org: str
    by_sponsor: bool
    grant: int  # pounds
    pot: str | None
    milestones: bool


@dataclass(frozen=True)
class Amend:
    pick: int
    actor: str  # officer / own / other
    change: str  # title / grant / grant_and_profile / same / stale
    grant: int
    with_version: bool


@dataclass(frozen=True)
class Withdraw:
    pick: int
    actor: str
    stale: bool


@dataclass(frozen=True)
class Ratify:
    actor: str  # officer / director / sponsor
    pots: tuple[tuple[str, int | str], ...]  # amount in pounds, "same" or "negative"


submits = st.builds(
    Submit,
    kind=st.sampled_from(["valid", "valid", "valid", "negative", "profile", "sponsor", "scope"]),
    org=st.sampled_from(["A", "B"]),
    by_sponsor=st.booleans(),
    grant=st.integers(1, 500_000),
    pot=st.sampled_from([None, *POT_NAMES]),
    milestones=st.booleans(),
)
amends = st.builds(
    Amend,
    pick=st.integers(0, 50),
    actor=st.sampled_from(["officer", "own", "own", "other"]),
    change=st.sampled_from(["title", "grant", "grant_and_profile", "same", "stale"]),
    grant=st.integers(1, 500_000),
    with_version=st.booleans(),
)
withdraws = st.builds(
    Withdraw,
    pick=st.integers(0, 50),
    actor=st.sampled_from(["officer", "own", "own", "other"]),
    stale=st.sampled_from([False, False, False, True]),
)
amounts = st.one_of(
    st.integers(0, 2_000_000), st.just(0), st.just("same"), st.just("negative")
)
ratifies = st.builds(
    Ratify,
    actor=st.sampled_from(["officer", "director", "director", "sponsor"]),
    pots=st.dictionaries(st.sampled_from(POT_NAMES), amounts, min_size=1, max_size=3).map(
        lambda d: tuple(d.items())
    ),
)
programs = st.lists(st.one_of(submits, amends, withdraws, ratifies), min_size=2, max_size=14)


# ---------------------------------------------------------------- the model


@dataclass
class ModelBid:
    ref: str
    org: str
    title: str
    grant: int  # pence
    profile: tuple  # ((outcome, due, pence), ...)
    state: str = "submitted"


@dataclass
class Model:
    pots: dict[str, int] = field(default_factory=lambda: {"Main": 100_000_000, "Small": 5_000_000})
    bids: list[ModelBid] = field(default_factory=list)
    titles: int = 0


def actor_for(who: str, org: str) -> str:
    if who == "officer":
        return OFFICER
    if who == "own":
        return SPONSORS[org]
    return SPONSORS["B" if org == "A" else "A"]


def profile_for(grant_pounds: int, split: bool) -> list[dict]:
    if not split:
        return [{"outcome": "Delivery", "due": "2012-03-31", "payment": grant_pounds}]
    first = grant_pounds // 2
    return [
        {"outcome": "Start", "due": "30/06/2011", "payment": first},
        {"outcome": "Finish", "due": "2012-03-31", "payment": grant_pounds - first},
    ]


def as_profile(items: list[dict]) -> tuple:
    def iso(text: str) -> str:
        if "/" in text:
            d, m, y = text.split("/")
            return f"{y}-{m}-{d}"
        return text

    return tuple((m["outcome"], iso(m["due"]), m["payment"] * 100) for m in items)


def plan_submit(cmd: Submit, model: Model) -> tuple[str, dict, str, type[QuorumError] | None]:
    """(command, args, actor, expected refusal or None), in the handler's order of checks."""
    org = cmd.org
    args: dict = {"title": f"Bid {len(model.bids)}", "sponsor": ORGS[org], "grant": cmd.grant}
    if cmd.pot:
        args["pot"] = cmd.pot
    if cmd.milestones or cmd.kind == "profile":
        items = profile_for(cmd.grant, split=True)
        if cmd.kind == "profile":
            items[-1]["payment"] += 1
        args["milestones"] = items
    actor = SPONSORS[org] if cmd.by_sponsor else OFFICER
    expect: type[QuorumError] | None = None
    if cmd.kind == "sponsor":
        args["sponsor"] = "Nowhere Parish Council"
        expect = NotFound
    elif cmd.kind == "negative":
        args["grant"] = f"-{cmd.grant}"
        args.pop("milestones", None)
        expect = ValidationError
    elif cmd.kind == "scope":
        actor = actor_for("other", org)
        expect = PermissionDenied
    elif cmd.pot and cmd.pot not in model.pots:
        expect = NotFound
    elif cmd.kind == "profile":
        expect = ValidationError
    return "submit_bid", args, actor, expect


def plan_amend(cmd: Amend, bid: ModelBid, version: int):
    args: dict = {"ref": bid.ref}
    actor = actor_for(cmd.actor, bid.org)
    if cmd.change == "stale":
        args["version"] = version + 1
        args["title"] = bid.title + " (stale)"
        # another authority's bid is not theirs to see, stale or not: as if missing (issue 11)
        return "amend_bid", args, actor, NotFound if cmd.actor == "other" else ConflictError, None
    if cmd.with_version:
        args["version"] = version
    new_title, new_grant, new_profile = bid.title, bid.grant, bid.profile
    if cmd.change == "title":
        new_title = f"{bid.title} v{cmd.grant}"
        args["title"] = new_title
    elif cmd.change == "grant":
        args["grant"] = cmd.grant
        new_grant = cmd.grant * 100
    elif cmd.change == "grant_and_profile":
        items = profile_for(cmd.grant, split=False)
        args["grant"] = cmd.grant
        args["milestones"] = items
        new_grant, new_profile = cmd.grant * 100, as_profile(items)
    else:  # same
        args["title"] = bid.title
    if cmd.actor == "other":  # not theirs to see: as a bid that does not exist (issue 11)
        expect = NotFound
    elif bid.state != "submitted":
        expect = TransitionRefused
    elif new_profile and sum(p[2] for p in new_profile) != new_grant:
        expect = ValidationError
    elif (new_title, new_grant, new_profile) == (bid.title, bid.grant, bid.profile):
        expect = ValidationError  # nothing to change
    else:
        expect = None
    return "amend_bid", args, actor, expect, (new_title, new_grant, new_profile)


def plan_withdraw(cmd: Withdraw, bid: ModelBid, version: int):
    args = {"ref": bid.ref, "reason": "no longer needed"}
    if cmd.stale:
        args["version"] = version + 1
    actor = actor_for(cmd.actor, bid.org)
    if cmd.actor == "other":  # not theirs to see, stale or not: as if missing (issue 11)
        expect = NotFound
    elif cmd.stale:
        expect = ConflictError
    elif bid.state != "submitted":
        expect = TransitionRefused
    else:
        expect = None
    return "withdraw_bid", args, actor, expect


def plan_ratify(cmd: Ratify, model: Model, committed: dict[str, int]):
    actor = {"officer": OFFICER, "director": DIRECTOR, "sponsor": SPONSORS["A"]}[cmd.actor]
    pots: dict[str, str | int] = {}
    target: dict[str, int] = {}
    negative = False
    for name, amount in cmd.pots:
        if amount == "negative":
            pots[name] = "-1,000"
            negative = True
        elif amount == "same":
            pounds = model.pots.get(name, 0) // 100
            pots[name] = f"{pounds:,}"
            target[name] = pounds * 100
        else:
            pots[name] = amount
            target[name] = amount * 100
    args = {"pots": pots, "ratified_by": "Board, minute 7", "reason": "re-profiling"}
    if cmd.actor == "sponsor":
        expect = PermissionDenied
    elif negative:
        expect = ValidationError
    elif any(amount < committed.get(name, 0) for name, amount in target.items()):
        expect = MoneyRuleBroken
    elif all(model.pots.get(name, 0) == amount for name, amount in target.items()):
        expect = ValidationError  # nothing changes
    else:
        expect = None
    return "ratify_programme_change", args, actor, expect, target


# ---------------------------------------------------------------- checks


def rows(engine, tables) -> dict[str, list[tuple]]:
    out = {}
    with engine.connect() as conn:
        for table in tables:
            out[table.name] = [
                tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
    return out


def check_ledger(engine, model: Model) -> dict[str, int]:
    """Assert the ledger invariants; return committed pence by pot name."""
    with Session(engine) as s:
        lines = ledger(s)
        changes = s.execute(select(ProgrammeChange).order_by(ProgrammeChange.id)).scalars().all()
    for line in lines:
        assert line.identity_holds(), line.to_dict()
    allocated = {line.name: line.allocated_pence for line in lines}
    assert allocated == model.pots

    net: dict[str, int] = {}
    total = 0
    for change in changes:
        assert change.old_total_pence == total, "programme changes do not chain"
        for c in change.changes:
            net[c["pot"]] = net.get(c["pot"], 0) + c["to_pence"] - c["from_pence"]
        total = change.new_total_pence
    assert total == sum(model.pots.values())
    assert {k: v for k, v in net.items() if v} == {k: v for k, v in model.pots.items() if v}
    return {line.name: line.committed_pence for line in lines}


def bid_version(engine, ref: str) -> int:
    with Session(engine) as s:
        return s.execute(select(Bid.version).where(Bid.ref == ref)).scalar_one()


def setup_world(engine) -> Quorum:
    q = Quorum(engine, FixedClock(dt.date(2011, 4, 1)))
    q.execute("create_programme",
              {"name": PROGRAMME, "pots": {"Main": "1,000,000", "Small": "50,000"}}, "system")
    for name in ORGS.values():
        q.execute("register_organisation", {"name": name}, "system")
    q.execute("register_person", {"name": "Olive", "email": OFFICER, "roles": ["officer"]},
              "system")
    q.execute("register_person", {"name": "Dee", "email": DIRECTOR, "roles": ["director"]},
              "system")
    for org, email in SPONSORS.items():
        q.execute("register_person", {"name": f"Sponsor {org}", "email": email,
                                      "roles": ["sponsor"], "organisation": ORGS[org]}, "system")
    return q


# ---------------------------------------------------------------- the property


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=programs)
def test_ledger_stays_consistent(program):
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'quorum.db'}")
        try:
            create_schema(engine)
            run_program(engine, setup_world(engine), program)
        finally:
            engine.dispose()


def run_program(engine, q: Quorum, program: list) -> None:
    model = Model()
    first = {"title": "Seed bid", "sponsor": ORGS["A"], "grant": 20_000,
             "milestones": profile_for(20_000, split=True)}
    ref = q.execute("submit_bid", first, SPONSORS["A"])["ref"]
    model.bids.append(ModelBid(ref, "A", "Seed bid", 2_000_000, as_profile(first["milestones"])))
    committed = check_ledger(engine, model)
    for step, cmd in enumerate(program):
        after = None
        target = None
        if isinstance(cmd, Submit):
            name, args, actor, expect = plan_submit(cmd, model)
        elif isinstance(cmd, Ratify):
            name, args, actor, expect, target = plan_ratify(cmd, model, committed)
        else:
            if not model.bids:
                continue
            bid = model.bids[cmd.pick % len(model.bids)]
            version = bid_version(engine, bid.ref)
            if isinstance(cmd, Amend):
                name, args, actor, expect, after = plan_amend(cmd, bid, version)
            else:
                name, args, actor, expect = plan_withdraw(cmd, bid, version)

        money_before = rows(engine, MONEY_TABLES)
        everything_before = rows(engine, SQLModel.metadata.sorted_tables)
        where = f"step {step}: {name} {args} by {actor}"
        event(f"{name}: {'accepted' if expect is None else expect.__name__}")
        try:
            result = q.execute(name, args, actor)
        except QuorumError as exc:
            assert expect is not None, f"{where}: refused unexpectedly: {exc!r}"
            assert type(exc) is expect, f"{where}: expected {expect.__name__}, got {exc!r}"
            assert rows(engine, MONEY_TABLES) == money_before, f"{where}: money moved on refusal"
            assert rows(engine, SQLModel.metadata.sorted_tables) == everything_before, where
        else:
            assert expect is None, f"{where}: accepted, expected {expect.__name__}: {result}"
            if name == "ratify_programme_change":
                for pot, amount in target.items():
                    model.pots[pot] = amount
            else:
                assert rows(engine, MONEY_TABLES) == money_before, f"{where}: intake moved money"
            if name == "submit_bid":
                model.bids.append(ModelBid(
                    ref=result["ref"], org=cmd.org, title=args["title"],
                    grant=cmd.grant * 100, profile=as_profile(args.get("milestones", [])),
                ))
            elif name == "amend_bid":
                bid.title, bid.grant, bid.profile = after
            elif name == "withdraw_bid":
                bid.state = "withdrawn"
        committed = check_ledger(engine, model)
