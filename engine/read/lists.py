"""The lists the pages, the REST API and the exports page through
(engine/read/listing.py): bids, grants, returns, delegated decisions, the
meetings' actions and the audit trail.

Each list is a :class:`~engine.read.listing.ListSpec` (its sorts, filters and
search columns) over one ``select(ref)`` with the joins they need; a page's
rows are then built by the list's own view for just that page's refs, so a
page costs the same handful of statements at 100 rows or 100,000
(tests/test_lists.py counts them). ``scope``: the authority a sponsor's view is
limited to (None: everything).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.read import money as views_money
from engine.read import returns as views_returns
from engine.read import shapes, views
from engine.read.actions import register as actions_register
from engine.read.delegation import delegated_items
from engine.read.listing import (
    Filter,
    ListQuery,
    ListSpec,
    Page,
    chunks,
    in_key_order,
    read_query,
    run,
)
from engine.store.models import (
    Action,
    AuditEvent,
    Bid,
    DelegatedDecision,
    Grant,
    Meeting,
    Organisation,
    Pot,
    Programme,
    Return,
    Round,
    Score,
)
from rules.reminders import OUTSTANDING
from rules.returns import KINDS
from workflows.action import ACTION
from workflows.bid import BID
from workflows.delegated import DELEGATED
from workflows.grant import GRANT
from workflows.returns import RETURN

Reader = Session | Connection

BID_T = Bid.__table__
GRANT_T = Grant.__table__
RET_T = Return.__table__
DD_T = DelegatedDecision.__table__
ORG_T = Organisation.__table__
POT_T = Pot.__table__
PROG_T = Programme.__table__
ROUND_T = Round.__table__
SCORE_T = Score.__table__


def _equals(column: ColumnElement[Any]) -> Any:
    return lambda value: column == value


# ------------------------------------------------------------------ bids

_POINTS = (
    select(SCORE_T.c.total_points)
    .where(SCORE_T.c.bid_id == BID_T.c.id, SCORE_T.c.current.is_(True))
    .limit(1)
    .scalar_subquery()
)

BIDS = ListSpec(
    name="bids",
    sorts={
        "ref": (BID_T.c.ref,),
        "sponsor": (func.lower(ORG_T.c.name),),
        "title": (func.lower(BID_T.c.title),),
        "grant": (BID_T.c.grant_requested_pence,),
        "points": (_POINTS,),
        "state": (BID_T.c.state,),
        "submitted": (BID_T.c.submitted_on,),
    },
    default_sort="ref",
    key=BID_T.c.id,
    search=(BID_T.c.ref, BID_T.c.title, ORG_T.c.name),
    filters={
        "state": Filter("State", _equals(BID_T.c.state), tuple(BID.states)),
        "round": Filter("Round", _equals(ROUND_T.c.ref)),
        "authority": Filter("Authority", _equals(ORG_T.c.name)),
    },
)


def _bids_base(scope: int | None) -> Select[Any]:
    q = select(BID_T.c.ref).select_from(
        BID_T.join(ORG_T, ORG_T.c.id == BID_T.c.sponsor_id).outerjoin(
            ROUND_T, ROUND_T.c.id == BID_T.c.round_id
        )
    )
    return q if scope is None else q.where(BID_T.c.sponsor_id == scope)


def bids_page(
    db: Session, lq: ListQuery, scope: int | None = None, past_end: bool = False
) -> tuple[Page, list[shapes.BidRecord]]:
    """One page of bids with the total asked for by every bid that matches."""
    page = run(
        db,
        BIDS,
        _bids_base(scope),
        lq,
        {"requested": BID_T.c.grant_requested_pence},
        past_end=past_end,
    )
    rows = views.bids(db, refs=page.keys) if page.keys else []
    return page, in_key_order(rows, page.keys, lambda r: r["ref"])


# ------------------------------------------------------------------ grants

GRANTS = ListSpec(
    name="grants",
    sorts={
        "ref": (GRANT_T.c.ref,),
        "title": (func.lower(BID_T.c.title),),
        "body": (func.lower(ORG_T.c.name),),
        "pot": (POT_T.c.name,),
        "awarded": (GRANT_T.c.awarded_pence,),
        "approved": (GRANT_T.c.approved_on,),
        "state": (GRANT_T.c.state,),
    },
    default_sort="ref",
    key=GRANT_T.c.id,
    search=(GRANT_T.c.ref, BID_T.c.title, ORG_T.c.name),
    filters={
        "state": Filter("State", _equals(GRANT_T.c.state), tuple(GRANT.states)),
        "pot": Filter("Pot", _equals(POT_T.c.name)),
        "authority": Filter("Authority", _equals(ORG_T.c.name)),
    },
)


def held_for(scope: int) -> ColumnElement[bool]:
    """The grants a sponsor's authority ``scope`` answers for: its own, and those of
    the partnerships it is the accountable body of (docs/grants.md "Accountable
    bodies"; the grant page admits the same, quorum_web/api.py find_grant). Needs
    ORG_T joined as the grant's holder."""
    return or_(GRANT_T.c.accountable_body_id == scope, ORG_T.c.accountable_body_id == scope)


def _grants_base(scope: int | None) -> Select[Any]:
    q = select(GRANT_T.c.ref).select_from(
        GRANT_T.join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
        .join(ORG_T, ORG_T.c.id == GRANT_T.c.accountable_body_id)
        .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id)
    )
    return q if scope is None else q.where(held_for(scope))


