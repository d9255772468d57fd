"""Grant offer letters, command side (issue 16): issuing a letter (the original
when a grant is made — engine/commands/awards.py ``commit_grant`` — and a
variation when it is re-profiled, a milestone added or its delivery extended —
handlers/grants.py), and the payment guard (``payment_refusal``) that
``release_payment`` and ``approve_advance`` ask. Shared like awards.py, so
that no handler module imports another to issue or check a letter; the
accept / decline commands are handlers/offers.py.

A letter is rendered once from the programme's template and stored with its
SHA-256 (notifications/letters.py); a newer letter issued while one is
unanswered supersedes it (workflows/offer.py) and carries its changed
milestones forward, so the newest letter naming a milestone is the one whose
acceptance lets that milestone be paid.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from engine.commands.uow import UnitOfWork, insert_into, inserted_id
from engine.domain.errors import TransitionRefused
from engine.read import offers as read_offers
from engine.store.models import OfferLetter, Pot, Programme
from notifications import letters
from workflows.offer import ACCEPTED, OFFER, OPEN

OFFER_T = OfferLetter.__table__
POT_T = Pot.__table__
PROG_T = Programme.__table__
_LETTERS = (
    select(OFFER_T).where(OFFER_T.c.grant_id == bindparam("grant_id"))
    .order_by(OFFER_T.c.version_no)
)
ORIGINAL, VARIATION = "original", "variation"


def letters_of(uow: UnitOfWork, grant_id: int) -> list[Any]:
    """The grant's letters, oldest first."""
    return list(uow.conn.execute(_LETTERS, {"grant_id": grant_id}))


def issue_letter(
    uow: UnitOfWork, grant_id: int, grant_ref: str, milestones: list[int], changes: list[str],
    first: bool = False,
) -> dict[str, Any]:
    """Issue the grant's next letter: the original if it has none, else a
    variation naming ``milestones`` changed and ``changes`` (in words). An
    unanswered letter is superseded by it (its changed milestones carried
    forward). ``first``: the grant was made in this command, so it has no letter,
    deposit or repayment instalment yet (not read). Returns {ref, kind, sha256,
    superseded}."""
    earlier = [] if first else letters_of(uow, grant_id)
    kind = VARIATION if earlier else ORIGINAL
    version_no = (earlier[-1].version_no if earlier else 0) + 1
    ref = read_offers.letter_ref(grant_ref, version_no)
    changed = set(milestones)
    replaces = []
    for old in earlier:
        if old.state != OPEN:
            continue
        gone = uow.fire(OFFER, "supersede", old.state, old.ref)
        uow.update_versioned(OfferLetter, old.id, old.version, {"superseded_by": ref}, old.ref,
                             gone)
        uow.record(old.ref, {"state": old.state}, {"state": gone.dest, "superseded_by": ref})
        changed |= set(old.milestones)
        replaces.append(old.ref)
    template, terms = read_offers.template_and_terms(uow.conn, grant_id, uow.today,
                                                     made_now=first)
    context = {
        **terms,
        "ref": ref,
        "kind": kind,
        "issued_on": uow.today.isoformat(),
        "changed": sorted(changed),
        "changes": changes,
        "replaces": replaces,
    }
    html = letters.render(template, context)
    sha = letters.fingerprint(html)
    step = uow.fire(OFFER, "issue", "new", ref)
    inserted_id(uow.conn.execute(insert_into(OfferLetter), dict(
        ref=ref, grant_id=grant_id, kind=kind, version_no=version_no,
        recipient_id=context["recipient_id"], milestones=sorted(changed) if earlier else [],
        template=template, issued_on=uow.today, html=html, sha256=sha, state=step.dest,
        answered_hash="", declined_reason="", superseded_by="", version=1)))
    uow.record(ref, {}, {"grant": grant_ref, "kind": kind, "state": step.dest, "sha256": sha,
                         "recipient": context["recipient"], "milestones": sorted(changed),
                         "changes": changes, "supersedes": replaces})
    return {"ref": ref, "kind": kind, "sha256": sha, "superseded": replaces}


def acceptance_required(uow: UnitOfWork, pot_id: int) -> bool:
    """Whether the grant's programme pays only after the offer is accepted."""
    return uow.programme_policy(uow.pot_programme(pot_id)).offer_acceptance_required


def _waits(uow: UnitOfWork, letter: Any) -> str:
    who = uow.directory.orgs_by_id[letter.recipient_id].name
    if letter.state == OPEN:
        return f"{letter.ref} issued {letter.issued_on} awaits acceptance by {who}"
    reason = f" ({letter.declined_reason})" if letter.declined_reason else ""
    return (f"{letter.ref} issued {letter.issued_on} was declined by {who} on "
            f"{letter.answered_on}{reason}; an officer issues a new letter (issue_offer)")


def payment_refusal(uow: UnitOfWork, grant: Any, milestone: int | None, field: str) -> None:
    """Refuse a payment on ``grant`` (on ``milestone``, or an advance: None) that
    its programme may not make yet: no letter accepted, or the milestone changed
    by a variation not yet accepted (other milestones may be paid)."""
    if not acceptance_required(uow, grant.pot_id):
        return
    rows = letters_of(uow, grant.id)
    if not any(r.state == ACCEPTED for r in rows):
        latest = rows[-1] if rows else None
        why = (_waits(uow, latest) if latest is not None else
               "no offer letter was issued (an officer issues one: issue_offer)")
        raise TransitionRefused(f"{uow.command}: {field}: {grant.ref} has no accepted offer: {why}",
                                field=field, item=grant.ref)
    if milestone is None:
        return
    naming = [r for r in rows if milestone in r.milestones]
    if naming and naming[-1].state != ACCEPTED:
        raise TransitionRefused(
            f"{uow.command}: milestone: {grant.ref} milestone {milestone} was changed by the "
            f"variation {_waits(uow, naming[-1])}; it cannot be paid until the variation is "
            "accepted (other milestones can)", field="milestone", item=grant.ref)
