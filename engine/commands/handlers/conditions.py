"""Conditions of an approval: an officer discharges one (docs/grants.md
"Conditions"). The Board sets them with its approval (``decide`` with
``conditions``; engine/commands/conditions.py copies them to the grant); a
condition to be met before the first payment holds every payment on the
grant until it is discharged (``release_payment``)."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from engine.commands.args import Args
from engine.commands.handlers.grants import load_grant
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork
from engine.domain.errors import NotFound, TransitionRefused
from engine.store.models import GrantCondition
from workflows.condition import CONDITION, MET

COND_T = GrantCondition.__table__
_ONE = select(COND_T).where(COND_T.c.grant_id == bindparam("grant_id"),
                            COND_T.c.seq == bindparam("seq"))


@command("discharge_condition", summary="Discharge a condition of a grant, with the evidence")
def discharge_condition(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(CONDITION, "discharge")
    grant = load_grant(uow, args.text("grant", max_len=40))
    seq = args.integer("n", minimum=1)
    evidence = args.text("evidence", max_len=4000)
    note = args.text("note", required=False, max_len=2000)
    args.done()
    label = f"{grant.ref} condition {seq}"
    c = uow.conn.execute(_ONE, {"grant_id": grant.id, "seq": seq}).first()
    if c is None:
        count = len(list(uow.conn.execute(
            select(COND_T.c.id).where(COND_T.c.grant_id == grant.id))))
        has = f"it has {count}" if count else "it has none"
        raise NotFound(f"discharge_condition: n: {grant.ref} has no condition {seq} ({has})",
                       field="n", item=grant.ref)
    uow.check_version(label, c.version, args)
    if grant.state != "active":
        raise TransitionRefused(
            f"discharge_condition: grant: {grant.ref} is {grant.state}; only an active grant's "
            "conditions are discharged", field="grant", item=grant.ref)
    if c.state == MET:
        raise TransitionRefused(
            f"discharge_condition: n: {label} '{c.text}' was discharged on {c.discharged_on}",
            field="n", item=grant.ref)
    met = uow.fire(CONDITION, "discharge", c.state, label)
    uow.update_versioned(GrantCondition, c.id, c.version,
                         {"discharged_by_id": uow.actor.person_id, "discharged_on": uow.today,
                          "evidence": evidence}, label, met)
    uow.record(grant.ref,
               {"condition": f"{seq}: {c.text}", "state": c.state},
               {"condition": f"{seq}: {c.text}", "state": met.dest,
                "discharged by": uow.actor.name or uow.actor.label, "evidence": evidence},
               note)
    return {"grant": grant.ref, "condition": seq, "state": met.dest}
