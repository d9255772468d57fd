"""The dispatcher: sends what committed transactions left in the outbox.

Each row goes through these states (``outbox.status``)::

    queued --claim--> sending --accepted--> sent
                         |  \\--temporary failure--> queued (next_attempt_at = now + backoff)
                         \\----permanent failure---> failed (+ one notice to each officer)

- **Claim before sending.** A row is claimed in its own committed transaction
  (``status='sending'``, ``attempts + 1``, ``next_attempt_at`` = now + the
  grace period, which is the claim's lease). On PostgreSQL the claim uses
  ``FOR UPDATE SKIP LOCKED``, so two dispatchers never take the same row; on
  SQLite write transactions are serialised (``BEGIN IMMEDIATE``).
- **In doubt.** A row still ``sending`` after its lease belonged to a
  dispatcher that died between claiming and recording the outcome: the
  message may or may not have reached the server. It is sent again with the
  same ``Message-ID`` (derived from the outbox key), so a mailbox keeps one
  copy. A crash can only duplicate the one message in flight at that instant.
- **Backoff.** A temporary failure (server down, timeout, 4xx) is retried
  after 1, 2, 4, 8 ... minutes, capped at 6 hours, for ever; attempts are
  counted. Messages that have failed ``REPORT_AFTER`` times are listed to the
  officers in one ``delivery_delayed`` notice a day.
- **Permanent failure.** A 5xx for the recipient (or a message that cannot be
  written from its template) marks the row ``failed`` and queues, in the same
  transaction, one ``delivery_failed`` notice per officer under the key
  ``delivery_failed:<key>:<officer email>``. ``quorum outbox retry`` re-queues.
- **One run, one snapshot.** A run sends the rows that were there when it
  started (what it queues itself goes in the next run), so it always ends.
  On SQLite the WAL is checkpointed (fsync) first, so nothing is sent for a
  change a power cut could still undo.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from engine.domain import words
from engine.domain.clock import Clock, SystemClock
from engine.domain.errors import NotFound, QuorumError
from engine.settings import Settings, SettingsError, get_settings
from engine.store.db import wal_checkpoint_full, write_connection
from engine.store.models import Outbox, Person, PersonRole, Role
from notifications import render
from notifications.channels import (
    DEFAULT_SENDER,
    Channel,
    ConfigError,
    DeliveryError,
    sender_domain,
)

log = logging.getLogger("quorum.dispatch")

SENDER = DEFAULT_SENDER
OUTBOX = Outbox.__table__
STATUSES = ("queued", "sending", "sent", "failed")

BACKOFF_FIRST = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=6)
REPORT_AFTER = 12  # failures; about 26 hours after the first with this backoff
DEFAULT_GRACE = dt.timedelta(minutes=10)
NOTICE_TEMPLATES = ("delivery_failed", "delivery_delayed")  # never reported about themselves
DELAYED_LISTED = 25


@dataclass
class DispatchSummary:
    sent: int = 0  # accepted by the channel (in-doubt re-sends included)
    retried: int = 0  # temporary failure: queued again with backoff
    failed: int = 0  # permanent failure: marked failed, officers notified
    resent: int = 0  # of ``sent``+``retried``+``failed``: rows that were in doubt
    stuck: int = 0  # messages still unsent after REPORT_AFTER attempts
    halted: str | None = None  # why the run stopped early (channel unusable)
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sent or self.retried or self.failed)

    def line(self) -> str:
        text = f"sent {self.sent}, retried {self.retried}, failed {self.failed}"
        if self.resent:
            text += f" ({self.resent} in doubt after a crash, sent again)"
        if self.stuck:
            text += f"; {self.stuck} still unsent after {REPORT_AFTER}+ attempts"
        return text

    def to_json(self) -> dict:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "resent": self.resent,
            "stuck": self.stuck,
            "halted": self.halted,
        }


# ---------------------------------------------------------------- messages


def message_id(key: str, sender: str = SENDER) -> str:
    """A Message-ID that depends only on the outbox key (and the sender's
    domain): a re-send after a crash is recognisably the same message."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<quorum.{digest}@{sender_domain(sender)}>"


