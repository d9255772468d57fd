"""Conditions of rule files: parsed, negated, made exclusive, compiled two ways.

A condition in a rule file is a mapping::

    {involves_other_councils: yes}                  # equality
    {breakeven_years: {lte: 2}}                     # comparison (eq ne lt lte gt gte)
    {breakeven_known: yes, breakeven_years: {lte: 2}}   # several keys: all must hold
    {any: [{proven: yes}, {partner_count: {gte: 2}}]}   # all: [...] / any: [...]

It is parsed into a small tree (:class:`Leaf`, :class:`All`, :class:`AnyOf`)
that is compiled to a durable_rules condition (JSON) and to a Python predicate
*from the same tree*, so both paths evaluate exactly the same logic.

Two properties are arranged at compile time (see :func:`first_match`):

* the outcomes of a criterion are mutually exclusive: outcome k is
  ``cond_k AND NOT cond_1 AND ... AND NOT cond_k-1`` (negation pushed down to
  the leaves, De Morgan for all/any), so exactly one outcome holds for a bid;
* every ``any`` has pairwise exclusive branches (``a OR b`` becomes
  ``a OR (b AND NOT a)``). durable_rules expands a condition into its
  disjunctive normal form and fires a rule once per satisfied disjunct:
  measured here, ``(y < 2) OR (z >= 3.5)`` ran the action twice for a fact
  satisfying both. With exclusive branches every rule fires at most once per fact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OPS",
    "Leaf",
    "All",
    "AnyOf",
    "Cond",
    "TRUE",
    "FALSE",
    "FactSpec",
    "simplify",
    "groups",
    "MAX_GROUPS",
    "TooComplex",
    "python_source",
    "describe",
    "ConditionError",
    "parse_condition",
    "negate",
    "exclusive",
    "first_match",
    "to_durable",
    "to_python",
    "facts_used",
]

OPS = ("eq", "ne", "lt", "lte", "gt", "gte")
_NEGATED = {"eq": "ne", "ne": "eq", "lt": "gte", "gte": "lt", "lte": "gt", "gt": "lte"}
_DURABLE_OP = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
_PY_OP = {"eq": "==", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
# durable_rules 2.0.28 keeps a rule's condition as one expression sequence of at most
# 31 entries (MAX_SEQUENCE_EXPRESSIONS 32 in its C engine); each and/or group takes two.
# Measured here: 15 groups load, 16 fail with "Could not create ruleset, error code: 113",
# whatever the number of leaves (a flat and/or of 199 leaves loads).
MAX_GROUPS = 15
# A bound on building the exclusive form (which can grow exponentially with nesting).
MAX_COMPILED_NODES = 5000
# A field every message carries with this value: the durable form of "always true"
# (a rule needs a condition; "$ex" exists-tests are avoided on purpose, see durable_adapter).
ALWAYS_FIELD = "q_"
ALWAYS_VALUE = 1

Value = str | int | float


@dataclass(frozen=True)
class Leaf:
    fact: str
    op: str  # one of OPS
    value: Value


@dataclass(frozen=True)
class All:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Cond, ...]


Cond = Leaf | All | AnyOf
TRUE: Cond = All(())
FALSE: Cond = AnyOf(())


class ConditionError(ValueError):
    """A condition that cannot be read; ``where`` is its path inside the rule file."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class FactSpec:
    """What a condition may say about one fact: numeric, or one of some strings."""

    numeric: bool
    values: tuple[str, ...] | None = None  # allowed strings (None: any string)


