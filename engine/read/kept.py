"""Figures kept between requests until a command that could change them runs.

Every change is a command and every command appends events to the audit chain,
so the chain's tip (last seq and hash) says whether anything changed since
figures were drawn, and the events since then say what: figures kept with a set
of commands that cannot move them (``unaffected``, e.g. a score overridden for a
dashboard of money) stand through those; any other event draws them afresh, so
a command added later is safe by default. The hash tells two databases apart
that reached the same seq (tests' in-memory databases share a URL).

Each caller gets its own deep copy. Kept per process (least recently used
first out); a second worker keeps its own and judges by the same chain.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from engine.store.models import AuditEvent, AuditHead

T = TypeVar("T")
RECHECK_AFTER = 500  # events since the kept tip beyond which drawing afresh is simpler
KEEP = 64  # figures kept per process (a list's totals are kept per filter and search)

_AUDIT_T = AuditEvent.__table__
_HEAD_T = AuditHead.__table__
_KEPT: OrderedDict[tuple[Any, ...], tuple[tuple[int, str], Any]] = OrderedDict()
_LOCK = threading.Lock()
DRAWN: dict[str, int] = {}  # name -> times drawn afresh in this process (tests, benchmarks)

# commands that write criterion scores and nothing else a figure of money, letters or
# returns reads: such figures stand through them (``unaffected``)
SCORES_ONLY = frozenset({"override_score", "score_round"})
# scoring a round moves its bids (submitted -> scored) onto agendas: only an override
# leaves a meeting's counts standing
OVERRIDES_ONLY = frozenset({"override_score"})


def tip(conn: Session | Connection) -> tuple[int, str]:
    """The audit chain's last seq and hash."""
    row = conn.execute(
        select(_HEAD_T.c.last_seq, _HEAD_T.c.last_hash).where(_HEAD_T.c.id == 1)).first()
    return (0, "") if row is None else (int(row.last_seq or 0), str(row.last_hash or ""))


def _stands(conn: Session | Connection, since: tuple[int, str],
            unaffected: frozenset[str]) -> bool:
    seq, chain = since
    on_chain = seq == 0 or conn.execute(
        select(_AUDIT_T.c.hash).where(_AUDIT_T.c.seq == seq)).scalar() == chain
    events: list[str] = list(conn.execute(
        select(_AUDIT_T.c.command).where(_AUDIT_T.c.seq > seq).limit(RECHECK_AFTER + 1)
    ).scalars())
    return on_chain and len(events) <= RECHECK_AFTER and set(events) <= unaffected


def kept(conn: Session | Connection, name: str, key: Hashable,
         unaffected: frozenset[str], draw: Callable[[], T]) -> T:
    """``draw()``'s figures for ``name`` and ``key`` on this database, drawn once
    and kept while only ``unaffected`` commands have run since (a copy)."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    slot = (str(bind.engine.url), name, key)
    now = tip(conn)
    with _LOCK:
        found = _KEPT.get(slot)
    if found is not None and found[0] != now and not _stands(conn, found[0], unaffected):
        found = None
    if found is None:
        DRAWN[name] = DRAWN.get(name, 0) + 1
        found = (now, draw())
    else:
        found = (now, found[1])
    with _LOCK:
        _KEPT[slot] = found
        _KEPT.move_to_end(slot)
        while len(_KEPT) > KEEP:
            _KEPT.popitem(last=False)
    return copy.deepcopy(found[1])


def forget() -> None:
    """Drop everything kept (tests; a restored database)."""
    with _LOCK:
        _KEPT.clear()
