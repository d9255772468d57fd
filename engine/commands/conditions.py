"""Conditions of an approval, command side: reading the ``conditions`` a
decision sets, copying them to the grant (``set_conditions``, called by
engine/commands/awards.py ``commit_grant`` before the offer letter is
rendered, so the letter prints them) and the payment guard
(``condition_refusal``) that ``release_payment`` asks. Shared like
letters.py, so that no handler module imports another."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import insert

from engine.commands.uow import UnitOfWork
from engine.domain.errors import TransitionRefused, ValidationError
from engine.read.conditions import (
    BEFORE_PAYMENT,
    DURING_DELIVERY,
    approval_conditions,
    condition_words,
)
from engine.store.models import GrantCondition
from workflows.condition import CONDITION, OPEN

MAX_TEXT = 1000
# how a condition says when it must be met (the first is the default)
WHEN = {"before_first_payment": True, BEFORE_PAYMENT: True,
        "during_delivery": False, DURING_DELIVERY: False}


DURING_SUFFIX = f"({DURING_DELIVERY})"


class Condition(NamedTuple):
    text: str
    before_payment: bool

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "before_payment": self.before_payment}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Condition:
        """A condition as :meth:`as_json` stored it (a delegated request's)."""
        return cls(str(stored["text"]), bool(stored["before_payment"]))

    def words(self) -> str:
        """As a letter or an audit record shows it."""
        return condition_words(self.text, self.before_payment)


def read_conditions(command: str, raw: Any) -> list[Condition]:
    """``conditions`` as given: text (one condition per line), or a list whose
    items are text or {text: ..., when: before_first_payment | during_delivery}.
    Each is met before the first payment unless it says otherwise (``when``, or
    text ending "(during delivery)")."""
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        raw = raw.splitlines()
    if not isinstance(raw, list):
        raise ValidationError(
            f"{command}: conditions: give a list of conditions, or text with one condition "
            "per line", field="conditions")
    out: list[Condition] = []
    for i, item in enumerate(raw, start=1):
        where = f"conditions[{i}]"
        when: Any = "before_first_payment"
        if isinstance(item, dict):
            unknown = set(item) - {"text", "when"}
            if unknown:
                raise ValidationError(
                    f"{command}: {where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                    "use text and when", field="conditions")
            when = item.get("when") or "before_first_payment"
            item = item.get("text")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValidationError(
                f"{command}: {where}: each condition is text, or {{text: ..., when: ...}}",
                field="conditions")
        text = " ".join(str(item).split())
        if not text:
            continue  # a blank line of the page's textarea
        if len(text) > MAX_TEXT:
            raise ValidationError(
                f"{command}: {where}: at most {MAX_TEXT} characters ({len(text)} given)",
                field="conditions")
        if text.lower().endswith(DURING_SUFFIX):  # as a page's line (and the minutes) write it
            text = text[: -len(DURING_SUFFIX)].rstrip()
            when = "during_delivery"
        key = str(when).strip().lower().replace("-", "_")
        if key not in WHEN:
            raise ValidationError(
                f"{command}: {where}: when: {when!r} is not one of before_first_payment "
                "(the default), during_delivery", field="conditions")
        out.append(Condition(text, WHEN[key]))
    if not out and raw:
        raise ValidationError(f"{command}: conditions: every condition given is empty",
                              field="conditions")
    return out


def set_conditions(uow: UnitOfWork, grant_id: int, grant_ref: str,
                   conditions: list[Condition], source_ref: str) -> None:
    """Copy the approval's conditions to the new grant, numbered from 1, each open."""
    if not conditions:
        return
    rows = []
    for seq, c in enumerate(conditions, start=1):
        step = uow.fire(CONDITION, "set", "new", f"{grant_ref} condition {seq}")
        rows.append({"grant_id": grant_id, "seq": seq, "text": c.text,
                     "before_payment": c.before_payment, "source_ref": source_ref,
                     "state": step.dest, "evidence": "", "version": 1})
    uow.conn.execute(insert(GrantCondition), rows)


def condition_refusal(
    uow: UnitOfWork, grant: Any, field: str, *, any_open: bool = True
) -> None:
    """Refuse a payment on ``grant`` while a condition to be met before the
    first payment is open, naming it. ``any_open`` False: the caller counted
    none open in this transaction (nothing to read)."""
    if not any_open:
        return
    for c in approval_conditions(uow.conn, grant.id):
        if c["before_payment"] and c["state"] == OPEN:
            raise TransitionRefused(
                f"{uow.command}: {field}: {grant.ref} condition {c['seq']} '{c['text']}' is not "
                "yet met: it must be met before the first payment (an officer discharges it "
                "with the evidence: discharge_condition)", field=field, item=grant.ref)
