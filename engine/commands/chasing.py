"""The daily sweep's second kind of item: a meeting's open actions, reminded
before they are due and chased after, through the same ladder file as returns
(rules/reminders.yaml, the ladders with ``applies_to: actions``).

An action is due on its due date, or on the date of the meeting it is to be
reported to (its target meeting; moved with it by ``move_action``). Only open
actions are chased: one reported done or dropped is not. Which rungs apply is
decided by the ladder's durable_rules ruleset (one fact per action in reach:
``days_from_due``, ``owner_kind``), as for returns; each rung is queued once per
action and recipient, ever, under the outbox key
``action:<action ref>:<rung>:<recipient email>`` (checked before queueing, and
unique in the table): a second sweep, or one after a crash (the sweep is one
transaction: nothing of a failed one is kept), queues nothing twice.

Who is told (``to``): ``owner`` is a person owner by their email, a partnership
or organisation owner through its sponsor contacts (else its own address),
a free-text owner through the person who recorded the action (else the
officers); a role (``officer``, ``director``, ``chair``...) is everyone active
holding it. Actions are a handful per meeting, so they are read into Python;
the words of a message (dates, meeting, role) are written here, once, from
engine/domain/words.py: the context and subject are complete when queued.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from engine.commands.uow import UnitOfWork
from engine.domain.words import date_words, escalation_words, long_date, role_words
from engine.store.directory import PersonRow
from engine.store.models import Action, AuditEvent, Meeting, Outbox
from rules.reminders import Ladder, LadderRules, Rung
from workflows.action import OPEN

__all__ = ["ChaseSummary", "action_key", "chase_actions", "due_rows"]

A = Action.__table__
M = Meeting.__table__
TARGET = aliased(M, name="target")
OUT = Outbox.__table__
AUDIT = AuditEvent.__table__
RECORDING = ("record_action", "add_action")  # the commands that record an action
OWNER_WORDS = "action owner"


def action_key(ref: str, rung: str, email: str) -> str:
    """The outbox key of one rung of one action for one recipient (exactly once)."""
    return f"action:{ref}:{rung}:{email.lower()}"


@dataclass
class ChaseSummary:
    queued: Counter[str]  # rung -> messages queued
    no_recipient: dict[str, int]  # "<rung> to <who>" -> actions with nobody to tell
    facts: int  # actions in reach of a ladder


@dataclass(frozen=True)
class Due:
    """An open action in reach of the ladders, with what its messages say."""

    id: int
    ref: str
    number: int
    what: str
    owner: str
    owner_kind: str  # person / partnership / organisation / text (free text)
    owner_id: int | None
    due_on: dt.date
    meeting_ref: str
    meeting: str  # in words: title and date
    target_meeting: str  # in words, or "" for a due date
    programme: str


def due_rows(uow: UnitOfWork, as_of: dt.date, ladders: Iterable[Ladder]) -> list[Due]:
    """The open actions whose "days from due" some ladder of actions can reach."""
    found = list(ladders)
    if not found:
        return []
    due = func.coalesce(A.c.due_on, TARGET.c.held_on)
    where = [A.c.state == OPEN, due <= as_of - dt.timedelta(days=min(x.earliest() for x in found))]
    ends = [x.latest() for x in found]
    if all(e is not None for e in ends):
        where.append(due >= as_of - dt.timedelta(days=max(e for e in ends if e is not None)))
    rows = uow.conn.execute(
        select(A.c.id, A.c.number, A.c.what, A.c.owner, A.c.owner_kind, A.c.owner_id,
               due.label("due"), M.c.ref.label("meeting_ref"), M.c.title, M.c.held_on,
               M.c.programme_id, TARGET.c.title.label("target_title"),
               TARGET.c.held_on.label("target_on"))
        .select_from(A.join(M, M.c.id == A.c.meeting_id)
                     .outerjoin(TARGET, TARGET.c.id == A.c.target_meeting_id))
        .where(*where)
        .order_by(M.c.held_on, M.c.id, A.c.number)
    )  # fmt: skip
    programmes = uow.directory.programmes
    return [
        Due(
            r.id, f"{r.meeting_ref}/A{r.number}", r.number, r.what, r.owner,
            r.owner_kind or "text", r.owner_id, _date(r.due), r.meeting_ref,
            f"{r.title}, {date_words(_date(r.held_on))}",
            f"{r.target_title}, {date_words(_date(r.target_on))}" if r.target_title else "",
            programmes.get(r.programme_id, ""),
        )  # fmt: skip
        for r in rows
    ]


def _date(value: Any) -> dt.date:
    """A date as the driver gives it (SQLite: ISO text from an expression)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


# ------------------------------------------------------------------ recipients


def _with_role(uow: UnitOfWork, role: str) -> list[PersonRow]:
    return [p for p in uow.directory.people_by_email.values()
            if p.active and role in p.roles and p.email]  # fmt: skip


