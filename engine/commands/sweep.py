"""The deadline sweep: returns owed, reminders, chases and escalations, from data.

Due dates live in the database; nothing is scheduled per deadline. One sweep,
as of a day: the ``sweep`` command on the command bus in one transaction, or —
the scheduler and ``quorum sweep`` — steps 1-3 in chunks of QUORUM_SWEEP_CHUNK
grants, each its own short transaction, then the rest (see "in chunks" below):

1. **Materialise returns.** For every grant that owes returns (active, or
   closed for the periods before it closed) and each period of its schedule
   (rules/returns.yaml) that has started by the sweep's day, a ``grant_return``
   row in state ``due``, with its due date moved off weekends and bank
   holidays. One ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per schedule
   line, for the periods some grant still lacks a return for (found first, so
   due dates and the bank-holiday tables behind them are only worked out when
   needed): the unique (grant, kind, period end) makes it idempotent. Refs are
   derived from the grant, kind and period (``RET-G-0001-progress-2011-06-30``)
   so every run, in any order, names a return the same way.
2. **Decide the rungs.** The distinct (kind, state, due date) values among
   outstanding returns (``due`` or ``queried``) in reach of the ladder are read
   — a few hundred at most, however many returns there are — and asserted as
   facts into the ladder's durable_rules ruleset (rules/reminders.py), which
   says which rungs apply to which "days from due".
3. **Queue the messages.** For each rung and recipient, one
   ``INSERT INTO outbox ... SELECT ... WHERE NOT EXISTS ... ON CONFLICT DO
   NOTHING`` over all returns the rung applies to (rungs picking the same
   returns for roles other than the sponsor — the Director's and the Chair's
   escalations — share one, :func:`_merged`), under the key
   ``return:<ref>:<rung>:<email>``: each rung is queued once per return and
   recipient, ever, whoever runs the sweep and however often. The message's
   context is JSON text put together by the database from pieces quoted once:
   the codes and ISO dates once per distinct (kind, period, due date), the
   grant's facts once per grant, the person's once per person — the same text
   on SQLite and PostgreSQL. No words: the context holds data, codes, ISO
   dates and numbers, and the subject is the rung's template; the words
   (Monday 1 August 2011, Q1 2011/12, quarterly progress report, Director) are
   written when the message is rendered, by engine/domain/words.py.
4. **One audit event** for the sweep (``SWEEP-<date>``) with the counts per
   kind and per rung, not one per message.
5. **Expire delegated requests** still awaiting signatures after their expiry
   date, each through its workflow's ``expire`` step (audited, its requester
   told): a handful a day at most; a second run finds none.
6. **Chase a meeting's open actions** through the ladders for actions
   (engine/commands/chasing.py): a handful of rows, read into Python; outbox
   keys ``action:<ref>:<rung>:<email>``, queued once each, as for returns.
7. **Forget expired idempotency keys** (``command_log`` rows older than
   ``QUORUM_IDEMPOTENCY_KEY_HOURS``: engine/store/idempotency.py ``prune``).

A sweep goes on from the last one: only the grants changed since (recorded by
the database's triggers in ``sweep_change``) and what came into reach since its
day — see "From the last sweep" below; a quiet day is a few dozen statements.

Nothing here loads returns into Python: only the distinct facts of step 2 and
the few grants reaching completion in step 1. A sweep killed part-way keeps
the chunks it committed (their messages ``sweeping``, never sent) and the next
one goes on from there; every message is queued exactly once, whatever its
chunk. Each chunk is serialised with every other command by the audit chain's
head lock, and the unique outbox key makes a second run queue nothing even
without it.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import JSON

from engine.commands.args import Args
from engine.commands.chasing import chase_actions
from engine.commands.handlers.delegation import expire_lapsed
from engine.commands.handlers.roles import expire_lapsed as expire_role_changes
from engine.commands.notices import Gate, Release, gate, group, release
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork
from engine.domain.errors import ValidationError
from engine.domain.words import short_date
from engine.read.repayments import late_instalments
from engine.settings import get_settings
from engine.store import idempotency
from engine.store.directory import Directory
from engine.store.models import (
    SWEEP_TRIGGERS,
    Bid,
    Grant,
    Organisation,
    Outbox,
    Payment,
    Person,
    PersonRole,
    Pot,
    Programme,
    Return,
    SweepChange,
    SweepRun,
)
from engine.store.notices import HELD, SWEEPING
from engine.store.rawsql import RawStatement
from rules.reminders import OUTSTANDING, Ladder, LadderRules, Rung, load_ladder_rules
from rules.returns import ReturnRules, Schedule, load_return_rules, periods
from workflows.returns import RETURN

__all__ = ["OWING", "RUNNING", "return_ref", "run_sweep"]

R = Return.__table__
G = Grant.__table__
POT = Pot.__table__
PROG = Programme.__table__
BID = Bid.__table__
ORG = Organisation.__table__
PERSON = Person.__table__
ROLE = PersonRole.__table__
OUT = Outbox.__table__
PAY = Payment.__table__
CHANGE = SweepChange.__table__
DUE = RETURN.step("fall_due").dest  # the state a return is created in (every row, set-based)

OWING = ("active", "closed")  # grant states that owe returns (closed: periods before closing)
NOT_CHASED = ("cancelled",)  # an approval reversed: its returns are not chased


def return_ref(grant_ref: str, kind: str, period_end: dt.date) -> str:
    """The ref the sweep gives a scheduled return (the same in SQL below)."""
    return f"RET-{grant_ref}-{kind}-{period_end.isoformat()}"


# ------------------------------------------------------------------ portable SQL pieces


class json_text(FunctionElement[str]):  # noqa: N801
    """A value as JSON text: a quoted and escaped string, a number, or null."""

    type = String()
    inherit_cache = True
    name = "json_text"


@compiles(json_text)
def _json_text(element: json_text, compiler: Any, **kw: Any) -> str:
    return f"json_quote({compiler.process(element.clauses, **kw)})"


@compiles(json_text, "postgresql")
def _json_text_pg(element: json_text, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"coalesce(to_json(CAST({value} AS TEXT))::text, 'null')"


class as_json(FunctionElement[Any]):  # noqa: N801
    """JSON text as the JSON column takes it (PostgreSQL: cast to json, which checks it)."""

    type = JSON()
    inherit_cache = True
    name = "as_json"


@compiles(as_json)
def _as_json(element: as_json, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(as_json, "postgresql")
def _as_json_pg(element: as_json, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS JSON)"


class days_between(FunctionElement[int]):  # noqa: N801
    """later - earlier, in whole days."""

    type = Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between)
def _days_between(element: days_between, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({a}) - julianday({b}) AS INTEGER)"


@compiles(days_between, "postgresql")
def _days_between_pg(element: days_between, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"({a} - {b})"


class iso_date(FunctionElement[str]):  # noqa: N801
    """A date as YYYY-MM-DD text."""

    type = String()
    inherit_cache = True
    name = "iso_date"


@compiles(iso_date)
def _iso_date(element: iso_date, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"  # SQLite keeps ISO text


@compiles(iso_date, "postgresql")
def _iso_date_pg(element: iso_date, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD')"


class add_days(FunctionElement[dt.date]):  # noqa: N801
    """A date plus a whole number of days (the number is a constant of ours)."""

    type = Date()
    inherit_cache = True
    name = "add_days"


@compiles(add_days)
def _add_days(element: add_days, compiler: Any, **kw: Any) -> str:
    d, n = (compiler.process(c, **kw) for c in element.clauses)
    return f"date({d}, CAST({n} AS TEXT) || ' days')"


@compiles(add_days, "postgresql")
def _add_days_pg(element: add_days, compiler: Any, **kw: Any) -> str:
    d, n = (compiler.process(c, **kw) for c in element.clauses)
    return f"({d} + {n})"


def _text(value: str) -> ColumnElement[Any]:
    """A string constant, written into the statement as a literal: PostgreSQL knows
    its type (it cannot guess a bare parameter's), and the large cached statements
    carry few parameters (each one costs in every execution: the drivers convert
    the statement's placeholders, PostgreSQL parses the values)."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


def _int(value: int) -> ColumnElement[Any]:
    """An integer constant, written into the statement."""
    return literal_column(str(int(value)), Integer)


def _num(x: ColumnElement[Any]) -> ColumnElement[Any]:
    return cast(x, String)


def _insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, for the connection's dialect."""
    mod = pg_dialect if conn.dialect.name == "postgresql" else sqlite_dialect
    return mod.insert(table)


# ------------------------------------------------------------------ cached statements
#
# A sweep runs the same few statements every day with different values: each is
# built once per shape (which rung, how many date ranges, which scope), compiled
# once per dialect and sent straight to the driver (engine/store/rawsql.py), the values
# as parameters. Building and compiling these large statements costs more than
# SQLite takes to run them on a small database.


@dataclass(frozen=True)
class Scope:
    """Which grants a schedule or ladder covers: their programme is :pid (``eq``) or
    not one of n others (``not_in``), and (schedules) the grant is :gid or not one
    of m grants with a schedule of their own."""

    programme: str = "any"  # any / eq / not_in
    n_programmes: int = 0
    grant: str = "any"  # any / eq / not_in
    n_grants: int = 0
    chunk: bool = False  # only the grants with :after < id <= :upto (a chunk of the sweep)
    marked: bool = False  # only the grants changed (sweep_change :mlo < id <= :mhi)

    def sql(self) -> list[ColumnElement[Any]]:
        out: list[ColumnElement[Any]] = []
        if self.chunk:
            out += [G.c.id > bindparam("after", type_=Integer),
                    G.c.id <= bindparam("upto", type_=Integer)]  # fmt: skip
        if self.marked:
            out.append(G.c.id.in_(_marked_grants()))
        if self.programme == "eq":
            out.append(POT.c.programme_id == bindparam("pid", type_=Integer))
        elif self.programme == "not_in":
            out.append(
                POT.c.programme_id.not_in(
                    [bindparam(f"xp{i}", type_=Integer) for i in range(self.n_programmes)]
                )
            )
        if self.grant == "eq":
            out.append(G.c.id == bindparam("gid", type_=Integer))
        elif self.grant == "not_in":
            out.append(
                G.c.id.not_in([bindparam(f"xg{i}", type_=Integer) for i in range(self.n_grants)])
            )
        return out

    def returns_sql(self) -> list[ColumnElement[Any]]:
        """The chunk's bounds on a return's grant (none when not a chunk)."""
        out: list[ColumnElement[Any]] = []
        if self.chunk:
            out += [R.c.grant_id > bindparam("after", type_=Integer),
                    R.c.grant_id <= bindparam("upto", type_=Integer)]  # fmt: skip
        if self.marked:
            out.append(R.c.grant_id.in_(_marked_grants()))
        return out

    @property
    def needs_pot(self) -> bool:
        return self.programme != "any"


Span = tuple[int, int]  # a chunk of the sweep: the grants with after < id <= upto


def _marked_grants() -> Any:
    """The grants changed (sweep_change rows :mlo < id <= :mhi)."""
    return select(CHANGE.c.grant_id).where(CHANGE.c.id > bindparam("mlo", type_=Integer),
                                           CHANGE.c.id <= bindparam("mhi", type_=Integer))


@dataclass(frozen=True)
class Part:
    """Which part of the sweep a chunk does: the grants of ``span`` (None: all), or
    those changed in the sweep_change rows of ``marked``; ``since``: going on from
    the sweep of that day (only what came into reach after it: new periods, due
    dates newly reached by a rung)."""

    span: Span | None = None
    marked: Span | None = None
    since: dt.date | None = None


def _chunked(
    scope: Scope, params: dict[str, Any], part: Part | Span | None
) -> tuple[Scope, dict[str, Any]]:
    """The scope and its parameters narrowed to a chunk's grants (unchanged without one)."""
    if part is None:
        return scope, params
    if not isinstance(part, Part):
        part = Part(span=part)
    if part.span is not None:
        scope = replace(scope, chunk=True)
        params = {**params, "after": part.span[0], "upto": part.span[1]}
    if part.marked is not None:
        scope = replace(scope, marked=True)
        params = {**params, "mlo": part.marked[0], "mhi": part.marked[1]}
    return scope, params


def _scope(
    programme: int | list[int] | None = None, grant: int | list[int] | None = None
) -> tuple[Scope, dict[str, int]]:
    params: dict[str, int] = {}
    if isinstance(programme, int):
        params["pid"] = programme
        p_kind, n_p = "eq", 0
    elif programme:
        params.update({f"xp{i}": v for i, v in enumerate(programme)})
        p_kind, n_p = "not_in", len(programme)
    else:
        p_kind, n_p = "any", 0
    if isinstance(grant, int):
        params["gid"] = grant
        g_kind, n_g = "eq", 0
    elif grant:
        params.update({f"xg{i}": v for i, v in enumerate(grant)})
        g_kind, n_g = "not_in", len(grant)
    else:
        g_kind, n_g = "any", 0
    return Scope(p_kind, n_p, g_kind, n_g), params


def _in(column: ColumnElement[Any], values: Sequence[str]) -> ColumnElement[Any]:
    """column IN (constants), with the constants as plain parameters (no expansion)."""
    return column.in_([_text(v) for v in values])


def _run(conn: Connection, stmt: RawStatement, params: dict[str, Any]) -> int:
    """Execute a cached INSERT; how many rows it wrote. (Python's sqlite3 reports -1
    for a statement that starts with WITH, so SQLite itself is asked.)"""
    cursor = stmt.execute(conn, params)
    if cursor.rowcount is not None and cursor.rowcount >= 0:
        return int(cursor.rowcount)
    raw = conn.connection.driver_connection  # typed optional: None once detached
    if conn.dialect.name == "sqlite" and raw is not None:
        return int(raw.execute("SELECT changes()").fetchone()[0])
    raise RuntimeError("the database did not say how many rows were inserted")


# ------------------------------------------------------------------ 1. materialise returns


def _programme_ids(conn: Connection) -> dict[str, int]:
    """Every programme's id by its name."""
    rows = typing.cast(Iterable[tuple[int, str]], conn.execute(select(PROG.c.id, PROG.c.name)))
    return {name: pid for pid, name in rows}


def _scopes(
    conn: Connection, rules: ReturnRules, prog_ids: dict[str, int]
) -> list[tuple[Schedule, Scope, dict[str, Any]]]:
    """Each schedule with the grants it covers (a Scope and its parameters)."""
    grant_ids: dict[str, int] = {}
    if rules.grants:
        grant_ids = {
            ref: gid
            for gid, ref in typing.cast(
                Iterable[tuple[int, str]],
                conn.execute(select(G.c.id, G.c.ref).where(G.c.ref.in_(list(rules.grants)))),
            )
        }
    overridden = sorted(grant_ids.values())
    named = {name: prog_ids[name] for name in rules.programmes if name in prog_ids}
    out = [(rules.default, *_scope(sorted(named.values()) or None, overridden or None))]
    for name, pid in named.items():
        out.append((rules.programmes[name], *_scope(pid, overridden or None)))
    for ref, gid in grant_ids.items():
        out.append((rules.grants[ref], *_scope(None, gid)))
    return out


def _periods_values(n_rows: int, due: bool) -> Any:
    """The n periods (parameters ps_i, pe_i; with ``due``, due_i and sfx_i too) as rows."""
    return union_all(
        *(
            select(
                bindparam(f"ps{i}", type_=Date).label("ps"),
                bindparam(f"pe{i}", type_=Date).label("pe"),
                *(
                    (
                        bindparam(f"due{i}", type_=Date).label("due"),
                        cast(bindparam(f"sfx{i}", type_=String), String).label("suffix"),
                    )
                    if due
                    else ()
                ),
            )
            for i in range(n_rows)
        )
    ).subquery("v")


def _owed(scope: Scope, kind: str, v: Any) -> tuple[Any, list[ColumnElement[Any]]]:
    """FROM and WHERE: the covered grants' periods in ``v`` that they owe a return
    of ``kind`` for and do not have one yet."""
    grants = G.join(POT, POT.c.id == G.c.pot_id) if scope.needs_pot else G
    return grants.join(v, true()), [
        _in(G.c.state, OWING),
        *scope.sql(),
        v.c.pe >= G.c.approved_on,
        or_(G.c.closed_on.is_(None), v.c.ps <= G.c.closed_on),
        ~exists(
            select(R.c.id).where(
                R.c.grant_id == G.c.id, R.c.kind == _text(kind), R.c.period_end == v.c.pe
            )
        ),
    ]


@lru_cache(maxsize=64)
def _missing_statement(dialect: str, scope: Scope, kind: str, n_rows: int) -> RawStatement:
    """Which of n periods (parameters ps_i, pe_i) some covered grant owes a return of
    ``kind`` for and does not have yet: their ends."""
    v = _periods_values(n_rows, due=False)
    from_, where = _owed(scope, kind, v)
    return RawStatement(select(v.c.pe).distinct().select_from(from_).where(*where))


@lru_cache(maxsize=64)
def _materialise_statement(dialect: str, scope: Scope, kind: str, n_rows: int) -> RawStatement:
    """INSERT the returns of ``kind`` for n periods (parameters ps_i, pe_i, due_i, sfx_i)
    that the covered grants owe and do not have yet."""
    v = _periods_values(n_rows, due=True)
    from_, where = _owed(scope, kind, v)
    sel = (
        select(
            (_text("RET-") + G.c.ref + v.c.suffix).label("ref"),
            G.c.id,
            _text(kind),
            v.c.ps,
            v.c.pe,
            v.c.due,
            _text(DUE),
            _int(1),
        )
        .select_from(from_)
        .where(*where)
    )
    mod = pg_dialect if dialect == "postgresql" else sqlite_dialect
    cols = ["ref", "grant_id", "kind", "period_start", "period_end", "due_on", "state", "version"]
    return RawStatement(mod.insert(R).from_select(cols, sel).on_conflict_do_nothing())


def _first_approved(scope: Scope) -> Any:
    """The earliest approval among the grants a scope covers that owe returns."""
    grants = G.join(POT, POT.c.id == G.c.pot_id) if scope.needs_pot else G
    return (select(func.min(G.c.approved_on)).select_from(grants)
            .where(G.c.state.in_(OWING), *scope.sql()))  # fmt: skip


def _materialise(
    conn: Connection,
    as_of: dt.date,
    rules: ReturnRules,
    span: Part | Span | None = None,
    scopes: list[tuple[Schedule, Scope, dict[str, Any]]] | None = None,
    first: Any = None,
) -> Counter[str]:
    """Step 1. The periods some grant still lacks a return for are found first, so
    that due dates (and the bank-holiday tables they need) are worked out only for
    those: on most days there are none. Going on from the sweep of ``since``: only
    the periods begun after that day (the grants changed since are a part of their
    own, every period)."""
    created: Counter[str] = Counter()
    since = span.since if isinstance(span, Part) else None
    for n_scope, (schedule, whole, every) in enumerate(
        scopes if scopes is not None else _scopes(conn, rules, _programme_ids(conn))
    ):
        scope, params = _chunked(whole, every, span)
        if n_scope or scopes is None:  # the first scope's: read with the chunk's marks
            first = conn.execute(_first_approved(scope), params).scalar()
        if first is None:
            continue
        first = _as_date(first)
        for line in schedule.lines:
            if line.every == "completion":
                n = _materialise_completion(conn, as_of, rules, schedule, line, scope, params,
                                            since)  # fmt: skip
            else:
                spans = [
                    (ps, pe)
                    for ps, pe in periods(line.every, first, as_of)
                    if ps <= as_of
                    and (since is None or ps > since)
                    and (schedule.first_period_end is None or pe >= schedule.first_period_end)
                ]
                if not spans:
                    continue
                values = dict(params)
                for i, (ps, pe) in enumerate(spans):
                    values.update({f"ps{i}": ps, f"pe{i}": pe})
                stmt = _missing_statement(conn.dialect.name, scope, line.kind, len(spans))
                lacking = {_as_date(row[0]) for row in stmt.execute(conn, values).fetchall()}
                rows = [(ps, pe, line.due(pe, rules.calendar)) for ps, pe in spans if pe in lacking]
                if not rows:
                    continue
                values = dict(params)
                for i, (ps, pe, due) in enumerate(rows):
                    values.update(
                        {f"ps{i}": ps, f"pe{i}": pe, f"due{i}": due,
                         f"sfx{i}": f"-{line.kind}-{pe.isoformat()}"}
                    )  # fmt: skip
                stmt = _materialise_statement(conn.dialect.name, scope, line.kind, len(rows))
                n = _run(conn, stmt, values)
            if n:
                created[line.kind] += n
    return created


def _as_date(value: Any) -> dt.date:
    """A date as the driver gives it (SQLite: ISO text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _materialise_completion(
    conn: Connection,
    as_of: dt.date,
    rules: ReturnRules,
    schedule: Schedule,
    line: Any,
    scope: Scope,
    params: dict[str, Any],
    since: dt.date | None = None,
) -> int:
    """A once-per-grant return (benefits report) for grants that have completed:
    the earlier of their end date and the day they closed (``since``: after that
    day). Only the few grants completed and still without one are read."""
    done = case(
        (
            and_(
                G.c.closed_on.is_not(None), or_(G.c.ends_on.is_(None), G.c.closed_on < G.c.ends_on)
            ),
            G.c.closed_on,
        ),
        else_=G.c.ends_on,
    )
    grants = G.join(POT, POT.c.id == G.c.pot_id) if scope.needs_pot else G
    found = conn.execute(
        select(G.c.id, G.c.ref, G.c.approved_on, done.label("done"))
        .select_from(grants)
        .where(
            G.c.state.in_(OWING),
            *scope.sql(),
            done.is_not(None),
            done <= as_of,
            *([done > since] if since is not None else []),
            ~exists(select(R.c.id).where(R.c.grant_id == G.c.id, R.c.kind == line.kind)),
        ),
        params,
    ).all()
    rows = [
        {
            "ref": return_ref(g.ref, line.kind, g.done),
            "grant_id": g.id,
            "kind": line.kind,
            "period_start": g.approved_on,
            "period_end": g.done,
            "due_on": line.due(g.done, rules.calendar),
            "state": DUE,
            "version": 1,
        }
        for g in found
        if schedule.first_period_end is None or g.done >= schedule.first_period_end
    ]
    if not rows:
        return 0
    stmt = _insert_ignore(conn, R).values(rows).on_conflict_do_nothing()
    result = conn.execute(stmt.execution_options(preserve_rowcount=True))
    return max(int(result.rowcount or 0), 0)


# ------------------------------------------------------------------ 2. which rungs apply


Term = tuple[str, str, dt.date, dt.date]  # kind, state, first due date, last due date


def _runs(present: Sequence[dt.date], chosen: set[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """The chosen dates as ranges of consecutive *present* dates: BETWEEN a AND b
    then selects exactly the chosen ones among those present."""
    out: list[tuple[dt.date, dt.date]] = []
    run: tuple[dt.date, dt.date] | None = None  # the run being read: (first, last)
    for day in present:
        if day in chosen:
            run = (run[0] if run else day, day)
        elif run is not None:
            out.append(run)
            run = None
    if run is not None:
        out.append(run)
    return out


@dataclass
class Plan:
    """A ladder, the programmes it covers, and per rung the returns it applies to."""

    ladder: Ladder
    scope: Scope
    params: dict[str, Any]
    terms: dict[str, list[Term]]


def _decide(
    conn: Connection,
    as_of: dt.date,
    ladders: LadderRules,
    part: Part | Span | None = None,
    prog_ids: dict[str, int] | None = None,
) -> tuple[list[Plan], int]:
    """For each ladder: per rung, the (kind, state, due-date range) terms selecting
    the outstanding returns it applies to, decided by durable_rules over the distinct
    (kind, state, due date) values present. Also the number of those facts. Going
    on from the sweep of ``since``: only the due dates a rung has reached since that
    day (a rung applies to a due date from a day on: before, that sweep queued it)."""
    if not isinstance(part, Part):
        part = Part(span=part)
    span, since = part.span, part.since
    prog_ids = _programme_ids(conn) if prog_ids is None else prog_ids
    named = {prog_ids[n]: lad for n, lad in ladders.programmes.items() if n in prog_ids}
    all_ladders = [ladders.default, *named.values()]
    earliest = min(lad.earliest() for lad in all_ladders)
    ends = [lad.latest() for lad in all_ladders]
    where = [R.c.state.in_(OUTSTANDING), R.c.due_on <= as_of - dt.timedelta(days=earliest)]
    bounded = [end for end in ends if end is not None]
    if len(bounded) == len(ends):  # every ladder ends: nothing older applies
        where.append(R.c.due_on >= as_of - dt.timedelta(days=max(bounded)))
    if span is not None:  # a chunk: its grants' returns (the index on the grant leads)
        where += [R.c.grant_id > span[0], R.c.grant_id <= span[1]]
    if part.marked is not None:
        where.append(R.c.grant_id.in_(
            select(CHANGE.c.grant_id).where(CHANGE.c.id > part.marked[0],
                                            CHANGE.c.id <= part.marked[1])))  # fmt: skip
    if since is not None:  # the due dates some rung reached after ``since``, up to as_of
        froms = sorted({r.from_day for lad in all_ladders for r in lad.rungs})
        where.append(or_(*(
            and_(R.c.due_on > since - dt.timedelta(days=f),
                 R.c.due_on <= as_of - dt.timedelta(days=f)) for f in froms)))  # fmt: skip
    if named:  # the programme decides the ladder
        facts_q = (
            select(R.c.kind, R.c.state, R.c.due_on, POT.c.programme_id)
            .select_from(R.join(G, G.c.id == R.c.grant_id).join(POT, POT.c.id == G.c.pot_id))
            .where(*where)
            .distinct()
        )
    else:  # one ladder for all: the index on (state, due_on) and the rows' kinds suffice
        facts_q = select(R.c.kind, R.c.state, R.c.due_on).where(*where).distinct()
    grouped: dict[int | None, dict[tuple[str, str], list[dt.date]]] = defaultdict(
        lambda: defaultdict(list)
    )
    n_facts = 0
    for row in conn.execute(facts_q):
        pid = row[3] if named else None
        grouped[pid if pid in named else None][(row[0], row[1])].append(row[2])
        n_facts += 1
    plans: list[Plan] = []
    for key, ladder in [(None, ladders.default), *named.items()]:
        scope, params = _chunked(*_scope(key if key is not None else (sorted(named) or None)), part)
        present = grouped.get(key)
        terms: dict[str, list[Term]] = {}
        if present:
            facts, index = [], []
            for (kind, state), dues in sorted(present.items()):
                dues.sort()
                for due in dues:
                    facts.append(
                        {
                            "ref": f"{kind}/{state}/{due.isoformat()}",
                            "days_from_due": (as_of - due).days,
                            "kind": kind,
                            "state": state,
                        }
                    )
                    index.append((kind, state, due))
            chosen: dict[str, dict[tuple[str, str], set[dt.date]]] = defaultdict(
                lambda: defaultdict(set)
            )
            reached = {r.name: r.from_day for r in ladder.rungs}
            for (kind, state, due), rungs in zip(index, _applicable(ladder, facts), strict=True):
                for rung in rungs:
                    if since is not None and (since - due).days >= reached[rung]:
                        continue  # the rung applied on ``since``: queued then
                    chosen[rung][(kind, state)].add(due)
            for rung, by_pair in chosen.items():
                terms[rung] = [
                    (kind, state, a, b)
                    for (kind, state), dues in sorted(by_pair.items())
                    for a, b in _runs(present[(kind, state)], dues)
                ]
        plans.append(Plan(ladder, scope, params, terms))
    return plans, n_facts


_DECIDED: dict[tuple[Ladder, str, str, int], frozenset[str]] = {}


def _applicable(ladder: Ladder, facts: list[dict[str, Any]]) -> list[frozenset[str]]:
    """``ladder.applicable`` (durable_rules) for the facts not decided before in this
    process: which rungs apply depends only on the ladder and the fact's kind, state
    and days from due, and a sweep's chunks assert the same few facts again and again."""
    keys = [(ladder, f["kind"], f["state"], int(f["days_from_due"])) for f in facts]
    new = [f for f, k in zip(facts, keys, strict=True) if k not in _DECIDED]
    if new:
        if len(_DECIDED) > 10_000:
            _DECIDED.clear()
        for f, rungs in zip(new, ladder.applicable(new), strict=True):
            _DECIDED[(ladder, f["kind"], f["state"], int(f["days_from_due"]))] = frozenset(rungs)
    return [_DECIDED[k] for k in keys]


def _terms_sql(n: int) -> ColumnElement[Any]:
    """The returns selected by n terms (parameters k_i, s_i, a_i, b_i)."""
    return or_(
        *(
            and_(
                R.c.kind == bindparam(f"k{i}", type_=String),
                R.c.state == bindparam(f"s{i}", type_=String),
                R.c.due_on.between(bindparam(f"a{i}", type_=Date), bindparam(f"b{i}", type_=Date)),
            )
            for i in range(n)
        )
    )


def _terms_params(terms: list[Term]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (kind, state, a, b) in enumerate(terms):
        out.update({f"k{i}": kind, f"s{i}": state, f"a{i}": a, f"b{i}": b})
    return out


def _grant_filters(scope: Scope) -> list[ColumnElement[Any]]:
    """Conditions on a return's grant, as correlated subqueries: the grant is not
    cancelled and (``scope``) belongs to the ladder's programmes. The returns stay
    the only table in FROM, so the index on (state, due_on) drives."""
    grants = G.join(POT, POT.c.id == G.c.pot_id) if scope.needs_pot else G
    out = [*scope.returns_sql(),
           ~exists(select(G.c.id).where(G.c.id == R.c.grant_id, _in(G.c.state, NOT_CHASED)))]
    if scope.needs_pot:
        out.append(exists(select(G.c.id).select_from(grants).where(G.c.id == R.c.grant_id,
                                                                     *scope.sql())))  # fmt: skip
    return out


# ------------------------------------------------------------------ 3. queue the messages


Send = tuple[Rung, str, "tuple[str, int] | None"]  # a rung, to whom, its next escalation


@lru_cache(maxsize=256)
def _queue_statement(
    dialect: str,
    sends: tuple[Send, ...],
    n_terms: int,
    scope: Scope,
    fallback: bool,
    status: str = SWEEPING,
    probe: bool = True,
) -> RawStatement:
    """One INSERT ... SELECT queueing each rung of ``sends`` for its role on the
    returns n terms select, written ``status`` (``sweeping``; ``held`` once the
    sweep is sure to hold them). Several sends (rungs with the same terms, to
    roles other than the sponsor: :func:`_merged`) share one statement: the
    returns are found, and the grants' facts worked out, once for all of them;
    each person row carries the send it is for (``n``), and what differs by send
    (the key's rung, template, subject, role, next escalation, context tail
    ``ctx_tail<n>``) is chosen by it.
    Without ``probe``, the pairs already queued are not dropped first (for grants
    none of whose returns has a message yet, :func:`_none_queued`: the probe would
    find nothing, at a quarter of the statement's time); the unique key still
    makes each message once.

    Built so that the work is proportional to the returns the rung applies to,
    whatever the planner does: the targeted returns first (``t``: the returns
    table alone in FROM, so the index on (state, due_on) drives), paired with
    the people the rung names (``p``, MATERIALIZED: a handful of rows), the
    pairs already queued dropped (``x``: one probe of the outbox key's index
    each, MATERIALIZED: only new pairs go on), and only then the titles and
    names joined for the new messages: what a message records is worked out once
    per distinct value, not once per message — the kind's code, the ISO dates
    and the next escalation once per distinct (kind, period, due date) among the
    new pairs (``d``: a handful of rows, however many messages), the grant's
    facts once per grant (``g``), names and
    addresses once per person (``p``) — and each context is JSON text put
    together from those pieces, quoted once. On SQLite, LEFT JOINs (with
    filters a planner cannot read as "not null") keep the planner to the order
    written; on PostgreSQL the people are joined to the returns with a plain
    join, which it can size (a LEFT JOIN with such a filter it takes for a
    single row, and then looks up every grant one at a time). ``fallback``:
    also send to a body's own address when it has no contact."""
    pg = dialect == "postgresql"
    rung, who, _ = sends[0]
    many = len(sends) > 1
    if many and any(s[1] == "sponsor" for s in sends):
        raise ValueError("sweep: a sponsor's rung is queued on its own")
    columns = [
        R.c.ref,
        R.c.grant_id.label("gid"),
        R.c.kind,
        R.c.period_start.label("ps"),
        R.c.period_end.label("pe"),
        R.c.due_on.label("due"),
        R.c.revisions.label("rev"),  # sent back for revision: the ladder starts again
    ]
    if who == "sponsor":
        columns.append(
            select(G.c.accountable_body_id)
            .where(G.c.id == R.c.grant_id)
            .scalar_subquery()
            .label("body")
        )
    targets = (
        select(*columns)
        .where(_in(R.c.state, OUTSTANDING), _terms_sql(n_terms), *_grant_filters(scope))
        .cte("t")
    )
    inline = not probe and not pg and who != "sponsor"  # x read once (below)
    if inline:  # read by x, d and g: written once
        targets = targets.prefix_with("MATERIALIZED")
    t = targets.c

    def holding(role: str, *n: ColumnElement[Any]) -> Any:
        return (
            select(
                PERSON.c.organisation_id.label("org"),
                PERSON.c.name,
                PERSON.c.email,
                func.lower(PERSON.c.email).label("lower_email"),
                json_text(PERSON.c.name).label("jname"),
                json_text(PERSON.c.email).label("jemail"),
                *n,
            )
            .select_from(PERSON.join(ROLE, ROLE.c.person_id == PERSON.c.id))
            .where(ROLE.c.role == _text(role), PERSON.c.active.is_(True))
        )

    if many:  # each send's people, marked with the send they are for
        held: Any = union_all(*(holding(s[1], _int(i).label("n")) for i, s in enumerate(sends)))
    else:
        held = holding(who)
    people = held.cte("p").prefix_with("MATERIALIZED")
    p = people.c

    def pair(right: Any, on: ColumnElement[Any], who: Any, *extra: Any) -> Any:
        name, email = who.name, who.email
        # return:<ref>:<rung>:<email>; after the n-th revision return:<ref>/revision-<n>:...
        again = case((t.rev > 0, _text("/revision-") + cast(t.rev, String)), else_=_text(""))
        tag = (_by_send(who.n, [_text(f":{s[0].name}:") for s in sends]) if many
               else _text(f":{rung.name}:"))  # fmt: skip
        key = _text("return:") + t.ref + again + tag + who.lower_email
        if pg:  # an inner join, which PostgreSQL can size
            from_ = targets.join(right, on)
            has_email = and_(email.is_not(None), email != _text(""))
        else:  # the order written (see above)
            from_ = targets.outerjoin(right, on)
            has_email = func.coalesce(email, _text("")) != _text("")
        return (
            select(
                t.ref,
                t.gid,
                t.kind,
                t.ps,
                t.pe,
                t.due,
                name.label("name"),
                email.label("email"),
                who.jname,
                who.jemail,
                key.label("key"),
                *([who.n] if many else []),
            )
            .select_from(from_)
            .where(has_email, *extra,
                   *([~exists(select(OUT.c.id).where(OUT.c.key == key))] if probe else []))
        )

    if who == "sponsor":  # the body's sponsor contacts; without any, its own address
        pairs: Any = pair(people, p.org == t.body, p)
        if fallback:
            bodies = (
                select(
                    ORG.c.id,
                    ORG.c.name,
                    ORG.c.email,
                    func.lower(ORG.c.email).label("lower_email"),
                    json_text(ORG.c.name).label("jname"),
                    json_text(ORG.c.email).label("jemail"),
                )
                .where(ORG.c.id.not_in(select(p.org).where(p.org.is_not(None))))
                .subquery("b")
            )
            pairs = union_all(pairs, pair(bodies, bodies.c.id == t.body, bodies.c))
    else:
        pairs = pair(people, true(), p)
    fresh = pairs.cte("x")
    if not inline:
        fresh = fresh.prefix_with("MATERIALIZED")
    x = fresh.c
    # the dates and grants of the new pairs; without the probe (SQLite: none of the
    # chunk's returns has a message yet) every targeted return's, from t — x is
    # then read once, by the INSERT, and need not be written out first (measured:
    # 8 ms less in 37 for 8,000 escalations; not for a sponsor's rung, whose
    # people are joined by body: 4 ms more in 12)
    among: Any = t if inline else x
    words = _due_dates(among, tuple(s[2] for s in sends))
    w = words.c
    grants = _grant_facts(among, who)
    g = grants.c
    context = _context(tuple(s[1] for s in sends) if many else who, x, w, g)
    on_dates = [w.kind == x.kind, w.ps == x.ps, w.pe == x.pe, w.due == x.due,
                *([w.n == x.n] if many else [])]  # fmt: skip
    template = _by_send(x.n, [_text(s[0].template) for s in sends]) if many else _text(
        rung.template)
    subject = _by_send(x.n, [_text(s[0].subject) for s in sends]) if many else _text(
        rung.subject)
    # LEFT JOINs to d and g on PostgreSQL too: it cannot size an equality on
    # columns of two CTEs, would take the join for a single row and then choose a
    # lookup per message for every later step; a LEFT JOIN keeps at least the rows
    # of x in its estimate.
    sel = (
        select(
            x.key,
            _text("email"),
            x.email,
            template,
            subject,  # filled in when rendered: words.message_subject
            context,
            bindparam("now", type_=OUT.c.created_at.type),
            _text(status),  # sweeping: released by the sweep's last step (notices.group)
            _int(0),
        )
        .select_from(
            fresh.outerjoin(words, and_(*on_dates)).outerjoin(grants, g.gid == x.gid)
        )
        .where(x.key.is_not(None))  # SQLite: an upsert's SELECT needs a WHERE (parsing)
    )
    mod = pg_dialect if pg else sqlite_dialect
    cols = ["key", "channel", "to_addr", "template", "subject", "context", "created_at", "status",
            "attempts"]  # fmt: skip
    return RawStatement(mod.insert(OUT).from_select(cols, sel).on_conflict_do_nothing())


def _by_send(n: Any, values: list[ColumnElement[Any]]) -> ColumnElement[Any]:
    """The value for the send ``n`` (a statement queueing several: :func:`_queue_statement`)."""
    return case(*((n == _int(i), v) for i, v in enumerate(values[:-1])), else_=values[-1])


def _due_dates(x: Any, escalations: tuple[tuple[str, int] | None, ...]) -> Any:
    """``d``: per distinct (kind, period start, period end, due date) among the new
    pairs ``x`` (or the targeted returns ``t``; several sends: per send too), what
    a message records about them — the kind's code, the ISO
    dates, the days before or after the due date (parameter: as_of) and, when
    the ladder has a later rung, who it goes to next and on what day — as one
    piece of JSON text, ready to be put into each context. No words: those are
    worked out from these when the message is rendered (engine/domain/words.py,
    ``return_message``)."""
    many = len(escalations) > 1  # several sends: each its own (x.n)
    if not many:
        found = select(x.kind, x.ps, x.pe, x.due).distinct().subquery("k0")
    elif "n" in x:
        found = select(x.kind, x.ps, x.pe, x.due, x.n).distinct().subquery("k0")
    else:  # the targeted returns' (t), then once for each send
        sent = union_all(*(select(_int(i).label("n")) for i in range(len(escalations))))
        each = sent.subquery("sn")
        dates = select(x.kind, x.ps, x.pe, x.due).distinct().subquery("k1")
        found = (select(*dates.c, each.c.n)
                 .select_from(dates.join(each, true())).subquery("k0"))  # fmt: skip
    keys = select(
        *found.c, days_between(bindparam("as_of", type_=Date), found.c.due).label("days")
    ).subquery("k")
    k = keys.c

    def then(esc: tuple[str, int] | None) -> list[str | ColumnElement[Any]]:
        if esc is None:
            return [',"escalation_to":null,"escalation_on":null']
        whom, after = esc
        return [
            f',"escalation_to":{json.dumps(whom)},"escalation_on":',
            json_text(iso_date(add_days(k.due, _int(after)))),
        ]

    nxt: list[str | ColumnElement[Any]]
    if many:  # each send's next escalation
        nxt = [_by_send(k.n, [_json_concat(*then(e)) for e in escalations])]
    else:
        nxt = then(escalations[0])
    return (
        select(
            k.kind,
            k.ps,
            k.pe,
            k.due,
            *([k.n] if many else []),
            _json_concat(
                ',"kind_code":',
                json_text(k.kind),
                ',"period_start":',
                json_text(iso_date(k.ps)),
                ',"period_end":',
                json_text(iso_date(k.pe)),
                ',"due_on":',
                json_text(iso_date(k.due)),
                ',"days_before":',
                _num(case((k.days < _int(0), -k.days), else_=_int(0))),
                ',"days_late":',
                _num(case((k.days > _int(0), k.days), else_=_int(0))),
                *nxt,
            ).label("dates_json"),
        )
        .select_from(keys)
        .cte("d")
        .prefix_with("MATERIALIZED")
    )


def _json_concat(*parts: str | ColumnElement[Any]) -> ColumnElement[Any]:
    """Text put together from constants and text expressions (adjacent constants
    merged into one literal)."""
    merged: list[str | ColumnElement[Any]] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    out: ColumnElement[Any] | None = None
    for part in merged:
        piece = _text(part) if isinstance(part, str) else part
        out = piece if out is None else out + piece
    assert out is not None
    return out


def _grant_facts(x: Any, who: str) -> Any:
    """``g``: per distinct grant among the new pairs ``x``, what a message records
    about it (its ref, title, accountable body, programme; for those escalated to,
    the money at stake), quoted as JSON for contexts."""
    keys = select(x.gid).distinct().subquery("gk")
    if who == "sponsor":
        figures: ColumnElement[Any] = _text("[]")
    else:  # those escalated to see the money at stake
        paid = (
            select(func.coalesce(func.sum(PAY.c.amount_pence), 0))
            .where(PAY.c.grant_id == G.c.id)
            .scalar_subquery()
        )
        figures = _json_concat(
            '[{"label":"Grant awarded","pence":',
            func.coalesce(_num(G.c.awarded_pence), _text("null")),
            '},{"label":"Paid to date","pence":',
            _num(paid),
            "}]",
        )
    return (
        select(
            keys.c.gid,
            _json_concat(',"organisation":', json_text(ORG.c.name)).label("org_json"),
            _json_concat(
                ',"grant_ref":', json_text(G.c.ref), ',"title":', json_text(BID.c.title)
            ).label("grant_json"),
            _json_concat(',"programme":', json_text(PROG.c.name)).label("programme_json"),
            figures.label("figures_json"),
        )
        .select_from(
            keys.outerjoin(G, G.c.id == keys.c.gid)
            .outerjoin(POT, POT.c.id == G.c.pot_id)
            .outerjoin(PROG, PROG.c.id == POT.c.programme_id)
            .outerjoin(BID, BID.c.id == G.c.bid_id)
            .outerjoin(ORG, ORG.c.id == G.c.accountable_body_id)
        )
        .cte("g")
        .prefix_with("MATERIALIZED")
    )


def _context(who: str | tuple[str, ...], x: Any, w: Any, g: Any) -> ColumnElement[Any]:
    """The message's context: JSON text put together by the database from pieces
    already quoted (per date in ``d``, per grant in ``g``, per person in ``x``).
    Data and codes only — names, refs, title, ISO dates, the kind and role codes,
    figures in pence; the words the templates read (kind, period, due_date, role,
    escalation, date) and the day counts are added when the message is rendered
    (engine/domain/words.py, ``return_message``; docs/notifications.md).
    Parameter: ctx_tail (the keys the same in every message of the sweep: rung
    and as_of, and the closing brace); several sends (``who`` a tuple: one role
    each), ctx_tail0, ctx_tail1... chosen by the send ``x.n``."""
    if isinstance(who, tuple):
        role: str | ColumnElement[Any] = _by_send(
            x.n, [_text(f',"role_code":{json.dumps(r)}') for r in who])
        tail: ColumnElement[Any] = _by_send(
            x.n, [cast(bindparam(f"ctx_tail{i}", type_=String), String) for i in range(len(who))])
    else:
        role = f',"role_code":{json.dumps(who)}'
        tail = cast(bindparam("ctx_tail", type_=String), String)
    return as_json(
        _json_concat(
            '{"name":', x.jname, role, g.org_json,
            ',"return_ref":', json_text(x.ref), g.grant_json, w.dates_json,
            g.programme_json, ',"email":', x.jemail,
            ',"history":[],"figures":', g.figures_json,  # history: see docs/returns.md
            tail,
        )
    )  # fmt: skip


def _context_tail(rung: Rung, as_of: dt.date) -> str:
    """The end of every context the rung queues in a sweep: the keys that are the
    same in each, as JSON text (as the database writes it: no spaces, non-ASCII
    as is), and the closing brace."""
    tail = {"rung": rung.name, "as_of": as_of.isoformat()}
    return "," + json.dumps(tail, ensure_ascii=False, separators=(",", ":"))[1:]


def _next_escalation(ladder: Ladder, rung: Rung) -> tuple[str, int] | None:
    """Who (the role) a return goes to next after ``rung``, and how many days after
    its due date: the first later rung naming someone other than the sponsor."""
    return ladder.next_escalation(rung)


def _queue(
    conn: Connection,
    as_of: dt.date,
    now: dt.datetime,
    plan: Plan,
    sends: Sequence[tuple[Rung, str]],
    fallback: bool,
    status: str = SWEEPING,
    probe: bool = True,
) -> int:
    """Queue each rung of ``sends`` for its role on every return the plan says it
    applies to (several: rungs with the same terms, :func:`_merged`); returns how
    many messages were queued (each key at most once, ever)."""
    rung, who = sends[0]
    terms = plan.terms[rung.name]
    stmt = _queue_statement(
        conn.dialect.name,
        tuple((r, w, _next_escalation(plan.ladder, r)) for r, w in sends),
        len(terms),
        plan.scope,
        fallback and who == "sponsor",
        status,
        probe,
    )
    params = {**plan.params, **_terms_params(terms), "as_of": as_of, "now": now}
    if len(sends) == 1:
        params["ctx_tail"] = _context_tail(rung, as_of)
    else:
        params.update((f"ctx_tail{i}", _context_tail(r, as_of)) for i, (r, _) in enumerate(sends))
    return _run(conn, stmt, params)


def _merged(plans: list[Plan]) -> list[tuple[Plan, list[tuple[Rung, str]], bool]]:
    """The sweep's sends (each rung that applies, to each role it names), those of a
    plan with the same terms and a role other than the sponsor together (one
    statement for all: :func:`_queue_statement`), the rest one by one, in ladder
    order; and whether the messages each queued are counted by their template
    and subject (:func:`_counted`) rather than by the statement's row count (a
    statement for several rungs says only how many in all). Such a send is
    together with others only when its rung's (template, subject) names it alone
    among all the sends and none of them is to the sponsor: each message is then
    counted once, one way or the other."""
    sends = [(plan, rung, who) for plan in plans for rung in plan.ladder.rungs
             if rung.name in plan.terms for who in rung.to]  # fmt: skip
    names: dict[tuple[str, str], set[str]] = defaultdict(set)
    alone: set[tuple[str, str]] = set()  # also sent to a sponsor
    for _, rung, who in sends:
        names[(rung.template, rung.subject)].add(rung.name)
        if who == "sponsor":
            alone.add((rung.template, rung.subject))
    out: list[tuple[Plan, list[tuple[Rung, str]], bool]] = []
    together: dict[tuple[int, tuple[Term, ...]], list[tuple[Rung, str]]] = {}
    for plan, rung, who in sends:
        pair = (rung.template, rung.subject)
        if pair in alone or len(names[pair]) > 1:
            out.append((plan, [(rung, who)], False))
            continue
        key = (id(plan), tuple(plan.terms[rung.name]))
        if key not in together:
            together[key] = []
            out.append((plan, together[key], True))
        together[key].append((rung, who))
    return out


class _Addressed:
    """Who can be written to, read once per chunk (not once per rung and role): the
    roles some active person holds, and the bodies with no sponsor contact, with
    and without an address of their own. From the command's directory when given
    (engine/store/directory.py: current in a write transaction, reloaded whenever
    people, roles or organisations change, so a person changed between two chunks
    is seen by the next, as when it was read in SQL), worked out once per
    snapshot: no statement per chunk; else read in SQL."""

    _last: tuple[Directory, set[str], list[int], list[int]] | None = None  # per process

    def __init__(self, conn: Connection, directory: Directory | None = None) -> None:
        self.conn = conn
        self._roles: set[str] | None = None
        self._bodies: list[int] | None = None
        self._addressed_bodies: list[int] | None = None
        if directory is not None:
            last = _Addressed._last
            if last is None or last[0] is not directory:
                last = _Addressed._last = (directory, *_from_directory(directory))
            self._roles, self._bodies, self._addressed_bodies = set(last[1]), last[2], last[3]

    def staffed(self, who: str) -> bool:
        if self._roles is None:
            self._roles = set(self.conn.execute(
                select(ROLE.c.role).distinct()
                .select_from(PERSON.join(ROLE, ROLE.c.person_id == PERSON.c.id))
                .where(PERSON.c.active.is_(True))).scalars())  # fmt: skip
        return who in self._roles

    def bodies(self) -> list[int]:
        if self._bodies is None:
            self._bodies = _bodies_without_contacts(self.conn, with_email=False)
        return self._bodies

    def addressed_bodies(self) -> list[int]:
        """The bodies with no sponsor contact and an address of their own."""
        if self._addressed_bodies is None:
            self._addressed_bodies = _bodies_without_contacts(self.conn, with_email=True)
        return self._addressed_bodies


def _from_directory(d: Directory) -> tuple[set[str], list[int], list[int]]:
    """What :class:`_Addressed` reads in SQL, from a directory snapshot: the roles
    some active person holds; the bodies with no active sponsor contact, without
    and with an address of their own (an empty address is none, as in SQL)."""
    roles = {role for p in d.people_by_email.values() if p.active for role in p.roles}
    without: list[int] = []
    with_email: list[int] = []
    for org in d.orgs_by_id.values():
        if org.id in d.contacts_by_org:
            continue
        (with_email if org.email is not None and org.email != "" else without).append(org.id)
    return roles, without, with_email


def _unaddressed(
    conn: Connection, plan: Plan, rung: Rung, who: str, known: _Addressed | None = None
) -> int:
    """Returns the rung applies to that have nobody to send to: no one holds the
    role, or (sponsor) the accountable body has no sponsor contact and no email.
    Checked on the people first (``known``: as read earlier in the chunk), so the
    returns are counted only when it happens."""
    known = known or _Addressed(conn)
    if who == "sponsor":
        bodies = known.bodies()
        if not bodies:
            return 0
        extra = [
            exists(
                select(G.c.id).where(G.c.id == R.c.grant_id, G.c.accountable_body_id.in_(bodies))
            )
        ]
    else:
        if known.staffed(who):
            return 0
        extra = []
    terms = plan.terms[rung.name]
    return int(
        conn.execute(
            select(func.count())
            .select_from(R)
            .where(
                R.c.state.in_(OUTSTANDING),
                _terms_sql(len(terms)),
                *_grant_filters(plan.scope),
                *extra,
            ),
            {**plan.params, **_terms_params(terms)},
        ).scalar()
        or 0
    )


def _bodies_without_contacts(conn: Connection, *, with_email: bool) -> list[int]:
    """Organisations with no active sponsor contact, with (or without) an email of
    their own. A few rows: the organisations, not the returns."""
    contacts = (
        select(PERSON.c.organisation_id)
        .select_from(PERSON.join(ROLE, ROLE.c.person_id == PERSON.c.id))
        .where(
            ROLE.c.role == "sponsor",
            PERSON.c.active.is_(True),
            PERSON.c.organisation_id.is_not(None),
        )
    )
    has_email = and_(ORG.c.email.is_not(None), ORG.c.email != "")
    return list(
        conn.execute(
            select(ORG.c.id).where(
                has_email if with_email else ~has_email, ORG.c.id.not_in(contacts)
            )
        ).scalars()
    )


# ------------------------------------------------------------------ the sweep


def run_sweep(
    conn: Connection,
    as_of: dt.date,
    now: dt.datetime,
    returns_rules: ReturnRules,
    ladder_rules: LadderRules,
    span: Part | Span | None = None,
    status: str = SWEEPING,
    directory: Directory | None = None,
) -> dict[str, Any]:
    """Steps 1-3 for the grants of ``span`` (every grant without one; a :class:`Part`:
    those or the grants changed, going on from an earlier sweep), on ``conn``
    inside the caller's transaction: the counts (returns created, messages queued
    per rung, those with no recipient, the facts asserted). The messages are
    written ``sweeping``: the sweep's last step holds, digests or queues them.

    ``directory``: the command's (people, roles, organisations, programmes), read
    from it rather than in SQL. A chunk's fixed statements are few: each is a
    round trip, and on a busy PostgreSQL a few milliseconds — 25 of them took a
    75 ms chunk's budget (the settings, the last change and outbox row and the
    first approval are one statement, :func:`_marks`)."""
    pg = conn.dialect.name == "postgresql"
    if not pg:
        # the outbox key's index is written at random places: kept in memory (64 MB, this
        # connection, the sweep's) it is not read again page by page for each chunk
        conn.exec_driver_sql("PRAGMA cache_size = -65536")
    part = span if isinstance(span, Part) else Part(span=span)
    prog_ids = (
        {name: pid for pid, name in directory.programmes.items()}
        if directory is not None
        else _programme_ids(conn)
    )
    scopes = _scopes(conn, returns_rules, prog_ids)
    first_scope, first_params = _chunked(scopes[0][1], scopes[0][2], part)
    before, first_new, first = _marks(conn, first_scope, first_params)
    created = _materialise(conn, as_of, returns_rules, part, scopes, first)
    if created:
        # the returns this sweep wrote marked their grants changed (the triggers): this
        # chunk decides on them now, over all their due dates, so no later sweep need
        # look at them again for that
        conn.execute(CHANGE.delete().where(CHANGE.c.id > before))
        part = replace(part, since=None)
    plans, n_facts = _decide(conn, as_of, ladder_rules, part, prog_ids)
    queued: Counter[str] = Counter()
    no_recipient: dict[str, int] = {}
    known = _Addressed(conn, directory)
    fallback = plans_terms(plans) and bool(known.addressed_bodies())
    probe = not (plans_terms(plans) and _none_queued(conn, part))
    together: dict[tuple[str, str], str] = {}  # a merged send's (template, subject): its rung
    written = merged = 0
    for plan, sends, by_sql in _merged(plans):
        n = _queue(conn, as_of, now, plan, sends, fallback, status, probe)
        written += n
        if by_sql:  # counted in the chunk's rows (:func:`_counted`)
            together.update(((r.template, r.subject), r.name) for r, _ in sends)
            merged += n
        elif n:
            queued[sends[0][0].name] += n
        for rung, who in sends:
            missing = _unaddressed(conn, plan, rung, who, known)
            if missing:
                label = f"{rung.name} to {who}"
                no_recipient[label] = no_recipient.get(label, 0) + missing
    per_address: dict[str, int] = {}
    if written:  # this chunk's messages per address (its rows: ids after first_new)
        per_address = _counted(conn, first_new, together, merged, queued)
    return {
        "returns_created": dict(created),
        "messages_queued": dict(queued),
        "no_recipient": no_recipient,
        "facts": n_facts,
        "per_address": per_address,
        "held": status == HELD and bool(queued),  # some written held (:func:`_written`)
    }


ID_MAX = 2**31 - 1  # the largest id (INTEGER)


def _counted(
    conn: Connection,
    first_new: int,
    together: dict[tuple[str, str], str],
    merged: int,
    queued: Counter[str],
) -> dict[str, int]:
    """A chunk's messages (the outbox rows after ``first_new``: all written by this
    transaction) per address; and the ``merged`` messages of merged sends
    (``together``: each one's template and subject, naming its rung alone) added
    to ``queued`` by rung."""
    # bounded on both sides, both parameters: PostgreSQL's generic plan (a statement
    # prepared after 5 runs) takes "id > $1" alone for a third of the outbox and
    # scanned all of it — 60 ms a chunk at 200,000 messages
    chunk = [OUT.c.id > first_new, OUT.c.id <= ID_MAX]
    # per address (a short key to group by), and per merged rung but the last a sum of
    # the rows naming it; the last rung's are the rest (grouping by the long subject
    # too took twice as long)
    pairs = sorted(together.items())
    named = [func.sum(case((and_(OUT.c.template == _text(t), OUT.c.subject == _text(s)),
                                _int(1)), else_=_int(0))) for (t, s), _ in pairs[:-1]]  # fmt: skip
    per_address: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    for row in conn.execute(
        select(OUT.c.to_addr, func.count(), *named).where(*chunk).group_by(OUT.c.to_addr)
    ):
        per_address[str(row[0])] += int(row[1])
        for j, (_, rung) in enumerate(pairs[:-1]):
            counted[rung] += int(row[2 + j] or 0)
    if pairs:
        counted[pairs[-1][1]] += merged - sum(counted.values())
    queued.update(+counted)  # the rungs that queued something
    return dict(per_address)


def _marks(conn: Connection, scope: Scope, params: dict[str, Any]) -> tuple[int, int, Any]:
    """In one statement: the last change recorded (``sweep_change``), the last
    outbox row (this chunk's messages are those after it), and the earliest
    approval among the grants of the first schedule's ``scope`` (None: no grant
    owes returns). On PostgreSQL, the transaction's settings too: a few
    statements, each over many rows — compiling them (JIT) costs more than it
    saves, and the sorts and hashes fit in memory (``set_config(..., true)``:
    SET LOCAL, this transaction only)."""
    columns: list[Any] = [
        select(func.coalesce(func.max(CHANGE.c.id), 0)).scalar_subquery(),
        select(func.coalesce(func.max(OUT.c.id), 0)).scalar_subquery(),
        _first_approved(scope).scalar_subquery(),
    ]
    if conn.dialect.name == "postgresql":
        columns += [func.set_config("jit", "off", true()),
                    func.set_config("work_mem", "64MB", true())]  # fmt: skip
    row = conn.execute(select(*columns), params).one()
    return int(row[0] or 0), int(row[1] or 0), row[2]


def _none_queued(conn: Connection, part: Part) -> bool:
    """Whether no grant of the chunk ``part.span`` has a message about one of its
    returns yet (SQLite): then the queue statements need not look each new message
    up in the outbox first (a catch-up, a first sweep). One look-up per grant, by
    the key's prefix: a scheduled return's ref is ``RET-<grant ref>-...``
    (:func:`return_ref`), so its keys lie between ``return:RET-<grant ref>-`` and
    ``...<grant ref>.``. A return named otherwise is not seen: its messages are
    then built again and dropped by the unique key, each still queued once.
    PostgreSQL (whose collation may not order by bytes), and chunks of changed
    grants, always look up."""
    if conn.dialect.name != "sqlite" or part.span is None:
        return False
    prefix = _text("return:RET-") + G.c.ref
    queued = select(OUT.c.id).where(OUT.c.key >= prefix + _text("-"),
                                    OUT.c.key < prefix + _text("."))  # fmt: skip
    return conn.execute(
        select(G.c.id).where(G.c.id > part.span[0], G.c.id <= part.span[1], exists(queued))
        .limit(1)
    ).first() is None


def plans_terms(plans: list[Plan]) -> bool:
    """Whether any rung applies to anything."""
    return any(plan.terms for plan in plans)


# ------------------------------------------------------------------ in chunks
#
# The ``sweep`` command does the whole sweep in one transaction: fine for a small
# database, a batch or a replay, but at 100,000 grants it would hold the write
# lock for seconds. The scheduler and ``quorum sweep`` run it in chunks instead
# (engine/entry/scheduler.py ``sweep_in_chunks``): ``sweep_chunk`` commands, each
# steps 1-3 for the next QUORUM_SWEEP_CHUNK grants (by id) in a short transaction
# of its own, then ``sweep`` for the rest (none) and the last step. A ``sweep_run``
# row says where the sweep stands:
#
# - the first chunk starts it: the catch-up gate is decided THEN (notices.gate:
#   the outbox mark and why it holds, kept in the row), as in one transaction;
# - each chunk moves ``after`` (the highest grant id swept) and adds its counts,
#   in the chunk's own transaction: a sweep stopped after chunk k is taken up at
#   chunk k+1 by the next ``sweep_chunk`` or ``sweep`` of the same day (one of
#   another day abandons it and carries its counts; its messages are released by
#   the new sweep's last step);
# - every message a chunk writes is ``sweeping``: never sent (the dispatcher takes
#   ``queued`` rows), so nothing goes before the last step decides, over all the
#   sweep's messages at once, whether to hold them (a catch-up) or put a person's
#   many into one digest (notices.group), and releases the rest as ``queued``;
#   except that a catch-up already sure to be held (the gate held, more than
#   QUORUM_DIGEST_THRESHOLD queued so far: the count only grows) writes the rest
#   ``held`` at once (:func:`_written`), sparing the last step rewriting them;
# - exactly once: each message's key (``return:<ref>:<rung>:<email>``) is unique
#   whatever its status, so a chunk run twice queues nothing twice;
# - two drivers at once share the run (every command takes the audit chain's
#   head lock first, so each chunk reads where the last one stopped); the one
#   that finds it finished by the other sweeps again and finds nothing new.
#
# From the last sweep (issue 15 item 4: a quiet day costs what falls due that day,
# not the number of grants). The database's own triggers write a ``sweep_change``
# row for each grant changed in a way that may make the sweep write something new
# (added; a return added, or back to outstanding, or sent back for revision; a
# date, state, body or pot changed), and one with no grant when who is written to
# or which rules apply may have changed (people, roles, a body's address,
# programmes): engine/store/models.py ``sweep_trigger_ddl``. A new run starts
# ``since`` the last completed sweep (its day; ``seen``: the last change when that
# one started) when it swept by the same rules files, on this day or before, no
# change without a grant came since, no sweep was abandoned since, and every
# trigger is in place; else it is a whole sweep, as above. Going on from it:
#
# - first the grants changed since (the changes after its ``seen``, up to the new
#   run's), ``limit`` changes a chunk, each swept whole (every period, every due
#   date): ``changes_after`` says how far it has got;
# - then, for all grants, only what came into reach after ``since``: periods begun
#   after that day, grants ended after it, and the due dates some rung reached
#   after it (a rung applies from ``from`` days after the due date: a due date d
#   with since - d < from <= as_of - d), through the index on (state, due_on) —
#   nothing at all on most days (:func:`_window_work`), else in chunks of grants;
# - a chunk that created returns decides over all their due dates at once (and
#   forgets the changes its own INSERT marked);
# - every chunk forgets the changes it has swept (a whole sweep: all those before
#   it started): a run abandoned part-way is followed by a whole sweep.
#
# Exactly once as before (the outbox keys); the same messages as a whole sweep of
# the same days (tests/test_sweep_incremental.py). What differs: the counts of a
# sweep going on from the last (``facts``, ``no_recipient``) are of what it looked
# at, not of every outstanding return.

def _chunk_end(conn: Connection, after: int, limit: int | None) -> tuple[int | None, bool]:
    """The last grant id of the next chunk: the ``limit``-th grant after id ``after``
    (by id from ``after``, an indexed key range: never an OFFSET from the first
    grant), or the last grant when ``limit`` is None; None when no grant is left.
    And whether grants remain after it (one more id looked at in the same
    statement)."""
    if limit is None:
        return conn.execute(select(func.max(G.c.id)).where(G.c.id > after)).scalar(), False
    # one statement, nothing per grant sent back (it read 1,000 ids a chunk into Python):
    # the limit-th id after ``after`` (walked in the key's index from there), whether
    # another follows it, and the last id for a chunk that takes all the rest
    nth = select(G.c.id).where(G.c.id > after).order_by(G.c.id).limit(1)
    row = conn.execute(select(
        nth.offset(limit - 1).scalar_subquery(), nth.offset(limit).scalar_subquery(),
        select(func.max(G.c.id)).where(G.c.id > after).scalar_subquery())).one()  # fmt: skip
    if row[0] is not None:
        return int(row[0]), row[1] is not None
    return (int(row[2]) if row[2] is not None else None), False


RUN = SweepRun.__table__
RUNNING, RELEASING, DONE, ABANDONED = "running", "releasing", "done", "abandoned"


def _triggers_in_place(conn: Connection) -> bool:
    """Whether the database has every trigger filling sweep_change (a migration that
    rebuilt a table on SQLite would have dropped its triggers)."""
    names = ", ".join(f"'{n}'" for n in SWEEP_TRIGGERS)
    if conn.dialect.name == "postgresql":
        sql = f"SELECT count(DISTINCT tgname) FROM pg_trigger WHERE tgname IN ({names})"
    else:
        sql = f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({names})"
    return int(conn.exec_driver_sql(sql).scalar() or 0) == len(SWEEP_TRIGGERS)


def _basis(
    conn: Connection, as_of: dt.date, rules: str, seen: int
) -> tuple[dt.date | None, int]:
    """Where a new sweep goes on from: the day of the last completed sweep and the
    last change it had seen when it started — when it swept by the same rules, on
    this day or before, and nothing changed since that may change who is written
    to (``grant_id`` NULL); else (None, 0): a whole sweep."""
    last = conn.execute(
        select(RUN.c.as_of, RUN.c.seen, RUN.c.rules)
        .where(RUN.c.phase.in_((DONE, RELEASING)))
        .order_by(RUN.c.id.desc())
        .limit(1)
    ).first()
    if last is None or last.rules != rules or _as_date(last.as_of) > as_of:
        return None, 0
    anyone = conn.execute(
        select(CHANGE.c.id)
        .where(CHANGE.c.id > last.seen, CHANGE.c.id <= seen, CHANGE.c.grant_id.is_(None))
        .limit(1)
    ).first()
    if anyone is not None or not _triggers_in_place(conn):
        return None, 0
    return _as_date(last.as_of), int(last.seen)


_COUNTED = ("returns_created", "messages_queued", "no_recipient", "per_address")


def _add(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Counts so far plus a chunk's (facts: the most asserted at once)."""
    out: dict[str, Any] = {}
    for key in _COUNTED:
        bucket = dict(total.get(key) or {})
        for name, n in (part.get(key) or {}).items():
            bucket[name] = bucket.get(name, 0) + n
        out[key] = bucket
    out["facts"] = max(int(total.get("facts") or 0), int(part.get("facts") or 0))
    out["addressed"] = bool(total.get("addressed"))  # per_address counts every chunk's
    out["chunks"] = int(total.get("chunks") or 0) + int(part.get("chunks", 1))
    if total.get("held") or part.get("held"):
        out["held"] = True  # some chunk wrote its messages held: the last step holds
    return out


def _current_run(uow: UnitOfWork, as_of: dt.date, rules: str = "") -> dict[str, Any]:
    """The day's sweep in progress, or a new one (the catch-up gate decided now).
    A sweep stopped while its messages were being released is released first."""
    rows = uow.conn.execute(  # one statement: a round trip in every chunk
        select(RUN).where(RUN.c.phase.in_((RELEASING, RUNNING))).order_by(RUN.c.id)
    ).mappings().all()
    for row in rows:
        if row["phase"] == RELEASING:
            release(uow, Release.of(row["counts"].get("release") or {}))
            uow.conn.execute(update(RUN).where(RUN.c.id == row["id"]).values(phase=DONE))
    carried: dict[str, Any] = {}
    unaddressed = False
    for row in rows:
        if row["phase"] != RUNNING:
            continue
        if _as_date(row["as_of"]) == as_of:
            return dict(row)
        # a sweep of another day stopped part-way: this one takes up its messages
        uow.conn.execute(
            update(RUN).where(RUN.c.id == row["id"]).values(phase=ABANDONED, finished_at=uow.now)
        )
        if not row["counts"].get("addressed"):
            unaddressed = True  # a run from before per_address: counted in SQL at the end
        carried = _add(carried, {**row["counts"], "chunks": row["counts"].get("chunks", 0)})
    g = gate(uow.conn, uow.now)  # a first sweep after a gap or a restore holds its messages
    oldest, seen = (int(v or 0) for v in uow.conn.execute(
        select(func.min(CHANGE.c.id), func.max(CHANGE.c.id))).one())  # fmt: skip
    # after a sweep abandoned part-way (it may have forgotten changes it had swept), a
    # whole sweep
    since, changes_after = _basis(uow.conn, as_of, rules, seen) if not carried else (None, 0)
    carried["forgotten"] = max(oldest - 1, 0)  # every change up to it: none (:func:`_forget`)
    carried["addressed"] = not unaddressed
    values = {"as_of": as_of, "phase": RUNNING, "mark": g.mark, "hold": g.hold, "after": 0,
              "counts": carried, "started_at": uow.now, "seen": seen, "rules": rules,
              "since": since, "changes_after": changes_after}  # fmt: skip
    run_id: int = uow.conn.execute(insert(RUN).values(values).returning(RUN.c.id)).scalar_one()
    return {"id": run_id, **values}


def _sweep_next(
    uow: UnitOfWork,
    run: dict[str, Any],
    returns_rules: ReturnRules,
    ladder_rules: LadderRules,
    limit: int | None,
) -> bool:
    """Steps 1-3 for the next ``limit`` grants of the run (None: all the rest);
    whether grants remain after them. A sweep going on from the last one
    (``since``): first the grants changed since it, ``limit`` changes at a time,
    then what came into reach since its day for all the others, if anything did."""
    since = run.get("since")
    if since is not None:
        return _sweep_on(uow, run, returns_rules, ladder_rules, limit, _as_date(since))
    after = int(run["after"])
    upto, more = _chunk_end(uow.conn, after, limit)
    if upto is None:
        return False
    span = None if after == 0 and limit is None else (after, int(upto))  # all: no bounds
    part = run_sweep(uow.conn, run["as_of"], uow.now, returns_rules, ladder_rules, span,
                     _written(run), uow.directory)
    _moved(uow, run, part, after=int(upto))
    return more


def _written(run: dict[str, Any]) -> str:
    """How the run's next chunk writes its messages: ``held`` when the last step is
    already sure to hold them all, else ``sweeping`` (decided at the last step).

    The last step (notices.group) holds every message of the sweep when the gate
    held at its start (``hold``) and the sweep has more than
    QUORUM_DIGEST_THRESHOLD messages. Both are known part-way: the gate is
    decided by the first chunk, and the count only grows, so once the chunks so
    far have queued more than the threshold the decision is made — and writing
    the rest ``held`` at once spares the last step rewriting them (at 100,000
    grants a catch-up queues 1,000,000 messages, about 1 GB of rows: rewriting
    them took 3-6 s). A ``held`` row is never sent (the dispatcher takes
    ``queued`` rows), as a ``sweeping`` one. Only for a run whose chunks all
    counted their messages per address (``addressed``): else the last step counts
    the ``sweeping`` rows in SQL and would miss these."""
    counts = run.get("counts") or {}
    queued = sum((counts.get("messages_queued") or {}).values())
    if run.get("hold") and counts.get("addressed") and queued > get_settings().digest_threshold:
        return HELD
    return SWEEPING


FORGET = 2_000  # ids of changes forgotten per chunk at most (the rest by the next chunks, sweeps)


def _moved(uow: UnitOfWork, run: dict[str, Any], part: dict[str, Any], **where: Any) -> None:
    """A chunk's counts added and the run moved on, in the chunk's transaction; and
    some of the changes it has swept forgotten (a whole sweep: all those before it;
    else those of the grants swept so far). Should the run be abandoned, the next
    is a whole sweep: nothing forgotten is missed."""
    upto = int(run["seen"]) if run.get("since") is None else int(
        where.get("changes_after", run["changes_after"]))
    forgotten = _forget(uow.conn, run, upto)
    counts = {**_add(run["counts"], part), "forgotten": forgotten}
    uow.conn.execute(update(RUN).where(RUN.c.id == run["id"]).values(counts=counts, **where))
    run.update(counts=counts, **where)


def _forget(conn: Connection, run: dict[str, Any], upto: int) -> int:
    """Delete the next FORGET ids of changes up to ``upto``; how far every change is
    now forgotten (kept in the run's counts: ``forgotten``). By id range, from
    where the last chunk stopped: ids only grow, so none below it comes back, and
    PostgreSQL's index is entered past the rows deleted before (not yet vacuumed:
    ``ORDER BY id LIMIT n`` walked over all of them again in every chunk, 94 ms a
    chunk at 100,000 grants). Nothing left: no statement."""
    forgotten = run["counts"].get("forgotten")
    if forgotten is None:  # a run from before: from the oldest change
        forgotten = int(conn.execute(select(func.coalesce(func.min(CHANGE.c.id) - 1, 0)))
                        .scalar() or 0)  # fmt: skip
    forgotten = int(forgotten)
    if forgotten >= upto:
        return forgotten
    hi = min(upto, forgotten + FORGET)
    conn.execute(CHANGE.delete().where(CHANGE.c.id > forgotten, CHANGE.c.id <= hi))
    return hi


WINDOW_DONE = -1  # ``after`` of a sweep going on from the last: nothing came into reach


def _sweep_on(
    uow: UnitOfWork,
    run: dict[str, Any],
    returns_rules: ReturnRules,
    ladder_rules: LadderRules,
    limit: int | None,
    since: dt.date,
) -> bool:
    """A chunk of a sweep going on from the sweep of ``since`` (see "From the last
    sweep" above); whether more remain."""
    as_of = _as_date(run["as_of"])
    seen, done = int(run["seen"]), int(run["changes_after"])
    if done < seen:  # the grants changed since the last sweep, by change
        q = select(CHANGE.c.id).where(CHANGE.c.id > done, CHANGE.c.id <= seen).order_by(CHANGE.c.id)
        hi = seen
        if limit is not None:
            last = uow.conn.execute(q.offset(limit - 1).limit(1)).scalar()
            hi = int(last) if last is not None else seen
        part = run_sweep(uow.conn, as_of, uow.now, returns_rules, ladder_rules,
                         Part(marked=(done, hi)), _written(run), uow.directory)  # fmt: skip
        _moved(uow, run, part, changes_after=hi)
        if limit is None:
            return _sweep_on(uow, run, returns_rules, ladder_rules, None, since)
        return True
    after = int(run["after"])
    if after == WINDOW_DONE:
        return False
    if after == 0 and not _window_work(uow.conn, as_of, since, returns_rules, ladder_rules):
        _moved(uow, run, {}, after=WINDOW_DONE)
        return False
    upto, more = _chunk_end(uow.conn, after, limit)
    if upto is None:
        _moved(uow, run, {}, after=WINDOW_DONE)
        return False
    part = run_sweep(uow.conn, as_of, uow.now, returns_rules, ladder_rules,
                     Part(span=(after, int(upto)), since=since), _written(run),
                     uow.directory)  # fmt: skip
    _moved(uow, run, part, after=int(upto) if more else WINDOW_DONE)
    return bool(more)


def _window_work(
    conn: Connection, as_of: dt.date, since: dt.date, returns: ReturnRules, ladders: LadderRules
) -> bool:
    """Whether anything came into reach between ``since`` and ``as_of``: a period of
    some schedule begun, a grant completed (its end date passed), or an outstanding
    return's due date reached by a rung of a ladder. Three small queries at most."""
    if as_of <= since:
        return False
    lines = [line for sch in returns.schedules() for line in sch.lines]
    for line in lines:
        if line.every != "completion" and any(
            since < ps <= as_of for ps, _ in periods(line.every, since, as_of)
        ):
            return True
    if any(line.every == "completion" for line in lines) and conn.execute(
        select(G.c.id).where(_in(G.c.state, OWING), G.c.ends_on > since, G.c.ends_on <= as_of)
        .limit(1)
    ).first():
        return True
    froms = sorted({r.from_day for lad in [ladders.default, *ladders.programmes.values()]
                    for r in lad.rungs})  # fmt: skip
    return conn.execute(
        select(R.c.id).where(
            R.c.state.in_(OUTSTANDING),
            or_(*(and_(R.c.due_on > since - dt.timedelta(days=f),
                       R.c.due_on <= as_of - dt.timedelta(days=f)) for f in froms)),
        ).limit(1)
    ).first() is not None  # fmt: skip


def _sweep_args(
    uow: UnitOfWork, args: Args, release_arg: bool = False
) -> tuple[dt.date, ReturnRules, LadderRules, bool]:
    as_of = args.date("as_of", required=False) or uow.today
    returns_file = args.text("returns_rules", required=False, max_len=1000) or None
    ladder_file = args.text("reminder_rules", required=False, max_len=1000) or None
    now = not release_arg or args.choice("release", ("now", "in_chunks"), default="now") == "now"
    args.done()
    if as_of > uow.today:
        raise ValidationError(
            f"sweep: as_of: {as_of.isoformat()} is in the future (today is "
            f"{uow.today.isoformat()}); a sweep runs as of today or a day already passed",
            field="as_of",
        )
    uow.fire(RETURN, "fall_due", "new", f"SWEEP-{as_of.isoformat()}")  # may this actor?
    return as_of, load_return_rules(returns_file), load_ladder_rules(ladder_file), now


def _rules_sha(returns_rules: ReturnRules, ladder_rules: LadderRules) -> str:
    return f"{returns_rules.sha256}:{ladder_rules.sha256}"


@command(
    "sweep_chunk",
    roles=("officer", "director"),
    summary="One chunk of the deadline sweep: returns due and reminders for the next grants",
)
def sweep_chunk_command(uow: UnitOfWork, args: Args) -> Result:
    most = get_settings().sweep_chunk
    limit = min(args.integer("grants", required=False, minimum=1) or most, most)
    as_of, returns_rules, ladder_rules, _ = _sweep_args(uow, args)
    run = _current_run(uow, as_of, _rules_sha(returns_rules, ladder_rules))
    more = _sweep_next(uow, run, returns_rules, ladder_rules, limit)
    return {"run": run["id"], "as_of": as_of.isoformat(), "swept_to": run["after"], "more": more,
            "grants": limit}  # fmt: skip


@command(
    "sweep",
    roles=("officer", "director"),
    summary="The deadline sweep: create returns due, queue reminders, chases and escalations",
)
def sweep_command(uow: UnitOfWork, args: Args) -> Result:
    as_of, returns_rules, ladder_rules, release_now = _sweep_args(uow, args, release_arg=True)
    run = _current_run(uow, as_of, _rules_sha(returns_rules, ladder_rules))  # or sweep_chunk's
    _sweep_next(uow, run, returns_rules, ladder_rules, None)  # whatever grants remain
    counts = run["counts"]
    summary: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "returns_rules": f"{returns_rules.label} ({returns_rules.sha256[:12]})",
        "reminder_rules": f"{ladder_rules.label} ({ladder_rules.sha256[:12]})",
        "returns_created": dict(sorted((counts.get("returns_created") or {}).items())),
        "messages_queued": dict(sorted((counts.get("messages_queued") or {}).items())),
        "facts": int(counts.get("facts") or 0),
    }
    if counts.get("no_recipient"):
        summary["no_recipient"] = dict(counts["no_recipient"])
    late = late_instalments(uow.conn, as_of)
    if late is not None:
        summary["late_instalments"] = len(late)
        summary["late_instalments_pence"] = sum(i["outstanding_pence"] for i in late)
    # a meeting's open actions, through the ladders for actions (engine/commands/chasing.py)
    chased = chase_actions(uow, as_of, ladder_rules)
    summary["actions_queued"] = dict(sorted(chased.queued.items()))
    if chased.no_recipient:
        summary["actions_no_recipient"] = chased.no_recipient
    # every message of the sweep, its chunks' too: held (a catch-up), digests of
    # many to one, the rest queued to send — now, or by sweep_release in chunks
    # chunks that wrote their messages held (:func:`_written`) decided it already:
    # the last step holds (whatever QUORUM_DIGEST_THRESHOLD says now)
    decided = bool(run["hold"]) and bool(counts.get("held"))
    grouped, decision = group(uow, Gate(int(run["mark"]), str(run["hold"])), as_of,
                              0 if decided else None, release_now=release_now,
                              per_address=counts.get("per_address") if counts.get("addressed")
                              else None)  # fmt: skip
    summary.update(grouped)
    # requests for a delegated decision past their expiry date expire (workflow step, audited)
    expired = expire_lapsed(uow, as_of)
    idempotency.prune(uow.conn, uow.now)  # idempotency keys past QUORUM_IDEMPOTENCY_KEY_HOURS
    # role changes nobody decided in time expire too (workflows/role_change.py)
    expire_role_changes(uow)
    uow.conn.execute(update(RUN).where(RUN.c.id == run["id"]).values(
        phase=DONE if release_now else RELEASING, finished_at=uow.now,
        counts={**run["counts"], "release": decision.as_json()}))  # fmt: skip
    # the changes before it started are swept: the next sweep goes on from its start
    # (and forgets those left, a chunk at a time)
    _forget(uow.conn, run, int(run["seen"]))
    created = sum(summary["returns_created"].values())
    queued = sum(summary["messages_queued"].values())
    for_actions = sum(summary["actions_queued"].values())
    uow.record(
        f"SWEEP-{as_of.isoformat()}",
        {},
        summary,
        f"sweep as of {short_date(as_of)}: {created} return(s) created, {queued} message(s) queued"
        + (f", {for_actions} about actions" if for_actions else "")
        + (f", {summary['held']} held until an officer confirms the catch-up"
           if summary.get("held") else "")
        + (f", {summary['digests']} digest(s)" if summary.get("digests") else ""),
    )
    return {
        **summary,
        "returns_created_total": created,
        "messages_queued_total": queued,
        "actions_queued_total": for_actions,
        "delegated_expired": expired,
        **({} if release_now else {"releasing": run["id"]}),
    }


@command(
    "sweep_release",
    roles=("officer", "director"),
    summary="Release the next messages of a finished sweep (held, digested or queued)",
)
def sweep_release_command(uow: UnitOfWork, args: Args) -> Result:
    """The last step's decision applied in this short transaction: the next
    person's digest, or else the next ``rows`` (by default 10 x QUORUM_SWEEP_CHUNK;
    at most that, or 100 x with QUORUM_SWEEP_CHUNK_MS) of the sweep's messages; the
    sweep is done when none remain."""
    conf = get_settings()  # bounded by time too (the scheduler's): up to 100 x the chunk
    most = (100 if conf.sweep_chunk_ms else 10) * conf.sweep_chunk
    limit = min(args.integer("rows", required=False, minimum=1) or 10 * conf.sweep_chunk, most)
    args.done()
    row = uow.conn.execute(
        select(RUN.c.id, RUN.c.counts).where(RUN.c.phase == RELEASING).order_by(RUN.c.id)
    ).first()
    if row is None:
        return {"run": None, "more": False, "rows": limit}
    left = release(uow, Release.of(row.counts.get("release") or {}), limit)
    counts = {**row.counts, "release": left.as_json() if left else None}
    uow.conn.execute(update(RUN).where(RUN.c.id == row.id).values(
        counts=counts, **({} if left else {"phase": DONE})))  # fmt: skip
    return {"run": row.id, "more": left is not None, "rows": limit}
