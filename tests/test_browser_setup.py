"""Set-up by clicking only, in a real Chromium (issue 14, item 1): from an empty
database holding only the people who run it, a director creates the programme
and its first pot, an officer adds a second pot by a ratified change, registers
an authority and a Board member, opens a round and schedules a meeting. A
refused form shows the error summary first. Screenshots go to the artefacts
folder's setup/ (tests/browser.py); skipped without Chromium."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from browser import (  # noqa: F401
    accessibility_problems,
    artifacts_dir,
    browser_context,
    fill_date,
    serve,
)
from webkit import password_for, set_passwords

from engine.commands.service import Quorum
from engine.read import setup as setup_read
from engine.read import views
from engine.store.db import create_schema, make_engine

DIRECTOR, OFFICER, CHAIR = "dee@s.example", "olive@s.example", "chris@s.example"


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("setup")
    db = f"sqlite:///{tmp / 'empty.db'}"
    engine = make_engine(db)
    create_schema(engine)
    q = Quorum(engine)
    q.execute_batch(
        [
            ("register_person", {"name": n, "email": e, "roles": r})
            for n, e, r in (
                ("Dee", DIRECTOR, ["director"]),
                ("Olive", OFFICER, ["officer"]),
                ("Chris", CHAIR, ["chair", "board_member"]),
            )
        ],
        "system",
    )
    set_passwords(q, DIRECTOR, OFFICER, CHAIR)
    with serve(db, log=tmp / "serve.log") as base:
        yield {"base": base, "engine": engine}
    engine.dispose()


def test_a_programme_is_set_up_by_clicking_only(site, browser_context) -> None:  # noqa: F811
    shots = artifacts_dir() / "setup"
    shots.mkdir(exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    counter = itertools.count(1)
    page = browser_context.new_page()

    def shot(step: str) -> None:
        page.screenshot(path=str(shots / f"{next(counter):02d}-{step}.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url

    def sign_in(who: str) -> None:
        browser_context.clear_cookies()
        page.goto(site["base"] + "/login")
        page.fill("#email", who)
        page.fill("#password", password_for(who))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert "Signed in as" in page.locator(".flash").inner_text()

    def nav(label: str) -> None:
        page.locator("nav[aria-label=Main]").get_by_role("link", name=label).click()
        page.wait_for_load_state()

    def send(form: str, button: str) -> None:
        page.locator(f"#form-{form}").get_by_role("button", name=button).click()
        page.wait_for_load_state()

    try:
        sign_in(DIRECTOR)
        nav("Programmes")
        assert "No programme yet" in page.locator("main").inner_text()
        shot("programmes-empty")
        f = "#f-create-programme-"
        page.fill(f + "name", "Efficiency 2011")
        page.fill(f + "pot", "Projects")
        page.fill(f + "amount", "a lot")
        send("create-programme", "Create a programme")
        summary = page.locator("#error-summary")
        assert "There is a problem" in summary.inner_text()
        shot("programmes-error")
        summary.get_by_role("link").click()  # the summary leads to the field
        assert page.locator(f + "amount").get_attribute("aria-invalid") == "true"
        assert page.locator(f + "name").input_value() == "Efficiency 2011"  # kept
        page.fill(f + "amount", "750,000")
        page.fill(f + "ratified_by", "Board 1 March 2011 minute 4")
        send("create-programme", "Create a programme")
        assert "create programme: done" in page.locator(".flash").inner_text()
        shot("programme-created")

        sign_in(OFFICER)
        nav("Programmes")
        f = "#f-add-pot-efficiency-2011-"
        page.fill(f + "pot", "Governance")
        page.fill(f + "amount", "50,000")
        page.fill(f + "ratified_by", "Board 12 April 2011 minute 9")
        page.fill(f + "reason", "running costs")
        send("add-pot-efficiency-2011", "Add a pot")
        assert "Governance" in page.locator("table.pots").inner_text()
        shot("pot-added")

        nav("Authorities")
        f = "#f-register-authority-"
        page.fill(f + "name", "Rutland CC")
        page.select_option(f + "kind", "unitary")
        page.fill(f + "org_id", "GB-LAE-RUT")
        send("register-authority", "Register an authority or partnership")
        assert "GB-LAE-RUT" in page.locator("#authorities").inner_text()
        shot("authority-registered")

        nav("People")
        f = "#f-register_person-"
        page.fill(f + "name", "Ash")
        page.fill(f + "email", "ash@s.example")
        page.select_option(f + "roles", "board_member")
        send("register_person", "Register a person")
        assert "ash@s.example" in page.locator("#people").inner_text()
        shot("person-registered")

        nav("Rounds")
        assert "No round yet" in page.locator("main").inner_text()
        f = "#f-open-round-"
        today = dt.date.today()
        page.fill(f + "name", "Spring")
        page.select_option(f + "pot", "Projects")
        fill_date(page, f + "closes", today + dt.timedelta(days=60))
        page.select_option(f + "scoring", "optional")
        send("open-round", "Open a round")
        assert "Spring" in page.locator("#rounds").inner_text()
        shot("round-opened")

        nav("Meetings")
        assert "No meeting is scheduled yet" in page.locator("main").inner_text()
        shot("meetings-empty")
        f = "#f-schedule-meeting-"
        page.fill(f + "title", "Board meeting")
        fill_date(page, f + "date", today + dt.timedelta(days=30))
        page.fill(f + "quorum", "2")
        page.locator(f + "members").get_by_label("Chris (board member, chair)").check()
        page.locator(f + "members").get_by_label("Ash (board member)").check()
        send("schedule-meeting", "Schedule a meeting")
        assert "Board meeting" in page.locator("#meetings").inner_text()
        shot("meeting-scheduled")
    finally:
        page.close()
    with site["engine"].connect() as conn:
        (prog,) = setup_read.programmes(conn)
        assert [p["name"] for p in prog["pots"]] == ["Projects", "Governance"]
        assert [o["name"] for o in setup_read.organisations(conn)] == ["Rutland CC"]
        assert [r["name"] for r in views.rounds(conn)] == ["Spring"]
        (meeting,) = views.meetings(conn)
        assert meeting["quorum"] == 2
