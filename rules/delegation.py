"""The scheme of delegation: a versioned YAML file, validated and evaluated.

Between Board meetings the Chair and Vice Chairs (or a committee, or a
cluster) may approve funding under a scheme the Board set: who may sign
(signatory groups: by role, by named people, or a committee with its own
quorum), which signatures an approval needs (requirements, each numbered and
named), the limits per decision and per period, the pots it may draw on, and
how long a request stays open. One file may hold several **routes** side by
side (a normal route, an urgency route with lower limits, a cluster's
delegated powers), each with its own requirements, limits and pots.
``rules/delegation.yaml`` is the shipped scheme; the language is in
docs/delegation.md.

Two forms are read: the scheme language of issue 12 (``groups`` and
``routes``) and the first form (``signatories``, ``requires`` with
``role``/``at_least``, one route), kept so that the versions stored with
earlier decisions still evaluate exactly as they did.

:func:`load_scheme` reads a file by name or path and validates it strictly:
every error names the file, the key (``routes.urgent.limits.per_decision``)
and what is allowed. :meth:`Scheme.evaluate` judges a request's signatures and
returns *why*: for each requirement (by number and name), who approved, who
declined, who stood aside with an interest, who is recorded absent, who may
still sign, and whether it is met, open or can no longer be met.

Evaluation is plain Python, not durable_rules (see docs/delegation.md, "Why
plain Python"): a judgement here is a handful of counts over at most a few
signatures, made once per signature inside the signing transaction, and its
"all of them" and "cannot be met any more" questions are about the absence of
signatures, which durable_rules 2.0.28 cannot express safely (``$nex`` hangs,
see rules/durable_adapter.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.domain.money import MoneyError, format_pence, parse_pounds
from engine.domain.words import financial_year, quarter_of
from engine.domain.yamlio import load_yaml
from rules import loader
from rules.errors import RuleFileError
from rules.loader import Keys

__all__ = [
    "APPROVALS",
    "DEFAULT_SCHEME",
    "KINDS",
    "PERIODS",
    "SIGNATORY_ROLES",
    "Evaluation",
    "Group",
    "Period",
    "Requirement",
    "RequirementResult",
    "Scheme",
    "SchemeBook",
    "SchemeError",
    "Signer",
    "load_book",
    "load_scheme",
    "parse_scheme",
    "scheme_from_body",
]

RULES_DIR = Path(__file__).resolve().parent
DEFAULT_SCHEME = RULES_DIR / "delegation.yaml"
SIGNATORY_ROLES = ("chair", "vice_chair")  # the roles the first form may let sign
GROUP_ROLES = ("chair", "vice_chair", "board_member")  # the roles a group may name
ANY = "any"  # a requirement counting every signatory, whatever their role
PERIODS = {
    "financial_year": "1 April to 31 March",
    "financial_quarter": "April-June, July-September, October-December, January-March",
    "calendar_year": "1 January to 31 December",
}
ROLE_LABELS = {
    "chair": "Chair",
    "vice_chair": "Vice Chair",
    "board_member": "Board member",
    ANY: "signatory",
}
# the kinds of requirement (docs/delegation.md, "Requirements")
KINDS = {
    "all_without_interest": "every member of the group who has not declared an interest "
    "approves (those who declared one stand aside; at least one must remain)",
    "all": "every member of the group approves (an interest makes it impossible)",
    "at_least": "at least n members of the group, without an interest, approve",
    "quorum": "a committee's quorum of its members, without an interest, approve, and more "
    "approve than decline",
    "chair_or_deputy": "the group (the Chair) approves; or, when every one of them declared "
    "an interest or is recorded absent, at least n of the deputy group approve",
}
APPROVALS = ("approve", "concur")  # a concurrence is an approval given after approval
STOOD_ASIDE = "stand_aside"
ABSENT = "absent"


class SchemeFile(Keys):
    """The top level of a scheme of delegation (docs/delegation.md)."""

    name: Any = None
    version: Any = None
    title: Any = None
    source: Any = None
    description: Any = None
    groups: Any = None
    routes: Any = None
    default_route: Any = None
    # the first form (one route, by role)
    signatories: Any = None
    requires: Any = None
    limits: Any = None
    pots: Any = None
    open_for_days: Any = None


FIRST_FORM = ("signatories", "requires", "limits", "pots", "open_for_days")


class LimitsModel(Keys):
    """``limits``."""

    per_decision: Any = None
    per_period: Any = None
    period: Any = None


class RequirementModel(Keys):
    """One entry of ``requires`` in the first form."""

    role: Any = None
    at_least: Any = None


class GroupModel(Keys):
    """One entry of ``groups``."""

    label: Any = None
    roles: Any = None
    people: Any = None
    quorum: Any = None


class RouteModel(Keys):
    """One entry of ``routes``."""

    title: Any = None
    description: Any = None
    requires: Any = None
    limits: Any = None
    pots: Any = None
    open_for_days: Any = None


class RuleModel(Keys):
    """One entry of a route's ``requires``."""

    name: Any = None
    kind: Any = None
    group: Any = None
    n: Any = None
    deputy: Any = None


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
MAX_OPEN_DAYS = 366


