"""Reading one argument of a command: the readers and the pydantic types built on them.

Each reader takes the value as an entry point gave it (CLI text, YAML, JSON, a
web form) and the field's name, and returns the typed value or raises
:class:`FieldProblem` whose ``detail`` names the field, says what was wrong and
what is allowed ("title: is required", "grant: '-5' is negative; ..."). The
command bus prefixes the command's name, so every message keeps the form
"submit_bid: title: is required".

The same readers serve two callers, so there is one copy of each rule:

- the command contracts (engine/commands/contracts.py): each field of a
  contract is made by one of the makers below (``title: Annotated[str,
  Text(300)]``; :func:`Text`, :func:`Pence`, :func:`UKDate`, :func:`Choice`,
  :func:`YesNo`, :func:`Integer`, :func:`Items`, :func:`Mapping`,
  :func:`Raw`), which carries its reader and the JSON schema the OpenAPI
  document publishes;
- :class:`engine.commands.args.Args`, for the nested values a handler reads
  itself (one milestone of a profile, one share of a deposit).

Traps of pydantic handled here (each with the line that handles it):

- pydantic turns a ``ValueError`` raised in a validator into its own error
  and keeps going; ``MoneyError`` is a ``ValueError``. :class:`FieldProblem`
  is not, so it leaves ``model_validate`` at once, unchanged: the first
  problem in field order is the one reported, as before (``_field`` below,
  and ``pence`` catching ``MoneyError``); the contract turns it into the
  command's ValidationError (``Contract.read``).
- a missing field is not validated unless asked: every field has the default
  ``None`` with ``validate_default=True`` so "is required" comes from the
  reader, with the reader's message (``_field``).
- ``info.field_name`` is the Python name, not the argument's (``return_`` for
  ``return``), and asking for ``info`` at all makes every call slower: each
  field's :class:`Spec` is named by its contract instead (``_field``).
- the JSON schema of a plain validator is whatever we say it is
  (``WithJsonSchema``): every schema below admits everything its reader
  accepts (schemathesis sends values outside it and expects a refusal).

Clean text (docs/security.md "Input limits"): every text that enters through a
contract (a field, a name in a list, a key of a mapping, a value passed raw)
is refused by name if it holds NUL or another control character, or an
unpaired surrogate (:func:`text_problem`; PostgreSQL refuses NUL and no
driver can encode a lone surrogate). Line breaks (and tabs) are allowed only
in long text (``Text(lines=True)``: reasons, notes, summaries); a title or a
name is one line (a line break in a title breaks the email it becomes the
subject of).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any

from dateutil import parser as dateparser
from pydantic import Field, PlainValidator, ValidationInfo, WithJsonSchema

from engine.domain.errors import ValidationError
from engine.domain.money import MAX_PENCE, MoneyError, check_pence, parse_pounds

_DEFAULT_DAY = dt.datetime(2000, 1, 1)
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}


class FieldProblem(Exception):  # noqa: N818 - not a ValueError on purpose (module docstring)
    """One argument that cannot be accepted. ``detail`` starts with the field's name."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def _fail(name: str, what: str) -> FieldProblem:
    return FieldProblem(name, f"{name}: {what}")


def _missing(value: Any) -> bool:
    return value is None or value == ""


# Never in any text: C0 controls but tab and line breaks, DEL, C1 controls (NEL among
# them), and lone surrogates (half of a UTF-16 pair: JSON "\ud800" decodes to one).
_NEVER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Also not in one-line text: tab, line feed, carriage return, line and paragraph separators.
_NOT_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CONTROL_NAMES = {"\x00": "NUL", "\t": "a tab", "\n": "a line break", "\r": "a line break"}


def text_problem(value: str, name: str, *, lines: bool = False) -> str | None:
    """What is wrong with ``value`` as text (the message, naming ``name``), or None.

    Refused everywhere: NUL and other control characters, unpaired surrogates.
    Refused unless ``lines`` (long text: reasons, notes, summaries): tabs and line breaks.
    """
    found = (_NEVER if lines else _NOT_IN_LINE).search(value)
    if found is None:
        return None
    char, at = found.group(), found.start() + 1
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return (
            f"{name}: has an unpaired surrogate ({code}) at character {at}, which is not "
            "text; send it as UTF-8"
        )
    if char in "\t\n\r\u2028\u2029":
        what = _CONTROL_NAMES.get(char, "a line break")
        return (
            f"{name}: has {what} ({code}) at character {at}; it must be one line "
            "(line breaks are allowed only in long text such as reasons and notes)"
        )
    what = _CONTROL_NAMES.get(char, "a control character")
    return (
        f"{name}: has {what} ({code}) at character {at}; text may not hold control "
        "characters"
    )


