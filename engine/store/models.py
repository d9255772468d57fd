"""The schema: every table Quorum needs, designed for the whole domain.

Conventions
- Money is integer pence (``*_pence``), never floats.
- Dates are ``date``; instants are timezone-aware UTC ``datetime`` from the clock.
- Workflow items (bids, grants, delegated decisions, returns, recoveries, ...)
  carry a human ``ref``, a ``state`` owned by their workflow in ``workflows/``,
  and a ``version`` used for optimistic locking: a stale write raises
  ``StaleDataError``, which the command layer reports as a conflict.
- Pot balances are never stored: they are derived from ``money_movement``.
- ``audit_event`` is append-only and hash-chained; ``outbox`` holds messages
  until the transaction that queued them has committed.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import JSON, BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlalchemy.orm import declared_attr
from sqlmodel import AutoString, Field, SQLModel

from engine.store import search

# Money columns are 64-bit: PostgreSQL's INTEGER stops at £21,474,836.47.
Money = BigInteger


class TableModel(SQLModel):
    """Base of every table model. SQLModel sets ``__table__`` (the Core table the
    hot paths query) on each table class but does not declare it; this says so
    to the type checker. Not a table itself."""

    __table__: ClassVar[sa.Table]


class VersionedMixin:
    """Optimistic locking: UPDATE ... WHERE version = :seen."""

    __table__: ClassVar[sa.Table]

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}


class Role(enum.StrEnum):
    OFFICER = "officer"
    DIRECTOR = "director"
    CHAIR = "chair"
    VICE_CHAIR = "vice_chair"
    BOARD_MEMBER = "board_member"
    SPONSOR = "sponsor"
    FINANCE = "finance"
    AUDITOR = "auditor"


# roles granted only with a second person's approval (a RoleChange)
PRIVILEGED_ROLES = frozenset(
    {Role.OFFICER, Role.DIRECTOR, Role.CHAIR, Role.VICE_CHAIR, Role.FINANCE}
)


class OrgKind(enum.StrEnum):
    COUNTY = "county"
    UNITARY = "unitary"
    DISTRICT = "district"
    SUB_REGIONAL_PARTNERSHIP = "sub_regional_partnership"
    PROGRAMME_TEAM = "programme_team"  # a regional programme's team (an allocation's recipient)
    OTHER = "other"


class BidKind(enum.StrEnum):
    """What a row of the bid table is (``Bid.kind``)."""

    BID = "bid"  # through intake and (in a round) scoring
    ALLOCATION = "allocation"  # funding proposed for a purpose and recipient, unscored


class MovementKind(enum.StrEnum):
    """Kinds of pot money movement. Amounts are positive except ALLOCATE,
    which may be negative when a ratified change reduces a pot."""

    ALLOCATE = "allocate"  # budget put into (or taken out of) a pot, ratified
    COMMIT = "commit"  # approval ties money to a grant
    RELEASE = "release"  # unspent commitment returned (closure, lower award)
    PAY = "pay"  # a payment drawn against a verified milestone
    RECOVER = "recover"  # clawed-back money returned to the pot
    REPAY = "repay"  # invest-to-save repayment returned to the pot
    FORFEIT = "forfeit"  # a deposit forfeited to the pot (adds to what it holds)


# ---------------------------------------------------------------- people


class Organisation(TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    kind: str = Field(default=OrgKind.OTHER.value)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    email: str | None = None
    population: int | None = None  # for deposits split by population share
    # its identifier in the Organisation Identifier scheme (org-id.guide), e.g.
    # GB-LAE-RUT; published as the recipient's id in 360Giving data ('' = not known)
    org_id: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # a sub-regional partnership's accountable body (a council), set only by an
    # approved AccountableBodyChange (engine/commands/handlers/partnerships.py)
    accountable_body_id: int | None = Field(default=None, foreign_key="organisation.id")


class Person(TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    email: str = Field(unique=True, index=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    password_hash: str | None = None  # argon2 (quorum_web/auth.py, commands/handlers/accounts.py)
    active: bool = True
    # wrong passwords since the last sign-in or lock-out
    failed_logins: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    locked_until: dt.datetime | None = None  # sign-in refused until then


class PersonRole(TableModel, table=True):
    __tablename__ = "person_role"
    __table_args__ = (UniqueConstraint("person_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    role: str


# ---------------------------------------------------------------- money


class Programme(VersionedMixin, TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    version: int = 1
    # roles that must give a second factor (TOTP), per action: {"sign": ["chair"],
    # "release_payment": ["finance"]} (engine/commands/second_factor.py); {}: none
    second_factor: dict[str, list[str]] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, server_default=sa.text("'{}'")),
    )
    # a meeting's papers are published at least this many clear working days before it
    papers_clear_days: int = Field(default=5, sa_column_kwargs={"server_default": "5"})
    # risk register (engine/commands/handlers/risks.py): how scores are given
    # ("score_1_9": one score; "likelihood_x_impact": each 1-3) and the residual
    # score above which a risk is brought to officers and the next meeting
    risk_scoring: str = Field(default="score_1_9", sa_column_kwargs={"server_default": "score_1_9"})
    risk_threshold: int | None = None
    # no payment to a partnership's grant until the partnership names its accountable body
    accountable_body_required: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )
    # no payment while a grant has a return overdue or needing revision (issue 13 item 6)
    no_payment_while_returns_late: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )
    # no payment on a grant before its recipient accepts the offer letter (issue 16;
    # configure_payments offer_acceptance_required); the letter template, under
    # notifications/templates/offers/ ("" : default.html)
    offer_acceptance_required: bool = Field(
        default=True, sa_column_kwargs={"server_default": sa.true()}
    )
    offer_template: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # the scheme of delegation the programme adopted (adopt_scheme); None: rules/delegation.yaml
    delegation_scheme_id: int | None = Field(default=None, foreign_key="rule_set_version.id")


class Pot(VersionedMixin, TableModel, table=True):
    __table_args__ = (UniqueConstraint("programme_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    programme_id: int = Field(foreign_key="programme.id", index=True)
    name: str
    version: int = 1
    # a partnership allocation: the sub-regional partnership whose budget this pot is
    # (engine/commands/handlers/partnership_money.py); None: a regional pot
    owner_partnership_id: int | None = Field(default=None, foreign_key="organisation.id")


class ProgrammeChange(TableModel, table=True):
    """A ratified change to a programme's pots (and so its total)."""

    __tablename__ = "programme_change"
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    programme_id: int = Field(foreign_key="programme.id", index=True)
    ratified_on: dt.date
    ratified_by: str  # the body and minute, e.g. "Board 20 April 2011, minute 5"
    reason: str
    old_total_pence: int = Field(sa_type=Money)
    new_total_pence: int = Field(sa_type=Money)
    changes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    recorded_by_id: int | None = Field(default=None, foreign_key="person.id")


