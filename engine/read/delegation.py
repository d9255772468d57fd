"""Delegated decisions, read side: the "Delegated decisions" board paper
(:func:`delegated_report`), the items list (:func:`delegated_items`), the
decisions to report to a meeting (:func:`unreported_delegated`) and the
scheme a request was made under (:func:`stored_scheme`).

The commands are engine/commands/handlers/delegation.py; they read through
this module, never the reverse.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from engine.domain.clock import local_date
from engine.domain.errors import NotFound
from engine.domain.words import date_words
from engine.read import shapes
from engine.read.conditions import stored_condition_words
from engine.store.models import (
    Bid,
    DelegatedDecision,
    Grant,
    Interest,
    Meeting,
    Organisation,
    Person,
    PersonRole,
    Pot,
    Programme,
    RuleSetVersion,
    Signature,
)
from rules.delegation import Scheme, load_scheme, scheme_from_body
from workflows.delegated import DECIDED

DD_T = DelegatedDecision.__table__
RSV_T = RuleSetVersion.__table__
PERSON_T = Person.__table__
MEETING_T = Meeting.__table__
APPROVED = ("approved", "endorsed")


def stored_scheme(conn: Connection, rule_set_version_id: int | None, route: str = "") -> Scheme:
    """The scheme (and route: "" for the file's default) a request was made under,
    from its stored copy."""
    if rule_set_version_id is None:
        return load_scheme(None, route or None)
    row = conn.execute(
        select(RSV_T.c.name, RSV_T.c.version, RSV_T.c.body).where(
            RSV_T.c.id == rule_set_version_id
        )
    ).one()
    return scheme_from_body(row.body, f"{row.name} {row.version} (as stored)", route or None)


def unreported_delegated(conn: Connection, programme_id: int) -> list[str]:
    """Refs of the programme's delegated decisions to report to its next meeting:
    decided (approved or declined) and not yet reported at a meeting."""
    pot = Pot.__table__
    return list(
        conn.execute(
            select(DD_T.c.ref)
            .join(pot, pot.c.id == DD_T.c.pot_id)
            .where(
                pot.c.programme_id == programme_id,
                DD_T.c.state.in_(DECIDED),
                DD_T.c.reported_meeting_id.is_(None),
            )
            .order_by(DD_T.c.decided_on, DD_T.c.id)
        ).scalars()
    )


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def delegated_items(conn: Connection, where: Any = None) -> list[shapes.DelegatedDecision]:
    """Delegated decisions as items of kind ``delegated_decision``, with their
    signatures (for ``--json``, the paper and the REST API)."""
    people: dict[int, str] = {}
    emails: dict[int, str] = {}
    for p in conn.execute(select(PERSON_T.c.id, PERSON_T.c.name, PERSON_T.c.email)):
        people[p.id], emails[p.id] = p.name, p.email
    roles: dict[int, set[str]] = {}
    role_t = PersonRole.__table__
    for r in conn.execute(select(role_t.c.person_id, role_t.c.role)):
        roles.setdefault(r.person_id, set()).add(r.role)
    meetings: dict[int, str] = {
        m.id: m.ref for m in conn.execute(select(MEETING_T.c.id, MEETING_T.c.ref))
    }
    pot_t, bid_t, org_t = Pot.__table__, Bid.__table__, Organisation.__table__
    q = (
        select(
            DD_T,
            pot_t.c.name.label("pot_name"),
            Programme.__table__.c.name.label("programme"),
            bid_t.c.ref.label("bid_ref"),
            org_t.c.name.label("sponsor"),
            RuleSetVersion.__table__.c.name.label("scheme_name"),
            RuleSetVersion.__table__.c.version.label("scheme_version"),
            Grant.__table__.c.ref.label("grant_ref"),
        )
        .join(pot_t, pot_t.c.id == DD_T.c.pot_id)
        .join(Programme.__table__, Programme.__table__.c.id == pot_t.c.programme_id)
        .outerjoin(bid_t, bid_t.c.id == DD_T.c.bid_id)
        .outerjoin(org_t, org_t.c.id == bid_t.c.sponsor_id)
        .outerjoin(
            RuleSetVersion.__table__, RuleSetVersion.__table__.c.id == DD_T.c.rule_set_version_id
        )
        .outerjoin(Grant.__table__, Grant.__table__.c.delegated_decision_id == DD_T.c.id)
        .order_by(DD_T.c.id)
    )
    if where is not None:
        q = q.where(where)
    rows = conn.execute(q).all()
    sigs: dict[int, list[shapes.SignatureLine]] = {}
    schemes: dict[tuple[int | None, str], Scheme] = {}

    def scheme_of(dd: Any) -> Scheme:
        key = (dd.rule_set_version_id, dd.scheme_route)
        if key not in schemes:
            schemes[key] = stored_scheme(conn, dd.rule_set_version_id, dd.scheme_route)
        return schemes[key]

    interests: dict[str, list[shapes.InterestLine]] = {}
    if rows:
        refs = [r.ref for r in rows] + [r.bid_ref for r in rows if r.bid_ref]
        interest_t = Interest.__table__
        for i in conn.execute(
            select(interest_t).where(interest_t.c.item_ref.in_(refs)).order_by(interest_t.c.id)
        ):
            interests.setdefault(i.item_ref, []).append(
                {
                    "name": people.get(i.person_id, str(i.person_id)),
                    "nature": i.nature,
                    "declared_on": i.declared_on.isoformat(),
                    "item": i.item_ref,
                }
            )
        signature_t = Signature.__table__
        for s in conn.execute(
            select(signature_t)
            .where(signature_t.c.delegated_decision_id.in_([r.id for r in rows]))
            .order_by(signature_t.c.id)
        ):
            dd = next(r for r in rows if r.id == s.delegated_decision_id)
            scheme = scheme_of(dd)
            counted = scheme.counts(emails.get(s.person_id, ""), roles.get(s.person_id, ()))
            sigs.setdefault(s.delegated_decision_id, []).append(
                {
                    "name": people.get(s.person_id, str(s.person_id)),
                    "role": scheme.label_of(counted),
                    "decision": s.decision,
                    "interest_declared": s.interest_declared,
                    "reason": s.reason,
                    "signed_at": s.signed_at.isoformat(),
                    "signed_on": local_date(s.signed_at).isoformat(),
                }
            )
    out: list[shapes.DelegatedDecision] = []
    for r in rows:
        out.append(
            {
                "ref": r.ref,
                "kind": "delegated_decision",
                "title": r.title,
                "state": r.state,
                "version": r.version,
                "bid": r.bid_ref,
                "accountable_body": r.sponsor,
                "programme": r.programme,
                "pot": r.pot_name,
                "amount_pence": r.amount_pence,
                "pot_balance_pence": r.pot_balance_pence,
                "reasons": r.reasons,
                "alternatives": r.alternatives,
                "scheme": f"{r.scheme_name} {r.scheme_version}" if r.scheme_name else None,
                "route": r.scheme_route,
                "requires": scheme_of(r).describe(),
                "requested_by": people.get(r.requested_by_id),
                "requested_on": _iso(r.requested_on),
                "expires_on": _iso(r.expires_on),
                "decided_on": _iso(r.decided_on),
                "grant": r.grant_ref,
                "reported_at": meetings.get(r.reported_meeting_id),
                "endorsed_on": _iso(r.endorsed_on),
                "signatures": sigs.get(r.id, []),
                "interests": interests.get(r.ref, []) + interests.get(r.bid_ref or "", []),
                "conditions": stored_condition_words(r.conditions),
            }
        )
    return out


def delegated_report(conn: Connection, meeting_ref: str) -> dict[str, Any]:
    """The "Delegated decisions – <period>" paper for a meeting: every delegated
    decision of its programme decided (approved or declined) by the meeting's
    date and not reported at an earlier meeting, or reported at this one.
    The period runs from the day after the programme's previous meeting (or
    from the first such decision, if there was none) to this meeting's date."""
    m = conn.execute(select(MEETING_T).where(MEETING_T.c.ref == meeting_ref)).first()
    if m is None:
        raise NotFound(f"paper delegated: no meeting {meeting_ref!r}", field="meeting")
    previous = conn.execute(
        select(func.max(MEETING_T.c.held_on)).where(
            MEETING_T.c.programme_id == m.programme_id, MEETING_T.c.held_on < m.held_on
        )
    ).scalar()
    pot_t = Pot.__table__
    pot_ids = select(pot_t.c.id).where(pot_t.c.programme_id == m.programme_id)
    reported_here = DD_T.c.reported_meeting_id == m.id
    unreported = (
        DD_T.c.reported_meeting_id.is_(None)
        & DD_T.c.state.in_((*DECIDED, "endorsed"))
        & (DD_T.c.decided_on <= m.held_on)
    )
    items = delegated_items(conn, DD_T.c.pot_id.in_(pot_ids) & (reported_here | unreported))
    items.sort(key=lambda d: (d["decided_on"] or "", d["ref"]))
    start = previous + dt.timedelta(days=1) if previous else None
    first_decided = items[0]["decided_on"] if items else None  # each one here is decided
    if start is None and first_decided is not None:
        start = dt.date.fromisoformat(first_decided)
    label = (
        f"{date_words(start)} to {date_words(m.held_on)}"
        if start
        else f"up to {date_words(m.held_on)}"
    )
    approved = [d for d in items if d["state"] in APPROVED]
    declined = [d for d in items if d["state"] == "declined"]
    by_pot: dict[str, int] = {}
    for d in approved:
        by_pot[d["pot"]] = by_pot.get(d["pot"], 0) + d["amount_pence"]
    return {
        "meeting": {
            "ref": m.ref,
            "title": m.title,
            "date": m.held_on.isoformat(),
            "long_date": date_words(m.held_on),
        },
        "period": {
            "from": start.isoformat() if start else None,
            "to": m.held_on.isoformat(),
            "label": label,
        },
        "decisions": items,
        "totals": {
            "count": len(items),
            "approved_count": len(approved),
            "approved_pence": sum(d["amount_pence"] for d in approved),
            "declined_count": len(declined),
            "declined_pence": sum(d["amount_pence"] for d in declined),
            "by_pot": [{"pot": k, "approved_pence": v} for k, v in sorted(by_pot.items())],
        },
    }
