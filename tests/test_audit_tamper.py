"""Issue 11, point 4: the audit trail cannot be rewritten unseen.

A year of money (tests/scenarios/money-2011-12.yaml: awards, payments, a
reversal, repayments, deposits, clawback, delegated approval) is replayed
once per database with a real keyring and signing key (not the development
ones), checkpointed along the way. Each test works on a copy, tampers with
it as a database administrator would (plain SQL, no key) and runs
``quorum audit verify`` as an operator would: it must exit non-zero naming
what is wrong. The untouched copy verifies clean (no false alarms).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.entry.replay import StepRecord, run
from engine.entry.scheduler import sweep
from engine.read.papers import paper_context
from engine.read.reconcile import integrity_report
from engine.store import audit, auditkeys, checkpoints
from engine.store.db import make_engine
from notifications.papers import render

REPO = Path(__file__).resolve().parents[1]
SCENARIO = Path(__file__).parent / "scenarios" / "money-2011-12.yaml"
SECRET = "a" * 16 + "0123456789abcdef" * 3  # the installation's key: the attacker lacks it


@dataclass
class Year:
    kind: str  # sqlite / postgresql
    url: str
    folder: Path  # the keyring, the signing key and the checkpoints
    pg: Any = None


def _keys(folder: Path) -> dict[str, str]:
    return {
        "QUORUM_AUDIT_KEYRING": str(folder / "keyring"),
        "QUORUM_CHECKPOINT_KEY_FILE": str(folder / "signing.pem"),
        "QUORUM_CHECKPOINT_DIR": str(folder / "checkpoints"),
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def year(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Year]:
    folder = tmp_path_factory.mktemp("audit-year")
    (folder / "keyring").write_text(f"# installation key\nk1 {SECRET}\n")
    (folder / "signing.pem").write_bytes(checkpoints.new_signing_key_pem())
    pg, name = None, None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'year.db'}"
    else:
        pg = request.getfixturevalue("pg_server")
        name = f"t_audit_year_{uuid.uuid4().hex[:12]}"
        url = pg.create_database(name)
    steps = 0

    def checkpoint_now_and_then(record: StepRecord, engine: Any) -> None:
        nonlocal steps
        steps += 1
        if steps % 15 == 0:  # as the daily sweep would
            checkpoints.write_checkpoint(engine, dt.datetime.now(dt.UTC))

    with pytest.MonkeyPatch.context() as mp:
        for k, v in _keys(folder).items():
            mp.setenv(k, v)
        result = run(SCENARIO, url, after_step=checkpoint_now_and_then)
        assert result.to_json()["ok"]
        eng = make_engine(url)
        assert checkpoints.write_checkpoint(eng, dt.datetime.now(dt.UTC)) is not None
        eng.dispose()
    try:
        yield Year(request.param, url, folder, pg)
    finally:
        if name is not None:
            pg.drop_database(name)


@dataclass
class Copy:
    url: str
    engine: Any
    folder: Path

    def sql(self, statement: str, **params: Any) -> Any:
        with self.engine.begin() as conn:
            return conn.execute(text(statement), params)

    def one(self, statement: str, **params: Any) -> Any:
        """The first row."""
        with self.engine.connect() as conn:
            return conn.execute(text(statement), params).first()

    def verify(self) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        return subprocess.run(
            [sys.executable, "-m", "engine.entry.cli", "--db", self.url, "audit", "verify"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip

    def head(self) -> tuple[int, str]:
        row = self.one("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
        return int(row[0]), str(row[1])


@pytest.fixture
def copy(year: Year, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Copy]:
    """A copy of the year's database and of its checkpoint folder, the keys in force."""
    folder = tmp_path / "installation"
    shutil.copytree(year.folder, folder, ignore=shutil.ignore_patterns("year.db*"))
    for k, v in _keys(folder).items():
        monkeypatch.setenv(k, v)
    name = None
    if year.kind == "sqlite":
        shutil.copy(make_url(year.url).database or "", tmp_path / "copy.db")
        url = f"sqlite:///{tmp_path / 'copy.db'}"
    else:
        name = f"t_audit_copy_{uuid.uuid4().hex[:12]}"
        source = make_url(year.url).database
        admin = create_engine(make_url(year.url).set(database="postgres"),
                              isolation_level="AUTOCOMMIT")  # fmt: skip
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
        admin.dispose()
        url = str(make_url(year.url).set(database=name).render_as_string(hide_password=False))
    eng = make_engine(url)
    try:
        yield Copy(url, eng, folder)
    finally:
        eng.dispose()
        if name is not None:
            year.pg.drop_database(name)


def _chain_alone_ok(c: Copy) -> bool:
    with Session(c.engine) as s:
        return audit.verify(s).ok


