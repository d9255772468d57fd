"""Read-side views of returns: the list, the late-returns board and the calendar.

Plain dicts (amounts in pence, dates as ISO text; the list typed by its shape,
engine/read/shapes.py) shared by the CLI, the board paper (``quorum paper
returns``), ``replay --json``, the web and the REST API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.domain.money import format_pence
from engine.read import shapes
from engine.read.savings import savings_paper
from engine.store.models import (
    Bid,
    Grant,
    Meeting,
    Milestone,
    Organisation,
    Pot,
    Programme,
    RepaymentInstalment,
    Return,
)
from rules.reminders import OUTSTANDING
from rules.returns import KINDS

R = Return.__table__
G = Grant.__table__
ORG = Organisation.__table__
BID = Bid.__table__
POT = Pot.__table__
PROG = Programme.__table__
MS = Milestone.__table__
INST = RepaymentInstalment.__table__


def _days_late(state: str, due: dt.date, submitted: dt.date | None, today: dt.date) -> int:
    """Outstanding: days past due as of today; submitted: how late it came in."""
    if state in OUTSTANDING:
        return max((today - due).days, 0)
    if submitted is not None:
        return max((submitted - due).days, 0)
    return 0


def _rows(db: Session | Connection, where: list | None = None) -> list[Any]:
    q = (
        select(
            R.c.ref,
            R.c.kind,
            R.c.period_start,
            R.c.period_end,
            R.c.due_on,
            R.c.state,
            R.c.submitted_on,
            R.c.savings_delivered_pence,
            R.c.savings_anticipated_pence,
            G.c.ref.label("grant"),
            G.c.state.label("grant_state"),
            BID.c.title,
            ORG.c.name.label("organisation"),
            PROG.c.name.label("programme"),
            PROG.c.id.label("programme_id"),
        )
        .select_from(
            R.join(G, G.c.id == R.c.grant_id)
            .join(BID, BID.c.id == G.c.bid_id)
            .join(ORG, ORG.c.id == G.c.accountable_body_id)
            .join(POT, POT.c.id == G.c.pot_id)
            .join(PROG, PROG.c.id == POT.c.programme_id)
        )
        .order_by(R.c.due_on, G.c.ref, R.c.kind, R.c.ref)
    )
    if where:
        q = q.where(*where)
    return list(db.execute(q))


def returns(
    db: Session | Connection, today: dt.date, refs: Sequence[str] | None = None
) -> list[shapes.ReturnRow]:
    """Every return (``refs``: only those; one page of a list, engine/read/lists.py):
    ref, grant, kind, period, due date, state, days late."""
    return [
        {
            "ref": r.ref,
            "kind": "return",
            "return_kind": r.kind,
            "grant": r.grant,
            "title": r.title,
            "organisation": r.organisation,
            "period_start": r.period_start.isoformat(),
            "period_end": r.period_end.isoformat(),
            "due_on": r.due_on.isoformat(),
            "state": r.state,
            "submitted_on": r.submitted_on.isoformat() if r.submitted_on else None,
            "days_late": _days_late(r.state, r.due_on, r.submitted_on, today),
            "savings_delivered_pence": r.savings_delivered_pence,
            "savings_anticipated_pence": r.savings_anticipated_pence,
        }
        for r in _rows(db, None if refs is None else [R.c.ref.in_(refs)])
    ]


def late_returns(db: Session | Connection, as_of: dt.date, programme_id: int | None = None) -> dict:
    """Outstanding returns past their due date, grouped by partnership (the
    grant's accountable body), most overdue first within each; and late
    repayment instalments."""
    where = [R.c.state.in_(OUTSTANDING), R.c.due_on < as_of, G.c.state != "cancelled"]
    if programme_id is not None:
        where.append(PROG.c.id == programme_id)
    groups: dict[str, list[dict]] = {}
    for r in _rows(db, where):
        groups.setdefault(r.organisation, []).append(
            {
                "ref": r.ref,
                "grant": r.grant,
                "title": r.title,
                "kind": r.kind,
                "kind_label": KINDS.get(r.kind, r.kind),
                "period_end": r.period_end.isoformat(),
                "due_on": r.due_on.isoformat(),
                "state": r.state,
                "days_late": (as_of - r.due_on).days,
            }
        )
    partnerships = []
    for name in sorted(groups, key=str.lower):
        items = sorted(groups[name], key=lambda x: (-x["days_late"], x["grant"], x["kind"]))
        partnerships.append(
            {
                "partnership": name,
                "late": len(items),
                "most_days_late": items[0]["days_late"],
                "returns": items,
            }
        )
    instalments = _late_instalments(db, as_of, programme_id)
    return {
        "as_of": as_of.isoformat(),
        "late_returns": sum(p["late"] for p in partnerships),
        "partnerships": partnerships,
        "late_instalments": instalments,
    }


def _late_instalments(
    db: Session | Connection, as_of: dt.date, programme_id: int | None
) -> list[dict]:
    q = (
        select(
            G.c.ref,
            INST.c.seq,
            INST.c.due_on,
            INST.c.amount_pence,
            INST.c.repaid_pence,
            ORG.c.name,
        )  # fmt: skip
        .select_from(
            INST.join(G, G.c.id == INST.c.grant_id)
            .join(ORG, ORG.c.id == G.c.accountable_body_id)
            .join(POT, POT.c.id == G.c.pot_id)
        )
        .where(INST.c.due_on < as_of, INST.c.repaid_pence < INST.c.amount_pence)
        .order_by(INST.c.due_on, G.c.ref, INST.c.seq)
    )
    if programme_id is not None:
        q = q.where(POT.c.programme_id == programme_id)
    return [
        {
            "grant": r[0],
            "seq": r[1],
            "due_on": r[2].isoformat(),
            "outstanding_pence": r[3] - r[4],
            "partnership": r[5],
            "days_late": (as_of - r[2]).days,
        }
        for r in db.execute(q)
    ]


def meeting_paper(db: Session | Connection, meeting_ref: str) -> dict:
    """The late-returns paper for a meeting: as of the meeting's date, for its programme."""
    meeting = Meeting.__table__
    m = db.execute(
        select(
            meeting.c.id, meeting.c.ref, meeting.c.title, meeting.c.held_on, meeting.c.programme_id
        ).where(meeting.c.ref == meeting_ref)
    ).first()
    if m is None:
        raise NotFound(f"paper returns: no meeting {meeting_ref!r}", field="meeting")
    programme = db.execute(select(PROG.c.name).where(PROG.c.id == m.programme_id)).scalar()
    late = late_returns(db, m.held_on, m.programme_id)
    return {
        "meeting": {"ref": m.ref, "title": m.title, "date": m.held_on.isoformat()},
        "programme": programme,
        **late,
        # savings delivered and deposits with their calculation (issue 13)
        **savings_paper(db, m.programme_id, m.held_on),
    }


# ------------------------------------------------------------------ calendar


def calendar_items(db: Session | Connection) -> list[dict]:
    """Every due date: returns, grant milestones and repayment instalments, each
    with a stable uid (the same item keeps its uid in every export)."""
    items: list[dict] = []
    for r in _rows(db, [G.c.state != "cancelled"]):
        label = KINDS.get(r.kind, r.kind)
        items.append(
            {
                "uid": f"return-{r.ref}@quorum",
                "date": r.due_on,
                "summary": f"{label[0].upper() + label[1:]} due: {r.grant} {r.title} "
                f"({r.organisation})",
                "description": f"Return {r.ref} for {r.period_start.isoformat()} to "
                f"{r.period_end.isoformat()}; state {r.state}",
                "category": "return",
                "organisation": r.organisation,
            }
        )
    for m in db.execute(
        select(
            G.c.ref, MS.c.seq, MS.c.outcome, MS.c.due_on, MS.c.payment_pence, MS.c.state, ORG.c.name
        )  # fmt: skip
        .select_from(
            MS.join(G, G.c.id == MS.c.grant_id).join(ORG, ORG.c.id == G.c.accountable_body_id)
        )
        .where(MS.c.state != "cancelled", G.c.state != "cancelled")
        .order_by(MS.c.due_on, G.c.ref, MS.c.seq)
    ):
        items.append(
            {
                "uid": f"milestone-{m[0]}-{m[1]}@quorum",
                "date": m[3],
                "summary": f"Milestone {m[1]} due: {m[0]} {m[2]} ({m[6]})",
                "description": f"Payment {format_pence(m[4])} against evidence; state {m[5]}",
                "category": "milestone",
                "organisation": m[6],
            }
        )
    for i in db.execute(
        select(
            G.c.ref, INST.c.seq, INST.c.due_on, INST.c.amount_pence, INST.c.repaid_pence, ORG.c.name
        )  # fmt: skip
        .select_from(
            INST.join(G, G.c.id == INST.c.grant_id).join(ORG, ORG.c.id == G.c.accountable_body_id)
        )
        .order_by(INST.c.due_on, G.c.ref, INST.c.seq)
    ):
        items.append(
            {
                "uid": f"instalment-{i[0]}-{i[1]}@quorum",
                "date": i[2],
                "summary": f"Repayment {i[1]} due: {i[0]} ({i[5]})",
                "description": f"{format_pence(i[3])} due, {format_pence(i[4])} repaid",
                "category": "repayment",
                "organisation": i[5],
            }
        )
    items.sort(key=lambda x: (x["date"], x["uid"]))
    return items


def calendar_ics(
    db: Session | Connection, stamp: dt.datetime, organisation: str | None = None
) -> bytes:
    """An iCalendar file with one all-day VEVENT per due date (``stamp``: DTSTAMP);
    ``organisation``: only that accountable body's due dates (a sponsor's view)."""
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//Quorum//due dates//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Quorum due dates")
    for item in calendar_items(db):
        if organisation is not None and item["organisation"] != organisation:
            continue
        ev = Event()
        ev.add("uid", item["uid"])
        ev.add("dtstamp", stamp)
        ev.add("dtstart", item["date"])
        ev.add("dtend", item["date"] + dt.timedelta(days=1))
        ev.add("summary", item["summary"])
        ev.add("description", item["description"])
        ev.add("categories", [item["category"]])
        ev.add("transp", "TRANSPARENT")
        cal.add_component(ev)
    return cal.to_ical()


def latest_accepted_savings(conn: Connection, grant_id: int, by: dt.date) -> Any:
    """The grant's latest accepted savings return whose period ends on or before
    ``by`` (its ``savings_delivered_pence`` is cumulative, to date), or None."""
    return conn.execute(
        select(R)
        .where(
            R.c.grant_id == grant_id,
            R.c.kind == "savings",
            R.c.state == "accepted",
            R.c.period_end <= by,
        )
        .order_by(R.c.period_end.desc())
        .limit(1)
    ).first()
