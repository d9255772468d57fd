"""``RuleSet.sort_key`` (one ascending key per bid, the kept rankings' order,
engine/read/rankings.py) orders bids exactly as ``RuleSet.rank`` does, for any
tie-break the rule language allows: ascending and descending, numbers and text,
with ties on every key kept in the given order."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.scoring import BidScore, CriterionResult, load_rule_set

RULES = load_rule_set("efficiency-bids-2011")
CRITERIA = [c.id for c in RULES.criteria]
KEYS = ["total", "max_total", *CRITERIA, "savings_per_pound", "grant_pence", "ref"]

bid = st.tuples(
    st.integers(0, 6),  # total (small: many ties)
    st.lists(st.integers(0, 3), min_size=len(CRITERIA), max_size=len(CRITERIA)),
    st.sampled_from([0.0, 0.5, 2.0, 13.25]),  # savings per pound
    st.sampled_from([1_000_00, 25_000_00, 100_000_00]),  # grant
    st.sampled_from(["B-0001", "B-0002", "B-0010", "A-7"]),
)


@settings(max_examples=200, deadline=None)
@given(
    bids=st.lists(bid, min_size=0, max_size=25),
    tie_break=st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(["asc", "desc"])),
                       min_size=1, max_size=4),
)
def test_sort_key_orders_as_rank_does(bids, tie_break) -> None:
    rs = copy.copy(RULES)
    rs.tie_break = tuple(tie_break)
    scores, facts = [], []
    for i, (total, points, spp, grant, ref) in enumerate(bids):
        unique = f"{ref}#{i}"  # rank() looks facts up by ref: one per bid
        scores.append(BidScore(unique, total, 10, tuple(
            CriterionResult(c, "", p, 3, p == 3, "") for c, p in zip(CRITERIA, points, strict=True)
        ), "fund", "", ()))
        facts.append({"ref": unique, "savings_per_pound": spp, "grant_pence": grant})
    by_rank = [s.ref for s in rs.rank(facts, scores)]
    keyed = sorted(range(len(scores)), key=lambda i: (*rs.sort_key(scores[i], facts[i]), i))
    assert [scores[i].ref for i in keyed] == by_rank
