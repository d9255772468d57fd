"""The contexts of the board papers (notifications/papers.py renders them):
one function per paper, shared by ``quorum paper`` and the web app."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.read import returns as views_returns
from engine.read import views
from engine.read.delegation import delegated_report

PAPERS = ("bids", "minutes", "delegated", "returns")


def bids_paper(engine: Any, round_ref: str) -> dict:
    """The ranked bid table with points, savings, recommendation and what remains."""
    with Session(engine) as s:
        rank = views.round_ranking(s, round_ref)
    overrides = [
        f"{b['ref']} {c['criterion']}: {c['override_reason']}"
        for b in rank["bids"]
        for c in b["criteria"]
        if c["override_reason"]
    ]
    return {"round": rank, "overrides": overrides}


def minutes_paper(engine: Any, meeting_ref: str) -> dict:
    """A meeting's decisions (with votes) and its numbered action list."""
    with Session(engine) as s:
        meeting = next((m for m in views.meetings(s) if m["ref"] == meeting_ref), None)
        titles = {b["ref"]: b["title"] for b in views.bids(s)}
    if meeting is None:
        raise NotFound(f"paper minutes: no meeting {meeting_ref!r}", field="meeting")
    return {"meeting": meeting, "titles": titles}


def delegated_paper(engine: Any, meeting_ref: str) -> dict:
    with engine.connect() as conn:
        return delegated_report(conn, meeting_ref)


def returns_paper(engine: Any, meeting_ref: str) -> dict:
    with engine.connect() as conn:
        return views_returns.meeting_paper(conn, meeting_ref)


def paper_context(engine: Any, name: str, ref: str) -> dict:
    builders = {
        "bids": bids_paper,
        "minutes": minutes_paper,
        "delegated": delegated_paper,
        "returns": returns_paper,
    }
    if name not in builders:
        raise NotFound(f"no paper {name!r}; papers are {', '.join(PAPERS)}", field="paper")
    return builders[name](engine, ref)
