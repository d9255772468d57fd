"""Bid intake: submit, amend (before scoring), withdraw.

Hot path: Core statements on the command's connection, reference data from
the directory cache, audit snapshots built from what was just written."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.handlers.directory import find_organisation
from engine.commands.handlers.programme import check_pot_for, find_pot, own_pot
from engine.commands.handlers.rounds import check_round_accepts, load_round_with_last_bid
from engine.commands.notices import tell_officers
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import NotFound, ValidationError
from engine.domain.money import format_pence
from engine.domain.savings import parse_savings
from engine.store.directory import OrgRow
from engine.store.models import Bid, BidPartner, Milestone, Organisation
from engine.store.rawsql import RawValues
from engine.store.refs import ref_after, ref_for
from workflows.bid import BID
from workflows.grant import MILESTONE

BID_T = Bid.__table__
_BY_REF = select(BID_T).where(BID_T.c.ref == bindparam("ref"))
_REF_TAKEN = select(BID_T.c.id).where(BID_T.c.ref == bindparam("ref"))
_INSERT_BID = insert(Bid)
# a bid's milestones and partners: one statement each, not one per row
_INSERT_MILESTONES = RawValues(
    Milestone.__table__, ("seq", "outcome", "due_on", "payment_pence"))
_INSERT_PARTNERS = RawValues(BidPartner.__table__, ("organisation_id",))


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


def load_bid(uow: UnitOfWork, ref: str) -> Any:
    """The bid's row (all columns), or a refusal naming the ref."""
    row = uow.conn.execute(_BY_REF, {"ref": ref}).first()
    if row is None:
        raise no_bid(uow, ref)
    return row


def no_bid(uow: UnitOfWork, ref: str) -> NotFound:
    """The refusal of a bid that does not exist, or that the actor may not see (the same)."""
    return NotFound(f"{uow.command}: ref: no bid {ref!r}", field="ref", item=ref)


def read_milestones(uow: UnitOfWork, raw: list[Any]) -> list[dict[str, Any]]:
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


def check_profile(uow: UnitOfWork, grant: int, profile: list[dict[str, Any]]) -> None:
    if not profile:
        return
    total = sum(m["payment_pence"] for m in profile)
    if total != grant:
        raise ValidationError(
            f"{uow.command}: milestones: payments add up to {format_pence(total)} but the grant "
            f"requested is {format_pence(grant)}; the funding profile must add up to the grant",
            field="milestones",
        )


def _profile_json(profile: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "outcome": m["outcome"],
            "due_on": m["due_on"].isoformat(),
            "payment_pence": m["payment_pence"],
        }
        for m in profile
    ]


def _load_profile(uow: UnitOfWork, bid_id: int) -> list[dict[str, Any]]:
    return [
        {"outcome": m.outcome, "due_on": m.due_on, "payment_pence": m.payment_pence}
        for m in uow.conn.execute(
            select(col(Milestone.outcome), col(Milestone.due_on), col(Milestone.payment_pence))
            .where(col(Milestone.bid_id) == bid_id)
            .order_by(col(Milestone.seq))
        )
    ]


def _load_partners(uow: UnitOfWork, bid_id: int) -> list[str]:
    return list(
        uow.conn.execute(
            select(col(Organisation.name))
            .join(BidPartner, col(BidPartner.organisation_id) == col(Organisation.id))
            .where(col(BidPartner.bid_id) == bid_id)
            .order_by(Organisation.name)
        ).scalars()
    )


def _savings_fields(text: str) -> tuple[dict[str, Any], str]:
    parsed = parse_savings(text)
    return {
        "savings_text": parsed.text,
        "savings_basis": parsed.basis.value,
        "savings_amount_pence": parsed.amount_pence,
        "savings_high_pence": parsed.high_pence,
        "savings_years": parsed.years,
        "savings_annual": parsed.annual,
        "savings_readable": parsed.readable,
    }, parsed.note


def _partner_orgs(uow: UnitOfWork, names: list[Any], sponsor_id: int) -> list[OrgRow]:
    out: dict[int, OrgRow] = {}
    for i, name in enumerate(names, start=1):
        org = find_organisation(uow, str(name), f"partners[{i}]")
        if org.id != sponsor_id:
            out.setdefault(org.id, org)
    return sorted(out.values(), key=lambda o: o.name)


def _write_partners(uow: UnitOfWork, bid_id: int, orgs: list[OrgRow]) -> None:
    if orgs:
        _INSERT_PARTNERS.insert(uow.conn, [(o.id,) for o in orgs], {"bid_id": bid_id})


def _write_profile(uow: UnitOfWork, bid_id: int, profile: list[dict[str, Any]]) -> None:
    if profile:
        planned = uow.fire(MILESTONE, "plan", "new", f"bid #{bid_id}")
        _INSERT_MILESTONES.insert(
            uow.conn,
            [
                (i, m["outcome"], m["due_on"], m["payment_pence"])
                for i, m in enumerate(profile, start=1)
            ],
            {"bid_id": bid_id, "state": planned.dest, "version": 1},
        )


