"""Board meetings: members and quorum, attendance, declarations of interest,
decisions with votes, reversals, and the numbered action list.

Quorum is judged per item: members present who declared an interest in the
item do not count towards it and may not vote on it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.awards import commit_grant
from engine.commands.contracts import OUTCOMES
from engine.commands.handlers.allocations import unscored_decision
from engine.commands.handlers.delegation import note_declined, revoke
from engine.commands.handlers.intake import load_bid, sponsor_contacts
from engine.commands.handlers.programme import find_programme
from engine.commands.lookups import load_meeting
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import MoneyRuleBroken, NotFound, ValidationError
from engine.domain.money import format_pence
from engine.read.agenda import meeting_agenda
from engine.store.directory import PersonRow
from engine.store.models import (
    Action,
    Bid,
    Decision,
    Grant,
    Interest,
    Meeting,
    MeetingMember,
    Milestone,
    MoneyMovement,
    MovementKind,
)
from engine.store.refs import next_ref, ref_for
from workflows.action import ACTION
from workflows.bid import BID, decision_step
from workflows.grant import GRANT
from workflows.meeting import MEETING

BID_T = Bid.__table__
# the reasons minuted for a referral back when the Board gave none of its own
REFERRED_DEFAULT = "The Board referred it back."



def person(uow: UnitOfWork, who: Any, field: str) -> PersonRow:
    found = uow.directory.person_called(str(who))
    if found is None:
        raise NotFound(f"{uow.command}: {field}: no person {who!r}", field=field)
    return found


def members(uow: UnitOfWork, meeting_id: int) -> dict[int, bool]:
    """person id -> present?"""
    return {
        pid: bool(present)
        for pid, present in uow.conn.execute(
            select(col(MeetingMember.person_id), col(MeetingMember.present)).where(
                col(MeetingMember.meeting_id) == meeting_id
            )
        )
    }


def interested(uow: UnitOfWork, meeting_id: int, item_ref: str) -> set[int]:
    return set(
        uow.conn.execute(
            select(col(Interest.person_id)).where(
                col(Interest.meeting_id) == meeting_id, col(Interest.item_ref) == item_ref
            )
        ).scalars()
    )


@command("schedule_meeting", summary="Schedule a Board meeting with its members and quorum")
def schedule_meeting(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "schedule")
    title = args.text("title", max_len=200)
    held_on = args.date("date")
    quorum = args.integer("quorum", minimum=1)
    names = args.items("members", required=True)
    ref = args.text("ref", required=False, max_len=40)
    programme = args.text("programme", required=False)
    args.done()
    prog_id, prog_name = find_programme(uow, programme)
    people = [person(uow, n, f"members[{i}]") for i, n in enumerate(names, start=1)]
    if len({p.id for p in people}) != len(people):
        raise ValidationError("schedule_meeting: members: someone is listed twice", field="members")
    if quorum > len(people):
        raise ValidationError(
            f"schedule_meeting: quorum: {quorum} is more than the {len(people)} members",
            field="quorum")
    ref = ref_for(uow.conn, Meeting, "meeting", ref, "schedule_meeting")
    created = uow.fire(MEETING, "schedule", "new", ref)
    meeting_id = inserted_id(uow.conn.execute(
        insert(Meeting).values(ref=ref, programme_id=prog_id, title=title, held_on=held_on,
                               quorum=quorum, state=created.dest, agenda=[], version=1)
    ))
    uow.conn.execute(
        insert(MeetingMember),
        [{"meeting_id": meeting_id, "person_id": p.id, "present": False} for p in people],
    )
    uow.record(ref, {}, {"title": title, "date": held_on, "quorum": quorum,
                         "members": [p.name for p in people], "programme": prog_name})
    return {"ref": ref, "date": held_on.isoformat(), "members": len(people), "quorum": quorum}


@command("record_attendance", summary="Record who is present (the agenda exists from scheduling)")
def record_attendance(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "record_attendance")
    m = load_meeting(uow, args.text("meeting"))
    names = args.items("present", required=True)
    args.done()
    uow.step(MEETING, "record_attendance", m.state, m.ref)
    roll = members(uow, m.id)
    present = []
    for i, n in enumerate(names, start=1):
        p = person(uow, n, f"present[{i}]")
        if p.id not in roll:
            raise ValidationError(
                f"record_attendance: present[{i}]: {p.name} is not a member of {m.ref}",
                field=f"present[{i}]")
        present.append(p)
    ids = {p.id for p in present}
    for pid in roll:
        uow.conn.execute(
            update(MeetingMember)
            .where(MeetingMember.meeting_id == m.id, col(MeetingMember.person_id) == pid)
            .values(present=pid in ids)
        )
    # the agenda follows events from scheduling (engine.read.agenda); attendance
    # records only who is present. The version still moves: a concurrent roll loses.
    agenda = meeting_agenda(uow.conn, m)
    uow.update_versioned(Meeting, m.id, m.version, {}, m.ref)
    quorate = len(ids) >= m.quorum
    uow.record(m.ref, {"present": sum(roll.values())},
               {"present": sorted(p.name for p in present), "quorate": quorate})
    return {"meeting": m.ref, "present": len(ids), "quorum": m.quorum, "quorate": quorate,
            "agenda": agenda}


@command("declare_interest", summary="A member declares an interest in an item")
def declare_interest(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "declare_interest")
    m = load_meeting(uow, args.text("meeting"))
    item = args.text("item", max_len=40)
    nature = args.text("nature", max_len=1000)
    who = args.text("member", required=False)
    args.done()
    uow.step(MEETING, "declare_interest", m.state, m.ref)
    member = person(uow, who, "member") if who else person(uow, uow.actor.email, "by")
    if member.id != uow.actor.person_id and not uow.actor.roles & {"officer", "system"}:
        raise ValidationError(
            "declare_interest: member: members declare their own interests (an officer may "
            "record one for them)", field="member")
    if member.id not in members(uow, m.id):
        raise ValidationError(
            f"declare_interest: member: {member.name} is not a member of {m.ref}", field="member")
    if uow.conn.execute(select(BID_T.c.id).where(BID_T.c.ref == item)).first() is None:
        raise NotFound(f"declare_interest: item: no item {item!r}", field="item")
    if member.id in interested(uow, m.id, item):
        raise ValidationError(
            f"declare_interest: {member.name} has already declared an interest in {item}",
            field="item")
    uow.conn.execute(insert(Interest).values(person_id=member.id, item_ref=item,
                                             meeting_id=m.id, nature=nature,
                                             declared_on=uow.today))
    uow.record(item, {}, {"interest": member.name, "meeting": m.ref, "nature": nature})
    return {"meeting": m.ref, "member": member.name, "item": item}


def _read_votes(uow: UnitOfWork, raw: Any, eligible: dict[int, PersonRow],
                conflicted: dict[int, PersonRow]) -> dict[str, int] | None:
    """Votes as counts ({for: 5, against: 2}) or names ({for: [..], against: [..]})."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, dict):
        raise ValidationError("decide: votes: give {for: N, against: N, abstain: N}", field="votes")
    unknown = set(raw) - {"for", "against", "abstain"}
    if unknown:
        raise ValidationError(
            f"decide: votes: unknown key(s) {', '.join(sorted(unknown))}; use for, against, "
            "abstain", field="votes")
    counts: dict[str, int] = {}
    voters: set[int] = set()
    for side in ("for", "against", "abstain"):
        value = raw.get(side, 0)
        if isinstance(value, list):
            for name in value:
                p = person(uow, name, f"votes.{side}")
                if p.id in conflicted:
                    raise ValidationError(
                        f"decide: votes.{side}: {p.name} declared an interest in this item and "
                        "cannot vote on it", field=f"votes.{side}")
                if p.id not in eligible:
                    raise ValidationError(
                        f"decide: votes.{side}: {p.name} is not a member present at this meeting",
                        field=f"votes.{side}")
                if p.id in voters:
                    raise ValidationError(f"decide: votes: {p.name} voted twice", field="votes")
                voters.add(p.id)
            counts[side] = len(value)
        else:
            n = Args("decide", {f"votes.{side}": value}).integer(f"votes.{side}", minimum=0)
            counts[side] = n or 0
    cast = sum(counts.values())
    if cast > len(eligible):
        names = ", ".join(sorted(p.name for p in conflicted.values()))
        extra = f" ({names} declared an interest and may not vote)" if conflicted else ""
        raise ValidationError(
            f"decide: votes: {cast} votes recorded but only {len(eligible)} members present "
            f"may vote on this item{extra}", field="votes")
    return counts


