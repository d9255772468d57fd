"""Second factors (TOTP) kept per person: enrolment bookkeeping.

Starting an enrolment writes a new, unconfirmed secret (replacing an earlier
unconfirmed one) directly, like sign-in bookkeeping: it grants nothing until
the person proves it with a code through the audited ``confirm_second_factor``
command. The secret is never put in the audit trail or a command's result.
The checks of a code are engine/commands/second_factor.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from engine.domain import totp
from engine.domain.errors import ValidationError
from engine.store.db import write_connection
from engine.store.models import SecondFactor


@dataclass(frozen=True)
class FactorRow:
    id: int
    person_id: int
    secret: str
    confirmed_at: dt.datetime | None
    last_step: int


def factor_of(conn: Connection, person_id: int) -> FactorRow | None:
    row = conn.execute(
        select(
            col(SecondFactor.id),
            col(SecondFactor.person_id),
            col(SecondFactor.secret),
            col(SecondFactor.confirmed_at),
            col(SecondFactor.last_step),
        ).where(col(SecondFactor.person_id) == person_id)
    ).first()
    if row is None:
        return None
    return FactorRow(row.id, row.person_id, row.secret, row.confirmed_at, row.last_step)


def start_enrolment(engine: Engine, person_id: int, now: dt.datetime) -> str:
    """A new unconfirmed secret for ``person_id`` (the base32 text to show once);
    refused if they already have a confirmed one (remove it first)."""
    secret = totp.new_secret()
    with write_connection(engine) as conn, conn.begin():
        found = factor_of(conn, person_id)
        if found is not None and found.confirmed_at is not None:
            raise ValidationError(
                "second factor: you already have one set up; remove it first to set up "
                "another (e.g. on a new phone)",
                field="otp",
            )
        conn.execute(delete(SecondFactor).where(col(SecondFactor.person_id) == person_id))
        conn.execute(
            insert(SecondFactor).values(
                person_id=person_id, secret=secret, created_at=now, confirmed_at=None, last_step=0
            )
        )
    return secret
