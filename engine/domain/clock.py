"""The one injectable clock every date rule reads.

Production uses :class:`SystemClock`; tests and scenario replays use
:class:`FixedClock`, which they move forward step by step.

``now()`` is an instant (aware, UTC). ``today()`` is the calendar date in
Europe/London, where the programme lives: from 00:00 to 01:00 BST the UTC
date is still yesterday's. Code that needs a date from an instant uses
:func:`local_date`, never ``.date()`` on a UTC datetime or ``date.today()``.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def local_date(instant: dt.datetime) -> dt.date:
    """The Europe/London calendar date of ``instant`` (a naive datetime is UTC,
    as the database gives them back)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(LONDON).date()


def financial_year_end(day: dt.date) -> dt.date:
    """31 March ending the financial year (1 April to 31 March) that ``day`` is in."""
    return dt.date(day.year + 1 if day.month >= 4 else day.year, 3, 31)


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def today(self) -> dt.date: ...


class SystemClock:
    """Wall-clock time: ``now()`` in UTC, ``today()`` in Europe/London."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)

    def today(self) -> dt.date:
        return local_date(self.now())


class FixedClock:
    """A clock that only moves when told to. Built on a date it stands at 09:00
    UTC that day (the same date in London); built on an instant, ``today()``
    is that instant's date in London, as for :class:`SystemClock`."""

    def __init__(self, start: dt.date | dt.datetime) -> None:
        self._now = _as_datetime(start)

    def now(self) -> dt.datetime:
        return self._now

    def today(self) -> dt.date:
        return local_date(self._now)

    def set(self, when: dt.date | dt.datetime) -> None:
        self._now = _as_datetime(when)

    def advance(self, **delta: float) -> None:
        self._now = self._now + dt.timedelta(**delta)


class StartedClock:
    """Wall-clock time that started at ``start`` when this clock was made: a
    rehearsal or training server (``QUORUM_CLOCK_START``) runs on from an agreed
    date; restarted with a later start, time has passed for every date rule."""

    def __init__(self, start: dt.date | dt.datetime) -> None:
        self._offset = _as_datetime(start) - dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return (dt.datetime.now(dt.UTC) + self._offset).replace(microsecond=0)

    def today(self) -> dt.date:
        return local_date(self.now())


def _as_datetime(when: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(when, dt.datetime):
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return dt.datetime(when.year, when.month, when.day, 9, 0, tzinfo=dt.UTC)
