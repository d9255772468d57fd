"""Organisations and people (reference data: each change moves the
directory generation so every process reloads its cache)."""

from __future__ import annotations

from sqlalchemy import insert

from engine.commands.args import Args
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import NotFound, ValidationError
from engine.store.directory import OrgRow
from engine.store.models import Organisation, OrgKind, Person, PersonRole, Role


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


@command("register_person", roles={"officer"}, summary="Add a person with roles")
def register_person(uow: UnitOfWork, args: Args) -> Result:
    name = args.text("name", max_len=200)
    email = args.text("email", max_len=254).lower()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise ValidationError(
            f"register_person: email: {email!r} is not an email address", field="email"
        )
    allowed = [r.value for r in Role]
    roles = []
    for r in args.items("roles", required=True):
        r = str(r).strip().lower().replace(" ", "_")
        if r not in allowed:
            raise ValidationError(
                f"register_person: roles: {r!r} is not a role; roles are: {', '.join(allowed)}",
                field="roles",
            )
        roles.append(r)
    roles = sorted(set(roles))
    org_name = args.text("organisation", required=False)
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
    person_id = inserted_id(
        uow.conn.execute(
            insert(Person).values(
                name=name, email=email, organisation_id=org.id if org else None, active=True
            )
        )
    )
    uow.conn.execute(insert(PersonRole), [{"person_id": person_id, "role": r} for r in roles])
    uow.touch_directory()
    uow.record(
        f"PERSON:{email}",
        {},
        {"name": name, "email": email, "roles": roles, "organisation": org.name if org else None},
    )
    return {"person": email, "id": person_id, "roles": roles}