def _word(n: int) -> str:
    return _WORDS[n] if n < len(_WORDS) else str(n)


class SchemeError(RuleFileError):
    """A scheme file that cannot be used."""

    FIELD = "scheme"


# ------------------------------------------------------------------ the scheme


@dataclass(frozen=True)
class Signer:
    """A signatory as the evaluation sees them: the role they count under (None
    when they no longer hold a signatory role), their signature if any
    (approve, decline, concur, stand_aside, absent; None: not signed), whether
    they have declared an interest in the item, and (for groups of named
    people and roles) their email and every role they hold."""

    name: str
    role: str | None
    decision: str | None = None
    conflicted: bool = False
    email: str = ""
    roles: frozenset[str] = frozenset()

    @property
    def approved(self) -> bool:
        return self.decision in APPROVALS

    @property
    def interest(self) -> bool:
        return self.conflicted or self.decision == STOOD_ASIDE

    @property
    def absent(self) -> bool:
        return self.decision == ABSENT


@dataclass(frozen=True)
class Group:
    """Signatories: everyone holding one of ``roles``, and the ``people`` named
    (emails); a committee has a ``quorum``. A group of the first form
    (``exclusive``) counts a person under their counting role only."""

    key: str
    label: str
    roles: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    quorum: int | None = None
    exclusive: bool = False

    def has(self, s: Signer) -> bool:
        if self.exclusive:  # the first form: "any" counts everyone (filtered by _judge)
            return self.roles == (ANY,) or (s.role is not None and s.role in self.roles)
        held = s.roles or (frozenset({s.role}) if s.role else frozenset())
        return bool(held & set(self.roles)) or (bool(s.email) and s.email.lower() in self.people)

    def holds(self, email: str, roles: Iterable[str]) -> bool:
        return bool(set(roles) & set(self.roles)) or email.strip().lower() in self.people


@dataclass(frozen=True)
class Requirement:
    """One requirement: rule ``number`` of its route, its ``name``, its ``kind``
    (:data:`KINDS`) over ``group``, with ``n`` (at_least; chair_or_deputy: of the
    deputies) and the ``deputy`` group (chair_or_deputy)."""

    number: int
    name: str
    kind: str
    group: Group
    n: int | None = None
    deputy: Group | None = None
    legacy_role: str | None = None  # the first form's role (for its wording)

    @property
    def rule(self) -> str:
        """How a refusal names it: 'rule 1 "the Chair and the Vice Chairs"'."""
        return f'rule {self.number} "{self.name}"'

    def describe(self) -> str:
        if self.legacy_role is not None:
            label = ROLE_LABELS[self.legacy_role]
            if self.kind == "all":
                return f"every {label}"
            if self.legacy_role == "chair" and self.n == 1:
                return "the Chair"
            n = self.n or 1
            return f"at least {_word(n)} {label}{'' if n == 1 else 's'}"
        return self.name


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date
    label: str

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end


@dataclass(frozen=True)
class RequirementResult:
    requirement: str  # e.g. "at least one Vice Chair" or 'rule 1 "the Chair and the Vice Chairs"'
    needed: int
    approved_by: tuple[str, ...]
    declined_by: tuple[str, ...]
    may_still_sign: tuple[str, ...]
    conflicted: tuple[str, ...]
    met: bool
    possible: bool
    absent: tuple[str, ...] = ()
    note: str = ""  # why it cannot be met, when the counts alone do not say

    @property
    def status(self) -> str:
        return "met" if self.met else ("open" if self.possible else "cannot be met")

    @property
    def why(self) -> str:
        parts = [
            f"approved by {', '.join(self.approved_by)}" if self.approved_by else "no approval yet"
        ]
        if self.declined_by:
            parts.append(f"declined by {', '.join(self.declined_by)}")
        if self.conflicted:
            parts.append(f"{', '.join(self.conflicted)} declared an interest")
        if self.absent:
            parts.append(f"{', '.join(self.absent)} recorded absent")
        if not self.met and self.may_still_sign:
            parts.append(f"{', '.join(self.may_still_sign)} may still sign")
        if self.note and not self.met:
            parts.append(self.note)
        return f"{self.requirement} ({self.needed} needed): {'; '.join(parts)} — {self.status}"

    def to_dict(self) -> dict:
        return {
            "requirement": self.requirement,
            "needed": self.needed,
            "approved_by": list(self.approved_by),
            "declined_by": list(self.declined_by),
            "may_still_sign": list(self.may_still_sign),
            "conflicted": list(self.conflicted),
            "absent": list(self.absent),
            "status": self.status,
            "why": self.why,
        }


@dataclass(frozen=True)
class Evaluation:
    """The scheme's judgement on a request's signatures: approved (every
    requirement met), declined (some requirement can no longer be met), or
    awaiting (more signatures needed), with each requirement's why."""

    outcome: str  # approved / declined / awaiting
    requirements: tuple[RequirementResult, ...]

    @property
    def why(self) -> str:
        return "; ".join(r.why for r in self.requirements)

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "why": self.why,
            "requirements": [r.to_dict() for r in self.requirements],
        }


