"""Issue 14, keyboard only: a Chair opens the signing link from the email asking
for a delegated decision, signs in and approves it using Tab, Enter and Space
alone (text is typed, never clicked into); then an officer takes a Board
decision on its item page and confirms it the same way. The real app (``quorum
serve``) on the demo database, headless Chromium; screenshots go to
QUORUM_ARTIFACTS (default tests/artifacts/browser/)/meeting/. Skips without
Chromium (tests/browser.py)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re

import httpx
import pytest
from browser import accessibility_problems, artifacts_dir, browser_context, free_port, quorum, serve  # noqa: F401

OFFICER = "officer@quorum.example"
CHAIR = "chair@quorum.example"
AUDITOR = "auditor@quorum.example"
MEMBERS = ["Cllr Clare Chair", "Cllr Victor Vice", "Cllr Vera Vice", "Cllr Bob Member"]
DELEGATED_BID = "B-0005"  # £22,000: within the delegation's per-decision limit
DECIDED_BID = "B-0001"


def password(email_addr: str) -> str:
    return "quorum-" + email_addr.split("@", 1)[0]  # as `quorum demo` prints them


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("keyboard")
    db = f"sqlite:///{tmp / 'keyboard.db'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    outbox = tmp / "outbox"
    env = {"QUORUM_BASE_URL": base, "QUORUM_MAIL": "file", "QUORUM_OUTBOX_DIR": str(outbox)}
    today = dt.datetime.now(dt.UTC).date()  # the server runs on the UTC system clock
    assert "demo loaded" in quorum(db, "demo", env=env)

    def do(actor: str, verb: str, **fields: object) -> str:
        return quorum(db, "do", verb, *[f"{k}={v}" for k, v in fields.items()], env=env,
                      actor=actor)

    members = "[" + ", ".join(MEMBERS) + "]"
    do(OFFICER, "schedule_meeting", ref="BOARD-KEYS", title="Board", date=today.isoformat(),
       quorum=3, members=members)
    do(OFFICER, "record_attendance", meeting="BOARD-KEYS", present=members)
    asked = do(OFFICER, "request_delegated_decision", bid=DELEGATED_BID,
               reasons="the supplier's offer closes before the next Board",
               alternatives="waiting for the next Board")
    delegated = re.search(r'"ref": "(DD-\d+)"', asked).group(1)
    quorum(db, "outbox", "send", env=env)
    token = quorum(db, "token", "create", AUDITOR, "--name", "keyboard").strip().splitlines()
    with serve(db, port, env=env, log=tmp / "serve.log") as url:
        assert url == base
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token[-1]}"},
                          timeout=30) as api:
            yield {"base": base, "api": api, "delegated": delegated, "outbox": outbox}


def sign_link(site: dict, to: str) -> str:
    found = []
    for path in sorted(site["outbox"].rglob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to in str(msg["To"]) and site["delegated"] in str(msg["Subject"]):
            body = msg.get_body(preferencelist=("plain",)).get_content()
            found += re.findall(r"https?://\S+/delegated/\S+/sign\?t=\S+", body)
    assert found, f"no signing link for {to}"
    return found[0]


def focused(page) -> str:  # noqa: ANN001
    """What has the keyboard focus: its tag, id, name and text (read, never touched)."""
    return page.evaluate(
        "() => { const e = document.activeElement; return [e.tagName, e.id, "
        "e.getAttribute('name') || '', (e.innerText || e.value || '').trim(), "
        "e.closest('[id^=form-]') ? e.closest('[id^=form-]').id : ''].join('|'); }"
    )


def go(page, key: str) -> None:  # noqa: ANN001
    """Press ``key`` on a link or a submit button and wait for the page it loads."""
    with page.expect_navigation():
        page.keyboard.press(key)
    page.wait_for_load_state()


def tab_to(page, want: re.Pattern, limit: int = 120) -> str:  # noqa: ANN001
    """Press Tab until the focused element matches ``want`` (tag|id|name|text|form);
    the element already focused (a page's autofocus) counts."""
    if want.search(focused(page)):
        return focused(page)
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if want.search(now):
            return now
    raise AssertionError(f"Tab never reached {want.pattern}; last: {focused(page)}")


def test_a_chair_signs_a_delegated_decision_by_keyboard(site, browser_context) -> None:  # noqa: F811
    shots = artifacts_dir() / "meeting"
    shots.mkdir(parents=True, exist_ok=True)
    page = browser_context.new_page()
    browser_context.clear_cookies()
    ref = site["delegated"]
    try:
        page.goto(sign_link(site, CHAIR))  # the address bar: the link from the email
        page.wait_for_load_state()
        assert "/login" in page.url
        page.screenshot(path=str(shots / "01-link-sign-in.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        tab_to(page, re.compile(r"^INPUT\|email\|"))
        page.keyboard.type(CHAIR)
        tab_to(page, re.compile(r"^INPUT\|password\|"))
        page.keyboard.type(password(CHAIR))
        go(page, "Enter")
        assert f"/delegated/{ref}/sign" in page.url
        assert "Sign from your email link" in page.content()
        page.screenshot(path=str(shots / "02-sign-page.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        now = tab_to(page, re.compile(r"^BUTTON\|.*\|Approve\|form-approve$"))
        assert now.endswith("form-approve")
        go(page, "Space")
        assert page.url.endswith(f"/delegated/{ref}")
        assert "sign: done" in page.locator(".flash").inner_text()
        assert "Cllr Clare Chair" in page.locator("#signatures").inner_text()
        page.screenshot(path=str(shots / "03-signed.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
    finally:
        page.close()
    dd = site["api"].get(f"/api/v1/delegated-decisions/{ref}").json()
    assert [s["decision"] for s in dd["signatures"] if s["name"] == "Cllr Clare Chair"] == [
        "approve"]


def test_an_officer_decides_an_item_by_keyboard(site, browser_context) -> None:  # noqa: F811
    shots = artifacts_dir() / "meeting"
    shots.mkdir(parents=True, exist_ok=True)
    page = browser_context.new_page()
    browser_context.clear_cookies()
    try:
        page.goto(site["base"] + "/login")
        tab_to(page, re.compile(r"^INPUT\|email\|"))
        page.keyboard.type(OFFICER)
        tab_to(page, re.compile(r"^INPUT\|password\|"))
        page.keyboard.type(password(OFFICER))
        go(page, "Enter")
        page.goto(site["base"] + "/meetings/BOARD-KEYS")
        page.screenshot(path=str(shots / "04-meeting.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        tab_to(page, re.compile(rf"^A\|.*\|{DECIDED_BID} "))
        go(page, "Enter")
        assert "/meetings/BOARD-KEYS/items/" in page.url
        # Continue without choosing an outcome: told at the field, nothing decided
        tab_to(page, re.compile(r"^BUTTON\|.*\|Continue\|form-decide$"))
        go(page, "Enter")
        assert "choose the Board's decision" in page.locator("#f-decide-outcome-err").inner_text()
        page.screenshot(path=str(shots / "05-no-outcome.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        tab_to(page, re.compile(r"^INPUT\|f-decide-outcome\|outcome\|"))
        page.keyboard.press("Space")  # the first outcome: approve
        tab_to(page, re.compile(r"^TEXTAREA\|.*\|reasons\|"))
        page.keyboard.type("good value for money")
        tab_to(page, re.compile(r"^INPUT\|.*\|votes\.for\|"))
        page.keyboard.type("4")
        tab_to(page, re.compile(r"^BUTTON\|.*\|Continue\|form-decide$"))
        go(page, "Enter")
        statement = page.locator("#confirm-statement").inner_text()
        assert statement.startswith("Approve £") and "pot (balance after: £" in statement
        page.screenshot(path=str(shots / "06-confirm.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        tab_to(page, re.compile(r"^BUTTON\|confirm\|"))
        go(page, "Enter")
        assert page.url.endswith("/meetings/BOARD-KEYS")
        assert "decide: done" in page.locator(".flash").inner_text()
        page.screenshot(path=str(shots / "07-decided.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
    finally:
        page.close()
    meeting = site["api"].get("/api/v1/meetings/BOARD-KEYS").json()
    decided = [d for d in meeting["decisions"] if d["item"] == DECIDED_BID]
    assert decided and decided[0]["outcome"] == "approve"
    assert decided[0]["votes"] == {"for": 4, "against": 0, "abstain": 0}
    assert decided[0]["reasons"] == "good value for money"


SPONSOR = "sponsor.nkdc@quorum.example"  # North Kesteven DC


def test_a_sponsor_submits_a_bid_by_keyboard(site, browser_context) -> None:  # noqa: F811
    """Sign in, fill the bid form (text typed, a pot chosen with the arrow keys: no
    round is open in the demo) and submit it, with Tab, arrows and Enter alone."""
    shots = artifacts_dir() / "meeting"
    shots.mkdir(parents=True, exist_ok=True)
    page = browser_context.new_page()
    browser_context.clear_cookies()
    try:
        page.goto(site["base"] + "/login?next=/bids/new")  # the address bar
        tab_to(page, re.compile(r"^INPUT\|email\|"))
        page.keyboard.type(SPONSOR)
        tab_to(page, re.compile(r"^INPUT\|password\|"))
        page.keyboard.type(password(SPONSOR))
        go(page, "Enter")
        assert "/bids/new" in page.url and "No bidding round is open now" in page.content()
        for name, text in (("title", "Keyboard-built shared payroll"), ("grant", "18,500"),
                           ("savings", "40,000 per annum")):
            tab_to(page, re.compile(rf"^INPUT\|[^|]*\|{name}\|"))
            page.keyboard.type(text)
        tab_to(page, re.compile(r"^SELECT\|[^|]*\|pot\|"))
        page.keyboard.press("ArrowDown")  # the first pot named
        chosen = page.evaluate("() => document.activeElement.value")
        assert chosen, "no pot chosen"
        page.screenshot(path=str(shots / "08-bid-by-keyboard.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        tab_to(page, re.compile(r"^BUTTON\|submit\|"))
        go(page, "Enter")
        assert "/bids" in page.url and "/bids/new" not in page.url, page.url
        page.screenshot(path=str(shots / "09-bid-submitted.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
    finally:
        page.close()
    found = site["api"].get("/api/v1/bids", params={"q": "Keyboard-built"}).json()
    assert [(b["title"], b["sponsor"], b["pot"], b["grant_requested_pence"]) for b in found] == [
        ("Keyboard-built shared payroll", "North Kesteven DC", chosen, 1_850_000)]
