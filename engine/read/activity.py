"""An item's activity feed: its audit trail told in words, newest first.

    activity(conn, ref) -> [Activity]   e.g. "Ana Ruiz approved the bid on 5 May 2012"

Names, not ids or addresses (the actor's email -> the person's name; ``pot_id:
4`` -> "pot: Capital"); pounds, not pence ("grant: £75,000"); dates and states
in words; field names as people say them (``grant_requested_pence`` ->
"grant requested"). One query for the events and one per kind of id named in
them (people, organisations, pots, meetings), whatever the number of events.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.engine import Connection

from engine.domain.clock import local_date
from engine.domain.money import format_pence
from engine.domain.words import code_words, date_words
from engine.store.models import AuditEvent, Meeting, Organisation, Person, Pot

__all__ = ["Activity", "activity", "field_words", "verb"]

AUDIT = AuditEvent.__table__
PERSON = Person.__table__
ORG = Organisation.__table__
POT = Pot.__table__
MEET = Meeting.__table__


class Activity(TypedDict):
    """One line of the feed."""

    seq: int
    date: str  # in words: 5 May 2012
    who: str  # a name
    did: str  # "approved the bid"
    text: str  # "Ana Ruiz approved the bid on 5 May 2012"
    details: list[str]  # "pot: Capital", "grant: £75,000"
    reason: str


# what a command did, as a person says it (the rest: the command's words)
VERBS: dict[str, str] = {
    "submit_bid": "submitted the bid",
    "amend_bid": "amended the bid",
    "withdraw_bid": "withdrew the bid",
    "resubmit_bid": "resubmitted the bid",
    "score_round": "scored the bid",
    "override_score": "changed the bid's score",
    "reverse_decision": "reversed the decision",
    "request_delegated_decision": "asked for a delegated decision",
    "sign": "signed the delegated decision",
    "endorse": "endorsed the delegated decision",
    "endorse_several": "endorsed the delegated decision",
    "stand_aside": "stood aside from the decision",
    "record_absence": "recorded a signatory's absence",
    "expire_delegated_decisions": "recorded that the request expired",
    "sweep": "recorded that the request expired",
    "submit_evidence": "submitted evidence",
    "verify_milestone": "verified the evidence",
    "reject_evidence": "did not accept the evidence",
    "release_payment": "released a payment",
    "reprofile_milestone": "changed a milestone",
    "add_milestone": "added a milestone",
    "extend_grant": "extended the grant",
    "close_grant": "closed the grant",
    "demand_refund": "demanded a refund",
    "submit_return": "submitted the return",
    "accept_return": "accepted the return",
    "query_return": "queried the return",
    "restate_return": "restated the return",
}
OUTCOMES = {
    "approve": "approved the bid",
    "reject": "rejected the bid",
    "defer": "deferred the bid",
    "refer_back": "referred the bid back",
}
OUTCOMES.update({"approved": OUTCOMES["approve"], "rejected": OUTCOMES["reject"],
                 "deferred": OUTCOMES["defer"],
                 "referred_back": OUTCOMES["refer_back"]})  # fmt: skip
# fields whose value is an id: the table and column that name it
NAMED_IDS: dict[str, str] = {
    "pot_id": "pot",
    "sponsor_id": "organisation",
    "accountable_body_id": "organisation",
    "organisation_id": "organisation",
    "meeting_id": "meeting",
    "reported_meeting_id": "meeting",
    "submitted_by_id": "person",
    "requested_by_id": "person",
    "reviewed_by_id": "person",
    "released_by_id": "person",
    "person_id": "person",
}
_CODE = re.compile(r"[a-z]+(?:_[a-z]+)+")
HIDDEN = {"version", "id", "ref", "bid_id", "grant_id", "milestone_id", "round_id", "hash"}


def field_words(name: str) -> str:
    """grant_requested_pence -> grant requested; pot_id -> pot; due_on -> due."""
    for suffix in ("_pence", "_id", "_on"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ").replace(".", " ")


def verb(command: str, after: dict[str, Any]) -> str:
    """What the event's command did, in words."""
    if command == "decide":
        outcome = str(after.get("outcome") or after.get("state") or "")
        return OUTCOMES.get(outcome, "recorded the Board's decision")
    if command == "delegated_decision" or after.get("delegated") is True:
        return OUTCOMES.get(str(after.get("outcome") or ""), "decided under delegation")
    return VERBS.get(command) or code_words(command)


