"""The minimal web app over real HTTP handling (ASGI test client, real DB)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.importer import import_bids
from engine.replay import setup
from engine.yamlio import load_yaml
from quorum_web.app import create_app


@pytest.fixture
def client(q, sqlite_url):
    from engine.cli import DATA

    setup(q, load_yaml((DATA / "demo.yaml").read_text()))
    import_bids(q, DATA / "bids-2011-04.csv", "officer@quorum.example", pot="Projects")
    with TestClient(create_app(sqlite_url, scheduler=False)) as c:
        yield c


def test_home_page_lists_pots_and_bids(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Bids (26, £2,103,290 requested)" in page.text
    assert "Leisure Management Bookings" in page.text
    assert page.text.count("unreadable") == 0  # every savings form in the table is read


def test_api_lists_bids_and_pots(client: TestClient) -> None:
    bids = client.get("/api/v1/bids").json()
    assert len(bids) == 26
    one = client.get("/api/v1/bids/B-0003").json()
    assert one["title"] == "EM Public Sector Network"
    assert one["savings"]["basis"] == "per_annum"
    pots = {p["name"]: p for p in client.get("/api/v1/pots").json()}
    assert pots["Governance"]["available_pence"] == 5_000_000
    missing = client.get("/api/v1/bids/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    assert client.get("/api/v1/audit/verify").json()["ok"] is True
    assert client.get("/api/v1/openapi.json").status_code == 200
