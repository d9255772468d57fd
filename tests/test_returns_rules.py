"""Return schedules and the reminder ladder as data: due dates moved off weekends and
English bank holidays, financial quarters and half-years, the ladder's windows decided
by durable_rules (and the same in plain Python), and files that cannot be used refused
with the file, the key and what is allowed."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from engine.commands.sweep import _runs
from rules.reminders import RemindersError, load_ladder_rules, parse_ladder_rules
from rules.returns import (
    ReturnRulesError,
    calendar,
    due_date,
    load_return_rules,
    parse_return_rules,
    periods,
)

D = dt.date
ENGLAND = calendar("england")

GOOD = """
name: returns
version: "1"
default:
  returns:
    - {kind: progress, every: quarter, due_days: 30}
"""


# ------------------------------------------------------------------ due dates


@pytest.mark.parametrize(
    ("period_end", "days", "move", "due"),
    [
        # 31 Mar 2012 + 9 = Easter Monday 9 Apr 2012 -> Tuesday 10 Apr
        (D(2012, 3, 31), 9, "next_working_day", D(2012, 4, 10)),
        # ...or back over Easter: Good Friday 6 Apr and the weekend -> Thursday 5 Apr
        (D(2012, 3, 31), 9, "previous_working_day", D(2012, 4, 5)),
        (D(2012, 3, 31), 9, "none", D(2012, 4, 9)),
        # 30 Jun 2011 + 30 = Saturday 30 Jul -> Monday 1 Aug / Friday 29 Jul
        (D(2011, 6, 30), 30, "next_working_day", D(2011, 8, 1)),
        (D(2011, 6, 30), 30, "previous_working_day", D(2011, 7, 29)),
        # 30 Sep 2011 + 30 = Sunday 30 Oct -> Monday 31 Oct
        (D(2011, 9, 30), 30, "next_working_day", D(2011, 10, 31)),
        # Christmas 2011: Sunday 25th; Boxing Day 26th; Christmas Day observed Tuesday 27th
        (D(2011, 9, 30), 86, "next_working_day", D(2011, 12, 28)),
        (D(2011, 9, 30), 86, "previous_working_day", D(2011, 12, 23)),
        # the Royal Wedding (Friday 29 Apr 2011), then the weekend and May Day (Monday)
        (D(2011, 3, 31), 29, "next_working_day", D(2011, 5, 3)),
        # a working day stays where it is
        (D(2011, 12, 31), 30, "next_working_day", D(2012, 1, 30)),
        # the Diamond Jubilee: Monday 4 and Tuesday 5 June 2012
        (D(2012, 3, 31), 65, "next_working_day", D(2012, 6, 6)),
    ],
)
def test_due_dates_move_off_weekends_and_english_bank_holidays(period_end, days, move, due):
    assert due_date(period_end, days, move, ENGLAND) == due


def test_weekends_only_calendar_keeps_bank_holidays_as_working_days() -> None:
    weekends = calendar("weekends")
    assert due_date(D(2012, 3, 31), 9, "next_working_day", weekends) == D(2012, 4, 9)
    assert due_date(D(2011, 6, 30), 30, "next_working_day", weekends) == D(2011, 8, 1)
    assert ENGLAND.holiday_name(D(2012, 4, 9)) == "Easter Monday"
    assert not ENGLAND.is_working_day(D(2012, 4, 9))


def test_a_schedule_line_declares_its_own_move() -> None:
    rules = parse_return_rules(
        """
name: r
version: "1"
move: previous_working_day
default:
  returns:
    - {kind: progress, every: quarter, due_days: 9}
    - {kind: savings, every: quarter, due_days: 9, move: next_working_day}
