"""The public register of decisions (issue 16, item 3; docs/publishing.md).

What a council's record of a decision must show, for every decision of the
Board at a meeting and every decision taken under the scheme of delegation:
the date, the decision, the reasons, the alternatives considered and
rejected, the interests declared (and any dispensation), and who decided;
with the grants awarded and each meeting's published papers. Served without
sign-in (quorum_web/pages_public.py), so it holds nothing a sponsor's private
evidence or a person's email address would reveal: names of the decision
makers and of the organisations funded, amounts, and the decisions' own words.

A meeting's papers are public from the day an officer publishes them
(``publish_papers``), which should be at least the programme's
``papers_clear_days`` clear working days before the meeting
(:func:`papers_deadline`); the minutes are public once the meeting closes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import aliased

from engine.domain.words import SIGNATURE_WORDS, long_date
from engine.read.money import Reader
from engine.read.shapes import (
    PublicDecision,
    PublicGrant,
    PublicInterest,
    PublicMeeting,
)
from engine.store.models import (
    Bid,
    Decision,
    DelegatedDecision,
    Grant,
    Interest,
    Meeting,
    MeetingMember,
    Organisation,
    Person,
    Pot,
    Programme,
    Signature,
)
from rules.returns import calendar

__all__ = [
    "PUBLIC_PAPERS",
    "decision",
    "decisions",
    "grants_awarded",
    "meetings",
    "papers_deadline",
    "published_paper",
]

DECISION_T = Decision.__table__
DD_T = DelegatedDecision.__table__
BID_T = Bid.__table__
GRANT_T = Grant.__table__
ORG_T = Organisation.__table__
PERSON_T = Person.__table__
MEETING_T = Meeting.__table__
MEMBER_T = MeetingMember.__table__
INTEREST_T = Interest.__table__
SIGNATURE_T = Signature.__table__
POT_T = Pot.__table__
PROGRAMME_T = Programme.__table__

# the papers a meeting publishes: (name, title, public once the meeting is closed only)
PUBLIC_PAPERS: list[tuple[str, str, bool]] = [
    ("agenda", "Agenda", False),
    ("delegated", "Delegated decisions", False),
    ("minutes", "Minutes", True),
]
OUTCOMES = {
    "approve": "Approved",
    "reject": "Rejected",
    "defer": "Deferred",
    "refer_back": "Referred back",
    "reversed": "Decision reversed",
}
DELEGATED_OUTCOMES = {
    "approved": "Approved under the scheme of delegation",
    "endorsed": "Approved under the scheme of delegation; endorsed by the Board",
    "declined": "Declined under the scheme of delegation",
    "revoked": "Approved under the scheme of delegation; since revoked",
}
NO_DISPENSATION = "none granted"


def papers_deadline(held_on: dt.date, clear_days: int) -> dt.date:
    """The last day a meeting's papers may be published to give ``clear_days`` clear
    working days before it (neither the day of publication nor the meeting's counts;
    weekends and English bank holidays do not)."""
    days = calendar("england")
    day, counted = held_on, 0
    while counted < clear_days:
        day -= dt.timedelta(days=1)
        if days.is_working_day(day):
            counted += 1
    return day - dt.timedelta(days=1)


def _interests(conn: Reader, refs: list[str]) -> dict[str, list[PublicInterest]]:
    out: dict[str, list[PublicInterest]] = defaultdict(list)
    if not refs:
        return out
    for i in conn.execute(
        select(INTEREST_T.c.item_ref, INTEREST_T.c.nature, PERSON_T.c.name)
        .join(PERSON_T, PERSON_T.c.id == INTEREST_T.c.person_id)
        .where(INTEREST_T.c.item_ref.in_(refs))
        .order_by(INTEREST_T.c.id)
    ):
        out[i.item_ref].append(
            {"member": i.name, "nature": i.nature, "dispensation": NO_DISPENSATION}
        )
    return out


def _once(found: list[PublicInterest]) -> list[PublicInterest]:
    """Each member's declaration once (made on a signature and recorded as an interest)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for i in found:
        if (i["member"], i["nature"]) not in seen:
            seen.add((i["member"], i["nature"]))
            out.append(i)
    return out