def shown(name: str) -> str:
    """A name as given, to quote in a message: as itself if clean, else its repr (a NUL
    or a lone surrogate in a message would break the answer that carries it)."""
    return name if text_problem(name, "", lines=False) is None else repr(name)


def clean(value: str, name: str, *, lines: bool = False) -> str:
    """``value`` if it is clean text (:func:`text_problem`), else FieldProblem naming ``name``."""
    problem = text_problem(value, name, lines=lines)
    if problem is not None:
        raise FieldProblem(name, problem)
    return value


def clean_all(value: Any, name: str) -> Any:
    """Every text inside ``value`` (lists, mappings' keys and values) checked with
    :func:`clean`, allowing line breaks; the element at fault is named (``votes.for[2]``)."""
    if isinstance(value, str):
        return clean(value, name, lines=True)
    if isinstance(value, list):
        for i, element in enumerate(value, start=1):
            clean_all(element, f"{name}[{i}]")
    elif isinstance(value, dict):
        for key, element in value.items():
            key_name = clean(key, f"{name} (a key)") if isinstance(key, str) else key
            clean_all(element, f"{name}.{key_name}")
    return value


class GivenInPence(int):
    """An amount the caller gave in pence (``amount_pence``), already checked: the
    ``pence`` reader takes it as it is (engine/commands/contracts.py)."""


# ---------------------------------------------------------------- readers