def grants_page(
    db: Reader, lq: ListQuery, today: dt.date, scope: int | None = None, past_end: bool = False
) -> tuple[Page, list[shapes.Grant]]:
    page = run(
        db, GRANTS, _grants_base(scope), lq, {"awarded": GRANT_T.c.awarded_pence}, past_end=past_end
    )
    rows = views_money.grants(db, today, refs=page.keys) if page.keys else []
    return page, in_key_order(rows, page.keys, lambda r: r["ref"])


# ------------------------------------------------------------------ returns


def _show(today: dt.date) -> Any:
    def where(value: str) -> ColumnElement[bool]:
        if value == "late":
            return and_(RET_T.c.state.in_(OUTSTANDING), RET_T.c.due_on < today)
        return RET_T.c.state == value

    return where


RETURN_SHOWS = ("due", "late", "submitted", "queried", "accepted")


def returns_spec(today: dt.date) -> ListSpec:
    """The returns list (``show=late`` is judged against ``today``)."""
    return ListSpec(
        name="returns",
        sorts={
            "due": (RET_T.c.due_on, GRANT_T.c.ref, RET_T.c.kind),
            "ref": (RET_T.c.ref,),
            "grant": (GRANT_T.c.ref,),
            "authority": (func.lower(ORG_T.c.name),),
            "kind": (RET_T.c.kind,),
            "period": (RET_T.c.period_start,),
            "state": (RET_T.c.state,),
        },
        default_sort="due",
        key=RET_T.c.id,
        search=(RET_T.c.ref, GRANT_T.c.ref, BID_T.c.title, ORG_T.c.name),
        filters={
            "show": Filter("Show", _show(today), RETURN_SHOWS),
            "state": Filter("State", _equals(RET_T.c.state), tuple(RETURN.states)),
            "kind": Filter("Kind", _equals(RET_T.c.kind), tuple(KINDS)),
            "programme": Filter("Programme", _equals(PROG_T.c.name)),
            "authority": Filter("Authority", _equals(ORG_T.c.name)),
        },
    )


def _returns_base(scope: int | None) -> Select[Any]:
    q = select(RET_T.c.ref).select_from(
        RET_T.join(GRANT_T, GRANT_T.c.id == RET_T.c.grant_id)
        .join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
        .join(ORG_T, ORG_T.c.id == GRANT_T.c.accountable_body_id)
        .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id)
        .join(PROG_T, PROG_T.c.id == POT_T.c.programme_id)
    )
    return q if scope is None else q.where(held_for(scope))