def _judge(req: Requirement, signers: Sequence[Signer]) -> RequirementResult:
    """One requirement over the signers (see :data:`KINDS`)."""
    pool = [s for s in signers if req.group.has(s)]
    if req.legacy_role is not None:  # the first form, exactly as it was judged
        if req.legacy_role == ANY:
            pool = [s for s in pool if s.role is not None or s.decision is not None]
        needed = req.n if req.kind == "at_least" and req.n is not None else max(len(pool), 1)
        approved = tuple(s.name for s in pool if s.approved)
        declined = tuple(s.name for s in pool if s.decision == "decline")
        conflicted = tuple(s.name for s in pool if s.decision is None and s.conflicted)
        waiting = tuple(s.name for s in pool if s.decision is None and not s.conflicted and s.role)
        return RequirementResult(
            req.describe(),
            needed,
            approved,
            declined,
            waiting,
            conflicted,
            len(approved) >= needed,
            len(approved) + len(waiting) >= needed,
        )
    label = req.rule
    excused = [s for s in pool if s.interest]
    rest = [s for s in pool if not s.interest]
    approved = tuple(s.name for s in rest if s.approved)
    declined = tuple(s.name for s in rest if s.decision == "decline")
    absent = tuple(s.name for s in rest if s.absent)
    waiting = tuple(s.name for s in rest if s.decision is None)
    conflicted = tuple(s.name for s in excused)

    def result(needed: int, met: bool, possible: bool, note: str = "", **over: Any) -> Any:
        return RequirementResult(
            over.get("label", label),
            needed,
            over.get("approved", approved),
            over.get("declined", declined),
            over.get("waiting", waiting),
            over.get("conflicted", conflicted),
            met,
            possible,
            over.get("absent", absent),
            note,
        )

    if req.kind == "all_without_interest":
        needed = len(rest)
        if needed == 0:
            return result(
                0, False, False, f"every member of {req.group.label} declared an interest"
            )
        # an absent member is still waited for: absence excuses only under chair_or_deputy
        waiting = tuple(s.name for s in rest if s.decision is None or s.absent)
        return result(needed, len(approved) == needed, not declined, waiting=waiting)
    if req.kind == "all":
        needed = max(len(pool), 1)
        waiting = tuple(s.name for s in rest if s.decision is None)
        ok = len(approved) + len(waiting) >= needed and not excused
        note = f"{', '.join(conflicted)} declared an interest and every member must approve"
        return result(needed, len(approved) >= needed, ok, note if excused else "")
    if req.kind in ("at_least", "quorum"):
        n = req.n if req.kind == "at_least" else req.group.quorum
        assert n is not None
        can = len(approved) + len(waiting)
        if req.kind == "quorum":
            met = len(approved) >= n and len(approved) > len(declined)
            possible = can >= n and can > len(declined)
        else:
            met, possible = len(approved) >= n, can >= n
        note = (
            f"only {len(rest)} of {len(pool)} members of {req.group.label} have no interest"
            if len(rest) < n
            else ""
        )
        return result(n, met, possible, note)
    # chair_or_deputy
    deputy = req.deputy
    assert deputy is not None
    n = req.n or 1
    principal = pool
    chair_ok = tuple(s.name for s in principal if s.approved and not s.interest)
    if chair_ok:
        return result(1, True, True, approved=chair_ok)
    chair_no = tuple(s.name for s in principal if s.decision == "decline" and not s.interest)
    if chair_no:
        return result(1, False, False, f"{', '.join(chair_no)} declined", declined=chair_no)
    stand_in = all(s.interest or s.absent for s in principal)
    if not stand_in:
        return result(
            1, False, True, waiting=tuple(s.name for s in principal if s.decision is None)
        )
    names = {s.name for s in principal}
    deps = [s for s in signers if deputy.has(s) and s.name not in names]
    d_rest = [s for s in deps if not s.interest]
    d_ok = tuple(s.name for s in d_rest if s.approved)
    d_no = tuple(s.name for s in d_rest if s.decision == "decline")
    d_wait = tuple(s.name for s in d_rest if s.decision is None)
    why_stand_in = (
        f"{' and '.join(sorted(names)) or 'nobody in ' + req.group.label} "
        f"{'is' if len(names) == 1 else 'are'} conflicted or absent, so "
        f"{_word(n)} of {deputy.label} decide{'s' if n == 1 else ''}"
    )
    return result(
        n,
        len(d_ok) >= n,
        len(d_ok) + len(d_wait) >= n,
        why_stand_in,
        approved=d_ok,
        declined=d_no,
        waiting=d_wait,
        conflicted=conflicted + tuple(s.name for s in deps if s.interest),
    )


