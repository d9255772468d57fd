"""A meeting's agenda, derived from events from the moment it is scheduled.

While a meeting is scheduled its agenda follows events: every bid of its
programme awaiting a Board decision (scored, deferred, referred back, and
referred back then resubmitted), then every delegated decision of the
programme to report (decided, not yet reported at a meeting). Items the
meeting has already dealt with stay on it: bids it decided and delegated
decisions reported to it. Attendance does not change the agenda. When the
meeting closes the agenda is frozen into ``meeting.agenda`` (close_meeting),
and a closed meeting shows that list.

A meeting scheduled before this rule had its agenda stored when attendance was
recorded; those stored refs are kept, first, in their own order.

Issue 12 (docs/meetings.md): a bid referred back goes to ONE meeting: the
later meeting the referral named (``decide to_meeting``), or without one the
next scheduled meeting of the programme after the meeting that referred it
(if the named meeting closed without it, the next scheduled one after that).
Report items follow the bids and delegated decisions: those added to the
meeting, and those an earlier meeting required for it (or, naming none, for
the next meeting after it). An officer's order (``order_agenda``) puts its
refs first, the rest after in this natural order.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import bindparam, or_, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.read.kept import OVERRIDES_ONLY, kept
from engine.store.models import (
    Bid,
    BidKind,
    Decision,
    DelegatedDecision,
    Meeting,
    Organisation,
    Pot,
    ReportItem,
    Round,
)
from workflows.bid import AWAITING_DECISION, BID, UNSCORED_FROM
from workflows.delegated import DECIDED

BID_T = Bid.__table__
DD_T = DelegatedDecision.__table__
POT_T = Pot.__table__
DECISION_T = Decision.__table__
MEETING_T = Meeting.__table__
REPORT_T = ReportItem.__table__
REFERRED = ("referred_back", "resubmitted")
# the state a Board decision's outcome leaves a bid in (workflows/bid.py's steps)
OUTCOME_STATE = {o: BID.step(o).dest for o in ("approve", "reject", "defer", "refer_back")}


def _params(meeting: Any) -> dict[str, Any]:
    """The parameters of the agenda's statements (built once, below) for ``meeting``."""
    return {"agenda_programme": meeting.programme_id, "agenda_meeting": meeting.id}


def _build_bids() -> Any:
    decided_here = select(DECISION_T.c.item_ref).where(
        DECISION_T.c.meeting_id == bindparam("agenda_meeting"))
    # an unscored item awaiting a decision: an allocation, or a bid of a round that
    # does not require scoring (rules/guards.py may_decide_unscored). A bid of no round
    # is decided unscored only when someone asks (a delegated request, `decide`).
    rounds_t = Round.__table__
    unscored = BID_T.c.state.in_(UNSCORED_FROM) & or_(
        BID_T.c.kind == BidKind.ALLOCATION.value,
        BID_T.c.round_id.in_(
            select(rounds_t.c.id).where(rounds_t.c.scoring_required.is_(False))),
    )
    return (
        select(BID_T.c.ref)
        .join(POT_T, POT_T.c.id == BID_T.c.pot_id)
        .where(
            POT_T.c.programme_id == bindparam("agenda_programme"),
            or_(BID_T.c.state.in_(AWAITING_DECISION), unscored, BID_T.c.ref.in_(decided_here)),
        )
    )


# built once (a statement made per call costs its construction and cache key each
# time: most of what reading a small agenda costs); run with _params(meeting)
_BIDS = _build_bids()
_BIDS_IN_ORDER = _BIDS.order_by(BID_T.c.id)
_DELEGATED = (
    select(DD_T.c.ref)
    .join(POT_T, POT_T.c.id == DD_T.c.pot_id)
    .where(
        POT_T.c.programme_id == bindparam("agenda_programme"),
        or_(
            DD_T.c.state.in_(DECIDED) & DD_T.c.reported_meeting_id.is_(None),
            DD_T.c.reported_meeting_id == bindparam("agenda_meeting"),
        ),
    )
    .order_by(DD_T.c.decided_on, DD_T.c.id)
)