def returns_page(
    db: Reader, lq: ListQuery, today: dt.date, scope: int | None = None, past_end: bool = False
) -> tuple[Page, list[shapes.ReturnRow]]:
    page = run(db, returns_spec(today), _returns_base(scope), lq, past_end=past_end)
    rows = views_returns.returns(db, today, refs=page.keys) if page.keys else []
    return page, in_key_order(rows, page.keys, lambda r: r["ref"])


# ------------------------------------------------------------------ delegated decisions

DELEGATED_LIST = ListSpec(
    name="delegated decisions",
    sorts={
        "requested": (DD_T.c.requested_on,),
        "ref": (DD_T.c.ref,),
        "title": (func.lower(DD_T.c.title),),
        "amount": (DD_T.c.amount_pence,),
        "pot": (POT_T.c.name,),
        "state": (DD_T.c.state,),
        "expires": (DD_T.c.expires_on,),
    },
    default_sort="requested",
    default_direction="desc",  # newest first
    key=DD_T.c.id,
    search=(DD_T.c.ref, DD_T.c.title, BID_T.c.ref, ORG_T.c.name),
    filters={
        "state": Filter("State", _equals(DD_T.c.state), tuple(DELEGATED.states)),
        "pot": Filter("Pot", _equals(POT_T.c.name)),
    },
)


def _delegated_base() -> Select[Any]:
    return select(DD_T.c.ref).select_from(
        DD_T.join(POT_T, POT_T.c.id == DD_T.c.pot_id)
        .outerjoin(BID_T, BID_T.c.id == DD_T.c.bid_id)
        .outerjoin(ORG_T, ORG_T.c.id == BID_T.c.sponsor_id)
    )


def _bind(db: Reader) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def delegated_page(
    db: Reader, lq: ListQuery, past_end: bool = False
) -> tuple[Page, list[shapes.DelegatedDecision]]:
    page = run(
        db,
        DELEGATED_LIST,
        _delegated_base(),
        lq,
        {"amount": DD_T.c.amount_pence},
        past_end=past_end,
    )
    rows = delegated_items(_bind(db), DD_T.c.ref.in_(page.keys)) if page.keys else []
    return page, in_key_order(rows, page.keys, lambda r: r["ref"])


# ------------------------------------------------------------------ actions

ACTION_T = Action.__table__
MEETING_T = Meeting.__table__

ACTIONS_LIST = ListSpec(
    name="actions",
    sorts={
        "meeting": (MEETING_T.c.held_on, MEETING_T.c.ref, ACTION_T.c.number),
        "owner": (func.lower(ACTION_T.c.owner),),
        "due": (ACTION_T.c.due_on,),
        "state": (ACTION_T.c.state,),
    },
    default_sort="meeting",
    default_direction="desc",  # the latest meeting's first
    key=ACTION_T.c.id,
    search=(ACTION_T.c.what, ACTION_T.c.owner, MEETING_T.c.ref),
    filters={
        "state": Filter("State", _equals(ACTION_T.c.state), tuple(ACTION.states)),
        "meeting": Filter("Meeting", _equals(MEETING_T.c.ref)),
    },
)


def _actions_base() -> Select[Any]:
    return select(ACTION_T.c.id).select_from(
        ACTION_T.join(MEETING_T, MEETING_T.c.id == ACTION_T.c.meeting_id)
    )


def _action_rows(db: Reader, ids: Sequence[int]) -> list[shapes.MeetingAction]:
    """The register's rows for ``ids``, in that order (a register row's ref is
    its meeting's and number: ``BOARD-APR/A2``)."""
    ref_of = {
        r.id: f"{r.ref}/A{r.number}"
        for r in db.execute(
            select(ACTION_T.c.id, MEETING_T.c.ref, ACTION_T.c.number)
            .join(MEETING_T, MEETING_T.c.id == ACTION_T.c.meeting_id)
            .where(ACTION_T.c.id.in_(ids))
        )
    }
    rows = actions_register(db, ACTION_T.c.id.in_(ids))
    return in_key_order(rows, [ref_of[i] for i in ids], lambda r: r["ref"])


