"""The reminder, chase and escalation ladder for anything with a due date (returns
and a meeting's actions), evaluated by durable_rules.

``rules/reminders.yaml`` (format in docs/returns.md) declares a ladder for
every programme by default and optionally per programme by name; each ladder
says what it applies to (``applies_to``: ``returns``, ``actions``; a ladder
written as a plain mapping applies to returns), with its own recipients,
facts and subject fields (:data:`APPLIES_TO`). Each rung
has a name (``reminder-14``, ``chase``, ``escalate-director``...), the
template of its message, who receives it (``sponsor``: the contacts of the
grant's accountable body; or everyone holding a role: ``officer``,
``director``, ``chair``...), a subject, and a *window* in days relative to the
return's due date (``from: -14, until: -4``; ``until`` left out: no end),
optionally narrowed by a condition on the return (``when: {kind: savings}``).

A rung applies to an outstanding return (state ``due`` or ``queried``) while
the return's "days from due" lies in its window and its condition holds; the
sweep (engine/commands/sweep.py) sends each rung once per return and recipient, so
after downtime a rung whose window has passed is skipped rather than sent
late, and a rung whose window is still open is sent on the next sweep.

Evaluation: the sweep reads the distinct (kind, state, due date) values present
among outstanding returns — a few hundred at most, however many returns there
are — makes one fact of each (``days_from_due``, ``kind``, ``state``) and asserts
them into the ladder's durable_rules ruleset (through rules.durable_adapter,
facts mode: every rung that applies fires). SQL then applies the answer to all
returns at once. :meth:`Ladder.applicable_python` evaluates the same compiled
conditions in plain Python (the tests check that both agree).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from engine.domain.yamlio import load_yaml
from engine.settings import get_settings
from rules import durable_adapter, loader
from rules.conditions import (
    FALSE,
    MAX_GROUPS,
    All,
    Cond,
    ConditionError,
    FactSpec,
    Leaf,
    TooComplex,
    describe,
    exclusive,
    groups,
    parse_condition,
    simplify,
    to_durable,
    to_python,
)
from rules.errors import RuleFileError
from rules.loader import Keys, where
from rules.returns import KINDS

__all__ = [
    "DEFAULT_FILE",
    "ACTION_FACT_SPECS",
    "ACTION_RECIPIENTS",
    "ACTION_SUBJECT_FIELDS",
    "APPLIES_TO",
    "FACT_SPECS",
    "OUTSTANDING",
    "RECIPIENTS",
    "SUBJECT_FIELDS",
    "ItemKind",
    "Ladder",
    "LadderRules",
    "RemindersError",
    "Rung",
    "load_ladder_rules",
    "parse_ladder_rules",
]

RULES_DIR = Path(__file__).resolve().parent
DEFAULT_FILE = RULES_DIR / "reminders.yaml"

OUTSTANDING = ("due", "queried")  # return states the ladder chases
RECIPIENTS: dict[str, str] = {
    "sponsor": "the sponsor contacts of the grant's accountable body (else its email address)",
    "officer": "everyone with the officer role",
    "director": "everyone with the director role",
    "chair": "everyone with the chair role",
    "vice_chair": "everyone with the vice_chair role",
    "finance": "everyone with the finance role",
}
FACT_SPECS: dict[str, FactSpec] = {
    "days_from_due": FactSpec(numeric=True),
    "kind": FactSpec(numeric=False, values=tuple(KINDS)),
    "state": FactSpec(numeric=False, values=OUTSTANDING),
}
# subject fields of every ladder: the day counts and the recipient
_DAYS_AND_NAME: dict[str, str] = {
    "due_on": "the due date (YYYY-MM-DD)",
    "days_late": "days past the due date (0 before it)",
    "days_before": "days until the due date (0 after it)",
    "name": "the recipient's name",
}
# {placeholders} a subject may use (filled in when the message is rendered:
# engine/domain/words.py, message_subject)
SUBJECT_FIELDS: dict[str, str] = {
    "return_ref": "the return's reference",
    "grant_ref": "the grant's reference",
    "title": "the project's title",
    "organisation": "the accountable body",
    "programme": "the programme",
    "kind": "the return in words (quarterly progress report, benefits report, ...)",
    "kind_code": "the return's kind (progress, savings, monitoring, benefits)",
    "period": "the period in words (1 April to 30 June 2011 (Q1 2011/12))",
    "period_start": "first day of the period (YYYY-MM-DD)",
    "period_end": "last day of the period (YYYY-MM-DD)",
    "due_date": "the due date in words (Monday 1 August 2011)",
    **_DAYS_AND_NAME,
    "role": "the recipient's role in words (sponsor contact, Director, Chair, ...)",
}
# A meeting's actions (workflows/action.py; the sweep: engine/commands/chasing.py)
ACTION_RECIPIENTS: dict[str, str] = {
    "owner": "the action's owner: a person by their email, a partnership or organisation "
    "through its sponsor contacts (else its own address), a free-text owner through "
    "the person who recorded the action",
    **{k: v for k, v in RECIPIENTS.items() if k != "sponsor"},
}
ACTION_OWNER_KINDS = ("person", "partnership", "organisation", "text")  # text: free text
ACTION_FACT_SPECS: dict[str, FactSpec] = {
    "days_from_due": FactSpec(numeric=True),
    "owner_kind": FactSpec(numeric=False, values=ACTION_OWNER_KINDS),
}
ACTION_SUBJECT_FIELDS: dict[str, str] = {
    "action_ref": "the action's reference (<meeting>/A<number>)",
    "number": "the action's number in its meeting's minutes",
    "what": "what the action is",
    "owner": "the action's owner, as the minutes name it",
    "meeting": "the meeting that recorded it, in words (title and date)",
    "meeting_ref": "the meeting's reference",
    "target_meeting": "the meeting it is due by, in words ('' for a due date)",
    "programme": "the programme",
    "due_date": "the due date in words (a target meeting's date)",
    **_DAYS_AND_NAME,
    "role": "the recipient's role in words (action owner, Director, Chair, ...)",
}


@dataclass(frozen=True)
class ItemKind:
    """What a ladder may apply to: the recipients, facts and subject fields its
    rungs may name, and what a rung's subject is when left out."""

    name: str  # returns / actions (the YAML's applies_to)
    noun: str  # one item, in messages ("each rung is sent once per return")
    recipients: Mapping[str, str]
    facts: Mapping[str, FactSpec]
    subject_fields: Mapping[str, str]
    default_subject: str
    template_example: str
    first_party: str  # the recipient chased first; escalation is to anyone else


