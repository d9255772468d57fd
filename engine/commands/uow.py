"""The unit of work a handler sees: one transaction, the actor, the clock, the
reference data, and the places to put audit events and outgoing messages.

The bus (:mod:`engine.commands.service`) makes one per command and commits
what it collected; handlers take it as their first argument.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, bindparam, insert, select
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine.commands.args import Args
from engine.domain.actor import SYSTEM, Actor
from engine.domain.clock import Clock
from engine.domain.errors import ConflictError, PermissionDenied, QuorumError
from engine.store import audit, directory, ledger
from engine.store.directory import Directory
from engine.store.models import MovementKind, Programme, TableModel
from engine.store.rawsql import RawStatement
from workflows.base import Transition, Workflow

# tables whose ``state`` column a workflow owns: table -> Workflow.name
STATEFUL: dict[str, str] = {
    "bid": "bid",
    "round": "round",
    "meeting": "meeting",
    "milestone": "milestone",
    "grant_award": "grant",
    "delegated_decision": "delegated decision",
    "grant_return": "return",
    "recovery": "recovery",
    "deposit": "deposit",
    "role_change": "role change",
    "action": "action",
    "risk": "risk",
    "accountable_body_change": "accountable body change",
    "advance_payment": "advance",
    "offer_letter": "offer letter",
    "grant_condition": "condition",
}


def inserted_id(result: CursorResult[Any]) -> int:
    """The id the database gave the one row an INSERT wrote. SQLAlchemy types
    ``inserted_primary_key`` as optional (None for a statement that is not a
    single-row INSERT), so it is read here once instead of at every insert."""
    key = result.inserted_primary_key
    if key is None:
        raise TypeError("inserted_id: not a single-row INSERT")
    return int(key[0])


class StateNotFromWorkflow(TypeError):
    """A write of a ``state`` that no workflow step produced: a programming error."""


@dataclass
class RunState:
    """Shared by the commands of one transaction."""

    directory: Directory
    changed: bool = False  # some command changed reference data
    stale: bool = False  # ...and the snapshot above predates it


@dataclass(frozen=True)
class ProgrammePolicy:
    """What a programme says about paying its grants and signing for it: a payment
    asks three times (returns late, offer accepted, second factor), so a command
    reads it once (:meth:`UnitOfWork.programme_policy`)."""

    id: int
    name: str
    no_payment_while_returns_late: bool
    offer_acceptance_required: bool
    second_factor: dict[str, list[str]]


_PROG_T = Programme.__table__
_POLICY = select(
    _PROG_T.c.id, _PROG_T.c.name, _PROG_T.c.no_payment_while_returns_late,
    _PROG_T.c.offer_acceptance_required, _PROG_T.c.second_factor,
).where(_PROG_T.c.id == bindparam("programme_id"))  # built once: every payment asks


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
    messages: list[dict[str, Any]] = field(default_factory=list)
    movements: list[dict[str, Any]] = field(default_factory=list)  # booked, for the audit event
    _session: Session | None = None
    _policies: dict[int, ProgrammePolicy] = field(default_factory=dict)

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

    def pot_programme(self, pot_id: int) -> int:
        """The programme a pot belongs to (from the cached directory)."""
        return next(p.programme_id for p in self.directory.pots if p.id == pot_id)

    def programme_policy(self, programme_id: int) -> ProgrammePolicy:
        """The programme's payment and signing rules, read once per command (a
        command that changes them does not ask for them afterwards)."""
        policy = self._policies.get(programme_id)
        if policy is None:
            row = self.conn.execute(_POLICY, {"programme_id": programme_id}).one()
            policy = ProgrammePolicy(row.id, row.name, bool(row.no_payment_while_returns_late),
                                     bool(row.offer_acceptance_required),
                                     row.second_factor or {})
            self._policies[programme_id] = policy
        return policy

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

    def require_scope(
        self, organisation_id: int, what: str, missing: QuorumError | None = None
    ) -> None:
        """A sponsor acts only for its own authority; officers act for all. ``missing``:
        the refusal of an item the actor may not see, the same as if it did not exist."""
        if self.actor.roles & {"officer", "director", SYSTEM}:
            return
        if self.actor.organisation_id != organisation_id:
            if missing is not None:
                raise missing
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
        """Ask the item's workflow whether ``trigger`` may fire now; the new state
        (a check only: to write it, :meth:`fire` the step)."""
        return workflow.check(trigger, state, self._roles(), item=ref)

    def fire(
        self,
        workflow: Workflow,
        trigger: str,
        state: str,
        ref: str,
        context: object = None,
        *,
        back_to: str | None = None,
    ) -> Transition:
        """Fire ``trigger`` on an item in ``state`` as this actor (role, state and the
        step's guard on ``context``): the Transition to give :meth:`update_versioned`."""
        return workflow.fire(state, trigger, self._roles(), context, item=ref, back_to=back_to)

    def fire_many(self, workflow: Workflow, trigger: str, examples: dict[str, str]) -> Transition:
        """One step for many items (each state -> an item in it), for a set-based UPDATE."""
        return workflow.fire_many(examples, trigger, self._roles())

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
        self,
        model: type[TableModel],
        row_id: int,
        seen: int,
        values: dict[str, Any],
        ref: str,
        transition: Transition | None = None,
    ) -> int:
        """UPDATE ... SET values, version = seen + 1 WHERE id AND version = seen.
        A row changed meanwhile is a conflict; returns the new version.

        ``values`` never carries ``state``: a new state comes only from the
        ``transition`` the item's workflow fired (:meth:`fire`), and is written
        only if the row is still in the state it was fired from."""
        if "state" in values:
            raise StateNotFromWorkflow(
                f"{self.command}: {ref}: state is written only by a workflow step; "
                "fire the step (UnitOfWork.fire) and pass its Transition, not a state value"
            )
        table = model.__table__
        params = {**values, "_id": row_id, "_seen": seen}
        source = None
        if transition is not None:
            owner = STATEFUL.get(table.name)
            if owner != transition.workflow:
                raise StateNotFromWorkflow(
                    f"{self.command}: {ref}: a {transition.workflow} step cannot set the state "
                    f"of a {table.name} row"
                )
            if len(transition.sources) != 1:
                raise StateNotFromWorkflow(
                    f"{self.command}: {ref}: a bulk transition is written by its own UPDATE"
                )
            if transition.moves:
                params["state"] = transition.dest
                params["_from"] = source = transition.sources[0]
        columns = tuple(sorted(k for k in params if not k.startswith("_")))
        stmt = _versioned_update(table, columns, source is not None)
        try:
            rowcount = stmt.execute(self.conn, params).rowcount
        except self.conn.dialect.loaded_dbapi.IntegrityError as exc:  # as through SQLAlchemy
            raise IntegrityError(str(stmt.stmt), params, exc) from None
        if rowcount != 1:
            raise ConflictError(
                f"{ref} was changed by someone else at the same time; nothing was saved — "
                "reload and try again",
                item=ref,
            )
        return seen + 1

    # --- effects -------------------------------------------------------
    def record(
        self,
        item_ref: str,
        before: dict[str, Any],
        after: dict[str, Any],
        reason: str = "",
        command: str | None = None,
    ) -> None:
        self.events.append(
            audit.PendingEvent(command or self.command, item_ref, before, after, reason)
        )

    def book(
        self,
        pot_id: int,
        kind: MovementKind,
        amount_pence: int,
        booked_on: dt.date,
        item_ref: str | None,
        grant_id: int | None = None,
        note: str = "",
    ) -> None:
        """Book a money movement (the only way handlers write one): the audit event
        of this command records it, so ``quorum audit verify`` can re-derive the
        ledgers."""
        self.movements.append(
            ledger.book(self.conn, pot_id, kind, amount_pence, booked_on, item_ref, grant_id,
                        note)  # fmt: skip
        )

    def audit_events(self) -> list[audit.PendingEvent]:
        """The events to chain: the movements booked go with the last event
        (a command that booked money without recording an event gets one)."""
        if self.movements:
            if not self.events:
                self.record(self.movements[0]["item_ref"] or self.command, {}, {})
            last = self.events[-1]
            last.money = [*(last.money or []), *self.movements]
            self.movements = []
        return self.events

    def notify(
        self,
        *,
        key: str,
        to: str,
        template: str,
        subject: str,
        context: dict[str, Any],
        channel: str = "email",
        item: str = "",
        link: str = "",
    ) -> None:
        """Queue a message (written at commit with its in-app notice when ``to`` is a
        person's address: engine/store/notices.py); ``item``/``link``: what it is about
        and that item's page, for the notice."""
        self.messages.append(
            {
                "key": key,
                "to_addr": to,
                "template": template,
                "subject": subject,
                "context": context,
                "channel": channel,
                "item": item,
                "link": link,
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


@cache
def _versioned_update(
    table: Table, columns: tuple[str, ...], from_state: bool = False
) -> RawStatement:
    """UPDATE table SET <columns>, version = version + 1 WHERE id = :_id AND version = :_seen
    (and, for a transition, the row is still in the state it was fired from), built once
    per (table, columns); sent straight to the driver (engine/store/rawsql.py: every
    transition runs one; each value converted as its column's type says)."""
    where = [table.c.id == bindparam("_id"), table.c.version == bindparam("_seen")]
    if from_state:
        where.append(table.c.state == bindparam("_from"))
    return RawStatement(
        table.update()
        .where(*where)
        .values({**{c: bindparam(c, type_=table.c[c].type) for c in columns},
                 "version": table.c.version + 1})
    )  # fmt: skip


@cache
def insert_into(model: type[TableModel]) -> Insert:
    """INSERT INTO the model's table, built once: give the row as ``execute``'s
    parameters (``conn.execute(insert_into(Payment), {...})``). An ORM
    ``insert(Model).values(...)`` made per call costs its coercions, cache key
    and bulk-persistence pass each time (more than SQLite takes to run it)."""
    return insert(model.__table__)
