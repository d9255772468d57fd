"""Every workflow's Mermaid diagram names every state and every step, and
highlights the current state with Mermaid's stateDiagram-v2 class syntax.
Steps between the same two states share one edge (Mermaid draws only one of
several edges between the same pair), its label naming each of them."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import workflows
from workflows.base import Workflow


def all_workflows() -> list[Workflow]:
    found: dict[str, Workflow] = {}
    for m in pkgutil.iter_modules(workflows.__path__):
        mod = importlib.import_module(f"workflows.{m.name}")
        for value in vars(mod).values():
            if isinstance(value, Workflow):
                found[value.name] = value
    return list(found.values())


WORKFLOWS = all_workflows()
EDGE = re.compile(r"^    (\[\*\]|\w+) --> (\w+)(?:: (\w+(?:, \w+)*))?$")


def test_every_workflow_is_found() -> None:
    names = {wf.name for wf in WORKFLOWS}
    assert {"bid", "round", "meeting", "grant", "milestone", "delegated decision",
            "recovery", "deposit", "return"} <= names  # fmt: skip


@pytest.mark.parametrize("wf", WORKFLOWS, ids=lambda wf: wf.name)
def test_diagram_names_every_state_and_trigger(wf: Workflow) -> None:
    text = wf.mermaid()
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1] == f"    [*] --> {wf.initial}"
    states, triggers, edges, pairs = set(), set(), set(), set()
    for line in lines[1:]:
        m = EDGE.match(line)
        assert m, f"{wf.name}: not a Mermaid transition: {line!r}"
        src, dst, label = m.groups()
        states |= {dst} | ({src} if src != "[*]" else set())
        assert (src, dst) not in pairs, f"{wf.name}: two edges {src} --> {dst}"
        pairs.add((src, dst))
        for trigger in label.split(", ") if label else []:
            triggers.add(trigger)
            edges.add((src, dst, trigger))
    assert states == set(wf.states)
    assert triggers == {st.trigger for st in wf.steps}
    expected = {
        (src, dst, st.trigger)
        for st in wf.steps
        for src in st.source
        for dst in ((src,) if st.dest == "=" else st.dests())
    }
    assert edges == expected
    assert "class " not in text and "classDef" not in text  # nothing highlighted


@pytest.mark.parametrize("wf", WORKFLOWS, ids=lambda wf: wf.name)
def test_current_state_is_highlighted(wf: Workflow) -> None:
    for state in wf.states:
        lines = wf.mermaid(state).splitlines()
        assert lines[:-2] == wf.mermaid().splitlines()
        # stateDiagram-v2: "class <state ids> <className>" and "classDef <className> <styles>"
        assert lines[-2] == f"    class {state} current"
        assert re.fullmatch(r"    classDef current \S+", lines[-1])
