"""One path for every action: the command bus and its unit of work.

    entry point -> Quorum.execute(command, args, actor)
        -> [idempotency check] -> authorise -> handler(uow, args)
           (load item, ask its workflow, apply money effects, record audit
           events, queue notifications) -> append audit chain -> outbox
        -> commit   (one database transaction; nothing is sent before it)

Handlers live in ``engine/commands/handlers/`` and register themselves with
:func:`command`. Entry points (CLI, web, REST, scheduler, replay) only parse
input and render output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, SQLModel

from engine.commands.args import Args
from engine.commands.contracts import CONTRACTS, Contract
from engine.domain.clock import Clock, SystemClock
from engine.domain.errors import ConflictError, NotFound, PermissionDenied, QuorumError
from engine.store import audit, directory
from engine.store.db import write_connection
from engine.store.directory import Directory
from engine.store.models import CommandLog, Outbox
from workflows.base import Workflow

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a person with roles, or the system itself."""

    name: str
    email: str
    roles: frozenset[str]
    person_id: int | None = None
    organisation_id: int | None = None

    @property
    def label(self) -> str:
        return self.email or self.name

    @classmethod
    def system(cls, why: str = "system") -> Actor:
        return cls(name=why, email=why, roles=frozenset({SYSTEM}))


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Callable[[UnitOfWork, Args], dict]
    roles: frozenset[str] | None  # None: the item's workflow decides
    summary: str
    contract: type[Contract]  # what it takes (engine/commands/contracts.py)


REGISTRY: dict[str, CommandSpec] = {}


def command(
    name: str, *, roles: Iterable[str] | None = None, summary: str = ""
) -> Callable[[Callable[[UnitOfWork, Args], dict]], Callable[[UnitOfWork, Args], dict]]:
    """Register a handler. ``roles``: who may call it; leave None when the
    handler asks a workflow, which declares its own roles per step. Its arguments
    are read through the contract of the same name (engine/commands/contracts.py)."""

    def deco(fn: Callable[[UnitOfWork, Args], dict]) -> Callable[[UnitOfWork, Args], dict]:
        if name in REGISTRY:
            raise ValueError(f"command {name} registered twice")
        if name not in CONTRACTS:
            raise ValueError(f"command {name} has no contract in engine/commands/contracts.py")
        REGISTRY[name] = CommandSpec(
            name,
            fn,
            frozenset(roles) if roles is not None else None,
            summary or (fn.__doc__ or ""),
            CONTRACTS[name],
        )
        return fn

    return deco


@dataclass
class RunState:
    """Shared by the commands of one transaction."""

    directory: Directory
    changed: bool = False  # some command changed reference data
    stale: bool = False  # ...and the snapshot above predates it


