"""The GOV.UK look in a real Chromium (issue 14, items 6 and 7): a year's data
(tests/scenarios/money-2011-12.yaml) read by an officer and a sponsor, signed in by
keyboard from the skip link on; each page restyled on GOV.UK Frontend passes axe-core
(no serious or critical violation: colour contrast, names, structure), shows the
service navigation, the footer's accessibility link and the system font (never GDS
Transport); a refused form shows the GOV.UK error summary and the error at its field,
and the bid is then corrected and sent by keyboard alone.
Screenshots go to the artefacts folder's govuk/ (tests/browser.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import accessibility_problems, artifacts_dir, browser_context, serve  # noqa: F401
from webkit import password_for, set_passwords

from engine.commands.service import Quorum
from engine.entry.replay import run
from engine.store.db import make_engine

SCENARIO = Path(__file__).parent / "scenarios" / "money-2011-12.yaml"
OFFICER = "officer@emiep.example"


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("govuk")
    db = f"sqlite:///{tmp / 'year.db'}"
    assert run(SCENARIO, db).ok
    engine = make_engine(db)
    set_passwords(Quorum(engine), OFFICER)
    engine.dispose()
    with serve(db, log=tmp / "serve.log") as base:
        yield base


def test_pages_in_the_govuk_look_pass_axe_and_work_by_keyboard(site, browser_context) -> None:  # noqa: F811
    shots = artifacts_dir() / "govuk"
    shots.mkdir(exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    browser_context.clear_cookies()
    page = browser_context.new_page()
    n = 0

    def shot(name: str) -> None:
        nonlocal n
        n += 1
        page.screenshot(path=str(shots / f"{n:02d}-{name}.png"), full_page=True)
        assert accessibility_problems(page) == [], page.url
        assert page.locator("footer a[href='/accessibility']").count() == 1, page.url
        for where in ("body", "h1", ".govuk-footer"):
            font = page.evaluate(f"getComputedStyle(document.querySelector('{where}')).fontFamily")
            assert "GDS Transport" not in font and font.startswith("system-ui"), (where, font)

    try:
        assert page.goto(site + "/accessibility").ok
        # the skip link is the first thing the keyboard reaches, and it goes to the content
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent")
        assert focused == "Skip to main content"
        page.keyboard.press("Enter")
        assert page.url.endswith("#main-content")
        assert "Accessibility statement for Quorum" in page.locator("h1").inner_text()
        shot("accessibility")
        assert page.goto(site + "/login").ok
        shot("sign-in")
        # signing in by keyboard alone
        page.get_by_label("Email").focus()
        page.keyboard.type(OFFICER)
        page.keyboard.press("Tab")
        page.keyboard.type(password_for(OFFICER))
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        assert "Signed in as" in page.locator(".flash").inner_text()
        assert page.locator(".govuk-notification-banner--success").count() == 1
        nav = page.get_by_role("navigation", name="Main")
        assert nav.get_by_role("link", name="My work").get_attribute("aria-current") == "page"
        shot("my-work")
        for path, name in (("/bids", "bids"), ("/grants", "grants"), ("/rounds", "rounds"),
                           ("/meetings", "meetings"), ("/dashboard", "dashboard"),
                           ("/returns", "returns")):
            assert page.goto(site + path).ok, path
            shot(name)
        # an item's page: facts as a summary list, state as a tag, forms as GOV.UK forms
        page.goto(site + "/grants")
        page.locator("table a[href^='/grants/']").first.click()
        page.wait_for_load_state()
        assert page.locator(".govuk-summary-list").count() >= 1
        assert page.locator("#grant-state.govuk-tag").count() == 1
        shot("grant")
        page.goto(site + "/bids")
        page.locator("table a[href^='/bids/']").first.click()
        page.wait_for_load_state()
        shot("bid")
        page.goto(site + "/meetings")
        page.locator("table a[href^='/meetings/']").first.click()
        page.wait_for_load_state()
        shot("meeting")
        # a refused form: the error summary links to the field, the message is at the field
        page.goto(site + "/bids/new")
        shot("new-bid")
        page.get_by_role("button", name="Submit the bid").click()
        page.wait_for_load_state()
        summary = page.locator(".govuk-error-summary")
        assert summary.count() == 1 and "There is a problem" in summary.inner_text()
        assert page.locator(".govuk-form-group--error .govuk-error-message").count() >= 1
        shot("refused-form")
        # corrected and sent by keyboard alone: typed, Tab to move on, Enter on the button
        page.get_by_label("Title").focus()
        page.keyboard.type("Shared legal service")
        page.keyboard.press("Tab")  # the sponsoring authority: the first is kept
        page.keyboard.press("Tab")
        page.keyboard.type("45,000")
        page.keyboard.press("Tab")
        page.keyboard.type("60,000 per annum")
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "submit":
                break
        assert page.evaluate("document.activeElement.textContent") == "Submit the bid"
        page.keyboard.press("Enter")
        page.wait_for_url("**/bids")
        assert "submit bid: done" in page.locator(".flash").inner_text()
        assert "Shared legal service" in page.locator("main").inner_text()
        shot("bid-sent-by-keyboard")
        # the public register, signed out
        browser_context.clear_cookies()
        assert page.goto(site + "/register").ok
        shot("register")
    finally:
        page.close()