def parse_condition(raw: object, where: str, facts: Mapping[str, FactSpec]) -> Cond:
    """Read a rule file's ``when:`` mapping; errors name ``where`` (e.g. criteria[1]...when)."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConditionError(
            where, f"a condition must be a non-empty mapping such as {{fact: value}}, not {raw!r}"
        )
    terms: list[Cond] = []
    for key, val in raw.items():
        if key in ("all", "any"):
            if not isinstance(val, list) or not val:
                raise ConditionError(f"{where}.{key}", "must be a non-empty list of conditions")
            parts = tuple(
                parse_condition(item, f"{where}.{key}[{i}]", facts) for i, item in enumerate(val)
            )
            terms.append(All(parts) if key == "all" else AnyOf(parts))
            continue
        if not isinstance(key, str) or key not in facts:
            raise ConditionError(
                where, f"unknown fact {key!r}; facts are: {', '.join(sorted(facts))}"
            )
        spec = facts[key]
        if isinstance(val, Mapping):
            if not val:
                raise ConditionError(f"{where}.{key}", "an empty comparison")
            for op, operand in val.items():
                if op not in OPS:
                    raise ConditionError(
                        f"{where}.{key}", f"unknown comparison {op!r}; use {', '.join(OPS)}"
                    )
                terms.append(Leaf(key, op, _operand(operand, op, spec, f"{where}.{key}.{op}")))
        else:
            terms.append(Leaf(key, "eq", _operand(val, "eq", spec, f"{where}.{key}")))
    return terms[0] if len(terms) == 1 else All(tuple(terms))


def _operand(val: object, op: str, spec: FactSpec, where: str) -> Value:
    if spec.numeric:
        if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
            raise ConditionError(where, f"{val!r} is not a number (this fact is a number)")
        return val
    if op not in ("eq", "ne"):
        raise ConditionError(where, f"{op} compares numbers; this fact is text (use eq or ne)")
    if not isinstance(val, str):
        hint = " (write yes or no, not true or false)" if isinstance(val, bool) else ""
        raise ConditionError(where, f"{val!r} is not text{hint}")
    if spec.values is not None and val not in spec.values:
        raise ConditionError(where, f"{val!r} is not one of: {', '.join(spec.values)}")
    return val


# ------------------------------------------------------------------ transformations


def negate(c: Cond) -> Cond:
    """NOT c, pushed down to the leaves (eq<->ne, lt<->gte, lte<->gt, all<->any)."""
    if isinstance(c, Leaf):
        return Leaf(c.fact, _NEGATED[c.op], c.value)
    if isinstance(c, All):
        return _flat(AnyOf(tuple(negate(x) for x in c.items)))
    return _flat(All(tuple(negate(x) for x in c.items)))


def _flat(c: Cond) -> Cond:
    """Nested all-in-all / any-in-any merged; one-item groups unwrapped."""
    if isinstance(c, Leaf):
        return c
    kind = type(c)
    items: list[Cond] = []
    for x in c.items:
        x = _flat(x)
        if type(x) is kind:
            items.extend(x.items)
        else:
            items.append(x)
    if len(items) == 1:
        return items[0]
    return kind(tuple(items))


class TooComplex(ValueError):
    """A condition whose compiled form grows beyond :data:`MAX_COMPILED_NODES`."""


def exclusive(c: Cond, budget: list[int] | None = None) -> Cond:
    """An equivalent condition whose every ``any`` has pairwise exclusive branches.

    The result can grow exponentially with nested ``any``s; ``budget`` (a
    one-item list, decremented per node built) stops it with :class:`TooComplex`."""
    if budget is None:
        budget = [MAX_COMPILED_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise TooComplex(f"more than {MAX_COMPILED_NODES} nodes once compiled")
    if isinstance(c, Leaf):
        return c
    if isinstance(c, All):
        return _flat(All(tuple(exclusive(x, budget) for x in c.items)))
    branches: list[Cond] = []
    for k, item in enumerate(c.items):
        earlier = tuple(exclusive(negate(prev), budget) for prev in c.items[:k])
        mine = exclusive(item, budget)
        branches.append(_flat(All((mine, *earlier))) if earlier else mine)
    return _flat(AnyOf(tuple(branches)))


def first_match(conds: list[Cond | None]) -> list[Cond]:
    """Compiled conditions for an ordered list where the first match wins.

    ``None`` stands for ``otherwise`` (true). Each condition is simplified;
    entry k becomes cond_k AND NOT cond_1 AND ... AND NOT cond_k-1, made
    exclusive, then simplified again (:func:`simplify`). An entry that can
    never hold compiles to :data:`FALSE`. Raises :class:`TooComplex` when the
    compiled form would grow beyond what is reasonable to build."""
    simple = [None if c is None else simplify(c) for c in conds]
    out: list[Cond] = []
    for k, cond in enumerate(simple):
        parts = [] if cond is None else [cond]
        parts.extend(negate(prev) for prev in simple[:k] if prev is not None)
        if not parts:
            out.append(TRUE)
            continue
        budget = [MAX_COMPILED_NODES]
        out.append(simplify(exclusive(_flat(All(tuple(parts))), budget)))
    return out


def groups(c: Cond) -> int:
    """How many and/or groups the durable_rules form of ``c`` has (see MAX_GROUPS)."""
    if isinstance(c, Leaf) or not c.items:
        return 0
    if len(c.items) == 1:
        return groups(c.items[0])
    return 1 + sum(groups(x) for x in c.items)


def _decide(leaf: Leaf, known: Iterable[Leaf]) -> bool | None:
    """True/False when the leaves known to hold settle ``leaf``; None when they do not."""
    negated = Leaf(leaf.fact, _NEGATED[leaf.op], leaf.value)
    for k in known:
        if k.fact != leaf.fact:
            continue
        if k == leaf:
            return True
        if k == negated:
            return False
        if k.op == "eq":  # the fact's value is known: evaluate the leaf on it
            return _PY_TEST[leaf.op](k.value, leaf.value)
        if leaf.op == "eq" and k.op == "ne" and k.value == leaf.value:
            return False
    return None


_PY_TEST: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


def simplify(c: Cond, known: frozenset[Leaf] = frozenset()) -> Cond:
    """An equivalent, smaller condition: leaves settled by the leaves beside them
    in an ``all`` (``x == 'yes' and x != 'no'`` -> ``x == 'yes'``; a leaf and
    its negation -> FALSE) are dropped, and so are branches that cannot hold.
    Sound but not complete: what it cannot settle it keeps."""
    c = _flat(c)
    if isinstance(c, Leaf):
        verdict = _decide(c, known)
        return c if verdict is None else (TRUE if verdict else FALSE)
    if isinstance(c, AnyOf):
        branches: list[Cond] = []
        for b in c.items:
            b = simplify(b, known)
            if b == TRUE:
                return TRUE
            if b != FALSE:
                branches.append(b)
        return _flat(AnyOf(tuple(branches))) if branches else FALSE
    items = list(c.items)
    for _ in range(100):  # until nothing more settles (two or three rounds in practice)
        leaves = set(known)
        kept: list[Cond] = []
        for x in sorted(items, key=lambda x: not isinstance(x, Leaf)):  # leaves first
            x = simplify(x, frozenset(leaves))
            if x == FALSE:
                return FALSE
            if x == TRUE:
                continue
            if isinstance(x, Leaf):
                leaves.add(x)
            kept.append(x)
        if kept == items:
            break
        items = kept
    return _flat(All(tuple(items))) if items else TRUE


# ------------------------------------------------------------------ compilers


def to_durable(c: Cond) -> dict:
    """The durable_rules form of a condition (the value of a rule's ``m``)."""
    if isinstance(c, Leaf):
        if c.op == "eq":
            return {c.fact: c.value}
        return {_DURABLE_OP[c.op]: {c.fact: c.value}}
    if not c.items:
        if isinstance(c, All):
            return {ALWAYS_FIELD: ALWAYS_VALUE}
        raise ValueError("FALSE (an empty 'any') has no durable_rules form; leave the rule out")
    if len(c.items) == 1:
        return to_durable(c.items[0])
    return {"$and" if isinstance(c, All) else "$or": [to_durable(x) for x in c.items]}


def python_source(c: Cond) -> str:
    if isinstance(c, Leaf):
        return f"(f[{c.fact!r}] {_PY_OP[c.op]} {c.value!r})"
    if not c.items:
        return "True" if isinstance(c, All) else "False"
    joiner = " and " if isinstance(c, All) else " or "
    return "(" + joiner.join(python_source(x) for x in c.items) + ")"


def to_python(c: Cond) -> Callable[[Mapping[str, Any]], bool]:
    """A Python predicate over a facts mapping, compiled from the same tree.

    The source is generated from validated parts only (fact names from the
    known list, values that are str/int/float, rendered with repr)."""
    return eval(f"lambda f: {python_source(c)}", {"__builtins__": {}})  # noqa: S307


def facts_used(c: Cond) -> set[str]:
    if isinstance(c, Leaf):
        return {c.fact}
    out: set[str] = set()
    for x in c.items:
        out |= facts_used(x)
    return out


def describe(c: Cond) -> str:
    """A readable form, for error messages and documentation."""
    if isinstance(c, Leaf):
        return f"{c.fact} {_PY_OP[c.op]} {c.value!r}"
    if not c.items:
        return "true" if isinstance(c, All) else "false"
    joiner = " and " if isinstance(c, All) else " or "
    return "(" + joiner.join(describe(x) for x in c.items) + ")"
