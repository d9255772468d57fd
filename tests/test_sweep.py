"""The deadline sweep on a funded board (tests/moneykit.py): returns created from the
schedule, the ladder's rungs once each, stale rungs skipped after downtime, who receives
what, per-programme schedules and ladders, and the commands people run: ``quorum sweep``,
``quorum returns late``, ``quorum paper returns``, ``quorum calendar export`` and the
scheduler (in this process: its lock, its jobs)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from moneykit import CHAIR, DIRECTOR, MEMBERS, OFFICER, bid_refs, money_board
from sqlalchemy import func, select, text, update
from sqlmodel import Session

from engine.domain.errors import ValidationError
from engine.domain.words import message_subject
from engine.entry.scheduler import sweep
from engine.store.models import AuditEvent, Organisation, Outbox, Person, Return

REPO = Path(__file__).resolve().parents[1]
D = dt.date
SAM, MEL = "sam@rutland.example", "mel@melton.example"
DEE, CHRIS = DIRECTOR, CHAIR


def keys(engine) -> list[str]:
    with engine.connect() as c:
        return sorted(
            c.execute(select(Outbox.key).where(Outbox.key.like("return:%"))).scalars().all()
        )


def returns(engine) -> dict[str, tuple]:
    with engine.connect() as c:
        return {
            r.ref: (r.kind, r.period_start, r.period_end, r.due_on, r.state)
            for r in c.execute(select(Return))
        }


def q1(grant: str, kind: str) -> str:
    return f"RET-{grant}-{kind}-2011-06-30"


def test_first_sweep_after_downtime_creates_returns_and_sends_only_open_rungs(db_url) -> None:
    q, engine, clock = money_board(db_url)
    clock.set(D(2011, 8, 20))  # never swept: Q1 (due Mon 1 Aug) is 19 days late
    out = sweep(engine, clock=clock)
    assert out["returns_created"] == {"progress": 4, "savings": 4}  # Q1 and Q2, two grants
    # the reminders' and the chase's windows have passed: skipped, not sent late
    assert keys(engine) == sorted(
        f"return:{q1(g, k)}:escalate-director:{DEE}"
        for g in ("G-0001", "G-0002")
        for k in ("progress", "savings")
    )
    assert out["messages_queued"] == {"escalate-director": 4}
    rets = returns(engine)
    assert rets[q1("G-0001", "savings")] == (
        "savings",
        D(2011, 4, 1),
        D(2011, 6, 30),
        D(2011, 8, 1),
        "due",
    )
    assert rets["RET-G-0002-progress-2011-09-30"][3] == D(2011, 10, 31)  # 30 Oct is a Sunday
    # run again, the same day or the next: nothing new, nothing twice
    again = sweep(engine, clock=clock)
    assert again["messages_queued_total"] == again["returns_created_total"] == 0
    clock.set(D(2011, 8, 21))
    assert sweep(engine, clock=clock)["messages_queued_total"] == 0
    with engine.connect() as c:
        events = c.execute(
            select(AuditEvent.item_ref, AuditEvent.reason).where(AuditEvent.command == "sweep")
            .order_by(AuditEvent.seq)  # in the order written (PostgreSQL promises no order)
        ).all()
    assert [e[0] for e in events] == ["SWEEP-2011-08-20", "SWEEP-2011-08-20", "SWEEP-2011-08-21"]
    assert events[0][1] == "sweep as of 20 Aug 2011: 8 return(s) created, 4 message(s) queued"
    clock.set(D(2011, 8, 29))  # +28: the Chair
    assert sweep(engine, clock=clock)["messages_queued"] == {"escalate-chair": 4}
    engine.dispose()


def test_a_submitted_return_is_not_chased_and_a_queried_one_is(db_url) -> None:
    q, engine, clock = money_board(db_url)
    clock.set(D(2011, 7, 18))
    assert sweep(engine, clock=clock)["messages_queued"] == {"reminder-14": 4}
    clock.set(D(2011, 7, 25))
    q.execute("submit_return", {"grant": "G-0001", "kind": "progress",
                                "period_end": "2011-06-30"}, SAM)  # fmt: skip
    q.execute("submit_return", {"grant": "G-0001", "kind": "savings", "period_end": "2011-06-30",
                                "savings_delivered": "12,000", "savings_anticipated": "400,000"},
              SAM)  # fmt: skip
    clock.set(D(2011, 7, 29))  # -3: the second reminder, to Melton only
    assert keys(engine)[-0:] and sweep(engine, clock=clock)["messages_queued"] == {"reminder-3": 2}
    clock.set(D(2011, 8, 2))
    q.execute("query_return", {"return": q1("G-0001", "savings"), "reason": "figures?"}, OFFICER)
    out = sweep(engine, clock=clock)  # +1: chase Melton's two, and Rutland's queried one
    assert out["messages_queued"] == {"chase": 3}
    assert f"return:{q1('G-0001', 'savings')}:chase:{SAM}" in keys(engine)
    assert f"return:{q1('G-0001', 'progress')}:chase:{SAM}" not in keys(engine)
    engine.dispose()


def test_recipients_contacts_else_the_bodys_address_else_reported(db_url) -> None:
    q, engine, clock = money_board(db_url)
    with engine.begin() as c:  # Rutland CC's only contact leaves; it has no address
        c.execute(update(Person).where(Person.email == SAM).values(active=False))
    clock.set(D(2011, 7, 18))
    out = sweep(engine, clock=clock)
    assert out["messages_queued"] == {"reminder-14": 2}
    assert out["no_recipient"] == {"reminder-14 to sponsor": 2}
    assert all(MEL in k for k in keys(engine))
    with engine.begin() as c:
        c.execute(
            update(Organisation)
            .where(Organisation.name == "Rutland CC")
            .values(email="Returns@Rutland.example")
        )
    clock.set(D(2011, 7, 19))
    out = sweep(engine, clock=clock)
    assert out["messages_queued"] == {"reminder-14": 2} and "no_recipient" not in out
    assert f"return:{q1('G-0001', 'savings')}:reminder-14:returns@rutland.example" in keys(engine)
    with engine.connect() as c:
        row = c.execute(
            select(Outbox.to_addr, Outbox.context).where(
                Outbox.key
                == f"return:{q1('G-0001', 'savings')}:reminder-14:returns@rutland.example"
            )
        ).first()
    assert row[0] == "Returns@Rutland.example"
    ctx = row[1] if isinstance(row[1], dict) else json.loads(row[1])
    assert ctx["name"] == "Rutland CC" and ctx["days_before"] == 13
    engine.dispose()


SCHEDULE = """
name: returns-test
version: "1"
default:
  returns:
    - {kind: progress, every: quarter, due_days: 30}