def actions_page(
    db: Reader, lq: ListQuery, past_end: bool = False
) -> tuple[Page, list[shapes.MeetingAction]]:
    page = run(db, ACTIONS_LIST, _actions_base(), lq, past_end=past_end)
    return page, _action_rows(db, page.keys) if page.keys else []


# ------------------------------------------------------------------ the audit trail

AUDIT_T = AuditEvent.__table__

AUDIT_LIST = ListSpec(
    name="audit trail",
    sorts={
        "seq": (AUDIT_T.c.seq,),
        "actor": (AUDIT_T.c.actor,),
        "command": (AUDIT_T.c.command,),
        "item": (AUDIT_T.c.item_ref,),
    },
    default_sort="seq",
    default_direction="desc",  # the latest first
    key=AUDIT_T.c.seq,
    search=(AUDIT_T.c.item_ref, AUDIT_T.c.actor, AUDIT_T.c.command, AUDIT_T.c.reason),
    filters={
        "item": Filter("Item", _equals(AUDIT_T.c.item_ref)),
        "actor": Filter("Who", _equals(AUDIT_T.c.actor)),
        "command": Filter("Command", _equals(AUDIT_T.c.command)),
    },
)


def _audit_rows(db: Reader, seqs: Sequence[int]) -> list[shapes.AuditLine]:
    rows = db.execute(
        select(
            AUDIT_T.c.seq,
            AUDIT_T.c.at,
            AUDIT_T.c.actor,
            AUDIT_T.c.command,
            AUDIT_T.c.item_ref,
            AUDIT_T.c.reason,
            AUDIT_T.c.hash,
        ).where(AUDIT_T.c.seq.in_(seqs))
    )
    out: list[shapes.AuditLine] = [
        {
            "ref": str(r.seq),
            "seq": r.seq,
            "at": r.at,
            "actor": r.actor,
            "command": r.command,
            "item": r.item_ref,
            "reason": r.reason,
            "hash": r.hash,
        }
        for r in rows
    ]
    return in_key_order(out, list(seqs), lambda r: r["seq"])


def audit_page(
    db: Reader, lq: ListQuery, past_end: bool = False
) -> tuple[Page, list[shapes.AuditLine]]:
    """A page of the audit trail's events (who did what to which item, when);
    the chain's check is ``quorum audit verify`` / ``GET /api/v1/audit/verify``."""
    page = run(db, AUDIT_LIST, select(AUDIT_T.c.seq).select_from(AUDIT_T), lq, past_end=past_end)
    return page, _audit_rows(db, page.keys) if page.keys else []


# ------------------------------------------------------------------ one entry for all


def query_for(
    name: str, params: Mapping[str, Any], today: dt.date, **sizes: int | None
) -> ListQuery:
    """A request's list parameters read against the named list (``sizes``:
    ``per_page``, ``max_per_page`` other than the list's)."""
    return read_query(spec_of(name, today), params, **sizes)


def sort_keys(name: str) -> list[str]:
    """The sorts the named list allows (for documentation)."""
    return list(spec_of(name, dt.date.min).sorts)


def spec_of(name: str, today: dt.date) -> ListSpec:
    return {
        "bids": BIDS,
        "grants": GRANTS,
        "returns": returns_spec(today),
        "delegated": DELEGATED_LIST,
        "actions": ACTIONS_LIST,
        "audit": AUDIT_LIST,
    }[name]


def page_of(
    db: Reader,
    name: str,
    lq: ListQuery,
    today: dt.date,
    scope: int | None = None,
    *,
    past_end: bool = False,
) -> tuple[Page, list[Any]]:
    """One page of the named list and its rows (``past_end``: a page past
    the last is empty, not refused)."""
    if name == "bids":
        assert isinstance(db, Session)
        return bids_page(db, lq, scope, past_end=past_end)
    if name == "grants":
        return grants_page(db, lq, today, scope, past_end=past_end)
    if name == "returns":
        return returns_page(db, lq, today, scope, past_end=past_end)
    assert scope is None, f"{name}: staff only"
    if name == "actions":
        return actions_page(db, lq, past_end=past_end)
    if name == "audit":
        return audit_page(db, lq, past_end=past_end)
    return delegated_page(db, lq, past_end=past_end)


