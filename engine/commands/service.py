"""One path for every action: the command bus and its unit of work.

    entry point -> Quorum.execute(command, args, actor, key)
        -> lock the chain head -> authorise -> handler(uow, args)
           (load item, ask its workflow, apply money effects, record audit
           events, queue notifications) -> append audit chain -> outbox
           -> [the caller's key written done: engine/store/idempotency.py]
        -> commit   (one database transaction; nothing is sent before it)

Handlers live in ``engine/commands/handlers/`` and register themselves with
:func:`engine.commands.registry.command`; this module imports the handlers
package, so importing the bus registers every command (handlers never import
the bus: no cycle). The unit of work is :mod:`engine.commands.uow`. Entry
points (CLI, web, REST, scheduler, replay) only parse input and render output.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy.engine import Connection, RootTransaction
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from engine.commands import handlers, sweep  # noqa: F401  (importing them registers the commands)
from engine.commands.args import Args
from engine.commands.registry import REGISTRY, CommandSpec, Result, command
from engine.commands.uow import RunState, UnitOfWork
from engine.domain.actor import SYSTEM, Actor
from engine.domain.clock import Clock, SystemClock
from engine.domain.errors import (
    ConflictError,
    KeyInProgress,
    NotFound,
    PermissionDenied,
    QuorumError,
    ValidationError,
)
from engine.settings import Settings, get_settings
from engine.store import audit, directory, idempotency, tail
from engine.store.db import write_connection
from engine.store.directory import Directory

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


log = logging.getLogger(__name__)

# How long a retry waits for the first request with its key before answering 409.
KEY_WAIT_SECONDS = 10.0
KEY_MAX = 200  # characters in an idempotency key (the API's Idempotency-Key header too)


class Quorum:
    """The application service every entry point talks to."""

    def __init__(self, engine: Any, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._directory: Directory | None = None
        self.key_wait_seconds = KEY_WAIT_SECONDS

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
        args: dict[str, Any] | None,
        actor: str | Actor,
        *,
        key: str | None = None,
        before: Callable[[Connection], None] | None = None,
    ) -> Result:
        """Run one command in one transaction. Returns the handler's result.

        ``before(conn)`` runs first inside the same transaction (e.g. consuming a
        single-use link): if it raises, nothing runs; if the command is refused,
        what it wrote is rolled back with the rest."""
        outcomes, _ = self._run(
            [(name, args)], actor, key=key, per_row=False, partial=False, before=before
        )
        return cast(Result, outcomes[0])  # not per_row: a refusal raised, none is kept

    def execute_batch(
        self,
        calls: Sequence[tuple[str, dict[str, Any] | None]],
        actor: str | Actor,
        *,
        key: str | None = None,
    ) -> list[Result]:
        """Run several commands in ONE transaction: all take effect or none."""
        outcomes, _ = self._run(calls, actor, key=key, per_row=False, partial=False)
        return cast(list[Result], outcomes)  # not per_row: a refusal raised, none is kept

    def execute_rows(
        self,
        calls: Sequence[tuple[str, dict[str, Any] | None]],
        actor: str | Actor,
        *,
        partial: bool = False,
    ) -> tuple[list[Result | QuorumError], bool]:
        """Try every call (each in a savepoint) and report each outcome.

        Returns (a result or the refusal for each call, whether anything was
        committed). Unless ``partial``, one refusal means nothing is kept."""
        return self._run(calls, actor, key=None, per_row=True, partial=partial)

    def _run(
        self,
        calls: Sequence[tuple[str, dict[str, Any] | None]],
        actor: str | Actor,
        *,
        key: str | None,
        per_row: bool,
        partial: bool,
        before: Callable[[Connection], None] | None = None,
        key_in_run: bool = True,
    ) -> tuple[list[Result | QuorumError], bool]:
        for name, _ in calls:
            if name not in REGISTRY:
                raise NotFound(
                    f"unknown command {name!r}; known: {', '.join(sorted(REGISTRY))}",
                    field="do",
                )
        # The key: written ``done`` with the result at the end of the command's own
        # transaction (one INSERT ... ON CONFLICT DO NOTHING). SQLite's BEGIN IMMEDIATE
        # and PostgreSQL's lock on the chain head queue every writer, so no other
        # request can see or write the key while this one runs: nothing is claimed
        # first. When the key is there already (a retry, another argument set, an
        # expired key, a claim left by the polling path) or the command is refused
        # while it is there, this transaction is rolled back and the key's row decides,
        # in a short transaction of its own (``key_in_run=False``): the first result,
        # a refusal naming the fields that differ, a wait (then 409), or a take-over.
        if key is not None:
            _refuse_malformed(key)  # (before anything asks the database about it)
        in_run = key is not None and key_in_run and (
            self.engine.dialect.name in idempotency.IN_RUN_DIALECTS
        )
        try:
            return self._run_once(calls, actor, key=key, per_row=per_row, partial=partial,
                                  before=before, in_run=in_run)  # fmt: skip
        except _KeyTaken:
            pass
        except QuorumError:
            # refused: the answer, unless this is a retry (the key has a row)
            if not in_run or key is None or not self._key_stored(actor, calls, key):
                raise
        return self._run_once(calls, actor, key=key, per_row=per_row, partial=partial,
                              before=before, in_run=False)  # fmt: skip

    def _run_once(
        self,
        calls: Sequence[tuple[str, dict[str, Any] | None]],
        actor: str | Actor,
        *,
        key: str | None,
        per_row: bool,
        partial: bool,
        before: Callable[[Connection], None] | None,
        in_run: bool,
    ) -> tuple[list[Result | QuorumError], bool]:
        label = "+".join(sorted({c[0] for c in calls}))
        claim: tuple[idempotency.Key, str] | None = None  # the polling path's claim
        fingerprint: idempotency.Fingerprint | None = None
        typed: list[dict[str, Any] | None] = []  # each call's arguments as its contract read them
        settings = get_settings()  # read once a command: the key's lifetime, the audit keyring
        ttl = _key_ttl(settings) if key is not None else dt.timedelta(0)
        if key is not None:
            fingerprint = self._check_key(calls, key, typed)
            if not in_run:
                claimed = self._claim(calls, actor, label, key, fingerprint)
                if isinstance(claimed, list):
                    return list[Result | QuorumError](claimed), False  # the first result
                claim = claimed
        run: RunState | None = None
        committed = False
        try:
            conn, transaction, head = self._begin()
            with conn, audit.begun(conn), transaction:
                run = RunState(self._current_directory(conn, head.directory_seq))
                who = self._actor_from(actor, run.directory)
                if before is not None:
                    before(conn)
                outcomes: list[Result | QuorumError] = []
                events: list[audit.PendingEvent] = []
                messages: list[dict[str, Any]] = []
                failed = False
                for n, (name, data) in enumerate(calls):
                    uow = UnitOfWork(conn, who, self.clock, name, run)
                    read = typed[n] if typed else None
                    if not per_row:
                        outcomes.append(self._handle(uow, name, data, read))
                    else:
                        try:
                            with conn.begin_nested():
                                outcomes.append(self._handle(uow, name, data, read))
                        except QuorumError as exc:
                            outcomes.append(exc)
                            failed = True
                            continue
                    events.extend(uow.audit_events())
                    messages.extend(uow.messages)
                if failed and not partial:
                    raise _Abandon(outcomes)
                now = self.clock.now()
                result = {"results": outcomes}
                done = None  # the key written done with the result, in the run
                if in_run and key is not None and fingerprint is not None:
                    scoped = self._scoped(run.directory, actor, label, key)
                    done = idempotency.done_values(scoped, fingerprint, result, now, ttl)
                # the audit chain, the outbox and the in-app notices (people from the
                # cached directory unless this transaction changed it), the key: on
                # PostgreSQL in one statement (engine/store/tail.py)
                if not tail.write(conn, head, events, who.label, now, messages,
                                  None if run.changed else run.directory,
                                  directory_changed=run.changed, key=done,
                                  settings=settings):  # fmt: skip
                    raise _KeyTaken  # rolled back: the key's row decides (_run)
                if claim is not None and not idempotency.complete(
                    conn, claim[0], claim[1], result, now, ttl
                ):
                    raise KeyInProgress(
                        f"{label}: this request outlasted its hold on idempotency key "
                        f"{key!r} and a retry took it over; nothing was saved here — retry "
                        "with the same key for the retry's result",
                        field="key",
                    )
            committed = True
            return outcomes, bool(events)
        except _Abandon as abandoned:  # rolled back by leaving the transaction
            return abandoned.outcomes, False
        except StaleDataError:
            raise ConflictError(
                "someone else changed this item at the same time; nothing was saved — "
                "reload and try again"
            ) from None
        except IntegrityError as exc:
            raise QuorumError(f"{label}: refused by the database: {_short(exc)}") from None
        finally:
            if claim is not None and not committed:
                self._release(*claim)  # nothing was written: a retry runs afresh
            if run is not None and run.changed:
                self._directory = None  # reload on next use (committed or not)

    def _begin(self) -> tuple[Connection, RootTransaction, audit.Head]:
        """A write connection, its transaction begun and the chain head locked (which
        queues writers). The pool does not ping a connection at checkout
        (engine/store/db.py): one the server dropped while idle fails on this first
        statement, before anything ran on it, and the transaction is begun once more on
        a fresh connection (the pool renewed them all). A second failure is raised."""
        for attempt in (1, 2):
            conn = write_connection(self.engine)
            try:
                transaction = conn.begin()
                # PostgreSQL: BEGIN and the lock in one round trip (audit.begin_and_lock_head;
                # the driver's mode is put back by audit.begun when the transaction ends)
                return conn, transaction, audit.begin_and_lock_head(conn)
            except DBAPIError as exc:
                with suppress(DBAPIError):
                    conn.rollback()
                audit.end_begun(conn)
                conn.close()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                log.warning("a pooled connection was dropped by the database; reconnecting")
        raise AssertionError("unreachable")

    # --- idempotency keys (engine/store/idempotency.py) ------------------
    @staticmethod
    def _check_key(
        calls: Sequence[tuple[str, dict[str, Any] | None]],
        key: str,
        typed: list[dict[str, Any] | None] | None = None,
    ) -> idempotency.Fingerprint:
        """Refuse a malformed key; the fingerprint of the arguments it is sent with.
        ``typed`` gets each call's arguments as its contract read them (None: refused),
        so the handler does not read them again."""
        _refuse_malformed(key)
        return idempotency.Fingerprint.of(_canonical(calls, typed))

    @staticmethod
    def _scoped(d: Directory, actor: str | Actor, label: str, key: str) -> idempotency.Key:
        """The caller's key, the caller's person from the cached directory (no query)."""
        if isinstance(actor, Actor):
            person_id, who = actor.person_id, actor.label
        else:
            found = d.person(actor)
            person_id, who = (found.id if found is not None else None), actor
        return idempotency.Key(idempotency.scope_of(person_id, who), label, key)

    def _key_stored(
        self, actor: str | Actor, calls: Sequence[tuple[str, dict[str, Any] | None]], key: str
    ) -> bool:
        """Whether the caller's key has a row (a refused run asks: is this a retry?)."""
        label = "+".join(sorted({c[0] for c in calls}))
        person_id, who = (
            (actor.person_id, actor.label) if isinstance(actor, Actor) else (None, actor)
        )
        with self.engine.connect() as conn:
            scoped = idempotency.Key(idempotency.scope(conn, person_id, who), label, key)
            return idempotency.stored(conn, scoped)

    def _claim(
        self,
        calls: Sequence[tuple[str, dict[str, Any] | None]],
        actor: str | Actor,
        label: str,
        key: str,
        fingerprint: idempotency.Fingerprint | None = None,
    ) -> list[Result] | tuple[idempotency.Key, str]:
        """The stored results of this caller's first request with ``key``, or the
        claim (key, token) to run it now. Waits (bounded) while the first runs."""
        if fingerprint is None:
            fingerprint = self._check_key(calls, key)
        person_id, who = (
            (actor.person_id, actor.label) if isinstance(actor, Actor) else (None, actor)
        )
        deadline = time.monotonic() + self.key_wait_seconds
        pause, raced = 0.02, 0
        while True:
            try:
                with write_connection(self.engine) as conn, conn.begin():
                    scoped = idempotency.Key(idempotency.scope(conn, person_id, who), label, key)
                    got = idempotency.claim(conn, scoped, fingerprint, self.clock.now(), _key_ttl())
            except IntegrityError:
                raced += 1  # another request inserted the key first: read it again (its
                if raced < 3:  # insert committed before ours failed, so the read finds it)
                    continue
                raise
            raced = 0
            if isinstance(got, idempotency.Claimed):
                return scoped, got.token
            if isinstance(got, idempotency.Done):
                return list(got.result["results"])
            if time.monotonic() >= deadline:
                raise KeyInProgress(
                    f"{label}: the first request with idempotency key {key!r} is still in "
                    "progress; retry with the same key in a moment for its result",
                    field="key",
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _release(self, scoped: idempotency.Key, token: str) -> None:
        try:
            with write_connection(self.engine) as conn, conn.begin():
                idempotency.release(conn, scoped, token)
        except Exception:  # the database is gone: the claim's lease frees the key later
            log.warning("could not release idempotency key %r; its lease will", scoped.key,
                        exc_info=True)

    @staticmethod
    def _handle(
        uow: UnitOfWork, name: str, data: dict[str, Any] | None,
        typed: dict[str, Any] | None = None,
    ) -> Result:  # fmt: skip
        spec = REGISTRY[name]
        if spec.roles is not None:
            uow.require_role(*spec.roles)
        try:
            # read through the contract on the handler's first read, after its role check
            # (or already read, without a refusal, for the idempotency key's fingerprint)
            result = spec.handler(uow, Args(name, data, spec.contract, typed))
        except BaseException:
            uow.finish(ok=False)
            raise
        uow.finish(ok=True)
        return result




class _KeyTaken(Exception):
    """The key already has a row: this run is rolled back and the row decides."""


class _Abandon(Exception):
    def __init__(self, outcomes: list[Result | QuorumError]) -> None:
        self.outcomes = outcomes


def _key_ttl(settings: Settings | None = None) -> dt.timedelta:
    return dt.timedelta(hours=(settings or get_settings()).idempotency_key_hours)


def _canonical(
    calls: Sequence[tuple[str, dict[str, Any] | None]],
    typed: list[dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Each argument as the command's contract reads it ("10,000" and "£10k" are one
    amount), by field name (``<n>.<command>.<field>`` in a batch); the arguments as
    sent when the contract refuses them (the command will be refused too).
    ``typed``: each call's contract reading is added to it (None when refused)."""
    out: dict[str, Any] = {}
    for n, (name, data) in enumerate(calls, 1):
        try:
            values = REGISTRY[name].contract.read(data or {})
            if typed is not None:
                typed.append(values)
        except QuorumError:
            if typed is not None:
                typed.append(None)
            values = {str(k): v for k, v in (data or {}).items()}
        prefix = f"{n}.{name}." if len(calls) > 1 else ""
        out.update({prefix + k: _plain(v) for k, v in values.items()})
    return out


def _plain(value: Any) -> Any:
    """A value as JSON the same in every process (sets sorted, models dumped)."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _short(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig else str(exc)


def _refuse_malformed(key: str) -> None:
    """Refuse a malformed idempotency key (before anything asks the database about it)."""
    if not 0 < len(key) <= KEY_MAX or not key.isprintable():
        raise ValidationError(
            f"idempotency key: 1 to {KEY_MAX} printable characters (e.g. a UUID); "
            f"this one has {len(key)}" + ("" if key.isprintable() else ", some not printable"),
            field="key",
        )
