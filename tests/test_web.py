"""The web app over real HTTP handling (ASGI test client, real DB): lists and the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from webkit import api_token, bearer, set_passwords, sign_in

from engine.domain.yamlio import load_yaml
from engine.entry.importer import import_bids
from engine.entry.replay import setup
from quorum_web.app import create_app

OFFICER = "officer@quorum.example"


@pytest.fixture
def client(q, sqlite_url, clock):
    from engine.entry.cli import DATA

    setup(q, load_yaml((DATA / "demo.yaml").read_text()))
    import_bids(q, DATA / "bids-2011-04.csv", OFFICER, pot="Projects")
    set_passwords(q, OFFICER)
    with TestClient(create_app(sqlite_url, scheduler=False, clock=clock)) as c:
        c.token = api_token(q, OFFICER)
        yield c


def test_bids_page_lists_bids_once_signed_in(client: TestClient) -> None:
    assert client.get("/bids", follow_redirects=False).status_code == 303
    assert sign_in(client, OFFICER).status_code == 303
    page = client.get("/bids")
    assert page.status_code == 200
    assert "Bids (26, £2,103,290 requested)" in page.text
    assert "Leisure Management Bookings" in page.text
    assert page.text.count("unreadable") == 0  # every savings form in the table is read
    assert "Olivia Officer" in page.text  # the signed-in user, in the layout


def test_api_lists_bids_and_pots(client: TestClient) -> None:
    auth = bearer(client.token)
    bids = client.get("/api/v1/bids", headers=auth).json()
    assert len(bids) == 26
    one = client.get("/api/v1/bids/B-0003", headers=auth).json()
    assert one["title"] == "EM Public Sector Network"
    assert one["savings"]["basis"] == "per_annum"
    pots = {p["name"]: p for p in client.get("/api/v1/pots", headers=auth).json()}
    assert pots["Governance"]["available_pence"] == 5_000_000
    missing = client.get("/api/v1/bids/NOPE", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "no bid 'NOPE'",
        "field": "ref",
        "item": "NOPE",
    }
    assert client.get("/api/v1/audit/verify", headers=auth).json()["ok"] is True
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/bids").status_code == 401  # no token, no session
