"""Money coming back to a pot: invest-to-save repayments, deposits against a
savings target, and clawback recoveries.

- **Repayments.** An invest-to-save grant is repaid on a schedule of dated
  instalments. A repayment pays off the earliest instalments first and books
  a REPAY movement (the grant's paid and committed go down, the pot's
  available goes up). An instalment past its due date and not fully repaid is
  late (:func:`late_instalments`).
- **Deposits.** Partners lodge a deposit, split equally, by population or in
  explicit shares, refundable only if a savings target is met by a date. On
  or after that date it is settled from the accepted savings returns: refunded
  in full, or forfeited to its pot (a FORFEIT movement), the calculation kept
  in ``deposit.settlement``.
- **Recoveries.** A refund demanded from a grant (never more than it has been
  paid, net, less what is already demanded and open or written off) becomes a
  recovery: demanded → part_recovered → recovered (RECOVER movements), or
  written off with an approval.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.contracts import BASES
from engine.commands.handlers.directory import find_organisation
from engine.commands.handlers.intake import sponsor_contacts
from engine.commands.handlers.programme import find_pot
from engine.commands.handlers.returns import load_grant, step
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import MoneyRuleBroken, NotFound, TransitionRefused, ValidationError
from engine.domain.money import format_pence
from engine.domain.words import short_date as long_date  # 31 Mar 2012
from engine.read.savings import deposit_scope, total_for
from engine.store.directory import OrgRow
from engine.store.ledger import grant_line
from engine.store.models import (
    Bid,
    Deposit,
    DepositCount,
    DepositShare,
    Grant,
    GrantChange,
    MovementKind,
    Organisation,
    Recovery,
    RepaymentInstalment,
)
from engine.store.refs import next_ref, ref_for
from workflows.recovery import DEPOSIT, OPEN_RECOVERY, RECOVERY
from workflows.returns import RETURN

INST_T = RepaymentInstalment.__table__
DEP_T = Deposit.__table__
SHARE_T = DepositShare.__table__
REC_T = Recovery.__table__
GRANT_T = Grant.__table__
_INSTALMENTS = (
    select(INST_T).where(INST_T.c.grant_id == bindparam("grant_id")).order_by(INST_T.c.seq)
)
_DEPOSIT_BY_REF = select(DEP_T).where(DEP_T.c.ref == bindparam("ref"))
ACCEPTED = RETURN.step("accept").dest
_RECOVERY_BY_REF = select(REC_T).where(REC_T.c.ref == bindparam("ref"))


def gbp(pence: int) -> str:
    return format_pence(int(pence))


def _movement(
    uow: UnitOfWork,
    pot_id: int,
    kind: MovementKind,
    amount: int,
    on: dt.date,
    ref: str,
    grant_id: int | None,
    note: str,
) -> None:
    uow.book(pot_id, kind, amount, on, ref, grant_id, note)


def _received_on(uow: UnitOfWork, args: Args, grant: Any) -> dt.date:
    """``received_on`` (default today): not in the future, not before the grant."""
    on = args.date("received_on", required=False) or uow.today
    if on > uow.today:
        raise ValidationError(
            f"{uow.command}: received_on: {long_date(on)} is in the future (today is "
            f"{long_date(uow.today)}); record money when it has been received",
            field="received_on",
        )
    if on < grant.approved_on:
        raise ValidationError(
            f"{uow.command}: received_on: {long_date(on)} is before {grant.ref} was approved "
            f"({long_date(grant.approved_on)})",
            field="received_on",
        )
    return on


# ================================================================ invest to save


def _read_instalments(
    uow: UnitOfWork, args: Args, grant: Any, earliest: dt.date
) -> list[dict[str, Any]]:
    raw = args.items("instalments", required=True)
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw, start=1):
        where = f"instalments[{i}]"
        if not isinstance(item, dict):
            raise ValidationError(
                f"{uow.command}: {where}: must be {{due: DATE, amount: POUNDS}}", field=where
            )
        sub = Args(uow.command, {f"{where}.{k}": v for k, v in item.items()})
        due = sub.date(f"{where}.due")
        amount = sub.pence(f"{where}.amount")
        sub.done()
        if due < earliest:
            what = (
                f"{grant.ref} was approved on {long_date(grant.approved_on)}"
                if earliest == grant.approved_on
                else "a new instalment cannot fall due in the past "
                f"(today is {long_date(earliest)})"
            )
            raise ValidationError(
                f"{uow.command}: {where}.due: {long_date(due)} is too early: {what}",
                field=f"{where}.due",
            )
        out.append({"due_on": due, "amount_pence": amount})
    days = [i["due_on"] for i in out]
    if len(set(days)) != len(days):
        twice = sorted({d for d in days if days.count(d) > 1})[0]
        raise ValidationError(
            f"{uow.command}: instalments: two instalments fall due on {long_date(twice)}; "
            "combine them into one",
            field="instalments",
        )
    return sorted(out, key=lambda i: i["due_on"])


def _schedule_words(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{gbp(r['amount_pence'])} by {long_date(r['due_on'])}" for r in rows)


def _check_total(uow: UnitOfWork, grant: Any, total: int, kept: int = 0) -> None:
    if total + kept > grant.awarded_pence:
        also = (
            f" plus {gbp(kept)} on the instalments kept (money repaid against them)" if kept else ""
        )
        raise MoneyRuleBroken(
            f"{uow.command}: instalments: they add up to {gbp(total)}{also}, more than the "
            f"{gbp(grant.awarded_pence)} awarded to {grant.ref}; a grant is never repaid "
            "beyond its award",
            field="instalments",
        )


def _need_invest_to_save(uow: UnitOfWork, grant: Any) -> None:
    if not grant.invest_to_save:
        raise ValidationError(
            f"{uow.command}: grant: {grant.ref} is not an invest-to-save grant; only "
            "invest-to-save grants are repaid on a schedule (money wanted back from other "
            "grants is a recovery: demand_refund)",
            field="grant",
            item=grant.ref,
        )


@command(
    "set_repayment_schedule",
    roles={"officer"},
    summary="Set an invest-to-save grant's repayment schedule (dated instalments)",
)
def set_repayment_schedule(uow: UnitOfWork, args: Args) -> Result:
    grant = load_grant(uow, args.text("grant", max_len=40))
    _need_invest_to_save(uow, grant)
    rows = _read_instalments(uow, args, grant, grant.approved_on)
    args.done()
    uow.check_version(grant.ref, grant.version, args)
    existing = uow.conn.execute(_INSTALMENTS, {"grant_id": grant.id}).all()
    if existing:
        total = sum(r.amount_pence for r in existing)
        raise ValidationError(
            f"set_repayment_schedule: grant: {grant.ref} already has a repayment schedule "
            f"({len(existing)} instalments, {gbp(total)}); change it with reschedule_repayments "
            "(grant, instalments, approved_by, reason), which replaces only the instalments "
            "not yet repaid",
            field="grant",
            item=grant.ref,
        )
    total = sum(r["amount_pence"] for r in rows)
    _check_total(uow, grant, total)
    uow.conn.execute(
        insert(RepaymentInstalment),
        [{"grant_id": grant.id, "seq": n, "repaid_pence": 0, **r} for n, r in enumerate(rows, 1)],
    )
    uow.update_versioned(Grant, grant.id, grant.version, {}, grant.ref)
    uow.record(
        grant.ref,
        {},
        {
            "repayment_schedule": [
                {"seq": n, "due_on": r["due_on"], "amount_pence": r["amount_pence"]}
                for n, r in enumerate(rows, 1)
            ],
            "total_pence": total,
        },
        _schedule_words(rows),
    )
    return {
        "grant": grant.ref,
        "instalments": [
            {"seq": n, "due_on": r["due_on"].isoformat(), "amount_pence": r["amount_pence"]}
            for n, r in enumerate(rows, 1)
        ],
        "total_pence": total,
    }


@command(
    "reschedule_repayments",
    roles={"officer"},
    summary="Replace the unpaid instalments of a repayment schedule, with an approval",
)
def reschedule_repayments(uow: UnitOfWork, args: Args) -> Result:
    grant = load_grant(uow, args.text("grant", max_len=40))
    _need_invest_to_save(uow, grant)
    rows = _read_instalments(uow, args, grant, uow.today)
    approved_by = args.text("approved_by", max_len=500)
    reason = args.text("reason", max_len=4000)
    args.done()
    uow.check_version(grant.ref, grant.version, args)
    conn = uow.conn
    existing = conn.execute(_INSTALMENTS, {"grant_id": grant.id}).all()
    if not existing:
        raise ValidationError(
            f"reschedule_repayments: grant: {grant.ref} has no repayment schedule yet; set one "
            "with set_repayment_schedule",
            field="grant",
        )
    kept = [r for r in existing if r.repaid_pence > 0]
    dropped = [r for r in existing if r.repaid_pence == 0]
    kept_total = sum(r.amount_pence for r in kept)
    total = sum(r["amount_pence"] for r in rows)
    _check_total(uow, grant, total, kept_total)
    if dropped:
        conn.execute(delete(RepaymentInstalment).where(INST_T.c.id.in_([r.id for r in dropped])))
    first = max((r.seq for r in existing), default=0) + 1
    conn.execute(
        insert(RepaymentInstalment),
        [
            {"grant_id": grant.id, "seq": first + n, "repaid_pence": 0, **r}
            for n, r in enumerate(rows)
        ],
    )
    before = {"replaced": [_instalment_dict(r) for r in dropped]}
    after = {
        "instalments": [
            {"seq": first + n, "due_on": r["due_on"], "amount_pence": r["amount_pence"]}
            for n, r in enumerate(rows)
        ],
        "kept": [r.seq for r in kept],
        "approved_by": approved_by,
    }
    conn.execute(
        insert(GrantChange).values(
            grant_id=grant.id,
            kind="repayments",
            approved_by=approved_by,
            approved_on=uow.today,
            reason=reason,
            before={"instalments": [_instalment_json(r) for r in dropped]},
            after={
                "instalments": [
                    {
                        "seq": first + n,
                        "due_on": r["due_on"].isoformat(),
                        "amount_pence": r["amount_pence"],
                    }
                    for n, r in enumerate(rows)
                ]
            },
            recorded_by_id=uow.actor.person_id,
        )
    )
    uow.update_versioned(Grant, grant.id, grant.version, {}, grant.ref)
    uow.record(grant.ref, before, after, f"{reason} (approved: {approved_by})")
    return {
        "grant": grant.ref,
        "replaced": [r.seq for r in dropped],
        "kept": [r.seq for r in kept],
        "instalments": [{**i, "due_on": i["due_on"].isoformat()} for i in after["instalments"]],
        "total_pence": kept_total + total,
    }


def _instalment_dict(r: Any) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "due_on": r.due_on,
        "amount_pence": r.amount_pence,
        "repaid_pence": r.repaid_pence,
    }


def _instalment_json(r: Any) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "due_on": r.due_on.isoformat(),
        "amount_pence": r.amount_pence,
        "repaid_pence": r.repaid_pence,
    }


@command(
    "record_repayment",
    roles={"officer", "finance"},
    summary="Record money repaid on an invest-to-save grant; it returns to the pot",
)
def record_repayment(uow: UnitOfWork, args: Args) -> Result:
    grant = load_grant(uow, args.text("grant", max_len=40))
    amount = args.pence("amount")
    on = _received_on(uow, args, grant)
    args.done()
    _need_invest_to_save(uow, grant)
    conn = uow.conn
    schedule = conn.execute(_INSTALMENTS, {"grant_id": grant.id}).all()
    if not schedule:
        raise ValidationError(
            f"record_repayment: grant: {grant.ref} has no repayment schedule; set one first "
            "(set_repayment_schedule)",
            field="grant",
        )
    owed = sum(r.amount_pence - r.repaid_pence for r in schedule)
    if amount > owed:
        raise MoneyRuleBroken(
            f"record_repayment: amount: {gbp(amount)} is more than the {gbp(owed)} still owed "
            f"on {grant.ref}'s repayment schedule",
            field="amount",
        )
    paid = grant_line(conn, grant.id).paid_pence
    if amount > paid:
        raise MoneyRuleBroken(
            f"record_repayment: amount: {gbp(amount)} is more than {grant.ref} has been paid "
            f"({gbp(paid)}, net of money already returned); money never paid cannot be repaid",
            field="amount",
        )
    last = max((r.repaid_on for r in schedule if r.repaid_on is not None), default=None)
    if last is not None and on < last:
        raise ValidationError(
            f"record_repayment: received_on: {long_date(on)} is before the last repayment "
            f"recorded ({long_date(last)}); record repayments in the order they were received",
            field="received_on",
        )
    left = amount
    applied = []
    for r in schedule:
        if left == 0:
            break
        outstanding = r.amount_pence - r.repaid_pence
        if outstanding == 0:
            continue
        part = min(left, outstanding)
        left -= part
        conn.execute(
            update(RepaymentInstalment)
            .where(INST_T.c.id == r.id)
            .values(repaid_pence=r.repaid_pence + part, repaid_on=on)
        )
        cleared = part == outstanding
        days_late = (on - r.due_on).days
        applied.append(
            {
                "seq": r.seq,
                "due_on": r.due_on.isoformat(),
                "applied_pence": part,
                "repaid_pence": r.repaid_pence + part,
                "amount_pence": r.amount_pence,
                "cleared": cleared,
                "days_late": max(days_late, 0),
            }
        )
    words = "; ".join(
        f"instalment {a['seq']} (due {long_date(dt.date.fromisoformat(a['due_on']))}): "
        f"{gbp(a['applied_pence'])}"
        + (" — repaid" if a["cleared"] else f" — {gbp(a['amount_pence'] - a['repaid_pence'])} left")
        + (f", {a['days_late']} days late" if a["days_late"] else "")
        for a in applied
    )
    _movement(
        uow,
        grant.pot_id,
        MovementKind.REPAY,
        amount,
        on,
        grant.ref,
        grant.id,
        f"repayment of {grant.ref}: {words}",
    )
    uow.record(
        grant.ref,
        {"owed_pence": owed, "paid_pence": paid},
        {
            "repaid_pence": amount,
            "received_on": on,
            "owed_pence": owed - amount,
            "paid_pence": paid - amount,
            "applied": applied,
        },
        words,
    )
    return {
        "grant": grant.ref,
        "amount_pence": amount,
        "received_on": on.isoformat(),
        "applied": applied,
        "owed_pence": owed - amount,
        "summary": f"{gbp(amount)} repaid on {long_date(on)}: {words}",
    }


# ================================================================ deposits


def split_pence(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` pence in proportion to ``weights`` so the shares add up to
    ``total`` exactly: each gets the floor of its exact share, and the pence
    left over go one each to the largest remainders; equal remainders go to the
    earlier weight (callers order partners by name). Each share is within 1p of
    its exact proportion."""
    if not weights or any(w <= 0 for w in weights) or total < 0:
        raise ValueError("split_pence needs positive weights and a non-negative total")
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(shares)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[i] += 1
    return shares


