"""The scheduler: one APScheduler per process, in-memory job store only.

APScheduler 3 must never share a job store between schedulers, so jobs are
not persisted: deadlines live in the database and each periodic sweep reads
them (issue 5 adds the deadline sweep). Today: the outbox dispatcher.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from notifications.channels import FileChannel
from notifications.dispatch import dispatch

log = logging.getLogger("quorum.scheduler")


def outbox_folder() -> Path:
    return Path(os.environ.get("QUORUM_OUTBOX_DIR", "var/outbox"))


def start(engine: Engine, interval_seconds: int = 30) -> BackgroundScheduler:
    channel = FileChannel(outbox_folder())
    scheduler = BackgroundScheduler(timezone="UTC")

    def send_outbox() -> None:
        n = dispatch(engine, channel)
        if n:
            log.info("dispatched %d message(s) to %s", n, channel.folder)

    scheduler.add_job(
        send_outbox,
        "interval",
        seconds=interval_seconds,
        id="dispatch_outbox",
        max_instances=1,
        coalesce=True,
        next_run_time=None,
    )
    scheduler.start()
    scheduler.modify_job("dispatch_outbox", next_run_time=_now())  # catch up at start
    return scheduler


def _now():  # noqa: ANN202
    import datetime as dt

    return dt.datetime.now(dt.UTC)
