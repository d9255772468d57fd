"""Returns a grant owes: quarterly progress reports and efficiency-savings
returns (savings delivered to date, savings anticipated).

The minimal part that deposit settlement reads: a sponsor (or an officer)
submits a return for a financial quarter; an officer accepts it or queries it
back to the sponsor. Issue 5 adds schedules (returns created ``due`` ahead of
time), reminders and the sweep on top: ``submit_return`` fills such a
scheduled return when one exists for the same grant, kind and quarter.

Issue 13 item 6: a return whose schedule says it reports progress carries,
besides savings, progress per milestone or outcome (on track / at risk / off
track, with a narrative; the overall status is the worst line's), spend to
date, issues and risks; each version sent in keeps its own lines. An officer
accepts it, accepts it with conditions, or sends it back as needing revision
(what is missing and a new due date: the reminders ladder chases it again); a
programme may refuse payments while a grant has a return overdue or needing
revision (:func:`refuse_payment_while_returns_late`, called by release_payment).

Also here, because the money handlers share them: finding a grant by ref,
financial quarters, and dates in words.
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update

from engine.commands.args import Args
from engine.commands.contracts import KINDS
from engine.commands.handlers.programme import find_programme
from engine.commands.notices import tell_officers
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork
from engine.domain.errors import NotFound, QuorumError, TransitionRefused, ValidationError
from engine.domain.money import format_pence
from engine.domain.monitoring import RAGS, overall_rag
from engine.domain.savings_views import READINGS, TO_DATE
from engine.domain.words import RAG_WORDS, kind_words, period_label, rag_words
from engine.domain.words import short_date as long_date  # 31 Mar 2012
from engine.store.models import Grant, Pot, Programme, Return, ReturnProgress, ReturnRestatement
from engine.store.rawsql import RawRows, RawStatement
from engine.store.refs import ref_after
from rules.returns import calendar, due_date, load_return_rules
from workflows.base import Transition, Workflow
from workflows.returns import RETURN

GRANT_T = Grant.__table__
RET_T = Return.__table__
PROG_T = Programme.__table__
POT_T = Pot.__table__
_RETURN_BY_REF = select(RET_T).where(RET_T.c.ref == bindparam("ref"))
# a grant or a return by its ref: straight to the driver, the columns typed
# (store/rawsql.py RawRows): every return command reads one
_GRANT_BY_REF = RawRows(select(GRANT_T).where(GRANT_T.c.ref == bindparam("ref")))
_RAW_RETURN_BY_REF = RawRows(_RETURN_BY_REF)
# a return sent in without a schedule: straight to the driver, built once (the columns
# not given take their defaults, compiled in)
_NEW_RETURN = RawStatement(insert(RET_T).values({c: bindparam(c) for c in (
    "ref", "grant_id", "kind", "period_start", "period_end", "due_on", "state", "version",
    "savings_delivered_pence", "savings_anticipated_pence", "submitted_on", "reading",
    "spend_to_date_pence", "issues", "risks", "rag", "submissions",
)}))  # fmt: skip
# submit_return's one read: the grant, its return of the period if there is one (its
# columns as r_<name>), and the highest return id (the new return's ref: refs.ref_after)
_GRANT_AND_PERIOD = RawRows(
    select(
        *GRANT_T.c,
        *(c.label(f"r_{c.name}") for c in RET_T.c),
        select(func.max(RET_T.c.id)).scalar_subquery().label("max_return_id"),
    )
    .select_from(
        GRANT_T.outerjoin(
            RET_T,
            and_(
                RET_T.c.grant_id == GRANT_T.c.id,
                RET_T.c.kind == bindparam("kind"),
                RET_T.c.period_end == bindparam("period_end"),
            ),
        )
    )
    .where(GRANT_T.c.ref == bindparam("ref"))
)
_N_GRANT = len(GRANT_T.c)
_GrantRow = namedtuple("_GrantRow", GRANT_T.c.keys())  # type: ignore[misc]
_ReturnRow = namedtuple("_ReturnRow", RET_T.c.keys())  # type: ignore[misc]
HALF_YEAR_ENDS = {(9, 30), (3, 31)}
QUARTER_ENDS = ((3, 31), (6, 30), (9, 30), (12, 31))
DAYS_TO_RETURN = 30  # default: a return is due 30 days after its quarter ends


# ---------------------------------------------------------------- shared helpers


def _no_grant(uow: UnitOfWork, ref: str, field: str = "grant") -> NotFound:
    """The refusal of a grant that does not exist, or that the actor may not see (the same)."""
    return NotFound(f"{uow.command}: {field}: no grant {ref!r}", field=field, item=ref)


def load_grant(
    uow: UnitOfWork, ref: str, field: str = "grant", *, scope: str | None = None
) -> Any:
    """The grant's row (all columns), or a refusal naming the field; a
    cancelled grant (its approval reversed) is refused too. ``scope``: what a
    sponsor does with it (e.g. "send returns"): another authority's grant is then
    the refusal of a missing one, cancelled or not (the same 404 as a read)."""
    rows = _GRANT_BY_REF.rows(uow.conn, {"ref": ref})
    if not rows:
        raise _no_grant(uow, ref, field)
    row = rows[0]
    if scope is not None:
        uow.require_scope(row.accountable_body_id, scope, _no_grant(uow, ref, field))
    if row.state == "cancelled":
        raise ValidationError(
            f"{uow.command}: {field}: {ref} was cancelled (its approval was reversed)",
            field=field,
            item=ref,
        )
    return row


def _grant_and_period(
    uow: UnitOfWork, ref: str, kind: str, period_end: dt.date, scope: str
) -> tuple[Any, Any, int | None]:
    """:func:`load_grant` (``scope``: what the sponsor does), the grant's return of
    ``kind`` for the period ending ``period_end`` (None: none yet) and the highest
    return id, in one statement; refused as :func:`load_grant` refuses."""
    rows = _GRANT_AND_PERIOD.rows(uow.conn, {"ref": ref, "kind": kind, "period_end": period_end})
    if not rows:
        raise _no_grant(uow, ref)
    r = rows[0]
    grant: Any = _GrantRow._make(r[:_N_GRANT])
    uow.require_scope(grant.accountable_body_id, scope, _no_grant(uow, ref))
    if grant.state == "cancelled":
        raise ValidationError(
            f"{uow.command}: grant: {ref} was cancelled (its approval was reversed)",
            field="grant",
            item=ref,
        )
    existing = None if r.r_id is None else _ReturnRow._make(r[_N_GRANT:-1])
    return grant, existing, r.max_return_id


def step(
    uow: UnitOfWork, workflow: Workflow, trigger: str, state: str, ref: str, field: str
) -> Transition:
    """Fire the item's workflow step (as ``uow.fire``), naming the command and field in a
    refusal."""
    try:
        return uow.fire(workflow, trigger, state, ref)
    except TransitionRefused as exc:
        raise TransitionRefused(
            f"{uow.command}: {field}: {exc.message}", field=field, item=ref
        ) from None


def period_start(kind: str, period_end: dt.date, approved_on: dt.date) -> dt.date | None:
    """The first day of the period a return of ``kind`` ending on ``period_end``
    covers, or None if no such period ends then: quarters for progress and
    savings, financial half-years for monitoring, and from approval for a
    benefits report (which covers the whole grant)."""
    if kind == "benefits":
        return approved_on
    if kind == "monitoring":
        if (period_end.month, period_end.day) not in HALF_YEAR_ENDS:
            return None
        return dt.date(
            period_end.year if period_end.month == 9 else period_end.year - 1,
            4 if period_end.month == 9 else 10,
            1,
        )
    return quarter_start(period_end)


def quarter_start(period_end: dt.date) -> dt.date | None:
    """The first day of the financial quarter ending on ``period_end``, or
    None if it is not a quarter end (30 Jun, 30 Sep, 31 Dec, 31 Mar)."""
    if (period_end.month, period_end.day) not in QUARTER_ENDS:
        return None
    return dt.date(period_end.year, period_end.month - 2, 1)


# ---------------------------------------------------------------- reads


def load_return(uow: UnitOfWork, ref: str) -> Any:
    rows = _RAW_RETURN_BY_REF.rows(uow.conn, {"ref": ref})
    if not rows:
        raise NotFound(f"{uow.command}: return: no return {ref!r}", field="return", item=ref)
    return rows[0]


def _figures(row: Any) -> dict[str, Any]:
    return {
        "state": row.state,
        "savings_delivered_pence": row.savings_delivered_pence,
        "savings_anticipated_pence": row.savings_anticipated_pence,
        "due_on": row.due_on,
        **({"rag": row.rag, "spend_to_date_pence": row.spend_to_date_pence} if row.rag else {}),
    }


def _rag(uow: UnitOfWork, value: str, where: str) -> str:
    """A status as a code: on_track, or its words (On track), any case."""
    code = value.strip().lower().replace(" ", "_").replace("-", "_")
    if code not in RAGS:
        allowed = ", ".join(f"{c} ({w})" for c, w in RAG_WORDS.items())
        raise ValidationError(
            f"{uow.command}: {where}.rag: {value!r} is not allowed; use one of: {allowed}",
            field=f"{where}.rag",
        )
    return code


def read_progress(uow: UnitOfWork, raw: list[Any]) -> list[dict[str, str]]:
    """A return's progress lines ({line, rag, narrative}), each refusal naming the line."""
    out: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw, start=1):
        where = f"progress[{i}]"
        if not isinstance(item, dict):
            raise ValidationError(
                f"{uow.command}: {where}: must have line (the milestone or outcome), rag "
                "(on_track, at_risk or off_track) and narrative",
                field=where,
            )
        sub = Args(uow.command, {f"{where}.{k}": v for k, v in item.items()})
        line = sub.text(f"{where}.line", max_len=300)
        rag = _rag(uow, sub.text(f"{where}.rag", max_len=40), where)
        narrative = sub.text(f"{where}.narrative", max_len=4000)
        sub.done()
        if line.lower() in seen:
            raise ValidationError(
                f"{uow.command}: {where}.line: {line!r} is already progress[{seen[line.lower()]}];"
                " one line per milestone or outcome",
                field=f"{where}.line",
            )
        seen[line.lower()] = i
        out.append({"line": line, "rag": rag, "narrative": narrative})
    return out


