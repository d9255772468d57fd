"""The audit chain's HMAC keys: kept outside the database, chosen by id.

Every event written since the chain was keyed stores the id of the key its
hash was made with (``audit_event.key_id``), so a key can be rotated: new
events use the current key, old events verify with the key they name, as
long as the keyring still holds it.

Where the keys come from (engine/settings.py):

- ``QUORUM_AUDIT_KEYRING``: a file, one key a line, ``KEY_ID SECRET``
  (blank lines and ``#`` comments ignored); the last line is the current key.
- ``QUORUM_AUDIT_KEY``: one key ``KEY_ID:SECRET``; if set it is the current
  key (the file, if any, still supplies the older ones).
- neither: the development key (id ``dev``), which is in this source file
  and so protects nothing; ``quorum audit verify`` says so. Once real keys
  are set the development key is not in the keyring: events that name it
  (a demo's, or forged with it) fail verification.

The keyring is read once per process and settings (restart the web and the
scheduler after rotating). Secrets are never printed; error messages name the
file and the line.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import sha256
from pathlib import Path
from typing import Any

from engine.domain.errors import QuorumError
from engine.settings import Settings, get_settings, is_key_id

DEV_KEY_ID = "dev"
_DEV_SECRET = b"quorum-development-audit-key: not a secret, do not use in production"
MIN_SECRET = 32


class KeyringError(QuorumError):
    """The audit keyring cannot be used (the message names the file and line)."""

    code = "audit_keyring"


@dataclass
class Keyring:
    """Keys by id, the current one, and the HMAC state of each key made once
    (a copy per event: the key's pads are not hashed again for every event)."""

    keys: dict[str, bytes]
    current: str
    source: str  # where the current key came from, for messages
    _base: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def development(self) -> bool:
        return self.current == DEV_KEY_ID

    def has(self, key_id: str) -> bool:
        return key_id in self.keys

    def mac(self, key_id: str, body: bytes) -> str:
        """HMAC-SHA256 of ``body`` with key ``key_id``, as hex."""
        base = self._base.get(key_id)
        if base is None:
            base = self._base[key_id] = hmac.new(self.keys[key_id], digestmod=sha256)
        h = base.copy()
        h.update(body)
        return str(h.hexdigest())


def parse_keyring(text: str, where: str) -> dict[str, bytes]:
    """``KEY_ID SECRET`` lines, in order (the last is the current key)."""
    keys: dict[str, bytes] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not is_key_id(parts[0]) or len(parts[1]) < MIN_SECRET:
            raise KeyringError(
                f"audit keyring {where} line {n}: write KEY_ID SECRET, the id 1 to 32 letters, "
                f"digits, '.', '_' or '-' and the secret at least {MIN_SECRET} characters "
                "(make one with 'quorum audit new-key')"
            )
        if parts[0] in keys:
            raise KeyringError(f"audit keyring {where} line {n}: key id {parts[0]!r} is repeated")
        keys[parts[0]] = parts[1].encode()
    return keys


@lru_cache(maxsize=8)
def _load(keyring_path: Path | None, inline: str | None) -> Keyring:
    keys: dict[str, bytes] = {}
    current, source = "", ""
    if keyring_path is not None:
        try:
            text = keyring_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyringError(
                f"QUORUM_AUDIT_KEYRING={str(keyring_path)!r}: cannot read it ({exc.strerror})"
            ) from None
        keys = parse_keyring(text, str(keyring_path))
        if not keys:
            raise KeyringError(f"audit keyring {keyring_path} holds no key")
        current, source = next(reversed(keys)), str(keyring_path)
    if inline is not None:
        key_id, _, secret = inline.partition(":")
        if key_id in keys and keys[key_id] != secret.encode():
            raise KeyringError(
                f"QUORUM_AUDIT_KEY has id {key_id!r}, which the keyring {keyring_path} holds "
                "with another secret: give the new key a new id"
            )
        keys[key_id] = secret.encode()
        current, source = key_id, "QUORUM_AUDIT_KEY"
    if not keys:
        return Keyring({DEV_KEY_ID: _DEV_SECRET}, DEV_KEY_ID, "the development key")
    return Keyring(keys, current, source)


def keyring(settings: Settings | None = None) -> Keyring:
    """The keyring ``settings`` (default: those in force) name (read once per
    distinct setting). The command bus passes the settings it read for the command."""
    s = settings if settings is not None else get_settings()
    return _load(s.audit_keyring, s.audit_key)


def new_secret() -> str:
    """A fresh secret for a keyring line: 32 random bytes as hex."""
    return secrets.token_hex(32)
