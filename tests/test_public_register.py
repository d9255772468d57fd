"""The public register of decisions (issue 16, item 3; docs/publishing.md): a
year replayed (tests/scenarios/money-2011-12.yaml) then read signed out — every
decision with its record, papers only once published (minutes once closed), an
Atom feed, nothing private; publication's deadline in clear working days and
the officers' warning in My work."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.commands.service import Quorum
from engine.domain.actor import Actor
from engine.domain.clock import FixedClock
from engine.domain.errors import PermissionDenied, ValidationError
from engine.entry.replay import run
from engine.read.register import papers_deadline
from engine.read.work import my_work
from engine.store.db import make_engine
from quorum_web.app import create_app

SCENARIO = Path(__file__).parent / "scenarios" / "money-2011-12.yaml"
OFFICER = "officer@emiep.example"
CHAIR = "chair@emiep.example"
ATOM = "{http://www.w3.org/2005/Atom}"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = f"sqlite:///{tmp_path_factory.mktemp('register') / 'year.db'}"
    result = run(SCENARIO, url)
    assert result.ok, result.failed
    engine = make_engine(url)
    clock = FixedClock(dt.date(2012, 4, 2))
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as anon:
        yield {"url": url, "engine": engine, "q": Quorum(engine, clock), "clock": clock,
               "anon": anon}
    engine.dispose()


def test_papers_deadline_counts_clear_working_days() -> None:
    # Wednesday 20 April 2011: Tue 19, Mon 18, Fri 15, Thu 14, Wed 13 are the five
    assert papers_deadline(dt.date(2011, 4, 20), 5) == dt.date(2011, 4, 12)
    # Tuesday 3 May 2011: the May Day, royal wedding, Easter Monday and Good Friday
    # bank holidays and two weekends do not count
    assert papers_deadline(dt.date(2011, 5, 3), 5) == dt.date(2011, 4, 19)
    assert papers_deadline(dt.date(2011, 5, 3), 0) == dt.date(2011, 5, 2)


def test_the_register_shows_every_decision_with_its_record_signed_out(year: dict) -> None:
    anon = year["anon"]
    page = anon.get("/register")
    assert page.status_code == 200
    assert "Approved" in page.text and "Referred back" in page.text
    assert "Approved under the scheme of delegation" in page.text
    refs = re.findall(r'href="/register/decisions/([^"]+)"', page.text)
    # four Board decisions on 20 April, one delegated on 6 May: newest first
    assert refs == ["DD-0001", "D-0004", "D-0003", "D-0002", "D-0001"]
    for ref in refs:
        one = anon.get(f"/register/decisions/{ref}")
        assert one.status_code == 200, ref
        for label in ("Date of decision", "Reasons", "Alternatives considered and rejected",
                      "Interests declared", "Who decided"):
            assert label in one.text, (ref, label)
        assert not EMAIL.search(one.text), ref
    delegated = anon.get("/register/decisions/DD-0001").text
    assert "Signed by Cllr Chair (approved)" in delegated
    assert "Cllr Vice Two (declined)" in delegated  # every signature, not only the deciding
    assert delegated.count("Cllr Vice Two: a governor of one of the schools") == 1
    assert not EMAIL.search(page.text)
    assert anon.get("/register/decisions/NO-SUCH").status_code == 404


def test_papers_are_public_only_once_published_and_minutes_once_closed(year: dict) -> None:
    anon, q = year["anon"], year["q"]
    assert anon.get("/register/meetings/IEB-2011-06-15/agenda.html").status_code == 404
    assert "not yet published (due by 2011-06-07)" in anon.get("/register").text
    with pytest.raises(PermissionDenied):
        q.execute("publish_papers", {"meeting": "IEB-2011-06-15"}, CHAIR)
    year["clock"].set(dt.date(2011, 6, 1))
    done = q.execute("publish_papers", {"meeting": "IEB-2011-06-15"}, OFFICER)
    assert done["late"] is False and done["due_by"] == "2011-06-07"
    with pytest.raises(ValidationError, match="were published on Wednesday 1 June 2011"):
        q.execute("publish_papers", {"meeting": "IEB-2011-06-15"}, OFFICER)
    year["clock"].set(dt.date(2012, 4, 2))
    agenda = anon.get("/register/meetings/IEB-2011-06-15/agenda.html")
    assert agenda.status_code == 200 and not EMAIL.search(agenda.text)
    assert anon.get("/register/meetings/IEB-2011-06-15/delegated.html").status_code == 200
    # the minutes wait for the meeting to close
    assert anon.get("/register/meetings/IEB-2011-06-15/minutes.html").status_code == 404
    q.execute("close_meeting", {"meeting": "IEB-2011-06-15"}, OFFICER)
    minutes = anon.get("/register/meetings/IEB-2011-06-15/minutes.html")
    assert minutes.status_code == 200 and not EMAIL.search(minutes.text)
    assert anon.get("/register/meetings/IEB-2011-06-15/bids.html").status_code == 404


def test_the_feed_lists_new_decisions_newest_first_with_links_that_answer(year: dict) -> None:
    anon = year["anon"]
    feed = anon.get("/register/feed.atom")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 5
    updated = [e.find(f"{ATOM}updated").text for e in entries]
    assert updated == sorted(updated, reverse=True)
    for e in entries:
        href = e.find(f"{ATOM}link").get("href")
        path = "/register/" + href.split("/register/", 1)[1]
        assert anon.get(path).status_code == 200, path
    assert not EMAIL.search(feed.text)


def test_officers_are_warned_before_the_papers_deadline(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warn.db'}"
    result = run(SCENARIO, url)
    assert result.ok
    engine = make_engine(url)
    clock = FixedClock(dt.date(2011, 5, 20))
    q = Quorum(engine, clock)
    officer = Actor("Olivia Officer", OFFICER, frozenset({"officer"}))

    def warnings(today: dt.date) -> list[dict]:
        with engine.connect() as conn:
            work = my_work(conn, officer, today)
        return work["sections"]["papers_to_publish"]["items"]

    assert warnings(dt.date(2011, 5, 20)) == []  # more than two weeks before 7 June
    (item,) = warnings(dt.date(2011, 5, 27))
    assert item["ref"] == "IEB-2011-06-15"
    assert "publish the papers by Tuesday 7 June 2011" in item["action"]
    (late,) = warnings(dt.date(2011, 6, 9))
    assert "they were due by Tuesday 7 June 2011" in late["action"] and late["late"] is True
    clock.set(dt.date(2011, 6, 9))
    done = q.execute("publish_papers", {"meeting": "IEB-2011-06-15"}, OFFICER)
    assert done["late"] is True and "late" in done["summary"]
    assert warnings(dt.date(2011, 6, 9)) == []
    engine.dispose()