def _recorder(uow: UnitOfWork, ref: str) -> PersonRow | None:
    """The person who recorded the action (its first audit event's actor)."""
    actor = uow.conn.execute(
        select(AUDIT.c.actor)
        .where(AUDIT.c.item_ref == ref, AUDIT.c.command.in_(RECORDING))
        .order_by(AUDIT.c.seq).limit(1)
    ).scalar()  # fmt: skip
    found = uow.directory.person_called(actor) if actor else None
    return found if found is not None and found.active and found.email else None


def _owner(uow: UnitOfWork, a: Due) -> list[tuple[str, str]]:
    """(name, email) of those an action's owner is told through."""
    d = uow.directory
    if a.owner_kind == "person":
        people = [p for p in d.people_by_email.values() if p.id == a.owner_id]
        return [(p.name, p.email) for p in people if p.active and p.email]
    if a.owner_kind in ("partnership", "organisation") and a.owner_id is not None:
        contacts = [(p.name, p.email) for p in d.contacts_by_org.get(a.owner_id, []) if p.email]
        org = d.orgs_by_id.get(a.owner_id)
        if contacts or org is None or not org.email:
            return contacts
        return [(org.name, org.email)]
    recorder = _recorder(uow, a.ref)  # free text: whoever recorded it, else the officers
    if recorder is not None:
        return [(recorder.name, recorder.email)]
    return [(p.name, p.email) for p in _with_role(uow, "officer")]


def _recipients(uow: UnitOfWork, a: Due, who: str) -> list[tuple[str, str]]:
    if who == "owner":
        return _owner(uow, a)
    return [(p.name, p.email) for p in _with_role(uow, who)]


# ------------------------------------------------------------------ the messages


def _fields(
    a: Due, as_of: dt.date, name: str, who: str, nxt: tuple[str, int] | None
) -> dict[str, Any]:
    """What a message of the ladder says (the subject fields and the template's)."""
    days = (as_of - a.due_on).days
    return {
        "name": name, "role": OWNER_WORDS if who == "owner" else role_words(who),
        "action_ref": a.ref, "number": a.number, "what": a.what, "owner": a.owner,
        "meeting": a.meeting, "meeting_ref": a.meeting_ref, "target_meeting": a.target_meeting,
        "programme": a.programme, "due_date": long_date(a.due_on),
        "due_on": a.due_on.isoformat(), "days_late": max(days, 0), "days_before": max(-days, 0),
        "escalation": escalation_words(nxt[0], a.due_on + dt.timedelta(days=nxt[1]))
        if nxt else "",
    }  # fmt: skip


def chase_actions(uow: UnitOfWork, as_of: dt.date, rules: LadderRules) -> ChaseSummary:
    """Queue every rung due on ``as_of`` for the open actions (see the module)."""
    programmes = sorted(set(uow.directory.programmes.values()))
    ladders = {x.ruleset: x for x in (rules.ladder_for("actions", p) for p in programmes) if x}
    summary = ChaseSummary(Counter(), {}, 0)
    by_ladder: dict[str, tuple[Ladder, list[Due]]] = {}
    for a in due_rows(uow, as_of, ladders.values()):
        ladder = rules.ladder_for("actions", a.programme)
        if ladder is not None:
            by_ladder.setdefault(ladder.ruleset, (ladder, []))[1].append(a)
    wanted: list[tuple[str, str, str, Due, Ladder, Rung, str]] = []  # key, name, email, ...
    for ladder, group in by_ladder.values():
        facts = [{"ref": a.ref, "days_from_due": (as_of - a.due_on).days,
                  "owner_kind": a.owner_kind} for a in group]  # fmt: skip
        summary.facts += len(facts)
        for a, names in zip(group, ladder.applicable(facts), strict=True):
            for rung in (r for r in ladder.rungs if r.name in names):
                for who in rung.to:
                    people = _recipients(uow, a, who)
                    if not people:
                        label = f"{rung.name} to {who}"
                        summary.no_recipient[label] = summary.no_recipient.get(label, 0) + 1
                    for name, email in people:
                        key = action_key(a.ref, rung.name, email)
                        wanted.append((key, name, email, a, ladder, rung, who))
    sent = _queued(uow, [w[0] for w in wanted])
    for key, name, email, a, ladder, rung, who in wanted:
        if key in sent:
            continue
        sent.add(key)
        fields = _fields(a, as_of, name, who, ladder.next_escalation(rung))
        uow.notify(key=key, to=email, template=rung.template, subject=rung.subject.format(**fields),
                   context={**fields, "email": email, "rung": rung.name,
                            "as_of": as_of.isoformat(), "date": date_words(as_of)})  # fmt: skip
        summary.queued[rung.name] += 1
    return summary


def _queued(uow: UnitOfWork, keys: list[str]) -> set[str]:
    """Those of the keys already in the outbox (queued by an earlier sweep)."""
    out: set[str] = set()
    for i in range(0, len(keys), 500):
        out.update(uow.conn.execute(
            select(OUT.c.key).where(OUT.c.key.in_(keys[i:i + 500]))).scalars())
    return out
