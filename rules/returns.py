"""Return schedules: which returns a grant owes and when each falls due.

``rules/returns.yaml`` (format in docs/returns.md) declares, for every
programme by default, per programme by name, and optionally per grant by ref,
a list of returns: a kind (quarterly progress report, quarterly
efficiency-savings return, six-monthly monitoring, a benefits report on
completion), how often it falls (``quarter``, ``half_year``, ``completion``)
and how many days after its period ends it is due. A due date that falls on a
weekend or an English bank holiday (the ``holidays`` package, United Kingdom,
subdivision England) is moved by a declared rule: to the next working day, to
the previous one, or not at all.

:func:`load_return_rules` reads a file by path (default: the shipped one) and
validates it strictly: every error names the file, the key and what is
allowed. The sweep (engine/commands/sweep.py) turns a schedule into rows of
``grant_return`` for each period that has started.

Periods are financial: the year runs 1 April to 31 March, quarters end
30 June, 30 September, 31 December and 31 March; half-years end 30 September
and 31 March. A grant owes a periodic return for every period that ends on or
after the day it was approved and starts on or before the day it closed (an
active grant owes them until it is closed); the benefits report's period runs
from approval to completion: the earlier of the grant's end date and the day
it closed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from engine.domain.savings_views import PER_PERIOD, READINGS
from engine.domain.words import KIND_WORDS
from engine.domain.yamlio import load_yaml
from engine.settings import get_settings
from rules import loader
from rules.errors import RuleFileError
from rules.loader import Keys, where

__all__ = [
    "CALENDARS",
    "DEFAULT_FILE",
    "EVERY",
    "KINDS",
    "MOVES",
    "PROGRESS_KINDS",
    "READINGS",
    "Calendar",
    "ReturnLine",
    "ReturnRules",
    "ReturnRulesError",
    "Schedule",
    "calendar",
    "due_date",
    "load_return_rules",
    "parse_return_rules",
    "periods",
]

RULES_DIR = Path(__file__).resolve().parent
DEFAULT_FILE = RULES_DIR / "returns.yaml"

# kind -> what people call it (the words live in engine/domain/words.py)
KINDS: dict[str, str] = KIND_WORDS
EVERY: dict[str, str] = {
    "quarter": "each financial quarter (ending 30 Jun, 30 Sep, 31 Dec, 31 Mar)",
    "half_year": "each financial half-year (ending 30 Sep, 31 Mar)",
    "completion": "once, when the grant completes (its end date, or the day it closed if earlier)",
}
MOVES: dict[str, str] = {
    "next_working_day": "a due date on a weekend or bank holiday moves to the next working day",
    "previous_working_day": "...moves to the working day before",
    "none": "due dates are never moved",
}
CALENDARS: dict[str, str] = {
    "england": "weekends and bank holidays in England (holidays package: GB, subdivision ENG)",
    "weekends": "weekends only",
}
MAX_DUE_DAYS = 366
# kinds that report progress (per milestone or outcome) unless a schedule says otherwise
PROGRESS_KINDS = ("progress", "monitoring")

_NAME_RE, _VERSION_RE = loader.NAME_RE, loader.VERSION_RE


class ReturnRulesError(RuleFileError):
    """A schedule file that cannot be used."""

    FIELD = "returns_rules"


# ------------------------------------------------------------------ working days


class Calendar:
    """Working days: not a weekend and (for ``england``) not an English bank holiday."""

    def __init__(self, name: str) -> None:
        if name not in CALENDARS:
            raise ValueError(f"calendar {name!r}: use one of {', '.join(CALENDARS)}")
        self.name = name
        self._years: dict[int, frozenset[dt.date]] = {}
        self._lock = threading.Lock()

    def holidays_in(self, year: int) -> frozenset[dt.date]:
        found = self._years.get(year)
        if found is None:
            if self.name == "weekends":
                found = frozenset()
            else:
                import holidays

                found = frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))
            with self._lock:
                self._years[year] = found
        return found

    def holiday_name(self, day: dt.date) -> str | None:
        if self.name == "weekends" or day not in self.holidays_in(day.year):
            return None
        import holidays

        return holidays.country_holidays("GB", subdiv="ENG", years=day.year).get(day)

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self.holidays_in(day.year)

    def move(self, day: dt.date, rule: str) -> dt.date:
        if rule == "none":
            return day
        step = dt.timedelta(days=1 if rule == "next_working_day" else -1)
        while not self.is_working_day(day):
            day += step
        return day


_calendars: dict[str, Calendar] = {}


def calendar(name: str = "england") -> Calendar:
    """The process-wide calendar of that name (holiday years are cached)."""
    cal = _calendars.get(name)
    if cal is None:
        cal = _calendars.setdefault(name, Calendar(name))
    return cal


def due_date(period_end: dt.date, due_days: int, move: str, cal: Calendar) -> dt.date:
    """period end + ``due_days``, moved off weekends and bank holidays by ``move``."""
    return cal.move(period_end + dt.timedelta(days=due_days), move)


# ------------------------------------------------------------------ periods


def _quarter_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The financial quarter containing ``day`` (calendar quarters shifted so
    Q1 is April-June): (first day, last day)."""
    first_month = 3 * ((day.month - 1) // 3) + 1  # Jan, Apr, Jul, Oct
    start = dt.date(day.year, first_month, 1)
    end = _month_end(day.year, first_month + 2)
    return start, end


def _half_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The financial half-year containing ``day``: April-September or October-March."""
    if 4 <= day.month <= 9:
        return dt.date(day.year, 4, 1), dt.date(day.year, 9, 30)
    year = day.year if day.month >= 10 else day.year - 1
    return dt.date(year, 10, 1), dt.date(year + 1, 3, 31)


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def periods(every: str, first: dt.date, last: dt.date) -> Iterator[tuple[dt.date, dt.date]]:
    """Every financial quarter (or half-year) overlapping ``first``..``last``, in order."""
    if every not in ("quarter", "half_year"):
        raise ValueError(f"periods: every={every!r}")
    of = _quarter_of if every == "quarter" else _half_of
    start, end = of(first)
    while start <= last:
        yield start, end
        start, end = of(end + dt.timedelta(days=1))


# ------------------------------------------------------------------ the rules


@dataclass(frozen=True)
class ReturnLine:
    kind: str
    every: str
    due_days: int
    move: str
    where: str  # e.g. programmes["EM IEP"].returns[1]
    # how a figure on this kind of return is stated: the period's own, or a running
    # total to date (engine/domain/savings_views.py); issue 13
    reading: str = PER_PERIOD
    # whether this kind of return reports progress per milestone or outcome (status and
    # narrative), spend, issues and risks (issue 13 item 6; language 2012.2). Not
    # declared: progress reports and monitoring returns do, the others do not
    progress: bool = False

    def due(self, period_end: dt.date, cal: Calendar) -> dt.date:
        return due_date(period_end, self.due_days, self.move, cal)

    def describe(self) -> str:
        moved = {"none": "", "next_working_day": ", or the next working day",
                 "previous_working_day": ", or the working day before"}[self.move]  # fmt: skip
        when = {"quarter": "each quarter", "half_year": "each half-year",
                "completion": "on completion"}[self.every]  # fmt: skip
        after = "the grant completes" if self.every == "completion" else "the period ends"
        return f"{KINDS[self.kind]} {when}, due {self.due_days} days after {after}{moved}"


@dataclass(frozen=True)
class Schedule:
    scope: str  # "default", "programme <name>" or "grant <ref>"
    lines: tuple[ReturnLine, ...]
    first_period_end: dt.date | None  # "from": no returns for periods ending before it


@dataclass(frozen=True)
class ReturnRules:
    name: str
    version: str
    title: str
    sha256: str
    source: str
    calendar: Calendar
    default: Schedule
    programmes: Mapping[str, Schedule]
    grants: Mapping[str, Schedule]

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def schedules(self) -> Iterator[Schedule]:
        yield self.default
        yield from self.programmes.values()
        yield from self.grants.values()

    def schedule_for(self, programme: str, grant_ref: str) -> Schedule:
        """The grant's schedule: its own, else its programme's, else the default."""
        return self.grants.get(grant_ref) or self.programmes.get(programme) or self.default

    def reading_for(self, programme: str, grant_ref: str, kind: str) -> str:
        """How the grant's returns of ``kind`` state their figures (``per_period`` when
        its schedule has no such line)."""
        line = next((x for x in self.schedule_for(programme, grant_ref).lines if x.kind == kind),
                    None)  # fmt: skip
        return line.reading if line is not None else PER_PERIOD

    def progress_for(self, programme: str, grant_ref: str, kind: str) -> bool:
        """Whether the grant's returns of ``kind`` report progress (a kind its schedule
        does not list: as the language's default, :data:`PROGRESS_KINDS`)."""
        line = next((x for x in self.schedule_for(programme, grant_ref).lines if x.kind == kind),
                    None)  # fmt: skip
        return line.progress if line is not None else kind in PROGRESS_KINDS