def _board_decisions(conn: Reader) -> list[PublicDecision]:
    item = aliased(BID_T, name="item")
    rows = conn.execute(
        select(
            DECISION_T,
            MEETING_T.c.ref.label("meeting_ref"),
            MEETING_T.c.title.label("meeting_title"),
            MEETING_T.c.held_on,
            item.c.title.label("item_title"),
            ORG_T.c.name.label("organisation"),
        )
        .join(MEETING_T, MEETING_T.c.id == DECISION_T.c.meeting_id)
        .outerjoin(item, item.c.ref == DECISION_T.c.item_ref)
        .outerjoin(ORG_T, ORG_T.c.id == item.c.sponsor_id)
        .where(DECISION_T.c.meeting_id.is_not(None))
        .order_by(DECISION_T.c.id)
    ).all()
    present: dict[int, list[str]] = defaultdict(list)
    for m in conn.execute(
        select(MEMBER_T.c.meeting_id, PERSON_T.c.name)
        .join(PERSON_T, PERSON_T.c.id == MEMBER_T.c.person_id)
        .where(MEMBER_T.c.present.is_(True))
        .order_by(PERSON_T.c.name)
    ):
        present[m.meeting_id].append(m.name)
    interests = _interests(conn, [r.item_ref for r in rows])
    out: list[PublicDecision] = []
    for r in rows:
        votes = None
        if r.votes_for is not None:
            votes = f"{r.votes_for} for, {r.votes_against or 0} against" + (
                f", {r.votes_abstain} abstaining" if r.votes_abstain else ""
            )
        names = present.get(r.meeting_id, [])
        out.append(
            {
                "ref": r.ref,
                "date": r.decided_on.isoformat(),
                "taken_by": f"{r.meeting_title}, {long_date(r.held_on)}",
                "deciders": (
                    "The Board" + (f" (members present: {', '.join(names)})" if names else "")
                ),
                "meeting": r.meeting_ref,
                "item": r.item_ref,
                "title": r.item_title or r.item_ref,
                "organisation": r.organisation,
                "decision": OUTCOMES.get(r.outcome, r.outcome),
                "amount_pence": r.amount_pence,
                "reasons": r.reasons,
                "asked_for": r.missing,
                "alternatives": "",
                "votes": votes,
                "interests": interests.get(r.item_ref, []),
            }
        )
    return out


def _delegated_decisions(conn: Reader) -> list[PublicDecision]:
    item = aliased(BID_T, name="item")
    rows = conn.execute(
        select(
            DD_T,
            item.c.ref.label("item_ref"),
            item.c.title.label("item_title"),
            ORG_T.c.name.label("organisation"),
            POT_T.c.name.label("pot"),
        )
        .outerjoin(item, item.c.id == DD_T.c.bid_id)
        .outerjoin(ORG_T, ORG_T.c.id == item.c.sponsor_id)
        .join(POT_T, POT_T.c.id == DD_T.c.pot_id)
        .where(DD_T.c.state.in_(list(DELEGATED_OUTCOMES)))
        .order_by(DD_T.c.decided_on, DD_T.c.id)
    ).all()
    signed: dict[int, list[str]] = defaultdict(list)
    conflicted: dict[int, list[PublicInterest]] = defaultdict(list)
    ids = [r.id for r in rows]
    if ids:
        for s in conn.execute(
            select(SIGNATURE_T.c.delegated_decision_id, SIGNATURE_T.c.decision,
                   SIGNATURE_T.c.interest_declared, PERSON_T.c.name)
            .join(PERSON_T, PERSON_T.c.id == SIGNATURE_T.c.person_id)
            .where(SIGNATURE_T.c.delegated_decision_id.in_(ids))
            .order_by(SIGNATURE_T.c.signed_at, SIGNATURE_T.c.id)
        ):
            signed[s.delegated_decision_id].append(
                f"{s.name} ({SIGNATURE_WORDS.get(s.decision, s.decision)})")
            if s.interest_declared:
                conflicted[s.delegated_decision_id].append(
                    {"member": s.name, "nature": s.interest_declared,
                     "dispensation": NO_DISPENSATION}
                )
    interests = _interests(conn, [r.ref for r in rows] + [r.item_ref for r in rows if r.item_ref])
    out: list[PublicDecision] = []
    for r in rows:
        on = r.decided_on or r.requested_on
        names = signed.get(r.id, [])
        out.append(
            {
                "ref": r.ref,
                "date": on.isoformat(),
                "taken_by": "Under the scheme of delegation, between Board meetings",
                "deciders": "Signed by " + (", ".join(names) if names else "no one"),
                "meeting": None,
                "item": r.item_ref or r.ref,
                "title": r.title or r.item_title or r.ref,
                "organisation": r.organisation,
                "decision": DELEGATED_OUTCOMES[r.state],
                "amount_pence": r.amount_pence,
                "reasons": r.reasons,
                "asked_for": "",
                "alternatives": r.alternatives,
                "votes": None,
                "interests": _once(
                    [
                        *conflicted.get(r.id, []),
                        *interests.get(r.ref, []),
                        *(interests.get(r.item_ref, []) if r.item_ref else []),
                    ]
                ),
            }
        )
    return out