def _partners(uow: UnitOfWork, names: list[Any]) -> list[OrgRow]:
    if not names:
        raise ValidationError(
            "lodge_deposit: partners: name the partner authorities putting up the deposit",
            field="partners",
        )
    seen: dict[int, OrgRow] = {}
    for i, name in enumerate(names, start=1):
        org = find_organisation(uow, str(name), f"partners[{i}]")
        if org.id in seen:
            raise ValidationError(
                f"lodge_deposit: partners[{i}]: {org.name} is listed twice", field=f"partners[{i}]"
            )
        seen[org.id] = org
    return sorted(seen.values(), key=lambda o: o.name)


def _shares(uow: UnitOfWork, args: Args, basis: str, total: int) -> list[tuple[OrgRow, int]]:
    names = args.items("partners")
    explicit = args.raw("shares")
    if basis != "explicit":
        if explicit not in (None, "", {}):
            raise ValidationError(
                f"lodge_deposit: shares: the {basis} basis works the shares out; give partners "
                "(a list of authorities), or use basis explicit with shares",
                field="shares",
            )
        orgs = _partners(uow, names)
        if basis == "equal":
            weights = [1] * len(orgs)
        else:
            for org in orgs:
                if not org.population:
                    where = next(
                        (
                            f"partners[{i}]"
                            for i, n in enumerate(names, 1)
                            if uow.directory.org(str(n)) == org
                        ),
                        "partners",
                    )
                    raise ValidationError(
                        f"lodge_deposit: {where}: {org.name} has no population recorded, so "
                        "shares by population cannot be worked out; record its population, or "
                        "use basis equal or explicit",
                        field=where,
                    )
            weights = [org.population or 0 for org in orgs]  # each has one (checked above)
        return list(zip(orgs, split_pence(total, weights), strict=True))
    if names:
        raise ValidationError(
            "lodge_deposit: partners: explicit shares name their partners; leave partners out "
            "and give shares {authority: amount}",
            field="partners",
        )
    mapping = args.mapping("shares")
    if not mapping:
        raise ValidationError(
            "lodge_deposit: shares: give each partner's share {authority: amount}", field="shares"
        )
    out: dict[int, tuple[OrgRow, int]] = {}
    for name, value in mapping.items():
        where = f"shares.{name}"
        org = find_organisation(uow, str(name), where)
        if org.id in out:
            raise ValidationError(
                f"lodge_deposit: {where}: {org.name} is given two shares", field=where
            )
        amount = Args("lodge_deposit", {where: value}).pence(where)
        out[org.id] = (org, amount)
    added = sum(a for _, a in out.values())
    if added != total:
        listed = ", ".join(f"{o.name} {gbp(a)}" for o, a in out.values())
        raise ValidationError(
            f"lodge_deposit: shares: {listed} add up to {gbp(added)}, but the deposit is "
            f"{gbp(total)}; explicit shares must add up to the amount exactly",
            field="shares",
        )
    return sorted(out.values(), key=lambda s: s[0].name)


