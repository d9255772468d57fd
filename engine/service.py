"""One path for every action: the command bus and its unit of work.

    entry point -> Quorum.execute(command, args, actor)
        -> [idempotency check] -> authorise -> handler(uow, args)
           (load item, ask its workflow, apply money effects, record audit
           events, queue notifications) -> append audit chain -> outbox
        -> commit   (one database transaction; nothing is sent before it)

Handlers live in ``engine/handlers/`` and register themselves with
:func:`command`. Entry points (CLI, web, REST, scheduler, replay) only parse
input and render output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, SQLModel

from engine import audit
from engine.args import Args
from engine.clock import Clock, SystemClock
from engine.errors import ConflictError, NotFound, PermissionDenied, QuorumError
from engine.models import CommandLog, Outbox, Person, PersonRole
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


REGISTRY: dict[str, CommandSpec] = {}


def command(
    name: str, *, roles: Iterable[str] | None = None, summary: str = ""
) -> Callable[[Callable[[UnitOfWork, Args], dict]], Callable[[UnitOfWork, Args], dict]]:
    """Register a handler. ``roles``: who may call it; leave None when the
    handler asks a workflow, which declares its own roles per step."""

    def deco(fn: Callable[[UnitOfWork, Args], dict]) -> Callable[[UnitOfWork, Args], dict]:
        if name in REGISTRY:
            raise ValueError(f"command {name} registered twice")
        REGISTRY[name] = CommandSpec(
            name, fn, frozenset(roles) if roles is not None else None, summary or (fn.__doc__ or "")
        )
        return fn

    return deco


@dataclass
class UnitOfWork:
    """What a handler sees: the session, the actor, the clock, and the places
    to put audit events and outgoing messages."""

    session: Session
    actor: Actor
    clock: Clock
    command: str
    events: list[audit.PendingEvent] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    _cache: dict = field(default_factory=dict)

    @property
    def today(self) -> dt.date:
        return self.clock.today()

    @property
    def now(self) -> dt.datetime:
        return self.clock.now()

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

    def transition(self, workflow: Workflow, item: Any, trigger: str) -> str:
        """Ask the item's workflow; on success move the item and return the old state."""
        dest = workflow.check(trigger, item.state, self._roles(), item=getattr(item, "ref", ""))
        old = item.state
        item.state = dest
        return old

    def check_version(self, item: Any, args: Args) -> None:
        """If the caller says which version it saw, refuse when it is stale."""
        seen = args.integer("version", required=False)
        if seen is not None and seen != item.version:
            raise ConflictError(
                f"{item.ref} was changed by someone else since you loaded it "
                f"(you saw version {seen}, it is now version {item.version}); reload and retry",
                item=item.ref,
            )

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

    def add(self, obj: SQLModel) -> SQLModel:
        self.session.add(obj)
        return obj

    def flush(self) -> None:
        self.session.flush()

    def cached(self, key: Any, loader: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = loader()
        return self._cache[key]


class Quorum:
    """The application service every entry point talks to."""

    def __init__(self, engine: Any, clock: Clock | None = None) -> None:
        from engine import handlers  # noqa: F401  (registers the commands)

        self.engine = engine
        self.clock = clock or SystemClock()

    # --- actors ---------------------------------------------------------
    def actor(self, who: str | Actor, session: Session | None = None) -> Actor:
        if isinstance(who, Actor):
            return who
        if who == SYSTEM:
            return Actor.system()
        own = session is None
        session = session or Session(self.engine)
        try:
            rows = session.execute(
                select(
                    Person.id,
                    Person.name,
                    Person.email,
                    Person.organisation_id,
                    Person.active,
                    PersonRole.role,
                )
                .outerjoin(PersonRole, PersonRole.person_id == Person.id)
                .where(func.lower(Person.email) == who.strip().lower())
            ).all()
        finally:
            if own:
                session.close()
        if not rows:
            raise NotFound(f"no person with email {who!r}; ask an officer to add you", field="by")
        pid, name, email, org, active, _ = rows[0]
        if not active:
            raise PermissionDenied(f"{email} is deactivated")
        return Actor(name, email, frozenset(r[5] for r in rows if r[5]), pid, org)

    # --- execution ------------------------------------------------------
    def execute(
        self, name: str, args: dict | None, actor: str | Actor, *, key: str | None = None
    ) -> dict:
        """Run one command in one transaction. Returns the handler's result."""
        return self.execute_batch([(name, args)], actor, key=key)[0]

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
    ) -> tuple[list, bool]:
        for name, _ in calls:
            if name not in REGISTRY:
                raise NotFound(
                    f"unknown command {name!r}; known: {', '.join(sorted(REGISTRY))}",
                    field="do",
                )
        label = "+".join(sorted({c[0] for c in calls}))
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                with session.begin():
                    if key is not None:
                        done = session.get(CommandLog, key)
                        if done is not None:
                            return done.result["results"], False
                    head = audit.lock_head(session)
                    who = self.actor(actor, session)
                    outcomes: list = []
                    events: list[audit.PendingEvent] = []
                    messages: list[dict] = []
                    failed = False
                    for name, data in calls:
                        uow = UnitOfWork(session, who, self.clock, name)
                        if not per_row:
                            outcomes.append(self._handle(uow, name, data))
                        else:
                            try:
                                with session.begin_nested():
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
                    audit.append(session, head, events, who.label, now)
                    if messages:
                        session.execute(
                            insert(Outbox),
                            [
                                dict(m, created_at=now, status="queued", attempts=0)
                                for m in messages
                            ],
                        )
                    if key is not None:
                        session.add(
                            CommandLog(
                                key=key,
                                command=label,
                                actor=who.label,
                                result={"results": outcomes},
                                at=now,
                            )
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
                with Session(self.engine) as session:
                    done = session.get(CommandLog, key)
                    if done is not None:
                        return done.result["results"], False
            raise QuorumError(f"{label}: refused by the database: {_short(exc)}") from None

    @staticmethod
    def _handle(uow: UnitOfWork, name: str, data: dict | None) -> dict:
        spec = REGISTRY[name]
        if spec.roles is not None:
            uow.require_role(*spec.roles)
        result = spec.handler(uow, Args(name, data))
        uow.session.flush()
        return result


class _Abandon(Exception):
    def __init__(self, outcomes: list) -> None:
        self.outcomes = outcomes


def _short(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig else str(exc)
