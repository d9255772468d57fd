"""What-if preview of a candidate scoring rule set against a round (read only).

The candidate (a stored version not yet used, or text pasted on the preview
form and never kept) scores the round's bids through the same code as
score_round: ``RuleSet.score`` (rules/scoring.py) on ``bid_facts``; a stored
version through durable_rules (rules/durable_adapter.py, registered once per
version like a file), a pasted one in plain Python as a *transient* rule set
(durable_rules never unregisters a ruleset: the adapter's trap list). It ranks
them with the candidate's own tie-break and draws the funding line with the
pot's money as the round page draws it (views.funding_of); next to each bid's
score, rank, recommendation and place against the line now (views.round_ranking),
it gives the same under the candidate, and the totals: how many change rank or
recommendation, and the money above the line before and after.

Which bids: those the ranking shows now (scored, not withdrawn) and those
score_round would score that have no score yet (the bid workflow's ``score``
step's sources). Nothing is written: the reads are plain SELECTs.

Bounded: one read of the round's bids for the facts and one for the current
ranking, one scoring and one sort; measured at 10,000 bids in
tests/test_rule_preview.py::test_preview_at_ten_thousand_bids (docs/rules.md).
"""

from __future__ import annotations

from collections import Counter
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.read import shapes, views
from rules.scoring import RuleSet, bid_facts
from workflows.bid import BID

SCORED_BY_SCORE_ROUND = BID.step("score").source  # what score_round scores


class PreviewBid(TypedDict):
    ref: str
    title: str
    sponsor: str
    state: str
    grant_requested_pence: int
    rank_now: int | None  # None: not scored yet
    points_now: int | None
    recommendation_now: str | None
    funding_now: shapes.Funding | None
    rank_new: int
    points_new: int
    max_points_new: int
    recommendation_new: str
    recommendation_reason_new: str
    funding_new: shapes.Funding
    rank_change: int | None  # places moved up (negative: down); None: not ranked now
    points_changed: bool
    recommendation_changed: bool
    line_changed: bool  # crosses the funding line one way or the other


class PreviewTotals(TypedDict):
    bids: int
    rank_changed: int
    moved_up: int
    moved_down: int
    newly_ranked: int
    points_changed: int
    recommendation_changed: int
    recommendations_now: dict[str, int]
    recommendations_new: dict[str, int]
    above_line_now: int
    above_line_new: int
    above_line_now_pence: int
    above_line_new_pence: int
    crossed_in: list[str]  # below the line (or unranked) now, above it under the candidate
    crossed_out: list[str]  # above the line now, below it under the candidate


class RulePreview(TypedDict):
    round: str
    name: str
    pot: str
    state: str
    rules_now: str
    rules_new: str
    rules_new_title: str
    transient: bool  # pasted text, scored in plain Python and dropped
    available_pence: int
    bids: list[PreviewBid]
    totals: PreviewTotals


def preview(conn: Session | Connection, round_ref: str, candidate: RuleSet) -> RulePreview:
    """The round's bids under ``candidate`` beside their scores and ranks now."""
    rnd = conn.execute(select(views.ROUND_T).where(views.ROUND_T.c.ref == round_ref)).first()
    if rnd is None:
        raise NotFound(f"no round {round_ref!r}", field="round", item=round_ref)
    now = views.round_ranking(conn, round_ref)
    ranked_now = {b["ref"]: b for b in now["bids"]}
    rows = [
        r
        for r in views.bids(conn, round_id=rnd.id)
        if r["bid_kind"] == "bid"
        and r["state"] != "withdrawn"
        and (r["ref"] in ranked_now or r["state"] in SCORED_BY_SCORE_ROUND)
    ]
    facts = [bid_facts(dict(r["_facts"], partner_count=len(r["partners"]))) for r in rows]
    scores = candidate.score(facts) if facts else []  # score_round's call
    ranked = candidate.rank(facts, scores) if scores else []
    by_ref = {r["ref"]: r for r in rows}
    available = now["available_pence"]
    running, drawn = 0, False
    out: list[PreviewBid] = []
    for rank, s in enumerate(ranked, start=1):
        r = by_ref[s.ref]
        ask = r["grant_requested_pence"]
        funding = views.funding_of(r["state"], ask, running, available, drawn)
        if funding == "above_line":
            running += ask
        drawn = drawn or funding == "below_line"
        was = ranked_now.get(s.ref)
        above_then = was is not None and was["above_line"]
        above_after = funding in ("committed", "above_line")
        out.append(
            {
                "ref": s.ref,
                "title": r["title"],
                "sponsor": r["sponsor"],
                "state": r["state"],
                "grant_requested_pence": ask,
                "rank_now": was["rank"] if was else None,
                "points_now": was["points"] if was else None,
                "recommendation_now": was["recommendation"] if was else None,
                "funding_now": was["funding"] if was else None,
                "rank_new": rank,
                "points_new": s.total,
                "max_points_new": s.max_total,
                "recommendation_new": s.recommendation,
                "recommendation_reason_new": s.recommendation_reason,
                "funding_new": funding,
                "rank_change": was["rank"] - rank if was else None,
                "points_changed": was is None or was["points"] != s.total,
                "recommendation_changed": was is None
                or was["recommendation"] != s.recommendation,
                "line_changed": above_then != above_after,
            }
        )
    above_now = [b for b in now["bids"] if b["funding"] == "above_line"]
    above_new = [b for b in out if b["funding_new"] == "above_line"]
    totals: PreviewTotals = {
        "bids": len(out),
        "rank_changed": sum(1 for b in out if b["rank_change"]),
        "moved_up": sum(1 for b in out if (b["rank_change"] or 0) > 0),
        "moved_down": sum(1 for b in out if (b["rank_change"] or 0) < 0),
        "newly_ranked": sum(1 for b in out if b["rank_now"] is None),
        "points_changed": sum(1 for b in out if b["points_changed"]),
        "recommendation_changed": sum(1 for b in out if b["recommendation_changed"]),
        "recommendations_now": dict(Counter(b["recommendation"] for b in now["bids"])),
        "recommendations_new": dict(Counter(b["recommendation_new"] for b in out)),
        "above_line_now": len(above_now),
        "above_line_new": len(above_new),
        "above_line_now_pence": sum(b["grant_requested_pence"] for b in above_now),
        "above_line_new_pence": sum(b["grant_requested_pence"] for b in above_new),
        "crossed_in": [
            b["ref"] for b in out if b["line_changed"] and b["funding_new"] == "above_line"
        ],
        "crossed_out": [
            b["ref"] for b in out if b["line_changed"] and b["funding_new"] != "above_line"
        ],
    }
    return {
        "round": now["round"],
        "name": now["name"],
        "pot": now["pot"],
        "state": now["state"],
        "rules_now": f"{now['rules']} {now['rules_version']}",
        "rules_new": f"{candidate.name} {candidate.version}",
        "rules_new_title": candidate.title,
        "transient": candidate.transient,
        "available_pence": available,
        "bids": out,
        "totals": totals,
    }