# ---------------------------------------------------------------- no false alarms


def test_a_year_of_money_verifies_clean(copy: Copy) -> None:
    out = copy.verify()
    assert out.returncode == 0, out.stderr
    assert "audit chain intact" in out.stdout and "keys k1" in out.stdout
    assert "every payment, ledger line, grant total and pot balance agrees" in out.stdout
    assert "development" not in out.stdout  # real keys in force: no warning
    report = integrity_report(copy.engine)
    assert report.ok, report.problems()
    assert report.movements >= 20 and report.checkpoints >= 3
    assert report.latest is not None and report.latest.count == copy.head()[0]


def test_every_money_kind_is_recorded_under_the_hmac(copy: Copy) -> None:
    kinds = set()
    with copy.engine.connect() as conn:
        for (money,) in conn.execute(text("SELECT money FROM audit_event WHERE money <> ''")):
            kinds |= {m["kind"] for m in json.loads(money)}
        moved = conn.execute(text("SELECT COUNT(*) FROM money_movement")).scalar_one()
        keys = set(conn.execute(text("SELECT DISTINCT key_id FROM audit_event")).scalars())
    assert kinds == {"allocate", "commit", "pay", "release", "repay", "forfeit", "recover"}
    assert integrity_report(copy.engine).movements == moved
    assert keys == {"k1"}


def test_the_sweep_writes_a_checkpoint_and_papers_print_it(copy: Copy) -> None:
    before = len((copy.folder / "checkpoints" / "checkpoints.jsonl").read_text().splitlines())
    sweep(copy.engine, dt.date(2012, 1, 5))
    lines = (copy.folder / "checkpoints" / "checkpoints.jsonl").read_text().splitlines()
    assert len(lines) == before + 1
    last = json.loads(lines[-1])
    count, head = copy.head()
    assert (last["count"], last["head"]) == (count, head)  # the sweep's own event included
    meeting = copy.one("SELECT ref FROM meeting ORDER BY id").ref
    ctx = paper_context(copy.engine, "minutes", meeting)
    for fmt in ("md", "html"):
        paper = render("minutes", ctx, fmt)
        assert f"signed checkpoint of {count} events" in paper
        assert head[:12] in paper


# ---------------------------------------------------------------- the four attacks


def test_1_deleting_the_last_events_and_rolling_the_head_back(copy: Copy) -> None:
    n, _ = copy.head()
    keep = n - 3
    kept_hash = copy.one("SELECT hash FROM audit_event WHERE seq = :s", s=keep).hash
    copy.sql("DELETE FROM audit_event WHERE seq > :s", s=keep)
    copy.sql("UPDATE audit_head SET last_seq = :s, last_hash = :h WHERE id = 1",
             s=keep, h=kept_hash)  # fmt: skip
    assert _chain_alone_ok(copy)  # what the old verify said: intact
    out = copy.verify()
    assert out.returncode == 1
    assert "truncated: the checkpoint of" in out.stderr
    assert f"counted {n} events, the database has {keep}" in out.stderr
    assert f"events {keep + 1} to {n} were deleted" in out.stderr


def test_2_a_payment_and_its_ledger_line_multiplied_by_ten(copy: Copy) -> None:
    pay = copy.one("SELECT ref, amount_pence, grant_id FROM payment ORDER BY id DESC LIMIT 1")
    move = copy.one("SELECT id FROM money_movement WHERE kind = 'pay' AND item_ref = :r", r=pay.ref)
    seq = next(s for s, money in copy.sql("SELECT seq, money FROM audit_event WHERE money <> ''")
               if any(m["id"] == move.id for m in json.loads(money)))  # fmt: skip
    grant = copy.one("SELECT ref FROM grant_award WHERE id = :g", g=pay.grant_id).ref
    copy.sql("UPDATE payment SET amount_pence = amount_pence * 10 WHERE ref = :r", r=pay.ref)
    copy.sql("UPDATE money_movement SET amount_pence = amount_pence * 10 WHERE id = :i", i=move.id)
    assert _chain_alone_ok(copy)  # the chain itself is untouched
    out = copy.verify()
    assert out.returncode == 1
    a, ten = pay.amount_pence, pay.amount_pence * 10
    assert (f"event {seq}: money_movement {move.id} (pay {pay.ref}) amount_pence: expected {a} "
            in out.stderr), out.stderr  # fmt: skip
    assert f"found {ten} (" in out.stderr
    assert f"event {seq}: payment {pay.ref} amount_pence: expected {a} " in out.stderr
    assert f"grant ledger {grant} paid_pence: expected" in out.stderr
    assert "pot ledger" in out.stderr and "paid_pence" in out.stderr
    assert "paid ≤ committed" in out.stderr  # ten times the payment is more than committed


