"""Shared checks for rule files read from YAML: where a key is (``a.b[2]``) and
whether a value is a mapping with only the allowed keys. Each rule module
passes its own error class, whose messages name the file and the key."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ErrorFactory = Callable[[str, str, str], Exception]  # (source, where, message)


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
