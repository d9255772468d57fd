"""Concurrent writers on a real PostgreSQL server.

(a) optimistic locking at the ORM level: a stale UPDATE raises StaleDataError;
(b) the same race through the command layer becomes a ConflictError and only
    one amendment (and one audit event) survives;
(c) many simultaneous submissions all succeed, with distinct references and an
    intact audit chain, because writers are serialised on the audit_head row.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.domain.errors import ConflictError
from engine.store import audit
from engine.store.db import create_schema, make_engine
from engine.store.models import AuditEvent, Bid

OFFICER = "officer@board.example.org"
ALPHA = "Alpha County Council"
JOIN_TIMEOUT = 60


@pytest.fixture
def pg(pg_url, clock):
    engine = make_engine(pg_url)
    assert engine.dialect.name == "postgresql"
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute("register_organisation", {"name": ALPHA}, "system")
    q.execute("register_person",
              {"name": "Olive Officer", "email": OFFICER, "roles": ["officer"]}, "system")
    yield engine, q
    engine.dispose()


def submit(q: Quorum, title: str) -> dict:
    return q.execute("submit_bid", {"title": title, "sponsor": ALPHA, "grant": "10,000"}, OFFICER)


def run_threads(n: int, work) -> tuple[list, list[BaseException]]:
    """Start n threads that meet at a barrier and then call work(i)."""
    barrier = threading.Barrier(n)
    results: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            out = work(i)
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(out)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a writer hung (deadlock?)"
    return results, errors


def test_stale_session_write_raises_stale_data_error(pg):
    engine, q = pg
    assert submit(q, "Original title")["ref"] == "B-0001"

    with Session(engine) as sa_, Session(engine) as sb:
        a = sa_.execute(select(Bid).where(Bid.ref == "B-0001")).scalar_one()
        b = sb.execute(select(Bid).where(Bid.ref == "B-0001")).scalar_one()
        assert a.version == b.version == 1

        a.title = "Title from A"
        sa_.commit()

        b.title = "Title from B"
        with pytest.raises(StaleDataError):
            sb.commit()

    with Session(engine) as s:
        stored = s.execute(select(Bid).where(Bid.ref == "B-0001")).scalar_one()
        assert (stored.title, stored.version) == ("Title from A", 2)


def test_two_amendments_of_the_same_version_one_wins(pg):
    engine, q = pg
    submit(q, "Original title")
    with Session(engine) as s:
        events_before = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()

    def amend(i: int) -> dict:
        return q.execute(
            "amend_bid", {"ref": "B-0001", "version": 1, "title": f"Title from writer {i}"},
            OFFICER,
        )

    results, errors = run_threads(2, amend)
    assert len(results) == 1, (results, errors)
    assert len(errors) == 1 and isinstance(errors[0], ConflictError), errors
    assert "B-0001" in str(errors[0]) or "someone else" in str(errors[0])
    assert results[0]["version"] == 2

    with Session(engine) as s:
        bid = s.execute(select(Bid).where(Bid.ref == "B-0001")).scalar_one()
        assert bid.version == 2
        amends = s.execute(
            select(AuditEvent).where(AuditEvent.item_ref == "B-0001",
                                     AuditEvent.command == "amend_bid")
        ).scalars().all()
        assert len(amends) == 1
        assert f'"title":"{bid.title}"' in amends[0].after
        total = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        assert total == events_before + 1
        assert audit.verify(s).ok


def test_concurrent_submissions_all_succeed_with_distinct_refs(pg):
    engine, q = pg
    n = 8
    results, errors = run_threads(n, lambda i: submit(q, f"Concurrent bid {i}"))
    assert errors == []
    refs = sorted(r["ref"] for r in results)
    assert refs == [f"B-{i:04d}" for i in range(1, n + 1)]

    with Session(engine) as s:
        titles = s.execute(select(Bid.title)).scalars().all()
        assert sorted(titles) == sorted(f"Concurrent bid {i}" for i in range(n))
        result = audit.verify(s)
        assert result.ok, result.message()
        assert result.events == 2 + n  # organisation, person, then one per bid
        seqs = s.execute(select(AuditEvent.seq).order_by(AuditEvent.seq)).scalars().all()
        assert seqs == list(range(1, n + 3))


def test_a_command_on_a_connection_the_server_dropped_runs_on_a_fresh_one(pg):
    # The pool does not ping at checkout (engine/store/db.py): a pooled connection the
    # server cut while idle (a restart, a failover) fails at the command's first
    # statement, before anything ran, and the bus begins again on a fresh connection.
    engine, q = pg
    assert submit(q, "Before the cut")["ref"] == "B-0001"
    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    with other.connect() as c:  # the pool holds an idle connection: cut it (not this one)
        cut = c.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar_one()
    other.dispose()
    assert cut >= 1
    assert submit(q, "After the cut")["ref"] == "B-0002"  # no error reaches the caller
    assert submit(q, "And again")["ref"] == "B-0003"
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Bid)).scalar_one() == 3
        assert audit.verify(s).ok
