"""A round's ranking kept between requests and brought up to date by what
changed (issue 15 item 3), for the round page.

Ranking a round afresh reads every bid with its score (seconds at 10,000 bids),
so the page must not do it after every write. A process keeps, per database and
round, the ranking as compact entries in rank order (sort key, ref, state,
ask) with the audit chain's tip it reflects. Every change that can move a
ranking is a command, and every command appends events naming its items, so on
the next request the events appended since that tip (usually a handful) say
what to do:

- an event on the round itself (closed, scored, rules changed), or events on
  more than ``REBUILD_AFTER`` items: rank afresh (many events on a few bids,
  e.g. overrides all day while nobody looks, are a few bids re-read);
- events on bids (a score, an override, a decision, a withdrawal, a new bid):
  re-read those bids alone and move them to their places (a bisect each);
- anything else (returns, payments of other pots…): the order stands.

The funding line is redrawn (one pass over the compact entries, stopping at the
line) when the order changed or the pot's money moved (its newest movement). The page then reads
the full rows of the bids it shows only, so a page costs the same statements
at 100 bids or 100,000.

Papers, exports, the API and the what-if still use
:func:`engine.read.views.round_ranking` (whole, always fresh): a test checks
that the kept ranking's pages are exactly its slices after any sequence of
commands.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import NotFound
from engine.read import shapes, views
from engine.read.rulesets import resolve_rule_set
from engine.read.views import LINE_STATES
from engine.store.ledger import ledger
from engine.store.models import AuditEvent, AuditHead, MoneyMovement
from rules.scoring import RuleSet

PAGE_SIZE = 100  # ranked bids a page
REBUILD_AFTER = 2000  # items changed since the kept tip beyond which ranking afresh is simpler
KEEP_ROUNDS = 8  # rankings kept per process (least recently used goes first)

_AUDIT_T = AuditEvent.__table__
_HEAD_T = AuditHead.__table__
_MOVE_T = MoneyMovement.__table__


@dataclass
class _Entry:
    key: tuple[Any, ...]  # the rule set's sort key, then the bid's id (rank()'s stable order)
    ref: str
    state: str
    ask: int  # pence


@dataclass
class _Kept:
    round_id: int
    round_state: str
    rules: tuple[str, str]  # name, version: a rule file changed on disk ranks afresh
    tip: int  # the audit seq this ranking reflects
    entries: dict[str, _Entry] = field(default_factory=dict)  # ref -> entry
    order: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)  # (key, ref), ranked
    money_tip: int = -1  # the pot's newest movement when the line was drawn
    pot: str = ""
    available: int = 0
    funded: int = 0
    requested: int = 0  # every ranked bid's ask (kept by _rebuild and _refresh)
    line_at: int | None = None  # index in order of the first bid below the line
    line_key: tuple[tuple[Any, ...], str] | None = None  # order[line_at], found again by bisect


@dataclass
class Work:
    """What the kept rankings have done in this process (tests, benchmarks)."""

    rebuilds: int = 0  # rounds ranked afresh
    bids_reread: int = 0  # bids re-read to move them
    lines_drawn: int = 0  # funding lines drawn


WORK = Work()
_KEPT: OrderedDict[tuple[str, str], _Kept] = OrderedDict()
_LOCK = threading.Lock()  # request threads share the kept rankings


@dataclass(frozen=True)
class RankingPage:
    """One page of a round's ranking: the heading and totals of the whole ranking
    (as :func:`views.round_ranking` gives them, ``bids`` being this page's), and
    where the page and the funding line are."""

    ranking: shapes.RoundRanking
    page: int
    pages: int
    size: int
    total: int
    line_page: int
    line_ref: str | None


def _tip(session: Session | Connection) -> int:
    return int(session.execute(select(_HEAD_T.c.last_seq).where(_HEAD_T.c.id == 1)).scalar()
               or 0)


def _money_tip(session: Session | Connection, pot_id: int) -> int:
    return int(session.execute(select(func.max(_MOVE_T.c.id))
                               .where(_MOVE_T.c.pot_id == pot_id)).scalar() or 0)


REBUILD_CHUNK = 2000  # bids read at a time when ranking afresh (memory, not speed)


def _entries(session: Session | Connection, rs: RuleSet, round_id: int,
             bid_ids: list[int] | None = None) -> list[_Entry]:
    """The ranked entries of a round's bids (of ``bid_ids`` only, if given), their
    full records read ``REBUILD_CHUNK`` at a time: only the compact entries are
    kept, so a round of 100,000 bids never has 100,000 full records in memory at
    once (the worker's resident memory stays what the entries need)."""
    if bid_ids is None:
        bid_ids = list(session.execute(
            select(views.BID_T.c.id).where(views.BID_T.c.round_id == round_id)
            .order_by(views.BID_T.c.id)).scalars())
    out = []
    for at in range(0, len(bid_ids), REBUILD_CHUNK):
        for e in views.ranked_entries(session, round_id, bid_ids[at:at + REBUILD_CHUNK]):
            out.append(_Entry((*rs.sort_key(e.score, e.facts), e.id), e.ref, e.state, e.ask))
    return out


def _rebuild(session: Session | Connection, rnd: Any, rs: RuleSet, tip: int) -> _Kept:
    kept = _Kept(rnd.id, rnd.state, (rs.name, rs.version), tip)
    WORK.rebuilds += 1
    entries = _entries(session, rs, rnd.id)
    kept.entries = {e.ref: e for e in entries}
    kept.order = sorted((e.key, e.ref) for e in entries)
    kept.requested = sum(e.ask for e in entries)  # then kept up to date by _refresh
    return kept


def _refresh(
    session: Session | Connection, kept: _Kept, rs: RuleSet, refs: set[str]
) -> tuple[bool, bool]:
    """Re-read the bids named ``refs`` that are (or were) in the kept round and move
    them to their places. (changed: the order or a bid's state or ask changed;
    the line stands: every bid moved kept its state and ask and stayed on its side
    of the funding line, so the bids above the line are the same and only the
    line's index needs finding again. A score overridden at 100,000 bids: a pass
    of 26,000 entries to the line, 15 ms, saved.)"""
    bid_t = views.BID_T
    ids = [row.id for row in session.execute(
        select(bid_t.c.id, bid_t.c.ref, bid_t.c.round_id).where(bid_t.c.ref.in_(sorted(refs)))
    ) if row.round_id == kept.round_id or row.ref in kept.entries]
    gone = {ref for ref in refs if ref in kept.entries}  # re-read below if still ranked
    fresh = _entries(session, rs, kept.round_id, ids) if ids else []
    WORK.bids_reread += len(ids)
    changed = False
    olds: dict[str, _Entry] = {}
    for ref in gone:
        old = olds[ref] = kept.entries.pop(ref)
        at = bisect.bisect_left(kept.order, (old.key, ref))
        del kept.order[at]
        kept.requested -= old.ask
        changed = True
    for e in fresh:
        kept.entries[e.ref] = e
        bisect.insort(kept.order, (e.key, e.ref))
        kept.requested += e.ask
        changed = True
    line = kept.line_key
    stands = len(olds) == len(fresh) and all(
        (o := olds.get(e.ref)) is not None and (o.ask, o.state) == (e.ask, e.state)
        and (line is None or (e.ref != line[1]
                              and ((o.key, e.ref) < line) == ((e.key, e.ref) < line)))
        for e in fresh)
    return changed, stands


def _draw_line(session: Session | Connection, kept: _Kept, pot_id: int,
               money_moved: bool = True) -> None:
    """The funding line over the kept order (as views.round_ranking draws it): the
    first bid that could be funded and does not fit. Every such bid above it fits
    (views.funding_of), so the pass stops at the line and no per-bid list is kept:
    :func:`_funding` reads a bid's place from its state and which side it is on."""
    if money_moved:  # else the pot's balance kept stands (only the order changed)
        line = ledger(session, pot_ids=[pot_id])[0]
        kept.pot, kept.available = line.name, line.available_pence
    WORK.lines_drawn += 1
    entries, available, eligible = kept.entries, kept.available, LINE_STATES
    running = 0
    kept.line_at = None
    for i, (_, ref) in enumerate(kept.order):
        e = entries[ref]
        if e.state in eligible:
            if running + e.ask > available:
                kept.line_at = i
                break
            running += e.ask
    kept.funded = running
    kept.line_key = None if kept.line_at is None else kept.order[kept.line_at]


def _funding(kept: _Kept, at: int, e: _Entry) -> shapes.Funding:
    """The funding of the bid at index ``at`` of the kept order, as views.funding_of
    gives it: approved or not eligible by its state alone; otherwise above the line
    (every such bid there fits) or below it."""
    if e.state not in LINE_STATES:
        return views.funding_of(e.state, e.ask, 0, 0, True)
    return "below_line" if kept.line_at is not None and at >= kept.line_at else "above_line"


def _kept(session: Session | Connection, rnd: Any, rs: RuleSet) -> _Kept:
    """The round's kept ranking, brought up to date (call with _LOCK held)."""
    bind = session.get_bind() if isinstance(session, Session) else session
    key = (str(bind.engine.url), rnd.ref)
    tip = _tip(session)
    kept = _KEPT.get(key)
    moved, stands = False, False
    if (kept is None or kept.round_id != rnd.id or kept.round_state != rnd.state
            or kept.rules != (rs.name, rs.version)):
        kept, moved = _rebuild(session, rnd, rs, tip), True
    elif tip != kept.tip:
        # the items changed since, each once (DISTINCT … LIMIT stops at the limit):
        # a score overridden every second for an hour is 3,600 events on a few bids
        refs: set[str] = set(session.execute(
            select(_AUDIT_T.c.item_ref).distinct()
            .where(_AUDIT_T.c.seq > kept.tip, _AUDIT_T.c.seq <= tip)
            .limit(REBUILD_AFTER + 1)
        ).scalars())
        if len(refs) > REBUILD_AFTER or rnd.ref in refs:
            kept, moved = _rebuild(session, rnd, rs, tip), True
        else:
            moved, stands = _refresh(session, kept, rs, refs)
            kept.tip = tip
    money = _money_tip(session, rnd.pot_id)
    if (moved and not stands) or money != kept.money_tip:
        _draw_line(session, kept, rnd.pot_id, money != kept.money_tip)
        kept.money_tip = money
    elif moved and kept.line_key is not None:  # the same bids above it: find it again
        kept.line_at = bisect.bisect_left(kept.order, kept.line_key)
    _KEPT[key] = kept
    _KEPT.move_to_end(key)
    while len(_KEPT) > KEEP_ROUNDS:
        _KEPT.popitem(last=False)
    return kept


def ranking_page(session: Session | Connection, round_ref: str, page: object = None,
                 size: int = PAGE_SIZE) -> RankingPage:
    """Page ``page`` (a number from 1, or "line": the page the funding line is on;
    anything else: the first) of the round's ranking, from the kept ranking."""
    rnd = session.execute(select(views.ROUND_T).where(views.ROUND_T.c.ref == round_ref)).first()
    if rnd is None:
        raise NotFound(f"no round {round_ref!r}", field="round", item=round_ref)
    rs = resolve_rule_set(session, rnd.rule_set)
    with _LOCK:
        kept = _kept(session, rnd, rs)
        total = len(kept.order)
        pages = max(1, -(-total // size))
        line_page = 1 if kept.line_at is None else kept.line_at // size + 1
        try:
            n = min(max(int(str(page)), 1), pages)
        except ValueError:
            n = line_page if page == "line" else 1
        window = kept.order[(n - 1) * size : n * size]
        funding = [_funding(kept, (n - 1) * size + i, kept.entries[ref])
                   for i, (_, ref) in enumerate(window)]
        ids = [kept.entries[ref].key[-1] for _, ref in window]
        line_ref = None if kept.line_at is None else kept.order[kept.line_at][1]
        heading = (kept.pot, kept.available, kept.requested, kept.funded)
    rows = {r["ref"]: r for r in views.bids(session, round_id=rnd.id, bid_ids=ids)}
    # a bid changed since the kept ranking was brought up to date shows as it is now
    shown = [views.ranked_row((n - 1) * size + i, rows[ref], f)
             for i, ((_, ref), f) in enumerate(zip(window, funding, strict=True), start=1)
             if ref in rows and rows[ref]["score"] is not None]
    pot, available, requested, funded = heading
    ranking: shapes.RoundRanking = {
        **views.ranking_heading(rnd, rs, pot),
        "available_pence": available, "requested_pence": requested,
        "funded_pence": funded, "remaining_pence": available - funded,
        "bids": shown,
        "below_line": [b["ref"] for b in shown if b["funding"] == "below_line"],
    }
    return RankingPage(ranking, n, pages, size, total, line_page, line_ref)


def forget() -> None:
    """Drop every kept ranking and zero :data:`WORK` (tests; a restored database)."""
    with _LOCK:
        _KEPT.clear()
        WORK.rebuilds = WORK.bids_reread = WORK.lines_drawn = 0
