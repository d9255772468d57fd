"""Server-side web sessions (issue 11, point 3): a session row per sign-in,
checked on every request, ended at sign-out, by a password change, by "sign
out everywhere" and by the idle and absolute timeouts (the app's clock)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from moneykit import CHAIR, OFFICER, OFFICER2, SPONSOR, money_board
from sqlalchemy import select
from sqlmodel import Session
from webkit import api_token, bearer, csrf_of, password_for, set_passwords, sign_in

from engine.settings import Settings, SettingsError
from engine.store import audit, sessions
from engine.store.db import write_connection
from engine.store.models import Outbox, Person, WebSession
from quorum_web.app import create_app

RESET_LINK = re.compile(r"/password/reset\?token=(qr_[A-Za-z0-9_-]+)")


@pytest.fixture
def board(sqlite_url):
    q, engine, clock = money_board(sqlite_url)
    set_passwords(q, OFFICER, SPONSOR)
    yield q, engine, clock, sqlite_url
    engine.dispose()


@pytest.fixture
def app(board):
    q, engine, clock, url = board
    return create_app(url, scheduler=False, clock=clock)


def signed_in(app, email: str) -> TestClient:
    c = TestClient(app)
    assert sign_in(c, email).status_code == 303
    assert c.get("/account", follow_redirects=False).status_code == 200
    return c


def copy_of(client: TestClient, app) -> TestClient:
    """Another browser holding the same cookie (copied, as an attacker would)."""
    other = TestClient(app)
    for name, value in client.cookies.items():
        other.cookies.set(name, value)
    return other


def works(client: TestClient) -> bool:
    r = client.get("/account", follow_redirects=False)
    assert r.status_code in (200, 303), r.status_code
    if r.status_code == 303:
        assert r.headers["location"].startswith("/login")
    return r.status_code == 200


def rows(engine, email: str) -> list:
    with engine.connect() as c:
        pid = c.execute(select(Person.id).where(Person.email == email)).scalar_one()
        return list(
            c.execute(select(WebSession).where(WebSession.person_id == pid).order_by(WebSession.id))
        )


def post(client: TestClient, path: str, **data: str):
    token = csrf_of(client, "/account")
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


# ------------------------------------------------------------------ sign-out


def test_a_cookie_copied_before_sign_out_no_longer_works_after_it(board, app) -> None:
    q, engine, clock, _ = board
    browser = signed_in(app, OFFICER)
    stolen = copy_of(browser, app)
    assert works(stolen)  # the copy works while the session lives...
    (row,) = rows(engine, OFFICER)
    assert row.revoked_at is None and row.token_hash not in str(dict(browser.cookies))
    assert row.user_agent  # the browser's User-Agent, for the account page

    assert post(browser, "/logout").status_code == 303
    assert not works(browser)
    assert not works(stolen)  # ...and not after sign-out: the row decides, not the cookie
    (row,) = rows(engine, OFFICER)
    assert row.revoked_reason == sessions.SIGNED_OUT and row.revoked_at == clock.now()
    # signing in again makes a new session; the old cookie stays dead
    assert works(signed_in(app, OFFICER)) and not works(stolen)
    assert len(rows(engine, OFFICER)) == 2


def test_sign_out_ends_a_copied_cookie_on_sqlite_and_postgresql(db_url) -> None:
    q, engine, clock = money_board(db_url)
    try:
        set_passwords(q, OFFICER)
        app = create_app(db_url, scheduler=False, clock=clock)
        browser = signed_in(app, OFFICER)
        stolen = copy_of(browser, app)
        clock.advance(minutes=5)  # last seen is written: the row is touched
        assert works(stolen)
        assert post(browser, "/logout").status_code == 303
        assert not works(stolen) and not works(browser)
        (row,) = rows(engine, OFFICER)
        assert row.revoked_reason == sessions.SIGNED_OUT
    finally:
        engine.dispose()


def test_a_forged_or_unknown_session_id_signs_nobody_in(board, app) -> None:
    browser = signed_in(app, OFFICER)
    with write_connection(board[1]) as c, c.begin():
        c.execute(WebSession.__table__.delete())  # the rows gone: the cookie alone is nothing
    assert not works(browser)


# ------------------------------------------------------------------ password change


def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(board, app) -> None:
    q, engine, clock, _ = board
    laptop, phone = signed_in(app, OFFICER), signed_in(app, OFFICER)
    r = post(
        laptop,
        "/do/set_password",
        current_password=password_for(OFFICER),
        password="a much newer password",
        _next="/account",
    )
    assert r.status_code == 303, r.text[:300]
    assert works(laptop)  # a fresh session for the browser that changed it
    assert not works(phone)
    reasons = [r.revoked_reason for r in rows(engine, OFFICER)]
    assert reasons.count(sessions.PASSWORD_CHANGED) == 2 and reasons.count("") == 1


def test_a_password_reset_through_the_emailed_link_ends_all_their_sessions(board, app) -> None:
    q, engine, clock, _ = board
    sponsor = signed_in(app, SPONSOR)
    q.execute("request_password_reset", {"email": SPONSOR}, OFFICER)
    assert works(sponsor)  # asking for a link changes nothing
    with engine.connect() as c:
        mail = c.execute(
            select(Outbox.context)
            .where(Outbox.to_addr == SPONSOR, Outbox.template == "password_reset")
            .order_by(Outbox.id.desc())
        ).scalars().first()
    found = RESET_LINK.search(mail["link"])
    assert found, mail
    new = {"token": found.group(1), "password": "set through the link"}
    q.execute("reset_password", new, SPONSOR)
    assert not works(sponsor)
    assert [r.revoked_reason for r in rows(engine, SPONSOR)] == [sessions.PASSWORD_CHANGED]
    assert sign_in(TestClient(app), SPONSOR, "set through the link").status_code == 303


# ------------------------------------------------------------------ role changes


def test_a_change_of_roles_ends_the_persons_sessions_when_it_is_made(board, app) -> None:
    q, engine, clock, _ = board
    set_passwords(q, OFFICER2)
    sponsor, officer2 = signed_in(app, SPONSOR), signed_in(app, OFFICER2)
    # a role that is not privileged is granted at once: the sponsor signs in again
    q.execute("change_roles", {"email": SPONSOR, "add": ["board_member"]}, OFFICER)
    assert not works(sponsor)
    assert [r.revoked_reason for r in rows(engine, SPONSOR)] == [sessions.ROLES_CHANGED]
    # a privileged one is a request: nothing ends until a second person approves it
    ask = q.execute("change_roles", {"email": OFFICER2, "remove": ["officer"]}, OFFICER)
    assert works(officer2)
    q.execute("approve_role_change", {"item": ask["role_change"]}, CHAIR)
    assert not works(officer2)
    assert [r.revoked_reason for r in rows(engine, OFFICER2)] == [sessions.ROLES_CHANGED]


# ------------------------------------------------------------------ sign out everywhere


def test_sign_out_everywhere_ends_every_session_of_ones_own_but_not_api_tokens(board, app) -> None:
    q, engine, clock, _ = board
    token = api_token(q, OFFICER)
    laptop, phone = signed_in(app, OFFICER), signed_in(app, OFFICER)
    other = signed_in(app, SPONSOR)
    page = laptop.get("/account").text
    assert "Sign out everywhere" in page and "Sign someone else out everywhere" in page
    r = post(laptop, "/do/sign_out_everywhere", _next="/account")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not works(laptop) and not works(phone)
    assert works(other)  # someone else's sessions are theirs
    assert TestClient(app).get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert {r.revoked_reason for r in rows(engine, OFFICER)} == {sessions.EVERYWHERE}


def test_an_officer_signs_someone_else_out_everywhere_and_a_sponsor_may_not(board, app) -> None:
    q, engine, clock, _ = board
    officer, sponsor = signed_in(app, OFFICER), signed_in(app, SPONSOR)
    assert "Sign someone else out everywhere" not in sponsor.get("/account").text
    refused = post(sponsor, "/do/sign_out_everywhere", email=OFFICER, _next="/account")
    assert refused.status_code == 403
    assert "may sign out only themselves" in refused.text
    assert works(officer)

    r = post(officer, "/do/sign_out_everywhere", email=SPONSOR, _next="/account")
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert not works(sponsor) and works(officer)
    # recorded in the audit trail, with who did it
    with Session(engine) as s:
        (event,) = audit.history(s, f"PERSON:{SPONSOR}")[-1:]
    assert event.command == "sign_out_everywhere" and event.actor == OFFICER


# ------------------------------------------------------------------ timeouts (the app's clock)


def test_a_session_unused_for_the_idle_time_ends(board, app, monkeypatch) -> None:
    q, engine, clock, _ = board
    monkeypatch.setenv("QUORUM_SESSION_IDLE_MINUTES", "30")
    browser = signed_in(app, OFFICER)
    clock.advance(minutes=29)
    assert works(browser)  # used: the idle time starts again
    clock.advance(minutes=29)
    assert works(browser)
    clock.advance(minutes=30)
    assert not works(browser)
    assert rows(engine, OFFICER)[-1].revoked_reason == sessions.IDLE
    clock.advance(minutes=-60)  # the clock going back does not bring it back
    assert not works(browser)


def test_every_session_ends_at_the_absolute_time_however_busy(board, app, monkeypatch) -> None:
    q, engine, clock, _ = board
    monkeypatch.setenv("QUORUM_SESSION_MAX_HOURS", "2")
    browser = signed_in(app, OFFICER)
    for _ in range(7):
        clock.advance(minutes=17)
        assert works(browser)  # 119 minutes after sign-in
    clock.advance(minutes=1)
    assert not works(browser)
    assert rows(engine, OFFICER)[-1].revoked_reason == sessions.EXPIRED


def test_the_default_timeouts() -> None:
    s = Settings.from_env({})
    assert (s.session_idle_minutes, s.session_max_hours) == (120, 12)


@pytest.mark.parametrize(
    "name, value",
    [
        ("QUORUM_SESSION_IDLE_MINUTES", "0"),
        ("QUORUM_SESSION_IDLE_MINUTES", "ten"),
        ("QUORUM_SESSION_MAX_HOURS", "721"),
        ("QUORUM_SESSION_MAX_HOURS", "1.5"),
    ],
)
def test_a_bad_timeout_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


# ------------------------------------------------------------------ the store function


def test_revoke_sessions_ends_only_that_persons_live_sessions(board, app) -> None:
    """The one call a change of roles (or anything else) makes to sign a person out."""
    q, engine, clock, _ = board
    a, b, c = signed_in(app, SPONSOR), signed_in(app, SPONSOR), signed_in(app, OFFICER)
    sponsor_id = rows(engine, SPONSOR)[0].person_id
    with write_connection(engine) as conn, conn.begin():
        assert sessions.revoke_sessions(conn, sponsor_id, sessions.ROLES_CHANGED, clock.now()) == 2
    with write_connection(engine) as conn, conn.begin():  # nothing live is left
        assert sessions.revoke_sessions(conn, sponsor_id, sessions.ROLES_CHANGED, clock.now()) == 0
    assert not works(a) and not works(b) and works(c)
    assert {r.revoked_reason for r in rows(engine, SPONSOR)} == {sessions.ROLES_CHANGED}


def test_the_account_page_lists_ones_live_sessions(board, app) -> None:
    browser = signed_in(app, OFFICER)
    signed_in(app, OFFICER)
    page = browser.get("/account").text
    start = page.index('id="web-sessions"')
    table = page[start : page.index("</table>", start)]
    assert table.count('<tr class="govuk-table__row">') == 3  # the header and two sessions
