"""Board meetings: members and quorum, attendance, declarations of interest,
decisions with votes, reversals, and the numbered action list.

Quorum is judged per item: members present who declared an interest in the
item do not count towards it and may not vote on it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, case, exists, func, insert, null, select, update
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.awards import commit_grant
from engine.commands.conditions import read_conditions
from engine.commands.contracts import OUTCOMES
from engine.commands.handlers.allocations import unscored_decision
from engine.commands.handlers.delegation import note_declined, revoke
from engine.commands.handlers.intake import load_bid, sponsor_contacts
from engine.commands.handlers.programme import find_programme
from engine.commands.lookups import load_meeting
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, insert_into, inserted_id
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
    MeetingObserver,
    Milestone,
    MoneyMovement,
    MovementKind,
    Programme,
)
from engine.store.rawsql import RawRows, RawValues
from engine.store.refs import next_ref, next_refs, ref_for
from rules.standing_orders import Orders, StandingOrders, load_standing_orders
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


def sitting(uow: UnitOfWork, meeting_id: int) -> dict[int, PersonRow]:
    """Who sits at the meeting, counting for its quorum and voting: the members
    present, and each substitute in the place of the member they attend for."""
    people = {p.id: p for p in uow.directory.people_by_email.values()}
    out: dict[int, PersonRow] = {}
    for pid, present, sub in uow.conn.execute(
        select(col(MeetingMember.person_id), col(MeetingMember.present),
               col(MeetingMember.substitute_id)).where(col(MeetingMember.meeting_id) == meeting_id)
    ):
        if present:
            out[pid] = people[pid]
        elif sub is not None:
            out[sub] = people[sub]
    return out


def standing_orders(uow: UnitOfWork, m: Any) -> tuple[StandingOrders, Orders]:
    """The standing orders a meeting runs under: the file it named when scheduled
    (the shipped one by default), the section for its programme."""
    found = load_standing_orders(m.standing_orders or None)
    programme = uow.directory.programmes.get(m.programme_id)  # (the cached directory)
    if programme is None:
        programme = uow.conn.execute(
            select(col(Programme.name)).where(col(Programme.id) == m.programme_id)).scalar()
    return found, found.for_programme(str(programme))


# built once (a statement made per call costs its construction and cache key each time)
_INTERESTED = select(col(Interest.person_id)).where(
    col(Interest.meeting_id) == bindparam("meeting_id"),
    col(Interest.item_ref) == bindparam("item_ref"),
)


# a meeting's roll (person id, present?) and whether it has observers recorded
_MEMBER_T = MeetingMember.__table__
_OBSERVER_T = MeetingObserver.__table__
_ROLL = RawRows(
    select(
        _MEMBER_T.c.person_id,
        _MEMBER_T.c.present,
        exists().where(_OBSERVER_T.c.meeting_id == bindparam("meeting_id")).label("observed"),
    ).where(_MEMBER_T.c.meeting_id == bindparam("meeting_id"))
)
# a meeting's members: one statement, not one per member
_INSERT_MEMBERS = RawValues(MeetingMember.__table__, ("person_id",))


def interested(uow: UnitOfWork, meeting_id: int, item_ref: str) -> set[int]:
    return set(
        uow.conn.execute(_INTERESTED, {"meeting_id": meeting_id, "item_ref": item_ref}).scalars()
    )


# who sits at a meeting (sitting) and which of them declared an interest in an item
_SEATS = RawRows(
    select(
        _MEMBER_T.c.person_id,
        _MEMBER_T.c.present,
        _MEMBER_T.c.substitute_id,
        _MEMBER_T.c.person_id.in_(_INTERESTED.scalar_subquery()).label("member_interested"),
        _MEMBER_T.c.substitute_id.in_(_INTERESTED.scalar_subquery()).label("sub_interested"),
    ).where(_MEMBER_T.c.meeting_id == bindparam("meeting_id"))
)


def sitting_for(
    uow: UnitOfWork, meeting_id: int, item_ref: str
) -> tuple[dict[int, PersonRow], set[int]]:
    """:func:`sitting` and, of those sitting, who declared an interest in ``item_ref``
    (:func:`interested`): one statement."""
    people = {p.id: p for p in uow.directory.people_by_email.values()}
    out: dict[int, PersonRow] = {}
    conflicted: set[int] = set()
    for r in _SEATS.rows(uow.conn, {"meeting_id": meeting_id, "item_ref": item_ref}):
        if r.present:
            out[r.person_id] = people[r.person_id]
            if r.member_interested:
                conflicted.add(r.person_id)
        elif r.substitute_id is not None:
            out[r.substitute_id] = people[r.substitute_id]
            if r.sub_interested:
                conflicted.add(r.substitute_id)
    return out, conflicted


@command("schedule_meeting", summary="Schedule a Board meeting with its members and quorum")
def schedule_meeting(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "schedule")
    title = args.text("title", max_len=200)
    held_on = args.date("date")
    quorum = args.integer("quorum", minimum=1)
    names = args.items("members", required=True)
    ref = args.text("ref", required=False, max_len=40)
    programme = args.text("programme", required=False)
    orders_name = args.text("standing_orders", required=False, max_len=300)
    args.done()
    prog_id, prog_name = find_programme(uow, programme)
    orders = load_standing_orders(orders_name or None)  # refused now if it cannot be used
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
        insert_into(Meeting), dict(ref=ref, programme_id=prog_id, title=title, held_on=held_on,
                               quorum=quorum, state=created.dest, agenda=[], version=1,
                               standing_orders=orders_name or "")
    ))
    _INSERT_MEMBERS.insert(uow.conn, [(p.id,) for p in people],
                           {"meeting_id": meeting_id, "present": False})
    uow.record(ref, {}, {"title": title, "date": held_on, "quorum": quorum,
                         "members": [p.name for p in people], "programme": prog_name,
                         "standing_orders": orders.label})
    return {"ref": ref, "date": held_on.isoformat(), "members": len(people), "quorum": quorum}


@command("record_attendance", summary="Record who is present (the agenda exists from scheduling)")
def record_attendance(uow: UnitOfWork, args: Args) -> Result:
    """Members present, apologies, substitutes (each in a member's place: they count
    for the quorum and vote for them), observers (not counted) and the chair.
    Recorded again, the new roll replaces the old one."""
    uow.authorise(MEETING, "record_attendance")
    m = load_meeting(uow, args.text("meeting"))
    names = args.items("present", required=True)
    sorry = args.items("apologies")
    subs = args.mapping("substitutes", required=False)
    watching = args.items("observers")
    chair_name = args.text("chair", required=False)
    args.done()
    uow.step(MEETING, "record_attendance", m.state, m.ref)
    rows = _ROLL.rows(uow.conn, {"meeting_id": m.id})
    roll = {r.person_id: bool(r.present) for r in rows}
    observed = not rows or rows[0].observed  # (a meeting has members: from scheduling)

    def member(n: Any, field: str) -> PersonRow:
        p = person(uow, n, field)
        if p.id not in roll:
            raise ValidationError(
                f"record_attendance: {field}: {p.name} is not a member of {m.ref}", field=field)
        return p

    present = [member(n, f"present[{i}]") for i, n in enumerate(names, start=1)]
    ids = {p.id for p in present}
    if len(ids) != len(present):
        raise ValidationError("record_attendance: present: someone is listed twice",
                              field="present")
    apologies: dict[int, PersonRow] = {}
    for i, n in enumerate(sorry, start=1):
        p = member(n, f"apologies[{i}]")
        if p.id in ids:
            raise ValidationError(
                f"record_attendance: apologies[{i}]: {p.name} is listed as present",
                field=f"apologies[{i}]")
        apologies[p.id] = p
    substitutes: dict[int, PersonRow] = {}  # member id -> the substitute
    for sub_name, for_name in (subs or {}).items():
        field = f"substitutes.{sub_name}"
        sub = person(uow, sub_name, field)
        absent = member(for_name, field)
        if sub.id in roll:
            raise ValidationError(
                f"record_attendance: {field}: {sub.name} is a member of {m.ref} and attends "
                "in their own right; a substitute attends for a member who is not there",
                field=field)
        if absent.id in ids:
            raise ValidationError(
                f"record_attendance: {field}: {absent.name} is present; a substitute attends "
                "only for a member who is not there", field=field)
        if absent.id in substitutes:
            raise ValidationError(
                f"record_attendance: {field}: {absent.name} already has a substitute "
                f"({substitutes[absent.id].name})", field=field)
        if sub.id in {s.id for s in substitutes.values()}:
            raise ValidationError(
                f"record_attendance: {field}: {sub.name} substitutes for one member only",
                field=field)
        substitutes[absent.id] = sub
    sub_ids = {s.id for s in substitutes.values()}
    observers: list[tuple[int | None, str]] = []
    for i, n in enumerate(watching, start=1):
        found = uow.directory.person_called(str(n))
        if found is not None and (found.id in roll or found.id in sub_ids):
            raise ValidationError(
                f"record_attendance: observers[{i}]: {found.name} is a member or a substitute "
                f"at {m.ref}, not an observer", field=f"observers[{i}]")
        observers.append((found.id, found.name) if found else (None, str(n).strip()))
    chair = person(uow, chair_name, "chair") if chair_name else None
    if chair is not None and chair.id not in ids | sub_ids:
        raise ValidationError(
            f"record_attendance: chair: {chair.name} is not a member present or a substitute",
            field="chair")
    # the whole roll in one statement (not one per member)
    member_t = MeetingMember.__table__
    uow.conn.execute(
        update(member_t)
        .where(member_t.c.meeting_id == m.id)
        .values(present=member_t.c.person_id.in_(ids),
                apologies=member_t.c.person_id.in_(list(apologies)),
                substitute_id=case({pid: s.id for pid, s in substitutes.items()},
                                   value=member_t.c.person_id) if substitutes else null())
    )
    observer_t = MeetingObserver.__table__
    if observed:  # the observers recorded before go (none: nothing to delete)
        uow.conn.execute(observer_t.delete().where(observer_t.c.meeting_id == m.id))
    if observers:
        uow.conn.execute(insert(MeetingObserver), [
            {"meeting_id": m.id, "person_id": pid, "name": name} for pid, name in observers])
    # the agenda follows events from scheduling (engine.read.agenda); attendance
    # records only who is there. The version still moves: a concurrent roll loses.
    agenda = meeting_agenda(uow.conn, m)
    uow.update_versioned(Meeting, m.id, m.version, {"chair_id": chair.id if chair else None},
                         m.ref)
    counted = len(ids) + len(substitutes)
    quorate = counted >= m.quorum
    after: dict[str, Any] = {"present": sorted(p.name for p in present), "quorate": quorate}
    if apologies:
        after["apologies"] = sorted(p.name for p in apologies.values())
    if substitutes:
        after["substitutes"] = {s.name: _name(uow, mid) for mid, s in substitutes.items()}
    if observers:
        after["observers"] = [name for _, name in observers]
    if chair is not None:
        after["chair"] = chair.name
    uow.record(m.ref, {"present": sum(roll.values())}, after)
    return {"meeting": m.ref, "present": len(ids), "substitutes": len(substitutes),
            "quorum": m.quorum, "quorate": quorate, "agenda": agenda}


def _name(uow: UnitOfWork, person_id: int) -> str:
    return next(p.name for p in uow.directory.people_by_email.values() if p.id == person_id)


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
    if member.id not in members(uow, m.id) and member.id not in sitting(uow, m.id):
        raise ValidationError(
            f"declare_interest: member: {member.name} is not a member of {m.ref} (nor a "
            "substitute at it)", field="member")
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
                conflicted: dict[int, PersonRow],
                by_name: dict[str, list[str]] | None = None) -> dict[str, int] | None:
    """Votes as counts ({for: 5, against: 2}) or names ({for: [..], against: [..]}, or
    as text separated by ';' as a form sends them);
    the names of each side given by name are put in ``by_name`` (for the minutes)."""
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
        if isinstance(value, str) and any(ch.isalpha() for ch in value):
            value = [v.strip() for v in value.split(";") if v.strip()]  # names as text (a form)
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
                if by_name is not None:
                    by_name.setdefault(side, []).append(p.name)
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
    m = load_meeting(uow, args.text("meeting"), agenda=False)  # its agenda is not needed
    ref = args.text("item", max_len=40)
    outcome = args.choice("outcome", OUTCOMES)
    amount = args.pence("amount", required=False)
    reasons = args.text("reasons", required=False, max_len=4000)
    missing = args.text("missing", required=False, max_len=4000)
    raw_votes = args.raw("votes")
    casting = args.choice("casting", ("for", "against"), default="")
    to_meeting_ref = args.text("to_meeting", required=False, max_len=40)
    conditions = read_conditions("decide", args.raw("conditions"))
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
    # members present and substitutes in members' places; those with an interest in it
    present, conflicted_ids = sitting_for(uow, m.id, ref)
    eligible = {pid: p for pid, p in present.items() if pid not in conflicted_ids}
    conflicted = {pid: p for pid, p in present.items() if pid in conflicted_ids}
    orders_file, orders = standing_orders(uow, m)
    if len(eligible) < m.quorum:
        if conflicted and len(present) >= m.quorum:  # quorate, but too many have an interest
            why = (f"; {', '.join(sorted(p.name for p in conflicted.values()))} declared an "
                   f"interest: too many members are conflicted{orders.cite('interests')}, "
                   "members with an interest take no part in the item")
        else:
            why = f"{orders.cite('quorum')}" + (
                f"; {', '.join(sorted(p.name for p in conflicted.values()))} declared an interest"
                if conflicted else "")
        raise ValidationError(
            f"decide: meeting: {m.ref} is not quorate for {ref}: {len(eligible)} members "
            f"present may take part, the quorum is {m.quorum}{why}", field="meeting")
    named: dict[str, list[str]] = {}
    votes = _read_votes(uow, raw_votes, eligible, conflicted, named)
    standing_order = ""
    if votes is None and casting:
        raise ValidationError(
            "decide: casting: record the votes (votes: {for: N, against: N}) with a casting vote",
            field="casting")
    if votes is not None:
        standing_order = _carried(uow, m, votes, casting, len(eligible), conflicted,
                                  orders_file, orders, outcome)
    to_meeting = _to_meeting(uow, m, to_meeting_ref, outcome)
    if outcome != "approve" and amount is not None:
        raise ValidationError("decide: amount: only an approval has an amount", field="amount")
    if outcome != "approve" and conditions:
        raise ValidationError("decide: conditions: only an approval has conditions",
                              field="conditions")
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
    grant_ref = None
    if outcome == "approve":  # the decision's ref and the grant's, in one read
        decision_ref, grant_ref = next_refs(conn, (Decision, "decision"), (Grant, "grant"))
    else:
        decision_ref = next_ref(conn, Decision, "decision")
    after: dict[str, Any] = {"state": new_state, "decision": decision_ref, "meeting": m.ref}
    cover = None
    if outcome == "approve":
        amount = amount or bid.grant_requested_pence
        grant_ref, _, cover = commit_grant(uow, bid, amount, decision_ref,
                                           conditions=conditions, grant_ref=grant_ref)
        after.update(amount_pence=amount, grant=grant_ref)
        if conditions:
            after["conditions"] = [c.words() for c in conditions]
    decided = unscored or uow.fire(BID, outcome, bid.state, bid.ref, cover)
    conn.execute(insert_into(Decision), dict(
        ref=decision_ref, item_ref=ref, meeting_id=m.id, outcome=outcome, amount_pence=amount,
        reasons=reasons, missing=missing, state_before=bid.state,
        votes_for=votes and votes["for"], votes_against=votes and votes["against"],
        votes_abstain=votes and votes["abstain"], decided_on=uow.today,
        to_meeting_id=to_meeting.id if to_meeting is not None else None,
        named_votes=named or None, casting=casting, standing_order=standing_order,
        conditions=[c.as_json() for c in conditions] or None,
    ))
    uow.update_versioned(Bid, bid.id, bid.version, {}, ref, decided)
    if votes:
        after["votes"] = votes
        if named:
            after["named_votes"] = named
        if casting:
            after["casting"] = casting
        after["standing_order"] = standing_order
    if to_meeting is not None:
        after["to_meeting"] = to_meeting.ref
    uow.record(ref, {"state": bid.state}, after, reasons or missing)
    sponsor = uow.directory.orgs_by_id[bid.sponsor_id]
    context = {"ref": ref, "title": bid.title, "sponsor": sponsor.name, "outcome": outcome,
               "meeting": m.title, "date": m.held_on.isoformat(), "amount_pence": amount,
               "requested_pence": bid.grant_requested_pence, "reasons": reasons,
               "missing": missing, "grant": grant_ref,
               **({"conditions": [c.text for c in conditions]} if conditions else {}),
               **({"to_meeting": to_meeting.title,
                   "to_meeting_date": to_meeting.held_on.isoformat()}
                  if to_meeting is not None else {})}
    template = "referred_back" if outcome == "refer_back" else "decision_letter"
    for name, email in sponsor_contacts(uow, sponsor):
        uow.notify(key=f"{template}:{decision_ref}:{email}", to=email, template=template,
                   subject=_subject(outcome, ref, bid.title), context={**context, "name": name})
    return {"decision": decision_ref, "item": ref, "outcome": outcome, "state": new_state,
            "amount_pence": amount, "grant": grant_ref, "votes": votes,
            **({"conditions": len(conditions)} if conditions else {})}


def _carried(uow: UnitOfWork, m: Any, votes: dict[str, int], casting: str, may_vote: int,
             conflicted: dict[int, PersonRow], orders_file: StandingOrders, orders: Orders,
             outcome: str) -> str:
    """The standing order the votes carry the motion under (as recorded with the
    decision), or a refusal that names it. A casting vote decides only an equality
    of votes, and only where the standing orders give the Chair one."""
    voting = orders.voting
    f, a = votes["for"], votes["against"]
    motion = f"the motion to {outcome.replace('_', ' ')}"
    if casting:
        if voting.casting_vote != "chair":
            raise ValidationError(
                f"decide: casting: {voting.words} gives the Chair no casting vote "
                f"({orders_file.label})", field="casting")
        if f != a:
            raise ValidationError(
                f"decide: casting: a casting vote decides only an equality of votes; {f} for "
                f"and {a} against are not equal", field="casting")
        if m.chair_id is not None and m.chair_id in conflicted:
            raise ValidationError(
                f"decide: casting: {conflicted[m.chair_id].name} (the Chair) declared an "
                "interest in this item and has no casting vote on it", field="casting")
    carried = (casting == "for" and voting.carried(f + 1, a, may_vote)) if casting else (
        voting.carried(f, a, may_vote))
    if not carried:
        if casting == "against":
            then = "; the Chair's casting vote was against"
        elif not casting and voting.casting_decides(f, a, may_vote):
            then = "; the Chair's casting vote may decide it: give casting: for|against"
        else:
            then = "; record the outcome the Board carried"
        raise ValidationError(
            f"decide: votes: {f} for and {a} against do not carry {motion}: not carried "
            f"under {voting.words}{then}", field="votes")
    return f"{orders_file.label}, {voting.words}"


def _to_meeting(uow: UnitOfWork, m: Any, ref: str, outcome: str) -> Any:
    """The later meeting of the same programme a referral back names, or None."""
    if not ref:
        return None
    if outcome != "refer_back":
        raise ValidationError(
            "decide: to_meeting: only a referral back names the meeting it comes back to",
            field="to_meeting")
    target = load_meeting(uow, ref, agenda=False)
    if target.programme_id != m.programme_id:
        raise ValidationError(
            f"decide: to_meeting: {target.ref} is a meeting of another programme",
            field="to_meeting")
    if (target.held_on, target.id) <= (m.held_on, m.id) or target.state != "scheduled":
        raise ValidationError(
            f"decide: to_meeting: {target.ref} ({target.held_on}) is not a later scheduled "
            f"meeting than {m.ref} ({m.held_on})", field="to_meeting")
    return target


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
    conn.execute(insert_into(Decision), dict(
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
