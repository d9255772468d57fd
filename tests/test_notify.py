"""Telling people (issue 14): the catch-up sweep after a restore, digests, officers
told of new bids (email and in-app), the notifications page, My work's counts and
links, and an item's activity feed in words."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from fastapi.testclient import TestClient
from moneykit import (
    CHAIR,
    DIRECTOR,
    OFFICER,
    OFFICER2,
    SPONSOR,
    SPONSOR2,
    bid_refs,
    money_board,
)
from smtpserver import MailServer
from sqlalchemy import func, select
from webkit import csrf_of, set_passwords, sign_in

from engine.domain.errors import PermissionDenied, ValidationError
from engine.domain.words import shown_subject
from engine.entry.scheduler import sweep
from engine.read.activity import activity
from engine.read.work import my_work
from engine.settings import SettingsError, get_settings, override_settings
from engine.store.models import AuditEvent, Notification, Outbox
from notifications.channels import channel_from_config
from notifications.dispatch import dispatch
from quorum_web import pages_notify
from quorum_web.app import create_app

D = dt.date


def send(engine, clock, server: MailServer):  # noqa: ANN201
    return dispatch(engine, channel_from_config(server.env()), clock)


def rows(engine, like: str = "return:%") -> list[Outbox]:
    with engine.connect() as c:
        return list(c.execute(select(Outbox).where(Outbox.key.like(like)).order_by(Outbox.id)))


@pytest.fixture
def server():
    s = MailServer()
    yield s
    s.stop()


# ================================================================ the restored database


def test_restored_database_first_sweep_holds_then_sends_one_digest_each(db_url, server) -> None:
    """A database restored from earlier data (last sweep nearly two years ago, 32
    returns late): the first sweep sends no chase and asks an officer; once
    confirmed, each person gets ONE digest; nothing is lost or doubled."""
    q, engine, clock = money_board(db_url)
    try:
        clock.set(D(2011, 7, 18))
        assert sweep(engine, clock=clock)["messages_queued"] == {"reminder-14": 4}
        send(engine, clock, server)
        before = len(server.received)
        clock.set(D(2013, 6, 3))  # the restore: the clock moved on, the data did not

        out = sweep(engine, clock=clock)
        assert out["messages_queued"] == {"escalate-chair": 32, "escalate-director": 32}
        assert (out["held"], out["held_people"]) == (64, 2)
        fresh = [r for r in rows(engine) if r.created_at == clock.now()]
        assert len(fresh) == 64 and {r.status for r in fresh} == {"held"}
        assert send(engine, clock, server).sent == 0  # nothing goes out
        assert len(server.received) == before

        # officers are asked, in My work (and only officers)
        with engine.connect() as c:
            task = my_work(c, q.actor(OFFICER), clock.today())["sections"]["catchup_to_confirm"]
            assert "catchup_to_confirm" not in my_work(c, q.actor(DIRECTOR), clock.today())[
                "sections"]
        assert [i["title"] for i in task["items"]] == [
            "Confirm the catch-up sweep: 64 reminders to 2 people"
        ]
        assert task["items"][0]["link"] == "/catch-up"

        # a sweep the next day queues nothing twice and sends nothing either
        clock.set(D(2013, 6, 4))
        again = sweep(engine, clock=clock)
        assert again["messages_queued_total"] == 0 and "digests" not in again
        assert len(rows(engine)) == 4 + 64

        with engine.connect() as c:
            reason = c.execute(select(AuditEvent.reason).where(
                AuditEvent.item_ref == "SWEEP-2013-06-03")).scalar()  # fmt: skip
        assert "64 held until an officer confirms the catch-up" in reason

        with pytest.raises(PermissionDenied, match="officer"):
            q.execute("confirm_catchup", {}, DIRECTOR)
        set_passwords(q, OFFICER)
        with TestClient(create_app(db_url, scheduler=False, clock=clock)) as c:
            assert sign_in(c, OFFICER).status_code == 303
            home = c.get("/").text
            assert "Confirm the catch-up sweep: 64 reminders to 2 people" in home
            assert 'href="/catch-up"' in home
            page = c.get("/catch-up").text
            assert "64 reminders to 2 people" in page and CHAIR in page
            r = c.post("/do/confirm_catchup", data={"csrf_token": csrf_of(c, "/catch-up"),
                       "_next": "/catch-up", "_done": "/"}, follow_redirects=False)  # fmt: skip
            assert r.status_code == 303 and r.headers["location"] == "/"
            assert "Nothing is held back" in c.get("/catch-up").text
        with engine.connect() as c:
            confirmed = c.execute(select(AuditEvent.after).where(
                AuditEvent.command == "confirm_catchup")).scalars().all()  # fmt: skip
        assert [json.loads(a) for a in confirmed] == [{"released": 64, "people": 2, "digests": 2}]
        with pytest.raises(ValidationError, match="nothing is held back"):
            q.execute("confirm_catchup", {}, OFFICER)

        sent = send(engine, clock, server)
        assert sent.sent == 2 and sent.failed == 0
        got = server.received[before:]
        assert sorted(r.rcpt_tos[0] for r in got) == sorted([CHAIR, DIRECTOR])
        assert all(r.key.startswith("digest:catchup:") for r in got)
        # each of the 64 messages exactly once, in its person's digest, and never alone
        chased = rows(engine)[4:]
        assert {r.status for r in chased} == {"digested"}
        for person in (CHAIR, DIRECTOR):
            [mail] = [r for r in got if r.rcpt_tos == [person]]
            body = mail.text()
            mine = [r for r in chased if r.to_addr == person]
            assert len(mine) == 32 and "32 in all" in body
            for r in mine:
                assert body.count(shown_subject(r.subject, r.context)) == 1
            assert mail.message["Subject"] == "32 reminders and chases from Quorum (catch-up)"
        assert send(engine, clock, server).sent == 0
        with engine.connect() as c:
            assert "catchup_to_confirm" in my_work(c, q.actor(OFFICER), clock.today())["sections"]
            assert my_work(c, q.actor(OFFICER), clock.today())["sections"][
                "catchup_to_confirm"]["count"] == 0
        # and the next sweep is an ordinary one again
        clock.set(D(2013, 6, 5))
        assert "held" not in sweep(engine, clock=clock)
    finally:
        engine.dispose()


def test_a_sweep_sends_one_digest_to_someone_with_more_than_the_threshold(
    sqlite_url, server, _checkpoint_dir
) -> None:
    q, engine, clock = money_board(sqlite_url)
    try:
        clock.set(D(2011, 7, 17))  # swept daily: no catch-up
        assert sweep(engine, clock=clock)["messages_queued_total"] == 0
        clock.set(D(2011, 7, 18))
        # an override starts from the defaults: keep the sweep's checkpoint in the
        # test's folder, not the checkout's var/checkpoints
        with override_settings(digest_threshold=1, checkpoint_dir=str(_checkpoint_dir)):
            out = sweep(engine, clock=clock)
        assert out["messages_queued"] == {"reminder-14": 4}
        assert (out["digests"], out["digested"]) == (2, 4)
        assert {r.status for r in rows(engine)} == {"digested"}
        digests = rows(engine, "digest:%")
        assert sorted(r.to_addr for r in digests) == sorted([SPONSOR, SPONSOR2])
        assert all(r.context["count"] == 2 for r in digests)
        sent = send(engine, clock, server)
        assert sorted(r.rcpt_tos[0] for r in server.received if r.key.startswith("digest:")) == (
            sorted([SPONSOR, SPONSOR2])
        )
        assert not [r for r in server.received if r.key.startswith("return:")]
        assert sent.failed == 0
        # the default threshold (10): four messages go one by one
        clock.set(D(2011, 7, 29))
        out = sweep(engine, clock=clock)
        assert "digests" not in out and out["messages_queued"] == {"reminder-3": 4}
        assert {r.status for r in rows(engine) if r.created_at == clock.now()} == {"queued"}
    finally:
        engine.dispose()


def test_the_gap_and_threshold_settings_are_checked(monkeypatch) -> None:
    monkeypatch.setenv("QUORUM_DIGEST_THRESHOLD", "none")
    with pytest.raises(SettingsError, match="QUORUM_DIGEST_THRESHOLD='none'"):
        get_settings()
    monkeypatch.setenv("QUORUM_DIGEST_THRESHOLD", "25")
    monkeypatch.setenv("QUORUM_CATCHUP_GAP_DAYS", "0")
    with pytest.raises(SettingsError, match="QUORUM_CATCHUP_GAP_DAYS"):
        get_settings()
    monkeypatch.setenv("QUORUM_CATCHUP_GAP_DAYS", "7")
    assert (get_settings().digest_threshold, get_settings().catchup_gap_days) == (25, 7)


# ================================================================ officers told


def test_officers_are_told_of_a_new_bid_by_email_and_in_app(sqlite_url, server) -> None:
    q, engine, clock = money_board(sqlite_url)
    try:
        ref = q.execute(
            "submit_bid",
            {"title": "Shared legal", "sponsor": "Rutland CC", "grant": "40,000",
             "pot": "Projects", "savings": "100,000 3 years", "builds_on_proven": "yes"},
            SPONSOR,
        )["ref"]  # fmt: skip
        send(engine, clock, server)
        told = [r for r in server.received if r.key.startswith(f"officer:bid:{ref}:")]
        assert sorted(r.rcpt_tos[0] for r in told) == sorted([OFFICER, OFFICER2])
        mail = told[0]
        assert mail.message["Subject"] == f"Rutland CC submitted bid {ref}: Shared legal"
        assert f"/bids/{ref}" in mail.text()
        with engine.connect() as c:
            notes = c.execute(
                select(Notification.key, Notification.link, Notification.item_ref)
                .where(Notification.item_ref == ref)
            ).all()  # fmt: skip
            mine = my_work(c, q.actor(OFFICER), clock.today())["sections"]["bids_received"]
        assert len(notes) == 2 and {n.link for n in notes} == {f"/bids/{ref}"}
        assert ref in [i["ref"] for i in mine["items"]]

        # the page: the header's count, the list, marking read
        set_passwords(q, OFFICER)
        app = create_app(sqlite_url, scheduler=False, clock=clock)
        with TestClient(app) as c:
            assert sign_in(c, OFFICER).status_code == 303
            home = c.get("/")
            unread = int(re.search(r'id="unread-count">(\d+)', home.text).group(1))
            assert unread >= 1
            page = c.get("/notifications")
            assert f"Rutland CC submitted bid {ref}: Shared legal" in page.text
            assert f'href="/bids/{ref}"' in page.text
            r = c.post("/do/mark_notifications_read",
                       data={"csrf_token": csrf_of(c, "/notifications"), "_next": "/notifications"},
                       follow_redirects=False)  # fmt: skip
            assert r.status_code == 303
            page = c.get("/notifications")
            assert 'id="unread-count"' not in page.text and "0 unread" in page.text
        with engine.connect() as c:
            unread = dict(c.execute(
                select(Notification.person_id, func.count())
                .where(Notification.item_ref == ref, Notification.read_at.is_(None))
                .group_by(Notification.person_id)).all())  # fmt: skip
        assert list(unread.values()) == [1]  # Otto's: marking one's own never touches another's
        assert q.actor(OFFICER2).person_id in unread
    finally:
        engine.dispose()


# ================================================================ My work


def test_my_work_headline_equals_its_sections_and_every_section_links_to_all(
    sqlite_url,
) -> None:
    q, engine, clock = money_board(sqlite_url)
    try:
        q.execute_batch(
            [("submit_bid", {"title": f"Idea {n}", "sponsor": "Rutland CC", "grant": "1,000",
                             "pot": "Projects", "savings": "5,000 1 year",
                             "builds_on_proven": "yes"}) for n in range(30)],
            SPONSOR,
        )  # fmt: skip
        set_passwords(q, OFFICER, CHAIR)
        app = create_app(sqlite_url, scheduler=False, clock=clock)
        for who in (OFFICER, CHAIR):
            with TestClient(app) as c:
                assert sign_in(c, who).status_code == 303
                page = c.get("/").text
                total = int(re.search(r'id="work-total">(\d+) waiting', page).group(1))
                heading = r'<h2 class="govuk-heading-m">[^<]*<span class="badge count">(\d+)</span>'
                counts = re.findall(heading, page)
                assert total == sum(map(int, counts)), who
                assert "… and" not in page  # no dead "and 2 more"
                with engine.connect() as conn:
                    work = my_work(conn, q.actor(who), clock.today())
                assert work["total"] == total
                if who == OFFICER:
                    assert 'href="/my-work/bids_received"' in page
                    whole = c.get("/my-work/bids_received")
                    assert whole.status_code == 200
                    for ref in bid_refs(engine, *(f"Idea {n}" for n in range(30))):
                        assert f"<strong>{ref}</strong>" in whole.text
                    assert c.get("/my-work/signatures_awaited").status_code == 404
    finally:
        engine.dispose()


def test_a_section_of_my_work_reads_only_itself_and_pages_its_items(
    sqlite_url, monkeypatch,
) -> None:
    """/my-work/{section}: only that section (its count is the page's total), its
    items oldest first a page at a time with Previous and Next, every item on
    exactly one page; a page that is not a number is refused by name."""
    monkeypatch.setattr(pages_notify, "SECTION_PAGE", 12)  # a page of 12 instead of 200
    q, engine, clock = money_board(sqlite_url)
    try:
        q.execute_batch(
            [("submit_bid", {"title": f"Idea {n}", "sponsor": "Rutland CC", "grant": "1,000",
                             "pot": "Projects", "savings": "5,000 1 year"}) for n in range(30)],
            SPONSOR,
        )  # fmt: skip
        with engine.connect() as conn:
            only = my_work(conn, q.actor(OFFICER), clock.today(), only="bids_received")
        assert list(only["sections"]) == ["bids_received"]
        assert only["total"] == only["sections"]["bids_received"]["count"] >= 30
        set_passwords(q, OFFICER)
        with TestClient(create_app(sqlite_url, scheduler=False, clock=clock)) as c:
            assert sign_in(c, OFFICER).status_code == 303
            seen: list[str] = []
            pages_of = -(-only["total"] // 12)
            for n in range(1, pages_of + 1):
                page = c.get(f"/my-work/bids_received?page={n}").text
                assert f'id="work-total">{only["total"]} waiting' in page
                seen += re.findall(r"<li>\s*<a href=\"[^\"]+\"><strong>([^<]+)</strong>", page)
                assert ('rel="prev"' in page) == (n > 1)
                assert ('rel="next"' in page) == (n < pages_of)
            assert seen == [i["ref"] for i in only["sections"]["bids_received"]["items"]]
            bad = c.get("/my-work/bids_received?page=two")
            assert bad.status_code == 400 and "page" in bad.text
    finally:
        engine.dispose()


# ================================================================ the activity feed

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


def test_activity_feed_is_in_words(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    try:
        ref = bid_refs(engine, "Shared ICT")[0]
        with engine.connect() as c:
            feed = activity(c, ref)
        texts = [a["text"] for a in feed]
        assert texts == [
            "Olive approved the bid on 20 April 2011",
            "Olive scored the bid on 1 April 2011",
            "Olive submitted the bid on 1 March 2011",
        ]
        details = [d for a in feed for d in a["details"]]
        assert "pot: Projects" in details and "sponsor: Rutland CC" in details
        assert "grant requested: £100,000" in details
        for line in texts + details:
            assert not SNAKE.search(line), line
            assert "pence" not in line and "_id" not in line and "@" not in line, line
        assert not any(re.search(r"pot: \d", d) for d in details)

        set_passwords(q, OFFICER)
        app = create_app(sqlite_url, scheduler=False, clock=clock)
        with TestClient(app) as c:
            assert sign_in(c, OFFICER).status_code == 303
            page = c.get(f"/bids/{ref}").text
            assert 'id="activity"' in page
            assert "Olive approved the bid on 20 April 2011" in page
    finally:
        engine.dispose()
