"""Partnership allocations as the dashboard, the allocation page and the
"Partnership financial summary" paper read them (issue 13 item 4;
docs/grants.md "Partnership allocations").

A partnership allocation is a pot whose owner is a sub-regional partnership
(``Pot.owner_partnership_id``); a pot with no owner is a regional pot. Per
partnership, as of a day (money booked on or before it):

- **allocation**: what its pots hold (Σ allocate, as ratified: the split, less
  underspends returned and ring-fenced contributions; engine/store/ledger.py);
- **committed**, **paid**: the ledger's figures for its pots;
- **balance**: allocation − committed (what it may still bid for);
- **savings delivered**: the accepted savings returns of the grants from its
  pots, to date as their schedules read them (engine/read/savings.py);
- **savings anticipated**: per grant, its savings target (``set_savings_target``)
  if it has one, else the anticipated figure of its latest accepted savings
  return, else the savings its bid claimed;
- **projects carried forward**: its grants still active after the end of the
  financial year the day is in (their end date, or a milestone not yet paid,
  falls after 31 March).

Cost: a fixed number of queries, however many pots, grants and returns, the
grants summed by pot in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.clock import financial_year_end
from engine.domain.errors import NotFound
from engine.domain.money import format_pence
from engine.domain.words import short_date
from engine.read.savings import to_date_by_grant
from engine.store.ledger import PotLedger, fill_pot_line
from engine.store.models import (
    Bid,
    Grant,
    Meeting,
    Milestone,
    MoneyMovement,
    Organisation,
    Pot,
    Programme,
    ProgrammeChange,
    Return,
    SavingsTarget,
)

Reader = Session | Connection
POT_T = Pot.__table__
ORG_T = Organisation.__table__
PROG_T = Programme.__table__
MOVE_T = MoneyMovement.__table__
GRANT_T = Grant.__table__
BID_T = Bid.__table__
MILE_T = Milestone.__table__
TARGET_T = SavingsTarget.__table__
CHANGE_T = ProgrammeChange.__table__
MEET_T = Meeting.__table__
RET_T = Return.__table__

FIGURES = (
    "allocation_pence",
    "committed_pence",
    "paid_pence",
    "savings_delivered_pence",
    "savings_anticipated_pence",
    "balance_pence",
    "grants",
    "carried_forward",
)
OPEN_GRANT = "active"  # workflows/grant.py: a grant still being delivered


def _pots(conn: Reader, programme_id: int | None, as_of: dt.date) -> list[dict[str, Any]]:
    """Every pot (of a programme) with its owner and its ledger as of ``as_of``."""
    q = (
        select(POT_T.c.id, POT_T.c.name, POT_T.c.owner_partnership_id,
               ORG_T.c.name.label("owner"), PROG_T.c.name.label("programme"))
        .join(PROG_T, PROG_T.c.id == POT_T.c.programme_id)
        .outerjoin(ORG_T, ORG_T.c.id == POT_T.c.owner_partnership_id)
        .order_by(POT_T.c.id)
    )  # fmt: skip
    if programme_id is not None:
        q = q.where(POT_T.c.programme_id == programme_id)
    pots = list(conn.execute(q))
    sums: dict[int, dict[str, int]] = defaultdict(dict)
    if pots:
        for pot_id, kind, total in cast(Iterable[tuple[int, str, int | None]], conn.execute(
            select(MOVE_T.c.pot_id, MOVE_T.c.kind, func.sum(MOVE_T.c.amount_pence))
            .where(MOVE_T.c.pot_id.in_([p.id for p in pots]), MOVE_T.c.booked_on <= as_of)
            .group_by(MOVE_T.c.pot_id, MOVE_T.c.kind)
        )):  # fmt: skip
            sums[pot_id][kind] = int(total or 0)
    out = []
    for p in pots:
        line = PotLedger(p.id, p.name, p.programme)
        fill_pot_line(line, sums.get(p.id, {}))
        out.append({"id": p.id, "name": p.name, "owner_id": p.owner_partnership_id,
                    "owner": p.owner, "line": line})  # fmt: skip
    return out


def _grants(conn: Reader, pot_ids: list[int], as_of: dt.date) -> list[Any]:
    """The grants of the pots approved by ``as_of``, by ref (an allocation's page)."""
    return list(conn.execute(
        select(GRANT_T.c.ref, GRANT_T.c.state, BID_T.c.title)
        .join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
        .where(GRANT_T.c.pot_id.in_(pot_ids), GRANT_T.c.approved_on <= as_of)
        .order_by(GRANT_T.c.ref)
    ))


def _grants_in(pot_ids: list[int], as_of: dt.date) -> Any:
    """The grants of the pots approved by ``as_of``, cancelled ones left out."""
    return (GRANT_T.c.pot_id.in_(pot_ids), GRANT_T.c.approved_on <= as_of,
            GRANT_T.c.state != "cancelled")


def _grant_figures(
    conn: Reader, pot_ids: list[int], as_of: dt.date, year_end: dt.date
) -> tuple[list[Any], list[Any], list[Any]]:
    """Summed by pot in SQL (100,000 grants are never read one by one): each pot's
    grants, savings anticipated as the bids or targets say, and grants carried
    forward; the carried-forward grants' refs (by ref); and the grants that have
    accepted savings returns, whose figures the returns may change."""
    if not pot_ids:
        return [], [], []
    later_unpaid = (
        select(MILE_T.c.id)
        .where(MILE_T.c.grant_id == GRANT_T.c.id, MILE_T.c.state != "paid",
               MILE_T.c.due_on > year_end)
        .exists()
    )
    carried = (GRANT_T.c.state == OPEN_GRANT) & (
        (GRANT_T.c.ends_on > year_end) | later_unpaid)
    anticipated = func.coalesce(TARGET_T.c.target_pence, BID_T.c.savings_amount_pence, 0)
    grants = (GRANT_T.join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
              .outerjoin(TARGET_T, TARGET_T.c.grant_id == GRANT_T.c.id))
    where = _grants_in(pot_ids, as_of)
    sums = list(conn.execute(
        select(GRANT_T.c.pot_id, func.count().label("grants"),
               func.sum(anticipated).label("anticipated"),
               func.sum(case((carried, 1), else_=0)).label("carried"))
        .select_from(grants).where(*where).group_by(GRANT_T.c.pot_id)))
    refs = list(conn.execute(
        select(GRANT_T.c.pot_id, GRANT_T.c.ref).where(*where, carried)
        .order_by(GRANT_T.c.ref)))
    with_savings = select(RET_T.c.grant_id).where(RET_T.c.kind == "savings",
                                                  RET_T.c.state == "accepted")
    reporting = list(conn.execute(
        select(GRANT_T.c.id, GRANT_T.c.pot_id, TARGET_T.c.target_pence,
               BID_T.c.savings_amount_pence)
        .select_from(grants).where(*where, GRANT_T.c.id.in_(with_savings))))
    return sums, refs, reporting


def _empty(name: str) -> dict[str, Any]:
    return {"partnership": name, "pots": [], "pot_ids": [], "carried_forward_refs": [],
            **{k: 0 for k in FIGURES}}  # fmt: skip


def partnership_figures(
    conn: Reader, as_of: dt.date, programme_id: int | None = None
) -> dict[str, Any]:
    """Per partnership (by name) and for the regional pots, as of ``as_of``: see the
    module docstring. ``{"as_of", "year_end", "partnerships": [...], "regional": {...},
    "totals": {...}}``; each row has ``partnership`` (the regional row: "Regional
    pots"), ``pots`` (names) and ``pot_ids``, ``carried_forward_refs`` and the
    ``FIGURES``."""
    pots = _pots(conn, programme_id, as_of)
    year_end = financial_year_end(as_of)
    sums, carried, reporting = _grant_figures(conn, [p["id"] for p in pots], as_of, year_end)
    savings = to_date_by_grant(conn, as_of) if reporting else {}
    rows: dict[str, dict[str, Any]] = {}
    regional = _empty("Regional pots")
    row_of_pot: dict[int, dict[str, Any]] = {}
    for p in pots:
        row = regional if p["owner_id"] is None else rows.setdefault(p["owner"],
                                                                     _empty(p["owner"]))
        line: PotLedger = p["line"]
        row["pots"].append(p["name"])
        row["pot_ids"].append(p["id"])
        row["allocation_pence"] += line.allocated_pence
        row["committed_pence"] += line.committed_pence
        row["paid_pence"] += line.paid_pence
        row["balance_pence"] += line.available_pence
        row_of_pot[p["id"]] = row
    for g in sums:
        row = row_of_pot[g.pot_id]
        row["grants"] += int(g.grants)
        row["savings_anticipated_pence"] += int(g.anticipated or 0)
        row["carried_forward"] += int(g.carried or 0)
    for g in carried:
        row_of_pot[g.pot_id]["carried_forward_refs"].append(g.ref)
    for g in reporting:  # savings delivered; a target, else the latest return's figure
        row = row_of_pot[g.pot_id]
        delivered, reported = savings.get(g.id, (0, None))
        row["savings_delivered_pence"] += delivered
        if g.target_pence is None and reported:
            row["savings_anticipated_pence"] += reported - int(g.savings_amount_pence or 0)
    partnerships = sorted(rows.values(), key=lambda r: r["partnership"].lower())
    every = [*partnerships, regional]
    return {
        "as_of": as_of.isoformat(),
        "year_end": year_end.isoformat(),
        "partnerships": partnerships,
        "regional": regional,
        "totals": {k: sum(r[k] for r in every) for k in FIGURES},
    }


# ---------------------------------------------------------------- a pot's history in words


def _move_words(c: dict[str, Any]) -> str:
    """What one entry of a ratified change did to its pot, in words."""
    before, after = int(c["from_pence"]), int(c["to_pence"])
    delta = after - before
    move = c.get("move")
    if move == "split":
        whose = f" ({c['partnership']}'s allocation)" if c.get("partnership") else ""
        return f"{c['share']} of the {format_pence(int(c['of_pence']))} split{whose}"
    if move == "return":
        if "to" in c:
            return f"underspend of {format_pence(-delta)} returned to {c['to']}"
        return f"underspend of {format_pence(delta)} returned from {c['from']}"
    if move == "ring_fence":
        if "to" in c:
            return f"contributed {format_pence(-delta)} to the ring-fenced {c['to']}"
        return f"ring-fenced: {format_pence(delta)} contributed by {', '.join(c['from'])}"
    if before == 0:
        return f"allocated {format_pence(after)}"
    verb = "increased" if delta > 0 else "reduced"
    return f"allocation {verb} by {format_pence(abs(delta))}"


def pot_history(conn: Reader, pot_name: str, programme_id: int) -> list[dict[str, Any]]:
    """Every ratified change to one pot's allocation, oldest first: when, the change's
    ref, the minute that ratified it, the reason, what it did in words, and the
    allocation before and after."""
    out = []
    key = pot_name.lower()
    for r in conn.execute(
        select(CHANGE_T).where(CHANGE_T.c.programme_id == programme_id)
        .order_by(CHANGE_T.c.ratified_on, CHANGE_T.c.id)
    ):
        for c in r.changes or []:
            if str(c.get("pot", "")).lower() != key:
                continue
            out.append({
                "on": r.ratified_on.isoformat(), "date": short_date(r.ratified_on),
                "ref": r.ref, "ratified_by": r.ratified_by, "reason": r.reason,
                "words": _move_words(c), "from_pence": int(c["from_pence"]),
                "to_pence": int(c["to_pence"]),
            })  # fmt: skip
    return out


def allocation_page(conn: Reader, pot_id: int, today: dt.date) -> dict[str, Any] | None:
    """A partnership allocation's page: the pot, whose it is, its ledger today, its
    grants and its history in words; None if there is no such pot or it is a
    regional pot (the page answers 404 for both)."""
    pot = conn.execute(
        select(POT_T.c.id, POT_T.c.name, POT_T.c.programme_id, POT_T.c.owner_partnership_id,
               ORG_T.c.name.label("owner"), PROG_T.c.name.label("programme"))
        .join(PROG_T, PROG_T.c.id == POT_T.c.programme_id)
        .join(ORG_T, ORG_T.c.id == POT_T.c.owner_partnership_id)
        .where(POT_T.c.id == pot_id)
    ).first()  # fmt: skip
    if pot is None:
        return None
    line = next(p["line"] for p in _pots(conn, pot.programme_id, today) if p["id"] == pot_id)
    grants = [{"ref": g.ref, "title": g.title, "state": g.state}
              for g in _grants(conn, [pot_id], today)]
    return {
        "id": pot.id, "name": pot.name, "programme": pot.programme,
        "partnership": pot.owner, "partnership_id": pot.owner_partnership_id,
        "allocated_pence": line.allocated_pence, "committed_pence": line.committed_pence,
        "paid_pence": line.paid_pence, "balance_pence": line.available_pence,
        "grants": grants, "history": pot_history(conn, pot.name, pot.programme_id),
    }  # fmt: skip


def allocations_of(conn: Reader, partnership_id: int) -> list[dict[str, Any]]:
    """The partnership allocations a partnership owns: id, name and programme."""
    return [
        {"id": r.id, "name": r.name, "programme": r.programme}
        for r in conn.execute(
            select(POT_T.c.id, POT_T.c.name, PROG_T.c.name.label("programme"))
            .join(PROG_T, PROG_T.c.id == POT_T.c.programme_id)
            .where(POT_T.c.owner_partnership_id == partnership_id)
            .order_by(POT_T.c.id)
        )
    ]


# ---------------------------------------------------------------- the paper


def partnership_paper(conn: Reader, meeting_ref: str) -> dict[str, Any]:
    """The "Partnership financial summary" for a meeting: the figures of its
    programme as of the meeting's date, the programme's savings target, and
    every ratified move between pots up to that date, in words."""
    m = conn.execute(select(MEET_T).where(MEET_T.c.ref == meeting_ref)).first()
    if m is None:
        raise NotFound(f"paper partnerships: no meeting {meeting_ref!r}", field="meeting")
    prog = conn.execute(select(PROG_T.c.name).where(PROG_T.c.id == m.programme_id)).scalar()
    target = conn.execute(
        select(TARGET_T.c.target_pence, TARGET_T.c.target_on)
        .where(TARGET_T.c.programme_id == m.programme_id)
    ).first()  # fmt: skip
    figures = partnership_figures(conn, m.held_on, m.programme_id)
    moves = []
    for r in conn.execute(
        select(CHANGE_T).where(CHANGE_T.c.programme_id == m.programme_id,
                               CHANGE_T.c.ratified_on <= m.held_on)
        .order_by(CHANGE_T.c.ratified_on, CHANGE_T.c.id)
    ):  # fmt: skip
        moves.append({
            "ref": r.ref, "date": short_date(r.ratified_on), "ratified_by": r.ratified_by,
            "reason": r.reason,
            "lines": [{"pot": c["pot"], "words": _move_words(c),
                       "from_pence": int(c["from_pence"]), "to_pence": int(c["to_pence"])}
                      for c in r.changes or []],
        })  # fmt: skip
    return {
        "meeting": {"ref": m.ref, "title": m.title, "date": m.held_on.isoformat()},
        "programme": prog,
        "programme_target": None if target is None else {
            "target_pence": int(target.target_pence),
            "by": target.target_on.isoformat() if target.target_on else None,
        },
        **figures,
        "moves": moves,
    }  # fmt: skip


__all__ = ["allocation_page", "allocations_of", "partnership_figures", "partnership_paper",
           "pot_history"]
