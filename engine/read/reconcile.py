"""``quorum audit verify``: the chain, the checkpoints, and the money re-derived.

1. The chain (engine/store/audit.py ``verify``): every event's HMAC and link.
2. The chain against the signed checkpoints outside the database
   (engine/store/checkpoints.py): truncation and recomputation.
3. The money: every movement a command booked is recorded in its audit event
   (``audit_event.money``, under the HMAC). From those records alone the pot
   and grant ledgers are re-derived and compared with the tables: each
   ``money_movement`` row, each ``payment``, each grant's ``awarded_pence``,
   each recovery's ``recovered_pence``, the repayments on each grant, every
   pot's and grant's ledger line. Then paid ≤ committed ≤ awarded (grants),
   0 ≤ paid ≤ committed and available ≥ 0 (pots), paid ≤ amount (milestones).

Movements booked before the chain was keyed (id ≤ ``audit_head.legacy_movement``)
have no audit record: they are taken from the table as they are (counted in
the report) and only the cross-table checks and invariants apply to them.

Each problem names the event seq (when there is one), the table, the row's
ref, the field, and the expected and found values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import func, select
from sqlmodel import Session, col

from engine.domain.money import format_pence
from engine.store import audit, checkpoints
from engine.store.auditkeys import keyring
from engine.store.ledger import GrantLedger, PotLedger, fill_pot_line, grant_lines, ledger
from engine.store.models import (
    AdvancePayment,
    AuditEvent,
    Grant,
    Milestone,
    MoneyMovement,
    MovementKind,
    Payment,
    Pot,
    Programme,
    Recovery,
    RepaymentInstalment,
)

_FIELDS = ("pot_id", "kind", "amount_pence", "booked_on", "item_ref", "grant_id")
_MOVE = MoneyMovement.__table__
_PAY = Payment.__table__
_ADV = AdvancePayment.__table__
_GRANT = Grant.__table__
_REC = Recovery.__table__
_INST = RepaymentInstalment.__table__
_MS = Milestone.__table__
_POT = Pot.__table__
_PROG = Programme.__table__


@dataclass
class MoneyProblem:
    table: str
    ref: str
    field: str
    expected: Any
    found: Any
    seq: int | None = None  # the audit event that recorded the money
    note: str = ""

    def message(self) -> str:
        def show(v: Any) -> str:
            return f"{v} ({format_pence(v)})" if isinstance(v, int) and "pence" in self.field \
                else str(v)  # fmt: skip

        where = f"event {self.seq}: " if self.seq is not None else ""
        tail = f" — {self.note}" if self.note else ""
        return (f"{where}{self.table} {self.ref} {self.field}: expected {show(self.expected)}, "
                f"found {show(self.found)}{tail}")  # fmt: skip


@dataclass
class Recorded:
    seq: int
    movement: dict[str, Any]


def recorded_movements(session: Session) -> tuple[dict[int, Recorded], list[MoneyProblem]]:
    """Every movement the audit events record, by movement id."""
    out: dict[int, Recorded] = {}
    problems: list[MoneyProblem] = []
    rows = session.execute(
        select(col(AuditEvent.seq), col(AuditEvent.money))
        .where(col(AuditEvent.money) != "")
        .order_by(col(AuditEvent.seq))
    )
    for seq, money in cast(Iterable[tuple[int, str]], rows):
        for m in json.loads(money):
            if m["id"] in out:
                problems.append(MoneyProblem(
                    "audit_event", f"movement {m['id']}", "money", f"recorded once (event "
                    f"{out[m['id']].seq})", "recorded again", seq))  # fmt: skip
            out[m["id"]] = Recorded(seq, m)
    return out, problems


def _row_dict(row: Any) -> dict[str, Any]:
    return {
        "pot_id": row.pot_id, "kind": row.kind, "amount_pence": row.amount_pence,
        "booked_on": row.booked_on.isoformat(), "item_ref": row.item_ref,
        "grant_id": row.grant_id,
    }  # fmt: skip


def _label(m: dict[str, Any], movement_id: int) -> str:
    return f"{movement_id} ({m['kind']} {m['item_ref'] or ''})".replace(" )", ")")


def _derive_pots(moves: Iterable[dict[str, Any]], pots: dict[int, PotLedger]) -> None:
    sums: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for m in moves:
        sums[m["pot_id"]][m["kind"]] += m["amount_pence"]
    for pot_id, line in pots.items():
        fill_pot_line(line, sums.get(pot_id, {}))


def _derive_grants(moves: Iterable[dict[str, Any]]) -> dict[int, GrantLedger]:
    out: dict[int, GrantLedger] = {}
    attr = {MovementKind.COMMIT: "awarded_pence", MovementKind.PAY: "paid_out_pence",
            MovementKind.RELEASE: "released_pence", MovementKind.RECOVER: "recovered_pence",
            MovementKind.REPAY: "repaid_pence"}  # fmt: skip
    for m in moves:
        if m["grant_id"] is None or m["kind"] not in attr:
            continue
        line = out.setdefault(m["grant_id"], GrantLedger(m["grant_id"]))
        name = attr[MovementKind(m["kind"])]
        setattr(line, name, getattr(line, name) + m["amount_pence"])
    return out


def reconcile(session: Session, legacy_movement: int) -> tuple[list[MoneyProblem], int]:
    """Re-derive the money from the audit events and compare with every money
    row; check the invariants. Returns (problems, legacy movements taken as found)."""
    recorded, problems = recorded_movements(session)
    rows = {r.id: r for r in session.execute(select(_MOVE).order_by(_MOVE.c.id))}
    derived: dict[int, dict[str, Any]] = {}  # id -> the movement as the audit says
    legacy = 0
    for mid, row in rows.items():
        found = _row_dict(row)
        rec = recorded.get(mid)
        if rec is None:
            if mid <= legacy_movement:
                derived[mid] = found
                legacy += 1
            else:
                problems.append(MoneyProblem(
                    "money_movement", _label(found, mid), "row", "no such row (no audit event "
                    "records it)", f"{found['kind']} {found['amount_pence']} on pot "
                    f"{found['pot_id']}", None, "inserted outside a command"))  # fmt: skip
            continue
        derived[mid] = rec.movement
        for f in _FIELDS:
            if rec.movement.get(f) != found[f]:
                problems.append(MoneyProblem(
                    "money_movement", _label(rec.movement, mid), f, rec.movement.get(f),
                    found[f], rec.seq))  # fmt: skip
    for mid, rec in recorded.items():
        if mid not in rows:
            derived[mid] = rec.movement
            problems.append(MoneyProblem(
                "money_movement", _label(rec.movement, mid), "row",
                f"{rec.movement['kind']} {rec.movement['amount_pence']}", "missing (deleted)",
                rec.seq))  # fmt: skip
    seq_of = {mid: r.seq for mid, r in recorded.items()}
    by_ref: dict[tuple[str, str | None], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for mid, m in derived.items():
        by_ref[(m["kind"], m["item_ref"])].append((mid, m))

    # payments: each is one PAY movement booked under its ref
    for p in session.execute(select(_PAY)):
        pays = by_ref.get((MovementKind.PAY.value, p.ref), [])
        if len(pays) != 1:
            problems.append(MoneyProblem("payment", p.ref, "movement", "one PAY movement",
                                         f"{len(pays)}"))  # fmt: skip
            continue
        mid, m = pays[0]
        for f, want, got in (("amount_pence", m["amount_pence"], p.amount_pence),
                             ("grant_id", m["grant_id"], p.grant_id)):  # fmt: skip
            if want != got:
                problems.append(MoneyProblem("payment", p.ref, f, want, got, seq_of.get(mid)))

    # advances (issue 13): a paid one is one PAY movement under its ref; others none
    for a in session.execute(select(_ADV)):
        pays = by_ref.get((MovementKind.PAY.value, a.ref), [])
        want_n = 1 if a.state == "paid" else 0
        if len(pays) != want_n:
            problems.append(MoneyProblem("advance_payment", a.ref, "movement",
                                         f"{want_n} PAY movement(s) ({a.state})",
                                         f"{len(pays)}"))  # fmt: skip
            continue
        for mid, m in pays:
            for f, want, got in (("amount_pence", m["amount_pence"], a.amount_pence),
                                 ("grant_id", m["grant_id"], a.grant_id)):  # fmt: skip
                if want != got:
                    problems.append(MoneyProblem("advance_payment", a.ref, f, want, got,
                                                 seq_of.get(mid)))  # fmt: skip

    grants = {g.id: g for g in session.execute(select(_GRANT))}
    derived_grants = _derive_grants(derived.values())
    table_grants = grant_lines(session)
    for gid, g in grants.items():
        want = derived_grants.get(gid, GrantLedger(gid))
        got = table_grants.get(gid, GrantLedger(gid))
        if g.awarded_pence != want.awarded_pence:
            problems.append(MoneyProblem("grant_award", g.ref, "awarded_pence",
                                         want.awarded_pence, g.awarded_pence))  # fmt: skip
        for f in ("awarded_pence", "paid_pence", "committed_pence", "released_pence",
                  "recovered_pence", "repaid_pence"):  # fmt: skip
            if getattr(want, f) != getattr(got, f):
                problems.append(MoneyProblem("grant ledger", g.ref, f, getattr(want, f),
                                             getattr(got, f)))  # fmt: skip
        if not 0 <= got.paid_pence <= got.committed_pence <= got.awarded_pence:
            problems.append(MoneyProblem(
                "grant ledger", g.ref, "paid ≤ committed ≤ awarded",
                "0 ≤ paid ≤ committed ≤ awarded",
                f"paid {format_pence(got.paid_pence)}, committed "
                f"{format_pence(got.committed_pence)}, awarded {format_pence(got.awarded_pence)}"))

    # recoveries and repayments
    for r in session.execute(select(_REC)):
        recs = by_ref.get((MovementKind.RECOVER.value, r.ref), [])
        want_r = sum(m["amount_pence"] for _, m in recs)
        if r.recovered_pence != want_r:
            problems.append(MoneyProblem("recovery", r.ref, "recovered_pence", want_r,
                                         r.recovered_pence))  # fmt: skip
    repaid = dict(cast(Iterable[tuple[int, int]], session.execute(
        select(_INST.c.grant_id, func.sum(_INST.c.repaid_pence))
        .group_by(_INST.c.grant_id)).all()))  # fmt: skip
    for gid, total in repaid.items():
        want_repaid = derived_grants.get(gid, GrantLedger(gid)).repaid_pence
        if int(total or 0) != want_repaid:
            ref = grants[gid].ref if gid in grants else str(gid)
            problems.append(MoneyProblem("repayment_instalment", ref, "repaid_pence (sum)",
                                         want_repaid, int(total or 0)))  # fmt: skip

    # milestones: paid ≤ the milestone's amount
    paid_by_ms = dict(cast(Iterable[tuple[int, int]], session.execute(
        select(_PAY.c.milestone_id, func.sum(_PAY.c.amount_pence))
        .group_by(_PAY.c.milestone_id)).all()))  # fmt: skip
    for ms in session.execute(select(_MS).where(_MS.c.id.in_(list(paid_by_ms)))):
        if paid_by_ms[ms.id] > ms.payment_pence:
            grant_ref = grants[ms.grant_id].ref if ms.grant_id in grants else f"bid {ms.bid_id}"
            problems.append(MoneyProblem(
                "milestone", f"{grant_ref} milestone {ms.seq}", "paid ≤ payment_pence",
                f"at most {ms.payment_pence}", paid_by_ms[ms.id]))  # fmt: skip

    # pots: the ledger re-derived against the ledger from the table
    table_pots = ledger(session)
    pots_q = select(_POT.c.id, _POT.c.name, _PROG.c.name).join(
        _PROG, _PROG.c.id == _POT.c.programme_id)
    names = {pid: f"{prog} / {name}" for pid, name, prog in session.execute(pots_q)}
    want_pots = {line.pot_id: PotLedger(line.pot_id, line.name, line.programme)
                 for line in table_pots}  # fmt: skip
    _derive_pots(derived.values(), want_pots)
    for got_line in table_pots:
        want_line = want_pots[got_line.pot_id]
        ref = names.get(got_line.pot_id, str(got_line.pot_id))
        for f in ("allocated_pence", "committed_pence", "paid_pence", "available_pence"):
            if getattr(want_line, f) != getattr(got_line, f):
                problems.append(MoneyProblem("pot ledger", ref, f, getattr(want_line, f),
                                             getattr(got_line, f)))  # fmt: skip
        if not got_line.identity_holds():
            problems.append(MoneyProblem(
                "pot ledger", ref, "0 ≤ paid ≤ committed, available ≥ 0", "true",
                f"paid {format_pence(got_line.paid_pence)}, committed "
                f"{format_pence(got_line.committed_pence)}, available "
                f"{format_pence(got_line.available_pence)}"))
    return problems, legacy


@dataclass
class IntegrityReport:
    """What ``quorum audit verify`` prints: ``ok`` only with no problem anywhere."""

    chain: audit.VerifyResult
    checkpoint_problems: list[str] = field(default_factory=list)
    money_problems: list[MoneyProblem] = field(default_factory=list)
    latest: checkpoints.Checkpoint | None = None
    checkpoint_file: str = ""
    checkpoints: int = 0
    legacy_movements: int = 0
    development_key: bool = False
    development_signing_key: bool = False
    movements: int = 0

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.checkpoint_problems and not self.money_problems

    def problems(self) -> list[str]:
        return [*self.chain.problems, *self.checkpoint_problems,
                *(p.message() for p in self.money_problems)]  # fmt: skip

    def lines(self) -> list[str]:
        """The summary a person reads (the problems are printed apart)."""
        c = self.chain
        out = [
            f"audit chain {'intact' if c.ok else 'BROKEN'}: {c.total} events"
            + (f" ({c.legacy_seq} before keying, legacy unkeyed hash)" if c.legacy_seq else "")
            + (f"; keys {', '.join(c.key_ids)}" if c.key_ids else ""),
        ]
        if self.latest is not None:
            out.append(
                f"checkpoints: {self.checkpoints} of this chain in {self.checkpoint_file}; the "
                f"latest {self.latest.at}: {self.latest.count} events, head "
                f"{self.latest.short_head}…"
            )
        else:
            out.append(f"checkpoints: none of this chain yet in {self.checkpoint_file} "
                       "(run 'quorum audit checkpoint'; the sweep writes one daily)")  # fmt: skip
        out.append(
            f"money: {self.movements} movements re-derived from the audit events"
            + (f" and {self.legacy_movements} booked before keying taken as found"
               if self.legacy_movements else "")
            + (f"; {len(self.money_problems)} disagreement(s)" if self.money_problems
               else "; every payment, ledger line, grant total and pot balance agrees")
        )  # fmt: skip
        if self.development_key:
            out.append("warning: development key: the events are keyed with the development "
                       "key, which is public; set QUORUM_AUDIT_KEYRING or QUORUM_AUDIT_KEY "
                       "(docs/security.md)")  # fmt: skip
        if self.development_signing_key:
            out.append("warning: development signing key: checkpoints are signed with the "
                       "public development key; set QUORUM_CHECKPOINT_KEY_FILE")  # fmt: skip
        return out


def integrity_report(engine: Any) -> IntegrityReport:
    """Everything ``quorum audit verify`` checks, in one read."""
    with Session(engine) as session:
        chain = checkpoints.chain_id(session)
        found = checkpoints.read_checkpoints(chain)
        result = audit.verify(session, pins={cp.count for cp in found.mine})
        money, legacy = reconcile(session, result.legacy_movement)
        movements: int = session.execute(select(func.count()).select_from(_MOVE)).scalar_one()
    signer = checkpoints.signer()
    return IntegrityReport(
        chain=result,
        checkpoint_problems=checkpoints.check_chain(result, found, chain),
        money_problems=money,
        latest=found.latest,
        checkpoint_file=str(found.path),
        checkpoints=len(found.mine),
        legacy_movements=legacy,
        development_key=result.development_key or keyring().development,
        development_signing_key=signer.development,
        movements=int(movements) - legacy,
    )
