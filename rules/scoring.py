"""Declarative scoring: versioned YAML rule sets compiled to durable_rules.

A rule set (``rules/scoring/<name>.yaml``, format in docs/rules.md) declares
criteria, each a first-match list of outcomes worth some points with a reason,
recommendations (also first match) and a tie-break order. :func:`load_rule_set`
validates the file strictly (every error names the file and the path inside
it) and compiles it; :meth:`RuleSet.score` evaluates bids' facts (made by
:func:`bid_facts`) through durable_rules and returns, per bid, the points per
criterion with the reason, the total, and a recommendation with its reason.
:meth:`RuleSet.score_python` evaluates the same compiled conditions in plain
Python and must agree exactly (tests/test_rules_durable.py checks it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import string
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.domain.errors import ValidationError
from engine.domain.money import format_pence
from engine.domain.savings import ParsedSavings, SavingsBasis, parse_savings
from engine.domain.yamlio import load_yaml
from rules import durable_adapter, loader
from rules.conditions import (
    FALSE,
    MAX_GROUPS,
    Cond,
    ConditionError,
    FactSpec,
    TooComplex,
    facts_used,
    first_match,
    groups,
    parse_condition,
    to_durable,
    to_python,
)
from rules.errors import RuleFileError
from rules.loader import Keys

__all__ = [
    "FACTS",
    "RULES_DIR",
    "RECOMMENDATIONS",
    "BidScore",
    "CriterionResult",
    "RuleFileError",
    "RuleSet",
    "ScoringError",
    "bid_facts",
    "load_rule_set",
    "stored_rule_set",
]

RULES_DIR = Path(__file__).resolve().parent / "scoring"
RECOMMENDATIONS = ("approve", "refer_back", "reject")
# How recommendation messages go to durable_rules. Measured (bench/bench_scoring.py,
# 10,000 bids, chunks of 50): posting them as events and asserting them as facts
# cost the same within noise (events consumed on match leave the session
# emptier); events are used, as the outcomes are exclusive and one must fire.
RECOMMEND_MODE: durable_adapter.Mode = "events"

_YN = ("yes", "no")
_BASES = tuple(b.value for b in SavingsBasis)

# fact name -> description. Every fact is present in every bid's facts.
FACTS: dict[str, str] = {
    "ref": "the bid's reference, e.g. B-0001",
    "grant_pence": "grant requested, in pence",
    "involves_other_councils": "yes if declared a partnership or partners are named, else no",
    "partner_count": "number of partner authorities named",
    "savings_quantified": "yes if the cashable savings were stated as an amount, else no",
    "savings_basis": "how the savings were written: " + ", ".join(_BASES),
    "savings_annual_pence": "average cashable savings per year in pence (0 when not known)",
    "breakeven_known": "yes if savings per year are known and above zero, else no",
    "breakeven_years": "grant / savings per year, 2 decimal places (0.0 when not known)",
    "savings_per_pound": "savings per year / grant, 4 decimal places (0.0 when not known)",
    "proven": "builds on proven earlier work: yes, no or not_stated",
    "invest_to_save": "yes if the grant is to be repaid from the savings, else no",
    "savings_text": "the savings exactly as written (reasons only)",
    "savings_note": "the savings as read, e.g. '£2,137,416 over 5 years', 'none stated' "
    "(reasons only)",
    "grant": "the grant requested, formatted, e.g. '£100,000' (reasons only)",
}
TEMPLATE_ONLY = frozenset({"savings_text", "savings_note", "grant"})
FACT_SPECS: dict[str, FactSpec] = {
    "ref": FactSpec(numeric=False),
    "grant_pence": FactSpec(numeric=True),
    "involves_other_councils": FactSpec(numeric=False, values=_YN),
    "partner_count": FactSpec(numeric=True),
    "savings_quantified": FactSpec(numeric=False, values=_YN),
    "savings_basis": FactSpec(numeric=False, values=_BASES),
    "savings_annual_pence": FactSpec(numeric=True),
    "breakeven_known": FactSpec(numeric=False, values=_YN),
    "breakeven_years": FactSpec(numeric=True),
    "savings_per_pound": FactSpec(numeric=True),
    "proven": FactSpec(numeric=False, values=("yes", "no", "not_stated")),
    "invest_to_save": FactSpec(numeric=False, values=_YN),
}
assert set(FACT_SPECS) == set(FACTS) - TEMPLATE_ONLY

# A bid's facts as bid_facts makes them: used to check reason templates at load time.
SAMPLE_FACTS: dict[str, Any] = {
    "ref": "B-0001",
    "grant_pence": 10_000_000,
    "involves_other_councils": "yes",
    "partner_count": 2,
    "savings_quantified": "yes",
    "savings_basis": "over_years",
    "savings_annual_pence": 42_748_320,
    "breakeven_known": "yes",
    "breakeven_years": 0.23,
    "savings_per_pound": 4.2748,
    "proven": "yes",
    "invest_to_save": "no",
    "savings_text": "2,137,416 5 years",
    "savings_note": "£2,137,416 over 5 years",
    "grant": "£100,000",
}
assert set(SAMPLE_FACTS) == set(FACTS)

_NAME_RE, _VERSION_RE = loader.NAME_RE, loader.VERSION_RE
_ID_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_RESERVED = frozenset(
    {"all", "any", "total", "max_total", "all_full", "missing", "points", "max_points",
     "id", "sid", "otherwise", "recommend", "q_"}
)  # fmt: skip


# ------------------------------------------------------------------ the file's model


class RuleSetFile(Keys):
    """The top level of a scoring rule set (docs/rules.md)."""

    name: Any = None
    version: Any = None
    title: Any = None
    source: Any = None
    description: Any = None
    criteria: Any = None
    recommendations: Any = None
    tie_break: Any = None


class CriterionModel(Keys):
    """One entry of ``criteria``."""

    id: Any = None
    question: Any = None
    weight: Any = None
    outcomes: Any = None


class OutcomeModel(Keys):
    """One entry of a criterion's ``outcomes``."""

    when: Any = None
    otherwise: Any = None
    points: Any = None
    reason: Any = None


