"""Delegated decisions: funding approved between Board meetings by the Chair
and Vice Chairs under the scheme of delegation, then reported to the Board.

    request_delegated_decision (officer) -> awaiting_signatures
    sign (a signatory of the scheme's route) -> awaiting_signatures | approved | declined;
        after approval, until reported: a concurrence (approved)
    stand_aside (a signatory with an interest) -> excused, recorded; may decide it
    record_absence (a signatory, for another) -> recorded absent; a deputy may stand in
    adopt_scheme (director) -> a programme's own scheme of delegation
    expire_delegated_decisions (system / officer) -> expired
    endorse (at a meeting) -> endorsed
    close_meeting notes the declined ones that were on its agenda (reported)

The scheme (rules/delegation.yaml, rules/delegation.py; or the one the
programme adopted; or the file the request names) is stored as it was when
the request was made (rule_set_version, with the route in
delegated_decision.scheme_route) and every signature is judged by that
version and route. Each refusal of a signature names the rule that refused.
Approval commits the money and makes the grant through
engine.commands.awards.commit_grant, re-checking the limits and the pot's
balance at that moment; a declined or expired request commits nothing.

The read side (the "Delegated decisions" board paper, the items list, the
stored scheme) is engine/read/delegation.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.engine import Connection
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.awards import commit_grant
from engine.commands.conditions import Condition, read_conditions
from engine.commands.handlers.allocations import unscored_decision
from engine.commands.handlers.intake import sponsor_contacts
from engine.commands.handlers.programme import find_pot, find_programme
from engine.commands.lookups import load_meeting
from engine.commands.registry import Result, command
from engine.commands.second_factor import check_second_factor, pot_programme
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.clock import local_date
from engine.domain.errors import (
    MoneyRuleBroken,
    NotFound,
    PermissionDenied,
    TransitionRefused,
    ValidationError,
)
from engine.domain.money import format_pence
from engine.domain.words import SIGNATURE_WORDS
from engine.read.delegation import APPROVED, stored_scheme
from engine.store.directory import PersonRow
from engine.store.ledger import pot_line
from engine.store.links import SIGN_LINK_DAYS, SIGN_PURPOSE, base_url, link_secret, make_link_token
from engine.store.models import (
    Bid,
    Decision,
    DelegatedDecision,
    Interest,
    Meeting,
    Pot,
    Programme,
    RuleSetVersion,
    Signature,
)
from engine.store.refs import next_ref, ref_for
from rules.delegation import (
    ABSENT,
    STOOD_ASIDE,
    Evaluation,
    Scheme,
    SchemeError,
    Signer,
    load_book,
    load_scheme,
    scheme_from_body,
)
from rules.guards import SchemeJudgement, judge
from workflows.base import Transition
from workflows.bid import AWAITING_DECISION, BID, UNSCORED_FROM
from workflows.delegated import DELEGATED, OPEN

DD_T = DelegatedDecision.__table__
BID_T = Bid.__table__
UNDECIDED = ("submitted", *AWAITING_DECISION)
_DD_BY_REF = select(DD_T).where(DD_T.c.ref == bindparam("ref"))


# ------------------------------------------------------------------ helpers


def load_dd(uow: UnitOfWork, ref: str, field: str = "item", what: str = "") -> Any:
    row = uow.conn.execute(_DD_BY_REF, {"ref": ref}).first()
    if row is None:
        raise NotFound(
            f"{uow.command}: {field}: no delegated decision {ref!r}{what}", field=field, item=ref
        )
    return row


def _store_scheme(uow: UnitOfWork, scheme: Scheme) -> int:
    """The stored copy of this scheme version (added the first time it is used)."""
    t = RuleSetVersion.__table__
    row = uow.conn.execute(
        select(t.c.id, t.c.sha256).where(t.c.name == scheme.name, t.c.version == scheme.version)
    ).first()
    if row is not None:
        if row.sha256 != scheme.sha256:
            raise ValidationError(
                f"{uow.command}: scheme: {scheme.source} says {scheme.name} version "
                f"{scheme.version} but its content differs from the {scheme.name} "
                f"{scheme.version} already used; give it a new version",
                field="scheme",
            )
        return int(row.id)
    return inserted_id(
        uow.conn.execute(
            insert(RuleSetVersion).values(
                name=scheme.name,
                version=scheme.version,
                sha256=scheme.sha256,
                body=scheme.text,
                loaded_at=uow.now,
            )
        )
    )


def _people_by_id(uow: UnitOfWork) -> dict[int, PersonRow]:
    return {p.id: p for p in uow.directory.people_by_email.values()}


def _conflicts(conn: Connection, refs: list[str]) -> dict[int, tuple[str, str]]:
    """person id -> (item ref, nature) of a declared interest in any of ``refs``."""
    out: dict[int, tuple[str, str]] = {}
    for pid, item, nature in conn.execute(
        select(col(Interest.person_id), col(Interest.item_ref), col(Interest.nature))
        .where(col(Interest.item_ref).in_(refs))
        .order_by(col(Interest.id))
    ):
        out.setdefault(pid, (item, nature))
    return out


def _signatures(conn: Connection, dd_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(Signature.__table__)
            .where(col(Signature.delegated_decision_id) == dd_id)
            .order_by(col(Signature.id))
        )
    )


def evaluate(uow: UnitOfWork, scheme: Scheme, dd: Any, bid_ref: str | None) -> Evaluation:
    """The scheme's judgement on this request's signatures as they stand: every
    active signatory (by the role they count under) and everyone who signed."""
    people = _people_by_id(uow)
    signed = {s.person_id: s.decision for s in _signatures(uow.conn, dd.id)}
    conflicted = _conflicts(uow.conn, [dd.ref] + ([bid_ref] if bid_ref else []))
    signers = []
    ids = {p.id for p in people.values() if p.active and scheme.counts(p.email, p.roles)}
    for pid in sorted(ids | set(signed)):
        p = people[pid]
        signers.append(_signer(scheme, p, signed.get(pid), pid in conflicted))
    return scheme.evaluate(signers)


def _signer(scheme: Scheme, p: PersonRow, decision: str | None, conflicted: bool) -> Signer:
    return Signer(
        p.name,
        scheme.counting_role(p.roles) if scheme.first_form else scheme.counts(p.email, p.roles),
        decision,
        conflicted,
        email=p.email,
        roles=p.roles,
    )


def _rules_named(scheme: Scheme, p: PersonRow) -> str:
    """The rules of the scheme that count this person, as a refusal names them."""
    rules = scheme.rules_for(_signer(scheme, p, None, False))
    named = " and ".join(r.rule for r in rules) or "its rules"
    return f"{named} of {scheme}"


def _approved_in_period(
    conn: Connection,
    programme_id: int,
    scheme: Scheme,
    start: dt.date,
    end: dt.date,
    exclude_id: int | None,
) -> int:
    """Delegated approvals of the programme's pots decided between start and end
    under this scheme (any version of its name) and route: limits are counted per
    scheme and route (a request of the scheme's first form, route "", counts under
    its default route)."""
    rsv = RuleSetVersion.__table__
    routes = (scheme.route, "") if scheme.route == scheme.default_route else (scheme.route,)
    q = (
        select(func.coalesce(func.sum(DD_T.c.amount_pence), 0))
        .join(Pot.__table__, Pot.__table__.c.id == DD_T.c.pot_id)
        .join(rsv, rsv.c.id == DD_T.c.rule_set_version_id)
        .where(
            Pot.__table__.c.programme_id == programme_id,
            rsv.c.name == scheme.name,
            DD_T.c.scheme_route.in_(routes),
            DD_T.c.state.in_(APPROVED),
            DD_T.c.decided_on >= start,
            DD_T.c.decided_on <= end,
        )
    )
    if exclude_id is not None:
        q = q.where(DD_T.c.id != exclude_id)
    return int(conn.execute(q).scalar() or 0)


def _check_limits(
    uow: UnitOfWork,
    scheme: Scheme,
    amount: int,
    pot_name: str,
    programme_id: int,
    exclude_id: int | None,
    what: str,
) -> None:
    """The scheme's limits on one amount from one pot, judged today; refuses naming the limit."""
    cmd = uow.command
    ok, why = scheme.check_pot(pot_name)
    if not ok:
        raise ValidationError(f"{cmd}: pot: {why}", field="pot")
    ok, why = scheme.check_amount(amount)
    if not ok:
        raise MoneyRuleBroken(f"{cmd}: amount: {what}{why}", field="amount")
    period = scheme.period_of(uow.today)
    if period is not None:
        so_far = _approved_in_period(
            uow.conn, programme_id, scheme, period.start, period.end, exclude_id
        )
        ok, why = scheme.check_period(so_far, amount, uow.today)
        if not ok:
            raise MoneyRuleBroken(f"{cmd}: amount: {what}{why}", field="amount")


