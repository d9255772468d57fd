"""Milestone evidence files, stored safely.

- size: at most ``QUORUM_UPLOAD_MAX_MB`` (default 10) MB a file, 10 files at once;
- type: an allow-list of extensions, each checked against the file's first
  bytes (a ``.pdf`` must start ``%PDF-``, a ``.docx`` must be a zip holding
  ``word/``, a ``.csv``/``.txt`` must be UTF-8 text with no NUL bytes...);
- names: a name with a path in it (``/``, ``\\``, ``..``, a drive, NUL) is
  refused outright; the file is stored under a generated name in
  ``QUORUM_UPLOAD_DIR`` (default ``var/uploads``) ``/<grant>/<milestone>/``,
  with the original name, size, SHA-256, who and when in a ``.json`` beside it;
  its path there is its id (engine/store/files.py), the only name the
  ``submit_evidence`` command takes for it, and only for that grant.

:func:`check` reads and refuses before anything is written; :func:`store`
writes; :func:`discard` removes what :func:`store` wrote (the command was
refused). The command (``submit_evidence``) gets the stored names.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass

from engine.commands.registry import Result
from engine.commands.service import Quorum
from engine.domain.actor import Actor
from engine.domain.errors import ValidationError
from engine.domain.fields import text_problem
from engine.settings import get_settings
from engine.store.files import ALLOWED, GRANT_FOLDER, new_file_id, upload_dir

__all__ = [
    "ALLOWED",
    "MAX_FILES",
    "check",
    "discard",
    "evidence_with_files",
    "max_bytes",
    "store",
    "upload_dir",
]

MAX_FILES = 10


def max_bytes() -> int:
    return int(get_settings().upload_max_mb * 1024 * 1024)


@dataclass
class Checked:
    original: str
    ext: str
    data: bytes


def _refuse(message: str) -> ValidationError:
    return ValidationError(f"submit_evidence: files: {message}", field="files")


def safe_original(name: str) -> str:
    """The name as given, if it is a plain file name; refused otherwise."""
    if not name or len(name) > 200:
        raise _refuse("a file name must be 1 to 200 characters")
    bad = (
        "/" in name
        or "\\" in name
        or ".." in name
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name) is not None
        or name.startswith(("~", "."))
    )
    if bad:
        raise _refuse(f"{name!r} is not a plain file name (no folders, '..' or drive letters)")
    problem = text_problem(name, "a file name")  # control characters, lone surrogates
    if problem is not None:
        raise _refuse(f"{name!r}: {problem}")
    return name


def _sniff(ext: str, data: bytes) -> bool:
    if ext == "pdf":
        return data.startswith(b"%PDF-")
    if ext == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if ext in ("jpg", "jpeg"):
        return data.startswith(b"\xff\xd8\xff")
    if ext in ("docx", "xlsx"):
        if not data.startswith(b"PK\x03\x04"):
            return False
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return False
        inner = "word/" if ext == "docx" else "xl/"
        return any(n.startswith(inner) for n in names)
    if ext in ("csv", "txt"):
        if b"\x00" in data:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    return False


def check(original: str, data: bytes, limit: int | None = None) -> Checked:
    """Refuse a bad name, a too-big file, a type not allowed, or content that
    does not match its extension. Writes nothing."""
    name = safe_original(original)
    limit = max_bytes() if limit is None else limit
    if len(data) > limit:
        raise _refuse(f"{name} is larger than {limit // (1024 * 1024)} MB")
    if not data:
        raise _refuse(f"{name} is empty")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in ALLOWED:
        raise _refuse(f"{name}: only {', '.join(ALLOWED)} files are accepted")
    if not _sniff(ext, data):
        raise _refuse(f"{name}: its content is not a {ext} file")
    return Checked(name, ext, data)


def store(grant: str, milestone: int, files: list[Checked], who: str, at: str) -> list[str]:
    """Write the files; their ids (engine/store/files.py: paths relative to the upload
    folder), the only names ``submit_evidence`` takes."""
    if not GRANT_FOLDER.fullmatch(grant):
        raise _refuse(f"grant {grant!r} cannot name a folder")
    folder = upload_dir() / grant / str(int(milestone))
    folder.mkdir(parents=True, exist_ok=True)
    stored = []
    for f in files:
        file_id = new_file_id(grant, milestone, f.ext)
        name = file_id.rsplit("/", 1)[1]
        path = folder / name
        with open(path, "xb") as out:
            out.write(f.data)
        meta = {
            "original_name": f.original,
            "size": len(f.data),
            "sha256": hashlib.sha256(f.data).hexdigest(),
            "uploaded_by": who,
            "uploaded_at": at,
        }
        (folder / f"{name}.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        stored.append(file_id)
    return stored


def discard(stored: list[str]) -> None:
    for rel in stored:
        for path in (upload_dir() / rel, upload_dir() / f"{rel}.json"):
            path.unlink(missing_ok=True)


def evidence_with_files(
    quorum: Quorum,
    grant: str,
    milestone: int,
    summary: str,
    given: list[tuple[str, bytes]],
    actor: Actor,
    at: str,
) -> tuple[Result, list[str]]:
    """The one path of an upload, for the web page and the API alike: check every
    file (name, size, type) before anything is written, store them, then run
    ``submit_evidence`` with the ids issued; a refusal removes what was stored.
    ``given``: (original name, up to ``max_bytes() + 1`` bytes read) a file. The
    caller has already answered 404 for a grant the actor may not see."""
    if len(given) > MAX_FILES:
        raise _refuse(f"at most {MAX_FILES} files at once")
    limit = max_bytes()
    checked = [check(name, data, limit) for name, data in given]
    stored = store(grant, milestone, checked, actor.label, at)
    args: dict[str, object] = {"grant": grant, "milestone": milestone, "summary": summary}
    if stored:
        args["files"] = stored
    try:
        result = quorum.execute("submit_evidence", args, actor)
    except BaseException:
        discard(stored)
        raise
    return result, stored