@command(
    "lodge_deposit",
    roles={"officer"},
    summary="Partners lodge a deposit against a savings target and a date",
)
def lodge_deposit(uow: UnitOfWork, args: Args) -> Result:
    grant_ref = args.text("grant", required=False, max_len=40)
    pot_name = args.text("pot", required=False, max_len=200)
    total = args.pence("amount")
    basis = args.choice("basis", BASES)
    target = args.pence("target")
    target_on = args.date("target_date")
    purpose = args.text("purpose", required=False, max_len=2000)
    if not grant_ref and not pot_name:
        raise ValidationError(
            "lodge_deposit: grant: give the grant the deposit is for, or the pot it would be "
            "forfeited to",
            field="grant",
        )
    grant = load_grant(uow, grant_ref) if grant_ref else None
    if pot_name or grant is None:  # no grant: a pot is named (refused above otherwise)
        pot = find_pot(uow, pot_name)
    else:
        pot = next(p for p in uow.directory.pots if p.id == grant.pot_id)
    shares = _shares(uow, args, basis, total)
    counts = _counts(uow, args, grant, pot.programme_id, [org for org, _ in shares])
    chosen_ref = args.text("ref", required=False, max_len=40)
    args.done()
    if target_on <= uow.today:
        raise ValidationError(
            f"lodge_deposit: target_date: {long_date(target_on)} is not after today "
            f"({long_date(uow.today)}); the target date must be in the future",
            field="target_date",
        )
    conn = uow.conn
    ref = ref_for(conn, Deposit, "deposit", chosen_ref, "lodge_deposit")
    created = uow.fire(DEPOSIT, "lodge", DEPOSIT.initial, ref)
    state = created.dest
    deposit_id = inserted_id(
        conn.execute(
            insert(Deposit).values(
                ref=ref,
                grant_id=grant.id if grant else None,
                pot_id=pot.id,
                total_pence=total,
                basis=basis,
                target_pence=target,
                target_on=target_on,
                lodged_on=uow.today,
                purpose=purpose,
                state=created.dest,
                version=1,
            )
        )
    )
    conn.execute(
        insert(DepositShare),
        [
            {
                "deposit_id": deposit_id,
                "organisation_id": org.id,
                "amount_pence": amount,
                "refunded_pence": 0,
                "forfeited_pence": 0,
            }
            for org, amount in shares
        ],
    )
    conn.execute(
        insert(DepositCount),
        [{"deposit_id": deposit_id, "kind": kind, "grant_id": gid, "organisation_id": oid}
         for kind, gid, oid, _ in counts],
    )  # fmt: skip
    counted = [label for *_, label in counts]
    split = ", ".join(f"{org.name} {gbp(amount)}" for org, amount in shares)
    words = (
        f"deposit {gbp(total)} ({basis}: {split}) against savings of {gbp(target)} by "
        f"{long_date(target_on)}"
        + (f" on {grant.ref}" if grant else "")
        + f", counting {', '.join(counted)}"
        + f"; forfeited to the {pot.name} pot if missed"
    )
    uow.record(
        ref,
        {},
        {
            "state": state,
            "grant": grant.ref if grant else None,
            "pot": pot.name,
            "total_pence": total,
            "basis": basis,
            "target_pence": target,
            "target_on": target_on,
            "shares": {org.name: amount for org, amount in shares},
            "purpose": purpose,
            "counts": counted,
        },
        words,
    )
    return {
        "deposit": ref,
        "state": state,
        "grant": grant.ref if grant else None,
        "pot": pot.name,
        "total_pence": total,
        "basis": basis,
        "target_pence": target,
        "target_on": target_on.isoformat(),
        "shares": {org.name: amount for org, amount in shares},
        "counts": counted,
        "summary": words,
    }