def _bid_by_id(conn: Connection, bid_id: int) -> Any:
    return conn.execute(select(BID_T).where(BID_T.c.id == bid_id)).first()


def _context(uow: UnitOfWork, dd: Any, bid: Any, scheme: Scheme) -> dict[str, Any]:
    pot = next(p for p in uow.directory.pots if p.id == dd.pot_id)
    requester = _people_by_id(uow).get(dd.requested_by_id)
    return {
        "ref": dd.ref,
        "title": dd.title,
        "bid": bid.ref if bid is not None else None,
        "sponsor": uow.directory.orgs_by_id[bid.sponsor_id].name if bid is not None else "",
        "amount_pence": dd.amount_pence,
        "pot": pot.name,
        "pot_balance_pence": dd.pot_balance_pence,
        "reasons": dd.reasons,
        "alternatives": dd.alternatives,
        "requested_by": requester.name if requester else "",
        "requested_on": dd.requested_on.isoformat(),
        "expires_on": dd.expires_on.isoformat() if dd.expires_on else "",
        "scheme": str(scheme),
        "requires": scheme.describe(),
        "conditions": [c.words() for c in _conditions_of(dd)],
    }


def _conditions_of(dd: Any) -> list[Condition]:
    """The conditions a delegated request asks the approval to carry (none: [])."""
    return [Condition.from_json(c) for c in dd.conditions or []]


DECISION_WORDS = SIGNATURE_WORDS


def _tell_requester(
    uow: UnitOfWork, dd: Any, bid: Any, scheme: Scheme, outcome: str, extra: dict[str, Any]
) -> None:
    requester = _people_by_id(uow).get(dd.requested_by_id)
    if requester is None or not requester.active:
        return
    words = {"approved": "approved", "declined": "declined", "expired": "expired"}[outcome]
    uow.notify(
        key=f"delegated_decision_outcome:{dd.ref}:{requester.email}",
        to=requester.email,
        template="delegated_decision_outcome",
        subject=f"Delegated decision {dd.ref} {words}: {dd.title}",
        context={
            **_context(uow, dd, bid, scheme),
            "name": requester.name,
            "outcome": outcome,
            **extra,
        },
    )


def _signature_rows(uow: UnitOfWork, dd_id: int, scheme: Scheme) -> list[dict[str, Any]]:
    people = _people_by_id(uow)
    out = []
    for s in _signatures(uow.conn, dd_id):
        p = people.get(s.person_id)
        out.append(
            {
                "name": p.name if p else str(s.person_id),
                "role": scheme.label_of(scheme.counts(p.email, p.roles)) if p else "",
                "decision": s.decision,
                "interest_declared": s.interest_declared,
                "reason": s.reason,
                "signed_on": local_date(s.signed_at).isoformat(),
            }
        )
    return out


