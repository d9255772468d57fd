"""Set-up, read side: programmes with their pots and options, authorities and
partnerships with their accountable bodies, the ratified changes to allocations
and the accountable-body proposals waiting for a second officer. Read by the
set-up pages (quorum_web/pages_setup.py); the commands that change them are
engine/commands/handlers/programme.py, directory.py and partnerships.py."""

from __future__ import annotations

from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.engine import Connection

from engine.store.ledger import ledger
from engine.store.models import (
    AccountableBodyChange,
    Organisation,
    Person,
    PersonRole,
    Programme,
    ProgrammeChange,
    RuleSetVersion,
)

PROG_T = Programme.__table__
ORG_T = Organisation.__table__
ABC_T = AccountableBodyChange.__table__
PC_T = ProgrammeChange.__table__
PERSON_T = Person.__table__
ROLE_T = PersonRole.__table__
SCHEME_T = RuleSetVersion.__table__  # an adopted scheme is stored as a rule-set version

BOARD_ROLES = ("chair", "vice_chair", "board_member")  # who sits on a Board meeting


class PotLine(TypedDict):
    name: str
    allocated_pence: int
    committed_pence: int
    paid_pence: int
    available_pence: int


class ProgrammeRow(TypedDict):
    name: str
    starts_on: str
    ends_on: str
    papers_clear_days: int
    accountable_body_required: bool
    second_factor: dict[str, list[str]]
    scheme: str
    pots: list[PotLine]
    total_pence: int
    changes: list[dict[str, Any]]


class OrgRow(TypedDict):
    name: str
    kind: str
    email: str
    org_id: str
    accountable_body: str


class BodyProposal(TypedDict):
    ref: str
    partnership: str
    body: str
    state: str
    version: int
    reason: str
    proposed_by: str
    proposed_by_id: int | None
    proposed_on: str


def programmes(conn: Connection) -> list[ProgrammeRow]:
    """Every programme with its pots' balances, its options and its last ratified changes."""
    lines: dict[str, list[PotLine]] = {}
    for line in ledger(conn):
        lines.setdefault(line.programme, []).append(
            {
                "name": line.name,
                "allocated_pence": line.allocated_pence,
                "committed_pence": line.committed_pence,
                "paid_pence": line.paid_pence,
                "available_pence": line.available_pence,
            }
        )
    schemes = {r.id: f"{r.name} {r.version}" for r in conn.execute(select(SCHEME_T))}
    changes: dict[int, list[dict[str, Any]]] = {}
    for c in conn.execute(select(PC_T).order_by(PC_T.c.id.desc())):
        changes.setdefault(c.programme_id, []).append(
            {
                "ref": c.ref,
                "ratified_on": c.ratified_on.isoformat(),
                "ratified_by": c.ratified_by,
                "reason": c.reason,
                "old_total_pence": c.old_total_pence,
                "new_total_pence": c.new_total_pence,
            }
        )
    out: list[ProgrammeRow] = []
    for p in conn.execute(select(PROG_T).order_by(PROG_T.c.id)):
        pots = lines.get(p.name, [])
        out.append(
            {
                "name": p.name,
                "starts_on": p.starts_on.isoformat() if p.starts_on else "",
                "ends_on": p.ends_on.isoformat() if p.ends_on else "",
                "papers_clear_days": p.papers_clear_days,
                "accountable_body_required": bool(p.accountable_body_required),
                "second_factor": dict(p.second_factor or {}),
                "scheme": schemes.get(p.delegation_scheme_id, "") if p.delegation_scheme_id else "",
                "pots": pots,
                "total_pence": sum(x["allocated_pence"] for x in pots),
                "changes": changes.get(p.id, [])[:10],
            }
        )
    return out


def organisations(conn: Connection) -> list[OrgRow]:
    """Every authority and partnership, by name, with its accountable body (if any)."""
    body = ORG_T.alias("body")
    rows = conn.execute(
        select(ORG_T, body.c.name.label("body_name"))
        .outerjoin(body, body.c.id == ORG_T.c.accountable_body_id)
        .order_by(ORG_T.c.name)
    )
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "email": r.email or "",
            "org_id": r.org_id or "",
            "accountable_body": r.body_name or "",
        }
        for r in rows
    ]


def body_proposals(conn: Connection) -> list[BodyProposal]:
    """Accountable-body proposals, newest first."""
    part, body = ORG_T.alias("part"), ORG_T.alias("body")
    rows = conn.execute(
        select(
            ABC_T,
            part.c.name.label("partnership_name"),
            body.c.name.label("body_name"),
            PERSON_T.c.name.label("proposer"),
        )
        .join(part, part.c.id == ABC_T.c.partnership_id)
        .join(body, body.c.id == ABC_T.c.body_id)
        .outerjoin(PERSON_T, PERSON_T.c.id == ABC_T.c.proposed_by_id)
        .order_by(ABC_T.c.id.desc())
    )
    return [
        {
            "ref": r.ref,
            "partnership": r.partnership_name,
            "body": r.body_name,
            "state": r.state,
            "version": r.version,
            "reason": r.reason,
            "proposed_by": r.proposer or "",
            "proposed_by_id": r.proposed_by_id,
            "proposed_on": r.proposed_on.isoformat(),
        }
        for r in rows
    ]


def board_people(conn: Connection) -> list[tuple[str, str]]:
    """(email, "Name (role, role)") of every active person with a Board role, by name."""
    roles: dict[int, list[str]] = {}
    for r in conn.execute(select(ROLE_T.c.person_id, ROLE_T.c.role).order_by(ROLE_T.c.role)):
        roles.setdefault(r.person_id, []).append(r.role)
    people = conn.execute(
        select(PERSON_T.c.id, PERSON_T.c.name, PERSON_T.c.email)
        .where(PERSON_T.c.active.is_(True))
        .order_by(PERSON_T.c.name)
    )
    return [
        (p.email, f"{p.name} ({', '.join(r.replace('_', ' ') for r in roles[p.id])})")
        for p in people
        if set(roles.get(p.id, ())) & set(BOARD_ROLES)
    ]