def build(row: Any, sender: str = SENDER, now: dt.datetime | None = None) -> EmailMessage:
    text_body, html_body = render.body(row.template, row.context)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = row.to_addr
    msg["Subject"] = words.message_subject(row.subject, row.context)
    msg["Message-ID"] = message_id(row.key, sender)
    msg["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    msg["X-Quorum-Key"] = row.key
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    msg.set_content(text_body)
    if html_body:
        msg.add_alternative(html_body, subtype="html")
    return msg


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next try after ``attempts`` failed tries: 1, 2, 4 ... min, max 6 h."""
    if attempts <= 1:
        return BACKOFF_FIRST
    if attempts > 20:
        return BACKOFF_CAP
    return min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_CAP)


def grace_from_config(env: Mapping[str, str] | None = None) -> dt.timedelta:
    """``QUORUM_MAIL_GRACE_SECONDS``: how long a claimed message may stay
    ``sending`` before it is in doubt and sent again (default 600)."""
    try:
        conf = get_settings() if env is None else Settings.from_env(env)
    except SettingsError as exc:
        raise ConfigError(exc.message) from None
    return dt.timedelta(seconds=conf.mail_grace_seconds)


# ---------------------------------------------------------------- the run


def dispatch(
    engine: Engine,
    channel: Channel,
    clock: Clock | None = None,
    limit: int | None = None,
    grace: dt.timedelta | None = None,
) -> DispatchSummary:
    """Send every due message (at most ``limit``); returns what happened."""
    clock = clock or SystemClock()
    grace = grace_from_config() if grace is None else grace
    timeout = getattr(channel, "timeout", None)
    if timeout is not None and grace.total_seconds() <= timeout:
        raise ConfigError(
            f"QUORUM_MAIL_GRACE_SECONDS ({grace.total_seconds():g}) must be longer than "
            f"QUORUM_SMTP_TIMEOUT ({timeout:g}), or live sends would be taken for crashed ones"
        )
    sender = getattr(channel, "sender", SENDER)
    pg = engine.dialect.name == "postgresql"
    high_water = _start(engine)
    summary = DispatchSummary()
    claimed = 0
    try:
        while limit is None or claimed < limit:
            row = _claim(engine, clock.now(), grace, high_water, pg)
            if row is None:
                break
            claimed += 1
            if row.in_doubt:
                summary.resent += 1
                log.warning(
                    "outbox %s was in doubt (claimed, never confirmed): sending again", row.key
                )
            now = clock.now()
            try:
                message = build(row, sender, now)
            except Exception as exc:  # a template bug: this message cannot be written
                _fail(
                    engine,
                    row,
                    now,
                    f"could not be written from template "
                    f"{row.template!r}: {type(exc).__name__}: {exc}",
                    summary,
                )
                continue
            try:
                channel.send(row.key, message)
            except DeliveryError as exc:
                if exc.permanent:
                    _fail(engine, row, now, exc.reply, summary)
                    continue
                _retry(engine, row, now, exc.reply, summary)
                if exc.halt:
                    summary.halted = exc.reply
                    break
                continue
            except Exception as exc:  # an unexpected channel failure: keep the message
                reply = f"{type(exc).__name__}: {exc}"
                _retry(engine, row, now, reply, summary)
                summary.halted = reply
                break
            _mark_sent(engine, row, clock.now())
            summary.sent += 1
    finally:
        close = getattr(channel, "close", None)
        if close is not None:
            close()
    summary.stuck = _report_stuck(engine, clock)
    if summary.halted:
        log.warning("dispatch stopped early: %s", summary.halted)
    return summary


def _start(engine: Engine) -> int:
    """The highest outbox id at the start of the run: a run sends what was
    there when it started (what it queues itself, such as notices to officers,
    goes in the next run), so it always ends.

    On SQLite, also make every committed change durable (a WAL checkpoint is
    an fsync) before telling anyone about it: rows up to this id were
    committed before the checkpoint, so none is sent for a change a power cut
    could undo."""
    with engine.connect() as conn:
        high: int = conn.execute(select(func.coalesce(func.max(OUTBOX.c.id), 0))).scalar_one()
        conn.rollback()
    if engine.dialect.name == "sqlite":
        # Outside any transaction: a checkpoint cannot run inside one (waiting for
        # the writer up to the busy timeout: engine/store/db.py).
        wal_checkpoint_full(engine)
    return int(high)


@dataclass
class _Claimed:
    id: int
    key: str
    to_addr: str
    template: str
    subject: str
    context: dict
    created_at: dt.datetime
    attempts: int  # including this one
    in_doubt: bool


def _claim(
    engine: Engine, now: dt.datetime, grace: dt.timedelta, high_water: int | None, pg: bool
) -> _Claimed | None:
    c = OUTBOX.c
    due = or_(
        and_(c.status == "queued", or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now)),
        and_(c.status == "sending", c.next_attempt_at <= now),  # in doubt: lease expired
    )
    query = (
        select(
            c.id,
            c.key,
            c.to_addr,
            c.template,
            c.subject,
            c.context,
            c.created_at,
            c.attempts,
            c.status,
        )
        .where(due)
        .order_by(c.id)
        .limit(1)
    )
    if high_water is not None:
        query = query.where(c.id <= high_water)
    if pg:
        query = query.with_for_update(skip_locked=True)
    with write_connection(engine) as conn, conn.begin():
        found = conn.execute(query).first()
        if found is None:
            return None
        conn.execute(
            update(OUTBOX)
            .where(c.id == found.id)
            .values(status="sending", attempts=c.attempts + 1, next_attempt_at=now + grace)
        )
    return _Claimed(
        found.id,
        found.key,
        found.to_addr,
        found.template,
        found.subject,
        found.context or {},
        found.created_at,
        found.attempts + 1,
        found.status == "sending",
    )


def _mine(row: _Claimed) -> Any:
    """Only the claim that is still ours: same row, still sending, same attempt."""
    c = OUTBOX.c
    return and_(c.id == row.id, c.status == "sending", c.attempts == row.attempts)


# context keys that carry a secret only the recipient may hold (a single-use link
# with its token): kept until the message is sent, then blanked, so the outbox of a
# delivered message gives a database reader nothing to use (docs/security.md)
SENT_ONCE: dict[str, tuple[str, ...]] = {"password_reset": ("link",)}
BLANKED = "(sent to the recipient; not kept)"


def _mark_sent(engine: Engine, row: _Claimed, now: dt.datetime) -> None:
    c = OUTBOX.c
    values: dict[str, Any] = {"status": "sent", "sent_at": now, "next_attempt_at": None}
    secret = [k for k in SENT_ONCE.get(row.template, ()) if k in row.context]
    if secret:
        values["context"] = {**row.context, **{k: BLANKED for k in secret}}
    with write_connection(engine) as conn, conn.begin():
        conn.execute(update(OUTBOX).where(c.id == row.id, c.status == "sending").values(values))


def _retry(
    engine: Engine, row: _Claimed, now: dt.datetime, reply: str, summary: DispatchSummary
) -> None:
    wait = backoff(row.attempts)
    with write_connection(engine) as conn, conn.begin():
        conn.execute(
            update(OUTBOX)
            .where(_mine(row))
            .values(status="queued", next_attempt_at=now + wait, last_error=reply[:1000])
        )
    summary.retried += 1
    summary.errors.append(f"{row.key}: {reply}")
    log.info(
        "outbox %s: attempt %d failed (%s); next try in %s", row.key, row.attempts, reply, wait
    )


def _fail(
    engine: Engine, row: _Claimed, now: dt.datetime, reply: str, summary: DispatchSummary
) -> None:
    with write_connection(engine) as conn, conn.begin():
        done = conn.execute(
            update(OUTBOX)
            .where(_mine(row))
            .values(status="failed", next_attempt_at=None, last_error=reply[:1000])
        )
        if done.rowcount == 1 and row.template not in NOTICE_TEMPLATES:
            subject = words.shown_subject(row.subject, row.context)
            for name, email in officers(conn):
                _queue(
                    conn,
                    key=f"delivery_failed:{row.key}:{email}",
                    to_addr=email,
                    template="delivery_failed",
                    subject=f"Undeliverable: {subject} (to {row.to_addr})",
                    context={
                        "name": name,
                        "to_addr": row.to_addr,
                        "subject": subject,
                        "key": row.key,
                        "template": row.template,
                        "reply": reply,
                        "attempts": row.attempts,
                        "queued_at": _when(row.created_at),
                        "failed_at": _when(now),
                    },
                    now=now,
                )
    summary.failed += 1
    summary.errors.append(f"{row.key}: {reply}")
    log.warning("outbox %s to %s failed permanently: %s", row.key, row.to_addr, reply)


def _report_stuck(engine: Engine, clock: Clock) -> int:
    """Queue one ``delivery_delayed`` notice per officer per day listing the
    messages that are still unsent after REPORT_AFTER attempts."""
    c = OUTBOX.c
    stuck_where = and_(
        c.status.in_(("queued", "sending")),
        c.attempts >= REPORT_AFTER,
        c.template.not_in(NOTICE_TEMPLATES),
    )
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).where(stuck_where)).scalar_one()
        conn.rollback()
    if not count:
        return 0
    now = clock.now()
    day = clock.today().isoformat()
    with write_connection(engine) as conn, conn.begin():
        rows = conn.execute(
            select(c.key, c.to_addr, c.subject, c.context, c.attempts, c.created_at,
                   c.last_error)
            .where(stuck_where)
            .order_by(c.id)
            .limit(DELAYED_LISTED)
        ).all()
        items = [
            {
                "key": r.key,
                "to_addr": r.to_addr,
                "subject": words.shown_subject(r.subject, r.context or {}),
                "attempts": r.attempts,
                "queued_at": _when(r.created_at),
                "last_error": r.last_error or "",
            }
            for r in rows
        ]
        for name, email in officers(conn):
            _queue(
                conn,
                key=f"delivery_delayed:{day}:{email}",
                to_addr=email,
                template="delivery_delayed",
                subject=f"{count} message(s) not yet delivered after {REPORT_AFTER}+ attempts",
                context={
                    "name": name,
                    "date": day,
                    "count": count,
                    "threshold": REPORT_AFTER,
                    "items": items,
                    "more": max(0, count - len(items)),
                },
                now=now,
            )
    return count


def officers(conn: Connection) -> list[tuple[str, str]]:
    """(name, email) of every active officer."""
    return [
        (r.name, r.email)
        for r in conn.execute(
            select(col(Person.name), col(Person.email))
            .join(PersonRole, col(PersonRole.person_id) == col(Person.id))
            .where(col(PersonRole.role) == Role.OFFICER.value, col(Person.active).is_(True))
            .order_by(col(Person.email))
        )
    ]


def _queue(conn: Connection, *, key: str, now: dt.datetime, **values: Any) -> None:
    """Insert one outbox row unless its key is already there."""
    row = dict(values, key=key, channel="email", created_at=now, status="queued", attempts=0)
    maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(maker(OUTBOX).values(**row).on_conflict_do_nothing(index_elements=["key"]))


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- administration


def retry(engine: Engine, key: str | None = None, *, all_failed: bool = False) -> list[str]:
    """Put failed messages back in the queue (attempts kept). With ``key``, a
    queued message waiting for its next try is made due now. Returns the keys."""
    c = OUTBOX.c
    with write_connection(engine) as conn, conn.begin():
        if all_failed:
            keys: list[str] = list(
                conn.execute(select(c.key).where(c.status == "failed").order_by(c.id)).scalars()
            )
            conn.execute(
                update(OUTBOX)
                .where(c.status == "failed")
                .values(status="queued", next_attempt_at=None)
            )
            return keys
        if key is None:
            raise QuorumError("give a message KEY or --all-failed", field="key")
        found = conn.execute(select(c.status, c.sent_at).where(c.key == key)).first()
        if found is None:
            raise NotFound(
                f"no outbox message with key {key!r}; 'quorum outbox list' shows the keys"
            )
        if found.status == "sent":
            raise QuorumError(
                f"{key!r} was already sent at {_when(found.sent_at)}; nothing to retry"
            )
        if found.status == "sending":
            raise QuorumError(
                f"{key!r} is being sent now (or was in flight when a dispatcher stopped; "
                "it will be sent again after the grace period); nothing to retry"
            )
        conn.execute(
            update(OUTBOX).where(c.key == key).values(status="queued", next_attempt_at=None)
        )
        return [key]


def rows(engine: Engine, status: str | None = None, limit: int | None = None) -> list[dict]:
    """Outbox messages, oldest first, as plain dicts (for the CLI and --json)."""
    if status is not None and status not in STATUSES:
        raise QuorumError(
            f"status {status!r}: allowed values are {', '.join(STATUSES)}", field="status"
        )
    c = OUTBOX.c
    query = select(OUTBOX).order_by(c.id)
    if status is not None:
        query = query.where(c.status == status)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        found = conn.execute(query).all()
        conn.rollback()
    iso = lambda v: v.isoformat() if v is not None else None  # noqa: E731
    return [
        {
            "key": r.key,
            "to": r.to_addr,
            "template": r.template,
            "subject": words.shown_subject(r.subject, r.context or {}),
            "status": r.status,
            "attempts": r.attempts,
            "created_at": iso(r.created_at),
            "next_attempt_at": iso(r.next_attempt_at),
            "sent_at": iso(r.sent_at),
            "last_error": r.last_error,
        }
        for r in found
    ]
