"""Grants after approval: milestone evidence, verification, four-eyes payments,
re-profiling, extension and closure.

Money rules (each refusal names the field and the figures):

- a payment is released only for a milestone whose evidence was verified,
  by someone other than the person who verified it (four eyes);
- never above what is left of the milestone (its amount less what was
  already paid on it), never above what the grant may still pay
  (``grant_line(...).unpaid_pence``: awarded − released − paid out, so money
  recovered or repaid never makes room for more payments);
- part payments are allowed: the milestone is ``part_paid`` until the
  payment that brings it to its full amount makes it ``paid``;
- a re-profile (or an added milestone) may not push the profile above what
  the grant can pay in all: Σ milestone amounts ≤ paid so far + unpaid
  (= awarded − released when every payment was against a milestone);
- closing releases the grant's unpaid commitment to its pot (a RELEASE
  movement), cancels milestones that never got evidence, and is refused
  while evidence awaits review or a verified milestone is not yet paid.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import namedtuple
from dataclasses import dataclass, replace
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import bindparam, func, insert, select
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.conditions import condition_refusal
from engine.commands.handlers.intake import sponsor_contacts
from engine.commands.handlers.returns import refuse_payment_while_returns_late
from engine.commands.letters import issue_letter, payment_refusal
from engine.commands.lookups import payee
from engine.commands.notices import tell_officers
from engine.commands.registry import Result, command
from engine.commands.second_factor import check_second_factor, pot_programme
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import (
    MoneyRuleBroken,
    NotFound,
    PermissionDenied,
    TransitionRefused,
    ValidationError,
)
from engine.domain.money import format_pence
from engine.store import files as evidence_files
from engine.store.ledger import (
    GrantLedger,
    grant_line,
    grant_money,
    grant_money_columns,
    grant_money_from,
    pot_line_named,
)
from engine.store.models import (
    Bid,
    Evidence,
    Grant,
    GrantChange,
    GrantCondition,
    Milestone,
    MovementKind,
    Payment,
)
from engine.store.rawsql import RawRows, RawStatement
from engine.store.refs import ref_after
from workflows.base import Transition
from workflows.condition import OPEN as CONDITION_OPEN
from workflows.grant import GRANT, MILESTONE, PAYABLE

GRANT_T = Grant.__table__
MS_T = Milestone.__table__
EV_T = Evidence.__table__
_GRANT_BY_REF = (
    select(GRANT_T, col(Bid.title).label("title"))
    .join(Bid.__table__, col(Bid.id) == GRANT_T.c.bid_id)
    .where(GRANT_T.c.ref == bindparam("ref"))
)
_MILESTONES = select(MS_T).where(MS_T.c.grant_id == bindparam("grant_id")).order_by(MS_T.c.seq)
_PAID_BY_MILESTONE = (
    select(col(Payment.milestone_id), func.sum(col(Payment.amount_pence)))
    .where(col(Payment.grant_id) == bindparam("grant_id"))
    .group_by(col(Payment.milestone_id))
)

# A command on a grant's milestones reads in one statement, straight to the driver with
# the columns typed (store/rawsql.py RawRows), the grant (with its bid's title) and its
# milestones, one row each (m_<column>), and as it needs: the money (the grant's sums by
# kind and what was paid on each milestone: ledger.grant_money_columns), the evidence
# awaiting review on each milestone (e_<column>), and for a payment how many conditions
# to be met before the first payment are still open (conditions.condition_refusal reads
# them only if any) and the highest payment id (the payment's ref: refs.ref_after).
BID_T = Bid.__table__
COND_T = GrantCondition.__table__
PAY_T = Payment.__table__
_EV_LATER = EV_T.alias("ev_later")
_N_GRANT = len(GRANT_T.c) + 1
_N_MS = len(MS_T.c)
_GrantRow = namedtuple("_GrantRow", [*GRANT_T.c.keys(), "title"])  # type: ignore[misc]
_MilestoneRow = namedtuple("_MilestoneRow", MS_T.c.keys())  # type: ignore[misc]
_EvidenceRow = namedtuple("_EvidenceRow", EV_T.c.keys())  # type: ignore[misc]


def _grant_read(money: bool = False, evidence: bool = False, to_pay: bool = False) -> RawRows:
    cols: list[Any] = [
        *GRANT_T.c, BID_T.c.title.label("title"), *(c.label(f"m_{c.name}") for c in MS_T.c)
    ]  # fmt: skip
    joined = GRANT_T.join(BID_T, BID_T.c.id == GRANT_T.c.bid_id).outerjoin(
        MS_T, MS_T.c.grant_id == GRANT_T.c.id
    )
    if evidence:  # the latest submission awaiting review (one at most while evidenced)
        cols += [c.label(f"e_{c.name}") for c in EV_T.c]
        latest = (
            select(func.max(_EV_LATER.c.id))
            .where(_EV_LATER.c.milestone_id == MS_T.c.id, _EV_LATER.c.state == "submitted")
            .scalar_subquery()
        )
        joined = joined.outerjoin(EV_T, EV_T.c.id == latest)
    if money:
        cols += grant_money_columns(GRANT_T.c.id, MS_T.c.id)
    if to_pay:
        cols.append(
            select(func.count())
            .where(
                COND_T.c.grant_id == GRANT_T.c.id,
                COND_T.c.before_payment,
                COND_T.c.state == CONDITION_OPEN,
            )
            .scalar_subquery()
            .label("open_before_payment")
        )
        cols.append(select(func.max(PAY_T.c.id)).scalar_subquery().label("max_payment_id"))
    return RawRows(
        select(*cols)
        .select_from(joined)
        .where(GRANT_T.c.ref == bindparam("ref"))
        .order_by(MS_T.c.seq)
    )


_GRANT_AND_MILESTONES = _grant_read()
_GRANT_TO_REVIEW = _grant_read(money=True, evidence=True)
_GRANT_TO_PAY = _grant_read(money=True, to_pay=True)
_GRANT_TO_CLOSE = _grant_read(money=True)


@dataclass(frozen=True)
class GrantRead:
    """A grant, its milestones in ``seq`` order and the rows they were read from
    (one a milestone, or one with no milestone: the other columns by name)."""

    grant: Any
    milestones: list[Any]
    rows: list[Any]

    def money(self) -> tuple[GrantLedger, dict[int, int]]:
        """The grant's line and what was paid on each milestone (a read with money)."""
        return grant_money_from(
            self.grant.id,
            self.rows[0],
            ((r.m_id, r.money_milestone_paid) for r in self.rows if r.m_id is not None),
        )

    def open_evidence(self, m: Any) -> Any | None:
        """The evidence awaiting review on milestone ``m`` (a read with evidence)."""
        start = _N_GRANT + _N_MS
        for r in self.rows:
            if r.m_id == m.id and r.e_id is not None:
                return _EvidenceRow._make(r[start : start + len(EV_T.c)])
        return None

