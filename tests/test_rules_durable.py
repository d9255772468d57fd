"""The durable_rules path of scoring, and each of durable_rules' traps handled.

RuleSet.score goes through durable_rules 2.0.28; RuleSet.score_python
evaluates the same compiled conditions in plain Python. They must agree
exactly, on the real bids and on thousands of synthetic ones; and the
adapter must survive repeated rounds, duplicate bids, several versions of a
rule set, threads, and rulesets that match nothing, without leaking memory.
"""

import json
import os
import threading
from pathlib import Path

import pytest
from bidtable import april_bids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_scoring import synthetic_bids
from rules import durable_adapter
from rules.scoring import RULES_DIR, bid_facts, load_rule_set, parse_rule_set

SHIPPED = RULES_DIR / "efficiency-bids-2011.yaml"


def april_facts() -> list[dict]:
    return [bid_facts(b) for b in april_bids()]


@pytest.fixture(scope="module")
def rules():
    return load_rule_set("efficiency-bids-2011")


def fired_actions(rules, fn, facts) -> tuple[list, int]:
    """fn(facts) and how many durable_rules actions it ran."""
    before = durable_adapter.stats()["actions"]
    out = fn(facts)
    return out, durable_adapter.stats()["actions"] - before


def from_scratch(rules, facts) -> list:
    """Each bid's result the long way: outcomes in Python, every reason formatted
    from scratch by RuleSet._result. score and score_python build results from
    parts prepared once per rule set and per combination of outcomes; they must
    give exactly this."""
    out = []
    for f in facts:
        chosen = rules.outcomes_python(f)
        message = rules.recommend_message(f, chosen)
        rec = next(r for test, r in rules._py_recommend if test(message))
        out.append(rules._result(f, chosen, rec))
    return out


# ---------------------------------------------------------------- the two paths agree


def test_durable_and_python_agree_on_the_26_real_bids(rules):
    facts = april_facts()
    scores, actions = fired_actions(rules, rules.score, facts)
    assert scores == rules.score_python(facts) == from_scratch(rules, facts)
    assert [s.total for s in scores[:3]] == [7, 7, 7]
    # exactly one action per criterion per bid, and one per recommendation
    assert actions == len(facts) * (len(rules.criteria) + 1)


def test_durable_and_python_agree_on_2000_synthetic_bids(rules):
    facts = [bid_facts(b) for b in synthetic_bids(2000, seed=7)]
    scores, actions = fired_actions(rules, rules.score, facts)
    assert scores == rules.score_python(facts) == from_scratch(rules, facts)
    assert actions == 2000 * 4
    # the synthetic bids reach every outcome of every criterion, and every recommendation
    reasons = {(c.criterion, c.points, c.reason.split(":")[0][:20]) for s in scores
               for c in s.criteria}  # fmt: skip
    assert {(c, p) for c, p, _ in reasons} == {
        ("partnership", 0), ("partnership", 1), ("savings", 0), ("savings", 2), ("savings", 5),
        ("track_record", 0), ("track_record", 1),
    }  # fmt: skip
    assert {s.recommendation for s in scores} == {"approve", "refer_back", "reject"}
    assert any(f["breakeven_years"] == 2.0 for f in facts)  # the boundary is exercised


yes_no = st.sampled_from(["yes", "no"])
edge_facts = st.fixed_dictionaries(
    {
        "grant_pence": st.sampled_from([0, 1, 100, 2_200_000, 10_000_000, 10**12]),
        "involves_other_councils": yes_no,
        "partner_count": st.integers(0, 5),
        "savings_quantified": yes_no,
        "savings_basis": st.sampled_from(
            ["one_off", "per_annum", "over_years", "range", "none_stated", "unreadable"]
        ),
        "savings_annual_pence": st.integers(0, 10**11),
        "breakeven_known": yes_no,
        "breakeven_years": st.one_of(
            st.sampled_from([0.0, 1.99, 2, 2.0, 2.01, 1e6]),
            st.floats(0, 100, allow_nan=False).map(lambda v: round(v, 2)),
        ),
        "savings_per_pound": st.floats(0, 1000, allow_nan=False),
        "proven": st.sampled_from(["yes", "no", "not_stated"]),
        "invest_to_save": yes_no,
        "savings_text": st.text(max_size=20),
        "savings_note": st.text(max_size=20),
        "grant": st.just("£1"),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edge_facts, min_size=1, max_size=60))
