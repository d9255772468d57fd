"""One typed contract per command: what it takes, read once on the command bus.

Each command registered with :func:`engine.commands.service.command` has a
:class:`Contract` here with the same ``command`` name (``CONTRACTS`` maps the
name to it; ``tests/test_contracts.py`` checks none is missing). Its fields
are the annotated types of :mod:`engine.domain.fields` (pence, UK dates,
yes/no, lists...), in the order the handler reads them, so the first problem
reported is the one reported before contracts existed, with the same words:
"submit_bid: title: is required". Unknown fields are refused after the known
ones are read ("unknown field(s) ...; this command takes: ..."). ``version``
(the version of the item the caller saw) is taken by every command.

Every entry point hands the bus a plain dict (CLI ``quorum do``, scenario
files, web forms, the REST API); the bus's :class:`engine.commands.args.Args`
reads it through the command's contract on the handler's first read, so a
handler's own role check (``uow.authorise``) still answers first. The REST API
publishes each contract's JSON schema (``Contract.model_json_schema``) as the
request body of ``POST /api/v1/commands/<name>`` (docs/api.md).

Nested shapes (one milestone of a profile, one instalment, one share) are
published here and read by their handlers, which name the element at fault
("milestones[2].due: ...").
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from engine.domain import fields
from engine.domain.errors import ValidationError
from engine.domain.fields import (
    DATE_SCHEMA,
    POUNDS_SCHEMA,
    Choice,
    FieldProblem,
    Integer,
    Items,
    Mapping,
    Pence,
    Raw,
    Text,
    UKDate,
    YesNo,
)
from engine.store.models import OrgKind, Role

# choices shared with the handlers that act on them
OUTCOMES = ("approve", "reject", "defer", "refer_back")  # a Board decision on a bid
BASES = ("equal", "population", "explicit")  # how a deposit is shared between partners
KINDS = ("savings", "progress", "monitoring", "benefits")  # kinds of return
VERSION = "version"  # taken by every command: the version of the item the caller saw

_VERSION_SCHEMA = {
    "anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\s*[-+]?[0-9]+\s*$"}],
    "description": "the version of the item you read: refused with 409 if it has changed since",
}


def _schema_extra(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The published schema: required fields listed, ``version`` added, nothing else."""
    contract: type[Contract] = model  # type: ignore[assignment]
    props = schema.setdefault("properties", {})
    for prop in props.values():
        prop.pop("default", None)
        prop.pop("title", None)
    props[VERSION] = {"anyOf": [_VERSION_SCHEMA, {"type": "null"}, {"const": ""}]}
    schema["required"] = list(contract.required_fields)
    if not schema["required"]:
        del schema["required"]
    schema["additionalProperties"] = False
    schema["title"] = model.__name__
    if contract.command:
        schema["description"] = f"The arguments of {contract.command}."


class Contract(BaseModel):
    """A command's arguments. Subclasses declare ``command`` and their fields."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_schema_extra)

    command: ClassVar[str] = ""
    wire_names: ClassVar[dict[str, str]] = {}  # Python name -> the argument's name
    renamed: ClassVar[tuple[tuple[str, str], ...]] = ()  # (return_, return)
    required_fields: ClassVar[tuple[str, ...]] = ()
    known: ClassVar[str] = ""  # the argument names, for the refusal of an unknown one

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.wire_names = {name: f.alias or name for name, f in cls.model_fields.items()}
        cls.renamed = tuple((a, w) for a, w in cls.wire_names.items() if a != w)
        cls.known = ", ".join(sorted(cls.wire_names.values()))
        required = []
        for name, f in cls.model_fields.items():
            spec = next(m for m in f.metadata if isinstance(m, fields.Spec))
            wire = cls.wire_names[name]
            if spec.name not in ("", wire):
                raise ValueError(f"{cls.__name__}.{name}: its field is {spec.name}'s already")
            spec.name = wire
            if spec.required:
                required.append(wire)
        cls.required_fields = tuple(required)
        if cls.command:
            if cls.command in CONTRACTS:
                raise ValueError(f"two contracts for {cls.command}")
            CONTRACTS[cls.command] = cls

    @classmethod
    def read(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Every argument, typed, by its name (``version`` only if given); a
        ValidationError naming the first field at fault, in the order declared."""
        try:
            # FieldProblem is no ValueError: it leaves pydantic at once (engine/domain/fields.py)
            model = cls.model_validate(data)
            values = dict(model.__dict__)
            for attr, wire in cls.renamed:
                values[wire] = values.pop(attr)
            extra = model.__pydantic_extra__
            if extra:
                version = fields.integer(extra.get(VERSION), VERSION, required=False)
                unknown = sorted(str(k) for k in extra if k != VERSION)
                if unknown:
                    raise FieldProblem(
                        unknown[0],
                        f"unknown field(s) {', '.join(unknown)}; this command takes: {cls.known}",
                    )
                if version is not None:
                    values[VERSION] = version
        except FieldProblem as problem:
            raise ValidationError(f"{cls.command}: {problem.detail}", field=problem.field) from None
        return values


