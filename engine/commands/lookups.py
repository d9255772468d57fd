"""Lookups shared by several command handlers: load an item by its ref or
refuse naming the field. Handlers import these from here (not from each
other), so no handler module depends on another to find an item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from engine.commands.uow import UnitOfWork
from engine.domain.errors import NotFound, ValidationError
from engine.store.models import Meeting, Organisation, OrgKind, Pot, Programme

ORG_T = Organisation.__table__
PROG_T = Programme.__table__
POT_T = Pot.__table__
_MEETING_BY_REF = select(Meeting.__table__).where(Meeting.__table__.c.ref == bindparam("ref"))
# the meeting without its agenda lists (a frozen agenda, an officer's order: as long
# as the agenda), for a command that needs neither (decide): its cost stays flat
_MEETING_HEAD_BY_REF = select(
    *(c for c in Meeting.__table__.c if c.name not in ("agenda", "agenda_order"))
).where(Meeting.__table__.c.ref == bindparam("ref"))


def load_meeting(uow: UnitOfWork, ref: str, *, agenda: bool = True) -> Any:
    """The meeting row by its ref (``agenda`` False: without the agenda lists)."""
    row = uow.conn.execute(_MEETING_BY_REF if agenda else _MEETING_HEAD_BY_REF,
                           {"ref": ref}).first()
    if row is None:
        raise NotFound(f"{uow.command}: meeting: no meeting {ref!r}", field="meeting", item=ref)
    return row


# ---- risks and accountable bodies (issue 13)


@dataclass(frozen=True)
class Payee:
    """Who a grant's payments go to: the grant's body, or (a partnership) the
    partnership's accountable body. ``body_id`` None: a partnership that has
    not named one yet."""

    grant_body_id: int
    grant_body: str
    partnership: bool
    body_id: int | None
    body: str | None


def payee(uow: UnitOfWork, grant: Any, field: str = "grant") -> Payee:
    """Who receives and receipts ``grant``'s payments; refused (naming the
    partnership and how to name its body) when the grant's programme requires an
    accountable body before any payment and the partnership has none."""
    org = uow.directory.orgs_by_id[grant.accountable_body_id]
    if org.kind != OrgKind.SUB_REGIONAL_PARTNERSHIP:
        return Payee(org.id, org.name, False, org.id, org.name)
    body_id = uow.conn.execute(
        select(ORG_T.c.accountable_body_id).where(ORG_T.c.id == org.id)).scalar()
    if body_id is not None:
        return Payee(org.id, org.name, True, int(body_id), uow.directory.orgs_by_id[body_id].name)
    required, programme = uow.conn.execute(
        select(PROG_T.c.accountable_body_required, PROG_T.c.name)
        .join(POT_T, POT_T.c.programme_id == PROG_T.c.id).where(POT_T.c.id == grant.pot_id)
    ).one()
    if required:
        raise ValidationError(
            f"{uow.command}: {field}: {grant.ref} is a grant to {org.name}, a partnership "
            f"that has not named its accountable body; {programme} pays a partnership only "
            f"through its accountable body: an officer proposes one (propose_accountable_body "
            f"partnership: {org.name}, body: <the council>) and a second officer approves it",
            field=field, item=grant.ref)
    return Payee(org.id, org.name, True, None, None)


def find_owner(uow: UnitOfWork, kind: str, who: str, other_kinds: str) -> tuple[str, int]:
    """An owner (of an action, a risk) named by ``who``: a person (``kind`` person), a
    partnership or another organisation; its name as the record shows it and its
    person or organisation id. ``other_kinds`` says what else ``owner_kind`` may be."""
    if kind == "person":
        person = uow.directory.person_called(who)
        if person is None:
            raise NotFound(
                f"{uow.command}: owner: no person {who!r} (give a person's name or email, "
                f"or owner_kind {other_kinds})", field="owner")
        return person.name, person.id
    org = uow.directory.org(who)
    if org is None:
        raise NotFound(f"{uow.command}: owner: no {kind} {who!r} (register it first, "
                       "or give owner_kind person)", field="owner")
    if kind == "partnership" and org.kind != OrgKind.SUB_REGIONAL_PARTNERSHIP:
        raise ValidationError(
            f"{uow.command}: owner: {org.name} is not a partnership (it is a "
            f"{org.kind.replace('_', ' ')}); give owner_kind organisation", field="owner")
    return org.name, org.id
