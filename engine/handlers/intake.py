"""Bid intake: submit, amend (before scoring), withdraw."""

from __future__ import annotations

from sqlalchemy import delete, select

from engine.args import Args, parse_date
from engine.errors import NotFound, ValidationError
from engine.handlers.directory import find_organisation
from engine.handlers.programme import find_pot
from engine.models import Bid, BidPartner, Milestone, Organisation, Person, PersonRole
from engine.money import format_pence
from engine.refs import next_ref
from engine.savings import parse_savings
from engine.service import UnitOfWork, command
from workflows.bid import BID

TRISTATE = ["yes", "no", "not_stated"]


def tristate(value: object, field: str, command_name: str) -> str:
    """yes / no / not stated, read generously: 'No (others have expressed interest)' is no."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "not_stated"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    if text in {"yes", "y", "true"} or text.startswith("yes "):
        return "yes"
    if text in {"no", "n", "false"} or text.startswith(("no ", "no(")):
        return "no"
    if text.replace(" ", "_") in {"not_stated", "not_specified", "unknown", "n/a"}:
        return "not_stated"
    raise ValidationError(
        f"{command_name}: {field}: {value!r} is not yes, no or not stated", field=field
    )


def load_bid(uow: UnitOfWork, ref: str) -> Bid:
    bid = uow.session.execute(select(Bid).where(Bid.ref == ref)).scalar_one_or_none()
    if bid is None:
        raise NotFound(f"{uow.command}: ref: no bid {ref!r}", field="ref", item=ref)
    return bid


def read_milestones(uow: UnitOfWork, raw: list) -> list[dict]:
    out = []
    for i, m in enumerate(raw, start=1):
        where = f"milestones[{i}]"
        if not isinstance(m, dict):
            raise ValidationError(
                f"{uow.command}: {where}: must have outcome, due and payment", field=where
            )
        sub = Args(uow.command, {f"{where}.{k}": v for k, v in m.items()})
        outcome = sub.text(f"{where}.outcome", max_len=1000)
        due = sub.date(f"{where}.due")
        payment = sub.pence(f"{where}.payment", allow_zero=True)
        sub.done()
        out.append({"outcome": outcome, "due_on": due, "payment_pence": payment})
    return out


def check_profile(uow: UnitOfWork, grant: int, profile: list[dict]) -> None:
    if not profile:
        return
    total = sum(m["payment_pence"] for m in profile)
    if total != grant:
        raise ValidationError(
            f"{uow.command}: milestones: payments add up to {format_pence(total)} but the grant "
            f"requested is {format_pence(grant)}; the funding profile must add up to the grant",
            field="milestones",
        )


def bid_snapshot(uow: UnitOfWork, bid: Bid) -> dict:
    """What the audit trail and reports show of a bid."""
    partners = (
        uow.session.execute(
            select(Organisation.name)
            .join(BidPartner, BidPartner.organisation_id == Organisation.id)
            .where(BidPartner.bid_id == bid.id)
            .order_by(Organisation.name)
        )
        .scalars()
        .all()
        if bid.id
        else []
    )
    milestones = (
        uow.session.execute(
            select(Milestone).where(Milestone.bid_id == bid.id).order_by(Milestone.seq)
        )
        .scalars()
        .all()
        if bid.id
        else []
    )
    return {
        "ref": bid.ref,
        "title": bid.title,
        "state": bid.state,
        "sponsor_id": bid.sponsor_id,
        "pot_id": bid.pot_id,
        "grant_requested_pence": bid.grant_requested_pence,
        "savings_text": bid.savings_text,
        "savings_basis": bid.savings_basis,
        "savings_amount_pence": bid.savings_amount_pence,
        "savings_high_pence": bid.savings_high_pence,
        "savings_years": bid.savings_years,
        "partnership": bid.partnership,
        "partners": list(partners),
        "builds_on_proven": bid.builds_on_proven,
        "invest_to_save": bid.invest_to_save,
        "milestones": [
            {"outcome": m.outcome, "due_on": m.due_on.isoformat(), "payment_pence": m.payment_pence}
            for m in milestones
        ],
    }


def sponsor_contacts(
    uow: UnitOfWork, org: Organisation, fallback_to_actor: bool = False
) -> list[tuple[str, str]]:
    """(name, email) of the authority's sponsor contacts; else its own address;
    else (if asked) the person acting."""
    rows = uow.cached(
        ("contacts", org.id),
        lambda: list(
            uow.session.execute(
                select(Person.name, Person.email)
                .join(PersonRole, PersonRole.person_id == Person.id)
                .where(
                    Person.organisation_id == org.id, PersonRole.role == "sponsor", Person.active
                )
                .order_by(Person.email)
            ).all()
        ),
    )
    if rows:
        return [(r[0], r[1]) for r in rows]
    if org.email:
        return [(org.name, org.email)]
    if fallback_to_actor and uow.actor.person_id is not None:
        return [(uow.actor.name, uow.actor.email)]
    return []


def _apply_savings(bid: Bid, text: str) -> str:
    parsed = parse_savings(text)
    bid.savings_text = parsed.text
    bid.savings_basis = parsed.basis.value
    bid.savings_amount_pence = parsed.amount_pence
    bid.savings_high_pence = parsed.high_pence
    bid.savings_years = parsed.years
    bid.savings_annual = parsed.annual
    bid.savings_readable = parsed.readable
    return parsed.note


def _set_partners(uow: UnitOfWork, bid: Bid, names: list, sponsor_id: int) -> None:
    uow.session.execute(delete(BidPartner).where(BidPartner.bid_id == bid.id))
    seen = set()
    for i, name in enumerate(names, start=1):
        org = find_organisation(uow, str(name), f"partners[{i}]")
        if org.id == sponsor_id or org.id in seen:
            continue
        seen.add(org.id)
        uow.add(BidPartner(bid_id=bid.id, organisation_id=org.id))


def _set_milestones(uow: UnitOfWork, bid: Bid, profile: list[dict]) -> None:
    uow.session.execute(delete(Milestone).where(Milestone.bid_id == bid.id))
    for seq, m in enumerate(profile, start=1):
        uow.add(Milestone(bid_id=bid.id, seq=seq, **m))


@command("submit_bid", summary="Submit a bid (sponsor for its own authority, or an officer)")
def submit_bid(uow: UnitOfWork, args: Args) -> dict:
    uow.authorise(BID, "submit")
    ref = args.text("ref", required=False, max_len=40)
    title = args.text("title", max_len=300)
    sponsor = find_organisation(uow, args.text("sponsor", max_len=200))
    grant = args.pence("grant")
    savings = args.text("savings", required=False, max_len=500)
    partners = args.items("partners")
    partnership_raw = args.raw("partnership")
    builds = tristate(args.raw("builds_on_proven"), "builds_on_proven", uow.command)
    invest_to_save = args.flag("invest_to_save")
    pot_name = args.text("pot", required=False)
    profile = read_milestones(uow, args.items("milestones"))
    points = args.integer("published_points", required=False, minimum=0)
    args.done()

    uow.require_scope(sponsor.id, "submit bids")
    pot = find_pot(uow, pot_name) if pot_name else None
    check_profile(uow, grant, profile)
    if partnership_raw in (None, "") and partners:
        partnership = "yes"
    else:
        partnership = tristate(partnership_raw, "partnership", uow.command)
    if ref:
        if uow.session.execute(select(Bid.id).where(Bid.ref == ref)).first():
            raise ValidationError(f"submit_bid: ref: {ref!r} is already used", field="ref")
    else:
        ref = next_ref(uow.session, Bid, "bid")
    bid = Bid(
        ref=ref,
        title=title,
        sponsor_id=sponsor.id,
        pot_id=pot.id if pot else None,
        grant_requested_pence=grant,
        partnership=partnership,
        partnership_as_written="" if partnership_raw is None else str(partnership_raw),
        builds_on_proven=builds,
        invest_to_save=invest_to_save,
        published_points=points,
        state="new",
        submitted_on=uow.today,
        submitted_by_id=uow.actor.person_id,
    )
    note = _apply_savings(bid, savings)
    uow.transition(BID, bid, "submit")
    uow.add(bid)
    uow.flush()
    _set_partners(uow, bid, partners, sponsor.id)
    _set_milestones(uow, bid, profile)
    uow.flush()
    uow.record(bid.ref, {}, bid_snapshot(uow, bid))
    context = {
        "ref": bid.ref,
        "title": title,
        "sponsor": sponsor.name,
        "grant_pence": grant,
        "savings_text": bid.savings_text,
        "savings_note": note,
    }
    for name, email in sponsor_contacts(uow, sponsor, fallback_to_actor=True):
        uow.notify(
            key=f"bid_received:{bid.ref}:{email}",
            to=email,
            template="bid_received",
            subject=f"Bid {bid.ref} received: {title}",
            context={**context, "name": name},
        )
    return {
        "ref": bid.ref,
        "state": bid.state,
        "grant_pence": grant,
        "savings": note,
        "savings_readable": bid.savings_readable,
    }


@command("amend_bid", summary="Amend a bid before it is scored")
def amend_bid(uow: UnitOfWork, args: Args) -> dict:
    uow.authorise(BID, "amend")
    bid = load_bid(uow, args.text("ref"))
    uow.check_version(bid, args)
    uow.require_scope(bid.sponsor_id, "amend bids")
    uow.transition(BID, bid, "amend")
    before = bid_snapshot(uow, bid)
    if args.has("title"):
        bid.title = args.text("title", max_len=300)
    if args.has("grant"):
        bid.grant_requested_pence = args.pence("grant")
    if "savings" in args.data:
        _apply_savings(bid, args.text("savings", required=False, max_len=500))
    if "builds_on_proven" in args.data:
        bid.builds_on_proven = tristate(
            args.raw("builds_on_proven"), "builds_on_proven", uow.command
        )
    if "partnership" in args.data:
        bid.partnership = tristate(args.raw("partnership"), "partnership", uow.command)
    if "invest_to_save" in args.data:
        bid.invest_to_save = args.flag("invest_to_save")
    if args.has("pot"):
        bid.pot_id = find_pot(uow, args.text("pot")).id
    partners = args.items("partners") if "partners" in args.data else None
    profile = read_milestones(uow, args.items("milestones")) if "milestones" in args.data else None
    reason = args.text("reason", required=False, max_len=2000)
    args.done()
    if profile is None:
        profile = [
            {
                "outcome": m["outcome"],
                "due_on": parse_date(m["due_on"], "milestone"),
                "payment_pence": m["payment_pence"],
            }
            for m in before["milestones"]
        ]
        if profile:
            check_profile(uow, bid.grant_requested_pence, profile)
    else:
        check_profile(uow, bid.grant_requested_pence, profile)
        _set_milestones(uow, bid, profile)
    if partners is not None:
        _set_partners(uow, bid, partners, bid.sponsor_id)
    uow.flush()
    after = bid_snapshot(uow, bid)
    changed = {k for k in after if after[k] != before[k]}
    if not changed:
        raise ValidationError("amend_bid: nothing to change: give at least one new value")
    uow.record(bid.ref, {k: before[k] for k in changed}, {k: after[k] for k in changed}, reason)
    return {"ref": bid.ref, "state": bid.state, "changed": sorted(changed), "version": bid.version}


@command("withdraw_bid", summary="Withdraw a bid that has not been decided")
def withdraw_bid(uow: UnitOfWork, args: Args) -> dict:
    uow.authorise(BID, "withdraw")
    bid = load_bid(uow, args.text("ref"))
    reason = args.text("reason", max_len=2000)
    uow.check_version(bid, args)
    args.done()
    uow.require_scope(bid.sponsor_id, "withdraw bids")
    old = uow.transition(BID, bid, "withdraw")
    uow.record(bid.ref, {"state": old}, {"state": bid.state}, reason)
    return {"ref": bid.ref, "state": bid.state}
