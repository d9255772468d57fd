"""Offer letters, read side (issue 16): what a letter states (the terms of a
grant as they stand, for engine/commands/letters.py to render and store), who
the recipient is, a grant's letters for its page, and the letters awaiting an
answer for officers' My work. Letters are private: nothing here is published
(docs/publishing.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from engine.read.conditions import approval_conditions
from engine.read.repayments import repayment_schedule
from engine.store.models import (
    Bid,
    DelegatedDecision,
    Deposit,
    DepositShare,
    Grant,
    Milestone,
    OfferLetter,
    Organisation,
    OrgKind,
    Person,
    Pot,
    Programme,
)
from rules.returns import load_return_rules
from workflows.offer import OPEN

BID_T = Bid.__table__
DD_T = DelegatedDecision.__table__
DEPOSIT_T = Deposit.__table__
SHARE_T = DepositShare.__table__
GRANT_T = Grant.__table__
MS_T = Milestone.__table__
OFFER_T = OfferLetter.__table__
ORG_T = Organisation.__table__
PERSON_T = Person.__table__
POT_T = Pot.__table__
PROG_T = Programme.__table__

DEFAULT_TEMPLATE = "default"
CLAWBACK = (
    "If the savings this grant is for are not implemented, or the money is not spent on "
    "the purpose and milestones above, the Board may require the grant (all or part) to be "
    "refunded; money refunded or unspent returns to the programme's pot."
)


def letter_ref(grant_ref: str, version_no: int) -> str:
    """OFF-G-0001-1: a grant's letters are numbered from 1."""
    return f"OFF-{grant_ref}-{version_no}"


# built once (a statement made per call costs its construction and cache key each time)
_BODY = ORG_T.alias("body")
_RECIPIENT_COLUMNS = (
    ORG_T.c.id.label("org_id"), ORG_T.c.name.label("org_name"), ORG_T.c.kind.label("org_kind"),
    _BODY.c.id.label("body_id"), _BODY.c.name.label("body_name"),
)
_RECIPIENT = (
    select(*_RECIPIENT_COLUMNS)
    .select_from(GRANT_T)
    .join(ORG_T, GRANT_T.c.accountable_body_id == ORG_T.c.id)
    .outerjoin(_BODY, _BODY.c.id == ORG_T.c.accountable_body_id)
    .where(GRANT_T.c.id == bindparam("grant_id"))
)
# the grant as a letter states it, with its recipient (one read)
_TERMS = (
    select(GRANT_T, BID_T.c.ref.label("bid_ref"), BID_T.c.title, BID_T.c.kind.label("bid_kind"),
           BID_T.c.reasons, BID_T.c.savings_text, BID_T.c.savings_amount_pence,
           POT_T.c.name.label("pot"), PROG_T.c.name.label("programme"),
           DD_T.c.ref.label("dd_ref"), PROG_T.c.offer_template, *_RECIPIENT_COLUMNS)
    .join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
    .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id)
    .join(PROG_T, PROG_T.c.id == POT_T.c.programme_id)
    .outerjoin(DD_T, DD_T.c.id == GRANT_T.c.delegated_decision_id)
    .join(ORG_T, GRANT_T.c.accountable_body_id == ORG_T.c.id)
    .outerjoin(_BODY, _BODY.c.id == ORG_T.c.accountable_body_id)
    .where(GRANT_T.c.id == bindparam("grant_id"))
)
_MILESTONES = (
    select(MS_T).where(MS_T.c.grant_id == bindparam("grant_id"), MS_T.c.state != "cancelled")
    .order_by(MS_T.c.seq)
)
_DEPOSITS = (
    select(DEPOSIT_T).where(DEPOSIT_T.c.grant_id == bindparam("grant_id"))
    .order_by(DEPOSIT_T.c.id)
)
_SHARES = (
    select(SHARE_T.c.amount_pence, ORG_T.c.name)
    .join(ORG_T, ORG_T.c.id == SHARE_T.c.organisation_id)
    .where(SHARE_T.c.deposit_id == bindparam("deposit_id")).order_by(SHARE_T.c.id)
)