CONTRACTS: dict[str, type[Contract]] = {}


def read(command: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """``data`` read through ``command``'s contract (ValidationError naming the field)."""
    return CONTRACTS[command].read(data or {})


# ---------------------------------------------------------------- shapes read by handlers

_NAME = {"type": ["string", "number"]}
_NAMES_TEXT = "a list of names, or as text separated by ';'"
MILESTONE = {
    "type": "object",
    "properties": {
        "outcome": {
            "type": ["string", "number", "boolean"],
            "description": "text, at most 1000 characters",
        },
        "due": DATE_SCHEMA,
        "payment": POUNDS_SCHEMA,
    },
    "required": ["outcome", "due", "payment"],
    "additionalProperties": False,
}
INSTALMENT = {
    "type": "object",
    "properties": {"due": DATE_SCHEMA, "amount": POUNDS_SCHEMA},
    "required": ["due", "amount"],
    "additionalProperties": False,
}
_TRISTATE = {
    "anyOf": [{"type": "boolean"}, {"type": "string"}, {"type": "null"}],
    "description": "yes, no or not stated ('No (others have expressed interest)' is no)",
}
_COUNT_OR_NAMES = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^\s*[+]?[0-9]+\s*$"},
        {"type": "array", "items": _NAME},
    ]
}
_VOTES = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "for": _COUNT_OR_NAMES,
                "against": _COUNT_OR_NAMES,
                "abstain": _COUNT_OR_NAMES,
            },
            "additionalProperties": False,
        },
        {"type": "null"},
        {"const": ""},
    ],
    "description": "counts {for: 5, against: 2} or names {for: [...], against: [...]}",
}
_FILES = {"type": "string", "minLength": 1, "maxLength": 300}
_MILESTONES = Items(
    MILESTONE,
    text_items=False,
    description="the funding profile: its payments add up to the grant",
)


# ---------------------------------------------------------------- programme and directory


class CreateProgramme(Contract):
    command = "create_programme"
    name: Annotated[str, Text(200)]
    pots: Annotated[
        dict[str, Any], Mapping(POUNDS_SCHEMA, description="each pot's allocation {pot: amount}")
    ]
    starts_on: Annotated[dt.date | None, UKDate(required=False)]
    ends_on: Annotated[dt.date | None, UKDate(required=False)]
    ratified_by: Annotated[str, Text(required=False, default="establishment of the programme")]


class RatifyProgrammeChange(Contract):
    command = "ratify_programme_change"
    programme: Annotated[str, Text(required=False)]
    pots: Annotated[
        dict[str, Any],
        Mapping(POUNDS_SCHEMA, description="each pot's new allocation {pot: amount}"),
    ]
    ratified_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(2000)]


class RegisterOrganisation(Contract):
    command = "register_organisation"
    name: Annotated[str, Text(200)]
    kind: Annotated[str, Choice([k.value for k in OrgKind], default=OrgKind.OTHER.value)]
    aliases: Annotated[list[Any], Items(description=_NAMES_TEXT)]
    email: Annotated[str, Text(required=False)]
    population: Annotated[int | None, Integer(required=False, minimum=1)]


class RegisterPerson(Contract):
    command = "register_person"
    name: Annotated[str, Text(200)]
    email: Annotated[str, Text(254)]
    roles: Annotated[
        list[Any],
        Items(required=True, description=f"roles: {', '.join(r.value for r in Role)}"),
    ]
    organisation: Annotated[str, Text(required=False)]
    reason: Annotated[
        str, Text(2000, required=False, description="why (a privileged role needs approval)")
    ]


class SetPassword(Contract):
    command = "set_password"
    email: Annotated[
        str, Text(254, required=False, description="whose password (default: your own)")
    ]
    password: Annotated[Any, Raw({"type": "string", "minLength": 1}, required=True)]
    current_password: Annotated[
        Any, Raw({"description": "your current password, to change your own"})
    ]


class RequestPasswordReset(Contract):
    command = "request_password_reset"
    email: Annotated[
        str, Text(254, required=False, description="whose password (default: your own)")
    ]


