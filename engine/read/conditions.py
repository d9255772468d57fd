"""A grant's conditions (set by the Board's approval; workflows/condition.py),
as the grant page, the offer letter, the agenda item and the payment guard
read them."""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from engine.store.models import GrantCondition, Person

COND_T = GrantCondition.__table__
PERSON_T = Person.__table__
_OF_GRANT = (
    select(COND_T, PERSON_T.c.name.label("discharged_by"))
    .outerjoin(PERSON_T, PERSON_T.c.id == COND_T.c.discharged_by_id)
    .where(COND_T.c.grant_id == bindparam("grant_id"))
    .order_by(COND_T.c.seq)
)
BEFORE_PAYMENT = "before first payment"
DURING_DELIVERY = "during delivery"


def condition_words(text: str, before_payment: bool) -> str:
    """A condition as a letter, a request or an audit record shows it: its text, and
    "(during delivery)" when it need not be met before the first payment."""
    return text if before_payment else f"{text} ({DURING_DELIVERY})"


def stored_condition_words(stored: list[dict] | None) -> list[str]:
    """Conditions as an approval or a delegated request stored them (JSON), in words."""
    return [condition_words(str(c["text"]), bool(c["before_payment"])) for c in stored or []]


class ConditionRow(TypedDict):
    seq: int
    text: str
    when: str  # "before first payment" / "during delivery"
    before_payment: bool
    state: str  # open / met
    discharged_by: str
    discharged_on: str | None
    evidence: str
    source: str  # the decision that set it
    version: int


def approval_conditions(conn: Connection, grant_id: int) -> list[ConditionRow]:
    """The grant's conditions in their numbered order."""
    return [
        ConditionRow(
            seq=r.seq, text=r.text, before_payment=bool(r.before_payment),
            when=BEFORE_PAYMENT if r.before_payment else DURING_DELIVERY, state=r.state,
            discharged_by=r.discharged_by or "",
            discharged_on=r.discharged_on.isoformat() if r.discharged_on else None,
            evidence=r.evidence, source=r.source_ref, version=r.version)
        for r in conn.execute(_OF_GRANT, {"grant_id": grant_id})
    ]
