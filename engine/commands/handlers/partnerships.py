"""Partnerships and their accountable bodies; advance payments (docs/grants.md).

A sub-regional partnership is not a legal body: it names a council as its
accountable body, which receives and answers for its money. Naming or changing
it is a proposal (workflows/accountable_body.py, ``ABC-0001``) one officer
makes and a second approves (guard ``four_eyes``); only the approval changes
``Organisation.accountable_body_id``, audited on the proposal and on
``ORG:<partnership>``. Payments on a partnership's grants go to, and are
receipted by, its accountable body (engine/commands/lookups.py ``payee``); a
programme may refuse every payment to a partnership that has not named one
(``configure_payments accountable_body_required: yes``).

An advance (``ADV-0001``, workflows/advance.py) is money paid on a grant not
against a verified milestone, e.g. an initial sum for programme development:
requested with a reason by an officer, paid only when a second person approves
it. It is one PAY movement under its ref, so it counts in the grant's paid
money like any payment: paid ≤ awarded, and allocated = committed + available
in its pot (engine/store/ledger.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from engine.commands.args import Args
from engine.commands.handlers.grants import load_grant
from engine.commands.handlers.intake import sponsor_contacts
from engine.commands.handlers.programme import find_programme
from engine.commands.letters import payment_refusal
from engine.commands.lookups import Payee, payee
from engine.commands.registry import Result, command
from engine.commands.second_factor import check_second_factor, pot_programme
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import MoneyRuleBroken, NotFound, ValidationError
from engine.domain.money import format_pence
from engine.store.directory import OrgRow
from engine.store.ledger import grant_line
from engine.store.models import (
    AccountableBodyChange,
    AdvancePayment,
    Bid,
    Grant,
    MovementKind,
    Organisation,
    OrgKind,
    Programme,
)
from engine.store.refs import next_ref
from notifications.letters import check_template
from rules.guards import FourEyes
from workflows.accountable_body import ACCOUNTABLE_BODY
from workflows.advance import ADVANCE
from workflows.advance import OPEN as ADVANCE_OPEN
from workflows.grant import GRANT

ABC_T = AccountableBodyChange.__table__
ADV_T = AdvancePayment.__table__
GRANT_T = Grant.__table__
BID_T = Bid.__table__
ORG_T = Organisation.__table__
PROG_T = Programme.__table__
COUNCILS = (OrgKind.COUNTY, OrgKind.UNITARY, OrgKind.DISTRICT)
_ABC_BY_REF = select(ABC_T).where(ABC_T.c.ref == bindparam("ref"))
_ADV_BY_REF = select(ADV_T).where(ADV_T.c.ref == bindparam("ref"))


def _org(uow: UnitOfWork, name: str, field: str) -> OrgRow:
    org = uow.directory.org(name)
    if org is None:
        raise NotFound(f"{uow.command}: {field}: no organisation {name!r} (register it first)",
                       field=field)
    return org


def _person(uow: UnitOfWork, person_id: int | None) -> str:
    for p in uow.directory.people_by_email.values():
        if p.id == person_id:
            return p.name
    return "the system" if person_id is None else f"person #{person_id}"


def _load(uow: UnitOfWork, query: Any, ref: str, what: str, looks: str) -> Any:
    row = uow.conn.execute(query, {"ref": ref.upper()}).first()
    if row is None:
        raise NotFound(f"{uow.command}: item: no {what} {ref!r} (refs look like {looks})",
                       field="item", item=ref)
    return row


def _four_eyes(uow: UnitOfWork, ref: str, proposer_id: int | None, deciders: str) -> FourEyes:
    return FourEyes(uow.command, ref, uow.actor.person_id, proposer_id,
                    _person(uow, proposer_id), deciders)


# ---------------------------------------------------------------- accountable bodies


@command("propose_accountable_body",
         summary="Propose the council that is a partnership's accountable body (a second "
                 "officer approves)")
def propose_accountable_body(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(ACCOUNTABLE_BODY, "propose")
    partnership = _org(uow, args.text("partnership", max_len=200), "partnership")
    body = _org(uow, args.text("body", max_len=200), "body")
    reason = args.text("reason", required=False, max_len=2000)
    args.done()
    if partnership.kind != OrgKind.SUB_REGIONAL_PARTNERSHIP:
        raise ValidationError(
            f"propose_accountable_body: partnership: {partnership.name} is not a partnership "
            f"(it is a {partnership.kind.replace('_', ' ')}); only a sub-regional partnership "
            "names an accountable body", field="partnership")
    if body.kind not in COUNCILS:
        raise ValidationError(
            f"propose_accountable_body: body: {body.name} is not a council (it is registered "
            f"as {body.kind.replace('_', ' ')}); an accountable body is a council (county, "
            "unitary or district)", field="body")
    current = uow.conn.execute(
        select(ORG_T.c.accountable_body_id).where(ORG_T.c.id == partnership.id)).scalar()
    if current == body.id:
        raise ValidationError(
            f"propose_accountable_body: body: {body.name} is already {partnership.name}'s "
            "accountable body", field="body")
    waiting = uow.conn.execute(
        select(ABC_T.c.ref).where(ABC_T.c.partnership_id == partnership.id,
                                  ABC_T.c.state == "proposed")).scalar()
    if waiting:
        raise ValidationError(
            f"propose_accountable_body: partnership: {waiting} already proposes an accountable "
            f"body for {partnership.name}; approve, refuse or withdraw it first",
            field="partnership", item=waiting)
    ref = next_ref(uow.conn, AccountableBodyChange, "accountable_body_change")
    step = uow.fire(ACCOUNTABLE_BODY, "propose", "new", ref)
    inserted_id(uow.conn.execute(insert(AccountableBodyChange).values(
        ref=ref, partnership_id=partnership.id, body_id=body.id, previous_body_id=current,
        reason=reason, state=step.dest, proposed_by_id=uow.actor.person_id,
        proposed_on=uow.today, decision_reason="", version=1)))
    previous = uow.directory.orgs_by_id[current].name if current else None
    uow.record(ref, {}, {"partnership": partnership.name, "body": body.name,
                         "previous_body": previous, "state": step.dest}, reason)
    return {"item": ref, "partnership": partnership.name, "body": body.name,
            "previous_body": previous, "state": step.dest}


def _decide_body(uow: UnitOfWork, args: Args, trigger: str, reason_required: bool) -> Result:
    ref = args.text("item", max_len=40)
    reason = args.text("reason", required=reason_required, max_len=2000)
    args.done()
    uow.authorise(ACCOUNTABLE_BODY, trigger)
    c = _load(uow, _ABC_BY_REF, ref, "accountable body proposal", "ABC-0001")
    uow.check_version(c.ref, c.version, args)
    if trigger == "withdraw" and c.proposed_by_id != uow.actor.person_id:
        raise ValidationError(
            f"withdraw_accountable_body: item: only {_person(uow, c.proposed_by_id)}, who "
            f"proposed {c.ref}, may withdraw it (a second officer may refuse it)", field="item",
            item=c.ref)
    context = None if trigger == "withdraw" else _four_eyes(
        uow, c.ref, c.proposed_by_id, "another officer or a director")
    step = uow.fire(ACCOUNTABLE_BODY, trigger, c.state, c.ref, context)
    version = uow.update_versioned(
        AccountableBodyChange, c.id, c.version,
        {"decided_by_id": uow.actor.person_id, "decided_on": uow.today,
         "decision_reason": reason}, c.ref, step)
    partnership = uow.directory.orgs_by_id[c.partnership_id].name
    body = uow.directory.orgs_by_id[c.body_id].name
    previous = uow.directory.orgs_by_id[c.previous_body_id].name if c.previous_body_id else None
    uow.record(c.ref, {"state": c.state}, {"state": step.dest, "by": uow.actor.label}, reason)
    if trigger == "approve":
        uow.conn.execute(update(ORG_T).where(ORG_T.c.id == c.partnership_id)
                         .values(accountable_body_id=c.body_id))
        uow.touch_directory()
        uow.record(f"ORG:{partnership}", {"accountable_body": previous},
                   {"accountable_body": body, "change": c.ref}, reason)
    return {"item": c.ref, "state": step.dest, "partnership": partnership, "body": body,
            "version": version}


@command("approve_accountable_body",
         summary="Approve a proposed accountable body (not by the one who proposed it)")
def approve_accountable_body(uow: UnitOfWork, args: Args) -> Result:
    return _decide_body(uow, args, "approve", False)


@command("refuse_accountable_body", summary="Refuse a proposed accountable body, with the reason")
def refuse_accountable_body(uow: UnitOfWork, args: Args) -> Result:
    return _decide_body(uow, args, "refuse", True)


@command("withdraw_accountable_body", summary="Withdraw an accountable body you proposed")
def withdraw_accountable_body(uow: UnitOfWork, args: Args) -> Result:
    return _decide_body(uow, args, "withdraw", False)


@command("configure_payments", roles={"director"},
         summary="Whether a partnership must name its accountable body before it is paid, "
                 "and whether an offer must be accepted first")
def configure_payments(uow: UnitOfWork, args: Args) -> Result:
    prog_id, prog_name = find_programme(uow, args.text("programme", required=False))
    required = args.flag("accountable_body_required")
    # issue 16: each left unchanged when not given
    offers = args.flag("offer_acceptance_required") if args.has(
        "offer_acceptance_required") else None
    template = args.text("offer_template", required=False, max_len=60).strip() or None
    args.done()
    if template is not None:
        check_template(template, "offer_template")
    before = uow.conn.execute(
        select(PROG_T.c.accountable_body_required, PROG_T.c.offer_acceptance_required,
               PROG_T.c.offer_template).where(PROG_T.c.id == prog_id)).one()
    values: dict[str, Any] = {"accountable_body_required": required}
    if offers is not None:
        values["offer_acceptance_required"] = offers
    if template is not None:
        values["offer_template"] = "" if template == "default" else template
    uow.conn.execute(update(PROG_T).where(PROG_T.c.id == prog_id).values(**values))
    was = {"accountable_body_required": bool(before.accountable_body_required),
           "offer_acceptance_required": bool(before.offer_acceptance_required),
           "offer_template": before.offer_template or "default"}
    now = {**was, **values}
    if "offer_template" in values:
        now["offer_template"] = values["offer_template"] or "default"
    uow.record(f"PROGRAMME:{prog_name}", {k: was[k] for k in values}, {k: now[k] for k in values})
    return {"programme": prog_name, **now}


# ---------------------------------------------------------------- advances


def _requested(uow: UnitOfWork, grant_id: int, but: int | None = None) -> int:
    q = select(func.coalesce(func.sum(ADV_T.c.amount_pence), 0)).where(
        ADV_T.c.grant_id == grant_id, ADV_T.c.state == ADVANCE_OPEN)
    if but is not None:
        q = q.where(ADV_T.c.id != but)
    return int(uow.conn.execute(q).scalar() or 0)


def _room(uow: UnitOfWork, grant: Any, amount: int, pending: int) -> None:
    """Refuse an advance above what the grant may still pay (less other advances waiting)."""
    line = grant_line(uow.conn, grant.id)
    room = line.unpaid_pence - pending
    if amount > room:
        waiting = f", {format_pence(pending)} more asked for in advances waiting" if pending else ""
        raise MoneyRuleBroken(
            f"{uow.command}: amount: {format_pence(amount)} is more than {grant.ref} may still "
            f"pay: awarded {format_pence(line.awarded_pence)}, paid "
            f"{format_pence(line.paid_out_pence)}{waiting}, so at most "
            f"{format_pence(max(room, 0))}", field="amount", item=grant.ref)


def _payee_words(p: Payee) -> dict[str, Any]:
    return {"paid_to": p.body, "partnership": p.grant_body if p.partnership else None}


@command("request_advance",
         summary="Ask to pay an advance on a grant (not against a milestone), with the reason")
def request_advance(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(ADVANCE, "request")
    grant = load_grant(uow, args.text("grant", max_len=40))
    amount = args.pence("amount")
    reason = args.text("reason", max_len=2000)
    args.done()
    uow.step(GRANT, "pay", grant.state, grant.ref)
    who = payee(uow, grant)
    _room(uow, grant, amount, _requested(uow, grant.id))
    ref = next_ref(uow.conn, AdvancePayment, "advance_payment")
    step = uow.fire(ADVANCE, "request", "new", ref)
    inserted_id(uow.conn.execute(insert(AdvancePayment).values(
        ref=ref, grant_id=grant.id, amount_pence=amount, reason=reason, state=step.dest,
        requested_by_id=uow.actor.person_id, requested_on=uow.today, decision_reason="",
        version=1)))
    uow.record(ref, {}, {"grant": grant.ref, "amount_pence": amount, "state": step.dest,
                         **_payee_words(who)}, reason)
    return {"item": ref, "grant": grant.ref, "amount_pence": amount, "state": step.dest,
            **_payee_words(who)}


def _advance_and_grant(uow: UnitOfWork, args: Args, trigger: str, reason_required: bool
                       ) -> tuple[Any, Any, str]:
    ref = args.text("item", max_len=40)
    reason = args.text("reason", required=reason_required, max_len=2000)
    otp = args.text("otp", required=False, max_len=20) if trigger == "approve" else ""
    args.done()
    uow.authorise(ADVANCE, trigger)
    a = _load(uow, _ADV_BY_REF, ref, "advance", "ADV-0001")
    uow.check_version(a.ref, a.version, args)
    grant = uow.conn.execute(select(GRANT_T).where(GRANT_T.c.id == a.grant_id)).one()
    if trigger == "withdraw" and a.requested_by_id != uow.actor.person_id:
        raise ValidationError(
            f"withdraw_advance: item: only {_person(uow, a.requested_by_id)}, who asked for "
            f"{a.ref}, may withdraw it (a second person may refuse it)", field="item",
            item=a.ref)
    if trigger == "approve":
        check_second_factor(uow, pot_programme(uow, grant.pot_id), "release_payment", otp)
    return a, grant, reason


@command("approve_advance",
         summary="Approve and pay an advance (a second person: not the one who asked)")
def approve_advance(uow: UnitOfWork, args: Args) -> Result:
    a, grant, reason = _advance_and_grant(uow, args, "approve", False)
    step = uow.fire(ADVANCE, "approve", a.state, a.ref, _four_eyes(
        uow, a.ref, a.requested_by_id, "another officer, finance or a director"))
    uow.step(GRANT, "pay", grant.state, grant.ref)
    who = payee(uow, grant, "item")
    payment_refusal(uow, grant, None, "item")  # not before the offer is accepted (issue 16)
    _room(uow, grant, a.amount_pence, _requested(uow, grant.id, but=a.id))
    line = grant_line(uow.conn, grant.id)
    uow.book(grant.pot_id, MovementKind.PAY, a.amount_pence, uow.today, a.ref, grant.id,
             f"{grant.ref} advance: {a.reason}"[:500])
    version = uow.update_versioned(
        AdvancePayment, a.id, a.version,
        {"decided_by_id": uow.actor.person_id, "decided_on": uow.today,
         "decision_reason": reason, "paid_to_id": who.body_id}, a.ref, step)
    uow.record(a.ref, {"state": a.state, "grant_paid_pence": line.paid_pence},
               {"state": step.dest, "amount_pence": a.amount_pence,
                "grant_paid_pence": line.paid_pence + a.amount_pence,
                "approved_by": uow.actor.label, **_payee_words(who)}, reason)
    title = uow.conn.execute(select(BID_T.c.title).where(BID_T.c.id == grant.bid_id)).scalar()
    context = {
        "advance": a.ref, "grant": grant.ref, "title": title, "body": who.grant_body,
        "amount_pence": a.amount_pence, "reason": a.reason, "paid_on": uow.today.isoformat(),
        "approved_by": uow.actor.name or uow.actor.label, **_payee_words(who),
        "awarded_pence": line.awarded_pence, "grant_paid_pence": line.paid_pence + a.amount_pence,
        "grant_unpaid_pence": line.unpaid_pence - a.amount_pence,
    }
    orgs = [uow.directory.orgs_by_id[who.grant_body_id]]
    if who.body_id is not None and who.body_id != who.grant_body_id:
        orgs.append(uow.directory.orgs_by_id[who.body_id])
    for org in orgs:
        for name, email in sponsor_contacts(uow, org):
            uow.notify(key=f"advance_paid:{a.ref}:{email}", to=email, template="advance_paid",
                       subject=f"{grant.ref}: advance {a.ref} of "
                               f"{format_pence(a.amount_pence)} paid",
                       context={**context, "name": name})
    return {"item": a.ref, "grant": grant.ref, "state": step.dest,
            "amount_pence": a.amount_pence, "grant_paid_pence": line.paid_pence + a.amount_pence,
            "grant_unpaid_pence": line.unpaid_pence - a.amount_pence, "version": version,
            **_payee_words(who)}


@command("refuse_advance", summary="Refuse an advance, with the reason (not the one who asked)")
def refuse_advance(uow: UnitOfWork, args: Args) -> Result:
    a, grant, reason = _advance_and_grant(uow, args, "refuse", True)
    step = uow.fire(ADVANCE, "refuse", a.state, a.ref, _four_eyes(
        uow, a.ref, a.requested_by_id, "another officer, finance or a director"))
    version = uow.update_versioned(
        AdvancePayment, a.id, a.version,
        {"decided_by_id": uow.actor.person_id, "decided_on": uow.today,
         "decision_reason": reason}, a.ref, step)
    uow.record(a.ref, {"state": a.state}, {"state": step.dest}, reason)
    return {"item": a.ref, "grant": grant.ref, "state": step.dest, "version": version}


@command("withdraw_advance", summary="Withdraw an advance you asked for")
def withdraw_advance(uow: UnitOfWork, args: Args) -> Result:
    a, grant, reason = _advance_and_grant(uow, args, "withdraw", False)
    step = uow.fire(ADVANCE, "withdraw", a.state, a.ref)
    version = uow.update_versioned(
        AdvancePayment, a.id, a.version,
        {"decided_by_id": uow.actor.person_id, "decided_on": uow.today,
         "decision_reason": reason}, a.ref, step)
    uow.record(a.ref, {"state": a.state}, {"state": step.dest}, reason)
    return {"item": a.ref, "grant": grant.ref, "state": step.dest, "version": version}
