"""Board pages: a meeting run from its page (attendance, interests, a decision,
an action), its papers as HTML and PDF, delegated decisions, and a Chair
signing from the signed link in the queued email."""

from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from meetingkit import decide_on_page
from moneykit import CHAIR, MEMBERS, OFFICER, SPONSOR, VICE1, VICE2, bid_refs, money_board
from sqlalchemy import select
from webkit import csrf_of, password_for, set_passwords, sign_in

from engine.store.models import Outbox, Signature, UsedLink
from notifications.render import body
from quorum_web.app import create_app

MEMBER_EMAILS = [f"{n.split()[1].lower()}@m.example" for n in MEMBERS]


@pytest.fixture
def world(sqlite_url):
    q, engine, clock = money_board(sqlite_url)
    set_passwords(q, OFFICER, CHAIR, VICE1, VICE2, SPONSOR, MEMBER_EMAILS[0])
    clock.set(dt.date(2011, 5, 2))
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    people = {}
    for email in (OFFICER, CHAIR, VICE1, VICE2, SPONSOR, MEMBER_EMAILS[0]):
        c = TestClient(app)
        assert sign_in(c, email).status_code == 303
        people[email] = c
    yield {"q": q, "engine": engine, "clock": clock, "people": people, "app": app}
    for c in people.values():
        c.close()


def days_later(world, when: dt.date) -> None:
    """Move the app's clock on by days: every web session has timed out by then
    (QUORUM_SESSION_IDLE_MINUTES / _MAX_HOURS), so each browser signs in again."""
    world["clock"].set(when)
    for email, c in world["people"].items():
        assert sign_in(c, email).status_code == 303


def post(client: TestClient, command: str, page: str, form: str, data=None, **fields):
    payload = {"csrf_token": csrf_of(client, page), "_next": page, "_form": form, **fields}
    for k, v in data or []:
        payload.setdefault(k, []).append(v)
    return client.post(f"/do/{command}", data=payload, follow_redirects=False)


# ------------------------------------------------------------------ meetings


