"""Issue 14 acceptance: a whole programme year walked in a real Chromium by
clicking and typing only, as new users would, from an empty database.

Before the browser starts, only what a real installation does at its command
line (docs/operations.md, docs/security.md "The bootstrap"): the system
registers the first director and the first officer and sets their first
passwords. Two, because a privileged role is granted only by a second person:
the officer asks, the director approves. Everyone else is registered on the
People page and sets their own password from the link emailed to them (a real
SMTP server on loopback, tests/smtpserver.py).

Time passes the way it does on a rehearsal server: the app is served with the
scheduler on and ``QUORUM_CLOCK_START`` (engine/settings.py), and restarted
with a later start when the walk needs weeks to pass; the scheduler's sweep at
start then creates the returns due and chases the late one, and its dispatcher
sends the emails.

The steps (screenshots NN-step.png in artifacts_dir()/year/, each page checked
by axe-core: no serious or critical violation):

 1. the director and the officer sign in; the director creates the programme
    and its first pot, the officer adds a second pot (a ratified change)
 2. the officer registers three councils; asks for a second officer, a finance
    officer, the Chair and a Vice Chair (role changes the director approves);
    registers a Board member and a sponsor contact for each council; each new
    person sets a password from the emailed link
 3. the officer opens a round; three sponsors submit bids (as themselves)
 4. the officer closes and scores the round, schedules two Board meetings
    (today's and July's)
 5. the Board meets: attendance, one bid approved (the confirmation states the
    money), one referred back with what is missing; the meeting is closed
 6. the sponsor amends and resubmits the referred bid
 7. a delegated decision on the third bid, signed by the Chair and a Vice Chair
 8. the officer adds a milestone to the first grant (a variation of its offer),
    the sponsor accepts the offer letter and uploads evidence; the sponsor and
    the second officer open it from the milestone (content type,
    Content-Disposition); the second officer verifies, finance releases the
    payment (four eyes)
 9. weeks pass (restart in July): the July meeting approves the resubmitted bid
    and endorses the delegated decision; the sweep made the quarter's returns:
    the sponsor sends the savings return, the officer accepts it
10. more weeks (restart in August): the progress return is late and chased:
    the email arrives, My work and the notifications show it
11. the first meeting's papers (agenda, minutes) opened and downloaded as PDF
    from the meeting page's links
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from browser import (  # noqa: F401
    accessibility_problems,
    artifacts_dir,
    browser_context,
    fill_date_group,
    free_port,
    quorum,
    serve,
)
from smtpserver import MailServer
from sqlalchemy import select

from engine.store.db import make_engine
from engine.store.models import Bid

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # what fill() types into a date input's boxes
DOMAIN = "southshire.example"
DIRECTOR = f"dana.director@{DOMAIN}"
OFFICER = f"owen.officer@{DOMAIN}"
OFFICER2 = f"priya.officer@{DOMAIN}"
FINANCE = f"fiona.finance@{DOMAIN}"
CHAIR = f"cllr.chandra@{DOMAIN}"
VICE = f"cllr.vaughan@{DOMAIN}"
MEMBER = f"cllr.mbeki@{DOMAIN}"
COUNCILS = {  # council -> (kind, population, its sponsor contact's name and email)
    "Ashcombe District Council": ("district", "98000", "Sam Ashworth", "sam@ashcombe.example"),
    "Brackenford Borough Council": ("district", "121000", "Sue Brack", "sue@brackenford.example"),
    "Calder Vale District Council": ("district", "87000", "Sid Calder", "sid@caldervale.example"),
}
PROGRAMME = "Southshire Shared Services Fund 2027/28"
START = dt.datetime(2027, 4, 5, 9, 0, tzinfo=dt.UTC)  # Monday 5 April 2027
RETURNS_DUE = dt.datetime(2027, 7, 19, 9, 0, tzinfo=dt.UTC)  # quarter to 30 June, due 30 July
RETURNS_LATE = dt.datetime(2027, 8, 4, 9, 0, tzinfo=dt.UTC)  # chase: 1 to 13 days late
# a 1x1 PNG: evidence a browser opens inline
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8ffff3f0005fe02fea7d6a4f00000000049454e44ae426082"
)
CHECK_ACCESSIBILITY = os.environ.get("QUORUM_WALK_AXE", "1") != "0"


def password(who: str) -> str:
    return "walk-" + who.split("@", 1)[0].replace(".", "-") + "-2027"


class Site:
    """The served app on one port, restarted with a later clock when time passes."""

    def __init__(self, tmp: Path, mail: MailServer) -> None:
        self.tmp = tmp
        self.db = f"sqlite:///{tmp / 'year.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.mail = mail
        self._served = None
        self.restarts = 0

    def env(self, clock: dt.datetime) -> dict[str, str]:
        return self.mail.env(
            QUORUM_BASE_URL=self.base,
            QUORUM_CLOCK_START=clock.isoformat(),
            QUORUM_DISPATCH_SECONDS="1",
            QUORUM_UPLOAD_DIR=str(self.tmp / "uploads"),
            QUORUM_CHECKPOINT_DIR=str(self.tmp / "checkpoints"),
            QUORUM_OUTBOX_DIR=str(self.tmp / "outbox"),
        )

    def start(self, clock: dt.datetime) -> None:
        self.stop()
        self.restarts += 1
        self._served = serve(self.db, self.port, self.env(clock),
                             self.tmp / f"serve-{self.restarts}.log", scheduler=True)  # fmt: skip
        self._served.__enter__()

    def stop(self) -> None:
        if self._served is not None:
            self._served.__exit__(None, None, None)
            self._served = None


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("year")
    mail = MailServer()
    s = Site(tmp, mail)
    env = s.env(START)
    # the installation's bootstrap, at the command line as the system
    for name, addr, role in (("Dana Director", DIRECTOR, "director"),
                             ("Owen Officer", OFFICER, "officer")):  # fmt: skip
        quorum(s.db, "do", "register_person", f"name={name}", f"email={addr}",
               f"roles=[{role}]", env=env, actor="system")  # fmt: skip
        quorum(s.db, "do", "set_password", f"email={addr}", f"password={password(addr)}",
               env=env, actor="system")  # fmt: skip
    s.start(START)
    try:
        yield s
    finally:
        s.stop()
        mail.stop()


class Walk:
    """The browser, the person at the keyboard, and the record of every page."""

    def __init__(self, site: Site, context) -> None:  # noqa: ANN001
        self.site = site
        self.context = context
        self.page = context.new_page()
        self.shots = artifacts_dir() / "year"
        self.shots.mkdir(parents=True, exist_ok=True)
        for old in self.shots.glob("*.png"):
            old.unlink()
        self.counter = itertools.count(1)
        self.visited: list[str] = []

    # --- looking ---------------------------------------------------------
    def shot(self, step: str) -> None:
        """A full-page screenshot, and axe-core on the page as shown."""
        page = self.page
        page.wait_for_load_state()
        page.screenshot(path=str(self.shots / f"{next(self.counter):02d}-{step}.png"),
                        full_page=True)  # fmt: skip
        self.visited.append(page.url)
        if CHECK_ACCESSIBILITY:
            problems = accessibility_problems(page)
            assert not problems, f"{step} ({page.url}):\n" + "\n".join(problems)

    def main_text(self) -> str:
        return self.page.get_by_role("main").inner_text()

    def flash(self) -> str:
        # the GOV.UK success banner: an alert named by its title
        return self.page.get_by_role("alert", name="Success").first.inner_text()

    def done(self, what: str, step: str) -> None:
        """The page after a form: no error summary, the flash says it was done."""
        page = self.page
        page.wait_for_load_state()
        problem = page.get_by_role("alert").filter(has_not_text="Success")  # the error summary
        assert problem.count() == 0, f"{step}: {problem.first.inner_text()}"
        said = self.flash()
        assert ": done" in said and what in said, f"{step}: {said}"
        self.shot(step)

    # --- moving ----------------------------------------------------------
    def go(self, path: str, step: str) -> None:
        """Only for what a person does by typing an address: the sign-in page
        and the links they are emailed."""
        response = self.page.goto(path if path.startswith("http") else self.site.base + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        self.shot(step)

    def nav(self, label: str, step: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role(
            "link", name=label, exact=True
        ).click()
        self.shot(step)

    def click_link(self, name: str | re.Pattern, step: str | None = None) -> None:
        self.page.get_by_role("main").get_by_role("link", name=name).first.click()
        self.page.wait_for_load_state()
        if step:
            self.shot(step)

    def open_row(self, text: str, step: str) -> None:
        """Follow the link in the row of a list that shows ``text``."""
        self.page.get_by_role("row").filter(has_text=text).get_by_role("link").first.click()
        self.shot(step)

    def form(self, form_id: str):  # noqa: ANN201
        return self.page.locator(f"#form-{form_id}")

    def fill(self, form_id: str, fields: dict[str, str]) -> None:
        form = self.form(form_id)
        for label, value in fields.items():
            named = re.compile("^" + re.escape(label) + r"( \*)?$")
            box = form.get_by_label(named)
            if box.count() == 0 and DATE.match(value):  # a GOV.UK date input: 3 boxes
                fill_date_group(form, named, dt.date.fromisoformat(value))
                continue
            if box.evaluate("e => e.tagName") == "SELECT":
                box.select_option(value)  # by its value or its words
            else:
                box.fill(value)

    def send(self, form_id: str, fields: dict[str, str], button: str | None = None) -> None:
        self.fill(form_id, fields)
        form = self.form(form_id)
        buttons = form.get_by_role("button", name=button) if button else form.get_by_role("button")
        buttons.first.click()
        self.page.wait_for_load_state()

    def sign_in(self, who: str, step: str) -> None:
        self.context.clear_cookies()  # another person at the keyboard
        self.go("/login", f"{step}-sign-in")
        self.page.get_by_label("Email").fill(who)
        self.page.get_by_label("Password").fill(password(who))
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()
        assert "Signed in as" in self.flash(), self.main_text()
        self.shot(f"{step}-signed-in")

    # --- email -----------------------------------------------------------
    def mail_to(self, who: str, subject: str | re.Pattern, wait: float = 30) -> list:
        """The messages to ``who`` whose subject matches, waiting for the dispatcher."""
        pattern = re.compile(re.escape(subject)) if isinstance(subject, str) else subject
        deadline = time.monotonic() + wait
        while True:
            found = [
                r for r in self.site.mail.received
                if who in " ".join(r.rcpt_tos) and pattern.search(str(r.message["Subject"]))
            ]  # fmt: skip
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def set_first_password(self, who: str, step: str) -> None:
        """A new person opens the link emailed to them and sets their password."""
        found = []
        deadline = time.monotonic() + 40
        while not found and time.monotonic() < deadline:
            for r in self.site.mail.received:
                if who in " ".join(r.rcpt_tos):
                    found += re.findall(r"https?://\S+/password/reset\?token=\S+", r.text())
            time.sleep(0.5)
        assert found, f"no password link emailed to {who}"
        self.context.clear_cookies()
        self.go(found[-1], f"{step}-password-link")
        self.page.get_by_label("New password").fill(password(who))
        self.page.get_by_role("button", name="Set password").click()
        self.page.wait_for_load_state()
        self.shot(f"{step}-password-set")


def bid_states(engine, *refs: str) -> list[str]:  # noqa: ANN001
    """Read only, to check what the clicks did."""
    with engine.connect() as conn:
        found = dict(conn.execute(select(Bid.ref, Bid.state).where(Bid.ref.in_(refs))).all())
    return [found.get(r) for r in refs]


@pytest.mark.slow  # 2.5 min on a quiet machine, 7 min under load
def test_a_programme_year_by_clicking_only(site, browser_context) -> None:  # noqa: F811
    started = time.monotonic()
    w = Walk(site, browser_context)
    page = w.page
    engine = make_engine(site.db)  # read only: to check what the clicks did
    try:
        _walk(w, page, engine)
    finally:
        page.close()
        engine.dispose()
        print(f"year walk: {time.monotonic() - started:.0f} s, {len(w.visited)} pages")


def _walk(w: Walk, page, engine) -> None:  # noqa: ANN001
    today = START.date()

    # 1. the programme and its pots
    w.sign_in(DIRECTOR, "01-director")
    w.nav("Programmes", "programmes-empty")
    assert "No programme yet" in w.main_text()
    w.send("create-programme", {
        "Name of the programme": PROGRAMME,
        "Starts": "2027-04-01",
        "Ends": "2028-03-31",
        "Its first pot": "Projects",
        "Allocated to that pot (£)": "600,000",
        "Established by": "Joint Committee 4 March 2027 minute 6",
    })
    w.done("create programme", "programme-created")

    w.sign_in(OFFICER, "01-officer")
    w.nav("Programmes", "programmes")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", PROGRAMME).strip("-").lower()
    w.send(f"add-pot-{slug}", {
        "Name of the pot": "Capacity",
        "Allocated (£)": "90,000",
        "Minute reference": "Joint Committee 4 March 2027 minute 7",
        "Reason": "shared capacity for the councils' project teams",
    })
    w.done("ratify programme change", "pot-added")

    # 2. councils and people
    w.nav("Authorities", "authorities-empty")
    for council, (kind, population, _, _) in COUNCILS.items():
        w.send("register-authority", {"Name": council, "Kind": kind, "Population": population})
        w.done("register organisation", "authority-registered")
        assert council in w.main_text()
    w.nav("People", "people")
    for name, addr, role in (
        ("Priya Officer", OFFICER2, "officer"),
        ("Fiona Finance", FINANCE, "finance"),
        ("Cllr Asha Chandra", CHAIR, "chair"),
        ("Cllr Tom Vaughan", VICE, "vice chair"),
        ("Cllr Grace Mbeki", MEMBER, "board member"),
    ):
        w.send("register_person", {"Name": name, "Email": addr, "Role": role,
                                   "Why": "the programme's team for 2027/28"})  # fmt: skip
        w.done("register person", f"person-{role.replace(' ', '-')}")
    for council, (_, _, name, addr) in COUNCILS.items():
        w.send("register_person", {"Name": name, "Email": addr, "Role": "sponsor",
                                   "Authority (for a sponsor contact)": council})  # fmt: skip
        w.done("register person", "sponsor-registered")
    # the director approves the privileged ones (the officer asked)
    w.sign_in(DIRECTOR, "02-director")
    w.nav("People", "people-requests")
    for _ in range(4):
        approve = page.get_by_role("button", name=re.compile(r"^Approve RC-")).first
        approve.click()
        w.done("approve role change", "role-change-approved")
    for addr in [OFFICER2, FINANCE, CHAIR, VICE, MEMBER] + [c[3] for c in COUNCILS.values()]:
        w.set_first_password(addr, "02-new-person")

    # 3. a round opens; the sponsors bid
    w.sign_in(OFFICER, "03-officer")
    # the Chair and the Vice Chair also sit on the Board (not privileged: at once)
    w.nav("People", "people-approved")
    for addr in (CHAIR, VICE):
        w.send("change_roles", {"Email": addr, "Add the role": "board member"})
        w.done("change roles", "board-member-added")
    w.nav("Rounds", "rounds-empty")
    w.send("open-round", {
        "Name": "Spring 2027",
        "Pot": "Projects",
        "Closes": (today + dt.timedelta(days=21)).isoformat(),
    })
    w.done("open round", "round-opened")
    bids = {  # council -> (title, grant, savings)
        "Ashcombe District Council": ("Shared revenues and benefits service", "180,000",
                                      "240,000 per annum"),
        "Brackenford Borough Council": ("Joint waste fleet procurement", "150,000",
                                        "95,000 per annum"),
        "Calder Vale District Council": ("Customer contact centre merger", "40,000",
                                         "60,000 per annum"),
    }  # fmt: skip
    refs: dict[str, str] = {}
    for n, (council, (title, grant, savings)) in enumerate(bids.items()):
        sponsor = COUNCILS[council][3]
        w.sign_in(sponsor, "03-sponsor")
        w.nav("Bids", "bids")
        w.click_link("Submit a bid", "bid-form")
        w.fill("submit_bid", {"Title": title, "Grant requested (£)": grant,
                              "Savings, as you would write them": savings})  # fmt: skip
        if n == 0:  # how Quorum reads the savings, before anything is saved
            page.get_by_role("button", name="Check the savings").click()
            w.shot("bid-savings-checked")
            assert "£240,000" in w.main_text()
        page.get_by_role("button", name="Submit the bid").click()
        w.done("submit bid", "bid-submitted")
        refs[council] = re.search(r"B-\d+", w.flash()).group(0)
    bid_a, bid_b, bid_c = refs.values()

    # 4. the officer closes and scores the round, schedules the Board
    w.sign_in(OFFICER, "04-officer")
    assert bid_a in w.main_text()  # My work: the new bids wait on the officer
    w.nav("Rounds", "rounds")
    w.click_link(re.compile(r"^RD-\d+$"), "round")
    page.get_by_role("button", name=re.compile("^Close the round")).click()
    w.done("close round", "round-closed")
    page.get_by_role("button", name=re.compile("^Score this round")).click()
    w.done("score round", "round-scored")
    w.nav("Meetings", "meetings-empty")
    for title, day in (("Joint Committee", today), ("Joint Committee (July)", RETURNS_DUE.date())):
        w.fill("schedule-meeting", {"Title": title, "Date": day.isoformat(), "Quorum": "3"})
        members = w.form("schedule-meeting")
        for name in ("Cllr Asha Chandra", "Cllr Tom Vaughan", "Cllr Grace Mbeki"):
            members.get_by_role("checkbox", name=re.compile(name)).check()
        members.get_by_role("button", name="Schedule a meeting").click()
        w.done("schedule meeting", "meeting-scheduled")

    # 5. the Board meets: attendance, one approval, one referral back
    page.get_by_role("row").filter(has_text=today.isoformat()).get_by_role("link").click()
    w.shot("meeting")
    w.click_link("Attendance, interests and the agenda's order", "attendance")
    present = page.get_by_role("group", name="Members present")
    for name in ("Cllr Asha Chandra", "Cllr Tom Vaughan", "Cllr Grace Mbeki"):
        present.get_by_role("checkbox", name=name).check()
    page.get_by_role("button", name="Record attendance").click()
    w.done("record attendance", "attendance-recorded")
    assert "quorate" in w.main_text()
    w.click_link(re.compile("^Back to"))

    def decide(bid: str, outcome: str, fields: dict[str, str], step: str) -> str:
        """From the meeting page: the item's page, the decision, its confirmation."""
        w.click_link(re.compile("^" + bid), f"{step}-item")
        form = w.form("decide")
        form.get_by_label(outcome, exact=True).check()
        w.fill("decide", fields | {"Votes for": "3", "Votes against": "0", "Abstentions": "0"})
        form.get_by_role("button", name="Continue").click()
        page.wait_for_load_state()
        statement = w.main_text()
        w.shot(f"{step}-confirm")
        page.get_by_role("button", name="Confirm the decision").click()
        w.done("decide", f"{step}-decided")
        return statement

    said = decide(bid_a, "Approve", {"The Board's reasons": "strong savings case"}, "approve")
    assert "£180,000" in said  # the confirmation states the money it commits
    decide(bid_b, "Refer back to the sponsor", {
        "The Board's reasons": "the savings are not evidenced",
        "What the Board asks the sponsor to supply": "a costed fleet savings plan",
    }, "refer")
    # the minutes become final; the third bid waits for a delegated decision
    page.get_by_role("button", name="Close the meeting").click()
    w.done("close meeting", "meeting-closed")
    assert bid_states(engine, bid_a, bid_b) == ["approved", "referred_back"]

    # 6. the referred bid is resubmitted (it goes to the July meeting)
    sue = COUNCILS["Brackenford Borough Council"][3]
    w.sign_in(sue, "06-sponsor")
    assert bid_b in w.main_text()  # My work: Bids referred back to you
    w.click_link(re.compile("^" + bid_b), "bid-referred")
    assert "a costed fleet savings plan" in w.main_text()
    w.send("amend", {"Savings as written": "95,000 per annum (costed plan attached to the bid)",
                     "Why": "the Board asked for a costed plan"})  # fmt: skip
    w.done("amend bid", "bid-amended")
    w.send("resubmit", {"Note": "costed fleet savings plan added"})
    w.done("resubmit bid", "bid-resubmitted")

    # 7. a delegated decision on the third bid, signed by the Chair and a Vice Chair
    w.sign_in(OFFICER, "07-officer")
    w.nav("Bids", "bids-officer")
    w.click_link(re.compile("^" + bid_c), "bid-c")
    w.send("request_delegated", {
        "Reasons": "the contact centre lease ends before the July meeting",
        "Alternatives considered and rejected": "waiting for July; a six-month lease extension",
    })
    w.done("request delegated decision", "delegated-requested")
    dd = re.search(r"DD-\d+", w.flash()).group(0)
    for who, step in ((CHAIR, "07-chair"), (VICE, "07-vice-chair")):
        w.sign_in(who, step)
        w.click_link(re.compile(dd), f"{step}-delegated")
        w.form("approve").get_by_role("button").click()
        w.done("sign", f"{step}-signed")
    assert bid_states(engine, bid_c) == ["approved"]

    # 8. the offer accepted, evidence uploaded and opened, verified, paid by two people
    w.sign_in(OFFICER, "08-officer")
    w.nav("Grants", "grants")
    w.open_row("Shared revenues", "grant")
    grant_url = page.url
    grant = grant_url.rsplit("/", 1)[-1]
    w.send("add_milestone", {
        "Outcome": "Shared service live",
        "Due": "2027-06-30",
        "Payment (£)": "60,000",
        "Approved by": "Joint Committee 5 April 2027",
    })
    w.done("add milestone", "milestone-added")
    sam = COUNCILS["Ashcombe District Council"][3]
    w.sign_in(sam, "08-sponsor")
    w.nav("Grants", "grants-sponsor")
    w.open_row("Shared revenues", "grant-sponsor")
    while page.get_by_role("button", name="Accept the offer").count():
        form = page.get_by_role("button", name="Accept the offer").first.locator("xpath=..")
        form.get_by_label(re.compile("^Confirm")).select_option(index=1)
        form.get_by_role("button", name="Accept the offer").click()
        w.done("accept offer", "offer-accepted")
    w.fill("evidence-1", {
        "What was achieved, and where the proof is":
            "The shared service went live on 1 June; the go-live report is attached.",
    })
    w.form("evidence-1").get_by_label(re.compile("^Files")).set_input_files([
        {"name": "go-live-report.png", "mimeType": "image/png", "buffer": PNG},
        {"name": "savings-tracker.csv", "mimeType": "text/csv",
         "buffer": b"month,saving\n2027-06,20000\n"},
    ])
    w.form("evidence-1").get_by_role("button", name="Submit evidence").click()
    w.done("submit evidence", "evidence-submitted")

    def open_evidence(name: str) -> httpx.Headers:
        """Open a file from the milestone's list: the response the browser got."""
        link = page.get_by_role("link", name=name)
        with w.context.expect_event("response", lambda r: "/evidence/" in r.url) as got:
            link.click()
        response = got.value
        headers = httpx.Headers(response.all_headers())
        for other in w.context.pages:
            if other is not page and other.url.startswith(w.site.base):
                other.close()  # the tab it opened in
        return headers

    seen = open_evidence("go-live-report.png")
    assert seen["content-type"] == "image/png"
    assert seen["content-disposition"].startswith("inline")
    assert "go-live-report.png" in seen["content-disposition"]
    w.sign_in(OFFICER2, "08-verifier")
    w.nav("Grants", "grants-verifier")
    w.open_row("Shared revenues", "grant-verifier")
    seen = open_evidence("go-live-report.png")
    assert seen["content-type"] == "image/png"
    csv = open_evidence("savings-tracker.csv")
    assert csv["content-disposition"].startswith("attachment")
    w.send("verify-1", {"Note": "go-live report seen; matches the milestone"})
    w.done("verify milestone", "milestone-verified")
    w.sign_in(FINANCE, "08-finance")
    w.click_link(re.compile(grant), "grant-finance")
    w.form("pay-1").get_by_role("button", name="Release payment").click()
    w.done("release payment", "payment-released")
    assert "£60,000" in page.get_by_role("main").inner_text()

    # 9. weeks pass: the July meeting; the first returns are due
    w.site.start(RETURNS_DUE)
    w.sign_in(OFFICER, "09-officer")
    w.nav("Meetings", "meetings-july")
    page.get_by_role("row").filter(has_text=RETURNS_DUE.date().isoformat()) \
        .get_by_role("link").first.click()
    w.shot("meeting-july")
    w.click_link("Attendance, interests and the agenda's order", "attendance-july")
    present = page.get_by_role("group", name="Members present")
    for name in ("Cllr Asha Chandra", "Cllr Tom Vaughan", "Cllr Grace Mbeki"):
        present.get_by_role("checkbox", name=name).check()
    page.get_by_role("button", name="Record attendance").click()
    w.done("record attendance", "attendance-july-recorded")
    w.click_link(re.compile("^Back to"))
    said = decide(bid_b, "Approve", {"The Board's reasons": "costed plan now convincing"},
                  "approve-resubmitted")  # fmt: skip
    assert "£150,000" in said
    # the delegated decision is reported to the Board, which endorses it
    w.click_link(re.compile("^" + dd), "delegated-item")
    page.get_by_role("button", name=re.compile("^Endorse")).click()
    w.done("endorse", "delegated-endorsed")

    w.sign_in(sam, "09-sponsor")
    w.nav("Returns", "returns-sponsor")
    w.click_link(re.compile(r"savings"), "return-savings")
    ret_savings = page.url.rsplit("/", 1)[-1]
    w.send("submit", {"Savings delivered in this period (£)": "20,000",
                      "Savings anticipated (£)": "240,000"})  # fmt: skip
    w.done("submit return", "return-sent")
    w.sign_in(OFFICER, "09-officer-returns")
    w.nav("Returns", "returns-officer")
    w.click_link(ret_savings, "return-to-accept")
    w.form("accept").get_by_role("button").click()
    w.done("accept return", "return-accepted")

    # 10. more weeks: the progress return is late and chased
    w.site.start(RETURNS_LATE)
    w.sign_in(OFFICER, "10-officer")
    late = f"RET-{grant}-progress-2027-06-30"
    assert late in w.main_text()  # My work: Late returns
    chased = w.mail_to(sam, re.compile(f"^Overdue: .*progress.* for {grant} "))
    assert chased, [str(r.message["Subject"]) for r in w.site.mail.received]
    assert "30 July 2027" in chased[0].text()
    w.nav("Returns", "returns-late")
    w.sign_in(sam, "10-sponsor")
    assert late in w.main_text()  # My work: Returns overdue
    # (the sweep's chase is an email and a line of My work; it writes no in-app
    # notification: its outbox rows are written by SQL, not engine/store/notices.py)

    # 11. the papers, from the meeting page's links
    w.sign_in(OFFICER, "11-officer")
    w.nav("Meetings", "meetings-papers")
    page.get_by_role("row").filter(has_text=today.isoformat()).get_by_role("link").first.click()
    w.shot("meeting-papers")
    for paper in ("agenda", "minutes"):
        links = page.get_by_role("main").get_by_role("link")
        with w.context.expect_event("response", lambda r: "/papers/" in r.url) as got:
            links.filter(has_text=f"{paper} (HTML)").click()
        assert got.value.all_headers()["content-type"].startswith("text/html")
        page.wait_for_load_state()
        assert "Joint Committee" in page.title() and paper in page.title()
        assert bid_a in page.content()
        w.shot(f"paper-{paper}")
        page.go_back()
        page.wait_for_load_state()
        pdf_link = links.filter(has_text=re.compile("^PDF$"))
        n = 0 if paper == "agenda" else 1  # each paper's PDF follows its HTML link
        with w.context.expect_event("response", lambda r: r.url.endswith(".pdf")) as got:
            pdf_link.nth(n).click()
        assert got.value.all_headers()["content-type"] == "application/pdf"
        # Chromium shows it in its PDF viewer: the file itself, with the browser's session
        assert w.context.request.get(got.value.url).body().startswith(b"%PDF")
        if page.url.endswith(".pdf"):  # shown in the browser's viewer: back to the meeting
            page.go_back()
            page.wait_for_load_state()