Counted = tuple[str, int | None, int | None, str]  # kind, grant id, organisation id, words


def _counts(
    uow: UnitOfWork, args: Args, grant: Any, programme_id: int, partners: list[OrgRow]
) -> list[Counted]:
    """What the deposit's target counts (issue 13): ``counts`` {grants, councils,
    partnership}; by default the deposit's grant, or (a deposit against a pot only)
    the partners' grants in the programme."""
    raw = args.raw("counts")
    if raw in (None, "", {}):
        if grant is not None:
            return [("grant", grant.id, None, f"grant {grant.ref}")]
        return [("council", None, o.id, f"council {o.name}") for o in partners]
    if not isinstance(raw, dict):
        raise ValidationError(
            "lodge_deposit: counts: must be {grants: [refs], councils: [names], partnership: "
            f"name}}, got {type(raw).__name__}",
            field="counts",
        )
    unknown = sorted(set(raw) - {"grants", "councils", "partnership"})
    if unknown:
        raise ValidationError(
            f"lodge_deposit: counts.{unknown[0]}: unknown key; counts takes grants, councils, "
            "partnership",
            field="counts",
        )
    sub = Args("lodge_deposit", {f"counts.{k}": v for k, v in raw.items()})
    out: list[Counted] = []
    for i, ref in enumerate(sub.items("counts.grants"), start=1):
        g = load_grant(uow, str(ref), f"counts.grants[{i}]")
        out.append(("grant", g.id, None, f"grant {g.ref}"))
    for i, name in enumerate(sub.items("counts.councils"), start=1):
        org = find_organisation(uow, str(name), f"counts.councils[{i}]")
        out.append(("council", None, org.id, f"council {org.name}"))
    partnership = sub.text("counts.partnership", required=False, max_len=200)
    if partnership:
        org = find_organisation(uow, partnership, "counts.partnership")
        out.append(("partnership", None, org.id, f"partnership {org.name}"))
    if not out:
        raise ValidationError(
            "lodge_deposit: counts: name what the target counts: grants, councils or a "
            "partnership",
            field="counts",
        )
    seen = [(k, g, o) for k, g, o, _ in out]
    if len(set(seen)) != len(seen):
        twice = next(w for (k, g, o, w) in out if seen.count((k, g, o)) > 1)
        raise ValidationError(f"lodge_deposit: counts: {twice} is named twice", field="counts")
    return out