class MoneyMovement(TableModel, table=True):
    """The pot ledger. Balances are sums over these rows, never edited."""

    __tablename__ = "money_movement"
    # a pot's balance is summed by kind from this index alone (a covering index:
    # 20 -> 7 ms a command at 100,000 grants in one pot); the one on pot_id stays
    # for the pot's newest movement (max(id): one step, where this one scans)
    __table_args__ = (Index("ix_money_movement_pot_kind_amount", "pot_id", "kind",
                            "amount_pence"),)
    id: int | None = Field(default=None, primary_key=True)
    pot_id: int = Field(foreign_key="pot.id", index=True)
    kind: str
    amount_pence: int = Field(sa_type=Money)
    booked_on: dt.date
    item_ref: str | None = Field(default=None, index=True)
    grant_id: int | None = Field(default=None, foreign_key="grant_award.id", index=True)
    note: str = ""


# ---------------------------------------------------------------- bids and rounds


class Round(VersionedMixin, TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    programme_id: int = Field(foreign_key="programme.id")
    pot_id: int = Field(foreign_key="pot.id")
    name: str
    opens_on: dt.date
    closes_on: dt.date
    rule_set: str
    cap_pence: int | None = Field(default=None, sa_type=Money)
    state: str = "open"
    version: int = 1
    # whether its bids must be scored before the Board decides them (rules/guards.py
    # may_decide_unscored); open_round's ``scoring: required | optional``
    scoring_required: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})


class Bid(VersionedMixin, TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True, index=True)
    title: str
    sponsor_id: int = Field(foreign_key="organisation.id", index=True)
    pot_id: int | None = Field(default=None, foreign_key="pot.id")
    round_id: int | None = Field(default=None, foreign_key="round.id", index=True)
    grant_requested_pence: int = Field(sa_type=Money)
    savings_text: str = ""
    savings_basis: str = "none_stated"
    savings_amount_pence: int | None = Field(default=None, sa_type=Money)
    savings_high_pence: int | None = Field(default=None, sa_type=Money)
    savings_years: int | None = None
    savings_annual: bool = False
    savings_readable: bool = True
    partnership: str = "not_stated"  # yes / no / not_stated, as declared
    partnership_as_written: str = ""
    builds_on_proven: str = "not_stated"  # yes / no / not_stated
    invest_to_save: bool = False
    published_points: int | None = None  # points a board paper gave, kept for comparison
    state: str = Field(default="submitted", index=True)
    submitted_on: dt.date = Field(index=True)  # lists sort by it (migration 0020)
    submitted_by_id: int | None = Field(default=None, foreign_key="person.id")
    version: int = 1
    # "bid" (through intake and scoring) or "allocation": funding proposed by an
    # officer for a purpose and recipient, decided unscored (handlers/allocations.py)
    kind: str = Field(default=BidKind.BID.value, sa_column_kwargs={"server_default": "bid"})
    reasons: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # an allocation's itemised costs: [{"what": ..., "cost_pence": ...}]
    items: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=sa.text("'[]'")),
    )


class BidPartner(TableModel, table=True):
    __tablename__ = "bid_partner"
    __table_args__ = (UniqueConstraint("bid_id", "organisation_id"),)
    id: int | None = Field(default=None, primary_key=True)
    bid_id: int = Field(foreign_key="bid.id")  # indexed by the unique (bid_id, organisation_id)
    organisation_id: int = Field(foreign_key="organisation.id")


