"""A year of returns (tests/scenarios/returns-2011-12.yaml): 5 partnerships, 20 grants,
the scheduler sweeping daily from the April 2011 Board to 31 May 2012, with returns sent
on time, late, queried and sent again, or never; one approval reversed, one grant
closed, and six days of scheduler downtime in January 2012.

The exact set of reminders, chases and escalations (their outbox keys) is worked out
here from the scenario's facts — the due dates written out by hand, the ladder's
windows, who sent what when — not read back from the engine; and each key is queued
once. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from engine.entry.replay import run
from engine.read import returns as views_returns
from engine.store import audit
from engine.store.db import make_engine
from engine.store.models import AuditEvent, Return

SCENARIO = Path(__file__).parent / "scenarios" / "returns-2011-12.yaml"
D = dt.date

# ------------------------------------------------------------------ the facts, by hand

# Quarter ends 30 Jun, 30 Sep, 31 Dec, 31 Mar; due 30 days later, on a working day:
# 30 Jul 2011 is a Saturday, 30 Oct 2011 a Sunday; 30 Jan and 30 Apr 2012 are Mondays.
PERIOD_END = {1: D(2011, 6, 30), 2: D(2011, 9, 30), 3: D(2011, 12, 31), 4: D(2012, 3, 31)}
DUE = {1: D(2011, 8, 1), 2: D(2011, 10, 31), 3: D(2012, 1, 30), 4: D(2012, 4, 30)}
FIRST_SWEEP, LAST_SWEEP = D(2011, 4, 20), D(2012, 5, 31)
DOWN = (D(2012, 1, 26), D(2012, 1, 31))  # the scheduler is stopped: no sweeps

# the shipped ladder (rules/reminders.yaml): rung -> (from, until or None, recipients)
LADDER = {
    "reminder-14": (-14, -4, "sponsor"),
    "reminder-3": (-3, 0, "sponsor"),
    "chase": (1, 13, "sponsor"),
    "escalate-director": (14, None, "director"),
    "escalate-chair": (28, None, "chair"),
}
SPONSORS = {  # partnership (by grant number) -> who receives a sponsor's messages
    1: ["dan@derbyshire-srp.example"],
    2: ["nat@notts-srp.example"],
    3: ["lee@leics-srp.example"],
    4: ["lin@lincs-srp.example", "lyn@lincs-srp.example"],  # two contacts: both
    5: ["returns@northants-srp.example"],  # no contact: the partnership's own address
}
DIRECTOR = ["director@emiep.example"]
CHAIR = ["chair@emiep.example"]

# when each grant sends its returns, in days from the due date (both kinds the same day)
ON_TIME, LATE5, LATE20 = -5, 5, 20
SENDS: dict[int, dict[int, int | None]] = {}
OFFSETS = {1: ON_TIME, 2: ON_TIME, 3: LATE5, 4: LATE20, 5: LATE5, 6: LATE5, 7: ON_TIME,
           13: ON_TIME, 14: LATE20, 15: ON_TIME, 17: ON_TIME, 18: LATE5}  # fmt: skip
for g, offset in OFFSETS.items():
    SENDS[g] = {q: offset for q in DUE}
for g in (8, 9, 10, 11, 12, 20):  # never
    SENDS[g] = {q: None for q in DUE}
SENDS[16] = {1: ON_TIME, 2: None, 3: None, 4: None}  # the first quarter only
CANCELLED = {19}  # approval reversed on 10 May 2011: its returns are never chased
CLOSED = {20: D(2011, 11, 15)}  # owes the quarters that began before it closed
# G-0013's Q1 savings return: sent 27 Jul, queried on 3 Aug, sent again on 10 Aug
QUERIED = {(13, "savings", 1): (D(2011, 8, 3), D(2011, 8, 10))}


def swept(day: dt.date) -> bool:
    return FIRST_SWEEP <= day <= LAST_SWEEP and not DOWN[0] <= day <= DOWN[1]


def outstanding(g: int, kind: str, q: int, day: dt.date) -> bool:
    """Is the return outstanding at that day's sweep? (A step on a day runs before
    that day's sweep, so a return sent on day D is not chased on D.)"""
    offset = SENDS[g][q]
    sent = DUE[q] + dt.timedelta(days=offset) if offset is not None else None
    if sent is None or day < sent:
        return True
    queried = QUERIED.get((g, kind, q))
    return queried is not None and queried[0] <= day < queried[1]


