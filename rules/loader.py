"""The one loader for Quorum's four rule-file formats, and their one cache.

Every rule file (a scoring rule set, the scheme of delegation, the return
schedules, the reminder ladder) is read the same way: the path is resolved by
its module (a name under ``rules/`` or a path), the bytes read, the text parsed
as YAML by :func:`engine.domain.yamlio.load_yaml`, each mapping checked against
the format's pydantic model (:class:`Keys`: the keys a mapping may have and
those it must have), and the result built by the format's module, whose
messages name the file, the key and what is allowed.

One bounded cache (:data:`MAX_ENTRIES`, least recently used dropped) holds the
built rules, keyed by format, path and the sha256 of the content: an edited
file is read afresh on the next call, and the compiled scoring rule set is
built once per version, not per call. A file is read and hashed only when its
identity (inode, size, modification and change times) differs from the last
read of that path (or it changed in the last :data:`SETTLED_SECONDS`, when a
same-size edit within the clock's tick could keep its times: the racy case): a lifecycle asks for
rules about 13 times, and each ask was a read and a sha256. Text that is not a file (a what-if
upload) goes through :func:`parse` and is never cached: it is parsed,
evaluated and released.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict

__all__ = [
    "MAX_ENTRIES",
    "NAME_RE",
    "VERSION_RE",
    "Format",
    "Keys",
    "cache_info",
    "check",
    "clear_cache",
    "line_of",
    "load",
    "load_text",
    "parse",
    "parse_file",
    "shown",
    "where",
    "yaml_problem",
]

ErrorFactory = Callable[[str, str, str], Exception]  # (source, where, message)
T = TypeVar("T")
PROJECT = Path(__file__).resolve().parent.parent
# Entries in the cache, all formats together: the shipped files (one scheme, one
# schedule, one ladder, a handful of rule sets) and the versions stored with
# decisions fit many times over; anything beyond is re-read when next needed.
MAX_ENTRIES = 32
# a file modified this recently is read and hashed on every load (its times may not
# have moved for an edit of the same size within the clock's tick)
SETTLED_SECONDS = 2

# How a format words a key that is not allowed, and a required key left out:
#   "scoring":    criteria[0]: unknown key 'x'; keys are: id, question, ...
#   "delegation": limits.x: unknown key 'x'; keys of limits are: per_decision, ...
#   "schedule":   default.x: unknown key 'x'; allowed here: returns, move, from
Wording = Literal["scoring", "delegation", "schedule"]


# Every rule file's header: its name and its version (stored with what it decided)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}")


def yaml_problem(exc: Exception) -> tuple[str, str]:
    """Where (``line N``, or "") and what is wrong, for text that is not YAML
    (a yaml.YAMLError and its marks)."""
    mark = getattr(exc, "problem_mark", None)
    at = f"line {mark.line + 1}" if mark is not None else ""
    return at, getattr(exc, "problem", None) or str(exc)


def where(base: str, key: str | int) -> str:
    """The path of ``key`` under ``base`` as a person would write it (``a.b[2]``)."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{base}.{key}" if base else key
    return f"{base}[{key!r}]"


_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]")


def line_of(text: str, at: str) -> int | None:
    """The line (from 1) of the place ``at`` names in a rule file's text
    (``criteria[1].outcomes[0].points``, as :func:`where` writes it): the deepest
    key or item found on the way; None when the text is not YAML or ``at`` names
    no place (``top level``). A message that names a place can then name its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None or not at or at == "top level":
        return None
    found: int | None = None
    pos = 0
    while pos < len(at):
        step = _STEP.match(at, pos)
        if step is None:
            break
        pos = step.end()
        key, index, quoted = step.groups()
        if index is not None and isinstance(node, yaml.SequenceNode):
            if int(index) >= len(node.value):
                break
            node = node.value[int(index)]
            found = node.start_mark.line + 1
            continue
        name = key if key is not None else quoted
        if name is None or not isinstance(node, yaml.MappingNode):
            break
        match = next((kv for kv in node.value if getattr(kv[0], "value", None) == name), None)
        if match is None:
            break
        found = match[0].start_mark.line + 1
        node = match[1]
    return found


def shown(p: Path) -> str:
    """A rule file's name as errors show it: relative to the project when inside it."""
    try:
        return str(p.resolve().relative_to(PROJECT))
    except ValueError:
        return str(p)


# ------------------------------------------------------------------ models


