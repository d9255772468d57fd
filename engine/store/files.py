"""Evidence files: the ids the server issues for them, and finding them again.

A file uploaded for a grant's milestone (quorum_web/uploads.py) is kept under
``QUORUM_UPLOAD_DIR`` as ``<grant>/<milestone>/<32 hex>.<ext>`` with its
``.json`` beside it; that relative path is the file's id, the only way a
command names a file (``submit_evidence files``). :func:`issued_for` says
whether an id is one the server issued for that grant: a name or a path made
up by a caller, or another grant's file, is not, and is refused exactly as a
file that does not exist (issue 11: names and paths sent through the API into
another council's folder showed on the officer's page).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

from engine.settings import get_settings

ALLOWED = ("pdf", "png", "jpg", "jpeg", "docx", "xlsx", "csv", "txt")
# the type each allowed file is served as (never what the uploader claimed), and
# which open in the browser; the rest are served as downloads (quorum_web/pages_sponsor.py)
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}
OPENS_INLINE = frozenset({"pdf", "png", "jpg", "jpeg"})
GRANT_FOLDER = re.compile(r"[A-Za-z0-9_-]{1,40}")
FILE_ID = re.compile(
    r"(?P<grant>[A-Za-z0-9_-]{1,40})/(?P<milestone>[1-9][0-9]{0,5})/[0-9a-f]{32}\."
    rf"(?:{'|'.join(ALLOWED)})"
)


def upload_dir() -> Path:
    return get_settings().upload_dir


def new_file_id(grant: str, milestone: int, ext: str) -> str:
    """A fresh id for a file of ``grant``'s milestone (its path under the upload folder)."""
    return f"{grant}/{int(milestone)}/{secrets.token_hex(16)}.{ext}"


def issued_for(grant: str, file_id: object) -> bool:
    """True if ``file_id`` is the id of a file the server stored for ``grant``."""
    if not isinstance(file_id, str):
        return False
    match = FILE_ID.fullmatch(file_id)
    if match is None or match.group("grant") != grant:
        return False
    path = upload_dir() / file_id
    return path.is_file() and path.with_name(path.name + ".json").is_file()


def path_of(file_id: str) -> Path:
    """Where a file the server issued is kept (only for an id :data:`FILE_ID` matches)."""
    if FILE_ID.fullmatch(file_id) is None:
        raise ValueError(f"not a file id: {file_id!r}")
    return upload_dir() / file_id


def meta_of(file_id: str) -> dict[str, Any]:
    """What was recorded when the file was stored (original name, size, SHA-256, who,
    when); an empty dict if the record is missing or unreadable."""
    try:
        raw = json.loads(path_of(file_id).with_name(
            path_of(file_id).name + ".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}
