"""Read-side views of returns: the list, the late-returns board and the calendar;
and (issue 13 item 6) what a monitoring return reports (:func:`return_detail`),
the conditions set on a grant's returns, red returns (:func:`red_returns`: My
work, the agenda) and the "Late and red returns" paper (:func:`late_and_red`).

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
from engine.domain.monitoring import RED, REVIEW_OUTCOMES
from engine.domain.words import period_label, rag_words
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
    ReturnProgress,
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
PROGRESS = ReturnProgress.__table__


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


# ------------------------------------------------------------------ monitoring (issue 13 item 6)


def _lines(db: Session | Connection, return_ids: list[int]) -> dict[int, dict[int, list[dict]]]:
    """Each return's progress lines by version sent in (1, 2, ...), in order."""
    out: dict[int, dict[int, list[dict]]] = {}
    if not return_ids:
        return out
    for p in db.execute(
        select(PROGRESS.c.return_id, PROGRESS.c.submission, PROGRESS.c.line, PROGRESS.c.rag,
               PROGRESS.c.narrative)
        .where(PROGRESS.c.return_id.in_(return_ids))
        .order_by(PROGRESS.c.return_id, PROGRESS.c.submission, PROGRESS.c.seq)
    ):  # fmt: skip
        out.setdefault(p.return_id, {}).setdefault(p.submission, []).append(
            {"line": p.line, "rag": p.rag, "rag_words": rag_words(p.rag),
             "narrative": p.narrative}  # fmt: skip
        )
    return out


def return_detail(db: Session | Connection, ref: str) -> dict | None:
    """What a return reports besides its figures: the latest version's progress lines,
    the overall status (the worst line's), spend to date, issues, risks, the earlier
    versions' lines, and the officer's review (outcome, conditions or what is missing)."""
    r = db.execute(select(R).where(R.c.ref == ref)).first()
    if r is None:
        return None
    versions = _lines(db, [r.id]).get(r.id, {})
    latest = versions.get(r.submissions, [])
    return {
        "ref": r.ref,
        "rag": r.rag,
        "rag_words": rag_words(r.rag),
        "spend_to_date_pence": r.spend_to_date_pence,
        "issues": r.issues,
        "risks": r.risks,
        "progress": latest,
        "submission": r.submissions,
        "earlier": [{"submission": n, "progress": lines}
                    for n, lines in sorted(versions.items()) if n != r.submissions],
        "review_outcome": r.review_outcome,
        "review_words": REVIEW_OUTCOMES.get(r.review_outcome, ""),
        "review_note": r.review_note,
        "reviewed_on": r.reviewed_on.isoformat() if r.reviewed_on else None,
        "revisions": r.revisions,
        "period_label": period_label(r.period_start, r.period_end),
    }  # fmt: skip


def grant_conditions(db: Session | Connection, grant_ref: str) -> list[dict]:
    """The conditions officers set when accepting the grant's returns, oldest first."""
    return [
        {"return": c.ref, "period_label": period_label(c.period_start, c.period_end),
         "conditions": c.review_note, "on": c.reviewed_on.isoformat() if c.reviewed_on else None}
        for c in db.execute(
            select(R.c.ref, R.c.period_start, R.c.period_end, R.c.review_note, R.c.reviewed_on)
            .join(G, G.c.id == R.c.grant_id)
            .where(G.c.ref == grant_ref, R.c.review_outcome == "accepted_with_conditions")
            .order_by(R.c.period_end, R.c.ref)
        )
    ]  # fmt: skip


def _status_rows(db: Session | Connection, as_of: dt.date, programme_id: int | None) -> list[Any]:
    """Every return that reported a status (submitted or accepted, its period ended by
    ``as_of``), of grants not cancelled, oldest period first."""
    q = (
        select(R.c.id, R.c.ref, R.c.kind, R.c.period_start, R.c.period_end, R.c.rag,
               R.c.submissions, R.c.state, G.c.ref.label("grant"), BID.c.title,
               ORG.c.name.label("organisation"), PROG.c.name.label("programme"))
        .select_from(
            R.join(G, G.c.id == R.c.grant_id).join(BID, BID.c.id == G.c.bid_id)
            .join(ORG, ORG.c.id == G.c.accountable_body_id).join(POT, POT.c.id == G.c.pot_id)
            .join(PROG, PROG.c.id == POT.c.programme_id))
        .where(R.c.rag != "", R.c.state.in_(("submitted", "accepted")),
               R.c.period_end <= as_of, G.c.state != "cancelled")
        .order_by(R.c.period_end, R.c.ref)
    )  # fmt: skip
    if programme_id is not None:
        q = q.where(PROG.c.id == programme_id)
    return list(db.execute(q))


