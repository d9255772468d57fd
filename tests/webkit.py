"""Helpers for the web tests: sign in as a browser does, make API tokens."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from engine.commands.handlers.accounts import new_token, token_hash
from engine.commands.service import Quorum

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def password_for(email: str) -> str:
    return "pw-" + email.split("@", 1)[0] + "-2011"


def set_passwords(q: Quorum, *emails: str) -> None:
    q.execute_batch(
        [("set_password", {"email": e, "password": password_for(e)}) for e in emails], "system"
    )


def csrf_of(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    found = CSRF_RE.search(page.text)
    assert found, f"no CSRF field on {path} ({page.status_code})"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str | None = None, follow: bool = False):
    token = csrf_of(client, "/login")
    return client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password or password_for(email)},
        follow_redirects=follow,
    )


def api_token(q: Quorum, email: str, name: str = "test") -> str:
    secret = new_token()
    q.execute(
        "create_api_token",
        {"email": email, "name": name, "token_sha256": token_hash(secret)},
        "system",
    )
    return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def closed_second_round(q: Quorum, clock, officer: str) -> str:
    """Round R2 (Projects pot) with one bid, "Shared payroll", closed on
    1 Aug 2011 and not yet scored; the clock is left there. Returns the bid's ref."""
    import datetime as dt

    q.execute(
        "open_round",
        {
            "ref": "R2",
            "name": "Autumn",
            "pot": "Projects",
            "closes": "2011-07-31",
            "rules": "efficiency-bids-2011",
        },
        officer,
    )
    ref = q.execute(
        "submit_bid",
        {
            "title": "Shared payroll",
            "sponsor": "Rutland CC",
            "grant": "20,000",
            "savings": "50,000 per annum",
            "partnership": "yes",
            "round": "R2",
        },
        officer,
    )["ref"]
    clock.set(dt.date(2011, 8, 1))
    q.execute("close_round", {"round": "R2"}, officer)
    return ref
