"""The second factor a programme may require on a signature or a payment.

A programme names, per action, the roles that must give a current code from
their authenticator app (``programme.second_factor``: ``{"sign": [chair,
vice_chair], "release_payment": [finance, officer]}``; set at
``create_programme`` or by ``configure_second_factor``; empty, as in the demo,
requires nothing). The command then takes the code as ``otp``:

- the actor holds none of the named roles: nothing changes;
- no confirmed second factor: refused, saying to set one up (Account page);
- no code, a wrong or out-of-date code: refused naming the field ``otp``;
- a code already used (its time step at or before the last accepted one):
  refused; each code works once (``second_factor.last_step``).

The accepted step is stored in the command's transaction: a refused command
rolls it back with everything else.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from engine.commands.uow import UnitOfWork
from engine.domain import totp
from engine.domain.errors import PermissionDenied, ValidationError
from engine.store.factors import factor_of
from engine.store.models import SecondFactor

ACTIONS = {"sign": "sign delegated decisions", "release_payment": "release payments"}
FIELD = "otp"


def pot_programme(uow: UnitOfWork, pot_id: int) -> int:
    """The programme a pot belongs to (from the cached directory)."""
    return uow.pot_programme(pot_id)


def required_roles(uow: UnitOfWork, programme_id: int, action: str) -> frozenset[str]:
    return frozenset(uow.programme_policy(programme_id).second_factor.get(action, ()))


def check_second_factor(uow: UnitOfWork, programme_id: int, action: str, code: str | None) -> None:
    """Refuse unless the actor gives a fresh valid code, when ``programme_id``
    requires one of their roles to for ``action`` (see the module's docstring)."""
    needing = sorted(required_roles(uow, programme_id, action) & uow.actor.roles)
    if not needing:
        return
    cmd = uow.command
    programme = uow.directory.programmes.get(programme_id, "the programme")
    who = " or ".join(needing)
    what = f"{programme} requires a second factor from the role {who} to {ACTIONS[action]}"
    factor = factor_of(uow.conn, uow.actor.person_id) if uow.actor.person_id else None
    if factor is None or factor.confirmed_at is None:
        raise PermissionDenied(
            f"{cmd}: {FIELD}: {what}, and {uow.actor.name} has not set one up: set it up on "
            "the Account page (Second factor), then give its code",
            field=FIELD,
        )
    if not code:
        raise ValidationError(
            f"{cmd}: {FIELD}: {what}: give the code your authenticator app shows now",
            field=FIELD,
        )
    try:
        step = totp.check(factor.secret, code, uow.now, factor.last_step)
    except totp.CodeRefused as why:
        raise ValidationError(f"{cmd}: {FIELD}: {why}", field=FIELD) from None
    used = uow.conn.execute(
        update(SecondFactor)
        .where(col(SecondFactor.id) == factor.id, col(SecondFactor.last_step) < step)
        .values(last_step=step)
    )
    if not used.rowcount:
        raise ValidationError(
            f"{cmd}: {FIELD}: this code was already used; wait for the next code from your "
            "authenticator app",
            field=FIELD,
        )
