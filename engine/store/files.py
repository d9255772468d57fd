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

import re
import secrets
from pathlib import Path

from engine.settings import get_settings

ALLOWED = ("pdf", "png", "jpg", "jpeg", "docx", "xlsx", "csv", "txt")
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
