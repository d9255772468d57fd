"""Monitoring returns with substance (issue 13 item 6): progress per milestone or
outcome (on track / at risk / off track, with a narrative; overall the worst
line), spend, issues and risks; an officer accepts, accepts with conditions or
sends a return back as needing revision (chased again to a new due date, sent in
again, both versions kept); a programme may hold payments while a grant has a
return overdue or needing revision; red returns go to officers' My work, the
next agenda and the "Late and red returns" paper."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moneykit import OFFICER, SPONSOR, accept_offer, grant_ref, money_board
from sqlalchemy import func, select
from sqlmodel import Session
from test_papers_pdf import pdf_text
from webkit import csrf_of, set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import PermissionDenied, TransitionRefused, ValidationError
from engine.domain.monitoring import overall_rag
from engine.entry import replay
from engine.read.papers import paper_context
from engine.read.returns import grant_conditions, late_and_red, red_returns, return_detail
from engine.read.work import my_work
from engine.store import audit
from engine.store.db import make_engine
from engine.store.models import Outbox, Return, ReturnProgress
from notifications import papers
from notifications.papers import render
from quorum_web.app import create_app
from rules.returns import ReturnRulesError, parse_return_rules

SCENARIO = Path(__file__).parent / "scenarios" / "monitoring-2012.yaml"
PETRA, QUENTIN = "petra@northmoor.example", "quentin@northmoor.example"
IMOGEN = "imogen@northmoor.example"
SADIE, TOM, MO = "sadie@vale-srp.example", "tom@fenmoor-srp.example", "mo@marsh-srp.example"
H1 = {g: f"RET-{g}-monitoring-2012-09-30" for g in ("G-0001", "G-0002", "G-0003")}
VALE_H2 = "RET-G-0001-monitoring-2013-03-31"
D = dt.date


SEEN: dict[str, dict] = {}  # the paper's rows when each refused payment was tried


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('monitoring') / 'quorum.db'}"

    def watch(record, engine) -> None:
        if record.do == "release_payment" and record.expected_error:
            with engine.connect() as conn:
                SEEN[record.on] = late_and_red(conn, D.fromisoformat(record.on))

    result = replay.run(SCENARIO, url=url, after_step=watch)
    assert result.ok, result.failed
    return url


def _fresh(tmp_path: Path) -> tuple[str, Quorum, FixedClock, object]:
    """The scenario replayed into its own database (for tests that change it)."""
    url = f"sqlite:///{tmp_path / 'quorum.db'}"
    assert replay.run(SCENARIO, url=url).ok
    engine = make_engine(url)
    clock = FixedClock(D(2013, 4, 17))
    return url, Quorum(engine, clock), clock, engine


def test_overall_status_is_the_worst_line() -> None:
    assert overall_rag(["on_track", "at_risk", "on_track"]) == "at_risk"
    assert overall_rag(["on_track", "off_track", "at_risk"]) == "off_track"
    assert overall_rag(["on_track"]) == "on_track"
    assert overall_rag([]) == ""


def test_the_worked_example(replayed) -> None:
    """tests/scenarios/monitoring-2012.yaml (docs/returns.md "Monitoring returns")."""
    engine = make_engine(replayed)
    try:
        with engine.connect() as c:
            vale1, fen1, marsh1 = (return_detail(c, H1[g]) for g in ("G-0001", "G-0002", "G-0003"))
            vale2 = return_detail(c, VALE_H2)
            states = dict(c.execute(select(Return.ref, Return.state)).all())
            # one amber then green
            assert (vale1["rag_words"], vale2["rag_words"]) == ("At risk", "On track")
            assert vale1["spend_to_date_pence"] == 4_000_000
            assert vale1["issues"] == "Procurement of the shared finance system slipped"
            assert [(x["line"], x["rag_words"]) for x in vale1["progress"]] == [
                ("Programme plan agreed", "On track"), ("Shared services live", "At risk")]
            # one red, accepted with conditions: shown on the return and the grant
            assert fen1["rag"] == "off_track" and fen1["review_words"] == "accepted with conditions"
            assert fen1["review_note"] == (
                "A recovery plan for joint procurement by 30 November 2012")
            assert grant_conditions(c, "G-0002") == [{
                "return": H1["G-0002"], "period_label": "H1 2012/13",
                "conditions": "A recovery plan for joint procurement by 30 November 2012",
                "on": "2012-10-23"}]
            assert states[H1["G-0002"]] == "accepted"
            # one sent back and sent in again: both versions kept, the second counts
            assert marsh1["submission"] == 2 and marsh1["revisions"] == 1
            assert marsh1["rag_words"] == "At risk" and marsh1["spend_to_date_pence"] == 1_800_000
            assert [x["rag"] for x in marsh1["progress"]] == ["on_track", "at_risk"]
            assert [(v["submission"], [x["rag"] for x in v["progress"]])
                    for v in marsh1["earlier"]] == [(1, ["on_track", "on_track"])]
            assert c.execute(select(func.count()).select_from(ReturnProgress)
                             .join(Return, Return.id == ReturnProgress.return_id)
                             .where(Return.ref == H1["G-0003"])).scalar() == 4
            assert states[H1["G-0003"]] == "accepted"
            # chased to its first due date, then again to the new one (a fresh round)
            keys = [k for (k,) in c.execute(select(Outbox.key).where(
                Outbox.key.like(f"return:{H1['G-0003']}%")).order_by(Outbox.id))]
            assert keys == [
                f"return:{H1['G-0003']}:reminder-14:{MO}",
                f"return:{H1['G-0003']}:reminder-3:{MO}",
                f"return:{H1['G-0003']}:chase:{MO}",
                f"return:{H1['G-0003']}/revision-1:reminder-14:{MO}",
            ]
        with Session(engine) as s:
            events = [(e.command, json.loads(e.before), json.loads(e.after))
                      for e in audit.history(s, H1["G-0003"])]
        sent_back = [(b, a) for cmd, b, a in events if cmd == "send_back_return"]
        assert len(sent_back) == 1
        assert sent_back[0][1]["missing"] == "spend to date and the back office's risks"
        assert sent_back[0][0]["due_on"] == "2012-10-30"
        assert sent_back[0][1]["due_on"] == "2012-11-20"
        submits = [a for cmd, _, a in events if cmd == "submit_return"]
        assert [(a["submission"], a["spend_to_date_pence"]) for a in submits] == [
            (1, None), (2, 1_800_000)]
    finally:
        engine.dispose()


def test_red_returns_on_the_agenda_in_my_work_and_the_paper(replayed) -> None:
    engine = make_engine(replayed)
    try:
        agenda = paper_context(engine, "agenda", "NPB-2012-12-12")
        assert [(x["grant"], x["rag_words"]) for x in agenda["red_returns"]] == [
            ("G-0002", "Off track")]
        md = render("agenda", agenda, "md")
        assert "## Risks for the Board to review" in md
        assert "Joint procurement live (Off track)" in md
        html = render("agenda", agenda, "html")
        assert '<table id="red-returns">' in html and "G-0002" in html
        q = Quorum(engine, FixedClock(D(2012, 12, 1)))
        with engine.connect() as conn:
            work = my_work(conn, q.actor(PETRA), D(2012, 12, 1))
            sponsor = my_work(conn, q.actor(TOM), D(2012, 12, 1))
            # H2 green: Vale was never red; Fenmoor's latest (H1) is red
            assert [i["grant"] for i in work["sections"]["returns_red"]["items"]] == ["G-0002"]
            assert "returns_red" not in sponsor["sections"]
            # when Marsh's payment was refused: overdue (6 days), then needing revision
            # (sent back on 6 November, due again 20 November); Fenmoor red throughout
            assert [(g["grant"], [(r["why"], r["days_late"]) for r in g["returns"]])
                    for g in SEEN["2012-11-05"]["grants"]] == [
                ("G-0002", [("red: Off track", 0)]),
                ("G-0003", [("overdue", 6)]),
            ]
            assert [(g["grant"], [(r["why"], r["since"], r["note"]) for r in g["returns"]])
                    for g in SEEN["2012-11-07"]["grants"]] == [
                ("G-0002", [("red: Off track", None, "")]),
                ("G-0003", [("needs revision", "2012-11-06",
                             "spend to date and the back office's risks")]),
            ]
            assert (SEEN["2012-11-07"]["overdue"], SEEN["2012-11-07"]["needs_revision"],
                    SEEN["2012-11-07"]["red"]) == (0, 1, 1)
            assert red_returns(conn, D(2012, 9, 29)) == []  # nothing reported yet
        ctx = paper_context(engine, "monitoring", "NPB-2012-12-12")
        html = render("monitoring", ctx, "html")
        assert "<h1>Late and red returns — Northmoor Partnerships Board, 2012-12-12</h1>" in html
        assert "the lead procurement officer left" in html
        pdf = papers.render_pdf("monitoring", ctx)
        assert pdf.startswith(b"%PDF-")
        text = pdf_text(pdf)
        assert "Late and red returns" in text and "G-0002" in text
    finally:
        engine.dispose()


def test_refusals_name_the_field_and_change_nothing(tmp_path) -> None:
    _, q, clock, engine = _fresh(tmp_path)
    try:
        def version_of(ref: str) -> int:
            with engine.connect() as c:
                return c.execute(select(Return.version).where(Return.ref == ref)).scalar_one()

        before = version_of(VALE_H2)
        line = {"line": "Plan", "rag": "on_track", "narrative": "fine"}
        cases = [
            ({"progress": [line, {**line, "line": "plan"}]}, "progress[2].line",
             "'plan' is already progress[1]"),
            ({"progress": [{**line, "rag": "amber"}]}, "progress[1].rag",
             "use one of: on_track (On track), at_risk (At risk), off_track (Off track)"),
            ({"progress": [{"line": "Plan", "rag": "on_track"}]}, "progress[1].narrative",
             "is required"),
            ({"progress": ["Plan"]}, "progress[1]", "must have line"),
            ({"spend": "lots"}, "spend", "spend"),
        ]
        for extra, field, words in cases:
            with pytest.raises(ValidationError) as refused:
                q.execute("submit_return", {"grant": "G-0001", "kind": "monitoring",
                                            "period_end": "2013-03-31", **extra}, SADIE)
            assert refused.value.field == field, refused.value.message
            assert words in refused.value.message
        # a kind whose schedule does not report progress (the shipped default for savings)
        with pytest.raises(ValidationError) as refused:
            q.execute("submit_return", {"grant": "G-0002", "kind": "savings",
                                        "period_end": "2013-03-31", "savings_delivered": 0,
                                        "savings_anticipated": 0, "issues": "none"}, TOM)
        assert refused.value.field == "issues"
        assert "do not report progress" in refused.value.message
        # an accepted return cannot be reviewed again; only officers review; only the
        # director sets the programme's option
        with pytest.raises(TransitionRefused):
            q.execute("accept_return_with_conditions",
                      {"return": VALE_H2, "conditions": "x"}, PETRA)
        with pytest.raises(TransitionRefused):
            q.execute("send_back_return",
                      {"return": VALE_H2, "missing": "x", "due": "2013-05-30"}, PETRA)
        with pytest.raises(PermissionDenied):
            q.execute("configure_return_payments", {"no_payment_while_returns_late": "no"},
                      PETRA)
        assert version_of(VALE_H2) == before
    finally:
        engine.dispose()


def test_payments_held_only_under_the_option(tmp_path) -> None:
    """Fenmoor's H2 return is overdue by 1 May 2013: its payment is refused while the
    programme holds payments, and released once the director lifts the option."""
    _, q, clock, engine = _fresh(tmp_path)
    try:
        clock.set(D(2013, 10, 1))
        accept_offer(q, "G-0002", TOM)  # the offer letter is not what holds the payment
        q.execute("submit_evidence", {"grant": "G-0002", "milestone": 1,
                                      "summary": "Programme plan agreed"}, TOM)
        q.execute("verify_milestone", {"grant": "G-0002", "milestone": 1}, PETRA)
        with pytest.raises(ValidationError) as refused:
            q.execute("release_payment", {"grant": "G-0002", "milestone": 1}, QUENTIN)
        assert refused.value.field == "grant"
        assert refused.value.message.startswith(
            "release_payment: grant: RET-G-0002-monitoring-2013-03-31 for H2 2012/13 is "
            "overdue since 2013-04-30; Northmoor Partnerships Programme 2012/14 releases no "
            "payment to a grant while it has a return overdue or needing revision")
        q.execute("configure_return_payments", {"no_payment_while_returns_late": "no"}, IMOGEN)
        out = q.execute("release_payment", {"grant": "G-0002", "milestone": 1}, QUENTIN)
        assert out["amount_pence"] == 8_000_000
    finally:
        engine.dispose()


def test_query_return_stays_a_question_on_the_same_due_date(tmp_path) -> None:
    """query_return is "needs revision" without a new due date: the return keeps its
    due date and its place on the ladder; send_back_return starts the ladder again."""
    _, q, clock, engine = _fresh(tmp_path)
    try:
        q.execute("submit_return", {"grant": "G-0002", "kind": "monitoring",
                                    "period_end": "2013-03-31", "progress": [
                                        {"line": "Plan", "rag": "at risk", "narrative": "n"}]},
                  TOM)
        out = q.execute("query_return", {"return": "RET-G-0002-monitoring-2013-03-31",
                                         "reason": "Which budget line?"}, PETRA)
        assert out["state"] == "queried"
        with engine.connect() as c:
            detail = return_detail(c, "RET-G-0002-monitoring-2013-03-31")
            due, revisions = c.execute(select(Return.due_on, Return.revisions).where(
                Return.ref == "RET-G-0002-monitoring-2013-03-31")).one()
        assert detail["review_words"] == "needs revision"
        assert detail["review_note"] == "Which budget line?"
        assert (due, revisions) == (D(2013, 4, 30), 0)
    finally:
        engine.dispose()


def test_schedule_language_progress_key() -> None:
    base = ("name: r\nversion: '2012.1'\ndefault:\n  returns:\n"
            "    - {kind: monitoring, every: half_year, due_days: 30}\n"
            "    - {kind: savings, every: quarter, due_days: 30}\n")
    old = parse_return_rules(base)  # a 2012.1 file: progress for monitoring, not savings
    assert [(x.kind, x.progress) for x in old.default.lines] == [
        ("monitoring", True), ("savings", False)]
    assert old.progress_for("any", "G-1", "progress") is True  # not listed: the default
    new = parse_return_rules(base.replace("due_days: 30}\n    - {kind: savings",
                                          "due_days: 30, progress: no}\n    - {kind: savings")
                             .replace("2012.1", "2012.2"))
    assert new.progress_for("any", "G-1", "monitoring") is False
    with pytest.raises(ReturnRulesError) as refused:
        parse_return_rules(base.replace("due_days: 30}\n    - {kind: savings",
                                        "due_days: 30, progress: maybe}\n    - {kind: savings"))
    assert "default.returns[0].progress: 'maybe' is not allowed; use yes or no" in str(
        refused.value)


# ------------------------------------------------------------------ the web pages


def test_the_return_form_and_the_review_outcomes_on_the_web(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    set_passwords(q, OFFICER, SPONSOR)
    clock.set(D(2011, 7, 5))
    grant = grant_ref(engine, "Shared ICT")
    ref = q.execute("submit_return", {"grant": grant, "kind": "progress",
                                      "period_end": "2011-06-30"}, SPONSOR)["return"]
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    with TestClient(app) as sam, TestClient(app) as olivia:
        assert sign_in(sam, SPONSOR).status_code == 303
        assert sign_in(olivia, OFFICER).status_code == 303
        page = sam.get(f"/returns/{ref}")
        assert 'name="progress[1].line"' in page.text and 'action="/returns/' in page.text
        assert "Spend to date" in page.text and 'name="risks"' in page.text

        def send(**fields):
            data = {"csrf_token": csrf_of(sam, f"/returns/{ref}"), "_next": f"/returns/{ref}",
                    "_form": "submit", **fields}
            return sam.post(f"/returns/{ref}/send", data=data, follow_redirects=False)

        def version() -> int:
            with engine.connect() as c:
                return c.execute(select(Return.version).where(Return.ref == ref)).scalar_one()

        seen = version()
        # line 1 left blank: the refusal names the line as the form numbered it
        bad = send(**{"progress[2].line": "Contract let", "progress[2].rag": "green",
                      "progress[2].narrative": "let in June", "spend": "12,000"})
        assert bad.status_code == 400
        assert "Progress 2, rag: &#39;green&#39; is not allowed" in bad.text
        assert 'href="#f-submit-progress[2]-rag"' in bad.text  # the summary links to it
        assert ('id="f-submit-progress[2]-rag" name="progress[2].rag" aria-invalid="true"'
                in bad.text)
        assert version() == seen  # nothing changed
        ok = send(**{"progress[1].line": "Contract let", "progress[1].rag": "on_track",
                     "progress[1].narrative": "let in June",
                     "progress[2].line": "Systems merged", "progress[2].rag": "at_risk",
                     "progress[2].narrative": "two suppliers", "spend": "12,000",
                     "issues": "Supplier delay"})
        assert ok.status_code == 303, ok.text[:500]
        page = sam.get(f"/returns/{ref}").text
        assert 'id="return-rag">At risk' in page and "£12,000" in page
        assert "Systems merged" in page and "Supplier delay" in page
        officer_page = olivia.get(f"/returns/{ref}").text
        assert "Accept it with conditions" in officer_page
        assert "Needs revision: send it back to the sponsor" in officer_page

        def do(command: str, form: str, **fields):
            data = {"csrf_token": csrf_of(olivia, f"/returns/{ref}"),
                    "_next": f"/returns/{ref}", "_form": form, "return": ref, **fields}
            return olivia.post(f"/do/{command}", data=data, follow_redirects=False)

        no_due = do("send_back_return", "send_back", missing="Spend by budget line")
        assert no_due.status_code == 400 and "Due is required" in no_due.text
        r = do("send_back_return", "send_back", missing="Spend by budget line", due="2011-07-20")
        assert r.status_code == 303
        page = sam.get(f"/returns/{ref}").text
        assert "what is missing: Spend by budget line" in page
        again = send(**{"progress[1].line": "Contract let", "progress[1].rag": "on_track",
                        "progress[1].narrative": "let in June", "spend": "12,500"})
        assert again.status_code == 303
        r = do("accept_return_with_conditions", "accept_with_conditions",
               conditions="Report the merger's date next quarter")
        assert r.status_code == 303
        page = olivia.get(f"/returns/{ref}").text
        assert "conditions: Report the merger&#39;s date next quarter" in page
        assert "Earlier versions" in page and "Version 2" in page  # 1: sent without lines
        grant_page = olivia.get(f"/grants/{grant}").text
        assert 'id="return-conditions"' in grant_page
        assert "Report the merger&#39;s date next quarter" in grant_page
        paper = olivia.get("/meetings/BOARD-APR/papers/monitoring.html")
        assert paper.status_code == 200 and "Late and red returns" in paper.text
        assert sam.get("/meetings/BOARD-APR/papers/monitoring.html").status_code == 403
