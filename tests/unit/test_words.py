"""engine/domain/words.py: every word about dates, periods, financial years,
kinds and roles, and the Jinja filters every environment gets from it."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain import words
from engine.domain.words import (
    date_words,
    financial_year,
    kind_words,
    long_date,
    message_subject,
    period_words,
    return_message,
    short_date,
)

D = dt.date


def test_dates() -> None:
    assert long_date(D(2011, 8, 1)) == "Monday 1 August 2011"
    assert long_date("2011-08-15") == "Monday 15 August 2011"
    assert long_date(D(2012, 1, 1)) == "Sunday 1 January 2012"
    assert date_words(D(2011, 7, 29)) == "29 July 2011"
    assert short_date(D(2011, 8, 2)) == "2 Aug 2011"
    assert short_date(dt.datetime(2012, 3, 31, 23, 0)) == "31 Mar 2012"


def test_financial_years() -> None:
    assert financial_year(D(2011, 4, 1)) == "2011/12"
    assert financial_year(D(2012, 3, 31)) == "2011/12"
    assert financial_year(D(1999, 6, 1)) == "1999/00"
    assert financial_year("2009-12-25") == "2009/10"


@pytest.mark.parametrize(
    ("start", "end", "period", "kind"),
    [
        (D(2011, 4, 1), D(2011, 6, 30), "1 April to 30 June 2011 (Q1 2011/12)",
         "quarterly efficiency-savings return"),
        (D(2011, 10, 1), D(2011, 12, 31), "1 October to 31 December 2011 (Q3 2011/12)",
         "quarterly efficiency-savings return"),
        (D(2012, 1, 1), D(2012, 3, 31), "1 January to 31 March 2012 (Q4 2011/12)",
         "quarterly efficiency-savings return"),
        (D(2011, 4, 1), D(2011, 9, 30), "1 April to 30 September 2011 (H1 2011/12)",
         "six-monthly efficiency-savings return"),
        (D(2011, 10, 1), D(2012, 3, 31), "1 October 2011 to 31 March 2012 (H2 2011/12)",
         "six-monthly efficiency-savings return"),
        (D(2011, 4, 20), D(2011, 11, 10), "20 April to 10 November 2011",
         "efficiency-savings return"),
        (D(2011, 12, 1), D(2012, 1, 31), "1 December 2011 to 31 January 2012",
         "efficiency-savings return"),
    ],
)  # fmt: skip
def test_periods_and_kinds(start: D, end: D, period: str, kind: str) -> None:
    assert period_words(start, end) == period
    assert period_words(start.isoformat(), end.isoformat()) == period
    assert kind_words("savings", start, end) == kind
    assert kind_words("savings") == "efficiency-savings return"
    assert kind_words("benefits", start, end).endswith("benefits report")
    assert kind_words("unheard-of") == "unheard-of"


@given(st.integers(min_value=1990, max_value=2090), st.integers(min_value=0, max_value=3))
def test_every_financial_quarter_is_named_in_its_year(year: int, q: int) -> None:
    start = D(year + (q == 3), (3 * q + 3) % 12 + 1, 1)
    nxt = D(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
    end = nxt - dt.timedelta(days=1)
    assert period_words(start, end).endswith(f"(Q{q + 1} {financial_year(start)})")
    assert kind_words("progress", start, end) == "quarterly progress report"
    assert words.quarter_of(start) == words.quarter_of(end) == q + 1


STORED = {
    "name": "Mel", "role_code": "sponsor", "organisation": "Melton BC",
    "return_ref": "RET-G-0002-savings-2011-06-30", "grant_ref": "G-0002",
    "title": "Invest {to} save", "kind_code": "savings", "period_start": "2011-04-01",
    "period_end": "2011-06-30", "due_on": "2011-08-01", "days_before": 0, "days_late": 1,
    "escalation_to": "director", "escalation_on": "2011-08-15", "programme": "P",
    "email": "mel@example.org", "history": [], "figures": [], "rung": "chase",
    "as_of": "2011-08-02",
}  # fmt: skip


def test_a_stored_return_context_gets_its_words_when_rendered() -> None:
    ctx = return_message(STORED)
    assert {k: ctx[k] for k in ("role", "kind", "period", "due_date", "escalation", "date")} == {
        "role": "sponsor contact",
        "kind": "quarterly efficiency-savings return",
        "period": "1 April to 30 June 2011 (Q1 2011/12)",
        "due_date": "Monday 1 August 2011",
        "escalation": "the Director on Monday 15 August 2011",
        "date": "2 Aug 2011",
    }
    assert not {"role_code", "escalation_to", "escalation_on"} & set(ctx)
    # the day counts are worked out when a context does not carry them
    bare = {k: v for k, v in STORED.items() if k not in ("days_before", "days_late")}
    assert (return_message(bare)["days_before"], return_message(bare)["days_late"]) == (0, 1)
    early = {**bare, "as_of": "2011-07-18"}
    assert (return_message(early)["days_before"], return_message(early)["days_late"]) == (14, 0)
    last = {**STORED, "escalation_to": None, "escalation_on": None}
    assert return_message(last)["escalation"] == ""
    assert STORED["role_code"] == "sponsor"  # not changed in place


def test_subjects() -> None:
    stored = "Overdue: {kind} for {grant_ref} ({title}) was due on {due_date}"
    assert message_subject(stored, STORED) == (
        "Overdue: quarterly efficiency-savings return for G-0002 (Invest {to} save) was due "
        "on Monday 1 August 2011"
    )
    # any other message's subject was written whole when it was queued: braces stay
    assert message_subject("Bid {B-0001} received", {"ref": "B-0001"}) == "Bid {B-0001} received"
    other = {"name": "Sam", "title": "x"}
    assert return_message(other) == other


def test_every_jinja_environment_has_the_filters() -> None:
    from notifications import papers, render
    from quorum_web.pages import TEMPLATES

    envs = {"messages": render.environment(), "web pages": TEMPLATES.env}
    assert papers.environment is render.environment  # the papers render with the messages'
    for where, env in envs.items():
        for name, fn in words.FILTERS.items():
            assert name in env.filters, (where, name)
            if name != "gbp" or where == "messages":
                assert env.filters[name] is fn, (where, name)
    assert TEMPLATES.env.filters["gbp"](None) == ""
    assert TEMPLATES.env.filters["gbp"](125_050) == render.environment().filters["gbp"](125_050)
    page = TEMPLATES.env.from_string("{{ d | long_date }} {{ d | financial_year }}")
    assert page.render(d="2011-08-01") == "Monday 1 August 2011 2011/12"


def test_a_shown_subject_survives_a_broken_context() -> None:
    stored = "Overdue: {kind} for {grant_ref}"
    broken = {**STORED, "due_on": "not a date"}
    with pytest.raises(ValueError):
        message_subject(stored, broken)
    assert words.shown_subject(stored, broken) == stored
    assert words.shown_subject(stored, STORED) == message_subject(stored, STORED)


def test_one_list_of_return_kinds_in_two_orders() -> None:
    # the commands list savings first; the rule files and the words follow KIND_WORDS
    assert words.RETURN_KINDS == ("savings", "progress", "monitoring", "benefits")
    assert tuple(words.KIND_WORDS) == ("progress", "savings", "monitoring", "benefits")
    assert sorted(words.RETURN_KINDS) == sorted(words.KIND_WORDS)