APPLIES_TO: dict[str, ItemKind] = {
    "returns": ItemKind("returns", "return", RECIPIENTS, FACT_SPECS, SUBJECT_FIELDS,
                        "{kind} {return_ref}: {title}", "return_chase", "sponsor"),
    "actions": ItemKind("actions", "action", ACTION_RECIPIENTS, ACTION_FACT_SPECS,
                        ACTION_SUBJECT_FIELDS, "Action {action_ref}: {what}", "action_chase",
                        "owner"),
}  # fmt: skip
RETURNS = APPLIES_TO["returns"]
MAX_DAYS = 3660
ALWAYS_RULE = "_every_fact"  # fires for every fact, so no fact is left unhandled

_NAME_RE, _VERSION_RE = loader.NAME_RE, loader.VERSION_RE
_RUNG_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_TEMPLATE_RE = re.compile(r"[a-z][a-z0-9_]{0,59}")


class RemindersError(RuleFileError):
    """A ladder file that cannot be used."""

    FIELD = "reminder_rules"


@dataclass(frozen=True)
class Rung:
    name: str
    template: str
    from_day: int
    until_day: int | None  # None: no end
    to: tuple[str, ...]
    subject: str
    when: Cond | None
    compiled: Cond  # window and condition, as durable_rules and Python evaluate it
    where: str

    def window(self) -> str:
        def day(n: int) -> str:
            if n == 0:
                return "the due date"
            return f"{abs(n)} day{'' if abs(n) == 1 else 's'} {'before' if n < 0 else 'after'}"

        end = f" until {day(self.until_day)}" if self.until_day is not None else " on"
        return f"from {day(self.from_day)}{end}"

    def subject_parts(self) -> list[tuple[str, str | None]]:
        """(literal text, field or None) pieces of the subject template."""
        return [(lit, fld) for lit, fld, _, _ in string.Formatter().parse(self.subject)]


