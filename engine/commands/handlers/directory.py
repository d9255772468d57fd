"""Organisations and people (reference data: each change moves the
directory generation so every process reloads its cache)."""

from __future__ import annotations

import re

from sqlalchemy import insert, select, update
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.handlers.accounts import issue_reset_link
from engine.commands.handlers.roles import (
    insert_person,
    is_system,
    open_role_change,
    privileged,
    read_roles,
)
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import NotFound, ValidationError
from engine.store.directory import OrgRow
from engine.store.models import Organisation, OrgKind

# an identifier in the Organisation Identifier scheme (org-id.guide): a register's
# prefix (country or XI/XE, a hyphen, the register's code) then the id in it
ORG_ID = re.compile(r"[A-Z]{2}-[A-Z0-9]{2,10}-[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")
ORG_ID_FORMS = "an org-id.guide identifier such as GB-LAE-RUT, GB-CHC-1234567 or GB-COH-01234567"


def read_org_id(uow: UnitOfWork, args: Args, *, required: bool, org: int | None = None) -> str:
    """The ``org_id`` argument: blank, or an identifier in the scheme's form that no
    other organisation has."""
    value = args.text("org_id", required=required, max_len=120)
    if not value:
        return ""
    if ORG_ID.fullmatch(value) is None:
        raise ValidationError(
            f"{uow.command}: org_id: {value!r} is not an organisation identifier; give "
            f"{ORG_ID_FORMS}",
            field="org_id",
        )
    holder = uow.conn.execute(
        select(col(Organisation.name)).where(
            col(Organisation.org_id) == value, col(Organisation.id) != org
        )
    ).scalar()
    if holder is not None:
        raise ValidationError(
            f"{uow.command}: org_id: {value} is already the identifier of {holder}",
            field="org_id",
        )
    return value


def find_organisation(uow: UnitOfWork, name: str, field: str = "sponsor") -> OrgRow:
    org = uow.directory.org(name)
    if org is None:
        raise NotFound(
            f"{uow.command}: {field}: unknown authority {name!r}; register it first "
            "(known authorities are listed by 'quorum orgs list')",
            field=field,
        )
    return org


@command("register_organisation", roles={"officer"}, summary="Add an authority or partnership")
def register_organisation(uow: UnitOfWork, args: Args) -> Result:
    name = args.text("name", max_len=200)
    kind = args.choice("kind", [k.value for k in OrgKind], default=OrgKind.OTHER.value)
    aliases = [str(a).strip() for a in args.items("aliases") if str(a).strip()]
    email = args.text("email", required=False) or None
    population = args.integer("population", required=False, minimum=1)
    org_id = read_org_id(uow, args, required=False)
    args.done()
    for n in (name, *aliases):
        taken = uow.directory.org(n)
        if taken is not None:
            raise ValidationError(
                f"register_organisation: name: {n!r} is already used by {taken.name}", field="name"
            )
    new_id = inserted_id(
        uow.conn.execute(
            insert(Organisation).values(
                name=name,
                kind=kind,
                aliases=aliases,
                email=email,
                population=population,
                org_id=org_id,
            )
        )
    )
    uow.touch_directory()
    after: dict[str, object] = {"name": name, "kind": kind, "aliases": aliases, "email": email}
    if population is not None:
        after["population"] = population
    if org_id:
        after["org_id"] = org_id
    uow.record(f"ORG:{name}", {}, after)
    return {"organisation": name, "id": new_id}


@command(
    "set_org_identifier",
    roles={"officer"},
    summary="Record an organisation's identifier (org-id.guide), published in 360Giving data",
)
def set_org_identifier(uow: UnitOfWork, args: Args) -> Result:
    org = find_organisation(uow, args.text("organisation", max_len=200), "organisation")
    org_id = read_org_id(uow, args, required=True, org=org.id)
    reason = args.text("reason", required=False, max_len=1000)
    args.done()
    before = uow.conn.execute(
        select(col(Organisation.org_id)).where(col(Organisation.id) == org.id)
    ).scalar_one()
    if before == org_id:
        return {"organisation": org.name, "org_id": org_id, "changed": False}
    uow.conn.execute(
        update(Organisation).where(col(Organisation.id) == org.id).values(org_id=org_id)
    )
    uow.touch_directory()
    uow.record(f"ORG:{org.name}", {"org_id": before}, {"org_id": org_id}, reason)
    return {"organisation": org.name, "org_id": org_id, "changed": True}


@command(
    "register_person",
    roles={"officer"},
    summary="Add a person with roles (a privileged role: a request a second person approves)",
)
def register_person(uow: UnitOfWork, args: Args) -> Result:
    name = args.text("name", max_len=200)
    email = args.text("email", max_len=254).lower()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise ValidationError(
            f"register_person: email: {email!r} is not an email address", field="email"
        )
    roles = read_roles(uow, args, "roles", required=True)
    org_name = args.text("organisation", required=False)
    reason = args.text("reason", required=False, max_len=2000)
    args.done()
    org = find_organisation(uow, org_name, "organisation") if org_name else None
    if "sponsor" in roles and org is None:
        raise ValidationError(
            "register_person: organisation: a sponsor contact must belong to an authority",
            field="organisation",
        )
    if uow.directory.person(email) is not None:
        raise ValidationError(
            f"register_person: email: {email} is already registered", field="email"
        )
    if privileged(roles) and not is_system(uow):
        # separation of duties: a second person approves (engine/commands/handlers/roles.py)
        return open_role_change(
            uow,
            person=None,
            name=name,
            email=email,
            organisation_id=org.id if org else None,
            add=roles,
            remove=[],
            reason=reason,
        )
    person_id = insert_person(uow, name, email, org.id if org else None, roles)
    uow.record(
        f"PERSON:{email}",
        {},
        {"name": name, "email": email, "roles": roles, "organisation": org.name if org else None},
    )
    if not is_system(uow):
        issue_reset_link(uow, person_id, email, name, welcome=True)
    return {"person": email, "id": person_id, "roles": roles}
