"""Delivery channels, fed only from the outbox by the dispatcher.

The file channel (for demos and tests) writes each message as an RFC 5322
file named after its unique outbox key, so writing it twice is harmless."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


class Channel(Protocol):
    def send(self, key: str, message: EmailMessage) -> None: ...


class FileChannel:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, key: str, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", key) + ".eml"
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(bytes(message))
        tmp.replace(self.folder / name)  # atomic: a reader never sees half a message
