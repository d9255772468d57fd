"""The agenda and minutes papers of the meeting scenario (tests/scenarios/
meeting-2012.yaml) as a Board member sees them: the HTML papers opened in a
real headless Chromium (screenshots saved in QUORUM_ARTIFACTS, default
tests/artifacts/browser/papers/, as meeting-agenda.png and meeting-minutes.png), and
the same papers printed as PDF with the words the minutes must carry."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import accessibility_problems, artifacts_dir, browser_context  # noqa: F401
from test_papers_pdf import pdf_text

from engine.entry import replay
from engine.read.papers import paper_context
from engine.store.db import make_engine
from notifications import papers

SCENARIO = Path(__file__).parent / "scenarios" / "meeting-2012.yaml"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):  # noqa: ANN201
    """The scenario replayed into a file database; the papers' contexts from it."""
    tmp = tmp_path_factory.mktemp("meeting-papers")
    url = f"sqlite:///{tmp / 'meeting.db'}"
    result = replay.run(SCENARIO, url)
    assert result.ok, result.failed
    engine = make_engine(url)
    try:
        yield tmp, {
            "agenda": paper_context(engine, "agenda", "WB-2012-07-11"),
            "minutes": paper_context(engine, "minutes", "WB-2012-04-18"),
        }
    finally:
        engine.dispose()


def test_agenda_and_minutes_in_the_browser(replayed, browser_context) -> None:  # noqa: F811
    tmp, contexts = replayed
    page = browser_context.new_page()
    shots = artifacts_dir() / "papers"  # its own folder: the walk clears the top one
    shots.mkdir(exist_ok=True)

    agenda = tmp / "agenda.html"
    agenda.write_text(papers.render("agenda", contexts["agenda"], "html"), encoding="utf-8")
    page.goto(agenda.as_uri())
    rows = page.locator("#agenda tr").all_inner_texts()
    assert rows[1].split("\t")[:3] == ["1", "WB-2012-04-18/R2", "report"]
    assert rows[2].split("\t")[:4] == ["2", "B-0003", "bid", "Customer Contact Centre"]
    assert "resubmitted" in rows[3] and "B-0002" in rows[3]
    assert page.locator("#opening li").nth(1).inner_text() == "Declarations of interest"
    page.screenshot(path=str(shots / "meeting-agenda.png"), full_page=True)
    assert accessibility_problems(page) == [], page.url

    minutes = tmp / "minutes.html"
    minutes.write_text(papers.render("minutes", contexts["minutes"], "html"), encoding="utf-8")
    page.goto(minutes.as_uri())
    assert page.locator("#present li").first.inner_text() == "Cllr Hazel Quinn (Chair), Ashcombe DC"
    assert page.locator("#substitutes li").inner_text() == (
        "Cllr Pat Zeal, Dunmere County Council, substituted for Cllr Omar Yates")
    assert page.locator("#apologies li").count() == 2
    assert page.locator("#observers li").inner_text() == "Sam Osei, Wealdmoor SRP"
    approved = page.locator("#decisions li").first.inner_text()
    assert "carried by 5 to 2, 1 abstaining" in approved and "against Cllr Ken Tull" in approved
    assert page.locator("#required-reports li").inner_text().startswith(
        "Programme budget monitoring to June 2012 — Priya Patel")
    page.screenshot(path=str(shots / "meeting-minutes.png"), full_page=True)
    assert accessibility_problems(page) == [], page.url
    page.close()
    for name in ("meeting-agenda.png", "meeting-minutes.png"):
        assert (shots / name).stat().st_size > 10_000


def test_agenda_and_minutes_as_pdf(replayed) -> None:
    _, contexts = replayed
    agenda = papers.render_pdf("agenda", contexts["agenda"])
    assert agenda.startswith(b"%PDF-") and agenda.rstrip().endswith(b"%%EOF")
    text = pdf_text(agenda)
    assert "Customer Contact Centre" in text and "Programme budget monitoring" in text
    minutes = papers.render_pdf("minutes", contexts["minutes"])
    text = pdf_text(minutes)
    for words in ("Reports required for the next meeting", "substituted for Cllr Omar Yates",
                  "carried by 5 to 2", "Apologies", "Observers", "Sam Osei"):
        assert words in text, words
