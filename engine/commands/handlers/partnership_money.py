"""Partnership allocations: a programme's money split between sub-regional
partnerships' budgets and regional pots, and moved between them only by
ratified programme changes (issue 13 item 4; docs/grants.md "Partnership
allocations").

Words: an **allocation** (handlers/allocations.py) is funding proposed for a
purpose without a bid; a **partnership allocation** is a *pot* whose owner is
a partnership (``Pot.owner_partnership_id``): the budget that partnership
draws on for the projects it proposes. A pot with no owner is a regional pot.

Every command here writes money only through ``programme._ratify`` (the one
writer of ``allocate`` movements, with the ``programme_change`` record and its
audit event), citing the minute that ratified it (``ratified_by``):

- ``split_programme``: a grant to the programme split by declared shares —
  fixed amounts first, then percentages of what is left (which must total
  100%), exact to the penny: each pot gets the floor of its exact share and
  the pence left over go one each to the largest remainders, equal remainders
  to the pot listed first (``recovery.split_pence``, as deposits' shares);
- ``return_underspend``: money a partnership did not commit returned from its
  allocation to a regional pot;
- ``ring_fence``: each contributing pot gives a fixed sum to a (new) fund pot;
- ``set_savings_target``: the savings a grant's invest-to-save case or a whole
  programme is to deliver (the per-partnership paper's "anticipated").

No pot may go below what is committed from it. Bidding into a partnership's
allocation is for that partnership only (``programme.check_pot_for``).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import insert, select, update

from engine.commands.args import Args
from engine.commands.handlers.grants import load_grant
from engine.commands.handlers.programme import _ratify, find_programme, owner_words
from engine.commands.handlers.recovery import split_pence
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import MoneyRuleBroken, ValidationError
from engine.domain.money import format_pence, parse_pounds
from engine.store.directory import OrgRow, PotRow
from engine.store.ledger import PotLedger, ledger
from engine.store.models import OrgKind, Pot, SavingsTarget

POT_T = Pot.__table__
TARGET_T = SavingsTarget.__table__
_PERCENT = re.compile(r"^\s*([0-9]{1,3}(?:\.[0-9]{1,4})?)\s*%\s*$")
REMAINDER_RULE = (
    "fixed amounts first; the rest split by the percentages, each pot the whole pence of its "
    "exact share and the pence left over one each to the largest remainders (equal remainders "
    "to the pot listed first)"
)


# ---------------------------------------------------------------- shared steps


def _lines(uow: UnitOfWork, prog_id: int) -> dict[str, PotLedger]:
    return {line.name.lower(): line for line in ledger(uow.conn, prog_id)}


def _partnership(uow: UnitOfWork, name: str, field: str) -> OrgRow:
    org = uow.directory.org(name)
    if org is None:
        raise ValidationError(
            f"{uow.command}: {field}: no organisation {name!r} (register the partnership with "
            "kind sub_regional_partnership)", field=field)
    if org.kind != OrgKind.SUB_REGIONAL_PARTNERSHIP:
        raise ValidationError(
            f"{uow.command}: {field}: {org.name} is not a partnership (it is a "
            f"{org.kind.replace('_', ' ')}); a partnership allocation belongs to a "
            "sub-regional partnership", field=field)
    return org


def _pot_row(uow: UnitOfWork, prog_id: int, name: str) -> PotRow | None:
    key = name.strip().lower()
    return next(
        (p for p in uow.directory.pots if p.programme_id == prog_id and p.name.lower() == key),
        None,
    )


def _new_pot(uow: UnitOfWork, prog_id: int, name: str, owner_id: int | None) -> int:
    uow.touch_directory()
    return inserted_id(uow.conn.execute(insert(Pot).values(
        programme_id=prog_id, name=name, version=1, owner_partnership_id=owner_id)))


def _can_give(uow: UnitOfWork, line: PotLedger, amount: int, field: str) -> None:
    """Refuse taking ``amount`` from a pot when it would leave less than is committed."""
    if amount > line.available_pence:
        raise MoneyRuleBroken(
            f"{uow.command}: {field}: cannot take {format_pence(amount)} from {line.name}: "
            f"{format_pence(line.allocated_pence)} allocated, "
            f"{format_pence(line.committed_pence)} committed, so at most "
            f"{format_pence(line.available_pence)} can leave it",
            field=field,
        )


def _regional_target(uow: UnitOfWork, prog_id: int, name: str, field: str
                     ) -> tuple[int, str, int]:
    """(pot id, name, allocation) of a regional pot, made if new; refused if a
    partnership's."""
    pot = _pot_row(uow, prog_id, name)
    if pot is None:
        return _new_pot(uow, prog_id, name.strip(), None), name.strip(), 0
    if pot.owner_partnership_id is not None:
        raise ValidationError(
            f"{uow.command}: {field}: {pot.name} is {owner_words(uow, pot)}, not a regional pot",
            field=field,
        )
    return pot.id, pot.name, _lines(uow, prog_id)[pot.name.lower()].allocated_pence


