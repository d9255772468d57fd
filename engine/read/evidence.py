"""A grant's milestone evidence as people read it: each submission with its
summary, who sent it and when, how it was reviewed, and its files by the names
they were uploaded under (engine/store/files.py keeps them under issued ids).

The grant page lists these at their milestone, for officers, finance and the
sponsor alike; :func:`file_of` says whether a file id belongs to one of the
grant's submissions, the only files the evidence route serves
(quorum_web/pages_sponsor.py).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import aliased

from engine.read.money import Reader
from engine.read.shapes import EvidenceFile, EvidenceSubmission
from engine.store.files import FILE_ID, OPENS_INLINE, meta_of
from engine.store.models import Evidence, Grant, Milestone, Person

__all__ = ["evidence_of", "file_of"]

EVIDENCE_T = Evidence.__table__
GRANT_T = Grant.__table__
MILESTONE_T = Milestone.__table__
SENDER = aliased(Person.__table__, name="sender")
REVIEWER = aliased(Person.__table__, name="reviewer")


def _file(file_id: str) -> EvidenceFile:
    meta = meta_of(file_id)
    ext = file_id.rsplit(".", 1)[-1]
    size = meta.get("size")
    digest = meta.get("sha256")
    return {
        "id": file_id,
        "name": str(meta.get("original_name") or file_id.rsplit("/", 1)[-1]),
        "size": size if isinstance(size, int) else None,
        "sha256": digest if isinstance(digest, str) else None,
        "opens_inline": ext in OPENS_INLINE,
    }


def evidence_of(conn: Reader, grant_ref: str) -> dict[int, list[EvidenceSubmission]]:
    """Every evidence submission of ``grant_ref``, by milestone number, oldest first."""
    out: dict[int, list[EvidenceSubmission]] = defaultdict(list)
    rows = conn.execute(
        select(
            EVIDENCE_T,
            MILESTONE_T.c.seq,
            SENDER.c.name.label("sender"),
            REVIEWER.c.name.label("reviewer"),
        )
        .join(MILESTONE_T, MILESTONE_T.c.id == EVIDENCE_T.c.milestone_id)
        .join(GRANT_T, GRANT_T.c.id == MILESTONE_T.c.grant_id)
        .outerjoin(SENDER, SENDER.c.id == EVIDENCE_T.c.submitted_by_id)
        .outerjoin(REVIEWER, REVIEWER.c.id == EVIDENCE_T.c.reviewed_by_id)
        .where(GRANT_T.c.ref == grant_ref)
        .order_by(MILESTONE_T.c.seq, EVIDENCE_T.c.id)
    )
    for e in rows:
        out[e.seq].append(
            {
                "milestone": e.seq,
                "summary": e.summary,
                "state": e.state,
                "submitted_by": e.sender,
                "submitted_on": e.submitted_on.isoformat(),
                "reviewed_by": e.reviewer,
                "reviewed_on": e.reviewed_on.isoformat() if e.reviewed_on else None,
                "review_note": e.review_note,
                "files": [_file(f) for f in e.files or [] if isinstance(f, str)
                          and FILE_ID.fullmatch(f)],
            }
        )
    return dict(out)


def file_of(conn: Reader, grant_ref: str, file_id: str) -> EvidenceFile | None:
    """The file ``file_id`` if one of ``grant_ref``'s evidence submissions holds it."""
    if FILE_ID.fullmatch(file_id) is None:
        return None
    for submissions in evidence_of(conn, grant_ref).values():
        for sub in submissions:
            for f in sub["files"]:
                if f["id"] == file_id:
                    return f
    return None