@command("decide", summary="Record the Board's decision on a bid at a meeting")
def decide(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "decide")
    m = load_meeting(uow, args.text("meeting"))
    ref = args.text("item", max_len=40)
    outcome = args.choice("outcome", OUTCOMES)
    amount = args.pence("amount", required=False)
    reasons = args.text("reasons", required=False, max_len=4000)
    missing = args.text("missing", required=False, max_len=4000)
    raw_votes = args.raw("votes")
    args.done()
    uow.step(MEETING, "decide", m.state, m.ref)
    if uow.today < m.held_on:
        raise ValidationError(
            f"decide: meeting: {m.ref} takes place on {m.held_on}; it cannot decide before then",
            field="meeting")
    bid = load_bid(uow, ref)
    # an item not scored (an allocation, a bid of no round or of a round that does not
    # require scoring) is decided by the outcome's *_unscored step, judged here
    trigger = decision_step(outcome, bid.state)
    unscored = (uow.fire(BID, trigger, bid.state, bid.ref, unscored_decision(uow, bid))
                if trigger != outcome else None)
    new_state = unscored.dest if unscored else uow.step(BID, trigger, bid.state, bid.ref)
    roll = members(uow, m.id)
    conflicted_ids = interested(uow, m.id, ref)
    people = {p.id: p for p in uow.directory.people_by_email.values()}
    present = {pid: people[pid] for pid, here in roll.items() if here}
    eligible = {pid: p for pid, p in present.items() if pid not in conflicted_ids}
    conflicted = {pid: people[pid] for pid in conflicted_ids if pid in present}
    if len(eligible) < m.quorum:
        why = (f"; {', '.join(sorted(p.name for p in conflicted.values()))} declared an interest"
               if conflicted else "")
        raise ValidationError(
            f"decide: meeting: {m.ref} is not quorate for {ref}: {len(eligible)} members "
            f"present may take part, the quorum is {m.quorum}{why}", field="meeting")
    votes = _read_votes(uow, raw_votes, eligible, conflicted)
    if votes is not None and votes["for"] <= votes["against"]:
        raise ValidationError(
            f"decide: votes: {votes['for']} for and {votes['against']} against do not carry the "
            f"motion to {outcome.replace('_', ' ')}; record the outcome the Board carried",
            field="votes")
    if outcome != "approve" and amount is not None:
        raise ValidationError("decide: amount: only an approval has an amount", field="amount")
    if outcome == "refer_back":
        # the Board's own words, not the scoring rules' unmet criteria (those stay in
        # the bids paper): what it asks for is required; its reasons default to a line
        if not missing:
            raise ValidationError(
                "decide: missing: say what the Board asks the sponsor to supply before the bid "
                "comes back (the Board's own words; the scoring's unmet criteria are not used)",
                field="missing")
        reasons = reasons or REFERRED_DEFAULT
    conn = uow.conn
    decision_ref = next_ref(conn, Decision, "decision")
    after: dict[str, Any] = {"state": new_state, "decision": decision_ref, "meeting": m.ref}
    grant_ref = None
    cover = None
    if outcome == "approve":
        amount = amount or bid.grant_requested_pence
        grant_ref, _, cover = commit_grant(uow, bid, amount, decision_ref)
        after.update(amount_pence=amount, grant=grant_ref)
    decided = unscored or uow.fire(BID, outcome, bid.state, bid.ref, cover)
    conn.execute(insert(Decision).values(
        ref=decision_ref, item_ref=ref, meeting_id=m.id, outcome=outcome, amount_pence=amount,
        reasons=reasons, missing=missing, state_before=bid.state,
        votes_for=votes and votes["for"], votes_against=votes and votes["against"],
        votes_abstain=votes and votes["abstain"], decided_on=uow.today,
    ))
    uow.update_versioned(Bid, bid.id, bid.version, {}, ref, decided)
    if votes:
        after["votes"] = votes
    uow.record(ref, {"state": bid.state}, after, reasons or missing)
    sponsor = uow.directory.orgs_by_id[bid.sponsor_id]
    context = {"ref": ref, "title": bid.title, "sponsor": sponsor.name, "outcome": outcome,
               "meeting": m.title, "date": m.held_on.isoformat(), "amount_pence": amount,
               "requested_pence": bid.grant_requested_pence, "reasons": reasons,
               "missing": missing, "grant": grant_ref}
    template = "referred_back" if outcome == "refer_back" else "decision_letter"
    for name, email in sponsor_contacts(uow, sponsor):
        uow.notify(key=f"{template}:{decision_ref}:{email}", to=email, template=template,
                   subject=_subject(outcome, ref, bid.title), context={**context, "name": name})
    return {"decision": decision_ref, "item": ref, "outcome": outcome, "state": new_state,
            "amount_pence": amount, "grant": grant_ref, "votes": votes}


