"""The shapes the read side returns: one typed row per view the REST API serves
(bids, grants, rounds, meetings, delegated decisions, returns, pots), defined
once, here.

Each is a ``TypedDict``: at run time the views' rows stay the plain dicts they
build (no per-row cost, and the pages, papers, ``--json`` and exports read them
as before), while mypy checks every key and type the views write and every
reader reads. quorum_web/api.py names them as its ``response_model``: FastAPI
turns each into a pydantic validator (a TypeAdapter) at the API edge only,
validates the answer against it once, and publishes it in
/api/v1/openapi.json, so the document describes exactly what the views return
(tests/test_shapes.py checks every view's rows against their shape, strictly).

Why not pydantic models built per row (the first attempt, branch i10-views):
``model_construct`` is pure Python and costs more than validating (about 14 us
against 6 us a row), and a round of 10,000 bids with their criteria and
milestones made ``views.bids`` and ``round_ranking`` 1.6-2.5x slower; the API
validated its answer against a model anyway. A TypedDict costs nothing until
the edge, where the validation happened already.

Amounts are integer pence; dates are ISO-8601 text. Extra keys are ignored by
the API's validator (pydantic's default for a TypedDict), so a
:class:`BidRecord` answered as a :class:`Bid` publishes no internal field.
``typing_extensions.TypedDict``: pydantic needs it before Python 3.12.
"""

from __future__ import annotations

from typing import Any, Literal

from typing_extensions import TypedDict

# ------------------------------------------------------------------ bids


class Savings(TypedDict):
    basis: str
    amount_pence: int | None
    high_pence: int | None
    years: int | None
    annual: bool
    readable: bool


class CriterionPoints(TypedDict):
    criterion: str
    question: str
    points: int  # the override's points where there is one
    rules_points: int  # what the rules gave
    max_points: int
    reason: str
    override_reason: str | None


class BidScore(TypedDict):
    points: int
    rules_points: int
    max_points: int
    recommendation: str
    recommendation_reason: str
    missing: list[str]
    rules: str  # the rule set's name and version
    scored_on: str
    criteria: list[CriterionPoints]


class BidMilestone(TypedDict):
    seq: int
    outcome: str
    due_on: str
    payment_pence: int
    state: str


class AllocationItem(TypedDict):
    what: str
    cost_pence: int


class Bid(TypedDict):
    ref: str
    kind: Literal["bid"]
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
    bid_kind: Literal["bid", "allocation"]  # an allocation: proposed, never scored
    reasons: str  # an allocation's reasons and recommendation ("" for a bid)
    items: list[AllocationItem]  # an allocation's itemised costs


class BidRecord(Bid):
    """A bid as ``views.bids`` returns it: the published :class:`Bid` and two
    internal keys the ranking reads (``views.public`` drops them for JSON; the
    API's validator, typed :class:`Bid`, ignores them)."""

    id: int
    _facts: dict[str, Any]  # the columns rules.scoring.bid_facts reads (views.FACT_FIELDS)


# ------------------------------------------------------------------ grants


class GrantMilestone(TypedDict):
    seq: int
    outcome: str
    due_on: str | None
    payment_pence: int
    paid_pence: int
    state: str
    evidence: str | None  # the latest evidence's state
    verified_on: str | None


class EvidenceFile(TypedDict):
    id: str  # the server-issued id (engine/store/files.py); the page links to it
    name: str  # the name it was uploaded under
    size: int | None
    sha256: str | None
    opens_inline: bool  # a PDF or an image opens in the browser; the rest download


class EvidenceSubmission(TypedDict):
    milestone: int
    summary: str
    state: str  # submitted / verified / rejected
    submitted_by: str | None
    submitted_on: str
    reviewed_by: str | None
    reviewed_on: str | None
    review_note: str
    files: list[EvidenceFile]


class Instalment(TypedDict):
    seq: int
    due_on: str | None
    amount_pence: int
    repaid_pence: int
    repaid_on: str | None
    late: bool
    days_late: int
    repaid_late: bool


class RecoveryLine(TypedDict):
    ref: str
    state: str
    demanded_pence: int
    recovered_pence: int
    written_off_pence: int
    outstanding_pence: int
    demanded_on: str | None
    reason: str
    authority: str


class PaymentLine(TypedDict):
    ref: str
    milestone: int
    amount_pence: int
    released_by: str
    released_on: str | None
    paid_to: str | None  # who received and receipts it (issue 13); None before it was kept


class GrantChange(TypedDict):
    kind: str
    approved_by: str
    approved_on: str | None
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]


class Grant(TypedDict):
    ref: str
    kind: Literal["grant"]
    bid: str
    title: str
    accountable_body: str
    pot: str
    state: str
    version: int
    approved_on: str | None
    approved_by: str  # the delegated decision's ref, or "Board"
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
    # issue 13: a grant to a partnership is paid to its accountable body
    partnership: bool  # the grant's accountable_body is a sub-regional partnership
    receiving_body: str | None  # who payments go to (None: a partnership with none named)
    advances: list[AdvanceLine]
    advances_paid_pence: int


# ------------------------------------------------------------------ rounds


class RoundSummary(TypedDict):
    ref: str
    name: str
    pot: str
    state: str
    opens_on: str
    closes_on: str
    rule_set: str
    bids: int  # how many bids the round holds


class Criterion(TypedDict):
    id: str
    question: str


Funding = Literal["committed", "above_line", "below_line", "not_eligible"]


class RankedBid(TypedDict):
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
    funding: Funding
    above_line: bool
    published_points: int | None


class RankingHeading(TypedDict):
    round: str
    name: str
    pot: str
    state: str
    rules: str
    rules_version: str
    criteria: list[Criterion]
    closes_on: str


