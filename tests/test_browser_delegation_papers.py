"""The "Delegated decisions – <period>" paper in a real browser, and as PDF,
for the two scenario files of issue 12 replayed side by side in one database
(tests/scenarios/delegation-2012.yaml: the Chair and the Vice Chairs, one
standing aside, concurrences; committee-2013.yaml: a committee's quorum and
an urgency route). The pages are served by the real app (``quorum serve``)
and read by headless Chromium; full-page screenshots go to
QUORUM_ARTIFACTS (default tests/artifacts/browser/)/delegation/.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import accessibility_problems, artifacts_dir, browser_context, quorum, serve  # noqa: F401
from test_papers_pdf import pdf_text

from engine.entry.replay import run

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
OFFICER = "maya.osei@fenmoor.example"


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("delegation-papers")
    db = f"sqlite:///{tmp / 'papers.db'}"
    for name in ("delegation-2012.yaml", "committee-2013.yaml"):
        result = run(SCENARIOS / name, db)
        assert result.ok, result.to_json()["failed_step"]
    token = quorum(db, "token", "create", OFFICER, "--name", "papers").strip().splitlines()[-1]
    with serve(db, log=tmp / "serve.log") as base:
        yield {"base": base, "token": token}


def test_the_delegated_decisions_papers_in_the_browser(site, browser_context) -> None:  # noqa: F811
    page = browser_context.new_page()
    page.set_extra_http_headers({"Authorization": f"Bearer {site['token']}"})
    shots = artifacts_dir() / "delegation"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        response = page.goto(site["base"] + "/meetings/FIP-2013-01-16/papers/delegated.html")
        assert response is not None and response.ok
        assert page.locator("h1").inner_text() == (
            "Delegated decisions – 8 May 2012 to 16 January 2013"
        )
        sections = page.locator("section.dd")
        assert sections.count() == 4
        peer = page.locator("#FIP-DD-3").inner_text()
        assert "Councils in Difficulty — balance available when requested" in peer
        assert "£100,000" in peer and "urgency route" in peer
        rows = page.locator("#FIP-DD-3 table tr")
        assert rows.count() == 5  # a header and four signatures of four
        assert peer.count("Concurred (after approval)") == 2
        events = page.locator("#FIP-DD-2").inner_text()
        assert "Stood aside (interest)" in events
        assert "his council hosts two of the events" in events
        recommendation = page.locator("p.rec").inner_text()
        assert recommendation.startswith("That the Board endorses the 4 decisions")
        page.screenshot(path=str(shots / "01-fenmoor-delegated-decisions.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url

        response = page.goto(site["base"] + "/meetings/WSS-2013-07-10/papers/delegated.html")
        assert response is not None and response.ok
        hub = page.locator("#WSS-DD-1").inner_text()
        assert "a quorum of the Resources Committee" in hub
        assert "member, the Resources Committee" in hub and "Declined" in hub
        assert "employed by Colbury Borough Council" in hub
        assert "Concurred (after approval)" in page.locator("#WSS-DD-2").inner_text()
        page.screenshot(path=str(shots / "02-wealden-delegated-decisions.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
    finally:
        page.close()
    for png in ("01-fenmoor-delegated-decisions.png", "02-wealden-delegated-decisions.png"):
        assert (shots / png).stat().st_size > 10_000


def test_the_delegated_decisions_paper_as_pdf_from_the_route(site) -> None:
    r = httpx.get(
        site["base"] + "/meetings/FIP-2013-01-16/papers/delegated.pdf",
        headers={"Authorization": f"Bearer {site['token']}"},
        timeout=120,
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    shots = artifacts_dir() / "delegation"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "fenmoor-delegated-decisions.pdf").write_bytes(r.content)
    text = pdf_text(r.content)
    for phrase in (
        "Delegated decisions",
        "Concurred (after approval)",
        "Stood aside (interest)",
        "Peer review of Brackwater Borough Council",
        "That the Board endorses the 4 decisions",
    ):
        assert phrase in text, phrase
