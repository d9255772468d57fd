"""Failure and topology, with real processes on loopback (issue 15 item 6).

A scripted load of keyed payments (``POST /api/v1/commands/release_payment``
with an ``Idempotency-Key`` per milestone) runs against ``quorum serve``
processes while something breaks:

- a web process is SIGKILLed mid-load and started again; the client retries
  every unanswered request with the same key;
- the PostgreSQL server is restarted mid-load (every connection cut);
- two web processes share the load (a retry may land on the other one) while
  one scheduler process sends the outbox to a real SMTP server.

Each time, afterwards: every milestone is paid exactly once, every key answers
the same payment when asked again, the payment messages are queued once each
(and, with the scheduler, delivered once each), and the audit chain verifies.

The PostgreSQL server here is this module's own (it gets restarted), not the
session's shared one. Bounded: a few dozen payments, deadlines on every wait.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from moneykit import accept_offer
from pgserver import PgServer, unavailable_reason
from smtpserver import MailServer, by_message_id
from sqlalchemy import func, select
from sqlmodel import Session
from webkit import api_token

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.store import audit
from engine.store.db import create_schema, make_engine
from engine.store.models import AuditEvent, Grant, Milestone, Outbox, Payment

REPO = Path(__file__).resolve().parents[1]
OFFICER = "olive@topology.example"  # verifies evidence
PAYER = "fay@topology.example"  # finance: releases payments (not the verifier: four eyes)
SPONSOR = "sam@topology.example"
MEMBERS = ["Cllr Ash", "Cllr Birch", "Cllr Cedar"]
GRANTS = 8
MILESTONES = 3  # each £10,000: 24 payments per run
START_TIMEOUT = 90  # seconds for `quorum serve` to answer /healthz on a loaded machine
LOAD_TIMEOUT = 180  # seconds for the whole load, retries included
SENDER = "grants@topology.example"


# ------------------------------------------------------------------ the database


def seed(url: str) -> tuple[list[tuple[str, int]], str]:
    """GRANTS approved grants whose MILESTONES milestones are verified and
    unpaid; returns the (grant, milestone) pairs and the payer's API token."""
    clock = FixedClock(dt.date(2012, 4, 2))
    engine = make_engine(url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute_batch(
        [
            ("create_programme", {"name": "Efficiency", "pots": {"Projects": "9,000,000"}}),
            ("register_organisation", {"name": "Rutland CC"}),
            ("register_person", {"name": "Olive Officer", "email": OFFICER, "roles": ["officer"]}),
            ("register_person", {"name": "Fay Finance", "email": PAYER, "roles": ["finance"]}),
            ("register_person", {"name": "Sam Sponsor", "email": SPONSOR, "roles": ["sponsor"],
                                 "organisation": "Rutland CC"}),
        ]
        + [
            ("register_person", {"name": m, "email": f"{m.split()[1].lower()}@topology.example",
                                 "roles": ["board_member"]})
            for m in MEMBERS
        ],
        "system",
    )
    bids = [
        q.execute(
            "submit_bid",
            {
                "title": f"Shared service {i}",
                "sponsor": "Rutland CC",
                "grant": f"{10_000 * MILESTONES:,}",
                "savings": "100,000 2 years",
                "pot": "Projects",
                "milestones": [
                    {"outcome": f"Stage {k}", "due": "2012-09-30", "payment": "10,000"}
                    for k in range(1, MILESTONES + 1)
                ],
            },
            OFFICER,
        )["ref"]
        for i in range(GRANTS)
    ]
    q.execute("schedule_meeting", {"ref": "BOARD-APR", "title": "Board", "date": "2012-04-20",
                                   "quorum": 2, "members": MEMBERS}, OFFICER)
    clock.set(dt.date(2012, 4, 20))
    q.execute("record_attendance", {"meeting": "BOARD-APR", "present": MEMBERS}, OFFICER)
    grants = [
        q.execute("decide", {"meeting": "BOARD-APR", "item": ref, "outcome": "approve"},
                  OFFICER)["grant"]
        for ref in bids
    ]
    for grant in grants:  # the recipient accepts each offer letter: no payment before
        accept_offer(q, grant, SPONSOR)
    clock.set(dt.date(2012, 6, 1))
    work = []
    for grant in grants:
        for seq in range(1, MILESTONES + 1):
            q.execute("submit_evidence",
                      {"grant": grant, "milestone": seq, "summary": f"stage {seq} done"}, SPONSOR)
            q.execute("verify_milestone", {"grant": grant, "milestone": seq}, OFFICER)
            work.append((grant, seq))
    token = api_token(q, PAYER, "topology")
    engine.dispose()
    return work, token


def outcome(url: str) -> tuple[Counter, int, list[str], Counter]:
    """(payments per (grant, milestone), payment messages queued, audit problems,
    outbox rows per status)."""
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(Grant.ref, Milestone.seq)
                .join(Payment, Payment.grant_id == Grant.id)
                .join(Milestone, Milestone.id == Payment.milestone_id)
            ).all()
            messages = s.execute(
                select(func.count())
                .select_from(Outbox)
                .where(Outbox.template == "payment_released")
            ).scalar_one()
            status = Counter(s.execute(select(Outbox.status)).scalars())
            checked = audit.verify(s)
            events = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
            assert checked.events == events
        return Counter((r[0], r[1]) for r in rows), messages, checked.problems, status
    finally:
        engine.dispose()