_RUN: Any = _BIDS_IN_ORDER.with_only_columns(BID_T.c.id, BID_T.c.ref)  # (id, ref) rows


def _delegated(conn: Session | Connection, meeting: Any) -> list[str]:
    return list(conn.execute(_DELEGATED, _params(meeting)).scalars())


def meeting_agenda(conn: Session | Connection, meeting: Any) -> list[str]:
    """The agenda of ``meeting`` (a meeting row: id, programme_id, state, agenda)."""
    if meeting.state != "scheduled":
        return list(meeting.agenda or [])
    parts = _parts(conn, meeting, with_refs=True)
    return parts.head + parts.refs + parts.tail


RUN_BATCH = 5000  # the bids' rows read at a time: 200,000 (id, ref) rows at once held 77 MB


@dataclass(frozen=True)
class _Parts:
    """A scheduled meeting's agenda in three parts, in order: ``head`` (the
    officer's order, then the stored refs); a run of bids awaiting a decision,
    by id (``ids``; ``refs``, their refs, when asked for); ``tail`` (delegated
    decisions and report items)."""

    head: list[str]
    ids: array
    refs: list[str]
    tail: list[str]


def _parts(conn: Session | Connection, meeting: Any, with_refs: bool) -> _Parts:
    """The parts of a scheduled meeting's agenda. The bids come less those referred
    to another meeting; a ref comes once, where it first comes; the officer's
    order's refs come first. The run's refs are kept only ``with_refs`` (the
    pages keep its ids alone: 1.6 MB for 200,000 bids)."""
    stored = list(meeting.agenda or [])
    order = list(getattr(meeting, "agenda_order", None) or [])
    delegated, reports = _delegated(conn, meeting), report_refs(conn, meeting)
    # once, not once per bid; the query, not its 20,000 refs as parameters
    skip = referred_elsewhere(conn, meeting, _BIDS) | set(stored)
    watch = set(order) | set(delegated) | set(reports)  # the refs whose place matters
    ids = array("q")
    refs: list[str] = []
    watched: dict[str, int] = {}  # ref -> its place in the run
    for rows in conn.execute(_RUN, _params(meeting)).partitions(RUN_BATCH):
        for bid_id, ref in cast("list[tuple[int, str]]", rows):
            if ref in skip:
                continue
            if ref in watch:
                watched[ref] = len(ids)
            ids.append(bid_id)
            if with_refs:
                refs.append(ref)
    seen = set(stored) | set(watched)
    rest: list[str] = []  # the delegated decisions and reports not already on it
    for ref in [*delegated, *reports]:
        if ref not in seen:
            seen.add(ref)
            rest.append(ref)
    first = [r for r in order if r in seen]  # the officer's order, what of it is on it
    taken = set(first)
    moved = {watched[r] for r in taken if r in watched}  # bids the order put first
    if moved:
        ids = array("q", (x for k, x in enumerate(ids) if k not in moved))
        refs = [r for k, r in enumerate(refs) if k not in moved]
    return _Parts(head=first + [r for r in stored if r not in taken], ids=ids, refs=refs,
                  tail=[r for r in rest if r not in taken])


# ------------------------------------------------------------------ a long agenda, by the page
#
# A scheduled meeting's agenda is ``meeting_agenda`` above: the officer's order
# first, then the stored refs, the bids awaiting a decision (by id), the delegated
# decisions and the report items. All but the bids are a handful; the bids can be
# every scored bid of the programme (100,000 in bench/scale.py --meeting-pages: a
# fifth of a second to read out and order). _Layout keeps the bids as their ids
# (an array: 800 KB at 100,000, copied whole in microseconds), kept per process
# until a command other than a score override runs (engine/read/kept.py), so a
# page of the agenda reads its 200 refs, its size is a length and an item's place
# a bisection. tests/test_agenda_pages.py holds them equal to meeting_agenda.

_REFS_OF = (select(BID_T.c.ref).where(BID_T.c.id.in_(bindparam("ids", expanding=True)))
            .order_by(BID_T.c.id))