def _recipient_of(row: Any) -> tuple[int, str, str]:
    if row.org_kind == OrgKind.SUB_REGIONAL_PARTNERSHIP and row.body_id is not None:
        return int(row.body_id), row.body_name, row.org_name
    return int(row.org_id), row.org_name, row.org_name


def recipient(conn: Connection, grant_id: int) -> tuple[int, str, str]:
    """Who receives the offer and answers it: the grant's body, or for a
    partnership its accountable body (a partnership is not a legal body).
    (organisation id, its name, the grant's body's name)."""
    return _recipient_of(conn.execute(_RECIPIENT, {"grant_id": grant_id}).one())


def terms(conn: Connection, grant_id: int, today: dt.date) -> dict[str, Any]:
    """The offer as it stands: everything a letter states, in pence and ISO dates
    (the template writes the words). Deterministic: the same data gives the same
    letter, so its hash identifies it."""
    return template_and_terms(conn, grant_id, today)[1]


def template_and_terms(
    conn: Connection, grant_id: int, today: dt.date, made_now: bool = False
) -> tuple[str, dict[str, Any]]:
    """The programme's letter template name (the default when the programme names
    none) and :func:`terms`: the grant read once for both.
    ``made_now``: the grant was made in this transaction, so it has no deposits
    and no repayment instalments yet (not read)."""
    g = conn.execute(_TERMS, {"grant_id": grant_id}).one()
    recipient_id, recipient_name, body = _recipient_of(g)
    milestones = [
        {"seq": m.seq, "outcome": m.outcome, "due_on": m.due_on.isoformat(),
         "payment_pence": m.payment_pence}
        for m in conn.execute(_MILESTONES, {"grant_id": grant_id})
    ]
    schedule = load_return_rules().schedule_for(g.programme, g.ref)
    deposits = []
    for d in [] if made_now else conn.execute(_DEPOSITS, {"grant_id": grant_id}):
        shares = [
            {"partner": s.name, "amount_pence": s.amount_pence}
            for s in conn.execute(_SHARES, {"deposit_id": d.id})
        ]
        deposits.append({"ref": d.ref, "total_pence": d.total_pence, "basis": d.basis,
                         "target_pence": d.target_pence, "target_on": d.target_on.isoformat(),
                         "purpose": d.purpose, "shares": shares})
    purpose = g.reasons if g.bid_kind == "allocation" and g.reasons else g.title
    return g.offer_template or DEFAULT_TEMPLATE, {
        "grant": g.ref,
        "bid": g.bid_ref,
        "title": g.title,
        "purpose": purpose,
        "savings": g.savings_text,
        "programme": g.programme,
        "pot": g.pot,
        "amount_pence": g.awarded_pence,
        "approved_on": g.approved_on.isoformat(),
        "approved_by": g.dd_ref or "the Board",
        "ends_on": g.ends_on.isoformat() if g.ends_on else None,
        "recipient": recipient_name,
        "recipient_id": recipient_id,
        "body": body,
        "partnership": body != recipient_name,
        "milestones": milestones,
        "conditions": [{"seq": c["seq"], "text": c["text"], "when": c["when"]}
                       for c in approval_conditions(conn, grant_id)],
        "profile_pence": sum(m["payment_pence"] for m in milestones),
        "returns": [line.describe() for line in schedule.lines],
        "invest_to_save": bool(g.invest_to_save),
        "repayments": [
            {"seq": r["seq"], "due_on": r["due_on"], "amount_pence": r["amount_pence"]}
            for r in ([] if made_now else repayment_schedule(conn, grant_id, today))
        ],
        "deposits": deposits,
        "clawback": CLAWBACK,
    }