class ResetPassword(Contract):
    command = "reset_password"
    token: Annotated[str, Text(200, description="the token of the link emailed to you")]
    password: Annotated[Any, Raw({"type": "string", "minLength": 1}, required=True)]


_ROLES_TEXT = f"roles: {', '.join(r.value for r in Role)}"


class ChangeRoles(Contract):
    command = "change_roles"
    email: Annotated[str, Text(254, description="whose roles")]
    add: Annotated[list[Any], Items(description=_ROLES_TEXT)]
    remove: Annotated[list[Any], Items(description=_ROLES_TEXT)]
    reason: Annotated[str, Text(2000, required=False)]


class ApproveRoleChange(Contract):
    command = "approve_role_change"
    item: Annotated[str, Text(40, description="the role change (RC-0001)")]
    reason: Annotated[str, Text(2000, required=False)]


class RefuseRoleChange(Contract):
    command = "refuse_role_change"
    item: Annotated[str, Text(40, description="the role change (RC-0001)")]
    reason: Annotated[str, Text(2000)]


class WithdrawRoleChange(Contract):
    command = "withdraw_role_change"
    item: Annotated[str, Text(40, description="the role change (RC-0001)")]
    reason: Annotated[str, Text(2000, required=False)]


class ExpireRoleChanges(Contract):
    command = "expire_role_changes"


class CreateApiToken(Contract):
    command = "create_api_token"
    email: Annotated[str, Text(254, required=False, description="whose token (default: your own)")]
    name: Annotated[str, Text(100, required=False)]
    token_sha256: Annotated[str, Text(64, description="the SHA-256 of the token, in hex")]


class RevokeApiToken(Contract):
    command = "revoke_api_token"
    token: Annotated[int, Integer(minimum=1)]


# ---------------------------------------------------------------- bids and rounds


class SubmitBid(Contract):
    command = "submit_bid"
    ref: Annotated[str, Text(40, required=False)]
    title: Annotated[str, Text(300)]
    sponsor: Annotated[str, Text(200)]
    grant: Annotated[int, Pence()]
    savings: Annotated[
        str, Text(500, required=False, description="the savings as written, e.g. '£2m a year'")
    ]
    partners: Annotated[list[Any], Items(description=_NAMES_TEXT)]
    partnership: Annotated[Any, Raw(_TRISTATE)]
    builds_on_proven: Annotated[Any, Raw(_TRISTATE)]
    invest_to_save: Annotated[bool, YesNo()]
    pot: Annotated[str, Text(required=False)]
    round: Annotated[str, Text(40, required=False)]
    milestones: Annotated[list[Any], _MILESTONES]
    published_points: Annotated[int | None, Integer(required=False, minimum=0)]


class AmendBid(Contract):
    command = "amend_bid"
    ref: Annotated[str, Text()]
    title: Annotated[str | None, Text(300, if_given=True)]
    grant: Annotated[int | None, Pence(required=False)]
    savings: Annotated[str, Text(500, required=False)]
    builds_on_proven: Annotated[Any, Raw(_TRISTATE)]
    partnership: Annotated[Any, Raw(_TRISTATE)]
    invest_to_save: Annotated[bool, YesNo()]
    pot: Annotated[str | None, Text(if_given=True)]
    partners: Annotated[list[Any], Items(description=_NAMES_TEXT)]
    milestones: Annotated[list[Any], _MILESTONES]
    reason: Annotated[str, Text(2000, required=False)]


class WithdrawBid(Contract):
    command = "withdraw_bid"
    ref: Annotated[str, Text()]
    reason: Annotated[str, Text(2000)]


class ResubmitBid(Contract):
    command = "resubmit_bid"
    ref: Annotated[str, Text()]
    note: Annotated[str, Text(2000, required=False)]


class OpenRound(Contract):
    command = "open_round"
    name: Annotated[str, Text(200)]
    pot: Annotated[str, Text()]
    closes: Annotated[dt.date, UKDate()]
    opens: Annotated[dt.date | None, UKDate(required=False, description="a date (default today)")]
    rules: Annotated[str, Text(300, description="the scoring rule set")]
    cap: Annotated[int | None, Pence(required=False)]
    ref: Annotated[str, Text(40, required=False)]


class CloseRound(Contract):
    command = "close_round"
    round: Annotated[str, Text()]


class ScoreRound(Contract):
    command = "score_round"
    round: Annotated[str, Text()]
    rules: Annotated[str, Text(300, required=False)]


