"""Declarative workflows: states and transitions as data, checked by a
`transitions` Machine built once per workflow at import time.

``Workflow.fire`` is the one call that moves an item: it checks the actor's
role, the item's state and the step's named guard (``Step.rule``, a callable
registered in rules/guards.py) and returns a :class:`Transition`. The unit of
work (engine/commands/service.py) writes a ``state`` column only from such a
Transition, so every state an item is in was reached by a step declared here.

The Machine is used read-only (we ask it which transitions exist; items keep
their own ``state`` column), so one shared instance is safe across the web
server's threads — `transitions` Machines are not thread-safe when models are
added or triggered concurrently (pytransitions #181), and we never do either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from transitions import Machine

from engine.domain.errors import PermissionDenied, TransitionRefused
from rules.guards import judge

BACK = "<"  # Step.dest: back to the state the item was in before (one of Step.back_to)


@dataclass(frozen=True)
class Step:
    """One transition: ``trigger`` takes an item from any of ``source`` to ``dest``
    (``dest="="``: the item stays in the state it was in; ``dest="<"``: it goes
    back to the state it was in before, which the caller names and which must
    be one of ``back_to``)."""

    trigger: str
    source: tuple[str, ...]
    dest: str
    roles: frozenset[str]
    rule: str | None = None  # named rule (rules/) that must also allow it
    label: str = ""
    back_to: tuple[str, ...] = ()

    def dests(self) -> tuple[str, ...]:
        """The states this step may leave an item in ("=": its own)."""
        return self.back_to if self.dest == BACK else (self.dest,)


@dataclass(frozen=True)
class Transition:
    """A step that fired: the only thing the unit of work accepts a ``state`` from.
    ``sources``: the states it was allowed from (one item: its state; a bulk
    step: every state of the items it moves, for the UPDATE's WHERE)."""

    workflow: str
    trigger: str
    sources: tuple[str, ...]
    dest: str
    item: str = ""

    @property
    def moves(self) -> bool:
        """Whether the item's state changes (``=`` steps leave it where it is)."""
        return self.sources != (self.dest,)


@dataclass
class Workflow:
    name: str
    states: dict[str, str]  # state -> description
    initial: str
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = {
            s for st in self.steps for s in (*st.source, st.dest, *st.back_to)
        } - set(self.states) - {"=", BACK}
        if unknown:
            raise ValueError(f"workflow {self.name}: unknown states {sorted(unknown)}")
        self._machine = Machine(
            model=None,
            states=list(self.states),
            initial=self.initial,
            transitions=[
                {"trigger": st.trigger, "source": list(st.source), "dest": st.dest}
                if st.dest not in ("=", BACK)
                else {"trigger": st.trigger, "source": list(st.source), "dest": None}
                for st in self.steps
            ],
            auto_transitions=False,
            send_event=False,
        )
        self._by_trigger: dict[str, Step] = {}
        for st in self.steps:
            if st.trigger in self._by_trigger:
                raise ValueError(f"workflow {self.name}: trigger {st.trigger} declared twice")
            self._by_trigger[st.trigger] = st

    @property
    def machine(self) -> Machine:
        return self._machine

    def step(self, trigger: str) -> Step:
        try:
            return self._by_trigger[trigger]
        except KeyError:
            raise TransitionRefused(f"{self.name} has no step '{trigger}'") from None

    def triggers_from(self, state: str) -> list[str]:
        return list(self._machine.get_triggers(state))

    def check(self, trigger: str, state: str, roles: Iterable[str], item: str = "") -> str:
        """Return the destination state, or raise a refusal that says why."""
        step = self.step(trigger)
        if not step.roles & set(roles):
            raise PermissionDenied(
                f"{trigger} on a {self.name} needs the role {' or '.join(sorted(step.roles))}",
                item=item or None,
            )
        if not self._machine.get_transitions(trigger, source=state):
            allowed = ", ".join(step.source)
            raise TransitionRefused(
                f"cannot {trigger} {self.name} {item} while it is {state}: "
                f"{trigger} is allowed only when it is {allowed}".replace("  ", " "),
                item=item or None,
            )
        return state if step.dest == "=" else step.dest

    def fire(
        self,
        state: str,
        trigger: str,
        roles: Iterable[str],
        context: object = None,
        *,
        item: str = "",
        back_to: str | None = None,
    ) -> Transition:
        """Take ``trigger`` from ``state``: check the role and the state (as
        :meth:`check`), then the step's guard (``Step.rule``) on ``context``;
        the Transition to write, or the refusal that says why not.

        ``back_to``: for a step that returns the item to an earlier state, that
        state (it must be one the step declares)."""
        self.check(trigger, state, roles, item)
        step = self._by_trigger[trigger]
        if step.rule is not None:
            refusal = judge(step.rule, context)
            if refusal is not None:
                raise refusal
        elif context is not None:
            raise TypeError(f"{self.name} step {trigger} has no guard to give a context to")
        if step.dest == BACK:
            if back_to is None or back_to not in step.back_to:
                raise TransitionRefused(
                    f"cannot {trigger} {self.name} {item}: it would go back to "
                    f"{back_to or 'no state'}; {trigger} goes back only to "
                    f"{', '.join(step.back_to)}".replace("  ", " "),
                    item=item or None,
                )
            dest = back_to
        elif back_to is not None:
            raise TypeError(f"{self.name} step {trigger} does not go back to an earlier state")
        else:
            dest = state if step.dest == "=" else step.dest
        return Transition(self.name, trigger, (state,), dest, item)

    def fire_many(
        self, examples: Mapping[str, str], trigger: str, roles: Iterable[str]
    ) -> Transition:
        """One step for many items at once (a set-based UPDATE): checked once per
        distinct state; ``examples``: each state -> an item in it (named if it is
        refused). Guarded steps cannot be taken in bulk."""
        sources = tuple(examples)
        step = self.step(trigger)
        if step.rule is not None or step.dest in ("=", BACK):
            raise TypeError(f"{self.name} step {trigger} cannot be taken in bulk")
        if not sources:
            raise ValueError(f"{self.name} step {trigger}: no items to move")
        roles = set(roles)
        for state, item in examples.items():
            self.check(trigger, state, roles, item)
        return Transition(self.name, trigger, sources, step.dest)

    def available(self, state: str, roles: Iterable[str]) -> dict[str, str | None]:
        """Each step from ``state`` -> None if this actor may take it, else why not."""
        roles = set(roles)
        out: dict[str, str | None] = {}
        for trigger in self.triggers_from(state):
            step = self._by_trigger[trigger]
            out[trigger] = (
                None if step.roles & roles else f"needs role {' or '.join(sorted(step.roles))}"
            )
        return out

    def mermaid(self, current: str | None = None) -> str:
        """A Mermaid state diagram of this workflow (current state highlighted)."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        # one edge per (source, destination), naming every step that takes it:
        # Mermaid draws only one of several edges between the same two states
        edges: dict[tuple[str, str], list[str]] = {}
        for st in self.steps:
            for src in st.source:
                for dest in (src,) if st.dest == "=" else st.dests():
                    edges.setdefault((src, dest), []).append(st.trigger)
        for (src, dest), triggers in edges.items():
            lines.append(f"    {src} --> {dest}: {', '.join(triggers)}")
        if current:
            lines.append(f"    class {current} current")
            lines.append("    classDef current fill:#ffd54f,stroke:#333")
        return "\n".join(lines)


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)
