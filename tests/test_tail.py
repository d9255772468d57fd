"""The writes that end every command (engine/store/tail.py): on PostgreSQL one
statement, on SQLite one each; the same rows either way, the chain intact, a
duplicate refused and a key already stored written nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.store import audit, idempotency, tail
from engine.store.db import create_schema, make_engine, write_connection
from engine.store.models import CommandLog, Notification, Outbox

AT = dt.datetime(2011, 4, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    create_schema(eng)
    Quorum(eng, FixedClock(dt.date(2011, 4, 1))).execute(
        "register_person", {"name": "Olive", "email": "olive@x.example", "roles": ["officer"]},
        "system",
    )
    yield eng
    eng.dispose()


def message(key: str, to: str = "olive@x.example") -> dict:
    return {"key": key, "to_addr": to, "template": "officer_notice", "subject": f"about {key}",
            "context": {"ref": key, "n": [1, 2]}, "channel": "email", "item": key,
            "link": f"/x/{key}"}  # fmt: skip


def done(key: str, result: dict) -> dict:
    fp = idempotency.Fingerprint.of({"a": 1})
    scoped = idempotency.Key("actor:system", "test", key)
    return idempotency.done_values(scoped, fp, result, AT, dt.timedelta(hours=1))


def end(engine, events: int, messages: list[dict], key: dict | None, changed=False) -> bool:
    with write_connection(engine) as conn, conn.begin():
        head = audit.lock_head(conn)
        evs = [audit.PendingEvent("test", f"X-{i}", {}, {"i": i, "on": dt.date(2011, 4, 1)})
               for i in range(events)]  # fmt: skip
        return tail.write(conn, head, evs, "system", AT, messages, None,
                          directory_changed=changed, key=key)  # fmt: skip


@pytest.mark.parametrize("events,messages", [(1, 1), (2, 3), (tail.MOST + 2, tail.MOST + 1)])
def test_the_end_of_a_command_writes_every_row_and_the_chain_verifies(
    engine, events, messages
) -> None:
    with Session(engine) as s:
        before = s.get(audit.AuditHead, 1).last_seq
    sent = [message(f"m{i}") for i in range(messages)] + [message("stranger", "no@x.example")]
    assert end(engine, events, sent, done("k1", {"results": [{"ref": "X-1"}]}), changed=True)
    with Session(engine) as s:
        head = s.get(audit.AuditHead, 1)
        assert head.last_seq == before + events and head.directory_seq == head.last_seq
        assert audit.verify(s).ok
        kept = {o.key: o for o in s.exec(select(Outbox)).scalars()}
        assert set(kept) == {m["key"] for m in sent}
        assert kept["m0"].context == {"ref": "m0", "n": [1, 2]} and kept["m0"].status == "queued"
        notes = s.exec(select(Notification)).scalars().all()
        assert {n.key for n in notes} == {f"m{i}" for i in range(messages)}  # not the stranger
        assert {n.link for n in notes} == {f"/x/m{i}" for i in range(messages)}
        log = s.get(CommandLog, ("actor:system", "test", "k1"))
        assert log.status == "done" and log.result == {"results": [{"ref": "X-1"}]}


def test_a_key_already_stored_writes_nothing_of_its_own(engine) -> None:
    assert end(engine, 1, [message("first")], done("k2", {"results": [1]}))
    # the caller (the bus) rolls back when told False; here the transaction is left
    # to commit, to show the key's row is untouched
    assert not end(engine, 1, [], done("k2", {"results": [2]}))
    with Session(engine) as s:
        assert s.get(CommandLog, ("actor:system", "test", "k2")).result == {"results": [1]}
        assert audit.verify(s).ok


def test_a_duplicate_message_is_the_databases_refusal_and_nothing_is_kept(engine) -> None:
    assert end(engine, 1, [message("once")], None)
    with Session(engine) as s:
        events = s.scalar(select(func.count()).select_from(audit.AuditEvent))
    with pytest.raises(IntegrityError):
        end(engine, 1, [message("once")], done("k3", {"results": []}))
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(audit.AuditEvent)) == events
        assert s.get(CommandLog, ("actor:system", "test", "k3")) is None
        assert audit.verify(s).ok
