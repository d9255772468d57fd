"""The risk register (issue 13): numbered risks scored before and after
controls, reviewed at meetings; a risk whose residual score rises above the
programme's threshold is listed in officers' My work and among the risks to
bring to the next meeting; the "Risk analysis" paper in HTML and PDF; each
refusal names its field and changes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select
from sqlmodel import Session
from test_papers_pdf import pdf_text
from webkit import set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import NotFound, PermissionDenied, TransitionRefused, ValidationError
from engine.entry import replay
from engine.read.papers import paper_context
from engine.read.risks import register, risk_history, risks_for_meeting
from engine.read.work import my_work
from engine.store.db import create_schema, make_engine
from notifications import papers
from notifications.papers import render
from quorum_web.app import create_app

SCENARIO = Path(__file__).parent / "scenarios" / "risks-2012.yaml"
PETRA = "petra@wealdshire.example"
OFFICER, OFFICER2, DIRECTOR, CHAIR = "o@r.example", "p@r.example", "d@r.example", "c@r.example"


def _work_refs(engine, who: str, day: dt.date) -> list[str]:
    q = Quorum(engine, FixedClock(day))
    with engine.connect() as conn:
        work = my_work(conn, q.actor(who), day)
    return [i["ref"] for i in work["sections"]["risks_above_threshold"]["items"]]


def test_the_worked_example_replays() -> None:
    """tests/scenarios/risks-2012.yaml (docs/risks.md): RK-0003 rises above the
    threshold at the June Board, is in My work and brought to September, where
    it is rescored down; RK-0002 is closed; every review is in its history."""
    seen: dict[int, dict] = {}

    def watch(record, engine) -> None:
        day = dt.date.fromisoformat(record.on)
        if record.step in (11, 13, 14):
            with engine.connect() as conn:
                seen[record.step] = {
                    "work": _work_refs(engine, PETRA, day),
                    "september": {r["ref"]: r["why"]
                                  for r in risks_for_meeting(conn, "WIB-2012-09-19")},
                }
        if record.step == 11:  # the June paper after the June reviews
            seen["june"] = paper_context(engine, "risks", "WIB-2012-06-20")
        if record.step == 13:  # September's agenda, before its meeting
            seen["agenda"] = paper_context(engine, "agenda", "WIB-2012-09-19")
        if record.step == 16:
            seen["paper"] = {"ctx": paper_context(engine, "risks", "WIB-2012-09-19")}
            seen["minutes"] = paper_context(engine, "minutes", "WIB-2012-09-19")
            with engine.connect() as conn:
                seen["register"] = {r["ref"]: r for r in register(conn)}
            with Session(engine) as s:
                seen["history"] = risk_history(s, "RK-0003")

    result = replay.run(SCENARIO, after_step=watch)
    assert result.ok, result.failed
    # June: rescored 5 -> 7, above the threshold (6): in My work, brought to September
    assert seen[11]["work"] == ["RK-0003"]
    assert seen[11]["september"]["RK-0003"] == [
        "residual score 7 is above the threshold (6)"]
    # its review date (set by update_risk) is September's meeting: both reasons
    assert seen[13]["september"]["RK-0003"] == [
        "residual score 7 is above the threshold (6)", "review due 2012-09-19"]
    assert "RK-0001" not in seen[13]["september"]  # next review December
    # September: rescored 7 -> 4: out of My work, and no longer to bring to it
    assert seen[14]["work"] == []
    assert "RK-0003" not in seen[14]["september"]

    reg = seen["register"]
    assert [reg[r]["number"] for r in ("RK-0001", "RK-0002", "RK-0003")] == [1, 2, 3]
    assert reg["RK-0002"]["state"] == "closed" and reg["RK-0002"]["closed_on"] == "2012-09-19"
    assert reg["RK-0002"]["owner"] == "Vale SRP"
    assert [(v["meeting"], v["outcome"], v["residual_before"], v["residual_after"])
            for v in reg["RK-0003"]["reviews"]] == [
        ("WIB-2012-06-20", "rescored", 5, 7), ("WIB-2012-09-19", "rescored", 7, 4)]
    assert reg["RK-0003"]["reviews"][0]["note"] == "Two of the four project officers have left"
    assert reg["RK-0001"]["review_on"] == "2012-12-12"
    # every change audited, with before and after: recorded, reviewed, updated, reviewed
    commands = [e["command"] for e in seen["history"]]
    assert commands == ["record_risk", "review_risk", "update_risk", "review_risk"]
    update = seen["history"][2]
    assert update["reason"] == "Steering group 25 June 2012"
    assert {c["field"]: (c["before"], c["after"]) for c in update["changes"]}["controls"] == (
        "Deputies briefed monthly",
        "Deputies briefed monthly; interim project officers from Kingsmere CC")

    md = render("risks", seen["paper"]["ctx"], "md")
    assert "# Risk analysis — Wealdshire Improvement Board, 2012-09-19" in md
    assert "| 3 | Officer capacity lost to the councils' reorganisations | rescored | 7 | 4 |" in md
    assert "| 2 | Savings are not delivered by the target date | closed | 3 | 3 |" in md
    assert "## Closed" in md
    # the agenda brings RK-0003 to September; the minutes record its review
    agenda = render("agenda", seen["agenda"], "md")
    assert "## Risks for the Board to review" in agenda
    assert ("| 3 | Officer capacity lost to the councils' reorganisations | "
            in agenda) and "residual score 7 is above the threshold (6); review due" in agenda
    minutes = render("minutes", seen["minutes"], "md")
    assert "## Risks reviewed" in minutes
    assert "| 3 | Officer capacity lost to the councils' reorganisations | rescored | 7 | 4 |" in (
        minutes)
    june = render("risks", seen["june"], "md")
    assert "residual score 7" not in june  # reviewed at June: not "for review" there
    assert "7 ABOVE THRESHOLD" in june


@pytest.fixture
def programme(sqlite_url):
    clock = FixedClock(dt.date(2012, 4, 2))
    engine = make_engine(sqlite_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute_batch([
        ("create_programme", {"name": "Fenwold Programme", "pots": {"Projects": "100,000"}}),
        ("register_organisation", {"name": "Brackley DC", "kind": "district"}),
        ("register_person", {"name": "Oona", "email": OFFICER, "roles": ["officer"]}),
        ("register_person", {"name": "Piers", "email": OFFICER2, "roles": ["officer"]}),
        ("register_person", {"name": "Delia", "email": DIRECTOR, "roles": ["director"]}),
        ("register_person", {"name": "Cllr Cobb", "email": CHAIR,
                             "roles": ["chair", "board_member"]}),
        ("schedule_meeting", {"ref": "FB-1", "title": "Fenwold Board", "date": "2012-06-06",
                              "quorum": 1, "members": ["Cllr Cobb"]}),
    ], "system")
    yield q, engine, clock
    engine.dispose()


RISK = {"description": "Partners leave", "inherent": "9", "owner": "Oona", "residual": "4"}


def dump(engine) -> dict:
    md = MetaData()
    md.reflect(engine)
    with engine.connect() as c:
        return {t: sorted(map(repr, c.execute(select(md.tables[t])).all()))
                for t in ("risk", "risk_review", "programme", "audit_event")}


def test_likelihood_x_impact_scoring_and_threshold(programme) -> None:
    q, engine, clock = programme
    q.execute("configure_risk_register", {"scoring": "likelihood_x_impact", "threshold": 4},
              DIRECTOR)
    made = q.execute("record_risk", {**RISK, "inherent": "high x high", "residual": "3x2",
                                     "owner": "Brackley DC", "owner_kind": "organisation"},
                     OFFICER)
    assert (made["inherent"], made["residual"]) == (9, 6)
    with engine.connect() as c:
        row = register(c)[0]
        assert (row["inherent_detail"], row["residual_detail"]) == ("3x3", "3x2")
        assert row["above_threshold"] and row["owner"] == "Brackley DC"
        assert [i["ref"] for i in my_work(c, q.actor(OFFICER2), clock.today())["sections"][
            "risks_above_threshold"]["items"]] == ["RK-0001"]
    with pytest.raises(ValidationError, match="likelihood x impact, each 1-3") as e:
        q.execute("record_risk", {**RISK, "inherent": "h x m", "residual": "7"}, OFFICER)
    assert e.value.field == "residual"


def test_refusals_name_the_field_and_change_nothing(programme) -> None:
    q, engine, clock = programme
    q.execute("configure_risk_register", {"threshold": 6}, DIRECTOR)
    q.execute("record_risk", RISK, OFFICER)
    clock.set(dt.date(2012, 6, 6))
    before = dump(engine)
    refusals = [
        (ValidationError, "configure_risk_register", {"threshold": 12}, DIRECTOR,
         "threshold", "12 is above the highest score (9)"),
        (PermissionDenied, "configure_risk_register", {"threshold": 5}, OFFICER,
         None, "needs the role director"),
        (ValidationError, "record_risk", {**RISK, "inherent": "ten"}, OFFICER,
         "inherent", "'ten' is not a score; this programme scores risks 1-9"),
        (ValidationError, "record_risk", {**RISK, "description": ""}, OFFICER,
         "description", "description: is required"),
        (NotFound, "record_risk", {**RISK, "owner": "Nobody"}, OFFICER,
         "owner", "owner: no person 'Nobody'"),
        (NotFound, "record_risk", {**RISK, "grant": "G-0042"}, OFFICER,
         "grant", "no grant 'G-0042'"),
        (ValidationError, "record_risk", {**RISK, "review_on": "2012-01-01"}, OFFICER,
         "review_on", "is in the past"),
        (NotFound, "update_risk", {"risk": "RK-0099", "residual": "3"}, OFFICER,
         "risk", "no risk 'RK-0099'"),
        (ValidationError, "update_risk", {"risk": "RK-0001", "residual": "4"}, OFFICER,
         "risk", "nothing to change on RK-0001"),
        (ValidationError, "review_risk", {"risk": "RK-0001", "meeting": "FB-1",
                                          "outcome": "rescored"}, OFFICER,
         "residual", "a rescored risk needs its new residual score"),
        (ValidationError, "review_risk", {"risk": "RK-0001", "meeting": "FB-1",
                                          "outcome": "noted", "residual": "5"}, OFFICER,
         "residual", "only with outcome rescored"),
        (ValidationError, "review_risk", {"risk": "RK-0001", "meeting": "FB-1",
                                          "outcome": "closed"}, OFFICER,
         "reason", "say why the risk is closed"),
        (NotFound, "review_risk", {"risk": "RK-0001", "meeting": "FB-9", "outcome": "noted"},
         OFFICER, "meeting", "no meeting 'FB-9'"),
        (PermissionDenied, "review_risk", {"risk": "RK-0001", "meeting": "FB-9",
                                           "outcome": "noted"}, DIRECTOR,
         None, "review_risk needs the role chair or officer or vice_chair"),
        (ValidationError, "review_risk", {"risk": "RK-0001", "meeting": "FB-1",
                                          "outcome": "noted", "next_review": "2012-06-01"},
         OFFICER, "next_review", "is not after the meeting"),
        (TransitionRefused, "reopen_risk", {"risk": "RK-0001", "reason": "x"}, OFFICER,
         None, "cannot reopen risk RK-0001 while it is open"),
    ]
    for exc, name, args, who, field, words in refusals:
        with pytest.raises(exc) as e:
            q.execute(name, args, who)
        assert words in e.value.message, (name, e.value.message)
        if field:
            assert e.value.field == field, (name, e.value.field)
    assert dump(engine) == before


def test_a_review_before_its_meeting_and_closing_and_reopening(programme) -> None:
    q, engine, clock = programme
    q.execute("record_risk", RISK, OFFICER)
    with pytest.raises(ValidationError, match="after today") as e:
        q.execute("review_risk", {"risk": "RK-0001", "meeting": "FB-1", "outcome": "noted"},
                  CHAIR)
    assert e.value.field == "meeting"
    closed = q.execute("close_risk", {"risk": "RK-0001", "reason": "partners signed"}, OFFICER)
    assert closed["state"] == "closed"
    assert q.execute("reopen_risk", {"risk": "RK-0001", "reason": "a partner left"},
                     OFFICER2)["state"] == "open"
    with engine.connect() as c:
        assert register(c)[0]["closed_on"] is None


def test_the_risk_analysis_paper_as_html_and_pdf(programme) -> None:
    q, engine, clock = programme
    q.execute("configure_risk_register", {"threshold": 5}, DIRECTOR)
    q.execute("record_risk", {**RISK, "description": "Shared ICT contract fails",
                              "residual": "6", "indicators": "Supplier misses two dates"},
              OFFICER)
    q.execute("record_risk", {**RISK, "description": "Savings slip"}, OFFICER)
    ctx = paper_context(engine, "risks", "FB-1")
    html = render("risks", ctx, "html")
    assert "<h1>Risk analysis — Fenwold Board, 2012-06-06</h1>" in html
    assert "above threshold" in html and "Supplier misses two dates" in html
    assert "residual score 6 is above the threshold (5)" in html
    pdf = papers.render_pdf("risks", ctx)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert "Risk analysis" in text and "Shared ICT contract fails" in text
    assert "Savings slip" in text


def test_the_register_page_and_the_paper_on_the_web(sqlite_url) -> None:
    assert replay.run(SCENARIO, url=sqlite_url).ok
    engine = make_engine(sqlite_url)
    clock = FixedClock(dt.date(2012, 9, 20))
    try:
        q = Quorum(engine, clock)
        set_passwords(q, PETRA)
        app = create_app(sqlite_url, scheduler=False, clock=clock)
        with TestClient(app) as web:
            assert sign_in(web, PETRA).status_code == 303
            page = web.get("/risks")
            assert page.status_code == 200
            text = page.text
            assert 'id="RK-0003"' in text and "Officer capacity lost" in text
            assert "Two of the four project officers have left" in text  # its June review
            assert "update_risk" in text and "Steering group 25 June 2012" in text  # audited
            paper = web.get("/meetings/WIB-2012-09-19/papers/risks.html")
            assert paper.status_code == 200 and "Risk analysis" in paper.text
    finally:
        engine.dispose()
