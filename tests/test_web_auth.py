"""Sign-in, sessions, CSRF, lock-out, API tokens and signed links, over the real app."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moneykit import OFFICER, SPONSOR, bid_refs, dump, money_board
from sqlalchemy import select
from webkit import api_token, bearer, csrf_of, password_for, set_passwords, sign_in

from engine.store.models import Bid, Person
from quorum_web import auth
from quorum_web.app import create_app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def board(db_url):
    """Each test runs on SQLite and on a real PostgreSQL."""
    q, engine, clock = money_board(db_url)
    set_passwords(q, OFFICER, SPONSOR)
    yield q, engine, clock, db_url
    engine.dispose()


@pytest.fixture
def client(board):
    q, engine, clock, url = board
    with TestClient(create_app(url, scheduler=False, clock=clock)) as c:
        yield c


def bid_state(engine, ref: str) -> str:
    with engine.connect() as c:
        return c.execute(select(Bid.state).where(Bid.ref == ref)).scalar_one()


def person(engine, email: str):
    with engine.connect() as c:
        return c.execute(select(Person).where(Person.email == email)).first()


# ------------------------------------------------------------------ sign-in and out


def test_sign_in_and_out(client: TestClient) -> None:
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=/"
    signed = sign_in(client, OFFICER)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.headers["set-cookie"]
    assert "quorum_session=" in cookie and "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    home = client.get("/")
    assert home.status_code == 200
    assert "My work" in home.text and "Signed in as Olive." in home.text
    assert "Content-Security-Policy" in home.headers
    token = csrf_of(client, "/")
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(client: TestClient) -> None:
    token = csrf_of(client, "/login?next=/bids")
    ok = client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": OFFICER,
            "password": password_for(OFFICER),
            "next": "/bids",
        },
        follow_redirects=False,
    )
    assert ok.headers["location"] == "/bids"
    client.cookies.clear()
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        token = csrf_of(client)
        r = client.post(
            "/login",
            data={
                "csrf_token": token,
                "email": OFFICER,
                "password": password_for(OFFICER),
                "next": evil,
            },
            follow_redirects=False,
        )
        assert r.headers["location"] == "/", evil
        client.cookies.clear()


def test_wrong_password_says_so_and_signs_nobody_in(client: TestClient, board) -> None:
    r = sign_in(client, OFFICER, "not-the-password", follow=True)
    assert r.status_code == 401
    assert "wrong email or password" in r.text
    assert 'value="olive@m.example"' in r.text  # the email is kept on the form
    assert client.get("/", follow_redirects=False).status_code == 303
    unknown = sign_in(client, "nobody@m.example", "whatever-it-is", follow=True)
    assert unknown.status_code == 401 and "wrong email or password" in unknown.text
    assert person(board[1], OFFICER).failed_logins == 1


def test_five_failures_lock_sign_in_for_fifteen_minutes(client: TestClient, board) -> None:
    engine, clock = board[1], board[2]
    clock.set(dt.datetime(2011, 4, 20, 9, 0, tzinfo=dt.UTC))
    for _ in range(4):
        assert "wrong email or password" in sign_in(client, OFFICER, "bad-password", True).text
    fifth = sign_in(client, OFFICER, "bad-password", follow=True)
    assert fifth.status_code == 401
    assert "locked until 2011-04-20 09:15 UTC" in fifth.text
    # the right password does not help while locked, and says when to retry
    clock.advance(minutes=14)
    locked = sign_in(client, OFFICER, follow=True)
    assert locked.status_code == 401 and "locked until 2011-04-20 09:15 UTC" in locked.text
    assert "try again then" in locked.text
    assert client.get("/", follow_redirects=False).status_code == 303
    # after the lock expires the right password works and the count starts again
    clock.advance(minutes=1)
    assert sign_in(client, OFFICER).status_code == 303
    p = person(engine, OFFICER)
    assert p.failed_logins == 0 and p.locked_until is None


def test_a_successful_sign_in_resets_the_count(client: TestClient, board) -> None:
    for _ in range(4):
        sign_in(client, OFFICER, "bad-password")
    assert sign_in(client, OFFICER).status_code == 303
    client.cookies.clear()
    for _ in range(4):
        r = sign_in(client, OFFICER, "bad-password", follow=True)
        assert "locked" not in r.text
    assert sign_in(client, OFFICER).status_code == 303


def test_changing_the_password_signs_out_other_sessions(board) -> None:
    q, engine, clock, url = board
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as laptop, TestClient(app) as phone:
        sign_in(laptop, OFFICER)
        sign_in(phone, OFFICER)
        token = csrf_of(laptop, "/account")
        form = {"csrf_token": token, "_next": "/account", "_form": "password"}
        wrong = laptop.post(
            "/do/set_password",
            data={**form, "current_password": "not-it", "password": "a-new-long-password"},
        )
        assert wrong.status_code == 400 and "Current password is wrong" in wrong.text
        assert "a-new-long-password" not in wrong.text  # passwords are never echoed
        changed = laptop.post(
            "/do/set_password",
            data={
                **form,
                "current_password": password_for(OFFICER),
                "password": "a-new-long-password",
            },
            follow_redirects=False,
        )
        assert changed.status_code == 303
        assert laptop.get("/").status_code == 200  # the session that changed it stays in
        assert phone.get("/", follow_redirects=False).status_code == 303
        assert sign_in(phone, OFFICER, "a-new-long-password").status_code == 303


def test_set_password_needs_the_current_one_and_nobody_sets_anothers(board) -> None:
    """Issue 11: an officer no longer sets anyone's password (a reset link goes to
    the person's own address instead: tests/test_people_roles.py); the system sets
    a first password only."""
    q, engine, *_ = board
    from engine.domain.errors import PermissionDenied, ValidationError

    with pytest.raises(ValidationError, match="current_password"):
        q.execute("set_password", {"password": "long-enough-pw", "current_password": "x"}, SPONSOR)
    with pytest.raises(PermissionDenied):
        q.execute("set_password", {"email": OFFICER, "password": "long-enough-pw"}, SPONSOR)
    with pytest.raises(PermissionDenied, match="nobody sets another person's"):
        q.execute("set_password", {"email": SPONSOR, "password": "set-by-officer"}, OFFICER)
    with pytest.raises(PermissionDenied, match="already has a password"):
        q.execute("set_password", {"email": SPONSOR, "password": "set-by-system"}, "system")
    mine = {"current_password": password_for(OFFICER)}
    with pytest.raises(ValidationError, match="at least 10"):
        q.execute("set_password", {**mine, "password": "short"}, OFFICER)
    q.execute("set_password", {**mine, "password": "set-by-herself"}, OFFICER)
    events = [e for e in dump(engine)["audit_event"] if "PERSON:" + OFFICER in e]
    assert events and not any("set-by-herself" in str(e) for e in dump(engine)["audit_event"])
    assert person(engine, OFFICER).password_hash.startswith("$argon2id$")


# ------------------------------------------------------------------ CSRF


def test_a_form_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, board
) -> None:
    engine = board[1]
    ref = bid_refs(engine, "Delegated ask")[0]
    sign_in(client, OFFICER)
    before = dump(engine)
    form = {"ref": ref, "reason": "merged", "_next": f"/bids/{ref}"}
    missing = client.post("/do/withdraw_bid", data=form)
    assert missing.status_code == 403 and "reload the page" in missing.text
    wrong = client.post("/do/withdraw_bid", data={**form, "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert dump(engine) == before
    assert bid_state(engine, ref) == "submitted"
    right = client.post(
        "/do/withdraw_bid",
        data={**form, "csrf_token": csrf_of(client, f"/bids/{ref}")},
        follow_redirects=False,
    )
    assert right.status_code == 303 and right.headers["location"] == f"/bids/{ref}"
    assert bid_state(engine, ref) == "withdrawn"
    assert "withdraw bid: done" in client.get(f"/bids/{ref}").text


def test_sign_in_and_sign_out_forms_are_csrf_checked_too(client: TestClient) -> None:
    r = client.post("/login", data={"email": OFFICER, "password": password_for(OFFICER)})
    assert r.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303
    sign_in(client, OFFICER)
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/").status_code == 200  # still signed in


def test_api_calls_with_a_session_cookie_need_the_csrf_header(client: TestClient, board) -> None:
    engine = board[1]
    ref = bid_refs(engine, "Delegated ask")[0]
    sign_in(client, OFFICER)
    assert client.get("/api/v1/me").json()["via"] == "session"
    body = {"ref": ref, "reason": "merged"}
    assert client.post("/api/v1/commands/withdraw_bid", json=body).status_code == 403
    token = csrf_of(client, "/")
    ok = client.post("/api/v1/commands/withdraw_bid", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and ok.json()["state"] == "withdrawn"


# ------------------------------------------------------------------ API tokens


def test_an_api_token_works_until_revoked(client: TestClient, board) -> None:
    q, engine = board[0], board[1]
    token = api_token(q, OFFICER, "nightly export")
    r = client.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 200
    assert r.json() == {
        "name": "Olive",
        "email": OFFICER,
        "roles": ["officer"],
        "organisation": None,
        "via": "token",
    }
    stored = dump(engine)["api_token"]
    assert token not in str(stored)  # only its SHA-256 is kept
    ref = bid_refs(engine, "Delegated ask")[0]
    done = client.post(
        "/api/v1/commands/withdraw_bid",
        json={"ref": ref, "reason": "merged"},
        headers={**bearer(token), "Idempotency-Key": "k-1"},
    )
    assert done.status_code == 200 and done.json()["state"] == "withdrawn"
    again = client.post(
        "/api/v1/commands/withdraw_bid",
        json={"ref": ref, "reason": "merged"},
        headers={**bearer(token), "Idempotency-Key": "k-1"},
    )
    assert again.status_code == 200 and again.json() == done.json()  # the first result, once
    token_id = q.execute("revoke_api_token", {"token": 1}, OFFICER)["token"]
    assert token_id == 1
    gone = client.get("/api/v1/me", headers=bearer(token))
    assert gone.status_code == 401
    assert gone.json()["error"] == "unauthenticated" and "revoked" in gone.json()["message"]
    assert client.get("/api/v1/me", headers=bearer("qk_made-up")).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_a_token_is_only_made_for_yourself(board) -> None:
    q = board[0]
    from engine.domain.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        q.execute("create_api_token", {"email": SPONSOR, "token_sha256": "a" * 64}, OFFICER)
    assert q.execute("create_api_token", {"token_sha256": "b" * 64}, SPONSOR)["token"] == 1


def test_token_cli_creates_lists_and_revokes(board) -> None:
    url = board[3]
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def quorum(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "engine.entry.cli", "--db", url, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    made = quorum("token", "create", OFFICER, "--name", "ci")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("qk_") and "not shown again" in made.stderr
    listed = quorum("token", "list")
    assert "ci" in listed.stdout and "active" in listed.stdout and secret not in listed.stdout
    with TestClient(create_app(url, scheduler=False, clock=board[2])) as c:
        assert c.get("/api/v1/me", headers=bearer(secret)).status_code == 200
        assert quorum("token", "revoke", "1").returncode == 0
        assert c.get("/api/v1/me", headers=bearer(secret)).status_code == 401
    again = quorum("token", "revoke", "1")
    assert again.returncode == 1 and "already revoked" in again.stderr


# ------------------------------------------------------------------ the secret key, links


def test_every_process_on_one_database_shares_the_session_key(board) -> None:
    url, clock = board[3], board[2]
    with TestClient(create_app(url, scheduler=False, clock=clock)) as one:
        sign_in(one, OFFICER)
        cookie = one.cookies.get("quorum_session")
    with TestClient(create_app(url, scheduler=False, clock=clock)) as two:
        two.cookies.set("quorum_session", cookie)
        assert two.get("/").status_code == 200


def test_signed_links_are_for_one_person_and_work_once(board) -> None:
    q, engine, clock, _ = board
    secret = auth.secret_key(engine)
    chair = q.actor("chris@m.example")
    link = auth.make_link_token(secret, "sign", "DD-0001", chair.email)
    data = auth.read_link_token(secret, link, "sign", dt.timedelta(days=7), chair)
    assert data["i"] == "DD-0001"
    from engine.domain.errors import PermissionDenied, ValidationError

    with pytest.raises(PermissionDenied):
        auth.read_link_token(secret, link, "sign", dt.timedelta(days=7), q.actor(OFFICER))
    with pytest.raises(ValidationError, match="not valid"):
        auth.read_link_token(secret, link[:-3] + "xyz", "sign", dt.timedelta(days=7), chair)
    auth.use_link(engine, data["j"], clock.now())
    with pytest.raises(ValidationError, match="already been used"):
        auth.use_link(engine, data["j"], clock.now())


def test_the_demo_prints_passwords_that_sign_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", "engine.entry.cli", "--db", url, "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    users = dict(re.findall(r"^\s+(\S+@quorum\.example)\s+(\S+)", out.stdout, re.M))
    assert {
        "officer@quorum.example",
        "chair@quorum.example",
        "vice1@quorum.example",
        "vice2@quorum.example",
        "sponsor.nkdc@quorum.example",
    } <= set(users)
    with TestClient(create_app(url, scheduler=False)) as c:
        for email in ("officer@quorum.example", "sponsor.nkdc@quorum.example"):
            assert sign_in(c, email, users[email]).status_code == 303
            assert c.get("/").status_code == 200
            c.cookies.clear()
