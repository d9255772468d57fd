"""Savings as reported, and the two views derived from them (issue 13).

A programme's return schedule (rules/returns.yaml, ``reading``) declares how a
savings return states its figure: ``per_period`` (the savings of that quarter
or half-year) or ``to_date`` (a running total since the grant began). Quorum
keeps each figure as reported (and, when a later return restates a period,
the restated figure beside the original) and derives, per grant, both views:

* **per period**: a ``per_period`` figure as it stands; a ``to_date`` figure
  less the running total before it (the previous period counted, or 0);
* **to date**: the running sum of the per-period figures, which for a
  ``to_date`` figure is the figure itself.

So the two views always agree: the to-date figure of a period is the sum of
the per-period figures up to it (property-tested). Only the periods given to
:func:`derive` count (callers pass the accepted returns), in period order.

:func:`describe` says how a total was derived, in words: "sum of 4 quarterly
returns, Q1–Q4 2012/13, one restated".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["PER_PERIOD", "READINGS", "TO_DATE", "PeriodSavings", "Reported", "derive", "describe"]

PER_PERIOD = "per_period"
TO_DATE = "to_date"
READINGS: dict[str, str] = {
    PER_PERIOD: "each return states the savings of its own period",
    TO_DATE: "each return states the running total of savings to date",
}


@dataclass(frozen=True)
class Reported:
    """One return's savings figure as reported (and as restated, if it was)."""

    ref: str
    period_start: dt.date
    period_end: dt.date
    reading: str  # PER_PERIOD or TO_DATE
    reported_pence: int  # the figure as first reported
    restated_pence: int | None = None  # the latest restatement, if any
    restatements: int = 0

    @property
    def figure_pence(self) -> int:
        """The figure that counts: the latest restatement, else as reported."""
        return self.reported_pence if self.restated_pence is None else self.restated_pence


@dataclass(frozen=True)
class PeriodSavings:
    """One period in both views."""

    ref: str
    period_start: dt.date
    period_end: dt.date
    reading: str
    reported_pence: int
    figure_pence: int
    restatements: int
    per_period_pence: int
    to_date_pence: int

    def to_dict(self) -> dict[str, object]:
        return {
            "return": self.ref,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "period": period_label(self.period_start, self.period_end),
            "reading": self.reading,
            "reported_pence": self.reported_pence,
            "figure_pence": self.figure_pence,
            "restated": self.restatements > 0,
            "per_period_pence": self.per_period_pence,
            "to_date_pence": self.to_date_pence,
        }


def derive(reports: Iterable[Reported]) -> list[PeriodSavings]:
    """Both views of one grant's returns, in period order (a period given twice is a
    programming error: a grant has one savings return per period)."""
    rows = sorted(reports, key=lambda r: r.period_end)
    ends = [r.period_end for r in rows]
    if len(set(ends)) != len(ends):
        raise ValueError("derive: two returns for the same period")
    out: list[PeriodSavings] = []
    running = 0
    for r in rows:
        if r.reading == PER_PERIOD:
            per = r.figure_pence
            to_date = running + per
        elif r.reading == TO_DATE:
            to_date = r.figure_pence
            per = to_date - running
        else:
            raise ValueError(f"derive: reading {r.reading!r}")
        running = to_date
        out.append(
            PeriodSavings(
                r.ref, r.period_start, r.period_end, r.reading, r.reported_pence,
                r.figure_pence, r.restatements, per, to_date,
            )
        )  # fmt: skip
    return out


def _fy(day: dt.date) -> str:
    """The financial year (April to March) containing ``day``: "2012/13"."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def period_label(start: dt.date, end: dt.date) -> str:
    """"Q1 2012/13" for a financial quarter, "H2 2012/13" for a half-year, else the dates."""
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    fy_month = (end.month - 4) % 12 + 1  # April = 1 ... March = 12
    if months == 3 and start.day == 1 and fy_month % 3 == 0:
        return f"Q{fy_month // 3} {_fy(end)}"
    if months == 6 and start.day == 1 and fy_month % 6 == 0:
        return f"H{fy_month // 6} {_fy(end)}"
    return f"{start.isoformat()} to {end.isoformat()}"


_COUNT = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def _count(n: int) -> str:
    return _COUNT.get(n, str(n))


def describe(periods: Sequence[PeriodSavings], kind: str = "quarterly") -> str:
    """How a to-date total was derived, e.g. "sum of 4 quarterly returns, Q1–Q4
    2012/13, one restated" or "running total in RET-0004 (Q4 2012/13)"."""
    if not periods:
        return "no accepted savings returns"
    first, last = periods[0], periods[-1]
    span = period_label(first.period_start, first.period_end)
    if len(periods) > 1:
        a, b = span, period_label(last.period_start, last.period_end)
        a_fy, b_fy = a.rsplit(" ", 1), b.rsplit(" ", 1)
        span = f"{a_fy[0]}–{b}" if len(a_fy) == 2 and a_fy[1:] == b_fy[1:] else f"{a} – {b}"
    restated = sum(1 for p in periods if p.restatements)
    tail = f", {_count(restated)} restated" if restated else ""
    if last.reading == TO_DATE and all(p.reading == TO_DATE for p in periods):
        return (
            f"running total reported in {last.ref} "
            f"({period_label(last.period_start, last.period_end)}; "
            f"{len(periods)} {kind} return{'s' if len(periods) != 1 else ''}, {span}){tail}"
        )
    plural = "s" if len(periods) != 1 else ""
    return f"sum of {len(periods)} {kind} return{plural}, {span}{tail}"
