"""The workflow is the only writer of ``state`` (issue 10, point 1).

- Reversing a delegated approval cancels the grant, releases the money and
  revokes the delegated decision, which can then no longer be endorsed.
- The scheduler's daily sweep expires a request past its expiry date (through
  the workflow's ``expire`` step, audited), once; a new request may follow.
- No module outside workflows/ writes a ``state`` column by hand (a static
  scan, itself tested on code that does), and the unit of work refuses, at
  run time, a ``state`` that no workflow step fired.
- The Board page offers *Decide* only where the bid's workflow allows it.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from moneykit import (
    CHAIR,
    MEMBERS,
    OFFICER,
    SPONSOR2,
    VICE1,
    assert_money_adds_up,
    bid_refs,
    dump,
)
from sqlalchemy import select
from sqlmodel import Session

from engine.commands.uow import STATEFUL, RunState, StateNotFromWorkflow, UnitOfWork
from engine.domain.actor import Actor
from engine.domain.clock import FixedClock
from engine.domain.errors import ConflictError, MoneyRuleBroken, NotFound, TransitionRefused
from engine.entry.scheduler import QuorumScheduler, settings
from engine.store import audit, directory
from engine.store.ledger import ledger
from engine.store.models import AuditEvent, Bid, DelegatedDecision, Grant, Outbox
from quorum_web.pages_board import item_forms
from rules.guards import PotCover, SchemeJudgement, judge
from workflows.bid import BID
from workflows.delegated import DELEGATED
from workflows.grant import GRANT

REPO = Path(__file__).resolve().parents[1]
REASONS = "the supplier's offer lapses before the June Board"
ALTERNATIVES = "wait for the June Board (offer lost); a smaller pilot (no savings)"


@pytest.fixture
def board(sqlite_url: str):
    from moneykit import money_board

    q, engine, clock = money_board(sqlite_url)
    yield q, engine, clock
    engine.dispose()


def request(q, bid: str) -> dict:
    return q.execute(
        "request_delegated_decision",
        # the 2011.1 scheme: the Chair and one Vice Chair approve (rules/delegation-2011.yaml)
        {"bid": bid, "reasons": REASONS, "alternatives": ALTERNATIVES, "scheme": "delegation-2011"},
        OFFICER,
    )


def sign(q, item: str, who: str) -> dict:
    return q.execute("sign", {"item": item, "decision": "approve"}, who)


def dd_row(engine, ref: str) -> DelegatedDecision:
    with Session(engine) as s:
        return s.execute(select(DelegatedDecision).where(DelegatedDecision.ref == ref)).scalar_one()


def state_of(engine, model, ref: str) -> str:
    with Session(engine) as s:
        return s.execute(select(model.state).where(model.ref == ref)).scalar_one()


def projects(engine):
    with Session(engine) as s:
        return next(line for line in ledger(s) if line.name == "Projects")


def events(engine, ref: str) -> list[tuple[str, dict]]:
    with Session(engine) as s:
        rows = s.execute(
            select(AuditEvent).where(AuditEvent.item_ref == ref).order_by(AuditEvent.seq)
        ).scalars()
        return [(e.command, json.loads(e.after)) for e in rows]


# ------------------------------------------------------------------ reversal revokes


def test_reversing_a_delegated_approval_revokes_it_and_releases_the_money(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2011, 5, 2))
    before = projects(engine)
    dd = request(q, bid)["ref"]
    sign(q, dd, CHAIR)
    approved = sign(q, dd, VICE1)
    assert approved["state"] == "approved"
    grant = approved["grant"]
    assert projects(engine).committed_pence == before.committed_pence + 3_000_000

    out = q.execute(
        "reverse_decision",
        {"decision": approved["decision"], "reason": "approved on a wrong figure"},
        OFFICER,
    )
    assert out["state"] == "submitted"  # where the bid was before the approval
    assert state_of(engine, Bid, bid) == "submitted"
    assert state_of(engine, Grant, grant) == "cancelled"
    after = projects(engine)  # the money is released: the pot is as it was
    assert (after.committed_pence, after.available_pence) == (
        before.committed_pence,
        before.available_pence,
    )
    assert_money_adds_up(engine)
    assert dd_row(engine, dd).state == "revoked"
    # another authority learns nothing of the cancelled grant: the 404 of a missing one
    with pytest.raises(NotFound, match=f"submit_return: grant: no grant '{grant}'"):
        q.execute(
            "submit_return",
            {"grant": grant, "kind": "progress", "period_end": "2011-06-30"},
            SPONSOR2,
        )
    assert events(engine, dd)[-1] == (
        "reverse_decision",
        {"state": "revoked", "reversed": approved["decision"], "by": out["decision"]},
    )
    reversal = events(engine, bid)[-1][1]
    assert reversal["delegated_decision"] == dd and reversal["released_pence"] == 3_000_000

    # the Board can no longer endorse it, and is told why
    q.execute(
        "schedule_meeting",
        {"ref": "BOARD-JUN", "title": "Board", "date": "2011-06-15", "quorum": 3,
         "members": MEMBERS},
        OFFICER,
    )  # fmt: skip
    clock.set(dt.date(2011, 6, 15))
    unchanged = dump(engine)
    with pytest.raises(TransitionRefused) as refused:
        q.execute("endorse", {"meeting": "BOARD-JUN", "item": dd}, OFFICER)
    assert f"endorse: item: {dd} was revoked: the approval it made was reversed" in str(
        refused.value
    )
    assert str(refused.value).endswith("so there is nothing to endorse")
    assert dump(engine) == unchanged
    # and its bid, awaiting a decision again, may be asked for afresh
    assert request(q, bid)["state"] == "awaiting_signatures"


def test_a_paid_grant_is_not_reversed_and_nothing_is_revoked(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2011, 5, 2))
    dd = request(q, bid)["ref"]
    sign(q, dd, CHAIR)
    approved = sign(q, dd, VICE1)
    with Session(engine) as s:  # pretend a payment went out: the reversal must refuse
        from engine.store.models import MoneyMovement, MovementKind

        g = s.execute(select(Grant).where(Grant.ref == approved["grant"])).scalar_one()
        s.add(MoneyMovement(pot_id=g.pot_id, kind=MovementKind.PAY.value, amount_pence=100,
                            booked_on=dt.date(2011, 5, 3), item_ref="PAY-X", grant_id=g.id))
        s.commit()  # fmt: skip
    with pytest.raises(MoneyRuleBroken, match="recover the money instead"):
        q.execute("reverse_decision", {"decision": approved["decision"], "reason": "x"}, OFFICER)
    assert dd_row(engine, dd).state == "approved"
    assert state_of(engine, Grant, approved["grant"]) == "active"


# ------------------------------------------------------------------ the daily sweep expires


def test_the_schedulers_daily_sweep_expires_a_lapsed_request_once(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2011, 5, 2))
    dd = request(q, bid)["ref"]
    assert dd_row(engine, dd).expires_on == dt.date(2011, 5, 30)
    sign(q, dd, CHAIR)  # one signature: not enough

    at = FixedClock(dt.datetime(2011, 5, 30, 7, 0, tzinfo=dt.UTC))  # its last day: still open
    job = QuorumScheduler(engine, clock=at, config=settings("07:00", "Europe/London", 3600))
    assert job.run_sweep()["delegated_expired"] == []
    assert dd_row(engine, dd).state == "awaiting_signatures"

    at.set(dt.datetime(2011, 5, 31, 7, 0, tzinfo=dt.UTC))  # the next morning's sweep
    summary = job.run_sweep()
    assert summary["delegated_expired"] == [dd]
    row = dd_row(engine, dd)
    assert (row.state, row.decided_on) == ("expired", dt.date(2011, 5, 31))
    command, after = events(engine, dd)[-1]
    assert command == "expire_delegated_decisions" and after["state"] == "expired"
    assert after["open_until"] == "2011-05-30"
    with Session(engine) as s:
        told = s.execute(
            select(Outbox.key).where(Outbox.template == "delegated_decision_outcome")
        ).scalars().all()
        assert len(told) == 1  # the requester is told, once
        assert audit.verify(s).ok

    unchanged = dump(engine)["delegated_decision"]
    assert job.run_sweep()["delegated_expired"] == []  # idempotent: a second run expires nothing
    assert dump(engine)["delegated_decision"] == unchanged

    clock.set(dt.date(2011, 5, 31))
    again = request(q, bid)  # the lapsed request no longer blocks a new one
    assert again["state"] == "awaiting_signatures" and again["ref"] != dd


def test_a_lapsed_request_does_not_block_a_new_one_before_the_sweep(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2011, 5, 2))
    dd = request(q, bid)["ref"]
    clock.set(dt.date(2011, 5, 30))  # still open on its last day: one at a time
    with pytest.raises(Exception, match=f"already has an open request, {dd}"):
        request(q, bid)
    clock.set(dt.date(2011, 5, 31))
    again = request(q, bid)
    assert again["state"] == "awaiting_signatures"
    assert dd_row(engine, dd).state == "expired"
    assert events(engine, dd)[-1][0] == "expire_delegated_decisions"


# ------------------------------------------------------------------ nobody else writes state

SCANNED = ("engine", "quorum_web", "notifications", "rules")
# tables with a state column that no workflow owns (a record of a review, an action list)
NOT_WORKFLOW_TABLES = {"Evidence", "EV_T", "Action"}
_SQL_STATE_WRITE = re.compile(r"\bupdate\b.*\bset\b.*\bstate\s*=", re.I | re.S)


def _table_of(node: ast.expr) -> str | None:
    """The table a ``.values(...)`` chain writes: insert(X) / update(X) / X.update()."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            if isinstance(f, ast.Name) and f.id in ("insert", "update") and sub.args:
                arg = sub.args[0]
                return arg.id if isinstance(arg, ast.Name) else ast.unparse(arg)
            if isinstance(f, ast.Attribute) and f.attr in ("insert", "update"):
                return ast.unparse(f.value)
    return None