def _person_names(conn: Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {p.id: p.name for p in conn.execute(
        select(PERSON_T.c.id, PERSON_T.c.name).where(PERSON_T.c.id.in_(ids)))}


def _row(r: Any, names: dict[int, str], recipient_name: str) -> dict[str, Any]:
    return {
        "ref": r.ref,
        "kind": r.kind,
        "version_no": r.version_no,
        "issued_on": r.issued_on.isoformat(),
        "state": r.state,
        "sha256": r.sha256,
        "milestones": list(r.milestones),
        "recipient": recipient_name,
        "recipient_id": r.recipient_id,
        "grant_body_id": r.grant_body_id,
        "answered_by": names.get(r.answered_by_id) if r.answered_by_id else None,
        "answered_on": r.answered_on.isoformat() if r.answered_on else None,
        "answered_hash": r.answered_hash,
        "declined_reason": r.declined_reason,
        "superseded_by": r.superseded_by,
        "version": r.version,
    }


def letters(conn: Connection, grant_ref: str) -> list[dict[str, Any]]:
    """A grant's letters, newest first (without their text)."""
    rows = conn.execute(
        select(OFFER_T, ORG_T.c.name.label("recipient_name"),
               GRANT_T.c.accountable_body_id.label("grant_body_id"))
        .join(GRANT_T, GRANT_T.c.id == OFFER_T.c.grant_id)
        .join(ORG_T, ORG_T.c.id == OFFER_T.c.recipient_id)
        .where(GRANT_T.c.ref == grant_ref)
        .order_by(OFFER_T.c.version_no.desc())
    ).all()
    names = _person_names(conn, {r.answered_by_id for r in rows if r.answered_by_id})
    return [_row(r, names, r.recipient_name) for r in rows]


def letter_html(conn: Connection, grant_ref: str, ref: str) -> str | None:
    """The letter as issued (the HTML its hash was taken of), or None if the grant
    has no such letter."""
    return conn.execute(
        select(OFFER_T.c.html).join(GRANT_T, GRANT_T.c.id == OFFER_T.c.grant_id)
        .where(GRANT_T.c.ref == grant_ref, OFFER_T.c.ref == ref.upper())
    ).scalar()


def _awaiting_where(q: Any) -> Any:
    return (
        q.join(GRANT_T, GRANT_T.c.id == OFFER_T.c.grant_id)
        .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id)
        .join(PROG_T, PROG_T.c.id == POT_T.c.programme_id)
        .where(OFFER_T.c.state == OPEN, GRANT_T.c.state == "active",
               PROG_T.c.offer_acceptance_required.is_(True))
    )


def awaiting(conn: Any, limit: int | None = None) -> list[Any]:
    """Letters issued and not yet answered on active grants whose programme pays
    only after acceptance, oldest first (one query; ``limit``: the oldest so many,
    read along the (state, issued_on) index): for officers' My work."""
    q = _awaiting_where(
        select(OFFER_T.c.ref, OFFER_T.c.kind, OFFER_T.c.issued_on, GRANT_T.c.ref.label("grant"),
               BID_T.c.title, ORG_T.c.name.label("recipient"))
        .select_from(OFFER_T)
        .join(ORG_T, ORG_T.c.id == OFFER_T.c.recipient_id)
    ).join(BID_T, BID_T.c.id == GRANT_T.c.bid_id).order_by(OFFER_T.c.issued_on, OFFER_T.c.id)
    return list(conn.execute(q if limit is None else q.limit(limit)))


def awaiting_count(conn: Any) -> int:
    """How many letters :func:`awaiting` lists (one count, no rows read out)."""
    return int(conn.execute(
        _awaiting_where(select(func.count()).select_from(OFFER_T))).scalar() or 0)


def open_letter(conn: Connection, grant_ref: str) -> tuple[str, str] | None:
    """(ref, sha256) of the grant's letter awaiting an answer, if any: what a
    scenario's ``accept_offer grant: G-0001`` accepts (engine/entry/replay.py)."""
    row = conn.execute(
        select(OFFER_T.c.ref, OFFER_T.c.sha256).join(GRANT_T, GRANT_T.c.id == OFFER_T.c.grant_id)
        .where(GRANT_T.c.ref == grant_ref.strip().upper(), OFFER_T.c.state == OPEN)
        .order_by(OFFER_T.c.version_no.desc()).limit(1)
    ).first()
    return None if row is None else (row.ref, row.sha256)
