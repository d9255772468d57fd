"""Reference data every command needs — people and roles, organisations,
programmes and pots — cached per process as an immutable snapshot.

The snapshot is tagged with ``audit_head.directory_seq``, which each command
reads anyway when it locks the chain head at the start of its transaction.
Commands that change reference data move ``directory_seq``; any process
whose snapshot is older reloads it before using it, so the cache is never
stale inside a write transaction, in this process or any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import col

from engine.store.models import Organisation, Person, PersonRole, Pot, Programme

_PROGRAMME = Programme.__table__  # Core columns: their ids are never None


@dataclass(frozen=True)
class OrgRow:
    id: int
    name: str
    kind: str
    aliases: tuple[str, ...]
    email: str | None
    population: int | None = None


@dataclass(frozen=True)
class PersonRow:
    id: int
    name: str
    email: str
    organisation_id: int | None
    active: bool
    roles: frozenset[str]


@dataclass(frozen=True)
class PotRow:
    id: int
    name: str
    programme_id: int
    programme: str
    owner_partnership_id: int | None = None  # a partnership allocation's partnership


@dataclass
class Directory:
    seq: int
    orgs_by_key: dict[str, OrgRow] = field(default_factory=dict)  # lower name/alias
    orgs_by_id: dict[int, OrgRow] = field(default_factory=dict)
    people_by_email: dict[str, PersonRow] = field(default_factory=dict)
    contacts_by_org: dict[int, list[PersonRow]] = field(default_factory=dict)  # sponsor role
    officers: list[PersonRow] = field(default_factory=list)  # active, by email
    pots: list[PotRow] = field(default_factory=list)
    programmes: dict[int, str] = field(default_factory=dict)

    def org(self, name: str) -> OrgRow | None:
        return self.orgs_by_key.get(str(name).strip().lower())

    def person(self, email: str) -> PersonRow | None:
        return self.people_by_email.get(str(email).strip().lower())

    def person_called(self, who: str) -> PersonRow | None:
        """A person by email or by name (case-insensitive)."""
        found = self.person(who)
        if found is not None:
            return found
        key = str(who).strip().lower()
        named = [p for p in self.people_by_email.values() if p.name.lower() == key]
        return named[0] if len(named) == 1 else None

    def pots_named(self, name: str) -> list[PotRow]:
        key = str(name).strip().lower()
        return [p for p in self.pots if p.name.lower() == key]


def load(conn: Connection, seq: int) -> Directory:
    d = Directory(seq=seq)
    for o in conn.execute(
        select(
            col(Organisation.id),
            col(Organisation.name),
            col(Organisation.kind),
            col(Organisation.aliases),
            col(Organisation.email),
            col(Organisation.population),
        )
    ):
        row = OrgRow(o.id, o.name, o.kind, tuple(o.aliases or ()), o.email, o.population)
        d.orgs_by_id[row.id] = row
        for key in (row.name, *row.aliases):
            d.orgs_by_key[key.strip().lower()] = row
    roles: dict[int, set[str]] = {}
    for pid, role in conn.execute(select(col(PersonRole.person_id), col(PersonRole.role))):
        roles.setdefault(pid, set()).add(role)
    for p in conn.execute(
        select(
            col(Person.id),
            col(Person.name),
            col(Person.email),
            col(Person.organisation_id),
            col(Person.active),
        ).order_by(col(Person.email))
    ):
        person = PersonRow(
            p.id, p.name, p.email, p.organisation_id, bool(p.active), frozenset(roles.get(p.id, ()))
        )
        d.people_by_email[person.email.lower()] = person
        if person.active and "sponsor" in person.roles and person.organisation_id is not None:
            d.contacts_by_org.setdefault(person.organisation_id, []).append(person)
        if person.active and "officer" in person.roles:
            d.officers.append(person)
    d.programmes = {
        pid: name
        for pid, name in cast(
            Iterable[tuple[int, str]], conn.execute(select(_PROGRAMME.c.id, _PROGRAMME.c.name))
        )
    }
    d.pots = [
        PotRow(p.id, p.name, p.programme_id, d.programmes.get(p.programme_id, ""),
               p.owner_partnership_id)
        for p in conn.execute(
            select(col(Pot.id), col(Pot.name), col(Pot.programme_id),
                   col(Pot.owner_partnership_id)).order_by(col(Pot.id))
        )
    ]
    return d
