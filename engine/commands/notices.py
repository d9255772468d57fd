"""Digests and the catch-up gate of the deadline sweep (docs/notifications.md).

Two small pieces the sweep calls, so they stay where they are if the sweep is
split into chunks:

- :func:`gate`, at the START of a sweep: is this a catch-up? It is when the
  last sweep ran longer ago than ``QUORUM_CATCHUP_GAP_DAYS`` (or, never swept,
  when the newest thing the database records is that old: a restore of
  earlier data), or when an earlier catch-up still waits for confirmation.
  It also notes where the outbox stood, so the messages this sweep queues are
  known afterwards.
- :func:`group`, at the point messages are QUEUED (after the sweep's return
  rungs and action rungs; the sweep writes them ``sweeping``, chunk by chunk,
  and group decides over all of them at its last step): a catch-up that would send more than
  ``QUORUM_DIGEST_THRESHOLD`` messages HOLDS them all (status ``held``) and
  officers see "Confirm the catch-up sweep: N reminders to M people" in My
  work; otherwise anyone who would get more than the threshold gets ONE
  digest listing them instead (the messages themselves are kept, status
  ``digested``).

Exactly once: every message keeps its own outbox row and unique key
(``return:<ref>:<rung>:<email>``), whatever its status, so a later sweep never
queues it again; a held or digested row is never sent by the dispatcher (it
takes only ``queued`` rows); a digest is one row of its own under a key made of
the sweep (the outbox position it started from) and the address, and
``confirm_catchup`` turns each held row into ``digested`` (or ``queued``, a
person's only message) in the one transaction that queues the digests.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from engine.commands.args import Args
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork
from engine.domain.errors import ValidationError
from engine.domain.words import shown_subject
from engine.read.work import link as page_of
from engine.settings import get_settings
from engine.store import notices
from engine.store.links import base_url
from engine.store.models import AuditEvent, Outbox, SweepRun
from engine.store.notices import DIGESTED, HELD, QUEUED, SWEEPING

__all__ = ["Gate", "Release", "catchup_waiting", "gate", "group", "mark_notifications_read",
           "release", "tell_officers"]

OUT = Outbox.__table__
AUDIT = AuditEvent.__table__
SWEPT = ("return:%", "action:%")  # the keys of the sweep's own messages
DIGEST = "sweep_digest"  # notifications/templates/sweep_digest.txt


@dataclass(frozen=True)
class Gate:
    """What :func:`gate` found at the start of a sweep."""

    mark: int  # the outbox's highest id before this sweep queued anything
    hold: str  # why this sweep is a catch-up ("" when it is not)


def _at(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def gate(conn: Connection, now: dt.datetime, gap_days: int | None = None) -> Gate:
    """Call at the start of a sweep (see the module)."""
    gap = dt.timedelta(days=gap_days if gap_days is not None else get_settings().catchup_gap_days)
    mark = int(conn.execute(select(func.coalesce(func.max(OUT.c.id), 0))).scalar() or 0)
    if conn.execute(select(OUT.c.id).where(OUT.c.status == HELD).limit(1)).first():
        return Gate(mark, "an earlier catch-up sweep is still waiting for confirmation")
    swept = select(func.max(AUDIT.c.at)).where(AUDIT.c.command == "sweep")
    last = _at(conn.execute(swept).scalar())
    what = "the last sweep ran"
    if last is None:  # never swept here: how old is the newest thing recorded?
        last = _at(conn.execute(select(func.max(AUDIT.c.at))).scalar())
        what = "nothing has been recorded since"
    if last is not None and now - last > gap:
        return Gate(mark, f"{what} {(now - last).days} days ago (more than {gap.days})")
    return Gate(mark, "")


@dataclass
class _Msg:
    key: str
    to: str
    name: str
    subject: str  # in words
    ref: str
    pending: dict[str, Any] | None  # a message of this command not written yet, else None


def _pending(uow: UnitOfWork) -> list[_Msg]:
    """The sweep's messages still to be written at commit (action rungs)."""
    out = []
    for m in uow.messages:
        if m["key"].startswith(tuple(k[:-1] for k in SWEPT)) and m.get("status", QUEUED) == QUEUED:
            ctx = m["context"]
            out.append(_Msg(m["key"], m["to_addr"], str(ctx.get("name") or m["to_addr"]),
                            m["subject"], _ref(ctx), m))  # fmt: skip
    return out