class Milestone(VersionedMixin, TableModel, table=True):
    """A line of a milestone and funding profile: outcome, due date, payment.

    Belongs to a bid; when the bid becomes a grant the same rows gain its
    ``grant_id`` and move through evidence → verified → paid."""

    __table_args__ = (UniqueConstraint("bid_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    bid_id: int = Field(foreign_key="bid.id")  # indexed by the unique (bid_id, seq)
    grant_id: int | None = Field(default=None, foreign_key="grant_award.id", index=True)
    seq: int
    outcome: str
    due_on: dt.date
    payment_pence: int = Field(sa_type=Money)
    state: str = Field(default="planned", index=True)  # My work reads by state (0029)
    verified_by_id: int | None = Field(default=None, foreign_key="person.id")
    verified_on: dt.date | None = None
    version: int = 1


class RuleSetVersion(TableModel, table=True):
    """A rule file as it was when used: name, version and content hash."""

    __tablename__ = "rule_set_version"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str
    version: str
    sha256: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    loaded_at: dt.datetime
    # who uploaded it (upload_rule_set); None: stored when a shipped file was first used
    uploaded_by_id: int | None = Field(default=None, foreign_key="person.id")


class Score(TableModel, table=True):
    """One scoring of one bid by one rule set version. Re-scoring adds a new
    row and marks the old one not current; nothing is overwritten."""

    __table_args__ = (Index("ix_score_current", "bid_id", "current"),)
    id: int | None = Field(default=None, primary_key=True)
    bid_id: int = Field(foreign_key="bid.id")
    round_id: int | None = Field(default=None, foreign_key="round.id")
    rule_set_version_id: int = Field(foreign_key="rule_set_version.id")
    total_points: int  # after any officer overrides
    rules_total_points: int  # as the rules gave them
    max_points: int
    recommendation: str
    recommendation_reason: str = ""
    missing: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scored_on: dt.date
    current: bool = True


class CriterionScore(TableModel, table=True):
    __tablename__ = "criterion_score"
    id: int | None = Field(default=None, primary_key=True)
    score_id: int = Field(foreign_key="score.id", index=True)
    criterion: str
    question: str = ""
    points: int
    max_points: int = 0
    reason: str
    override_points: int | None = None
    override_reason: str | None = None
    override_by_id: int | None = Field(default=None, foreign_key="person.id")


# ---------------------------------------------------------------- meetings and decisions


class Meeting(VersionedMixin, TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    programme_id: int = Field(foreign_key="programme.id")
    title: str
    held_on: dt.date
    quorum: int
    state: str = "scheduled"
    # refs awaiting decision when attendance was taken (the agenda as it stood)
    agenda: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int = 1
    # when its papers were published (public register, docs/publishing.md); None: not yet
    papers_published_on: dt.date | None = None
    # issue 12: the officer's order of the agenda (refs first, the rest after in
    # their natural order), the standing orders named at scheduling ('' = the
    # shipped file) and who took the chair
    agenda_order: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    standing_orders: str = Field(default="", sa_column_kwargs={"server_default": ""})
    chair_id: int | None = Field(default=None, foreign_key="person.id")


class MeetingMember(TableModel, table=True):
    __tablename__ = "meeting_member"
    __table_args__ = (UniqueConstraint("meeting_id", "person_id"),)
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    present: bool = False
    # issue 12: apologies sent; or the person who attended in the member's place
    apologies: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    substitute_id: int | None = Field(default=None, foreign_key="person.id")


class Interest(TableModel, table=True):
    """A declaration of interest by a person in an item (meeting or delegated)."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    item_ref: str = Field(index=True)
    meeting_id: int | None = Field(default=None, foreign_key="meeting.id")
    nature: str
    declared_on: dt.date


class Decision(TableModel, table=True):
    """A decision on an item. Never edited: a mistake is reversed by a new one."""

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    item_ref: str = Field(index=True)
    meeting_id: int | None = Field(default=None, foreign_key="meeting.id")
    delegated_decision_id: int | None = Field(default=None, foreign_key="delegated_decision.id")
    outcome: str  # approve / reject / defer / refer_back / reversed
    amount_pence: int | None = Field(default=None, sa_type=Money)
    reasons: str = ""
    missing: str = ""  # refer_back: what the sponsor must supply
    state_before: str = ""  # the item's state before, so a reversal can restore it
    votes_for: int | None = None
    votes_against: int | None = None
    votes_abstain: int | None = None
    decided_on: dt.date
    reverses_id: int | None = Field(default=None, foreign_key="decision.id")
    # issue 12: a referral back to a named later meeting; the votes by name
    # ({"for": [names], "against": [...], "abstain": [...]}), the casting vote
    # ("for"/"against") and the standing order the vote was carried under
    to_meeting_id: int | None = Field(default=None, foreign_key="meeting.id")
    named_votes: dict[str, list[str]] | None = Field(default=None, sa_column=Column(JSON))
    casting: str = Field(default="", sa_column_kwargs={"server_default": ""})
    standing_order: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # an approval with conditions: the conditions as the Board set them
    # ([{"text": ..., "before_payment": true}]); copied to the grant (GrantCondition)
    conditions: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))


class GrantCondition(VersionedMixin, TableModel, table=True):
    """A condition the Board attached to its approval, numbered per grant
    (workflows/condition.py): open until an officer discharges it with the
    evidence or a note. ``before_payment``: no payment is released while it is
    open (the default; engine/commands/conditions.py)."""

    __tablename__ = "grant_condition"
    __table_args__ = (UniqueConstraint("grant_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="grant_award.id", index=True)
    seq: int
    text: str
    before_payment: bool = True
    source_ref: str = ""  # the decision (or delegated decision) that set it
    state: str = "open"
    discharged_by_id: int | None = Field(default=None, foreign_key="person.id")
    discharged_on: dt.date | None = None
    evidence: str = ""
    version: int = 1


class Action(VersionedMixin, TableModel, table=True):
    """A meeting's numbered action (workflows/action.py); its ref is
    "<meeting ref>/A<number>". ``owner`` is the name shown in the minutes;
    ``owner_kind`` says what it names (person, partnership, organisation;
    '' for a free-text owner) and ``owner_id`` the person or organisation."""

    __table_args__ = (UniqueConstraint("meeting_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    number: int
    what: str
    owner: str
    due_on: dt.date | None = None
    state: str = "open"
    owner_kind: str = Field(default="", sa_column_kwargs={"server_default": ""})
    owner_id: int | None = None
    target_meeting_id: int | None = Field(default=None, foreign_key="meeting.id")
    note: str = Field(default="", sa_column_kwargs={"server_default": ""})
    closed_by: str = Field(default="", sa_column_kwargs={"server_default": ""})
    closed_on: dt.date | None = None
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class DelegatedDecision(VersionedMixin, TableModel, table=True):
    """A decision taken between meetings under the scheme of delegation: the
    record a council publishes (what, amount, budget and its balance, why,
    alternatives rejected, who signed and any interest they declared)."""

    __tablename__ = "delegated_decision"
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    title: str = ""
    bid_id: int | None = Field(default=None, foreign_key="bid.id")
    pot_id: int = Field(foreign_key="pot.id")
    amount_pence: int = Field(sa_type=Money)
    pot_balance_pence: int = Field(sa_type=Money)  # the pot's available balance when requested
    reasons: str
    alternatives: str = ""
    rule_set_version_id: int | None = Field(default=None, foreign_key="rule_set_version.id")
    scheme_route: str = Field(default="", sa_column_kwargs={"server_default": ""})  # "": only one
    decided_on: dt.date | None = None  # approved, declined or expired on
    state: str = Field(default="awaiting_signatures", index=True)
    requested_by_id: int = Field(foreign_key="person.id")
    requested_on: dt.date = Field(index=True)  # the list, newest first (migration 0020)
    expires_on: dt.date | None = None
    reported_meeting_id: int | None = Field(default=None, foreign_key="meeting.id")
    endorsed_on: dt.date | None = None
    # an approval with conditions: as the officer asked, copied to the grant on approval
    conditions: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    version: int = 1


class Signature(TableModel, table=True):
    __table_args__ = (UniqueConstraint("delegated_decision_id", "person_id"),)
    id: int | None = Field(default=None, primary_key=True)
    delegated_decision_id: int = Field(foreign_key="delegated_decision.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    decision: str  # approve / decline / concur / stand_aside / absent
    interest_declared: str | None = None
    reason: str = ""
    signed_at: dt.datetime


class MeetingObserver(TableModel, table=True):
    """Someone who attended a meeting without being a member (issue 12): a person
    in the directory, or a name as given."""

    __tablename__ = "meeting_observer"
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    name: str


class ReportItem(TableModel, table=True):
    """A report the Board receives (issue 12), ref "<raised at>/R<number>": added
    to a meeting's agenda by an officer, or required by a meeting for a later one
    (``required``; ``meeting_id`` None: the next meeting of the programme)."""

    __tablename__ = "report_item"
    __table_args__ = (UniqueConstraint("raised_at_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    raised_at_id: int = Field(foreign_key="meeting.id", index=True)
    number: int
    meeting_id: int | None = Field(default=None, foreign_key="meeting.id")
    title: str
    presenter: str
    paper: str = ""
    required: bool = False


# ---------------------------------------------------------------- grants and money out/in


class Grant(VersionedMixin, TableModel, table=True):
    __tablename__ = "grant_award"  # "grant" is an SQL keyword
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    bid_id: int = Field(foreign_key="bid.id", unique=True)
    accountable_body_id: int = Field(foreign_key="organisation.id", index=True)
    pot_id: int = Field(foreign_key="pot.id", index=True)
    awarded_pence: int = Field(sa_type=Money)
    invest_to_save: bool = False
    state: str = Field(default="active", index=True)  # the list filters by it (0020)
    approved_on: dt.date = Field(index=True)
    ends_on: dt.date | None = None
    closed_on: dt.date | None = None
    delegated_decision_id: int | None = Field(default=None, foreign_key="delegated_decision.id")
    version: int = 1


class Evidence(TableModel, table=True):
    """Evidence a sponsor submits that a milestone's outcome was achieved; an
    officer verifies or rejects it. Rejected evidence stays on record."""

    id: int | None = Field(default=None, primary_key=True)
    milestone_id: int = Field(foreign_key="milestone.id", index=True)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    files: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    submitted_by_id: int | None = Field(default=None, foreign_key="person.id")
    submitted_on: dt.date
    state: str = "submitted"  # submitted / verified / rejected
    reviewed_by_id: int | None = Field(default=None, foreign_key="person.id")
    reviewed_on: dt.date | None = None
    review_note: str = ""


class GrantChange(TableModel, table=True):
    """An approved change to a grant: a milestone re-profiled, delivery extended."""

    __tablename__ = "grant_change"
    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="grant_award.id", index=True)
    kind: str  # reprofile / extend
    approved_by: str  # who or which meeting approved it, e.g. "Board 12 Jan 2012, minute 4"
    approved_on: dt.date
    reason: str = ""
    before: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    recorded_by_id: int | None = Field(default=None, foreign_key="person.id")


class Payment(TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    grant_id: int = Field(foreign_key="grant_award.id", index=True)
    milestone_id: int = Field(foreign_key="milestone.id", index=True)
    amount_pence: int = Field(sa_type=Money)
    released_by_id: int = Field(foreign_key="person.id")
    released_on: dt.date
    # who receives and receipts it: the grant's body, or a partnership's accountable body
    paid_to_id: int | None = Field(default=None, foreign_key="organisation.id")


class RepaymentInstalment(TableModel, table=True):
    __tablename__ = "repayment_instalment"
    __table_args__ = (UniqueConstraint("grant_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    grant_id: int = Field(foreign_key="grant_award.id", index=True)
    seq: int
    due_on: dt.date
    amount_pence: int = Field(sa_type=Money)
    repaid_pence: int = Field(default=0, sa_type=Money)
    repaid_on: dt.date | None = None


class Deposit(VersionedMixin, TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    grant_id: int | None = Field(default=None, foreign_key="grant_award.id")
    pot_id: int = Field(foreign_key="pot.id")
    total_pence: int = Field(sa_type=Money)
    basis: str  # equal / population / explicit
    target_pence: int = Field(sa_type=Money)
    target_on: dt.date
    lodged_on: dt.date
    purpose: str = ""
    state: str = "lodged"
    settled_on: dt.date | None = None
    settlement: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    version: int = 1


class DepositShare(TableModel, table=True):
    __tablename__ = "deposit_share"
    __table_args__ = (UniqueConstraint("deposit_id", "organisation_id"),)
    id: int | None = Field(default=None, primary_key=True)
    deposit_id: int = Field(foreign_key="deposit.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    amount_pence: int = Field(sa_type=Money)
    refunded_pence: int = Field(default=0, sa_type=Money)
    forfeited_pence: int = Field(default=0, sa_type=Money)


class Recovery(VersionedMixin, TableModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    grant_id: int = Field(foreign_key="grant_award.id", index=True)
    demanded_pence: int = Field(sa_type=Money)
    reason: str
    authority: str = ""  # the decision behind the demand: a meeting minute or DD ref
    state: str = "demanded"  # demanded / part_recovered / recovered / written_off
    demanded_on: dt.date
    recovered_pence: int = Field(default=0, sa_type=Money)
    written_off_pence: int = Field(default=0, sa_type=Money)
    written_off_by: str = ""  # the approval for a write-off
    closed_on: dt.date | None = None
    version: int = 1


class Return(VersionedMixin, TableModel, table=True):
    """A periodic return owed by a grant: progress, savings, monitoring, benefits."""

    __tablename__ = "grant_return"  # "return" is an SQL keyword
    __table_args__ = (
        UniqueConstraint("grant_id", "kind", "period_end"),
        Index("ix_return_open_due", "state", "due_on"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    grant_id: int = Field(foreign_key="grant_award.id", index=True)
    kind: str
    period_start: dt.date
    period_end: dt.date
    due_on: dt.date = Field(index=True)  # the list, by due date (migration 0020)
    state: str = "due"
    submitted_on: dt.date | None = None
    savings_delivered_pence: int | None = Field(default=None, sa_type=Money)  # as reported
    savings_anticipated_pence: int | None = Field(default=None, sa_type=Money)
    version: int = 1
    # issue 13: how the figure is stated (per_period / to_date, from the schedule when
    # submitted; returns recorded before were asked for savings "to date"), and the latest
    # restatement of it (the original stays above; each restatement: ReturnRestatement)
    # (server defaults only: the sweep's INSERT ... SELECT leaves them out)
    reading: str = Field(
        default="to_date", sa_column=Column(AutoString, nullable=False, server_default="to_date")
    )
    restated_delivered_pence: int | None = Field(default=None, sa_type=Money)
    restatements: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    # issue 13 item 6: what a monitoring or progress return reports besides savings (its
    # lines: ReturnProgress, per submission), the overall status (the worst line's), and
    # the officer's review: outcome, conditions or what is missing, when; ``submissions``
    # counts the versions sent in, ``revisions`` the times it was sent back (the chase
    # ladder starts again for each: engine/commands/sweep.py's outbox key)
    spend_to_date_pence: int | None = Field(default=None, sa_type=Money)
    issues: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    risks: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    rag: str = Field(default="", sa_column=Column(AutoString, nullable=False, server_default=""))
    submissions: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    revisions: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    review_outcome: str = Field(
        default="", sa_column=Column(AutoString, nullable=False, server_default="")
    )
    review_note: str = Field(
        default="", sa_column=Column(Text, nullable=False, server_default="")
    )
    reviewed_on: dt.date | None = None


class ReturnProgress(TableModel, table=True):
    """One line of a return's progress: a milestone or outcome, its status (RAG) and a
    narrative; ``submission``: which version of the return it belongs to (1, 2, ...):
    a return sent back for revision and sent in again keeps both (issue 13 item 6)."""

    __tablename__ = "return_progress"
    __table_args__ = (UniqueConstraint("return_id", "submission", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    return_id: int = Field(foreign_key="grant_return.id", index=True)
    submission: int
    seq: int
    line: str
    rag: str
    narrative: str = Field(sa_column=Column(Text, nullable=False))


class ReturnRestatement(TableModel, table=True):
    """A later figure for an accepted return's period, with the reason (issue 13)."""

    __tablename__ = "return_restatement"
    __table_args__ = (UniqueConstraint("return_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    return_id: int = Field(foreign_key="grant_return.id", index=True)
    seq: int  # 1, 2, ... per return
    previous_pence: int = Field(sa_type=Money)  # the figure it replaced
    delivered_pence: int = Field(sa_type=Money)  # the figure now
    reason: str
    reported_in: str = ""  # the later return that restated it, if named
    restated_on: dt.date
    recorded_by_id: int | None = Field(default=None, foreign_key="person.id")


class DepositCount(TableModel, table=True):
    """What a deposit's savings target counts (issue 13): grants, councils (their
    grants in the deposit's programme) or a partnership (the grants to it)."""

    __tablename__ = "deposit_count"
    id: int | None = Field(default=None, primary_key=True)
    deposit_id: int = Field(foreign_key="deposit.id", index=True)
    kind: str  # grant / council / partnership
    grant_id: int | None = Field(default=None, foreign_key="grant_award.id")
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")


# ---------------------------------------------------------------- plumbing


class Outbox(TableModel, table=True):
    """Messages queued inside a command's transaction, sent after commit."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # exactly-once: one row per logical message
    channel: str = "email"
    to_addr: str
    template: str
    subject: str
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime
    status: str = Field(default="queued", index=True)  # queued / sent / failed
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    last_error: str | None = None


class SweepRun(TableModel, table=True):
    """A deadline sweep worked in chunks (engine/commands/sweep.py): where it stands,
    so a sweep stopped part-way is taken up where it stopped, and what its start
    decided (the catch-up gate), so its end decides the same whoever finishes it."""

    __tablename__ = "sweep_run"
    id: int | None = Field(default=None, primary_key=True)
    as_of: dt.date
    # running / releasing / done / abandoned: the sweep's progress, not a business
    # state (no workflow: tests/test_workflow_authority.py looks for `state` writes)
    phase: str = Field(index=True)
    mark: int  # the outbox's highest id when it started (a digest's key names it)
    hold: str = ""  # why it is a catch-up ("" when it is not): engine/commands/notices.py gate
    after: int = 0  # the grants with a higher id are still to sweep
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    # what a sweep after this one needs to go on from here (issue 15 item 4, migration
    # 0030): the last sweep_change id when it started, the rules it swept by (sha256 of
    # the returns and reminder rules), and, for a sweep that went on from the last one
    # (``since``: that sweep's day; NULL: a whole sweep), how far through the changes
    # since it it has got
    seen: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    rules: str = Field(default="", sa_column=Column(AutoString, nullable=False, server_default=""))
    since: dt.date | None = None
    changes_after: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )


class SweepChange(TableModel, table=True):
    """What changed since a sweep, written by the database's own triggers
    (:data:`SWEEP_TRIGGERS`), whoever changes it: a grant or one of its returns
    (``grant_id``) — added, or a state, date, body, revision that decides which
    messages the sweep queues —, or (``grant_id`` NULL) anything that may change
    who they go to or which rules apply (people, roles, a body's address,
    programmes). A sweep goes on from the last one over these grants and the days
    since (engine/commands/sweep.py "from the last sweep"); rows up to the last
    completed sweep's start are deleted by the next."""

    __tablename__ = "sweep_change"
    # ids only ever grow (SQLite: AUTOINCREMENT; else a table emptied would hand out
    # an id a sweep has seen already)
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    grant_id: int | None = None


# (trigger, table, event, columns of an UPDATE OF, the grant marked: a column of NEW, or
# "" for NULL: "anything may have changed", and when: a row left in a state the sweep
# writes nothing about — a return no longer outstanding (rules/reminders.py OUTSTANDING),
# a grant owing no returns (engine/commands/sweep.py OWING) — marks nothing)
_MARKS: tuple[tuple[str, str, str, tuple[str, ...], str, str], ...] = (
    ("sweep_mark_return_new", "grant_return", "INSERT", (), "grant_id", ""),
    ("sweep_mark_return", "grant_return", "UPDATE",
     ("state", "revisions", "due_on", "kind", "grant_id", "period_end"), "grant_id",
     "NEW.state IN ('due', 'queried')"),
    ("sweep_mark_grant_new", "grant_award", "INSERT", (), "id", ""),
    ("sweep_mark_grant", "grant_award", "UPDATE",
     ("state", "accountable_body_id", "pot_id", "approved_on", "ends_on", "closed_on"), "id",
     "NEW.state IN ('active', 'closed')"),
    ("sweep_mark_role_new", "person_role", "INSERT", (), "", ""),
    ("sweep_mark_role", "person_role", "UPDATE", ("person_id", "role"), "", ""),
    ("sweep_mark_role_gone", "person_role", "DELETE", (), "", ""),
    ("sweep_mark_person", "person", "UPDATE", ("email", "active", "organisation_id"), "", ""),
    ("sweep_mark_person_gone", "person", "DELETE", (), "", ""),
    ("sweep_mark_body", "organisation", "UPDATE", ("email",), "", ""),
    ("sweep_mark_programme", "programme", "UPDATE", ("name",), "", ""),
    ("sweep_mark_pot", "pot", "UPDATE", ("programme_id",), "", ""),
)  # fmt: skip
SWEEP_TRIGGERS = tuple(m[0] for m in _MARKS)


def sweep_trigger_ddl(dialect: str) -> list[str]:
    """The statements creating the triggers that fill ``sweep_change`` (SQLite or
    PostgreSQL): the same from create_schema and from migration 0030."""
    out: list[str] = []
    for name, table, event, columns, grant, when in _MARKS:
        on = f"{event} OF {', '.join(columns)}" if columns else event
        value = f"NEW.{grant}" if grant else "NULL"
        if dialect == "postgresql":
            out.append(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"INSERT INTO sweep_change (grant_id) VALUES ({value}); RETURN NULL; END $$"
            )
            out.append(f"CREATE TRIGGER {name} AFTER {on} ON {table} FOR EACH ROW "
                       f"{f'WHEN ({when}) ' if when else ''}EXECUTE FUNCTION {name}()")  # fmt: skip
        else:
            out.append(f"CREATE TRIGGER {name} AFTER {on} ON {table} FOR EACH ROW "
                       f"{f'WHEN {when} ' if when else ''}BEGIN "
                       f"INSERT INTO sweep_change (grant_id) VALUES ({value}); END")  # fmt: skip
    return out


def drop_sweep_triggers_ddl(dialect: str) -> list[str]:
    out: list[str] = []
    for name, table, *_ in _MARKS:
        if dialect == "postgresql":
            out += [f"DROP TRIGGER IF EXISTS {name} ON {table}",
                    f"DROP FUNCTION IF EXISTS {name}()"]  # fmt: skip
        else:
            out.append(f"DROP TRIGGER IF EXISTS {name}")
    return out


@sa.event.listens_for(SQLModel.metadata, "after_create")
def _create_sweep_triggers(target: Any, connection: Any, **kw: Any) -> None:
    if "sweep_change" not in {t.name for t in kw.get("tables") or target.sorted_tables}:
        return
    for ddl in sweep_trigger_ddl(connection.dialect.name):
        connection.exec_driver_sql(ddl)


class Notification(TableModel, table=True):
    """An in-app notice to one person (the /notifications page): written with the
    outbox row of the same message, in the same transaction (engine/store/notices.py)."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # the outbox key of the message it goes with
    person_id: int = Field(foreign_key="person.id", index=True)
    what: str  # in words: the message's subject
    item_ref: str = ""  # the item it is about ("" when none)
    link: str = ""  # the page of that item ("" when none)
    created_at: dt.datetime
    read_at: dt.datetime | None = None


class AuditEvent(TableModel, table=True):
    """Append-only, hash-chained record of every command's effect."""

    __tablename__ = "audit_event"
    seq: int = Field(primary_key=True)
    at: str  # ISO-8601 UTC, stored as text so the hash is reproducible
    actor: str
    command: str
    item_ref: str = Field(index=True)
    before: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    after: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = ""
    prev_hash: str
    hash: str  # HMAC-SHA256 with key ``key_id`` (engine/store/auditkeys.py); sha256 if legacy
    # the money movements the command booked, canonical JSON ("" when none): the
    # ledgers are re-derived from these (engine/read/reconcile.py)
    money: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    key_id: str = Field(default="", sa_column_kwargs={"server_default": ""})  # "": legacy


class AuditHead(TableModel, table=True):
    """One row: the chain's tip. Locked while appending so the chain stays linear."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    last_seq: int = 0
    last_hash: str = ""
    # seq of the last event that changed people, roles, organisations, programmes
    # or pots: processes cache that reference data and reload it when this moves
    directory_seq: int = 0
    # events up to this seq (and movements up to this id) were written before the
    # chain was keyed (migration 0008): they verify with the legacy unkeyed hash
    legacy_seq: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    legacy_movement: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ApiToken(TableModel, table=True):
    """A machine client's bearer token. Only its SHA-256 is stored; the token is
    shown once when made (``quorum token create``)."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    name: str = ""
    token_hash: str = Field(unique=True)  # sha256 hex of the token
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


class WebSession(TableModel, table=True):
    """One row per web sign-in (engine/store/sessions.py). The cookie carries a
    random id; only its SHA-256 is stored. Checked on every request: revoked,
    idle or past its absolute limit, it no longer signs anyone in."""

    __tablename__ = "web_session"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    token_hash: str = Field(unique=True)  # sha256 hex of the id in the cookie
    created_at: dt.datetime
    last_seen_at: dt.datetime
    user_agent: str = ""
    revoked_at: dt.datetime | None = None
    revoked_reason: str = ""


class SecondFactor(TableModel, table=True):
    """A person's TOTP secret (RFC 6238; engine/domain/totp.py). ``confirmed_at``
    is set when they proved it with a code; ``last_step`` is the time step of the
    last code accepted, so a code is used once."""

    __tablename__ = "second_factor"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    secret: str = Field(repr=False)  # base32
    created_at: dt.datetime
    confirmed_at: dt.datetime | None = None
    last_step: int = Field(default=0, sa_type=BigInteger)
class RoleChange(VersionedMixin, TableModel, table=True):
    """A request to register a person with privileged roles, or to grant or remove
    privileged roles (PRIVILEGED_ROLES): nothing changes until a second person (a
    director or the Chair, never the one who asked nor the person concerned)
    approves it (workflows/role_change.py). ``person_id`` is empty for a new
    person: they are registered (``name``, ``email``, ``organisation_id``) when
    it is approved."""

    __tablename__ = "role_change"
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    name: str
    email: str
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    add_roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    remove_roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reason: str = ""
    state: str = "requested"
    requested_by_id: int | None = Field(default=None, foreign_key="person.id")
    requested_at: dt.datetime
    expires_at: dt.datetime
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")
    decided_at: dt.datetime | None = None
    decision_reason: str = ""
    version: int = 1


class PasswordReset(TableModel, table=True):
    """A single-use, expiring link to set one's own password: only the SHA-256
    of its token is stored; ``used_at`` is set when it is used (it works once)."""

    __tablename__ = "password_reset"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    token_hash: str = Field(unique=True)  # sha256 hex of the token
    requested_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None


class UsedLink(TableModel, table=True):
    """Single-use signed links (e.g. "sign this delegated decision"): a link's id
    is recorded when it is used, so it works once."""

    __tablename__ = "used_link"
    jti: str = Field(primary_key=True)
    used_at: dt.datetime


class AppSetting(TableModel, table=True):
    """Settings every process of one installation shares (the web session key
    when QUORUM_SECRET_KEY is not set)."""

    __tablename__ = "app_setting"
    name: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class CommandLog(TableModel, table=True):
    """Idempotency keys (engine/store/idempotency.py, docs/security.md "Idempotency").

    A key belongs to one caller and one command: (actor, command, key). The row is
    written ``running`` in a short transaction of its own before the command runs
    (holding a lease until ``lease_until``), and becomes ``done`` with the result in
    the command's own transaction. ``request_hash`` and ``field_hashes`` are the
    SHA-256 fingerprint of the validated arguments (no values are kept)."""

    __tablename__ = "command_log"
    actor: str = Field(primary_key=True)  # "person:<id>", or "actor:<label>" (system)
    command: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    request_hash: str
    field_hashes: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    status: str  # running | done
    token: str  # the run holding the lease (or that wrote the result)
    lease_until: dt.datetime
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: dt.datetime
    expires_at: dt.datetime = Field(index=True)


# ---------------------------------------------------------------- risks and accountable bodies
# (issue 13)


class Risk(VersionedMixin, TableModel, table=True):
    """A numbered risk of a programme's register (workflows/risk.py), or of one
    of its grants (``grant_id``: a project-level risk). Scores are whole numbers
    on the programme's scale (``Programme.risk_scoring``); ``*_detail`` keeps
    "4x3" when scored as likelihood x impact. ``owner`` is the name shown,
    ``owner_kind``/``owner_id`` say whom it names (a person or an organisation)."""

    __table_args__ = (UniqueConstraint("programme_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    programme_id: int = Field(foreign_key="programme.id")
    number: int
    grant_id: int | None = Field(default=None, foreign_key="grant_award.id", index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    inherent_score: int
    inherent_detail: str = ""
    owner: str
    owner_kind: str  # person / organisation
    owner_id: int | None = None
    solution: str = Field(default="", sa_column=Column(Text, nullable=False))
    controls: str = Field(default="", sa_column=Column(Text, nullable=False))
    residual_score: int
    residual_detail: str = ""
    indicators: str = Field(default="", sa_column=Column(Text, nullable=False))
    review_on: dt.date | None = None
    state: str = "open"
    recorded_on: dt.date
    closed_on: dt.date | None = None
    version: int = 1


class RiskReview(TableModel, table=True):
    """A risk reviewed at a meeting: the outcome and the residual score before and after."""

    __tablename__ = "risk_review"
    id: int | None = Field(default=None, primary_key=True)
    risk_id: int = Field(foreign_key="risk.id", index=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    reviewed_on: dt.date
    outcome: str  # noted / rescored / closed
    residual_before: int
    residual_after: int
    note: str = ""
    next_review_on: dt.date | None = None
    recorded_by_id: int | None = Field(default=None, foreign_key="person.id")


class AccountableBodyChange(VersionedMixin, TableModel, table=True):
    """A partnership naming (or changing) its accountable body: proposed by one
    officer, approved by another (workflows/accountable_body.py); only then does
    ``Organisation.accountable_body_id`` change."""

    __tablename__ = "accountable_body_change"
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    partnership_id: int = Field(foreign_key="organisation.id", index=True)
    body_id: int = Field(foreign_key="organisation.id")
    previous_body_id: int | None = Field(default=None, foreign_key="organisation.id")
    reason: str = ""
    state: str = "proposed"
    proposed_by_id: int | None = Field(default=None, foreign_key="person.id")
    proposed_on: dt.date
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")
    decided_on: dt.date | None = None
    decision_reason: str = ""
    version: int = 1


class AdvancePayment(VersionedMixin, TableModel, table=True):
    """A payment not against a verified milestone (e.g. an initial sum for
    programme development): requested with a reason by one person, approved
    (and so paid: one PAY movement under its ref) by another
    (workflows/advance.py). ``paid_to_id``: who received and receipts it."""

    __tablename__ = "advance_payment"
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)
    grant_id: int = Field(foreign_key="grant_award.id", index=True)
    amount_pence: int = Field(sa_type=Money)
    reason: str
    state: str = "requested"
    requested_by_id: int | None = Field(default=None, foreign_key="person.id")
    requested_on: dt.date
    decided_by_id: int | None = Field(default=None, foreign_key="person.id")
    decided_on: dt.date | None = None
    decision_reason: str = ""
    paid_to_id: int | None = Field(default=None, foreign_key="organisation.id")
    version: int = 1


# ---------------------------------------------------------------- savings targets (issue 13)


class SavingsTarget(TableModel, table=True):
    """The savings a grant's invest-to-save case, or a whole programme, is to
    deliver by a date (``set_savings_target``): exactly one of ``grant_id`` and
    ``programme_id``; setting it again replaces it (audited before and after)."""

    __tablename__ = "savings_target"
    id: int | None = Field(default=None, primary_key=True)
    grant_id: int | None = Field(default=None, foreign_key="grant_award.id", unique=True)
    programme_id: int | None = Field(default=None, foreign_key="programme.id", unique=True)
    target_pence: int = Field(sa_type=Money)
    target_on: dt.date | None = None
    reason: str = ""
    set_on: dt.date
    set_by_id: int | None = Field(default=None, foreign_key="person.id")


class OfferLetter(VersionedMixin, TableModel, table=True):
    """A grant offer letter (issue 16): the original issued on approval, a
    variation issued when the grant is re-profiled or extended. ``html`` is the
    letter as issued (rendered once, stored), ``sha256`` its hash: what the
    recipient accepts. ``milestones``: the milestone numbers a variation changes
    (with those of the unanswered letter it superseded). workflows/offer.py."""

    __tablename__ = "offer_letter"
    __table_args__ = (
        UniqueConstraint("grant_id", "version_no"),
        # My work: the oldest letters awaiting acceptance (migration 0029)
        Index("ix_offer_letter_state_issued_on", "state", "issued_on"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True)  # OFF-G-0001-1
    grant_id: int = Field(foreign_key="grant_award.id", index=True)
    kind: str  # original / variation
    version_no: int
    recipient_id: int = Field(foreign_key="organisation.id")  # who accepts: the legal body
    milestones: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    template: str
    issued_on: dt.date
    html: str = Field(sa_column=Column(Text, nullable=False))
    sha256: str
    state: str = "issued"
    answered_by_id: int | None = Field(default=None, foreign_key="person.id")
    answered_on: dt.date | None = None
    answered_hash: str = ""
    declined_reason: str = ""
    superseded_by: str = ""
    version: int = 1


def _searched_in(target: sa.MetaData, kw: dict[str, Any]) -> dict[str, Any]:
    made = {t.name for t in kw.get("tables") or target.sorted_tables}
    return {t: v for t, v in search.SEARCHED.items() if t in made}


def _install_search(target: sa.MetaData, connection: sa.Connection, **kw: Any) -> None:
    search.install(connection, _searched_in(target, kw))


def _uninstall_search(target: sa.MetaData, connection: sa.Connection, **kw: Any) -> None:
    search.uninstall(connection, _searched_in(target, kw))


# the search indexes (engine/store/search.py: FTS5 tables and triggers, pg_trgm
# indexes) are no tables of the models: made with them, as migration 0033 makes them
sa.event.listen(SQLModel.metadata, "after_create", _install_search)
sa.event.listen(SQLModel.metadata, "before_drop", _uninstall_search)