def _default_due(period_end: dt.date) -> dt.date:
    """A return sent in without a schedule is due as the shipped schedule would
    have it: period end + 30 days, moved off weekends and bank holidays."""
    return due_date(period_end, DAYS_TO_RETURN, "next_working_day", calendar("england"))


# ---------------------------------------------------------------- commands


@command("submit_return", summary="A sponsor (or officer) sends in a return for a period")
def submit_return(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RETURN, "submit")
    grant_ref = args.text("grant", max_len=40)
    try:
        kind = args.choice("kind", KINDS)
        period_end = args.date("period_end")
    except QuorumError:  # the grant's refusal first, as ever (they are read together)
        load_grant(uow, grant_ref, scope="send returns")
        raise
    grant, existing, max_return_id = _grant_and_period(
        uow, grant_ref, kind, period_end, "send returns"
    )
    delivered = args.pence("savings_delivered", required=kind == "savings", allow_zero=True)
    anticipated = args.pence("savings_anticipated", required=kind == "savings", allow_zero=True)
    due = args.date("due", required=False)
    raw_progress = args.items("progress")
    spend = args.pence("spend", required=False, allow_zero=True)
    issues = args.text("issues", required=False, max_len=4000)
    risks = args.text("risks", required=False, max_len=4000)
    args.done()
    progress = read_progress(uow, raw_progress)
    uow.require_scope(
        grant.accountable_body_id,
        "send returns",
        _no_grant(uow, grant.ref),
    )
    conn = uow.conn
    # a scheduled return (engine/commands/sweep.py) covers the period its schedule set
    start = (
        existing.period_start
        if existing is not None
        else period_start(kind, period_end, grant.approved_on)
    )
    if start is None:
        raise ValidationError(
            f"submit_return: period_end: {long_date(period_end)} is not the end of a "
            + (
                "financial half-year; monitoring returns are for half-years ending 30 Sep or 31 Mar"
                if kind == "monitoring"
                else "financial quarter; returns are for quarters ending 30 Jun, 30 Sep, "
                "31 Dec or 31 Mar"
            ),
            field="period_end",
        )
    if kind == "benefits" and period_end > uow.today:
        raise ValidationError(
            f"submit_return: period_end: a benefits report covers the grant up to its "
            f"completion; {long_date(period_end)} is after today ({long_date(uow.today)})",
            field="period_end",
        )
    if start > uow.today:
        raise ValidationError(
            f"submit_return: period_end: the quarter {long_date(start)} to "
            f"{long_date(period_end)} has not begun (today is {long_date(uow.today)})",
            field="period_end",
        )
    if period_end < grant.approved_on:
        raise ValidationError(
            f"submit_return: period_end: {grant.ref} was approved on "
            f"{long_date(grant.approved_on)}; the quarter ending {long_date(period_end)} is "
            "before it",
            field="period_end",
        )
    if due is not None and due < period_end:
        raise ValidationError(
            f"submit_return: due: {long_date(due)} is before the quarter ends "
            f"({long_date(period_end)})",
            field="due",
        )
    # how the figure is stated: as the grant's schedule in force declares (issue 13)
    programme = next((p.programme for p in uow.directory.pots if p.id == grant.pot_id), "")
    rules = load_return_rules()
    reading = rules.reading_for(programme, grant.ref, kind)
    reports = rules.progress_for(programme, grant.ref, kind)
    if not reports and (progress or spend is not None or issues or risks):
        given = next(n for n, v in (("progress", progress), ("spend", spend is not None),
                                    ("issues", issues), ("risks", risks)) if v)  # fmt: skip
        raise ValidationError(
            f"submit_return: {given}: {grant.ref}'s {kind_words(kind)}s do not report progress "
            f"(the return schedule {rules.label}); progress, spend, issues and risks are sent "
            "with the kinds that do (progress reports and monitoring returns, unless the "
            "schedule says otherwise); nothing was changed",
            field=given,
        )
    submission = (existing.submissions if existing is not None else 0) + 1
    rag = overall_rag(p["rag"] for p in progress)
    figures = {
        "savings_delivered_pence": delivered,
        "savings_anticipated_pence": anticipated,
        "submitted_on": uow.today,
        "reading": reading,
        "spend_to_date_pence": spend,
        "issues": issues,
        "risks": risks,
        "rag": rag,
        "submissions": submission,
    }
    if existing is None:
        ref = ref_after("return", max_return_id)
        created = uow.fire(RETURN, "submit", RETURN.initial, ref)
        state = created.dest
        due_on = due or _default_due(period_end)
        _NEW_RETURN.execute(conn, dict(
            ref=ref,
            grant_id=grant.id,
            kind=kind,
            period_start=start,
            period_end=period_end,
            due_on=due_on,
            state=created.dest,
            version=1,
            **figures,
        ))  # fmt: skip
        before: dict[str, Any] = {}
    else:
        ref = existing.ref
        uow.check_version(ref, existing.version, args)
        if existing.state == "accepted":
            raise ValidationError(
                f"submit_return: period_end: {ref} ({kind}, quarter ending "
                f"{long_date(period_end)}) was already accepted; an accepted return cannot be "
                "changed",
                field="period_end",
                item=ref,
            )
        moved = step(uow, RETURN, "submit", existing.state, ref, "period_end")
        state = moved.dest
        if due is not None and due != existing.due_on:
            raise ValidationError(
                f"submit_return: due: {ref} is already due on {long_date(existing.due_on)}; "
                "its due date is not changed by submitting it",
                field="due",
            )
        due_on = existing.due_on
        uow.update_versioned(
            Return, existing.id, existing.version, figures, ref, moved
        )
        before = _figures(existing)
    if progress:
        return_id = existing.id if existing is not None else conn.execute(
            select(RET_T.c.id).where(RET_T.c.ref == ref)).scalar_one()
        conn.execute(insert(ReturnProgress), [
            {"return_id": return_id, "submission": submission, "seq": i, **p}
            for i, p in enumerate(progress, start=1)
        ])  # fmt: skip
    after = {
        "grant": grant.ref,
        "kind": kind,
        "period": f"{start.isoformat()}..{period_end.isoformat()}",
        "state": state,
        "due_on": due_on,
        "savings_delivered_pence": delivered,
        "savings_anticipated_pence": anticipated,
    }
    if kind == "savings":
        after["reading"] = reading
    if reports:  # the version sent in (the earlier ones: their own lines and audit events)
        after.update(submission=submission, rag=rag, spend_to_date_pence=spend, issues=issues,
                     risks=risks, progress=progress)  # fmt: skip
    late = (uow.today - due_on).days
    reason = f"submitted {late} days late" if late > 0 else ""
    uow.record(ref, before, after, reason)
    tell_officers(uow, "return", ref, f"Return {ref} for {grant.ref} was submitted")
    result = {
        "return": ref,
        "grant": grant.ref,
        "kind": kind,
        "period_start": start.isoformat(),
        "period_end": period_end.isoformat(),
        "due_on": due_on.isoformat(),
        "state": state,
        "days_late": max(late, 0),
    }
    if kind == "savings":
        result.update(
            savings_delivered_pence=delivered, savings_anticipated_pence=anticipated,
            reading=reading,
        )  # fmt: skip
    if reports:
        result.update(
            submission=submission, rag=rag, rag_words=rag_words(rag), progress=progress,
            spend_to_date_pence=spend,
        )  # fmt: skip
    return result


