"""Allocations: funding requests that are not bids.

Boards and their Chair and Vice Chairs approve funding that never went
through a bidding round: a year of programme managers' salaries, a quarter's
events (each with its estimated cost), a contribution to a peer review of a
council in difficulty, interim funding for a programme's next phase. An
officer or the Director proposes it: its purpose (``title``), the amount, the
recipient (a programme team, a council, a partnership), the pot it comes from
(whose available balance the proposal quotes), the reasons and
recommendation, optional itemised costs and an optional milestone profile.

An allocation is a row of the ``bid`` table with ``kind = "allocation"``, so
every decision path works on it unchanged: ``decide`` at a meeting,
``request_delegated_decision`` + ``sign``, ``reverse_decision``, the agenda and
the grant it makes. It is never scored: it is decided from ``submitted`` by the
bid workflow's ``*_unscored`` steps (workflows/bid.py), which the guard
``may_decide_unscored`` (rules/guards.py) allows for any item in no round and
for bids of a round opened with ``scoring: optional``.

No payment without a verified milestone (DESIGN.md): an allocation proposed
without milestones gets one milestone for the whole amount — its purpose, due
on the date given (``due``) or at the end of the financial year it is proposed
in — so its grant pays only once that milestone is evidenced and verified.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from engine.commands.args import Args
from engine.commands.handlers.directory import find_organisation
from engine.commands.handlers.intake import (
    _profile_json,
    _write_profile,
    check_profile,
    read_milestones,
)
from engine.commands.handlers.programme import check_pot_for, find_pot, find_programme
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.clock import financial_year_end
from engine.domain.errors import ValidationError
from engine.domain.money import format_pence
from engine.store.ledger import pot_line
from engine.store.models import Bid, BidKind, Round
from engine.store.refs import ref_for
from rules.guards import UnscoredDecision
from workflows.bid import BID

ALLOCATION = BidKind.ALLOCATION.value  # Bid.kind of an allocation
ROUND_T = Round.__table__


def unscored_decision(uow: UnitOfWork, item: Any) -> UnscoredDecision:
    """The context of the ``may_decide_unscored`` guard for a bid or allocation row."""
    rnd = None
    if item.round_id is not None:
        rnd = uow.conn.execute(
            select(ROUND_T.c.ref, ROUND_T.c.scoring_required).where(ROUND_T.c.id == item.round_id)
        ).first()
    return UnscoredDecision(
        uow.command,
        item.ref,
        item.kind,
        rnd.ref if rnd is not None else None,
        bool(rnd.scoring_required) if rnd is not None else False,
    )


def _read_items(uow: UnitOfWork, raw: list[Any]) -> list[dict[str, Any]]:
    """Itemised costs [{what, cost}] -> [{"what": ..., "cost_pence": ...}]."""
    out = []
    for i, element in enumerate(raw, start=1):
        where = f"items[{i}]"
        if not isinstance(element, dict):
            raise ValidationError(f"{uow.command}: {where}: must have what and cost", field=where)
        sub = Args(uow.command, {f"{where}.{k}": v for k, v in element.items()})
        what = sub.text(f"{where}.what", max_len=500)
        cost = sub.pence(f"{where}.cost", allow_zero=True)
        sub.done()
        out.append({"what": what, "cost_pence": cost})
    return out


@command(
    "propose_allocation",
    summary="Propose funding that is not a bid (salaries, events, a peer review, interim "
    "funding) for a purpose and recipient, from a named pot",
)
def propose_allocation(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(BID, "propose")
    ref = args.text("ref", required=False, max_len=40)
    title = args.text("purpose", max_len=300)
    recipient = find_organisation(uow, args.text("recipient", max_len=200), "recipient")
    programme = args.text("programme", required=False, max_len=200)
    pot_name = args.text("pot", max_len=200)
    amount = args.pence("amount")
    reasons = args.text("reasons", max_len=4000)
    items = _read_items(uow, args.items("items"))
    profile = read_milestones(uow, args.items("milestones"))
    due = args.date("due", required=False)
    args.done()

    cmd = uow.command
    programme_id = find_programme(uow, programme)[0] if programme else None
    pot = find_pot(uow, pot_name, programme_id)
    check_pot_for(uow, pot, recipient)
    itemised = sum(i["cost_pence"] for i in items)
    if itemised > amount:
        raise ValidationError(
            f"{cmd}: items: the items' costs add up to {format_pence(itemised)}, more than "
            f"the {format_pence(amount)} asked; ask for at least their total",
            field="items",
        )
    if profile and due is not None:
        raise ValidationError(
            f"{cmd}: due: give due only without milestones (it dates the one milestone an "
            "allocation without a profile gets)",
            field="due",
        )
    check_profile(uow, amount, profile)
    if not profile:  # no payment without a verified milestone: one for the whole amount
        profile = [
            {
                "outcome": title,
                "due_on": due or financial_year_end(uow.today),
                "payment_pence": amount,
            }
        ]
    conn = uow.conn
    ref = ref_for(conn, Bid, ALLOCATION, ref, cmd)
    created = uow.fire(BID, "propose", "new", ref)
    line = pot_line(conn, pot.id)
    row = {
        "ref": ref,
        "kind": ALLOCATION,
        "title": title,
        "sponsor_id": recipient.id,
        "pot_id": pot.id,
        "round_id": None,
        "grant_requested_pence": amount,
        "reasons": reasons,
        "items": items,
        "state": created.dest,
        "submitted_on": uow.today,
        "submitted_by_id": uow.actor.person_id,
        "version": 1,
    }
    allocation_id = inserted_id(conn.execute(insert(Bid), row))
    _write_profile(uow, allocation_id, profile)
    uow.record(
        ref,
        {},
        {
            "kind": ALLOCATION,
            "title": title,
            "state": created.dest,
            "recipient": recipient.name,
            "pot": pot.name,
            "pot_available_pence": line.available_pence,
            "amount_pence": amount,
            "items": items,
            "milestones": _profile_json(profile),
        },
        reasons,
    )
    return {
        "ref": ref,
        "kind": ALLOCATION,
        "state": created.dest,
        "recipient": recipient.name,
        "pot": pot.name,
        "amount_pence": amount,
        "pot_available_pence": line.available_pence,
        "milestones": len(profile),
    }
