"""The public register in a real Chromium, signed out (issue 16): a year's
decisions (tests/scenarios/money-2011-12.yaml) read from the register, one
decision's record opened, the published papers followed, and the Atom feed
followed to a decision; no email address or evidence anywhere. Screenshots go
to the artefacts folder's register/ (tests/browser.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from browser import accessibility_problems, artifacts_dir, browser_context, quorum, serve  # noqa: F401

from engine.entry.replay import run

SCENARIO = Path(__file__).parent / "scenarios" / "money-2011-12.yaml"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("register")
    db = f"sqlite:///{tmp / 'year.db'}"
    assert run(SCENARIO, db).ok
    quorum(db, "do", "publish_papers", "meeting=IEB-2011-06-15", actor="officer@emiep.example")
    with serve(db, log=tmp / "serve.log") as base:
        yield base


def test_the_register_read_signed_out_shows_no_private_field_and_its_feed_leads_to_decisions(
    site, browser_context  # noqa: F811
) -> None:
    shots = artifacts_dir() / "register"
    shots.mkdir(exist_ok=True)
    browser_context.clear_cookies()
    page = browser_context.new_page()
    try:
        response = page.goto(site + "/register")
        assert response is not None and response.ok
        page.screenshot(path=str(shots / "01-register.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        text = page.locator("main").inner_text()
        assert "Public register of decisions" in text and "Sign in" not in page.title()
        assert not EMAIL.search(page.content())
        assert "evidence" not in text.lower()
        # a delegated decision's record: every signature, alternatives, interests
        page.get_by_role("link", name="Approved under the scheme of delegation").first.click()
        page.wait_for_load_state()
        page.screenshot(path=str(shots / "02-decision.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        record = page.locator("#decision-record").inner_text()
        for label in ("Date of decision", "Who decided", "Reasons",
                      "Alternatives considered and rejected", "Interests declared"):
            assert label in record
        assert not EMAIL.search(page.content())
        # the June meeting's published agenda
        page.goto(site + "/register")
        page.get_by_role("link", name="Agenda").first.click()
        page.wait_for_load_state()
        page.screenshot(path=str(shots / "03-agenda.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        assert "/register/meetings/IEB-2011-06-15/agenda.html" in page.url
        assert not EMAIL.search(page.content())
        # the feed, followed to its newest decision
        feed = page.request.get(site + "/register/feed.atom")
        assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml")
        entries = ET.fromstring(feed.body()).findall(f"{ATOM}entry")
        assert entries and not EMAIL.search(feed.text())
        newest = entries[0].find(f"{ATOM}link").get("href")
        assert page.goto(newest).ok
        page.screenshot(path=str(shots / "04-from-feed.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        title = entries[0].find(f"{ATOM}title").text
        assert title.split(": ", 1)[1] in page.locator("h1").inner_text()
    finally:
        page.close()
