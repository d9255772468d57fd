"""Bidding rounds and declarative scoring.

Scoring loads the round's bids, turns each into facts, asks the rule set
(rules/, compiled to durable_rules) for points per criterion with reasons
and a recommendation, and stores them in bulk: one Score and one
CriterionScore per criterion per bid, one audit event per bid. Re-scoring
adds new rows and marks the old ones not current; nothing is overwritten.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.handlers.programme import find_pot
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, insert_into, inserted_id
from engine.domain.errors import NotFound, ValidationError
from engine.domain.money import format_pence
from engine.read.rulesets import resolve_rule_set
from engine.store.models import Bid, BidPartner, CriterionScore, Round, RuleSetVersion, Score
from engine.store.rawsql import RawStatement, RawValues
from engine.store.refs import ref_for
from rules.scoring import bid_facts
from workflows.bid import BID
from workflows.round import ROUND

ROUND_T = Round.__table__
BID_T = Bid.__table__
SCORABLE = ("submitted", "scored", "resubmitted")
_ROUND_BY_REF = select(ROUND_T).where(ROUND_T.c.ref == bindparam("ref"))
# 10,000 and 30,000 rows for 10,000 bids: straight to the driver (engine/store/rawsql.py)
# a round's scores and their criteria as multi-row INSERTs straight to the driver
# (engine/store/rawsql.py): for 10,000 bids 50 and 150 statements, not 10,000 and 30,000;
# each new score's id comes back with its bid's
_INSERT_SCORES = RawValues(
    Score.__table__,
    (
        "bid_id",
        "total_points",
        "rules_total_points",
        "max_points",
        "recommendation",
        "recommendation_reason",
        "missing",
    ),
    returning=("bid_id", "id"),
)
_INSERT_CRITERIA = RawValues(
    CriterionScore.__table__,
    ("score_id", "criterion", "question", "points", "max_points", "reason"),
)


def load_round(uow: UnitOfWork, ref: str, field: str = "round") -> Any:
    row = uow.conn.execute(_ROUND_BY_REF, {"ref": ref}).first()
    if row is None:
        raise no_round(uow, ref, field)
    return row


def load_round_with_last_bid(uow: UnitOfWork, ref: str) -> Any:
    """:func:`load_round` with the highest bid id (``max_bid_id``: a new bid's automatic
    ref, engine/store/refs.py ``ref_after``), in one statement."""
    row = uow.conn.execute(_ROUND_AND_LAST_BID, {"ref": ref}).first()
    if row is None:
        raise no_round(uow, ref, "round")
    return row


def no_round(uow: UnitOfWork, ref: str, field: str) -> NotFound:
    return NotFound(f"{uow.command}: {field}: no round {ref!r}", field=field, item=ref)


_ROUND_AND_LAST_BID = select(
    ROUND_T, select(func.max(BID_T.c.id)).scalar_subquery().label("max_bid_id"),
).where(ROUND_T.c.ref == bindparam("ref"))
# the round and how many bids it has (close_round: the count is the same after closing,
# writers being serialised)
_ROUND_AND_BIDS = select(
    ROUND_T,
    select(func.count()).where(BID_T.c.round_id == ROUND_T.c.id).scalar_subquery().label("bids"),
).where(ROUND_T.c.ref == bindparam("ref"))


def rule_set(uow: UnitOfWork, name: str) -> Any:
    """The named rule set, validated: a shipped file (rules/scoring/<name>.yaml or a
    path) or a stored version (``name@version``), through the one resolver."""
    return resolve_rule_set(uow.conn, name)


_RSV = RuleSetVersion.__table__
_RULE_SET_ROW = select(_RSV.c.id, _RSV.c.sha256).where(
    _RSV.c.name == bindparam("name"), _RSV.c.version == bindparam("version")
)  # built once


def rule_set_version_id(
    uow: UnitOfWork, rs: Any, uploaded_by: int | None = None, field: str = "rules"
) -> int:
    """The stored copy of this rule set version (added the first time it is used, or
    when uploaded: ``uploaded_by``); refused when the same name and version is
    already stored with different content."""
    row = uow.conn.execute(_RULE_SET_ROW, {"name": rs.name, "version": rs.version}).first()
    if row is not None:
        if row.sha256 != rs.sha256:
            raise ValidationError(
                f"{uow.command}: {field}: {rs.source} says version {rs.version} but its content "
                f"differs from the {rs.name} {rs.version} already used; give it a new version",
                field=field,
            )
        return int(row.id)
    return inserted_id(
        uow.conn.execute(
            insert(RuleSetVersion).values(
                name=rs.name,
                version=rs.version,
                sha256=rs.sha256,
                body=rs.text,
                loaded_at=uow.now,
                uploaded_by_id=uploaded_by,
            )
        )
    )


@command("open_round", summary="Open a bidding round against a pot")
def open_round(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(ROUND, "open")
    name = args.text("name", max_len=200)
    pot = find_pot(uow, args.text("pot"))
    closes_on = args.date("closes")
    opens_on = args.date("opens", required=False) or uow.today
    rules_name = args.text("rules", max_len=300)
    cap = args.pence("cap", required=False)
    ref = args.text("ref", required=False, max_len=40)
    # required: its bids are scored before the Board decides them (rules/guards.py
    # may_decide_unscored); optional: the Board may decide them unscored
    scoring = args.choice("scoring", ("required", "optional"), default="required")
    args.done()
    if closes_on < opens_on:
        raise ValidationError(
            f"open_round: closes: {closes_on} is before the round opens ({opens_on})",
            field="closes",
        )
    rs = rule_set(uow, rules_name)
    ref = ref_for(uow.conn, Round, "round", ref, "open_round")
    created = uow.fire(ROUND, "open", "new", ref)
    state = created.dest
    uow.conn.execute(  # (a statement built once: uow.insert_into)
        insert_into(Round),
        dict(
            ref=ref,
            programme_id=pot.programme_id,
            pot_id=pot.id,
            name=name,
            opens_on=opens_on,
            closes_on=closes_on,
            rule_set=rules_name,
            cap_pence=cap,
            state=created.dest,
            version=1,
            scoring_required=scoring == "required",
        ),
    )
    after = {
        "name": name,
        "pot": pot.name,
        "opens_on": opens_on,
        "closes_on": closes_on,
        "rules": f"{rs.name} {rs.version}",
        "cap_pence": cap,
        "state": state,
        **({"scoring": scoring} if scoring != "required" else {}),
    }
    uow.record(ref, {}, after)
    return {"ref": ref, "state": state, "rules": f"{rs.name} {rs.version}"}


@command("close_round", summary="Close a round: no new bids")
def close_round(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(ROUND, "close")
    ref = args.text("round")
    rnd = uow.conn.execute(_ROUND_AND_BIDS, {"ref": ref}).first()  # with its bids counted
    if rnd is None:
        raise no_round(uow, ref, "round")
    args.done()
    moved = uow.fire(ROUND, "close", rnd.state, rnd.ref)
    state = moved.dest
    uow.update_versioned(Round, rnd.id, rnd.version, {}, rnd.ref, moved)
    n = rnd.bids
    uow.record(rnd.ref, {"state": rnd.state}, {"state": state, "bids": n})
    return {"ref": rnd.ref, "state": state, "bids": n}


def check_round_accepts(uow: UnitOfWork, rnd: Any, grant_pence: int) -> None:
    """Refuse a bid for a round that is closed, past its date, or over its cap."""
    if rnd.state != "open" or uow.today > rnd.closes_on:
        when = f"closed on {rnd.closes_on}" if uow.today > rnd.closes_on else "is closed"
        raise ValidationError(
            f"{uow.command}: round: {rnd.ref} ({rnd.name}) {when}; no new bids", field="round"
        )
    if uow.today < rnd.opens_on:
        raise ValidationError(
            f"{uow.command}: round: {rnd.ref} opens on {rnd.opens_on}", field="round"
        )
    if rnd.cap_pence is not None and grant_pence > rnd.cap_pence:
        raise ValidationError(
            f"{uow.command}: grant: {format_pence(grant_pence)} is above the round's cap of "
            f"{format_pence(rnd.cap_pence)} per bid",
            field="grant",
        )


# score_round's reads, straight to the driver (10,000 rows and more)
_SCORABLE_STATE = or_(*(BID_T.c.state == s for s in SCORABLE))  # no expanding IN: raw SQL
_FACT_COLUMNS = (
    "id",
    "ref",
    "state",
    "grant_requested_pence",
    "savings_text",
    "savings_basis",
    "savings_amount_pence",
    "savings_high_pence",
    "savings_years",
    "savings_annual",
    "partnership",
    "builds_on_proven",
    "invest_to_save",
)
_PARTNERS = (
    select(col(BidPartner.bid_id), func.count().label("n"))
    .group_by(col(BidPartner.bid_id))
    .subquery()
)
_SCORABLE_BIDS = RawStatement(
    select(
        *(BID_T.c[c] for c in _FACT_COLUMNS),
        func.coalesce(_PARTNERS.c.n, 0).label("partner_count"),
    )
    .select_from(BID_T.outerjoin(_PARTNERS, _PARTNERS.c.bid_id == BID_T.c.id))
    .where(BID_T.c.round_id == bindparam("in_round"), _SCORABLE_STATE)
    .order_by(BID_T.c.id)
)
_IN_ROUND = (
    select(BID_T.c.id)
    .where(BID_T.c.round_id == bindparam("in_round"), _SCORABLE_STATE)
    .scalar_subquery()
)
# the round's current scores made not current, each bid's points before coming back
_UNCURRENT = RawStatement(
    update(Score)
    .where(col(Score.bid_id).in_(_IN_ROUND), col(Score.current).is_(True))
    .values(current=False)
    .returning(col(Score.bid_id), col(Score.total_points))
)


def scorable_bids(conn: Any, round_id: int) -> list[dict[str, Any]]:
    """The round's bids that can be scored, as bid_fact_rows gives them (the
    columns bid_facts reads, with id and state), in id order. Read raw: the
    booleans come as the driver gives them (0 and 1 on SQLite)."""
    names = (*_FACT_COLUMNS, "partner_count")
    return [
        dict(zip(names, r, strict=True))
        for r in _SCORABLE_BIDS.execute(conn, {"in_round": round_id})
    ]


def bid_fact_rows(conn: Any, where: Any) -> list[dict[str, Any]]:
    """Bid rows (as mappings bid_facts reads) with their partner counts."""
    partners = (
        select(col(BidPartner.bid_id), func.count().label("n"))
        .group_by(col(BidPartner.bid_id))
        .subquery()
    )
    q = (
        select(BID_T, func.coalesce(partners.c.n, 0).label("partner_count"))
        .outerjoin(partners, partners.c.bid_id == BID_T.c.id)
        .where(where)
        .order_by(BID_T.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


@command("score_round", summary="Score every bid in a closed round with its rule set")
def score_round(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(ROUND, "score")
    rnd = load_round(uow, args.text("round"))
    rules_name = args.text("rules", required=False, max_len=300) or rnd.rule_set
    args.done()
    uow.step(ROUND, "score", rnd.state, rnd.ref)
    rs = rule_set(uow, rules_name)
    version_id = rule_set_version_id(uow, rs)
    conn = uow.conn
    bids = scorable_bids(conn, rnd.id)
    if not bids:
        raise ValidationError(f"score_round: round: {rnd.ref} has no bids to score", field="round")
    # each state once (the answer is the same), naming its first bid if refused
    first_in_state = {b["state"]: b["ref"] for b in reversed(bids)}
    scoring = uow.fire_many(BID, "score", first_in_state)
    scores = rs.score([bid_facts(b) for b in bids])  # in the order of the bids
    # the same bids as `bids`: writers are serialised, so nothing changed since the read
    in_round = {"in_round": rnd.id}
    previous = dict(_UNCURRENT.execute(conn, in_round).fetchall())
    new_ids = dict(_INSERT_SCORES.insert(
        conn,
        (
            (
                b["id"],
                s.total,
                s.total,
                s.max_total,
                s.recommendation,
                s.recommendation_reason,
                s.missing,
            )
            for b, s in zip(bids, scores, strict=True)
        ),
        {
            "round_id": rnd.id,
            "rule_set_version_id": version_id,
            "scored_on": uow.today,
            "current": True,
        },
    ))
    _INSERT_CRITERIA.insert(
        conn,
        (
            (new_ids[b["id"]], c.criterion, c.question, c.points, c.max_points, c.reason)
            for b, s in zip(bids, scores, strict=True)
            for c in s.criteria
        ),
    )
    conn.execute(
        update(Bid)
        .where(Bid.round_id == rnd.id, col(Bid.state).in_(scoring.sources))
        .values(state=scoring.dest, version=Bid.version + 1)
    )
    label = f"{rs.name} {rs.version}"
    # Bids scored alike get the same before/after objects: audit.append encodes each once.
    befores: dict[tuple[Any, ...], dict[str, Any]] = {}
    afters: dict[tuple[Any, ...], dict[str, Any]] = {}
    for b, s in zip(bids, scores, strict=True):
        points = previous.get(b["id"])
        before = befores.get((b["state"], points))
        if before is None:
            before = befores[b["state"], points] = {"state": b["state"], "points": points}
        key = (s.total, s.max_total, s.recommendation, *(c.points for c in s.criteria))
        after = afters.get(key)
        if after is None:
            after = afters[key] = {
                "state": scoring.dest,
                "points": s.total,
                "of": s.max_total,
                "rules": label,
                "recommendation": s.recommendation,
                "criteria": {c.criterion: c.points for c in s.criteria},
            }
        uow.record(s.ref, before, after)
    if rules_name != rnd.rule_set:
        uow.update_versioned(Round, rnd.id, rnd.version, {"rule_set": rules_name}, rnd.ref)
    uow.record(rnd.ref, {}, {"scored": len(scores), "rules": label, "sha256": rs.sha256[:12]})
    counts: dict[str, int] = {}
    for s in scores:
        counts[s.recommendation] = counts.get(s.recommendation, 0) + 1
    return {"round": rnd.ref, "scored": len(scores), "rules": label, "recommendations": counts}


@command("override_score", summary="Override a criterion's points with a written reason")
def override_score(uow: UnitOfWork, args: Args) -> Result:
    uow.require_role("officer")
    ref = args.text("ref")
    criterion = args.text("criterion", max_len=100)
    points = args.integer("points", minimum=0)
    reason = args.text("reason", max_len=2000)
    args.done()
    bid = uow.conn.execute(select(BID_T.c.id, BID_T.c.state).where(BID_T.c.ref == ref)).first()
    if bid is None:
        raise NotFound(f"override_score: ref: no bid {ref!r}", field="ref", item=ref)
    score = uow.conn.execute(
        select(Score).where(Score.bid_id == bid.id, col(Score.current).is_(True))
    ).first()
    if score is None:
        raise ValidationError(f"override_score: ref: {ref} has not been scored", field="ref")
    if bid.state not in ("scored", "deferred", "resubmitted", "referred_back"):
        raise ValidationError(
            f"override_score: ref: {ref} is {bid.state}; scores can be changed only before the "
            "Board decides",
            field="ref",
        )
    crit_rows = uow.conn.execute(
        select(CriterionScore).where(CriterionScore.score_id == score.id)
    ).all()
    row = next((c for c in crit_rows if c.criterion == criterion), None)
    if row is None:
        raise ValidationError(
            f"override_score: criterion: {criterion!r} is not a criterion of this score; "
            f"criteria: {', '.join(c.criterion for c in crit_rows)}",
            field="criterion",
        )
    if points > row.max_points:
        raise ValidationError(
            f"override_score: points: {points} is above the criterion's maximum of "
            f"{row.max_points}",
            field="points",
        )
    before = row.override_points if row.override_points is not None else row.points
    uow.conn.execute(
        update(CriterionScore)
        .where(CriterionScore.id == row.id)
        .values(override_points=points, override_reason=reason, override_by_id=uow.actor.person_id)
    )
    total = sum(
        points
        if c.id == row.id
        else (c.override_points if c.override_points is not None else c.points)
        for c in crit_rows
    )
    rules_name = uow.conn.execute(
        select(col(RuleSetVersion.name)).where(col(RuleSetVersion.id) == score.rule_set_version_id)
    ).scalar_one()  # a score always names its rule set version (foreign key)
    rnd_rules = (
        uow.conn.execute(select(ROUND_T.c.rule_set).where(ROUND_T.c.id == score.round_id)).scalar()
        if score.round_id
        else None
    )
    rs = rule_set(uow, rnd_rules or rules_name)
    facts = bid_facts(bid_fact_rows(uow.conn, BID_T.c.id == bid.id)[0])
    by_criterion = {
        c.criterion: points
        if c.id == row.id
        else (c.override_points if c.override_points is not None else c.points)
        for c in crit_rows
    }
    recommendation, rec_reason, missing = rs.recommend(facts, by_criterion)
    uow.conn.execute(
        update(Score)
        .where(Score.id == score.id)
        .values(
            total_points=total,
            recommendation=recommendation,
            recommendation_reason=rec_reason,
            missing=list(missing),
        )
    )
    uow.record(
        ref,
        {"criterion": criterion, "points": before, "total": score.total_points},
        {
            "criterion": criterion,
            "points": points,
            "total": total,
            "rules_gave": row.points,
            "recommendation": recommendation,
        },
        reason,
    )
    return {
        "ref": ref,
        "criterion": criterion,
        "points": points,
        "rules_gave": row.points,
        "total": total,
        "recommendation": recommendation,
    }