def decisions(conn: Reader) -> list[PublicDecision]:
    """Every decision, newest first."""
    found = _board_decisions(conn) + _delegated_decisions(conn)
    return sorted(found, key=lambda d: (d["date"], d["ref"]), reverse=True)


def decision(conn: Reader, ref: str) -> PublicDecision | None:
    return next((d for d in decisions(conn) if d["ref"] == ref), None)


def meetings(conn: Reader, today: dt.date) -> list[PublicMeeting]:
    """Every meeting with its papers as published (none before publication), newest first."""
    rows = conn.execute(
        select(MEETING_T, PROGRAMME_T.c.papers_clear_days)
        .join(PROGRAMME_T, PROGRAMME_T.c.id == MEETING_T.c.programme_id)
        .order_by(MEETING_T.c.held_on.desc(), MEETING_T.c.id.desc())
    ).all()
    out: list[PublicMeeting] = []
    for m in rows:
        published = m.papers_published_on is not None and m.papers_published_on <= today
        out.append(
            {
                "ref": m.ref,
                "title": m.title,
                "date": m.held_on.isoformat(),
                "state": m.state,
                "papers_published_on": (
                    m.papers_published_on.isoformat() if m.papers_published_on else None
                ),
                "papers_due_by": papers_deadline(m.held_on, m.papers_clear_days).isoformat(),
                "papers": [
                    name
                    for name, _, after_close in PUBLIC_PAPERS
                    if published and (m.state == "closed" or not after_close)
                ],
            }
        )
    return out


def published_paper(conn: Reader, meeting_ref: str, name: str, today: dt.date) -> bool:
    """Whether paper ``name`` of ``meeting_ref`` is public today."""
    return any(
        m["ref"] == meeting_ref and name in m["papers"] for m in meetings(conn, today)
    )


def grants_awarded(conn: Reader) -> list[PublicGrant]:
    """Every grant made (not cancelled), newest first."""
    return [
        {
            "ref": g.ref,
            "title": g.title,
            "recipient": g.recipient,
            "amount_pence": g.awarded_pence,
            "awarded_on": g.approved_on.isoformat(),
            "programme": g.programme,
            "state": g.state,
        }
        for g in conn.execute(
            select(GRANT_T.c.ref, GRANT_T.c.awarded_pence, GRANT_T.c.approved_on,
                   GRANT_T.c.state, BID_T.c.title, ORG_T.c.name.label("recipient"),
                   PROGRAMME_T.c.name.label("programme"))
            .join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
            .join(ORG_T, ORG_T.c.id == GRANT_T.c.accountable_body_id)
            .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id)
            .join(PROGRAMME_T, PROGRAMME_T.c.id == POT_T.c.programme_id)
            .where(GRANT_T.c.state != "cancelled")
            .order_by(GRANT_T.c.approved_on.desc(), GRANT_T.c.id.desc())
        )
    ]
