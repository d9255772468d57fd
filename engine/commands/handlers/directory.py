"""Organisations and people (reference data: each change moves the
directory generation so every process reloads its cache)."""

from __future__ import annotations

from sqlalchemy import insert

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
                name=name, kind=kind, aliases=aliases, email=email, population=population
            )
        )
    )
    uow.touch_directory()
    after: dict[str, object] = {"name": name, "kind": kind, "aliases": aliases, "email": email}
    if population is not None:
        after["population"] = population
    uow.record(f"ORG:{name}", {}, after)
    return {"organisation": name, "id": new_id}


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
