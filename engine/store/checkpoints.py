"""Signed checkpoints of the audit chain's head, kept outside the database.

A checkpoint says "this chain had COUNT events and the last one's hash was
HEAD at time AT", signed with an Ed25519 key the database never sees. One JSON
object a line, appended to ``<QUORUM_CHECKPOINT_DIR>/checkpoints.jsonl``
(written on every sweep and by ``quorum audit checkpoint``; the latest is
printed in every board paper's footer). Against them ``quorum audit verify``
detects what the keyed hashes alone cannot: the last events deleted and the
head rolled back (fewer events than a checkpoint counted), and a chain
recomputed from some event on (the hash at a checkpoint's count differs).

A line: ``{"chain", "count", "head", "legacy_seq", "legacy_movement", "at",
"signer", "sig"}``; ``chain`` is event 1's hash (so one directory can tell its
database's checkpoints from another's), ``signer`` the first 16 hex digits of
sha256 of the public key, ``sig`` the Ed25519 signature (hex) of the canonical
JSON of the other fields.

The signing key: ``QUORUM_CHECKPOINT_KEY_FILE`` (an unencrypted PKCS#8 PEM
Ed25519 private key; ``quorum audit new-signing-key FILE`` makes one), else
the development key derived from a constant in this file (flagged).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from engine.domain.errors import QuorumError
from engine.settings import get_settings
from engine.store import audit
from engine.store.models import AuditEvent, AuditHead

FILE_NAME = "checkpoints.jsonl"
_DEV_SEED = sha256(b"quorum development checkpoint key: not a secret").digest()
_SIGNED = ("chain", "count", "head", "legacy_seq", "legacy_movement", "at")


class CheckpointError(QuorumError):
    """A checkpoint cannot be written (the chain does not verify, the key is unusable)."""

    code = "audit_checkpoint"


@dataclass(frozen=True)
class Signer:
    key: Ed25519PrivateKey
    public: Ed25519PublicKey
    signer_id: str
    development: bool
    source: str


@lru_cache(maxsize=4)
def _signer(key_file: Path | None) -> Signer:
    if key_file is None:
        key = Ed25519PrivateKey.from_private_bytes(_DEV_SEED)
        source, dev = "the development signing key", True
    else:
        try:
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        except OSError as exc:
            raise CheckpointError(
                f"QUORUM_CHECKPOINT_KEY_FILE={str(key_file)!r}: cannot read it ({exc.strerror})"
            ) from None
        except (ValueError, TypeError):
            raise CheckpointError(
                f"QUORUM_CHECKPOINT_KEY_FILE={str(key_file)!r}: not an unencrypted PEM private "
                "key (make one with 'quorum audit new-signing-key FILE')"
            ) from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise CheckpointError(
                f"QUORUM_CHECKPOINT_KEY_FILE={str(key_file)!r}: an Ed25519 key is needed"
            )
        key, source, dev = loaded, str(key_file), False
    public = key.public_key()
    return Signer(key, public, signer_id(public), dev, source)


def signer() -> Signer:
    """The signing key the settings in force name (read once per setting)."""
    return _signer(get_settings().checkpoint_key_file)


def signer_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256(raw).hexdigest()[:16]


def new_signing_key_pem() -> bytes:
    """A fresh Ed25519 private key, PKCS#8 PEM, unencrypted."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def checkpoint_file() -> Path:
    return get_settings().checkpoint_dir / FILE_NAME


def _message(fields: dict[str, Any]) -> bytes:
    return audit.canonical({k: fields[k] for k in _SIGNED}).encode()


def chain_id(conn: Connection | Session) -> str | None:
    """The chain's identity: event 1's hash (None while the chain is empty)."""
    return conn.execute(
        select(col(AuditEvent.hash)).where(col(AuditEvent.seq) == 1)
    ).scalar_one_or_none()


@dataclass
class Checkpoint:
    chain: str
    count: int
    head: str
    legacy_seq: int
    legacy_movement: int
    at: str
    signer: str
    sig: str
    line: int = 0

    @property
    def short_head(self) -> str:
        return self.head[:12]


@dataclass
class Checkpoints:
    """The checkpoint file read: this chain's good checkpoints in order, and
    what was wrong with any line."""

    path: Path
    mine: list[Checkpoint] = field(default_factory=list)
    others: int = 0  # good lines of other chains
    problems: list[str] = field(default_factory=list)

    @property
    def latest(self) -> Checkpoint | None:
        return self.mine[-1] if self.mine else None


