"""Read-side views: what lists, reports and ``replay --json`` show.

Plain dicts with amounts in pence, built with a handful of queries (no
per-row queries), shared by the CLI, the web pages and the REST API.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.domain.words import shown_subject
from engine.read import money as views_money
from engine.store import audit
from engine.store.ledger import ledger
from engine.store.models import (
    Action,
    AuditEvent,
    AuditHead,
    Bid,
    BidPartner,
    CriterionScore,
    Decision,
    Interest,
    Meeting,
    MeetingMember,
    Milestone,
    Organisation,
    Outbox,
    Person,
    Pot,
    Round,
    RuleSetVersion,
    Score,
)
from rules.scoring import (
    BidScore,
    CriterionResult,
    RuleSet,
    bid_facts,
    load_rule_set,
    whatif_rule_set,
)


def bids(
    session: Session,
    state: str | None = None,
    sponsor_id: int | None = None,
    round_id: int | None = None,
) -> list[dict]:
    # plain columns, not ORM objects, and the related rows found by a subquery
    # rather than a list of ids: a round of 10,000 bids reads in a fraction of
    # the time (bench/bench_web.py)
    filters = []
    if state:
        filters.append(Bid.state == state)
    if sponsor_id is not None:
        filters.append(Bid.sponsor_id == sponsor_id)
    if round_id is not None:
        filters.append(Bid.round_id == round_id)
    q = (
        select(
            *Bid.__table__.c,
            Organisation.name.label("_sponsor"),
            Pot.name.label("_pot"),
            Round.ref.label("_round"),
        )
        .join(Organisation, Organisation.id == Bid.sponsor_id)
        .outerjoin(Pot, Pot.id == Bid.pot_id)
        .outerjoin(Round, Round.id == Bid.round_id)
        .where(*filters)
        .order_by(Bid.id)
    )
    rows = session.execute(q).all()
    ids = select(Bid.id).where(*filters).scalar_subquery() if filters else None
    scores = current_scores(session, ids) if rows else {}
    partners: dict[int, list[str]] = defaultdict(list)
    milestones: dict[int, list[dict]] = defaultdict(list)
    if rows:
        pq = (
            select(BidPartner.bid_id, Organisation.name)
            .join(Organisation, Organisation.id == BidPartner.organisation_id)
            .order_by(Organisation.name)
        )
        mq = select(
            Milestone.bid_id,
            Milestone.seq,
            Milestone.outcome,
            Milestone.due_on,
            Milestone.payment_pence,
            Milestone.state,
        ).order_by(Milestone.bid_id, Milestone.seq)
        if ids is not None:
            pq = pq.where(BidPartner.bid_id.in_(ids))
            mq = mq.where(Milestone.bid_id.in_(ids))
        for bid_id, name in session.execute(pq):
            partners[bid_id].append(name)
        for m in session.execute(mq):
            milestones[m.bid_id].append(
                {
                    "seq": m.seq,
                    "outcome": m.outcome,
                    "due_on": m.due_on.isoformat(),
                    "payment_pence": m.payment_pence,
                    "state": m.state,
                }
            )
    return [
        {
            "ref": b.ref,
            "kind": "bid",
            "title": b.title,
            "state": b.state,
            "version": b.version,
            "sponsor": b._sponsor,
            "pot": b._pot,
            "grant_requested_pence": b.grant_requested_pence,
            "savings_as_written": b.savings_text,
            "savings": {
                "basis": b.savings_basis,
                "amount_pence": b.savings_amount_pence,
                "high_pence": b.savings_high_pence,
                "years": b.savings_years,
                "annual": b.savings_annual,
                "readable": b.savings_readable,
            },
            "partnership": b.partnership,
            "partners": partners.get(b.id, []),
            "builds_on_proven": b.builds_on_proven,
            "invest_to_save": b.invest_to_save,
            "published_points": b.published_points,
            "submitted_on": b.submitted_on.isoformat(),
            "milestones": milestones.get(b.id, []),
            "round": b._round,
            "score": scores.get(b.id),
            "recommendation": scores[b.id]["recommendation"] if b.id in scores else None,
            "id": b.id,
            "_facts": {k: getattr(b, k) for k in FACT_FIELDS},
        }
        for b in rows
    ]


FACT_FIELDS = (
    "ref", "grant_requested_pence", "savings_text", "savings_basis", "savings_amount_pence",
    "savings_high_pence", "savings_years", "savings_annual", "partnership", "builds_on_proven",
    "invest_to_save",
)


def public(rows: list[dict]) -> list[dict]:
    """Rows without internal keys (ids, facts) for JSON output."""
    return [{k: v for k, v in r.items() if k not in ("id", "_facts")} for r in rows]


def items(session: Session, today: dt.date | None = None) -> list[dict]:
    """Every workflow item: bids (each with its grant's money when it has one),
    then grants, delegated decisions and deposits. ``today``: the date late
    repayments are judged against (the replay's clock)."""
    grants = views_money.grants(session, today)
    by_bid = {g["bid"]: g for g in grants}
    rows = public(bids(session))
    for row in rows:
        g = by_bid.get(row["ref"])
        row["grant"] = g["ref"] if g else None
        row["paid_pence"] = g["paid_pence"] if g else 0
        row["recovered_pence"] = g["recovered_pence"] if g else 0
        if g:
            row["milestones"] = g["milestones"]
    return (
        rows
        + grants
        + views_money.delegated_decisions(session)
        + views_money.deposits(session)
    )


def pots(session: Session) -> list[dict]:
    return [
        {
            "name": line.name,
            "programme": line.programme,
            "allocated_pence": line.allocated_pence,
            "committed_pence": line.committed_pence,
            "paid_pence": line.paid_pence,
            "released_pence": line.released_pence,
            "recovered_pence": line.recovered_pence,
            "repaid_pence": line.repaid_pence,
            "available_pence": line.available_pence,
            "identity_holds": line.identity_holds(),
        }
        for line in ledger(session)
    ]


def outbox(session: Session) -> list[dict]:
    return [
        {
            "key": m.key,
            "to": m.to_addr,
            "template": m.template,
            "subject": shown_subject(m.subject, m.context or {}),
            "status": m.status,
            "attempts": m.attempts,
            "created_at": m.created_at.isoformat() if m.created_at else None,
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        }
        for m in session.execute(select(Outbox).order_by(Outbox.id)).scalars()
    ]


def audit_summary(session: Session) -> dict:
    result = audit.verify(session)
    return {
        "events": session.execute(select(func.count()).select_from(AuditEvent)).scalar() or 0,
        "chain_ok": result.ok,
        "problem": None if result.ok else result.message(),
    }


def select_one():  # noqa: ANN201
    """A trivial query for health checks."""
    return select(func.count()).select_from(Pot)


# ------------------------------------------------------------------ scores, rounds, meetings


def current_scores(session: Session | Connection, bid_ids: Any = None) -> dict[int, dict]:
    """bid id -> its current score with points per criterion (overrides shown
    beside what the rules gave). ``bid_ids``: a list of ids, or a subquery
    giving them; None: every bid."""
    filters = [Score.current.is_(True)]
    if bid_ids is not None:
        filters.append(Score.bid_id.in_(bid_ids))
    q = (
        select(
            Score.id,
            Score.bid_id,
            Score.total_points,
            Score.rules_total_points,
            Score.max_points,
            Score.recommendation,
            Score.recommendation_reason,
            Score.missing,
            Score.scored_on,
            RuleSetVersion.name,
            RuleSetVersion.version,
        )
        .join(RuleSetVersion, RuleSetVersion.id == Score.rule_set_version_id)
        .where(*filters)
    )
    scores = {}
    for s in session.execute(q):
        scores[s.id] = {
            "bid_id": s.bid_id,
            "points": s.total_points,
            "rules_points": s.rules_total_points,
            "max_points": s.max_points,
            "recommendation": s.recommendation,
            "recommendation_reason": s.recommendation_reason,
            "missing": list(s.missing or []),
            "rules": f"{s.name} {s.version}",
            "scored_on": s.scored_on.isoformat(),
            "criteria": [],
        }
    if scores:
        for c in session.execute(
            select(
                CriterionScore.score_id,
                CriterionScore.criterion,
                CriterionScore.question,
                CriterionScore.points,
                CriterionScore.override_points,
                CriterionScore.max_points,
                CriterionScore.reason,
                CriterionScore.override_reason,
            )
            .join(Score, Score.id == CriterionScore.score_id)
            .where(*filters)
            .order_by(CriterionScore.id)
        ):
            if c.score_id not in scores:  # pragma: no cover - scored in between
                continue
            scores[c.score_id]["criteria"].append(
                {
                    "criterion": c.criterion,
                    "question": c.question,
                    "points": c.override_points if c.override_points is not None else c.points,
                    "rules_points": c.points,
                    "max_points": c.max_points,
                    "reason": c.reason,
                    "override_reason": c.override_reason,
                }
            )
    return {v.pop("bid_id"): v for v in scores.values()}


# bids the funding line is drawn through: awaiting a decision, not referred back
LINE_STATES = ("submitted", "scored", "deferred", "resubmitted")


def round_ranking(session: Session | Connection, round_ref: str) -> dict:
    """The round's bids ranked by the rule set's declared tie-break, with the
    funding line: bids in rank order are funded while the pot's available
    money lasts; the first that does not fit draws the line."""
    rnd = session.execute(select(Round).where(Round.ref == round_ref)).scalars().first()
    if rnd is None:
        raise NotFound(f"no round {round_ref!r}", field="round", item=round_ref)
    rs = load_rule_set(rnd.rule_set)
    rows = bids(session, round_id=rnd.id)
    scores = {r["id"]: r["score"] for r in rows if r["score"] is not None}
    facts, scored = [], []
    for r in rows:
        s = scores.get(r["id"])
        if s is None or r["state"] in ("withdrawn",):
            continue
        fact_row = dict(r["_facts"], partner_count=len(r["partners"]))
        facts.append(bid_facts(fact_row))
        scored.append(BidScore(
            ref=r["ref"], total=s["points"], max_total=s["max_points"],
            criteria=tuple(CriterionResult(c["criterion"], c["question"], c["points"],
                                           c["max_points"], c["points"] == c["max_points"],
                                           c["reason"]) for c in s["criteria"]),
            recommendation=s["recommendation"],
            recommendation_reason=s["recommendation_reason"], missing=tuple(s["missing"]),
        ))
    ranked = rs.rank(facts, scored) if scored else []
    line = ledger(session, pot_ids=[rnd.pot_id])[0]
    available = line.available_pence
    by_ref = {r["ref"]: r for r in rows}
    out, running, drawn = [], 0, False
    for rank, s in enumerate(ranked, start=1):
        r = by_ref[s.ref]
        ask = r["grant_requested_pence"]
        if r["state"] == "approved":
            funding = "committed"  # already approved: its money is out of `available`
        elif r["state"] not in LINE_STATES:
            funding = "not_eligible"  # referred back, rejected
        elif not drawn and running + ask <= available:
            funding, running = "above_line", running + ask
        else:
            funding, drawn = "below_line", True
        out.append({
            "rank": rank, "ref": s.ref, "sponsor": r["sponsor"], "title": r["title"],
            "state": r["state"], "grant_requested_pence": ask,
            "savings_as_written": r["savings_as_written"],
            "points": s.total, "max_points": s.max_total,
            "criteria": scores[r["id"]]["criteria"],
            "recommendation": s.recommendation,
            "recommendation_reason": s.recommendation_reason,
            "funding": funding, "above_line": funding in ("committed", "above_line"),
            "published_points": r["published_points"],
        })
    return {
        "round": rnd.ref, "name": rnd.name, "pot": line.name, "state": rnd.state,
        "rules": rs.name, "rules_version": rs.version,
        "criteria": [{"id": c.id, "question": c.question} for c in rs.criteria],
        "closes_on": rnd.closes_on.isoformat(),
        "available_pence": available, "requested_pence": sum(b["grant_requested_pence"]
                                                             for b in out),
        "funded_pence": running, "remaining_pence": available - running,
        "bids": out,
        "below_line": [b["ref"] for b in out if b["funding"] == "below_line"],
    }


def meetings(session: Session | Connection) -> list[dict]:
    people = {p.id: p.name for p in session.execute(select(Person)).scalars()}
    every_action = actions(session)  # once, not once per meeting
    out = []
    for m in session.execute(select(Meeting).order_by(Meeting.held_on, Meeting.id)).scalars():
        roll = session.execute(
            select(MeetingMember.person_id, MeetingMember.present)
            .where(MeetingMember.meeting_id == m.id)
        ).all()
        present = sorted(people[pid] for pid, here in roll if here)
        decisions = [
            {
                "ref": d.ref, "item": d.item_ref, "outcome": d.outcome,
                "amount_pence": d.amount_pence, "reasons": d.reasons, "missing": d.missing,
                "votes": None if d.votes_for is None else {
                    "for": d.votes_for, "against": d.votes_against, "abstain": d.votes_abstain},
                "decided_on": d.decided_on.isoformat(),
            }
            for d in session.execute(
                select(Decision).where(Decision.meeting_id == m.id).order_by(Decision.id)
            ).scalars()
        ]
        interests = [
            {"member": people[i.person_id], "item": i.item_ref, "nature": i.nature}
            for i in session.execute(
                select(Interest).where(Interest.meeting_id == m.id).order_by(Interest.id)
            ).scalars()
        ]
        out.append({
            "ref": m.ref, "title": m.title, "date": m.held_on.isoformat(), "state": m.state,
            "quorum": m.quorum, "members": sorted(people[pid] for pid, _ in roll),
            "present": present, "quorate": len(present) >= m.quorum,
            "agenda": list(m.agenda or []), "interests": interests, "decisions": decisions,
            "actions": [a for a in every_action if a["meeting"] == m.ref],
        })
    return out


def actions(session: Session | Connection) -> list[dict]:
    return [
        {"meeting": ref, "number": a.number, "what": a.what, "owner": a.owner,
         "due_on": a.due_on.isoformat() if a.due_on else None, "state": a.state}
        for a, ref in session.execute(
            select(Action, Meeting.ref).join(Meeting, Meeting.id == Action.meeting_id)
            .order_by(Meeting.held_on, Action.number)
        )
    ]


def round_whatif(session: Session | Connection, round_ref: str, other_rules: str | RuleSet) -> dict:
    """How ranks and recommendations would change under another rule set (a
    shipped one by name, a file by path, or one parsed from an upload).
    Reads only: nothing is written, and a file or upload is not kept."""
    now = round_ranking(session, round_ref)
    other = whatif_rule_set(other_rules)
    rows = {r["ref"]: r for r in bids(session) if r["round"] == round_ref}
    refs = [b["ref"] for b in now["bids"]]
    facts = [bid_facts(dict(rows[ref]["_facts"], partner_count=len(rows[ref]["partners"])))
             for ref in refs]
    then = other.rank(facts, other.score(facts)) if facts else []
    then_rank = {s.ref: (i, s) for i, s in enumerate(then, start=1)}
    changes = []
    for b in now["bids"]:
        rank, s = then_rank[b["ref"]]
        changes.append({
            "ref": b["ref"], "title": b["title"],
            "rank_now": b["rank"], "rank_then": rank,
            "points_now": b["points"], "points_then": s.total,
            "recommendation_now": b["recommendation"], "recommendation_then": s.recommendation,
            "changed": rank != b["rank"] or s.recommendation != b["recommendation"]
            or s.total != b["points"],
        })
    return {"round": round_ref, "rules_now": f"{now['rules']} {now['rules_version']}",
            "rules_then": f"{other.name} {other.version}", "bids": changes,
            "changed": sum(1 for c in changes if c["changed"])}


# the last few rankings, keyed by round and the audit chain's tip: every change
# that can move a ranking (a bid, a score, an override, a decision, the pot's
# money) is a command, and every command appends to the chain, so a ranking
# computed at tip N is still right while the tip is N. Per process; safe with
# several processes because the key is read from the database each time.
_RANKINGS: dict[tuple[str, str, int], dict] = {}
_RANKINGS_MAX = 8


def round_ranking_cached(session: Session | Connection, round_ref: str) -> dict:
    """:func:`round_ranking`, reused while nothing has been written since (the
    audit chain's tip has not moved). The answer is shared: do not modify it."""
    tip = session.execute(select(AuditHead.last_seq).where(AuditHead.id == 1)).scalar() or 0
    bind = session.get_bind() if isinstance(session, Session) else session
    key = (str(bind.engine.url), round_ref, tip)
    found = _RANKINGS.get(key)
    if found is None:
        found = round_ranking(session, round_ref)
        if len(_RANKINGS) >= _RANKINGS_MAX:
            _RANKINGS.pop(next(iter(_RANKINGS)))
        _RANKINGS[key] = found
    return found