_BID_ID = select(BID_T.c.id).where(BID_T.c.ref == bindparam("ref"))


@dataclass(frozen=True)
class _Layout:
    """A scheduled meeting's agenda as three parts: ``head`` (the officer's order,
    then the stored refs), a run of bids (``run``: their ids, ascending) and
    ``tail`` (delegated decisions and report items)."""

    head: list[str]
    run: array
    tail: list[str]

    @property
    def size(self) -> int:
        return len(self.head) + len(self.run) + len(self.tail)


def _layout(conn: Session | Connection, meeting: Any) -> _Layout:
    """The parts of a scheduled meeting's agenda (kept: see above)."""
    return kept(conn, "agenda", meeting.id, OVERRIDES_ONLY, lambda: _draw(conn, meeting))


def _draw(conn: Session | Connection, meeting: Any) -> _Layout:
    parts = _parts(conn, meeting, with_refs=False)
    return _Layout(head=parts.head, run=parts.ids, tail=parts.tail)


@dataclass(frozen=True)
class AgendaPage:
    """Some items of a meeting's agenda: ``refs`` at positions ``start``,
    ``start + 1``… (from 0) of an agenda of ``size`` items."""

    size: int
    start: int
    refs: list[str]


def agenda_page(conn: Session | Connection, meeting: Any, window: slice) -> AgendaPage:
    """``meeting_agenda(conn, meeting)[window]`` (a slice with no step), reading
    only the refs of the bids at those positions."""
    if meeting.state != "scheduled":
        stored = list(meeting.agenda or [])
        start, stop, _ = window.indices(len(stored))
        return AgendaPage(len(stored), start, stored[start:stop])
    layout = _layout(conn, meeting)
    start, stop, _ = window.indices(layout.size)
    refs = layout.head[start:stop]
    n_head, n_run = len(layout.head), len(layout.run)
    ids = layout.run[max(start - n_head, 0):max(min(stop - n_head, n_run), 0)]
    if ids:
        refs += conn.execute(_REFS_OF, {"ids": list(ids)}).scalars().all()
    refs += layout.tail[max(start - n_head - n_run, 0):max(stop - n_head - n_run, 0)]
    return AgendaPage(layout.size, start, refs)


def agenda_position(conn: Session | Connection, meeting: Any, ref: str) -> int | None:
    """Where ``ref`` is on ``meeting``'s agenda (from 0; None: not on it), without
    reading the agenda's other bids."""
    if meeting.state != "scheduled":
        stored = list(meeting.agenda or [])
        return stored.index(ref) if ref in stored else None
    layout = _layout(conn, meeting)
    if ref in layout.head:
        return layout.head.index(ref)
    if ref in layout.tail:
        return len(layout.head) + len(layout.run) + layout.tail.index(ref)
    bid_id = conn.execute(_BID_ID, {"ref": ref}).scalar()
    i = -1 if bid_id is None else bisect_left(layout.run, bid_id)
    return len(layout.head) + i if 0 <= i < len(layout.run) and layout.run[i] == bid_id \
        else None


def agenda_size(conn: Session | Connection, meeting: Any) -> int:
    """``len(meeting_agenda(conn, meeting))`` without reading the agenda out (the
    meetings list)."""
    if meeting.state != "scheduled":
        return len(list(meeting.agenda or []))
    return _layout(conn, meeting).size


def _meeting_key(row: Any) -> tuple[Any, int]:
    return (row.held_on, row.id)


def next_meeting(conn: Session | Connection, programme_id: int, after: Any,
                 scheduled_only: bool = True) -> Any:
    """The first meeting of the programme after ``after`` (a meeting row), by date
    then id: the next one still scheduled, or (``scheduled_only`` False) any."""
    query = select(MEETING_T.c.id, MEETING_T.c.held_on, MEETING_T.c.state).where(
        MEETING_T.c.programme_id == programme_id)
    if scheduled_only:
        query = query.where(MEETING_T.c.state == "scheduled")
    later = [r for r in conn.execute(query) if _meeting_key(r) > _meeting_key(after)]
    return min(later, key=_meeting_key) if later else None


