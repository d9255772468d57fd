"""Making a grant: shared by a Board decision (handlers/meetings.py, ``decide``)
and a delegated approval (handlers/delegation.py, ``sign``), so that neither
handler module imports the other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from engine.commands.conditions import Condition, set_conditions
from engine.commands.letters import issue_letter
from engine.commands.uow import UnitOfWork, insert_into, inserted_id
from engine.domain.errors import ValidationError
from engine.domain.money import format_pence
from engine.store.ledger import pot_line, pot_line_named
from engine.store.models import Grant, Milestone, MovementKind
from engine.store.refs import next_ref
from rules.guards import PotCover
from workflows.grant import GRANT


def commit_grant(
    uow: UnitOfWork,
    bid: Any,
    amount: int,
    source_ref: str,
    delegated_decision_id: int | None = None,
    pot_id: int | None = None,
    conditions: list[Condition] | None = None,
    grant_ref: str | None = None,
) -> tuple[str, int, PotCover]:
    """Make ``bid`` a grant of ``amount`` from ``pot_id`` (default the bid's pot):
    refuse if it is more than requested or the pot cannot cover it; insert the
    grant (with the delegated decision behind it, if any), link the bid's
    milestones, book the COMMIT movement (its note names ``source_ref``, the
    decision or delegated decision) and issue the offer letter
    (engine/commands/letters.py), which prints the approval's ``conditions``
    (copied to the grant first: engine/commands/conditions.py). The grant's
    ``award`` step guards the pot (rules/guards.py ``pot_can_cover``). ``grant_ref``:
    the grant's next automatic ref when the caller read it (engine/store/refs.py
    ``next_refs``: with its own, in one statement). Returns
    (grant ref, grant id, the pot cover judged, for the bid's own guarded step)."""
    cmd = uow.command
    if amount > bid.grant_requested_pence:
        raise ValidationError(
            f"{cmd}: amount: {format_pence(amount)} is more than the "
            f"{format_pence(bid.grant_requested_pence)} requested", field="amount")
    pot_id = pot_id if pot_id is not None else bid.pot_id
    if pot_id is None:
        raise ValidationError(
            f"{cmd}: item: {bid.ref} is not for any pot; amend it to name one", field="item")
    named = next((p for p in uow.directory.pots if p.id == pot_id), None)
    line = (pot_line_named(uow.conn, pot_id, named.name, named.programme) if named is not None
            else pot_line(uow.conn, pot_id))  # its name from the cached directory
    cover = PotCover(cmd, bid.ref, amount, line.name, line.available_pence,
                     line.allocated_pence, line.committed_pence)
    conn = uow.conn
    grant_ref = grant_ref or next_ref(conn, Grant, "grant")
    award = uow.fire(GRANT, "award", "new", grant_ref, cover)
    grant_id = inserted_id(conn.execute(insert_into(Grant), dict(
        ref=grant_ref, bid_id=bid.id, accountable_body_id=bid.sponsor_id, pot_id=pot_id,
        awarded_pence=amount, invest_to_save=bid.invest_to_save, state=award.dest,
        approved_on=uow.today, delegated_decision_id=delegated_decision_id, version=1,
    )))
    conn.execute(update(Milestone).where(Milestone.bid_id == bid.id).values(grant_id=grant_id))
    uow.book(pot_id, MovementKind.COMMIT, amount, uow.today, bid.ref, grant_id,
             f"{source_ref}: approved {bid.ref}")
    set_conditions(uow, grant_id, grant_ref, conditions or [], source_ref)
    # the offer letter (issue 16): the grant's first (it was made just now)
    issue_letter(uow, grant_id, grant_ref, [], [], first=True)
    return grant_ref, grant_id, cover