# ---------------------------------------------------------------- split


def _read_share(uow: UnitOfWork, text: Any, where: str) -> tuple[str, Decimal | int]:
    """('percent', Decimal) or ('fixed', pence) from '70%' / '£100,000'."""
    raw = str(text).strip()
    m = _PERCENT.match(raw)
    if m:
        try:
            pct = Decimal(m.group(1))
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            pct = Decimal(0)
        if not 0 < pct <= 100:
            raise ValidationError(f"{uow.command}: {where}: {raw!r}: a percentage is more than "
                                  "0% and at most 100%", field=where)
        return "percent", pct
    if "%" in raw:
        raise ValidationError(
            f"{uow.command}: {where}: {raw!r} is not a percentage (write e.g. 70% or 23.5%, "
            "at most four decimals)", field=where)
    try:
        return "fixed", parse_pounds(raw, where)
    except ValidationError:
        raise ValidationError(
            f"{uow.command}: {where}: {raw!r} is neither a percentage (70%) nor an amount in "
            "pounds (£100,000)", field=where) from None


@command("split_programme", roles={"officer", "director"},
         summary="Split a grant to the programme between partnership allocations and regional "
                 "pots by ratified shares (percentages or fixed amounts)")
def split_programme(uow: UnitOfWork, args: Args) -> Result:
    prog_id, prog_name = find_programme(uow, args.text("programme", required=False))
    amount = args.pence("amount")
    raw = args.items("shares", required=True)
    ratified_by = args.text("ratified_by", max_len=300)
    reason = args.text("reason", required=False, max_len=2000) or "programme split"
    args.done()
    cmd = uow.command
    wanted: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, element in enumerate(raw, start=1):
        where = f"shares[{i}]"
        if not isinstance(element, dict):
            raise ValidationError(f"{cmd}: {where}: give pot, share and (for a partnership "
                                  "allocation) partnership", field=where)
        sub = Args(cmd, {f"{where}.{k}": v for k, v in element.items()})
        pot_name = sub.text(f"{where}.pot", max_len=200)
        owner_name = sub.text(f"{where}.partnership", required=False, max_len=200)
        share_text = sub.text(f"{where}.share", max_len=40)
        sub.done()
        if pot_name.lower() in seen:
            raise ValidationError(f"{cmd}: {where}.pot: {pot_name} is named twice",
                                  field=f"{where}.pot")
        seen.add(pot_name.lower())
        named = _partnership(uow, owner_name, f"{where}.partnership") if owner_name else None
        kind, value = _read_share(uow, share_text, f"{where}.share")
        wanted.append({"where": where, "pot": pot_name, "owner": named, "kind": kind,
                       "value": value, "share": share_text.replace(" ", "")})
    fixed = sum(int(w["value"]) for w in wanted if w["kind"] == "fixed")
    percents = [w for w in wanted if w["kind"] == "percent"]
    if fixed > amount:
        raise ValidationError(
            f"{cmd}: shares: the fixed amounts add up to {format_pence(fixed)}, more than the "
            f"{format_pence(amount)} to split", field="shares")
    if percents:
        total_pct = sum((Decimal(w["value"]) for w in percents), Decimal(0))
        if total_pct != 100:
            rest = "what is left after the fixed amounts" if fixed else "the whole amount"
            raise ValidationError(
                f"{cmd}: shares: the percentages add up to {total_pct.normalize():f}%; they "
                f"share {rest} and must add up to 100%", field="shares")
        scale = 10_000  # four decimals of a percent
        weights = [int(Decimal(w["value"]) * scale) for w in percents]
        for w, pence in zip(percents, split_pence(amount - fixed, weights), strict=True):
            w["pence"] = pence
    elif fixed != amount:
        raise ValidationError(
            f"{cmd}: shares: the fixed amounts add up to {format_pence(fixed)}, not the "
            f"{format_pence(amount)} to split; give the rest a share (a percentage takes what "
            "is left)", field="shares")
    for w in wanted:
        if w["kind"] == "fixed":
            w["pence"] = int(w["value"])
    lines = _lines(uow, prog_id)
    old_total = sum(line.allocated_pence for line in lines.values())
    changes: list[dict[str, Any]] = []
    for w in wanted:
        pot = _pot_row(uow, prog_id, w["pot"])
        owner: OrgRow | None = w["owner"]
        if pot is None:
            pot_id = _new_pot(uow, prog_id, w["pot"], owner.id if owner else None)
            name, before = w["pot"], 0
        else:
            if (owner.id if owner else None) != pot.owner_partnership_id:
                asked = f"{owner.name}'s allocation" if owner else "a regional pot"
                raise ValidationError(
                    f"{cmd}: {w['where']}.partnership: {pot.name} is {owner_words(uow, pot)}, "
                    f"not {asked}; a pot keeps its owner", field=f"{w['where']}.partnership")
            pot_id, name, before = pot.id, pot.name, lines[pot.name.lower()].allocated_pence
        changes.append({
            "pot": name, "pot_id": pot_id, "from_pence": before,
            "to_pence": before + w["pence"], "move": "split", "share": w["share"],
            "of_pence": amount, "partnership": owner.name if owner else None,
        })  # fmt: skip
    ref, new_total = _ratify(uow, prog_id, changes, old_total, ratified_by, reason)
    return {
        "ref": ref, "programme": prog_name, "amount_pence": amount,
        "old_total_pence": old_total, "new_total_pence": new_total, "rule": REMAINDER_RULE,
        "shares": [{"pot": c["pot"], "partnership": c["partnership"], "share": c["share"],
                    "amount_pence": c["to_pence"] - c["from_pence"]} for c in changes],
    }  # fmt: skip