@dataclass(frozen=True)
class Scheme:
    """One route of a scheme file: who signs, what an approval needs, its limits
    and pots. ``route`` is "" for a file of the first form (one route)."""

    name: str
    version: str
    title: str
    citation: str
    description: str
    signatories: tuple[str, ...]  # the roles that may sign (any group's roles)
    requires: tuple[Requirement, ...]
    per_decision_pence: int
    per_period_pence: int | None
    period: str | None
    pots: tuple[str, ...]
    open_for_days: int
    sha256: str
    text: str = field(repr=False)
    source: str = ""
    route: str = ""
    route_title: str = ""
    groups: tuple[Group, ...] = ()
    routes: tuple[str, ...] = ()  # every route of the file
    default_route: str = ""

    def __str__(self) -> str:
        if self.route and len(self.routes) > 1:
            return f"{self.name} {self.version} ({self.route} route)"
        return f"{self.name} {self.version}"

    @property
    def first_form(self) -> bool:
        return not self.route

    def describe(self) -> str:
        """Who must approve, in words: "the Chair and at least one Vice Chair"."""
        parts = [r.describe() for r in self.requires]
        if not self.first_form:  # named rules, which may hold commas and "and"s
            return "; and ".join(parts)
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def counting_role(self, roles: Iterable[str]) -> str | None:
        """The one role a person counts under: the first of ``signatories`` they hold
        (so a person who is both Chair and Vice Chair never counts twice)."""
        held = set(roles)
        return next((r for r in self.signatories if r in held), None)

    def counts(self, email: str, roles: Iterable[str]) -> str | None:
        """The label a person signs under (their role, or the group of named people
        they are in), or None when no group of this route holds them."""
        held = set(roles)
        role = self.counting_role(held)
        if self.first_form:
            return role
        for g in self.groups:
            if g.holds(email, held):
                if role is not None and role in g.roles:
                    return role
                return g.key
        return None

    def label_of(self, counted: str | None) -> str:
        if counted is None:
            return ""
        if counted in ROLE_LABELS:
            return ROLE_LABELS[counted]
        group = next((g for g in self.groups if g.key == counted), None)
        return f"member, {group.label}" if group else counted

    def who_signs(self) -> str:
        if self.first_form:
            return ", ".join(self.signatories)
        return "; ".join(g.label for g in self.groups)

    def rules_for(self, s: Signer) -> list[Requirement]:
        """The requirements whose groups hold this signatory (for naming a refusal)."""
        return [
            r for r in self.requires if r.group.has(s) or (r.deputy is not None and r.deputy.has(s))
        ]

    def allows_pot(self, pot_name: str) -> bool:
        return pot_name.strip().lower() in {p.lower() for p in self.pots}

    def expires_on(self, requested_on: dt.date) -> dt.date:
        """The last day a request made on ``requested_on`` may be signed."""
        return requested_on + dt.timedelta(days=self.open_for_days)

    def period_of(self, day: dt.date) -> Period | None:
        """The limit period containing ``day`` (None when the scheme has no period limit)."""
        if self.period is None:
            return None
        return period_of(self.period, day)

    # -- limits, each returning (ok, why)

    def check_amount(self, amount_pence: int) -> tuple[bool, str]:
        limit = self.per_decision_pence
        if amount_pence > limit:
            return False, (
                f"{format_pence(amount_pence)} is above the per-decision limit of "
                f"{format_pence(limit)} a delegated decision may approve under {self}"
            )
        return True, f"{format_pence(amount_pence)} is within the {format_pence(limit)} limit"

    def check_period(
        self, approved_pence: int, amount_pence: int, day: dt.date
    ) -> tuple[bool, str]:
        """``approved_pence``: delegated approvals already made under this scheme
        (and route) in the period of ``day``."""
        period = self.period_of(day)
        if period is None or self.per_period_pence is None:
            return True, "no limit per period"
        total = approved_pence + amount_pence
        limit = self.per_period_pence
        under = f" under {self}" if self.route else ""
        said = (
            f"{format_pence(approved_pence)} already approved under delegation{under} in "
            f"{period.label}, plus {format_pence(amount_pence)}, makes "
            f"{format_pence(total)}"
        )
        if total > limit:
            return False, (
                f"{said}: above the {format_pence(limit)} limit for the period "
                f"({format_pence(max(limit - approved_pence, 0))} is left)"
            )
        return True, f"{said}, within the {format_pence(limit)} limit for the period"

    def check_pot(self, pot_name: str) -> tuple[bool, str]:
        if self.allows_pot(pot_name):
            return True, f"the {pot_name} pot is listed in {self}"
        return False, (
            f"the scheme {self} does not let delegated decisions draw on the "
            f"{pot_name} pot; it lists: {', '.join(self.pots)}"
        )

    # -- signatures

    def evaluate(self, signers: Sequence[Signer]) -> Evaluation:
        """Judge the signatures of one request.

        ``signers``: every person who may sign (active, in a group of the route)
        and everyone who has signed, once each."""
        results = [_judge(req, signers) for req in self.requires]
        if all(r.met for r in results):
            outcome = "approved"
        elif not all(r.possible for r in results):
            outcome = "declined"
        else:
            outcome = "awaiting"
        return Evaluation(outcome, tuple(results))

    def summary(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "route": self.route,
            "routes": list(self.routes),
            "title": self.route_title or self.title,
            "requires": self.describe(),
            "rules": [
                {"rule": r.number, "name": r.name, "kind": r.kind, "group": r.group.label}
                for r in self.requires
            ],
            "signatories": list(self.signatories),
            "per_decision_pence": self.per_decision_pence,
            "per_period_pence": self.per_period_pence,
            "period": self.period,
            "pots": list(self.pots),
            "open_for_days": self.open_for_days,
        }