@dataclass
class UnitOfWork:
    """What a handler sees: the connection (one transaction), the actor, the
    clock, the reference data, and the places to put audit events and
    outgoing messages. Handlers use SQLAlchemy Core on ``conn``; ``session``
    gives an ORM Session on the same transaction for cold paths."""

    conn: Connection
    actor: Actor
    clock: Clock
    command: str
    run: RunState
    events: list[audit.PendingEvent] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    _session: Session | None = None

    @property
    def today(self) -> dt.date:
        return self.clock.today()

    @property
    def now(self) -> dt.datetime:
        return self.clock.now()

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(bind=self.conn, expire_on_commit=False)
        return self._session

    @property
    def directory(self) -> Directory:
        if self.run.stale:
            self.run.directory = directory.load(self.conn, -1)
            self.run.stale = False
        return self.run.directory

    def touch_directory(self) -> None:
        """Say this command changed people, roles, organisations, programmes or pots."""
        self.run.changed = True
        self.run.stale = True

    # --- authorisation -------------------------------------------------
    def require_role(self, *roles: str, what: str | None = None) -> None:
        """The system actor (setup, scheduler) may do anything a command allows."""
        if not (set(roles) | {SYSTEM}) & self.actor.roles:
            raise PermissionDenied(
                f"{what or self.command} needs the role {' or '.join(sorted(roles))}; "
                f"{self.actor.label} has {', '.join(sorted(self.actor.roles)) or 'no roles'}"
            )

    def require_scope(self, organisation_id: int, what: str) -> None:
        """A sponsor acts only for its own authority; officers act for all."""
        if self.actor.roles & {"officer", "director", SYSTEM}:
            return
        if self.actor.organisation_id != organisation_id:
            raise PermissionDenied(f"{self.actor.label} may {what} only for their own authority")

    # --- workflow -----------------------------------------------------
    def _roles(self) -> set[str]:
        return set(self.actor.roles) | ({"officer"} if SYSTEM in self.actor.roles else set())

    def authorise(self, workflow: Workflow, trigger: str) -> None:
        """Refuse early (naming the role needed) if this actor may never take ``trigger``."""
        step = workflow.step(trigger)
        if not step.roles & self._roles():
            raise PermissionDenied(
                f"{self.command} needs the role {' or '.join(sorted(step.roles))}; "
                f"{self.actor.label} has {', '.join(sorted(self.actor.roles)) or 'no roles'}"
            )

    def step(self, workflow: Workflow, trigger: str, state: str, ref: str) -> str:
        """Ask the item's workflow whether ``trigger`` may fire now; the new state."""
        return workflow.check(trigger, state, self._roles(), item=ref)

    def check_version(self, ref: str, version: int, args: Args) -> None:
        """If the caller says which version it saw, refuse when it is stale."""
        seen = args.integer("version", required=False)
        if seen is not None and seen != version:
            raise ConflictError(
                f"{ref} was changed by someone else since you loaded it "
                f"(you saw version {seen}, it is now version {version}); reload and retry",
                item=ref,
            )

    def update_versioned(
        self, model: type[SQLModel], row_id: int, seen: int, values: dict, ref: str
    ) -> int:
        """UPDATE ... SET values, version = seen + 1 WHERE id AND version = seen.
        A row changed meanwhile is a conflict; returns the new version."""
        stmt = _versioned_update(model.__table__, tuple(sorted(values)))
        result = self.conn.execute(stmt, {**values, "_id": row_id, "_seen": seen})
        if result.rowcount != 1:
            raise ConflictError(
                f"{ref} was changed by someone else at the same time; nothing was saved — "
                "reload and try again",
                item=ref,
            )
        return seen + 1

    # --- effects -------------------------------------------------------
    def record(
        self, item_ref: str, before: dict, after: dict, reason: str = "", command: str | None = None
    ) -> None:
        self.events.append(
            audit.PendingEvent(command or self.command, item_ref, before, after, reason)
        )

    def notify(
        self,
        *,
        key: str,
        to: str,
        template: str,
        subject: str,
        context: dict,
        channel: str = "email",
    ) -> None:
        self.messages.append(
            {
                "key": key,
                "to_addr": to,
                "template": template,
                "subject": subject,
                "context": context,
                "channel": channel,
            }
        )

    def finish(self, ok: bool) -> None:
        if self._session is not None:
            try:
                if ok:
                    self._session.flush()
            finally:
                self._session.close()
                self._session = None


class Quorum:
    """The application service every entry point talks to."""

    def __init__(self, engine: Any, clock: Clock | None = None) -> None:
        from engine.commands import handlers  # noqa: F401  (registers the commands)

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
        calls: list[tuple[str, dict | None]],
        actor: str | Actor,
        *,
        key: str | None = None,
    ) -> list[dict]:
        """Run several commands in ONE transaction: all take effect or none."""
        outcomes, _ = self._run(calls, actor, key=key, per_row=False, partial=False)
        return outcomes  # type: ignore[return-value]

    def execute_rows(
        self, calls: list[tuple[str, dict | None]], actor: str | Actor, *, partial: bool = False
    ) -> tuple[list[dict | QuorumError], bool]:
        """Try every call (each in a savepoint) and report each outcome.

        Returns (a result or the refusal for each call, whether anything was
        committed). Unless ``partial``, one refusal means nothing is kept."""
        return self._run(calls, actor, key=None, per_row=True, partial=partial)

    def _run(
        self,
        calls: list[tuple[str, dict | None]],
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
                    events.extend(uow.events)
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


_LOGGED = select(CommandLog.result).where(CommandLog.key == bindparam("key"))
_LOG = insert(CommandLog)
_OUTBOX = insert(Outbox)


@cache
def _versioned_update(table: Table, columns: tuple[str, ...]) -> Any:
    """UPDATE table SET <columns>, version = version + 1 WHERE id = :_id AND version = :_seen,
    built once per (table, columns)."""
    return (
        table.update()
        .where(table.c.id == bindparam("_id"), table.c.version == bindparam("_seen"))
        .values({**{c: bindparam(c) for c in columns}, "version": table.c.version + 1})
    )


class _Abandon(Exception):
    def __init__(self, outcomes: list) -> None:
        self.outcomes = outcomes


def _short(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig else str(exc)
