"""People's roles: separation of duties (issue 11).

Granting or removing a privileged role (``PRIVILEGED_ROLES``: officer,
director, chair, vice_chair, finance), and registering a person with one, is a
*role change*: a request (workflows/role_change.py) that changes nothing until a
second person — a director or the Chair, never the one who asked and never the
person whose roles change — approves it. Every step is audited (on the request
``RC-0001`` and on ``PERSON:<email>``) and emailed to the people concerned: the
person, the one who asked, and the directors and Chair who may decide it.

Other roles (sponsor, board_member, auditor) an officer grants or removes at
once (``change_roles``, audited, the person told). The system actor (an
installation's bootstrap from the command line, demos, tests) registers people
directly: it is the operator at the server, who can already write the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select

from engine.commands.args import Args
from engine.commands.handlers.accounts import issue_reset_link
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.actor import SYSTEM
from engine.domain.errors import NotFound, TransitionRefused, ValidationError
from engine.settings import get_settings
from engine.store.directory import PersonRow
from engine.store.models import PRIVILEGED_ROLES, Person, PersonRole, Role, RoleChange
from engine.store.refs import next_ref
from engine.store.sessions import ROLES_CHANGED, revoke_sessions
from rules.guards import RoleChangeDecider
from workflows.role_change import APPROVERS, OPEN, ROLE_CHANGE

RC = RoleChange.__table__
PR = PersonRole.__table__
TEMPLATE = "role_change"


def read_roles(uow: UnitOfWork, args: Args, field: str, *, required: bool = False) -> list[str]:
    """A list of role names (spaces as underscores), each one a Role, sorted, no repeats."""
    allowed = [r.value for r in Role]
    roles = []
    for r in args.items(field, required=required):
        r = str(r).strip().lower().replace(" ", "_")
        if r not in allowed:
            raise ValidationError(
                f"{uow.command}: {field}: {r!r} is not a role; roles are: {', '.join(allowed)}",
                field=field,
            )
        roles.append(r)
    return sorted(set(roles))


def privileged(roles: Iterable[str]) -> list[str]:
    return sorted(set(roles) & PRIVILEGED_ROLES)


def is_system(uow: UnitOfWork) -> bool:
    return SYSTEM in uow.actor.roles


def insert_person(
    uow: UnitOfWork, name: str, email: str, organisation_id: int | None, roles: list[str]
) -> int:
    """Register a person (no password: they set one through a link) with ``roles``."""
    person_id = inserted_id(
        uow.conn.execute(
            insert(Person).values(
                name=name, email=email, organisation_id=organisation_id, active=True
            )
        )
    )
    if roles:
        uow.conn.execute(insert(PersonRole), [{"person_id": person_id, "role": r} for r in roles])
    uow.touch_directory()
    return person_id


def _person_by_id(uow: UnitOfWork, person_id: int | None) -> PersonRow | None:
    if person_id is None:
        return None
    return next((p for p in uow.directory.people_by_email.values() if p.id == person_id), None)


def _deciders(uow: UnitOfWork, *but: int | None) -> list[PersonRow]:
    """The active directors and Chair who may decide a role change (not ``but``)."""
    return [
        p
        for p in uow.directory.people_by_email.values()
        if p.active and p.roles & APPROVERS and p.id not in but
    ]


def _words(roles: list[str]) -> str:
    return ", ".join(r.replace("_", " ") for r in roles) or "none"


def _tell(uow: UnitOfWork, rc: Any, event: str, people: list[tuple[str, str, str]]) -> None:
    """Email each (name, email, why they are told) once about ``event`` on ``rc``."""
    requester = _person_by_id(uow, rc.requested_by_id)
    seen: set[str] = set()
    for name, email, why in people:
        if email.lower() in seen:
            continue
        seen.add(email.lower())
        uow.notify(
            key=f"role_change:{rc.ref}:{event}:{email.lower()}",
            to=email,
            template=TEMPLATE,
            subject=f"Role change {rc.ref} {event}: {rc.email}",
            context={
                "name": name,
                "why": why,
                "event": event,
                "ref": rc.ref,
                "person": rc.name,
                "email": rc.email,
                "new_person": rc.person_id is None,
                "add": _words(list(rc.add_roles)),
                "remove": _words(list(rc.remove_roles)),
                "reason": rc.reason,
                "requested_by": requester.name if requester else "the system",
                "decided_by": uow.actor.name if event != "requested" else "",
                "decision_reason": rc.decision_reason if event != "requested" else "",
                "expires_at": rc.expires_at.isoformat(timespec="minutes"),
            },
        )


def _concerned(uow: UnitOfWork, rc: Any, event: str) -> list[tuple[str, str, str]]:
    """Who is told: the person, the one who asked, and (while it waits) the deciders."""
    people = [(rc.name, rc.email, "they are your roles")]
    requester = _person_by_id(uow, rc.requested_by_id)
    if requester is not None:
        people.append((requester.name, requester.email, "you asked for it"))
    subject = _person_by_id(uow, rc.person_id)
    if event == "requested":
        for p in _deciders(uow, rc.requested_by_id, subject.id if subject else None):
            people.append((p.name, p.email, "you may approve or refuse it"))
    return people


def _load(uow: UnitOfWork, ref: str) -> Any:
    row = uow.conn.execute(select(RC).where(RC.c.ref == ref.strip())).first()
    if row is None:
        raise NotFound(f"{uow.command}: item: no role change {ref!r}", field="item")
    return row


def _decider(uow: UnitOfWork, rc: Any) -> RoleChangeDecider:
    return RoleChangeDecider(
        uow.command, rc.ref, uow.actor.person_id, rc.requested_by_id, rc.person_id, rc.email
    )


def open_role_change(
    uow: UnitOfWork,
    *,
    person: PersonRow | None,
    name: str,
    email: str,
    organisation_id: int | None,
    add: list[str],
    remove: list[str],
    reason: str,
) -> Result:
    """Ask for a role change (the workflow's ``request`` step): nothing else changes."""
    expire_lapsed(uow)
    waiting = uow.conn.execute(
        select(RC.c.ref).where(RC.c.state == OPEN, RC.c.email == email)
    ).first()
    if waiting is not None:
        raise ValidationError(
            f"{uow.command}: email: role change {waiting.ref} for {email} is already waiting "
            "for a decision; withdraw it or wait for it to be decided",
            field="email",
        )
    ref = next_ref(uow.conn, RoleChange, "role_change")
    transition = uow.fire(ROLE_CHANGE, "request", ROLE_CHANGE.initial, ref)
    now = uow.now
    expires = now + dt.timedelta(days=get_settings().role_change_days)
    values: dict[str, Any] = {
        "ref": ref,
        "person_id": person.id if person else None,
        "name": name,
        "email": email,
        "organisation_id": organisation_id,
        "add_roles": add,
        "remove_roles": remove,
        "reason": reason,
        "state": transition.dest,
        "requested_by_id": uow.actor.person_id,
        "requested_at": now,
        "expires_at": expires,
        "decision_reason": "",
        "version": 1,
    }
    uow.conn.execute(insert(RC).values(**values))
    after = {
        "state": transition.dest,
        "person": email,
        "new_person": person is None,
        "add": add,
        "remove": remove,
    }
    uow.record(ref, {}, after, reason or "asked for a role change")
    rc = _load(uow, ref)
    _tell(uow, rc, "requested", _concerned(uow, rc, "requested"))
    return {
        "role_change": ref,
        "state": transition.dest,
        "person": email,
        "add": add,
        "remove": remove,
        "expires_at": expires.isoformat(timespec="minutes"),
    }


def _apply(uow: UnitOfWork, person_id: int, email: str, add: list[str], remove: list[str]) -> None:
    held: set[str] = set(
        uow.conn.execute(select(PR.c.role).where(PR.c.person_id == person_id)).scalars().all()
    )
    new = [r for r in add if r not in held]
    if new:
        uow.conn.execute(insert(PersonRole), [{"person_id": person_id, "role": r} for r in new])
    gone = [r for r in remove if r in held]
    if gone:
        uow.conn.execute(
            delete(PR).where(PR.c.person_id == person_id, PR.c.role.in_(gone))
        )
    uow.touch_directory()
    if new or gone:
        # every web session of theirs ends: the next sign-in carries the new roles
        # (docs/security.md "Sessions")
        revoke_sessions(uow.conn, person_id, ROLES_CHANGED, uow.now)
    uow.record(
        f"PERSON:{email}",
        {"roles": sorted(held)},
        {"roles": sorted((held | set(new)) - set(gone))},
    )


@command(
    "change_roles",
    summary="Grant or remove roles: a privileged role (officer, director, chair, vice chair, "
    "finance) only as a request a second person approves",
)
def change_roles(uow: UnitOfWork, args: Args) -> Result:
    email = args.text("email", max_len=254).lower()
    add = read_roles(uow, args, "add")
    remove = read_roles(uow, args, "remove")
    reason = args.text("reason", required=False, max_len=2000)
    args.done()
    if not is_system(uow):
        uow.authorise(ROLE_CHANGE, "request")
    if not add and not remove:
        raise ValidationError(
            "change_roles: add: name a role to add or to remove (add, remove)", field="add"
        )
    both = sorted(set(add) & set(remove))
    if both:
        raise ValidationError(
            f"change_roles: remove: {_words(both)} is both added and removed", field="remove"
        )
    person = uow.directory.person(email)
    if person is None:
        raise NotFound(f"change_roles: email: no person with email {email!r}", field="email")
    asked = add
    add = [r for r in add if r not in person.roles]
    missing = [r for r in remove if r not in person.roles]
    if missing:
        raise ValidationError(
            f"change_roles: remove: {email} does not have {_words(missing)}", field="remove"
        )
    if not add and not remove:
        raise ValidationError(
            f"change_roles: add: {email} already has {_words(asked)}",
            field="add",
        )
    if privileged(add + remove) and not is_system(uow):
        return open_role_change(
            uow,
            person=person,
            name=person.name,
            email=person.email,
            organisation_id=person.organisation_id,
            add=add,
            remove=remove,
            reason=reason,
        )
    if "sponsor" in add and person.organisation_id is None:
        raise ValidationError(
            "change_roles: add: a sponsor contact must belong to an authority", field="add"
        )
    _apply(uow, person.id, person.email, add, remove)
    uow.notify(
        key=f"roles_changed:{person.email}:{uow.now.isoformat()}",
        to=person.email,
        template="roles_changed",
        subject="Your roles in Quorum have changed",
        context={
            "name": person.name,
            "add": _words(add),
            "remove": _words(remove),
            "by": uow.actor.name,
            "reason": reason,
        },
    )
    roles = sorted((set(person.roles) | set(add)) - set(remove))
    return {"person": person.email, "roles": roles, "changed": True}


def _decide(uow: UnitOfWork, args: Args, trigger: str, *, reason_required: bool) -> tuple[Any, str]:
    ref = args.text("item", max_len=40)
    reason = args.text("reason", required=reason_required, max_len=2000)
    args.done()
    uow.authorise(ROLE_CHANGE, trigger)
    rc = _load(uow, ref)
    uow.check_version(rc.ref, rc.version, args)
    if rc.state == OPEN and rc.expires_at <= uow.now:
        raise TransitionRefused(
            f"{uow.command}: item: {rc.ref} expired at "
            f"{rc.expires_at.isoformat(timespec='minutes')} without a decision; nothing "
            "changed — ask again (change_roles) if it is still wanted",
            item=rc.ref,
        )
    return rc, reason


def _decided(
    uow: UnitOfWork, rc: Any, trigger: str, reason: str, transition: Any = None, **values: Any
) -> Any:
    if transition is None:
        transition = uow.fire(ROLE_CHANGE, trigger, rc.state, rc.ref, _decider(uow, rc))
    uow.update_versioned(
        RoleChange,
        rc.id,
        rc.version,
        {
            "decided_by_id": uow.actor.person_id,
            "decided_at": uow.now,
            "decision_reason": reason,
            **values,
        },
        rc.ref,
        transition,
    )
    uow.record(rc.ref, {"state": rc.state}, {"state": transition.dest, **values}, reason)
    return transition


@command("approve_role_change", summary="Approve a role change (a director or the Chair)")
def approve_role_change(uow: UnitOfWork, args: Args) -> Result:
    rc, reason = _decide(uow, args, "approve", reason_required=False)
    # the step and its guard first: an approval by the asker or the subject writes nothing
    approving = uow.fire(ROLE_CHANGE, "approve", rc.state, rc.ref, _decider(uow, rc))
    add, remove = list(rc.add_roles), list(rc.remove_roles)
    person_id = rc.person_id
    if person_id is None:
        if uow.directory.person(rc.email) is not None:
            raise ValidationError(
                f"approve_role_change: item: {rc.email} was registered since {rc.ref} was "
                "asked for; refuse it and ask for a change to their roles instead",
                field="item",
            )
        person_id = insert_person(uow, rc.name, rc.email, rc.organisation_id, add)
        uow.record(
            f"PERSON:{rc.email}",
            {},
            {"name": rc.name, "email": rc.email, "roles": add, "role_change": rc.ref},
        )
    else:
        person = _person_by_id(uow, person_id)
        if person is None:
            raise NotFound(f"approve_role_change: item: {rc.ref}'s person is gone", field="item")
        _apply(uow, person_id, person.email, add, remove)
    transition = _decided(uow, rc, "approve", reason, approving, person_id=person_id)
    decided = _load(uow, rc.ref)
    _tell(uow, decided, "approved", _concerned(uow, decided, "approved"))
    if rc.person_id is None:
        issue_reset_link(uow, person_id, rc.email, rc.name, welcome=True)
    return {
        "role_change": rc.ref,
        "state": transition.dest,
        "person": rc.email,
        "add": add,
        "remove": remove,
    }


@command("refuse_role_change", summary="Refuse a role change (a director or the Chair)")
def refuse_role_change(uow: UnitOfWork, args: Args) -> Result:
    rc, reason = _decide(uow, args, "refuse", reason_required=True)
    transition = _decided(uow, rc, "refuse", reason)
    decided = _load(uow, rc.ref)
    _tell(uow, decided, "refused", _concerned(uow, decided, "refused"))
    return {"role_change": rc.ref, "state": transition.dest, "person": rc.email}


@command("withdraw_role_change", summary="Withdraw a role change you asked for")
def withdraw_role_change(uow: UnitOfWork, args: Args) -> Result:
    rc, reason = _decide(uow, args, "withdraw", reason_required=False)
    transition = _decided(uow, rc, "withdraw", reason)
    decided = _load(uow, rc.ref)
    _tell(uow, decided, "withdrawn", _concerned(uow, decided, "withdrawn"))
    return {"role_change": rc.ref, "state": transition.dest, "person": rc.email}


def expire_lapsed(uow: UnitOfWork) -> list[str]:
    """Expire every role change still waiting after its expiry time, through the
    workflow's ``expire`` step (audited, the people concerned told). Run by the
    daily sweep, by ``expire_role_changes`` and before each new request."""
    rows = uow.conn.execute(
        select(RC).where(RC.c.state == OPEN, RC.c.expires_at <= uow.now).order_by(RC.c.id)
    ).all()
    for rc in rows:
        transition = uow.fire(ROLE_CHANGE, "expire", rc.state, rc.ref)
        uow.update_versioned(RoleChange, rc.id, rc.version, {"decided_at": uow.now}, rc.ref,
                             transition)  # fmt: skip
        uow.record(rc.ref, {"state": rc.state}, {"state": transition.dest},
                   "not decided before it expired", command="expire_role_changes")  # fmt: skip
        _tell(uow, rc, "expired", _concerned(uow, rc, "expired"))
    return [rc.ref for rc in rows]


@command("expire_role_changes", summary="Expire role changes not decided in time")
def expire_role_changes(uow: UnitOfWork, args: Args) -> Result:
    args.done()
    if not is_system(uow):
        uow.authorise(ROLE_CHANGE, "expire")
    return {"expired": expire_lapsed(uow)}