def test_durable_and_python_agree_on_arbitrary_facts(rules, many):
    # facts as durable_rules might see them but bid_facts would rarely make them:
    # inconsistent combinations, boundaries, huge and zero amounts, unicode text
    facts = [{"ref": f"H-{i}", **f} for i, f in enumerate(many)]
    assert rules.score(facts) == rules.score_python(facts) == from_scratch(rules, facts)


# random rule files: random conditions over the facts, compiled both ways
leaf = st.one_of(
    st.tuples(st.sampled_from(["proven"]), st.sampled_from(["yes", "no", "not_stated"])).map(
        lambda t: {t[0]: t[1]}
    ),
    st.tuples(st.sampled_from(["breakeven_known", "involves_other_councils"]), yes_no).map(
        lambda t: {t[0]: t[1]}
    ),
    st.tuples(
        st.sampled_from(["breakeven_years", "partner_count"]),
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
        st.sampled_from([0, 1, 2, 2.5]),
    ).map(lambda t: {t[0]: {t[1]: t[2]}}),
)
condition = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
    ),
    max_leaves=5,
)


def rule_file(version: str, outcome_lists: list[list[dict]]) -> str:
    criteria = []
    for i, conds in enumerate(outcome_lists):
        outcomes = [
            {"when": c, "points": k + 1, "reason": f"c{i} o{k} {{ref}}"}
            for k, c in enumerate(conds)
        ]
        outcomes.append({"otherwise": True, "points": 0, "reason": "otherwise"})
        criteria.append({"id": f"c{i}", "question": f"Q{i}?", "outcomes": outcomes})
    doc = {
        "name": "random",
        "version": version,
        "criteria": criteria,
        "recommendations": [
            {"when": {"all_full": "yes"}, "recommend": "approve", "reason": "full"},
            {"when": {"any": [{"total": {"gte": 3}}, {"c0": {"gt": 0}}]}, "recommend": "refer_back",
             "reason": "{missing}"},
            {"otherwise": True, "recommend": "reject", "reason": "{total}"},
        ],
        "tie_break": [{"total": "desc"}, {"ref": "asc"}],
    }  # fmt: skip
    return json.dumps(doc)  # JSON is YAML


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(condition, min_size=1, max_size=3), min_size=1, max_size=2),
    st.integers(0, 10**6),
)
def test_random_rule_files_agree_with_first_match_semantics(outcome_lists, seed):
    from rules.scoring import RuleFileError

    try:
        rs = parse_rule_set(rule_file(f"r{seed}", outcome_lists), source="random.yaml")
    except RuleFileError as exc:
        # refused: a condition the ones before it already cover, or too many and/or
        # groups once compiled for durable_rules' expression limit
        assert "can never apply" in str(exc) or "too complex" in str(exc), str(exc)
        return
    facts = [bid_facts(b) for b in synthetic_bids(120, seed)]
    for f in facts[::3]:  # and the boundaries
        f["breakeven_years"] = 2.0
        f["partner_count"] = 2
    scores, actions = fired_actions(rs, rs.score, facts)
    assert scores == rs.score_python(facts) == from_scratch(rs, facts)
    assert actions == len(facts) * (len(rs.criteria) + 1)
    for f, s in zip(facts, scores, strict=True):  # first match, as the file says
        for crit, result in zip(rs.criteria, s.criteria, strict=True):
            first = next(o for o in crit.outcomes if o.when is None or _holds(o.when, f))
            assert result.points == first.points