def _is_dest(value: ast.expr) -> bool:
    """``<transition>.dest``: a state taken from a fired workflow step."""
    return isinstance(value, ast.Attribute) and value.attr == "dest"


def _state_key(d: ast.Dict) -> ast.expr | None:
    for k, v in zip(d.keys, d.values, strict=True):
        if isinstance(k, ast.Constant) and k.value == "state":
            return v
    return None


def state_writes(source: str, name: str) -> list[str]:
    """Every place in ``source`` that writes a ``state`` column by hand."""
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr == "update_versioned":  # state only through the transition argument
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    if isinstance(arg, ast.Dict) and _state_key(arg) is not None:
                        found.append(f"{where}: update_versioned values carry state")
            if attr == "values" and _table_of(node.func.value) not in NOT_WORKFLOW_TABLES:
                values = [k.value for k in node.keywords if k.arg == "state"]
                values += [
                    v for a in node.args if isinstance(a, ast.Dict)
                    for v in [_state_key(a)] if v is not None
                ]  # fmt: skip
                for v in values:
                    if not _is_dest(v):
                        found.append(f"{where}: .values(state={ast.unparse(v)})")
        if isinstance(node, ast.Dict):
            v = _state_key(node)
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                found.append(f"{where}: a literal state {v.value!r}")
        if isinstance(node, ast.Call) and _table_of(node) not in NOT_WORKFLOW_TABLES:
            for k in node.keywords:
                if k.arg == "state" and isinstance(k.value, ast.Constant):
                    found.append(f"{where}: state={k.value.value!r}")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _SQL_STATE_WRITE.search(node.value)
        ):
            found.append(f"{where}: SQL text sets state")
    return found