@command("accept_return", summary="An officer accepts a submitted return; its figures count")
def accept_return(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RETURN, "accept")
    ret = load_return(uow, args.text("return", max_len=40))
    args.done()
    uow.check_version(ret.ref, ret.version, args)
    moved = step(uow, RETURN, "accept", ret.state, ret.ref, "return")
    state = moved.dest
    uow.update_versioned(Return, ret.id, ret.version, _review("accepted", "", uow.today),
                         ret.ref, moved)  # fmt: skip
    uow.record(ret.ref, {"state": ret.state}, {"state": state})
    out = {"return": ret.ref, "state": state, "kind": ret.kind, "outcome": "accepted"}
    if ret.kind == "savings":
        out["savings_delivered_pence"] = ret.savings_delivered_pence
        out["reading"] = ret.reading
        out["summary"] = (
            f"savings delivered {format_pence(ret.savings_delivered_pence or 0)} to "
            f"{long_date(ret.period_end)}"
            if ret.reading == TO_DATE
            else f"savings delivered {format_pence(ret.savings_delivered_pence or 0)} in the "
            f"period {long_date(ret.period_start)} to {long_date(ret.period_end)}"
        )
    return out


@command("query_return", summary="An officer sends a submitted return back with a question")
def query_return(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RETURN, "query")
    ret = load_return(uow, args.text("return", max_len=40))
    reason = args.text("reason", max_len=4000)
    args.done()
    uow.check_version(ret.ref, ret.version, args)
    moved = step(uow, RETURN, "query", ret.state, ret.ref, "return")
    state = moved.dest
    # a question is the outcome "needs revision" without a new due date: the return keeps
    # its due date and its place on the chase ladder (send_back_return starts it again)
    uow.update_versioned(Return, ret.id, ret.version, _review("needs_revision", reason, uow.today),
                         ret.ref, moved)  # fmt: skip
    uow.record(ret.ref, {"state": ret.state}, {"state": state, "query": reason}, reason)
    return {"return": ret.ref, "state": state, "reason": reason}