def load_deposit(uow: UnitOfWork, ref: str) -> Any:
    row = uow.conn.execute(_DEPOSIT_BY_REF, {"ref": ref}).first()
    if row is None:
        raise NotFound(f"{uow.command}: deposit: no deposit {ref!r}", field="deposit", item=ref)
    return row


def _deposit_shares(conn: Connection, deposit_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(SHARE_T, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == SHARE_T.c.organisation_id)
            .where(SHARE_T.c.deposit_id == deposit_id)
            .order_by(Organisation.name)
        ).all()
    )


def settlement_of(uow: UnitOfWork, dep: Any, shares: list[Any], pot_name: str) -> dict[str, Any]:
    """Work out (without writing anything) how a deposit settles: the savings its
    target counts (the accepted per-period savings of the grants in scope, in periods
    ending by the target date: engine/read/savings.py), delivered vs target, and each
    partner's refund or forfeit."""
    programme_id = next(p.programme_id for p in uow.directory.pots if p.id == dep.pot_id)
    scope = deposit_scope(uow.conn, dep, programme_id)
    counted = total_for(uow.conn, scope, dep.target_on)
    used = [
        {
            "return": p["return"],
            "grant": v["grant"],
            "period_end": p["period_end"],
            "state": ACCEPTED,  # only accepted returns count
            "reading": p["reading"],
            "savings_delivered_pence": p["figure_pence"],
            "reported_pence": p["reported_pence"],
            "per_period_pence": p["per_period_pence"],
            "to_date_pence": p["to_date_pence"],
        }
        for v in counted["grants"]
        for p in v["periods"]
    ]
    delivered = counted["delivered_pence"]
    met = delivered >= dep.target_pence
    with_returns = [v for v in counted["grants"] if v["periods"]]
    to = max((dt.date.fromisoformat(u["period_end"]) for u in used), default=dep.target_on)
    if len(with_returns) == 1 and len(counted["grants"]) == 1:
        v = with_returns[0]
        refs = ", ".join(p["return"] for p in v["periods"])
        source = f"{v['derivation']}: {refs}, accepted"
    elif with_returns:
        source = "; ".join(
            f"{v['grant']} {gbp(v['to_date_pence'])}: {v['derivation']}" for v in with_returns
        )
    else:
        source = f"no accepted savings return for a quarter ending by {long_date(dep.target_on)}"
    split = ", ".join(f"{s.name} {gbp(s.amount_pence)}" for s in shares)
    if met:
        outcome = f"met — refund {gbp(dep.total_pence)}: {split}"
    else:
        outcome = (
            f"missed by {gbp(dep.target_pence - delivered)} — forfeit {gbp(dep.total_pence)} "
            f"to the {pot_name} pot: {split}"
        )
    words = (
        f"savings delivered {gbp(delivered)} to {long_date(to)} ({source}) vs target "
        f"{gbp(dep.target_pence)}: {outcome}"
    )
    return {
        "returns": used,
        "counts": counted["counts"],
        "grants": [
            {k: v[k] for k in ("grant", "body", "to_date_pence", "derivation")}
            for v in counted["grants"]
        ],
        "delivered_pence": delivered,
        "target_pence": dep.target_pence,
        "target_on": dep.target_on.isoformat(),
        "met": met,
        "outcome": "refunded" if met else "forfeited",
        "pot": pot_name,
        "shares": [
            {
                "organisation": s.name,
                "amount_pence": s.amount_pence,
                "refunded_pence": s.amount_pence if met else 0,
                "forfeited_pence": 0 if met else s.amount_pence,
            }
            for s in shares
        ],
        "explanation": words,
    }