def test_a_meeting_is_run_from_its_page(world) -> None:
    q, officer = world["q"], world["people"][OFFICER]
    q.execute(
        "open_round",
        {
            "ref": "R2",
            "name": "May",
            "pot": "Projects",
            "closes": "2011-05-10",
            "rules": "efficiency-bids-2011",
        },
        OFFICER,
    )
    ask = q.execute(
        "submit_bid",
        {
            "title": "Shared payroll",
            "sponsor": "Rutland CC",
            "grant": "20,000",
            "savings": "50,000 per annum",
            "partnership": "yes",
            "round": "R2",
        },
        OFFICER,
    )["ref"]
    days_later(world, dt.date(2011, 5, 11))
    q.execute("close_round", {"round": "R2"}, OFFICER)
    q.execute("score_round", {"round": "R2"}, OFFICER)
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-MAY",
            "title": "Board",
            "date": "2011-05-11",
            "quorum": 3,
            "members": MEMBERS,
        },
        OFFICER,
    )
    listing = officer.get("/meetings")
    assert (
        listing.status_code == 200 and "BOARD-MAY" in listing.text and "BOARD-APR" in listing.text
    )
    page = officer.get("/meetings/BOARD-MAY")
    assert page.status_code == 200 and "not quorate" in page.text
    # issue 14: attendance has its own page; each agenda item its own, linked
    assert 'href="/meetings/BOARD-MAY/attendance"' in page.text
    assert 'href="/meetings/BOARD-MAY/items/1"' in page.text and 'name="outcome"' not in page.text
    assert 'name="present"' in officer.get("/meetings/BOARD-MAY/attendance").text
    # the agenda exists from scheduling, before anyone attends (page and API)
    assert f'id="agenda-{ask}"' in page.text
    assert ask in officer.get("/api/v1/meetings/BOARD-MAY").json()["agenda"]
    paper = officer.get("/meetings/BOARD-MAY/papers/agenda.html")
    assert paper.status_code == 200 and f'id="agenda-{ask}"' in paper.text
    # attendance with checkboxes (a list): it records who is present
    done = post(
        officer,
        "record_attendance",
        "/meetings/BOARD-MAY/attendance",
        "attendance",
        data=[("present", e) for e in MEMBER_EMAILS[:4]],
        meeting="BOARD-MAY",
    )
    assert done.status_code == 303, done.text[:500]
    page = officer.get("/meetings/BOARD-MAY")
    assert "<strong>quorate</strong>" in page.text
    assert f'id="agenda-{ask}"' in page.text
    item = officer.get("/meetings/BOARD-MAY/items/1")
    assert f"Decide {ask}" in item.text and 'id="form-decide"' in item.text
    # a member declares an interest from the item's page
    member = world["people"][MEMBER_EMAILS[0]]
    mpage = member.get("/meetings/BOARD-MAY/items/1")
    assert mpage.status_code == 200 and "Declare an interest" in mpage.text
    done = post(
        member,
        "declare_interest",
        "/meetings/BOARD-MAY/items/1",
        "interest",
        meeting="BOARD-MAY",
        item=ask,
        nature="my employer is a partner",
    )
    assert done.status_code == 303, done.text[:500]
    assert "my employer is a partner" in officer.get("/meetings/BOARD-MAY").text
    # a refused decision comes back on the item's decide form, next to the field
    bad = decide_on_page(officer, "BOARD-MAY", 1, outcome="approve", **{"votes.for": "9"})
    assert bad.status_code == 400 and "votes" in bad.text
    assert "There is a problem" in bad.text and 'id="form-decide"' in bad.text
    good = decide_on_page(
        officer,
        "BOARD-MAY",
        1,
        outcome="refer_back",
        missing="a costed plan",
        **{"votes.for": "3", "votes.against": "0"},
    )
    assert good.status_code == 303, re.findall(r'class="error"[^<]*', good.text)
    assert good.headers["location"] == "/meetings/BOARD-MAY"
    page = officer.get("/meetings/BOARD-MAY")
    assert (
        'id="decisions"' in page.text and "refer back" in page.text and "a costed plan" in page.text
    )
    done = post(
        officer,
        "record_action",
        "/meetings/BOARD-MAY/actions",
        "record_action",
        meeting="BOARD-MAY",
        what="Write to the sponsor",
        owner="Olive",
        due="2011-05-20",
    )
    assert done.status_code == 303, re.findall(r'class="error"[^<]*', done.text)
    assert "Write to the sponsor" in officer.get("/meetings/BOARD-MAY/actions").text
    minutes = officer.get("/meetings/BOARD-MAY/papers/minutes.html")
    assert minutes.status_code == 200 and "Write to the sponsor" in minutes.text
    assert world["people"][SPONSOR].get("/meetings/BOARD-MAY").status_code == 403


