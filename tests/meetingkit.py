"""Helpers for the meeting pages' tests: a decision taken as a browser takes it,
from the item's page through the confirmation to POST /do/decide."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Connection
from webkit import csrf_of

from engine.read.agenda import agenda_page, agenda_position
from engine.store.models import Bid, Meeting

HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def confirm_page(client: TestClient, meeting: str, n: int, **fields: str):
    """POST the item's decide form (nothing is recorded): the confirmation page."""
    page = f"/meetings/{meeting}/items/{n}"
    data = {"csrf_token": csrf_of(client, page), "_form": "decide", **fields}
    return client.post(f"{page}/confirm", data=data, follow_redirects=False)


def confirm(client: TestClient, confirmation) -> object:  # noqa: ANN001
    """Press "Confirm the decision" on a confirmation page: its hidden fields as sent."""
    form = confirmation.text.split('data-form="confirm"', 1)[1].split("</form>", 1)[0]
    data = {k: html.unescape(v) for k, v in HIDDEN_RE.findall(form)}
    return client.post("/do/decide", data=data, follow_redirects=False)


def decide_on_page(client: TestClient, meeting: str, n: int, **fields: str):
    shown = confirm_page(client, meeting, n, **fields)
    assert shown.status_code == 200 and 'data-form="confirm"' in shown.text, shown.text[:2000]
    return confirm(client, shown)


def assert_pages_agree(conn: Connection, meeting: str, whole: list[str]) -> None:
    """Every page of ``meeting``'s agenda (each window, past the end too) and every
    item's place, read without reading the agenda whole (engine/read/agenda.py
    agenda_page, agenda_position), are what the whole agenda says; a bid not on
    it has no place."""
    row = conn.execute(select(Meeting.__table__).where(Meeting.ref == meeting)).one()
    n = len(whole)
    for start in range(n + 2):
        for stop in range(start, n + 2):
            page = agenda_page(conn, row, slice(start, stop))
            assert (page.size, page.start, page.refs) == (n, min(start, n), whole[start:stop]), \
                (meeting, start, stop)
    for i, ref in enumerate(whole):
        assert agenda_position(conn, row, ref) == i, (meeting, ref)
    for ref in conn.execute(select(Bid.ref)).scalars():
        if ref not in whole:
            assert agenda_position(conn, row, ref) is None, (meeting, ref)