def sponsor_contacts(
    uow: UnitOfWork, org: OrgRow, fallback_to_actor: bool = False
) -> list[tuple[str, str]]:
    """(name, email) of the authority's sponsor contacts; else its own address;
    else (if asked) the person acting."""
    contacts = uow.directory.contacts_by_org.get(org.id)
    if contacts:
        return [(p.name, p.email) for p in contacts]
    if org.email:
        return [(org.name, org.email)]
    if fallback_to_actor and uow.actor.person_id is not None:
        return [(uow.actor.name, uow.actor.email)]
    return []


SNAPSHOT_FIELDS = (
    "title",
    "state",
    "sponsor_id",
    "pot_id",
    "grant_requested_pence",
    "savings_text",
    "savings_basis",
    "savings_amount_pence",
    "savings_high_pence",
    "savings_years",
    "partnership",
    "builds_on_proven",
    "invest_to_save",
)


@command("submit_bid", summary="Submit a bid (sponsor for its own authority, or an officer)")
def submit_bid(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(BID, "submit")
    ref = args.text("ref", required=False, max_len=40)
    title = args.text("title", max_len=300)
    sponsor = find_organisation(uow, args.text("sponsor", max_len=200))
    grant = args.pence("grant")
    savings = args.text("savings", required=False, max_len=500)
    partner_names = args.items("partners")
    partnership_raw = args.raw("partnership")
    builds = tristate(args.raw("builds_on_proven"), "builds_on_proven", uow.command)
    invest_to_save = args.flag("invest_to_save")
    pot_name = args.text("pot", required=False)
    round_ref = args.text("round", required=False, max_len=40)
    profile = read_milestones(uow, args.items("milestones"))
    points = args.integer("published_points", required=False, minimum=0)
    args.done()

    uow.require_scope(sponsor.id, "submit bids")
    pot = find_pot(uow, pot_name) if pot_name else None
    rnd = None
    if round_ref:
        rnd = load_round_with_last_bid(uow, round_ref)
        check_round_accepts(uow, rnd, grant)
        if pot is not None and pot.id != rnd.pot_id:
            raise ValidationError(
                f"submit_bid: pot: round {rnd.ref} is for another pot; leave pot out", field="pot"
            )
        pot = next(p for p in uow.directory.pots if p.id == rnd.pot_id)
    if pot is None:  # a partnership's bid goes in its own allocation
        pot = own_pot(uow, sponsor)
    else:
        check_pot_for(uow, pot, sponsor)
    partners = _partner_orgs(uow, partner_names, sponsor.id)
    check_profile(uow, grant, profile)
    if partnership_raw in (None, "") and partners:
        partnership = "yes"
    else:
        partnership = tristate(partnership_raw, "partnership", uow.command)
    conn = uow.conn
    # the next automatic ref from the highest bid id read with the round (writers are
    # serialised: no bid was added since)
    ref = (ref_after("bid", rnd.max_bid_id) if rnd is not None and not ref
           else ref_for(conn, Bid, "bid", ref, "submit_bid"))
    created = uow.fire(BID, "submit", "new", ref)
    state = created.dest
    saving, note = _savings_fields(savings)
    row = {
        "ref": ref,
        "title": title,
        "sponsor_id": sponsor.id,
        "pot_id": pot.id if pot else None,
        "round_id": rnd.id if rnd else None,
        "grant_requested_pence": grant,
        "partnership": partnership,
        "partnership_as_written": "" if partnership_raw is None else str(partnership_raw),
        "builds_on_proven": builds,
        "invest_to_save": invest_to_save,
        "published_points": points,
        "state": created.dest,
        "submitted_on": uow.today,
        "submitted_by_id": uow.actor.person_id,
        "version": 1,
        **saving,
    }
    bid_id = inserted_id(conn.execute(_INSERT_BID, row))
    _write_partners(uow, bid_id, partners)
    _write_profile(uow, bid_id, profile)
    after = {k: row[k] for k in SNAPSHOT_FIELDS}
    after.update(ref=ref, partners=[o.name for o in partners], milestones=_profile_json(profile),
                 round=rnd.ref if rnd else None)
    uow.record(ref, {}, after)
    context = {
        "ref": ref,
        "title": title,
        "sponsor": sponsor.name,
        "grant_pence": grant,
        "savings_text": saving["savings_text"],
        "savings_note": note,
    }
    for name, email in sponsor_contacts(uow, sponsor, fallback_to_actor=True):
        uow.notify(
            key=f"bid_received:{ref}:{email}",
            to=email,
            template="bid_received",
            subject=f"Bid {ref} received: {title}",
            context={**context, "name": name},
        )
    tell_officers(uow, "bid", ref, f"{sponsor.name} submitted bid {ref}: {title}", title)
    return {
        "ref": ref,
        "state": state,
        "grant_pence": grant,
        "savings": note,
        "savings_readable": saving["savings_readable"],
    }


@command("amend_bid", summary="Amend a bid before it is scored")
def amend_bid(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(BID, "amend")
    bid = load_bid(uow, args.text("ref"))
    uow.require_scope(bid.sponsor_id, "amend bids", no_bid(uow, bid.ref))
    uow.check_version(bid.ref, bid.version, args)
    uow.step(BID, "amend", bid.state, bid.ref)
    new: dict[str, Any] = {}
    if args.has("title"):
        new["title"] = args.text("title", max_len=300)
    if args.has("grant"):
        new["grant_requested_pence"] = args.pence("grant")
    if "savings" in args.data:
        new.update(_savings_fields(args.text("savings", required=False, max_len=500))[0])
    if "builds_on_proven" in args.data:
        new["builds_on_proven"] = tristate(
            args.raw("builds_on_proven"), "builds_on_proven", uow.command
        )
    if "partnership" in args.data:
        new["partnership"] = tristate(args.raw("partnership"), "partnership", uow.command)
    if "invest_to_save" in args.data:
        new["invest_to_save"] = args.flag("invest_to_save")
    if args.has("pot"):
        pot = find_pot(uow, args.text("pot"))
        check_pot_for(uow, pot, uow.directory.orgs_by_id[bid.sponsor_id])
        new["pot_id"] = pot.id
    partner_names = args.items("partners") if "partners" in args.data else None
    profile = read_milestones(uow, args.items("milestones")) if "milestones" in args.data else None
    reason = args.text("reason", required=False, max_len=2000)
    args.done()

    changed = {k: v for k, v in new.items() if getattr(bid, k) != v}
    before = {k: getattr(bid, k) for k in changed}
    after = dict(changed)
    grant = changed.get("grant_requested_pence", bid.grant_requested_pence)
    if profile is not None:
        old_profile = _load_profile(uow, bid.id)
        check_profile(uow, grant, profile)
        if profile != old_profile:
            before["milestones"], after["milestones"] = (
                _profile_json(old_profile),
                _profile_json(profile),
            )
    elif "grant_requested_pence" in changed:
        check_profile(uow, grant, _load_profile(uow, bid.id))
    partners = None
    if partner_names is not None:
        partners = _partner_orgs(uow, partner_names, bid.sponsor_id)
        old = _load_partners(uow, bid.id)
        if [o.name for o in partners] != old:
            before["partners"], after["partners"] = old, [o.name for o in partners]
    if not after:
        raise ValidationError("amend_bid: nothing to change: give at least one new value")
    version = uow.update_versioned(Bid, bid.id, bid.version, changed, bid.ref)
    if "milestones" in after:
        uow.conn.execute(delete(Milestone).where(Milestone.bid_id == bid.id))
        _write_profile(uow, bid.id, profile or [])
    if "partners" in after:
        uow.conn.execute(delete(BidPartner).where(BidPartner.bid_id == bid.id))
        _write_partners(uow, bid.id, partners or [])
    uow.record(bid.ref, before, after, reason)
    return {"ref": bid.ref, "state": bid.state, "changed": sorted(after), "version": version}


@command("withdraw_bid", summary="Withdraw a bid that has not been decided")
def withdraw_bid(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(BID, "withdraw")
    bid = load_bid(uow, args.text("ref"))
    uow.require_scope(bid.sponsor_id, "withdraw bids", no_bid(uow, bid.ref))
    reason = args.text("reason", max_len=2000)
    uow.check_version(bid.ref, bid.version, args)
    args.done()
    moved = uow.fire(BID, "withdraw", bid.state, bid.ref)
    state = moved.dest
    version = uow.update_versioned(Bid, bid.id, bid.version, {}, bid.ref, moved)
    uow.record(bid.ref, {"state": bid.state}, {"state": state}, reason)
    return {"ref": bid.ref, "state": state, "version": version}


@command("resubmit_bid", summary="Put a referred-back bid before the Board again")
def resubmit_bid(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(BID, "resubmit")
    bid = load_bid(uow, args.text("ref"))
    uow.require_scope(bid.sponsor_id, "resubmit bids", no_bid(uow, bid.ref))
    uow.check_version(bid.ref, bid.version, args)
    note = args.text("note", required=False, max_len=2000)
    args.done()
    moved = uow.fire(BID, "resubmit", bid.state, bid.ref)
    state = moved.dest
    version = uow.update_versioned(Bid, bid.id, bid.version, {}, bid.ref, moved)
    uow.record(bid.ref, {"state": bid.state}, {"state": state}, note)
    return {"ref": bid.ref, "state": state, "version": version}
