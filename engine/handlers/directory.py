"""Organisations and people."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.args import Args
from engine.errors import NotFound, ValidationError
from engine.models import Organisation, OrgKind, Person, PersonRole, Role
from engine.service import UnitOfWork, command


def all_organisations(uow: UnitOfWork) -> dict[str, Organisation]:
    """Every organisation by lower-cased name and alias (cached for the command)."""

    def load() -> dict[str, Organisation]:
        index: dict[str, Organisation] = {}
        for org in uow.session.execute(select(Organisation)).scalars():
            for name in (org.name, *org.aliases):
                index[name.strip().lower()] = org
        return index

    return uow.cached("orgs", load)


def find_organisation(uow: UnitOfWork, name: str, field: str = "sponsor") -> Organisation:
    org = all_organisations(uow).get(str(name).strip().lower())
    if org is None:
        raise NotFound(
            f"{uow.command}: {field}: unknown authority {name!r}; register it first "
            "(known authorities are listed by 'quorum orgs list')",
            field=field,
        )
    return org


@command("register_organisation", roles={"officer"}, summary="Add an authority or partnership")
def register_organisation(uow: UnitOfWork, args: Args) -> dict:
    name = args.text("name", max_len=200)
    kind = args.choice("kind", [k.value for k in OrgKind], default=OrgKind.OTHER.value)
    aliases = [str(a).strip() for a in args.items("aliases") if str(a).strip()]
    email = args.text("email", required=False) or None
    args.done()
    index = all_organisations(uow)
    for n in (name, *aliases):
        if n.lower() in index:
            raise ValidationError(
                f"register_organisation: name: {n!r} is already used by {index[n.lower()].name}",
                field="name",
            )
    org = uow.add(Organisation(name=name, kind=kind, aliases=aliases, email=email))
    uow.flush()
    uow._cache.pop("orgs", None)
    after = {"name": name, "kind": kind, "aliases": aliases, "email": email}
    uow.record(f"ORG:{name}", {}, after)
    return {"organisation": name, "id": org.id}


@command("register_person", roles={"officer"}, summary="Add a person with roles")
def register_person(uow: UnitOfWork, args: Args) -> dict:
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
    org_name = args.text("organisation", required=False)
    args.done()
    org = find_organisation(uow, org_name, "organisation") if org_name else None
    if "sponsor" in roles and org is None:
        raise ValidationError(
            "register_person: organisation: a sponsor contact must belong to an authority",
            field="organisation",
        )
    exists = uow.session.execute(select(Person.id).where(func.lower(Person.email) == email)).first()
    if exists:
        raise ValidationError(
            f"register_person: email: {email} is already registered", field="email"
        )
    person = uow.add(Person(name=name, email=email, organisation_id=org.id if org else None))
    uow.flush()
    for r in sorted(set(roles)):
        uow.add(PersonRole(person_id=person.id, role=r))
    uow.record(
        f"PERSON:{email}",
        {},
        {
            "name": name,
            "email": email,
            "roles": sorted(set(roles)),
            "organisation": org.name if org else None,
        },
    )
    return {"person": email, "id": person.id, "roles": sorted(set(roles))}
