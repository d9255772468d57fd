"""The hash-chained audit trail: tampering with events is detected and located;
tampering with the tables the events describe is not the chain's business, but
the history still tells what really happened."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.store import audit
from engine.store.db import create_schema, make_engine
from engine.store.models import AuditEvent, Bid

ALPHA = "Alpha County Council"
SPONSOR = "sponsor@alpha.example.org"


@pytest.fixture
def engine(db_url, clock):
    """A database after five commands, i.e. audit events 1..5:
    1 create_programme, 2 register_organisation, 3 register_person,
    4 submit_bid B-0001, 5 amend_bid B-0001."""
    eng = make_engine(db_url)
    create_schema(eng)
    q = Quorum(eng, clock)
    q.execute("create_programme", {"name": "Transformation Fund", "pots": {"Main": "500,000"}},
              "system")
    q.execute("register_organisation", {"name": ALPHA}, "system")
    q.execute("register_person", {"name": "Sam Sponsor", "email": SPONSOR, "roles": ["sponsor"],
                                  "organisation": ALPHA}, "system")
    q.execute("submit_bid", {"title": "Joint fleet", "sponsor": ALPHA, "grant": "75,000"}, SPONSOR)
    clock.advance(days=3)
    q.execute("amend_bid", {"ref": "B-0001", "title": "Joint fleet and depots"}, SPONSOR)
    yield eng
    eng.dispose()


def verify(eng) -> audit.VerifyResult:
    with Session(eng) as s:
        return audit.verify(s)


def sql(eng, statement: str, **params) -> int:
    with eng.begin() as conn:
        return conn.execute(text(statement), params).rowcount


def test_intact_chain_verifies(engine):
    result = verify(engine)
    assert result.ok, result.message()
    assert result.events == 5
    assert result.first_bad_seq is None
    assert result.message() == "audit chain intact: 5 events"
    with Session(engine) as s:
        rows = s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        assert [r.command for r in rows] == [
            "create_programme", "register_organisation", "register_person", "submit_bid",
            "amend_bid",
        ]
        assert rows[0].prev_hash == audit.GENESIS
        assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))


def test_altered_event_is_named(engine):
    with Session(engine) as s:
        third = s.get(AuditEvent, 3)
        forged = json.loads(third.after)
    assert forged["email"] == SPONSOR
    forged["roles"] = ["director", "sponsor"]  # someone grants themselves a role
    assert sql(engine, 'UPDATE audit_event SET "after" = :v WHERE seq = 3',
               v=audit.canonical(forged)) == 1

    result = verify(engine)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert result.events == 2  # events 1 and 2 are still good
    assert "event 3" in result.message()
    assert "register_person" in result.message()


def test_altered_event_with_recomputed_hash_breaks_the_next_link(engine):
    """Re-hashing a forged event does not help: without the key its own HMAC fails
    (issue 11: it used to verify on its own), and the next event's prev_hash no
    longer matches."""
    with Session(engine) as s:
        ev = s.get(AuditEvent, 3)
        forged_after = ev.after.replace(SPONSOR, "someone@else.example.org")
        new_hash = audit.event_hash(ev.seq, ev.at, ev.actor, ev.command, ev.item_ref, ev.before,
                                    forged_after, ev.reason, ev.prev_hash)
    sql(engine, 'UPDATE audit_event SET "after" = :a, hash = :h WHERE seq = 3',
        a=forged_after, h=new_hash)

    result = verify(engine)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "event 3" in result.message() and "HMAC" in result.message()
    assert any(p.startswith("event 4:") and "does not follow event 3" in p
               for p in result.problems), result.problems


def test_deleted_event_is_named(engine):
    assert sql(engine, "DELETE FROM audit_event WHERE seq = 2") == 1
    result = verify(engine)
    assert not result.ok
    assert result.first_bad_seq == 2
    assert "event 2" in result.message()
    assert "missing" in result.message()


def test_deleted_last_event_is_caught_by_the_head(engine):
    assert sql(engine, "DELETE FROM audit_event WHERE seq = 5") == 1
    result = verify(engine)
    assert not result.ok
    assert result.first_bad_seq == 5
    assert "5" in result.problem and "4" in result.problem


def test_altered_bid_row_leaves_chain_intact_and_history_tells_the_truth(engine):
    assert sql(engine, "UPDATE bid SET title = 'Forged title', grant_requested_pence = 1 "
                       "WHERE ref = 'B-0001'") == 1
    with Session(engine) as s:
        bid = s.execute(select(Bid).where(Bid.ref == "B-0001")).scalar_one()
        assert (bid.title, bid.grant_requested_pence) == ("Forged title", 1)

    # the chain covers the events, not the tables
    result = verify(engine)
    assert result.ok, result.message()

    with Session(engine) as s:
        events = audit.history(s, "B-0001")
    assert [e.command for e in events] == ["submit_bid", "amend_bid"]
    submitted = json.loads(events[0].after)
    assert submitted["title"] == "Joint fleet"
    assert submitted["grant_requested_pence"] == 7_500_000
    assert json.loads(events[1].before) == {"title": "Joint fleet"}
    assert json.loads(events[1].after) == {"title": "Joint fleet and depots"}
    assert events[0].actor == events[1].actor == SPONSOR
    assert events[1].at > events[0].at


def test_canonical_json_and_hash_are_the_chain_format():
    """The chain's format, written out the long way: a faster encoder or hash
    body must give byte for byte the same, or old chains stop verifying."""
    import datetime as dt
    import hashlib

    value = {"b": [3, 1.5, None, True], "a": {"z": "£é\n\"", "y": dt.date(2011, 4, 1)},
             "t": (2, 1), "s": {"y", "x"}, "when": dt.datetime(2011, 4, 1, 9, 30)}  # fmt: skip
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), default=audit._json_default)
    assert audit.canonical(value) == expected
    assert expected.startswith('{"a":{"y":"2011-04-01","z":"\\u00a3\\u00e9\\n\\""}')
    fields = ("12", "2011-04-01T00:00:00+00:00", "o@x", "score_round", "B-0001", "{}",
              '{"a":1}', "", "f" * 64)  # fmt: skip
    body = "".join(f"{len(f)}:{f};" for f in fields)
    assert audit.event_hash(12, *fields[1:]) == hashlib.sha256(body.encode()).hexdigest()


def test_events_sharing_payload_objects_store_what_copies_store(db_url, clock):
    """A command recording many items alike may share before/after objects
    (score_round does): each is encoded once, the stored events are the same."""
    import copy

    eng = make_engine(db_url)
    create_schema(eng)
    query = select(AuditEvent).order_by(AuditEvent.seq)
    stored = []
    for share in (True, False):
        before, after = {"state": "submitted"}, {"state": "scored", "points": 7}
        events = [
            audit.PendingEvent("score_round", f"B-{i:04d}", before, after)
            if share
            else audit.PendingEvent(
                "score_round", f"B-{i:04d}", copy.deepcopy(before), copy.deepcopy(after)
            )
            for i in range(1, 6)
        ]
        with eng.begin() as conn:
            head = audit.lock_head(conn)
            audit.append(conn, head, events, "officer@x", clock.now())
            assert head.last_seq == 5
        assert verify(eng).ok
        with Session(eng) as s:
            rows = s.execute(query).scalars()
            stored.append([(e.seq, e.item_ref, e.before, e.after, e.hash) for e in rows])
        with eng.begin() as conn:  # back to an empty chain
            conn.execute(text("DELETE FROM audit_event"))
            conn.execute(text("UPDATE audit_head SET last_seq = 0, last_hash = ''"))
    eng.dispose()
    assert stored[0] == stored[1] and len(stored[0]) == 5
    assert stored[0][4][3] == '{"points":7,"state":"scored"}'