# the rows a milestone's evidence and payment write, straight to the driver (built once;
# the new evidence's id given back by RETURNING)
_NEW_EVIDENCE = RawStatement(
    insert(EV_T)
    .values(state="submitted", **{c: bindparam(c) for c in (
        "milestone_id", "summary", "files", "submitted_by_id", "submitted_on", "review_note",
    )})
    .returning(EV_T.c.id)
)  # fmt: skip
_NEW_PAYMENT = RawStatement(insert(PAY_T).values({
    c: bindparam(c) for c in ("ref", "grant_id", "milestone_id", "amount_pence",
                              "released_by_id", "released_on", "paid_to_id")
}))  # fmt: skip

# Why a milestone in the wrong state cannot take the step, per trigger.
_ONLY_WHEN = {
    "submit_evidence": "evidence is submitted for a milestone that is planned or whose "
    "evidence was rejected",
    "verify": "only evidence awaiting review can be verified (the milestone must be evidenced)",
    "reject_evidence": "only evidence awaiting review can be rejected (the milestone must be "
    "evidenced)",
    "pay": "a payment is released only after the milestone's evidence has been verified",
    "reprofile": "a milestone paid in full or cancelled cannot be re-profiled",
}


# ---------------------------------------------------------------- loading


def load_grant(uow: UnitOfWork, ref: str) -> Any:
    """The grant's row (all columns, plus its bid's ``title``), or a refusal naming the ref."""
    row = uow.conn.execute(_GRANT_BY_REF, {"ref": ref}).first()
    if row is None:
        raise _no_grant(uow, ref)
    return row


def read_grant(uow: UnitOfWork, ref: str, read: RawRows = _GRANT_AND_MILESTONES) -> GrantRead:
    """:func:`load_grant` and :func:`milestones_of` in one statement (``read``: one of
    the reads above, with what else the command needs), or a refusal naming the ref."""
    rows = read.rows(uow.conn, {"ref": ref})
    if not rows:
        raise _no_grant(uow, ref)
    grant = _GrantRow._make(rows[0][:_N_GRANT])
    if rows[0].m_id is None:
        return GrantRead(grant, [], rows)
    end = _N_GRANT + _N_MS
    return GrantRead(grant, [_MilestoneRow._make(r[_N_GRANT:end]) for r in rows], rows)


def _no_grant(uow: UnitOfWork, ref: str) -> NotFound:
    """The refusal of a grant that does not exist, or that the actor may not see (the same)."""
    return NotFound(f"{uow.command}: grant: no grant {ref!r}", field="grant", item=ref)


def milestones_of(uow: UnitOfWork, grant_id: int) -> list[Any]:
    return list(uow.conn.execute(_MILESTONES, {"grant_id": grant_id}))