class RoundRanking(RankingHeading):
    available_pence: int
    requested_pence: int
    funded_pence: int
    remaining_pence: int
    bids: list[RankedBid]
    below_line: list[str]


# ------------------------------------------------------------------ meetings

# "for" is a keyword: the functional form
Votes = TypedDict("Votes", {"for": int | None, "against": int | None, "abstain": int | None})


class MeetingDecision(TypedDict):
    ref: str
    item: str
    outcome: str
    amount_pence: int | None
    reasons: str
    missing: str
    votes: Votes | None
    decided_on: str


class MeetingInterest(TypedDict):
    member: str
    item: str
    nature: str


class MeetingAction(TypedDict):
    """One action of the register (engine/read/actions.py)."""

    ref: str  # <meeting ref>/A<number>
    meeting: str
    number: int
    what: str
    owner: str
    owner_kind: str  # person, partnership, organisation; '' for a free-text owner
    due_on: str | None
    target_meeting: str | None
    by: str  # as the minutes show it: the date or the target meeting's title and date
    state: str
    note: str
    closed_by: str
    closed_on: str | None
    due: bool  # under matters arising: due at (or before) that meeting


class Meeting(TypedDict):
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
    left_here: dict[str, str]  # bid ref -> the state this meeting's decisions left it in
    actions: list[MeetingAction]


class MeetingSummary(TypedDict):
    """A meeting as the meetings list shows it: counts, not its items."""

    ref: str
    title: str
    date: str
    state: str
    quorum: int
    present: list[str]
    quorate: bool
    agenda_size: int
    decisions_count: int


# ------------------------------------------------------------------ delegated decisions


class SignatureLine(TypedDict):
    name: str
    role: str
    decision: str
    interest_declared: str | None
    reason: str
    signed_at: str
    signed_on: str


class InterestLine(TypedDict):
    """A declaration of interest in a delegated decision (or its bid), with its nature."""

    name: str
    nature: str
    declared_on: str
    item: str  # the DD's ref, or its bid's


class DelegatedDecision(TypedDict):
    ref: str
    kind: Literal["delegated_decision"]
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
    route: str  # the scheme's route ("" for a scheme with one)
    requires: str  # what the route needs, in words
    requested_by: str | None
    requested_on: str | None
    expires_on: str | None
    decided_on: str | None
    grant: str | None
    reported_at: str | None  # the meeting's ref
    endorsed_on: str | None
    signatures: list[SignatureLine]  # decision: approve, decline, concur, stand_aside, absent
    interests: list[InterestLine]
    conditions: list[str]  # of the approval asked for, in words (copied to the grant)


# ------------------------------------------------------------------ returns, pots


class ReturnRow(TypedDict):
    ref: str
    kind: Literal["return"]
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


class Pot(TypedDict):
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


# ------------------------------------------------------------------ the public register


class PublicInterest(TypedDict):
    member: str
    nature: str
    dispensation: str


class PublicDecision(TypedDict):
    ref: str
    date: str
    taken_by: str  # the meeting, or "under the scheme of delegation"
    deciders: str  # the members present, or who signed
    meeting: str | None
    item: str
    title: str
    organisation: str | None
    decision: str  # in words: "Approved", "Referred back", ...
    amount_pence: int | None
    reasons: str
    asked_for: str  # a referral back: what the Board asked for
    alternatives: str  # alternatives considered and rejected
    votes: str | None
    interests: list[PublicInterest]


class PublicMeeting(TypedDict):
    ref: str
    title: str
    date: str
    state: str
    papers_published_on: str | None
    papers_due_by: str
    papers: list[str]  # the papers public now


class PublicGrant(TypedDict):
    ref: str
    title: str
    recipient: str
    amount_pence: int
    awarded_on: str
    programme: str
    state: str

# ---- risks and accountable bodies (issue 13)


class RiskReview(TypedDict):
    """One review of a risk at a meeting (engine/read/risks.py)."""

    meeting: str
    meeting_title: str
    reviewed_on: str
    outcome: str  # noted / rescored / closed
    residual_before: int
    residual_after: int
    note: str
    next_review_on: str | None


class Risk(TypedDict):
    """One risk of the register (engine/read/risks.py)."""

    ref: str  # RK-0001
    number: int  # per programme, as the paper numbers them
    programme: str
    grant: str | None  # a project-level risk: its grant
    description: str
    inherent: int
    inherent_detail: str  # "3x2" when scored as likelihood x impact
    owner: str
    owner_kind: str
    solution: str
    controls: str
    residual: int
    residual_detail: str
    indicators: str
    review_on: str | None
    state: str
    recorded_on: str
    closed_on: str | None
    threshold: int | None  # the programme's
    above_threshold: bool  # open, and residual > threshold
    version: int
    reviews: list[RiskReview]


class AdvanceLine(TypedDict):
    """An advance payment on a grant (not against a milestone)."""

    ref: str  # ADV-0001
    amount_pence: int
    reason: str
    state: str  # requested / paid / refused / withdrawn
    requested_by: str
    requested_on: str
    decided_by: str | None
    decided_on: str | None
    paid_to: str | None


class AuditLine(TypedDict):
    """One event of the audit trail as its list shows it (engine/read/lists.py)."""

    ref: str  # the event's number, as text (every list's rows have a ref)
    seq: int
    at: str  # ISO-8601 UTC
    actor: str
    command: str
    item: str
    reason: str
    hash: str


class MeetingSlot(TypedDict):
    """A meeting as a choice in a form (refer back to, defer to, due by)."""

    ref: str
    title: str
    date: str  # ISO
