"""The risk register as pages and papers read it (docs/risks.md).

- :func:`register`: every risk (of one programme, or all), numbered, with its
  reviews at meetings, oldest first;
- :func:`above_threshold`: open risks whose residual score is above their
  programme's threshold (officers' My work, engine/read/work.py);
- :func:`risks_for_meeting`: the risks to bring to a meeting — open risks of
  its programme above the threshold, or whose review date falls on or before
  the meeting — each with why (the lead wires this into the agenda);
- :func:`reviews_at_meeting`: the reviews recorded at a meeting (for its minutes);
- :func:`risk_paper`: the "Risk analysis" board paper's context;
- :func:`risk_history`: one risk's reviews and audited changes.

Cost: one query for the risks and one for their reviews, whatever their number.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.read.shapes import Risk as RiskRow
from engine.read.shapes import RiskReview as RiskReviewRow
from engine.store import audit
from engine.store.models import Grant, Meeting, Programme, Risk, RiskReview

Reader = Session | Connection

RISK_T = Risk.__table__
REVIEW_T = RiskReview.__table__
PROG_T = Programme.__table__
GRANT_T = Grant.__table__
MEET_T = Meeting.__table__


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _reviews(conn: Reader, risk_ids: list[int]) -> dict[int, list[RiskReviewRow]]:
    out: dict[int, list[RiskReviewRow]] = defaultdict(list)
    if not risk_ids:
        return out
    for r in conn.execute(
        select(REVIEW_T, MEET_T.c.ref.label("meeting"), MEET_T.c.title)
        .join(MEET_T, MEET_T.c.id == REVIEW_T.c.meeting_id)
        .where(REVIEW_T.c.risk_id.in_(risk_ids))
        .order_by(REVIEW_T.c.reviewed_on, REVIEW_T.c.id)
    ):
        out[r.risk_id].append({
            "meeting": r.meeting, "meeting_title": r.title,
            "reviewed_on": r.reviewed_on.isoformat(), "outcome": r.outcome,
            "residual_before": r.residual_before, "residual_after": r.residual_after,
            "note": r.note, "next_review_on": _iso(r.next_review_on),
        })
    return out


def register(conn: Reader, *where: Any) -> list[RiskRow]:
    """The risks (``where``: extra conditions on the risk table), by programme and number."""
    rows = conn.execute(
        select(RISK_T, PROG_T.c.name.label("programme"), PROG_T.c.risk_threshold,
               GRANT_T.c.ref.label("grant"))
        .join(PROG_T, PROG_T.c.id == RISK_T.c.programme_id)
        .outerjoin(GRANT_T, GRANT_T.c.id == RISK_T.c.grant_id)
        .where(*where)
        .order_by(PROG_T.c.name, RISK_T.c.number)
    ).all()
    reviews = _reviews(conn, [r.id for r in rows])
    return [
        {
            "ref": r.ref, "number": r.number, "programme": r.programme, "grant": r.grant,
            "description": r.description, "inherent": r.inherent_score,
            "inherent_detail": r.inherent_detail, "owner": r.owner, "owner_kind": r.owner_kind,
            "solution": r.solution, "controls": r.controls, "residual": r.residual_score,
            "residual_detail": r.residual_detail, "indicators": r.indicators,
            "review_on": _iso(r.review_on), "state": r.state,
            "recorded_on": r.recorded_on.isoformat(), "closed_on": _iso(r.closed_on),
            "threshold": r.risk_threshold,
            "above_threshold": r.state == "open" and r.risk_threshold is not None
            and r.residual_score > r.risk_threshold,
            "version": r.version, "reviews": reviews.get(r.id, []),
        }
        for r in rows
    ]


def above_threshold(conn: Reader) -> list[RiskRow]:
    """Open risks whose residual score is above their programme's threshold."""
    return register(conn, RISK_T.c.state == "open", PROG_T.c.risk_threshold.is_not(None),
                    RISK_T.c.residual_score > PROG_T.c.risk_threshold)


