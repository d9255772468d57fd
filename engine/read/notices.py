"""A person's in-app notifications (written by engine/store/notices.py with the
messages they go with).

    notifications(conn, person_id, limit) -> [Notice]   unread first, then newest first
    unread_count(conn, person_id) -> int                the header's number
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from engine.domain.clock import local_date
from engine.domain.words import date_words
from engine.store.models import Notification

__all__ = ["Notice", "notifications", "unread_count"]

NOTE = Notification.__table__


class Notice(TypedDict):
    id: int
    what: str
    item_ref: str
    link: str
    date: str  # in words
    unread: bool


def notifications(conn: Connection, person_id: int | None, limit: int = 100) -> list[Notice]:
    """This person's notifications: the unread first, each part newest first."""
    if person_id is None:
        return []
    unread = case((NOTE.c.read_at.is_(None), 0), else_=1)
    rows = conn.execute(
        select(NOTE.c.id, NOTE.c.what, NOTE.c.item_ref, NOTE.c.link, NOTE.c.created_at,
               NOTE.c.read_at)
        .where(NOTE.c.person_id == person_id)
        .order_by(unread, NOTE.c.created_at.desc(), NOTE.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [
        Notice(id=r.id, what=r.what, item_ref=r.item_ref, link=r.link,
               date=date_words(local_date(r.created_at)), unread=r.read_at is None)
        for r in rows
    ]  # fmt: skip


def unread_count(conn: Connection, person_id: int | None) -> int:
    if person_id is None:
        return 0
    return int(
        conn.execute(
            select(func.count()).where(NOTE.c.person_id == person_id, NOTE.c.read_at.is_(None))
        ).scalar()
        or 0
    )