""",
        "r.yaml",
    )
    progress, savings = rules.default.lines
    assert progress.due(D(2012, 3, 31), rules.calendar) == D(2012, 4, 5)
    assert savings.due(D(2012, 3, 31), rules.calendar) == D(2012, 4, 10)


def test_financial_quarters_and_half_years_at_their_boundaries() -> None:
    q = list(periods("quarter", D(2011, 4, 20), D(2012, 4, 1)))
    assert q == [
        (D(2011, 4, 1), D(2011, 6, 30)),
        (D(2011, 7, 1), D(2011, 9, 30)),
        (D(2011, 10, 1), D(2011, 12, 31)),
        (D(2012, 1, 1), D(2012, 3, 31)),
        (D(2012, 4, 1), D(2012, 6, 30)),
    ]
    # a period's first and last day belong to it
    assert list(periods("quarter", D(2011, 6, 30), D(2011, 6, 30))) == [q[0]]
    assert list(periods("quarter", D(2011, 7, 1), D(2011, 7, 1))) == [q[1]]
    assert list(periods("quarter", D(2012, 3, 31), D(2012, 3, 31))) == [q[3]]
    # half-years run April-September and October-March, across the calendar year
    assert list(periods("half_year", D(2011, 9, 30), D(2012, 3, 31))) == [
        (D(2011, 4, 1), D(2011, 9, 30)),
        (D(2011, 10, 1), D(2012, 3, 31)),
    ]
    assert list(periods("half_year", D(2012, 1, 15), D(2012, 1, 15))) == [
        (D(2011, 10, 1), D(2012, 3, 31))
    ]


def test_the_shipped_schedule() -> None:
    rules = load_return_rules()
    assert rules.label == "returns 2012.2"
    assert [(x.kind, x.every, x.due_days, x.move) for x in rules.default.lines] == [
        ("progress", "quarter", 30, "next_working_day"),
        ("savings", "quarter", 30, "next_working_day"),
    ]
    dues = [rules.default.lines[0].due(pe, rules.calendar) for _, pe in periods(
        "quarter", D(2011, 4, 1), D(2012, 3, 31))]  # fmt: skip
    assert dues == [D(2011, 8, 1), D(2011, 10, 31), D(2012, 1, 30), D(2012, 4, 30)]


# ------------------------------------------------------------------ schedule files refused


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GOOD.replace("due_days: 30", "due_day: 30"),
         "default.returns[0].due_day: unknown key 'due_day'; allowed here: kind, every, "
         "due_days, move, reading"),
        (GOOD.replace("kind: progress", "kind: minutes"),
         "default.returns[0].kind: 'minutes' is not allowed; use one of: progress, savings, "
         "monitoring, benefits"),
        (GOOD.replace("every: quarter", "every: month"),
         "default.returns[0].every: 'month' is not allowed; use one of: quarter, half_year, "
         "completion"),
        (GOOD.replace("due_days: 30", "due_days: -3"), "default.returns[0].due_days: -3 is not"),
        (GOOD.replace("due_days: 30", "due_days: thirty"),
         "default.returns[0].due_days: 'thirty' is not allowed; a whole number of days"),
        (GOOD.replace("default:", "defaults:"), "unknown key 'defaults'; allowed here: name"),
        (GOOD + "move: sideways\n", "move: 'sideways' is not allowed; use one of: "
         "next_working_day, previous_working_day, none"),
        (GOOD + "calendar: scotland\n", "calendar: 'scotland' is not allowed"),
        (GOOD.replace("\n    - {kind: progress", "\n    - {kind: progress, every: quarter, "
                      "due_days: 10}\n    - {kind: progress"),
         "kind: progress is already declared"),
        ('name: returns\nversion: "1"\n', "default: is required"),
        (GOOD + "programmes:\n  P:\n    returns: []\n", "programmes.P.returns: is required"),
        (GOOD + "grants: [G-0001]\n", "grants: must be a mapping of grant ref"),
        (GOOD + "programmes:\n  P:\n    from: soon\n    returns:\n      - {kind: savings, "
         "every: quarter, due_days: 30}\n", "programmes.P.from: 'soon' is not a date"),
        ("default: [", "not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_schedule_file_is_refused_naming_the_key(text: str, says: str) -> None:
    with pytest.raises(ReturnRulesError) as err:
        parse_return_rules(text, "returns.yaml")
    assert err.value.message.startswith("returns.yaml: ")
    assert says in err.value.message


def test_a_missing_schedule_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ReturnRulesError, match="no such file"):
        load_return_rules(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ the ladder


def facts_for(days: range) -> list[dict]:
    return [
        {"ref": f"{kind}/{state}/{d}", "days_from_due": d, "kind": kind, "state": state}
        for d, kind, state in itertools.product(days, ("progress", "savings", "monitoring"),
                                                ("due", "queried"))
    ]  # fmt: skip


def test_the_shipped_ladder_windows() -> None:
    ladder = load_ladder_rules().default
    rungs = {r.name: (r.from_day, r.until_day, r.to, r.template) for r in ladder.rungs}
    assert rungs == {
        "reminder-14": (-14, -4, ("sponsor",), "return_reminder"),
        "reminder-3": (-3, 0, ("sponsor",), "return_reminder"),
        "chase": (1, 13, ("sponsor",), "return_chase"),
        "escalate-director": (14, None, ("director",), "return_escalation"),
        "escalate-chair": (28, None, ("chair",), "return_escalation"),
    }
    facts = [{"ref": str(d), "days_from_due": d, "kind": "savings", "state": "due"}
             for d in (-15, -14, -4, -3, 0, 1, 13, 14, 27, 28, 400)]  # fmt: skip
    assert ladder.applicable(facts) == [
        set(), {"reminder-14"}, {"reminder-14"}, {"reminder-3"}, {"reminder-3"}, {"chase"},
        {"chase"}, {"escalate-director"}, {"escalate-director"},
        {"escalate-director", "escalate-chair"}, {"escalate-director", "escalate-chair"},
    ]  # fmt: skip


LADDER = """
name: ladder
version: "2"
default:
  ladder:
    - {rung: reminder-7, template: return_reminder, from: -7, until: 0, to: [sponsor]}
    - {rung: chase, template: return_chase, from: 1, until: 6, to: [sponsor, officer]}
    - rung: escalate-officer
      template: return_escalation
      from: 7
      to: officer
      when: {any: [{kind: savings}, {state: queried}, {days_from_due: {gte: 60}}]}
    - rung: queried-again
      template: return_chase
      from: 0
      until: 30
      to: [sponsor]
      when: {state: queried, kind: {ne: monitoring}}
