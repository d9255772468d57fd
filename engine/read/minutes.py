"""The minutes' parts that record a meeting as it ran (issue 12, docs/meetings.md):
attendance (members present with their council, the chair, substitutes "for"
the member they replaced, observers, apologies), each decision's votes as the
minutes word them ("carried by 5 to 2", who voted how, the casting vote, the
standing order) and where a referral comes back, and the reports the meeting
required for the next one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.read.agenda import meeting_agenda, next_meeting, report_items
from engine.store.models import (
    Decision,
    Meeting,
    MeetingMember,
    MeetingObserver,
    Organisation,
    Person,
    ReportItem,
)

MEETING_T = Meeting.__table__
MEMBER_T = MeetingMember.__table__
OBSERVER_T = MeetingObserver.__table__
PERSON_T = Person.__table__
ORG_T = Organisation.__table__
DECISION_T = Decision.__table__
REPORT_T = ReportItem.__table__


def _people(conn: Session | Connection) -> dict[int, dict[str, str]]:
    return {
        p.id: {"name": p.name, "council": p.council or ""}
        for p in conn.execute(
            select(PERSON_T.c.id, PERSON_T.c.name, ORG_T.c.name.label("council"))
            .outerjoin(ORG_T, ORG_T.c.id == PERSON_T.c.organisation_id)
        )
    }


def attendance(conn: Session | Connection, m: Any) -> dict[str, Any]:
    """Who attended ``m`` (a meeting row) and how, each person with their council."""
    people = _people(conn)
    present, substitutes, apologies = [], [], []
    for r in conn.execute(select(MEMBER_T).where(MEMBER_T.c.meeting_id == m.id)):
        who = people[r.person_id]
        if r.present:
            present.append({**who, "chair": r.person_id == m.chair_id})
        if r.substitute_id is not None:
            substitutes.append({**people[r.substitute_id], "for": who["name"],
                                "chair": r.substitute_id == m.chair_id})
        if r.apologies:
            apologies.append({**who, "substitute": (people[r.substitute_id]["name"]
                                                    if r.substitute_id is not None else "")})
    observers = [
        {"name": o.name, "council": people[o.person_id]["council"] if o.person_id else ""}
        for o in conn.execute(select(OBSERVER_T).where(OBSERVER_T.c.meeting_id == m.id)
                              .order_by(OBSERVER_T.c.id))
    ]

    def by_name(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda r: (not r.get("chair"), r["name"]))

    return {
        "chair": people[m.chair_id]["name"] if m.chair_id is not None else "",
        "present": by_name(present), "substitutes": by_name(substitutes),
        "apologies": by_name(apologies), "observers": observers,
        "counted": len(present) + len(substitutes),
    }


def vote_words(d: Any, chair: str = "") -> str:
    """How the minutes word a decision's vote: "carried by 5 to 2, 1 abstaining";
    "3 to 3, carried on the Chair's casting vote (Cllr X)"; '' without a vote."""
    if d.votes_for is None:
        return ""
    abstain = f", {d.votes_abstain} abstaining" if d.votes_abstain else ""
    if d.casting:
        who = f" ({chair})" if chair else ""
        return (f"{d.votes_for} to {d.votes_against}{abstain}, carried on the Chair's "
                f"casting vote{who}")
    return f"carried by {d.votes_for} to {d.votes_against}{abstain}"


def decision_notes(conn: Session | Connection, m: Any, chair: str = "") -> dict[str, Any]:
    """Per decision ref at ``m``: the vote in words, the votes by name, the standing
    order applied, the meeting a referral back comes to (its title and date) and
    an approval's conditions."""
    meetings = {r.id: r for r in conn.execute(
        select(MEETING_T.c.id, MEETING_T.c.ref, MEETING_T.c.title, MEETING_T.c.held_on))}
    out: dict[str, Any] = {}
    for d in conn.execute(select(DECISION_T).where(DECISION_T.c.meeting_id == m.id)):
        to = meetings.get(d.to_meeting_id) if d.to_meeting_id is not None else None
        out[d.ref] = {
            "vote": vote_words(d, chair),
            "named": {side: list((d.named_votes or {}).get(side) or [])
                      for side in ("for", "against", "abstain")
                      if (d.named_votes or {}).get(side)},
            "standing_order": d.standing_order,
            "to_meeting": (f"{to.title} ({to.held_on.isoformat()})" if to is not None else ""),
            "conditions": [c["text"] + ("" if c.get("before_payment", True)
                                        else " (during delivery)")
                           for c in d.conditions or []],
        }
    return out


def required_reports(conn: Session | Connection, m: Any) -> list[dict[str, Any]]:
    """The reports ``m`` required for a later meeting: "Reports required for the next
    meeting", each with its ref, title, who presents it and the meeting it is for."""
    meetings = {r.id: r for r in conn.execute(
        select(MEETING_T.c.id, MEETING_T.c.title, MEETING_T.c.held_on))}
    out = []
    for r in conn.execute(
        select(REPORT_T).where(REPORT_T.c.raised_at_id == m.id, REPORT_T.c.required)
        .order_by(REPORT_T.c.number)
    ):
        to = meetings.get(r.meeting_id) if r.meeting_id is not None else None
        if to is None:  # none named: the next meeting of the programme, once scheduled
            found = next_meeting(conn, m.programme_id, m, scheduled_only=False)
            to = meetings.get(found.id) if found is not None else None
        out.append({"ref": f"{m.ref}/R{r.number}", "title": r.title, "presenter": r.presenter,
                    "for": (f"{to.title} ({to.held_on.isoformat()})" if to is not None
                            else "the next meeting")})
    return out


def minutes_parts(conn: Session | Connection, meeting_ref: str) -> dict[str, Any]:
    """The minutes paper's context added by issue 12 (see the module's docstring)."""
    m = conn.execute(select(MEETING_T).where(MEETING_T.c.ref == meeting_ref)).first()
    if m is None:
        return {}
    seen = attendance(conn, m)
    on_agenda = meeting_agenda(conn, m)
    received = report_items(conn, on_agenda)
    return {"attendance": seen, "decision_notes": decision_notes(conn, m, seen["chair"]),
            "reports_received": [received[r] for r in on_agenda if r in received],
            "required_reports": required_reports(conn, m)}
