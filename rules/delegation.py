"""The scheme of delegation: a versioned YAML file, validated and evaluated.

Between Board meetings the Chair and Vice Chairs may approve funding under a
scheme the Board set: who may sign, which signatures an approval needs, the
limit per decision and per period, the pots it may draw on, and how long a
request stays open. ``rules/delegation.yaml`` is the shipped scheme; the
format is in docs/delegation.md.

:func:`load_scheme` reads a file by name or path and validates it strictly:
every error names the file, the key (``limits.per_decision``) and what is
allowed. :meth:`Scheme.evaluate` judges a request's signatures and returns
*why*: for each requirement, who approved, who declined, who may still sign,
and whether it is met, open or can no longer be met.

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

from engine.domain.errors import ValidationError
from engine.domain.money import MoneyError, format_pence, parse_pounds
from engine.domain.words import financial_year, quarter_of
from engine.domain.yamlio import load_yaml
from rules import loader
from rules.loader import Keys

__all__ = [
    "DEFAULT_SCHEME",
    "PERIODS",
    "SIGNATORY_ROLES",
    "Evaluation",
    "Period",
    "Requirement",
    "RequirementResult",
    "Scheme",
    "SchemeError",
    "Signer",
    "load_scheme",
    "parse_scheme",
    "scheme_from_body",
]

RULES_DIR = Path(__file__).resolve().parent
DEFAULT_SCHEME = RULES_DIR / "delegation.yaml"
SIGNATORY_ROLES = ("chair", "vice_chair")  # the roles a scheme may let sign
ANY = "any"  # a requirement counting every signatory, whatever their role
PERIODS = {
    "financial_year": "1 April to 31 March",
    "financial_quarter": "April-June, July-September, October-December, January-March",
    "calendar_year": "1 January to 31 December",
}
ROLE_LABELS = {"chair": "Chair", "vice_chair": "Vice Chair", ANY: "signatory"}



class SchemeFile(Keys):
    """The top level of a scheme of delegation (docs/delegation.md)."""

    name: Any = None
    version: Any = None
    title: Any = None
    source: Any = None
    description: Any = None
    signatories: Any = None
    requires: Any = None
    limits: Any = None
    pots: Any = None
    open_for_days: Any = None


class LimitsModel(Keys):
    """``limits``."""

    per_decision: Any = None
    per_period: Any = None
    period: Any = None


class RequirementModel(Keys):
    """One entry of ``requires``."""

    role: Any = None
    at_least: Any = None

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")
_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
MAX_OPEN_DAYS = 366


class SchemeError(ValidationError):
    """A scheme file that cannot be used; the message names the file and the key."""

    def __init__(self, source: str, where: str, message: str) -> None:
        text = f"{source}: {where}: {message}" if where else f"{source}: {message}"
        super().__init__(text, field="scheme")
        self.source = source
        self.where = where


# ------------------------------------------------------------------ the scheme


@dataclass(frozen=True)
class Requirement:
    """``at_least`` approvals from signatories counted under ``role`` (``any``:
    every signatory); ``at_least`` None means all of them (and at least one)."""

    role: str
    at_least: int | None

    def describe(self) -> str:
        label = ROLE_LABELS[self.role]
        if self.at_least is None:
            return f"every {label}"
        if self.role == "chair" and self.at_least == 1:
            return "the Chair"
        n = self.at_least
        word = _WORDS[n] if n < len(_WORDS) else str(n)
        return f"at least {word} {label}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date
    label: str

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end


@dataclass(frozen=True)
class Signer:
    """A signatory as the evaluation sees them: the role they count under (None
    when they no longer hold a signatory role), their decision if they have
    signed, and whether they have declared an interest in the item."""

    name: str
    role: str | None
    decision: str | None = None  # approve / decline / None: not signed
    conflicted: bool = False


@dataclass(frozen=True)
class RequirementResult:
    requirement: str  # e.g. "at least one Vice Chair"
    needed: int
    approved_by: tuple[str, ...]
    declined_by: tuple[str, ...]
    may_still_sign: tuple[str, ...]
    conflicted: tuple[str, ...]
    met: bool
    possible: bool

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
        if not self.met and self.may_still_sign:
            parts.append(f"{', '.join(self.may_still_sign)} may still sign")
        return f"{self.requirement} ({self.needed} needed): {'; '.join(parts)} — {self.status}"

    def to_dict(self) -> dict:
        return {
            "requirement": self.requirement,
            "needed": self.needed,
            "approved_by": list(self.approved_by),
            "declined_by": list(self.declined_by),
            "may_still_sign": list(self.may_still_sign),
            "conflicted": list(self.conflicted),
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


@dataclass(frozen=True)
class Scheme:
    name: str
    version: str
    title: str
    citation: str
    description: str
    signatories: tuple[str, ...]
    requires: tuple[Requirement, ...]
    per_decision_pence: int
    per_period_pence: int | None
    period: str | None
    pots: tuple[str, ...]
    open_for_days: int
    sha256: str
    text: str = field(repr=False)
    source: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    def describe(self) -> str:
        """Who must approve, in words: "the Chair and at least one Vice Chair"."""
        parts = [r.describe() for r in self.requires]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def counting_role(self, roles: Iterable[str]) -> str | None:
        """The one role a person counts under: the first of ``signatories`` they hold
        (so a person who is both Chair and Vice Chair never counts twice)."""
        held = set(roles)
        return next((r for r in self.signatories if r in held), None)

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
        """``approved_pence``: delegated approvals already made in the period of ``day``."""
        period = self.period_of(day)
        if period is None or self.per_period_pence is None:
            return True, "no limit per period"
        total = approved_pence + amount_pence
        limit = self.per_period_pence
        said = (
            f"{format_pence(approved_pence)} already approved under delegation in "
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

        ``signers``: every person who may sign (active, holding a signatory role)
        and everyone who has signed, once each."""
        results = []
        for req in self.requires:
            pool = [s for s in signers if req.role == ANY or s.role == req.role]
            if req.role == ANY:  # only people who may sign, or whose signature stands
                pool = [s for s in pool if s.role is not None or s.decision is not None]
            needed = req.at_least if req.at_least is not None else max(len(pool), 1)
            approved = tuple(s.name for s in pool if s.decision == "approve")
            declined = tuple(s.name for s in pool if s.decision == "decline")
            conflicted = tuple(s.name for s in pool if s.decision is None and s.conflicted)
            waiting = tuple(
                s.name for s in pool if s.decision is None and not s.conflicted and s.role
            )
            results.append(
                RequirementResult(
                    requirement=req.describe(),
                    needed=needed,
                    approved_by=approved,
                    declined_by=declined,
                    may_still_sign=waiting,
                    conflicted=conflicted,
                    met=len(approved) >= needed,
                    possible=len(approved) + len(waiting) >= needed,
                )
            )
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
            "title": self.title,
            "requires": self.describe(),
            "signatories": list(self.signatories),
            "per_decision_pence": self.per_decision_pence,
            "per_period_pence": self.per_period_pence,
            "period": self.period,
            "pots": list(self.pots),
            "open_for_days": self.open_for_days,
        }


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