def _subject(outcome: str, ref: str, title: str) -> str:
    return {
        "approve": f"Bid {ref} approved: {title}",
        "reject": f"Bid {ref} not approved: {title}",
        "defer": f"Bid {ref} deferred: {title}",
        "refer_back": f"Bid {ref} referred back: {title}",
    }[outcome]




@command("reverse_decision", summary="Reverse a mistaken decision with a new, audited one")
def reverse_decision(uow: UnitOfWork, args: Args) -> Result:
    uow.require_role("officer", "chair", "vice_chair")
    ref = args.text("decision", max_len=40)
    reason = args.text("reason", max_len=4000)
    args.done()
    conn = uow.conn
    d = conn.execute(select(Decision.__table__).where(col(Decision.ref) == ref)).first()
    if d is None:
        raise NotFound(f"reverse_decision: decision: no decision {ref!r}", field="decision")
    if d.outcome == "reversed":
        raise ValidationError(f"reverse_decision: {ref} is itself a reversal", field="decision")
    latest = conn.execute(
        select(func.max(Decision.id)).where(Decision.item_ref == d.item_ref)
    ).scalar()
    if latest != d.id:
        raise ValidationError(
            f"reverse_decision: decision: {ref} is not the latest decision on {d.item_ref}; "
            "reverse the later one first", field="decision")
    bid = load_bid(uow, d.item_ref)
    back = uow.fire(BID, "reverse", bid.state, bid.ref, back_to=d.state_before)
    after: dict[str, Any] = {"state": back.dest, "reverses": ref}
    reversal_ref = next_ref(conn, Decision, "decision")
    if d.outcome == "approve":
        grant = conn.execute(select(Grant.__table__).where(Grant.bid_id == bid.id)).first()
        if grant is None:  # an approval made a grant; a row without one is not reversed here
            raise NotFound(
                f"reverse_decision: decision: {ref} approved {bid.ref} but it has no grant; "
                "nothing to release", field="decision")
        paid = conn.execute(
            select(func.coalesce(func.sum(MoneyMovement.amount_pence), 0)).where(
                col(MoneyMovement.grant_id) == grant.id,
                col(MoneyMovement.kind) == MovementKind.PAY.value)
        ).scalar()
        if paid:
            raise MoneyRuleBroken(
                f"reverse_decision: {grant.ref} has already paid {format_pence(paid)}; "
                "recover the money instead (demand_refund)", field="decision")
        cancel = uow.fire(GRANT, "cancel", grant.state, grant.ref)
        uow.book(grant.pot_id, MovementKind.RELEASE, grant.awarded_pence, uow.today, bid.ref,
                 grant.id, f"approval {ref} reversed")
        uow.update_versioned(Grant, grant.id, grant.version, {}, grant.ref, cancel)
        conn.execute(update(Milestone).where(Milestone.bid_id == bid.id).values(grant_id=None))
        after["released_pence"] = grant.awarded_pence
        if d.delegated_decision_id is not None:  # approved under delegation: revoke it too
            after["delegated_decision"] = revoke(
                uow, d.delegated_decision_id, ref, reversal_ref, reason
            )
    conn.execute(insert(Decision).values(
        ref=reversal_ref, item_ref=d.item_ref, meeting_id=d.meeting_id, outcome="reversed",
        reasons=reason, state_before=bid.state, decided_on=uow.today, reverses_id=d.id,
    ))
    uow.update_versioned(Bid, bid.id, bid.version, {}, bid.ref, back)
    uow.record(d.item_ref, {"state": bid.state, "decision": ref}, after, reason)
    return {"decision": reversal_ref, "reverses": ref, "item": d.item_ref,
            "state": back.dest}