programmes:
  P:
    returns:
      - {kind: monitoring, every: half_year, due_days: 30}
      - {kind: benefits, every: completion, due_days: 60}
grants:
  G-0002:
    from: 2011-12-31
    returns:
      - {kind: progress, every: quarter, due_days: 20, move: previous_working_day}
"""
LADDER = """
name: ladder-test
version: "1"
default:
  ladder:
    - {rung: chase, template: return_chase, from: 1, to: [sponsor]}
programmes:
  P:
    ladder:
      - {rung: reminder-7, template: return_reminder, from: -7, until: 0, to: [sponsor]}
      - {rung: escalate-officer, template: return_escalation, from: 7, to: [officer],
         when: {kind: monitoring}, subject: "{role}: {kind} {return_ref} is {days_late} days late"}
"""


def test_per_programme_and_per_grant_schedules_and_ladders(db_url, tmp_path: Path) -> None:
    q, engine, clock = money_board(db_url)
    (tmp_path / "returns.yaml").write_text(SCHEDULE)
    (tmp_path / "reminders.yaml").write_text(LADDER)
    files = {"returns_rules": str(tmp_path / "returns.yaml"),
             "reminder_rules": str(tmp_path / "reminders.yaml")}  # fmt: skip

    def run(day: dt.date) -> dict:
        clock.set(day)
        return sweep(engine, clock=clock, **files)

    out = run(D(2011, 10, 25))
    assert out["returns_created"] == {"monitoring": 2, "progress": 1}
    assert returns(engine) == {
        # H1 ends 30 Sep; +30 is Sunday 30 Oct -> Monday 31 Oct
        "RET-G-0001-monitoring-2011-09-30": (
            "monitoring", D(2011, 4, 1), D(2011, 9, 30), D(2011, 10, 31), "due"),
        "RET-G-0001-monitoring-2012-03-31": (
            "monitoring", D(2011, 10, 1), D(2012, 3, 31), D(2012, 4, 30), "due"),
        # G-0002's own schedule: from the quarter ending 31 Dec; +20 = Friday 20 Jan
        "RET-G-0002-progress-2011-12-31": (
            "progress", D(2011, 10, 1), D(2011, 12, 31), D(2012, 1, 20), "due"),
    }  # fmt: skip
    assert keys(engine) == [f"return:RET-G-0001-monitoring-2011-09-30:reminder-7:{SAM}"]
    out = run(D(2011, 11, 8))
    assert out["messages_queued"] == {"escalate-officer": 2}  # both officers
    with engine.connect() as c:
        stored = c.execute(
            select(Outbox.to_addr, Outbox.subject, Outbox.context)
            .where(Outbox.key.like("%escalate-officer%")).order_by(Outbox.to_addr)
        ).all()  # fmt: skip
    # the rung's subject template is stored; its words are written when rendered
    assert stored[0][1] == "{role}: {kind} {return_ref} is {days_late} days late"
    subjects = [(to, message_subject(subject, ctx)) for to, subject, ctx in stored]
    assert subjects[0] == (
        OFFICER, "programme officer: six-monthly monitoring return "
        "RET-G-0001-monitoring-2011-09-30 is 8 days late",
    )  # fmt: skip
    clock.set(D(2011, 11, 10))
    q.execute("close_grant", {"grant": "G-0001", "reason": "delivered early"}, OFFICER)
    out = run(D(2011, 11, 10))
    assert out["returns_created"] == {"benefits": 1}
    # 10 Nov + 60 = Monday 9 Jan 2012
    assert returns(engine)["RET-G-0001-benefits-2011-11-10"] == (
        "benefits",
        D(2011, 4, 20),
        D(2011, 11, 10),
        D(2012, 1, 9),
        "due",
    )
    assert run(D(2011, 11, 11))["returns_created_total"] == 0  # once per grant
    engine.dispose()


def test_refusals_name_the_field(sqlite_url, tmp_path: Path) -> None:
    q, engine, clock = money_board(sqlite_url)
    with pytest.raises(ValidationError, match=r"sweep: as_of: 2011-04-21 is in the future"):
        sweep(engine, D(2011, 4, 21), clock)
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCHEDULE.replace("due_days: 20", "due_day: 20"))
    with pytest.raises(ValidationError, match=r"grants\['G-0002'\]\.returns\[0\]\.due_day: "
                       "unknown key 'due_day'"):  # fmt: skip
        sweep(engine, clock=clock, returns_rules=str(bad))
    with pytest.raises(ValidationError, match="sweep: unknown field"):
        q.execute("sweep", {"asof": "2011-04-20"}, OFFICER)
    engine.dispose()


# ------------------------------------------------------------------ the commands


def quorum(*args: str, db: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("QUORUM_") or k == "QUORUM_CHECKPOINT_DIR"}  # conftest's
    full.update(PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "engine.entry.cli", "--db", db, *args],
        capture_output=True, text=True, env=full, timeout=120,
    )  # fmt: skip


def test_the_sweep_line_counts_the_delegated_requests_it_expired(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    clock.set(D(2011, 5, 2))
    (bid,) = bid_refs(engine, "Delegated ask")
    dd = q.execute(
        "request_delegated_decision",
        {"bid": bid, "reasons": "the offer lapses", "alternatives": "wait for the Board"},
        OFFICER,
    )["ref"]
    q.execute("sign", {"item": dd, "decision": "approve"}, CHAIR)  # one signature: not enough
    engine.dispose()
    last_day = quorum("sweep", "--as-of", "2011-05-30", db=sqlite_url)
    assert last_day.returncode == 0, last_day.stderr
    assert last_day.stdout.strip().endswith("; 0 delegated request(s) expired (none)")
    out = quorum("sweep", "--as-of", "2011-05-31", db=sqlite_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(f"; 1 delegated request(s) expired ({dd})"), out.stdout
    again = json.loads(quorum("sweep", "--as-of", "2011-05-31", "--json", db=sqlite_url).stdout)
    assert again["delegated_expired"] == []  # once


def test_sweep_late_board_paper_and_calendar_commands(sqlite_url, tmp_path: Path) -> None:
    q, engine, clock = money_board(sqlite_url)
    clock.set(D(2011, 8, 25))
    q.execute("schedule_meeting", {"ref": "BOARD-SEP", "title": "Board", "date": "2011-09-15",
                                   "quorum": 3, "members": MEMBERS}, OFFICER)  # fmt: skip
    engine.dispose()
    out = quorum("sweep", "--as-of", "2011-08-25", db=sqlite_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "sweep as of 2011-08-25: 8 return(s) created (progress 4, savings 4); 4 message(s) "
        "queued (escalate-director 4); 0 delegated request(s) expired (none)"
    )
    again = json.loads(quorum("sweep", "--as-of", "2011-08-25", "--json", db=sqlite_url).stdout)
    assert again["messages_queued_total"] == 0 and again["as_of"] == "2011-08-25"

    late = quorum("returns", "late", "--as-of", "2011-09-15", db=sqlite_url)
    assert late.returncode == 0, late.stderr
    lines = late.stdout.splitlines()
    assert lines[0] == "late returns as of 2011-09-15: 4"
    assert lines[1] == "Melton BC (2 late, up to 45 days)"
    assert lines[2].split()[:3] == ["45", "days", "RET-G-0002-progress-2011-06-30"]
    data = json.loads(quorum("returns", "late", "--as-of", "2011-09-15", "--json",
                             db=sqlite_url).stdout)  # fmt: skip
    assert [p["partnership"] for p in data["partnerships"]] == ["Melton BC", "Rutland CC"]
    assert {r["days_late"] for p in data["partnerships"] for r in p["returns"]} == {45}

    paper = quorum("paper", "returns", "BOARD-SEP", db=sqlite_url)
    assert paper.returncode == 0, paper.stderr
    assert paper.stdout.startswith("# Late returns — Board, 2011-09-15")
    assert "## Rutland CC — 2 late, up to 45 days" in paper.stdout
    assert ("| RET-G-0001-savings-2011-06-30 | G-0001 | Shared ICT | efficiency-savings return "
            "| 2011-08-01 | 45 | due |") in paper.stdout  # fmt: skip
    html = quorum("paper", "returns", "BOARD-SEP", "--format", "html", "--out",
                  str(tmp_path / "late.html"), db=sqlite_url)  # fmt: skip
    assert html.returncode == 0, html.stderr
    assert "<h2>Melton BC — 2 late, up to 45 days</h2>" in (tmp_path / "late.html").read_text()
    early = quorum("paper", "returns", "BOARD-APR", db=sqlite_url)
    assert "No returns are late." in early.stdout
    missing = quorum("paper", "returns", "BOARD-NONE", db=sqlite_url)
    assert missing.returncode == 1 and "no meeting 'BOARD-NONE'" in missing.stderr

    listed = quorum("returns", "list", "--as-of", "2011-09-15", db=sqlite_url)
    assert listed.stdout.splitlines()[-1] == "8 returns"

    first, second = tmp_path / "a.ics", tmp_path / "b.ics"
    assert quorum("calendar", "export", "--out", str(first), db=sqlite_url).returncode == 0
    assert quorum("calendar", "export", "--out", str(second), db=sqlite_url).returncode == 0
    from icalendar import Calendar

    def events(path: Path) -> dict[str, tuple]:
        cal = Calendar.from_ical(path.read_bytes())
        return {str(e["uid"]): (e.decoded("dtstart"), str(e["summary"]))
                for e in cal.walk("VEVENT")}  # fmt: skip

    a, b = events(first), events(second)
    assert a == b  # the same items under the same UIDs, export after export
    assert len(a) == 8 + 5  # returns, and the two grants' milestones (3 + 2)
    assert a["return-RET-G-0001-progress-2011-06-30@quorum"] == (
        D(2011, 8, 1),
        "Progress report due: G-0001 Shared ICT (Rutland CC)",
    )
    assert a["milestone-G-0002-2@quorum"][0] == D(2011, 10, 31)

    bad = tmp_path / "bad.yaml"
    bad.write_text(SCHEDULE.replace("every: half_year", "every: monthly"))
    refused = quorum("sweep", "--returns-rules", str(bad), db=sqlite_url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and "programmes.P.returns[0].every: 'monthly'" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr


# ------------------------------------------------------------------ the scheduler, in process


def test_scheduler_holds_its_lock_sweeps_at_start_and_dispatches(sqlite_url, tmp_path) -> None:
    from engine.domain.clock import FixedClock
    from engine.entry.scheduler import LockHeld, QuorumScheduler, settings, start
    from notifications.channels import FileChannel

    q, engine, clock = money_board(sqlite_url)
    at = FixedClock(dt.datetime(2011, 8, 20, 7, 0, tzinfo=dt.UTC))
    folder = tmp_path / "mail"
    first = QuorumScheduler(engine, clock=at, config=settings("07:00", "Europe/London", 1),
                            channel=FileChannel(folder))  # fmt: skip
    first.start()
    try:
        assert first.lock.describe() == f"lock file {Path(sqlite_url[10:]).resolve()}" + (
            ".scheduler.lock"
        )
        second = QuorumScheduler(engine, clock=at, config=settings())
        with pytest.raises(LockHeld, match=r"another scheduler is running \(process \d+ holds"):
            second.start()
        assert start(engine) is None  # quorum serve: this process only serves
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            first.runs["sweep"] and len(list(folder.glob("return_*.eml"))) == 4
        ):
            time.sleep(0.1)
        assert first.runs["sweep"] == 1
        sent = sorted(p.name for p in folder.glob("return_*.eml"))
        assert len(sent) == 4 and all("escalate-director" in n for n in sent)
        body = (folder / sent[0]).read_text()
        assert "ESCALATION to you as Director" in body and "19 days late" in body
    finally:
        first.shutdown()
    again = QuorumScheduler(engine, clock=at, config=settings(dispatch_seconds=3600))
    again.start()  # the lock was released
    again.shutdown()
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Outbox)).scalar() >= 4
    engine.dispose()


def test_scheduler_settings_refuse_bad_values() -> None:
    from engine.entry.scheduler import settings

    with pytest.raises(ValidationError, match=r"sweep time '7am' \(--sweep-at or QUORUM_SWEEP_AT"):
        settings("7am", env={})
    with pytest.raises(ValidationError, match="time zone 'Mars/Olympus'"):
        settings(timezone="Mars/Olympus", env={})
    with pytest.raises(ValidationError, match="dispatch interval '0'"):
        settings(env={"QUORUM_DISPATCH_SECONDS": "0"})
    s = settings(env={"QUORUM_SWEEP_AT": "06:30", "QUORUM_TIMEZONE": "UTC"})
    assert (s.sweep_at, s.timezone, s.dispatch_seconds) == ("06:30", "UTC", 30)


# ------------------------------------------------------------------ advance_clock


def test_advance_clock_sweeps_each_day_and_refuses_going_back(tmp_path: Path) -> None:
    from engine.entry.replay import run

    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        (REPO / "tests" / "scenarios" / "returns-2011-12.yaml")
        .read_text()
        .split("  # ---------------------------------------------------------------- the year")[0]
        + """  - {on: 2011-07-15, by: system, do: advance_clock, to: 2011-07-20}
  - {on: 2011-07-20, by: system, do: advance_clock, to: 2011-07-21}
  - {on: 2011-07-25, by: system, do: advance_clock, to: 2011-07-24, expect: error,
     error_contains: "is before the step's day"}
  - {on: 2011-07-25, by: system, do: advance_clock, until: 2011-07-26, expect: error,
     error_contains: "advance_clock: to: is required"}