@command(
    "settle_deposit",
    roles={"officer", "finance"},
    summary="On or after its target date, refund a deposit or forfeit it to the pot",
)
def settle_deposit(uow: UnitOfWork, args: Args) -> Result:
    dep = load_deposit(uow, args.text("deposit", max_len=40))
    args.done()
    uow.check_version(dep.ref, dep.version, args)
    if dep.state != "lodged":
        raise ValidationError(
            f"settle_deposit: deposit: {dep.ref} was already settled on "
            f"{long_date(dep.settled_on)} ({dep.state}); a deposit is settled once",
            field="deposit",
            item=dep.ref,
        )
    if uow.today < dep.target_on:
        raise ValidationError(
            f"settle_deposit: deposit: {dep.ref} is held against savings of "
            f"{gbp(dep.target_pence)} by {long_date(dep.target_on)}; it can be settled on or "
            f"after that date (today is {long_date(uow.today)})",
            field="deposit",
            item=dep.ref,
        )
    conn = uow.conn
    shares = _deposit_shares(conn, dep.id)
    pot_name = next(p.name for p in uow.directory.pots if p.id == dep.pot_id)
    calc = settlement_of(uow, dep, shares, pot_name)
    settled = step(
        uow, DEPOSIT, "refund" if calc["met"] else "forfeit", dep.state, dep.ref, "deposit"
    )
    state = settled.dest
    for s in shares:
        conn.execute(
            update(DepositShare)
            .where(SHARE_T.c.id == s.id)
            .values(
                refunded_pence=s.amount_pence if calc["met"] else 0,
                forfeited_pence=0 if calc["met"] else s.amount_pence,
            )
        )
    if not calc["met"]:
        _movement(
            uow,
            dep.pot_id,
            MovementKind.FORFEIT,
            dep.total_pence,
            uow.today,
            dep.ref,
            None,
            f"{dep.ref} forfeited: {calc['explanation']}",
        )
    uow.update_versioned(
        Deposit,
        dep.id,
        dep.version,
        {"settled_on": uow.today, "settlement": calc},
        dep.ref,
        settled,
    )
    uow.record(
        dep.ref, {"state": dep.state}, {"state": state, "settlement": calc}, calc["explanation"]
    )
    grant_ref = (
        conn.execute(select(GRANT_T.c.ref).where(GRANT_T.c.id == dep.grant_id)).scalar()
        if dep.grant_id
        else None
    )
    subject = f"Deposit {dep.ref} " + (
        "refunded: savings target met" if calc["met"] else "forfeited: savings target missed"
    )
    for s, line in zip(shares, calc["shares"], strict=True):
        org = uow.directory.orgs_by_id[s.organisation_id]
        for name, email in sponsor_contacts(uow, org):
            uow.notify(
                key=f"deposit_settled:{dep.ref}:{email}",
                to=email,
                template="deposit_settled",
                subject=subject,
                context={
                    "name": name,
                    "organisation": org.name,
                    "ref": dep.ref,
                    "grant": grant_ref,
                    "purpose": dep.purpose,
                    "met": calc["met"],
                    "delivered_pence": calc["delivered_pence"],
                    "target_pence": dep.target_pence,
                    "target_on": long_date(dep.target_on),
                    "total_pence": dep.total_pence,
                    "share_pence": s.amount_pence,
                    "refunded_pence": line["refunded_pence"],
                    "forfeited_pence": line["forfeited_pence"],
                    "pot": pot_name,
                    "explanation": calc["explanation"],
                    "shares": calc["shares"],
                },
            )
    return {"deposit": dep.ref, "state": state, **calc}


