"""Shared checks for rule files read from YAML: where a key is (``a.b[2]``) and
whether a value is a mapping with only the allowed keys. Each rule module
passes its own error class, whose messages name the file and the key."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

ErrorFactory = Callable[[str, str, str], Exception]  # (source, where, message)
T = TypeVar("T")
PROJECT = Path(__file__).resolve().parent.parent


def where(base: str, key: str | int) -> str:
    """The path of ``key`` under ``base`` as a person would write it."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{base}.{key}" if base else key
    return f"{base}[{key!r}]"


def mapping(raw: Any, src: str, at: str, allowed: tuple[str, ...], error: ErrorFactory) -> dict:
    """``raw`` if it is a mapping whose keys are all in ``allowed``; else ``error``."""
    if not isinstance(raw, dict):
        raise error(src, at, f"must be a mapping with keys {', '.join(allowed)}")
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise error(
            src,
            where(at, str(unknown[0])),
            f"unknown key {unknown[0]!r}; allowed here: {', '.join(allowed)}",
        )
    return raw


class CachedFiles(Generic[T]):
    """Rule files read, validated and kept while unchanged on disk (keyed by
    path, modification time and size), safe to share between threads."""

    def __init__(self, parse: Callable[[str, str], T], error: ErrorFactory) -> None:
        self._parse = parse  # (text, name shown in errors) -> rules
        self._error = error
        self._cache: dict[tuple[str, int, int], T] = {}
        self._lock = threading.Lock()

    def load(self, p: Path) -> T:
        try:
            st = p.stat()
        except OSError:
            raise self._error(str(p), "", "no such file") from None
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            found = self._parse(p.read_text(encoding="utf-8"), shown(p))
            with self._lock:
                self._cache[key] = found
        return found


def shown(p: Path) -> str:
    """A rule file's name as errors show it: relative to the project when inside it."""
    try:
        return str(p.resolve().relative_to(PROJECT))
    except ValueError:
        return str(p)
