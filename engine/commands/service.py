"""One path for every action: the command bus and its unit of work.

    entry point -> Quorum.execute(command, args, actor)
        -> [idempotency check] -> authorise -> handler(uow, args)
           (load item, ask its workflow, apply money effects, record audit
           events, queue notifications) -> append audit chain -> outbox
        -> commit   (one database transaction; nothing is sent before it)

Handlers live in ``engine/commands/handlers/`` and register themselves with
:func:`engine.commands.registry.command`; this module imports the handlers
package, so importing the bus registers every command (handlers never import
the bus: no cycle). The unit of work is :mod:`engine.commands.uow`. Entry
points (CLI, web, REST, scheduler, replay) only parse input and render output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col

from engine.commands import handlers, sweep  # noqa: F401  (importing them registers the commands)
from engine.commands.args import Args
from engine.commands.registry import REGISTRY, CommandSpec, command
from engine.commands.uow import RunState, UnitOfWork
from engine.domain.actor import SYSTEM, Actor
from engine.domain.clock import Clock, SystemClock
from engine.domain.errors import ConflictError, NotFound, PermissionDenied, QuorumError
from engine.store import audit, directory
from engine.store.db import write_connection
from engine.store.directory import Directory
from engine.store.models import CommandLog, Outbox

# Re-exported for the entry points and the web, which talk to the bus only.
__all__ = [
    "REGISTRY",
    "SYSTEM",
    "Actor",
    "CommandSpec",
    "Quorum",
    "RunState",
    "UnitOfWork",
    "command",
]


class Quorum:
    """The application service every entry point talks to."""

    def __init__(self, engine: Any, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._directory: Directory | None = None

    # --- actors and reference data -------------------------------------
    def _current_directory(self, conn: Connection, seq: int) -> Directory:
        cached = self._directory
        if cached is None or cached.seq != seq:
            cached = directory.load(conn, seq)
            self._directory = cached
        return cached

    @staticmethod
    def _actor_from(who: str | Actor, d: Directory) -> Actor:
        if isinstance(who, Actor):
            return who
        if who == SYSTEM:
            return Actor.system()
        person = d.person(who)
        if person is None:
            raise NotFound(f"no person with email {who!r}; ask an officer to add you", field="by")
        if not person.active:
            raise PermissionDenied(f"{person.email} is deactivated")
        return Actor(person.name, person.email, person.roles, person.id, person.organisation_id)

    def actor(self, who: str | Actor) -> Actor:
        """Resolve an email (or 'system') to an Actor with its roles."""
        with self.engine.connect() as conn:
            head = audit.lock_head(conn)
            return self._actor_from(who, self._current_directory(conn, head.directory_seq))

    # --- execution ------------------------------------------------------
    def execute(
        self,
        name: str,
        args: dict | None,
        actor: str | Actor,
        *,
        key: str | None = None,
        before: Callable[[Connection], None] | None = None,
    ) -> dict:
        """Run one command in one transaction. Returns the handler's result.

        ``before(conn)`` runs first inside the same transaction (e.g. consuming a
        single-use link): if it raises, nothing runs; if the command is refused,
        what it wrote is rolled back with the rest."""
        outcomes, _ = self._run(
            [(name, args)], actor, key=key, per_row=False, partial=False, before=before
        )
        return outcomes[0]

    def execute_batch(
        self,
        calls: Sequence[tuple[str, dict | None]],
        actor: str | Actor,
        *,
        key: str | None = None,
    ) -> list[dict]:
        """Run several commands in ONE transaction: all take effect or none."""
        outcomes, _ = self._run(calls, actor, key=key, per_row=False, partial=False)
        return outcomes

    def execute_rows(
        self, calls: Sequence[tuple[str, dict | None]], actor: str | Actor, *, partial: bool = False
    ) -> tuple[list[dict | QuorumError], bool]:
        """Try every call (each in a savepoint) and report each outcome.

        Returns (a result or the refusal for each call, whether anything was
        committed). Unless ``partial``, one refusal means nothing is kept."""
        return self._run(calls, actor, key=None, per_row=True, partial=partial)

    def _run(
        self,
        calls: Sequence[tuple[str, dict | None]],
        actor: str | Actor,
        *,
        key: str | None,
        per_row: bool,
        partial: bool,
        before: Callable[[Connection], None] | None = None,
    ) -> tuple[list, bool]:
        for name, _ in calls:
            if name not in REGISTRY:
                raise NotFound(
                    f"unknown command {name!r}; known: {', '.join(sorted(REGISTRY))}",
                    field="do",
                )
        label = "+".join(sorted({c[0] for c in calls}))
        run: RunState | None = None
        try:
            with write_connection(self.engine) as conn, conn.begin():
                if key is not None:
                    done = conn.execute(_LOGGED, {"key": key}).first()
                    if done is not None:
                        return done[0]["results"], False
                head = audit.lock_head(conn)
                run = RunState(self._current_directory(conn, head.directory_seq))
                who = self._actor_from(actor, run.directory)
                if before is not None:
                    before(conn)
                outcomes: list = []
                events: list[audit.PendingEvent] = []
                messages: list[dict] = []
                failed = False
                for name, data in calls:
                    uow = UnitOfWork(conn, who, self.clock, name, run)
                    if not per_row:
                        outcomes.append(self._handle(uow, name, data))
                    else:
                        try:
                            with conn.begin_nested():
                                outcomes.append(self._handle(uow, name, data))
                        except QuorumError as exc:
                            outcomes.append(exc)
                            failed = True
                            continue
                    events.extend(uow.audit_events())
                    messages.extend(uow.messages)
                if failed and not partial:
                    raise _Abandon(outcomes)
                now = self.clock.now()
                audit.append(conn, head, events, who.label, now, directory_changed=run.changed)
                if messages:
                    rows = [dict(m, created_at=now, status="queued", attempts=0) for m in messages]
                    conn.execute(_OUTBOX, rows[0] if len(rows) == 1 else rows)
                if key is not None:
                    conn.execute(
                        _LOG,
                        {
                            "key": key,
                            "command": label,
                            "actor": who.label,
                            "result": {"results": outcomes},
                            "at": now,
                        },
                    )
            return outcomes, bool(events)
        except _Abandon as abandoned:  # rolled back by leaving the transaction
            return abandoned.outcomes, False
        except StaleDataError:
            raise ConflictError(
                "someone else changed this item at the same time; nothing was saved — "
                "reload and try again"
            ) from None
        except IntegrityError as exc:
            if key is not None:
                with self.engine.connect() as conn:
                    done = conn.execute(_LOGGED, {"key": key}).first()
                    if done is not None:
                        return done[0]["results"], False
            raise QuorumError(f"{label}: refused by the database: {_short(exc)}") from None
        finally:
            if run is not None and run.changed:
                self._directory = None  # reload on next use (committed or not)

    @staticmethod
    def _handle(uow: UnitOfWork, name: str, data: dict | None) -> dict:
        spec = REGISTRY[name]
        if spec.roles is not None:
            uow.require_role(*spec.roles)
        try:
            # read through the contract on the handler's first read, after its role check
            result = spec.handler(uow, Args(name, data, spec.contract))
        except BaseException:
            uow.finish(ok=False)
            raise
        uow.finish(ok=True)
        return result


_LOGGED = select(col(CommandLog.result)).where(col(CommandLog.key) == bindparam("key"))
_LOG = insert(CommandLog)
_OUTBOX = insert(Outbox)


class _Abandon(Exception):
    def __init__(self, outcomes: list) -> None:
        self.outcomes = outcomes


def _short(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig else str(exc)
