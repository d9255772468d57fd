"""Every word Quorum writes about dates, periods, financial years, kinds of
return, roles and money: one module, used by Python code and, as Jinja filters
(:data:`FILTERS`, :func:`install`), by every template and paper.

Nothing else builds these words: not SQL (the deadline sweep stores codes and
ISO dates, see :func:`return_message`), not another helper.

Forms (1 August 2011, a Monday):

=====================  ===================================  =====================
function / filter      gives                                 used for
=====================  ===================================  =====================
``long_date``          Monday 1 August 2011                  due dates in messages
``date_words``         1 August 2011                         meetings, periods
``short_date``         1 Aug 2011                            refusals, audit, stamps
``financial_year``     2011/12                               April to March
``period_words``       1 April to 30 June 2011 (Q1 2011/12)  what a return covers
``kind_words``         quarterly efficiency-savings return   a return's kind
``role_words``         programme officer                     a person's role
``code_words``         awaiting decision                     a state (filter ``words``)
``gbp``                £1,250.50                             pence (money.format_pence)
=====================  ===================================  =====================

Each date function takes a ``datetime.date`` or its ISO text (as a JSON
context carries it), and remembers its last few thousand answers: a dispatcher
sending the sweep's messages meets the same few dates again and again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from engine.domain.money import format_pence

__all__ = [
    "SIGNATURE_WORDS",
    "ESCALATED_TO",
    "FILTERS",
    "KIND_WORDS",
    "MONTHS",
    "RAG_WORDS",
    "RETURN_KINDS",
    "ROLE_WORDS",
    "WEEKDAYS",
    "code_words",
    "date_words",
    "days_words",
    "escalation_words",
    "financial_year",
    "gbp",
    "install",
    "kind_words",
    "long_date",
    "message_subject",
    "period_label",
    "period_shape",
    "period_words",
    "rag_words",
    "quarter_of",
    "return_message",
    "role_words",
    "short_date",
    "shown_subject",
]

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# kind of return -> what people call it (also the kinds rules/returns.yaml accepts)
KIND_WORDS: dict[str, str] = {
    "progress": "progress report",
    "savings": "efficiency-savings return",
    "monitoring": "monitoring return",
    "benefits": "benefits report",
}
# The kinds of return, as the commands list them (submit_return's choices and its
# refusal, "use one of: savings, progress, monitoring, benefits"): savings first, then
# in KIND_WORDS's order (which the rule files' refusals list). One list of kinds:
# a new kind goes into KIND_WORDS.
RETURN_KINDS: tuple[str, ...] = ("savings", *(k for k in KIND_WORDS if k != "savings"))
# role -> the recipient's role in a message
ROLE_WORDS: dict[str, str] = {
    "sponsor": "sponsor contact",
    "officer": "programme officer",
    "director": "Director",
    "chair": "Chair",
    "vice_chair": "Vice Chair",
    "finance": "finance officer",
}
# role -> whom a late return goes to next ("... the Director on Monday 15 August 2011")
ESCALATED_TO: dict[str, str] = {
    "officer": "the programme team",
    "director": "the Director",
    "chair": "the Chair",
    "vice_chair": "the Vice Chairs",
    "finance": "the finance team",
}

# a signature on a delegated decision, as the record says it (rules/delegation.py codes)
SIGNATURE_WORDS: dict[str, str] = {
    "approve": "approved",
    "decline": "declined",
    "concur": "concurred",
    "stand_aside": "stood aside",
    "absent": "recorded absent",
}

gbp: Callable[[int], str] = format_pence


def _day(value: dt.date | str) -> dt.date:
    """A date, or its ISO text (a datetime counts as its date)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


@lru_cache(maxsize=4096)
def long_date(value: dt.date | str) -> str:
    """Monday 1 August 2011."""
    d = _day(value)
    return f"{WEEKDAYS[d.weekday()]} {date_words(d)}"


@lru_cache(maxsize=4096)
def date_words(value: dt.date | str) -> str:
    """1 August 2011."""
    d = _day(value)
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


@lru_cache(maxsize=4096)
def short_date(value: dt.date | str) -> str:
    """1 Aug 2011."""
    d = _day(value)
    return f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}"


@lru_cache(maxsize=4096)
def financial_year(value: dt.date | str) -> str:
    """The financial year (April to March) containing the day: 2011/12."""
    d = _day(value)
    start = d.year if d.month >= 4 else d.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def quarter_of(value: dt.date | str) -> int:
    """The quarter of its financial year a day falls in: 1 (April to June) to 4."""
    return (_day(value).month - 4) % 12 // 3 + 1


@lru_cache(maxsize=4096)
def period_shape(start: dt.date | str, end: dt.date | str) -> str | None:
    """``quarter`` or ``half_year`` when the period is a financial quarter or
    half-year (from the 1st, ending in the right month, about the right length);
    otherwise None."""
    s, e = _day(start), _day(end)
    if s.day != 1:
        return None
    span = (e - s).days
    if e.month in (3, 6, 9, 12) and 88 <= span <= 92:
        return "quarter"
    if e.month in (3, 9) and 180 <= span <= 183:
        return "half_year"
    return None