# ------------------------------------------------------------------ the processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QUORUM_") or k == "QUORUM_CHECKPOINT_DIR"}  # conftest's
    env.update(PYTHONPATH=str(REPO), QUORUM_MAIL_FROM=f"Grants Team <{SENDER}>")
    env.update(extra)
    return env


class Web:
    """One `quorum serve --no-scheduler` process on a port of its own."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Web:
        with open(self.log, "a", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.entry.cli", "--db", self.url, "serve",
                 "--no-scheduler", "--host", "127.0.0.1", "--port", str(self.port)],
                env=child_env(), stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc.poll() is None, f"quorum serve exited:\n{self.log.read_text()}"
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (
                f"quorum serve never answered:\n{self.log.read_text()}"
            )
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


class Load:
    """The client: pays each milestone once, with its own key; any request
    without an answer (connection refused or cut, 503, 409 in progress) is
    retried with the same key, on the next web process in turn."""

    def __init__(self, work: list[tuple[str, int]], token: str, bases: list[str]) -> None:
        self.work = work
        self.headers = {"Authorization": f"Bearer {token}"}
        self.bases = bases
        self.answers: dict[str, dict] = {}
        self.retries = 0
        self.errors: list[str] = []
        self.done = threading.Event()
        self.progress = threading.Semaphore(0)  # released once per answered payment

    @staticmethod
    def key(grant: str, seq: int) -> str:
        return f"pay-{grant}-{seq}"

    def pay(self, n: int, grant: str, seq: int, deadline: float) -> dict:
        body = {"grant": grant, "milestone": seq}
        turn = n
        while True:
            base = self.bases[turn % len(self.bases)]
            try:
                r = httpx.post(f"{base}/api/v1/commands/release_payment", json=body,
                               headers={**self.headers, "Idempotency-Key": self.key(grant, seq)},
                               timeout=30)
                if r.status_code == 200:
                    return r.json()
                if r.status_code not in (409, 503):
                    raise AssertionError(f"{grant}/{seq}: {r.status_code} {r.text}")
            except httpx.TransportError:
                pass
            self.retries += 1
            turn += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{grant}/{seq}: no answer before the deadline")
            time.sleep(0.2)

    def run(self) -> None:
        deadline = time.monotonic() + LOAD_TIMEOUT
        try:
            for n, (grant, seq) in enumerate(self.work):
                self.answers[self.key(grant, seq)] = self.pay(n, grant, seq, deadline)
                self.progress.release()
        except AssertionError as exc:
            self.errors.append(str(exc))
        finally:
            self.done.set()
            for _ in self.work:  # never leave the main thread waiting
                self.progress.release()

    def wait_for(self, answered: int) -> None:
        for _ in range(answered):
            assert self.progress.acquire(timeout=LOAD_TIMEOUT), "the load made no progress"

    def finish(self, thread: threading.Thread) -> None:
        thread.join(LOAD_TIMEOUT)
        assert not thread.is_alive(), "the load never finished"
        assert not self.errors, self.errors

    def replay(self) -> None:
        """Every key asked again answers the very payment it answered first."""
        for n, (grant, seq) in enumerate(self.work):
            again = self.pay(n + 1, grant, seq, time.monotonic() + 60)
            assert again == self.answers[self.key(grant, seq)], (grant, seq)


def check_exactly_once(url: str, load: Load) -> Counter:
    paid, messages, problems, status = outcome(url)
    assert paid == Counter({pair: 1 for pair in load.work}), "a milestone paid twice or never"
    assert len({a["payment"] for a in load.answers.values()}) == len(load.work)
    assert messages == len(load.work)  # one sponsor contact per grant: one message a payment
    assert problems == []
    return status


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL server for this module alone (the restart test cuts it)."""
    reason = unavailable_reason()
    if reason is not None or os.environ.get("QUORUM_TEST_PG_URL"):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes") and reason is not None:
            pytest.fail(f"PostgreSQL is required when CI is set: {reason}", pytrace=False)
        pytest.skip(reason or "an external QUORUM_TEST_PG_URL server cannot be restarted here")
    server = PgServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_db(own_pg: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"topology_{request.node.name.split('[')[0][-30:].lower()}"
    url = own_pg.create_database(name)
    yield url
    own_pg.drop_database(name)


@pytest.fixture
def webs(tmp_path: Path) -> Iterator[list[Web]]:
    made: list[Web] = []
    yield made
    for web in made:
        web.stop()


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_web_process_killed_mid_load_loses_and_doubles_no_payment(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, webs: list[Web]
) -> None:
    url = (f"sqlite:///{tmp_path / 'topology.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_db"))
    work, token = seed(url)
    web = Web(url, tmp_path / "web.log").start()
    webs.append(web)
    load = Load(work, token, [web.base])
    thread = threading.Thread(target=load.run, daemon=True)
    thread.start()
    for answered in (5, 8):  # kill it twice, each time with payments still to make
        load.wait_for(answered)
        assert not load.done.is_set(), "the load finished before the kill"
        web.kill()
        time.sleep(0.5)  # requests in these moments are refused: the client retries
        web.start()
    load.finish(thread)
    assert load.retries > 0  # the kills really cut the load
    check_exactly_once(url, load)
    load.replay()
    check_exactly_once(url, load)