def _meeting(conn: Reader, meeting_ref: str, what: str) -> Any:
    m = conn.execute(select(MEET_T).where(MEET_T.c.ref == meeting_ref)).first()
    if m is None:
        raise NotFound(f"{what}: no meeting {meeting_ref!r}", field="meeting")
    return m


def risks_for_meeting(conn: Reader, meeting_ref: str) -> list[dict[str, Any]]:
    """The risks to bring to ``meeting_ref``: open risks of its programme whose
    residual score is above the threshold, or whose review date is on or before
    the meeting, and not yet reviewed at it. Each: the register's row plus
    ``why`` (a list of reasons, as the agenda shows them)."""
    m = _meeting(conn, meeting_ref, "risks for a meeting")
    threshold = conn.execute(
        select(PROG_T.c.risk_threshold).where(PROG_T.c.id == m.programme_id)).scalar()
    out = []
    for r in register(conn, RISK_T.c.programme_id == m.programme_id, RISK_T.c.state == "open"):
        if any(v["meeting"] == m.ref for v in r["reviews"]):
            continue
        why = []
        if threshold is not None and r["residual"] > threshold:
            why.append(f"residual score {r['residual']} is above the threshold ({threshold})")
        if r["review_on"] is not None and r["review_on"] <= m.held_on.isoformat():
            why.append(f"review due {r['review_on']}")
        if why:
            out.append({**r, "why": why})
    return out


def reviews_at_meeting(conn: Reader, meeting_ref: str) -> list[dict[str, Any]]:
    """The risks reviewed at ``meeting_ref``, by number, each with the review (its
    outcome, residual before and after, note): for the meeting's minutes."""
    m = _meeting(conn, meeting_ref, "risk reviews")
    return [
        {"ref": r["ref"], "number": r["number"], "description": r["description"], **v}
        for r in register(conn, RISK_T.c.programme_id == m.programme_id)
        for v in r["reviews"] if v["meeting"] == m.ref
    ]


def risk_paper(conn: Reader, meeting_ref: str) -> dict[str, Any]:
    """The "Risk analysis" paper for a meeting: the programme's register as it
    stands (open risks, then those closed), the risks to review at this meeting
    and what was reviewed at it."""
    m = _meeting(conn, meeting_ref, "paper risks")
    prog = conn.execute(select(PROG_T).where(PROG_T.c.id == m.programme_id)).one()
    risks = register(conn, RISK_T.c.programme_id == m.programme_id,
                     RISK_T.c.recorded_on <= m.held_on)
    reviewed = reviews_at_meeting(conn, meeting_ref)
    return {
        "meeting": {"ref": m.ref, "title": m.title, "date": m.held_on.isoformat()},
        "programme": prog.name,
        "scoring": prog.risk_scoring,
        "threshold": prog.risk_threshold,
        "open": [r for r in risks if r["state"] == "open"],
        "closed": [r for r in risks if r["state"] != "open"],
        "to_review": risks_for_meeting(conn, meeting_ref),
        "reviewed": reviewed,
    }


def risk_history(session: Session, ref: str) -> list[dict[str, Any]]:
    """One risk's audited changes, oldest first: each with its command, who, when,
    the reason and the fields before and after (reviews are among them)."""
    out = []
    for e in audit.history(session, ref):
        before, after = json.loads(e.before), json.loads(e.after)
        out.append({
            "seq": e.seq, "at": e.at, "actor": e.actor, "command": e.command,
            "reason": e.reason,
            "changes": [{"field": k, "before": before.get(k), "after": after.get(k)}
                        for k in sorted(set(before) | set(after))
                        if before.get(k) != after.get(k)],
        })
    return out


__all__ = ["above_threshold", "register", "reviews_at_meeting", "risk_history", "risk_paper",
           "risks_for_meeting"]