FORMAT: loader.Format[Scheme] = loader.Format(
    kind="delegation",
    build=lambda text, source, _path, sha: _Parser(source).parse(text, sha),
    error=SchemeError,
)


def load_scheme(name_or_path: str | Path | None = None) -> Scheme:
    """The scheme by path, or by name (``rules/<name>.yaml``); the shipped one by
    default. Validated; cached by content (rules.loader), so an edited file is
    read afresh."""
    return loader.load(FORMAT, _resolve(name_or_path))


def scheme_from_body(body: str, source: str) -> Scheme:
    """A stored copy of a scheme (rule_set_version.body), parsed (and cached)."""
    return loader.load_text(FORMAT, body, source)


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


def parse_scheme(text: str, *, source: str = "scheme") -> Scheme:
    """Validate a scheme file's text (``source`` names it in errors); not cached."""
    return loader.parse(FORMAT, text, source)


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

    def parse(self, text: str, sha: str) -> Scheme:
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
                "must be a YAML mapping with name, version, signatories, "
                "requires, limits, pots and open_for_days",
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
        signatories = self.signatories(doc.get("signatories"))
        requires = self.requires(doc.get("requires"), signatories)
        per_decision, per_period, period = self.limits(doc.get("limits"))
        return Scheme(
            name=name,
            version=version,
            title=self.text(doc, "title", required=False) or name,
            citation=self.text(doc, "source", required=False),
            description=self.text(doc, "description", required=False),
            signatories=signatories,
            requires=requires,
            per_decision_pence=per_decision,
            per_period_pence=per_period,
            period=period,
            pots=self.pots(doc.get("pots")),
            open_for_days=self.days(doc.get("open_for_days")),
            sha256=sha,
            text=text,
            source=self.source,
        )

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
            if any(r.role == role for r in out):
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
            out.append(Requirement(role, at_least))
        return tuple(out)

    def limits(self, raw: object) -> tuple[int, int | None, str | None]:
        if raw is None:
            raise self.fail("limits", "missing; give per_decision (and per_period with period)")
        if not isinstance(raw, dict):
            allowed = ", ".join(LimitsModel.allowed())
            raise self.fail("limits", f"{raw!r} must be a mapping of {allowed}")
        self.keys(raw, "limits", LimitsModel)
        if "per_decision" not in raw:
            raise self.fail("limits.per_decision", 'missing; an amount in pounds, e.g. "50,000"')
        per_decision = self.amount(raw["per_decision"], "limits.per_decision")
        per_period = period = None
        if "per_period" in raw:
            per_period = self.amount(raw["per_period"], "limits.per_period")
            if per_period < per_decision:
                raise self.fail(
                    "limits.per_period",
                    f"{format_pence(per_period)} is below the "
                    f"per-decision limit "
                    f"{format_pence(per_decision)}",
                )
            if "period" not in raw:
                raise self.fail("limits.period", f"missing; one of {', '.join(PERIODS)}")
        if "period" in raw:
            period = raw["period"]
            if period not in PERIODS:
                raise self.fail(
                    "limits.period",
                    f"{period!r} is not allowed; use one of: "
                    + ", ".join(f"{k} ({v})" for k, v in PERIODS.items()),
                )
            if per_period is None:
                raise self.fail("limits.per_period", f"missing: a period ({period}) needs a limit")
        return per_decision, per_period, period

    def pots(self, raw: object) -> tuple[str, ...]:
        if raw is None:
            raise self.fail("pots", "missing; list the pots delegated decisions may draw on")
        if not isinstance(raw, list) or not raw:
            raise self.fail("pots", f"{raw!r} must be a non-empty list of pot names")
        out: list[str] = []
        for i, name in enumerate(raw):
            if not isinstance(name, str) or not name.strip():
                raise self.fail(f"pots[{i}]", f"{name!r} must be a pot's name")
            if name.strip().lower() in {p.lower() for p in out}:
                raise self.fail(f"pots[{i}]", f"{name!r} is listed twice")
            out.append(name.strip())
        return tuple(out)

    def days(self, raw: object) -> int:
        if raw is None:
            raise self.fail("open_for_days", "missing; how many days a request stays open")
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_OPEN_DAYS:
            raise self.fail(
                "open_for_days",
                f"{raw!r} is not allowed; give a whole number of days from 1 to {MAX_OPEN_DAYS}",
            )
        return raw