def _stored(uow: UnitOfWork, addresses: list[str]) -> list[_Msg]:
    """The sweep's written messages (``sweeping``: its chunks', return rungs, written
    by the database) to these addresses, in the order written."""
    out = []
    for i in range(0, len(addresses), 500):
        rows = uow.conn.execute(
            select(OUT.c.id, OUT.c.key, OUT.c.to_addr, OUT.c.subject, OUT.c.context).where(
                OUT.c.status == SWEEPING, OUT.c.to_addr.in_(addresses[i : i + 500])
            )
        )
        out += list(rows)
    out.sort(key=lambda r: r.id)
    return [
        _Msg(r.key, r.to_addr, str((r.context or {}).get("name") or r.to_addr),
             shown_subject(r.subject, r.context or {}), _ref(r.context or {}), None)
        for r in out
    ]  # fmt: skip


def _ref(ctx: dict[str, Any]) -> str:
    return str(ctx.get("return_ref") or ctx.get("action_ref") or ctx.get("ref") or "")


def _set_status(uow: UnitOfWork, msgs: list[_Msg], status: str) -> None:
    stored = [m.key for m in msgs if m.pending is None]
    for i in range(0, len(stored), 500):
        chunk = stored[i : i + 500]
        uow.conn.execute(update(OUT).where(OUT.c.key.in_(chunk)).values(status=status))
    for m in msgs:
        if m.pending is not None:
            m.pending["status"] = status


def _by_person(msgs: list[_Msg]) -> dict[str, list[_Msg]]:
    out: dict[str, list[_Msg]] = defaultdict(list)
    for m in msgs:
        out[m.to.lower()].append(m)
    return out


def _digest(uow: UnitOfWork, key: str, msgs: list[_Msg], as_of: dt.date, catchup: bool) -> None:
    first = msgs[0]
    n = len(msgs)
    uow.notify(
        key=key,
        to=first.to,
        template=DIGEST,
        subject=f"{n} reminders and chases from Quorum" + (" (catch-up)" if catchup else ""),
        context={
            "name": first.name,
            "date": as_of.isoformat(),
            "count": n,
            "catchup": catchup,
            "items": [{"subject": m.subject, "ref": m.ref} for m in msgs],
        },
        link="/notifications",
    )


@dataclass(frozen=True)
class Release:
    """What :func:`group` decided for the sweep's written (``sweeping``) rows:
    hold them all; or put each of ``digests`` (a person's addresses as written)
    into one digest (key ``digest:<as_of>:<mark>:<address>``) and mark their
    rows digested; the rest are queued to send. Applied by :func:`release`."""

    hold: bool
    digests: tuple[tuple[str, ...], ...] = ()
    as_of: str = ""
    mark: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"hold": self.hold, "digests": [list(p) for p in self.digests],
                "as_of": self.as_of, "mark": self.mark}  # fmt: skip

    @classmethod
    def of(cls, data: dict[str, Any]) -> Release:
        return cls(bool(data.get("hold")), tuple(tuple(p) for p in data.get("digests") or ()),
                   str(data.get("as_of") or ""), int(data.get("mark") or 0))  # fmt: skip


