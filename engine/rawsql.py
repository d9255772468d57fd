"""Hot statements sent straight to the database driver.

SQLAlchemy builds and compiles each statement once per dialect (with the
dialect's casts, e.g. ``::JSON`` for psycopg) and supplies each parameter's
bind processor (``TypeEngine.bind_processor``: dates and JSON on SQLite...);
executing it then skips SQLAlchemy's per-call machinery, about 30 µs a
statement here — more than SQLite needs to run it. Results come back as the
driver gives them, so read only text and integers this way."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement


class RawStatement:
    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}
        self._processors: dict[str, dict[str, Any]] = {}

    def _for(self, conn: Connection) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        name = conn.dialect.name
        found = self._compiled.get(name)
        if found is None:
            compiled = self.stmt.compile(dialect=conn.dialect)
            positional = tuple(compiled.positiontup) if compiled.positional else None
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
            found = self._compiled[name] = (str(compiled), positional, constants)
        return found

    def _processed(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        procs = self._processors[conn.dialect.name]
        if not procs:
            return params
        return {k: (procs[k](v) if k in procs and v is not None else v) for k, v in params.items()}

    @staticmethod
    def _params(order: tuple[str, ...] | None, constants: dict, params: dict[str, Any]) -> Any:
        merged = {**constants, **params}
        return tuple(merged[k] for k in order) if order is not None else merged

    def execute(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """Run it; returns the driver cursor (fetchone/fetchall, rowcount)."""
        sql, order, constants = self._for(conn)
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(sql, self._params(order, constants, self._processed(conn, params or {})))
        return cursor

    def executemany(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        sql, order, constants = self._for(conn)
        cursor = conn.connection.driver_connection.cursor()
        cursor.executemany(
            sql, [self._params(order, constants, self._processed(conn, r)) for r in rows]
        )


def _processor(type_: Any, conn: Connection) -> Any:
    """How a parameter of this type goes to the driver: JSON as JSON text on every
    dialect (psycopg would send a list as an array); others as SQLAlchemy does."""
    if isinstance(type_, JSON):
        return _json_text
    return type_.bind_processor(conn.dialect)


def _json_text(value: Any) -> str:
    return json.dumps(value)