"""
    )
    result = run(scenario)
    assert result.ok, result.failed
    first, second = result.steps[-4].result, result.steps[-3].result
    # 20 grants x 2 kinds x Q1 and Q2 (begun 1 July); Q1's first reminder (from 18 July) to
    # 40 returns: one contact each, but Lincolnshire SRP's two (4 grants x 2 kinds more)
    assert first == {"from": "2011-07-15", "to": "2011-07-20", "days_swept": 6,
                     "returns_created": 80, "messages_queued": {"reminder-14": 48}}  # fmt: skip
    assert result.steps[-4].on == "2011-07-20"
    assert second["from"] == "2011-07-21" and second["days_swept"] == 1  # 20 July: swept once
    assert second["messages_queued"] == {}


def test_outbox_rows_are_the_same_on_both_databases(db_url) -> None:
    """The context is JSON built by the database: the same text and types on SQLite
    and PostgreSQL — data, codes, ISO dates and numbers, no words — and rendered by
    the real templates, which get the words from engine/domain/words.py."""
    from engine.domain.words import return_message
    from notifications.render import body

    q, engine, clock = money_board(db_url)
    for day in (D(2011, 7, 18), D(2011, 8, 2), D(2011, 8, 15)):
        clock.set(day)
        sweep(engine, clock=clock)
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT key, subject, template, context FROM outbox "
                "WHERE key LIKE 'return:%' ORDER BY key"
            )  # fmt: skip
        ).all()
    engine.dispose()
    chase = next(r for r in rows if r[0] == f"return:{q1('G-0002', 'savings')}:chase:{MEL}")
    stored = chase[3] if isinstance(chase[3], dict) else json.loads(chase[3])
    assert stored == {
        "name": "Mel", "role_code": "sponsor", "organisation": "Melton BC",
        "return_ref": q1("G-0002", "savings"), "grant_ref": "G-0002", "title": "Invest to save",
        "kind_code": "savings", "period_start": "2011-04-01", "period_end": "2011-06-30",
        "due_on": "2011-08-01", "days_before": 0, "days_late": 1,
        "escalation_to": "director", "escalation_on": "2011-08-15",
        "programme": "P", "email": MEL, "history": [], "figures": [], "rung": "chase",
        "as_of": "2011-08-02",
    }  # fmt: skip
    ctx = return_message(stored)  # as rendered for sending
    assert ctx == {
        "name": "Mel", "role": "sponsor contact", "organisation": "Melton BC",
        "return_ref": q1("G-0002", "savings"), "grant_ref": "G-0002", "title": "Invest to save",
        "kind": "quarterly efficiency-savings return",
        "period": "1 April to 30 June 2011 (Q1 2011/12)", "due_date": "Monday 1 August 2011",
        "days_before": 0, "days_late": 1, "escalation": "the Director on Monday 15 August 2011",
        "programme": "P", "kind_code": "savings", "period_start": "2011-04-01",
        "period_end": "2011-06-30", "due_on": "2011-08-01", "email": MEL, "history": [],
        "figures": [], "rung": "chase", "as_of": "2011-08-02", "date": "2 Aug 2011",
    }  # fmt: skip
    assert chase[1] == "Overdue: {kind} for {grant_ref} ({title}) was due on {due_date}"
    assert message_subject(chase[1], stored) == (
        "Overdue: quarterly efficiency-savings return for G-0002 (Invest to save) was due on "
        "Monday 1 August 2011"
    )
    assert body(chase[2], stored) == body(chase[2], ctx)
    text_body, _ = body(chase[2], ctx)
    assert "It is 1 day late." in text_body and "the Director on Monday 15 August 2011" in (
        text_body
    )
    up = next(r for r in rows if r[0] == f"return:{q1('G-0001', 'progress')}:escalate-director:"
              f"{DEE}")  # fmt: skip
    ctx = return_message(up[3] if isinstance(up[3], dict) else json.loads(up[3]))
    assert ctx["figures"] == [{"label": "Grant awarded", "pence": 10_000_000},
                              {"label": "Paid to date", "pence": 0}]  # fmt: skip
    assert (ctx["days_late"], ctx["role"], ctx["escalation"]) == (
        14,
        "Director",
        "the Chair on Monday 29 August 2011",
    )
    assert "Grant awarded: £100,000" in body(up[2], ctx)[0]
    assert len(rows) == 3 * 4  # reminder-14, chase, Director (the -3 window was never swept)


def test_a_swept_message_is_sent_in_words_though_stored_in_codes(sqlite_url, tmp_path) -> None:
    """The outbox row holds codes and ISO dates and the rung's subject template;
    the email the dispatcher sends reads in words (engine/domain/words.py), and the
    outbox listing shows the subject as sent."""
    from email import message_from_bytes
    from email.policy import default

    from engine.read.views import outbox
    from notifications.channels import FileChannel
    from notifications.dispatch import dispatch, message_id

    q, engine, clock = money_board(sqlite_url)
    clock.set(D(2011, 8, 2))
    sweep(engine, clock=clock)
    key = f"return:{q1('G-0002', 'savings')}:chase:{MEL}"
    with engine.connect() as c:
        subject, context = c.execute(
            select(Outbox.subject, Outbox.context).where(Outbox.key == key)
        ).one()
    stored = json.dumps(context)
    for words in ("Monday", "August", "quarterly", "Q1", "2011/12", "sponsor contact"):
        assert words not in stored and words not in subject, words
    want = (
        "Overdue: quarterly efficiency-savings return for G-0002 (Invest to save) was due on "
        "Monday 1 August 2011"
    )
    with Session(engine) as s:
        assert next(m for m in outbox(s) if m["key"] == key)["subject"] == want
    folder = tmp_path / "mail"
    assert dispatch(engine, FileChannel(folder), clock).failed == 0
    sent = {
        m["X-Quorum-Key"]: m
        for m in (message_from_bytes(p.read_bytes(), policy=default) for p in folder.iterdir())
    }
    msg = sent[key]
    assert msg["Subject"] == want and msg["Message-ID"] == message_id(key)
    text_body = msg.get_body(("plain",)).get_content()
    assert "1 April to 30 June 2011 (Q1 2011/12)" in text_body
    assert "the Director on Monday 15 August 2011" in text_body
    engine.dispose()