def test_prepared_reasons_read_like_reasons_formatted_from_scratch(rules):
    """Reasons are prepared once: {points} and {max_points} filled in per outcome
    (with their conversions and format specs), a reason reading no facts made
    once; what remains is formatted per bid. Braces, conversions and specs of
    every kind give the same text as formatting the whole template per bid."""
    text = SHIPPED.read_text(encoding="utf-8")
    for old, new in (
        ('reason: "involves other councils"',
         'reason: "{{points}} {points!r}/{max_points:>4} {max_points!s:*^7}"'),
        ('reason: "a single-authority bid"', 'reason: "{points:+d} of {max_points:.2f}: {ref!r}"'),
        ('reason: "builds on proven earlier work"',
         'reason: "{points:b} {{{max_points}}} {grant!a} {breakeven_years:08.3f}"'),
        ('reason: "meets every criterion ({total} of {max_total} points)"',
         'reason: "{total}/{max_total} {grant} {savings_note!r} {all_full} {savings_full}"'),
        ('reason: "{total} of {max_total} points, below the 2 needed to refer it back"',
         'reason: "{{total}} {missing!r:.30} {partnership}"'),
    ):  # fmt: skip
        assert old in text
        text = text.replace(old, new)
    rs = parse_rule_set(text.replace('version: "2011.1"', 'version: "fmt"'), source="fmt.yaml")
    facts = april_facts() + [bid_facts(b) for b in synthetic_bids(300, seed=3)]
    scores = rs.score(facts)
    assert scores == rs.score_python(facts) == from_scratch(rs, facts)
    assert scores[0].criteria[0].reason == "{points} 1/   1 ***1***"
    assert scores[0].criteria[2].reason == "1 {1} '\\xa3100,000' 0000.230"
    assert scores[0].recommendation_reason == (
        "7/7 £100,000 '£2,137,416 over 5 years' yes yes"
    )


def test_durable_rules_firing_other_than_one_outcome_per_criterion_is_refused(rules):
    """score checks what durable_rules did: one outcome per criterion, one
    recommendation, per bid; otherwise it names the bid and what fired."""
    facts = april_facts()[:3]
    ok = ["partnership/0", "savings/0", "track_record/0"]
    twice = durable_adapter.Fired(
        3, list("000111222"), [*ok, "partnership/0", "partnership/1", "savings/0", *ok]
    )
    with pytest.raises(durable_adapter.DurableRulesError) as exc:
        rules._combination_codes(facts, twice)
    assert f"bid {facts[1]['ref']}: durable_rules fired ['partnership/0', 'partnership/1', " \
        "'savings/0']; expected exactly one outcome per criterion" in str(exc.value)
    short = durable_adapter.Fired(3, list("00011122"), [*ok, *ok, *ok[:2]])
    with pytest.raises(durable_adapter.DurableRulesError, match=facts[2]["ref"]):
        rules._combination_codes(facts, short)
    assert len(rules._combination_codes(facts, durable_adapter.Fired(3, list("000111222"),
                                                                     ok * 3))) == 3  # fmt: skip
    rec = "recommend/0"
    for ids in (["0", "1", "1", "2"], ["0", "2"]):
        fired = durable_adapter.Fired(3, ids, [rec] * len(ids))
        with pytest.raises(durable_adapter.DurableRulesError) as exc:
            rules._rec_plans_fired(facts, fired)
        assert f"bid {facts[1]['ref']}: durable_rules fired" in str(exc.value)
        assert "expected exactly one recommendation" in str(exc.value)


