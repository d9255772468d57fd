"""The public register of decisions, served without sign-in (issue 16, item 3;
docs/publishing.md): every decision of the Board and under the scheme of
delegation with what a decision record must show, the grants awarded, each
meeting's papers once published, and an Atom feed of new decisions.

Read-only and built only from engine/read/register.py, which holds no email
address and no sponsor's evidence; a paper not yet published, or a decision
that does not exist, is the same 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from feedgen.feed import FeedGenerator

from engine.domain.errors import NotFound
from engine.read import register
from engine.settings import get_settings
from quorum_web import pages
from quorum_web.pages_board import paper_response

router = APIRouter(include_in_schema=False)
FEED_SIZE = 50


def _engine(request: Request) -> Any:
    return request.app.state.engine


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request) -> HTMLResponse:
    today = request.app.state.clock.today()
    with _engine(request).connect() as conn:
        decisions = register.decisions(conn)
        meetings = register.meetings(conn, today)
        grants = register.grants_awarded(conn)
    titles = {name: title for name, title, _ in register.PUBLIC_PAPERS}
    return pages.render(
        request,
        "public/register.html",
        {"decisions": decisions, "meetings": meetings, "grants": grants, "paper_titles": titles},
    )


@router.get("/register/decisions/{ref}", response_class=HTMLResponse)
def register_decision(request: Request, ref: str) -> HTMLResponse:
    with _engine(request).connect() as conn:
        found = register.decision(conn, ref)
    if found is None:
        raise NotFound(f"no decision {ref!r} on the register", field="ref", item=ref)
    return pages.render(request, "public/decision.html", {"d": found})


@router.get("/register/meetings/{ref}/{name}.{fmt}")
def register_paper(request: Request, ref: str, name: str, fmt: str) -> Response:
    with _engine(request).connect() as conn:
        public = register.published_paper(conn, ref, name, request.app.state.clock.today())
    if not public:
        raise NotFound(f"no published paper {name!r} for meeting {ref!r}", field="paper", item=ref)
    return paper_response(request, name, ref, fmt)


@router.get("/register/feed.atom")
def register_feed(request: Request) -> Response:
    """New decisions as an Atom feed, newest first."""
    base = get_settings().base_url.rstrip("/")
    with _engine(request).connect() as conn:
        decisions = register.decisions(conn)[:FEED_SIZE]
    feed = FeedGenerator()
    feed.id(f"{base}/register")
    feed.title("Decisions: the public register")
    feed.link(href=f"{base}/register", rel="alternate")
    feed.link(href=f"{base}/register/feed.atom", rel="self")
    feed.language("en-GB")
    newest = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    for d in reversed(decisions):  # feedgen puts the last added first
        when = dt.datetime.combine(dt.date.fromisoformat(d["date"]), dt.time(), dt.UTC)
        newest = max(newest, when)
        entry = feed.add_entry()
        entry.id(f"{base}/register/decisions/{d['ref']}")
        entry.title(f"{d['decision']}: {d['title']}")
        entry.link(href=f"{base}/register/decisions/{d['ref']}")
        entry.updated(when)
        entry.published(when)
        entry.summary(f"{d['taken_by']}. {d['reasons']}".strip())
    feed.updated(newest)
    return Response(feed.atom_str(pretty=True), media_type="application/atom+xml")