@dataclass(frozen=True)
class SchemeBook:
    """A scheme file: its routes (one for the first form, under the name "")."""

    name: str
    version: str
    source: str
    default_route: str
    routes: Mapping[str, Scheme]

    def route(self, name: str | None = None) -> Scheme:
        key = (name or "").strip() or self.default_route
        if key not in self.routes:
            if not self.default_route:
                raise SchemeError(
                    self.source, "route", f"{key!r}: this scheme has one route; leave route out"
                )
            raise SchemeError(
                self.source,
                "route",
                f"{key!r} is not a route of {self.name} {self.version}; its routes are: "
                f"{', '.join(self.routes)}",
            )
        return self.routes[key]


def period_of(kind: str, day: dt.date) -> Period:
    if kind == "financial_year":
        start = dt.date(day.year if day.month >= 4 else day.year - 1, 4, 1)
        end = dt.date(start.year + 1, 3, 31)
        return Period(start, end, f"the financial year {financial_year(start)}")
    if kind == "financial_quarter":
        first = ((day.month - 4) % 12) // 3 * 3 + 4  # 4, 7, 10, 13
        year = day.year if day.month >= 4 else day.year - 1
        start = dt.date(year + (first > 12), (first - 1) % 12 + 1, 1)
        nxt = dt.date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
        return Period(
            start,
            nxt - dt.timedelta(days=1),
            f"quarter {quarter_of(start)} of {financial_year(start)}",
        )
    if kind == "calendar_year":
        return Period(dt.date(day.year, 1, 1), dt.date(day.year, 12, 31), str(day.year))
    raise ValueError(f"unknown period {kind!r}")


# ------------------------------------------------------------------ loading

FORMAT: loader.Format[SchemeBook] = loader.Format(
    kind="delegation",
    build=lambda text, source, _path, sha: _Parser(source).parse(text, sha),
    error=SchemeError,
)


def load_book(name_or_path: str | Path | None = None) -> SchemeBook:
    """Every route of the scheme file by path, or by name (``rules/<name>.yaml``);
    the shipped one by default. Validated; cached by content (rules.loader), so an
    edited file is read afresh."""
    return loader.load(FORMAT, _resolve(name_or_path))


def load_scheme(name_or_path: str | Path | None = None, route: str | None = None) -> Scheme:
    """One route (default: the file's ``default_route``) of the scheme file."""
    return load_book(name_or_path).route(route)


def scheme_from_body(body: str, source: str, route: str | None = None) -> Scheme:
    """A route of a stored copy of a scheme (rule_set_version.body), parsed (and cached)."""
    return loader.load_text(FORMAT, body, source).route(route)


def _resolve(name_or_path: str | Path | None) -> Path:
    if name_or_path is None or (isinstance(name_or_path, str) and not name_or_path.strip()):
        return DEFAULT_SCHEME
    if isinstance(name_or_path, Path):
        return name_or_path.resolve()
    text = str(name_or_path).strip()
    if "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        path = Path(text)
        if not path.is_absolute() and not path.exists() and (RULES_DIR.parent / path).exists():
            path = RULES_DIR.parent / path  # rules/delegation.yaml from anywhere
        return path.resolve()
    if not _NAME_RE.fullmatch(text):
        raise SchemeError(
            text,
            "",
            "is not a scheme name (letters, digits, '.', '_', '-') or a path to a YAML file",
        )
    path = RULES_DIR / f"{text}.yaml"
    if not path.is_file():
        raise SchemeError(
            f"{text}.yaml",
            "",
            f"no scheme named {text!r} in rules/; give a "
            "path to a scheme file, or leave it out for "
            "rules/delegation.yaml",
        )
    return path.resolve()


