"""Programmes, pots, and ratified changes to their allocations.

Allocations change only through a recorded ratification: there is no other
command that writes an ``allocate`` movement.
"""

from __future__ import annotations

from sqlalchemy import select

from engine.args import Args
from engine.errors import MoneyRuleBroken, NotFound, ValidationError
from engine.ledger import ledger
from engine.models import MoneyMovement, MovementKind, Pot, Programme, ProgrammeChange
from engine.money import format_pence
from engine.refs import next_ref
from engine.service import UnitOfWork, command


def find_programme(uow: UnitOfWork, name: str | None, field: str = "programme") -> Programme:
    progs = list(uow.session.execute(select(Programme)).scalars())
    if name:
        for p in progs:
            if p.name.lower() == name.strip().lower():
                return p
        raise NotFound(f"{uow.command}: {field}: no programme called {name!r}", field=field)
    if len(progs) == 1:
        return progs[0]
    if not progs:
        raise NotFound(f"{uow.command}: there is no programme yet", field=field)
    raise ValidationError(
        f"{uow.command}: {field}: there are {len(progs)} programmes; say which "
        f"({', '.join(p.name for p in progs)})",
        field=field,
    )


def find_pot(
    uow: UnitOfWork, name: str, programme: Programme | None = None, field: str = "pot"
) -> Pot:
    q = select(Pot)
    if programme is not None:
        q = q.where(Pot.programme_id == programme.id)
    pots = list(uow.session.execute(q).scalars())
    for p in pots:
        if p.name.lower() == str(name).strip().lower():
            return p
    raise NotFound(
        f"{uow.command}: {field}: no pot called {name!r}; pots are: "
        f"{', '.join(p.name for p in pots) or 'none'}",
        field=field,
    )


def _read_allocations(uow: UnitOfWork, args: Args, name: str) -> dict[str, int]:
    raw = args.mapping(name)
    if not raw:
        raise ValidationError(f"{uow.command}: {name}: name at least one pot", field=name)
    out: dict[str, int] = {}
    for pot_name, amount in raw.items():
        sub = Args(uow.command, {f"{name}.{pot_name}": amount})
        out[str(pot_name).strip()] = sub.pence(f"{name}.{pot_name}", allow_zero=True)
    return out


@command("create_programme", roles={"director"}, summary="Establish a programme and its pots")
def create_programme(uow: UnitOfWork, args: Args) -> dict:
    name = args.text("name", max_len=200)
    pots = _read_allocations(uow, args, "pots")
    starts_on = args.date("starts_on", required=False)
    ends_on = args.date("ends_on", required=False)
    ratified_by = args.text("ratified_by", required=False, default="establishment of the programme")
    args.done()
    if starts_on and ends_on and ends_on <= starts_on:
        raise ValidationError("create_programme: ends_on: must be after starts_on", field="ends_on")
    if uow.session.execute(select(Programme.id).where(Programme.name == name)).first():
        raise ValidationError(f"create_programme: name: {name!r} already exists", field="name")
    prog = uow.add(Programme(name=name, starts_on=starts_on, ends_on=ends_on))
    uow.flush()
    for pot_name, amount in pots.items():
        pot = uow.add(Pot(programme_id=prog.id, name=pot_name))
        uow.flush()
        uow.add(
            MoneyMovement(
                pot_id=pot.id,
                kind=MovementKind.ALLOCATE,
                amount_pence=amount,
                booked_on=uow.today,
                item_ref=None,
                note=ratified_by,
            )
        )
    total = sum(pots.values())
    ref = next_ref(uow.session, ProgrammeChange, "programme_change")
    uow.add(
        ProgrammeChange(
            ref=ref,
            programme_id=prog.id,
            ratified_on=uow.today,
            ratified_by=ratified_by,
            reason="programme established",
            old_total_pence=0,
            new_total_pence=total,
            changes=[{"pot": k, "from_pence": 0, "to_pence": v} for k, v in pots.items()],
            recorded_by_id=uow.actor.person_id,
        )
    )
    uow.record(ref, {}, {"programme": name, "pots_pence": pots, "total_pence": total}, ratified_by)
    return {"programme": name, "ref": ref, "total_pence": total}


@command(
    "ratify_programme_change",
    roles={"officer", "director"},
    summary="Record a Board-ratified change to pot allocations (and so the programme total)",
)
def ratify_programme_change(uow: UnitOfWork, args: Args) -> dict:
    prog = find_programme(uow, args.text("programme", required=False))
    new = _read_allocations(uow, args, "pots")
    ratified_by = args.text("ratified_by", max_len=300)
    reason = args.text("reason", max_len=2000)
    args.done()
    lines = {line.name.lower(): line for line in ledger(uow.session, prog.id)}
    old_total = sum(line.allocated_pence for line in lines.values())
    changes = []
    for pot_name, amount in new.items():
        line = lines.get(pot_name.lower())
        if line is None:
            pot = uow.add(Pot(programme_id=prog.id, name=pot_name))
            uow.flush()
            pot_id, before, committed = pot.id, 0, 0
        else:
            pot_id, before, committed = line.pot_id, line.allocated_pence, line.committed_pence
            pot_name = line.name
        if amount < committed:
            raise MoneyRuleBroken(
                f"ratify_programme_change: pots.{pot_name}: cannot set the pot to "
                f"{format_pence(amount)}: {format_pence(committed)} is already committed from it",
                field=f"pots.{pot_name}",
            )
        if amount != before:
            uow.add(
                MoneyMovement(
                    pot_id=pot_id,
                    kind=MovementKind.ALLOCATE,
                    amount_pence=amount - before,
                    booked_on=uow.today,
                    note=ratified_by,
                )
            )
            changes.append({"pot": pot_name, "from_pence": before, "to_pence": amount})
    if not changes:
        raise ValidationError(
            "ratify_programme_change: pots: nothing changes; every pot already has that allocation",
            field="pots",
        )
    new_total = old_total + sum(c["to_pence"] - c["from_pence"] for c in changes)
    ref = next_ref(uow.session, ProgrammeChange, "programme_change")
    uow.add(
        ProgrammeChange(
            ref=ref,
            programme_id=prog.id,
            ratified_on=uow.today,
            ratified_by=ratified_by,
            reason=reason,
            old_total_pence=old_total,
            new_total_pence=new_total,
            changes=changes,
            recorded_by_id=uow.actor.person_id,
        )
    )
    uow.record(
        ref,
        {"total_pence": old_total, **{c["pot"]: c["from_pence"] for c in changes}},
        {"total_pence": new_total, **{c["pot"]: c["to_pence"] for c in changes}},
        f"{reason} ({ratified_by})",
    )
    return {
        "ref": ref,
        "old_total_pence": old_total,
        "new_total_pence": new_total,
        "changes": changes,
    }