def read_checkpoints(chain: str | None, path: Path | None = None) -> Checkpoints:
    """Read and check every line of the checkpoint file: a line that is not
    JSON, lacks a field, is signed by another key, or whose signature fails is
    a problem (the file was edited, or another installation's key)."""
    path = path if path is not None else checkpoint_file()
    out = Checkpoints(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    except OSError as exc:
        out.problems.append(f"checkpoint file {path}: cannot read it ({exc.strerror})")
        return out
    me = signer()
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        cp, problem = _parse(raw, n, path, me)
        if cp is None:
            out.problems.append(problem)
        elif cp.chain == chain:
            out.mine.append(cp)
        else:
            out.others += 1
    return out


def _parse(raw: str, n: int, path: Path, me: Signer) -> tuple[Checkpoint | None, str]:
    """One line, its signature checked: (the checkpoint, "") or (None, the problem)."""
    where = f"checkpoint file {path} line {n}"
    try:
        data = json.loads(raw)
        cp = Checkpoint(**{k: data[k] for k in (*_SIGNED, "signer", "sig")}, line=n)
        int(cp.count), bytes.fromhex(cp.sig)  # noqa: B018 - shape checks
    except (ValueError, KeyError, TypeError):
        return None, f"{where}: not a checkpoint (the file was edited or damaged)"
    if cp.signer != me.signer_id:
        return None, (
            f"{where}: signed by key {cp.signer}, not by this installation's key "
            f"{me.signer_id} ({me.source}); after rotating the signing key, move the old "
            "file aside (docs/operations.md)"
        )
    try:
        me.public.verify(bytes.fromhex(cp.sig), _message(data))
    except InvalidSignature:
        return None, (
            f"{where}: its signature does not match its contents (checkpoint of "
            f"{cp.count} events at {cp.at} was edited)"
        )
    return cp, ""


def _latest(chain: str) -> Checkpoint | None:
    """This chain's last good checkpoint, reading the file from its end (only the
    lines after it and it are checked: the sweep and the papers need no more)."""
    try:
        lines = checkpoint_file().read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    me = signer()
    for n in range(len(lines), 0, -1):
        raw = lines[n - 1]
        if f'"chain":"{chain}"' not in raw:
            continue
        cp, _ = _parse(raw, n, checkpoint_file(), me)
        if cp is not None and cp.chain == chain:
            return cp
    return None


def _stored_hash(session: Session, seq: int) -> str | None:
    return session.execute(
        select(col(AuditEvent.hash)).where(col(AuditEvent.seq) == seq)
    ).scalar_one_or_none()


def write_checkpoint(engine: Any, now: dt.datetime) -> Checkpoint | None:
    """Sign and append a checkpoint of the chain's head as committed now.

    The events since the last checkpoint are verified first (links and
    HMACs, the last checkpoint's hash still in place): a chain already
    broken is refused, not enshrined. Nothing is written for an empty chain."""
    with Session(engine) as session:
        head = session.get(AuditHead, 1)
        chain = chain_id(session)
        if head is None or chain is None or head.last_seq == 0:
            return None
        last = _latest(chain)
        since = None
        if last is not None:
            if _stored_hash(session, last.count) != last.head or head.last_seq < last.count:
                raise CheckpointError(
                    f"audit checkpoint refused: the chain no longer agrees with the checkpoint "
                    f"of {last.count} events at {last.at}; run 'quorum audit verify'"
                )
            since = (last.count, last.head)
        result = audit.verify(session, since=since)
        if not result.ok:
            raise CheckpointError(
                f"audit checkpoint refused: {result.message()}; run 'quorum audit verify'"
            )
        count, top = head.last_seq, result.last_hash
        fields: dict[str, Any] = {
            "chain": chain, "count": count, "head": top, "legacy_seq": head.legacy_seq,
            "legacy_movement": head.legacy_movement,
            "at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        }  # fmt: skip
    me = signer()
    fields["signer"] = me.signer_id
    fields["sig"] = me.key.sign(_message(fields)).hex()
    path = checkpoint_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(fields, sort_keys=True, separators=(",", ":")) + "\n"
    with path.open("a", encoding="utf-8") as fh:  # append-only, one line per checkpoint
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    return Checkpoint(**fields)


def latest_checkpoint(conn: Connection | Session) -> Checkpoint | None:
    """This chain's latest good checkpoint (None if there is none yet)."""
    chain = chain_id(conn)
    return _latest(chain) if chain is not None else None


def check_chain(result: audit.VerifyResult, found: Checkpoints, chain: str | None) -> list[str]:
    """The verified chain against the checkpoints: truncation (fewer events
    than a checkpoint counted), recomputation (a different hash at a
    checkpoint's count), a moved legacy boundary, a chain the directory does not
    know. ``result`` must have been made with ``pins`` = the checkpoints' counts."""
    problems = list(found.problems)
    if not found.mine:
        if found.others and chain is not None:
            problems.append(
                f"checkpoint file {found.path} holds {found.others} checkpoint(s), none of them "
                "of this chain: event 1 was rewritten, or QUORUM_CHECKPOINT_DIR is another "
                "installation's"
            )
        return problems
    def at(cp: Checkpoint) -> str:
        return f"checkpoint of {cp.at} (line {cp.line})"

    longer = [cp for cp in found.mine if cp.count > result.total]
    if longer:
        cp = max(longer, key=lambda c: c.count)
        problems.append(
            f"truncated: the {at(cp)} counted {cp.count} events, the database has "
            f"{result.total}: events {result.total + 1} to {cp.count} were deleted and the "
            "head rolled back"
        )
    differ = [cp for cp in found.mine
              if cp.count <= result.total and result.pinned.get(cp.count) != cp.head]  # fmt: skip
    if differ:
        cp = differ[0]
        n = len(differ) - 1
        later = f" (and {n} later checkpoint(s) disagree too)" if n else ""
        problems.append(
            f"event {cp.count}: its hash is not the one the {at(cp)} signed "
            f"({cp.short_head}…, found {str(result.pinned.get(cp.count))[:12]}…): the "
            f"chain up to event {cp.count} was rewritten and recomputed{later}"
        )
    cp = found.mine[-1]
    if (cp.legacy_seq, cp.legacy_movement) != (result.legacy_seq, result.legacy_movement):
        problems.append(
            f"audit_head: legacy boundary: expected events ≤ {cp.legacy_seq} and movements "
            f"≤ {cp.legacy_movement} (the {at(cp)}), found {result.legacy_seq} and "
            f"{result.legacy_movement}: the boundary was moved"
        )
    return problems