def every_row(
    db: Reader,
    name: str,
    lq: ListQuery,
    today: dt.date,
    scope: int | None = None,
    size: int = 500,
) -> Iterator[Any]:
    """Every row the list's filters and search match, in its order, built
    ``size`` at a time (an export: memory bounded by ``size``, not the list)."""
    spec = spec_of(name, today)
    base = {
        "bids": lambda: _bids_base(scope),
        "grants": lambda: _grants_base(scope),
        "returns": lambda: _returns_base(scope),
        "delegated": _delegated_base,
        "actions": _actions_base,
        "audit": lambda: select(AUDIT_T.c.seq).select_from(AUDIT_T),
    }[name]()
    refs = run(db, spec, base, lq, everything=True).keys
    for part in chunks(refs, size):
        if name == "bids":
            assert isinstance(db, Session)
            rows: list[Any] = views.bids(db, refs=part)
        elif name == "grants":
            rows = views_money.grants(db, today, refs=part)
        elif name == "returns":
            rows = views_returns.returns(db, today, refs=part)
        elif name == "actions":
            yield from _action_rows(db, part)
            continue
        elif name == "audit":
            yield from _audit_rows(db, part)
            continue
        else:
            rows = delegated_items(_bind(db), DD_T.c.ref.in_(part))
        yield from in_key_order(rows, part, lambda r: r["ref"])


def filter_options(
    db: Reader, name: str, today: dt.date, scope: int | None = None
) -> list[dict[str, Any]]:
    """The filters a list page offers, each with its values: a fixed list's
    own, or those in the database (rounds, pots, programmes, authorities; a
    sponsor is not offered other authorities)."""
    spec = spec_of(name, today)
    found = {
        "round": lambda: select(ROUND_T.c.ref).order_by(ROUND_T.c.ref),
        "pot": lambda: select(POT_T.c.name).order_by(POT_T.c.name),
        "programme": lambda: select(PROG_T.c.name).order_by(PROG_T.c.name),
        "authority": lambda: select(ORG_T.c.name).order_by(ORG_T.c.name),
        "meeting": lambda: select(MEETING_T.c.ref).order_by(MEETING_T.c.held_on.desc()),
    }
    out: list[dict[str, Any]] = []
    for key, f in spec.filters.items():
        if f.choices is not None:
            values = list(f.choices)
        elif (key == "authority" and scope is not None) or key in ("item", "actor", "command"):
            continue  # not offered: other authorities; free values (the search finds them)
        else:
            values = list(db.execute(found[key]()).scalars())
        out.append(
            {"name": key, "label": f.label, "values": values, "coded": f.choices is not None}
        )  # codes shown as words; names as they are
    return out


def paper_for(db: Reader, name: str, lq: ListQuery, today: dt.date) -> dict[str, str] | None:
    """The board paper a list page links to: a round's bids paper (the bids
    list filtered to one round), the next meeting's returns or delegated
    decisions paper; None where there is none."""
    if name == "bids":
        ref = lq.filters.get("round")
        if not ref:
            return None
        return {"href": f"/rounds/{ref}/paper.pdf", "label": f"Bids paper for round {ref}"}
    if name not in ("returns", "delegated"):
        return None
    meeting_t = Meeting.__table__
    ref = db.execute(
        select(meeting_t.c.ref)
        .where(meeting_t.c.state == "scheduled", meeting_t.c.held_on >= today)
        .order_by(meeting_t.c.held_on, meeting_t.c.id)
        .limit(1)
    ).scalar()
    if ref is None:
        return None
    what = "Late returns" if name == "returns" else "Delegated decisions"
    return {
        "href": f"/meetings/{ref}/papers/{name}.pdf",
        "label": f"{what} paper for the next meeting ({ref})",
    }