def test_fire_reads_messages_a_chunk_at_a_time(rules):
    """fire takes a generator (only a chunk's messages exist at once) and reports
    the actions as flat lists; run groups them per message."""
    crit_name, _ = rules.durable_names
    rules._ensure_registered()
    facts = [bid_facts(b) for b in synthetic_bids(durable_adapter.CHUNK * 2 + 7, seed=5)]
    made = []

    def messages():
        for m in rules.criteria_messages(facts):
            made.append(durable_adapter._stats["chunks"])  # (stats() would wait for the lock)
            yield m

    fired = durable_adapter.fire(crit_name, messages(), "facts", owned=True)
    assert fired.count == len(facts) and len(fired.ids) == len(fired.rules) == 3 * len(facts)
    assert len(set(made)) == 3  # made between chunks, not all at first
    grouped = fired.by_message()
    assert grouped == durable_adapter.run(crit_name, rules.criteria_messages(facts))
    assert sorted(grouped[5]) == sorted(fired.of(5))


def _holds(c, f) -> bool:
    from rules.conditions import All, Leaf

    if isinstance(c, Leaf):
        v = f[c.fact]
        return {"eq": v == c.value, "ne": v != c.value, "lt": v < c.value,
                "lte": v <= c.value, "gt": v > c.value, "gte": v >= c.value}[c.op]  # fmt: skip
    if isinstance(c, All):
        return all(_holds(x, f) for x in c.items)
    return any(_holds(x, f) for x in c.items)


# ---------------------------------------------------------------- the traps


def test_scoring_the_same_bids_twice_works(rules):
    """MessageObservedException: never re-assert into a session (fresh session per chunk)."""
    facts = april_facts()
    first = rules.score(facts)
    assert rules.score(facts) == first
    assert rules.score(facts[:1]) == first[:1]


def test_identical_bids_in_one_call_are_both_scored(rules):
    """Facts without an id are identified by content: the adapter gives each an id."""
    f = april_facts()[0]
    scores = rules.score([f, dict(f), dict(f)])
    assert len(scores) == 3 and len({s.total for s in scores}) == 1


def test_two_versions_side_by_side_score_independently(tmp_path, rules):
    text = SHIPPED.read_text(encoding="utf-8")
    v2_path = tmp_path / "efficiency-bids-2011.yaml"
    v2_path.write_text(
        text.replace('version: "2011.1"', 'version: "2011.2"').replace("points: 5", "points: 3"),
        encoding="utf-8",
    )
    v2 = load_rule_set(v2_path)
    assert (v2.name, v2.version) == (rules.name, "2011.2")
    assert set(v2.durable_names).isdisjoint(rules.durable_names)
    facts = april_facts()
    one = rules.score(facts)
    two = v2.score(facts)
    assert [s.total for s in one[:3]] == [7, 7, 7]
    assert [s.total for s in two[:3]] == [5, 5, 5]
    assert rules.score(facts) == one  # interleaved: each version keeps its own rules
    assert v2.score(facts) == two == v2.score_python(facts)
    # same name and version, different content: a different durable ruleset too
    v2b_path = tmp_path / "other.yaml"
    v2b_path.write_text(v2_path.read_text().replace("points: 3", "points: 4"), encoding="utf-8")
    v2b = load_rule_set(v2b_path)
    assert v2b.version == "2011.2" and v2b.durable_names != v2.durable_names
    assert [s.total for s in v2b.score(facts[:3])] == [6, 6, 6]


def test_a_ruleset_name_is_registered_once_with_one_definition(rules):
    rules.score(april_facts()[:1])
    crit_name = rules.durable_names[0]
    assert durable_adapter.is_registered(crit_name)
    definitions = rules.durable_definitions()
    durable_adapter.register(crit_name, definitions[crit_name])  # same: nothing happens
    with pytest.raises(durable_adapter.DurableRulesError, match="already registered"):
        durable_adapter.register(crit_name, {"x/0": {"proven": "yes"}})


