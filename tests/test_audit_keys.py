"""The audit chain's keys: where they come from, rotation, the development key,
databases written before keying (migration 0008), and what keying costs a
command (counted, not timed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from engine.commands.service import Quorum
from engine.read.reconcile import integrity_report
from engine.settings import Settings, SettingsError
from engine.store import audit, auditkeys, checkpoints
from engine.store.db import create_schema, make_engine, upgrade

K1 = "1" * 64
K2 = "2" * 64


def _commands(q: Quorum, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        q.execute("register_organisation", {"name": f"Council {i}"}, "system")


def _keys_used(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT seq, key_id FROM audit_event")).all())


def test_a_keyring_file_then_a_rotated_key_both_verify(engine, clock, tmp_path, monkeypatch):
    ring = tmp_path / "keyring"
    ring.write_text(f"# audit keys, oldest first\nk1 {K1}\n")
    monkeypatch.setenv("QUORUM_AUDIT_KEYRING", str(ring))
    q = Quorum(engine, clock)
    _commands(q, 2)
    monkeypatch.setenv("QUORUM_AUDIT_KEY", f"k2:{K2}")  # rotation: k2 is current, k1 still read
    _commands(q, 2, start=2)
    assert _keys_used(engine) == {1: "k1", 2: "k1", 3: "k2", 4: "k2"}
    report = integrity_report(engine)
    assert report.ok, report.problems()
    assert report.chain.key_ids == ["k1", "k2"] and not report.development_key

    ring.write_text(f"k3 {'3' * 64}\n")  # k1 dropped from the keyring by mistake
    monkeypatch.delenv("QUORUM_AUDIT_KEY")
    auditkeys._load.cache_clear()  # the file changed under the same setting: a restart
    report = integrity_report(engine)
    assert not report.ok
    assert report.chain.first_bad_seq == 1
    assert "names audit key 'k1', which the keyring" in report.chain.problem
    assert str(ring) in report.chain.problem


def test_the_development_key_is_flagged(engine, clock):
    _commands(Quorum(engine, clock), 1)
    assert _keys_used(engine) == {1: "dev"}
    report = integrity_report(engine)
    assert report.ok and report.development_key and report.development_signing_key
    text_ = "\n".join(report.lines())
    assert "warning: development key" in text_ and "development signing key" in text_


def test_key_settings_are_checked_and_never_echoed(tmp_path, monkeypatch):
    with pytest.raises(SettingsError) as bad:
        Settings.from_env({"QUORUM_AUDIT_KEY": "k1:tooshort-secret"})
    assert "QUORUM_AUDIT_KEY" in bad.value.message and "tooshort" not in bad.value.message
    with pytest.raises(SettingsError):
        Settings.from_env({"QUORUM_AUDIT_KEY": f"bad id:{K1}"})
    ring = tmp_path / "keyring"
    ring.write_text(f"k1 {K1}\nk2 short\n")
    monkeypatch.setenv("QUORUM_AUDIT_KEYRING", str(ring))
    with pytest.raises(auditkeys.KeyringError) as err:
        auditkeys.keyring()
    assert f"{ring} line 2" in err.value.message and "short" not in err.value.message.split(":")[0]
    ring.write_text(f"k1 {K1}\nk1 {K2}\n")
    monkeypatch.setenv("QUORUM_AUDIT_KEYRING", str(tmp_path / "keyring"))
    auditkeys._load.cache_clear()  # the file changed under the same setting: a restart
    with pytest.raises(auditkeys.KeyringError, match="line 2: key id 'k1' is repeated"):
        auditkeys.keyring()
    auditkeys._load.cache_clear()


def test_hmac_costs_one_keyed_hash_per_event_and_no_file_reads(
    engine, clock, tmp_path, monkeypatch
):
    """The command path's cost of keying, counted: one HMAC per event written
    (where there was one sha256), from a keyed state made once per key; the
    keyring file read once per process, not per command."""
    ring = tmp_path / "keyring"
    ring.write_text(f"k1 {K1}\n")
    monkeypatch.setenv("QUORUM_AUDIT_KEYRING", str(ring))
    auditkeys._load.cache_clear()
    macs = 0
    real_mac = auditkeys.Keyring.mac

    def counting_mac(self, key_id: str, body: bytes) -> str:
        nonlocal macs
        macs += 1
        return real_mac(self, key_id, body)

    monkeypatch.setattr(auditkeys.Keyring, "mac", counting_mac)
    q = Quorum(engine, clock)
    q.execute("create_programme", {"name": "Fund", "pots": {"Main": "500,000", "Other": "1"}},
              "system")  # fmt: skip
    _commands(q, 20)
    with engine.connect() as conn:
        events = conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one()
    assert macs == events == 21  # one keyed hash per event, none more
    info = auditkeys._load.cache_info()
    assert (info.misses, info.hits) == (1, 20)  # read once; each command's append reuses it
    ring_obj = auditkeys.keyring()
    assert list(ring_obj._base) == ["k1"]  # the key's HMAC state made once, copied per event


# ---------------------------------------------------------------- a database from before keying


@pytest.fixture
def legacy_db(tmp_path, clock, monkeypatch):
    """A database at revision 0004 with two events in the old unkeyed chain,
    upgraded: the boundary is recorded and new events are keyed."""
    monkeypatch.setenv("QUORUM_AUDIT_KEY", f"k1:{K1}")
    eng = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(eng, "0004")
    prev = audit.GENESIS
    with eng.begin() as conn:
        for seq in (1, 2):
            fields = (seq, f"2011-04-0{seq}T09:00:00+00:00", "system", "register_organisation",
                      f"ORG:Old {seq}", "{}", f'{{"name":"Old {seq}"}}', "", prev)  # fmt: skip
            h = audit.event_hash(*fields)
            conn.execute(text(
                'INSERT INTO audit_event (seq, at, actor, command, item_ref, before, "after", '
                "reason, prev_hash, hash) VALUES (:s, :at, :a, :c, :i, :b, :af, :r, :p, :h)"),
                dict(zip(("s", "at", "a", "c", "i", "b", "af", "r", "p"), fields, strict=True),
                     h=h))  # fmt: skip
            prev = h
        conn.execute(text("UPDATE audit_head SET last_seq = 2, last_hash = :h"), {"h": prev})
    upgrade(eng)
    yield eng
    eng.dispose()


def test_events_before_keying_verify_with_the_legacy_hash(legacy_db, clock):
    with legacy_db.connect() as conn:
        assert conn.execute(text("SELECT legacy_seq FROM audit_head")).scalar_one() == 2
    _commands(Quorum(legacy_db, clock), 2)
    assert _keys_used(legacy_db) == {1: "", 2: "", 3: "k1", 4: "k1"}
    report = integrity_report(legacy_db)
    assert report.ok, report.problems()
    assert "(2 before keying, legacy unkeyed hash)" in report.lines()[0]


def test_a_legacy_event_rewritten_breaks_the_first_keyed_link(legacy_db, clock):
    _commands(Quorum(legacy_db, clock), 1)
    with legacy_db.begin() as conn:
        prev = audit.GENESIS
        for ev in conn.execute(text("SELECT * FROM audit_event WHERE seq <= 2 ORDER BY seq")):
            actor = "someone@else.example"
            h = audit.event_hash(ev.seq, ev.at, actor, ev.command, ev.item_ref, ev.before,
                                 ev.after, ev.reason, prev)  # fmt: skip
            conn.execute(text("UPDATE audit_event SET actor = :a, prev_hash = :p, hash = :h "
                              "WHERE seq = :s"), {"a": actor, "p": prev, "h": h, "s": ev.seq})
            prev = h
    report = integrity_report(legacy_db)
    assert not report.ok
    assert report.chain.first_bad_seq == 3 and "does not follow event 2" in report.chain.problem


def test_moving_the_legacy_boundary_is_caught_by_the_checkpoint(legacy_db, clock):
    """Declare every event legacy and recompute them unkeyed: the chain alone
    cannot tell, the signed checkpoint can."""
    _commands(Quorum(legacy_db, clock), 2)
    assert checkpoints.write_checkpoint(legacy_db, dt.datetime.now(dt.UTC)) is not None
    with legacy_db.begin() as conn:
        prev = audit.GENESIS
        for ev in conn.execute(text("SELECT * FROM audit_event ORDER BY seq")):
            h = audit.event_hash(ev.seq, ev.at, ev.actor, ev.command, ev.item_ref, ev.before,
                                 ev.after, ev.reason, prev)  # fmt: skip
            conn.execute(text("UPDATE audit_event SET key_id = '', money = '', prev_hash = :p, "
                              "hash = :h WHERE seq = :s"), {"p": prev, "h": h, "s": ev.seq})
            prev = h
        conn.execute(text("UPDATE audit_head SET legacy_seq = 4, last_hash = :h"), {"h": prev})
    with Session(legacy_db) as s:
        assert audit.verify(s).ok  # the chain alone is fooled
    report = integrity_report(legacy_db)
    assert not report.ok
    problems = "\n".join(report.problems())
    assert "legacy boundary: expected events ≤ 2" in problems and "found 4" in problems
    assert "event 4: its hash is not the one the checkpoint" in problems


def test_create_schema_starts_keyed(tmp_path, clock):
    eng = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    create_schema(eng)
    with eng.connect() as conn:
        row = conn.execute(text("SELECT legacy_seq, legacy_movement FROM audit_head")).one()
    assert tuple(row) == (0, 0)
    eng.dispose()


def test_checkpoint_refused_when_the_chain_is_already_broken(engine, clock):
    _commands(Quorum(engine, clock), 3)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'x' WHERE seq = 2"))
    with pytest.raises(checkpoints.CheckpointError, match="audit chain broken at event 2"):
        checkpoints.write_checkpoint(engine, dt.datetime.now(dt.UTC))
    assert not checkpoints.checkpoint_file().exists()


def test_a_new_signing_key_file(tmp_path: Path, monkeypatch, engine, clock):
    key = tmp_path / "signing.pem"
    key.write_bytes(checkpoints.new_signing_key_pem())
    monkeypatch.setenv("QUORUM_CHECKPOINT_KEY_FILE", str(key))
    _commands(Quorum(engine, clock), 1)
    cp = checkpoints.write_checkpoint(engine, dt.datetime.now(dt.UTC))
    assert cp is not None and cp.signer == checkpoints.signer().signer_id
    assert not checkpoints.signer().development
    other = tmp_path / "other.pem"
    other.write_bytes(checkpoints.new_signing_key_pem())
    monkeypatch.setenv("QUORUM_CHECKPOINT_KEY_FILE", str(other))  # rotated, old file kept
    report = integrity_report(engine)
    assert not report.ok
    assert any("signed by key" in p and "move the old file aside" in p
               for p in report.checkpoint_problems)  # fmt: skip