# ---------------------------------------------------------------- underspends and ring-fences


@command("return_underspend", roles={"officer", "director"},
         summary="Return a partnership's underspend from its allocation to a regional pot "
                 "(ratified)")
def return_underspend(uow: UnitOfWork, args: Args) -> Result:
    prog_id, prog_name = find_programme(uow, args.text("programme", required=False))
    source_name = args.text("from", max_len=200)
    target_name = args.text("to", max_len=200)
    amount = args.pence("amount")
    ratified_by = args.text("ratified_by", max_len=300)
    reason = args.text("reason", required=False, max_len=2000) or "underspend returned"
    args.done()
    cmd = uow.command
    source = _pot_row(uow, prog_id, source_name)
    if source is None:
        known = [p.name for p in uow.directory.pots if p.programme_id == prog_id]
        raise ValidationError(f"{cmd}: from: no pot called {source_name!r} in {prog_name}; "
                              f"pots are: {', '.join(known)}", field="from")
    if source.owner_partnership_id is None:
        raise ValidationError(
            f"{cmd}: from: {source.name} is a regional pot; an underspend is returned from a "
            "partnership's allocation (to move money between regional pots, "
            "ratify_programme_change)", field="from")
    lines = _lines(uow, prog_id)
    old_total = sum(line.allocated_pence for line in lines.values())
    line = lines[source.name.lower()]
    _can_give(uow, line, amount, "amount")
    to_id, to_name, to_before = _regional_target(uow, prog_id, target_name, "to")
    changes = [
        {"pot": source.name, "pot_id": source.id, "from_pence": line.allocated_pence,
         "to_pence": line.allocated_pence - amount, "move": "return", "to": to_name},
        {"pot": to_name, "pot_id": to_id, "from_pence": to_before,
         "to_pence": to_before + amount, "move": "return", "from": source.name},
    ]  # fmt: skip
    ref, _ = _ratify(uow, prog_id, changes, old_total, ratified_by, reason)
    return {"ref": ref, "from": source.name, "to": to_name, "amount_pence": amount,
            "partnership": uow.directory.orgs_by_id[source.owner_partnership_id].name,
            "from_allocated_pence": line.allocated_pence - amount,
            "to_allocated_pence": to_before + amount}


@command("ring_fence", roles={"officer", "director"},
         summary="Ring-fence a fund: each named pot (a partnership's allocation, or a regional "
                 "underspend) contributes a fixed sum (ratified)")