class OverrideScore(Contract):
    command = "override_score"
    ref: Annotated[str, Text()]
    criterion: Annotated[str, Text(100)]
    points: Annotated[int, Integer(minimum=0)]
    reason: Annotated[str, Text(2000)]


# ---------------------------------------------------------------- meetings and delegation


class ScheduleMeeting(Contract):
    command = "schedule_meeting"
    title: Annotated[str, Text(200)]
    date: Annotated[dt.date, UKDate()]
    quorum: Annotated[int, Integer(minimum=1)]
    members: Annotated[list[Any], Items(required=True, description=_NAMES_TEXT)]
    ref: Annotated[str, Text(40, required=False)]
    programme: Annotated[str, Text(required=False)]


class RecordAttendance(Contract):
    command = "record_attendance"
    meeting: Annotated[str, Text()]
    present: Annotated[list[Any], Items(required=True, description=_NAMES_TEXT)]


class DeclareInterest(Contract):
    command = "declare_interest"
    meeting: Annotated[str, Text()]
    item: Annotated[str, Text(40)]
    nature: Annotated[str, Text(1000)]
    member: Annotated[str, Text(required=False)]


class Decide(Contract):
    command = "decide"
    meeting: Annotated[str, Text()]
    item: Annotated[str, Text(40)]
    outcome: Annotated[str, Choice(OUTCOMES)]
    amount: Annotated[int | None, Pence(required=False)]
    reasons: Annotated[str, Text(4000, required=False)]
    missing: Annotated[str, Text(4000, required=False)]
    votes: Annotated[Any, Raw(_VOTES)]


class ReverseDecision(Contract):
    command = "reverse_decision"
    decision: Annotated[str, Text(40)]
    reason: Annotated[str, Text(4000)]


class AddAction(Contract):
    command = "add_action"
    meeting: Annotated[str, Text()]
    what: Annotated[str, Text(2000)]
    owner: Annotated[str, Text(200)]
    due: Annotated[dt.date | None, UKDate(required=False)]


class CloseMeeting(Contract):
    command = "close_meeting"
    meeting: Annotated[str, Text()]


class RequestDelegatedDecision(Contract):
    command = "request_delegated_decision"
    bid: Annotated[str, Text(40)]
    amount: Annotated[int | None, Pence(required=False)]
    pot: Annotated[str, Text(200, required=False)]
    reasons: Annotated[str, Text(4000)]
    alternatives: Annotated[str, Text(4000)]
    title: Annotated[str, Text(200, required=False)]
    scheme: Annotated[str, Text(1000, required=False)]
    ref: Annotated[str, Text(40, required=False)]


class Sign(Contract):
    command = "sign"
    item: Annotated[str, Text(40)]
    decision: Annotated[str, Choice(("approve", "decline"))]
    interest: Annotated[str, Text(1000, required=False)]
    reason: Annotated[str, Text(4000, required=False)]


class ExpireDelegatedDecisions(Contract):
    command = "expire_delegated_decisions"
    as_of: Annotated[dt.date | None, UKDate(required=False, description="a date (default today)")]


class Endorse(Contract):
    command = "endorse"
    meeting: Annotated[str, Text()]
    item: Annotated[str, Text(40)]


# ---------------------------------------------------------------- grants


class SubmitEvidence(Contract):
    command = "submit_evidence"
    grant: Annotated[str, Text(40)]
    milestone: Annotated[int, Integer(minimum=1)]
    summary: Annotated[str, Text(8000)]
    files: Annotated[
        list[Any],
        Items(_FILES, text_items=True, description="file names (at most 300 characters each)"),
    ]


class VerifyMilestone(Contract):
    command = "verify_milestone"
    grant: Annotated[str, Text(40)]
    milestone: Annotated[int, Integer(minimum=1)]
    note: Annotated[str, Text(4000, required=False)]


class RejectEvidence(Contract):
    command = "reject_evidence"
    grant: Annotated[str, Text(40)]
    milestone: Annotated[int, Integer(minimum=1)]
    reason: Annotated[str, Text(4000)]


class ReleasePayment(Contract):
    command = "release_payment"
    grant: Annotated[str, Text(40)]
    milestone: Annotated[int, Integer(minimum=1)]
    amount: Annotated[
        int | None, Pence(required=False, description="default: the milestone's payment")
    ]


class ReprofileMilestone(Contract):
    command = "reprofile_milestone"
    grant: Annotated[str, Text(40)]
    milestone: Annotated[int, Integer(minimum=1)]
    due: Annotated[dt.date | None, UKDate(required=False)]
    amount: Annotated[int | None, Pence(required=False, allow_zero=True)]
    outcome: Annotated[str, Text(1000, required=False)]
    approved_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(4000, required=False)]


