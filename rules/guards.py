"""The named guards a workflow step may carry (``Step.rule``): the one place
where a step's business rule is judged.

Each guard takes a small typed context (built by the handler from what it has
already read: no guard queries the database) and returns ``None`` when the step
may fire, or the refusal (a :class:`~engine.domain.errors.QuorumError`, whose
message says why and what to do) when it may not. ``Workflow.fire``
(workflows/base.py) looks the step's guard up here and raises the refusal;
firing a guarded step without its context, or with the wrong kind of context,
is a programming error (``TypeError``), never a silent pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.domain.errors import (
    MoneyRuleBroken,
    PermissionDenied,
    QuorumError,
    TransitionRefused,
)
from engine.domain.money import format_pence


@dataclass(frozen=True)
class PotCover:
    """Money about to be committed from a pot, and the pot's balance now."""

    command: str  # the command asking, named at the start of the refusal
    item: str  # the bid the money is for
    amount_pence: int
    pot: str
    available_pence: int
    allocated_pence: int
    committed_pence: int


@dataclass(frozen=True)
class SchemeJudgement:
    """The scheme of delegation's verdict on a request's signatures so far."""

    command: str
    item: str  # the delegated decision
    outcome: str  # "approved", "declined" or "awaiting" (rules/delegation.py Evaluation)
    why: str


Guard = Callable[[Any], QuorumError | None]


@dataclass(frozen=True)
class _Registered:
    context: type
    check: Guard


GUARDS: dict[str, _Registered] = {}


def guard(name: str, context: type) -> Callable[[Guard], Guard]:
    """Register ``fn`` as the guard ``name``, taking a ``context`` instance."""

    def deco(fn: Guard) -> Guard:
        if name in GUARDS:
            raise ValueError(f"guard {name} registered twice")
        GUARDS[name] = _Registered(context, fn)
        return fn

    return deco


def judge(name: str, context: object) -> QuorumError | None:
    """Run the guard ``name`` on ``context``: None, or the refusal."""
    try:
        registered = GUARDS[name]
    except KeyError:
        raise TypeError(f"no guard named {name!r}; known: {', '.join(sorted(GUARDS))}") from None
    if not isinstance(context, registered.context):
        raise TypeError(
            f"guard {name} needs a {registered.context.__name__} context, "
            f"not {type(context).__name__}"
        )
    return registered.check(context)


@guard("pot_can_cover", PotCover)
def pot_can_cover(c: PotCover) -> QuorumError | None:
    """The pot has enough uncommitted money for the grant."""
    if c.amount_pence <= c.available_pence:
        return None
    return MoneyRuleBroken(
        f"{c.command}: amount: approving {format_pence(c.amount_pence)} for {c.item} would "
        f"overcommit the {c.pot} pot: {format_pence(c.available_pence)} is available "
        f"(allocated {format_pence(c.allocated_pence)}, committed "
        f"{format_pence(c.committed_pence)})",
        field="amount",
    )


@guard("scheme_satisfied", SchemeJudgement)
def scheme_satisfied(c: SchemeJudgement) -> QuorumError | None:
    """The signatures so far satisfy the scheme of delegation."""
    if c.outcome == "approved":
        return None
    return TransitionRefused(
        f"{c.command}: item: {c.item} is not approved under its scheme: {c.why}", item=c.item
    )


@guard("scheme_unsatisfiable", SchemeJudgement)
def scheme_unsatisfiable(c: SchemeJudgement) -> QuorumError | None:
    """The declines so far leave the scheme impossible to satisfy."""
    if c.outcome == "declined":
        return None
    return TransitionRefused(
        f"{c.command}: item: {c.item} can still be approved under its scheme: {c.why}",
        item=c.item,
    )


@dataclass(frozen=True)
class UnscoredDecision:
    """A Board decision on an item that has not been scored: the item's kind
    ("bid" or "allocation") and its round (None: not in a round) and whether
    that round requires scoring before a decision."""

    command: str
    item: str
    kind: str
    round: str | None
    scoring_required: bool


@guard("may_decide_unscored", UnscoredDecision)
def may_decide_unscored(c: UnscoredDecision) -> QuorumError | None:
    """An unscored item may be decided if it is in no round (an allocation, a bid
    made outside a round) or its round does not require scoring."""
    if c.round is None or not c.scoring_required:
        return None
    return TransitionRefused(
        f"{c.command}: item: {c.item} has not been scored and round {c.round} requires "
        f"scoring before a decision (rule may_decide_unscored): score it first "
        f"(score_round {c.round})",
        item=c.item,
    )


@dataclass(frozen=True)
class RoleChangeDecider:
    """Who decides a role change, who asked for it and whose roles it changes
    (person ids; ``subject_id`` None: a person not yet registered)."""

    command: str
    item: str  # the role change (RC-0001)
    decider_id: int | None
    requester_id: int | None
    subject_id: int | None
    subject: str  # the person's email, named in the refusal


@guard("second_person", RoleChangeDecider)
def second_person(c: RoleChangeDecider) -> QuorumError | None:
    """A role change is decided by a second person: not the one who asked for it,
    not the person whose roles it changes."""
    if c.decider_id is None:
        return PermissionDenied(
            f"{c.command}: item: {c.item} is decided by a signed-in director or the Chair",
            item=c.item,
        )
    if c.decider_id == c.subject_id:
        return PermissionDenied(
            f"{c.command}: item: {c.item} changes your own roles ({c.subject}); "
            "another director or the Chair must decide it",
            item=c.item,
        )
    if c.decider_id == c.requester_id:
        return PermissionDenied(
            f"{c.command}: item: you asked for {c.item}; a second person (another director "
            "or the Chair) must decide it — you may withdraw it",
            item=c.item,
        )
    return None


@guard("own_request", RoleChangeDecider)
def own_request(c: RoleChangeDecider) -> QuorumError | None:
    """Only the one who asked for a role change may withdraw it."""
    if c.decider_id is not None and c.decider_id == c.requester_id:
        return None
    return PermissionDenied(
        f"{c.command}: item: only the one who asked for {c.item} may withdraw it "
        "(a director or the Chair may refuse it)",
        item=c.item,
    )


# ---- risks and accountable bodies (issue 13)


@dataclass(frozen=True)
class FourEyes:
    """Who decides a proposal and who made it (person ids): an accountable body
    change, an advance payment."""

    command: str
    item: str  # the proposal (ABC-0001, ADV-0001)
    decider_id: int | None
    proposer_id: int | None
    proposer: str  # named in the refusal
    deciders: str = "another officer"  # who may decide instead, named in the refusal


@guard("four_eyes", FourEyes)
def four_eyes(c: FourEyes) -> QuorumError | None:
    """A proposal is decided by a second, signed-in person: never the one who made it."""
    if c.decider_id is None:
        return PermissionDenied(
            f"{c.command}: item: {c.item} is decided by a signed-in person (four eyes)",
            field="item",
            item=c.item,
        )
    if c.decider_id == c.proposer_id:
        return PermissionDenied(
            f"{c.command}: item: {c.proposer} asked for {c.item}; four eyes: a second "
            f"person ({c.deciders}) must decide it — you may withdraw it",
            field="item",
            item=c.item,
        )
    return None
