"""Programmes, pots, and ratified changes to their allocations.

Allocations change only through a recorded ratification: there is no other
command that writes an ``allocate`` movement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import MoneyRuleBroken, NotFound, ValidationError
from engine.domain.money import format_pence
from engine.store.directory import OrgRow, PotRow
from engine.store.ledger import ledger
from engine.store.models import (
    MovementKind,
    Pot,
    Programme,
    ProgrammeChange,
    Role,
)
from engine.store.refs import next_ref


def find_programme(uow: UnitOfWork, name: str | None, field: str = "programme") -> tuple[int, str]:
    """(id, name) of the named programme, or of the only one."""
    progs = uow.directory.programmes
    if name:
        for pid, pname in progs.items():
            if pname.lower() == name.strip().lower():
                return pid, pname
        raise NotFound(f"{uow.command}: {field}: no programme called {name!r}", field=field)
    if len(progs) == 1:
        return next(iter(progs.items()))
    if not progs:
        raise NotFound(f"{uow.command}: there is no programme yet", field=field)
    raise ValidationError(
        f"{uow.command}: {field}: there are {len(progs)} programmes; say which "
        f"({', '.join(progs.values())})",
        field=field,
    )


def find_pot(
    uow: UnitOfWork, name: str, programme_id: int | None = None, field: str = "pot"
) -> PotRow:
    pots = [
        p
        for p in uow.directory.pots_named(name)
        if programme_id is None or p.programme_id == programme_id
    ]
    if len(pots) == 1:
        return pots[0]
    if len(pots) > 1:
        raise ValidationError(
            f"{uow.command}: {field}: {name!r} is a pot of several programmes "
            f"({', '.join(p.programme for p in pots)}); say which programme",
            field=field,
        )
    known = [
        p.name for p in uow.directory.pots if programme_id is None or p.programme_id == programme_id
    ]
    raise NotFound(
        f"{uow.command}: {field}: no pot called {name!r}; pots are: {', '.join(known) or 'none'}",
        field=field,
    )


# who may bid where: a partnership allocation (a pot owned by a partnership,
# handlers/partnership_money.py) is for its partnership only


def owner_words(uow: UnitOfWork, pot: PotRow) -> str:
    """'Vale SRP's allocation' or 'a regional pot'."""
    if pot.owner_partnership_id is None:
        return "a regional pot"
    return f"{uow.directory.orgs_by_id[pot.owner_partnership_id].name}'s allocation"


def check_pot_for(uow: UnitOfWork, pot: PotRow, sponsor: OrgRow, field: str = "pot") -> None:
    """Refuse a bid (or allocation) for ``sponsor`` from another partnership's allocation."""
    owner = pot.owner_partnership_id
    if owner is not None and owner != sponsor.id:
        raise ValidationError(
            f"{uow.command}: {field}: {pot.name} is {owner_words(uow, pot)}; only "
            f"{uow.directory.orgs_by_id[owner].name} bids from it ({sponsor.name} cannot)",
            field=field,
        )


def own_pot(uow: UnitOfWork, sponsor: OrgRow) -> PotRow | None:
    """The one partnership allocation ``sponsor`` owns (None if it owns none or several)."""
    mine = [p for p in uow.directory.pots if p.owner_partnership_id == sponsor.id]
    return mine[0] if len(mine) == 1 else None


def _read_allocations(uow: UnitOfWork, args: Args, name: str) -> dict[str, int]:
    raw = args.mapping(name)
    if not raw:
        raise ValidationError(f"{uow.command}: {name}: name at least one pot", field=name)
    out: dict[str, int] = {}
    for pot_name, amount in raw.items():
        sub = Args(uow.command, {f"{name}.{pot_name}": amount})
        out[str(pot_name).strip()] = sub.pence(f"{name}.{pot_name}", allow_zero=True)
    return out


def _new_pot(uow: UnitOfWork, programme_id: int, name: str) -> int:
    uow.touch_directory()
    return inserted_id(
        uow.conn.execute(insert(Pot).values(programme_id=programme_id, name=name, version=1))
    )


def _ratify(
    uow: UnitOfWork,
    programme_id: int,
    changes: list[dict[str, Any]],
    old_total: int,
    ratified_by: str,
    reason: str,
) -> tuple[str, int]:
    """The only writer of allocations: one movement per changed pot and the
    ratification record. ``changes``: {pot, pot_id, from_pence, to_pence, ...}."""
    conn = uow.conn
    for c in changes:
        uow.book(c["pot_id"], MovementKind.ALLOCATE, c["to_pence"] - c["from_pence"],
                 uow.today, None, note=ratified_by)
    # kept on the record: pot, from_pence, to_pence and what a move says of itself
    # (partnership_money.py: move, share, of_pence, partnership, from, to)
    public = [{k: v for k, v in c.items() if k != "pot_id"} for c in changes]
    new_total = old_total + sum(c["to_pence"] - c["from_pence"] for c in changes)
    ref = next_ref(conn, ProgrammeChange, "programme_change")
    conn.execute(
        insert(ProgrammeChange).values(
            ref=ref,
            programme_id=programme_id,
            ratified_on=uow.today,
            ratified_by=ratified_by,
            reason=reason,
            old_total_pence=old_total,
            new_total_pence=new_total,
            changes=public,
            recorded_by_id=uow.actor.person_id,
        )
    )
    uow.record(
        ref,
        {"total_pence": old_total, **{c["pot"]: c["from_pence"] for c in public}},
        {"total_pence": new_total, **{c["pot"]: c["to_pence"] for c in public}},
        f"{reason} ({ratified_by})",
    )
    return ref, new_total


