"""Statements that run on every command, sent straight to the database driver.

SQLAlchemy builds and compiles each statement once per dialect; executing it
then skips SQLAlchemy's per-call machinery (about 30 µs a statement here,
more than SQLite needs to run it). Only for statements whose parameters and
results are plain text and integers, which need no type conversion."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement


class RawStatement:
    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

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
            found = self._compiled[name] = (str(compiled), positional, constants)
        return found

    @staticmethod
    def _params(order: tuple[str, ...] | None, constants: dict, params: dict[str, Any]) -> Any:
        merged = {**constants, **params}
        return tuple(merged[k] for k in order) if order is not None else merged

    def execute(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """Run it; returns the driver cursor (fetchone/fetchall, rowcount)."""
        sql, order, constants = self._for(conn)
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(sql, self._params(order, constants, params or {}))
        return cursor

    def executemany(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        sql, order, constants = self._for(conn)
        cursor = conn.connection.driver_connection.cursor()
        cursor.executemany(sql, [self._params(order, constants, r) for r in rows])
