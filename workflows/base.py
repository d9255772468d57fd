"""Declarative workflows: states and transitions as data, checked by a
`transitions` Machine built once per workflow at import time.

The Machine is used read-only (we ask it which transitions exist; items keep
their own ``state`` column), so one shared instance is safe across the web
server's threads — `transitions` Machines are not thread-safe when models are
added or triggered concurrently (pytransitions #181), and we never do either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from transitions import Machine

from engine.domain.errors import PermissionDenied, TransitionRefused


@dataclass(frozen=True)
class Step:
    """One transition: ``trigger`` takes an item from any of ``source`` to ``dest``
    (``dest="="``: the item stays in the state it was in)."""

    trigger: str
    source: tuple[str, ...]
    dest: str
    roles: frozenset[str]
    rule: str | None = None  # named rule (rules/) that must also allow it
    label: str = ""


@dataclass
class Workflow:
    name: str
    states: dict[str, str]  # state -> description
    initial: str
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = {s for st in self.steps for s in (*st.source, st.dest)} - set(self.states) - {"="}
        if unknown:
            raise ValueError(f"workflow {self.name}: unknown states {sorted(unknown)}")
        self._machine = Machine(
            model=None,
            states=list(self.states),
            initial=self.initial,
            transitions=[
                {"trigger": st.trigger, "source": list(st.source), "dest": st.dest}
                if st.dest != "="
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
                edges.setdefault((src, src if st.dest == "=" else st.dest), []).append(st.trigger)
        for (src, dest), triggers in edges.items():
            lines.append(f"    {src} --> {dest}: {', '.join(triggers)}")
        if current:
            lines.append(f"    class {current} current")
            lines.append("    classDef current fill:#ffd54f,stroke:#333")
        return "\n".join(lines)


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)
