"""A grant's whole lifecycle, three ways, interleaved in one run (issue 15).

    python -m bench.lifecycle [--n 20] [--rounds 5] [--db sqlite,postgresql]
                              [--out bench/results/lifecycle.json]

The lifecycle, as a user sees it (36 commands; 34 business state changes,
counting a round opened and a bid or return sent in; the issue counted 32):
open a round, a sponsor submits a bid, close the round, score it, schedule a
Board meeting, take attendance, approve the bid (a grant is made); four
milestones each evidenced by the sponsor, verified by an officer and paid by
finance (another person: four eyes); eight quarterly savings returns each
sent by the sponsor and accepted by an officer; close the grant.

1. **Quorum**: those 36 commands through ``Quorum.execute`` (authorisation,
   workflow check, rules, audit hash chain, outbox, one transaction each),
   every command with an idempotency key, as the web forms and the API send
   them. Afterwards the audit chain is verified.
2. **SpiffWorkflow** (``spiffworkflow`` 3.2, BPMN): the same process as a BPMN
   model of 36 user tasks; a web app using it keeps each case's workflow as
   JSON in its database, so each step loads the case's JSON, deserialises it,
   completes the ready user task in code, runs the engine steps, serialises it
   and saves it, in the same transaction as the step's business write (the
   floor's, below).
3. **Floor**: bare ``transitions`` state machines (one per kind of item, built
   once) and SQLAlchemy Core doing the same business writes (the item read,
   its state changed with its version, the row a step creates), one
   transaction per step, with no authorisation, audit, outbox, idempotency
   or validation. Nothing useful can run with less; it is what Quorum's
   guarantees are measured against. It writes exactly Quorum's business
   rows, step by step, and nothing more (a true floor: issue 15 item 5):
   scoring marks earlier scores not current and writes the score and one row
   per criterion; scheduling writes the meeting and its members; attendance
   updates each member, replaces the observers and bumps the meeting's
   version; the decision writes the grant, links the milestones to it, the
   commitment, the offer letter and the decision; verifying updates the
   evidence; each payment writes the payment and its money movement; a
   return is one row with its figures, as Quorum's ``grant_return``. Counted
   at the driver (INSERT, UPDATE and DELETE statements, outside Quorum's
   audit chain, idempotency key, notifications and outbox), a lifecycle
   writes 73 business rows through Quorum and 73 through the floor. The
   floor reads less: 24 business SELECTs (the item each state change moves)
   to Quorum's 136 (the rules, the money checks, the guards, the actor).

SQL statements are counted at the driver (``counting``): every statement the
database runs, BEGIN and COMMIT included, so what Quorum sends straight to the
driver (engine/store/rawsql.py) counts too (SQLAlchemy's cursor events miss
it). ``quorum_statements_per_command`` gives each command's share of one
lifecycle; tests/test_lifecycle_statements.py holds them to a budget.

Each round runs every variant on a fresh database, in turn (so load on the
machine falls on all of them alike), and records lifecycles/s, transitions/s
and SQL statements per lifecycle; ratios are taken within a round, and the
summary gives min/median/max over rounds. Targets (issue 15): Quorum at least
3x SpiffWorkflow and at least 0.6x the floor, same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import (
    JSON,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session
from transitions import Machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL server of the tests
if __package__ in (None, ""):  # run as a file: python bench/lifecycle.py
    sys.path.insert(0, str(ROOT))

from pgserver import PgServer  # noqa: E402

from bench.bench_commands import machine  # noqa: E402
from bench.common import code_version  # noqa: E402
from engine.commands.service import Quorum  # noqa: E402
from engine.domain.clock import FixedClock  # noqa: E402
from engine.store import audit  # noqa: E402
from engine.store.db import create_schema, make_engine  # noqa: E402
from engine.store.search import fts5_own_statement  # noqa: E402

TARGET_VS_SPIFF = 3.0
TARGET_VS_FLOOR = 0.6
OFFICER = "olive@bench.example"
FINANCE = "fay@bench.example"
SPONSOR = "sam@bench.example"
MEMBERS = ["Cllr Adams", "Cllr Brook", "Cllr Carter"]
MILESTONES = 4
QUARTERS = [dt.date(2011, 6, 30), dt.date(2011, 9, 30), dt.date(2011, 12, 31),
            dt.date(2012, 3, 31), dt.date(2012, 6, 30), dt.date(2012, 9, 30),
            dt.date(2012, 12, 31), dt.date(2013, 3, 31)]

# The lifecycle as (step, kind of item, transition or None): the 36 commands. A
# transition is a business state change; schedule_meeting and record_attendance
# change no business item's state (they are the meeting's own record).
STEPS: list[tuple[str, str, str | None]] = [
    ("open_round", "round", "open"),
    ("submit_bid", "bid", "submit"),
    ("close_round", "round", "close"),
    ("score_round", "bid", "score"),
    ("schedule_meeting", "meeting", None),
    ("record_attendance", "meeting", None),
    ("decide", "bid", "approve"),
]
for _ in range(MILESTONES):
    STEPS += [
        ("submit_evidence", "milestone", "evidence"),
        ("verify_milestone", "milestone", "verify"),
        ("release_payment", "milestone", "pay"),
    ]
for _ in QUARTERS:
    STEPS += [("submit_return", "return", "submit"), ("accept_return", "return", "accept")]
STEPS.append(("close_grant", "grant", "close"))
# business state changes, creations included (a round opened, a bid or return sent in)
TRANSITIONS = sum(1 for _, _, t in STEPS if t is not None)
assert len(STEPS) == 36 and TRANSITIONS == 34, (len(STEPS), TRANSITIONS)


def counting(engine: Engine) -> list[int]:
    """A counter of the SQL statements the database runs for ``engine`` from now on.

    Counted at the driver, not with SQLAlchemy's cursor events, which miss what
    Quorum sends straight to the driver (engine/store/rawsql.py) and the BEGIN
    and COMMIT of every transaction. SQLite: every statement it starts
    (``set_trace_callback``: BEGIN, COMMIT, each row of an executemany) but not
    the programs of triggers (engine/store/models.py sweep_change), part of the
    statement that fired them, as on PostgreSQL: SQLite traces each as the
    statement that fired it again, values and all, which no statement sent does
    twice in a row here.
    PostgreSQL: every statement through psycopg's cursors (each row of an
    executemany), plus each transaction's BEGIN and COMMIT or ROLLBACK.
    The pool is emptied so every connection used afterwards is counted."""
    count = [0]

    def one(*_: Any) -> None:
        count[0] += 1

    if engine.dialect.name == "sqlite":

        last = [""]

        def sent(sql: str) -> None:
            # a trigger's program is traced as the statement that fired it, again (its
            # text with its values): part of that statement, as on PostgreSQL
            if fts5_own_statement(sql):  # a search index's own, inside its trigger's
                return
            if sql != last[0]:
                count[0] += 1
            last[0] = sql

        @event.listens_for(engine, "connect")
        def _trace(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.set_trace_callback(sent)

    else:
        class Counted(psycopg.Cursor):
            def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
                one()
                return super().execute(query, params, **kw)

            def executemany(self, query: Any, params_seq: Any, **kw: Any) -> Any:
                def rows() -> Any:
                    for row in params_seq:
                        one()
                        yield row

                return super().executemany(query, rows(), **kw)

        @event.listens_for(engine, "connect")
        def _cursor(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.cursor_factory = Counted

        for name in ("begin", "commit", "rollback"):
            event.listen(engine, name, one)
    engine.dispose()
    return count


# ---------------------------------------------------------------- 1. Quorum


def quorum_setup(url: str) -> tuple[Quorum, Engine, FixedClock]:
    clock = FixedClock(dt.date(2011, 3, 1))
    engine = make_engine(url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute_batch(
        [
            ("create_programme", {"name": "Bench", "pots": {"Projects": "900,000,000"}}),
            # the 36 commands of the 2011 lifecycle: no offer letter waits on acceptance
            # (issue 16 added it after these were measured; letters are still issued)
            ("configure_payments", {"programme": "Bench", "offer_acceptance_required": "no"}),
            ("register_organisation", {"name": "Bench DC", "population": 50000}),
            ("register_person", {"name": "Olive", "email": OFFICER, "roles": ["officer"]}),
            ("register_person", {"name": "Fay", "email": FINANCE, "roles": ["finance"]}),
            (
                "register_person",
                {"name": "Sam", "email": SPONSOR, "roles": ["sponsor"],
                 "organisation": "Bench DC"},
            ),
        ]
        + [
            ("register_person", {"name": m, "email": f"{m.split()[1].lower()}@bench.example",
                                 "roles": ["board_member"]})
            for m in MEMBERS
        ],
        "system",
    )
    return q, engine, clock


def quorum_lifecycle(q: Quorum, clock: FixedClock, i: int) -> None:
    """The 36 commands of one lifecycle (``i`` makes its refs unique)."""
    n = 0

    def do(command: str, args: dict, actor: str) -> dict:
        nonlocal n
        n += 1
        return q.execute(command, args, actor, key=f"life-{i}-{n}")

    clock.set(dt.date(2011, 3, 1))
    rnd = f"R{i}"
    do("open_round", {"ref": rnd, "name": f"Round {i}", "pot": "Projects",
                      "closes": "2011-03-31", "rules": "efficiency-bids-2011"}, OFFICER)
    clock.set(dt.date(2011, 3, 10))
    bid = do("submit_bid", {
        "title": f"Shared service {i}", "sponsor": "Bench DC", "grant": "100,000",
        "savings": "2,137,416 5 years", "partnership": "yes", "builds_on_proven": "yes",
        "round": rnd,
        "milestones": [
            {"outcome": f"Outcome {k + 1}", "due": f"2011-{6 + k:02d}-30", "payment": "25,000"}
            for k in range(MILESTONES)
        ],
    }, SPONSOR)["ref"]
    clock.set(dt.date(2011, 4, 1))
    do("close_round", {"round": rnd}, OFFICER)
    do("score_round", {"round": rnd}, OFFICER)
    meeting = f"BOARD-{i}"
    do("schedule_meeting", {"ref": meeting, "title": "Board", "date": "2011-04-20",
                            "quorum": 2, "members": MEMBERS}, OFFICER)
    clock.set(dt.date(2011, 4, 20))
    do("record_attendance", {"meeting": meeting, "present": MEMBERS}, OFFICER)
    grant = do("decide", {"meeting": meeting, "item": bid, "outcome": "approve"},
               OFFICER)["grant"]
    clock.set(dt.date(2011, 10, 1))
    for k in range(1, MILESTONES + 1):
        do("submit_evidence", {"grant": grant, "milestone": k, "summary": "done"}, SPONSOR)
        do("verify_milestone", {"grant": grant, "milestone": k}, OFFICER)
        do("release_payment", {"grant": grant, "milestone": k}, FINANCE)
    clock.set(dt.date(2013, 4, 15))
    for end in QUARTERS:
        ret = do("submit_return", {"grant": grant, "kind": "savings",
                                   "period_end": end.isoformat(),
                                   "savings_delivered": "10,000",
                                   "savings_anticipated": "12,000"}, SPONSOR)["return"]
        do("accept_return", {"return": ret}, OFFICER)
    do("close_grant", {"grant": grant, "reason": "delivered"}, OFFICER)
    assert n == len(STEPS), n


def statements_per_command(url: str) -> list[tuple[str, int]]:
    """Each command of one lifecycle (after a warm-up one) with the statements the
    database ran for it, in order (tests/test_lifecycle_statements.py holds them)."""
    q, engine, clock = quorum_setup(url)
    quorum_lifecycle(q, clock, 0)
    count = counting(engine)
    out: list[tuple[str, int]] = []
    run = q.execute

    def execute(name: str, *args: Any, **kw: Any) -> Any:
        before = count[0]
        try:
            return run(name, *args, **kw)
        finally:
            out.append((name, count[0] - before))

    q.execute = execute  # type: ignore[method-assign]
    quorum_lifecycle(q, clock, 1)
    engine.dispose()
    return out


def run_quorum(url: str, n: int) -> dict:
    q, engine, clock = quorum_setup(url)
    quorum_lifecycle(q, clock, 0)  # warm-up (caches, rule sets), not timed
    count = counting(engine)
    start = time.perf_counter()
    for i in range(1, n + 1):
        quorum_lifecycle(q, clock, i)
    seconds = time.perf_counter() - start
    statements = count[0]
    with Session(engine) as session:
        checked = audit.verify(session)
    engine.dispose()
    if not checked.ok:
        raise AssertionError(f"the audit chain does not verify: {checked}")
    return result(n, seconds, statements)


# ---------------------------------------------------------------- 3. floor (and Spiff's writes)

META = MetaData()
ITEM = Table(  # every business item: its kind, state and version
    "item", META,
    Column("id", Integer, primary_key=True),
    Column("ref", String(40), unique=True, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("state", String(30), nullable=False),
    Column("version", Integer, nullable=False),
    Column("parent_id", Integer),
    Column("grant_id", Integer),  # a milestone's grant, linked when the grant is made
    Column("amount_pence", Integer),
    Column("on_date", Date),
)
RECORD = Table(  # the rows a step creates (a score, a decision, a payment, ...)
    "record", META,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, nullable=False, index=True),
    Column("what", String(30), nullable=False),
    Column("name", String(80)),  # which one of several (a criterion, a member)
    Column("current", Integer, nullable=False, default=1),
    Column("body", JSON, nullable=False),
)
CRITERIA = ["efficiency", "partnership", "proven"]
CASE = Table(  # SpiffWorkflow: each case's serialised workflow
    "spiff_case", META,
    Column("id", Integer, primary_key=True),
    Column("ref", String(40), unique=True, nullable=False),
    Column("workflow", Text, nullable=False),
)

# the floor's state machines, one per kind of item, built once (as Quorum's are)
MACHINES: dict[str, list[dict[str, Any]]] = {
    "round": [{"trigger": "close", "source": "open", "dest": "closed"}],
    "bid": [{"trigger": "score", "source": "submitted", "dest": "scored"},
            {"trigger": "approve", "source": "scored", "dest": "approved"}],
    "milestone": [{"trigger": "evidence", "source": "planned", "dest": "evidenced"},
                  {"trigger": "verify", "source": "evidenced", "dest": "verified"},
                  {"trigger": "pay", "source": "verified", "dest": "paid"}],
    "return": [{"trigger": "accept", "source": "submitted", "dest": "accepted"}],
    "grant": [{"trigger": "close", "source": "active", "dest": "closed"}],
}


class _Model:
    state: str


def _machines() -> dict[str, Machine]:
    out = {}
    for kind, moves in MACHINES.items():
        states = sorted({m["source"] for m in moves} | {m["dest"] for m in moves})
        out[kind] = Machine(model=None, states=states, transitions=moves,
                            initial=moves[0]["source"], auto_transitions=False)
    return out


FLOOR_MACHINES = _machines()


def _move(conn: Any, kind: str, ref: str, trigger: str) -> int:
    """Read the item, ask its machine, write the new state with its version."""
    row = conn.execute(select(ITEM.c.id, ITEM.c.state, ITEM.c.version)
                       .where(ITEM.c.ref == ref)).one()
    model = _Model()
    FLOOR_MACHINES[kind].add_model(model, initial=row.state)
    try:
        getattr(model, trigger)()
    finally:
        FLOOR_MACHINES[kind].remove_model(model)
    done = conn.execute(update(ITEM).where(ITEM.c.id == row.id, ITEM.c.version == row.version)
                        .values(state=model.state, version=row.version + 1))
    assert done.rowcount == 1
    return int(row.id)


def _new(conn: Any, ref: str, kind: str, state: str, parent: int | None = None,
         amount: int | None = None) -> int:
    return int(conn.execute(insert(ITEM).values(ref=ref, kind=kind, state=state, version=1,
                                                parent_id=parent, amount_pence=amount))
               .inserted_primary_key[0])


def _record(conn: Any, item_id: int, what: str, body: dict, name: str | None = None) -> None:
    conn.execute(insert(RECORD).values(item_id=item_id, what=what, name=name, body=body))


def _revise(conn: Any, item_id: int, what: str, name: str | None = None, **values: Any) -> None:
    """Update the ``what`` rows of an item (one by ``name``), as Quorum updates its own."""
    where = [RECORD.c.item_id == item_id, RECORD.c.what == what]
    if name is not None:
        where.append(RECORD.c.name == name)
    conn.execute(update(RECORD).where(*where).values(**values))


def floor_steps(i: int) -> list[Callable[[Any], None]]:
    """One callable per step, each given an open transaction."""
    rnd, bid, grant, meeting = f"R{i}", f"B{i}", f"G{i}", f"M{i}"
    ms = [f"{grant}/{k}" for k in range(1, MILESTONES + 1)]
    rets = [f"{grant}/Q{k}" for k in range(1, len(QUARTERS) + 1)]
    ids: dict[str, int] = {}

    def open_round(c: Any) -> None:
        _new(c, rnd, "round", "open")

    def submit(c: Any) -> None:
        ids["bid"] = _new(c, bid, "bid", "submitted", amount=10_000_000)
        for ref in ms:
            _new(c, ref, "milestone", "planned", ids["bid"], 2_500_000)

    def close_round(c: Any) -> None:
        _move(c, "round", rnd, "close")

    def score(c: Any) -> None:
        # as Quorum: earlier scores of the bid no longer current, the score and a row
        # per criterion, the bid's state
        _revise(c, ids["bid"], "score", current=0)
        _record(c, ids["bid"], "score", {"points": 7, "of": 7})
        for name in CRITERIA:
            _record(c, ids["bid"], "criterion", {"points": 2}, name)
        _move(c, "bid", bid, "score")

    def schedule(c: Any) -> None:
        ids["meeting"] = _new(c, meeting, "meeting", "scheduled")
        for name in MEMBERS:
            _record(c, ids["meeting"], "member", {"present": None}, name)

    def attend(c: Any) -> None:
        # as Quorum: each member's attendance, the observers replaced, the meeting's version
        for name in MEMBERS:
            _revise(c, ids["meeting"], "member", name, body={"present": True})
        c.execute(delete(RECORD).where(RECORD.c.item_id == ids["meeting"],
                                       RECORD.c.what == "observer"))
        c.execute(update(ITEM).where(ITEM.c.id == ids["meeting"])
                  .values(version=ITEM.c.version + 1))

    def decide(c: Any) -> None:
        # as Quorum: the grant, its milestones linked to it, the commitment, the
        # offer letter, the decision, the bid's state
        ids["grant"] = _new(c, grant, "grant", "active", ids["bid"], 10_000_000)
        c.execute(update(ITEM).where(ITEM.c.parent_id == ids["bid"],
                                     ITEM.c.kind == "milestone")
                  .values(grant_id=ids["grant"]))
        _record(c, ids["grant"], "commitment", {"amount_pence": 10_000_000})
        _record(c, ids["grant"], "offer_letter", {"state": "issued"})
        _record(c, _move(c, "bid", bid, "approve"), "decision", {"outcome": "approve"})

    def pay(c: Any, ref: str) -> None:  # as Quorum: the payment and its money movement
        milestone = _move(c, "milestone", ref, "pay")
        _record(c, milestone, "payment", {"amount_pence": 2_500_000})
        _record(c, ids["grant"], "movement", {"amount_pence": -2_500_000})

    steps: list[Callable[[Any], None]] = [open_round, submit, close_round, score, schedule,
                                          attend, decide]
    for ref in ms:
        steps += [
            lambda c, r=ref: _record(c, _move(c, "milestone", r, "evidence"), "evidence",
                                     {"summary": "done"}),
            lambda c, r=ref: _revise(c, _move(c, "milestone", r, "verify"), "evidence",
                                     body={"summary": "done", "verified": True}),
            lambda c, r=ref: pay(c, r),
        ]
    for ref in rets:  # a return is one row carrying its figures, as Quorum's grant_return
        steps += [
            lambda c, r=ref: _new(c, r, "return", "submitted", ids["grant"], 1_000_000),
            lambda c, r=ref: _move(c, "return", r, "accept"),
        ]
    steps.append(lambda c: _move(c, "grant", grant, "close"))
    assert len(steps) == len(STEPS)
    return steps


def floor_engine(url: str) -> Engine:
    engine = create_engine(url) if not url.startswith("sqlite") else make_engine(url)
    META.create_all(engine)
    return engine


def run_floor(url: str, n: int) -> dict:
    engine = floor_engine(url)
    for step in floor_steps(0):
        with engine.begin() as c:
            step(c)
    count = counting(engine)
    start = time.perf_counter()
    for i in range(1, n + 1):
        for step in floor_steps(i):
            with engine.begin() as c:
                step(c)
    seconds = time.perf_counter() - start
    engine.dispose()
    return result(n, seconds, count[0])


# ---------------------------------------------------------------- 2. SpiffWorkflow


def bpmn() -> bytes:
    """The lifecycle as a BPMN process: 36 user tasks in sequence."""
    tasks = "".join(f'<bpmn:userTask id="t{k}" name="{name}"/>'
                    for k, (name, _, _) in enumerate(STEPS))
    ids = ["start"] + [f"t{k}" for k in range(len(STEPS))] + ["end"]
    flows = "".join(f'<bpmn:sequenceFlow id="f{k}" sourceRef="{a}" targetRef="{b}"/>'
                    for k, (a, b) in enumerate(zip(ids, ids[1:], strict=False)))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" '
        'targetNamespace="http://bpmn.io/schema/bpmn">'
        f'<bpmn:process id="lifecycle" isExecutable="true"><bpmn:startEvent id="start"/>'
        f'{tasks}<bpmn:endEvent id="end"/>{flows}</bpmn:process></bpmn:definitions>'
    ).encode()


def spiff_spec() -> Any:
    parser = BpmnParser()
    parser.add_bpmn_str(bpmn())
    return parser.get_spec("lifecycle")


SERIALIZER = BpmnWorkflowSerializer()


def spiff_lifecycle(engine: Engine, spec: Any, i: int) -> None:
    case = f"C{i}"
    wf = BpmnWorkflow(spec)
    wf.do_engine_steps()
    with engine.begin() as c:
        c.execute(insert(CASE).values(ref=case, workflow=SERIALIZER.serialize_json(wf)))
    for (name, _, _), step in zip(STEPS, floor_steps(i), strict=True):
        with engine.begin() as c:
            blob = c.execute(select(CASE.c.workflow).where(CASE.c.ref == case)).scalar_one()
            wf = SERIALIZER.deserialize_json(blob)
            task = wf.get_next_task(state=TaskState.READY, manual=True)
            assert task is not None and task.task_spec.bpmn_name == name, name
            task.data["by"] = OFFICER
            task.run()
            wf.do_engine_steps()
            step(c)
            c.execute(update(CASE).where(CASE.c.ref == case)
                      .values(workflow=SERIALIZER.serialize_json(wf)))
    assert wf.is_completed()


def run_spiff(url: str, n: int) -> dict:
    engine = floor_engine(url)
    spec = spiff_spec()
    spiff_lifecycle(engine, spec, 0)
    count = counting(engine)
    start = time.perf_counter()
    for i in range(1, n + 1):
        spiff_lifecycle(engine, spec, i)
    seconds = time.perf_counter() - start
    engine.dispose()
    return result(n, seconds, count[0])


# ---------------------------------------------------------------- the run


def result(n: int, seconds: float, statements: int) -> dict:
    return {
        "lifecycles": n,
        "seconds": round(seconds, 4),
        "lifecycles_per_s": round(n / seconds, 2),
        "transitions_per_s": round(n * TRANSITIONS / seconds, 1),
        "commands_per_s": round(n * len(STEPS) / seconds, 1),
        "sql_per_lifecycle": round(statements / n, 1),
    }


def spread(values: list[float]) -> dict:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


VARIANTS: dict[str, Callable[[str, int], dict]] = {
    "quorum": run_quorum, "spiffworkflow": run_spiff, "floor": run_floor,
}


def run_db(kind: str, n: int, rounds: int, tmp: Path, pg: PgServer | None) -> dict:
    per_round = []
    per_command: dict[str, float] = {}
    for r in range(rounds):
        row: dict[str, Any] = {"load_average": round(os.getloadavg()[0], 2)}
        for name, fn in VARIANTS.items():
            if kind == "sqlite":
                url = f"sqlite:///{tmp / f'{name}-{r}-{uuid.uuid4().hex[:6]}.db'}"
            else:
                assert pg is not None
                url = pg.create_database(f"bench_life_{name}_{uuid.uuid4().hex[:8]}")
            row[name] = fn(url, n)
        q = row["quorum"]["lifecycles_per_s"]
        row["quorum_vs_spiffworkflow"] = round(q / row["spiffworkflow"]["lifecycles_per_s"], 3)
        row["quorum_vs_floor"] = round(q / row["floor"]["lifecycles_per_s"], 3)
        if r == 0:  # Quorum's statements per command (one lifecycle, counted apart)
            url = (f"sqlite:///{tmp / f'steps-{uuid.uuid4().hex[:6]}.db'}" if kind == "sqlite"
                   else pg.create_database(f"bench_life_steps_{uuid.uuid4().hex[:8]}")
                   if pg is not None else "")  # fmt: skip
            steps: dict[str, list[int]] = {}
            for name, k in statements_per_command(url):
                steps.setdefault(name, []).append(k)
            per_command = {name: round(sum(v) / len(v), 1) for name, v in steps.items()}
        per_round.append(row)
        print(f"  {kind} round {r + 1}: quorum {q}/s, spiff "
              f"{row['spiffworkflow']['lifecycles_per_s']}/s, floor "
              f"{row['floor']['lifecycles_per_s']}/s; quorum/spiff "
              f"{row['quorum_vs_spiffworkflow']}, quorum/floor {row['quorum_vs_floor']} "
              f"(load {row['load_average']})", flush=True)
    summary = {
        name: {
            "lifecycles_per_s": spread([x[name]["lifecycles_per_s"] for x in per_round]),
            "transitions_per_s": spread([x[name]["transitions_per_s"] for x in per_round]),
            "sql_per_lifecycle": per_round[-1][name]["sql_per_lifecycle"],
        }
        for name in VARIANTS
    }
    vs_spiff = spread([x["quorum_vs_spiffworkflow"] for x in per_round])
    vs_floor = spread([x["quorum_vs_floor"] for x in per_round])
    return {
        "rounds": per_round,
        "quorum_statements_per_command": per_command,
        "summary": summary,
        "quorum_vs_spiffworkflow": vs_spiff,
        "quorum_vs_floor": vs_floor,
        "met": {
            f"quorum_at_least_{TARGET_VS_SPIFF}x_spiffworkflow": vs_spiff["median"]
            >= TARGET_VS_SPIFF,
            f"quorum_at_least_{TARGET_VS_FLOOR}x_floor": vs_floor["median"] >= TARGET_VS_FLOOR,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20, help="lifecycles per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/lifecycle.json")
    opts = ap.parse_args(argv)
    kinds = [k.strip() for k in opts.db.split(",") if k.strip()]
    out: dict[str, Any] = {
        "benchmark": "lifecycle",
        "machine": {**machine(), "loadavg_before": os.getloadavg()[0]},
        "code": code_version(),
        "lifecycle": {"commands": len(STEPS), "transitions": TRANSITIONS,
                      "steps": [s for s, _, _ in STEPS]},
        "n": opts.n,
        "targets": {"quorum_vs_spiffworkflow": TARGET_VS_SPIFF,
                    "quorum_vs_floor": TARGET_VS_FLOOR},
        "databases": {},
    }
    pg = None
    with tempfile.TemporaryDirectory(prefix="quorum-bench-life-") as tmp:
        try:
            if "postgresql" in kinds:
                pg = PgServer()
                pg.start()
            for kind in kinds:
                out["databases"][kind] = run_db(kind, opts.n, opts.rounds, Path(tmp), pg)
        finally:
            if pg is not None:
                pg.stop()
    out["machine"]["loadavg_after"] = os.getloadavg()[0]
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(out, indent=2) + "\n")
    for kind, r in out["databases"].items():
        s = r["summary"]
        print(f"{kind}: lifecycles/s median quorum {s['quorum']['lifecycles_per_s']['median']}, "
              f"spiffworkflow {s['spiffworkflow']['lifecycles_per_s']['median']}, floor "
              f"{s['floor']['lifecycles_per_s']['median']}; SQL per lifecycle "
              f"{s['quorum']['sql_per_lifecycle']} / {s['spiffworkflow']['sql_per_lifecycle']} / "
              f"{s['floor']['sql_per_lifecycle']}; quorum/spiff "
              f"{r['quorum_vs_spiffworkflow']}, quorum/floor {r['quorum_vs_floor']}; met "
              f"{r['met']}")
    print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
