"""The acceptance walk in a real headless Chromium (the system's, via Playwright),
as new users would walk it, against the real app (``quorum serve``) on the demo
programme (``quorum demo``):

(a) an officer signs in, opens the 2011 round, scores it and refers one bid back;
(b) a chair signs a delegated decision from the link in the email asking for it;
(c) a sponsor submits a return;
(d) an officer releases a payment that a different officer verified (four eyes).

The set-up the walk needs (a Board meeting today, a bid approved into a grant, a
milestone evidenced and verified, a delegated decision requested and its emails
sent) is done through the CLI before the browser starts; during the walk nothing
is written except by clicking and filling forms. After each step the page AND the
API (an auditor's bearer token) are checked. Every page visited is saved as a
full-page screenshot in QUORUM_ARTIFACTS (default tests/artifacts/browser/),
named by step.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
import re
from pathlib import Path

import httpx
import pytest
from browser import (  # noqa: F401
    accessibility_problems,
    artifacts_dir,
    browser_context,
    free_port,
    quorum,
    serve,
)

from engine.read.offers import open_letter
from engine.store.db import make_engine

OFFICER = "officer@quorum.example"
DIRECTOR = "director@quorum.example"  # director and officer: the second pair of eyes
CHAIR = "chair@quorum.example"
SPONSOR = "sponsor.nkdc@quorum.example"  # North Kesteven DC: B-0001 "Shared ICT"
AUDITOR = "auditor@quorum.example"
MEMBERS = ["Cllr Clare Chair", "Cllr Victor Vice", "Cllr Vera Vice", "Cllr Bob Member"]
ROUND = "EFF-2011"
REFER = "B-0004"  # Fleet Management: recommended for referral back
DELEGATED_BID = "B-0005"  # £22,000: within the delegation's per-decision limit
GRANTED_BID = "B-0001"


def password(email_addr: str) -> str:
    return "quorum-" + email_addr.split("@", 1)[0]  # as `quorum demo` prints them


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # noqa: ANN201
    """The demo database, the set-up done through the CLI, the app serving it."""
    tmp = tmp_path_factory.mktemp("walk")
    db = f"sqlite:///{tmp / 'walk.db'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    outbox = tmp / "outbox"
    env = {"QUORUM_BASE_URL": base, "QUORUM_MAIL": "file", "QUORUM_OUTBOX_DIR": str(outbox)}
    today = dt.datetime.now(dt.UTC).date()  # the server runs on the UTC system clock
    assert "demo loaded" in quorum(db, "demo", env=env)

    def do(actor: str, verb: str, **fields: object) -> str:
        pairs = [f"{k}={v}" for k, v in fields.items()]
        return quorum(db, "do", verb, *pairs, env=env, actor=actor)

    members = "[" + ", ".join(MEMBERS) + "]"
    for ref, title in (("BOARD-SETUP", "Board (the grant)"), ("BOARD-WALK", "Board")):
        do(
            OFFICER,
            "schedule_meeting",
            ref=ref,
            title=title,
            date=today.isoformat(),
            quorum=3,
            members=members,
        )
    do(OFFICER, "record_attendance", meeting="BOARD-SETUP", present=members)
    granted = do(OFFICER, "decide", meeting="BOARD-SETUP", item=GRANTED_BID, outcome="approve")
    grant = re.search(r'"grant": "(G-\d+)"', granted).group(1)
    do(
        OFFICER,
        "add_milestone",
        grant=grant,
        outcome="Contract let",
        due=(today + dt.timedelta(days=30)).isoformat(),
        amount="40,000",
        approved_by="Board",
    )
    # the sponsor accepts the offer as it now stands (its variation adding the milestone)
    letters = make_engine(db)
    with letters.connect() as c:
        offer, sha = open_letter(c, grant)
    letters.dispose()
    do(SPONSOR, "accept_offer", offer=offer, sha256=sha)
    do(SPONSOR, "submit_evidence", grant=grant, milestone=1, summary="contract let")
    do(OFFICER, "verify_milestone", grant=grant, milestone=1)
    asked = do(
        OFFICER,
        "request_delegated_decision",
        bid=DELEGATED_BID,
        reasons="the supplier's offer closes before the next Board",
        alternatives="waiting for the next Board; a smaller pilot",
    )
    delegated = re.search(r'"ref": "(DD-\d+)"', asked).group(1)
    swept = quorum(db, "sweep", env=env, actor=OFFICER)
    assert "return(s) created" in swept, swept
    listed = quorum(db, "returns", "list", env=env)
    ret = re.search(rf"(RET-{grant}-savings-\S+)", listed).group(1)
    quorum(db, "outbox", "send", env=env)
    token = quorum(db, "token", "create", AUDITOR, "--name", "browser walk").strip().splitlines()
    with serve(db, port, env=env, log=tmp / "serve.log") as url:
        assert url == base
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token[-1]}"}, timeout=30
        ) as api:
            yield {
                "base": base,
                "db": db,
                "env": env,
                "api": api,
                "grant": grant,
                "delegated": delegated,
                "return": ret,
                "outbox": outbox,
            }


@pytest.fixture(scope="module")
def walk(site, browser_context):  # noqa: ANN201, F811
    page = browser_context.new_page()
    counter = itertools.count(1)
    shots = artifacts_dir()
    for old in shots.glob("*.png"):
        old.unlink()

    class Walk:
        def shot(self, step: str) -> Path:
            path = shots / f"{next(counter):02d}-{step}.png"
            page.screenshot(path=str(path), full_page=True)
            # every page the walk shows is checked by axe-core as it is shown
            problems = accessibility_problems(page)
            assert not problems, f"{step} ({page.url}):\n" + "\n".join(problems)
            return path

        def go(self, path: str, step: str) -> None:
            response = page.goto(site["base"] + path)
            assert response is not None and response.ok, f"{path}: {response and response.status}"
            self.shot(step)

        def sign_in(self, who: str, step: str) -> None:
            browser_context.clear_cookies()  # a new person at the keyboard
            self.go("/login", f"{step}-sign-in")
            page.fill("#email", who)
            page.fill("#password", password(who))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            assert "Signed in as" in page.locator(".flash").inner_text()
            self.shot(f"{step}-signed-in")

    w = Walk()
    w.page = page
    yield w
    page.close()


def flash(page) -> str:  # noqa: ANN001
    return page.locator(".flash").inner_text()


def test_a_officer_scores_the_2011_round_and_refers_a_bid_back(site, walk) -> None:
    page, api = walk.page, site["api"]
    before = api.get(f"/api/v1/rounds/{ROUND}").json()
    walk.sign_in(OFFICER, "a-officer")
    assert page.locator("#work-total").is_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Rounds").click()
    page.wait_for_load_state()
    walk.shot("a-rounds")
    page.get_by_role("link", name=ROUND, exact=True).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/rounds/{ROUND}")
    walk.shot("a-round")
    page.locator("#form-score").get_by_role("button", name="Score this round").click()
    page.wait_for_load_state()
    assert "score round: done" in flash(page)
    assert page.locator("#ranking tr[id^=rank-]").count() == 26
    assert page.locator(f"#rank-{REFER}").is_visible()
    walk.shot("a-round-scored")
    after = api.get(f"/api/v1/rounds/{ROUND}").json()
    assert len(after["bids"]) == 26
    assert after == before  # re-scoring with the same rules gives the same ranking
    assert api.get(f"/api/v1/bids/{REFER}").json()["state"] == "scored"

    # refer one bid back at today's Board: attendance, then the item's decide form
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Meetings").click()
    page.wait_for_load_state()
    walk.shot("a-meetings")
    page.get_by_role("link", name="BOARD-WALK").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/meetings/BOARD-WALK")
    walk.shot("a-meeting")
    # issue 14: attendance on its own page, each item decided on its own page
    page.locator("#link-attendance").click()
    page.wait_for_load_state()
    attendance = page.locator("#form-attendance")
    for box in attendance.locator("input[name=present]").all():
        box.check()
    attendance.get_by_role("button", name="Record attendance").click()
    page.wait_for_load_state()
    assert "record attendance: done" in flash(page)
    assert "quorate" in page.locator("#quorum").inner_text()
    walk.shot("a-meeting-attendance")
    page.get_by_role("link", name=re.compile("^Back to BOARD-WALK")).click()
    page.wait_for_load_state()
    assert page.locator(f"#agenda-{REFER}").is_visible()
    page.locator(f"#agenda-{REFER} a").click()
    page.wait_for_load_state()
    walk.shot("a-meeting-item")
    form = page.locator("#form-decide")
    form.locator("input[name=outcome][value=refer_back]").check()
    form.locator("textarea[name=missing]").fill("a costed savings plan for the fleet")
    form.locator("textarea[name=reasons]").fill("savings not evidenced")
    form.locator("input[name='votes.for']").fill("4")
    form.locator("input[name='votes.against']").fill("0")
    form.locator("input[name='votes.abstain']").fill("0")
    form.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()
    assert f"Refer {REFER}" in page.locator("#confirm-statement").inner_text()
    walk.shot("a-meeting-confirm")
    page.get_by_role("button", name="Confirm the decision").click()
    page.wait_for_load_state()
    assert "decide: done" in flash(page)
    row = page.locator("#decisions tr", has_text=REFER)
    assert "refer back" in row.inner_text() and "a costed savings plan" in row.inner_text()
    walk.shot("a-meeting-decided")
    row.get_by_role("link", name=REFER).click()
    page.wait_for_load_state()
    assert page.locator("#bid-state").inner_text() == "referred back"
    walk.shot("a-bid-referred-back")
    bid = api.get(f"/api/v1/bids/{REFER}").json()
    assert bid["state"] == "referred_back"
    meeting = api.get("/api/v1/meetings/BOARD-WALK").json()
    decided = [d for d in meeting["decisions"] if d["item"] == REFER]
    assert decided and decided[0]["outcome"] == "refer_back"
    assert decided[0]["votes"] == {"for": 4, "against": 0, "abstain": 0}


def _sign_link(site: dict, to: str) -> str:
    """The signing link in the email the chair was sent (the file channel's .eml)."""
    found = []
    for path in sorted(site["outbox"].rglob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to in str(msg["To"]) and site["delegated"] in str(msg["Subject"]):
            body = msg.get_body(preferencelist=("plain",)).get_content()
            found += re.findall(r"https?://\S+/delegated/\S+/sign\?t=\S+", body)
    assert found, f"no signing link for {to} in {site['outbox']}"
    return found[0]


def test_b_chair_signs_a_delegated_decision_from_the_emailed_link(site, walk) -> None:
    page, api, ref = walk.page, site["api"], site["delegated"]
    link = _sign_link(site, CHAIR)
    assert link.startswith(site["base"] + f"/delegated/{ref}/sign?t=")
    page.context.clear_cookies()
    page.goto(link)  # still requires sign-in: the link brings the chair to /login first
    page.wait_for_load_state()
    walk.shot("b-link-sign-in")
    assert "/login" in page.url
    page.fill("#email", CHAIR)
    page.fill("#password", password(CHAIR))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert f"/delegated/{ref}" in page.url
    walk.shot("b-sign-page")
    page.locator("#form-approve").get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert "sign: done" in flash(page)
    assert page.url.endswith(f"/delegated/{ref}")
    assert "Cllr Clare Chair" in page.locator("#signatures").inner_text()
    walk.shot("b-signed")
    dd = api.get(f"/api/v1/delegated-decisions/{ref}").json()
    signed = [s for s in dd["signatures"] if s["name"] == "Cllr Clare Chair"]
    assert [s["decision"] for s in signed] == ["approve"]
    assert dd["state"] == "awaiting_signatures"  # the scheme also needs a Vice Chair
    # single use: the same link again is refused and signs nothing
    page.goto(link)
    page.wait_for_load_state()
    assert "already been used" in page.locator("#link-problem").inner_text()
    walk.shot("b-link-used")
    again = api.get(f"/api/v1/delegated-decisions/{ref}").json()
    assert again["signatures"] == dd["signatures"]


def test_c_sponsor_submits_a_return(site, walk) -> None:
    page, api, ret = walk.page, site["api"], site["return"]
    walk.sign_in(SPONSOR, "c-sponsor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Returns").click()
    page.wait_for_load_state()
    walk.shot("c-returns")
    assert ret in page.locator("#returns").inner_text()
    page.get_by_role("link", name=ret).first.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/returns/{ret}")
    assert page.locator("#return-state").inner_text() == "due"
    walk.shot("c-return")
    form = page.locator("#form-submit")
    form.locator("input[name=savings_delivered]").fill("12,500")
    form.locator("input[name=savings_anticipated]").fill("£250,000")
    form.get_by_role("button", name="Send in this return").click()
    page.wait_for_load_state()
    assert "submit return: done" in flash(page)
    assert page.locator("#return-state").inner_text() == "submitted"
    assert "£12,500" in page.content() and "£250,000" in page.content()
    walk.shot("c-return-submitted")
    r = api.get(f"/api/v1/returns/{ret}").json()
    assert r["state"] == "submitted"
    assert (r["savings_delivered_pence"], r["savings_anticipated_pence"]) == (1_250_000, 25_000_000)


def test_d_an_officer_releases_a_payment_another_officer_verified(site, walk) -> None:
    page, api, grant = walk.page, site["api"], site["grant"]
    # the verifier cannot release it: the page says why
    walk.sign_in(OFFICER, "d-verifier")
    walk.go(f"/grants/{grant}", "d-grant-as-verifier")
    assert "you verified this milestone: someone else must release its payment" in (
        page.locator("#form-pay-1").inner_text()
    )
    # the other officer finds it in My work and releases it
    walk.sign_in(DIRECTOR, "d-payer")
    waiting = page.locator("#work-payments_to_release")
    assert grant in waiting.inner_text()
    waiting.locator(f"a[href^='/grants/{grant}']").first.click()
    page.wait_for_load_state()
    assert f"/grants/{grant}" in page.url
    walk.shot("d-grant")
    assert page.locator("#paid").inner_text() == "£0"
    page.locator("#form-pay-1").get_by_role("button", name="Release payment").click()
    page.wait_for_load_state()
    assert "release payment: done" in flash(page)
    assert page.locator("#paid").inner_text() == "£40,000"
    assert "release payment" in page.locator("table.history").inner_text()
    walk.shot("d-paid")
    g = api.get(f"/api/v1/grants/{grant}").json()
    assert g["paid_pence"] == 4_000_000
    assert [p["amount_pence"] for p in g["payments"]] == [4_000_000]
