"""The one place Quorum talks to durable_rules (2.0.28), and the traps it avoids.

durable_rules keeps its rulesets and sessions in a C engine behind
module-level state, so this module owns a single process-wide host and
serialises every call into it with a lock. What it does about each known trap:

* **No background threads.** The stock ``durable.engine.Host`` starts two
  self-rearming ``threading.Timer`` chains that call into the C engine for
  every registered ruleset every 0.2 s (``start_action``, ``assert_timers``),
  unsynchronised with the caller: no lock of ours could cover them. Quorum
  uses neither timers nor queued actions (every action runs synchronously
  inside ``assert_facts``/``post_batch``), so :class:`_QuietHost` does not
  start them.
* **Distinct ruleset names per version.** The caller names rulesets
  ``name@version#sha256[:10]:part``; a name is registered once per process
  (:data:`_registered` remembers the definition and refuses a different one
  under the same name; durable_rules itself would raise "already registered").
* **Rulesets are never unregistered.** ``Host.register_rulesets`` keeps every
  ruleset (its C handle and Python definition) for the life of the process;
  the Python layer has no way to drop one (the C engine's ``delete_ruleset``
  is never called by ``durable.engine``; calling it means editing the host's
  private ``_ruleset_directory``/``_ruleset_list``). Measured here (2.0.28, the
  shipped rule set with a new version per text, 20 bids each): 400 what-if
  evaluations through durable_rules registered 800 rulesets and grew RSS by
  87 MB (~0.22 MB each, never given back); the same 400 by
  ``RuleSet.score_python`` registered none and grew RSS by 0.5 MB, and took
  30 ms each against 41 ms. Deleting each ruleset through the private
  attributes held RSS to +3 MB but depends on internals. So only rule sets in
  use are registered (one per version, keyed by name, version and sha256): a
  what-if rule set (an upload, or a file named for a what-if) is built
  *transient* (rules.scoring.rule_set_from_text / whatif_rule_set), scored in
  plain Python, which gives identical results (tests/test_rules_durable.py),
  never cached by rules.loader and refused by ``RuleSet._ensure_registered``;
  tests/test_rules_loader.py checks that many distinct what-ifs leave the
  number of registered rulesets (:func:`registered_count`) unchanged.
* **Facts, not events, where every matching rule must fire.** A posted event
  is consumed by the first rule that matches; an asserted fact fires every
  matching rule. Criteria are asserted as facts (one action per criterion per
  bid, the outcomes being exclusive). See :func:`run` ``mode``.
* **OR fan-out.** durable_rules fires a rule once per satisfied disjunct of an
  ``$or``; rules.conditions makes every ``any`` exclusive, and the caller
  checks that each bid got exactly one outcome per criterion.
* **MessageNotHandledException.** When *any* message of a batch matches no
  rule, the whole batch raises and *no* action of that batch runs (the
  matching messages stay in the session, their actions never started). It
  cannot happen for well-formed rules (each list ends with ``otherwise``); if
  it does, the chunk is replayed one message at a time to name the bids.
  **delete_state on a session whose call raised segfaults** (free(): invalid
  pointer; measured here for facts and events alike), so a session whose call
  failed is abandoned, never deleted (counted in :func:`stats`).
* **MessageObservedException.** Asserting a fact equal to one already in the
  session raises it; facts without an ``id`` are identified by their content,
  so two identical bids in one session collide. Every message gets an ``id``
  (its position in the call) and every chunk a fresh session id from a
  process-wide counter; nothing is ever asserted twice into one session.
* **Session lifetime** (measured on this machine, see :data:`CHUNK`): each
  chunk's session is deleted (``delete_state``) right after it succeeds.
* **``$nex`` (not-exists) conditions hang** 2.0.28; none are generated, and
  facts always carry every key (see rules.scoring.bid_facts).
* **Exceptions raised in an action are swallowed** (``Promise.run`` stores
  them in the session state and carries on). Actions therefore do nothing but
  note the message id and the rule name in the current call's lists (:class:`Fired`),
  and the caller checks that every message got the rules it must get; all formatting
  happens in Python afterwards.
* Recommendations are posted as events (one exclusive rule matches each);
  measured, events and facts cost the same there.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from durable import engine as _de

from rules.conditions import ALWAYS_FIELD, ALWAYS_VALUE

__all__ = [
    "CHUNK",
    "DurableRulesError",
    "Fired",
    "NoRuleMatched",
    "fire",
    "quiet_host",
    "register",
    "registered_count",
    "run",
    "stats",
]

# Messages per session. Measured here with durable_rules 2.0.28: 2,000 sessions
# never deleted -> MemoryError; one session holding 10,000 facts, then
# delete_state -> segfault in the next round; chunks of 500 facts per session
# segfaulted intermittently, and error code 307 was seen once at chunk 100;
# chunks of 50 facts per session, each session deleted right after it, ran
# 400,000 bids (4 x 10 rounds of 10,000) with no error and flat memory
# (~22 MB RSS) at ~38 us/bid. Do not raise this without repeating that run.
CHUNK = 50

Mode = Literal["facts", "events"]


class DurableRulesError(RuntimeError):
    """durable_rules failed or misbehaved; the message names the ruleset and the bids."""


class NoRuleMatched(DurableRulesError):
    """No rule of a ruleset matched some messages (impossible for well-formed rules)."""

    def __init__(self, ruleset: str, refs: list[str]) -> None:
        super().__init__(
            f"durable_rules ruleset {ruleset!r}: no rule matched bid(s) {', '.join(refs)}; "
            "every criterion and the recommendations must end with 'otherwise: true'"
        )
        self.ruleset = ruleset
        self.refs = refs


class _QuietHost(_de.Host):
    """A durable_rules host without the background dispatch/timer threads."""

    def _run(self) -> None:  # the stock Host starts two threading.Timer chains here
        return


def quiet_host() -> _de.Host:
    """A host of its own without the background threads (the benchmarks' bare floor
    must avoid the same trap: bench/bench_scoring.py ``Bare``)."""
    return _QuietHost()


_lock = threading.Lock()
_host: _QuietHost | None = None
_registered: dict[str, dict[str, dict]] = {}  # ruleset name -> {rule name: condition}
_uses_always: set[str] = set()  # rulesets with an always-true rule
_sessions = itertools.count(1)
# the running call's actions: message ids and rule names (see Fired)
_sink: tuple[list[str], list[str]] | None = None
_stats = {
    "calls": 0,
    "chunks": 0,
    "messages": 0,
    "actions": 0,
    "sessions_deleted": 0,
    "sessions_abandoned": 0,
}


def _action(rule_name: str) -> Callable[[Any], None]:
    # c._m is the action's raw message, {"m": {...the fact...}} for a one-pattern
    # rule (c.m would wrap it in a durable Content object first). durable_rules
    # swallows exceptions raised by actions (Promise.run stores them in the
    # session state), so a failing action would go unnoticed here: the caller
    # checks that every message got its rule(s).
    def act(c: Any) -> None:
        ids, rules = _sink  # type: ignore[misc]
        ids.append(c._m["m"]["id"])
        rules.append(rule_name)

    return act


def register(ruleset: str, rules: Mapping[str, dict]) -> None:
    """Register ``ruleset`` (rule name -> durable condition) once per process.

    Registering the same name again with the same rules does nothing; with
    different rules it is refused (a name must identify one definition)."""
    global _host
    rules = {k: dict(v) for k, v in rules.items()}
    with _lock:
        known = _registered.get(ruleset)
        if known is not None:
            if known != rules:
                raise DurableRulesError(
                    f"durable_rules ruleset {ruleset!r} is already registered with other rules"
                )
            return
        if _host is None:
            _host = _QuietHost()
        definition = {
            name: {"all": [{"m": cond}], "run": _action(name)} for name, cond in rules.items()
        }
        _host.register_rulesets({ruleset: definition})
        _registered[ruleset] = rules
        if {ALWAYS_FIELD: ALWAYS_VALUE} in rules.values():
            _uses_always.add(ruleset)


def is_registered(ruleset: str) -> bool:
    with _lock:
        return ruleset in _registered


def registered_count() -> int:
    """How many rulesets this process has registered (they are never freed)."""
    with _lock:
        return len(_registered)


@dataclass
class Fired:
    """What one call into a ruleset did: how many messages went in and, for each
    action that ran, in the order they ran, its message's index (as text, the
    message ``id``) and its rule's name. Flat lists of strings, not a list per
    message: tens of thousands of small lists cost the garbage collector."""

    count: int
    ids: list[str]
    rules: list[str]

    def by_message(self) -> list[list[str]]:
        """For each message, the rules that fired."""
        fired: list[list[str]] = [[] for _ in range(self.count)]
        for msg_id, rule_name in zip(self.ids, self.rules, strict=True):
            fired[int(msg_id)].append(rule_name)
        return fired

    def of(self, index: int) -> list[str]:
        """The rules that fired for one message (a scan: for error messages)."""
        key = str(index)
        return [r for i, r in zip(self.ids, self.rules, strict=True) if i == key]


def run(
    ruleset: str, messages: Sequence[Mapping[str, Any]], mode: Mode = "facts"
) -> list[list[str]]:
    """Send ``messages`` through ``ruleset``; for each message, the rules that fired.
    See :func:`fire`."""
    return fire(ruleset, messages, mode).by_message()


def fire(
    ruleset: str,
    messages: Iterable[Mapping[str, Any]],
    mode: Mode = "facts",
    *,
    owned: bool = False,
) -> Fired:
    """Send ``messages`` through ``ruleset``; the actions that ran (:class:`Fired`).

    Messages go in chunks of :data:`CHUNK`, each into a fresh session that is
    deleted afterwards; ``mode`` "facts" asserts them (every matching rule
    fires), "events" posts them (the first matching rule consumes each).
    ``messages`` may be a generator: it is read a chunk at a time, holding this
    module's lock (so it must not call into this module).
    Each message needs a ``ref`` (for error messages); the ``id``, ``sid`` and
    always-true fields are added here: to copies, or, when the caller made the
    messages for this call only (``owned``: dicts), to the messages themselves."""
    global _sink
    ids: list[str] = []
    rules: list[str] = []
    count = 0
    with _lock:
        if ruleset not in _registered or _host is None:
            raise DurableRulesError(f"durable_rules ruleset {ruleset!r} is not registered")
        host = _host
        rs = host.get_ruleset(ruleset)
        send = host.assert_facts if mode == "facts" else host.post_batch
        # the always-true field, only where some rule tests it (every field costs)
        always = {ALWAYS_FIELD: ALWAYS_VALUE} if ruleset in _uses_always else {}
        pending = iter(messages)
        _sink = (ids, rules)
        try:
            while chunk := list(itertools.islice(pending, CHUNK)):
                sid = f"q{next(_sessions)}"
                if owned:
                    batch = cast(list[dict[str, Any]], chunk)
                    for i, m in enumerate(batch, start=count):
                        m["id"] = str(i)
                        m["sid"] = sid
                        if always:
                            m.update(always)
                else:
                    batch = [
                        {**m, "id": str(i), "sid": sid, **always}
                        for i, m in enumerate(chunk, start=count)
                    ]
                count += len(batch)
                try:
                    # assert (or post), then run the actions synchronously, in this thread
                    send(ruleset, batch)
                except _de.MessageNotHandledException:
                    _abandon(sid)
                    raise NoRuleMatched(ruleset, _unmatched(host, ruleset, mode, batch)) from None
                except _de.MessageObservedException as exc:  # pragma: no cover - never re-asserted
                    _abandon(sid)
                    raise DurableRulesError(
                        f"durable_rules ruleset {ruleset!r}: a message was asserted twice "
                        f"in session {sid}: {exc}"
                    ) from None
                except Exception as exc:  # the C engine's error codes arrive as Exception
                    _abandon(sid)
                    refs = ", ".join(str(m.get("ref")) for m in batch)
                    raise DurableRulesError(
                        f"durable_rules ruleset {ruleset!r} failed on bids {refs}: {exc}"
                    ) from exc
                # Only after a successful call: delete_state on a session whose
                # assert raised MessageNotHandledException segfaults (measured here).
                rs.delete_state(sid)
                _stats["sessions_deleted"] += 1
                _stats["chunks"] += 1
        finally:
            _sink = None
        _stats["calls"] += 1
        _stats["messages"] += count
        _stats["actions"] += len(ids)
    return Fired(count, ids, rules)


def _abandon(sid: str) -> None:
    """Leave a failed call's session in the engine: deleting it can crash the process."""
    _stats["sessions_abandoned"] += 1


def _unmatched(host: _QuietHost, ruleset: str, mode: Mode, batch: list[dict]) -> list[str]:
    """The refs of the messages no rule matches, found one message per session."""
    send = host.assert_fact if mode == "facts" else host.post
    refs = []
    for m in batch:
        sid = f"q{next(_sessions)}"
        try:
            send(ruleset, {**m, "sid": sid})
        except _de.MessageNotHandledException:
            refs.append(str(m.get("ref")))
            _abandon(sid)
        else:
            host.delete_state(ruleset, sid)
            _stats["sessions_deleted"] += 1
    return refs or ["(not identified)"]


def stats() -> dict[str, int]:
    """Counters since the process started: calls, chunks, messages, actions fired."""
    with _lock:
        return dict(_stats)