# ================================================================ clawback and recovery


def load_recovery(uow: UnitOfWork, ref: str) -> Any:
    row = uow.conn.execute(_RECOVERY_BY_REF, {"ref": ref}).first()
    if row is None:
        raise NotFound(f"{uow.command}: recovery: no recovery {ref!r}", field="recovery", item=ref)
    return row


def demand_position(conn: Connection, grant_id: int) -> dict[str, Any]:
    """What may still be demanded from a grant: its net paid, less what open
    recoveries still have outstanding, less what was written off."""
    paid = grant_line(conn, grant_id).paid_pence
    open_rows = conn.execute(
        select(REC_T.c.ref, REC_T.c.demanded_pence, REC_T.c.recovered_pence)
        .where(REC_T.c.grant_id == grant_id, REC_T.c.state.in_(OPEN_RECOVERY))
        .order_by(REC_T.c.id)
    ).all()
    written_off = conn.execute(
        select(func.coalesce(func.sum(REC_T.c.written_off_pence), 0)).where(
            REC_T.c.grant_id == grant_id
        )
    ).scalar()
    outstanding = sum(r.demanded_pence - r.recovered_pence for r in open_rows)
    return {
        "paid_pence": paid,
        "open": [r.ref for r in open_rows],
        "outstanding_pence": outstanding,
        "written_off_pence": int(written_off or 0),
        "demandable_pence": paid - outstanding - int(written_off or 0),
    }


@command("demand_refund", summary="Demand that a grant be refunded (all or part): a recovery")
def demand_refund(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RECOVERY, "demand")
    grant = load_grant(uow, args.text("grant", max_len=40))
    amount = args.pence("amount", required=False)
    reason = args.text("reason", max_len=4000)
    authority = args.text("authority", max_len=500)
    args.done()
    conn = uow.conn
    pos = demand_position(conn, grant.id)
    can = pos["demandable_pence"]
    if (amount is None and can <= 0) or (amount is not None and amount > can):
        asked = (
            f"{gbp(amount)} is more than can be demanded" if amount else "nothing can be demanded"
        )
        parts = [f"it has been paid {gbp(pos['paid_pence'])} (net of money returned)"]
        if pos["outstanding_pence"]:
            parts.append(
                f"{gbp(pos['outstanding_pence'])} is already demanded and outstanding "
                f"({', '.join(pos['open'])})"
            )
        if pos["written_off_pence"]:
            parts.append(f"{gbp(pos['written_off_pence'])} was written off")
        raise MoneyRuleBroken(
            f"demand_refund: amount: {asked} from {grant.ref}: {'; '.join(parts)}; at most "
            f"{gbp(max(can, 0))} may be demanded",
            field="amount",
            item=grant.ref,
        )
    amount = amount if amount is not None else can
    ref = next_ref(conn, Recovery, "recovery")
    created = uow.fire(RECOVERY, "demand", RECOVERY.initial, ref)
    state = created.dest
    conn.execute(
        insert(Recovery).values(
            ref=ref,
            grant_id=grant.id,
            demanded_pence=amount,
            reason=reason,
            authority=authority,
            state=created.dest,
            demanded_on=uow.today,
            recovered_pence=0,
            written_off_pence=0,
            written_off_by="",
            version=1,
        )
    )
    uow.record(
        ref,
        {},
        {
            "state": state,
            "grant": grant.ref,
            "demanded_pence": amount,
            "authority": authority,
            "paid_pence": pos["paid_pence"],
        },
        reason,
    )
    body = uow.directory.orgs_by_id[grant.accountable_body_id]
    title = conn.execute(select(col(Bid.title)).where(col(Bid.id) == grant.bid_id)).scalar() or ""
    for name, email in sponsor_contacts(uow, body):
        uow.notify(
            key=f"refund_demand:{ref}:{email}",
            to=email,
            template="refund_demand",
            subject=f"Refund of {gbp(amount)} demanded: grant {grant.ref}, {title}",
            context={
                "name": name,
                "organisation": body.name,
                "ref": ref,
                "grant": grant.ref,
                "title": title,
                "amount_pence": amount,
                "paid_pence": pos["paid_pence"],
                "awarded_pence": grant.awarded_pence,
                "reason": reason,
                "authority": authority,
                "date": long_date(uow.today),
            },
        )
    return {
        "recovery": ref,
        "grant": grant.ref,
        "state": state,
        "demanded_pence": amount,
        "paid_pence": pos["paid_pence"],
        "authority": authority,
    }