def test_postgresql_restarted_mid_load_loses_and_doubles_no_payment(
    own_pg: PgServer, pg_db: str, tmp_path: Path, webs: list[Web]
) -> None:
    work, token = seed(pg_db)
    web = Web(pg_db, tmp_path / "web.log").start()
    webs.append(web)
    load = Load(work, token, [web.base])
    thread = threading.Thread(target=load.run, daemon=True)
    thread.start()
    load.wait_for(6)
    assert not load.done.is_set(), "the load finished before the restart"
    own_pg.restart("fast")
    load.finish(thread)
    assert web.proc is not None and web.proc.poll() is None  # the web process lived through it
    check_exactly_once(pg_db, load)
    load.replay()
    log = web.log.read_text()
    assert "Traceback" not in log, log[-3000:]


def test_two_web_processes_and_a_scheduler_share_one_postgresql(
    pg_db: str, tmp_path: Path, webs: list[Web]
) -> None:
    work, token = seed(pg_db)
    mail = MailServer()
    scheduler: subprocess.Popen | None = None
    try:
        webs.extend(Web(pg_db, tmp_path / f"web{i}.log").start() for i in (1, 2))
        with open(tmp_path / "scheduler.log", "w", encoding="utf-8") as out:
            scheduler = subprocess.Popen(
                [sys.executable, "-m", "engine.entry.cli", "--db", pg_db, "scheduler", "run",
                 "--dispatch-every", "1"],
                env=child_env(**mail.env(QUORUM_MAIL_FROM=f"Grants Team <{SENDER}>")),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # every request goes to the next process in turn, and so does every retry
        load = Load(work, token, [w.base for w in webs])
        thread = threading.Thread(target=load.run, daemon=True)
        thread.start()
        load.wait_for(len(work) // 2)
        webs[0].kill()  # one process dies mid-load: the other carries on
        load.finish(thread)
        check_exactly_once(pg_db, load)
        deadline = time.monotonic() + 120
        while True:  # the scheduler sends everything queued, once
            status = outcome(pg_db)[3]
            if set(status) == {"sent"}:
                break
            assert scheduler.poll() is None, (tmp_path / "scheduler.log").read_text()
            assert time.monotonic() < deadline, f"outbox never emptied: {status}"
            time.sleep(0.5)
        received = mail.received
        assert len(received) == sum(status.values())  # no message doubled on the wire
        assert len(by_message_id(received)) == len(received)
        subjects = Counter(r.message["Subject"].split(":")[0] for r in received
                           if "payment" in r.message["Subject"])
        assert sum(subjects.values()) == len(work)
    finally:
        if scheduler is not None and scheduler.poll() is None:
            scheduler.terminate()
            scheduler.wait(30)
        mail.stop()