def test_no_rule_matched_names_the_bids_and_leaves_no_session_behind():
    """MessageNotHandledException fails the whole batch (no action runs); the
    adapter names the bids no rule matched, and the next call works."""
    name = "test-unmatched@1#0000000000:criteria"
    durable_adapter.register(name, {"only/0": {"proven": "yes"}})
    messages = [{"ref": f"U-{i}", "proven": "yes" if i % 3 else "no"} for i in range(7)]
    with pytest.raises(durable_adapter.NoRuleMatched) as err:
        durable_adapter.run(name, messages)
    assert err.value.refs == ["U-0", "U-3", "U-6"]
    assert "no rule matched bid(s) U-0, U-3, U-6" in str(err.value)
    fine = [m for m in messages if m["proven"] == "yes"]
    assert durable_adapter.run(name, fine) == [["only/0"]] * len(fine)
    assert durable_adapter.run(name, fine, mode="events") == [["only/0"]] * len(fine)


def test_or_conditions_fire_once_per_fact():
    """durable_rules fires a rule once per satisfied disjunct of an $or; the
    compiler's exclusive branches are what keep it to one (shown here raw)."""
    name = "test-or@1#0000000000:criteria"
    durable_adapter.register(
        name,
        {
            "raw_or/0": {"$or": [{"$lt": {"y": 2}}, {"$gte": {"z": 3}}]},
            "other/0": {"$and": [{"$gte": {"y": 2}}, {"$lt": {"z": 3}}]},
        },
    )
    (fired,) = durable_adapter.run(name, [{"ref": "X", "y": 1, "z": 5}])
    assert fired == ["raw_or/0", "raw_or/0"]  # both disjuncts hold: two firings


def test_durable_rules_takes_at_most_15_and_or_groups_per_condition():
    """Its C engine keeps a condition in 31 expression slots, two per and/or group;
    rules.conditions.MAX_GROUPS is that limit and the loader checks it."""
    from rules.conditions import MAX_GROUPS

    def chain(n: int) -> dict:
        cond: dict = {"$neq": {"f0": 0}}
        for i in range(n):
            cond = {"$and" if i % 2 else "$or": [{"$neq": {f"f{i + 1}": 0}}, cond]}
        return cond

    durable_adapter.register(f"test-groups@{MAX_GROUPS}#0:criteria", {"r/0": chain(MAX_GROUPS)})
    with pytest.raises(Exception, match="error code: 113"):
        durable_adapter.register("test-groups@16#0:criteria", {"r/0": chain(MAX_GROUPS + 1)})
    assert not durable_adapter.is_registered("test-groups@16#0:criteria")
    flat = {"$and": [{"$neq": {f"f{i}": 0}} for i in range(150)]}  # leaves are not limited
    durable_adapter.register("test-groups@flat#0:criteria", {"r/0": flat})


def test_the_adapter_host_runs_no_background_threads(rules):
    rules.score(april_facts()[:2])
    host = durable_adapter._host
    assert host is not None
    # the stock Host would have started threading.Timer chains here
    assert not hasattr(host, "_d_timer") and not hasattr(host, "_t_timer")


def test_scoring_from_several_threads_is_serialised(rules):
    facts = [bid_facts(b) for b in synthetic_bids(300, seed=3)]
    expected = rules.score_python(facts)
    results: list = [None] * 4
    errors: list = []

    def work(i: int) -> None:
        try:
            results[i] = rules.score(facts)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(r == expected for r in results)


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def test_memory_is_flat_over_repeated_rounds(rules):
    """Sessions are deleted after each chunk: 10 rounds of 2,000 bids do not grow RSS."""
    facts = [bid_facts(b) for b in synthetic_bids(2000, seed=11)]
    expected = rules.score_python(facts)
    deleted_before = durable_adapter.stats()["sessions_deleted"]
    sizes = []
    for _ in range(10):
        assert rules.score(facts) == expected
        sizes.append(rss_mb())
    chunks = -(-2000 // durable_adapter.CHUNK)
    assert durable_adapter.stats()["sessions_deleted"] - deleted_before == 10 * 2 * chunks
    growth = max(sizes[1:]) - sizes[1]
    print(f"RSS over 10 rounds of 2,000 bids (MB): {[round(s, 1) for s in sizes]}")
    assert growth < 15, sizes