def parse_scheme(text: str, *, source: str = "scheme", route: str | None = None) -> Scheme:
    """Validate a scheme file's text (``source`` names it in errors); one route of
    it (default: its default route); not cached."""
    return loader.parse(FORMAT, text, source).route(route)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> SchemeError:
        return SchemeError(self.source, where, message)

    def keys(self, mapping: Mapping, where: str, model: type[Keys]) -> None:
        loader.check(
            model, mapping, source=self.source, at=where, error=SchemeError, wording="delegation"
        )

    def text(self, doc: Mapping, key: str, *, required: bool) -> str:
        if key not in doc:
            if required:
                raise self.fail(key, "missing")
            return ""
        value = doc[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"{value!r} must be non-empty text")
        return value.strip()

    def amount(self, value: object, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(where, f'{value!r} is not an amount in pounds (write e.g. "50,000")')
        try:
            pence = parse_pounds(str(value), field=where)
        except MoneyError:
            raise self.fail(
                where,
                f'{value!r} is not an amount in pounds (write e.g. "50,000" or 50000; '
                "more than £0)",
            ) from None
        if pence <= 0:
            raise self.fail(where, f"{value!r}: the limit must be more than £0")
        return pence

    def parse(self, text: str, sha: str) -> SchemeBook:
        try:
            doc = load_yaml(text)
        except Exception as exc:  # yaml.YAMLError and its marks
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.fail(where, f"is not valid YAML: {problem}") from None
        if not isinstance(doc, dict):
            raise self.fail(
                "",
                "must be a YAML mapping with name, version, groups and routes",
            )
        self.keys(doc, "", SchemeFile)
        name = self.text(doc, "name", required=True)
        if not _NAME_RE.fullmatch(name):
            raise self.fail("name", f"{name!r}: use letters, digits, '.', '_' and '-'")
        if "version" not in doc:
            raise self.fail("version", 'missing; give it as a quoted string, e.g. "2011.1"')
        version = doc["version"]
        if not isinstance(version, str):
            raise self.fail("version", f'{version!r} must be a quoted string, e.g. "{version}"')
        if not _VERSION_RE.fullmatch(version):
            raise self.fail("version", f"{version!r}: use letters, digits, '.', '_', '+', '-'")
        common = {
            "name": name,
            "version": version,
            "title": self.text(doc, "title", required=False) or name,
            "citation": self.text(doc, "source", required=False),
            "description": self.text(doc, "description", required=False),
            "sha256": sha,
            "text": text,
            "source": self.source,
        }
        if "routes" not in doc and "groups" not in doc:
            return self.first_form(doc, common)
        for key in FIRST_FORM:
            if key in doc:
                raise self.fail(
                    key,
                    "belongs to the first form of scheme (one route, by role); with groups "
                    f"and routes, give {key} inside each route (routes.<name>.{key})"
                    if key != "signatories"
                    else "belongs to the first form of scheme; with groups and routes, "
                    "the groups say who signs",
                )
        groups = self.groups(doc.get("groups"))
        raw_routes = doc.get("routes")
        if not isinstance(raw_routes, dict) or not raw_routes:
            raise self.fail(
                "routes",
                "missing; give at least one route, e.g. routes: {normal: {requires: ..., "
                "limits: ..., pots: ..., open_for_days: ...}}",
            )
        keys = [str(k) for k in raw_routes]
        for k in keys:
            if not _KEY_RE.fullmatch(k):
                raise self.fail(f"routes.{k}", "a route's name: lower-case letters, digits, '_'")
        default = doc.get("default_route")
        if default is None:
            if len(keys) > 1:
                raise self.fail(
                    "default_route", f"missing; the file has {len(keys)} routes: {', '.join(keys)}"
                )
            default = keys[0]
        if default not in keys:
            raise self.fail(
                "default_route", f"{default!r} is not one of the routes: {', '.join(keys)}"
            )
        roles = tuple(dict.fromkeys(r for g in groups.values() for r in g.roles))
        routes = {
            k: self.route(
                raw_routes[k], f"routes.{k}", k, groups, common, roles, tuple(keys), default
            )
            for k in keys
        }
        return SchemeBook(name, version, self.source, default, routes)

    def first_form(self, doc: Mapping, common: dict[str, Any]) -> SchemeBook:
        signatories = self.signatories(doc.get("signatories"))
        requires = self.requires(doc.get("requires"), signatories)
        per_decision, per_period, period = self.limits(doc.get("limits"), "limits")
        scheme = Scheme(
            **common,
            signatories=signatories,
            requires=requires,
            per_decision_pence=per_decision,
            per_period_pence=per_period,
            period=period,
            pots=self.pots(doc.get("pots"), "pots"),
            open_for_days=self.days(doc.get("open_for_days"), "open_for_days"),
            routes=("",),
        )
        return SchemeBook(common["name"], common["version"], self.source, "", {"": scheme})

    def groups(self, raw: object) -> dict[str, Group]:
        example = "e.g. groups: {chair_and_vice_chairs: {roles: [chair, vice_chair]}}"
        if not isinstance(raw, dict) or not raw:
            raise self.fail("groups", f"missing; name the signatory groups ({example})")
        out: dict[str, Group] = {}
        for key, item in raw.items():
            at = f"groups.{key}"
            if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
                raise self.fail(at, "a group's name: lower-case letters, digits, '_'")
            if not isinstance(item, dict):
                raise self.fail(at, f"must be a mapping with roles or people ({example})")
            self.keys(item, at, GroupModel)
            roles = item.get("roles") or []
            if not isinstance(roles, list):
                raise self.fail(f"{at}.roles", f"{roles!r} must be a list of roles")
            for i, r in enumerate(roles):
                if r not in GROUP_ROLES:
                    raise self.fail(
                        f"{at}.roles[{i}]",
                        f"{r!r} is not a role that may sign; use {', '.join(GROUP_ROLES)}",
                    )
            people = item.get("people") or []
            if not isinstance(people, list):
                raise self.fail(f"{at}.people", f"{people!r} must be a list of email addresses")
            emails: list[str] = []
            for i, p in enumerate(people):
                if not isinstance(p, str) or not _EMAIL_RE.fullmatch(p.strip()):
                    raise self.fail(
                        f"{at}.people[{i}]", f"{p!r} is not an email address (name people by email)"
                    )
                if p.strip().lower() in emails:
                    raise self.fail(f"{at}.people[{i}]", f"{p!r} is listed twice")
                emails.append(p.strip().lower())
            if not roles and not emails:
                raise self.fail(at, "give roles, people, or both: a group cannot be empty")
            quorum = item.get("quorum")
            if quorum is not None:
                if isinstance(quorum, bool) or not isinstance(quorum, int) or quorum < 1:
                    raise self.fail(f"{at}.quorum", f"{quorum!r}: a whole number, 1 or more")
                if not roles and quorum > len(emails):
                    raise self.fail(
                        f"{at}.quorum",
                        f"{quorum} is more than the {len(emails)} people the group names",
                    )
            label = item.get("label", key.replace("_", " "))
            if not isinstance(label, str) or not label.strip():
                raise self.fail(f"{at}.label", f"{label!r} must be non-empty text")
            out[key] = Group(key, label.strip(), tuple(roles), tuple(emails), quorum)
        return out

    def route(
        self,
        raw: object,
        at: str,
        key: str,
        groups: dict[str, Group],
        common: dict[str, Any],
        roles: tuple[str, ...],
        keys: tuple[str, ...],
        default: str,
    ) -> Scheme:
        if not isinstance(raw, dict):
            raise self.fail(at, "must be a mapping with requires, limits, pots and open_for_days")
        self.keys(raw, at, RouteModel)
        title = raw.get("title", "")
        if not isinstance(title, str):
            raise self.fail(f"{at}.title", f"{title!r} must be text")
        per_decision, per_period, period = self.limits(raw.get("limits"), f"{at}.limits")
        return Scheme(
            **common,
            signatories=roles,
            requires=self.rules(raw.get("requires"), f"{at}.requires", groups),
            per_decision_pence=per_decision,
            per_period_pence=per_period,
            period=period,
            pots=self.pots(raw.get("pots"), f"{at}.pots"),
            open_for_days=self.days(raw.get("open_for_days"), f"{at}.open_for_days"),
            route=key,
            route_title=title.strip() or key,
            groups=tuple(groups.values()),
            routes=keys,
            default_route=default,
        )

    def rules(self, raw: object, at: str, groups: dict[str, Group]) -> tuple[Requirement, ...]:
        example = "e.g. - {kind: all_without_interest, group: chair_and_vice_chairs}"
        if not isinstance(raw, list) or not raw:
            raise self.fail(at, f"missing; a non-empty list of requirements ({example})")
        out: list[Requirement] = []
        known = ", ".join(groups)
        for i, item in enumerate(raw):
            w = f"{at}[{i}]"
            if not isinstance(item, dict):
                raise self.fail(w, f"{item!r} must be a mapping ({example})")
            self.keys(item, w, RuleModel)
            kind = item.get("kind")
            if kind not in KINDS:
                raise self.fail(
                    f"{w}.kind",
                    f"{kind!r} is not a kind of requirement; use one of: " + ", ".join(KINDS),
                )
            g = item.get("group")
            if g not in groups:
                raise self.fail(f"{w}.group", f"{g!r} is not one of the groups: {known}")
            group = groups[g]
            n = item.get("n")
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
                raise self.fail(f"{w}.n", f"{n!r}: a whole number, 1 or more")
            if kind == "at_least" and n is None:
                raise self.fail(f"{w}.n", "missing: at_least needs n, how many must approve")
            if kind in ("all_without_interest", "all", "quorum") and n is not None:
                raise self.fail(f"{w}.n", f"not used by {kind}; leave it out")
            if kind == "quorum" and group.quorum is None:
                raise self.fail(
                    f"{w}.group", f"{g!r} has no quorum; give groups.{g}.quorum for kind quorum"
                )
            deputy = None
            if kind == "chair_or_deputy":
                d = item.get("deputy")
                if d not in groups:
                    raise self.fail(
                        f"{w}.deputy", f"{d!r} is not one of the groups: {known} (who stands in)"
                    )
                deputy = groups[d]
            elif "deputy" in item:
                raise self.fail(f"{w}.deputy", f"used only by chair_or_deputy, not {kind}")
            name = item.get("name") or self.default_name(kind, group, n, deputy)
            if not isinstance(name, str):
                raise self.fail(f"{w}.name", f"{name!r} must be text")
            out.append(Requirement(i + 1, name.strip(), kind, group, n, deputy))
        return tuple(out)

    @staticmethod
    def default_name(kind: str, group: Group, n: int | None, deputy: Group | None) -> str:
        if kind == "all_without_interest":
            return f"all of {group.label} without an interest"
        if kind == "all":
            return f"all of {group.label}"
        if kind == "at_least":
            return f"at least {_word(n or 1)} of {group.label}"
        if kind == "quorum":
            return f"a quorum ({group.quorum}) of {group.label}"
        assert deputy is not None
        return f"{group.label}, or {deputy.label} when conflicted or absent"

    def signatories(self, raw: object) -> tuple[str, ...]:
        allowed = ", ".join(SIGNATORY_ROLES)
        if raw is None:
            raise self.fail("signatories", f"missing; list the roles who may sign ({allowed})")
        if not isinstance(raw, list) or not raw:
            raise self.fail("signatories", f"{raw!r} must be a non-empty list of roles ({allowed})")
        out: list[str] = []
        for i, role in enumerate(raw):
            if role not in SIGNATORY_ROLES:
                raise self.fail(
                    f"signatories[{i}]", f"{role!r} is not a role that may sign; use {allowed}"
                )
            if role in out:
                raise self.fail(f"signatories[{i}]", f"{role!r} is listed twice")
            out.append(role)
        return tuple(out)

    def requires(self, raw: object, signatories: tuple[str, ...]) -> tuple[Requirement, ...]:
        example = "e.g. - {role: chair, at_least: 1}"
        if raw is None:
            raise self.fail("requires", f"missing; list who must approve ({example})")
        if not isinstance(raw, list) or not raw:
            raise self.fail("requires", f"must be a non-empty list ({example})")
        roles_allowed = (*signatories, ANY)
        out: list[Requirement] = []
        for i, item in enumerate(raw):
            where = f"requires[{i}]"
            if not isinstance(item, dict):
                raise self.fail(
                    where, f"{item!r} must be a mapping with role and at_least ({example})"
                )
            self.keys(item, where, RequirementModel)
            if "role" not in item:
                raise self.fail(f"{where}.role", f"missing; one of {', '.join(roles_allowed)}")
            role = item["role"]
            if role not in roles_allowed:
                raise self.fail(
                    f"{where}.role",
                    f"{role!r} is not allowed; use one of the "
                    f"signatories ({', '.join(signatories)}) or "
                    f"{ANY!r}",
                )
            if any(r.legacy_role == role for r in out):
                raise self.fail(f"{where}.role", f"{role!r} has two requirements; give one")
            if "at_least" not in item:
                raise self.fail(f"{where}.at_least", "missing; a whole number (1 or more) or all")
            n = item["at_least"]
            if n == "all":
                at_least = None
            elif isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise self.fail(
                    f"{where}.at_least",
                    f"{n!r} is not allowed; give a whole number, 1 or more, or all",
                )
            else:
                at_least = n
            label = ROLE_LABELS[role]
            group = Group(role, label, (role,), exclusive=True)  # "any": every signatory
            kind = "all" if at_least is None else "at_least"
            req = Requirement(i + 1, "", kind, group, at_least, legacy_role=role)
            out.append(Requirement(i + 1, req.describe(), kind, group, at_least, legacy_role=role))
        return tuple(out)

    def limits(self, raw: object, at: str) -> tuple[int, int | None, str | None]:
        if raw is None:
            raise self.fail(at, "missing; give per_decision (and per_period with period)")
        if not isinstance(raw, dict):
            allowed = ", ".join(LimitsModel.allowed())
            raise self.fail(at, f"{raw!r} must be a mapping of {allowed}")
        self.keys(raw, at, LimitsModel)
        if "per_decision" not in raw:
            raise self.fail(f"{at}.per_decision", 'missing; an amount in pounds, e.g. "50,000"')
        per_decision = self.amount(raw["per_decision"], f"{at}.per_decision")
        per_period = period = None
        if "per_period" in raw:
            per_period = self.amount(raw["per_period"], f"{at}.per_period")
            if per_period < per_decision:
                raise self.fail(
                    f"{at}.per_period",
                    f"{format_pence(per_period)} is below the "
                    f"per-decision limit "
                    f"{format_pence(per_decision)}",
                )
            if "period" not in raw:
                raise self.fail(f"{at}.period", f"missing; one of {', '.join(PERIODS)}")
        if "period" in raw:
            period = raw["period"]
            if period not in PERIODS:
                raise self.fail(
                    f"{at}.period",
                    f"{period!r} is not allowed; use one of: "
                    + ", ".join(f"{k} ({v})" for k, v in PERIODS.items()),
                )
            if per_period is None:
                raise self.fail(f"{at}.per_period", f"missing: a period ({period}) needs a limit")
        return per_decision, per_period, period

    def pots(self, raw: object, at: str) -> tuple[str, ...]:
        if raw is None:
            raise self.fail(at, "missing; list the pots delegated decisions may draw on")
        if not isinstance(raw, list) or not raw:
            raise self.fail(at, f"{raw!r} must be a non-empty list of pot names")
        out: list[str] = []
        for i, name in enumerate(raw):
            if not isinstance(name, str) or not name.strip():
                raise self.fail(f"{at}[{i}]", f"{name!r} must be a pot's name")
            if name.strip().lower() in {p.lower() for p in out}:
                raise self.fail(f"{at}[{i}]", f"{name!r} is listed twice")
            out.append(name.strip())
        return tuple(out)

    def days(self, raw: object, at: str) -> int:
        if raw is None:
            raise self.fail(at, "missing; how many days a request stays open")
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_OPEN_DAYS:
            raise self.fail(
                at,
                f"{raw!r} is not allowed; give a whole number of days from 1 to {MAX_OPEN_DAYS}",
            )
        return raw