def _names(conn: Connection, events: list[dict[str, Any]]) -> dict[str, dict[Any, str]]:
    """Per kind of id (person, organisation, pot, meeting) the names of those
    named in the events, and people's names by email (the actors)."""
    wanted: dict[str, set[Any]] = {"person": set(), "organisation": set(), "pot": set(),
                                   "meeting": set()}  # fmt: skip
    emails = {e["actor"].lower() for e in events}
    for e in events:
        for side in (e["before"], e["after"]):
            for k, v in side.items():
                if k in NAMED_IDS and isinstance(v, int):
                    wanted[NAMED_IDS[k]].add(v)
    out: dict[str, dict[Any, str]] = {k: {} for k in (*wanted, "email")}
    for pid, name, email in conn.execute(select(PERSON.c.id, PERSON.c.name, PERSON.c.email)
                                         .where(PERSON.c.id.in_(wanted["person"])
                                                | PERSON.c.email.in_(emails))):  # fmt: skip
        out["person"][pid] = str(name)
        out["email"][str(email).lower()] = str(name)
    for kind, table in (("organisation", ORG), ("pot", POT)):
        if wanted[kind]:
            found = select(table.c.id, table.c.name).where(table.c.id.in_(wanted[kind]))
            out[kind] = {i: str(n) for i, n in conn.execute(found)}
    if wanted["meeting"]:
        met = select(MEET.c.id, MEET.c.ref, MEET.c.title).where(MEET.c.id.in_(wanted["meeting"]))
        out["meeting"] = {i: f"{t} ({r})" for i, r, t in conn.execute(met)}
    return out


def value_words(name: str, value: Any, names: dict[str, dict[Any, str]]) -> str | None:
    """A field's value as a person reads it; None when it is not worth a line
    (a list or a mapping: its own events say what changed)."""
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name in NAMED_IDS and isinstance(value, int):
        return names[NAMED_IDS[name]].get(value, "someone no longer recorded")
    if name.endswith("_pence") and isinstance(value, int):
        return format_pence(value)
    if isinstance(value, (list, dict)):
        return None
    text = str(value)
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            return date_words(dt.date.fromisoformat(text))
        except ValueError:
            return text
    if name in ("state", "outcome", "kind") or _CODE.fullmatch(text):
        return code_words(text)  # a code (over_years): its words
    return text


def activity(conn: Connection, ref: str, limit: int = 200) -> list[Activity]:
    """The item's audit trail in words, newest first (see the module)."""
    rows = conn.execute(
        select(AUDIT.c.seq, AUDIT.c.at, AUDIT.c.actor, AUDIT.c.command, AUDIT.c.before,
               AUDIT.c.after, AUDIT.c.reason)
        .where(AUDIT.c.item_ref == ref).order_by(AUDIT.c.seq.desc()).limit(limit)
    ).all()  # fmt: skip
    events = [
        {"seq": r.seq, "at": r.at, "actor": r.actor, "command": r.command,
         "before": _json(r.before), "after": _json(r.after), "reason": r.reason or ""}
        for r in rows
    ]  # fmt: skip
    names = _names(conn, events)
    out: list[Activity] = []
    for e in events:
        who = names["email"].get(e["actor"].lower()) or (
            "Quorum" if "@" not in e["actor"] else e["actor"]
        )
        day = date_words(local_date(dt.datetime.fromisoformat(e["at"])))
        did = verb(e["command"], e["after"])
        before, after = e["before"], e["after"]
        details = []
        for k in sorted(set(before) | set(after)):
            if k in HIDDEN or before.get(k) == after.get(k):
                continue
            shown = value_words(k, after.get(k), names)
            if shown is not None:
                details.append(f"{field_words(k)}: {shown}")
        out.append(Activity(seq=e["seq"], date=day, who=who, did=did,
                            text=f"{who} {did} on {day}", details=details,
                            reason=e["reason"]))  # fmt: skip
    return out


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
