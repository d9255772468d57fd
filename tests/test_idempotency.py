"""Idempotency keys (issue 11, point 1; docs/security.md "Idempotency").

A key belongs to one caller and one command. The attack of the issue (a
sponsor sending another caller's used key on ``withdraw_bid`` read the stored
payment) is reproduced and refused; the same key with other arguments is a
422 naming the fields; a retry while the first request runs waits for its
result (or 409); a claim left by a killed process lapses; keys expire; and a
hypothesis property checks random interleavings of callers, keys and
arguments: nobody sees another's result and each effect happens once.
SQLite and PostgreSQL (``db_url``) unless said otherwise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moneykit import FINANCE, OFFICER, OFFICER2, SPONSOR, bid_refs, dump, money_board
from sqlalchemy import func, select, text
from sqlmodel import Session
from test_cli import quorum
from webkit import api_token, bearer

from engine.commands.service import Quorum
from engine.domain.errors import KeyInProgress, KeyReused, QuorumError, ValidationError
from engine.settings import override_settings
from engine.store import audit, idempotency
from engine.store.db import create_schema, make_engine, upgrade
from engine.store.models import AuditEvent, Bid, CommandLog, Payment
from quorum_web.app import create_app

PAY = {"grant": "G-0001", "milestone": 1, "amount": "10,000"}


@pytest.fixture
def paid(db_url):
    """The money board; milestone 1 of G-0001 verified; Otto paid £10,000 on it with a key."""
    q, engine, clock = money_board(db_url)
    g = "G-0001"
    q.execute("submit_evidence", {"grant": g, "milestone": 1, "summary": "contract"}, SPONSOR)
    q.execute("verify_milestone", {"grant": g, "milestone": 1}, OFFICER)
    first = q.execute("release_payment", PAY, OFFICER2, key="pay-G-0001-1")
    assert first["payment"] == "P-0001"
    yield q, engine, clock, first
    engine.dispose()


def count(engine, model) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(model)).scalar_one()


def chain(engine) -> tuple[int, str]:
    with Session(engine) as s:
        result = audit.verify(s)
        assert result.ok
    with engine.connect() as c:
        head = audit.lock_head(c)
    return head.last_seq, head.last_hash


def state(engine) -> dict:
    """Every row but the API tokens' "last used" (a request's own trace)."""
    rows = dump(engine)
    rows.pop("api_token")
    return rows


# ------------------------------------------------------------------ the attack


def test_another_callers_used_key_never_returns_their_result(paid) -> None:
    q, engine, _, first = paid
    before, tip = dump(engine), chain(engine)
    melton_bid = bid_refs(engine, "Invest to save")[0]  # Melton's: not the sponsor's
    # the attack: the sponsor sends Otto's key on withdraw_bid -> her own (refused) execution
    with pytest.raises(QuorumError) as refused:
        q.execute("withdraw_bid", {"ref": melton_bid, "reason": "x"}, SPONSOR, key="pay-G-0001-1")
    assert "P-0001" not in refused.value.message
    # ... and on release_payment itself, with Otto's very arguments: her own refusal (role)
    with pytest.raises(QuorumError) as refused:
        q.execute("release_payment", PAY, SPONSOR, key="pay-G-0001-1")
    assert "P-0001" not in refused.value.message
    assert dump(engine) == before and chain(engine) == tip  # nothing written, chain as it was
    # another officer's same key on the same command is her own request: it runs, once
    own = q.execute("release_payment", PAY, FINANCE, key="pay-G-0001-1")
    assert own["payment"] == "P-0002" and own != first
    assert q.execute("release_payment", PAY, FINANCE, key="pay-G-0001-1") == own
    assert q.execute("release_payment", PAY, OFFICER2, key="pay-G-0001-1") == first
    assert count(engine, Payment) == 2
    # the sponsor's own withdraw with that key string is hers alone
    own_bid = bid_refs(engine, "Delegated ask")[0]
    mine = q.execute("withdraw_bid", {"ref": own_bid, "reason": "merged"}, SPONSOR,
                     key="pay-G-0001-1")
    assert mine["state"] == "withdrawn" and "payment" not in mine


def test_the_attack_through_the_api(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    q.execute("submit_evidence", {"grant": "G-0001", "milestone": 1, "summary": "c"}, SPONSOR)
    q.execute("verify_milestone", {"grant": "G-0001", "milestone": 1}, OFFICER)
    client = TestClient(create_app(sqlite_url, scheduler=False, clock=clock))
    otto, sam = api_token(q, OFFICER2), api_token(q, SPONSOR)
    key = {"Idempotency-Key": "pay-G-0001-1"}
    paid = client.post("/api/v1/commands/release_payment", json=PAY,
                       headers={**bearer(otto), **key})
    assert paid.status_code == 200 and paid.json()["payment"] == "P-0001"
    before = state(engine)
    melton_bid = bid_refs(engine, "Invest to save")[0]
    stolen = client.post("/api/v1/commands/withdraw_bid", json={"ref": melton_bid, "reason": "x"},
                         headers={**bearer(sam), **key})
    assert stolen.status_code in (403, 404) and "P-0001" not in stolen.text
    again = client.post("/api/v1/commands/release_payment", json=PAY,
                        headers={**bearer(sam), **key})
    assert again.status_code == 403 and "P-0001" not in again.text
    assert state(engine) == before
    # Otto's retry still gets his result
    retry = client.post("/api/v1/commands/release_payment", json=PAY,
                        headers={**bearer(otto), **key})
    assert retry.status_code == 200 and retry.json() == paid.json()
    # other arguments under his key: 422 naming the field, nothing written
    other = client.post("/api/v1/commands/release_payment", json={**PAY, "amount": "12,000"},
                        headers={**bearer(otto), **key})
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    assert "'pay-G-0001-1' was first used with other arguments: amount" in other.json()["message"]
    assert state(engine) == before
    engine.dispose()


# ------------------------------------------------------------------ the fingerprint


def test_same_key_other_arguments_is_refused_naming_them(paid) -> None:
    q, engine, _, first = paid
    before, tip = dump(engine), chain(engine)
    with pytest.raises(KeyReused) as err:
        q.execute("release_payment", {**PAY, "amount": "12,000", "milestone": 2}, OFFICER2,
                  key="pay-G-0001-1")
    message = err.value.message
    assert message.startswith(
        "idempotency key 'pay-G-0001-1' was first used with other arguments: amount, milestone "
    )
    assert "10,000" not in message and "12,000" not in message  # names, never values
    assert err.value.http_status == 422
    assert dump(engine) == before and chain(engine) == tip
    # the same arguments as the contract reads them are the same request
    same = {"grant": "G-0001", "milestone": "1", "amount": "£10,000.00"}
    assert q.execute("release_payment", same, OFFICER2, key="pay-G-0001-1") == first
    assert dump(engine) == before


def test_a_key_is_short_printable_text(paid) -> None:
    q, engine, _, _ = paid
    before = dump(engine)
    for bad, why in (("", "has 0"), ("k" * 201, "has 201"), ("a\x00b", "not printable")):
        with pytest.raises(ValidationError, match=f"idempotency key: 1 to 200 printable.*{why}"):
            q.execute("release_payment", PAY, FINANCE, key=bad)
    assert dump(engine) == before


def test_cli_exits_non_zero_on_a_reused_key(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    q, engine, _ = money_board(url)
    engine.dispose()
    ref = bid_refs(make_engine(url), "Delegated ask")[0]
    ok = quorum("do", "withdraw_bid", f"ref={ref}", "reason=merged", "--key", "k1",
                db=url, actor=OFFICER)
    assert ok.returncode == 0, ok.stderr
    again = quorum("do", "withdraw_bid", f"ref={ref}", "reason=merged", "--key", "k1",
                   db=url, actor=OFFICER)
    assert again.returncode == 0 and json.loads(again.stdout) == json.loads(ok.stdout)
    other = quorum("do", "withdraw_bid", f"ref={ref}", "reason=duplicate", "--key", "k1",
                   db=url, actor=OFFICER)
    assert other.returncode == 1
    assert "idempotency key 'k1' was first used with other arguments: reason" in other.stderr


# ------------------------------------------------------------------ in flight


def test_a_retry_while_the_first_runs_gets_the_first_result(db_url) -> None:
    q, engine, _ = money_board(db_url)
    ref = bid_refs(engine, "Delegated ask")[0]
    args = {"ref": ref, "reason": "merged"}
    started, go = threading.Event(), threading.Event()
    out: dict[str, object] = {}

    def hold(_conn) -> None:  # runs inside the first request's transaction
        started.set()
        assert go.wait(30)

    def first() -> None:
        out["first"] = q.execute("withdraw_bid", args, OFFICER, key="w-1", before=hold)

    def retry() -> None:
        try:
            out["retry"] = q2.execute("withdraw_bid", args, OFFICER, key="w-1")
        except QuorumError as exc:
            out["retry"] = exc

    q2 = Quorum(engine, q.clock)  # another request: another service object, same database
    a = threading.Thread(target=first)
    a.start()
    assert started.wait(30)
    b = threading.Thread(target=retry)
    b.start()
    time.sleep(0.5)  # the retry is waiting (on its claim, or SQLite's write lock)
    assert b.is_alive()
    go.set()
    a.join(30)
    b.join(30)
    assert out["retry"] == out["first"] and out["first"]["state"] == "withdrawn"
    with engine.connect() as c:
        events = c.execute(
            select(func.count()).where(
                AuditEvent.item_ref == ref, AuditEvent.command == "withdraw_bid"
            )
        ).scalar_one()
    assert events == 1
    engine.dispose()


def test_on_postgresql_a_retry_queues_behind_the_first_on_the_chain_head(pg_url) -> None:
    # PostgreSQL claims the key inside the command's transaction (issue 15), after the
    # chain head's row lock: a retry waits on that lock while the first runs, however
    # short its polling wait, and then gets the first result (no 409, no second effect).
    # A committed claim still polls and answers 409: test_a_claim_left_by_a_killed_...
    q, engine, _ = money_board(pg_url)
    ref = bid_refs(engine, "Delegated ask")[0]
    args = {"ref": ref, "reason": "merged"}
    started, go = threading.Event(), threading.Event()
    out: dict[str, object] = {}

    def hold(_conn) -> None:
        started.set()
        assert go.wait(30)

    a = threading.Thread(
        target=lambda: out.setdefault(
            "first", q.execute("withdraw_bid", args, OFFICER, key="w-1", before=hold)
        )
    )
    a.start()
    assert started.wait(30)
    q2 = Quorum(engine, q.clock)
    q2.key_wait_seconds = 0.3

    def retry() -> None:
        try:
            out["retry"] = q2.execute("withdraw_bid", args, OFFICER, key="w-1")
        except QuorumError as exc:
            out["retry"] = exc

    b = threading.Thread(target=retry)
    b.start()
    time.sleep(1.0)  # well past its polling wait: still queued on the lock, no 409
    assert b.is_alive() and "retry" not in out
    go.set()
    a.join(30)
    b.join(30)
    assert out["retry"] == out["first"] and out["first"]["state"] == "withdrawn"
    assert q2.execute("withdraw_bid", args, OFFICER, key="w-1") == out["first"]
    with engine.connect() as c:
        events = c.execute(
            select(func.count()).where(
                AuditEvent.item_ref == ref, AuditEvent.command == "withdraw_bid"
            )
        ).scalar_one()
    assert events == 1
    engine.dispose()


def test_a_claim_left_by_a_killed_process_lapses(db_url) -> None:
    q, engine, clock = money_board(db_url)
    ref = bid_refs(engine, "Delegated ask")[0]
    args = {"ref": ref, "reason": "merged"}
    # what a process killed mid-command leaves: its claim, and none of its effects
    q._claim([("withdraw_bid", args)], OFFICER, "withdraw_bid", "w-1")
    before = dump(engine)
    q.key_wait_seconds = 0.2
    with pytest.raises(KeyInProgress):
        q.execute("withdraw_bid", args, OFFICER, key="w-1")
    assert dump(engine) == before
    clock.advance(seconds=idempotency.LEASE.total_seconds())  # the lease runs out
    done = q.execute("withdraw_bid", args, OFFICER, key="w-1")
    assert done["state"] == "withdrawn"
    assert q.execute("withdraw_bid", args, OFFICER, key="w-1") == done
    engine.dispose()


def test_a_run_outlasting_its_lease_keeps_nothing(db_url) -> None:
    q, engine, clock = money_board(db_url)
    ref = bid_refs(engine, "Delegated ask")[0]
    args = {"ref": ref, "reason": "merged"}

    def slow(conn) -> None:  # the run takes longer than its lease; a retry took the key
        clock.advance(seconds=idempotency.LEASE.total_seconds() + 1)
        # (written in the run's own transaction: SQLite's write lock is the run's)
        conn.execute(text("UPDATE command_log SET token = 'the retry'"))

    before = dump(engine)
    # Only a claim committed before its run has a lease to outlast: the polling path
    # (a key held by another claim); a key written at the end of its own run has none
    with pytest.raises(KeyInProgress, match="outlasted its hold on idempotency key 'w-1'"):
        q._run([("withdraw_bid", args)], OFFICER, key="w-1", per_row=False, partial=False,
               before=slow, key_in_run=False)
    after = dump(engine)
    assert after["bid"] == before["bid"] and after["audit_event"] == before["audit_event"]
    engine.dispose()


# ------------------------------------------------------------------ expiry


def test_keys_expire_and_the_sweep_forgets_them(db_url) -> None:
    q, engine, clock = money_board(db_url)
    ref = bid_refs(engine, "Delegated ask")[0]
    with override_settings(idempotency_key_hours=2):
        q.execute("withdraw_bid", {"ref": ref, "reason": "merged"}, OFFICER, key="k")
        clock.advance(hours=1)
        with pytest.raises(KeyReused):
            q.execute("withdraw_bid", {"ref": ref, "reason": "other"}, OFFICER, key="k")
        assert count(engine, CommandLog) == 1
        clock.advance(hours=1)  # two hours: expired, the key may be used again
        with pytest.raises(QuorumError, match="while it is withdrawn"):  # its own run
            q.execute("withdraw_bid", {"ref": ref, "reason": "other"}, OFFICER, key="k")
        assert count(engine, CommandLog) == 0  # the expired key was taken, and let go
        bid = {"title": "t", "sponsor": "Rutland CC", "grant": "1,000"}
        q.execute("submit_bid", bid, OFFICER, key="k")
        clock.advance(hours=1)
        q.execute("sweep", {}, OFFICER)
        assert count(engine, CommandLog) == 1  # not expired yet: kept
        clock.advance(hours=1)
        q.execute("sweep", {}, OFFICER)
        assert count(engine, CommandLog) == 0  # the sweep forgot it
    engine.dispose()


# ------------------------------------------------------------------ the property

PEOPLE = [f"p{i}@x.example" for i in range(3)]
_N = iter(range(10**9))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('idem') / 'q.db'}"
    engine = make_engine(url)
    create_schema(engine)
    q = Quorum(engine)
    q.execute("register_organisation", {"name": "Alpha"}, "system")
    for p in PEOPLE:
        q.execute("register_person", {"name": p, "email": p, "roles": ["officer"]}, "system")
    yield q, engine
    engine.dispose()


def bids_by(engine) -> dict[str, str]:
    with engine.connect() as c:
        rows = c.execute(
            select(AuditEvent.item_ref, AuditEvent.actor).where(AuditEvent.item_ref.like("B-%"))
        ).all()
    return dict(rows)


@given(
    ops=st.lists(
        st.tuples(st.sampled_from(PEOPLE), st.sampled_from("abc"), st.sampled_from("xy")),
        min_size=1,
        max_size=12,
    )
)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
          database=None)
def test_no_caller_sees_anothers_result_and_each_effect_happens_once(small, ops) -> None:
    q, engine = small
    run = next(_N)
    first: dict[tuple[str, str], tuple[str, dict]] = {}  # (caller, key) -> (args, result)
    bids_before = count(engine, Bid)
    for who, key, variant in ops:
        args = {"title": f"run {run} {variant}", "sponsor": "Alpha", "grant": "1,000"}
        k = f"{run}-{key}"
        seen = first.get((who, k))
        if seen is not None and seen[0] != variant:
            with pytest.raises(KeyReused):
                q.execute("submit_bid", args, who, key=k)
            continue
        result = q.execute("submit_bid", args, who, key=k)
        if seen is None:
            assert all(result != r for _, r in first.values())  # a new effect of its own
            first[(who, k)] = (variant, result)
        else:
            assert result == seen[1]  # the caller's own first result
    assert count(engine, Bid) == bids_before + len(first)  # each effect exactly once
    made = bids_by(engine)
    for (who, _), (_, result) in first.items():
        assert made[result["ref"]] == who  # every result went to the one who caused it


def test_many_callers_at_once_on_postgresql(pg_url) -> None:
    engine = make_engine(pg_url)
    create_schema(engine)
    q = Quorum(engine)
    q.execute("register_organisation", {"name": "Alpha"}, "system")
    for p in PEOPLE:
        q.execute("register_person", {"name": p, "email": p, "roles": ["officer"]}, "system")
    calls = [(p, k) for p in PEOPLE for k in ("a", "b") for _ in range(3)]  # each twice more
    barrier = threading.Barrier(len(calls))
    results: dict[int, dict] = {}

    def body(i: int) -> None:
        who, key = calls[i]
        barrier.wait(30)
        args = {"title": f"{who} {key}", "sponsor": "Alpha", "grant": "1,000"}
        results[i] = Quorum(engine).execute("submit_bid", args, who, key=key)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == len(calls)
    by_call: dict[tuple[str, str], set[str]] = {}
    for i, r in results.items():
        by_call.setdefault(calls[i], set()).add(r["ref"])
    assert all(len(refs) == 1 for refs in by_call.values())  # one result per caller and key
    assert len({next(iter(r)) for r in by_call.values()}) == 6  # six effects, all distinct
    assert count(engine, Bid) == 6
    made = bids_by(engine)
    assert all(made[next(iter(refs))] == who for (who, _), refs in by_call.items())
    engine.dispose()


# ------------------------------------------------------------------ the upgrade


def test_keys_logged_before_0005_stay_their_callers(db_url) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0004")
    at = dt.datetime(2011, 4, 1, 9, tzinfo=dt.UTC)
    with engine.begin() as c:
        c.execute(text("INSERT INTO person (id, name, email, active, failed_logins) "
                       "VALUES (7, 'Olive', 'Olive@B.example', :yes, 0)"), {"yes": True})
        c.execute(text("INSERT INTO command_log (key, command, actor, result, at) "
                       "VALUES ('k', 'withdraw_bid', 'olive@b.example', :r, :at)"),
                  {"r": json.dumps({"results": [{"ref": "B-0009"}]}), "at": at})
    upgrade(engine)
    with engine.connect() as c:
        row = c.execute(select(CommandLog)).one()
    assert (row.actor, row.command, row.key) == ("person:7", "withdraw_bid", "k")
    assert row.status == "done"
    assert row.result == {"results": [{"ref": "B-0009"}]}
    # replayed to its caller only (the fingerprint was not kept before 0005)
    q = Quorum(engine)
    assert q.execute("withdraw_bid", {"ref": "B-0009", "reason": "r"}, "olive@b.example",
                     key="k") == {"ref": "B-0009"}
    engine.dispose()



@given(
    name=st.text(max_size=20),
    value=st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none(), st.floats(),
                    st.lists(st.integers(), max_size=3), st.dates()),
)  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_a_fields_hash_is_taken_of_the_same_text_as_before(name, value) -> None:
    """Fingerprints stored before the quick path (idempotency.field_json) still match:
    the text is the encoder's, escapes and separators alike."""
    assert idempotency.field_json(name, value) == idempotency._FIELD_JSON.encode([name, value])


def test_a_fingerprint_hashes_each_field_as_json() -> None:
    fp = idempotency.Fingerprint.of({"grant": "G-0001", "amount": 1000000, "note": None,
                                     "ok": True, "title": 'a "b" £'})  # fmt: skip
    assert fp.fields["grant"] == hashlib.sha256(b'["grant", "G-0001"]').hexdigest()
    assert fp.fields["title"] == hashlib.sha256(b'["title", "a \\"b\\" \\u00a3"]').hexdigest()
    assert fp.fields["ok"] == hashlib.sha256(b'["ok", true]').hexdigest()
