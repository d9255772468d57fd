"""Set-up databases kept in bench/.cache across a schema change.

A benchmark keys its built SQLite set-up by the migration head (among other
things), so a new migration would otherwise mean building the 100,000 set-up
again (many minutes). :func:`upgraded_from_older` instead copies the newest
cached file built at an *older* head (an ancestor of the current one) and runs
``alembic upgrade head`` on the copy: the same schema a fresh build would have
(tests/test_schema.py holds upgrade and create_schema to the same database).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from engine.store.db import MIGRATIONS, make_engine, upgrade


def older_heads() -> list[str]:
    """The revisions before the current head, newest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return [r.revision for r in script.iterate_revisions("heads", "base")][1:]


def checkpoint(db: Path) -> None:
    """Everything in the main file (a copy of it alone is the whole database)."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def upgraded_from_older(cached_at: Callable[[str], Path], db: Path) -> str | None:
    """``db``: a copy of the newest existing ``cached_at(head)`` of an older head,
    upgraded to the current head. Returns that older head, or None (nothing to
    reuse: build afresh)."""
    for head in older_heads():
        kept = cached_at(head)
        if not kept.exists():
            continue
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(kept, db)
        engine = make_engine(f"sqlite:///{db}")
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        checkpoint(db)
        return head
    return None