@pytest.mark.parametrize("name", ["agenda", "minutes", "delegated", "returns"])
def test_meeting_papers_as_html_and_pdf(world, name: str) -> None:
    officer = world["people"][OFFICER]
    page = officer.get(f"/meetings/BOARD-APR/papers/{name}.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "BOARD-APR" in page.text or "Board" in page.text
    pdf = officer.get(f"/meetings/BOARD-APR/papers/{name}.pdf")
    if pdf.status_code == 200:
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
    else:
        assert pdf.status_code == 503 and "WeasyPrint" in pdf.text
    assert officer.get("/meetings/BOARD-APR/papers/secret.html").status_code == 404
    assert officer.get(f"/meetings/BOARD-APR/papers/{name}.docx").status_code == 404
    assert officer.get(f"/meetings/NOPE/papers/{name}.html").status_code == 404


def test_round_paper(world) -> None:
    officer = world["people"][OFFICER]
    page = officer.get("/rounds/R1/paper.html")
    assert page.status_code == 200 and "Shared ICT" in page.text
    pdf = officer.get("/rounds/R1/paper.pdf")
    assert pdf.status_code in (200, 503)
    if pdf.status_code == 200:
        assert pdf.content.startswith(b"%PDF")


def test_pdf_unavailable_is_a_clear_503(world, monkeypatch) -> None:
    from notifications import papers

    def missing(*a, **k):
        raise papers.PdfUnavailable("PDF papers need WeasyPrint")

    monkeypatch.setattr(papers, "render_pdf", missing)
    r = world["people"][OFFICER].get("/meetings/BOARD-APR/papers/minutes.pdf")
    assert r.status_code == 503 and "PDF not available" in r.text and "WeasyPrint" in r.text


# ------------------------------------------------------------------ delegated decisions


def request_dd(world) -> str:
    ask = bid_refs(world["engine"], "Delegated ask")[0]
    return world["q"].execute(
        "request_delegated_decision",
        {"bid": ask, "reasons": "urgent: contract deadline", "alternatives": "wait for July"},
        OFFICER,
    )["ref"]


def link_for(world, ref: str, email: str) -> str:
    """The signing link as the queued email shows it (text and HTML agree)."""
    with world["engine"].connect() as c:
        msg = c.execute(
            select(Outbox.template, Outbox.context).where(
                Outbox.template == "delegated_signature_request", Outbox.to_addr == email
            )
        ).one()
    text, page = body(msg.template, msg.context)
    found = re.search(r"http://\S+/delegated/\S+/sign\?t=\S+", text)
    assert found, text
    assert html.escape(found.group(0)) in page or found.group(0) in page
    url = urlsplit(found.group(0))
    assert url.path == f"/delegated/{ref}/sign"
    return f"{url.path}?{url.query}"


def signatures(world, ref: str) -> int:
    with world["engine"].connect() as c:
        return len(c.execute(select(Signature.id)).all())


def used_links(world) -> int:
    with world["engine"].connect() as c:
        return len(c.execute(select(UsedLink.jti)).all())


def sign_via(client: TestClient, link: str, **fields):
    page = client.get(link)
    token = re.search(r'name="t" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    data = {
        "csrf_token": csrf_of(client, link),
        "t": html.unescape(token.group(1)),
        "_form": fields.pop("_form", "approve"),
        **fields,
    }
    return client.post(link.split("?")[0], data=data, follow_redirects=False)


def test_delegated_pages_list_and_show_the_request(world) -> None:
    ref = request_dd(world)
    officer = world["people"][OFFICER]
    listing = officer.get("/delegated")
    assert listing.status_code == 200 and ref in listing.text
    page = officer.get(f"/delegated/{ref}")
    assert page.status_code == 200
    for text in ("urgent: contract deadline", "wait for July", "£30,000", "Projects"):
        assert text in page.text
    assert "No signatures yet" in page.text
    assert "only the Chair and Vice Chairs sign" in page.text
    # a chair signs from the page itself (POST /do/sign)
    chair = world["people"][CHAIR]
    cpage = chair.get(f"/delegated/{ref}")
    assert "Approve" in cpage.text
    version = re.search(r'name="version" value="(\d+)"', cpage.text).group(1)
    r = post(
        chair,
        "sign",
        f"/delegated/{ref}",
        "approve",
        item=ref,
        decision="approve",
        version=version,
    )
    assert r.status_code == 303, r.text[:500]
    page = chair.get(f"/delegated/{ref}")
    assert 'id="signatures"' in page.text and "Chris" in page.text
    assert "you have already signed" in page.text
    assert world["people"][SPONSOR].get(f"/delegated/{ref}").status_code == 403


def test_a_chair_signs_once_from_the_emailed_link(world) -> None:
    ref = request_dd(world)
    chair = world["people"][CHAIR]
    link = link_for(world, ref, CHAIR)
    page = chair.get(link)
    assert page.status_code == 200
    assert "Sign from your email link" in page.text and "urgent: contract deadline" in page.text
    # a refused sign (decline without a reason) leaves the link usable
    refused = sign_via(chair, link, decision="decline", _form="decline")
    assert refused.status_code == 400 and "say why you decline" in refused.text
    assert signatures(world, ref) == 0 and used_links(world) == 0
    done = sign_via(chair, link, decision="approve")
    assert done.status_code == 303 and done.headers["location"] == f"/delegated/{ref}"
    assert signatures(world, ref) == 1 and used_links(world) == 1
    # second use: refused, clearly, and nothing more is signed
    again = chair.get(link)
    assert again.status_code == 400 and "already been used" in again.text
    assert 'name="t"' not in again.text
    token = re.search(r"t=([^&]+)", link).group(1)
    replay = chair.post(
        f"/delegated/{ref}/sign",
        data={"csrf_token": csrf_of(chair, "/"), "t": token, "decision": "approve"},
        follow_redirects=False,
    )
    assert replay.status_code == 400 and "already been used" in replay.text
    assert signatures(world, ref) == 1


def test_a_link_needs_sign_in_and_keeps_its_token(world) -> None:
    ref = request_dd(world)
    link = link_for(world, ref, CHAIR)
    with TestClient(world["app"]) as anon:
        r = anon.get(link, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        assert "t%3D" in r.headers["location"] or "t=" in r.headers["location"]
        login = anon.get(r.headers["location"])
        next_path = html.unescape(re.search(r'name="next" value="([^"]+)"', login.text).group(1))
        assert next_path == link
        done = anon.post(
            "/login",
            data={
                "csrf_token": csrf_of(anon, "/login"),
                "email": CHAIR,
                "password": password_for(CHAIR),
                "next": next_path,
            },
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"] == link
        page = anon.get(link)
        assert page.status_code == 200 and "Sign from your email link" in page.text


def test_another_users_link_is_refused(world) -> None:
    ref = request_dd(world)
    link = link_for(world, ref, CHAIR)
    vera = world["people"][VICE1]
    r = vera.get(link)
    assert r.status_code == 403 and "this link was sent to" in r.text
    assert 'name="t"' not in r.text
    token = re.search(r"t=([^&]+)", link).group(1)
    r = vera.post(
        f"/delegated/{ref}/sign",
        data={"csrf_token": csrf_of(vera, "/"), "t": token, "decision": "approve"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and signatures(world, ref) == 0


def test_expired_and_tampered_links_are_refused(world) -> None:
    ref = request_dd(world)
    chair = world["people"][CHAIR]
    link = link_for(world, ref, CHAIR)
    tampered = chair.get(link[:-4] + "abcd")
    assert tampered.status_code == 400 and "not valid" in tampered.text
    assert chair.get(f"/delegated/{ref}/sign").status_code == 400
    days_later(world, dt.date(2011, 5, 10))  # 8 days later by the app's clock
    expired = chair.get(link)
    assert expired.status_code == 400 and "expired" in expired.text
    assert signatures(world, ref) == 0 and used_links(world) == 0


def test_an_approved_delegated_decision_is_endorsed_from_the_meeting_page(world) -> None:
    q, officer = world["q"], world["people"][OFFICER]
    ref = request_dd(world)
    for who in (CHAIR, VICE1, VICE2):
        state = q.execute("sign", {"item": ref, "decision": "approve"}, who)["state"]
        if state != "awaiting_signatures":
            break
    assert state == "approved"
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-JUN",
            "title": "Board",
            "date": "2011-06-01",
            "quorum": 3,
            "members": MEMBERS,
        },
        OFFICER,
    )
    days_later(world, dt.date(2011, 6, 1))
    q.execute("record_attendance", {"meeting": "BOARD-JUN", "present": MEMBERS}, OFFICER)
    page = officer.get("/meetings/BOARD-JUN")
    assert f'id="agenda-{ref}"' in page.text
    item = officer.get("/meetings/BOARD-JUN/items/1")  # issue 14: each item on its own page
    assert f"Endorse {ref}" in item.text
    r = post(
        officer,
        "endorse",
        "/meetings/BOARD-JUN/items/1",
        f"endorse-{ref}",
        meeting="BOARD-JUN",
        item=ref,
    )
    assert r.status_code == 303, re.findall(r'<a href="#[^"]*">([^<]*)</a>', r.text)
    assert "endorsed" in officer.get(f"/delegated/{ref}").text
    paper = officer.get("/meetings/BOARD-JUN/papers/delegated.html")
    assert paper.status_code == 200 and ref in paper.text
