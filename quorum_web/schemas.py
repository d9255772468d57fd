"""Response models for the REST API: what /api/v1/openapi.json promises.

They mirror the read-side views (engine/read/) field for field; FastAPI
validates every response against them, so the document stays truthful (and
tests/test_api_schema.py checks it from the outside with schemathesis).
Amounts are integer pence; dates are ISO-8601 text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorBody(Model):
    error: str  # invalid, unauthenticated, forbidden, not_found, conflict, not_allowed, ...
    message: str
    field: str | None = None
    item: str | None = None


# ------------------------------------------------------------------ bids


class Savings(Model):
    basis: str
    amount_pence: int | None
    high_pence: int | None
    years: int | None
    annual: bool
    readable: bool


class CriterionPoints(Model):
    criterion: str
    question: str
    points: int
    rules_points: int
    max_points: int
    reason: str
    override_reason: str | None


class BidScore(Model):
    points: int
    rules_points: int
    max_points: int
    recommendation: str
    recommendation_reason: str
    missing: list[str]
    rules: str
    scored_on: str
    criteria: list[CriterionPoints]


class BidMilestone(Model):
    seq: int
    outcome: str
    due_on: str
    payment_pence: int
    state: str


class Bid(Model):
    ref: str
    kind: str
    title: str
    state: str
    version: int
    sponsor: str
    pot: str | None
    grant_requested_pence: int
    savings_as_written: str
    savings: Savings
    partnership: str
    partners: list[str]
    builds_on_proven: str
    invest_to_save: bool
    published_points: int | None
    submitted_on: str
    milestones: list[BidMilestone]
    round: str | None
    score: BidScore | None
    recommendation: str | None


# ------------------------------------------------------------------ grants


class GrantMilestone(Model):
    seq: int
    outcome: str
    due_on: str | None
    payment_pence: int
    paid_pence: int
    state: str
    evidence: str | None
    verified_on: str | None


class Instalment(Model):
    seq: int
    due_on: str | None
    amount_pence: int
    repaid_pence: int
    repaid_on: str | None
    late: bool
    days_late: int
    repaid_late: bool


class RecoveryLine(Model):
    ref: str
    state: str
    demanded_pence: int
    recovered_pence: int
    written_off_pence: int
    outstanding_pence: int
    demanded_on: str | None
    reason: str
    authority: str


class PaymentLine(Model):
    ref: str
    milestone: int
    amount_pence: int
    released_by: str
    released_on: str | None


class GrantChange(Model):
    kind: str
    approved_by: str
    approved_on: str | None
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]


class Grant(Model):
    ref: str
    kind: str
    bid: str
    title: str
    accountable_body: str
    pot: str
    state: str
    version: int
    approved_on: str | None
    approved_by: str
    ends_on: str | None
    closed_on: str | None
    invest_to_save: bool
    awarded_pence: int
    paid_pence: int
    released_pence: int
    recovered_pence: int
    repaid_pence: int
    committed_pence: int
    unpaid_pence: int
    milestones: list[GrantMilestone]
    repayments: list[Instalment]
    recoveries: list[RecoveryLine]
    payments: list[PaymentLine]
    changes: list[GrantChange]


# ------------------------------------------------------------------ rounds


class RoundSummary(Model):
    ref: str
    name: str
    pot: str
    state: str
    opens_on: str
    closes_on: str
    rule_set: str
    bids: int


class Criterion(Model):
    id: str
    question: str


class RankedBid(Model):
    rank: int
    ref: str
    sponsor: str
    title: str
    state: str
    grant_requested_pence: int
    savings_as_written: str
    points: int
    max_points: int
    criteria: list[CriterionPoints]
    recommendation: str
    recommendation_reason: str
    funding: str  # committed / above_line / below_line / not_eligible
    above_line: bool
    published_points: int | None


class RoundRanking(Model):
    round: str
    name: str
    pot: str
    state: str
    rules: str
    rules_version: str
    criteria: list[Criterion]
    closes_on: str
    available_pence: int
    requested_pence: int
    funded_pence: int
    remaining_pence: int
    bids: list[RankedBid]
    below_line: list[str]


# ------------------------------------------------------------------ meetings


class MeetingDecision(Model):
    ref: str
    item: str
    outcome: str
    amount_pence: int | None
    reasons: str
    missing: str
    votes: dict[str, int | None] | None
    decided_on: str


class MeetingInterest(Model):
    member: str
    item: str
    nature: str


class MeetingAction(Model):
    meeting: str
    number: int
    what: str
    owner: str
    due_on: str | None
    state: str


class Meeting(Model):
    ref: str
    title: str
    date: str
    state: str
    quorum: int
    members: list[str]
    present: list[str]
    quorate: bool
    agenda: list[str]
    interests: list[MeetingInterest]
    decisions: list[MeetingDecision]
    actions: list[MeetingAction]


# ------------------------------------------------------------------ delegated decisions


class SignatureLine(Model):
    name: str
    role: str
    decision: str
    interest_declared: str | None
    reason: str
    signed_at: str
    signed_on: str


class DelegatedDecision(Model):
    ref: str
    kind: str
    title: str
    state: str
    version: int
    bid: str | None
    accountable_body: str | None
    programme: str
    pot: str
    amount_pence: int
    pot_balance_pence: int
    reasons: str
    alternatives: str
    scheme: str | None
    requested_by: str | None
    requested_on: str | None
    expires_on: str | None
    decided_on: str | None
    grant: str | None
    reported_at: str | None
    endorsed_on: str | None
    signatures: list[SignatureLine]


# ------------------------------------------------------------------ returns, pots, misc


class ReturnRow(Model):
    ref: str
    kind: str
    return_kind: str
    grant: str
    title: str
    organisation: str
    period_start: str
    period_end: str
    due_on: str
    state: str
    submitted_on: str | None
    days_late: int
    savings_delivered_pence: int | None
    savings_anticipated_pence: int | None


class Pot(Model):
    name: str
    programme: str
    allocated_pence: int
    committed_pence: int
    paid_pence: int
    released_pence: int
    recovered_pence: int
    repaid_pence: int
    available_pence: int
    identity_holds: bool


class AuditCheck(Model):
    ok: bool
    events: int
    first_bad_seq: int | None
    message: str


class CommandInfo(Model):
    name: str
    roles: list[str] | None  # None: the item's workflow decides, step by step
    summary: str


class Me(Model):
    name: str
    email: str
    roles: list[str]
    organisation: str | None
    via: str  # session or token


class Health(Model):
    status: str
