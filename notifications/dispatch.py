"""The dispatcher: sends what committed transactions left in the outbox."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from engine.clock import Clock, SystemClock
from engine.models import Outbox
from notifications import render
from notifications.channels import Channel

SENDER = "Quorum <quorum@localhost>"


def build(row: Outbox) -> EmailMessage:
    text_body, html_body = render.body(row.template, row.context)
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = row.to_addr
    msg["Subject"] = row.subject
    msg["X-Quorum-Key"] = row.key
    msg.set_content(text_body)
    if html_body:
        msg.add_alternative(html_body, subtype="html")
    return msg


def dispatch(engine: Engine, channel: Channel, clock: Clock | None = None, limit: int = 100) -> int:
    """Send up to ``limit`` queued messages; returns how many were sent."""
    clock = clock or SystemClock()
    if engine.dialect.name == "sqlite":
        # Make every committed change durable (fsync) before telling anyone about it.
        # Outside any transaction: a checkpoint cannot run inside one.
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(FULL)")
        finally:
            raw.close()
    sent = 0
    with Session(engine) as session:
        rows = (
            session.execute(
                select(Outbox).where(Outbox.status == "queued").order_by(Outbox.id).limit(limit)
            )
            .scalars()
            .all()
        )
        session.expunge_all()
    for row in rows:
        now = clock.now()
        try:
            channel.send(row.key, build(row))
        except Exception as exc:  # a channel failure is recorded, never lost
            with Session(engine) as session, session.begin():
                session.execute(
                    update(Outbox)
                    .where(Outbox.id == row.id)
                    .values(
                        attempts=Outbox.attempts + 1,
                        last_error=str(exc)[:500],
                        next_attempt_at=now + dt.timedelta(minutes=5),
                    )
                )
            continue
        with Session(engine) as session, session.begin():
            session.execute(
                update(Outbox)
                .where(Outbox.id == row.id, Outbox.status == "queued")
                .values(status="sent", sent_at=now, attempts=Outbox.attempts + 1)
            )
        sent += 1
    return sent
