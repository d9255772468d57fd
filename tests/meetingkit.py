"""Helpers for the meeting pages' tests: a decision taken as a browser takes it,
from the item's page through the confirmation to POST /do/decide."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from webkit import csrf_of

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
