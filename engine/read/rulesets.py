"""Scoring rule sets, read side: the one resolver of a round's rule set, the
choices the Rounds page offers, and a rule set's versions for its page.

A round names its rule set by text (``round.rule_set``, the ``rules`` of
open_round and score_round):

- ``efficiency-bids-2011``: the shipped file ``rules/scoring/<name>.yaml`` (or a
  path), as it is now (rules.scoring.load_rule_set);
- ``efficiency-bids-2011@2011.2``: a version stored in ``rule_set_version``
  (uploaded through upload_rule_set, or a file's text as it was when first
  used), compiled from the stored body (rules.scoring.stored_rule_set).

:func:`resolve_rule_set` is the only place that tells the two apart: the
commands (open_round, score_round, override_score), the ranking and the kept
ranking all call it. :func:`parse_candidate` checks uploaded or pasted text
with the shipped files' loader and words a refusal with its line
(upload_rule_set and the preview page use it). Nothing here writes.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.domain.errors import NotFound, ValidationError
from engine.store.models import Person, Round, RuleSetVersion, Score
from rules.loader import NAME_RE, line_of
from rules.loader import where as loader_where
from rules.scoring import (
    RuleFileError,
    RuleSet,
    available,
    load_rule_set,
    rule_set_from_text,
    stored_rule_set,
)

__all__ = [
    "STORED",
    "RuleSetChoice",
    "VersionRow",
    "latest_version",
    "parse_candidate",
    "refusal",
    "resolve_rule_set",
    "rule_set_choices",
    "rule_set_names",
    "split_stored",
    "stored_label",
    "version_key",
    "versions",
]

RSV_T = RuleSetVersion.__table__
ROUND_T = Round.__table__
SCORE_T = Score.__table__
PERSON_T = Person.__table__
STORED = "@"  # name@version: a stored version
SOURCE = "the uploaded rule set"  # how refusals of uploaded or pasted text name it
_PART = re.compile(r"\d+|\D+")


def split_stored(text: str) -> tuple[str, str] | None:
    """(name, version) when ``text`` names a stored version (``name@version``), else None."""
    name, at, version = text.strip().partition(STORED)
    if not at or "/" in name or "\\" in name:
        return None
    return name, version


def stored_label(name: str, version: str) -> str:
    """How a stored version is named (what open_round's ``rules`` takes)."""
    return f"{name}{STORED}{version}"


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A version's order as people read it: numbers as numbers ("2011.10" after
    "2011.9"), other parts as text; a number sorts before text in the same place."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _PART.findall(version))


def resolve_rule_set(conn: Session | Connection, name: str) -> RuleSet:
    """The rule set ``name`` names: a shipped file by name or path, or a stored
    version (``name@version``). Refusals name the field ``rules``."""
    stored = split_stored(name)
    if stored is None:
        return load_rule_set(name)
    rs_name, version = stored
    row = conn.execute(
        select(RSV_T.c.body).where(RSV_T.c.name == rs_name, RSV_T.c.version == version)
    ).first()
    if row is None:
        known = [stored_label(rs_name, v) for v in _stored_versions(conn, rs_name)]
        have = f"; stored: {', '.join(known)}" if known else "; none is stored"
        raise ValidationError(
            f"rules: no stored version {version!r} of rule set {rs_name!r}{have}", field="rules"
        )
    try:
        return stored_rule_set(row.body, stored_label(rs_name, version))
    except RuleFileError as exc:  # e.g. a scheme of delegation named like a rule set
        raise ValidationError(
            f"rules: {stored_label(rs_name, version)} is not a scoring rule set ({exc.message})",
            field="rules",
        ) from None


def _stored_versions(conn: Session | Connection, name: str) -> list[str]:
    found = [r.version for r in conn.execute(select(RSV_T.c.version).where(RSV_T.c.name == name))]
    return sorted(found, key=version_key)


def _uploaded_names(conn: Session | Connection) -> list[str]:
    q = select(RSV_T.c.name).where(RSV_T.c.uploaded_by_id.is_not(None)).distinct()
    return sorted(r.name for r in conn.execute(q))


def rule_set_names(conn: Session | Connection) -> list[str]:
    """Every scoring rule set: shipped files and names only uploaded."""
    return sorted(set(available()) | set(_uploaded_names(conn)))


def latest_version(conn: Session | Connection, name: str) -> str | None:
    """The highest version of ``name`` stored or shipped (:func:`version_key`), or None."""
    known = _stored_versions(conn, name)
    if name in available():
        known.append(load_rule_set(name).version)
    return max(known, key=version_key) if known else None


class RuleSetChoice(TypedDict):
    value: str  # what open_round's rules takes
    label: str


def rule_set_choices(conn: Session | Connection) -> list[RuleSetChoice]:
    """What a round may be opened with: each shipped file (as it is now) and each
    uploaded version, newest first within a name."""
    people = _people(conn)
    out: list[RuleSetChoice] = []
    for name in available():
        label = f"{name} (shipped file, version {_file_version(name)})"
        out.append({"value": name, "label": label})
    uploaded = conn.execute(
        select(RSV_T.c.name, RSV_T.c.version, RSV_T.c.uploaded_by_id, RSV_T.c.loaded_at).where(
            RSV_T.c.uploaded_by_id.is_not(None)
        )
    ).all()
    for r in sorted(uploaded, key=lambda r: (r.name, version_key(r.version)), reverse=True):
        who = people.get(r.uploaded_by_id, "someone")
        out.append(
            {
                "value": stored_label(r.name, r.version),
                "label": f"{r.name} version {r.version} (uploaded by {who} on "
                f"{r.loaded_at:%-d %B %Y})",
            }
        )
    return out