class RecommendationModel(Keys):
    """One entry of ``recommendations``."""

    when: Any = None
    otherwise: Any = None
    recommend: Any = None
    reason: Any = None


class ScoringError(ValidationError):
    """Facts that cannot be scored (a missing or mistyped fact), naming the bid."""


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class CriterionResult:
    criterion: str
    question: str
    points: int
    max_points: int
    full: bool
    reason: str


@dataclass(frozen=True)
class BidScore:
    ref: str
    total: int
    max_total: int
    criteria: tuple[CriterionResult, ...]
    recommendation: str
    recommendation_reason: str
    missing: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "ref": self.ref,
            "total": self.total,
            "max_total": self.max_total,
            "criteria": [asdict(c) for c in self.criteria],
            "recommendation": self.recommendation,
            "recommendation_reason": self.recommendation_reason,
            "missing": list(self.missing),
        }


# ------------------------------------------------------------------ compiled rule set


@dataclass(frozen=True)
class Outcome:
    where: str  # e.g. criteria[1].outcomes[0]
    when: Cond | None  # None: otherwise
    compiled: Cond  # exclusive of the outcomes before it
    points: int  # weighted
    reason: str
    rule: str  # durable_rules rule name


@dataclass(frozen=True)
class Criterion:
    id: str
    question: str
    weight: int
    outcomes: tuple[Outcome, ...]
    max_points: int  # weighted


@dataclass(frozen=True)
class Recommendation:
    where: str
    when: Cond | None
    compiled: Cond
    recommend: str
    reason: str
    rule: str


Chosen = tuple[Outcome, ...]


