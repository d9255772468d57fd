"""*My work*: what is waiting for one user, by section, oldest first.

    my_work(conn, actor, today) -> {"as_of", "total", "sections": {key: section}}

Each section is ``{"key", "title", "roles", "count", "items"}``; each item is
``{"kind", "ref", "title", "action", "since", "due", "link", ...}`` with dates
as ISO text (``since``: waiting since; ``due``: the date it is due or was due)
and extra keys per section (``milestone``, ``amount_pence``, ``days_late``...).
Only the sections for the actor's roles are present, in a fixed order, even
when empty (so a page can say "nothing waiting"):

section (who sees it): what is in it

- ``catchup_to_confirm`` (officer): a catch-up sweep's messages held back until
  an officer confirms them (``confirm_catchup``; docs/notifications.md)
- ``bids_received`` (officer): bids submitted whose round is still open, or in no
  round (scored once the round closes)
- ``bids_to_score`` (officer): bids in closed rounds with no current score
- ``evidence_to_verify`` (officer): milestone evidence submitted, awaiting review
- ``payments_to_release`` (officer, finance): verified milestones with money
  left to pay, except those this person verified (four eyes)
- ``returns_to_review`` (officer): returns submitted, awaiting accept / query
- ``offers_awaiting`` (officer): offer letters not yet answered on grants
  whose programme pays only after acceptance (engine/read/offers.py)
- ``late_returns`` (officer, director): returns due or queried, past due
- ``late_repayments`` (officer, director, finance): instalments past due, not
  fully repaid
- ``recoveries_outstanding`` (officer, director, finance): refund demands not
  yet recovered or written off
- ``signatures_awaited`` (chair, vice_chair, board_member): delegated decisions open and not
  expired, where the scheme they were requested under counts this person, and
  this person has not signed
- ``role_changes_to_decide`` (director, chair): role changes waiting for a
  second person, not asked for by this person and not changing their roles
- ``risks_above_threshold`` (officer, director): open risks whose residual
  score is above their programme's threshold (engine/read/risks.py), highest
  first
- ``referred_back`` (sponsor): their authority's bids referred back, with what
  is missing
- ``evidence_rejected`` (sponsor): their milestones whose evidence was
  rejected, with the reason
- ``returns_late`` (sponsor): their returns still due after the due date
- ``returns_queried`` (sponsor): their returns sent back with a question
- ``returns_due`` (sponsor): their returns due within ``horizon_days`` (30)
- ``next_meeting`` (board_member, chair, vice_chair): the next scheduled
  meeting's agenda (as fixed at attendance, else as it stands), only the items
  still waiting (a bid decided, a delegated decision reported, leaves); the
  section also carries ``meeting``

``total`` is :func:`waiting_total`: the sum of every section's count, so the
page's headline equals what its sections list.

A sponsor sees only items of its own authority (``actor.organisation_id``;
none without one). Links are page paths (``LINKS``), e.g. ``/bids/B-0001``,
``/grants/G-0001#milestone-2``.

Cost: one query per section shown (two for ``signatures_awaited`` and three
for ``next_meeting``), whatever the number of items; no query per item.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import and_, exists, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.actor import Actor
from engine.domain.words import long_date
from engine.read import offers as offer_views
from engine.read.delegation import stored_scheme
from engine.read.kept import SCORES_ONLY, kept
from engine.read.register import papers_deadline
from engine.read.returns import red_returns
from engine.read.risks import above_threshold
from engine.store.models import (
    Bid,
    Decision,
    DelegatedDecision,
    Evidence,
    Grant,
    Meeting,
    MeetingMember,
    Milestone,
    Organisation,
    Outbox,
    Payment,
    Pot,
    Programme,
    Recovery,
    RepaymentInstalment,
    Return,
    RoleChange,
    Round,
    RuleSetVersion,
    Score,
    Signature,
)
from rules.delegation import scheme_from_body

Reader = Session | Connection

BID = Bid.__table__
RND = Round.__table__
SCORE = Score.__table__
GRANT = Grant.__table__
MS = Milestone.__table__
EV = Evidence.__table__
PAY = Payment.__table__
RET = Return.__table__
INST = RepaymentInstalment.__table__
REC = Recovery.__table__
DD = DelegatedDecision.__table__
SIG = Signature.__table__
RSV = RuleSetVersion.__table__
DEC = Decision.__table__
MEET = Meeting.__table__
MM = MeetingMember.__table__
PROGRAMME_T = Programme.__table__
ORG = Organisation.__table__
POT = Pot.__table__
OUT = Outbox.__table__

# page paths for each kind of item: the web app serves these
LINKS = {
    "bid": "/bids/{ref}",
    "round": "/rounds/{ref}",
    "grant": "/grants/{ref}",
    "milestone": "/grants/{ref}#milestone-{seq}",
    "return": "/returns/{ref}",
    "recovery": "/recoveries/{ref}",
    "delegated": "/delegated/{ref}",
    "meeting": "/meetings/{ref}",
    "role_change": "/people#{ref}",
    "risk": "/risks#{ref}",
}

OUTSTANDING_RETURN = ("due", "queried")  # as rules.reminders.OUTSTANDING
OPEN_RECOVERY = ("demanded", "part_recovered")
PAYABLE = ("verified", "part_paid")
AWAITING_DECISION = ("scored", "deferred", "resubmitted", "referred_back")
BOARD_WAITING = ("scored", "deferred", "resubmitted")  # referred back: waits on the sponsor


def link(kind: str, ref: str, seq: int | None = None) -> str:
    return LINKS[kind].format(ref=ref, seq=seq)


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _item(
    kind: str,
    ref: str,
    title: str,
    action: str,
    since: dt.date | None,
    due: dt.date | None,
    href: str,
    **extra: Any,
) -> dict:
    return {
        "kind": kind,
        "ref": ref,
        "title": title,
        "action": action,
        "since": _iso(since),
        "due": _iso(due),
        "link": href,
        **extra,
    }


def _oldest_first(items: list[dict]) -> list[dict]:
    return sorted(items, key=lambda i: (i["since"] or i["due"] or "9999", i["ref"]))


# ------------------------------------------------------------------ officer sections


def bids_to_score(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    current = exists().where(SCORE.c.bid_id == BID.c.id, SCORE.c.current.is_(True))
    rows = conn.execute(
        select(BID.c.ref, BID.c.title, BID.c.state, RND.c.ref.label("round"), RND.c.closes_on)
        .join(RND, RND.c.id == BID.c.round_id)
        .where(
            RND.c.state == "closed",
            BID.c.state.in_(("submitted", "resubmitted")),
            ~current,
        )
        .order_by(RND.c.closes_on, BID.c.id)
    )
    return [
        _item(
            "bid",
            r.ref,
            r.title,
            f"score round {r.round}",
            r.closes_on,
            None,
            link("round", r.round),
            round=r.round,
            state=r.state,
        )
        for r in rows
    ]


def bids_received(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    """Bids submitted and not yet scorable: their round is still open, or they came
    in outside a round (issue 14: an officer sees a bid the day it arrives)."""
    rows = conn.execute(
        select(BID.c.ref, BID.c.title, BID.c.submitted_on, RND.c.ref.label("round"),
               RND.c.closes_on, ORG.c.name.label("sponsor"), BID.c.grant_requested_pence)
        .select_from(BID.outerjoin(RND, RND.c.id == BID.c.round_id)
                     .join(ORG, ORG.c.id == BID.c.sponsor_id))
        .where(BID.c.state == "submitted", or_(RND.c.id.is_(None), RND.c.state != "closed"))
        .order_by(BID.c.submitted_on, BID.c.id)
    )  # fmt: skip
    return [
        _item("bid", r.ref, r.title,
              f"check it: scored when round {r.round} closes" if r.round
              else "check it: it is in no round, so put it before a meeting or a delegated "
                   "decision",
              r.submitted_on, r.closes_on, link("bid", r.ref), organisation=r.sponsor,
              amount_pence=r.grant_requested_pence)
        for r in rows
    ]  # fmt: skip


def catchup_to_confirm(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    """A catch-up sweep's messages held back until an officer confirms them
    (engine/commands/notices.py): one item, at most."""
    n, people = conn.execute(
        select(func.count(), func.count(func.distinct(func.lower(OUT.c.to_addr))))
        .where(OUT.c.status == "held")
    ).one()  # fmt: skip
    if not n:
        return []
    since = conn.execute(select(func.min(OUT.c.created_at)).where(OUT.c.status == "held")).scalar()
    day = dt.date.fromisoformat(str(since)[:10]) if since else None
    return [_item("catchup", "catch-up",
                  f"Confirm the catch-up sweep: {n:,} reminders to {people:,} people",
                  "read what would be sent, then confirm: each person gets one digest",
                  day, None, "/catch-up", held=n, people=people)]  # fmt: skip


def _milestone_rows(where: list, *cols: Any) -> Any:
    return (
        select(
            GRANT.c.ref.label("grant"),
            BID.c.title,
            MS.c.seq,
            MS.c.outcome,
            MS.c.due_on,
            MS.c.payment_pence,
            ORG.c.name.label("body"),
            *cols,
        )
        .select_from(
            MS.join(GRANT, GRANT.c.id == MS.c.grant_id)
            .join(BID, BID.c.id == GRANT.c.bid_id)
            .join(ORG, ORG.c.id == GRANT.c.accountable_body_id)
        )
        .where(*where)
    )


def evidence_to_verify(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    rows = conn.execute(
        _milestone_rows(
            [MS.c.state == "evidenced", EV.c.state == "submitted", GRANT.c.state == "active"],
            EV.c.submitted_on,
            EV.c.summary,
        ).join(EV, EV.c.milestone_id == MS.c.id)
    )
    return [
        _item(
            "milestone",
            r.grant,
            f"{r.title} — milestone {r.seq}: {r.outcome}",
            "verify or reject the evidence",
            r.submitted_on,
            r.due_on,
            link("milestone", r.grant, r.seq),
            milestone=r.seq,
            organisation=r.body,
            summary=r.summary,
            amount_pence=r.payment_pence,
        )
        for r in rows
    ]


def payments_to_release(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    paid = (
        select(PAY.c.milestone_id, func.sum(PAY.c.amount_pence).label("paid"))
        .group_by(PAY.c.milestone_id)
        .subquery()
    )
    paid_so_far = func.coalesce(paid.c.paid, 0)
    where = [
        MS.c.state.in_(PAYABLE),
        # not by the grants' state index (every active grant's milestones read):
        # the few payable milestones (ix_milestone_state) lead, their grants checked
        func.coalesce(GRANT.c.state, "") == "active",
        MS.c.payment_pence > paid_so_far,
    ]
    if actor.person_id is not None:  # four eyes: not the verifier
        where.append(or_(MS.c.verified_by_id.is_(None), MS.c.verified_by_id != actor.person_id))
    rows = conn.execute(
        _milestone_rows(where, MS.c.verified_on, paid_so_far.label("paid")).outerjoin(
            paid, paid.c.milestone_id == MS.c.id
        )
    )
    return [
        _item(
            "milestone",
            r.grant,
            f"{r.title} — milestone {r.seq}: {r.outcome}",
            "release the payment",
            r.verified_on,
            r.due_on,
            link("milestone", r.grant, r.seq),
            milestone=r.seq,
            organisation=r.body,
            amount_pence=r.payment_pence - int(r.paid),
            paid_pence=int(r.paid),
        )
        for r in rows
    ]


def _return_rows(where: list) -> Any:
    return (
        select(
            RET.c.ref,
            RET.c.kind,
            RET.c.period_end,
            RET.c.due_on,
            RET.c.state,
            RET.c.submitted_on,
            GRANT.c.ref.label("grant"),
            BID.c.title,
            ORG.c.name.label("body"),
        )
        .select_from(
            RET.join(GRANT, GRANT.c.id == RET.c.grant_id)
            .join(BID, BID.c.id == GRANT.c.bid_id)
            .join(ORG, ORG.c.id == GRANT.c.accountable_body_id)
        )
        .where(GRANT.c.state != "cancelled", *where)
        .order_by(RET.c.due_on, RET.c.id)
    )


def _return_item(r: Any, action: str, since: dt.date | None, today: dt.date) -> dict:
    late = (today - r.due_on).days if r.state in OUTSTANDING_RETURN else 0
    return _item(
        "return",
        r.ref,
        f"{r.kind.capitalize()} return, quarter to {r.period_end.isoformat()}: {r.grant} {r.title}",
        action,
        since,
        r.due_on,
        link("return", r.ref),
        grant=r.grant,
        return_kind=r.kind,
        organisation=r.body,
        state=r.state,
        days_late=max(late, 0),
    )


def returns_to_review(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    rows = conn.execute(_return_rows([RET.c.state == "submitted"]))
    return [_return_item(r, "accept or query it", r.submitted_on, today) for r in rows]


def late_returns(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    rows = conn.execute(_return_rows([RET.c.state.in_(OUTSTANDING_RETURN), RET.c.due_on < today]))
    return [_return_item(r, "chase the sponsor", r.due_on, today) for r in rows]


def late_repayments(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    rows = conn.execute(
        select(
            GRANT.c.ref.label("grant"),
            BID.c.title,
            ORG.c.name.label("body"),
            INST.c.seq,
            INST.c.due_on,
            INST.c.amount_pence,
            INST.c.repaid_pence,
        )
        .select_from(
            INST.join(GRANT, GRANT.c.id == INST.c.grant_id)
            .join(BID, BID.c.id == GRANT.c.bid_id)
            .join(ORG, ORG.c.id == GRANT.c.accountable_body_id)
        )
        .where(INST.c.due_on < today, INST.c.repaid_pence < INST.c.amount_pence)
        .order_by(INST.c.due_on, GRANT.c.ref, INST.c.seq)
    )
    return [
        _item(
            "grant",
            r.grant,
            f"{r.title} — repayment {r.seq}",
            "chase the repayment, or record it",
            r.due_on,
            r.due_on,
            link("grant", r.grant),
            instalment=r.seq,
            organisation=r.body,
            amount_pence=r.amount_pence - r.repaid_pence,
            days_late=(today - r.due_on).days,
        )
        for r in rows
    ]


def recoveries_outstanding(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    rows = conn.execute(
        select(
            REC.c.ref,
            REC.c.state,
            REC.c.demanded_on,
            REC.c.demanded_pence,
            REC.c.recovered_pence,
            REC.c.written_off_pence,
            REC.c.reason,
            GRANT.c.ref.label("grant"),
            BID.c.title,
            ORG.c.name.label("body"),
        )
        .select_from(
            REC.join(GRANT, GRANT.c.id == REC.c.grant_id)
            .join(BID, BID.c.id == GRANT.c.bid_id)
            .join(ORG, ORG.c.id == GRANT.c.accountable_body_id)
        )
        .where(REC.c.state.in_(OPEN_RECOVERY))
        .order_by(REC.c.demanded_on, REC.c.id)
    )
    return [
        _item(
            "recovery",
            r.ref,
            f"Refund of {r.grant} {r.title}: {r.reason}",
            "record money received, or write off the rest",
            r.demanded_on,
            None,
            link("recovery", r.ref),
            grant=r.grant,
            organisation=r.body,
            state=r.state,
            amount_pence=r.demanded_pence - r.recovered_pence - r.written_off_pence,
        )
        for r in rows
    ]


# ------------------------------------------------------------------ chair and vice chairs


def signatures_awaited(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    if actor.person_id is None:
        return []
    signed = exists().where(
        SIG.c.delegated_decision_id == DD.c.id, SIG.c.person_id == actor.person_id
    )
    rows = list(
        conn.execute(
            select(
                DD.c.ref,
                DD.c.title,
                DD.c.amount_pence,
                DD.c.requested_on,
                DD.c.expires_on,
                DD.c.rule_set_version_id,
                DD.c.scheme_route,
                BID.c.ref.label("bid"),
            )
            .outerjoin(BID, BID.c.id == DD.c.bid_id)
            .where(
                DD.c.state == "awaiting_signatures",
                or_(DD.c.expires_on.is_(None), DD.c.expires_on >= today),
                ~signed,
            )
            .order_by(DD.c.requested_on, DD.c.id)
        )
    )
    if not rows:
        return []
    # which schemes count this person: one query for the stored schemes in use
    bind = conn.connection() if isinstance(conn, Session) else conn
    ids = {(r.rule_set_version_id, r.scheme_route) for r in rows}
    counts: dict[tuple[int | None, str], bool] = {}
    stored: dict[int, str] = {
        r.id: r.body
        for r in conn.execute(
            select(RSV.c.id, RSV.c.body).where(RSV.c.id.in_([i for i, _ in ids if i is not None]))
        )
    }
    for rid, route in ids:
        if rid is None:
            scheme = stored_scheme(bind, None, route)  # the scheme in force
        else:
            body = stored[rid]
            scheme = scheme_from_body(body, f"rule set version {rid} (as stored)", route or None)
        counts[(rid, route)] = scheme.counts(actor.email, actor.roles) is not None
    return [
        _item(
            "delegated",
            r.ref,
            r.title,
            "approve or decline (sign)",
            r.requested_on,
            r.expires_on,
            link("delegated", r.ref),
            bid=r.bid,
            amount_pence=r.amount_pence,
        )
        for r in rows
        if counts[(r.rule_set_version_id, r.scheme_route)]
    ]


def role_changes_to_decide(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    """Role changes waiting for a second person that this person may decide: not
    asked for by them, not changing their own roles, not past their expiry."""
    if actor.person_id is None:
        return []
    rc = RoleChange.__table__
    rows = conn.execute(
        select(rc.c.ref, rc.c.name, rc.c.email, rc.c.add_roles, rc.c.remove_roles,
               rc.c.requested_at, rc.c.expires_at, rc.c.person_id)  # fmt: skip
        .where(
            rc.c.state == "requested",
            or_(rc.c.requested_by_id.is_(None), rc.c.requested_by_id != actor.person_id),
            or_(rc.c.person_id.is_(None), rc.c.person_id != actor.person_id),
        )
        .order_by(rc.c.id)
    )
    return [
        _item(
            "role_change",
            r.ref,
            f"{'register ' if r.person_id is None else ''}{r.name} ({r.email}): "
            + "; ".join(
                part
                for part in (
                    f"add {', '.join(r.add_roles)}" if r.add_roles else "",
                    f"remove {', '.join(r.remove_roles)}" if r.remove_roles else "",
                )
                if part
            ),
            "approve or refuse",
            r.requested_at.date(),
            r.expires_at.date(),
            link("role_change", r.ref),
        )
        for r in rows
        if r.expires_at.date() >= today
    ]


# ------------------------------------------------------------------ sponsor sections


def referred_back(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    if actor.organisation_id is None:
        return []
    latest = (
        select(DEC.c.item_ref, func.max(DEC.c.id).label("id"))
        .where(DEC.c.outcome == "refer_back")
        .group_by(DEC.c.item_ref)
        .subquery()
    )
    dec = DEC.alias("d")
    rows = conn.execute(
        select(BID.c.ref, BID.c.title, dec.c.decided_on, dec.c.missing, dec.c.reasons)
        .select_from(
            BID.outerjoin(latest, latest.c.item_ref == BID.c.ref).outerjoin(
                dec, dec.c.id == latest.c.id
            )
        )
        .where(BID.c.state == "referred_back", BID.c.sponsor_id == actor.organisation_id)
        .order_by(BID.c.id)
    )
    return [
        _item(
            "bid",
            r.ref,
            r.title,
            "supply what is missing, then resubmit",
            r.decided_on,
            None,
            link("bid", r.ref),
            missing=r.missing or "",
            reasons=r.reasons or "",
        )
        for r in rows
    ]


def evidence_rejected(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    if actor.organisation_id is None:
        return []
    last = (
        select(func.max(EV.c.id))
        .where(EV.c.milestone_id == MS.c.id, EV.c.state == "rejected")
        .correlate(MS)
        .scalar_subquery()
    )
    rows = conn.execute(
        _milestone_rows(
            [
                MS.c.state == "evidence_rejected",
                GRANT.c.state == "active",
                GRANT.c.accountable_body_id == actor.organisation_id,
            ],
            EV.c.reviewed_on,
            EV.c.review_note,
        ).outerjoin(EV, EV.c.id == last)
    )
    return [
        _item(
            "milestone",
            r.grant,
            f"{r.title} — milestone {r.seq}: {r.outcome}",
            "submit new evidence",
            r.reviewed_on,
            r.due_on,
            link("milestone", r.grant, r.seq),
            milestone=r.seq,
            reason=r.review_note or "",
        )
        for r in rows
    ]


def _own_returns(actor: Actor, *where: Any) -> Any:
    return _return_rows([GRANT.c.accountable_body_id == actor.organisation_id, *where])


def returns_due(conn: Reader, actor: Actor, today: dt.date, horizon_days: int = 30) -> list[dict]:
    if actor.organisation_id is None:
        return []
    until = today + dt.timedelta(days=horizon_days)
    rows = conn.execute(
        _own_returns(actor, RET.c.state == "due", RET.c.due_on >= today, RET.c.due_on <= until)
    )
    return [_return_item(r, "send it in", None, today) for r in rows]


def returns_late(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    if actor.organisation_id is None:
        return []
    rows = conn.execute(_own_returns(actor, RET.c.state == "due", RET.c.due_on < today))
    return [_return_item(r, "send it in: it is late", r.due_on, today) for r in rows]


def returns_queried(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    if actor.organisation_id is None:
        return []
    rows = conn.execute(_own_returns(actor, RET.c.state == "queried"))
    return [_return_item(r, "answer the query and resubmit", r.submitted_on, today) for r in rows]


# ------------------------------------------------------------------ board members


def next_meeting(conn: Reader, actor: Actor, today: dt.date) -> tuple[dict | None, list[dict]]:
    """The next scheduled meeting (one this person is a member of, if any is)
    and its agenda: as fixed when attendance was taken, else as it stands
    (bids awaiting a decision and delegated decisions to report)."""
    mine = (
        exists().where(MM.c.meeting_id == MEET.c.id, MM.c.person_id == actor.person_id)
        if actor.person_id is not None
        else literal(False)
    )
    m = conn.execute(
        select(
            MEET.c.id, MEET.c.ref, MEET.c.title, MEET.c.held_on, MEET.c.programme_id, MEET.c.agenda
        )  # fmt: skip
        .where(MEET.c.state == "scheduled", MEET.c.held_on >= today)
        .order_by(mine.desc(), MEET.c.held_on, MEET.c.id)
        .limit(1)
    ).first()
    if m is None:
        return None, []
    meeting = {
        "ref": m.ref,
        "title": m.title,
        "date": m.held_on.isoformat(),
        "link": link("meeting", m.ref),
        "agenda_fixed": bool(m.agenda),
    }
    fixed = list(m.agenda or [])
    in_programme = POT.c.programme_id == m.programme_id
    # only what still waits on the meeting: an item decided (or reported) since the
    # agenda was fixed leaves My work (issue 14), though it stays on the agenda
    waiting_bid = BID.c.state.in_(BOARD_WAITING)
    waiting_dd = and_(DD.c.state.in_(("approved", "declined")), DD.c.reported_meeting_id.is_(None))
    bid_where = and_(BID.c.ref.in_(fixed) if fixed else in_programme, waiting_bid)
    dd_where = and_(DD.c.ref.in_(fixed) if fixed else in_programme, waiting_dd)
    items = []
    for r in conn.execute(
        select(
            BID.c.ref,
            BID.c.title,
            BID.c.state,
            BID.c.submitted_on,
            BID.c.grant_requested_pence,
            ORG.c.name.label("sponsor"),
        )  # fmt: skip
        .select_from(
            BID.join(POT, POT.c.id == BID.c.pot_id).join(ORG, ORG.c.id == BID.c.sponsor_id)
        )
        .where(bid_where)
        .order_by(BID.c.id)
    ):
        items.append(
            _item(
                "bid",
                r.ref,
                r.title,
                "read before the meeting",
                r.submitted_on,
                m.held_on,
                link("bid", r.ref),
                state=r.state,
                organisation=r.sponsor,
                amount_pence=r.grant_requested_pence,
            )
        )
    for r in conn.execute(
        select(DD.c.ref, DD.c.title, DD.c.state, DD.c.decided_on, DD.c.amount_pence)
        .join(POT, POT.c.id == DD.c.pot_id)
        .where(dd_where)
        .order_by(DD.c.decided_on, DD.c.id)
    ):
        items.append(
            _item(
                "delegated",
                r.ref,
                r.title,
                "endorse" if r.state == "approved" else "note (for information)",
                r.decided_on,
                m.held_on,
                link("delegated", r.ref),
                state=r.state,
                amount_pence=r.amount_pence,
            )
        )
    if fixed:  # the agenda's own order
        order = {ref: i for i, ref in enumerate(fixed)}
        items.sort(key=lambda i: order.get(i["ref"], len(order)))
    return meeting, items


def risks_above_threshold(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    """Open risks above their programme's threshold (issue 13): since the risk's
    last review (or its recording), due its review date."""
    items = []
    for r in above_threshold(conn):
        last = r["reviews"][-1]["reviewed_on"] if r["reviews"] else r["recorded_on"]
        items.append(_item(
            "risk", r["ref"], f"Risk {r['number']}: {r['description']}",
            f"residual score {r['residual']} is above the threshold ({r['threshold']}): "
            "act on it and bring it to the next meeting",
            dt.date.fromisoformat(last),
            dt.date.fromisoformat(r["review_on"]) if r["review_on"] else None,
            link("risk", r["ref"]), programme=r["programme"], owner=r["owner"],
            residual=r["residual"], threshold=r["threshold"]))
    return items


def returns_red(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    """Projects whose latest monitoring (or progress) return is red (issue 13 item 6)."""
    return [
        _item("return", r["ref"], f"{r['grant']} {r['title']}: {r['kind_label']} for "
              f"{r['period_label']} is {r['rag_words']}",
              "follow it up; it goes on the next meeting's agenda (risks)", None, None,
              link("return", r["ref"]), grant=r["grant"], organisation=r["organisation"],
              lines_at_risk=[x["line"] for x in r["at_risk"]])
        for r in red_returns(conn, today)
    ]  # fmt: skip


# ------------------------------------------------------------------ putting it together

Section = Callable[[Reader, Actor, dt.date], list[dict]]

PAPERS_WARNING_DAYS = 14  # how long before the deadline My work starts showing it


def papers_to_publish(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    """Meetings ahead whose papers are not yet published, from two weeks before the
    day they are due (the programme's clear working days before the meeting)."""
    out = []
    for m in conn.execute(
        select(MEET.c.ref, MEET.c.title, MEET.c.held_on, PROGRAMME_T.c.papers_clear_days)
        .join(PROGRAMME_T, PROGRAMME_T.c.id == MEET.c.programme_id)
        .where(MEET.c.state == "scheduled", MEET.c.papers_published_on.is_(None),
               MEET.c.held_on >= today)
        .order_by(MEET.c.held_on, MEET.c.id)
    ):
        due = papers_deadline(m.held_on, m.papers_clear_days)
        if (due - today).days > PAPERS_WARNING_DAYS:
            continue
        late = today > due
        out.append(
            _item(
                "meeting",
                m.ref,
                f"{m.title} on {long_date(m.held_on)} — papers",
                (f"publish the papers now: they were due by {long_date(due)}" if late
                 else f"publish the papers by {long_date(due)}"),
                due,
                due,
                link("meeting", m.ref),
                clear_days=m.papers_clear_days,
                late=late,
            )
        )
    return out


def _offer_item(r: Any, today: dt.date) -> dict:
    return _item("grant", r.grant, f"{r.title} — {r.ref} ({r.kind})",
                 f"awaiting acceptance by {r.recipient} since {long_date(r.issued_on)}",
                 r.issued_on, None, link("grant", r.grant) + "#offers", offer=r.ref,
                 days=(today - r.issued_on).days)


def offers_awaiting(conn: Reader, actor: Actor, today: dt.date) -> list[dict]:
    """Offer letters awaiting the recipient's acceptance where payment waits on it
    (issue 16): an officer chases the recipient."""
    bind = conn.connection() if isinstance(conn, Session) else conn
    return [_offer_item(r, today) for r in offer_views.awaiting(bind)]


def offers_awaiting_oldest(
    conn: Reader, actor: Actor, today: dt.date, shown: int
) -> tuple[int, list[dict]]:
    """How many letters await acceptance, and the ``shown`` oldest (a count and a
    LIMIT: 20,000 letters cost what 25 do)."""
    bind = conn.connection() if isinstance(conn, Session) else conn
    # kept through score overrides (engine/read/kept.py): the count reads every letter
    return kept(bind, "offers awaiting", (today, shown), SCORES_ONLY, lambda: (
        offer_views.awaiting_count(bind),
        [_offer_item(r, today) for r in offer_views.awaiting(bind, limit=shown)]))




# sections that can count in SQL and read only the oldest few (My work's page lists
# the oldest of each kind); the others are small by nature
Oldest = Callable[[Reader, Actor, dt.date, int], tuple[int, list[dict]]]
OLDEST: dict[str, Oldest] = {"offers_awaiting": offers_awaiting_oldest}


SECTIONS: list[tuple[str, str, frozenset[str], Section]] = [
    ("catchup_to_confirm", "Catch-up sweep to confirm", frozenset({"officer"}),
     catchup_to_confirm),
    ("bids_received", "New bids", frozenset({"officer"}), bids_received),
    ("bids_to_score", "Bids to score", frozenset({"officer"}), bids_to_score),
    ("papers_to_publish", "Meeting papers to publish", frozenset({"officer"}), papers_to_publish),
    ("evidence_to_verify", "Evidence to verify", frozenset({"officer"}), evidence_to_verify),
    (
        "payments_to_release",
        "Payments to release",
        frozenset({"officer", "finance"}),
        payments_to_release,
    ),
    ("returns_to_review", "Returns to review", frozenset({"officer"}), returns_to_review),
    ("offers_awaiting", "Offers awaiting acceptance", frozenset({"officer"}), offers_awaiting),
    ("late_returns", "Late returns", frozenset({"officer", "director"}), late_returns),
    (
        "late_repayments",
        "Late repayments",
        frozenset({"officer", "director", "finance"}),
        late_repayments,
    ),
    (
        "recoveries_outstanding",
        "Refunds outstanding",
        frozenset({"officer", "director", "finance"}),
        recoveries_outstanding,
    ),
    (
        "signatures_awaited",
        "Delegated decisions awaiting your signature",
        # a committee of board members may sign too (rules/delegation.py groups)
        frozenset({"chair", "vice_chair", "board_member"}),
        signatures_awaited,
    ),
    (
        "role_changes_to_decide",
        "Role changes to approve or refuse",
        frozenset({"director", "chair"}),
        role_changes_to_decide,
    ),
    (
        "risks_above_threshold",
        "Risks above the threshold",
        frozenset({"officer", "director"}),
        risks_above_threshold,
    ),
    ("returns_red", "Projects with a red monitoring return", frozenset({"officer", "director"}),
     returns_red),
    ("referred_back", "Bids referred back to you", frozenset({"sponsor"}), referred_back),
    ("evidence_rejected", "Evidence not accepted", frozenset({"sponsor"}), evidence_rejected),
    ("returns_late", "Returns overdue", frozenset({"sponsor"}), returns_late),
    ("returns_queried", "Returns queried", frozenset({"sponsor"}), returns_queried),
    ("returns_due", "Returns due soon", frozenset({"sponsor"}), returns_due),
]
BOARD = frozenset({"board_member", "chair", "vice_chair"})


def sections_for(roles: Iterable[str]) -> list[str]:
    """The section keys a person with these roles sees, in order."""
    held = set(roles)
    keys = [key for key, _, who, _ in SECTIONS if who & held]
    return keys + (["next_meeting"] if BOARD & held else [])


def waiting_total(sections: dict[str, dict]) -> int:
    """How many things wait on this person: the sum of the counts the sections show
    (the next meeting's agenda too), so the page's headline and its sections agree."""
    return sum(int(s["count"]) for s in sections.values())


def my_work(
    conn: Reader, actor: Actor, today: dt.date, *, horizon_days: int = 30,
    shown: int | None = None, only: str | None = None,
) -> dict:
    """What is waiting for ``actor`` on ``today``: see the module docstring.
    ``shown``: a section may list only its oldest so many items (the counts stay
    whole; the page shows no more), so a large one is not read out whole.
    ``only``: that section alone is read (a section's own page; the total is its)."""
    held = set(actor.roles)
    sections: dict[str, dict] = {}
    for key, title, who, fn in SECTIONS:
        if not who & held or (only is not None and key != only):
            continue
        if shown is not None and key in OLDEST:
            count, items = OLDEST[key](conn, actor, today, shown)
        elif fn is returns_due:
            items = returns_due(conn, actor, today, horizon_days)
            count = len(items)
        else:
            items = fn(conn, actor, today)
            count = len(items)
        items = _oldest_first(items)
        sections[key] = {
            "key": key,
            "title": title,
            "roles": sorted(who),
            "count": count,
            "items": items,
        }
    if BOARD & held and only in (None, "next_meeting"):
        meeting, items = next_meeting(conn, actor, today)
        sections["next_meeting"] = {
            "key": "next_meeting",
            "title": f"Next meeting: {meeting['title']} on {meeting['date']}"
            if meeting
            else "Next meeting: none scheduled",
            "roles": sorted(BOARD),
            "meeting": meeting,
            "count": len(items),
            "items": items,
        }
    return {
        "as_of": today.isoformat(),
        "who": actor.email,
        "total": waiting_total(sections),
        "sections": sections,
    }