@command("create_programme", roles={"director"}, summary="Establish a programme and its pots")
def create_programme(uow: UnitOfWork, args: Args) -> Result:
    name = args.text("name", max_len=200)
    pots = _read_allocations(uow, args, "pots")
    starts_on = args.date("starts_on", required=False)
    ends_on = args.date("ends_on", required=False)
    ratified_by = args.text("ratified_by", required=False, default="establishment of the programme")
    second_factor = _second_factor_roles(uow, args.raw("second_factor") or {})
    args.done()
    if starts_on and ends_on and ends_on <= starts_on:
        raise ValidationError("create_programme: ends_on: must be after starts_on", field="ends_on")
    if any(p.lower() == name.lower() for p in uow.directory.programmes.values()):
        raise ValidationError(f"create_programme: name: {name!r} already exists", field="name")
    prog_id = inserted_id(
        uow.conn.execute(
            insert(Programme).values(
                name=name,
                starts_on=starts_on,
                ends_on=ends_on,
                version=1,
                second_factor=second_factor,
            )
        )
    )
    uow.touch_directory()
    changes = [
        {"pot": pot, "pot_id": _new_pot(uow, prog_id, pot), "from_pence": 0, "to_pence": amount}
        for pot, amount in pots.items()
    ]
    ref, total = _ratify(uow, prog_id, changes, 0, ratified_by, "programme established")
    out: dict[str, Any] = {"programme": name, "ref": ref, "total_pence": total}
    if second_factor:
        uow.record(f"PROGRAMME:{name}", {}, {"second_factor": second_factor})
        out["second_factor"] = second_factor
    return out


@command(
    "ratify_programme_change",
    roles={"officer", "director"},
    summary="Record a Board-ratified change to pot allocations (and so the programme total)",
)
def ratify_programme_change(uow: UnitOfWork, args: Args) -> Result:
    prog_id, _ = find_programme(uow, args.text("programme", required=False))
    new = _read_allocations(uow, args, "pots")
    ratified_by = args.text("ratified_by", max_len=300)
    reason = args.text("reason", max_len=2000)
    args.done()
    lines = {line.name.lower(): line for line in ledger(uow.conn, prog_id)}
    old_total = sum(line.allocated_pence for line in lines.values())
    changes: list[dict[str, Any]] = []
    for pot_name, amount in new.items():
        line = lines.get(pot_name.lower())
        if line is None:
            pot_id, name, before, committed = _new_pot(uow, prog_id, pot_name), pot_name, 0, 0
        else:
            pot_id, name = line.pot_id, line.name
            before, committed = line.allocated_pence, line.committed_pence
        if amount < committed:
            raise MoneyRuleBroken(
                f"ratify_programme_change: pots.{name}: cannot set the pot to "
                f"{format_pence(amount)}: {format_pence(committed)} is already committed from it",
                field=f"pots.{name}",
            )
        if amount != before:
            changes.append(
                {"pot": name, "pot_id": pot_id, "from_pence": before, "to_pence": amount}
            )
    if not changes:
        raise ValidationError(
            "ratify_programme_change: pots: nothing changes; every pot already has that allocation",
            field="pots",
        )
    ref, new_total = _ratify(uow, prog_id, changes, old_total, ratified_by, reason)
    return {
        "ref": ref,
        "old_total_pence": old_total,
        "new_total_pence": new_total,
        "changes": [{k: c[k] for k in ("pot", "from_pence", "to_pence")} for c in changes],
    }


SECOND_FACTOR_ACTIONS = ("sign", "release_payment")  # engine/commands/second_factor.py


def _second_factor_roles(uow: UnitOfWork, given: Any) -> dict[str, list[str]]:
    """{action: sorted roles} from {action: [roles] or 'a; b'}; each role checked."""
    where = "second_factor" if uow.command == "create_programme" else ""
    if not isinstance(given, dict):
        raise ValidationError(
            f"{uow.command}: second_factor: give {{sign: [roles], release_payment: [roles]}}",
            field="second_factor",
        )
    allowed = [r.value for r in Role]
    config: dict[str, list[str]] = {}
    for action, listed in given.items():
        name = f"{where}.{action}" if where else str(action)
        if action not in SECOND_FACTOR_ACTIONS:
            raise ValidationError(
                f"{uow.command}: {name}: not an action; actions are: "
                f"{', '.join(SECOND_FACTOR_ACTIONS)}",
                field=name,
            )
        items = listed.split(";") if isinstance(listed, str) else listed or []
        roles = set()
        for r in items:
            r = str(r).strip().lower().replace(" ", "_")
            if not r:
                continue
            if r not in allowed:
                raise ValidationError(
                    f"{uow.command}: {name}: {r!r} is not a role; roles are: {', '.join(allowed)}",
                    field=name,
                )
            roles.add(r)
        if roles:
            config[action] = sorted(roles)
    return config


@command(
    "configure_second_factor",
    roles={"director"},
    summary="Name the roles that must give a second factor (TOTP) to sign or to release payments",
)
def configure_second_factor(uow: UnitOfWork, args: Args) -> Result:
    prog_id, prog_name = find_programme(uow, args.text("programme", required=False))
    config = _second_factor_roles(
        uow, {action: args.items(action) for action in SECOND_FACTOR_ACTIONS}
    )
    args.done()
    before = uow.conn.execute(
        select(col(Programme.second_factor)).where(col(Programme.id) == prog_id)
    ).scalar()
    uow.conn.execute(
        update(Programme).where(col(Programme.id) == prog_id).values(second_factor=config)
    )
    uow.record(
        f"PROGRAMME:{prog_name}", {"second_factor": before or {}}, {"second_factor": config}
    )
    return {"programme": prog_name, "second_factor": config}