def return_ref(g: int, kind: str, q: int) -> str:
    return f"RET-G-{g:04d}-{kind}-{PERIOD_END[q].isoformat()}"


def expected() -> dict[str, dt.date]:
    """Every key the ladder must have queued, with the day it is queued: the first
    swept day inside the rung's window on which the return is outstanding."""
    keys: dict[str, dt.date] = {}
    for g in range(1, 21):
        if g in CANCELLED:
            continue
        partnership = (g - 1) // 4 + 1
        for q in DUE:
            start = PERIOD_END[q] - dt.timedelta(days=89)
            if g in CLOSED and start.replace(day=1) > CLOSED[g]:
                continue
            for kind in ("progress", "savings"):
                for rung, (first, last, who) in LADDER.items():
                    day = DUE[q] + dt.timedelta(days=first)
                    end = DUE[q] + dt.timedelta(days=last) if last is not None else LAST_SWEEP
                    while day <= min(end, LAST_SWEEP):
                        if swept(day) and outstanding(g, kind, q, day):
                            people = {"sponsor": SPONSORS[partnership], "director": DIRECTOR,
                                      "chair": CHAIR}[who]  # fmt: skip
                            for email in people:
                                keys[f"return:{return_ref(g, kind, q)}:{rung}:{email}"] = day
                            break
                        day += dt.timedelta(days=1)
    return keys


# ------------------------------------------------------------------ the replay


@pytest.fixture(scope="module")
def expected_keys() -> dict[str, dt.date]:
    return expected()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def year(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The year replayed once per database for all the tests below (read only)."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('year') / 'year.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = f"t_returns_year_{uuid.uuid4().hex[:12]}"
        url = server.create_database(name)
    try:
        result = run(SCENARIO, url)
        state = result.to_json()
        assert state["ok"], state["failed_step"]
        state["_url"] = url
        yield state
    finally:
        if name is not None:
            server.drop_database(name)


def test_the_exact_reminders_chases_and_escalations_each_once(year, expected_keys) -> None:
    keys = [m["key"] for m in year["outbox"] if m["key"].startswith("return:")]
    assert len(keys) == len(set(keys))  # each once
    assert set(keys) == set(expected_keys)
    # and each on the day it should have gone: the sweep's day is in its context
    engine = make_engine(year["_url"])
    try:
        from engine.store.models import Outbox

        with Session(engine) as s:
            queued_on = {
                o.key: o.context["as_of"]
                for o in s.execute(select(Outbox).where(Outbox.key.like("return:%"))).scalars()
            }
    finally:
        engine.dispose()
    assert queued_on == {k: d.isoformat() for k, d in expected_keys.items()}


def test_the_shape_of_the_year(year, expected_keys) -> None:
    by_rung = Counter(k.split(":")[2] for k in expected_keys)
    # spot checks that the model above says what the scenario's header says
    assert by_rung == {"reminder-14": 182, "reminder-3": 84, "chase": 116,
                       "escalate-director": 68, "escalate-chair": 52}  # fmt: skip
    on_time = "return:RET-G-0001-progress-2011-06-30"
    assert f"{on_time}:reminder-14:dan@derbyshire-srp.example" in expected_keys
    assert not any(k.startswith(f"{on_time}:reminder-3") for k in expected_keys)
    never = "return:RET-G-0009-savings-2012-03-31"
    assert {k.split(":")[2] for k in expected_keys if k.startswith(never)} == set(LADDER)
    # two contacts at Lincolnshire SRP; Northamptonshire SRP's own address
    assert "return:RET-G-0016-savings-2011-09-30:chase:lyn@lincs-srp.example" in expected_keys
    assert "return:RET-G-0018-progress-2011-06-30:chase:returns@northants-srp.example" in (
        expected_keys
    )
    # the queried return is chased while it is back with the sponsor, and no further
    queried = "return:RET-G-0013-savings-2011-06-30"
    assert expected_keys[f"{queried}:chase:lin@lincs-srp.example"] == D(2011, 8, 3)
    assert not any(k.startswith(f"{queried}:escalate") for k in expected_keys)
    # the downtime: Q3's second reminder (27-30 Jan) never went; the chase on 1 Feb
    assert not any(":reminder-3:" in k and "2011-12-31" in k for k in expected_keys)
    assert expected_keys["return:RET-G-0009-progress-2011-12-31:chase:lee@leics-srp.example"] == (
        D(2012, 2, 1)
    )
    # the cancelled grant: nothing; the closed one: no Q4
    assert not any("G-0019" in k for k in expected_keys)
    assert not any(k.startswith("return:RET-G-0020-progress-2012-03-31") for k in expected_keys)
    assert any(k.startswith("return:RET-G-0020-progress-2011-12-31") for k in expected_keys)


def test_returns_in_the_replay_json(year) -> None:
    rets = {r["ref"]: r for r in year["returns"]}
    # 18 grants x 2 kinds x 5 quarters (Q1 2012/13 began on 1 April 2012); G-0019: Q1 only
    # (cancelled in May); G-0020: Q1-Q3 (closed in November)
    assert len(rets) == 18 * 2 * 5 + 2 + 6
    r = rets["RET-G-0003-savings-2011-06-30"]  # sent 5 days late
    assert (r["grant"], r["return_kind"], r["due_on"], r["state"], r["days_late"]) == (
        "G-0003",
        "savings",
        "2011-08-01",
        "submitted",
        5,
    )
    assert r["period_start"] == "2011-04-01" and r["period_end"] == "2011-06-30"
    never = rets["RET-G-0009-progress-2011-06-30"]
    assert (never["state"], never["days_late"]) == ("due", (LAST_SWEEP - DUE[1]).days)
    assert rets["RET-G-0013-savings-2011-06-30"]["state"] == "submitted"
    # outbox entries show key, sent_at and attempts
    entry = next(m for m in year["outbox"] if m["key"].startswith("return:"))
    assert {"key", "sent_at", "attempts", "status"} <= set(entry)
    assert entry["sent_at"] is None and entry["attempts"] == 0


def test_one_audit_event_per_sweep_not_per_message(year) -> None:
    engine = make_engine(year["_url"])
    try:
        with Session(engine) as s:
            sweeps = s.execute(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.command == "sweep")
            ).scalar()
            last = s.execute(
                select(AuditEvent).where(AuditEvent.item_ref == "SWEEP-2012-05-28")
            ).scalar_one()
            assert audit.verify(s).ok
            scheduled = s.execute(select(func.count()).select_from(Return)).scalar()
    finally:
        engine.dispose()
    days = (LAST_SWEEP - FIRST_SWEEP).days + 1 - ((DOWN[1] - DOWN[0]).days + 1)
    assert sweeps == days
    after = json.loads(last.after)
    # Q4 (due 30 Apr) reaches the Chair on 28 May: G-0008..G-0012 and G-0016, both kinds
    assert after["messages_queued"] == {"escalate-chair": 6 * 2}
    assert scheduled == 18 * 2 * 5 + 2 + 6