def test_the_scan_finds_every_kind_of_hand_written_state() -> None:
    bad = '''
uow.update_versioned(Bid, b.id, b.version, {"state": "approved"}, b.ref)
uow.update_versioned(Bid, b.id, b.version, {"state": new_state, "x": 1}, b.ref)
conn.execute(update(Bid).where(Bid.id == 1).values(state="scored"))
conn.execute(update(Bid).where(Bid.id == 1).values(state=s))
conn.execute(insert(Grant).values(ref=r, state="active"))
rows = [{"grant_id": g, "state": "due"} for g in gs]
conn.execute(text("UPDATE bid SET state = 'x' WHERE id = 1"))
'''
    found = state_writes(bad, "bad")
    assert {int(f.split(":")[1]) for f in found} == set(range(2, 9)), found  # every line
    good = '''
moved = uow.fire(BID, "withdraw", bid.state, bid.ref)
uow.update_versioned(Bid, bid.id, bid.version, {}, bid.ref, moved)
conn.execute(update(Bid).where(Bid.state.in_(t.sources)).values(state=t.dest))
conn.execute(insert(Evidence).values(milestone_id=1, state="submitted"))
uow.record(ref, {"state": bid.state}, {"state": moved.dest})
'''
    assert state_writes(good, "good") == []


def test_no_module_outside_the_workflows_writes_state() -> None:
    found = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            found += state_writes(path.read_text(encoding="utf-8"), rel)
    assert found == []


