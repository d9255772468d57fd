"""Crash safety of the dispatcher, with real processes and a real SMTP server.

``quorum outbox send`` runs as a child process against a SQLite file and a
PostgreSQL database, sending a few hundred messages to a deliberately slow
aiosmtpd server. It is SIGKILLed mid-run (the server has already accepted
some messages), restarted, killed again, and finally left to finish.

What a mailbox sees, de-duplicated by Message-ID as a mail client does, is
every message exactly once. On the wire a message may arrive twice only if
its dispatcher was killed while it was in flight, so the raw duplicates are
at most the number of kills. Two dispatchers started at once deliver every
message exactly once, raw (no de-duplication needed).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from smtpserver import MailServer, by_message_id
from sqlalchemy import insert, select

from engine.store.db import create_schema, make_engine
from engine.store.models import Outbox
from notifications.dispatch import message_id

REPO = Path(__file__).resolve().parents[1]
N = 300
KILLS = 3
GRACE = 12  # seconds a claim is leased: after it, an unconfirmed message is sent again
# (longer than a loaded machine takes to start `quorum outbox send`: the restarted
# dispatcher must find the in-flight message still leased)
SENDER = "grants@board.example.org"
NOW = dt.datetime(2011, 4, 1, 9, 0, tzinfo=dt.UTC)


def seed(url: str, n: int = N) -> list[str]:
    engine = make_engine(url)
    create_schema(engine)
    rows = [
        {
            "key": f"bid_received:B-{i:04d}:user{i:04d}@example.org",
            "channel": "email",
            "to_addr": f"user{i:04d}@example.org",
            "template": "bid_received",
            "subject": f"Bid B-{i:04d} received: Project {i}",
            "context": {
                "name": f"User {i}",
                "ref": f"B-{i:04d}",
                "title": f"Project {i}",
                "sponsor": "Alpha County Council",
                "grant_pence": (i + 1) * 100_000,
                "savings_text": None,
                "savings_note": "none stated",
            },
            "created_at": NOW,
            "status": "queued",
            "attempts": 0,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Outbox), rows)
    engine.dispose()
    return [r["key"] for r in rows]


def states(url: str) -> tuple[Counter, Counter]:
    """(rows per status, rows per attempts)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Outbox.status, Outbox.attempts)).all()
    finally:
        engine.dispose()
    return Counter(r.status for r in rows), Counter(r.attempts for r in rows)


def dispatcher_env(server: MailServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUORUM_")}
    env.update(
        server.env(
            QUORUM_MAIL_FROM=f"Grants Team <{SENDER}>",
            QUORUM_SMTP_TIMEOUT="5",
            QUORUM_MAIL_GRACE_SECONDS=str(GRACE),
        ),
        PYTHONPATH=str(REPO),
    )
    return env


def start(url: str, server: MailServer) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.entry.cli", "--db", url, "outbox", "send"],
        env=dispatcher_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    assert "warning" not in err, err
    return out


@pytest.fixture
def slow_server():
    server = MailServer()
    server.handler.delay = 0.01  # each message is stored, then "250" follows a moment later
    yield server
    server.stop()


def test_dispatcher_killed_mid_run_sends_every_message_once(db_url, slow_server) -> None:
    keys = seed(db_url)
    kills = 0
    for _ in range(KILLS):
        before = len(slow_server.received)
        proc = start(db_url, slow_server)
        deadline = time.monotonic() + 120
        # Wait until this run has delivered some messages, then kill it mid-run.
        while len(slow_server.received) < before + 20 and proc.poll() is None:
            assert time.monotonic() < deadline, "the dispatcher made no progress"
            time.sleep(0.005)
        assert proc.poll() is None, f"finished before it could be killed: {proc.stdout.read()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        proc.stdout.close()
        proc.stderr.close()
        kills += 1
        status, _ = states(db_url)
        assert status["sent"] < N  # really mid-run
        assert status["sending"] <= kills  # at most the one in flight at each kill

    # Restart until everything is sent; a message left "sending" by a killed
    # dispatcher is in doubt and goes again once its lease (GRACE) is over.
    for _ in range(kills + 2):
        finish(start(db_url, slow_server))
        status, attempts = states(db_url)
        if status == Counter({"sent": N}):
            break
        assert set(status) <= {"sent", "sending"}, status
        time.sleep(GRACE + 0.5)
    assert status == Counter({"sent": N})

    received = slow_server.received
    mailbox = by_message_id(received)
    assert set(mailbox) == {message_id(k, SENDER) for k in keys}
    for copies in mailbox.values():  # a duplicate is byte-for-byte the same message
        assert {(c.key, c.message["Subject"], c.text()) for c in copies} == {
            (copies[0].key, copies[0].message["Subject"], copies[0].text())
        }
        assert copies[0].rcpt_tos == [copies[0].key.rsplit(":", 1)[1]]
    some = mailbox[message_id(keys[99], SENDER)][0]
    assert "asking for a grant of £100,000." in some.text()
    duplicates = len(received) - len(mailbox)
    print(f"{kills} kills, {len(received)} messages on the wire, {duplicates} duplicate(s)")
    assert duplicates <= kills
    # Only messages that were in flight at a kill were tried twice.
    assert sum(n for a, n in attempts.items() if a > 1) <= kills
    assert set(attempts) <= {1, 2}


def test_the_message_in_flight_at_a_kill_arrives_twice_with_one_message_id(db_url) -> None:
    """Kill the dispatcher while the server holds a message: the server keeps
    it, the dispatcher never learns. After the grace period the restarted
    dispatcher sends it again, with the same Message-ID."""
    keys = seed(db_url, 40)
    victim = keys[9]
    server = MailServer()
    server.handler.hold = f"X-Quorum-Key: {victim}".encode()
    server.handler.hold_for = 1.0
    try:
        proc = start(db_url, server)
        assert server.handler.held.wait(120), "the held message never arrived"
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert [r.key for r in server.received] == keys[:10]
        status, _ = states(db_url)
        assert status == Counter({"sent": 9, "sending": 1, "queued": 30})

        out = finish(start(db_url, server))  # the victim is leased: the others go
        assert "sent 30" in out
        assert states(db_url)[0] == Counter({"sent": 39, "sending": 1})
        time.sleep(GRACE + 0.5)
        out = finish(start(db_url, server))
        assert "sent 1, retried 0, failed 0 (1 in doubt after a crash, sent again)" in out

        received = server.received
        assert len(received) == 41
        copies = [r for r in received if r.key == victim]
        assert len(copies) == 2
        assert copies[0].message_id == copies[1].message_id == message_id(victim, SENDER)
        assert len(by_message_id(received)) == 40
        status, attempts = states(db_url)
        assert status == Counter({"sent": 40})
        assert attempts == Counter({1: 39, 2: 1})
    finally:
        server.stop()


def test_two_dispatchers_at_once_deliver_each_message_once(db_url) -> None:
    server = MailServer()
    server.handler.delay = 0.02
    try:
        keys = seed(db_url)
        procs = [start(db_url, server), start(db_url, server)]
        outs = [finish(p) for p in procs]
        sent = [int(re.search(r"sent (\d+)", out).group(1)) for out in outs]
        assert sum(sent) == N
        assert all(n > 0 for n in sent), f"the two runs did not overlap: {sent}"
        received = server.received
        assert len(received) == N  # raw: no message twice on the wire
        assert sorted(r.key for r in received) == sorted(keys)
        assert states(db_url)[0] == Counter({"sent": N})
        assert states(db_url)[1] == Counter({1: N})
    finally:
        server.stop()