def _review(outcome: str, note: str, on: dt.date) -> dict[str, Any]:
    return {"review_outcome": outcome, "review_note": note, "reviewed_on": on}


@command(
    "accept_return_with_conditions",
    summary="An officer accepts a submitted return with conditions (shown on it and the grant)",
)
def accept_return_with_conditions(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RETURN, "accept_with_conditions")
    ret = load_return(uow, args.text("return", max_len=40))
    conditions = args.text("conditions", max_len=4000)
    args.done()
    uow.check_version(ret.ref, ret.version, args)
    moved = step(uow, RETURN, "accept_with_conditions", ret.state, ret.ref, "return")
    uow.update_versioned(
        Return, ret.id, ret.version,
        _review("accepted_with_conditions", conditions, uow.today), ret.ref, moved,
    )  # fmt: skip
    uow.record(ret.ref, {"state": ret.state}, {"state": moved.dest, "conditions": conditions},
               f"accepted with conditions: {conditions}")  # fmt: skip
    return {"return": ret.ref, "state": moved.dest, "kind": ret.kind,
            "outcome": "accepted_with_conditions", "conditions": conditions}  # fmt: skip


@command(
    "send_back_return",
    summary="An officer sends a submitted return back as needing revision, with a new due date",
)
def send_back_return(uow: UnitOfWork, args: Args) -> Result:
    """Back to the sponsor with what is missing; due again on ``due``, and chased again
    by the reminders ladder from the start (its outbox keys carry the revision: the
    sweep's ``return:<ref>/revision-<n>:<rung>:<email>``). The version sent in stays
    (its progress lines and audit event); the sponsor sends the same return again."""
    uow.authorise(RETURN, "send_back")
    ret = load_return(uow, args.text("return", max_len=40))
    missing = args.text("missing", max_len=4000)
    due = args.date("due")
    args.done()
    uow.check_version(ret.ref, ret.version, args)
    moved = step(uow, RETURN, "send_back", ret.state, ret.ref, "return")
    if due <= uow.today:
        raise ValidationError(
            f"send_back_return: due: {long_date(due)} is not after today "
            f"({long_date(uow.today)}); give the date the revised return is due",
            field="due",
        )
    revision = ret.revisions + 1
    uow.update_versioned(
        Return, ret.id, ret.version,
        {**_review("needs_revision", missing, uow.today), "due_on": due, "revisions": revision},
        ret.ref, moved,
    )  # fmt: skip
    uow.record(
        ret.ref,
        {"state": ret.state, "due_on": ret.due_on},
        {"state": moved.dest, "due_on": due, "revision": revision, "missing": missing},
        f"needs revision (due {long_date(due)}): {missing}",
    )
    return {"return": ret.ref, "state": moved.dest, "kind": ret.kind,
            "outcome": "needs_revision", "missing": missing, "due_on": due.isoformat(),
            "revision": revision}  # fmt: skip