def test_the_unit_of_work_refuses_a_state_no_workflow_step_fired(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    assert {BID.name, GRANT.name, DELEGATED.name} <= set(STATEFUL.values())
    with engine.connect() as conn, conn.begin():
        row = conn.execute(select(Bid.__table__).where(Bid.ref == bid)).one()
        run = RunState(directory.load(conn, -1))
        uow = UnitOfWork(conn, Actor.system(), clock, "test", run)
        with pytest.raises(StateNotFromWorkflow, match="state is written only by a workflow"):
            uow.update_versioned(Bid, row.id, row.version, {"state": "approved"}, bid)
        grant_step = uow.fire(GRANT, "cancel", "active", bid)
        with pytest.raises(StateNotFromWorkflow, match="grant step cannot set the state of a bid"):
            uow.update_versioned(Bid, row.id, row.version, {}, bid, grant_step)
        # a step fired from a state the row is no longer in does not write
        stale = uow.fire(BID, "withdraw", "scored", bid)
        with pytest.raises(ConflictError, match="changed by someone else"):
            uow.update_versioned(Bid, row.id, row.version, {}, bid, stale)
        moved = uow.fire(BID, "withdraw", row.state, bid)
        assert uow.update_versioned(Bid, row.id, row.version, {}, bid, moved) == row.version + 1
        assert conn.execute(select(Bid.state).where(Bid.id == row.id)).scalar() == "withdrawn"
        conn.rollback()


def test_a_steps_guard_is_judged_by_fire() -> None:
    cover = PotCover("decide", "B-1", 500, "Projects", 400, 1000, 600)
    with pytest.raises(MoneyRuleBroken, match="would overcommit the Projects pot: £4 is available"):
        BID.fire("scored", "approve", {"officer"}, cover, item="B-1")
    enough = dataclasses.replace(cover, amount_pence=400)
    assert BID.fire("scored", "approve", {"officer"}, enough, item="B-1").dest == "approved"
    with pytest.raises(TypeError, match="needs a PotCover context"):
        BID.fire("scored", "approve", {"officer"}, None, item="B-1")
    waiting = SchemeJudgement("sign", "DD-1", "awaiting", "a Vice Chair is still needed")
    with pytest.raises(TransitionRefused, match="not approved under its scheme"):
        DELEGATED.fire("awaiting_signatures", "approve", {"chair"}, waiting, item="DD-1")
    assert judge("scheme_unsatisfiable", waiting) is not None
    with pytest.raises(TransitionRefused, match="goes back only to submitted, scored"):
        BID.fire("approved", "reverse", {"officer"}, item="B-1", back_to="approved")


# ------------------------------------------------------------------ pages ask the workflow


def test_the_board_page_offers_decide_only_where_the_bid_workflow_allows_it() -> None:
    """Each agenda item's page (issue 14: one decision at a time) offers Decide or
    Endorse only where the item's workflow allows it, and says why not."""
    officer = Actor("Olive", OFFICER, frozenset({"officer"}), 1)
    meeting = {"ref": "BOARD-MAY", "state": "scheduled", "date": "2011-05-11"}
    ctx = {"meeting": meeting, "roll": [], "sitting": [], "later": [], "casting": False}
    agenda = [
        {"ref": "B-1", "kind": "bid", "title": "new", "state": "submitted"},
        {"ref": "B-2", "kind": "bid", "title": "scored", "state": "scored"},
        {"ref": "DD-1", "kind": "delegated", "title": "revoked", "state": "revoked"},
        {"ref": "DD-2", "kind": "delegated", "title": "approved", "state": "approved"},
    ]
    for n, a in enumerate(agenda, start=1):
        a.update(n=n, decided=False, amount_pence=100, allocation=False)
    today = dt.date(2011, 5, 11)

    def forms(actor: Actor, when: dt.date = today) -> dict:
        out = {}
        for a in agenda:
            made = item_forms(ctx, a, actor, when)
            out[a["ref"]] = made["decide"] or made["endorse"]
        return out

    made = forms(officer)
    assert made["B-1"].unavailable == "B-1 is submitted"  # the bid workflow: score it first
    assert made["B-2"].unavailable is None
    assert made["DD-1"].unavailable == "DD-1 is revoked"
    assert made["DD-2"].unavailable is None
    member = Actor("Ash", "ash@m.example", frozenset({"board_member"}), 2)
    made = forms(member)
    assert made["B-2"].unavailable and "needs role" in made["B-2"].unavailable
    made = forms(officer, dt.date(2011, 5, 10))  # the day before the meeting
    assert made["B-2"].unavailable == (
        "the meeting takes place on 2011-05-11: its decisions are recorded on or after that day"
    )
