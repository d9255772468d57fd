"""Grant offer letters: the recipient accepts or declines (issue 16;
docs/grants.md "Offer letters").

A letter (``OFF-G-0001-1``) is issued when the grant is made and a variation
(``OFF-G-0001-2``, ...) when it is varied (engine/commands/letters.py). Only
an authorised contact of the recipient answers it: a sponsor of the grant's
authority, or — a partnership's grant — of its accountable body, which the
letter is addressed to. Accepting records who, when and the hash of the
letter they accepted (``sha256``: the caller states the hash of the letter it
read; a letter that no longer matches, or one superseded by a newer letter,
is refused). An officer may issue the letter again as it now stands
(``issue_offer``): after a decline, or for a grant made before letters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from engine.commands.args import Args
from engine.commands.letters import issue_letter
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork
from engine.domain.errors import NotFound, PermissionDenied, TransitionRefused, ValidationError
from engine.store.models import Grant, OfferLetter
from workflows.offer import OFFER, OPEN, SUPERSEDED

OFFER_T = OfferLetter.__table__
GRANT_T = Grant.__table__
_LETTER_BY_REF = (
    select(OFFER_T, GRANT_T.c.ref.label("grant_ref"),
           GRANT_T.c.accountable_body_id.label("grant_body_id"))
    .join(GRANT_T, GRANT_T.c.id == OFFER_T.c.grant_id)
    .where(OFFER_T.c.ref == bindparam("ref"))
)


def _missing(uow: UnitOfWork, ref: str) -> NotFound:
    return NotFound(f"{uow.command}: offer: no offer letter {ref!r} (refs look like "
                    "OFF-G-0001-1)", field="offer", item=ref)


def _load(uow: UnitOfWork, ref: str) -> Any:
    row = uow.conn.execute(_LETTER_BY_REF, {"ref": ref.strip().upper()}).first()
    if row is None:
        raise _missing(uow, ref)
    return row


def _check_contact(uow: UnitOfWork, letter: Any) -> None:
    """Only a sponsor of the recipient (or of the grant's own authority) answers a
    letter; a sponsor of any other authority is refused by name."""
    allowed = {letter.recipient_id, letter.grant_body_id}
    if uow.actor.organisation_id in allowed:
        return
    names = [uow.directory.orgs_by_id[i].name for i in (letter.recipient_id, letter.grant_body_id)]
    who = " or ".join(dict.fromkeys(names))
    raise PermissionDenied(
        f"{uow.command}: {uow.actor.name or uow.actor.label} ({uow.actor.label}) is not an "
        f"authorised contact of {who}: only a sponsor of {who} may answer {letter.ref}",
        item=letter.ref)


def _answer(uow: UnitOfWork, args: Args, trigger: str) -> tuple[Any, str]:
    ref = args.text("offer", max_len=40)
    sha = args.text("sha256", required=trigger == "accept", max_len=64).strip().lower()
    reason = args.text("reason", required=trigger == "decline", max_len=2000)
    args.done()
    uow.authorise(OFFER, trigger)
    letter = _load(uow, ref)
    _check_contact(uow, letter)
    uow.check_version(letter.ref, letter.version, args)
    if letter.state == SUPERSEDED:
        raise TransitionRefused(
            f"{uow.command}: offer: {letter.ref} was superseded by {letter.superseded_by} "
            f"before it was answered; read {letter.superseded_by} and answer that one",
            field="offer", item=letter.ref)
    if sha and sha != letter.sha256:
        raise ValidationError(
            f"{uow.command}: sha256: {sha[:12]}… is not the hash of {letter.ref} as issued "
            f"({letter.sha256[:12]}…): the letter you read is not this letter; reload it and "
            "answer the letter as it now stands", field="sha256", item=letter.ref)
    return letter, reason


def _done(uow: UnitOfWork, letter: Any, trigger: str, reason: str) -> Result:
    step = uow.fire(OFFER, trigger, letter.state, letter.ref)
    values = {"answered_by_id": uow.actor.person_id, "answered_on": uow.today,
              "answered_hash": letter.sha256 if trigger == "accept" else "",
              "declined_reason": reason if trigger == "decline" else ""}
    version = uow.update_versioned(OfferLetter, letter.id, letter.version, values, letter.ref,
                                   step)
    by = uow.actor.name or uow.actor.label
    after = {"state": step.dest, "by": by, "on": uow.today.isoformat(), "sha256": letter.sha256}
    uow.record(letter.ref, {"state": letter.state}, after, reason)
    uow.record(letter.grant_ref, {}, {"offer": letter.ref, **after}, reason)
    return {"offer": letter.ref, "grant": letter.grant_ref, "state": step.dest, "by": by,
            "on": uow.today.isoformat(), "sha256": letter.sha256, "version": version}


@command("accept_offer",
         summary="The recipient accepts a grant offer letter (its hash recorded)")
def accept_offer(uow: UnitOfWork, args: Args) -> Result:
    letter, reason = _answer(uow, args, "accept")
    return _done(uow, letter, "accept", reason)


@command("decline_offer", summary="The recipient declines a grant offer letter, with the reason")
def decline_offer(uow: UnitOfWork, args: Args) -> Result:
    letter, reason = _answer(uow, args, "decline")
    return _done(uow, letter, "decline", reason)


@command("issue_offer",
         summary="Issue a grant's offer letter again as it now stands (after a decline, or for "
                 "a grant made before letters)")
def issue_offer(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(OFFER, "issue")
    ref = args.text("grant", max_len=40)
    reason = args.text("reason", required=False, max_len=2000)
    args.done()
    grant = uow.conn.execute(select(GRANT_T).where(GRANT_T.c.ref == ref.strip().upper())).first()
    if grant is None:
        raise NotFound(f"issue_offer: grant: no grant {ref!r}", field="grant", item=ref)
    if grant.state != "active":
        raise TransitionRefused(
            f"issue_offer: grant: {grant.ref} is {grant.state}; an offer is issued only for an "
            "active grant", field="grant", item=grant.ref)
    open_refs = [str(r.ref) for r in uow.conn.execute(select(OFFER_T.c.ref).where(
        OFFER_T.c.grant_id == grant.id, OFFER_T.c.state == OPEN))]
    letter = issue_letter(uow, grant.id, grant.ref, [],
                          [reason or "the offer issued again as it now stands"])
    return {"grant": grant.ref, "offer": letter["ref"], "kind": letter["kind"],
            "sha256": letter["sha256"], "superseded": open_refs}