@lru_cache(maxsize=4096)
def period_words(start: dt.date | str, end: dt.date | str) -> str:
    """1 April to 30 June 2011 (Q1 2011/12); 1 October 2011 to 31 March 2012
    (H2 2011/12); 20 April to 10 November 2011."""
    s, e = _day(start), _day(end)
    first = f"{s.day} {MONTHS[s.month - 1]}" + (f" {s.year}" if s.year != e.year else "")
    shape = period_shape(s, e)
    label = ""
    if shape == "quarter":
        label = f" (Q{quarter_of(e)} {financial_year(e)})"
    elif shape == "half_year":
        label = f" (H{1 if e.month == 9 else 2} {financial_year(e)})"
    return f"{first} to {date_words(e)}{label}"


@lru_cache(maxsize=4096)
def kind_words(
    kind: str, start: dt.date | str | None = None, end: dt.date | str | None = None
) -> str:
    """A kind of return in words; with its period, how often it comes:
    progress report; quarterly efficiency-savings return; six-monthly
    monitoring return. An unknown kind is shown as it is."""
    shape = period_shape(start, end) if start is not None and end is not None else None
    often = {"quarter": "quarterly ", "half_year": "six-monthly "}.get(shape or "", "")
    return often + KIND_WORDS.get(kind, kind)


# a monitoring return's status of one line, and overall (issue 13 item 6)
RAG_WORDS: dict[str, str] = {"on_track": "On track", "at_risk": "At risk", "off_track": "Off track"}


def rag_words(code: str | None) -> str:
    """On track / At risk / Off track (empty for none; an unknown code as it is)."""
    return RAG_WORDS.get(code or "", code or "")


def period_label(start: dt.date | str, end: dt.date | str) -> str:
    """Q2 2012/13, H1 2012/13, or the period in words when it is neither."""
    e = _day(end)
    shape = period_shape(start, end)
    if shape == "quarter":
        return f"Q{quarter_of(e)} {financial_year(e)}"
    if shape == "half_year":
        return f"H{1 if e.month == 9 else 2} {financial_year(e)}"
    return period_words(start, end)


def role_words(role: str) -> str:
    """programme officer, Director, ... (an unknown role as it is)."""
    return ROLE_WORDS.get(role, role)


@lru_cache(maxsize=4096)
def escalation_words(role: str | None, on: dt.date | str | None) -> str:
    """the Director on Monday 15 August 2011; empty when there is no one next."""
    if not role or on is None:
        return ""
    return f"{ESCALATED_TO.get(role, role)} on {long_date(on)}"


def code_words(code: str | None) -> str:
    """A state or other code as words: awaiting_decision -> awaiting decision
    (None -> empty)."""
    return str(code or "").replace("_", " ")


def days_words(n: int) -> str:
    """1 day, 14 days."""
    return f"{n} day" if n == 1 else f"{n} days"


# ------------------------------------------------------------------ messages from codes

# What the deadline sweep stores in a return message's context besides data
# (names, titles, figures) and what it becomes when the message is rendered.
_RETURN_CODES = ("role_code", "kind_code", "period_start", "period_end", "due_on", "as_of")
_CODES_ONLY = ("role_code", "escalation_to", "escalation_on")


def _is_return_message(context: Mapping[str, Any]) -> bool:
    return all(k in context for k in _RETURN_CODES)


def return_message(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context a template reads, from the one the deadline sweep stored:
    codes, ISO dates and numbers (role_code, kind_code, period_start,
    period_end, due_on, as_of, escalation_to, escalation_on) become the words
    (role, kind, period, due_date, escalation, date); the day counts
    (days_before, days_late) are kept, or worked out when absent. Any other
    context is returned as it is."""
    if not _is_return_message(context):
        return dict(context)
    out = {k: v for k, v in context.items() if k not in _CODES_ONLY}
    ps, pe, due, as_of = (context[k] for k in ("period_start", "period_end", "due_on", "as_of"))
    days = (_day(as_of) - _day(due)).days
    out.setdefault("days_before", max(-days, 0))
    out.setdefault("days_late", max(days, 0))
    out.update(
        role=role_words(context["role_code"]),
        kind=kind_words(context["kind_code"], ps, pe),
        period=period_words(ps, pe),
        due_date=long_date(due),
        escalation=escalation_words(context.get("escalation_to"), context.get("escalation_on")),
        date=short_date(as_of),
    )
    return out


def message_subject(subject: str, context: Mapping[str, Any]) -> str:
    """A message's subject as sent and shown. The sweep stores its rung's subject
    template (``Reminder: {kind} for {grant_ref} ...``, fields checked when the
    rules were loaded) and fills it here, from :func:`return_message`; any other
    subject was written whole by the command that queued it."""
    if not _is_return_message(context):
        return subject
    return subject.format_map(return_message(context))


def shown_subject(subject: str, context: Mapping[str, Any]) -> str:
    """The subject for a list or a notice about a message: as sent, or as
    stored when it cannot be written (a broken context may be what such a
    notice reports)."""
    try:
        return message_subject(subject, context)
    except (KeyError, ValueError, TypeError):
        return subject


# ------------------------------------------------------------------ Jinja

FILTERS: dict[str, Callable[..., str]] = {
    "long_date": long_date,
    "date_words": date_words,
    "short_date": short_date,
    "financial_year": financial_year,
    "period_words": period_words,
    "period_label": period_label,
    "rag": rag_words,
    "kind_words": kind_words,
    "role_words": role_words,
    "days_words": days_words,
    "words": code_words,
    "gbp": format_pence,
}


def install(env: Any, **overrides: Callable[..., str]) -> Any:
    """Register :data:`FILTERS` (and ``overrides``, e.g. a page's gbp that shows
    nothing for None) on a Jinja environment; returns it."""
    env.filters.update({**FILTERS, **overrides})
    return env