@dataclass(frozen=True)
class Ladder:
    scope: str  # "default" or "programme <name>"
    rungs: tuple[Rung, ...]
    ruleset: str  # durable_rules ruleset name
    applies_to: str = "returns"  # a key of APPLIES_TO

    def earliest(self) -> int:
        return min(r.from_day for r in self.rungs)

    def latest(self) -> int | None:
        """The last day any rung applies (None: some rung has no end)."""
        ends = [r.until_day for r in self.rungs]
        return None if any(e is None for e in ends) else max(ends)  # type: ignore[type-var]

    def next_escalation(self, rung: Rung) -> tuple[str, int] | None:
        """Who (the role) an item goes to next after ``rung``, and how many days after
        its due date: the first later rung naming someone other than the first party
        (the sponsor of a return, the owner of an action)."""
        first = APPLIES_TO[self.applies_to].first_party
        later = sorted(
            (r for r in self.rungs if r.from_day > rung.from_day and set(r.to) - {first}),
            key=lambda r: r.from_day,
        )
        if not later:
            return None
        nxt = later[0]
        return next(w for w in nxt.to if w != first), nxt.from_day

    def register(self) -> None:
        rules = {r.name: to_durable(r.compiled) for r in self.rungs if r.compiled != FALSE}
        rules[ALWAYS_RULE] = to_durable(All(()))
        durable_adapter.register(self.ruleset, rules)

    def applicable(self, facts: Sequence[Mapping[str, Any]]) -> list[set[str]]:
        """For each fact (days_from_due and the kind's other facts, ref), the rungs
        that apply, by durable_rules."""
        if not facts:
            return []
        self.register()
        fired = durable_adapter.run(self.ruleset, facts, mode="facts")
        out: list[set[str]] = []
        for f, names in zip(facts, fired, strict=True):
            rungs = {n for n in names if n != ALWAYS_RULE}
            if names.count(ALWAYS_RULE) != 1 or len(rungs) != len(names) - 1:
                raise durable_adapter.DurableRulesError(
                    f"durable_rules ruleset {self.ruleset!r}: fact {f.get('ref')} fired "
                    f"{names}; every rung at most once and the catch-all exactly once"
                )
            out.append(rungs)
        return out

    def applicable_python(self, facts: Sequence[Mapping[str, Any]]) -> list[set[str]]:
        """The same, in plain Python from the same compiled conditions."""
        preds = [(r.name, to_python(r.compiled)) for r in self.rungs]
        return [{name for name, p in preds if p(f)} for f in facts]