class Keys(BaseModel):
    """A mapping in a rule file: its fields are the keys allowed (by alias where
    the key is a Python word, e.g. ``from``); a field without a default is a key
    that must be there. Values are checked by the format's module, whose
    messages say what each key accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @classmethod
    def allowed(cls) -> tuple[str, ...]:
        return tuple(f.alias or name for name, f in cls.model_fields.items())


def check(
    model: type[Keys],
    raw: Any,
    *,
    source: str,
    at: str,
    error: ErrorFactory,
    wording: Wording,
    not_mapping: str | None = None,
) -> dict:
    """``raw`` if it is a mapping ``model`` accepts; else ``error`` naming the file,
    the key and what is allowed there (unknown keys first, in the file's order,
    then missing ones, in the model's order)."""
    allowed = model.allowed()
    if not isinstance(raw, dict):
        raise error(source, at, not_mapping or f"must be a mapping with keys {', '.join(allowed)}")
    try:
        model.model_validate(raw)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        unknown = [k for k in raw if k not in allowed]
        if unknown:
            raise _unknown(error, wording, source, at, unknown[0], allowed) from None
        for e in errors:
            if e["type"] == "missing":
                key = str(e["loc"][0])
                raise error(source, where(at, key), "is required") from None
        raise error(source, at, "; ".join(str(e["msg"]) for e in errors)) from None  # not reached
    return raw


def _unknown(
    error: ErrorFactory, wording: Wording, source: str, at: str, key: Any, allowed: tuple[str, ...]
) -> Exception:
    keys = ", ".join(allowed)
    if wording == "scoring":
        return error(source, at, f"unknown key {key!r}; keys are: {keys}")
    if wording == "delegation":
        of = f"of {at} " if at else ""
        return error(
            source, f"{at}.{key}" if at else str(key), f"unknown key {key!r}; keys {of}are: {keys}"
        )
    return error(source, where(at, str(key)), f"unknown key {key!r}; allowed here: {keys}")


# ------------------------------------------------------------------ formats


def _cannot_read(fmt: Format[Any], path: Path, exc: OSError) -> Exception:
    return fmt.error(path.name, "", f"cannot be read: {exc.strerror}")


@dataclass(frozen=True)
class Format(Generic[T]):
    """A rule-file format: how to build its rules from a file's text."""

    kind: str  # "scoring", "delegation", "returns", "reminders"
    build: Callable[[str, str, Path | None, str], T]  # (text, source, path, sha256) -> rules
    error: ErrorFactory
    # the file's name in errors; and the error for a file that cannot be read
    source: Callable[[Path], str] = lambda p: p.name
    unreadable: Callable[[Format[Any], Path, OSError], Exception] = _cannot_read


class _Cache:
    """Least recently used first out, safe to share between threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, str, str]) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, str, str], value: Any) -> Any:
        with self._lock:
            found = self._items.setdefault(key, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return found

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _Cache(MAX_ENTRIES)


def _read(fmt: Format[Any], path: Path) -> tuple[bytes, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fmt.unreadable(fmt, path, exc) from None
    return data, hashlib.sha256(data).hexdigest()


def _decode(fmt: Format[Any], data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fmt.error(source, "", f"is not UTF-8 text ({exc.reason})") from None


# (format, absolute path) -> (the file's identity when last read, its cache key)
_seen: dict[tuple[str, str], tuple[tuple[int, int, int, int], tuple[str, str, str]]] = {}


def load(fmt: Format[T], path: Path) -> T:
    """The rules in the file at ``path`` (resolved by the format's module), built
    once per content and kept in the bounded cache; the file is read and hashed
    again only when its identity changed (module docstring)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise fmt.unreadable(fmt, path, exc) from None
    identity = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    where = (fmt.kind, os.path.abspath(path))
    known = _seen.get(where)
    if known is not None and known[0] == identity:
        found = _cache.get(known[1])
        if found is not None:
            return found
    data, sha = _read(fmt, path)
    key = (fmt.kind, str(path.resolve()), sha)
    found = _cache.get(key)
    if found is None:
        source = fmt.source(path)
        found = _cache.put(
            key, fmt.build(_decode(fmt, data, source), source, path.resolve(), sha)
        )
    if time.time_ns() - st.st_ctime_ns > SETTLED_SECONDS * 10**9:  # (any change moves it)
        if len(_seen) >= 4 * MAX_ENTRIES:
            _seen.clear()
        _seen[where] = (identity, key)
    return found


def parse_file(fmt: Format[T], path: Path) -> T:
    """The rules in a file read once for a preview (what-if): built, never cached."""
    data, sha = _read(fmt, path)
    source = fmt.source(path)
    return fmt.build(_decode(fmt, data, source), source, path.resolve(), sha)


def load_text(fmt: Format[T], text: str, source: str) -> T:
    """Rules from text kept in the database (a stored version): cached like a file."""
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = (fmt.kind, f"text:{source}", sha)
    found = _cache.get(key)
    if found is not None:
        return found
    return _cache.put(key, fmt.build(text, source, None, sha))


def parse(fmt: Format[T], text: str, source: str) -> T:
    """Rules from text that is not kept (a what-if upload): built, never cached."""
    return fmt.build(text, source, None, hashlib.sha256(text.encode("utf-8")).hexdigest())


def cache_info() -> Mapping[str, int]:
    """Entries, bound, hits and misses of the one cache."""
    return {"entries": len(_cache), "max": _cache.size, "hits": _cache.hits,
            "misses": _cache.misses}  # fmt: skip


def clear_cache() -> None:
    _cache.clear()
    _seen.clear()
