"""``today()`` is the Europe/London date, for every clock built on an instant."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.domain.clock import FixedClock, SystemClock, local_date

SUMMER_LATE = dt.datetime(2011, 6, 30, 23, 30, tzinfo=dt.UTC)  # 00:30 BST on 1 July
WINTER_LATE = dt.datetime(2011, 12, 30, 23, 30, tzinfo=dt.UTC)  # 23:30 GMT, same day


class _SystemClockAt(SystemClock):
    """The system clock's own today(), read at a chosen instant."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


@pytest.mark.parametrize("make", [FixedClock, _SystemClockAt])
def test_half_past_eleven_utc_in_summer_is_tomorrow_in_london(make) -> None:
    clock = make(SUMMER_LATE)
    assert clock.now() == SUMMER_LATE  # the instant is untouched
    assert clock.today() == dt.date(2011, 7, 1)


@pytest.mark.parametrize("make", [FixedClock, _SystemClockAt])
def test_half_past_eleven_utc_in_winter_is_the_same_day(make) -> None:
    assert make(WINTER_LATE).today() == dt.date(2011, 12, 30)


def test_the_hour_after_midnight_bst_and_the_change_of_clocks() -> None:
    assert local_date(dt.datetime(2011, 7, 1, 0, 59, tzinfo=dt.UTC)) == dt.date(2011, 7, 1)
    assert local_date(dt.datetime(2011, 6, 30, 22, 59, tzinfo=dt.UTC)) == dt.date(2011, 6, 30)
    assert local_date(dt.datetime(2011, 6, 30, 23, 0, tzinfo=dt.UTC)) == dt.date(2011, 7, 1)
    # BST ends 30 Oct 2011 at 01:00 UTC: 23:30 UTC on the 29th is already the 30th
    assert local_date(dt.datetime(2011, 10, 29, 23, 30, tzinfo=dt.UTC)) == dt.date(2011, 10, 30)
    assert local_date(dt.datetime(2011, 10, 30, 23, 30, tzinfo=dt.UTC)) == dt.date(2011, 10, 30)
    # a naive datetime (as the database returns them) is UTC
    assert local_date(SUMMER_LATE.replace(tzinfo=None)) == dt.date(2011, 7, 1)


def test_fixed_clock_on_a_date_keeps_that_date_and_moves_with_advance() -> None:
    clock = FixedClock(dt.date(2011, 6, 30))
    assert clock.today() == dt.date(2011, 6, 30)
    clock.advance(hours=14)  # 23:00 UTC = midnight BST
    assert clock.today() == dt.date(2011, 7, 1)
    clock.set(dt.date(2011, 12, 30))
    clock.advance(hours=14, minutes=30)  # 23:30 GMT
    assert clock.today() == dt.date(2011, 12, 30)


def test_the_system_clock_today_is_the_london_date_of_now() -> None:
    clock = SystemClock()
    before = clock.now()
    today = clock.today()
    after = clock.now()
    assert today in {local_date(before), local_date(after)}
    assert before.tzinfo is not None and before.utcoffset() == dt.timedelta(0)