def paid_by_milestone(uow: UnitOfWork, grant_id: int) -> dict[int, int]:
    """milestone id -> pence paid on it."""
    return {
        mid: int(total or 0)
        for mid, total in uow.conn.execute(_PAID_BY_MILESTONE, {"grant_id": grant_id})
    }


def load_milestone(
    uow: UnitOfWork, grant: Any, seq: int, rows: list[Any] | None = None
) -> Any:
    """The grant's milestone ``seq`` (from ``rows``, its milestones when already read),
    or a refusal naming the milestones it has."""
    if rows is None:
        rows = milestones_of(uow, grant.id)
    for m in rows:
        if m.seq == seq:
            return m
    have = ", ".join(str(m.seq) for m in rows) or "none (add one with add_milestone)"
    raise NotFound(
        f"{uow.command}: milestone: {grant.ref} has no milestone {seq}; its milestones are: {have}",
        field="milestone",
        item=grant.ref,
    )


def _on(read: GrantRead, m: Any) -> tuple[GrantLedger, int]:
    """The grant's line and what was paid on milestone ``m``, from a read with money."""
    line, paid = read.money()
    return line, paid.get(m.id, 0)


def _label(grant: Any, m: Any) -> str:
    return f"{grant.ref} milestone {m.seq} ({m.outcome})"


def _name(uow: UnitOfWork, person_id: int | None) -> str:
    if person_id is None:
        return "the system"
    for p in uow.directory.people_by_email.values():
        if p.id == person_id:
            return f"{p.name} ({p.email})"
    return f"person #{person_id}"


def _grant_step(uow: UnitOfWork, trigger: str, grant: Any) -> Transition:
    try:
        return uow.fire(GRANT, trigger, grant.state, grant.ref)
    except TransitionRefused as exc:
        raise TransitionRefused(
            f"{uow.command}: grant: {exc.message}", field="grant", item=grant.ref
        ) from None


def _milestone_step(
    uow: UnitOfWork, trigger: str, grant: Any, m: Any, why: str = ""
) -> Transition:
    try:
        return uow.fire(MILESTONE, trigger, m.state, grant.ref)
    except TransitionRefused:
        hint = why or _ONLY_WHEN.get(trigger, "")
        raise TransitionRefused(
            f"{uow.command}: milestone: {_label(grant, m)} is {m.state} "
            f"({MILESTONE.states[m.state]}); {hint}",
            field="milestone",
            item=grant.ref,
        ) from None


def _money(line: GrantLedger) -> str:
    parts = [f"awarded {format_pence(line.awarded_pence)}"]
    if line.released_pence:
        parts.append(f"released {format_pence(line.released_pence)}")
    parts.append(f"paid {format_pence(line.paid_out_pence)}")
    if line.recovered_pence or line.repaid_pence:
        parts.append(f"of which {format_pence(line.recovered_pence + line.repaid_pence)} came back")
    return ", ".join(parts)


def _contacts(uow: UnitOfWork, grant: Any) -> tuple[str, list[tuple[str, str]]]:
    org = uow.directory.orgs_by_id[grant.accountable_body_id]
    return org.name, sponsor_contacts(uow, org)


