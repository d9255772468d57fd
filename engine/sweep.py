"""The deadline sweep: returns owed, reminders, chases and escalations, from data.

Due dates live in the database; nothing is scheduled per deadline. One sweep,
as of a day, in ONE transaction (the ``sweep`` command on the command bus):

1. **Materialise returns.** For every grant that owes returns (active, or
   closed for the periods before it closed) and each period of its schedule
   (rules/returns.yaml) that has started by the sweep's day, a ``grant_return``
   row in state ``due``, with its due date moved off weekends and bank
   holidays. One ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per schedule
   line: the unique (grant, kind, period end) makes it idempotent. Refs are
   derived from the grant, kind and period (``RET-G-0001-progress-2011-06-30``)
   so every run, in any order, names a return the same way.
2. **Decide the rungs.** The distinct (kind, state, due date) values among
   outstanding returns (``due`` or ``queried``) in reach of the ladder are read
   — a few hundred at most, however many returns there are — and asserted as
   facts into the ladder's durable_rules ruleset (rules/reminders.py), which
   says which rungs apply to which "days from due".
3. **Queue the messages.** For each rung and recipient, one
   ``INSERT INTO outbox ... SELECT ... WHERE NOT EXISTS ... ON CONFLICT DO
   NOTHING`` over all returns the rung applies to, under the key
   ``return:<ref>:<rung>:<email>``: each rung is queued once per return and
   recipient, ever, whoever runs the sweep and however often. The message's
   context is built as JSON by the database (``json_object`` on SQLite,
   ``json_build_object`` on PostgreSQL).
4. **One audit event** for the sweep (``SWEEP-<date>``) with the counts per
   kind and per rung, not one per message.

Nothing here loads returns into Python: only the distinct facts of step 2 and
the few grants reaching completion in step 1. A sweep killed part-way leaves
nothing (one transaction); run again, it queues everything due exactly once.
Two sweeps at once are serialised by the audit chain's head lock, and the
unique outbox key makes a second run queue nothing even without it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
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
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import JSON

from engine.args import Args
from engine.clock import Clock
from engine.errors import ValidationError
from engine.models import (
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
)
from engine.rawsql import RawStatement
from engine.service import UnitOfWork, command
from rules.reminders import OUTSTANDING, Ladder, LadderRules, Rung, load_ladder_rules
from rules.returns import ReturnRules, Schedule, load_return_rules, periods

__all__ = ["OWING", "return_ref", "run_sweep", "sweep"]

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

OWING = ("active", "closed")  # grant states that owe returns (closed: periods before closing)
NOT_CHASED = ("cancelled",)  # an approval reversed: its returns are not chased
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def return_ref(grant_ref: str, kind: str, period_end: dt.date) -> str:
    """The ref the sweep gives a scheduled return (the same in SQL below)."""
    return f"RET-{grant_ref}-{kind}-{period_end.isoformat()}"


# ------------------------------------------------------------------ portable SQL pieces


class json_object(FunctionElement):  # noqa: N801  (an SQL function)
    """A JSON object from alternating keys and values, built by the database."""

    type = JSON()
    inherit_cache = True
    name = "json_object"


@compiles(json_object)
def _json_object(element: json_object, compiler: Any, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(json_object, "postgresql")
def _json_object_pg(element: json_object, compiler: Any, **kw: Any) -> str:
    return f"json_build_object({compiler.process(element.clauses, **kw)})"


class days_between(FunctionElement):  # noqa: N801
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


class iso_date(FunctionElement):  # noqa: N801
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


class json_array(FunctionElement):  # noqa: N801
    """A JSON array of the arguments (objects stay objects), built by the database."""

    type = JSON()
    inherit_cache = True
    name = "json_array"


@compiles(json_array)
def _json_array(element: json_array, compiler: Any, **kw: Any) -> str:
    return f"json_array({compiler.process(element.clauses, **kw)})"


@compiles(json_array, "postgresql")
def _json_array_pg(element: json_array, compiler: Any, **kw: Any) -> str:
    return f"json_build_array({compiler.process(element.clauses, **kw)})"


def _date_part(part: str, sqlite_format: str, pg_field: str) -> type:
    """An SQL function giving one part of a date as an integer."""

    cls = type(part, (FunctionElement,), {"type": Integer(), "inherit_cache": True, "name": part})

    @compiles(cls)
    def _sqlite(element: Any, compiler: Any, **kw: Any) -> str:
        d = compiler.process(element.clauses, **kw)
        return f"CAST(strftime('{sqlite_format}', {d}) AS INTEGER)"

    @compiles(cls, "postgresql")
    def _pg(element: Any, compiler: Any, **kw: Any) -> str:
        return (
            f"CAST(EXTRACT({pg_field} FROM {compiler.process(element.clauses, **kw)}) AS INTEGER)"
        )

    return cls


year_of = _date_part("year_of", "%Y", "YEAR")
month_of = _date_part("month_of", "%m", "MONTH")
day_of = _date_part("day_of", "%d", "DAY")
weekday_of = _date_part("weekday_of", "%w", "DOW")  # 0 = Sunday in both


class add_days(FunctionElement):  # noqa: N801
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


_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")  # fmt: skip
_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
ROLE_WORDS = {
    "sponsor": "sponsor contact",
    "officer": "programme officer",
    "director": "Director",
    "chair": "Chair",
    "vice_chair": "Vice Chair",
    "finance": "finance officer",
}
ESCALATED_TO = {
    "officer": "the programme team",
    "director": "the Director",
    "chair": "the Chair",
    "vice_chair": "the Vice Chairs",
    "finance": "the finance team",
}
KIND_WORDS = {
    "progress": "progress report",
    "savings": "efficiency-savings return",
    "monitoring": "monitoring return",
    "benefits": "benefits report",
}


def _num(x: ColumnElement) -> ColumnElement:
    return cast(x, String)


def _month_name(d: ColumnElement) -> ColumnElement:
    # CASE x WHEN ...: x is worked out once (CASE WHEN x = 1 ... would redo it per branch)
    return case({i: _text(n) for i, n in enumerate(_MONTH_NAMES, start=1)}, value=month_of(d))


def _date_words(d: ColumnElement, weekday: bool = True) -> ColumnElement:
    """Friday 29 July 2011 (or 29 July 2011)."""
    words = _num(day_of(d)) + _text(" ") + _month_name(d) + _text(" ") + _num(year_of(d))
    if not weekday:
        return words
    w = weekday_of(d)
    return case({i: _text(n) for i, n in enumerate(_WEEKDAYS)}, value=w) + _text(" ") + words


def _two_digits(n: ColumnElement) -> ColumnElement:
    r = n % 100
    return case((r < 10, _text("0") + _num(r)), else_=_num(r))


def _period_shape(start: ColumnElement, end: ColumnElement) -> tuple[ColumnElement, ColumnElement]:
    span = days_between(end, start)
    em = month_of(end)
    first = day_of(start) == 1
    quarter = and_(first, or_(*(em == m for m in (3, 6, 9, 12))), span.between(88, 92))
    half = and_(first, or_(em == 3, em == 9), span.between(180, 183))
    return quarter, half


def _period_words(start: ColumnElement, end: ColumnElement) -> ColumnElement:
    """1 April to 30 June 2011 (Q1 2011/12); 1 October 2011 to 31 March 2012 (H2 2011/12)."""
    sy, ey, em = year_of(start), year_of(end), month_of(end)
    fy_start = case((em >= 4, ey), else_=ey - 1)
    fy = _num(fy_start) + _text("/") + _two_digits(fy_start + 1)
    quarter, half = _period_shape(start, end)
    q = case({6: _text("1"), 9: _text("2"), 12: _text("3")}, value=em, else_=_text("4"))
    label = case(
        (quarter, _text(" (Q") + q + _text(" ") + fy + _text(")")),
        (half, _text(" (H") + case((em == 9, _text("1")), else_=_text("2")) + _text(" ") + fy
         + _text(")")),
        else_=_text(""),
    )  # fmt: skip
    return (
        _num(day_of(start))
        + _text(" ")
        + _month_name(start)
        + case((sy != ey, _text(" ") + _num(sy)), else_=_text(""))
        + _text(" to ")
        + _date_words(end, weekday=False)
        + label
    )


def _kind_words(kind: ColumnElement, start: ColumnElement, end: ColumnElement) -> ColumnElement:
    """quarterly efficiency-savings return, six-monthly monitoring return, benefits report."""
    quarter, half = _period_shape(start, end)
    often = case((quarter, _text("quarterly ")), (half, _text("six-monthly ")), else_=_text(""))
    return often + case({k: _text(w) for k, w in KIND_WORDS.items()}, value=kind, else_=kind)


def _text(value: str) -> ColumnElement:
    """A string constant with a known type (PostgreSQL cannot guess a bare parameter's)."""
    return cast(literal(value, String), String)


def _key(name: str) -> ColumnElement:
    return literal_column("'" + name.replace("'", "''") + "'", String)


def _insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, for the connection's dialect."""
    mod = pg_dialect if conn.dialect.name == "postgresql" else sqlite_dialect
    return mod.insert(table)


def _long(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


# ------------------------------------------------------------------ cached statements
#
# A sweep runs the same few statements every day with different values: each is
# built once per shape (which rung, how many date ranges, which scope), compiled
# once per dialect and sent straight to the driver (engine/rawsql.py), the values
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

    def sql(self) -> list[ColumnElement]:
        out: list[ColumnElement] = []
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

    @property
    def needs_pot(self) -> bool:
        return self.programme != "any"


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


def _in(column: ColumnElement, values: Sequence[str]) -> ColumnElement:
    """column IN (constants), with the constants as plain parameters (no expansion)."""
    return column.in_([_text(v) for v in values])


def _run(conn: Connection, stmt: RawStatement, params: dict[str, Any]) -> int:
    """Execute a cached INSERT; how many rows it wrote. (Python's sqlite3 reports -1
    for a statement that starts with WITH, so SQLite itself is asked.)"""
    cursor = stmt.execute(conn, params)
    if cursor.rowcount is not None and cursor.rowcount >= 0:
        return int(cursor.rowcount)
    if conn.dialect.name == "sqlite":
        return int(conn.connection.driver_connection.execute("SELECT changes()").fetchone()[0])
    raise RuntimeError("the database did not say how many rows were inserted")


# ------------------------------------------------------------------ 1. materialise returns


def _scopes(conn: Connection, rules: ReturnRules) -> list[tuple[Schedule, Scope, dict]]:
    """Each schedule with the grants it covers (a Scope and its parameters)."""
    prog_ids = {name: pid for pid, name in conn.execute(select(PROG.c.id, PROG.c.name))}
    grant_ids: dict[str, int] = {}
    if rules.grants:
        grant_ids = {
            ref: gid
            for gid, ref in conn.execute(
                select(G.c.id, G.c.ref).where(G.c.ref.in_(list(rules.grants)))
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


@lru_cache(maxsize=64)
def _materialise_statement(dialect: str, scope: Scope, kind: str, n_rows: int) -> RawStatement:
    """INSERT the returns of ``kind`` for n periods (parameters ps_i, pe_i, due_i, sfx_i)
    that the covered grants owe and do not have yet."""
    v = union_all(
        *(
            select(
                bindparam(f"ps{i}", type_=Date).label("ps"),
                bindparam(f"pe{i}", type_=Date).label("pe"),
                bindparam(f"due{i}", type_=Date).label("due"),
                cast(bindparam(f"sfx{i}", type_=String), String).label("suffix"),
            )
            for i in range(n_rows)
        )
    ).subquery("v")
    grants = G.join(POT, POT.c.id == G.c.pot_id) if scope.needs_pot else G
    sel = (
        select(
            (_text("RET-") + G.c.ref + v.c.suffix).label("ref"),
            G.c.id,
            _text(kind),
            v.c.ps,
            v.c.pe,
            v.c.due,
            _text("due"),
            cast(literal(1, Integer), Integer),
        )
        .select_from(grants.join(v, true()))
        .where(
            _in(G.c.state, OWING),
            *scope.sql(),
            v.c.pe >= G.c.approved_on,
            or_(G.c.closed_on.is_(None), v.c.ps <= G.c.closed_on),
            ~exists(
                select(R.c.id).where(
                    R.c.grant_id == G.c.id, R.c.kind == _text(kind), R.c.period_end == v.c.pe
                )
            ),
        )
    )
    mod = pg_dialect if dialect == "postgresql" else sqlite_dialect
    cols = ["ref", "grant_id", "kind", "period_start", "period_end", "due_on", "state", "version"]
    return RawStatement(mod.insert(R).from_select(cols, sel).on_conflict_do_nothing())


def _materialise(conn: Connection, as_of: dt.date, rules: ReturnRules) -> Counter:
    created: Counter = Counter()
    for schedule, scope, params in _scopes(conn, rules):
        grants = G.join(POT, POT.c.id == G.c.pot_id) if scope.needs_pot else G
        first = conn.execute(
            select(func.min(G.c.approved_on))
            .select_from(grants)
            .where(G.c.state.in_(OWING), *scope.sql()),
            params,
        ).scalar()
        if first is None:
            continue
        for line in schedule.lines:
            if line.every == "completion":
                n = _materialise_completion(conn, as_of, rules, schedule, line, scope, params)
            else:
                rows = [
                    (ps, pe, line.due(pe, rules.calendar))
                    for ps, pe in periods(line.every, first, as_of)
                    if ps <= as_of
                    and (schedule.first_period_end is None or pe >= schedule.first_period_end)
                ]
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


def _materialise_completion(
    conn: Connection,
    as_of: dt.date,
    rules: ReturnRules,
    schedule: Schedule,
    line: Any,
    scope: Scope,
    params: dict,
) -> int:
    """A once-per-grant return (benefits report) for grants that have completed:
    the earlier of their end date and the day they closed. Only the few grants
    completed and still without one are read."""
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
            "state": "due",
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
    start = prev = None
    for day in present:
        if day in chosen:
            if start is None:
                start = day
            prev = day
        elif start is not None:
            out.append((start, prev))  # type: ignore[arg-type]
            start = None
    if start is not None:
        out.append((start, prev))  # type: ignore[arg-type]
    return out


@dataclass
class Plan:
    """A ladder, the programmes it covers, and per rung the returns it applies to."""

    ladder: Ladder
    scope: Scope
    params: dict
    terms: dict[str, list[Term]]


def _decide(conn: Connection, as_of: dt.date, ladders: LadderRules) -> tuple[list[Plan], int]:
    """For each ladder: per rung, the (kind, state, due-date range) terms selecting
    the outstanding returns it applies to, decided by durable_rules over the distinct
    (kind, state, due date) values present. Also the number of those facts."""
    prog_ids = {name: pid for pid, name in conn.execute(select(PROG.c.id, PROG.c.name))}
    named = {prog_ids[n]: lad for n, lad in ladders.programmes.items() if n in prog_ids}
    all_ladders = [ladders.default, *named.values()]
    earliest = min(lad.earliest() for lad in all_ladders)
    ends = [lad.latest() for lad in all_ladders]
    where = [R.c.state.in_(OUTSTANDING), R.c.due_on <= as_of - dt.timedelta(days=earliest)]
    if None not in ends:
        where.append(R.c.due_on >= as_of - dt.timedelta(days=max(ends)))  # type: ignore[type-var]
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
        scope, params = _scope(key if key is not None else (sorted(named) or None))
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
            for (kind, state, due), rungs in zip(index, ladder.applicable(facts), strict=True):
                for rung in rungs:
                    chosen[rung][(kind, state)].add(due)
            for rung, by_pair in chosen.items():
                terms[rung] = [
                    (kind, state, a, b)
                    for (kind, state), dues in sorted(by_pair.items())
                    for a, b in _runs(present[(kind, state)], dues)
                ]
        plans.append(Plan(ladder, scope, params, terms))
    return plans, n_facts


def _terms_sql(n: int) -> ColumnElement:
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


def _grant_filters(scope: Scope) -> list[ColumnElement]:
    """Conditions on a return's grant, as correlated subqueries: the grant is not
    cancelled and (``scope``) belongs to the ladder's programmes. The returns stay
    the only table in FROM, so the index on (state, due_on) drives."""
    grants = G.join(POT, POT.c.id == G.c.pot_id) if scope.needs_pot else G
    out = [~exists(select(G.c.id).where(G.c.id == R.c.grant_id, _in(G.c.state, NOT_CHASED)))]
    if scope.needs_pot:
        out.append(exists(select(G.c.id).select_from(grants).where(G.c.id == R.c.grant_id,
                                                                     *scope.sql())))  # fmt: skip
    return out


# ------------------------------------------------------------------ 3. queue the messages


@lru_cache(maxsize=256)
def _queue_statement(
    dialect: str,
    rung: Rung,
    who: str,
    escalation: tuple[str, int] | None,
    n_terms: int,
    scope: Scope,
    fallback: bool,
) -> RawStatement:
    """One INSERT ... SELECT queueing ``rung`` for ``who`` on the returns n terms select.

    Built so that the work is proportional to the returns the rung applies to,
    whatever the planner does: the targeted returns first (``t``: the returns
    table alone in FROM, so the index on (state, due_on) drives), paired with
    the people the rung names (``p``, MATERIALIZED: a handful of rows), the
    pairs already queued dropped (``x``: one probe of the outbox key's index
    each, MATERIALIZED: only new pairs go on), and only then the titles and
    names joined for the new messages. Left to itself a planner may start from
    the people and walk every return of every grant; LEFT JOINs (with filters a
    planner cannot read as "not null") keep SQLite to the order written.
    ``fallback``: also send to a body's own address when it has no contact."""
    columns = [R.c.id.label("rid"), R.c.ref]
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
    t = targets.c
    people = (
        select(PERSON.c.organisation_id.label("org"), PERSON.c.name, PERSON.c.email)
        .select_from(PERSON.join(ROLE, ROLE.c.person_id == PERSON.c.id))
        .where(ROLE.c.role == _text(who), PERSON.c.active.is_(True))
        .cte("p")
        .prefix_with("MATERIALIZED")
    )
    p = people.c

    def pair(from_: Any, name: ColumnElement, email: ColumnElement, *extra: ColumnElement) -> Any:
        key = _text("return:") + t.ref + _text(f":{rung.name}:") + func.lower(email)
        return (
            select(t.rid, name.label("name"), email.label("email"), key.label("key"))
            .select_from(from_)
            .where(
                func.coalesce(email, _text("")) != _text(""),
                *extra,
                ~exists(select(OUT.c.id).where(OUT.c.key == key)),
            )
        )

    if who == "sponsor":  # the body's sponsor contacts; without any, its own address
        pairs: Any = pair(targets.outerjoin(people, p.org == t.body), p.name, p.email)
        if fallback:
            pairs = union_all(
                pairs,
                pair(
                    targets.outerjoin(ORG, ORG.c.id == t.body),
                    ORG.c.name,
                    ORG.c.email,
                    ~exists(select(p.email).where(p.org == t.body)),
                ),
            )
    else:
        pairs = pair(targets.outerjoin(people, true()), p.name, p.email)
    fresh = pairs.cte("x").prefix_with("MATERIALIZED")
    x = fresh.c
    context, values = _context(rung, who, escalation, x)
    sel = (
        select(
            x.key,
            _text("email"),
            x.email,
            _text(rung.template),
            _subject(rung, values),
            context,
            bindparam("now", type_=OUT.c.created_at.type),
            _text("queued"),
            cast(literal(0, Integer), Integer),
        )
        .select_from(
            fresh.outerjoin(R, R.c.id == x.rid)
            .outerjoin(G, G.c.id == R.c.grant_id)
            .outerjoin(POT, POT.c.id == G.c.pot_id)
            .outerjoin(PROG, PROG.c.id == POT.c.programme_id)
            .outerjoin(BID, BID.c.id == G.c.bid_id)
            .outerjoin(ORG, ORG.c.id == G.c.accountable_body_id)
        )
        .where(x.key.is_not(None))  # SQLite: an upsert's SELECT needs a WHERE (parsing)
    )
    mod = pg_dialect if dialect == "postgresql" else sqlite_dialect
    cols = ["key", "channel", "to_addr", "template", "subject", "context", "created_at", "status",
            "attempts"]  # fmt: skip
    return RawStatement(mod.insert(OUT).from_select(cols, sel).on_conflict_do_nothing())


def _context(
    rung: Rung, who: str, escalation: tuple[str, int] | None, x: Any
) -> tuple[ColumnElement, dict[str, ColumnElement]]:
    """The message's context (JSON, built by the database) and the values a
    subject may use. The keys the templates read (notifications/templates/
    return_*.txt): name, role, organisation, return_ref, grant_ref, title, kind,
    period, due_date, days_before, days_late, escalation, history, figures.
    Parameters: as_of (the sweep's day), as_of_words."""
    days = days_between(bindparam("as_of", type_=Date), R.c.due_on)
    if escalation is None:
        next_up: ColumnElement = _text("")
    else:
        whom, after = escalation
        next_up = _text(f"{whom} on ") + _date_words(
            add_days(R.c.due_on, literal_column(str(int(after))))
        )
    values: dict[str, ColumnElement] = {
        "name": x.name,
        "role": _text(ROLE_WORDS[who]),
        "organisation": ORG.c.name,
        "return_ref": R.c.ref,
        "grant_ref": G.c.ref,
        "title": BID.c.title,
        "kind": _kind_words(R.c.kind, R.c.period_start, R.c.period_end),
        "period": _period_words(R.c.period_start, R.c.period_end),
        "due_date": _date_words(R.c.due_on),
        "days_before": case((days < 0, -days), else_=0),
        "days_late": case((days > 0, days), else_=0),
        "escalation": next_up,
        "programme": PROG.c.name,
        "kind_code": R.c.kind,
        "period_start": iso_date(R.c.period_start),
        "period_end": iso_date(R.c.period_end),
        "due_on": iso_date(R.c.due_on),
        "email": x.email,
    }
    if who == "sponsor":
        figures = json_array()
    else:  # those escalated to see the money at stake
        paid = (
            select(func.coalesce(func.sum(PAY.c.amount_pence), 0))
            .where(PAY.c.grant_id == G.c.id)
            .scalar_subquery()
        )
        figures = json_array(
            json_object(_key("label"), _text("Grant awarded"), _key("pence"), G.c.awarded_pence),
            json_object(_key("label"), _text("Paid to date"), _key("pence"), paid),
        )
    extra = {
        "history": json_array(),  # see docs/returns.md: not filled in by the sweep
        "figures": figures,
        "rung": _text(rung.name),
        "as_of": cast(bindparam("as_of_text", type_=String), String),
        "date": cast(bindparam("as_of_words", type_=String), String),
    }
    context = json_object(*(part for k, v in {**values, **extra}.items() for part in (_key(k), v)))
    return context, values


def _next_escalation(ladder: Ladder, rung: Rung) -> tuple[str, int] | None:
    """Who a return goes to next after ``rung``, and how many days after its due
    date: the first later rung naming someone other than the sponsor."""
    later = sorted(
        (r for r in ladder.rungs if r.from_day > rung.from_day and set(r.to) - {"sponsor"}),
        key=lambda r: r.from_day,
    )
    if not later:
        return None
    nxt = later[0]
    whom = next(w for w in nxt.to if w != "sponsor")
    return ESCALATED_TO[whom], nxt.from_day


def _queue(
    conn: Connection,
    as_of: dt.date,
    now: dt.datetime,
    plan: Plan,
    rung: Rung,
    who: str,
    fallback: bool,
) -> int:
    """Queue ``rung`` for ``who`` on every return the plan says it applies to;
    returns how many messages were queued (each key at most once, ever)."""
    terms = plan.terms[rung.name]
    stmt = _queue_statement(
        conn.dialect.name,
        rung,
        who,
        _next_escalation(plan.ladder, rung),
        len(terms),
        plan.scope,
        fallback and who == "sponsor",
    )
    params = {
        **plan.params,
        **_terms_params(terms),
        "as_of": as_of,
        "now": now,
        "as_of_text": as_of.isoformat(),
        "as_of_words": _long(as_of),
    }
    return _run(conn, stmt, params)


def _unaddressed(conn: Connection, plan: Plan, rung: Rung, who: str) -> int:
    """Returns the rung applies to that have nobody to send to: no one holds the
    role, or (sponsor) the accountable body has no sponsor contact and no email.
    Checked on the people first, so the returns are counted only when it happens."""
    people = (
        select(PERSON.c.organisation_id)
        .select_from(PERSON.join(ROLE, ROLE.c.person_id == PERSON.c.id))
        .where(ROLE.c.role == who, PERSON.c.active.is_(True))
    )
    if who == "sponsor":
        bodies = _bodies_without_contacts(conn, with_email=False)
        if not bodies:
            return 0
        extra = [
            exists(
                select(G.c.id).where(G.c.id == R.c.grant_id, G.c.accountable_body_id.in_(bodies))
            )
        ]
    else:
        if conn.execute(select(func.count()).select_from(people.subquery())).scalar():
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


def _subject(rung: Rung, values: dict[str, ColumnElement]) -> ColumnElement:
    out: ColumnElement | None = None
    for text, fld in rung.subject_parts():
        for piece in (
            _text(text) if text else None,
            cast(values[fld], String) if fld else None,
        ):
            if piece is not None:
                out = piece if out is None else out + piece
    return out if out is not None else _text("")


# ------------------------------------------------------------------ the sweep


def run_sweep(
    conn: Connection,
    as_of: dt.date,
    now: dt.datetime,
    returns_rules: ReturnRules,
    ladder_rules: LadderRules,
) -> dict:
    """Steps 1-3 on ``conn`` (inside the caller's transaction); the summary."""
    if conn.dialect.name == "postgresql":
        # A few statements, each over many rows: compiling them (JIT) costs more
        # than it saves, and the sorts and hashes fit in memory. This transaction only.
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    created = _materialise(conn, as_of, returns_rules)
    plans, n_facts = _decide(conn, as_of, ladder_rules)
    queued: Counter = Counter()
    no_recipient: dict[str, int] = {}
    fallback = bool(_bodies_without_contacts(conn, with_email=True))
    for plan in plans:
        for rung in plan.ladder.rungs:
            if rung.name not in plan.terms:
                continue
            for who in rung.to:
                n = _queue(conn, as_of, now, plan, rung, who, fallback)
                if n:
                    queued[rung.name] += n
                missing = _unaddressed(conn, plan, rung, who)
                if missing:
                    label = f"{rung.name} to {who}"
                    no_recipient[label] = no_recipient.get(label, 0) + missing
    summary: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "returns_rules": f"{returns_rules.label} ({returns_rules.sha256[:12]})",
        "reminder_rules": f"{ladder_rules.label} ({ladder_rules.sha256[:12]})",
        "returns_created": dict(sorted(created.items())),
        "messages_queued": dict(sorted(queued.items())),
        "facts": n_facts,
    }
    if no_recipient:
        summary["no_recipient"] = no_recipient
    late = _late_instalments(conn, as_of)
    if late is not None:
        summary["late_instalments"] = len(late)
        summary["late_instalments_pence"] = sum(i["outstanding_pence"] for i in late)
    return summary


def _late_instalments(conn: Connection, as_of: dt.date) -> list[dict] | None:
    try:
        from engine.handlers.recovery import late_instalments
    except ImportError:  # pragma: no cover - the money commands not installed
        return None
    return late_instalments(conn, as_of)


@command(
    "sweep",
    roles=("officer", "director"),
    summary="The deadline sweep: create returns due, queue reminders, chases and escalations",
)
def sweep_command(uow: UnitOfWork, args: Args) -> dict:
    as_of = args.date("as_of", required=False) or uow.today
    returns_file = args.text("returns_rules", required=False, max_len=1000) or None
    ladder_file = args.text("reminder_rules", required=False, max_len=1000) or None
    args.done()
    if as_of > uow.today:
        raise ValidationError(
            f"sweep: as_of: {as_of.isoformat()} is in the future (today is "
            f"{uow.today.isoformat()}); a sweep runs as of today or a day already passed",
            field="as_of",
        )
    summary = run_sweep(
        uow.conn, as_of, uow.now, load_return_rules(returns_file), load_ladder_rules(ladder_file)
    )
    created = sum(summary["returns_created"].values())
    queued = sum(summary["messages_queued"].values())
    uow.record(
        f"SWEEP-{as_of.isoformat()}",
        {},
        summary,
        f"sweep as of {_long(as_of)}: {created} return(s) created, {queued} message(s) queued",
    )
    return {**summary, "returns_created_total": created, "messages_queued_total": queued}


def sweep(
    engine: Engine,
    as_of: dt.date | None = None,
    clock: Clock | None = None,
    *,
    returns_rules: str | None = None,
    reminder_rules: str | None = None,
    actor: str = "scheduler",
) -> dict:
    """Run one sweep through the command bus (one transaction) as the system."""
    from engine.service import Actor, Quorum

    args: dict[str, Any] = {}
    if as_of is not None:
        args["as_of"] = as_of
    if returns_rules:
        args["returns_rules"] = returns_rules
    if reminder_rules:
        args["reminder_rules"] = reminder_rules
    return Quorum(engine, clock).execute("sweep", args, Actor.system(actor))