def _rewrite_actor_and_recompute(c: Copy, how: str) -> int:
    """Change one payment event's actor and recompute every later hash; ``how``:
    'unkeyed' (the old sha256), 'dev' (HMAC with the public development key),
    'stolen' (HMAC with the installation's own key)."""
    seq = c.one("SELECT seq FROM audit_event WHERE command = 'release_payment' ORDER BY seq").seq
    rows = list(c.sql("SELECT * FROM audit_event WHERE seq >= :s ORDER BY seq", s=seq))
    prev = c.one("SELECT hash FROM audit_event WHERE seq = :s", s=seq - 1).hash
    dev = auditkeys.Keyring({"dev": auditkeys._DEV_SECRET}, "dev", "dev")
    stolen = auditkeys.Keyring({"k1": SECRET.encode()}, "k1", "stolen")
    for r in rows:
        actor = "chair@emiep.example" if r.seq == seq else r.actor
        key_id = "dev" if how == "dev" else r.key_id
        fields = (r.seq, r.at, actor, r.command, r.item_ref, r.before, r.after, r.reason, prev)
        if how == "unkeyed":
            h = audit.event_hash(*fields)
        else:
            h = audit.keyed_hash(dev if how == "dev" else stolen, key_id, *fields, r.money)
        c.sql("UPDATE audit_event SET actor = :a, prev_hash = :p, hash = :h, key_id = :k "
              "WHERE seq = :s", a=actor, p=prev, h=h, k=key_id, s=r.seq)  # fmt: skip
        prev = h
    c.sql("UPDATE audit_head SET last_hash = :h WHERE id = 1", h=prev)
    return seq


def test_3_an_actor_rewritten_and_every_later_hash_recomputed_without_the_key(copy) -> None:
    seq = _rewrite_actor_and_recompute(copy, "unkeyed")
    out = copy.verify()
    assert out.returncode == 1
    assert f"audit chain broken at event {seq}" in out.stderr
    assert f"event {seq}: (release_payment" in out.stderr and "chair@emiep.example" in out.stderr
    assert "its HMAC under key 'k1' does not match" in out.stderr
    assert "the chain up to event" in out.stderr and "rewritten and recomputed" in out.stderr


def test_3_recomputed_with_the_public_development_key(copy: Copy) -> None:
    seq = _rewrite_actor_and_recompute(copy, "dev")
    out = copy.verify()
    assert out.returncode == 1
    assert f"event {seq}: (release_payment" in out.stderr
    assert "names audit key 'dev', which the keyring" in out.stderr
    assert "rewritten and recomputed" in out.stderr


def test_3_even_with_the_hmac_key_the_checkpoint_catches_it(copy: Copy) -> None:
    """An insider holding the HMAC key but not the signing key: the chain verifies
    on its own, the signed checkpoints do not agree."""
    _rewrite_actor_and_recompute(copy, "stolen")
    assert _chain_alone_ok(copy)
    out = copy.verify()
    assert out.returncode == 1
    assert "its hash is not the one the checkpoint of" in out.stderr
    assert "rewritten and recomputed" in out.stderr


def test_4_truncation_then_new_events_is_caught_at_the_last_checkpoint(copy: Copy) -> None:
    """Roll back past the last checkpoint and let the system write on: the count
    passes the checkpoint's again, the hash at its count does not match."""
    n, _ = copy.head()
    keep = n - 2
    kept_hash = copy.one("SELECT hash FROM audit_event WHERE seq = :s", s=keep).hash
    copy.sql("DELETE FROM audit_event WHERE seq > :s", s=keep)
    copy.sql("UPDATE audit_head SET last_seq = :s, last_hash = :h WHERE id = 1",
             s=keep, h=kept_hash)  # fmt: skip
    q = Quorum(copy.engine)
    for i in range(3):
        q.execute("register_organisation", {"name": f"Cover Story {i}"}, "system")
    assert copy.head()[0] == keep + 3 > n
    assert _chain_alone_ok(copy)
    out = copy.verify()
    assert out.returncode == 1
    assert f"event {n}: its hash is not the one the checkpoint of" in out.stderr
    with Session(copy.engine) as s:
        last = checkpoints.read_checkpoints(checkpoints.chain_id(s)).latest
    assert last is not None and last.count == n


def test_an_edited_checkpoint_line_is_named(copy: Copy) -> None:
    path = copy.folder / "checkpoints" / "checkpoints.jsonl"
    lines = path.read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["count"] -= 3  # make the file agree with a truncation
    lines[-1] = json.dumps(forged, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    out = copy.verify()
    assert out.returncode == 1
    assert f"line {len(lines)}: its signature does not match its contents" in out.stderr