class RuleSet:
    """A validated, compiled rule set. Build with :func:`load_rule_set`."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        title: str,
        citation: str,
        description: str,
        sha256: str,
        text: str,
        source: str,
        path: Path | None,
        criteria: tuple[Criterion, ...],
        recommendations: tuple[Recommendation, ...],
        tie_break: tuple[tuple[str, str], ...],
        transient: bool = False,
    ) -> None:
        self.name = name
        self.version = version
        self.title = title
        self.citation = citation  # the file's "source:" (where the criteria come from)
        self.description = description
        self.sha256 = sha256
        self.text = text
        self.source = source  # the file name
        self.path = path
        self.criteria = criteria
        self.recommendations = recommendations
        self.tie_break = tie_break
        self.max_total = sum(c.max_points for c in criteria)
        base = f"{name}@{version}#{sha256[:10]}"
        self.durable_names = (f"{base}:criteria", f"{base}:recommend")
        # What goes to durable_rules: only the fields the conditions read (and ref, to
        # name a bid in errors). Every field costs: durable_rules JSON-encodes each
        # batch and JSON-decodes each fired action's whole message.
        used = {"ref"}
        for c in criteria:
            for o in c.outcomes:
                used |= facts_used(o.compiled)
        self._crit_fields = tuple(sorted(used))
        used = {"ref"}
        for r in recommendations:
            used |= facts_used(r.compiled)
        self._rec_fields = tuple(sorted(used))
        self._py_criteria: list[list[tuple[Callable[[Mapping[str, Any]], bool], Outcome]]] = [
            [(to_python(o.compiled), o) for o in c.outcomes] for c in criteria
        ]
        self._py_recommend = [(to_python(r.compiled), r) for r in recommendations]
        # What score and score_python build results from (_Plan, _RecPlan, _Combo). A
        # combination of outcomes, one per criterion, is numbered in mixed radix:
        # criterion i's outcome k adds k * the numbers of outcomes of the criteria
        # before it multiplied together.
        plans: list[list[_Plan]] = []
        place = 1
        for i, c in enumerate(criteria):
            plans.append([_Plan(c, o, 1 << i, k * place) for k, o in enumerate(c.outcomes)])
            place *= len(c.outcomes)
        self._plans = plans
        self._plan_by_rule = {p.outcome.rule: p for ps in plans for p in ps}
        self._py_plans = [
            [(test, p) for (test, _), p in zip(tests, ps, strict=True)]
            for tests, ps in zip(self._py_criteria, plans, strict=True)
        ]
        summary = _summary_values(criteria, [c.outcomes[0] for c in criteria], 0, 0, [])
        self._rec_plans = {r.rule: _RecPlan(r, frozenset(summary)) for r in recommendations}
        self._rec_summary = tuple(k for k in self._rec_fields if k in summary)
        # A transient rule set (a what-if upload) is never registered with
        # durable_rules: score() evaluates it in plain Python (see rules/durable_adapter.py)
        self.transient = transient
        self._registered = False
        self._register_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RuleSet {self.name} {self.version} ({self.source}, sha256 {self.sha256[:12]})>"

    # -- durable_rules definitions

    def durable_definitions(self) -> dict[str, dict[str, dict]]:
        """ruleset name -> {rule name: durable_rules condition}, for both rulesets."""
        crit_name, rec_name = self.durable_names
        return {
            crit_name: {
                o.rule: to_durable(o.compiled)
                for c in self.criteria
                for o in c.outcomes
                if o.compiled != FALSE  # an 'otherwise' the outcomes before it exhaust
            },
            rec_name: {
                r.rule: to_durable(r.compiled) for r in self.recommendations if r.compiled != FALSE
            },
        }

    def _ensure_registered(self) -> None:
        if self._registered:
            return
        if self.transient:
            raise durable_adapter.DurableRulesError(
                f"{self.source}: a what-if rule set is evaluated in plain Python and never "
                "registered with durable_rules (registered rulesets are never freed)"
            )
        with self._register_lock:
            if not self._registered:
                for name, rules in self.durable_definitions().items():
                    durable_adapter.register(name, rules)
                self._registered = True

    # -- scoring

    def score(self, facts: Sequence[dict]) -> list[BidScore]:
        """Score bids' facts through durable_rules (the product path); a transient
        rule set (what-if) through :meth:`score_python`, which gives the same results."""
        if self.transient:
            return self.score_python(facts)
        self._check_facts(facts)
        self._ensure_registered()
        crit_name, rec_name = self.durable_names
        keys = self._crit_fields  # the messages of criteria_messages, made a chunk at a time
        fired = durable_adapter.fire(
            crit_name, ({k: f[k] for k in keys} for f in facts), "facts", owned=True
        )
        combos = _Combos(self)
        chosen = [combos.of(code) for code in self._combination_codes(facts, fired)]
        fired = durable_adapter.fire(
            rec_name,
            (combo.message(f) for f, combo in zip(facts, chosen, strict=True)),
            RECOMMEND_MODE,
            owned=True,
        )
        recs = self._rec_plans_fired(facts, fired)
        return [combo.result(f, rec) for f, combo, rec in zip(facts, chosen, recs, strict=True)]

    def recommend(
        self, facts: Mapping[str, Any], points: Mapping[str, int]
    ) -> tuple[str, str, tuple[str, ...]]:
        """The recommendation for one bid whose criteria carry ``points`` (e.g. after
        an officer's override), through durable_rules like ``score``:
        (recommendation, reason, missing questions)."""
        unknown = set(points) - {c.id for c in self.criteria}
        if unknown:
            raise ScoringError(f"{self.source}: unknown criteria {sorted(unknown)}")
        chosen = tuple(
            dataclasses.replace(o, points=points.get(c.id, o.points))
            for c, o in zip(self.criteria, self.outcomes_python(facts), strict=True)
        )
        self._ensure_registered()
        _, rec_name = self.durable_names
        fired = durable_adapter.fire(rec_name, [self.recommend_message(facts, chosen)],
                                     RECOMMEND_MODE)  # fmt: skip
        (rec,) = self._rec_plans_fired([facts], fired)
        result = self._result(facts, chosen, rec.recommendation)
        return result.recommendation, result.recommendation_reason, result.missing

    def score_python(self, facts: Sequence[dict]) -> list[BidScore]:
        """The same compiled conditions evaluated in plain Python (same results as score)."""
        self._check_facts(facts)
        combos = _Combos(self)
        rec_plans = [(test, self._rec_plans[r.rule]) for test, r in self._py_recommend]
        out = []
        for f in facts:
            code = sum(next(p.code for test, p in plans if test(f)) for plans in self._py_plans)
            combo = combos.of(code)
            message = combo.message(f)
            out.append(combo.result(f, next(p for test, p in rec_plans if test(message))))
        return out

    def outcomes_python(self, facts: Mapping[str, Any]) -> Chosen:
        """The outcome of each criterion for one bid's facts, in plain Python."""
        return tuple(
            next(o for test, o in outcomes if test(facts)) for outcomes in self._py_criteria
        )

    def criteria_messages(self, facts: Sequence[Mapping[str, Any]]) -> list[dict]:
        """What goes to durable_rules for the criteria: the facts the conditions read."""
        keys = self._crit_fields
        return [{k: f[k] for k in keys} for f in facts]

    def recommend_message(self, facts: Mapping[str, Any], chosen: Chosen) -> dict:
        """What a recommendation is decided on: the fields the recommendations read,
        from the facts and the criteria's results (total, max_total, <criterion>,
        <criterion>_full, all_full)."""
        values: dict[str, Any] = {"total": 0, "max_total": self.max_total}
        all_full = "yes"
        for crit, outcome in zip(self.criteria, chosen, strict=True):
            values["total"] += outcome.points
            values[crit.id] = outcome.points
            full = outcome.points == crit.max_points
            values[f"{crit.id}_full"] = "yes" if full else "no"
            if not full:
                all_full = "no"
        values["all_full"] = all_full
        return {k: values[k] if k in values else facts[k] for k in self._rec_fields}

    def _combination_codes(
        self, facts: Sequence[Mapping[str, Any]], fired: durable_adapter.Fired
    ) -> list[int]:
        """For each bid, the number of the combination of outcomes durable_rules
        chose (exactly one per criterion, checked)."""
        n = len(facts)
        codes = [0] * n
        seen = [0] * n  # bit i: criterion i has its outcome; bit len(criteria): twice
        twice = 1 << len(self.criteria)
        by_rule = self._plan_by_rule
        for msg_id, rule in zip(fired.ids, fired.rules, strict=True):
            i = int(msg_id)
            plan = by_rule[rule]
            if seen[i] & plan.bit:
                seen[i] |= twice
            seen[i] |= plan.bit
            codes[i] += plan.code
        if fired.count != n or seen.count(twice - 1) != n:
            bad = next((i for i, s in enumerate(seen) if s != twice - 1), 0)
            raise durable_adapter.DurableRulesError(
                f"{self.source}: bid {facts[bad]['ref']}: durable_rules fired "
                f"{sorted(fired.of(bad))}; expected exactly one outcome per criterion"
            )
        return codes

    def _rec_plans_fired(
        self, facts: Sequence[Mapping[str, Any]], fired: durable_adapter.Fired
    ) -> list[_RecPlan]:
        """For each bid, the recommendation durable_rules chose (exactly one, checked)."""
        n = len(facts)
        chosen: list[_RecPlan | None] = [None] * n
        ok = fired.count == n
        plans = self._rec_plans
        for msg_id, rule in zip(fired.ids, fired.rules, strict=True):
            i = int(msg_id)
            if chosen[i] is not None:
                ok = False
            chosen[i] = plans[rule]
        if not ok or None in chosen:
            bad = next((i for i in range(n) if len(fired.of(i)) != 1), 0)
            raise durable_adapter.DurableRulesError(
                f"{self.source}: bid {facts[bad]['ref']}: durable_rules fired "
                f"{sorted(fired.of(bad))}; expected exactly one recommendation"
            )
        return chosen  # type: ignore[return-value]

    def _result(self, facts: Mapping[str, Any], chosen: Chosen, rec: Recommendation) -> BidScore:
        """One bid's result, formatting every reason from scratch: what ``recommend``
        uses (its points may be an officer's), and the reference the prepared
        results of score/score_python (_Combos) are tested against."""
        results = []
        missing = []
        total = 0
        values: dict[str, Any] = dict(facts)
        for crit, outcome in zip(self.criteria, chosen, strict=True):
            full = outcome.points == crit.max_points
            values["points"] = outcome.points
            values["max_points"] = crit.max_points
            results.append(
                CriterionResult(
                    crit.id,
                    crit.question,
                    outcome.points,
                    crit.max_points,
                    full,
                    outcome.reason.format_map(values),
                )
            )
            total += outcome.points
            if not full:
                missing.append(crit.question)
        del values["points"], values["max_points"]
        values.update(_summary_values(self.criteria, chosen, total, self.max_total, missing))
        return BidScore(
            ref=facts["ref"],
            total=total,
            max_total=self.max_total,
            criteria=tuple(results),
            recommendation=rec.recommend,
            recommendation_reason=rec.reason.format_map(values),
            missing=tuple(missing),
        )

    def _check_facts(self, facts: Sequence[Mapping[str, Any]]) -> None:
        """Every fact present and of its kind (a number, or one of its allowed strings)."""
        for n, f in enumerate(facts):
            try:
                for k, allowed in _CHECKS:
                    v = f[k]
                    if allowed is None:
                        if type(v) not in _NUMBER or v != v or v in _INFINITIES:
                            break
                    elif type(v) is not str or (allowed and v not in allowed):
                        break
                else:
                    continue
            except (KeyError, TypeError):
                pass
            self._fact_error(n, f)

    def _fact_error(self, n: int, f: object) -> None:
        if not isinstance(f, Mapping):
            raise ScoringError(f"facts[{n}]: {type(f).__name__} is not a facts mapping")
        ref = f.get("ref", f"facts[{n}]")
        absent = [k for k in FACTS if k not in f]
        if absent:
            raise ScoringError(
                f"bid {ref}: facts lack {', '.join(absent)} (make facts with bid_facts)"
            )
        for k, spec in FACT_SPECS.items():
            v = f[k]
            if spec.numeric:
                good = type(v) in _NUMBER and math.isfinite(v)
            else:
                good = type(v) is str and (spec.values is None or v in spec.values)
            if not good:
                raise ScoringError(f"bid {ref}: fact {k}: {v!r} is not {_expected(spec)}")
        for k in sorted(TEMPLATE_ONLY):
            if type(f[k]) is not str:
                raise ScoringError(f"bid {ref}: fact {k}: {f[k]!r} is not text")
        raise AssertionError("unreachable")  # pragma: no cover

    # -- ranking

    def rank(self, facts: Sequence[dict], scores: Sequence[BidScore]) -> list[BidScore]:
        """The scores ordered by the rule set's tie_break (stable, first key most important)."""
        by_ref: dict[str, Mapping[str, Any]] = {}
        for f in facts:
            if f["ref"] in by_ref:
                raise ScoringError(f"rank: bid {f['ref']} appears twice in the facts")
            by_ref[f["ref"]] = f
        for s in scores:
            if s.ref not in by_ref:
                raise ScoringError(f"rank: no facts for scored bid {s.ref}")
        ordered = list(scores)
        for key, direction in reversed(self.tie_break):
            ordered.sort(key=self._sort_key(key, by_ref), reverse=direction == "desc")
        return ordered

    def sort_key(self, score: BidScore, facts: Mapping[str, Any]) -> tuple[Any, ...]:
        """One key per bid that orders bids as :meth:`rank` does in a single ascending
        sort (a descending key compares reversed). :meth:`rank` keeps the given order
        between bids equal on every key: add that order (e.g. the bid's id) last."""
        by_ref = {score.ref: facts}
        return tuple(
            descending(self._sort_key(key, by_ref)(score)) if direction == "desc"
            else self._sort_key(key, by_ref)(score)
            for key, direction in self.tie_break
        )

    def _sort_key(
        self, key: str, by_ref: Mapping[str, Mapping[str, Any]]
    ) -> Callable[[BidScore], Any]:
        if key == "total":
            return lambda s: s.total
        if key == "max_total":
            return lambda s: s.max_total
        ids = [c.id for c in self.criteria]
        if key in ids:
            i = ids.index(key)
            return lambda s: s.criteria[i].points
        return lambda s: by_ref[s.ref][key]


def descending(value: Any) -> Any:
    """``value`` as a key that sorts the other way round: a number negated (compared
    in C: ranking 100,000 bids afresh spent 4 s in :class:`Descending`'s ``__eq__``
    through tuple comparisons), anything else wrapped in :class:`Descending`."""
    if isinstance(value, _NUMBER) and value == value:  # not NaN
        return -value
    return Descending(value)


class Descending:
    """A value that sorts the other way round (a descending tie-break key inside one
    ascending sort key, whatever the value's type)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: Descending) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and bool(self.value == other.value)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Descending({self.value!r})"


_NUMBER = (int, float)
_INFINITIES = (math.inf, -math.inf)
# (fact, None for a number | frozenset of allowed strings | empty for any string)
_CHECKS = tuple(
    (k, None if spec.numeric else frozenset(spec.values or ())) for k, spec in FACT_SPECS.items()
) + tuple((k, frozenset()) for k in sorted(TEMPLATE_ONLY))


def _expected(spec: FactSpec) -> str:
    if spec.numeric:
        return "a number"
    if spec.values:
        return "one of " + ", ".join(spec.values)
    return "text"


class _Plan:
    """One outcome of one criterion, prepared for building results: its points
    and whether they are full marks, and its reason with ``{points}`` and
    ``{max_points}`` (the outcome's constants) already filled in, so only facts
    remain to fill in -- or, when none do, the whole CriterionResult, made once
    (results are immutable)."""

    __slots__ = ("outcome", "criterion", "bit", "code", "points", "full", "template", "result")

    def __init__(self, criterion: Criterion, outcome: Outcome, bit: int, code: int) -> None:
        self.outcome = outcome
        self.criterion = criterion
        self.bit = bit  # the criterion's bit
        self.code = code  # what it adds to the number of a combination
        self.points = outcome.points
        self.full = outcome.points == criterion.max_points
        self.template, uses_facts = _fill_in(
            outcome.reason, {"points": outcome.points, "max_points": criterion.max_points}
        )
        self.result: CriterionResult | None = (
            None if uses_facts else self.make(self.template.format_map({}))
        )

    def make(self, reason: str) -> CriterionResult:
        c = self.criterion
        return CriterionResult(c.id, c.question, self.points, c.max_points, self.full, reason)

    def render(self, facts: Mapping[str, Any]) -> CriterionResult:
        """The result for one bid's facts (when ``result`` is None: it reads facts)."""
        return self.make(self.template.format_map(facts))


class _RecPlan:
    """A recommendation with its reason template and the facts (beyond the
    criteria's summary: total, missing ...) the template reads."""

    __slots__ = ("recommendation", "rule", "recommend", "reason", "uses_facts")

    def __init__(self, recommendation: Recommendation, summary: frozenset[str]) -> None:
        self.recommendation = recommendation
        self.rule = recommendation.rule
        self.recommend = recommendation.recommend
        self.reason = recommendation.reason
        self.uses_facts = any(
            field is not None and field not in summary
            for _, field, _, _ in string.Formatter().parse(self.reason)
        )


class _Values(dict):
    """A recommendation reason's placeholders: the summary, then the facts."""

    __slots__ = ("facts",)

    def __init__(self, summary: Mapping[str, Any], facts: Mapping[str, Any]) -> None:
        super().__init__(summary)
        self.facts = facts

    def __missing__(self, key: str) -> Any:
        return self.facts[key]


class _Combo:
    """What one combination of outcomes (one per criterion) gives every bid
    that has it: the total, the missing questions, the summary values the
    recommendations read, and each recommendation's reason when it reads no
    facts. Many bids share a combination: all this is worked out once."""

    __slots__ = ("rule_set", "plans", "total", "missing", "summary", "rec_base", "reasons")

    def __init__(self, rule_set: RuleSet, code: int) -> None:
        self.rule_set = rule_set
        plans = []
        for outcomes in rule_set._plans:
            code, k = divmod(code, len(outcomes))
            plans.append(outcomes[k])
        self.plans = tuple(plans)
        self.total = sum(p.points for p in plans)
        self.missing = tuple(p.criterion.question for p in plans if not p.full)
        self.summary = _summary_values(
            rule_set.criteria, [p.outcome for p in plans], self.total, rule_set.max_total,
            self.missing,
        )  # fmt: skip
        self.rec_base = {k: self.summary[k] for k in rule_set._rec_summary}
        self.reasons: dict[str, str] = {}

    def message(self, facts: Mapping[str, Any]) -> dict:
        """RuleSet.recommend_message for this combination."""
        base = self.rec_base
        return {k: base[k] if k in base else facts[k] for k in self.rule_set._rec_fields}

    def result(self, facts: Mapping[str, Any], rec: _RecPlan) -> BidScore:
        """RuleSet._result for this combination."""
        if rec.uses_facts:
            reason = rec.reason.format_map(_Values(self.summary, facts))
        else:
            found = self.reasons.get(rec.rule)
            if found is None:
                found = self.reasons[rec.rule] = rec.reason.format_map(self.summary)
            reason = found
        return BidScore(
            ref=facts["ref"],
            total=self.total,
            max_total=self.rule_set.max_total,
            criteria=tuple(p.result or p.render(facts) for p in self.plans),
            recommendation=rec.recommend,
            recommendation_reason=reason,
            missing=self.missing,
        )


class _Combos(dict):
    """The combinations met in one call, by their numbers."""

    def __init__(self, rule_set: RuleSet) -> None:
        super().__init__()
        self.rule_set = rule_set

    def of(self, code: int) -> _Combo:
        combo = self.get(code)
        if combo is None:
            combo = self[code] = _Combo(self.rule_set, code)
        return combo


_CONVERSIONS: dict[str, Callable[[Any], str]] = {"r": repr, "s": str, "a": ascii}


def _fill_in(template: str, values: Mapping[str, Any]) -> tuple[str, bool]:
    """``template`` with the placeholders named in ``values`` formatted as
    str.format would; the rest kept. Also: whether any placeholder remains."""
    out = []
    remains = False
    for literal, field, spec, conversion in string.Formatter().parse(template):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        if field in values:
            value = values[field]
            if conversion:
                value = _CONVERSIONS[conversion](value)
            text = format(value, spec or "")
            out.append(text.replace("{", "{{").replace("}", "}}"))
        else:
            remains = True
            out.append(
                "{" + field + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "") + "}"
            )  # fmt: skip
    return "".join(out), remains


def _summary_values(
    criteria: Sequence[Criterion],
    chosen: Sequence[Outcome],
    total: int,
    max_total: int,
    missing: Sequence[str],
) -> dict[str, Any]:
    """The placeholders a recommendation's reason may use besides the facts."""
    values: dict[str, Any] = {"total": total, "max_total": max_total}
    all_full = "yes"
    for crit, outcome in zip(criteria, chosen, strict=True):
        values[crit.id] = outcome.points
        full = outcome.points == crit.max_points
        values[f"{crit.id}_full"] = "yes" if full else "no"
        if not full:
            all_full = "no"
    values["all_full"] = all_full
    values["missing"] = "; ".join(missing) if missing else "nothing"
    return values


# ------------------------------------------------------------------ facts


def bid_facts(bid: Mapping[str, Any]) -> dict:
    """A bid row (as the engine stores it) as the facts rule sets are written against.

    Every key of :data:`FACTS` is always present (durable_rules 2.0.28 hangs on
    not-exists conditions, so nothing may rely on a missing key); yes/no facts
    are the strings "yes" and "no"."""
    ref = bid.get("ref")
    if not isinstance(ref, str) or not ref:
        raise ScoringError(f"bid_facts: ref: {ref!r} is not a bid reference", field="ref")
    grant = bid.get("grant_requested_pence")
    if isinstance(grant, bool) or not isinstance(grant, int) or grant < 0:
        raise ScoringError(
            f"bid {ref}: grant_requested_pence: {grant!r} is not a number of pence",
            field="grant_requested_pence",
            item=ref,
        )
    parsed = _savings(bid, ref)
    annual = parsed.annual_pence()
    partner_count = bid.get("partner_count") or 0
    if isinstance(partner_count, bool) or not isinstance(partner_count, int) or partner_count < 0:
        raise ScoringError(f"bid {ref}: partner_count: {partner_count!r} is not a count", item=ref)
    partnership = _tristate(bid, "partnership", ref)
    proven = _tristate(bid, "builds_on_proven", ref)
    quantified = parsed.basis not in (SavingsBasis.NONE_STATED, SavingsBasis.UNREADABLE)
    known = annual is not None and annual > 0
    return {
        "ref": ref,
        "grant_pence": grant,
        "involves_other_councils": "yes" if partnership == "yes" or partner_count >= 1 else "no",
        "partner_count": partner_count,
        "savings_quantified": "yes" if quantified else "no",
        "savings_basis": parsed.basis.value,
        "savings_annual_pence": annual if annual is not None else 0,
        "breakeven_known": "yes" if known else "no",
        "breakeven_years": round(grant / annual, 2) if known else 0.0,  # type: ignore[operator]
        "savings_per_pound": round(annual / grant, 4) if known and grant else 0.0,  # type: ignore[operator]
        "proven": proven,
        "invest_to_save": "yes" if bid.get("invest_to_save") else "no",
        "savings_text": parsed.text,
        "savings_note": _savings_note(parsed),
        "grant": format_pence(grant),
    }


def _tristate(bid: Mapping[str, Any], key: str, ref: str) -> str:
    value = bid.get(key) or "not_stated"
    if value not in ("yes", "no", "not_stated"):
        raise ScoringError(f"bid {ref}: {key}: {value!r} is not yes, no or not_stated", item=ref)
    return value


def _savings(bid: Mapping[str, Any], ref: str) -> ParsedSavings:
    """The bid's savings as stored when it came in (what people saw), rebuilt from
    the row without re-reading the text; read from the text only when the row has
    no parsed fields (e.g. a bid not yet stored)."""
    text = bid.get("savings_text") or ""
    if bid.get("savings_basis") is None:
        return parse_savings(text)
    amount, high, years = (bid.get("savings_amount_pence"), bid.get("savings_high_pence"),
                           bid.get("savings_years"))
    annual = bool(bid.get("savings_annual"))
    try:
        basis = SavingsBasis(bid["savings_basis"])
        return ParsedSavings(text, basis, amount, high, years, annual,
                             note=_stored_note(basis, amount, high, years, annual))
    except (ValueError, TypeError) as exc:
        raise ScoringError(f"bid {ref}: savings fields are inconsistent: {exc}", item=ref) from None


def _stored_note(
    basis: SavingsBasis, amount: int | None, high: int | None, years: int | None, annual: bool
) -> str:
    if basis is SavingsBasis.PER_ANNUM:
        return f"{format_pence(amount)} per year"  # type: ignore[arg-type]
    if basis is SavingsBasis.OVER_YEARS:
        return f"{format_pence(amount)} over {years} {'year' if years == 1 else 'years'}"  # type: ignore[arg-type]
    if basis is SavingsBasis.ONE_OFF:
        return f"{format_pence(amount)} in total (no period stated)"  # type: ignore[arg-type]
    if basis is SavingsBasis.RANGE:
        when = "per year" if annual else "in total (no period stated)"
        return f"{format_pence(amount)} to {format_pence(high)} {when}"  # type: ignore[arg-type]
    return ""


def _savings_note(parsed: ParsedSavings) -> str:
    if parsed.basis is SavingsBasis.NONE_STATED:
        return "none stated"
    if parsed.basis is SavingsBasis.UNREADABLE:
        return f"unreadable ({parsed.text!r} could not be read as an amount)"
    return parsed.note


# ------------------------------------------------------------------ loading

def _build(text: str, source: str, path: Path | None, sha256: str) -> RuleSet:
    return _Parser(source).parse(text, path, sha256)


def _build_transient(text: str, source: str, path: Path | None, sha256: str) -> RuleSet:
    return _Parser(source).parse(text, path, sha256, transient=True)


FORMAT: loader.Format[RuleSet] = loader.Format(kind="scoring", build=_build, error=RuleFileError)
# what-if: the same format, built as a transient rule set (scored in plain Python)
WHATIF: loader.Format[RuleSet] = loader.Format(
    kind="scoring", build=_build_transient, error=RuleFileError
)


def load_rule_set(name_or_path: str | Path) -> RuleSet:
    """A rule set by name (rules/scoring/<name>.yaml) or path, validated and compiled.

    Cached (rules.loader) by resolved path and the sha256 of the content: editing
    the file gives a new RuleSet on the next call."""
    return loader.load(FORMAT, _resolve(name_or_path))


def stored_rule_set(text: str, source: str) -> RuleSet:
    """A rule set version kept in the database (an upload, or a file as it was when
    first used): validated and compiled like a file, cached by its content in the
    one bounded cache and scored through durable_rules like a file. Stored versions
    are few and each is registered once (rules/durable_adapter.py: rulesets are never
    unregistered, so only text that is kept takes this path, never a what-if)."""
    return loader.load_text(FORMAT, text, source)


def rule_set_from_text(text: str, source: str) -> RuleSet:
    """A rule set from text that is not a file (a what-if upload): validated and
    compiled as a *transient* rule set, never cached nor registered with
    durable_rules (its :meth:`RuleSet.score` is :meth:`RuleSet.score_python`; why:
    rules/durable_adapter.py, "Rulesets are never unregistered")."""
    return loader.parse(WHATIF, text, source)


def whatif_rule_set(name_or_path: str | Path | RuleSet) -> RuleSet:
    """The rule set a what-if compares against: one already built (an upload, see
    :func:`rule_set_from_text`), a shipped one by name (loaded and cached like any
    rule set in use), or a file by path read once as a transient rule set, like
    an upload (an edited file is a new rule set each time, so none is kept)."""
    if isinstance(name_or_path, RuleSet):
        return name_or_path
    if isinstance(name_or_path, str) and not _is_path(name_or_path.strip()):
        return load_rule_set(name_or_path)
    return loader.parse_file(WHATIF, _resolve(name_or_path))


def _is_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith((".yaml", ".yml"))


def available() -> list[str]:
    """The names of the rule sets shipped in rules/scoring/."""
    return sorted(p.stem for p in RULES_DIR.glob("*.yaml"))


def _resolve(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, Path):
        return name_or_path.resolve()
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise RuleFileError("rules", "", f"{name_or_path!r} is not a rule set name or path")
    text = name_or_path.strip()
    if _is_path(text):
        return Path(text).resolve()
    if not _NAME_RE.fullmatch(text):
        raise RuleFileError(text, "", "is not a rule set name (letters, digits, '.', '_', '-')")
    path = RULES_DIR / f"{text}.yaml"
    if not path.is_file():
        raise RuleFileError(
            f"{text}.yaml", "", f"no rule set named {text!r}; available: {', '.join(available())}"
        )
    return path.resolve()


def parse_rule_set(
    text: str, *, source: str, path: Path | None = None, sha256: str | None = None
) -> RuleSet:
    """Validate and compile a rule file's text (``source`` names it in errors)."""
    sha256 = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _Parser(source).parse(text, path, sha256)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> RuleFileError:
        return RuleFileError(self.source, where, message)

    def parse(
        self, text: str, path: Path | None, sha256: str, *, transient: bool = False
    ) -> RuleSet:
        try:
            doc = load_yaml(text)
        except Exception as exc:  # yaml.YAMLError and its marks
            where, problem = loader.yaml_problem(exc)
            raise self.fail(where, f"is not valid YAML: {problem}") from None
        if not isinstance(doc, dict):
            raise self.fail("", "must be a YAML mapping with name, version, criteria, ...")
        self.keys(doc, "top level", RuleSetFile)
        name = self.text(doc, "name", "", required=True)
        if not _NAME_RE.fullmatch(name):
            raise self.fail("name", f"{name!r}: use letters, digits, '.', '_' and '-'")
        if "version" not in doc:
            raise self.fail(
                "version", 'missing; give it as a quoted string, e.g. version: "2011.1"'
            )
        version = doc["version"]
        if not isinstance(version, str):
            raise self.fail(
                "version", f'{version!r} must be a quoted string, e.g. version: "{version}"'
            )
        if not _VERSION_RE.fullmatch(version):
            raise self.fail("version", f"{version!r}: use letters, digits, '.', '_', '+', '-'")
        title = self.text(doc, "title", "", required=False) or name
        citation = self.text(doc, "source", "", required=False)
        description = self.text(doc, "description", "", required=False)
        criteria = self.criteria(doc.get("criteria"))
        recommendations = self.recommendations(doc.get("recommendations"), criteria)
        tie_break = self.tie_break(doc.get("tie_break"), criteria)
        return RuleSet(
            name=name,
            version=version,
            title=title,
            citation=citation,
            description=description,
            sha256=sha256,
            text=text,
            source=self.source,
            path=path,
            criteria=criteria,
            recommendations=recommendations,
            tie_break=tie_break,
            transient=transient,
        )

    # -- pieces

    def keys(self, mapping: Mapping, where: str, model: type[Keys]) -> None:
        loader.check(
            model, mapping, source=self.source, at=where, error=RuleFileError, wording="scoring"
        )

    def text(self, mapping: Mapping, key: str, where: str, *, required: bool) -> str:
        at = f"{where}.{key}" if where else key
        if key not in mapping:
            if required:
                raise self.fail(at, "missing")
            return ""
        value = mapping[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(at, f"{value!r} must be non-empty text")
        return value.strip()

    def integer(self, value: object, where: str, what: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"{value!r} is not a whole number of {what}")
        if value < minimum:
            raise self.fail(where, f"{value} is below {minimum}")
        return value

    def items(self, raw: object, where: str, example: str) -> list[Mapping]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(where, f"must be a non-empty list ({example})")
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise self.fail(f"{where}[{i}]", f"must be a mapping ({example}), not {item!r}")
        return raw

    def condition(
        self, item: Mapping, where: str, facts: Mapping[str, FactSpec], last: bool
    ) -> Cond | None:
        """``when:`` parsed, or None for ``otherwise: true`` (which must be last)."""
        has_when, has_otherwise = "when" in item, "otherwise" in item
        if has_when == has_otherwise:
            raise self.fail(where, "needs exactly one of 'when:' and 'otherwise: true'")
        if has_otherwise:
            if item["otherwise"] is not True:
                raise self.fail(f"{where}.otherwise", f"{item['otherwise']!r} must be true")
            if not last:
                raise self.fail(f"{where}.otherwise", "'otherwise' must be the last entry")
            return None
        if last:
            raise self.fail(where, "the last entry must be 'otherwise: true' (so one always holds)")
        try:
            return parse_condition(item["when"], f"{where}.when", facts)
        except ConditionError as exc:
            raise self.fail(exc.where, exc.message) from None

    def template(self, value: object, where: str, extra: Mapping[str, Any]) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"{value!r} must be non-empty text")
        allowed = {**SAMPLE_FACTS, **extra}
        try:
            fields = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise self.fail(where, f"{exc} (write {{{{ and }}}} for literal braces)") from None
        for _literal, field, spec, _conversion in fields:
            if field is None:
                continue
            if field == "" or field.isdigit():
                raise self.fail(where, "placeholders must name a fact, e.g. {grant}")
            if field not in allowed:
                raise self.fail(
                    where,
                    f"unknown placeholder {{{field}}}; placeholders are: {', '.join(allowed)}",
                )
            if spec and "{" in spec:
                raise self.fail(where, f"nested placeholders are not allowed in {{{field}:{spec}}}")
        try:
            value.format_map(allowed)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise self.fail(where, f"cannot be formatted: {exc}") from None
        return value

    def criteria(self, raw: object) -> tuple[Criterion, ...]:
        example = "each with id, question and outcomes"
        seen: dict[str, str] = {}
        facts = FACT_SPECS
        out = []
        for i, item in enumerate(self.items(raw, "criteria", example)):
            where = f"criteria[{i}]"
            self.keys(item, where, CriterionModel)
            cid = self.text(item, "id", where, required=True)
            if not _ID_RE.fullmatch(cid):
                raise self.fail(f"{where}.id", f"{cid!r}: use lower-case letters, digits and _")
            if cid in FACTS or f"{cid}_full" in FACTS or cid in _RESERVED:
                raise self.fail(f"{where}.id", f"{cid!r} is a fact or reserved name")
            if cid in seen:
                raise self.fail(f"{where}.id", f"duplicate id {cid!r} (also {seen[cid]})")
            seen[cid] = where
            question = self.text(item, "question", where, required=True)
            weight = self.integer(item.get("weight", 1), f"{where}.weight", "times", 1)
            raw_outcomes = self.items(item.get("outcomes"), f"{where}.outcomes", "when/points")
            whens: list[Cond | None] = []
            parsed = []
            for k, o in enumerate(raw_outcomes):
                at = f"{where}.outcomes[{k}]"
                self.keys(o, at, OutcomeModel)
                whens.append(self.condition(o, at, facts, last=k == len(raw_outcomes) - 1))
                if "points" not in o:
                    raise self.fail(f"{at}.points", "missing")
                points = self.integer(o["points"], f"{at}.points", "points", 0) * weight
                if "reason" not in o:
                    raise self.fail(f"{at}.reason", "missing")
                reason = self.template(
                    o["reason"], f"{at}.reason", {"points": points, "max_points": points}
                )
                parsed.append((at, points, reason))
            compiled = self.compile(whens, f"{where}.outcomes")
            outcomes = tuple(
                Outcome(at, when, comp, points, reason, f"{cid}/{k}")
                for k, ((at, points, reason), when, comp) in enumerate(
                    zip(parsed, whens, compiled, strict=True)
                )
            )
            out.append(Criterion(cid, question, weight, outcomes, max(o.points for o in outcomes)))
        return tuple(out)

    def recommendations(
        self, raw: object, criteria: Sequence[Criterion]
    ) -> tuple[Recommendation, ...]:
        facts = dict(FACT_SPECS)
        facts["total"] = facts["max_total"] = FactSpec(numeric=True)
        facts["all_full"] = FactSpec(numeric=False, values=_YN)
        for c in criteria:
            facts[c.id] = FactSpec(numeric=True)
            facts[f"{c.id}_full"] = FactSpec(numeric=False, values=_YN)
        sample = _summary_values(
            criteria, [c.outcomes[0] for c in criteria], 0, 0, [c.question for c in criteria]
        )
        entries = self.items(raw, "recommendations", "each with when/otherwise and recommend")
        whens: list[Cond | None] = []
        parsed = []
        for k, item in enumerate(entries):
            where = f"recommendations[{k}]"
            self.keys(item, where, RecommendationModel)
            whens.append(self.condition(item, where, facts, last=k == len(entries) - 1))
            recommend = item.get("recommend")
            if recommend not in RECOMMENDATIONS:
                raise self.fail(
                    f"{where}.recommend",
                    f"{recommend!r} is not one of: {', '.join(RECOMMENDATIONS)}",
                )
            if "reason" not in item:
                raise self.fail(f"{where}.reason", "missing")
            parsed.append((where, recommend, self.template(item["reason"], f"{where}.reason",
                                                           sample)))  # fmt: skip
        compiled = self.compile(whens, "recommendations")
        return tuple(
            Recommendation(where, when, comp, recommend, reason, f"recommend/{k}")
            for k, ((where, recommend, reason), when, comp) in enumerate(
                zip(parsed, whens, compiled, strict=True)
            )
        )

    def compile(self, whens: list[Cond | None], where: str) -> list[Cond]:
        """The entries' exclusive conditions; refused when one can never apply or
        is too complex for durable_rules."""
        try:
            compiled = first_match(whens)
        except TooComplex as exc:
            message = f"too complex to compile ({exc}); simplify the conditions"
            raise self.fail(where, message) from None
        for k, (comp, when) in enumerate(zip(compiled, whens, strict=True)):
            at = f"{where}[{k}]"
            if comp == FALSE and when is not None:
                raise self.fail(
                    f"{at}.when", "can never apply: the entries before it already cover it"
                )
            if groups(comp) > MAX_GROUPS:
                raise self.fail(
                    at,
                    f"too complex for durable_rules once compiled ({groups(comp)} and/or groups "
                    f"with the negations of the entries before it; at most {MAX_GROUPS}): "
                    "simplify this entry's or the earlier entries' conditions",
                )
        return compiled

    def tie_break(self, raw: object, criteria: Sequence[Criterion]) -> tuple[tuple[str, str], ...]:
        keys = ["total", "max_total", *(c.id for c in criteria), *FACT_SPECS]
        if not isinstance(raw, list) or not raw:
            raise self.fail("tie_break", "must be a non-empty list such as [{total: desc}]")
        out: list[tuple[str, str]] = []
        for i, item in enumerate(raw):
            where = f"tie_break[{i}]"
            if not isinstance(item, dict) or len(item) != 1:
                raise self.fail(
                    where, f"{item!r} must be one key and asc or desc, e.g. total: desc"
                )
            ((key, direction),) = item.items()
            if key not in keys:
                raise self.fail(where, f"unknown key {key!r}; keys are: {', '.join(keys)}")
            if direction not in ("asc", "desc"):
                raise self.fail(f"{where}.{key}", f"{direction!r} must be asc or desc")
            if any(key == k for k, _ in out):
                raise self.fail(where, f"{key!r} is listed twice")
            out.append((key, direction))
        return tuple(out)