# ------------------------------------------------------------------ the file's model


class ReturnRulesFile(Keys):
    """The top level of a schedule file (docs/returns.md)."""

    name: Any
    version: Any
    title: Any = None
    source: Any = None
    description: Any = None
    calendar: Any = None
    move: Any = None
    default: Any
    programmes: Any = None
    grants: Any = None


class ScheduleModel(Keys):
    """``default``, ``programmes.<name>`` or ``grants.<ref>``."""

    returns: Any = None
    move: Any = None
    from_: Any = Field(None, alias="from")


class ReturnLineModel(Keys):
    """One entry of a schedule's ``returns``."""

    kind: Any
    every: Any
    due_days: Any
    move: Any = None
    reading: Any = None
    progress: Any = None


_where = where


def _mapping(raw: Any, src: str, at: str, model: type[Keys]) -> dict:
    return loader.check(model, raw, source=src, at=at, error=ReturnRulesError, wording="schedule")


def _choice(raw: Any, src: str, where: str, allowed: Mapping[str, str]) -> str:
    if not isinstance(raw, str) or raw not in allowed:
        raise ReturnRulesError(
            src, where, f"{raw!r} is not allowed; use one of: {', '.join(allowed)}"
        )
    return raw


def _schedule(raw: Any, src: str, where: str, scope: str, move: str) -> Schedule:
    body = _mapping(raw, src, where, ScheduleModel)
    if "move" in body:
        move = _choice(body["move"], src, _where(where, "move"), MOVES)
    first = body.get("from")
    if first is not None:
        if isinstance(first, dt.datetime):
            first = first.date()
        if not isinstance(first, dt.date):
            raise ReturnRulesError(
                src, _where(where, "from"), f"{first!r} is not a date (write e.g. 2011-06-30)"
            )
    lines_raw = body.get("returns")
    lw = _where(where, "returns")
    if not isinstance(lines_raw, list) or not lines_raw:
        raise ReturnRulesError(
            src,
            lw,
            "is required: a list of returns, e.g. [{kind: progress, every: quarter, due_days: 30}]",
        )
    lines: list[ReturnLine] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(lines_raw):
        w = _where(lw, i)
        line = _mapping(item, src, w, ReturnLineModel)
        kind = _choice(line["kind"], src, _where(w, "kind"), KINDS)
        if kind in seen:
            raise ReturnRulesError(
                src,
                _where(w, "kind"),
                f"{kind} is already declared at {seen[kind]}; each kind once per schedule",
            )
        seen[kind] = w
        every = _choice(line["every"], src, _where(w, "every"), EVERY)
        days = line["due_days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_DUE_DAYS:
            raise ReturnRulesError(
                src,
                _where(w, "due_days"),
                f"{days!r} is not allowed; a whole number of days from 0 to {MAX_DUE_DAYS}",
            )
        line_move = _choice(line["move"], src, _where(w, "move"), MOVES) if "move" in line else move
        reading = (
            _choice(line["reading"], src, _where(w, "reading"), READINGS)
            if "reading" in line
            else PER_PERIOD
        )
        given = line.get("progress")
        if given is None:
            progress = kind in PROGRESS_KINDS
        elif isinstance(given, bool) or str(given).lower() in ("yes", "no"):
            progress = given if isinstance(given, bool) else str(given).lower() == "yes"
        else:
            raise ReturnRulesError(
                src, _where(w, "progress"), f"{given!r} is not allowed; use yes or no"
            )
        lines.append(ReturnLine(kind, every, days, line_move, w, reading, progress))
    return Schedule(scope, tuple(lines), first)


def parse_return_rules(
    text: str, source: str = "returns.yaml", sha256: str | None = None
) -> ReturnRules:
    """Validate and build the rules from the file's text; errors name the key."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ReturnRulesError(source, "", f"not valid YAML: {exc}") from None
    body = _mapping(raw, source, "", ReturnRulesFile)
    name, version = str(body["name"]), str(body["version"])
    if not _NAME_RE.fullmatch(name):
        raise ReturnRulesError(source, "name", f"{name!r}: letters, digits, '.', '_' or '-'")
    if not _VERSION_RE.fullmatch(version):
        raise ReturnRulesError(
            source, "version", f"{version!r}: letters, digits, '.', '_', '+', '-'"
        )
    cal_name = _choice(body.get("calendar", "england"), source, "calendar", CALENDARS)
    move = _choice(body.get("move", "next_working_day"), source, "move", MOVES)
    default = _schedule(body["default"], source, "default", "default", move)
    scoped: dict[str, dict[str, Schedule]] = {}
    for key, label in (("programmes", "programme"), ("grants", "grant")):
        found = body.get(key) or {}
        if not isinstance(found, dict):
            raise ReturnRulesError(
                source,
                key,
                f"must be a mapping of {label} {'name' if label == 'programme' else 'ref'}"
                " to its schedule",
            )
        scoped[key] = {
            str(k): _schedule(v, source, _where(key, str(k)), f"{label} {k}", move)
            for k, v in found.items()
        }
    return ReturnRules(
        name=name,
        version=version,
        title=str(body.get("title") or ""),
        sha256=sha256 or hashlib.sha256(text.encode()).hexdigest(),
        source=source,
        calendar=calendar(cal_name),
        default=default,
        programmes=scoped["programmes"],
        grants=scoped["grants"],
    )


FORMAT: loader.Format[ReturnRules] = loader.Format(
    kind="returns",
    build=lambda text, source, _path, sha: parse_return_rules(text, source, sha),
    error=ReturnRulesError,
    source=loader.shown,
    unreadable=lambda fmt, p, _exc: fmt.error(str(p), "", "no such file"),
)


def rules_path(path: str | Path | None = None) -> Path:
    """The file in force: explicit > $QUORUM_RETURNS_RULES > rules/returns.yaml."""
    return Path(path or get_settings().returns_rules or DEFAULT_FILE)


def load_return_rules(path: str | Path | None = None) -> ReturnRules:
    """Read and validate a schedule file (cached while the file is unchanged)."""
    return loader.load(FORMAT, rules_path(path))