# ---------------------------------------------------------------- payments held (issue 13 item 6)


@command("configure_return_payments", roles={"director"},
         summary="Whether a grant is paid while it has a return overdue or needing revision")
def configure_return_payments(uow: UnitOfWork, args: Args) -> Result:
    prog_id, prog_name = find_programme(uow, args.text("programme", required=False))
    held = args.flag("no_payment_while_returns_late")
    args.done()
    before = uow.conn.execute(
        select(PROG_T.c.no_payment_while_returns_late).where(PROG_T.c.id == prog_id)).scalar()
    uow.conn.execute(update(PROG_T).where(PROG_T.c.id == prog_id)
                     .values(no_payment_while_returns_late=held))
    uow.record(f"PROGRAMME:{prog_name}", {"no_payment_while_returns_late": bool(before)},
               {"no_payment_while_returns_late": held})
    return {"programme": prog_name, "no_payment_while_returns_late": held}


# built once (every payment asks): a statement made per call costs its construction
_DUE_OR_QUERIED = (
    select(RET_T)
    .where(RET_T.c.grant_id == bindparam("grant_id"), RET_T.c.state.in_(("due", "queried")))
    .order_by(RET_T.c.due_on, RET_T.c.ref)
)


def refuse_payment_while_returns_late(uow: UnitOfWork, grant: Any, field: str = "grant") -> None:
    """When the grant's programme holds payments while a return is late: refused, naming
    the first such return, if the grant has one overdue (due, past its due date) or
    needing revision (sent back to the sponsor)."""
    policy = uow.programme_policy(uow.pot_programme(grant.pot_id))
    programme = policy.name
    if not policy.no_payment_while_returns_late:
        return
    late = uow.conn.execute(_DUE_OR_QUERIED, {"grant_id": grant.id}).all()
    late = [r for r in late if r.state == "queried" or r.due_on < uow.today]
    if not late:
        return
    r = late[0]
    if r.state == "queried":
        why = f"needs revision since {(r.reviewed_on or r.due_on).isoformat()}"
        until = "it is sent in again"
    else:
        why = f"is overdue since {r.due_on.isoformat()}"
        until = "it is sent in"
    more = f" (and {len(late) - 1} more)" if len(late) > 1 else ""
    raise ValidationError(
        f"{uow.command}: {field}: {r.ref} for {period_label(r.period_start, r.period_end)} "
        f"{why}{more}; {programme} releases no payment to a grant while it has a return "
        f"overdue or needing revision: {grant.ref} is paid once {until}",
        field=field, item=grant.ref,
    )  # fmt: skip