def referral_target(conn: Session | Connection, programme_id: int, referred_at: int,
                    to_meeting: int | None) -> int | None:
    """The meeting a referral back comes to: the named one while it is scheduled;
    else the next scheduled meeting after the named one (or after the meeting
    that referred it, when none was named)."""
    rows = {r.id: r for r in conn.execute(
        select(MEETING_T.c.id, MEETING_T.c.held_on, MEETING_T.c.state)
        .where(MEETING_T.c.id.in_([i for i in (referred_at, to_meeting) if i is not None])))}
    if to_meeting is not None and rows[to_meeting].state == "scheduled":
        return to_meeting
    after = rows[to_meeting] if to_meeting is not None else rows[referred_at]
    found = next_meeting(conn, programme_id, after)
    return None if found is None else int(found.id)


def _referrals(refs: Any) -> Any:
    """The decisions on ``refs`` (a list, or a ``select`` of refs) of bids referred
    back (resubmitted or not), in the order taken, reversals left out."""
    return (
        select(DECISION_T.c.item_ref, DECISION_T.c.outcome, DECISION_T.c.meeting_id,
               DECISION_T.c.to_meeting_id)
        .join(BID_T, BID_T.c.ref == DECISION_T.c.item_ref)
        .where(DECISION_T.c.item_ref.in_(refs), BID_T.c.state.in_(REFERRED),
               DECISION_T.c.outcome != "reversed")
        .order_by(DECISION_T.c.id)
    )


_REFERRALS_ON_AGENDA = _referrals(_BIDS)


def referred_elsewhere(conn: Session | Connection, meeting: Any, refs: Any) -> set[str]:
    """Of ``refs`` (a list, or a ``select`` of refs), the bids referred back
    (resubmitted or not) that come to another meeting than ``meeting``, and were
    not decided at it."""
    latest: dict[str, Any] = {}
    query = _REFERRALS_ON_AGENDA if refs is _BIDS else _referrals(refs)
    for d in conn.execute(query, _params(meeting)):
        latest[d.item_ref] = d
    away: set[str] = set()
    for ref, d in latest.items():
        if d.outcome != "refer_back" or d.meeting_id is None or d.meeting_id == meeting.id:
            continue
        if referral_target(conn, meeting.programme_id, d.meeting_id,
                           d.to_meeting_id) != meeting.id:
            away.add(ref)
    return away


_REPORTS = (
    select(REPORT_T.c.number, REPORT_T.c.meeting_id, REPORT_T.c.raised_at_id,
           MEETING_T.c.ref, MEETING_T.c.held_on, MEETING_T.c.id, MEETING_T.c.programme_id)
    .join(MEETING_T, MEETING_T.c.id == REPORT_T.c.raised_at_id)
    .where(or_(REPORT_T.c.meeting_id == bindparam("agenda_meeting"),
               REPORT_T.c.meeting_id.is_(None) & (MEETING_T.c.programme_id
                                                  == bindparam("agenda_programme"))))
    .order_by(MEETING_T.c.held_on, MEETING_T.c.id, REPORT_T.c.number)
)


def report_refs(conn: Session | Connection, meeting: Any) -> list[str]:
    """Report items on ``meeting``'s agenda: added to it, or required for it by an
    earlier meeting (naming none: for the next meeting after that one)."""
    out: list[str] = []
    for r in conn.execute(_REPORTS, _params(meeting)):
        if r.meeting_id is None:
            found = next_meeting(conn, r.programme_id, r, scheduled_only=False)
            if found is None or found.id != meeting.id:
                continue
        out.append(f"{r.ref}/R{r.number}")
    return out


