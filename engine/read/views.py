"""Read-side views: what lists, reports and ``replay --json`` show.

Plain dicts typed by their shapes (engine/read/shapes.py, the REST API's
response models) with amounts in pence, built with a handful of queries (no
per-row queries), shared by the CLI, the web pages and the REST API.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from engine.domain.errors import NotFound
from engine.domain.words import shown_subject
from engine.read import money as views_money
from engine.read import shapes
from engine.read.actions import register as actions_register
from engine.read.agenda import AgendaPage, agenda_page, agenda_size, left_here, meeting_agenda
from engine.read.kept import OVERRIDES_ONLY, kept
from engine.read.rulesets import resolve_rule_set
from engine.store import audit
from engine.store.ledger import ledger
from engine.store.models import (
    AuditEvent,
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
    whatif_rule_set,
)

# Core tables: their columns type-check in queries (SQLModel types a model's
# attributes as their Python values) and read as fast
BID_T = Bid.__table__
ORG_T = Organisation.__table__
POT_T = Pot.__table__
ROUND_T = Round.__table__
SCORE_T = Score.__table__
CRIT_T = CriterionScore.__table__
RSV_T = RuleSetVersion.__table__
MEETING_T = Meeting.__table__
PERSON_T = Person.__table__


def any_bid_in(session: Session | Connection, states: Collection[str]) -> bool:
    """Is any bid in one of ``states`` (one row read at most, by the state index)."""
    return session.execute(
        select(BID_T.c.id).where(BID_T.c.state.in_(list(states))).limit(1)
    ).first() is not None


def bids(
    session: Session | Connection,
    state: str | None = None,
    sponsor_id: int | None = None,
    round_id: int | None = None,
    bid_ids: Collection[int] | None = None,
    refs: Sequence[str] | None = None,
    states: Collection[str] | None = None,
) -> list[shapes.BidRecord]:
    """Bids with their scores, partners and milestones, in id order; filtered by
    state (or any of ``states``), sponsor, round and/or a set of ids (a page of a
    ranking)."""
    # plain columns, not ORM objects, and the related rows found by a subquery
    # rather than a list of ids: a round of 10,000 bids reads in a fraction of
    # the time (bench/bench_web.py)
    filters = []
    if state:
        filters.append(BID_T.c.state == state)
    if states is not None:
        filters.append(BID_T.c.state.in_(list(states)))
    if sponsor_id is not None:
        filters.append(BID_T.c.sponsor_id == sponsor_id)
    if round_id is not None:
        filters.append(BID_T.c.round_id == round_id)
    if bid_ids is not None:
        filters.append(BID_T.c.id.in_(list(bid_ids)))
    if refs is not None:  # one page of a list (engine/read/lists.py)
        filters.append(BID_T.c.ref.in_(refs))
    q = (
        select(
            *BID_T.c,
            ORG_T.c.name.label("_sponsor"),
            POT_T.c.name.label("_pot"),
            ROUND_T.c.ref.label("_round"),
        )
        .join(ORG_T, ORG_T.c.id == BID_T.c.sponsor_id)
        .outerjoin(POT_T, POT_T.c.id == BID_T.c.pot_id)
        .outerjoin(ROUND_T, ROUND_T.c.id == BID_T.c.round_id)
        .where(*filters)
        .order_by(BID_T.c.id)
    )
    rows = session.execute(q).all()
    ids = select(BID_T.c.id).where(*filters).scalar_subquery() if filters else None
    scores = current_scores(session, ids) if rows else {}
    partners: dict[int, list[str]] = defaultdict(list)
    milestones: dict[int, list[shapes.BidMilestone]] = defaultdict(list)
    if rows:
        partner_t, milestone_t = BidPartner.__table__, Milestone.__table__
        pq = (
            select(partner_t.c.bid_id, ORG_T.c.name)
            .join(ORG_T, ORG_T.c.id == partner_t.c.organisation_id)
            .order_by(ORG_T.c.name)
        )
        mq = select(
            milestone_t.c.bid_id,
            milestone_t.c.seq,
            milestone_t.c.outcome,
            milestone_t.c.due_on,
            milestone_t.c.payment_pence,
            milestone_t.c.state,
        ).order_by(milestone_t.c.bid_id, milestone_t.c.seq)
        if ids is not None:
            pq = pq.where(partner_t.c.bid_id.in_(ids))
            mq = mq.where(milestone_t.c.bid_id.in_(ids))
        for p in session.execute(pq):
            partners[p.bid_id].append(p.name)
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
            "bid_kind": b.kind,
            "reasons": b.reasons,
            "items": b.items or [],
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


INTERNAL = ("id", "_facts")  # the keys a BidRecord adds to a Bid


def public(rows: list[shapes.BidRecord]) -> list[shapes.Bid]:
    """Rows without internal keys (ids, facts) for JSON output."""
    return [
        cast(shapes.Bid, {k: v for k, v in r.items() if k not in INTERNAL}) for r in rows
    ]


def items(session: Session, today: dt.date | None = None) -> list[Mapping[str, Any]]:
    """Every workflow item: bids (each with its grant's money when it has one),
    then grants, delegated decisions and deposits. ``today``: the date late
    repayments are judged against (the replay's clock)."""
    grants = views_money.grants(session, today)
    by_bid = {g["bid"]: g for g in grants}
    rows: list[dict[str, Any]] = [
        {k: v for k, v in r.items() if k not in INTERNAL} for r in bids(session)
    ]
    for row in rows:
        g = by_bid.get(row["ref"])
        row["grant"] = g["ref"] if g else None
        row["paid_pence"] = g["paid_pence"] if g else 0
        row["recovered_pence"] = g["recovered_pence"] if g else 0
        if g:
            row["milestones"] = g["milestones"]
    return [
        *rows,
        *grants,
        *views_money.delegated_decisions(session),
        *views_money.deposits(session),
    ]


def pots(session: Session) -> list[shapes.Pot]:
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


def rounds(session: Session | Connection) -> list[shapes.RoundSummary]:
    """Every bidding round with its pot and how many bids it holds."""
    counts: dict[int | None, int] = {
        c.round_id: c.n
        for c in session.execute(
            select(BID_T.c.round_id, func.count().label("n")).group_by(BID_T.c.round_id)
        )
    }
    return [
        {
            "ref": r.ref,
            "name": r.name,
            "pot": r.pot,
            "state": r.state,
            "opens_on": r.opens_on.isoformat(),
            "closes_on": r.closes_on.isoformat(),
            "rule_set": r.rule_set,
            "bids": int(counts.get(r.id, 0)),
        }
        for r in session.execute(
            select(*ROUND_T.c, POT_T.c.name.label("pot"))
            .join(POT_T, POT_T.c.id == ROUND_T.c.pot_id)
            .order_by(ROUND_T.c.opens_on, ROUND_T.c.id)
        )
    ]


def outbox(session: Session) -> list[dict[str, Any]]:
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
        for m in session.scalars(select(Outbox).order_by(col(Outbox.id)))
    ]


def audit_summary(session: Session) -> dict[str, Any]:
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


def current_scores(
    session: Session | Connection, bid_ids: Any = None
) -> dict[int, shapes.BidScore]:
    """bid id -> its current score with points per criterion (overrides shown
    beside what the rules gave). ``bid_ids``: a list of ids, or a subquery
    giving them; None: every bid."""
    filters = [SCORE_T.c.current.is_(True)]
    if bid_ids is not None:
        filters.append(SCORE_T.c.bid_id.in_(bid_ids))
    q = (
        select(
            SCORE_T.c.id,
            SCORE_T.c.bid_id,
            SCORE_T.c.total_points,
            SCORE_T.c.rules_total_points,
            SCORE_T.c.max_points,
            SCORE_T.c.recommendation,
            SCORE_T.c.recommendation_reason,
            SCORE_T.c.missing,
            SCORE_T.c.scored_on,
            RSV_T.c.name,
            RSV_T.c.version,
        )
        .join(RSV_T, RSV_T.c.id == SCORE_T.c.rule_set_version_id)
        .where(*filters)
    )
    scores: dict[int, tuple[int, shapes.BidScore]] = {}  # score id -> (bid id, score)
    for s in session.execute(q):
        scores[s.id] = (
            s.bid_id,
            {
                "points": s.total_points,
                "rules_points": s.rules_total_points,
                "max_points": s.max_points,
                "recommendation": s.recommendation,
                "recommendation_reason": s.recommendation_reason,
                "missing": list(s.missing or []),
                "rules": f"{s.name} {s.version}",
                "scored_on": s.scored_on.isoformat(),
                "criteria": [],
            },
        )
    if scores:
        for c in session.execute(
            select(
                CRIT_T.c.score_id,
                CRIT_T.c.criterion,
                CRIT_T.c.question,
                CRIT_T.c.points,
                CRIT_T.c.override_points,
                CRIT_T.c.max_points,
                CRIT_T.c.reason,
                CRIT_T.c.override_reason,
            )
            .join(SCORE_T, SCORE_T.c.id == CRIT_T.c.score_id)
            .where(*filters)
            .order_by(CRIT_T.c.id)
        ):
            if c.score_id not in scores:  # pragma: no cover - scored in between
                continue
            scores[c.score_id][1]["criteria"].append(
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
    return dict(scores.values())


# bids the funding line is drawn through: awaiting a decision, not referred back
LINE_STATES = ("submitted", "scored", "deferred", "resubmitted")


def funding_of(state: str, ask: int, running: int, available: int, drawn: bool) -> shapes.Funding:
    """Where a ranked bid stands against the funding line, given the money the bids
    ranked above it take (``running``) and whether the line is already drawn."""
    if state == "approved":
        return "committed"  # already approved: its money is out of `available`
    if state not in LINE_STATES:
        return "not_eligible"  # referred back, rejected
    if not drawn and running + ask <= available:
        return "above_line"
    return "below_line"


def ranked_entry(r: shapes.BidRecord) -> tuple[BidScore, dict[str, Any]] | None:
    """A bid's score and facts as its round's rule set ranks them, or None for a bid
    a ranking leaves out (unscored, withdrawn, or an allocation)."""
    score = r["score"]
    if score is None or r["state"] in ("withdrawn",) or r["bid_kind"] != "bid":
        return None
    fact_row = dict(r["_facts"], partner_count=len(r["partners"]))
    return BidScore(
        ref=r["ref"], total=score["points"], max_total=score["max_points"],
        criteria=tuple(CriterionResult(c["criterion"], c["question"], c["points"],
                                       c["max_points"], c["points"] == c["max_points"],
                                       c["reason"]) for c in score["criteria"]),
        recommendation=score["recommendation"],
        recommendation_reason=score["recommendation_reason"], missing=tuple(score["missing"]),
    ), bid_facts(fact_row)


class RankedEntry(NamedTuple):
    """What ranking a bid needs (engine/read/rankings.py): its id, ref, state and
    ask, its score and its facts, as :func:`ranked_entry` gives them."""

    id: int
    ref: str
    state: str
    ask: int
    score: BidScore
    facts: dict[str, Any]


def ranked_entries(session: Session | Connection, round_id: int,
                   bid_ids: Sequence[int]) -> list[RankedEntry]:
    """:func:`ranked_entry` for the bids ``bid_ids`` of a round, read lean: only the
    columns a ranking uses (three statements), not whole records with milestones
    and partners' names. Ranking 100,000 bids afresh (a worker's first view of a
    round page) spent most of its time building records it then dropped."""
    if not bid_ids:
        return []
    bids = session.execute(
        select(BID_T.c.id, BID_T.c.state, *(BID_T.c[k] for k in FACT_FIELDS),
               SCORE_T.c.id.label("score_id"), SCORE_T.c.total_points, SCORE_T.c.max_points,
               SCORE_T.c.recommendation, SCORE_T.c.recommendation_reason, SCORE_T.c.missing)
        .join(SCORE_T, (SCORE_T.c.bid_id == BID_T.c.id) & SCORE_T.c.current.is_(True))
        .where(BID_T.c.round_id == round_id, BID_T.c.id.in_(list(bid_ids)),
               BID_T.c.kind == "bid", BID_T.c.state != "withdrawn")
        .order_by(BID_T.c.id)
    ).all()
    criteria: dict[int, list[CriterionResult]] = defaultdict(list)
    for c in session.execute(
        select(CRIT_T.c.score_id, CRIT_T.c.criterion, CRIT_T.c.question, CRIT_T.c.points,
               CRIT_T.c.override_points, CRIT_T.c.max_points, CRIT_T.c.reason)
        .where(CRIT_T.c.score_id.in_([b.score_id for b in bids]))
        .order_by(CRIT_T.c.id)
    ).all():
        points = c.override_points if c.override_points is not None else c.points
        criteria[c.score_id].append(CriterionResult(
            c.criterion, c.question, points, c.max_points, points == c.max_points, c.reason))
    partners: dict[int, int] = dict(session.execute(
        select(BidPartner.__table__.c.bid_id, func.count())
        .where(BidPartner.__table__.c.bid_id.in_([b.id for b in bids]))
        .group_by(BidPartner.__table__.c.bid_id)
    ).all())
    facts_at = slice(2, 2 + len(FACT_FIELDS))  # the FACT_FIELDS columns of a row
    return [
        RankedEntry(b.id, b.ref, b.state, b.grant_requested_pence, BidScore(
            ref=b.ref, total=b.total_points, max_total=b.max_points,
            criteria=tuple(criteria[b.score_id]), recommendation=b.recommendation,
            recommendation_reason=b.recommendation_reason, missing=tuple(b.missing or ()),
        ), bid_facts({**dict(zip(FACT_FIELDS, b[facts_at], strict=True)),
                      "partner_count": partners.get(b.id, 0)}))
        for b in bids
    ]


def ranked_row(rank: int, r: shapes.BidRecord, funding: shapes.Funding) -> shapes.RankedBid:
    """One line of a round's ranking (``r``: a scored bid, see :func:`ranked_entry`)."""
    score = r["score"]
    assert score is not None
    return {
        "rank": rank, "ref": r["ref"], "sponsor": r["sponsor"], "title": r["title"],
        "state": r["state"], "grant_requested_pence": r["grant_requested_pence"],
        "savings_as_written": r["savings_as_written"],
        "points": score["points"], "max_points": score["max_points"],
        "criteria": score["criteria"],
        "recommendation": score["recommendation"],
        "recommendation_reason": score["recommendation_reason"],
        "funding": funding, "above_line": funding in ("committed", "above_line"),
        "published_points": r["published_points"],
    }


def ranking_heading(rnd: Any, rs: RuleSet, pot: str) -> shapes.RankingHeading:
    """What a ranking says about its round: names, state, rules, criteria, dates."""
    return {
        "round": rnd.ref, "name": rnd.name, "pot": pot, "state": rnd.state,
        "rules": rs.name, "rules_version": rs.version,
        "criteria": [{"id": c.id, "question": c.question} for c in rs.criteria],
        "closes_on": rnd.closes_on.isoformat(),
    }


def round_ranking(session: Session | Connection, round_ref: str) -> shapes.RoundRanking:
    """The round's bids ranked by the rule set's declared tie-break, with the
    funding line: bids in rank order are funded while the pot's available
    money lasts; the first that does not fit draws the line."""
    rnd = session.execute(select(ROUND_T).where(ROUND_T.c.ref == round_ref)).first()
    if rnd is None:
        raise NotFound(f"no round {round_ref!r}", field="round", item=round_ref)
    rs = resolve_rule_set(session, rnd.rule_set)
    rows = bids(session, round_id=rnd.id)
    facts, scored = [], []
    for r in rows:
        entry = ranked_entry(r)
        if entry is not None:
            scored.append(entry[0])
            facts.append(entry[1])
    ranked = rs.rank(facts, scored) if scored else []
    line = ledger(session, pot_ids=[rnd.pot_id])[0]
    available = line.available_pence
    by_ref = {r["ref"]: r for r in rows}
    out: list[shapes.RankedBid] = []
    running, drawn = 0, False
    funding: shapes.Funding
    for rank, s in enumerate(ranked, start=1):
        r = by_ref[s.ref]
        funding = funding_of(r["state"], r["grant_requested_pence"], running, available, drawn)
        if funding == "above_line":
            running += r["grant_requested_pence"]
        drawn = drawn or funding == "below_line"
        out.append(ranked_row(rank, r, funding))
    return {
        **ranking_heading(rnd, rs, line.name),
        "available_pence": available, "requested_pence": sum(b["grant_requested_pence"]
                                                             for b in out),
        "funded_pence": running, "remaining_pence": available - running,
        "bids": out,
        "below_line": [b["ref"] for b in out if b["funding"] == "below_line"],
    }


def later_meetings(session: Session | Connection, after: dt.date) -> list[shapes.MeetingSlot]:
    """The meetings still scheduled after ``after``, soonest first (one query)."""
    return [
        {"ref": m.ref, "title": m.title, "date": m.held_on.isoformat()}
        for m in session.execute(
            select(MEETING_T.c.ref, MEETING_T.c.title, MEETING_T.c.held_on)
            .where(MEETING_T.c.state == "scheduled", MEETING_T.c.held_on > after)
            .order_by(MEETING_T.c.held_on, MEETING_T.c.id)
        )
    ]


def meetings(
    session: Session | Connection, refs: Sequence[str] | None = None
) -> list[shapes.Meeting]:
    """Every meeting (``refs``: only those), with roll, agenda, decisions,
    interests and actions."""
    people = _people_names(session)
    # once, not once per meeting; only the chosen meetings'
    every_action = actions_register(
        session, *([] if refs is None else [MEETING_T.c.ref.in_(list(refs))]))
    chosen = select(MEETING_T).order_by(MEETING_T.c.held_on, MEETING_T.c.id)
    if refs is not None:
        chosen = chosen.where(MEETING_T.c.ref.in_(list(refs)))
    return [_meeting(session, m, people, every_action, meeting_agenda(session, m), whole=True)
            for m in session.execute(chosen)]


def meeting_window(
    session: Session | Connection, ref: str, window: slice
) -> tuple[shapes.Meeting, AgendaPage] | None:
    """One meeting as :func:`meetings` gives it, but with only the agenda items at
    ``window``'s positions (from 0), and the decisions and interests on them: a
    Board that decided 20,000 bids shows 200 at a time. The page says where those
    items are and how long the agenda is. None: no such meeting."""
    m = session.execute(select(MEETING_T).where(MEETING_T.c.ref == ref)).first()
    if m is None:
        return None
    page = agenda_page(session, m, window)
    every_action = actions_register(session, MEETING_T.c.ref == ref)
    return _meeting(session, m, _people_names(session), every_action, page.refs,
                    whole=False), page


def _people_names(session: Session | Connection) -> dict[int, str]:
    return {p.id: p.name for p in session.execute(select(PERSON_T.c.id, PERSON_T.c.name))}


def _meeting(
    session: Session | Connection, m: Any, people: dict[int, str],
    every_action: list[shapes.MeetingAction], agenda: list[str], *, whole: bool,
) -> shapes.Meeting:
    """A meeting row as the meetings view shows it; ``agenda``: its refs, whole
    or (``whole`` False) the part whose decisions and interests are read."""
    decision_t, interest_t = Decision.__table__, Interest.__table__
    member_t = MeetingMember.__table__
    roll = session.execute(
        select(member_t.c.person_id, member_t.c.present, member_t.c.substitute_id)
        .where(member_t.c.meeting_id == m.id)
    ).all()
    present = sorted(people[r.person_id] for r in roll if r.present)
    substitutes = sum(1 for r in roll if r.substitute_id is not None)  # count for quorum
    decided = select(decision_t).where(decision_t.c.meeting_id == m.id)
    if not whole:
        decided = decided.where(decision_t.c.item_ref.in_(agenda))
    decided_rows = session.execute(decided.order_by(decision_t.c.id)).all()
    decisions: list[shapes.MeetingDecision] = [
        {
            "ref": d.ref, "item": d.item_ref, "outcome": d.outcome,
            "amount_pence": d.amount_pence, "reasons": d.reasons, "missing": d.missing,
            "votes": None if d.votes_for is None else {
                "for": d.votes_for, "against": d.votes_against, "abstain": d.votes_abstain},
            "decided_on": d.decided_on.isoformat(),
        }
        for d in decided_rows
    ]
    interests: list[shapes.MeetingInterest] = [
        {"member": people[i.person_id], "item": i.item_ref, "nature": i.nature}
        for i in session.execute(
            select(interest_t)
            .where(interest_t.c.meeting_id == m.id,
                   *([] if whole else [interest_t.c.item_ref.in_(agenda)]))
            .order_by(interest_t.c.id)
        )
    ]
    return {
        "ref": m.ref, "title": m.title, "date": m.held_on.isoformat(), "state": m.state,
        "quorum": m.quorum, "members": sorted(people[r.person_id] for r in roll),
        "present": present, "quorate": len(present) + substitutes >= m.quorum,
        "agenda": agenda, "interests": interests, "decisions": decisions,
        "left_here": left_here(decided_rows),
        "actions": [a for a in every_action if a["meeting"] == m.ref],
    }


def meetings_summary(session: Session | Connection) -> list[shapes.MeetingSummary]:
    """Every meeting with its roll and the sizes of its agenda and decisions,
    counted in SQL (a Board that decided 20,000 bids lists as fast as one that
    decided 2): the meetings list; kept until a command other than a score
    override runs (engine/read/kept.py)."""
    return kept(session, "meetings", None, OVERRIDES_ONLY, lambda: _meetings_summary(session))


def _meetings_summary(session: Session | Connection) -> list[shapes.MeetingSummary]:
    people: dict[int, str] = {
        p.id: p.name for p in session.execute(select(PERSON_T.c.id, PERSON_T.c.name))
    }
    decision_t, member_t = Decision.__table__, MeetingMember.__table__
    decided: dict[int, int] = {
        r.meeting_id: r.n for r in session.execute(
            select(decision_t.c.meeting_id, func.count().label("n"))
            .group_by(decision_t.c.meeting_id))
    }
    roll: dict[int, list[Any]] = defaultdict(list)
    for r in session.execute(
        select(member_t.c.meeting_id, member_t.c.person_id, member_t.c.present,
               member_t.c.substitute_id)
    ):
        roll[r.meeting_id].append(r)
    out: list[shapes.MeetingSummary] = []
    for m in session.execute(select(MEETING_T).order_by(MEETING_T.c.held_on, MEETING_T.c.id)):
        present = sorted(people[r.person_id] for r in roll[m.id] if r.present)
        substitutes = sum(1 for r in roll[m.id] if r.substitute_id is not None)
        out.append({
            "ref": m.ref, "title": m.title, "date": m.held_on.isoformat(), "state": m.state,
            "quorum": m.quorum, "present": present,
            "quorate": len(present) + substitutes >= m.quorum,
            "agenda_size": agenda_size(session, m), "decisions_count": decided.get(m.id, 0),
        })
    return out


def actions(session: Session | Connection) -> list[shapes.MeetingAction]:
    return actions_register(session)


def round_whatif(
    session: Session | Connection, round_ref: str, other_rules: str | RuleSet
) -> dict[str, Any]:
    """How ranks and recommendations would change under another rule set (a
    shipped one by name, a file by path, or one parsed from an upload).
    Reads only: nothing is written, and a file or upload is not kept."""
    now = round_ranking(session, round_ref)
    other = whatif_rule_set(other_rules)
    round_id: int = session.execute(
        select(ROUND_T.c.id).where(ROUND_T.c.ref == round_ref)).scalar_one()
    rows = {r["ref"]: r for r in bids(session, round_id=round_id)}  # the round's, not all
    refs = [b["ref"] for b in now["bids"]]
    facts = [bid_facts(dict(rows[ref]["_facts"], partner_count=len(rows[ref]["partners"])))
             for ref in refs]
    then = other.rank(facts, other.score(facts)) if facts else []
    then_rank = {s.ref: (i, s) for i, s in enumerate(then, start=1)}
    changes: list[dict[str, Any]] = []
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