def ring_fence(uow: UnitOfWork, args: Args) -> Result:
    prog_id, prog_name = find_programme(uow, args.text("programme", required=False))
    fund_name = args.text("fund", max_len=200)
    raw = args.mapping("contributions")
    ratified_by = args.text("ratified_by", max_len=300)
    reason = args.text("reason", required=False, max_len=2000) or "ring-fenced fund"
    args.done()
    cmd = uow.command
    if not raw:
        raise ValidationError(f"{cmd}: contributions: name at least one pot and its sum",
                              field="contributions")
    lines = _lines(uow, prog_id)
    old_total = sum(line.allocated_pence for line in lines.values())
    fund = _pot_row(uow, prog_id, fund_name)
    changes: list[dict[str, Any]] = []
    given = 0
    for pot_name, value in raw.items():
        where = f"contributions.{pot_name}"
        amount = Args(cmd, {where: value}).pence(where)
        pot = _pot_row(uow, prog_id, str(pot_name))
        if pot is None:
            known = [p.name for p in uow.directory.pots if p.programme_id == prog_id]
            raise ValidationError(f"{cmd}: {where}: no pot called {pot_name!r} in {prog_name}; "
                                  f"pots are: {', '.join(known)}", field=where)
        if fund is not None and pot.id == fund.id:
            raise ValidationError(f"{cmd}: {where}: the fund cannot contribute to itself",
                                  field=where)
        line = lines[pot.name.lower()]
        _can_give(uow, line, amount, where)
        given += amount
        changes.append({
            "pot": pot.name, "pot_id": pot.id, "from_pence": line.allocated_pence,
            "to_pence": line.allocated_pence - amount, "move": "ring_fence", "to": fund_name,
            "partnership": (uow.directory.orgs_by_id[pot.owner_partnership_id].name
                            if pot.owner_partnership_id else None),
        })  # fmt: skip
    fund_id, fund_real, fund_before = _regional_target(uow, prog_id, fund_name, "fund")
    for c in changes:
        c["to"] = fund_real
    changes.append({"pot": fund_real, "pot_id": fund_id, "from_pence": fund_before,
                    "to_pence": fund_before + given, "move": "ring_fence",
                    "from": [c["pot"] for c in changes]})
    ref, _ = _ratify(uow, prog_id, changes, old_total, ratified_by, reason)
    return {"ref": ref, "fund": fund_real, "fund_allocated_pence": fund_before + given,
            "contributions": [{"pot": c["pot"], "partnership": c["partnership"],
                               "amount_pence": c["from_pence"] - c["to_pence"]}
                              for c in changes[:-1]]}


# ---------------------------------------------------------------- savings targets


@command("set_savings_target", roles={"officer", "director"},
         summary="Set the savings a grant's invest-to-save case, or a programme, is to deliver")
def set_savings_target(uow: UnitOfWork, args: Args) -> Result:
    grant_ref = args.text("grant", required=False, max_len=40)
    prog = args.text("programme", required=False, max_len=200)
    target = args.pence("target", allow_zero=True)
    by = args.date("target_date", required=False)
    reason = args.text("reason", required=False, max_len=2000)
    args.done()
    if bool(grant_ref) == bool(prog):
        raise ValidationError(
            f"{uow.command}: grant: name a grant or a programme (one of them)", field="grant")
    if grant_ref:
        grant = load_grant(uow, grant_ref)
        key: dict[str, Any] = {"grant_id": grant.id}
        item = grant.ref
    else:
        prog_id, prog_name = find_programme(uow, prog)
        key = {"programme_id": prog_id}
        item = f"PROGRAMME:{prog_name}"
    column = TARGET_T.c.grant_id if grant_ref else TARGET_T.c.programme_id
    old = uow.conn.execute(select(TARGET_T).where(column == next(iter(key.values())))).first()
    values = {"target_pence": target, "target_on": by, "reason": reason or "",
              "set_on": uow.today, "set_by_id": uow.actor.person_id}
    if old is None:
        uow.conn.execute(insert(TARGET_T).values(**key, **values))
        before: dict[str, Any] = {}
    else:
        uow.conn.execute(update(TARGET_T).where(TARGET_T.c.id == old.id).values(**values))
        before = {"savings_target_pence": old.target_pence, "savings_target_on": _iso(
            old.target_on)}
    after = {"savings_target_pence": target, "savings_target_on": _iso(by)}
    uow.record(item, before, after, reason)
    return {"item": item, "target_pence": target, "target_date": _iso(by),
            "replaced_pence": None if old is None else old.target_pence}


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None