def text(
    value: Any,
    name: str,
    *,
    required: bool = True,
    default: str = "",
    max_len: int = 500,
    if_given: bool = False,
    lines: bool = False,
) -> str | None:
    """Text, stripped. ``if_given``: absent (None or '') is None, anything else must be text.
    Clean (:func:`text_problem`): one line unless ``lines``."""
    if if_given and _missing(value):
        return None
    if value is None or (isinstance(value, str) and not value.strip()):
        if required or if_given:
            raise _fail(name, "is required")
        return default
    if not isinstance(value, str | int | float):
        raise _fail(name, f"must be text, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > max_len:
        raise _fail(name, f"is {len(text)} characters; at most {max_len} allowed")
    return clean(text, name, lines=lines)


def pence(value: Any, name: str, *, required: bool = True, allow_zero: bool = False) -> int | None:
    """An amount written in pounds (100000, '100,000', '£1.5m') -> pence."""
    if _missing(value):
        if required:
            raise _fail(name, "is required (an amount in pounds, e.g. 100,000)")
        return None
    if isinstance(value, bool):
        raise _fail(name, "must be an amount in pounds, not yes/no")
    if isinstance(value, GivenInPence):
        amount = int(value)
        if amount == 0 and not allow_zero:
            raise _fail(name, "must be more than £0")
        return amount
    try:
        amount = parse_pounds(str(value), field=name)
    except MoneyError as exc:  # a ValueError: would be swallowed by pydantic
        raise FieldProblem(name, str(exc)) from None
    if amount == 0 and not allow_zero:
        raise _fail(name, "must be more than £0")
    return amount


_WHOLE = re.compile(r"\s*[0-9]+\s*")


def pence_given(value: Any, name: str) -> GivenInPence:
    """An amount in integer pence under a field named so (``amount_pence: 125000``, or its
    digits as text): 0 to ``MAX_PENCE``."""
    if isinstance(value, str) and _WHOLE.fullmatch(value) and len(value.strip()) <= 20:
        value = int(value)
    try:
        return GivenInPence(check_pence(value, name))
    except MoneyError as exc:  # a ValueError: would be swallowed by pydantic
        raise FieldProblem(name, str(exc)) from None


def date(value: Any, name: str, *, required: bool = True) -> dt.date | None:
    if _missing(value):
        if required:
            raise _fail(name, "is required (a date such as 2011-04-20)")
        return None
    if isinstance(value, bool | int | float):  # 20110420? 40653 (Excel's day)? never guessed
        raise _fail(
            name,
            f"{value!r} is a number, not a date; write it as text, e.g. 2011-04-20 or 20/04/2011",
        )
    if isinstance(value, str):
        clean(value, name)
    try:
        return parse_date(value, name, field=name)
    except ValidationError as exc:
        raise FieldProblem(name, exc.message) from None


def choice(value: Any, name: str, allowed: Iterable[str], *, default: str | None = None) -> str:
    allowed = list(allowed)
    if _missing(value):
        if default is None:
            raise _fail(name, f"is required (one of: {', '.join(allowed)})")
        return default
    norm = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if norm not in allowed:
        raise _fail(name, f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
    return norm


def flag(value: Any, name: str, *, default: bool = False) -> bool:
    if _missing(value):
        return default
    if isinstance(value, bool):
        return value
    norm = str(value).strip().lower()
    if norm in YES:
        return True
    if norm in NO:
        return False
    raise _fail(name, f"{value!r} is not yes or no")


# A whole number fits a PostgreSQL INTEGER column (a larger one was a 500 there).
MAX_INTEGER = 2**31 - 1


def integer(
    value: Any, name: str, *, required: bool = True, minimum: int | None = None
) -> int | None:
    if _missing(value):
        if required:
            raise _fail(name, "is required (a whole number)")
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(str(value).strip())
    except ValueError:
        raise _fail(name, f"{value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise _fail(name, f"{number} is below the minimum of {minimum}")
    if abs(number) > MAX_INTEGER:
        raise _fail(name, f"{number} is above the maximum of {MAX_INTEGER:,}")
    return number


def items(value: Any, name: str, *, required: bool = False) -> list[Any]:
    if _missing(value):
        if required:
            raise _fail(name, "is required (a list)")
        return []
    if isinstance(value, str):
        clean(value, name)
        return [v.strip() for v in value.split(";") if v.strip()]
    if not isinstance(value, list):
        raise _fail(name, f"must be a list, got {type(value).__name__}")
    return value


def mapping(value: Any, name: str, *, required: bool = True) -> dict[str, Any]:
    if value is None:
        if required:
            raise _fail(name, "is required (a mapping of name: value)")
        return {}
    if not isinstance(value, dict):
        raise _fail(name, f"must be a mapping of name: value, got {type(value).__name__}")
    return value


# a day-first date in three parts, any of them possibly left out ('20//2011'): the
# web's GOV.UK date input sends its day, month and year boxes this way (pages.form_args)
_DMY = re.compile(r"^(\d*)\s*/\s*(\d*)\s*/\s*(\d*)$")


def parse_date(value: Any, where: str, field: str | None = None) -> dt.date:
    """A date from a date, ISO text or a day-first British date ('20/04/2011')."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    parts = _DMY.match(text)
    if parts is not None and not all(parts.groups()):  # '20//2011': never a guessed month
        named = zip(("day", "month", "year"), parts.groups(), strict=True)
        lacking = [w for w, p in named if not p]
        raise ValidationError(
            f"{where}: {text!r} has no {' or '.join(lacking)} (write the day, month and year, "
            "e.g. 20/04/2011 or 2011-04-20)",
            field=field,
        )
    try:
        if len(text) == 10 and text[4] == "-":
            return dt.date.fromisoformat(text)
        # a fixed default so 'July 2011' reads as 1 July 2011, never as today's day
        return dateparser.parse(text, dayfirst=True, default=_DEFAULT_DAY).date()
    except (ValueError, OverflowError, dateparser.ParserError):
        raise ValidationError(
            f"{where}: {text!r} is not a date (write e.g. 2011-04-20 or 20/04/2011)", field=field
        ) from None


# ---------------------------------------------------------------- contract fields
# Each maker returns the pydantic field (``title: Annotated[str, Text(300)]``): its
# reader as a plain validator, its JSON schema, and whether the schema requires it.


class Spec:
    """Marks a contract field: its name (set by the contract) and whether the JSON schema
    lists it as required."""

    __slots__ = ("name", "pounds", "pounds_keys", "pounds_values", "required")

    def __init__(self, required: bool, pounds: bool = False) -> None:
        self.name = ""
        self.required = required
        self.pounds = pounds  # an amount in pounds: also taken in pence as <name>_pence
        self.pounds_keys: tuple[str, ...] = ()  # a list of objects: their amounts in pounds
        self.pounds_values = False  # a mapping of name: amount in pounds


def _field(
    read: Callable[..., Any],
    schema: dict[str, Any],
    required: bool,
    *,
    with_info: bool = False,
    pounds: bool = False,
) -> Any:
    spec = Spec(required, pounds)
    # the reader gets the field's own name from its Spec, named once by its contract: a
    # validator without ValidationInfo is the cheaper call (the bus reads every command)
    if with_info:

        def validate_with(value: Any, info: ValidationInfo) -> Any:
            return read(value, spec.name, info)

        validator = PlainValidator(validate_with)
    else:

        def validate(value: Any) -> Any:
            return read(value, spec.name)

        validator = PlainValidator(validate)
    info: Any = Field(default=None, validate_default=True)
    info.metadata.extend([validator, WithJsonSchema(schema), spec])
    return info


def spec_of(info: Any) -> Spec:
    return next(m for m in info.metadata if isinstance(m, Spec))


def _nullable(schema: dict[str, Any], optional: bool) -> dict[str, Any]:
    """An optional field also takes null and '' (both read as 'not given')."""
    if not optional:
        return schema
    return {"anyOf": [schema, {"type": "null"}, {"const": ""}]}


def _described(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "description": description} if description else schema


def Text(  # noqa: N802 - a type, named like one
    max_len: int = 500,
    *,
    required: bool = True,
    default: str = "",
    if_given: bool = False,
    lines: bool = False,
    description: str = "",
) -> Any:
    """Text (a number is read as its digits), stripped, at most ``max_len`` characters
    after stripping; clean, and one line unless ``lines`` (long text: reasons, notes)."""

    def read(value: Any, name: str) -> Any:
        return text(
            value,
            name,
            required=required,
            default=default,
            max_len=max_len,
            if_given=if_given,
            lines=lines,
        )

    schema = {"type": ["string", "number", "boolean"]}
    kind = "text" if lines else "one line of text"
    schema = _described(
        schema,
        description or f"{kind}, at most {max_len} characters, without control characters",
    )
    return _field(read, _nullable(schema, not required or if_given), required)


_POUNDS = (
    "an amount in pounds, as a string: '100000', '100,000', '£40,000.50', '250k', '£1.5m' "
    "(at most £1,000,000,000); or give <field>_pence, an integer in pence. A bare JSON "
    "number is refused: the answer gives integer pence"
)
# An amount in pounds as the API takes it: a string (a JSON number is refused there,
# engine/commands/contracts.py refuse_numbers_as_pounds); CLI and YAML may still give numbers.
POUNDS_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1}
PENCE_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": MAX_PENCE}
DATE_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1}


def Pence(  # noqa: N802
    *,
    required: bool = True,
    allow_zero: bool = False,
    required_when: tuple[str, str] | None = None,
    description: str = "",
) -> Any:
    """An amount written in pounds, read exactly as integer pence (money.parse_pounds).
    ``required_when=(field, value)``: required when an earlier field has that value."""

    def read(value: Any, name: str, info: ValidationInfo | None = None) -> Any:
        must = required
        if required_when is not None and info is not None:
            must = info.data.get(required_when[0]) == required_when[1]
        return pence(value, name, required=must, allow_zero=allow_zero)

    schema = {**POUNDS_SCHEMA, "description": description or _POUNDS}
    return _field(
        read,
        _nullable(schema, not required),
        required,
        with_info=required_when is not None,
        pounds=True,
    )


def UKDate(*, required: bool = True, description: str = "") -> Any:  # noqa: N802
    """A date: ISO (2011-04-20) or as people write it, day first (20/04/2011, 'July 2011')."""

    def read(value: Any, name: str) -> Any:
        return date(value, name, required=required)

    schema = {
        **DATE_SCHEMA,
        "description": description
        or "a date, as a string: 2011-04-20, or day first as written in the UK (20/04/2011, "
        "'July 2011'); a number is refused",
        "examples": ["2011-04-20"],
    }
    return _field(read, _nullable(schema, not required), required)


def Choice(  # noqa: N802
    allowed: Iterable[str], *, default: str | None = None, description: str = ""
) -> Any:
    """One of ``allowed`` (case, spaces and hyphens are forgiven: 'Approve' is approve)."""
    allowed = tuple(allowed)

    def read(value: Any, name: str) -> Any:
        return choice(value, name, allowed, default=default)

    schema = _described({"enum": list(allowed)}, description)
    return _field(read, _nullable(schema, default is not None), default is None)


_YES_NO = sorted(YES | NO | {v.upper() for v in YES | NO} | {v.title() for v in YES | NO})


def YesNo(*, default: bool = False, description: str = "") -> Any:  # noqa: N802
    """yes or no: true/false, yes/no, y/n, 1/0."""

    def read(value: Any, name: str) -> Any:
        return flag(value, name, default=default)

    schema = {
        "anyOf": [{"type": "boolean"}, {"enum": _YES_NO}, {"enum": [0, 1]}],
        "description": description or f"yes or no (default {'yes' if default else 'no'})",
    }
    return _field(read, _nullable(schema, True), False)


def Integer(  # noqa: N802
    *, required: bool = True, minimum: int | None = None, description: str = ""
) -> Any:
    """A whole number (or its digits as text)."""

    def read(value: Any, name: str) -> Any:
        return integer(value, name, required=required, minimum=minimum)

    number: dict[str, Any] = {"type": "integer", "maximum": MAX_INTEGER}
    if minimum is not None:
        number["minimum"] = minimum
    schema = {"anyOf": [number, {"type": "string", "pattern": r"^\s*[-+]?[0-9]+\s*$"}]}
    return _field(read, _nullable(_described(schema, description), not required), required)


def Items(  # noqa: N802
    item: dict[str, Any] | None = None,
    *,
    required: bool = False,
    text_items: bool = True,
    description: str = "",
) -> Any:
    """A list; as text, items separated by ';' ('Ashford; Dover'). Without ``item`` (the
    schema of one element, which its handler reads), a list of names: text or numbers."""

    def read(value: Any, name: str) -> Any:
        found = items(value, name, required=required)
        if item is None:
            for i, element in enumerate(found, start=1):
                where = f"{name}[{i}]"
                if isinstance(element, bool) or not isinstance(element, str | int | float):
                    raise FieldProblem(
                        where, f"{where}: must be a name, got {type(element).__name__}"
                    )
                if isinstance(element, str):
                    clean(element, where)
        else:
            clean_all(found, name)
        return found

    item_schema = item if item is not None else {"type": ["string", "number"]}
    kinds: list[dict[str, Any]] = [{"type": "array", "items": item_schema}]
    if text_items:
        kinds.append({"type": "string", "description": "items separated by ';'"})
    schema = _described({"anyOf": kinds}, description)
    made = _field(read, _nullable(schema, not required), required)
    spec_of(made).pounds_keys = tuple(
        k for k, v in (item or {}).get("properties", {}).items() if v is POUNDS_SCHEMA
    )
    return made


def Mapping(  # noqa: N802
    values: dict[str, Any],
    *,
    required: bool = True,
    required_when: tuple[str, str] | None = None,
    description: str = "",
) -> Any:
    """An object of name: value. ``required_when=(field, value)``: required when an
    earlier field has that value; otherwise absent (null or '') is {}."""

    def read(value: Any, name: str, info: ValidationInfo | None = None) -> Any:
        must = required
        if required_when is not None and info is not None:
            must = info.data.get(required_when[0]) == required_when[1]
        if not must and _missing(value):
            return {}
        return clean_all(mapping(value, name, required=must), name)

    schema = _described({"type": "object", "additionalProperties": values}, description)
    made = _field(
        read,
        _nullable(schema, not required),
        required,
        with_info=required_when is not None,
    )
    spec_of(made).pounds_values = values is POUNDS_SCHEMA
    return made


def Raw(schema: dict[str, Any], *, required: bool = False) -> Any:
    """Passed to the handler as given (it reads the value itself); ``schema`` says what
    it accepts."""

    def read(value: Any, name: str) -> Any:
        return clean_all(value, name)

    return _field(read, schema, required)