def group(
    uow: UnitOfWork,
    g: Gate,
    as_of: dt.date,
    threshold: int | None = None,
    *,
    release_now: bool = True,
    per_address: dict[str, int] | None = None,
) -> tuple[dict[str, int], Release]:
    """Call where the sweep has queued its messages (see the module): hold them
    all (a catch-up of more than the threshold), or put each person's into one
    digest when they are more than the threshold; the rest are released to be
    sent (``sweeping`` -> ``queued``). The counts, for the summary, and the
    decision: applied here (``release_now``), or left to :func:`release`, one
    digest or a slice of rows per short transaction (the sweep's action rungs
    of those people are then written ``sweeping`` too, to go with the rest).

    The sweep's messages are its ``sweeping`` rows (every chunk's, and any left
    by a sweep stopped part-way) and its action rungs still to be written. They
    are counted per address in SQL (or given: ``per_address``, counted by the
    chunks that wrote them); only the rows of people getting a digest are read,
    when their digest is written."""
    limit = threshold if threshold is not None else get_settings().digest_threshold
    pending = _pending(uow)
    if per_address is None:
        per_address = {
            str(row[0]): int(row[1])
            for row in uow.conn.execute(
                select(OUT.c.to_addr, func.count()).where(OUT.c.status == SWEEPING)
                .group_by(OUT.c.to_addr)
            )
        }
    people: dict[str, list[str]] = defaultdict(list)  # each person's addresses as written
    mine: Counter[str] = Counter()
    for to, n in per_address.items():
        people[to.lower()].append(to)
        mine[to.lower()] += n
    for m in pending:
        mine[m.to.lower()] += 1
    total = sum(mine.values())
    if g.hold and total > limit:
        _set_status(uow, pending, HELD)
        decision = Release(True, (), as_of.isoformat(), g.mark)
        if release_now:
            release(uow, decision)
        return {"held": total, "held_people": len(mine)}, decision
    digests = digested = 0
    over: list[tuple[str, ...]] = []
    for to, n in mine.items():
        if n > limit:
            digests += 1
            digested += n
            theirs = [m for m in pending if m.to.lower() == to]
            if release_now:
                msgs = _stored(uow, people[to]) + theirs
                _set_status(uow, msgs, DIGESTED)
                _digest(uow, f"digest:{as_of.isoformat()}:{g.mark}:{to}", msgs, as_of, False)
            else:  # written with the rest, digested with them by release()
                _set_status(uow, theirs, SWEEPING)
                over.append(tuple(sorted({*people[to], *(m.to for m in theirs)})))
    decision = Release(False, tuple(over), as_of.isoformat(), g.mark)
    if release_now:
        release(uow, decision)
    return ({"digests": digests, "digested": digested} if digests else {}), decision


def release(uow: UnitOfWork, decision: Release, limit: int | None = None) -> Release | None:
    """Apply :func:`group`'s decision: the next person's digest (their rows read,
    marked digested, the digest queued), or else the next ``limit`` written rows
    of the sweep by id (None: all of them) held or queued. What is left to do
    (None: nothing)."""
    if decision.digests:
        addresses = list(decision.digests[0])
        msgs = _stored(uow, addresses)
        if msgs:
            _set_status(uow, msgs, DIGESTED)
            to = msgs[0].to.lower()
            _digest(uow, f"digest:{decision.as_of}:{decision.mark}:{to}", msgs,
                    dt.date.fromisoformat(decision.as_of), False)  # fmt: skip
        left = replace(decision, digests=decision.digests[1:])
        return left if limit is not None else release(uow, left, limit)
    where = [OUT.c.status == SWEEPING]
    if limit is not None:
        last = uow.conn.execute(
            select(OUT.c.id).where(*where).order_by(OUT.c.id).offset(limit - 1).limit(1)
        ).scalar()
        if last is not None:
            where.append(OUT.c.id <= last)
    uow.conn.execute(update(OUT).where(*where).values(status=HELD if decision.hold else QUEUED))
    more = uow.conn.execute(select(OUT.c.id).where(OUT.c.status == SWEEPING).limit(1)).first()
    return decision if more is not None else None


def _confirmable(conn: Connection) -> list[Any]:
    """Which held rows can be confirmed: every one, but those of a sweep still
    running (a catch-up sure to be held writes its later chunks' messages ``held``
    at once, engine/commands/sweep.py ``_written``: they wait for its last step,
    and are confirmed with the rest of it). Its rows are those after its mark."""
    running = conn.execute(
        select(func.min(SweepRun.__table__.c.mark)).where(SweepRun.__table__.c.phase == "running")
    ).scalar()
    where = [OUT.c.status == HELD]
    if running is not None:
        where.append(OUT.c.id <= int(running))
    return where