def _figures(
    uow: UnitOfWork, grant: Any, m: Any, body: str,
    now: tuple[GrantLedger, int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What every grant message carries: the grant, the milestone and the money.
    ``now``: the grant's line and the milestone's paid pence as they stand, when
    the command already knows them (else read)."""
    if now is not None:
        line, paid = now
    else:
        line, paid_on = grant_money(uow.conn, grant.id)
        paid = paid_on.get(m.id, 0)
    return {
        "grant": grant.ref,
        "title": grant.title,
        "body": body,
        "milestone": m.seq,
        "outcome": m.outcome,
        "due_on": m.due_on.isoformat(),
        "milestone_pence": m.payment_pence,
        "milestone_paid_pence": paid,
        "milestone_left_pence": m.payment_pence - paid,
        "awarded_pence": line.awarded_pence,
        "grant_paid_pence": line.paid_pence,
        "grant_unpaid_pence": line.unpaid_pence,
    }


def _check_due(uow: UnitOfWork, grant: Any, due: dt.date, field: str) -> None:
    if due < grant.approved_on:
        raise ValidationError(
            f"{uow.command}: {field}: {due} is before {grant.ref} was approved "
            f"({grant.approved_on}); a milestone falls due during delivery",
            field=field,
        )
    if grant.ends_on is not None and due > grant.ends_on:
        raise ValidationError(
            f"{uow.command}: {field}: {due} is after {grant.ref}'s delivery ends "
            f"({grant.ends_on}); extend the grant first (extend_grant)",
            field=field,
        )


def _check_profile(
    uow: UnitOfWork, grant: Any, amounts: dict[int, int], extra: int = 0, field: str = "amount"
) -> int:
    """Refuse a change that pushes the profile above what the grant can pay in all.

    ``amounts``: new amounts by milestone id; ``extra``: a milestone being added.
    The grant can pay in all what it has paid on its milestones plus what it may
    still pay (unpaid). A change that does not raise the profile is let through
    even if the profile was already above (a grant approved for less than the
    bid's profile). Returns the new profile total."""
    rows = [m for m in milestones_of(uow, grant.id) if m.state != "cancelled"]
    paid = paid_by_milestone(uow, grant.id)
    old_total = sum(m.payment_pence for m in rows)
    new_total: int = sum(amounts.get(m.id, m.payment_pence) for m in rows) + extra
    line = grant_line(uow.conn, grant.id)
    can_pay = sum(paid.get(m.id, 0) for m in rows) + line.unpaid_pence
    if new_total > can_pay and new_total > old_total:
        raise MoneyRuleBroken(
            f"{uow.command}: {field}: the profile would total {format_pence(new_total)} "
            f"(now {format_pence(old_total)}), but {grant.ref} can pay at most "
            f"{format_pence(can_pay)} in all ({_money(line)}; "
            f"{format_pence(line.unpaid_pence)} may still be paid); the milestones may not "
            "add up to more than the grant",
            field=field,
            item=grant.ref,
        )
    return new_total


def _files(args: Args, grant: str) -> list[str]:
    """The ids of files uploaded for ``grant`` (engine/store/files.py): a name or path the
    caller made up, or another grant's file, is refused as a file that does not exist."""
    files = args.items("files")
    out = []
    for i, f in enumerate(files, start=1):
        if not isinstance(f, str) or not f.strip() or len(f) > 300:
            raise ValidationError(
                f"{args.command}: files[{i}]: {f!r} is not a file name (text, at most 300 "
                "characters)",
                field="files",
            )
        out.append(f.strip())
    for i, f in enumerate(out, start=1):
        if not evidence_files.issued_for(grant, f):
            raise NotFound(
                f"{args.command}: files[{i}]: no file {f!r} was uploaded for {grant}; "
                "upload it on the grant's page and give the id it is stored under",
                field="files",
            )
    return out


def _scope(uow: UnitOfWork, grant: Any, what: str) -> None:
    """Another authority's grant is refused as one that does not exist (issue 11)."""
    uow.require_scope(grant.accountable_body_id, what, _no_grant(uow, grant.ref))


def add_months(day: dt.date, months: int) -> dt.date:
    """``months`` later; a month-end stays a month-end (30 June + 6 = 31 December,
    31 August + 6 = 29 February in a leap year)."""
    later = day + relativedelta(months=months)
    if day.day == calendar.monthrange(day.year, day.month)[1]:
        later = later.replace(day=calendar.monthrange(later.year, later.month)[1])
    return later


# ---------------------------------------------------------------- evidence


@command("submit_evidence", summary="Submit evidence that a grant's milestone was achieved")
def submit_evidence(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MILESTONE, "submit_evidence")
    read = read_grant(uow, args.text("grant", max_len=40))
    grant = read.grant
    seq = args.integer("milestone", minimum=1)
    summary = args.text("summary", max_len=8000)
    _scope(uow, grant, "submit evidence")
    files = _files(args, grant.ref)
    args.done()
    _grant_step(uow, "submit_evidence", grant)
    m = load_milestone(uow, grant, seq, read.milestones)
    uow.check_version(grant.ref, m.version, args)
    moved = _milestone_step(uow, "submit_evidence", grant, m)
    state = moved.dest
    evidence_id = int(_NEW_EVIDENCE.execute(uow.conn, {
        "milestone_id": m.id,
        "summary": summary,
        "files": files,
        "submitted_by_id": uow.actor.person_id,
        "submitted_on": uow.today,
        "review_note": "",
    }).fetchone()[0])  # fmt: skip
    uow.update_versioned(Milestone, m.id, m.version, {}, grant.ref, moved)
    uow.record(
        grant.ref,
        {"milestone": seq, "state": m.state},
        {
            "milestone": seq,
            "state": state,
            "evidence": evidence_id,
            "summary": summary,
            "files": files,
        },
    )
    tell_officers(uow, "milestone", grant.ref, f"Evidence for {grant.ref} milestone {seq}", seq=seq)
    return {"grant": grant.ref, "milestone": seq, "state": state, "evidence": evidence_id}


_REVIEW_EVIDENCE = RawStatement(
    EV_T.update()
    .where(EV_T.c.id == bindparam("ev_id"))
    .values({c: bindparam(c) for c in ("state", "reviewed_by_id", "reviewed_on", "review_note")})
)  # built once; straight to the driver


def _review(
    uow: UnitOfWork, args: Args, trigger: str, note_field: str, required: bool
) -> dict[str, Any]:
    uow.authorise(MILESTONE, trigger)
    read = read_grant(uow, args.text("grant", max_len=40), _GRANT_TO_REVIEW)
    grant = read.grant
    seq = args.integer("milestone", minimum=1)
    note = args.text(note_field, required=required, max_len=4000)
    args.done()
    _grant_step(uow, trigger, grant)
    m = load_milestone(uow, grant, seq, read.milestones)
    uow.check_version(grant.ref, m.version, args)
    moved = _milestone_step(uow, trigger, grant, m)
    state = moved.dest
    evidence = read.open_evidence(m)
    if evidence is None:  # evidenced always has a submission; a guard, not a path
        raise ValidationError(
            f"{uow.command}: milestone: {_label(grant, m)} has no evidence awaiting review",
            field="milestone",
        )
    verdict = "verified" if trigger == "verify" else "rejected"
    _REVIEW_EVIDENCE.execute(
        uow.conn,
        {"ev_id": evidence.id, "state": verdict, "reviewed_by_id": uow.actor.person_id,
         "reviewed_on": uow.today, "review_note": note},
    )  # fmt: skip
    values: dict[str, Any] = {}
    if verdict == "verified":
        values.update(verified_by_id=uow.actor.person_id, verified_on=uow.today)
    uow.update_versioned(Milestone, m.id, m.version, values, grant.ref, moved)
    uow.record(
        grant.ref,
        {"milestone": seq, "state": m.state},
        {
            "milestone": seq,
            "state": state,
            "evidence": evidence.id,
            verdict + "_by": uow.actor.label,
        },
        note,
    )
    body, contacts = _contacts(uow, grant)
    context = {
        **_figures(uow, grant, m, body, _on(read, m)),
        "reviewed_by": uow.actor.name,
        "reviewed_on": uow.today.isoformat(),
        "note": note,
        "submitted_on": evidence.submitted_on.isoformat(),
        "evidence_summary": evidence.summary,
    }
    template = f"evidence_{verdict}"
    subject = {
        "verified": f"{grant.ref}: evidence for milestone {seq} verified",
        "rejected": f"{grant.ref}: evidence for milestone {seq} not accepted",
    }[verdict]
    for name, email in contacts:
        uow.notify(
            key=f"{template}:{grant.ref}/{seq}:{evidence.id}:{email}",
            to=email,
            template=template,
            subject=subject,
            context={**context, "name": name},
        )
    return {"grant": grant.ref, "milestone": seq, "state": state, "evidence": evidence.id}


@command("verify_milestone", summary="An officer verifies a milestone's evidence")
def verify_milestone(uow: UnitOfWork, args: Args) -> Result:
    return _review(uow, args, "verify", "note", required=False)


@command("reject_evidence", summary="An officer rejects a milestone's evidence, with the reason")
def reject_evidence(uow: UnitOfWork, args: Args) -> Result:
    return _review(uow, args, "reject_evidence", "reason", required=True)


# ---------------------------------------------------------------- payment


@command(
    "release_payment",
    summary="Release a payment for a verified milestone (not by its verifier)",
)
def release_payment(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MILESTONE, "pay")
    read = read_grant(uow, args.text("grant", max_len=40), _GRANT_TO_PAY)
    grant = read.grant
    seq = args.integer("milestone", minimum=1)
    amount = args.pence("amount", required=False)
    otp = args.text("otp", required=False, max_len=20)
    args.done()
    _grant_step(uow, "pay", grant)
    m = load_milestone(uow, grant, seq, read.milestones)
    uow.check_version(grant.ref, m.version, args)
    who = payee(uow, grant)  # a partnership's accountable body receives it (issue 13)
    # issue 13 item 6: a programme may hold payments while a return is overdue or sent back
    refuse_payment_while_returns_late(uow, grant)
    if m.state == "paid":
        why = "it has been paid in full; nothing is left to pay on it"
    else:
        why = _ONLY_WHEN["pay"]
    _milestone_step(uow, "pay", grant, m, why)
    if m.verified_by_id == uow.actor.person_id:
        raise PermissionDenied(
            f"release_payment: by: {_name(uow, m.verified_by_id)} verified {_label(grant, m)} "
            f"on {m.verified_on}; four eyes: the payment must be released by someone other "
            "than the verifier (another officer, or finance)",
            field="by",
            item=grant.ref,
        )
    # no payment before the offer (and any variation of this milestone) is accepted (issue 16)
    payment_refusal(uow, grant, seq, "grant")
    # the approval's conditions before first payment (read only when one is open)
    condition_refusal(uow, grant, "grant", any_open=read.rows[0].open_before_payment > 0)
    check_second_factor(uow, pot_programme(uow, grant.pot_id), "release_payment", otp)
    line, paid = _on(read, m)
    left = m.payment_pence - paid
    if amount is None:
        amount = left
        if amount <= 0:
            raise MoneyRuleBroken(
                f"release_payment: milestone: nothing is left to pay on {_label(grant, m)} "
                f"(its amount is {format_pence(m.payment_pence)}, {format_pence(paid)} paid)",
                field="milestone",
                item=grant.ref,
            )
    if amount > left:
        raise MoneyRuleBroken(
            f"release_payment: amount: {format_pence(amount)} is more than is left to pay on "
            f"{_label(grant, m)}: its amount is {format_pence(m.payment_pence)} and "
            f"{format_pence(paid)} has been paid, so at most {format_pence(left)}",
            field="amount",
            item=grant.ref,
        )
    if amount > line.unpaid_pence:
        raise MoneyRuleBroken(
            f"release_payment: amount: {format_pence(amount)} is more than remains of "
            f"{grant.ref}: {_money(line)}, so at most {format_pence(line.unpaid_pence)} "
            "may still be paid",
            field="amount",
            item=grant.ref,
        )
    conn = uow.conn
    full = paid + amount == m.payment_pence
    moved = uow.fire(MILESTONE, "pay" if full else "pay_part", m.state, grant.ref)
    state = moved.dest
    pay_ref = ref_after("payment", read.rows[0].max_payment_id)  # read with the grant
    _NEW_PAYMENT.execute(conn, {
        "ref": pay_ref,
        "grant_id": grant.id,
        "milestone_id": m.id,
        "amount_pence": amount,
        "released_by_id": uow.actor.person_id,
        "released_on": uow.today,
        "paid_to_id": who.body_id,
    })  # fmt: skip
    uow.book(grant.pot_id, MovementKind.PAY, amount, uow.today, pay_ref, grant.id,
             f"{grant.ref} milestone {m.seq}: {m.outcome}"[:500])
    uow.update_versioned(Milestone, m.id, m.version, {}, grant.ref, moved)
    uow.record(
        grant.ref,
        {
            "milestone": seq,
            "state": m.state,
            "milestone_paid_pence": paid,
            "grant_paid_pence": line.paid_pence,
        },
        {
            "milestone": seq,
            "state": state,
            "payment": pay_ref,
            "amount_pence": amount,
            "milestone_paid_pence": paid + amount,
            "grant_paid_pence": line.paid_pence + amount,
            **({"paid_to": who.body} if who.partnership else {}),
        },
    )
    body, contacts = _contacts(uow, grant)
    if who.partnership and who.body_id is not None:  # the accountable body receipts it
        contacts += sponsor_contacts(uow, uow.directory.orgs_by_id[who.body_id])
    context = {
        # the money as it stands now: this payment is one more pay movement
        **_figures(uow, grant, m, body,
                   (replace(line, paid_out_pence=line.paid_out_pence + amount), paid + amount)),
        "payment": pay_ref,
        "amount_pence": amount,
        "released_on": uow.today.isoformat(),
        "part": not full,
        "paid_to": who.body if who.partnership else None,
    }
    for name, email in contacts:
        uow.notify(
            key=f"payment_released:{pay_ref}:{email}",
            to=email,
            template="payment_released",
            subject=f"{grant.ref}: payment {pay_ref} of {format_pence(amount)} released",
            context={**context, "name": name},
        )
    return {
        "payment": pay_ref,
        "grant": grant.ref,
        "milestone": seq,
        "amount_pence": amount,
        "state": state,
        "milestone_paid_pence": paid + amount,
        "milestone_left_pence": left - amount,
        "grant_paid_pence": line.paid_pence + amount,
        "grant_unpaid_pence": line.unpaid_pence - amount,
        **({"paid_to": who.body} if who.partnership else {}),
    }


# ---------------------------------------------------------------- changes


def _change(
    uow: UnitOfWork,
    grant: Any,
    kind: str,
    approved_by: str,
    reason: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> int:
    return inserted_id(uow.conn.execute(
        insert(GrantChange).values(
            grant_id=grant.id,
            kind=kind,
            approved_by=approved_by,
            approved_on=uow.today,
            reason=reason,
            before=before,
            after=after,
            recorded_by_id=uow.actor.person_id,
        )
    ))


def _line_json(m: Any) -> dict[str, Any]:
    return {
        "milestone": m.seq,
        "outcome": m.outcome,
        "due_on": m.due_on.isoformat(),
        "payment_pence": m.payment_pence,
    }


def _variation_words(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a re-profile changed, for its variation letter."""
    said = {"outcome": "outcome", "due_on": "due", "payment_pence": "payment"}
    parts = []
    for key, word in said.items():
        if before[key] != after[key]:
            old, new = before[key], after[key]
            if key == "payment_pence":
                old, new = format_pence(old), format_pence(new)
            parts.append(f"{word} {old} → {new}")
    return f"milestone {before['milestone']} re-profiled: " + "; ".join(parts)


@command(
    "reprofile_milestone",
    summary="Re-profile a milestone (due date, amount, outcome) with the approval recorded",
)
def reprofile_milestone(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MILESTONE, "reprofile")
    grant = load_grant(uow, args.text("grant", max_len=40))
    seq = args.integer("milestone", minimum=1)
    due = args.date("due", required=False)
    amount = args.pence("amount", required=False, allow_zero=True)
    outcome = args.text("outcome", required=False, max_len=1000) or None
    approved_by = args.text("approved_by", max_len=300)
    reason = args.text("reason", required=False, max_len=4000)
    args.done()
    _grant_step(uow, "reprofile", grant)
    m = load_milestone(uow, grant, seq)
    uow.check_version(grant.ref, m.version, args)
    _milestone_step(uow, "reprofile", grant, m)
    values: dict[str, Any] = {}
    if due is not None and due != m.due_on:
        _check_due(uow, grant, due, "due")
        values["due_on"] = due
    if outcome is not None and outcome != m.outcome:
        values["outcome"] = outcome
    paid = paid_by_milestone(uow, grant.id).get(m.id, 0)
    total = None
    if amount is not None and amount != m.payment_pence:
        if amount < paid:
            raise MoneyRuleBroken(
                f"reprofile_milestone: amount: {format_pence(amount)} is less than the "
                f"{format_pence(paid)} already paid on {_label(grant, m)}",
                field="amount",
                item=grant.ref,
            )
        total = _check_profile(uow, grant, {m.id: amount})
        values["payment_pence"] = amount
    if not values:
        raise ValidationError(
            f"reprofile_milestone: nothing to change: give due, amount or outcome different "
            f"from {_label(grant, m)}'s (due {m.due_on}, amount "
            f"{format_pence(m.payment_pence)})",
            field="due",
        )
    state = m.state
    moved = None
    if m.state in PAYABLE and paid >= values.get("payment_pence", m.payment_pence):
        moved = uow.fire(MILESTONE, "settle", m.state, grant.ref)  # nothing more is owed
        state = moved.dest
    before = _line_json(m)
    after = {
        **before,
        "outcome": values.get("outcome", m.outcome),
        "due_on": values.get("due_on", m.due_on).isoformat(),
        "payment_pence": values.get("payment_pence", m.payment_pence),
    }
    change_id = _change(uow, grant, "reprofile", approved_by, reason, before, after)
    uow.update_versioned(Milestone, m.id, m.version, values, grant.ref, moved)
    uow.record(
        grant.ref,
        {**before, "state": m.state},
        {**after, "state": state, "approved_by": approved_by, "change": change_id},
        reason,
    )
    letter = issue_letter(uow, grant.id, grant.ref, [seq], [_variation_words(before, after)])
    out = {
        "grant": grant.ref,
        "milestone": seq,
        "state": state,
        "change": change_id,
        "before": before,
        "after": after,
        "offer": letter["ref"],
    }
    if total is not None:
        out["profile_pence"] = total
    return out


@command(
    "add_milestone",
    summary="Add a milestone to a grant's profile (e.g. one made without a profile)",
)
def add_milestone(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(GRANT, "reprofile")
    grant = load_grant(uow, args.text("grant", max_len=40))
    outcome = args.text("outcome", max_len=1000)
    due = args.date("due")
    amount = args.pence("amount")
    approved_by = args.text("approved_by", max_len=300)
    reason = args.text("reason", required=False, max_len=4000)
    args.done()
    _grant_step(uow, "reprofile", grant)
    uow.check_version(grant.ref, grant.version, args)
    _check_due(uow, grant, due, "due")
    total = _check_profile(uow, grant, {}, extra=amount)
    conn = uow.conn
    seq = (
        conn.execute(
            select(func.max(Milestone.seq)).where(Milestone.bid_id == grant.bid_id)
        ).scalar()
        or 0
    ) + 1
    planned = uow.fire(MILESTONE, "plan", "new", grant.ref)
    conn.execute(
        insert(Milestone).values(
            bid_id=grant.bid_id,
            grant_id=grant.id,
            seq=seq,
            outcome=outcome,
            due_on=due,
            payment_pence=amount,
            state=planned.dest,
            version=1,
        )
    )
    after = {
        "milestone": seq,
        "outcome": outcome,
        "due_on": due.isoformat(),
        "payment_pence": amount,
    }
    change_id = _change(uow, grant, "reprofile", approved_by, reason, {}, after)
    uow.record(
        grant.ref,
        {},
        {**after, "approved_by": approved_by, "change": change_id, "profile_pence": total},
        reason,
    )
    letter = issue_letter(uow, grant.id, grant.ref, [seq], [
        f"milestone {seq} added: {outcome}, due {due.isoformat()}, {format_pence(amount)}"])
    return {
        "grant": grant.ref,
        "milestone": seq,
        "state": planned.dest,
        "change": change_id,
        "profile_pence": total,
        "offer": letter["ref"],
    }


@command("extend_grant", summary="Extend a grant's delivery (by months or to a date)")
def extend_grant(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(GRANT, "extend")
    grant = load_grant(uow, args.text("grant", max_len=40))
    months = args.integer("months", required=False, minimum=1)
    until = args.date("until", required=False)
    approved_by = args.text("approved_by", max_len=300)
    reason = args.text("reason", required=False, max_len=4000)
    args.done()
    if (months is None) == (until is None):
        raise ValidationError(
            "extend_grant: months: give either months (e.g. 6) or until (a date), not "
            + ("both" if months is not None else "neither"),
            field="months",
        )
    _grant_step(uow, "extend", grant)
    uow.check_version(grant.ref, grant.version, args)
    if grant.ends_on is not None:
        base, base_is = grant.ends_on, "its end date"
    else:
        dues = [m.due_on for m in milestones_of(uow, grant.id) if m.state != "cancelled"]
        if dues:
            base, base_is = max(dues), "its last milestone's due date (it had no end date)"
        else:
            base, base_is = grant.approved_on, "its approval date (no end date, no milestones)"
    if months is not None:
        new_end = add_months(base, months)
    elif until is not None:
        new_end = until
    else:  # cannot happen: refused above (neither months nor until)
        raise AssertionError("extend_grant: months or until")
    if new_end <= base:
        raise ValidationError(
            f"extend_grant: until: {new_end} is not later than {grant.ref}'s delivery end "
            f"({base}, {base_is}); an extension must move it later",
            field="until",
        )
    before = {
        "ends_on": grant.ends_on.isoformat() if grant.ends_on else None,
        "extended_from": base.isoformat(),
        "from": base_is,
    }
    after = {"ends_on": new_end.isoformat(), "months": months}
    change_id = _change(uow, grant, "extend", approved_by, reason, before, after)
    uow.update_versioned(Grant, grant.id, grant.version, {"ends_on": new_end}, grant.ref)
    uow.record(
        grant.ref, before, {**after, "approved_by": approved_by, "change": change_id}, reason
    )
    letter = issue_letter(uow, grant.id, grant.ref, [], [
        f"delivery extended from {base.isoformat()} to {new_end.isoformat()}"])
    return {
        "grant": grant.ref,
        "ends_on": new_end.isoformat(),
        "extended_from": base.isoformat(),
        "from": base_is,
        "change": change_id,
        "offer": letter["ref"],
    }


# ---------------------------------------------------------------- closure


@command("close_grant", summary="Close a grant: release unspent money to its pot")
def close_grant(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(GRANT, "close")
    read = read_grant(uow, args.text("grant", max_len=40), _GRANT_TO_CLOSE)
    grant, rows = read.grant, read.milestones
    reason = args.text("reason", max_len=4000)
    args.done()
    closing = _grant_step(uow, "close", grant)
    state = closing.dest
    uow.check_version(grant.ref, grant.version, args)
    line, paid = read.money()  # closing moves no money until the release
    blockers = []
    for m in rows:
        left = m.payment_pence - paid.get(m.id, 0)
        if m.state == "evidenced":
            blockers.append(
                f"milestone {m.seq} ({m.outcome}) has evidence awaiting review: verify it or "
                "reject it"
            )
        elif m.state in PAYABLE and left > 0:
            blockers.append(
                f"milestone {m.seq} ({m.outcome}) is verified and {format_pence(left)} of it is "
                "unpaid: release the payment, or re-profile its amount down to what was paid "
                "(with the approval)"
            )
    if blockers:
        raise TransitionRefused(
            f"close_grant: grant: {grant.ref} cannot close yet: " + "; ".join(blockers),
            field="grant",
            item=grant.ref,
        )
    cancelled, settled = [], []
    for m in rows:
        if m.state in ("planned", "evidence_rejected"):
            new = uow.fire(MILESTONE, "cancel", m.state, grant.ref)
            cancelled.append(m.seq)
        elif m.state in PAYABLE:  # verified, nothing left to pay (a £0 line)
            new = uow.fire(MILESTONE, "settle", m.state, grant.ref)
            settled.append(m.seq)
        else:
            continue
        uow.update_versioned(Milestone, m.id, m.version, {}, grant.ref, new)
    release = line.unpaid_pence
    if release > 0:
        uow.book(grant.pot_id, MovementKind.RELEASE, release, uow.today, grant.ref, grant.id,
                 f"{grant.ref} closed: unspent commitment released")
    uow.update_versioned(
        Grant, grant.id, grant.version, {"closed_on": uow.today}, grant.ref, closing
    )
    uow.record(
        grant.ref,
        {"state": grant.state, "unpaid_pence": release, "paid_pence": line.paid_pence},
        {
            "state": state,
            "closed_on": uow.today,
            "released_pence": release,
            "cancelled_milestones": cancelled,
            "settled_milestones": settled,
        },
        reason,
    )
    named = next(p for p in uow.directory.pots if p.id == grant.pot_id)
    pot = pot_line_named(uow.conn, grant.pot_id, named.name, named.programme)
    return {
        "grant": grant.ref,
        "state": state,
        "released_pence": release,
        "paid_pence": line.paid_pence,
        "cancelled_milestones": cancelled,
        "pot": pot.name,
        "pot_available_pence": pot.available_pence,
    }