def report_items(conn: Session | Connection, refs: list[str]) -> dict[str, dict[str, Any]]:
    """The report items among ``refs`` (``<meeting>/R<n>``): ref, title, presenter,
    paper, required (by a meeting for a later one) and the meeting that asked."""
    wanted = [r for r in refs if "/R" in r]
    if not wanted:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        select(REPORT_T, MEETING_T.c.ref.label("raised_ref"),
               MEETING_T.c.title.label("raised_title"),
               MEETING_T.c.held_on.label("raised_on"))
        .join(MEETING_T, MEETING_T.c.id == REPORT_T.c.raised_at_id)
        .where(MEETING_T.c.ref.in_({w.rsplit("/R", 1)[0] for w in wanted}))
    ):
        ref = f"{r.raised_ref}/R{r.number}"
        if ref in wanted:
            out[ref] = {"ref": ref, "title": r.title, "presenter": r.presenter,
                        "paper": r.paper, "required": bool(r.required),
                        "raised_at": r.raised_ref,
                        "raised_at_title": r.raised_title,
                        "raised_on": r.raised_on.isoformat()}
    return out


def left_here(decisions: Iterable[Any]) -> dict[str, str]:
    """The state each bid was left in by a meeting's ``decisions`` (rows with
    ``item_ref``, ``outcome`` and ``state_before``, in the order taken; the last on
    an item counts), so a past meeting's papers and page say what happened THERE:
    a bid referred back in April and approved in July reads "referred back" on
    April's agenda, not today's "approved". A decision reversed at the same meeting
    leaves the bid as it was before that decision."""
    left: dict[str, str] = {}
    before: dict[str, str] = {}
    for d in decisions:
        if d.outcome in OUTCOME_STATE:
            before[d.item_ref] = d.state_before
            left[d.item_ref] = OUTCOME_STATE[d.outcome]
        elif d.item_ref in before:  # "reversed" here, after its decision here
            left[d.item_ref] = before[d.item_ref]
    return left


def agenda_paper(conn: Session | Connection, meeting_ref: str) -> dict[str, Any]:
    """The agenda paper's context: the meeting and its items in agenda order, each
    with its kind, title, who it is for, amount, state and what the Board is asked."""
    meet = Meeting.__table__
    m = conn.execute(select(meet).where(meet.c.ref == meeting_ref)).first()
    if m is None:
        raise NotFound(f"paper agenda: no meeting {meeting_ref!r}", field="meeting")
    refs = meeting_agenda(conn, m)
    left = left_here(conn.execute(
        select(DECISION_T.c.item_ref, DECISION_T.c.outcome, DECISION_T.c.state_before)
        .where(DECISION_T.c.meeting_id == m.id).order_by(DECISION_T.c.id)))
    org = Organisation.__table__
    found: dict[str, dict[str, Any]] = {}
    for b in conn.execute(
        select(BID_T.c.ref, BID_T.c.title, BID_T.c.state, BID_T.c.grant_requested_pence,
               BID_T.c.kind, org.c.name.label("sponsor"))
        .join(org, org.c.id == BID_T.c.sponsor_id)
        .where(BID_T.c.ref.in_(refs))
    ):
        asked = "decide (resubmitted)" if b.state == "resubmitted" else "decide"
        found[b.ref] = {"ref": b.ref, "kind": b.kind, "title": b.title, "for": b.sponsor,
                        "amount_pence": b.grant_requested_pence,
                        "state": left.get(b.ref, b.state),
                        "asked": asked}
    for d in conn.execute(
        select(DD_T.c.ref, DD_T.c.title, DD_T.c.state, DD_T.c.amount_pence)
        .where(DD_T.c.ref.in_(refs))
    ):
        asked = "endorse" if d.state in ("approved", "endorsed") else "note (for information)"
        found[d.ref] = {"ref": d.ref, "kind": "delegated decision", "title": d.title, "for": "",
                        "amount_pence": d.amount_pence, "state": d.state, "asked": asked}
    for ref, r in report_items(conn, refs).items():
        found[ref] = {"ref": ref, "kind": "report", "title": r["title"], "for": r["presenter"],
                      "amount_pence": None, "paper": r["paper"],
                      "state": (f"required by {r['raised_at']}" if r["required"]
                                and r["raised_at"] != m.ref else "report"),
                      "asked": "receive the report"}
    return {
        "meeting": {"ref": m.ref, "title": m.title, "date": m.held_on.isoformat(),
                    "state": m.state},
        "items": [found[r] for r in refs if r in found],
    }