class AddMilestone(Contract):
    command = "add_milestone"
    grant: Annotated[str, Text(40)]
    outcome: Annotated[str, Text(1000)]
    due: Annotated[dt.date, UKDate()]
    amount: Annotated[int, Pence()]
    approved_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(4000, required=False)]


class ExtendGrant(Contract):
    command = "extend_grant"
    grant: Annotated[str, Text(40)]
    months: Annotated[int | None, Integer(required=False, minimum=1)]
    until: Annotated[dt.date | None, UKDate(required=False)]
    approved_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(4000, required=False)]


class CloseGrant(Contract):
    command = "close_grant"
    grant: Annotated[str, Text(40)]
    reason: Annotated[str, Text(4000)]


# ---------------------------------------------------------------- returns and the sweep


class SubmitReturn(Contract):
    command = "submit_return"
    grant: Annotated[str, Text(40)]
    kind: Annotated[str, Choice(KINDS)]
    period_end: Annotated[dt.date, UKDate()]
    savings_delivered: Annotated[
        int | None, Pence(required=False, allow_zero=True, required_when=("kind", "savings"))
    ]
    savings_anticipated: Annotated[
        int | None, Pence(required=False, allow_zero=True, required_when=("kind", "savings"))
    ]
    due: Annotated[dt.date | None, UKDate(required=False)]


class AcceptReturn(Contract):
    command = "accept_return"
    return_: Annotated[str, Text(40)] = Field(alias="return")


class QueryReturn(Contract):
    command = "query_return"
    return_: Annotated[str, Text(40)] = Field(alias="return")
    reason: Annotated[str, Text(4000)]


class Sweep(Contract):
    command = "sweep"
    as_of: Annotated[dt.date | None, UKDate(required=False, description="a date (default today)")]
    returns_rules: Annotated[str, Text(1000, required=False)]
    reminder_rules: Annotated[str, Text(1000, required=False)]


# ---------------------------------------------------------------- repayments and recovery


class SetRepaymentSchedule(Contract):
    command = "set_repayment_schedule"
    grant: Annotated[str, Text(40)]
    instalments: Annotated[list[Any], Items(INSTALMENT, required=True, text_items=False)]


class RescheduleRepayments(Contract):
    command = "reschedule_repayments"
    grant: Annotated[str, Text(40)]
    instalments: Annotated[list[Any], Items(INSTALMENT, required=True, text_items=False)]
    approved_by: Annotated[str, Text(500)]
    reason: Annotated[str, Text(4000)]


class RecordRepayment(Contract):
    command = "record_repayment"
    grant: Annotated[str, Text(40)]
    amount: Annotated[int, Pence()]
    received_on: Annotated[
        dt.date | None, UKDate(required=False, description="a date (default today)")
    ]


class LodgeDeposit(Contract):
    command = "lodge_deposit"
    grant: Annotated[str, Text(40, required=False)]
    pot: Annotated[str, Text(200, required=False)]
    amount: Annotated[int, Pence()]
    basis: Annotated[str, Choice(BASES)]
    target: Annotated[int, Pence()]
    target_date: Annotated[dt.date, UKDate()]
    purpose: Annotated[str, Text(2000, required=False)]
    partners: Annotated[list[Any], Items(description=_NAMES_TEXT)]
    shares: Annotated[
        dict[str, Any],
        Mapping(
            POUNDS_SCHEMA,
            required=False,
            required_when=("basis", "explicit"),
            description="basis explicit: {authority: amount}",
        ),
    ]


class SettleDeposit(Contract):
    command = "settle_deposit"
    deposit: Annotated[str, Text(40)]


class DemandRefund(Contract):
    command = "demand_refund"
    grant: Annotated[str, Text(40)]
    amount: Annotated[int | None, Pence(required=False, description="default: everything paid")]
    reason: Annotated[str, Text(4000)]
    authority: Annotated[str, Text(500)]


class RecordRecovery(Contract):
    command = "record_recovery"
    recovery: Annotated[str, Text(40)]
    amount: Annotated[int, Pence()]
    received_on: Annotated[
        dt.date | None, UKDate(required=False, description="a date (default today)")
    ]


class WriteOff(Contract):
    command = "write_off"
    recovery: Annotated[str, Text(40)]
    approved_by: Annotated[str, Text(500)]
    reason: Annotated[str, Text(4000)]
