"""The contexts of the board papers (notifications/papers.py renders them):
one function per paper, shared by ``quorum paper`` and the web app."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.read import actions as views_actions
from engine.read import returns as views_returns
from engine.read import risks as views_risks
from engine.read import views
from engine.read.agenda import agenda_paper as meeting_agenda_paper
from engine.read.delegation import delegated_report
from engine.read.minutes import minutes_parts
from engine.read.partnership_money import partnership_paper
from engine.read.partnerships import advances_for_meeting
from engine.store.checkpoints import latest_checkpoint
from engine.store.models import Meeting

MEET_T = Meeting.__table__

PAPERS = ("bids", "agenda", "minutes", "delegated", "returns", "risks", "partnerships",
          "monitoring")


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


def agenda_paper(engine: Any, meeting_ref: str) -> dict:
    """A meeting's agenda, from scheduling: items awaiting a decision, then
    delegated decisions to report (engine.read.agenda), and the matters arising
    (open actions of earlier meetings, and those closed since)."""
    with engine.connect() as conn:
        return {
            **meeting_agenda_paper(conn, meeting_ref),
            "matters_arising": views_actions.matters_arising(conn, meeting_ref),
            # risks above the programme's threshold or due for review (issue 13)
            "risks_to_review": views_risks.risks_for_meeting(conn, meeting_ref),
            # and projects whose latest monitoring return is red (issue 13 item 6)
            "red_returns": _red_for_meeting(conn, meeting_ref),
        }


def _red_for_meeting(conn: Any, meeting_ref: str) -> list[dict]:
    m = conn.execute(select(MEET_T.c.held_on, MEET_T.c.programme_id)
                     .where(MEET_T.c.ref == meeting_ref)).first()
    return [] if m is None else views_returns.red_returns(conn, m.held_on, m.programme_id)


def minutes_paper(engine: Any, meeting_ref: str) -> dict:
    """A meeting's attendance, decisions (with votes), its numbered action list and
    the reports it required for the next meeting (engine.read.minutes)."""
    with Session(engine) as s:
        meeting = next((m for m in views.meetings(s) if m["ref"] == meeting_ref), None)
        titles = {b["ref"]: b["title"] for b in views.bids(s)}
    if meeting is None:
        raise NotFound(f"paper minutes: no meeting {meeting_ref!r}", field="meeting")
    with engine.connect() as conn:
        parts = minutes_parts(conn, meeting_ref)
        reviews = views_risks.reviews_at_meeting(conn, meeting_ref)
    return {"meeting": meeting, "titles": titles, **parts, "risk_reviews": reviews,
            **action_papers(engine, meeting_ref)}


def action_papers(engine: Any, meeting_ref: str) -> dict:
    """The action register's part of a meeting's papers: ``matters_arising``,
    the actions of earlier meetings it goes through (the meeting's own are in
    ``meeting.actions``)."""
    with engine.connect() as conn:
        return {"matters_arising": views_actions.matters_arising(conn, meeting_ref)}


def delegated_paper(engine: Any, meeting_ref: str) -> dict:
    with engine.connect() as conn:
        return delegated_report(conn, meeting_ref)


def returns_paper(engine: Any, meeting_ref: str) -> dict:
    """Late returns, and (issue 13) the advances paid since the last meeting."""
    with engine.connect() as conn:
        return {**views_returns.meeting_paper(conn, meeting_ref),
                "advances": advances_for_meeting(conn, meeting_ref)}


def risks_paper(engine: Any, meeting_ref: str) -> dict:
    """The "Risk analysis" paper: the programme's risk register as it stands at
    the meeting, the risks to review at it and the reviews recorded (issue 13)."""
    with engine.connect() as conn:
        return views_risks.risk_paper(conn, meeting_ref)


def partnerships_paper(engine: Any, meeting_ref: str) -> dict:
    """The "Partnership financial summary": per partnership allocation, committed,
    paid, savings delivered and anticipated, balance and projects carried forward,
    as of the meeting's date, with the ratified moves between pots (issue 13)."""
    with engine.connect() as conn:
        return partnership_paper(conn, meeting_ref)


def monitoring_paper(engine: Any, meeting_ref: str) -> dict:
    """"Late and red returns": overdue, needing revision and red returns by grant, with
    days late and the lines at risk, as of the meeting's date (issue 13 item 6)."""
    with engine.connect() as conn:
        return views_returns.late_and_red_paper(conn, meeting_ref)


def audit_footer(engine: Any) -> dict | None:
    """The latest signed checkpoint of the audit chain, for every paper's footer:
    its event count, short head hash and time (None before the first)."""
    with engine.connect() as conn:
        cp = latest_checkpoint(conn)
    if cp is None:
        return None
    return {"count": cp.count, "head": cp.short_head, "at": cp.at}


def paper_context(engine: Any, name: str, ref: str) -> dict:
    """Paper ``name``'s context, with the audit checkpoint for its footer."""
    builders = {
        "bids": bids_paper,
        "agenda": agenda_paper,
        "minutes": minutes_paper,
        "delegated": delegated_paper,
        "returns": returns_paper,
        "risks": risks_paper,
        "partnerships": partnerships_paper,
        "monitoring": monitoring_paper,
    }
    if name not in builders:
        raise NotFound(f"no paper {name!r}; papers are {', '.join(PAPERS)}", field="paper")
    return {**builders[name](engine, ref), "audit_checkpoint": audit_footer(engine)}