@dataclass(frozen=True)
class LadderRules:
    name: str
    version: str
    title: str
    sha256: str
    source: str
    default: Ladder  # for returns
    programmes: Mapping[str, Ladder]  # for returns
    # the ladders of the other kinds (APPLIES_TO): kind -> the default (None: not
    # chased) and kind -> programme name -> ladder
    others: Mapping[str, Ladder] = field(default_factory=dict)
    other_programmes: Mapping[str, Mapping[str, Ladder]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def ladders(self) -> Iterator[Ladder]:
        yield self.default
        yield from self.programmes.values()
        for kind in sorted(set(self.others) | set(self.other_programmes)):
            if kind in self.others:
                yield self.others[kind]
            yield from self.other_programmes.get(kind, {}).values()

    def ladder_for(self, applies_to: str, programme: str | None) -> Ladder | None:
        """The ladder for an item of a kind in a programme (its own, else the
        default; None: that kind is not chased)."""
        if applies_to == "returns":
            return self.programmes.get(programme or "", self.default)
        named = self.other_programmes.get(applies_to, {})
        return named.get(programme or "") or self.others.get(applies_to)


# ------------------------------------------------------------------ parsing


class LadderRulesFile(Keys):
    """The top level of a ladder file (docs/returns.md)."""

    name: Any
    version: Any
    title: Any = None
    source: Any = None
    description: Any = None
    default: Any
    programmes: Any = None


class LadderModel(Keys):
    """``default`` or ``programmes.<name>``: one ladder, for returns."""

    ladder: Any = None


class KindLadderModel(Keys):
    """An item of a list of ladders (``default`` or ``programmes.<name>``): what it
    applies to and its rungs."""

    applies_to: Any
    ladder: Any = None


class RungModel(Keys):
    """One rung of a ladder."""

    rung: Any
    template: Any
    from_: Any = Field(alias="from")
    until: Any = None
    to: Any
    subject: Any = None
    when: Any = None


_where = where


def _mapping(raw: Any, src: str, at: str, model: type[Keys]) -> dict:
    return loader.check(model, raw, source=src, at=at, error=RemindersError, wording="schedule")


def _day(raw: Any, src: str, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or abs(raw) > MAX_DAYS:
        raise RemindersError(
            src,
            where,
            f"{raw!r} is not allowed; a whole number of days from the due date "
            f"(negative: before it), -{MAX_DAYS} to {MAX_DAYS}",
        )
    return raw


def _rung(raw: Any, src: str, where: str, kind: ItemKind = RETURNS) -> Rung:
    body = _mapping(raw, src, where, RungModel)
    name = str(body["rung"])
    if not _RUNG_RE.fullmatch(name) or name == ALWAYS_RULE:
        raise RemindersError(
            src,
            _where(where, "rung"),
            f"{name!r}: lower-case letters, digits and '-', "
            "starting with a letter (it becomes part of each message's key)",
        )
    template = str(body["template"])
    if not _TEMPLATE_RE.fullmatch(template):
        raise RemindersError(
            src,
            _where(where, "template"),
            f"{template!r}: a template name such as {kind.template_example}",
        )
    first = _day(body["from"], src, _where(where, "from"))
    last = _day(body["until"], src, _where(where, "until")) if "until" in body else None
    if last is not None and last < first:
        raise RemindersError(
            src, _where(where, "until"), f"{last} is before from ({first}); a window runs forward"
        )
    to = body["to"]
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to:
        raise RemindersError(
            src, _where(where, "to"), f"a list of recipients: {', '.join(kind.recipients)}"
        )
    for i, who in enumerate(to):
        if who not in kind.recipients:
            raise RemindersError(
                src,
                _where(_where(where, "to"), i),
                f"{who!r} is not a recipient; use: {', '.join(kind.recipients)}",
            )
    if len(set(to)) != len(to):
        raise RemindersError(src, _where(where, "to"), "names a recipient twice")
    subject = str(body.get("subject") or kind.default_subject)
    try:
        parts = list(string.Formatter().parse(subject))
    except ValueError as exc:
        raise RemindersError(src, _where(where, "subject"), f"{subject!r}: {exc}") from None
    for _, fld, spec, conv in parts:
        if fld is None:
            continue
        if fld not in kind.subject_fields or spec or conv:
            raise RemindersError(
                src,
                _where(where, "subject"),
                f"{{{fld}}} is not a subject field; use: "
                + ", ".join(f"{{{f}}}" for f in kind.subject_fields),
            )
    when = None
    if "when" in body:
        try:
            when = parse_condition(body["when"], _where(where, "when"), kind.facts)
        except ConditionError as exc:
            raise RemindersError(src, exc.where, exc.message) from None
    leaves: list[Cond] = [Leaf("days_from_due", "gte", first)]
    if last is not None:
        leaves.append(Leaf("days_from_due", "lte", last))
    if when is not None:
        leaves.append(when)
    try:
        compiled = simplify(exclusive(All(tuple(leaves))))
    except TooComplex as exc:
        raise RemindersError(src, _where(where, "when"), str(exc)) from None
    if compiled != FALSE and groups(compiled) > MAX_GROUPS:
        raise RemindersError(
            src,
            _where(where, "when"),
            f"too complex for durable_rules ({groups(compiled)} and/or groups once compiled, "
            f"at most {MAX_GROUPS}): {describe(compiled)}",
        )
    return Rung(name, template, first, last, tuple(to), subject, when, compiled, where)


def _ladder(
    raw: Any,
    src: str,
    where: str,
    scope: str,
    ruleset: str,
    kind: ItemKind = RETURNS,
    model: type[Keys] = LadderModel,
) -> Ladder:
    body = _mapping(raw, src, where, model)
    items = body.get("ladder")
    lw = _where(where, "ladder")
    if not isinstance(items, list) or not items:
        raise RemindersError(src, lw, "is required: a list of rungs")
    rungs: list[Rung] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(items):
        rung = _rung(item, src, _where(lw, i), kind)
        if rung.name in seen:
            raise RemindersError(
                src,
                _where(_where(lw, i), "rung"),
                f"{rung.name!r} is already used at "
                f"{seen[rung.name]}; each rung is sent once per {kind.noun}, so names are unique",
            )
        seen[rung.name] = rung.where
        rungs.append(rung)
    return Ladder(scope, tuple(rungs), ruleset, kind.name)


def _ladders(raw: Any, src: str, where: str, scope: str, ruleset: str) -> dict[str, Ladder]:
    """``default`` or ``programmes.<name>``: one ladder (a mapping: for returns), or
    a list of ladders each declaring what it applies to (one per kind). By kind."""
    if not isinstance(raw, dict | list) or (isinstance(raw, dict) and "applies_to" not in raw):
        return {"returns": _ladder(raw, src, where, scope, ruleset)}
    items = [(where, raw)] if isinstance(raw, dict) else [(_where(where, i), v)
                                                          for i, v in enumerate(raw)]
    out: dict[str, Ladder] = {}
    for at, item in items:
        body = _mapping(item, src, at, KindLadderModel)
        name = body["applies_to"]
        if name not in APPLIES_TO:
            raise RemindersError(
                src, _where(at, "applies_to"),
                f"{name!r} is not something a ladder applies to; use: {', '.join(APPLIES_TO)}")
        if name in out:
            raise RemindersError(
                src, _where(at, "applies_to"),
                f"a second ladder for {name}; one ladder per kind of item here")
        kind = APPLIES_TO[name]
        out[name] = _ladder(
            item, src, at, scope, ruleset if kind is RETURNS else f"{ruleset}:{name}", kind,
            KindLadderModel)
    return out


def parse_ladder_rules(
    text: str, source: str = "reminders.yaml", sha256: str | None = None
) -> LadderRules:
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise RemindersError(source, "", f"not valid YAML: {exc}") from None
    body = _mapping(raw, source, "", LadderRulesFile)
    name, version = str(body["name"]), str(body["version"])
    if not _NAME_RE.fullmatch(name):
        raise RemindersError(source, "name", f"{name!r}: letters, digits, '.', '_' or '-'")
    if not _VERSION_RE.fullmatch(version):
        raise RemindersError(source, "version", f"{version!r}: letters, digits, '.', '_', '+', '-'")
    sha = sha256 or hashlib.sha256(text.encode()).hexdigest()
    base = f"{name}@{version}#{sha[:10]}"
    defaults = _ladders(body["default"], source, "default", "default", f"{base}:0")
    if "returns" not in defaults:
        raise RemindersError(source, "default", "needs a ladder with applies_to: returns")
    found = body.get("programmes") or {}
    if not isinstance(found, dict):
        raise RemindersError(source, "programmes", "must be a mapping of programme name to ladder")
    programmes: dict[str, dict[str, Ladder]] = {}
    for i, (k, v) in enumerate(found.items(), start=1):
        at = _where("programmes", str(k))
        for kind, lad in _ladders(v, source, at, f"programme {k}", f"{base}:{i}").items():
            programmes.setdefault(kind, {})[str(k)] = lad
    return LadderRules(
        name, version, str(body.get("title") or ""), sha, source, defaults.pop("returns"),
        programmes.pop("returns", {}), defaults, programmes)  # fmt: skip


FORMAT: loader.Format[LadderRules] = loader.Format(
    kind="reminders",
    build=lambda text, source, _path, sha: parse_ladder_rules(text, source, sha),
    error=RemindersError,
    source=loader.shown,
    unreadable=lambda fmt, p, _exc: fmt.error(str(p), "", "no such file"),
)


def rules_path(path: str | Path | None = None) -> Path:
    """The file in force: explicit > $QUORUM_REMINDERS_RULES > rules/reminders.yaml."""
    return Path(path or get_settings().reminders_rules or DEFAULT_FILE)


def load_ladder_rules(path: str | Path | None = None) -> LadderRules:
    """Read and validate a ladder file (cached while the file is unchanged)."""
    return loader.load(FORMAT, rules_path(path))