def red_returns(
    db: Session | Connection, as_of: dt.date, programme_id: int | None = None
) -> list[dict]:
    """Grants whose latest return with a status (a monitoring or progress return) is
    red: off track, the worst of its lines. Each with the lines not on track."""
    latest: dict[str, Any] = {}
    for r in _status_rows(db, as_of, programme_id):
        latest[r.grant] = r  # later periods replace earlier ones
    red = [r for r in latest.values() if r.rag == RED]
    lines = _lines(db, [r.id for r in red])
    return [
        {"ref": r.ref, "grant": r.grant, "title": r.title, "organisation": r.organisation,
         "programme": r.programme, "kind": r.kind, "kind_label": KINDS.get(r.kind, r.kind),
         "period_end": r.period_end.isoformat(),
         "period_label": period_label(r.period_start, r.period_end), "state": r.state,
         "rag": r.rag, "rag_words": rag_words(r.rag),
         "at_risk": [x for x in lines.get(r.id, {}).get(r.submissions, [])
                     if x["rag"] != "on_track"]}
        for r in sorted(red, key=lambda x: (x.grant, x.ref))
    ]  # fmt: skip


def late_and_red(
    db: Session | Connection, as_of: dt.date, programme_id: int | None = None
) -> dict:
    """The "Late and red returns" paper's rows, by grant: returns overdue (due, past
    their due date), needing revision (sent back to the sponsor) and red (the grant's
    latest return with a status is off track), with days late and the lines at risk."""
    where = [R.c.state.in_(OUTSTANDING), G.c.state != "cancelled"]
    if programme_id is not None:
        where.append(PROG.c.id == programme_id)
    grants: dict[str, dict] = {}

    def grant(ref: str, title: str, organisation: str) -> dict:
        return grants.setdefault(ref, {"grant": ref, "title": title,
                                       "organisation": organisation, "returns": []})  # fmt: skip

    revised = {r.ref: r for r in db.execute(
        select(R.c.ref, R.c.reviewed_on, R.c.review_note).where(R.c.state == "queried"))}
    for r in _rows(db, where):
        if r.state == "due" and r.due_on >= as_of:
            continue  # not late yet
        row = {"ref": r.ref, "kind_label": KINDS.get(r.kind, r.kind),
               "period_label": period_label(r.period_start, r.period_end),
               "due_on": r.due_on.isoformat(), "days_late": max((as_of - r.due_on).days, 0),
               "at_risk": []}  # fmt: skip
        if r.state == "queried":
            back = revised[r.ref]
            row.update(why="needs revision", since=_iso(back.reviewed_on) or r.due_on.isoformat(),
                       note=back.review_note)  # fmt: skip
        else:
            row.update(why="overdue", since=r.due_on.isoformat(), note="")
        grant(r.grant, r.title, r.organisation)["returns"].append(row)
    red = red_returns(db, as_of, programme_id)
    for x in red:
        grant(x["grant"], x["title"], x["organisation"])["returns"].append(
            {"ref": x["ref"], "kind_label": x["kind_label"], "period_label": x["period_label"],
             "due_on": None, "days_late": 0, "why": "red: " + x["rag_words"], "since": None,
             "note": "", "at_risk": x["at_risk"]}  # fmt: skip
        )
    rows = [grants[k] for k in sorted(grants)]
    return {
        "as_of": as_of.isoformat(),
        "grants": rows,
        "overdue": sum(1 for g in rows for x in g["returns"] if x["why"] == "overdue"),
        "needs_revision": sum(1 for g in rows for x in g["returns"]
                              if x["why"] == "needs revision"),  # fmt: skip
        "red": len(red),
    }


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def late_and_red_paper(db: Session | Connection, meeting_ref: str) -> dict:
    """The "Late and red returns" paper for a meeting: as of its date, for its programme."""
    meeting = Meeting.__table__
    m = db.execute(
        select(meeting.c.ref, meeting.c.title, meeting.c.held_on, meeting.c.programme_id)
        .where(meeting.c.ref == meeting_ref)
    ).first()
    if m is None:
        raise NotFound(f"paper monitoring: no meeting {meeting_ref!r}", field="meeting")
    programme = db.execute(select(PROG.c.name).where(PROG.c.id == m.programme_id)).scalar()
    return {
        "meeting": {"ref": m.ref, "title": m.title, "date": m.held_on.isoformat()},
        "programme": programme,
        **late_and_red(db, m.held_on, m.programme_id),
    }