def test_late_board_and_calendar_at_the_end(year) -> None:
    engine = make_engine(year["_url"])
    try:
        with engine.connect() as conn:
            late = views_returns.late_returns(conn, LAST_SWEEP)
            ics = views_returns.calendar_ics(conn, dt.datetime(2012, 6, 1, tzinfo=dt.UTC))
    finally:
        engine.dispose()
    by_name = {p["partnership"]: p for p in late["partnerships"]}
    assert list(by_name) == sorted(by_name)
    leics = by_name["Leicestershire SRP"]
    assert leics["late"] == 4 * 8
    assert leics["most_days_late"] == (LAST_SWEEP - DUE[1]).days
    assert leics["returns"][0]["days_late"] >= leics["returns"][-1]["days_late"]
    assert "Derbyshire SRP" not in by_name  # all in (two of them late, but in)
    # G-0019 (cancelled) is not on the board; G-0020 (closed) owes Q1-Q3
    refs = {r["ref"] for p in late["partnerships"] for r in p["returns"]}
    assert not any("G-0019" in r for r in refs)
    assert {r for r in refs if "G-0020" in r} == {
        return_ref(20, k, q) for k in ("progress", "savings") for q in (1, 2, 3)
    }
    assert late["late_returns"] == len(refs)
    text = ics.decode()
    # returns of grants not cancelled, and the milestones still to come: two for each
    # grant but G-0019 (cancelled) and G-0020 (closed: its milestones cancelled)
    assert text.count("BEGIN:VEVENT") == 18 * 2 * 5 + 6 + 18 * 2
    assert "UID:return-RET-G-0001-progress-2011-06-30@quorum" in text
    assert "DTSTART;VALUE=DATE:20110801" in text