programmes:
  "Care Services 2012/14":
    ladder:
      - {rung: escalate-director, template: return_escalation, from: 21, to: [director]}
"""


def test_durable_rules_and_plain_python_agree_on_every_day() -> None:
    rules = parse_ladder_rules(LADDER, "ladder.yaml")
    for ladder in rules.ladders():
        facts = facts_for(range(-40, 120))
        assert ladder.applicable(facts) == ladder.applicable_python(facts)
    ladder = rules.default
    fired = dict(zip((f["ref"] for f in facts_for(range(-1, 62))),
                     ladder.applicable(facts_for(range(-1, 62))), strict=True))  # fmt: skip
    assert fired["savings/due/7"] == {"escalate-officer"}
    assert fired["progress/due/7"] == set()
    assert fired["progress/due/60"] == {"escalate-officer"}
    assert fired["progress/queried/3"] == {"chase", "queried-again"}
    assert fired["monitoring/queried/3"] == {"chase"}
    assert fired["savings/queried/0"] == {"reminder-7", "queried-again"}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("until: 0, to: [sponsor]}", "untill: 0, to: [sponsor]}"),
         "default.ladder[0].untill: unknown key 'untill'; allowed here: rung, template, from, "
         "until, to, subject, when"),
        (("from: 1, until: 6", "from: 6, until: 1"), "default.ladder[1].until: 1 is before from"),
        (("to: [sponsor, officer]", "to: [sponsor, mayor]"),
         "default.ladder[1].to[1]: 'mayor' is not a recipient; use: sponsor, officer, director"),
        (("rung: chase,", "rung: reminder-7,"),
         "'reminder-7' is already used at default.ladder[0]"),
        (("rung: chase,", "rung: Chase Now,"), "default.ladder[1].rung: 'Chase Now'"),
        (("from: -7,", "from: soon,"), "default.ladder[0].from: 'soon' is not allowed"),
        (("{kind: savings}", "{colour: red}"), "unknown fact 'colour'; facts are: days_from_due, "
         "kind, state"),
        (("{state: queried},", "{state: lost},"), "default.ladder[2].when.any[1].state"),
        (("template: return_chase, from: 1", "template: Return Chase, from: 1"),
         "default.ladder[1].template: 'Return Chase'"),
        (("to: [director]}", "to: [director], subject: \"{ref} late\"}"),
         "{ref} is not a subject field; use: {return_ref}"),
        (("programmes:", "programme:"), "unknown key 'programme'; allowed here: name"),
    ],
)  # fmt: skip
def test_a_bad_ladder_file_is_refused_naming_the_key(change: tuple[str, str], says: str) -> None:
    old, new = change
    assert old in LADDER
    with pytest.raises(RemindersError) as err:
        parse_ladder_rules(LADDER.replace(old, new, 1), "ladder.yaml")
    assert err.value.message.startswith("ladder.yaml: ")
    assert says in err.value.message


def test_due_date_ranges_cover_exactly_the_chosen_dates_present() -> None:
    present = [D(2011, 8, 1), D(2011, 8, 3), D(2011, 8, 9), D(2011, 10, 31), D(2012, 1, 30)]
    assert _runs(present, {D(2011, 8, 1), D(2011, 8, 3), D(2011, 10, 31)}) == [
        (D(2011, 8, 1), D(2011, 8, 3)),
        (D(2011, 10, 31), D(2011, 10, 31)),
    ]
    assert _runs(present, set(present)) == [(present[0], present[-1])]
    assert _runs(present, set()) == []