@command("add_action", summary="Add a numbered action to a meeting's minutes")
def add_action(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "add_action")
    m = load_meeting(uow, args.text("meeting"))
    what = args.text("what", max_len=2000)
    owner = args.text("owner", max_len=200)
    due = args.date("due", required=False)
    args.done()
    uow.step(MEETING, "add_action", m.state, m.ref)
    number = (uow.conn.execute(
        select(func.max(Action.number)).where(Action.meeting_id == m.id)).scalar() or 0) + 1
    created = uow.fire(ACTION, "record", "new", f"{m.ref}/A{number}")
    uow.conn.execute(insert(Action).values(meeting_id=m.id, number=number, what=what,
                                           owner=owner, due_on=due, state=created.dest))
    uow.record(f"{m.ref}/A{number}", {}, {"what": what, "owner": owner, "due": due})
    return {"meeting": m.ref, "number": number}


@command("close_meeting", summary="Close a meeting: its minutes are final")
def close_meeting(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "close")
    m = load_meeting(uow, args.text("meeting"))
    args.done()
    agenda = meeting_agenda(uow.conn, m)  # frozen now, with the minutes
    closing = uow.fire(MEETING, "close", m.state, m.ref)
    state = closing.dest
    noted = note_declined(uow, m, agenda)  # declined delegated decisions on the agenda: reported
    uow.update_versioned(Meeting, m.id, m.version, {"agenda": agenda}, m.ref, closing)
    uow.record(m.ref, {"state": m.state},
               {"state": state, "agenda": agenda, **({"noted": noted} if noted else {})})
    return {"meeting": m.ref, "state": state, **({"noted": noted} if noted else {})}
