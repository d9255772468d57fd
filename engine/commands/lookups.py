"""Lookups shared by several command handlers: load an item by its ref or
refuse naming the field. Handlers import these from here (not from each
other), so no handler module depends on another to find an item.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from engine.commands.uow import UnitOfWork
from engine.domain.errors import NotFound
from engine.store.models import Meeting

_MEETING_BY_REF = select(Meeting.__table__).where(Meeting.__table__.c.ref == bindparam("ref"))


def load_meeting(uow: UnitOfWork, ref: str) -> Any:
    row = uow.conn.execute(_MEETING_BY_REF, {"ref": ref}).first()
    if row is None:
        raise NotFound(f"{uow.command}: meeting: no meeting {ref!r}", field="meeting", item=ref)
    return row
