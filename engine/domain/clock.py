"""The one injectable clock every date rule reads.

Production uses :class:`SystemClock`; tests and scenario replays use
:class:`FixedClock`, which they move forward step by step.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def today(self) -> dt.date: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)

    def today(self) -> dt.date:
        return self.now().date()


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, start: dt.date | dt.datetime) -> None:
        self._now = _as_datetime(start)

    def now(self) -> dt.datetime:
        return self._now

    def today(self) -> dt.date:
        return self._now.date()

    def set(self, when: dt.date | dt.datetime) -> None:
        self._now = _as_datetime(when)

    def advance(self, **delta: float) -> None:
        self._now = self._now + dt.timedelta(**delta)


def _as_datetime(when: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(when, dt.datetime):
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return dt.datetime(when.year, when.month, when.day, 9, 0, tzinfo=dt.UTC)
