"""The grant page's conditions of approval (set by the Board's decision, printed
in the offer letter): each condition with its state, and for an open one the
form by which an officer discharges it (``discharge_condition``)."""

from __future__ import annotations

from engine.domain.actor import Actor
from engine.read.conditions import ConditionRow
from quorum_web.actions import ActionForm, Input
from workflows.condition import CONDITION, OPEN


def condition_forms(grant_ref: str, grant_state: str, conditions: list[ConditionRow],
                    actor: Actor) -> dict[int, ActionForm]:
    """Condition number -> the form that discharges it (open conditions only)."""
    out: dict[int, ActionForm] = {}
    for c in conditions:
        if c["state"] != OPEN:
            continue
        avail = CONDITION.available(c["state"], actor.roles)
        why = avail.get("discharge")
        if why is None and grant_state != "active":
            why = f"the grant is {grant_state}"
        out[c["seq"]] = ActionForm(
            f"discharge-{c['seq']}", "discharge_condition",
            f"Condition {c['seq']} is met",
            {"grant": grant_ref, "n": str(c["seq"]), "version": str(c["version"])},
            [Input("evidence", "What shows it is met", "textarea", True,
                   hint="the document, letter or confirmation seen"),
             Input("note", "Note (optional)", "textarea")],
            unavailable=why, button="Record the condition as met")
    return out
