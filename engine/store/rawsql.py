"""Hot statements sent straight to the database driver.

SQLAlchemy builds and compiles each statement once per dialect (with the
dialect's casts, e.g. ``::JSON`` for psycopg) and supplies each parameter's
bind processor (``TypeEngine.bind_processor``: dates and JSON on SQLite...);
executing it then skips SQLAlchemy's per-call machinery, about 30 µs a
statement here — more than SQLite needs to run it. Results come back as the
driver gives them, so read only text and integers this way."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import JSON, Select, Table, bindparam, insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


def _driver(conn: Connection) -> Any:
    """The DB-API connection under ``conn`` (always there while it is open)."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("rawsql: the connection is closed; it has no driver connection")
    return driver


class RawStatement:
    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}
        self._processors: dict[str, dict[str, Any]] = {}
        self._names: dict[str, frozenset[str]] = {}
        # dialect -> (the SQL, the driver's parameters from the caller's): execute's path
        self._plans: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {}

    def _for(self, conn: Connection) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        name = conn.dialect.name
        found = self._compiled.get(name)
        if found is None:
            compiled = cast(SQLCompiler, self.stmt.compile(dialect=conn.dialect))
            positional = tuple(compiled.positiontup or ()) if compiled.positional else None
            # the statement's own constants (e.g. "WHERE id = 1") with the callers' names
            constants = {
                name: bind.effective_value
                for bind, name in compiled.bind_names.items()
                if not bind.required
            }
            self._processors[name] = {
                key: proc
                for bind, key in compiled.bind_names.items()
                if (proc := _processor(bind.type, conn)) is not None
            }
            self._names[name] = frozenset(compiled.bind_names.values())
            found = self._compiled[name] = (str(compiled), positional, constants)
        return found

    def _processed(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        procs = self._processors[conn.dialect.name]
        if not procs:
            return params
        return {k: (procs[k](v) if k in procs and v is not None else v) for k, v in params.items()}

    @staticmethod
    def _params(
        order: tuple[str, ...] | None, constants: dict[str, Any], params: dict[str, Any]
    ) -> Any:
        merged = {**constants, **params}
        return tuple(merged[k] for k in order) if order is not None else merged

    def execute(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """Run it; returns the driver cursor (fetchone/fetchall, rowcount)."""
        plan = self._plans.get(conn.dialect.name)
        if plan is None:
            plan = self._plan(conn)
        cursor = _driver(conn).cursor()
        cursor.execute(plan[0], plan[1](params or {}))
        return cursor

    def _plan(self, conn: Connection) -> tuple[str, Callable[[dict[str, Any]], Any]]:
        """The SQL and a function making the driver's parameters from the caller's:
        what ``_params(..., _processed(...))`` gives, with the per-statement lookups
        done once (a lifecycle sends ~270 statements this way, bench/lifecycle.py)."""
        sql, order, constants = self._for(conn)
        procs = tuple(self._processors[conn.dialect.name].items())

        def processed(params: dict[str, Any]) -> dict[str, Any]:
            # only the parameters that have a processor (dates, JSON...) and a value
            out = dict(params)
            for k, proc in procs:
                v = out.get(k)
                if v is not None:
                    out[k] = proc(v)
            return out

        if order is None:  # named parameters (psycopg): a mapping

            def named(params: dict[str, Any]) -> Any:
                if procs:
                    params = processed(params)
                return {**constants, **params}

            build = named
        else:  # positional (SQLite): a tuple in the statement's order

            def positional(params: dict[str, Any]) -> Any:
                if procs:
                    params = processed(params)
                if constants:
                    params = {**constants, **params}
                return tuple(map(params.__getitem__, order))

            build = positional
        plan = self._plans[conn.dialect.name] = (sql, build)
        return plan

    def executemany(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        sql, order, constants = self._for(conn)
        cursor = _driver(conn).cursor()
        cursor.executemany(
            sql, [self._params(order, constants, self._processed(conn, r)) for r in rows]
        )

    def executemany_values(
        self,
        conn: Connection,
        keys: Sequence[str],
        rows: Iterable[Sequence[Any]],
        common: Mapping[str, Any] | None = None,
    ) -> None:
        """``executemany`` for rows given as tuples, ``row[j]`` being parameter
        ``keys[j]``; ``common``: parameters with the same value in every row.

        The same statements as ``executemany`` with a dict per row, without
        making those dicts: common values are converted once, per-row values
        that need converting (JSON, dates on SQLite...) once per object, and
        ``rows`` may be a generator (the driver takes the rows one at a time:
        thousands of them never all exist at once)."""
        sql, order, constants = self._for(conn)
        dialect = conn.dialect.name
        procs = self._processors[dialect]
        common = {k: _convert(procs.get(k), v) for k, v in (common or {}).items()}
        given = [*keys, *common]
        if len(set(given)) != len(given) or not set(given) <= self._names[dialect]:
            raise ValueError(f"parameters {given} do not fit {sql!r}")
        convert = [(j, procs[k]) for j, k in enumerate(keys) if k in procs]
        params: Iterable[Any] = _converted(rows, convert) if convert else rows
        fixed = {**constants, **common}
        if order is None:  # named parameters (psycopg): the driver wants mappings
            params = ({**fixed, **dict(zip(keys, r, strict=True))} for r in params)
        else:
            slot = {k: j for j, k in enumerate(keys)}
            extra = tuple(fixed[k] for k in order if k not in slot)
            slot.update((k, len(keys) + j) for j, k in enumerate(k for k in order if k not in slot))
            where = [slot[k] for k in order]
            if where != list(range(len(keys))) or extra:
                pick = _picker(where)
                params = (pick(tuple(r) + extra) for r in params)
        cursor = _driver(conn).cursor()
        cursor.executemany(sql, params)


class RawChain(RawStatement):
    """Several data-changing statements sent as one, on PostgreSQL: each of ``first``
    a data-modifying ``WITH`` clause of ``last`` (one round trip instead of one
    each). They run in the same snapshot and do not see each other's rows, so none
    may depend on another's; every row is written (a ``WITH`` that changes data
    runs whether or not it is read) and constraints are checked at the end of the
    one statement. The result (``rowcount``) is ``last``'s. Bind names must differ
    between the parts unless they are the same value."""

    def __init__(self, first: Sequence[ClauseElement], last: ClauseElement) -> None:
        super().__init__(last)
        self.first = tuple(first)

    def _for(self, conn: Connection) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        name = conn.dialect.name
        found = self._compiled.get(name)
        if found is None:
            if name != "postgresql":
                raise ValueError(f"RawChain: PostgreSQL only, not {name}")
            texts: list[str] = []
            constants: dict[str, Any] = {}
            procs: dict[str, Any] = {}
            names: set[str] = set()
            for stmt in (*self.first, self.stmt):
                compiled = cast(SQLCompiler, stmt.compile(dialect=conn.dialect))
                if compiled.positional:
                    raise ValueError("RawChain: the driver's parameters must be named")
                for bind, key in compiled.bind_names.items():
                    if not bind.required:
                        if key in constants and constants[key] != bind.effective_value:
                            raise ValueError(f"RawChain: two constants named {key!r}")
                        constants[key] = bind.effective_value
                    if (proc := _processor(bind.type, conn)) is not None:
                        procs[key] = proc
                    names.add(key)
                texts.append(str(compiled))
            head = ", ".join(f"w{i} AS ({t})" for i, t in enumerate(texts[:-1]))
            self._processors[name] = procs
            self._names[name] = frozenset(names)
            sql = f"WITH {head} {texts[-1]}" if head else texts[-1]
            found = self._compiled[name] = (sql, None, constants)
        return found


def _picker(where: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function giving a tuple's items at ``where``, as a tuple."""
    if len(where) == 1:
        (j,) = where
        return lambda r: (r[j],)
    return itemgetter(*where)


def _convert(proc: Callable[[Any], Any] | None, value: Any) -> Any:
    return proc(value) if proc is not None and value is not None else value


def _converted(
    rows: Iterable[Sequence[Any]], convert: list[tuple[int, Callable[[Any], Any]]]
) -> Iterator[list[Any]]:
    """The rows with the values at the given places converted, each object once
    (bulk rows share dates, flags, lists...). By identity, not equality: 1 and
    True or 1 and 1.0 are equal but convert differently to JSON."""
    done: dict[tuple[int, int], tuple[Any, Any]] = {}  # (place, id) -> (object, converted)
    for row in rows:
        values = list(row)
        for j, proc in convert:
            v = values[j]
            if v is not None:
                found = done.get((j, id(v)))
                if found is None:  # (keeping the object alive keeps its id unique)
                    found = done[j, id(v)] = (v, proc(v))
                values[j] = found[1]
        yield values


def _processor(type_: Any, conn: Connection) -> Any:
    """How a parameter of this type goes to the driver: JSON as JSON text on every
    dialect (psycopg would send a list as an array); others as SQLAlchemy does."""
    if isinstance(type_, JSON):
        return _json_text
    # the dialect's own type (SQLite's DATETIME writes "2011-04-20 09:00:00.000000"): the
    # generic type's processor is not the one SQLAlchemy uses (for a datetime it had none,
    # and the driver wrote its own text, "2011-04-20 09:00:00+00:00")
    return type_.dialect_impl(conn.dialect).bind_processor(conn.dialect)


def _json_text(value: Any) -> str:
    return json.dumps(value)


class RawRows(RawStatement):
    """A SELECT sent straight to the driver whose rows come back typed as SQLAlchemy
    would give them (each column's result processor for the dialect: dates from
    SQLite's text, JSON, booleans), as named tuples of its columns' keys. For the
    hot reads of a command (the grant and its milestones: dates among them), about
    a third of what ``Connection.execute`` costs a statement."""

    def __init__(self, stmt: Select[Any]) -> None:
        super().__init__(stmt)
        self._columns = [(c.key, c.type) for c in stmt.selected_columns]
        self.row: Any = namedtuple("row", [k for k, _ in self._columns])  # type: ignore[misc]
        self._results: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}

    def _converters(self, conn: Connection) -> list[tuple[int, Callable[[Any], Any]]]:
        found = self._results.get(conn.dialect.name)
        if found is None:
            dialect = conn.dialect
            found = self._results[dialect.name] = [
                (j, proc)
                for j, (_, type_) in enumerate(self._columns)
                if (proc := type_.dialect_impl(dialect).result_processor(dialect, None))
                is not None
            ]
        return found

    def rows(self, conn: Connection, params: dict[str, Any] | None = None) -> list[Any]:
        """Every row, typed."""
        convert = self._converters(conn)
        make = self.row._make
        fetched = self.execute(conn, params).fetchall()
        if not convert:
            return [make(r) for r in fetched]
        out = []
        for r in fetched:
            values = list(r)
            for j, proc in convert:
                values[j] = proc(values[j])
            out.append(make(values))
        return out


class RawValues:
    """Many rows inserted as one ``INSERT ... VALUES (...), (...)`` statement (one
    per ``chunk`` rows) sent straight to the driver, where an executemany runs a
    statement per row (SQLite and psycopg alike): the members of a meeting, the
    milestones of a bid, the criteria of its score. ``returning``: columns to give
    back for every row (integers and text, as the driver gives them), in no
    promised order: return a column that says which row each is (e.g. the bid's
    id with the new score's). Rows are tuples, ``row[j]`` being column ``keys[j]``;
    ``common``: values the same in every row. Compiled once per dialect and
    number of rows (at most ``chunk`` forms)."""

    def __init__(
        self, table: Table, keys: Sequence[str], returning: Sequence[str] = (),
        chunk: int = 200,
    ) -> None:
        self.table = table
        self.keys = tuple(keys)
        self.returning = tuple(returning)
        self.chunk = chunk
        self._compiled: dict[tuple[str, int, tuple[str, ...]], tuple[str, Any]] = {}

    def _for(self, conn: Connection, n: int, common: tuple[str, ...]) -> tuple[str, Any]:
        """(sql, (how to order a dict of parameters for the driver, converters,
        defaults)) for ``n`` rows."""
        found = self._compiled.get((conn.dialect.name, n, common))
        if found is None:
            cols = self.table.c
            # the columns' own defaults (a meeting member's apologies: no), as SQLAlchemy
            # fills them in: the same in every row (one computed per row is refused)
            defaults: dict[str, Any] = {}
            for c in cols:
                if c.default is None or c.key in self.keys or c.key in common:
                    continue
                if not c.default.is_scalar:
                    raise ValueError(
                        f"RawValues: {self.table.name}.{c.key} has a default computed per "
                        "row; give it in every row")
                defaults[c.key] = c.default.arg  # type: ignore[attr-defined]
            same = (*common, *defaults)
            stmt: Any = insert(self.table).values([
                {**{k: bindparam(f"{k}_{i}", type_=cols[k].type) for k in self.keys},
                 **{k: bindparam(k, type_=cols[k].type) for k in same}}
                for i in range(n)
            ])
            if self.returning:
                stmt = stmt.returning(*(cols[c] for c in self.returning))
            compiled = cast(SQLCompiler, stmt.compile(dialect=conn.dialect))
            order = _picker_of(tuple(compiled.positiontup or ())) if compiled.positional else None
            procs = {
                key: proc
                for bind, key in compiled.bind_names.items()
                if (proc := _processor(bind.type, conn)) is not None
            }
            found = self._compiled[conn.dialect.name, n, common] = (
                str(compiled), (order, procs, defaults))
        return found

    def insert(
        self, conn: Connection, rows: Iterable[Sequence[Any]],
        common: Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Insert ``rows`` (any iterable: taken ``chunk`` at a time); returns the
        ``returning`` columns of every row inserted (none without ``returning``)."""
        common = dict(common or {})
        names = tuple(common)
        out: list[tuple[Any, ...]] = []
        it = iter(rows)
        while batch := list(islice(it, self.chunk)):
            sql, (order, procs, constants) = self._for(conn, len(batch), names)
            params = {**constants, **common}
            for i, row in enumerate(batch):
                for k, v in zip(self.keys, row, strict=True):
                    params[f"{k}_{i}"] = v
            if procs:
                params = {
                    k: (procs[k](v) if k in procs and v is not None else v)
                    for k, v in params.items()
                }
            cursor = _driver(conn).cursor()
            cursor.execute(sql, order(params) if order is not None else params)
            if self.returning:
                out.extend(tuple(r) for r in cursor.fetchall())
        return out


def _picker_of(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function giving a mapping's values for ``names``, in order, as a tuple."""
    return lambda params: tuple(params[k] for k in names)
