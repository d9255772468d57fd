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

Money and text as the API takes them (docs/security.md "Input limits",
docs/api.md): every amount in pounds (``amount``) may instead be given in
integer pence under ``amount_pence`` (not both); the REST API refuses a bare
JSON number where pounds are meant (:func:`refuse_numbers_as_pounds`: is 1250
pounds or pence?), while the CLI and scenario files may still write 1250 for
£1,250. Every text is clean (engine/domain/fields.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from engine.domain import fields
from engine.domain.errors import ValidationError
from engine.domain.fields import (
    DATE_SCHEMA,
    PENCE_SCHEMA,
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
from engine.domain.words import RETURN_KINDS
from engine.store.models import OrgKind, Role

# choices shared with the handlers that act on them
OUTCOMES = ("approve", "reject", "defer", "refer_back")  # a Board decision on a bid
BASES = ("equal", "population", "explicit")  # how a deposit is shared between partners
KINDS = RETURN_KINDS  # kinds of return (engine/domain/words.py, with their words)
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
    either = []
    for wire in contract.pounds_fields:
        pence_name = f"{wire}_pence"
        props[pence_name] = {
            "anyOf": [PENCE_SCHEMA, {"type": "null"}, {"const": ""}],
            "description": f"{wire} in integer pence (instead of {wire} in pounds)",
        }
        if wire in contract.required_fields:
            either.append({"anyOf": [{"required": [wire]}, {"required": [pence_name]}]})
    schema["required"] = [w for w in contract.required_fields if w not in contract.pounds_fields]
    if not schema["required"]:
        del schema["required"]
    if either:
        schema["allOf"] = either
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
    specs: ClassVar[dict[str, fields.Spec]] = {}  # the argument's name -> its field
    pounds_fields: ClassVar[tuple[str, ...]] = ()  # amounts in pounds: also <name>_pence

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.wire_names = {name: f.alias or name for name, f in cls.model_fields.items()}
        cls.renamed = tuple((a, w) for a, w in cls.wire_names.items() if a != w)
        required = []
        cls.specs = {}
        for name, f in cls.model_fields.items():
            spec = fields.spec_of(f)
            wire = cls.wire_names[name]
            if spec.name not in ("", wire):
                raise ValueError(f"{cls.__name__}.{name}: its field is {spec.name}'s already")
            spec.name = wire
            cls.specs[wire] = spec
            if spec.required:
                required.append(wire)
        cls.required_fields = tuple(required)
        cls.pounds_fields = tuple(w for w, spec in cls.specs.items() if spec.pounds)
        clash = {f"{w}_pence" for w in cls.pounds_fields} & set(cls.specs)
        if clash:
            raise ValueError(f"{cls.__name__}: {', '.join(sorted(clash))} is a field already")
        cls.known = ", ".join(
            sorted([*cls.wire_names.values(), *(f"{w}_pence" for w in cls.pounds_fields)])
        )
        if cls.command:
            if cls.command in CONTRACTS:
                raise ValueError(f"two contracts for {cls.command}")
            CONTRACTS[cls.command] = cls

    @classmethod
    def read(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Every argument, typed, by its name (``version`` only if given); a
        ValidationError naming the first field at fault, in the order declared."""
        if not isinstance(data, dict):
            raise ValidationError(
                f"{cls.command}: the arguments must be a mapping of name: value, "
                f"got {type(data).__name__}"
            )
        try:
            for key in data:  # pydantic cannot even hold a name with a lone surrogate
                if key not in cls.specs and (
                    not isinstance(key, str) or fields.text_problem(key, "") is not None
                ):
                    name = fields.shown(str(key))
                    raise FieldProblem(
                        name, f"unknown field {name}; this command takes: {cls.known}"
                    )
            if cls.pounds_fields:
                data = cls._given_in_pence(data)
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
                    # a name is shown as given only if it is clean text (a NUL, a lone
                    # surrogate would break the answer)
                    shown = [fields.shown(k) for k in unknown]
                    raise FieldProblem(
                        shown[0],
                        f"unknown field(s) {', '.join(shown)}; this command takes: {cls.known}",
                    )
                if version is not None:
                    values[VERSION] = version
        except FieldProblem as problem:
            raise ValidationError(f"{cls.command}: {problem.detail}", field=problem.field) from None
        return values

    @classmethod
    def _given_in_pence(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``amount_pence: 125000`` read as ``amount``, checked (0 to £1bn); not both."""
        for wire in cls.pounds_fields:
            pence_name = f"{wire}_pence"
            if pence_name not in data:
                continue
            given = data[pence_name]
            data = {k: v for k, v in data.items() if k != pence_name}
            if fields._missing(given):
                continue
            if not fields._missing(data.get(wire)):
                raise FieldProblem(
                    pence_name,
                    f"{pence_name}: give {wire} (in pounds) or {pence_name} (in pence), not both",
                )
            data[wire] = fields.pence_given(given, pence_name)
        return data


CONTRACTS: dict[str, type[Contract]] = {}


def refuse_numbers_as_pounds(command: str, data: dict[str, Any]) -> None:
    """The REST API's rule: an amount in pounds is a string ("1,250.00", "£1250"), or
    integer pence under ``<field>_pence``; a bare JSON number (1250: pounds or pence?) is
    refused, naming the field and the forms accepted. CLI and scenario files are not
    JSON and may write 1250 for £1,250."""
    contract = CONTRACTS[command]

    def check(value: Any, where: str, pence_name: str | None) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        instead = f", or integer pence as {pence_name} (125000 for £1,250)" if pence_name else ""
        raise ValidationError(
            f"{command}: {fields.shown(where)}: {value!r} is a bare number, pounds or pence? "
            f'give pounds as a string, e.g. "1,250.00" or "£1250"{instead}',
            field=where.split("[")[0].split(".")[0],
        )

    for wire, spec in contract.specs.items():
        value = data.get(wire)
        if spec.pounds:
            check(value, wire, f"{wire}_pence")
        elif spec.pounds_keys and isinstance(value, list):
            for i, element in enumerate(value, start=1):
                if isinstance(element, dict):
                    for key in spec.pounds_keys:
                        check(element.get(key), f"{wire}[{i}].{key}", None)
        elif spec.pounds_values and isinstance(value, dict):
            for key, element in value.items():
                check(element, f"{wire}.{key}", None)


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
PROGRESS_LINE = {  # one line of a return's progress (issue 13 item 6)
    "type": "object",
    "properties": {
        "line": {
            "type": ["string", "number"],
            "description": "the milestone or outcome, at most 300 characters",
        },
        "rag": {
            "type": "string",
            "description": "on_track, at_risk or off_track (or On track, At risk, Off track)",
        },
        "narrative": {"type": ["string", "number"], "description": "text, at most 4000 characters"},
    },
    "required": ["line", "rag", "narrative"],
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
        {"type": "string", "description": "names separated by ';'"},
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
_CONDITION = {
    "anyOf": [
        {"type": "string", "maxLength": 1000},
        {
            "type": "object",
            "properties": {
                "text": {"type": "string", "maxLength": 1000},
                "when": {"type": "string", "enum": ["before_first_payment", "during_delivery"]},
            },
            "required": ["text"],
            "additionalProperties": False,
        },
    ]
}
_CONDITIONS = {
    "anyOf": [
        {"type": "array", "items": _CONDITION},
        {"type": "string"},
        {"type": "null"},
    ],
    "description": "approve only: the conditions of the approval, a list (each text, or "
    "{text, when: before_first_payment (the default) | during_delivery}) or text with one "
    "condition per line",
}
_FILES = {"type": "string", "minLength": 1, "maxLength": 300}
_NAMES = {"anyOf": [{"type": "array", "items": _NAME}, {"type": "string"}]}
COUNTS = {  # what a savings target counts (issue 13, docs/repayments.md)
    "anyOf": [
        {
            "type": "object",
            "properties": {"grants": _NAMES, "councils": _NAMES, "partnership": _NAME},
            "additionalProperties": False,
        },
        {"type": "null"},
        {"const": ""},
    ],
    "description": "{grants: [refs], councils: [names], partnership: name}; default: the "
    "deposit's grant (or, against a pot, the partners' grants from it)",
}
_MILESTONES = Items(
    MILESTONE,
    text_items=False,
    description="the funding profile: its payments add up to the grant",
)
# fields of the same name in several contracts (one field object may serve one name only)
_OTP = Annotated[
    str,
    Text(
        20,
        required=False,
        description="the code your authenticator app shows now, when the programme "
        "requires a second factor for your role (docs/security.md)",
    ),
]
_RECEIVED_ON = Annotated[
    dt.date | None, UKDate(required=False, description="a date (default today)")
]


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
    second_factor: Annotated[
        Any,
        Raw(
            {
                "type": "object",
                "properties": {
                    "sign": {"type": ["array", "string"]},
                    "release_payment": {"type": ["array", "string"]},
                },
                "additionalProperties": False,
                "description": "roles that must give a second factor (TOTP) per action, "
                "e.g. {sign: [chair, vice_chair], release_payment: [finance]}; default none",
            }
        ),
    ]


class RatifyProgrammeChange(Contract):
    command = "ratify_programme_change"
    programme: Annotated[str, Text(required=False)]
    pots: Annotated[
        dict[str, Any],
        Mapping(POUNDS_SCHEMA, description="each pot's new allocation {pot: amount}"),
    ]
    ratified_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(2000, lines=True)]


# ---- partnership allocations (issue 13 item 4; docs/grants.md "Partnership allocations")

_SHARE = {
    "type": "object",
    "properties": {
        "pot": _NAME,
        "partnership": _NAME,
        "share": {"type": "string", "maxLength": 40},
    },
    "required": ["pot", "share"],
    "additionalProperties": False,
    "description": "a pot, the partnership whose allocation it is (none: a regional pot), and "
    "its share: a percentage ('70%') or a fixed amount in pounds ('£100,000')",
}


class SplitProgramme(Contract):
    command = "split_programme"
    programme: Annotated[str, Text(200, required=False)]
    amount: Annotated[int, Pence(description="the grant to split")]
    shares: Annotated[list[Any], Items(_SHARE, required=True, text_items=False)]
    ratified_by: Annotated[str, Text(300, description="the body and minute, e.g. 'Board 16 May "
                                     "2012, minute 6'")]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class ReturnUnderspend(Contract):
    command = "return_underspend"
    programme: Annotated[str, Text(200, required=False)]
    from_: Annotated[str, Text(200, description="the partnership allocation")] = Field(
        alias="from")
    to: Annotated[str, Text(200, description="a regional pot (made if new)")]
    amount: Annotated[int, Pence()]
    ratified_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class RingFence(Contract):
    command = "ring_fence"
    programme: Annotated[str, Text(200, required=False)]
    fund: Annotated[str, Text(200, description="the ring-fenced fund (a regional pot, made if "
                                               "new)")]
    contributions: Annotated[
        dict[str, Any],
        Mapping(POUNDS_SCHEMA, description="each contributing pot's fixed sum {pot: amount}"),
    ]
    ratified_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class SetSavingsTarget(Contract):
    command = "set_savings_target"
    grant: Annotated[str, Text(40, required=False, description="a grant (its invest-to-save "
                                                               "case)")]
    programme: Annotated[str, Text(200, required=False, description="or a whole programme")]
    target: Annotated[int, Pence(allow_zero=True)]
    target_date: Annotated[dt.date | None, UKDate(required=False,
                                                  description="the date it is due by")]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class RegisterOrganisation(Contract):
    command = "register_organisation"
    name: Annotated[str, Text(200)]
    kind: Annotated[str, Choice([k.value for k in OrgKind], default=OrgKind.OTHER.value)]
    aliases: Annotated[list[Any], Items(description=_NAMES_TEXT)]
    email: Annotated[str, Text(required=False)]
    population: Annotated[int | None, Integer(required=False, minimum=1)]
    org_id: Annotated[str, Text(120, required=False)]


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


class SignOutEverywhere(Contract):
    command = "sign_out_everywhere"
    email: Annotated[
        str,
        Text(254, required=False, description="whose web sessions end (default: your own)"),
    ]


class ConfirmSecondFactor(Contract):
    command = "confirm_second_factor"
    code: Annotated[str, Text(20, description="the code your authenticator app shows now")]


class RemoveSecondFactor(Contract):
    command = "remove_second_factor"
    email: Annotated[
        str, Text(254, required=False, description="whose second factor (default: your own)")
    ]
    otp: Annotated[
        str, Text(20, required=False, description="a current code, to remove your own")
    ]


class ConfigureSecondFactor(Contract):
    command = "configure_second_factor"
    programme: Annotated[str, Text(required=False)]
    sign: Annotated[
        list[str], Items(description="roles that must give a code to sign delegated decisions")
    ]
    release_payment: Annotated[
        list[str], Items(description="roles that must give a code to release payments")
    ]


# ---------------------------------------------------------------- bids and rounds


class SubmitBid(Contract):
    command = "submit_bid"
    ref: Annotated[str, Text(40, required=False)]
    title: Annotated[str, Text(300)]
    sponsor: Annotated[str, Text(200)]
    grant: Annotated[int, Pence()]
    savings: Annotated[
        str,
        Text(
            500,
            required=False,
            lines=True,
            description="the savings as written, e.g. '£2m a year'",
        ),
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
    savings: Annotated[str, Text(500, required=False, lines=True)]
    builds_on_proven: Annotated[Any, Raw(_TRISTATE)]
    partnership: Annotated[Any, Raw(_TRISTATE)]
    invest_to_save: Annotated[bool, YesNo()]
    pot: Annotated[str | None, Text(if_given=True)]
    partners: Annotated[list[Any], Items(description=_NAMES_TEXT)]
    milestones: Annotated[list[Any], _MILESTONES]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class WithdrawBid(Contract):
    command = "withdraw_bid"
    ref: Annotated[str, Text()]
    reason: Annotated[str, Text(2000, lines=True)]


class ResubmitBid(Contract):
    command = "resubmit_bid"
    ref: Annotated[str, Text()]
    note: Annotated[str, Text(2000, required=False, lines=True)]


class OpenRound(Contract):
    command = "open_round"
    name: Annotated[str, Text(200)]
    pot: Annotated[str, Text()]
    closes: Annotated[dt.date, UKDate()]
    opens: Annotated[dt.date | None, UKDate(required=False, description="a date (default today)")]
    rules: Annotated[str, Text(300, description="the scoring rule set")]
    cap: Annotated[int | None, Pence(required=False)]
    ref: Annotated[str, Text(40, required=False)]
    scoring: Annotated[
        str,
        Choice(
            ("required", "optional"),
            default="required",
            description="required (default): its bids are scored before a decision; "
            "optional: the Board may decide them unscored",
        ),
    ]


class CloseRound(Contract):
    command = "close_round"
    round: Annotated[str, Text()]


class ScoreRound(Contract):
    command = "score_round"
    round: Annotated[str, Text()]
    rules: Annotated[str, Text(300, required=False)]


class UploadRuleSet(Contract):
    command = "upload_rule_set"
    body: Annotated[
        str,
        Text(
            256 * 1024,
            lines=True,
            description="the rule set's YAML (docs/rules.md); stored as a new version",
        ),
    ]


class OverrideScore(Contract):
    command = "override_score"
    ref: Annotated[str, Text()]
    criterion: Annotated[str, Text(100)]
    points: Annotated[int, Integer(minimum=0)]
    reason: Annotated[str, Text(2000, lines=True)]


# ---------------------------------------------------------------- meetings and delegation


class ScheduleMeeting(Contract):
    command = "schedule_meeting"
    title: Annotated[str, Text(200)]
    date: Annotated[dt.date, UKDate()]
    quorum: Annotated[int, Integer(minimum=1)]
    members: Annotated[list[Any], Items(required=True, description=_NAMES_TEXT)]
    ref: Annotated[str, Text(40, required=False)]
    programme: Annotated[str, Text(required=False)]
    standing_orders: Annotated[str, Text(300, required=False, description=(
        "the standing orders (rules/<name>.yaml or a path); default rules/standing_orders.yaml"))]


class RecordAttendance(Contract):
    command = "record_attendance"
    meeting: Annotated[str, Text()]
    present: Annotated[list[Any], Items(required=True, description=_NAMES_TEXT)]
    apologies: Annotated[list[Any], Items(description="members who sent apologies")]
    substitutes: Annotated[dict[str, Any], Mapping(
        {"type": "string"}, required=False,
        description="{substitute: the member they attend for}")]
    observers: Annotated[list[Any], Items(description="people attending who are not members")]
    chair: Annotated[str, Text(required=False, description="who took the chair")]


class DeclareInterest(Contract):
    command = "declare_interest"
    meeting: Annotated[str, Text()]
    item: Annotated[str, Text(40)]
    nature: Annotated[str, Text(1000, lines=True)]
    member: Annotated[str, Text(required=False)]


class Decide(Contract):
    command = "decide"
    meeting: Annotated[str, Text()]
    item: Annotated[str, Text(40)]
    outcome: Annotated[str, Choice(OUTCOMES)]
    amount: Annotated[int | None, Pence(required=False)]
    reasons: Annotated[str, Text(4000, required=False, lines=True, description=(
        "the Board's reasons; for a referral back, default 'The Board referred it back.'"))]
    missing: Annotated[str, Text(4000, required=False, lines=True, description=(
        "what the Board asks the sponsor to supply; required to refer back"))]
    votes: Annotated[Any, Raw(_VOTES)]
    casting: Annotated[str, Choice(("for", "against"), default="", description=(
        "the Chair's casting vote on an equality of votes, where the standing orders grant one"))]
    to_meeting: Annotated[str, Text(40, required=False, description=(
        "refer_back: the later meeting the bid comes back to (default: the next one)"))]
    conditions: Annotated[Any, Raw(_CONDITIONS)]


class DischargeCondition(Contract):
    command = "discharge_condition"
    grant: Annotated[str, Text(40)]
    n: Annotated[int, Integer(minimum=1, description="the condition's number on the grant")]
    evidence: Annotated[str, Text(4000, lines=True, description=(
        "what shows the condition is met (a document, a letter, a confirmation)"))]
    note: Annotated[str, Text(2000, required=False, lines=True)]


class ReverseDecision(Contract):
    command = "reverse_decision"
    decision: Annotated[str, Text(40)]
    reason: Annotated[str, Text(4000, lines=True)]


class AddAction(Contract):
    command = "add_action"
    meeting: Annotated[str, Text()]
    what: Annotated[str, Text(2000, lines=True)]
    owner: Annotated[str, Text(200)]
    due: Annotated[dt.date | None, UKDate(required=False)]


class RecordAction(Contract):
    command = "record_action"
    meeting: Annotated[str, Text()]
    what: Annotated[str, Text(2000, lines=True)]
    owner: Annotated[str, Text(200)]
    owner_kind: Annotated[
        str, Choice(("person", "partnership", "organisation"), default="person")
    ]
    due: Annotated[dt.date | None, UKDate(required=False)]
    target_meeting: Annotated[str, Text(40, required=False)]


class CloseAction(Contract):
    command = "close_action"
    action: Annotated[str, Text(60)]
    outcome: Annotated[str, Choice(("done", "dropped"))]
    reason: Annotated[str, Text(2000, lines=True)]  # kept as the action's note


class MoveAction(Contract):
    command = "move_action"
    action: Annotated[str, Text(60)]
    due: Annotated[dt.date | None, UKDate(required=False)]
    target_meeting: Annotated[str, Text(40, required=False)]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class CloseMeeting(Contract):
    command = "close_meeting"
    meeting: Annotated[str, Text()]


class RequestDelegatedDecision(Contract):
    command = "request_delegated_decision"
    bid: Annotated[str, Text(40)]
    amount: Annotated[int | None, Pence(required=False)]
    pot: Annotated[str, Text(200, required=False)]
    reasons: Annotated[str, Text(4000, lines=True)]
    alternatives: Annotated[str, Text(4000, lines=True)]
    title: Annotated[str, Text(200, required=False)]
    scheme: Annotated[str, Text(1000, required=False, lines=True)]
    route: Annotated[
        str, Text(40, required=False, description="a route of the scheme (default: its default)")
    ]
    ref: Annotated[str, Text(40, required=False)]
    conditions: Annotated[Any, Raw(_CONDITIONS)]


class Sign(Contract):
    command = "sign"
    item: Annotated[str, Text(40)]
    decision: Annotated[str, Choice(("approve", "decline"))]
    interest: Annotated[str, Text(1000, required=False, lines=True)]
    reason: Annotated[str, Text(4000, required=False, lines=True)]
    otp: _OTP


class ExpireDelegatedDecisions(Contract):
    command = "expire_delegated_decisions"
    as_of: Annotated[dt.date | None, UKDate(required=False, description="a date (default today)")]


class Endorse(Contract):
    command = "endorse"
    meeting: Annotated[str, Text()]
    item: Annotated[str, Text(40)]


class EndorseSeveral(Contract):
    command = "endorse_several"
    meeting: Annotated[str, Text()]
    items: Annotated[
        list[Any],
        Items(required=True, description="the delegated decisions (DD refs) to endorse together"),
    ]


# ---------------------------------------------------------------- grants


class _OnMilestone(Contract):
    """The first fields of a command on one milestone of a grant (a base: no command)."""

    grant: Annotated[str, Text(40)]
    milestone: Annotated[int, Integer(minimum=1)]


class SubmitEvidence(_OnMilestone):
    command = "submit_evidence"
    summary: Annotated[str, Text(8000, lines=True)]
    files: Annotated[
        list[Any],
        Items(_FILES, text_items=True, description="file names (at most 300 characters each)"),
    ]


class VerifyMilestone(_OnMilestone):
    command = "verify_milestone"
    note: Annotated[str, Text(4000, required=False, lines=True)]


class RejectEvidence(_OnMilestone):
    command = "reject_evidence"
    reason: Annotated[str, Text(4000, lines=True)]


class ReleasePayment(_OnMilestone):
    command = "release_payment"
    amount: Annotated[
        int | None, Pence(required=False, description="default: the milestone's payment")
    ]
    otp: _OTP


class ReprofileMilestone(_OnMilestone):
    command = "reprofile_milestone"
    due: Annotated[dt.date | None, UKDate(required=False)]
    amount: Annotated[int | None, Pence(required=False, allow_zero=True)]
    outcome: Annotated[str, Text(1000, required=False)]
    approved_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(4000, required=False, lines=True)]


class AddMilestone(Contract):
    command = "add_milestone"
    grant: Annotated[str, Text(40)]
    outcome: Annotated[str, Text(1000)]
    due: Annotated[dt.date, UKDate()]
    amount: Annotated[int, Pence()]
    approved_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(4000, required=False, lines=True)]


class ExtendGrant(Contract):
    command = "extend_grant"
    grant: Annotated[str, Text(40)]
    months: Annotated[int | None, Integer(required=False, minimum=1)]
    until: Annotated[dt.date | None, UKDate(required=False)]
    approved_by: Annotated[str, Text(300)]
    reason: Annotated[str, Text(4000, required=False, lines=True)]


class CloseGrant(Contract):
    command = "close_grant"
    grant: Annotated[str, Text(40)]
    reason: Annotated[str, Text(4000, lines=True)]


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
    # issue 13 item 6: what a progress or monitoring return reports (PROGRESS_LINE)
    progress: Annotated[list[Any], Items(PROGRESS_LINE, text_items=False, description=(
        "progress per milestone or outcome: {line, rag: on_track / at_risk / off_track, "
        "narrative}, for kinds whose schedule reports progress"))]
    spend: Annotated[int | None, Pence(required=False, allow_zero=True,
                                       description="spend to date (pounds)")]
    issues: Annotated[str, Text(4000, required=False, lines=True)]
    risks: Annotated[str, Text(4000, required=False, lines=True)]


class AcceptReturn(Contract):
    command = "accept_return"
    return_: Annotated[str, Text(40)] = Field(alias="return")


class QueryReturn(Contract):
    command = "query_return"
    return_: Annotated[str, Text(40)] = Field(alias="return")
    reason: Annotated[str, Text(4000, lines=True)]


class Sweep(Contract):
    command = "sweep"
    as_of: Annotated[dt.date | None, UKDate(required=False, description="a date (default today)")]
    returns_rules: Annotated[str, Text(1000, required=False)]
    reminder_rules: Annotated[str, Text(1000, required=False)]
    release: Annotated[str, Choice(("now", "in_chunks"), default="now", description=(
        "release the sweep's messages now, or leave them to sweep_release chunks"))]


class SweepChunk(Contract):
    command = "sweep_chunk"
    as_of: Annotated[dt.date | None, UKDate(required=False, description="a date (default today)")]
    returns_rules: Annotated[str, Text(1000, required=False)]
    reminder_rules: Annotated[str, Text(1000, required=False)]
    grants: Annotated[int | None, Integer(required=False, minimum=1, description=(
        "at most this many grants (default and most: QUORUM_SWEEP_CHUNK)"))]


class SweepRelease(Contract):
    command = "sweep_release"
    rows: Annotated[int | None, Integer(required=False, minimum=1, description=(
        "at most this many messages (default 10 x QUORUM_SWEEP_CHUNK)"))]


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
    reason: Annotated[str, Text(4000, lines=True)]


class RecordRepayment(Contract):
    command = "record_repayment"
    grant: Annotated[str, Text(40)]
    amount: Annotated[int, Pence()]
    received_on: _RECEIVED_ON


class LodgeDeposit(Contract):
    command = "lodge_deposit"
    grant: Annotated[str, Text(40, required=False)]
    pot: Annotated[str, Text(200, required=False)]
    amount: Annotated[int, Pence()]
    basis: Annotated[str, Choice(BASES)]
    target: Annotated[int, Pence()]
    target_date: Annotated[dt.date, UKDate()]
    purpose: Annotated[str, Text(2000, required=False, lines=True)]
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
    counts: Annotated[Any, Raw(COUNTS)]  # issue 13: what the target counts
    ref: Annotated[str, Text(40, required=False, description="a reference of your own")]


class SettleDeposit(Contract):
    command = "settle_deposit"
    deposit: Annotated[str, Text(40)]


class DemandRefund(Contract):
    command = "demand_refund"
    grant: Annotated[str, Text(40)]
    amount: Annotated[int | None, Pence(required=False, description="default: everything paid")]
    reason: Annotated[str, Text(4000, lines=True)]
    authority: Annotated[str, Text(500)]


class RecordRecovery(Contract):
    command = "record_recovery"
    recovery: Annotated[str, Text(40)]
    amount: Annotated[int, Pence()]
    received_on: _RECEIVED_ON


class WriteOff(Contract):
    command = "write_off"
    recovery: Annotated[str, Text(40)]
    approved_by: Annotated[str, Text(500)]
    reason: Annotated[str, Text(4000, lines=True)]


# ---- publishing (issue 16)


class SetOrgIdentifier(Contract):
    command = "set_org_identifier"
    organisation: Annotated[str, Text(200)]
    org_id: Annotated[str, Text(120)]
    reason: Annotated[str, Text(1000, required=False)]


class PublishPapers(Contract):
    command = "publish_papers"
    meeting: Annotated[str, Text(40)]
# ---- meetings (issue 12)


class OrderAgenda(Contract):
    command = "order_agenda"
    meeting: Annotated[str, Text()]
    items: Annotated[list[Any], Items(
        description="agenda refs in the order taken; the rest follow in their natural order "
        "(or move one item instead)")]
    move: Annotated[str, Text(40, required=False, description=(
        "instead of items: the agenda item to move one place, the rest keeping their order"))]
    direction: Annotated[str, Choice(("up", "down"), default="", description=(
        "with move: up (taken earlier) or down (taken later)"))]


class AddReportItem(Contract):
    command = "add_report_item"
    meeting: Annotated[str, Text()]
    title: Annotated[str, Text(500)]
    presenter: Annotated[str, Text(200)]
    paper: Annotated[str, Text(500, required=False, description="a link to the paper")]


class RequireReport(Contract):
    command = "require_report"
    meeting: Annotated[str, Text()]
    title: Annotated[str, Text(500)]
    presenter: Annotated[str, Text(200)]
    for_meeting: Annotated[str, Text(40, required=False, description=(
        "the later meeting it is required for (default: the next meeting)"))]
# ---- risks and accountable bodies (issue 13)

_SCORE = "a risk score on the programme's scoring: 1-9 ('6'), or likelihood x impact ('3x2')"


class ConfigureRiskRegister(Contract):
    command = "configure_risk_register"
    programme: Annotated[str, Text(required=False)]
    scoring: Annotated[str, Choice(("score_1_9", "likelihood_x_impact"), default="score_1_9")]
    threshold: Annotated[
        int | None,
        Integer(required=False, minimum=1,
                description="residual score above which a risk goes to My work and the "
                "next meeting (1-9; leave out for none)"),
    ]


class RecordRisk(Contract):
    command = "record_risk"
    programme: Annotated[str, Text(required=False)]
    grant: Annotated[str, Text(40, required=False, description="a project-level risk: its grant")]
    description: Annotated[str, Text(4000, lines=True)]
    inherent: Annotated[str, Text(30, description=_SCORE)]
    owner: Annotated[str, Text(200)]
    owner_kind: Annotated[str, Choice(("person", "organisation"), default="person")]
    solution: Annotated[str, Text(4000, required=False, lines=True)]
    controls: Annotated[str, Text(4000, required=False, lines=True)]
    residual: Annotated[str, Text(30, description=_SCORE)]
    indicators: Annotated[str, Text(4000, required=False, lines=True)]
    review_on: Annotated[dt.date | None, UKDate(required=False)]


class UpdateRisk(Contract):
    command = "update_risk"
    risk: Annotated[str, Text(40, description="the risk (RK-0001)")]
    description: Annotated[str, Text(4000, required=False, lines=True)]
    inherent: Annotated[str, Text(30, required=False, description=_SCORE)]
    owner: Annotated[str, Text(200, required=False)]
    owner_kind: Annotated[str, Choice(("person", "organisation"), default="person")]
    solution: Annotated[str, Text(4000, required=False, lines=True)]
    controls: Annotated[str, Text(4000, required=False, lines=True)]
    residual: Annotated[str, Text(30, required=False, description=_SCORE)]
    indicators: Annotated[str, Text(4000, required=False, lines=True)]
    review_on: Annotated[dt.date | None, UKDate(required=False)]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class ReviewRisk(Contract):
    command = "review_risk"
    risk: Annotated[str, Text(40, description="the risk (RK-0001)")]
    meeting: Annotated[str, Text()]
    outcome: Annotated[str, Choice(("noted", "rescored", "closed"))]
    residual: Annotated[str, Text(30, required=False, description=_SCORE)]
    reason: Annotated[
        str, Text(2000, required=False, lines=True, description="kept as the review's note")
    ]
    next_review: Annotated[dt.date | None, UKDate(required=False)]


class CloseRisk(Contract):
    command = "close_risk"
    risk: Annotated[str, Text(40, description="the risk (RK-0001)")]
    reason: Annotated[str, Text(2000, lines=True)]


class ReopenRisk(Contract):
    command = "reopen_risk"
    risk: Annotated[str, Text(40, description="the risk (RK-0001)")]
    reason: Annotated[str, Text(2000, lines=True)]


class ProposeAccountableBody(Contract):
    command = "propose_accountable_body"
    partnership: Annotated[str, Text(200)]
    body: Annotated[str, Text(200, description="the council that receives the money")]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class ApproveAccountableBody(Contract):
    command = "approve_accountable_body"
    item: Annotated[str, Text(40, description="the proposal (ABC-0001)")]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class RefuseAccountableBody(Contract):
    command = "refuse_accountable_body"
    item: Annotated[str, Text(40, description="the proposal (ABC-0001)")]
    reason: Annotated[str, Text(2000, lines=True)]


class WithdrawAccountableBody(Contract):
    command = "withdraw_accountable_body"
    item: Annotated[str, Text(40, description="the proposal (ABC-0001)")]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class ConfigurePayments(Contract):
    command = "configure_payments"
    programme: Annotated[str, Text(required=False)]
    accountable_body_required: Annotated[
        bool,
        YesNo(description="no payment to a partnership's grant before it names its "
              "accountable body"),
    ]
    offer_acceptance_required: Annotated[
        bool,
        YesNo(description="no payment on a grant before its recipient accepts the offer "
              "letter (unchanged if left out)"),
    ]
    offer_template: Annotated[
        str, Text(60, required=False, description="the offer letter's template: "
                  "notifications/templates/offers/<name>.html (default)")]


# ---- offer letters (issue 16)

class AcceptOffer(Contract):
    command = "accept_offer"
    offer: Annotated[str, Text(40, description="the letter (OFF-G-0001-1)")]
    sha256: Annotated[str, Text(64, description="the SHA-256 of the letter as read")]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class DeclineOffer(Contract):
    command = "decline_offer"
    offer: Annotated[str, Text(40, description="the letter (OFF-G-0001-1)")]
    sha256: Annotated[str, Text(64, required=False,
                                description="the SHA-256 of the letter as read")]
    reason: Annotated[str, Text(2000, lines=True)]


class IssueOffer(Contract):
    command = "issue_offer"
    grant: Annotated[str, Text(40)]
    reason: Annotated[str, Text(2000, required=False, lines=True)]


class RequestAdvance(Contract):
    command = "request_advance"
    grant: Annotated[str, Text(40)]
    amount: Annotated[int, Pence()]
    reason: Annotated[str, Text(2000, lines=True)]


class ApproveAdvance(Contract):
    command = "approve_advance"
    item: Annotated[str, Text(40, description="the advance (ADV-0001)")]
    reason: Annotated[str, Text(2000, required=False, lines=True)]
    otp: Annotated[
        str,
        Text(20, required=False,
             description="the code your authenticator app shows now, when the programme "
             "requires a second factor to release payments"),
    ]


class RefuseAdvance(Contract):
    command = "refuse_advance"
    item: Annotated[str, Text(40, description="the advance (ADV-0001)")]
    reason: Annotated[str, Text(2000, lines=True)]


class WithdrawAdvance(Contract):
    command = "withdraw_advance"
    item: Annotated[str, Text(40, description="the advance (ADV-0001)")]
    reason: Annotated[str, Text(2000, required=False, lines=True)]
# ---- allocations (issue 12)

ALLOCATION_ITEM = {
    "type": "object",
    "properties": {
        "what": {
            "type": ["string", "number", "boolean"],
            "description": "text, at most 500 characters",
        },
        "cost": POUNDS_SCHEMA,
    },
    "required": ["what", "cost"],
    "additionalProperties": False,
}


class ProposeAllocation(Contract):
    command = "propose_allocation"
    ref: Annotated[str, Text(40, required=False)]
    purpose: Annotated[str, Text(300, description="what the money is for (its title)")]
    recipient: Annotated[
        str, Text(200, description="who receives it: a programme team, a council, a partnership")
    ]
    programme: Annotated[
        str, Text(200, required=False, description="the pot's programme, if the name is shared")
    ]
    pot: Annotated[str, Text(200, description="the budget line it comes from")]
    amount: Annotated[int, Pence()]
    reasons: Annotated[
        str, Text(4000, lines=True, description="the report's reasons and recommendation")
    ]
    items: Annotated[
        list[Any],
        Items(
            ALLOCATION_ITEM,
            text_items=False,
            description="itemised costs, e.g. a quarter's events with their estimated costs",
        ),
    ]
    milestones: Annotated[list[Any], _MILESTONES]
    due: Annotated[
        dt.date | None,
        UKDate(
            required=False,
            description="without milestones: when its one milestone is due (default: the end "
            "of the financial year)",
        ),
    ]


# ---- savings (issue 13)


class RestateReturn(Contract):
    command = "restate_return"
    return_: Annotated[str, Text(40)] = Field(alias="return")
    savings_delivered: Annotated[int, Pence(allow_zero=True)]
    reason: Annotated[str, Text(4000, lines=True)]
    reported_in: Annotated[
        str, Text(40, required=False, description="the later return that restated it")
    ]
# ---- delegation schemes (issue 12)


class StandAside(Contract):
    command = "stand_aside"
    item: Annotated[str, Text(40)]
    interest: Annotated[str, Text(1000, lines=True, description="the nature of the interest")]


class RecordAbsence(Contract):
    command = "record_absence"
    item: Annotated[str, Text(40)]
    person: Annotated[str, Text(200, description="the absent signatory: name or email")]
    reason: Annotated[str, Text(1000, lines=True)]


class AdoptScheme(Contract):
    command = "adopt_scheme"
    programme: Annotated[str, Text(200, required=False)]
    scheme: Annotated[str, Text(1000, description="a path, or a name in rules/")]
    minute: Annotated[str, Text(1000, required=False, lines=True)]


# ---- notifications, digests, the catch-up sweep (issue 14, docs/notifications.md)


class ConfirmCatchup(Contract):
    command = "confirm_catchup"


class MarkNotificationsRead(Contract):
    command = "mark_notifications_read"
    notification: Annotated[
        int | None, Integer(required=False, minimum=1)
    ]


# issue 13 item 6


class AcceptReturnWithConditions(Contract):
    command = "accept_return_with_conditions"
    return_: Annotated[str, Text(40)] = Field(alias="return")
    conditions: Annotated[
        str, Text(4000, lines=True, description="what the sponsor must do; shown on the grant")
    ]


class SendBackReturn(Contract):
    command = "send_back_return"
    return_: Annotated[str, Text(40)] = Field(alias="return")
    missing: Annotated[str, Text(4000, lines=True, description="what is missing or to revise")]
    due: Annotated[dt.date, UKDate(description="the new due date: the ladder chases to it")]


class ConfigureReturnPayments(Contract):
    command = "configure_return_payments"
    programme: Annotated[str, Text(required=False)]
    no_payment_while_returns_late: Annotated[
        bool,
        YesNo(description="no payment to a grant while it has a return overdue or "
              "needing revision"),
    ]