# ------------------------------------------------------------------ request


@command(
    "request_delegated_decision",
    summary="Ask the signatories of a scheme's route to approve funding for a bid",
)
def request_delegated_decision(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(DELEGATED, "request")
    bid_ref = args.text("bid", max_len=40)
    amount = args.pence("amount", required=False)
    pot_name = args.text("pot", required=False, max_len=200)
    reasons = args.text("reasons", max_len=4000)
    alternatives = args.text("alternatives", max_len=4000)
    title = args.text("title", required=False, max_len=200)
    scheme_arg = args.text("scheme", required=False, max_len=1000)
    route_arg = args.text("route", required=False, max_len=40)
    ref = args.text("ref", required=False, max_len=40)
    conditions = read_conditions(uow.command, args.raw("conditions"))
    args.done()
    cmd = uow.command
    if uow.actor.person_id is None:
        raise PermissionDenied(
            f"{cmd}: a delegated decision is requested by a named officer, not by {uow.actor.label}"
        )
    try:  # a named file now; otherwise the programme's (once the pot says which)
        chosen = load_scheme(scheme_arg, route_arg or None) if scheme_arg else None
    except SchemeError as exc:
        raise ValidationError(f"{cmd}: scheme: {exc.message}", field="scheme") from None
    conn = uow.conn
    bid = conn.execute(select(BID_T).where(BID_T.c.ref == bid_ref)).first()
    if bid is None:
        raise NotFound(f"{cmd}: bid: no bid {bid_ref!r}", field="bid", item=bid_ref)
    if bid.state not in UNDECIDED:
        raise TransitionRefused(
            f"{cmd}: bid: {bid.ref} is {bid.state}; a delegated decision is only for a bid "
            f"awaiting a decision ({', '.join(UNDECIDED)})",
            item=bid.ref,
        )
    if bid.state in UNSCORED_FROM:  # not scored: only if no round requires it (an allocation)
        refusal = judge("may_decide_unscored", unscored_decision(uow, bid))
        if refusal is not None:
            raise refusal
    open_dd = conn.execute(
        select(DD_T).where(DD_T.c.bid_id == bid.id, DD_T.c.state == OPEN)
    ).first()
    if open_dd is not None and open_dd.expires_on is not None and open_dd.expires_on < uow.today:
        _expire(uow, open_dd)  # lapsed, and the daily sweep has not run yet: it expires now
        open_dd = None
    if open_dd is not None:
        raise ValidationError(
            f"{cmd}: bid: {bid.ref} already has an open request, {open_dd.ref} (awaiting "
            f"signatures until {open_dd.expires_on}); only one at a time",
            field="bid",
        )
    if amount is None:
        amount = bid.grant_requested_pence
    elif amount > bid.grant_requested_pence:
        raise ValidationError(
            f"{cmd}: amount: {format_pence(amount)} is more than the "
            f"{format_pence(bid.grant_requested_pence)} {bid.ref} requested",
            field="amount",
        )
    bid_pot = next((p for p in uow.directory.pots if p.id == bid.pot_id), None)
    if pot_name:
        pot = find_pot(uow, pot_name, bid_pot.programme_id if bid_pot else None)
    elif bid_pot is not None:
        pot = bid_pot
    else:
        raise ValidationError(
            f"{cmd}: pot: {bid.ref} names no pot; say which pot the money comes from",
            field="pot",
        )
    scheme = chosen or programme_scheme(uow, pot.programme_id, route_arg or None)
    what = f"{bid.ref}: "
    _check_limits(uow, scheme, amount, pot.name, pot.programme_id, None, what)
    line = pot_line(conn, pot.id)
    if amount > line.available_pence:
        raise MoneyRuleBroken(
            f"{cmd}: amount: {format_pence(amount)} is more than the {pot.name} pot has "
            f"available: {format_pence(line.available_pence)} (allocated "
            f"{format_pence(line.allocated_pence)}, committed "
            f"{format_pence(line.committed_pence)})",
            field="amount",
        )
    ref = ref_for(conn, DelegatedDecision, "delegated_decision", ref, cmd)
    created = uow.fire(DELEGATED, "request", "new", ref)
    state = created.dest
    scheme_id = _store_scheme(uow, scheme)
    title = title or bid.title
    expires_on = scheme.expires_on(uow.today)
    dd_id = inserted_id(
        conn.execute(
            insert(DelegatedDecision).values(
                ref=ref,
                title=title,
                bid_id=bid.id,
                pot_id=pot.id,
                amount_pence=amount,
                pot_balance_pence=line.available_pence,
                reasons=reasons,
                alternatives=alternatives,
                rule_set_version_id=scheme_id,
                scheme_route=scheme.route,
                state=created.dest,
                requested_by_id=uow.actor.person_id,
                requested_on=uow.today,
                expires_on=expires_on,
                conditions=[c.as_json() for c in conditions] or None,
                version=1,
            )
        )
    )
    dd = conn.execute(select(DD_T).where(DD_T.c.id == dd_id)).first()
    judged = evaluate(uow, scheme, dd, bid.ref)
    if judged.outcome == "declined":
        raise ValidationError(
            f"{cmd}: nobody could approve this under {scheme}: it needs {scheme.describe()}; "
            f"{judged.why}",
            field="bid",
        )
    uow.record(
        ref,
        {},
        {
            "state": state,
            "bid": bid.ref,
            "title": title,
            "amount_pence": amount,
            "pot": pot.name,
            "pot_balance_pence": line.available_pence,
            "alternatives": alternatives,
            "scheme": str(scheme),
            "route": scheme.route,
            "expires_on": expires_on,
            **({"conditions": [c.words() for c in conditions]} if conditions else {}),
        },
        reasons,
    )
    context = _context(uow, dd, bid, scheme)
    signatories = [
        p
        for p in uow.directory.people_by_email.values()
        if p.active and scheme.counts(p.email, p.roles)
    ]
    secret = link_secret(conn) if signatories else ""
    link_expires = uow.now + dt.timedelta(days=SIGN_LINK_DAYS)
    for p in signatories:
        token = make_link_token(secret, SIGN_PURPOSE, ref, p.email, link_expires)
        uow.notify(
            key=f"delegated_signature_request:{ref}:{p.email}",
            to=p.email,
            template="delegated_signature_request",
            subject=f"Delegated decision {ref}: your signature is asked — {title} "
            f"({format_pence(amount)})",
            context={
                **context,
                "name": p.name,
                "email": p.email,
                "role": scheme.label_of(scheme.counts(p.email, p.roles)),
                "sign_url": f"{base_url()}/delegated/{ref}/sign?t={token}",
                "sign_url_expires": local_date(link_expires).isoformat(),
            },
        )
    return {
        "ref": ref,
        "state": state,
        "bid": bid.ref,
        "amount_pence": amount,
        "pot": pot.name,
        "pot_balance_pence": line.available_pence,
        "expires_on": expires_on.isoformat(),
        "scheme": str(scheme),
        "route": scheme.route,
        "requires": scheme.describe(),
        "signatories": sorted(p.name for p in signatories),
        **({"conditions": len(conditions)} if conditions else {}),
    }


def programme_scheme(uow: UnitOfWork, programme_id: int, route: str | None) -> Scheme:
    """The route of the scheme the programme adopted (adopt_scheme), as stored;
    rules/delegation.yaml when it adopted none."""
    t = Programme.__table__
    rsv = RuleSetVersion.__table__
    row = uow.conn.execute(
        select(rsv.c.name, rsv.c.version, rsv.c.body)
        .join(t, t.c.delegation_scheme_id == rsv.c.id)
        .where(t.c.id == programme_id)
    ).first()
    try:
        if row is None:
            return load_scheme(None, route)
        return scheme_from_body(row.body, f"{row.name} {row.version} (adopted)", route)
    except SchemeError as exc:
        raise ValidationError(f"{uow.command}: route: {exc.message}", field="route") from None


# ------------------------------------------------------------------ sign


@command(
    "sign",
    summary="A signatory of the scheme approves or declines a delegated decision; after "
    "approval, until it is reported, an approval is recorded as a concurrence",
)
def sign(uow: UnitOfWork, args: Args) -> Result:
    ref = args.text("item", max_len=40)
    decision = args.choice("decision", ("approve", "decline"))
    interest = args.text("interest", required=False, max_len=1000)
    reason = args.text("reason", required=False, max_len=4000)
    otp = args.text("otp", required=False, max_len=20)
    args.done()
    cmd = uow.command
    conn = uow.conn
    dd = load_dd(uow, ref)
    uow.check_version(dd.ref, dd.version, args)
    scheme = stored_scheme(conn, dd.rule_set_version_id, dd.scheme_route)
    me = _signatory(uow, dd, scheme)
    bid = _bid_by_id(conn, dd.bid_id) if dd.bid_id is not None else None
    conflict = _conflicts(conn, [dd.ref] + ([bid.ref] if bid is not None else [])).get(me.id)
    if conflict is not None and not scheme.first_form:
        raise ValidationError(
            f"{cmd}: decision: {me.name} declared an interest in {conflict[0]} ({conflict[1]}) "
            f"and stands aside from {dd.ref}: under {_rules_named(scheme, me)} a signatory "
            "with an interest does not sign (the record shows the interest)",
            field="decision",
        )
    _signed_once(uow, dd, me)
    if dd.state == "approved" and dd.reported_meeting_id is None:
        return _concur(uow, dd, bid, scheme, me, decision, conflict, interest, otp)
    _still_open(uow, dd)
    check_second_factor(uow, pot_programme(uow, dd.pot_id), "sign", otp)
    if interest and decision == "approve":
        raise ValidationError(
            f"{cmd}: decision: {me.name} declares an interest in {dd.ref} and so cannot approve "
            "it; sign decision: decline with the interest"
            + ("" if scheme.first_form else ", or stand_aside"),
            field="decision",
        )
    if conflict is not None and decision == "approve":
        raise ValidationError(
            f"{cmd}: decision: {me.name} declared an interest in {conflict[0]} "
            f"({conflict[1]}) and cannot approve {dd.ref}; they may decline it",
            field="decision",
        )
    if decision == "decline" and not reason:
        if not interest:
            raise ValidationError(
                f"{cmd}: reason: say why you decline {dd.ref} (it goes on the published record)",
                field="reason",
            )
        reason = f"declared an interest: {interest}"
    if interest:
        _declare(uow, dd, me, interest)
    declared = interest or (conflict[1] if conflict is not None else None)
    _insert_signature(uow, dd, me, decision, declared, reason or "")
    signed = {"signatory": me.name, "role": _label(scheme, me), "decision": decision}
    if declared:
        signed["interest"] = declared
    return _judge_now(uow, dd, bid, scheme, signed, reason or "")


def _signatory(uow: UnitOfWork, dd: Any, scheme: Scheme) -> PersonRow:
    """The actor, if the scheme's route counts them; else refused naming who signs."""
    me = uow.directory.person(uow.actor.email) if uow.actor.person_id is not None else None
    if me is None or scheme.counts(me.email, me.roles) is None:
        held = ", ".join(sorted(uow.actor.roles)) or "no roles"
        raise PermissionDenied(
            f"{uow.command}: {uow.actor.name} may not sign {dd.ref}: under the scheme {scheme} "
            f"only {scheme.who_signs()} sign; {uow.actor.name} has {held}",
            item=dd.ref,
        )
    return me


def _label(scheme: Scheme, p: PersonRow) -> str:
    return scheme.label_of(scheme.counts(p.email, p.roles))


def _signed_once(uow: UnitOfWork, dd: Any, me: PersonRow) -> None:
    """A second signature by the same person is refused by name."""
    earlier = next((s for s in _signatures(uow.conn, dd.id) if s.person_id == me.id), None)
    if earlier is not None:
        raise ValidationError(
            f"{uow.command}: item: {me.name} has already signed {dd.ref} on "
            f"{local_date(earlier.signed_at).isoformat()} "
            f"({DECISION_WORDS.get(earlier.decision, earlier.decision)}); a signatory signs once",
            field="item",
        )


def _still_open(uow: UnitOfWork, dd: Any) -> None:
    cmd = uow.command
    if dd.state == "expired" or (
        dd.state == OPEN and dd.expires_on is not None and uow.today > dd.expires_on
    ):
        raise TransitionRefused(
            f"{cmd}: item: {dd.ref} expired: it was open until {dd.expires_on} and nobody may "
            "sign it now; nothing was committed (make a new request)",
            item=dd.ref,
        )
    if dd.state != OPEN:
        raise TransitionRefused(
            f"{cmd}: item: {dd.ref} was already {dd.state} on {dd.decided_on}; signing is closed",
            item=dd.ref,
        )


def _declare(uow: UnitOfWork, dd: Any, me: PersonRow, nature: str) -> None:
    uow.conn.execute(
        insert(Interest).values(
            person_id=me.id, item_ref=dd.ref, meeting_id=None, nature=nature, declared_on=uow.today
        )
    )


def _insert_signature(
    uow: UnitOfWork, dd: Any, p: PersonRow, decision: str, interest: str | None, reason: str
) -> None:
    uow.conn.execute(
        insert(Signature).values(
            delegated_decision_id=dd.id,
            person_id=p.id,
            decision=decision,
            interest_declared=interest,
            reason=reason,
            signed_at=uow.now,
        )
    )


def _concur(
    uow: UnitOfWork,
    dd: Any,
    bid: Any,
    scheme: Scheme,
    me: PersonRow,
    decision: str,
    conflict: tuple[str, str] | None,
    interest: str,
    otp: str,
) -> Result:
    """A signature after approval (and before the report): recorded as a concurrence."""
    cmd = uow.command
    if decision != "approve" or interest:
        raise TransitionRefused(
            f"{cmd}: decision: {dd.ref} was approved on {dd.decided_on}; a signature now is a "
            "concurrence (decision: approve). A signatory with an interest stands aside "
            "(stand_aside); a disagreement is raised when it is reported to the Board",
            item=dd.ref,
        )
    if conflict is not None:
        raise ValidationError(
            f"{cmd}: decision: {me.name} declared an interest in {conflict[0]} ({conflict[1]}) "
            f"and stands aside from {dd.ref}: under {_rules_named(scheme, me)} a signatory "
            "with an interest does not sign",
            field="decision",
        )
    check_second_factor(uow, pot_programme(uow, dd.pot_id), "sign", otp)
    concurring = uow.fire(DELEGATED, "concur", dd.state, dd.ref)
    _insert_signature(uow, dd, me, "concur", None, "")
    uow.update_versioned(DelegatedDecision, dd.id, dd.version, {}, dd.ref, concurring)
    signed = {"signatory": me.name, "role": _label(scheme, me), "decision": "concur"}
    judged = evaluate(uow, scheme, dd, bid.ref if bid is not None else None)
    uow.record(dd.ref, {"state": dd.state}, {"state": dd.state, **signed, "why": judged.why})
    return {"item": dd.ref, "signed": signed, "why": judged.why, "state": dd.state}


def _judge_now(
    uow: UnitOfWork, dd: Any, bid: Any, scheme: Scheme, signed: dict[str, Any], reason: str
) -> Result:
    """After a signature, a stand-aside or an absence: judge the request under its
    scheme and approve it, decline it, or leave it awaiting."""
    cmd = uow.command
    judged = evaluate(uow, scheme, dd, bid.ref if bid is not None else None)
    result: dict[str, Any] = {"item": dd.ref, "signed": signed, "why": judged.why}
    verdict = SchemeJudgement(cmd, dd.ref, judged.outcome, judged.why)
    if judged.outcome == "approved":
        approving = uow.fire(DELEGATED, "approve", dd.state, dd.ref, verdict)
        state = approving.dest
        result.update(_approve(uow, dd, bid, scheme, judged, approving))
    elif judged.outcome == "declined":
        declining = uow.fire(DELEGATED, "decline", dd.state, dd.ref, verdict)
        state = declining.dest
        uow.update_versioned(
            DelegatedDecision, dd.id, dd.version, {"decided_on": uow.today}, dd.ref, declining
        )
        _tell_requester(
            uow,
            dd,
            bid,
            scheme,
            "declined",
            {"why": judged.why, "signatures": _signature_rows(uow, dd.id, scheme)},
        )
    else:
        state = uow.step(DELEGATED, "sign", dd.state, dd.ref)
        uow.update_versioned(DelegatedDecision, dd.id, dd.version, {}, dd.ref)  # a new version
    uow.record(dd.ref, {"state": dd.state}, {"state": state, **signed, "why": judged.why}, reason)
    result["state"] = state
    return result


@command(
    "stand_aside",
    summary="A signatory declares an interest in a delegated decision and stands aside "
    "(excused and recorded; the decision goes ahead without them)",
)
def stand_aside(uow: UnitOfWork, args: Args) -> Result:
    ref = args.text("item", max_len=40)
    interest = args.text("interest", max_len=1000)
    args.done()
    conn = uow.conn
    dd = load_dd(uow, ref)
    uow.check_version(dd.ref, dd.version, args)
    scheme = stored_scheme(conn, dd.rule_set_version_id, dd.scheme_route)
    me = _signatory(uow, dd, scheme)
    _signed_once(uow, dd, me)
    if dd.state == "approved" and dd.reported_meeting_id is None:
        standing = uow.fire(DELEGATED, "stand_aside", dd.state, dd.ref)
        _declare(uow, dd, me, interest)
        _insert_signature(uow, dd, me, STOOD_ASIDE, interest, f"declared an interest: {interest}")
        uow.update_versioned(DelegatedDecision, dd.id, dd.version, {}, dd.ref, standing)
        signed = {"signatory": me.name, "role": _label(scheme, me), "decision": STOOD_ASIDE}
        uow.record(dd.ref, {"state": dd.state}, {**signed, "interest": interest}, interest)
        return {"item": dd.ref, "signed": signed, "state": dd.state}
    _still_open(uow, dd)
    uow.step(DELEGATED, "stand_aside", dd.state, dd.ref)
    _declare(uow, dd, me, interest)
    _insert_signature(uow, dd, me, STOOD_ASIDE, interest, f"declared an interest: {interest}")
    bid = _bid_by_id(conn, dd.bid_id) if dd.bid_id is not None else None
    signed = {
        "signatory": me.name,
        "role": _label(scheme, me),
        "decision": STOOD_ASIDE,
        "interest": interest,
    }
    return _judge_now(uow, dd, bid, scheme, signed, f"declared an interest: {interest}")


@command(
    "record_absence",
    summary="A signatory records another as absent or unavailable for a delegated decision "
    "(under a chair_or_deputy rule, a deputy may then stand in)",
)
def record_absence(uow: UnitOfWork, args: Args) -> Result:
    ref = args.text("item", max_len=40)
    who = args.text("person", max_len=200)
    reason = args.text("reason", max_len=1000)
    args.done()
    cmd = uow.command
    conn = uow.conn
    dd = load_dd(uow, ref)
    uow.check_version(dd.ref, dd.version, args)
    scheme = stored_scheme(conn, dd.rule_set_version_id, dd.scheme_route)
    me = _signatory(uow, dd, scheme)
    them = next(
        (
            p
            for p in uow.directory.people_by_email.values()
            if who.strip().lower() in (p.email.lower(), p.name.lower())
        ),
        None,
    )
    if them is None or scheme.counts(them.email, them.roles) is None:
        raise ValidationError(
            f"{cmd}: person: {who!r} is not a signatory of {dd.ref} under {scheme} "
            f"({scheme.who_signs()})",
            field="person",
        )
    if them.id == me.id:
        raise ValidationError(
            f"{cmd}: person: {me.name} cannot record themself absent from {dd.ref}; "
            "someone who signs records it",
            field="person",
        )
    _signed_once(uow, dd, them)
    _still_open(uow, dd)
    uow.step(DELEGATED, "record_absence", dd.state, dd.ref)
    _insert_signature(uow, dd, them, ABSENT, None, reason)
    bid = _bid_by_id(conn, dd.bid_id) if dd.bid_id is not None else None
    signed = {
        "signatory": them.name,
        "role": _label(scheme, them),
        "decision": ABSENT,
        "recorded_by": me.name,
    }
    return _judge_now(uow, dd, bid, scheme, signed, reason)


@command(
    "adopt_scheme",
    roles={"director"},
    summary="A programme adopts its own scheme of delegation (a file of one or more routes); "
    "its requests use it unless they name another",
)
def adopt_scheme(uow: UnitOfWork, args: Args) -> Result:
    programme_name = args.text("programme", required=False, max_len=200)
    scheme_arg = args.text("scheme", max_len=1000)
    minute = args.text("minute", required=False, max_len=1000)
    args.done()
    cmd = uow.command
    pid, pname = find_programme(uow, programme_name)
    try:
        book = load_book(scheme_arg)
    except SchemeError as exc:
        raise ValidationError(f"{cmd}: scheme: {exc.message}", field="scheme") from None
    default = book.route(None)
    scheme_id = _store_scheme(uow, default)
    t = Programme.__table__
    row = uow.conn.execute(select(t.c.version, t.c.delegation_scheme_id).where(t.c.id == pid)).one()
    uow.update_versioned(Programme, pid, row.version, {"delegation_scheme_id": scheme_id}, pname)
    summary = {
        "programme": pname,
        "scheme": f"{book.name} {book.version}",
        "routes": {k: r.describe() for k, r in book.routes.items()},
        "default_route": book.default_route,
    }
    uow.record(pname, {"delegation_scheme_id": row.delegation_scheme_id}, summary, minute)
    return summary


def _approve(
    uow: UnitOfWork, dd: Any, bid: Any, scheme: Scheme, judged: Evaluation, approving: Transition
) -> dict[str, Any]:
    """The scheme is satisfied: re-check the limits and the pot now, commit the
    money and make the grant; the bid is approved."""
    cmd = uow.command
    conn = uow.conn
    if bid is None or bid.state not in UNDECIDED:
        raise TransitionRefused(
            f"{cmd}: item: {dd.ref} cannot be approved: its bid "
            f"{bid.ref if bid is not None else '(none)'} is "
            f"{bid.state if bid is not None else 'missing'}, not awaiting a decision; "
            "decline the request instead",
            item=dd.ref,
        )
    verdict = SchemeJudgement(cmd, dd.ref, judged.outcome, judged.why)
    bid_approved = uow.fire(BID, "approve_delegated", bid.state, bid.ref, verdict)
    bid_state = bid_approved.dest
    pot = next(p for p in uow.directory.pots if p.id == dd.pot_id)
    _check_limits(
        uow,
        scheme,
        dd.amount_pence,
        pot.name,
        pot.programme_id,
        dd.id,
        f"{dd.ref} cannot be approved now: ",
    )
    decision_ref = next_ref(conn, Decision, "decision")
    conditions = _conditions_of(dd)
    grant_ref, _, _ = commit_grant(uow, bid, dd.amount_pence, dd.ref, dd.id, pot_id=dd.pot_id,
                                   conditions=conditions)
    conn.execute(
        insert(Decision).values(
            ref=decision_ref,
            item_ref=bid.ref,
            meeting_id=None,
            delegated_decision_id=dd.id,
            outcome="approve",
            amount_pence=dd.amount_pence,
            reasons=dd.reasons,
            state_before=bid.state,
            decided_on=uow.today,
            conditions=dd.conditions,
        )
    )
    uow.update_versioned(Bid, bid.id, bid.version, {}, bid.ref, bid_approved)
    uow.update_versioned(
        DelegatedDecision, dd.id, dd.version, {"decided_on": uow.today}, dd.ref, approving
    )
    uow.record(
        bid.ref,
        {"state": bid.state},
        {
            "state": bid_state,
            "decision": decision_ref,
            "delegated_decision": dd.ref,
            "amount_pence": dd.amount_pence,
            "pot": pot.name,
            "grant": grant_ref,
            **({"conditions": [c.words() for c in conditions]} if conditions else {}),
        },
        dd.reasons,
    )
    signatures = _signature_rows(uow, dd.id, scheme)
    _tell_requester(
        uow,
        dd,
        bid,
        scheme,
        "approved",
        {"why": judged.why, "grant": grant_ref, "signatures": signatures},
    )
    sponsor = uow.directory.orgs_by_id[bid.sponsor_id]
    letter = {
        "ref": bid.ref,
        "title": bid.title,
        "sponsor": sponsor.name,
        "outcome": "approve",
        "meeting": f"The Chair and Vice Chairs, under the scheme of delegation ({dd.ref})",
        "date": uow.today.isoformat(),
        "amount_pence": dd.amount_pence,
        "requested_pence": bid.grant_requested_pence,
        "reasons": dd.reasons,
        "missing": "",
        "grant": grant_ref,
        **({"conditions": [c.text for c in conditions]} if conditions else {}),
    }
    for name, email in sponsor_contacts(uow, sponsor):
        uow.notify(
            key=f"decision_letter:{decision_ref}:{email}",
            to=email,
            template="decision_letter",
            subject=f"Bid {bid.ref} approved: {bid.title}",
            context={**letter, "name": name},
        )
    return {
        "grant": grant_ref,
        "decision": decision_ref,
        "bid": bid.ref,
        "amount_pence": dd.amount_pence,
    }


# ------------------------------------------------------------------ expire


@command(
    "expire_delegated_decisions",
    summary="Expire every delegated decision still unsigned after its expiry date (daily sweep)",
)
def expire_delegated_decisions(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(DELEGATED, "expire")
    as_of = args.date("as_of", required=False) or uow.today
    args.done()
    if as_of > uow.today:
        raise ValidationError(
            f"{uow.command}: as_of: {as_of} is after today ({uow.today}); requests expire only "
            "once their time has passed",
            field="as_of",
        )
    return {"as_of": as_of.isoformat(), "expired": expire_lapsed(uow, as_of)}


def expire_lapsed(uow: UnitOfWork, as_of: dt.date) -> list[str]:
    """Expire every request still awaiting signatures whose expiry date is before
    ``as_of``, through the workflow's ``expire`` step (the daily sweep and
    ``expire_delegated_decisions`` both run this). Returns their refs; a second
    run finds none (idempotent)."""
    rows = uow.conn.execute(
        select(DD_T).where(DD_T.c.state == OPEN, DD_T.c.expires_on < as_of).order_by(DD_T.c.id)
    ).all()
    for dd in rows:
        _expire(uow, dd)
    return [dd.ref for dd in rows]


def _expire(uow: UnitOfWork, dd: Any) -> None:
    """One request past its expiry date: expired (audited), its requester told."""
    conn = uow.conn
    expiring = uow.fire(DELEGATED, "expire", dd.state, dd.ref)
    on = dd.expires_on + dt.timedelta(days=1)
    uow.update_versioned(DelegatedDecision, dd.id, dd.version, {"decided_on": on}, dd.ref, expiring)
    scheme = stored_scheme(conn, dd.rule_set_version_id, dd.scheme_route)
    bid = _bid_by_id(conn, dd.bid_id) if dd.bid_id is not None else None
    judged = evaluate(uow, scheme, dd, bid.ref if bid is not None else None)
    uow.record(
        dd.ref,
        {"state": dd.state},
        {"state": expiring.dest, "open_until": dd.expires_on, "why": judged.why},
        "not decided before it expired",
        command="expire_delegated_decisions",
    )
    _tell_requester(
        uow,
        dd,
        bid,
        scheme,
        "expired",
        {"why": judged.why, "signatures": _signature_rows(uow, dd.id, scheme)},
    )


def revoke(uow: UnitOfWork, dd_id: int, decision_ref: str, reversal_ref: str, reason: str) -> str:
    """The approval ``decision_ref`` that a delegated decision made is reversed
    (reverse_decision, which cancels the grant and releases the money): the
    delegated decision is revoked, so it can no longer be endorsed. Its ref."""
    dd = uow.conn.execute(select(DD_T).where(DD_T.c.id == dd_id)).one()
    revoking = uow.fire(DELEGATED, "revoke", dd.state, dd.ref)
    uow.update_versioned(DelegatedDecision, dd.id, dd.version, {}, dd.ref, revoking)
    uow.record(
        dd.ref,
        {"state": dd.state},
        {"state": revoking.dest, "reversed": decision_ref, "by": reversal_ref},
        reason,
    )
    return str(dd.ref)


# ------------------------------------------------------------------ report back


@command("endorse", summary="A Board meeting endorses a delegated decision reported to it")
def endorse(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(DELEGATED, "endorse")
    m = load_meeting(uow, args.text("meeting"))
    ref = args.text("item", max_len=40)
    args.done()
    return _endorse(uow, m, ref, args)


@command(
    "endorse_several",
    summary="A Board meeting endorses several delegated decisions reported to it, in one "
    "step: all of them, or none if any one cannot be",
)
def endorse_several(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(DELEGATED, "endorse")
    m = load_meeting(uow, args.text("meeting"))
    refs = [str(r).strip() for r in args.items("items", required=True)]
    args.done()
    if not refs:
        raise ValidationError(
            f"{uow.command}: items: name at least one delegated decision (DD ref)", field="items"
        )
    twice = sorted({r for r in refs if refs.count(r) > 1})
    if twice:
        raise ValidationError(
            f"{uow.command}: items: {', '.join(twice)} given more than once", field="items"
        )
    endorsed = [_endorse(uow, m, ref, None) for ref in refs]  # one refusal: none endorsed
    return {
        "meeting": m.ref,
        "endorsed": [e["item"] for e in endorsed],
        "endorsed_on": m.held_on.isoformat(),
    }


def _endorse(uow: UnitOfWork, m: Any, ref: str, args: Args | None) -> Result:
    """Endorse one delegated decision at meeting ``m`` (``args``: the command's, for the
    version check of a single endorsement; None in a batch, where each is loaded fresh)."""
    cmd = uow.command
    never = " — endorsing a decision that was never made"
    dd = load_dd(uow, ref, what=f"{never} (the Board decides bids with decide)")
    if args is not None:
        uow.check_version(dd.ref, dd.version, args)
    if dd.state == OPEN:
        scheme = stored_scheme(uow.conn, dd.rule_set_version_id, dd.scheme_route)
        bid = _bid_by_id(uow.conn, dd.bid_id) if dd.bid_id is not None else None
        judged = evaluate(uow, scheme, dd, bid.ref if bid is not None else None)
        raise TransitionRefused(
            f"{cmd}: item: {dd.ref} is still awaiting signatures ({judged.why}): it has not "
            f"been decided{never}",
            item=dd.ref,
        )
    if dd.state == "revoked":
        raise TransitionRefused(
            f"{cmd}: item: {dd.ref} was revoked: the approval it made was reversed, its grant "
            "cancelled and the money released, so there is nothing to endorse",
            item=dd.ref,
        )
    if dd.state in ("declined", "expired"):
        raise TransitionRefused(
            f"{cmd}: item: {dd.ref} was {dd.state} on {dd.decided_on}, so nothing was approved"
            f"{never}; only an approved delegated decision is endorsed (a declined one is "
            "reported for information and noted when the meeting closes)",
            item=dd.ref,
        )
    if dd.state == "endorsed":
        at = uow.conn.execute(
            select(col(Meeting.ref)).where(col(Meeting.id) == dd.reported_meeting_id)
        ).scalar()
        raise TransitionRefused(
            f"{cmd}: item: {dd.ref} was already endorsed at {at} on {dd.endorsed_on}",
            item=dd.ref,
        )
    if m.state != "scheduled":
        raise TransitionRefused(
            f"{cmd}: meeting: {m.ref} is {m.state}; endorse at a meeting that is not yet closed",
            item=m.ref,
        )
    if uow.today < m.held_on:
        raise ValidationError(
            f"{cmd}: meeting: {m.ref} takes place on {m.held_on}; it cannot endorse before then",
            field="meeting",
        )
    pot = next(p for p in uow.directory.pots if p.id == dd.pot_id)
    if pot.programme_id != m.programme_id:
        raise ValidationError(
            f"{cmd}: item: {dd.ref} drew on the {pot.name} pot of {pot.programme}, not on "
            f"{uow.directory.programmes.get(m.programme_id)}, whose Board {m.ref} is",
            field="item",
        )
    if dd.decided_on > m.held_on:
        raise ValidationError(
            f"{cmd}: item: {dd.ref} was approved on {dd.decided_on}, after {m.ref} "
            f"({m.held_on}); it goes to the next meeting",
            field="item",
        )
    endorsing = uow.fire(DELEGATED, "endorse", dd.state, dd.ref)
    state = endorsing.dest
    uow.update_versioned(
        DelegatedDecision,
        dd.id,
        dd.version,
        {"reported_meeting_id": m.id, "endorsed_on": m.held_on},
        dd.ref,
        endorsing,
    )
    uow.record(
        dd.ref, {"state": dd.state}, {"state": state, "meeting": m.ref, "endorsed_on": m.held_on}
    )
    return {"item": dd.ref, "state": state, "meeting": m.ref, "endorsed_on": m.held_on.isoformat()}


def note_declined(uow: UnitOfWork, meeting: Any, agenda: list[str]) -> list[str]:
    """When a meeting closes: the declined delegated decisions on its agenda were
    reported to it for information; mark them reported. Returns their refs."""
    refs = list(agenda)
    if not refs:
        return []
    rows = uow.conn.execute(
        select(DD_T)
        .where(
            DD_T.c.ref.in_(refs), DD_T.c.state == "declined", DD_T.c.reported_meeting_id.is_(None)
        )
        .order_by(DD_T.c.id)
    ).all()
    for dd in rows:
        uow.step(DELEGATED, "note", dd.state, dd.ref)
        uow.update_versioned(
            DelegatedDecision, dd.id, dd.version, {"reported_meeting_id": meeting.id}, dd.ref
        )
        uow.record(
            dd.ref,
            {"reported_at": None},
            {"reported_at": meeting.ref, "state": dd.state},
            "reported for information",
        )
    return [dd.ref for dd in rows]