def _file_version(name: str) -> str:
    try:
        return load_rule_set(name).version
    except RuleFileError:  # a broken shipped file: named, and refused when chosen
        return "unreadable"


def _people(conn: Session | Connection) -> dict[int, str]:
    return {p.id: p.name for p in conn.execute(select(PERSON_T.c.id, PERSON_T.c.name))}


class VersionRow(TypedDict):
    id: int | None  # None: the shipped file, not yet used
    name: str
    version: str
    value: str  # what open_round's rules takes for it
    sha256: str
    title: str
    uploaded_by: str  # "" when stored on first use of the file
    stored_at: str  # ISO date and time; "" for a file not yet used
    shipped: bool  # the shipped file has this version and content
    rounds: list[str]  # rounds opened with it or scored with it
    previous: str  # the version it is compared with ("" for the first)
    diff: list[str]  # unified diff against the previous version's text


def versions(conn: Session | Connection, name: str) -> list[VersionRow]:
    """The versions of rule set ``name``, oldest first: each stored one, and the
    shipped file if its content is not stored yet; each with who uploaded it, the
    rounds that used it and its differences from the version before it."""
    if not NAME_RE.fullmatch(name):
        raise NotFound(f"no rule set named {name!r}", field="rules", item=name)
    people = _people(conn)
    rows = conn.execute(
        select(RSV_T).where(RSV_T.c.name == name)
    ).all()
    rows = sorted(rows, key=lambda r: version_key(r.version))
    shipped: RuleSet | None = None
    if name in available():
        try:
            shipped = load_rule_set(name)
        except RuleFileError:
            shipped = None
    if not rows and shipped is None:
        raise NotFound(f"no rule set named {name!r}", field="rules", item=name)
    ids = [r.id for r in rows]
    scored: dict[int, set[str]] = {i: set() for i in ids}
    if ids:
        for s in conn.execute(
            select(SCORE_T.c.rule_set_version_id, ROUND_T.c.ref)
            .join(ROUND_T, ROUND_T.c.id == SCORE_T.c.round_id)
            .where(SCORE_T.c.rule_set_version_id.in_(ids))
            .distinct()
        ):
            scored[s.rule_set_version_id].add(s.ref)
    opened: dict[str, set[str]] = {}
    for r in conn.execute(
        select(ROUND_T.c.ref, ROUND_T.c.rule_set).where(
            ROUND_T.c.rule_set.like(f"{name}%")  # name, or name@version
        )
    ):
        opened.setdefault(r.rule_set, set()).add(r.ref)
    entries: list[tuple[Any, str, str]] = []  # (row or None, version, body)
    for r in rows:
        entries.append((r, r.version, r.body))
    if shipped is not None and not any(r.sha256 == shipped.sha256 for r in rows):
        entries.append((None, shipped.version, shipped.text))
        entries.sort(key=lambda e: version_key(e[1]))
    out: list[VersionRow] = []
    previous_version, previous_body = "", ""
    for row, version, body in entries:
        label = stored_label(name, version) if row is not None else name
        is_file = shipped is not None and version == shipped.version and (
            row is None or row.sha256 == shipped.sha256
        )
        used = set(opened.get(stored_label(name, version), set()))
        if row is not None:
            used |= scored[row.id]
        if is_file:
            used |= opened.get(name, set())
        diff = (
            list(
                difflib.unified_diff(
                    previous_body.splitlines(),
                    body.splitlines(),
                    f"version {previous_version}",
                    f"version {version}",
                    lineterm="",
                )
            )
            if previous_version
            else []
        )
        out.append(
            {
                "id": None if row is None else int(row.id),
                "name": name,
                "version": version,
                "value": name if row is None else label,
                "sha256": shipped.sha256 if row is None and shipped else row.sha256,
                "title": _title(body),
                "uploaded_by": (
                    people.get(row.uploaded_by_id, "")
                    if row is not None and row.uploaded_by_id
                    else ""
                ),
                "stored_at": row.loaded_at.isoformat(timespec="minutes") if row else "",
                "shipped": is_file,
                "rounds": sorted(used),
                "previous": previous_version,
                "diff": diff,
            }
        )
        previous_version, previous_body = version, body
    return out


def _title(body: str) -> str:
    found = re.search(r"^title:\s*(.+)$", body, re.MULTILINE)
    return found.group(1).strip().strip("\"'") if found else ""


def refusal(exc: RuleFileError, text: str, command: str = "upload_rule_set") -> ValidationError:
    """A rule file's refusal as the upload's: the line and the place in the file,
    then what is wrong and what is allowed (the loader's own words)."""
    where = exc.where
    head = f"{exc.source}: {where}: " if where else f"{exc.source}: "
    message = exc.message[len(head):] if exc.message.startswith(head) else exc.message
    if where.startswith("line "):  # not YAML: the parser's mark is the line already
        at = f"{where}: "
    elif where:
        place = where
        unknown = re.match(r"unknown key '([^']+)'", message)
        if unknown:  # the line of the key that is not allowed, not of its mapping
            place = loader_where("" if where == "top level" else where, unknown.group(1))
        line = line_of(text, place)
        at = f"line {line}, {where}: " if line else f"{where}: "
    else:
        at = ""
    return ValidationError(f"{command}: body: {at}{message}", field="body")


def parse_candidate(text: str, command: str = "upload_rule_set") -> RuleSet:
    """Uploaded or pasted text validated and compiled by the files' loader, as a
    transient rule set (never cached nor registered: rules/durable_adapter.py);
    a refusal names the field ``body`` (:func:`refusal`)."""
    try:
        return rule_set_from_text(text, SOURCE)
    except RuleFileError as exc:
        raise refusal(exc, text, command) from None
