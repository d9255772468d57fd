"""The SQLite settings engine/store/db.py applies to every connection (docs/operations.md
"SQLite settings"), read back from SQLite itself."""

from __future__ import annotations

from engine.store.db import WAL_AUTOCHECKPOINT_PAGES, make_engine, sqlite_synchronous


def test_every_connection_gets_the_documented_settings(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        with engine.connect() as conn:
            read = {
                p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout",
                          "wal_autocheckpoint")
            }  # fmt: skip
    finally:
        engine.dispose()
    synchronous = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}[sqlite_synchronous()]  # as SQLite says
    assert read == {"journal_mode": "wal", "synchronous": synchronous, "foreign_keys": 1,
                    "busy_timeout": 10000, "wal_autocheckpoint": 10000}  # fmt: skip
    assert WAL_AUTOCHECKPOINT_PAGES == 10000