def catchup_waiting(conn: Connection) -> tuple[int, int]:
    """(messages held, people they are for): what a catch-up sweep waits to send."""
    row = conn.execute(
        select(func.count(), func.count(func.distinct(func.lower(OUT.c.to_addr)))).where(
            *_confirmable(conn)
        )
    ).one()
    return int(row[0]), int(row[1])


@command(
    "confirm_catchup",
    roles=("officer",),
    summary="Send the messages a catch-up sweep held back, one digest per person",
)
def confirm_catchup(uow: UnitOfWork, args: Args) -> Result:
    args.done()
    rows = list(
        uow.conn.execute(
            select(OUT.c.id, OUT.c.key, OUT.c.to_addr, OUT.c.subject, OUT.c.context)
            .where(*_confirmable(uow.conn))
            .order_by(OUT.c.id)
        )
    )
    if not rows:
        if uow.conn.execute(select(OUT.c.id).where(OUT.c.status == HELD).limit(1)).first():
            raise ValidationError(
                "confirm_catchup: the catch-up sweep is still running: confirm it when it "
                "has finished", field="do")  # fmt: skip
        raise ValidationError(
            "confirm_catchup: no catch-up sweep is waiting: nothing is held back", field="do"
        )
    msgs = [
        _Msg(r.key, r.to_addr, str((r.context or {}).get("name") or r.to_addr),
             shown_subject(r.subject, r.context or {}), _ref(r.context or {}), None)
        for r in rows
    ]  # fmt: skip
    mark = max(r.id for r in rows)
    people = _by_person(msgs)
    digests = 0
    for to, mine in people.items():
        if len(mine) == 1:
            _set_status(uow, mine, QUEUED)  # one message: it goes as it is
            continue
        _set_status(uow, mine, DIGESTED)
        _digest(uow, f"digest:catchup:{mark}:{to}", mine, uow.today, True)
        digests += 1
    uow.record(
        f"CATCHUP-{uow.today.isoformat()}",
        {"held": len(msgs)},
        {"released": len(msgs), "people": len(people), "digests": digests},
        f"catch-up confirmed: {len(msgs)} message(s) to {len(people)} people, "
        f"{digests} digest(s)",
    )
    return {"released": len(msgs), "people": len(people), "digests": digests}


@command("mark_notifications_read", summary="Mark one of your notifications read, or all of them")
def mark_notifications_read(uow: UnitOfWork, args: Args) -> Result:
    notice = args.integer("notification", required=False, minimum=1)
    args.done()
    if uow.actor.person_id is None:
        raise ValidationError(
            "mark_notifications_read: only a registered person has notifications", field="do"
        )
    n = notices.mark_read(uow.conn, uow.actor.person_id, uow.now, notice)
    return {"marked_read": n}


# ------------------------------------------------------------------ officers told


OFFICER_NOTICE = "officer_notice"  # notifications/templates/officer_notice.txt


def tell_officers(
    uow: UnitOfWork, kind: str, ref: str, what: str, title: str = "", seq: int | None = None
) -> None:
    """Tell every active officer (email and in-app) that something arrived for them:
    ``what`` in words ("Rutland CC submitted bid B-0003"), about the item ``ref`` of
    ``kind`` (a page kind of engine/read/work.py ``LINKS``: bid, milestone, return).
    One message per officer and event (the key carries a random part: the same item
    may arrive again, e.g. evidence sent again after a rejection)."""
    page = page_of(kind, ref, seq)
    event = secrets.token_hex(6)
    url = base_url().rstrip("/") + page
    # the directory's active officers (kept with it: no walk over every person per event)
    for p in uow.directory.officers:
        if not p.email or p.id == uow.actor.person_id:
            continue
        uow.notify(
            key=f"officer:{kind}:{ref}:{event}:{p.email.lower()}",
            to=p.email,
            template=OFFICER_NOTICE,
            subject=what,
            context={"name": p.name, "what": what, "ref": ref, "title": title,
                     "url": url},  # fmt: skip
            item=ref,
            link=page,
        )