@command("record_recovery", summary="Record money received against a refund demand")
def record_recovery(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RECOVERY, "recover_part")
    rec = load_recovery(uow, args.text("recovery", max_len=40))
    amount = args.pence("amount")
    grant = uow.conn.execute(select(GRANT_T).where(GRANT_T.c.id == rec.grant_id)).one()  # FK
    on = _received_on(uow, args, grant)
    args.done()
    uow.check_version(rec.ref, rec.version, args)
    if on < rec.demanded_on:
        raise ValidationError(
            f"record_recovery: received_on: {long_date(on)} is before {rec.ref} was demanded "
            f"({long_date(rec.demanded_on)})",
            field="received_on",
        )
    if rec.state not in OPEN_RECOVERY:
        raise TransitionRefused(
            f"record_recovery: recovery: {rec.ref} is {rec.state.replace('_', ' ')} (closed on "
            f"{long_date(rec.closed_on)}); money is recorded only against a recovery that is "
            "demanded or part recovered",
            field="recovery",
            item=rec.ref,
        )
    outstanding = rec.demanded_pence - rec.recovered_pence
    if amount > outstanding:
        raise MoneyRuleBroken(
            f"record_recovery: amount: {gbp(amount)} is more than the {gbp(outstanding)} "
            f"outstanding on {rec.ref} (demanded {gbp(rec.demanded_pence)}, recovered "
            f"{gbp(rec.recovered_pence)} so far)",
            field="amount",
            item=rec.ref,
        )
    paid = grant_line(uow.conn, grant.id).paid_pence
    if amount > paid:
        raise MoneyRuleBroken(
            f"record_recovery: amount: {gbp(amount)} is more than {grant.ref} has been paid "
            f"({gbp(paid)}, net of money already returned)",
            field="amount",
            item=rec.ref,
        )
    recovered = rec.recovered_pence + amount
    trigger = "recover_in_full" if recovered == rec.demanded_pence else "recover_part"
    moved = step(uow, RECOVERY, trigger, rec.state, rec.ref, "recovery")
    state = moved.dest
    _movement(
        uow,
        grant.pot_id,
        MovementKind.RECOVER,
        amount,
        on,
        rec.ref,
        grant.id,
        f"{rec.ref}: recovered from {grant.ref}",
    )
    values: dict[str, Any] = {"recovered_pence": recovered}
    if state == "recovered":
        values["closed_on"] = on
    uow.update_versioned(Recovery, rec.id, rec.version, values, rec.ref, moved)
    left = rec.demanded_pence - recovered
    words = (
        f"{gbp(amount)} received on {long_date(on)}; {gbp(recovered)} of "
        f"{gbp(rec.demanded_pence)} recovered"
        + (f", {gbp(left)} outstanding" if left else ", demand cleared")
    )
    uow.record(
        rec.ref,
        {"state": rec.state, "recovered_pence": rec.recovered_pence},
        {"state": state, "recovered_pence": recovered, "amount_pence": amount, "received_on": on},
        words,
    )
    return {
        "recovery": rec.ref,
        "grant": grant.ref,
        "state": state,
        "amount_pence": amount,
        "recovered_pence": recovered,
        "outstanding_pence": left,
        "summary": words,
    }


@command("write_off", summary="Write off what is still outstanding on a recovery, with approval")
def write_off(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RECOVERY, "write_off")
    rec = load_recovery(uow, args.text("recovery", max_len=40))
    approved_by = args.text("approved_by", max_len=500)
    reason = args.text("reason", max_len=4000)
    args.done()
    uow.check_version(rec.ref, rec.version, args)
    moved = step(uow, RECOVERY, "write_off", rec.state, rec.ref, "recovery")
    state = moved.dest
    outstanding = rec.demanded_pence - rec.recovered_pence
    uow.update_versioned(
        Recovery,
        rec.id,
        rec.version,
        {
            "written_off_pence": outstanding,
            "written_off_by": approved_by,
            "closed_on": uow.today,
        },
        rec.ref,
        moved,
    )
    uow.record(
        rec.ref,
        {"state": rec.state, "outstanding_pence": outstanding},
        {"state": state, "written_off_pence": outstanding, "approved_by": approved_by},
        reason,
    )
    return {
        "recovery": rec.ref,
        "state": state,
        "written_off_pence": outstanding,
        "recovered_pence": rec.recovered_pence,
        "approved_by": approved_by,
    }
