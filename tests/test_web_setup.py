"""Set-up in the browser (issue 14, items 1 and 5): programmes and pots,
authorities and partnerships, people, rounds and meetings, each created through
its page and the same commands as the CLI; a refused form shows the GOV.UK error
summary and the message at its field once, keeps what was typed, and changes
nothing; a role that may not gets 403."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from webkit import CSRF_RE, set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.read import setup as setup_read
from engine.read import views
from engine.store.db import create_schema, make_engine
from engine.store.models import (
    AccountableBodyChange,
    Meeting,
    Organisation,
    Person,
    Pot,
    Programme,
    ProgrammeChange,
    RoleChange,
    Round,
)
from quorum_web.app import create_app

OFFICER, OFFICER2, DIRECTOR = "olive@s.example", "otto@s.example", "dee@s.example"
CHAIR, MEMBER, SPONSOR = "chris@s.example", "ash@s.example", "sam@s.example"


@pytest.fixture
def world(sqlite_url):
    """An empty programme: only the people who will set it up (and a sponsor)."""
    clock = FixedClock(dt.date(2011, 3, 1))
    engine = make_engine(sqlite_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute_batch(
        [
            ("register_organisation", {"name": "Rutland CC", "kind": "unitary"}),
            *[
                ("register_person", {"name": n, "email": e, "roles": r, **o})
                for n, e, r, o in (
                    ("Olive", OFFICER, ["officer"], {}),
                    ("Otto", OFFICER2, ["officer"], {}),
                    ("Dee", DIRECTOR, ["director"], {}),
                    ("Chris", CHAIR, ["chair", "board_member"], {}),
                    ("Ash", MEMBER, ["board_member"], {}),
                    ("Sam", SPONSOR, ["sponsor"], {"organisation": "Rutland CC"}),
                )
            ],
        ],
        "system",
    )
    set_passwords(q, OFFICER, OFFICER2, DIRECTOR, CHAIR, MEMBER, SPONSOR)
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    clients = {}
    with TestClient(app):
        for email in (OFFICER, OFFICER2, DIRECTOR, CHAIR, SPONSOR):
            c = TestClient(app)
            assert sign_in(c, email).status_code == 303
            clients[email] = c
        yield {"q": q, "engine": engine, "clock": clock, "c": clients}
        for c in clients.values():
            c.close()
    engine.dispose()


def count(engine, model) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def submit(client: TestClient, page: str, action: str, form: str, **fields: str):
    """Post a form as the browser does: the CSRF token and a fresh key from the page."""
    text = client.get(page).text
    token = CSRF_RE.search(text)
    assert token, page
    keys = re.findall(r'name="_key" value="([^"]+)"', text)
    data = {
        "csrf_token": token.group(1),
        "_next": page,
        "_form": form,
        "_key": keys[0] if keys else "form-test-" + form,
    }
    data.update(fields)
    return client.post(action, data=data, follow_redirects=False)


def assert_problem_once(response, message: str, anchor: str) -> None:
    """The GOV.UK pattern: 'There is a problem' with a link to the field, and the
    message at the field: twice on the page in all, never with a command name."""
    text = response.text
    assert response.status_code in (400, 404, 409, 422), response.status_code
    assert "There is a problem" in text
    assert f'href="#{anchor}"' in text, text[text.find("There is a problem") :][:400]
    assert f'id="{anchor}"' in text
    assert text.count(message) == 2, (message, text.count(message))
    assert not re.search(r"\b[a-z]+_[a-z_]+: ", text.split("<main", 1)[1]), "a command's name"


def test_a_programme_and_its_pots_are_set_up_on_the_programmes_page(world) -> None:
    engine, director, officer = world["engine"], world["c"][DIRECTOR], world["c"][OFFICER]
    page = director.get("/programmes")
    assert page.status_code == 200 and "No programme yet" in page.text
    r = submit(
        director,
        "/programmes",
        "/programmes/new",
        "create-programme",
        name="Efficiency 2011",
        starts_on="2011-04-01",
        ends_on="2012-03-31",
        pot="Projects",
        amount="750,000",
        ratified_by="Board 1 March 2011 minute 4",
    )
    assert r.status_code == 303, r.text[-2000:]
    with engine.connect() as conn:
        (prog,) = setup_read.programmes(conn)
    assert prog["name"] == "Efficiency 2011" and prog["pots"][0]["allocated_pence"] == 75_000_000
    # a second pot, then a changed allocation: ratified changes with their minute
    r = submit(
        officer,
        "/programmes",
        "/programmes/pots",
        "add-pot-efficiency-2011",
        programme="Efficiency 2011",
        pot="Governance",
        amount="50,000",
        ratified_by="Board 12 April 2011 minute 9",
        reason="running costs",
    )
    assert r.status_code == 303, r.text[-2000:]
    r = submit(
        officer,
        "/programmes",
        "/programmes/pots",
        "change-pot-efficiency-2011",
        programme="Efficiency 2011",
        pot="Projects",
        amount="800,000",
        ratified_by="Board 12 April 2011 minute 10",
        reason="more for projects",
    )
    assert r.status_code == 303, r.text[-2000:]
    with engine.connect() as conn:
        (prog,) = setup_read.programmes(conn)
    pots = {p["name"]: p["allocated_pence"] for p in prog["pots"]}
    assert pots == {"Projects": 80_000_000, "Governance": 5_000_000}
    assert prog["changes"][0]["ratified_by"] == "Board 12 April 2011 minute 10"
    page = officer.get("/programmes").text
    assert "£800,000" in page and "Board 12 April 2011 minute 10" in page
    # the options: accountable body required, a scheme of delegation adopted
    r = submit(
        director,
        "/programmes",
        "/do/configure_payments",
        "payments-efficiency-2011",
        programme="Efficiency 2011",
        accountable_body_required="yes",
    )
    assert r.status_code == 303, r.text[-2000:]
    r = submit(
        director,
        "/programmes",
        "/do/adopt_scheme",
        "scheme-efficiency-2011",
        programme="Efficiency 2011",
        scheme="delegation-2011",
        minute="Board 12 April 2011 minute 11",
    )
    assert r.status_code == 303, r.text[-2000:]
    with engine.connect() as conn:
        (prog,) = setup_read.programmes(conn)
    assert prog["accountable_body_required"] and prog["scheme"]


def test_a_refused_programme_form_shows_the_problem_once_and_changes_nothing(world) -> None:
    engine, director = world["engine"], world["c"][DIRECTOR]
    before = [count(engine, m) for m in (Programme, Pot, ProgrammeChange)]
    r = submit(
        director,
        "/programmes",
        "/programmes/new",
        "create-programme",
        name="Efficiency 2011",
        pot="Projects",
        amount="lots",
        starts_on="2011-04-01",
    )
    assert_problem_once(
        r,
        r.text.split('id="f-create-programme-amount-err">'
                     '<span class="govuk-visually-hidden">Error: </span>')[1]
        .split("<")[0],
        "f-create-programme-amount",
    )
    # what was typed is kept
    assert 'value="Efficiency 2011"' in r.text and 'value="lots"' in r.text
    assert [count(engine, m) for m in (Programme, Pot, ProgrammeChange)] == before
    r = submit(
        director,
        "/programmes",
        "/programmes/new",
        "create-programme",
        name="Late",
        pot="Projects",
        amount="1,000",
        starts_on="2011-04-01",
        ends_on="2011-01-01",
    )
    assert_problem_once(r, "Ends on must be after starts on", "f-create-programme-ends_on")
    assert [count(engine, m) for m in (Programme, Pot, ProgrammeChange)] == before


def test_only_directors_create_programmes_and_sponsors_see_no_set_up(world) -> None:
    engine, officer, sponsor, chair = (
        world["engine"],
        world["c"][OFFICER],
        world["c"][SPONSOR],
        world["c"][CHAIR],
    )
    assert sponsor.get("/programmes").status_code == 403
    assert chair.get("/authorities").status_code == 403
    assert "/programmes" not in sponsor.get("/").text.split("</nav>")[0]
    assert "/programmes" in officer.get("/").text.split("</nav>")[0]
    page = officer.get("/programmes").text
    assert "Not available to you now: needs role director" in page
    # posted anyway: the command refuses it, nothing is written
    r = submit(
        officer, "/programmes", "/programmes/new", "create-programme", name="X", pot="P", amount="1"
    )
    assert r.status_code == 403 and count(engine, Programme) == 0
    token = re.search(r'name="csrf_token" value="([^"]+)"', sponsor.get("/").text).group(1)
    r = sponsor.post(
        "/programmes/new",
        data={"csrf_token": token, "name": "X", "pot": "P", "amount": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and count(engine, Programme) == 0


def programme(world) -> None:
    world["q"].execute(
        "create_programme",
        {"name": "Efficiency 2011", "pots": {"Projects": "750,000"}},
        DIRECTOR,
    )


def test_authorities_and_an_accountable_body_through_the_four_eyes_commands(world) -> None:
    engine, officer, officer2 = world["engine"], world["c"][OFFICER], world["c"][OFFICER2]
    for name, kind in (("Leics SRP", "sub_regional_partnership"), ("Melton BC", "district")):
        r = submit(
            officer,
            "/authorities",
            "/do/register_organisation",
            "register-authority",
            name=name,
            kind=kind,
            org_id="GB-LAE-MEL" if name == "Melton BC" else "",
        )
        assert r.status_code == 303, r.text[-1500:]
    r = submit(
        officer,
        "/authorities",
        "/do/set_org_identifier",
        "org-id",
        organisation="Rutland CC",
        org_id="GB-LAE-RUT",
    )
    assert r.status_code == 303, r.text[-1500:]
    with engine.connect() as conn:
        orgs = {o["name"]: o for o in setup_read.organisations(conn)}
    assert orgs["Rutland CC"]["org_id"] == "GB-LAE-RUT" and orgs["Melton BC"]["kind"] == "district"
    r = submit(
        officer,
        "/authorities",
        "/do/propose_accountable_body",
        "propose-body",
        partnership="Leics SRP",
        body="Melton BC",
    )
    assert r.status_code == 303, r.text[-1500:]
    with engine.connect() as conn:
        (p,) = setup_read.body_proposals(conn)
    # the proposer may not approve it: offered only to a second officer
    assert "you proposed it: a second officer decides it" in officer.get("/authorities").text
    r = submit(
        officer2,
        "/authorities",
        "/do/approve_accountable_body",
        f"approve-{p['ref']}",
        item=p["ref"],
        version=str(p["version"]),
    )
    assert r.status_code == 303, r.text[-1500:]
    with engine.connect() as conn:
        orgs = {o["name"]: o for o in setup_read.organisations(conn)}
    assert orgs["Leics SRP"]["accountable_body"] == "Melton BC"
    # refused: a malformed identifier; the summary, the field, what was typed; no row
    before = count(engine, Organisation)
    r = submit(
        officer,
        "/authorities",
        "/do/register_organisation",
        "register-authority",
        name="Oakham TC",
        kind="other",
        org_id="rutland",
    )
    message = "is not an organisation identifier; give an org-id.guide identifier"
    assert message in r.text
    assert_problem_once(r, message, "f-register-authority-org_id")
    assert 'value="Oakham TC"' in r.text and count(engine, Organisation) == before
    assert count(engine, AccountableBodyChange) == 1
    assert world["c"][SPONSOR].get("/authorities").status_code == 403


def test_a_person_is_registered_from_the_people_page_and_a_refusal_stays_on_it(world) -> None:
    engine, officer = world["engine"], world["c"][OFFICER]
    r = submit(
        officer,
        "/people",
        "/do/register_person",
        "register_person",
        name="Vera",
        email="vera@s.example",
        roles="board_member",
    )
    assert r.status_code == 303, r.text[-1500:]
    with engine.connect() as conn:
        assert ("vera@s.example", "Vera (board member)") in setup_read.board_people(conn)
    # a privileged role: a request only, approved by a second person
    r = submit(
        officer,
        "/people",
        "/do/register_person",
        "register_person",
        name="Vic",
        email="vic@s.example",
        roles="vice_chair",
    )
    assert r.status_code == 303 and count(engine, RoleChange) == 1
    before = count(engine, Person)
    r = submit(
        officer,
        "/people",
        "/do/register_person",
        "register_person",
        name="Sue",
        email="sue@s.example",
        roles="sponsor",
    )
    message = "a sponsor contact must belong to an authority"
    assert_problem_once(r, message, "f-register_person-organisation")
    assert '<h1 class="govuk-heading-l">People and roles</h1>' in r.text and 'value="Sue"' in r.text
    assert count(engine, Person) == before
    # the authority is chosen from those registered
    assert '<option value="Rutland CC">' in r.text


def test_a_round_is_opened_and_closed_from_the_rounds_page(world) -> None:
    engine, officer, clock = world["engine"], world["c"][OFFICER], world["clock"]
    page = officer.get("/rounds").text
    assert "No round yet" in page and "create a programme and its pots first" in page
    programme(world)
    r = submit(
        officer,
        "/rounds",
        "/do/open_round",
        "open-round",
        name="Spring 2011",
        pot="Projects",
        rules="efficiency-bids-2011",
        closes="2011-04-30",
        scoring="optional",
    )
    assert r.status_code == 303, r.text[-1500:]
    with engine.connect() as conn:
        (rnd,) = views.rounds(conn)
    assert rnd["name"] == "Spring 2011" and rnd["state"] == "open"
    assert rnd["rule_set"] == "efficiency-bids-2011"
    before = count(engine, Round)
    r = submit(
        officer,
        "/rounds",
        "/do/open_round",
        "open-round",
        name="Backwards",
        pot="Projects",
        rules="efficiency-bids-2011",
        opens="2011-05-01",
        closes="2011-04-30",
        scoring="required",
    )
    message = "2011-04-30 is before the round opens (2011-05-01)"
    assert_problem_once(r, message, "f-open-round-closes")
    assert '<h1 class="govuk-heading-l">Bidding rounds</h1>' in r.text
    assert 'value="Backwards"' in r.text
    assert count(engine, Round) == before
    clock.set(dt.date(2011, 5, 1))
    assert sign_in(officer, OFFICER).status_code == 303  # a new day, a new session
    r = submit(officer, "/rounds", "/do/close_round", f"close-{rnd['ref']}", round=rnd["ref"])
    assert r.status_code == 303, r.text[-1500:]
    with engine.connect() as conn:
        assert views.rounds(conn)[0]["state"] == "closed"
    # a chair sees the list but not the set-up forms
    chair = world["c"][CHAIR]
    assert sign_in(chair, CHAIR).status_code == 303
    page = chair.get("/rounds").text
    assert "Open a round" not in page and "Spring 2011" in page


def test_dates_are_typed_as_day_month_and_year(world) -> None:
    """The GOV.UK date input: three boxes (day, month, year) under the question;
    a part left out is refused naming it, the boxes show what was typed and nothing
    is stored; typed whole, the round opens on that date."""
    engine, officer = world["engine"], world["c"][OFFICER]
    programme(world)
    page = officer.get("/rounds").text
    group = page[page.index('<legend class="govuk-fieldset__legend govuk-fieldset__legend--s">'
                            'Closes'):]
    group = group[:group.index("</fieldset>")]
    assert [m for m in re.findall(r'name="(closes-[a-z]+)"', group)] == [
        "closes-day", "closes-month", "closes-year"]
    assert 'for="f-open-round-closes">Day</label>' in group  # the summary's link lands here
    before = count(engine, Round)
    r = submit(officer, "/rounds", "/do/open_round", "open-round", name="Spring 2011",
               pot="Projects", rules="efficiency-bids-2011", scoring="optional",
               **{"closes-day": "30", "closes-month": "", "closes-year": "2011"})
    assert_problem_once(r, "&#39;30//2011&#39; has no month", "f-open-round-closes")
    assert count(engine, Round) == before
    shown = r.text[r.text.index('id="f-open-round-closes"'):]
    assert 'value="30"' in shown[:400] and 'name="closes-month" type="text" ' \
        'inputmode="numeric" value=""' in shown and 'value="2011"' in shown
    r = submit(officer, "/rounds", "/do/open_round", "open-round", name="Spring 2011",
               pot="Projects", rules="efficiency-bids-2011", scoring="optional",
               **{"closes-day": "30", "closes-month": "4", "closes-year": "2011"})
    assert r.status_code == 303, r.text[-1500:]
    with engine.connect() as conn:
        (rnd,) = views.rounds(conn)
    assert rnd["closes_on"] == "2011-04-30"


def test_a_meeting_is_scheduled_from_the_meetings_page(world) -> None:
    engine, officer = world["engine"], world["c"][OFFICER]
    programme(world)
    page = officer.get("/meetings").text
    assert "No meeting is scheduled yet" in page and "Schedule a meeting" in page
    assert page.index("Schedule the first one below") < page.index('id="meetings"')
    r = submit(
        officer,
        "/meetings",
        "/do/schedule_meeting",
        "schedule-meeting",
        title="Board meeting",
        date="2011-04-12",
        quorum="3",
        members=CHAIR,
    )
    message = "3 is more than the 1 members"
    assert_problem_once(r, message, "f-schedule-meeting-quorum")
    assert count(engine, Meeting) == 0 and 'value="Board meeting"' in r.text
    assert re.search(rf'value="{re.escape(CHAIR)}" checked', r.text)
    text = officer.get("/meetings").text
    token = CSRF_RE.search(text).group(1)  # type: ignore[union-attr]
    key = re.findall(r'name="_key" value="([^"]+)"', text)[0]
    r = officer.post(
        "/do/schedule_meeting",
        data={
            "csrf_token": token,
            "_next": "/meetings",
            "_form": "schedule-meeting",
            "_key": key,
            "title": "Board meeting",
            "date": "2011-04-12",
            "quorum": "2",
            "members": [CHAIR, MEMBER],  # two boxes ticked
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[-1500:]
    with engine.connect() as conn:
        (m,) = views.meetings(conn)
    assert m["title"] == "Board meeting" and m["quorum"] == 2 and m["date"] == "2011-04-12"
    page = world["c"][CHAIR].get("/meetings").text
    assert "Schedule a meeting" not in page and "Board meeting" in page
    assert world["c"][SPONSOR].get("/meetings").status_code == 403


def test_no_page_gives_command_line_advice() -> None:
    from pathlib import Path

    import quorum_web

    root = Path(quorum_web.__file__).parent / "templates"
    for path in root.rglob("*.html"):
        # a command to type ("`quorum orgs list`", "run quorum token create"), not the
        # word quorum ("quorum and vote")
        assert not re.search(r"""(?:\brun |<code>|[`'"])quorum [a-z-]+""", path.read_text()), path
    from quorum_web.actions import plain_message

    said = plain_message(
        "register_person: organisation: unknown authority 'X'; register it first "
        "(known authorities are listed by 'quorum orgs list')",
        "organisation",
    )
    assert "quorum" not in said and "Authorities page" in said and "register_person" not in said


def test_a_refusal_sent_back_to_a_list_page_is_not_shown_to_who_may_not_see_it(world) -> None:
    """A sponsor posting a set-up command with _next=/rounds (or /programmes) gets
    the plain refusal page, never the staff page with the error on it."""
    sponsor = world["c"][SPONSOR]
    for page, command in (("/rounds", "open_round"), ("/programmes", "configure_payments")):
        token = CSRF_RE.search(sponsor.get("/").text).group(1)  # type: ignore[union-attr]
        r = sponsor.post(
            f"/do/{command}",
            data={"csrf_token": token, "_next": page, "_form": "x", "name": "Spring"},
            follow_redirects=False,
        )
        assert r.status_code == 403 and "Not done" in r.text, (page, r.status_code)
        assert "Bidding rounds" not in r.text and "Programmes and pots" not in r.text


@pytest.mark.parametrize(
    ("message", "field", "shown"),
    [
        ("submit_bid: title: is required", "title", "Title is required"),
        (
            "create_programme: ends_on: must be after starts_on",
            "ends_on",
            "Ends on must be after starts on",
        ),
        (
            "round whatif: file: choose a rule set file (YAML)",
            "file",
            "choose a rule set file (YAML)",
        ),
        ("schedule_meeting: members[2]: no person 'x'", "members[2]", "no person 'x'"),
        (
            "ratify_programme_change: pots.Main: cannot set the pot to £1: £2 is already "
            "committed from it",
            "pots.Main",
            "cannot set the pot to £1: £2 is already committed from it",
        ),
        ("this form was already sent", "_key", "this form was already sent"),
        ("decide: votes: the grant_pence is 3", "votes", "the grant is 3"),
    ],
)
def test_refusals_in_plain_words(message: str, field: str, shown: str) -> None:
    from quorum_web.actions import plain_message

    assert plain_message(message, field) == shown