# ---------------------------------------------------------------- restatements (issue 13)


@command(
    "restate_return",
    roles={"officer"},
    summary="Record a later figure for an accepted savings return's period, with the reason",
)
def restate_return(uow: UnitOfWork, args: Args) -> Result:
    """A later return restates an earlier period: the accepted return keeps the figure
    first reported (``savings_delivered_pence``); the restated figure counts from now
    on (``restated_delivered_pence``), each restatement a row with its reason, audited.
    The figure is stated as the return was (its ``reading``)."""
    ret = load_return(uow, args.text("return", max_len=40))
    delivered = args.pence("savings_delivered", allow_zero=True)
    reason = args.text("reason", max_len=4000)
    reported_in = args.text("reported_in", required=False, max_len=40)
    args.done()
    uow.check_version(ret.ref, ret.version, args)
    if ret.kind != "savings":
        raise ValidationError(
            f"restate_return: return: {ret.ref} is a {ret.kind} return; only savings figures "
            "are restated",
            field="return",
            item=ret.ref,
        )
    if ret.state != "accepted":
        raise ValidationError(
            f"restate_return: return: {ret.ref} is {ret.state}, not accepted; a return not yet "
            "accepted is corrected by submitting it again (submit_return)",
            field="return",
            item=ret.ref,
        )
    conn = uow.conn
    if reported_in:
        later = conn.execute(_RETURN_BY_REF, {"ref": reported_in}).first()
        if later is None or later.grant_id != ret.grant_id or later.period_end <= ret.period_end:
            raise ValidationError(
                f"restate_return: reported_in: {reported_in!r} is not a later return of the "
                f"same grant (a return for a period after {long_date(ret.period_end)})",
                field="reported_in",
            )
    previous = (
        ret.savings_delivered_pence
        if ret.restated_delivered_pence is None
        else ret.restated_delivered_pence
    ) or 0
    if delivered == previous:
        raise ValidationError(
            f"restate_return: savings_delivered: {format_pence(delivered)} is the figure "
            f"{ret.ref} already has; nothing to restate",
            field="savings_delivered",
        )
    seq = ret.restatements + 1
    conn.execute(
        insert(ReturnRestatement).values(
            return_id=ret.id,
            seq=seq,
            previous_pence=previous,
            delivered_pence=delivered,
            reason=reason,
            reported_in=reported_in or "",
            restated_on=uow.today,
            recorded_by_id=uow.actor.person_id,
        )
    )
    uow.update_versioned(
        Return,
        ret.id,
        ret.version,
        {"restated_delivered_pence": delivered, "restatements": seq},
        ret.ref,
    )
    stated = "to date" if ret.reading == TO_DATE else "in the period"
    words = (
        f"{ret.ref} ({long_date(ret.period_start)} to {long_date(ret.period_end)}) restated: "
        f"savings {stated} {format_pence(previous)} → {format_pence(delivered)} "
        f"(first reported {format_pence(ret.savings_delivered_pence or 0)})"
        + (f" in {reported_in}" if reported_in else "")
        + f": {reason}"
    )
    uow.record(
        ret.ref,
        {"savings_delivered_pence": previous},
        {
            "savings_delivered_pence": delivered,
            "reported_pence": ret.savings_delivered_pence,
            "restatement": seq,
            "reading": ret.reading,
            "reported_in": reported_in or None,
        },
        words,
    )
    return {
        "return": ret.ref,
        "restatement": seq,
        "reading": ret.reading,
        "reading_means": READINGS.get(ret.reading, ret.reading),
        "reported_pence": ret.savings_delivered_pence,
        "previous_pence": previous,
        "savings_delivered_pence": delivered,
        "summary": words,
    }
