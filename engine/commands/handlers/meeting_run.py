"""A meeting's agenda as an officer shapes it (issue 12, docs/meetings.md): the
order of its items, report items the Board receives, and reports a meeting
requires for a later one ("Reports required for the next meeting")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select

from engine.commands.args import Args
from engine.commands.lookups import load_meeting
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork
from engine.domain.errors import ValidationError
from engine.read.agenda import meeting_agenda
from engine.store.models import Meeting, ReportItem
from workflows.meeting import MEETING

REPORT_T = ReportItem.__table__


@command("order_agenda", summary="Set the order of a meeting's agenda items")
def order_agenda(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "order_agenda")
    m = load_meeting(uow, args.text("meeting"))
    refs = [str(r).strip() for r in args.items("items")]
    move = args.text("move", required=False, max_len=40)
    direction = args.choice("direction", ("up", "down"), default="")
    args.done()
    uow.step(MEETING, "order_agenda", m.state, m.ref)
    on_agenda = meeting_agenda(uow.conn, m)
    known = set(on_agenda)
    if move or direction:
        if refs:
            raise ValidationError("order_agenda: move: give the items in order, or one item "
                                  "to move (move, direction), not both", field="move")
        ordered_first = sum(1 for r in (m.agenda_order or []) if r in known)
        refs = moved(m.ref, on_agenda, move, direction, ordered_first)
    elif not refs:
        raise ValidationError("order_agenda: items: give the agenda's items in the order "
                              "taken, or one item to move one place (move, direction)",
                              field="items")
    seen: set[str] = set()
    for i, ref in enumerate(refs, start=1):
        if ref not in known:
            some = ", ".join(on_agenda[:10]) + (f" and {len(on_agenda) - 10} more"
                                                 if len(on_agenda) > 10 else "")
            raise ValidationError(
                f"order_agenda: items[{i}]: {ref} is not on the agenda of {m.ref} (its items: "
                f"{some or 'none'})", field=f"items[{i}]")
        if ref in seen:
            raise ValidationError(f"order_agenda: items[{i}]: {ref} is listed twice",
                                  field=f"items[{i}]")
        seen.add(ref)
    uow.update_versioned(Meeting, m.id, m.version, {"agenda_order": refs}, m.ref)
    agenda = meeting_agenda(uow.conn, load_meeting(uow, m.ref))  # as now ordered
    uow.record(m.ref, {"agenda_order": list(m.agenda_order or [])}, {"agenda_order": refs})
    return {"meeting": m.ref, "agenda": agenda}


def moved(meeting: str, agenda: list[str], item: str, direction: str,
          ordered_first: int = 0) -> list[str]:
    """The officer's order that puts ``agenda`` with ``item`` moved one place
    ``direction`` (up: taken earlier): the agenda up to the later of the two
    places and the ``ordered_first`` items an order already put first; the rest
    keep their natural order after it (engine/read/agenda.py), so moving an item
    near the top of a 100,000-item agenda stores a few refs, not 100,000.
    Refused by field when the item is not on it, the way is missing, or there is
    no place to go."""
    if not item:
        raise ValidationError("order_agenda: move: name the agenda item to move up or down",
                              field="move")
    if not direction:
        raise ValidationError(f"order_agenda: direction: say which way {item} moves: up or "
                              "down", field="direction")
    if item not in agenda:
        raise ValidationError(f"order_agenda: move: {item} is not on the agenda of {meeting}",
                              field="move")
    i = agenda.index(item)
    j = i - 1 if direction == "up" else i + 1
    if not 0 <= j < len(agenda):
        raise ValidationError(f"order_agenda: move: {item} is already "
                              f"{'first' if direction == 'up' else 'last'} on the agenda",
                              field="move")
    out = agenda[:max(i, j, ordered_first - 1) + 1]
    out[i], out[j] = out[j], out[i]
    return out


def _add(uow: UnitOfWork, m: Any, for_meeting: Any, title: str, presenter: str, paper: str,
         required: bool) -> str:
    number = (uow.conn.execute(
        select(func.max(REPORT_T.c.number)).where(REPORT_T.c.raised_at_id == m.id)
    ).scalar() or 0) + 1
    uow.conn.execute(insert(ReportItem).values(
        raised_at_id=m.id, number=number, meeting_id=for_meeting.id if for_meeting else None,
        title=title, presenter=presenter, paper=paper, required=required))
    ref = f"{m.ref}/R{number}"
    uow.record(ref, {}, {"title": title, "presenter": presenter, "paper": paper,
                         "meeting": for_meeting.ref if for_meeting else "the next meeting",
                         **({"required_by": m.ref} if required else {})})
    return ref


@command("add_report_item", summary="Add a report the Board receives to a meeting's agenda")
def add_report_item(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "add_report_item")
    m = load_meeting(uow, args.text("meeting"))
    title = args.text("title", max_len=500)
    presenter = args.text("presenter", max_len=200)
    paper = args.text("paper", required=False, max_len=500)
    args.done()
    uow.step(MEETING, "add_report_item", m.state, m.ref)
    ref = _add(uow, m, m, title, presenter, paper, required=False)
    return {"meeting": m.ref, "item": ref}


@command("require_report", summary="Require a report for a later meeting")
def require_report(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "require_report")
    m = load_meeting(uow, args.text("meeting"))
    title = args.text("title", max_len=500)
    presenter = args.text("presenter", max_len=200)
    later_ref = args.text("for_meeting", required=False, max_len=40)
    args.done()
    uow.step(MEETING, "require_report", m.state, m.ref)
    later = None
    if later_ref:
        later = load_meeting(uow, later_ref)
        if later.programme_id != m.programme_id:
            raise ValidationError(
                f"require_report: for_meeting: {later.ref} is a meeting of another programme",
                field="for_meeting")
        if (later.held_on, later.id) <= (m.held_on, m.id) or later.state != "scheduled":
            raise ValidationError(
                f"require_report: for_meeting: {later.ref} ({later.held_on}) is not a later "
                f"scheduled meeting than {m.ref} ({m.held_on})", field="for_meeting")
    ref = _add(uow, m, later, title, presenter, "", required=True)
    return {"meeting": m.ref, "item": ref, "for_meeting": later.ref if later else ""}
