"""Grant offer letters and their acceptance (issue 16, item 1; docs/grants.md
"Offer letters"): the letter an approval issues holds the grant's terms; no
payment before the recipient accepts it; only the recipient's authorised
contact answers it (who, when and the letter's hash recorded); a variation
letter must be accepted before the milestone it changed is paid (the others
can be), and a newer letter supersedes an unanswered one."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from fastapi.testclient import TestClient
from moneykit import (
    DIRECTOR,
    OFFICER,
    OFFICER2,
    SPONSOR,
    SPONSOR2,
    accept_offer,
    grant_ref,
    money_board,
)
from sqlalchemy import select
from webkit import csrf_of, set_passwords, sign_in

from engine.domain.errors import NotFound, PermissionDenied, TransitionRefused, ValidationError
from engine.read.offers import letters, open_letter
from engine.store.models import OfferLetter
from quorum_web.app import create_app


@pytest.fixture
def board(tmp_path):
    q, engine, clock = money_board(f"sqlite:///{tmp_path / 'q.db'}", accept_offers=False)
    return q, engine, clock, grant_ref(engine, "Shared ICT"), grant_ref(engine, "Invest to save")


def _require(q, required: str = "yes") -> None:
    q.execute("configure_payments", {"offer_acceptance_required": required}, DIRECTOR)


def _verified(q, grant: str, seq: int, sponsor: str = SPONSOR) -> dict:
    key = {"grant": grant, "milestone": seq}
    q.execute("submit_evidence", {**key, "summary": "done"}, sponsor)
    q.execute("verify_milestone", key, OFFICER)
    return key


def _open(engine, grant: str) -> tuple[str, str]:
    with engine.connect() as c:
        found = open_letter(c, grant)
    assert found is not None
    return found


def _row(engine, ref: str):
    with engine.connect() as c:
        return c.execute(select(OfferLetter.__table__).where(
            OfferLetter.__table__.c.ref == ref)).one()


def test_an_approved_bids_offer_letter_holds_its_terms(board) -> None:
    q, engine, _, ict, its = board
    with engine.connect() as c:
        (ours,) = letters(c, ict)
        (theirs,) = letters(c, its)
    assert ours["ref"] == f"OFF-{ict}-1" and ours["kind"] == "original"
    assert ours["state"] == "issued" and ours["issued_on"] == "2011-04-20"
    assert ours["recipient"] == "Rutland CC"
    row = _row(engine, ours["ref"])
    html = row.html
    assert row.sha256 == hashlib.sha256(html.encode()).hexdigest() == ours["sha256"]
    assert "Offer of grant " + ict in html and "To: Rutland CC" in html
    assert "£100,000" in html and "Shared ICT" in html  # amount and purpose
    for words in ("Contract let", "30 June 2011", "£40,000", "Savings report", "£20,000"):
        assert words in html, words  # milestones and payments
    assert "progress report each quarter, due 30 days after the period ends" in html  # returns
    assert "Not an invest-to-save grant" in html
    assert "No deposit is held against this grant" in html
    assert "Clawback" in html and "refunded" in html
    assert "invest-to-save grant: it is repaid from the savings it creates" in _row(
        engine, theirs["ref"]).html
    assert "To: Melton BC" in _row(engine, theirs["ref"]).html


def test_payment_refused_before_acceptance_then_paid(board) -> None:
    q, engine, clock, ict, _ = board
    key = _verified(q, ict, 1)
    _require(q, "no")
    q.execute("release_payment", {**key, "amount": "1"}, OFFICER2)  # not required: paid
    _require(q)  # a new programme requires it (the default)
    with pytest.raises(TransitionRefused) as no:
        q.execute("release_payment", key, OFFICER2)
    assert no.value.message == (
        f"release_payment: grant: {ict} has no accepted offer: OFF-{ict}-1 issued 2011-04-20 "
        "awaits acceptance by Rutland CC")
    clock.set(dt.date(2011, 5, 2))
    got = accept_offer(q, ict, SPONSOR)
    assert got["state"] == "accepted" and got["by"] == "Sam" and got["on"] == "2011-05-02"
    row = _row(engine, f"OFF-{ict}-1")
    assert row.answered_hash == row.sha256 and row.answered_on == dt.date(2011, 5, 2)
    paid = q.execute("release_payment", key, OFFICER2)
    assert paid["amount_pence"] == 4_000_000 - 100


def test_acceptance_only_by_the_recipients_authorised_contact(board) -> None:
    q, engine, _, ict, _ = board
    ref, sha = _open(engine, ict)
    args = {"offer": ref, "sha256": sha}
    with pytest.raises(PermissionDenied) as other:  # a sponsor of another council
        q.execute("accept_offer", args, SPONSOR2)
    assert "Mel (mel@melton.example) is not an authorised contact of Rutland CC" in (
        other.value.message)
    with pytest.raises(PermissionDenied) as officer:  # staff never accept for a recipient
        q.execute("accept_offer", args, OFFICER)
    assert "needs the role sponsor" in officer.value.message
    with pytest.raises(ValidationError) as stale:  # not the letter as issued
        q.execute("accept_offer", {"offer": ref, "sha256": "0" * 64}, SPONSOR)
    assert f"is not the hash of {ref} as issued" in stale.value.message
    with pytest.raises(NotFound):
        q.execute("accept_offer", {"offer": "OFF-G-9999-1", "sha256": sha}, SPONSOR)
    assert _row(engine, ref).state == "issued"
    q.execute("accept_offer", args, SPONSOR)
    with pytest.raises(TransitionRefused):  # answered once
        q.execute("decline_offer", {"offer": ref, "reason": "changed our mind"}, SPONSOR)


def test_a_variation_is_accepted_before_its_changed_milestone_is_paid(board) -> None:
    q, engine, clock, ict, _ = board
    _require(q)
    accept_offer(q, ict, SPONSOR)
    clock.set(dt.date(2011, 6, 1))
    changed = q.execute("reprofile_milestone", {
        "grant": ict, "milestone": 2, "amount": "35,000", "approved_by": "Board 1 Jun 2011"},
        OFFICER)
    assert changed["offer"] == f"OFF-{ict}-2"
    var = _row(engine, f"OFF-{ict}-2")
    assert var.kind == "variation" and var.milestones == [2]
    assert "milestone 2 re-profiled: payment £40,000 → £35,000" in var.html
    one, two = _verified(q, ict, 1), _verified(q, ict, 2)
    q.execute("release_payment", one, OFFICER2)  # unchanged milestone: paid
    with pytest.raises(TransitionRefused) as held:
        q.execute("release_payment", two, OFFICER2)
    assert held.value.message == (
        f"release_payment: milestone: {ict} milestone 2 was changed by the variation "
        f"OFF-{ict}-2 issued 2011-06-01 awaits acceptance by Rutland CC; it cannot be paid "
        "until the variation is accepted (other milestones can)")
    # an extension before it is answered supersedes it, carrying milestone 2 forward
    clock.set(dt.date(2011, 6, 3))
    q.execute("extend_grant", {"grant": ict, "months": 6, "approved_by": "Director"}, OFFICER)
    assert _row(engine, f"OFF-{ict}-2").state == "superseded"
    assert _row(engine, f"OFF-{ict}-3").milestones == [2]
    with pytest.raises(TransitionRefused) as old:
        q.execute("accept_offer", {"offer": f"OFF-{ict}-2", "sha256": var.sha256}, SPONSOR)
    assert f"superseded by OFF-{ict}-3" in old.value.message
    with pytest.raises(TransitionRefused):
        q.execute("release_payment", two, OFFICER2)
    accept_offer(q, ict, SPONSOR)
    assert q.execute("release_payment", two, OFFICER2)["amount_pence"] == 3_500_000


def test_a_declined_offer_is_issued_again_and_advances_wait_too(board) -> None:
    q, engine, _, ict, _ = board
    _require(q)
    ref, _sha = _open(engine, ict)
    q.execute("decline_offer", {"offer": ref, "reason": "the milestones are too early"}, SPONSOR)
    with pytest.raises(TransitionRefused) as no:
        q.execute("request_advance", {"grant": ict, "amount": "5,000", "reason": "set-up"},
                  OFFICER)
        q.execute("approve_advance", {"item": "ADV-0001"}, OFFICER2)
    assert "was declined by Rutland CC on 2011-04-20 (the milestones are too early)" in (
        no.value.message)
    again = q.execute("issue_offer", {"grant": ict, "reason": "milestones agreed"}, OFFICER)
    assert again["offer"] == f"OFF-{ict}-2" and again["kind"] == "variation"
    accept_offer(q, ict, SPONSOR)
    assert q.execute("approve_advance", {"item": "ADV-0001"}, OFFICER2)["state"] == "paid"


def test_the_sponsor_accepts_on_the_grant_page_and_reads_the_letter(board, tmp_path) -> None:
    q, engine, clock, ict, its = board
    _require(q)
    set_passwords(q, SPONSOR, OFFICER)
    app = create_app(f"sqlite:///{tmp_path / 'q.db'}", scheduler=False, clock=clock)
    with TestClient(app) as officer, TestClient(app) as sponsor:
        sign_in(officer, OFFICER)
        sign_in(sponsor, SPONSOR)
        work = officer.get("/").text
        assert "Offers awaiting acceptance" in work and f"OFF-{ict}-1" in work
        page = sponsor.get(f"/grants/{ict}").text
        assert "Offer letters" in page and "Accept the offer" in page
        assert "Accept the offer" not in officer.get(f"/grants/{ict}").text
        letter = sponsor.get(f"/grants/{ict}/offers/OFF-{ict}-1")
        assert letter.status_code == 200 and "£100,000" in letter.text
        assert "default-src 'none'" in letter.headers["content-security-policy"]
        pdf = sponsor.get(f"/grants/{ict}/offers/OFF-{ict}-1/pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert sponsor.get(f"/grants/{ict}/offers/OFF-{ict}-9").status_code == 404
        assert sponsor.get(f"/grants/{its}/offers/OFF-{its}-1").status_code == 404
        ref, sha = _open(engine, ict)
        form = {"csrf_token": csrf_of(sponsor, f"/grants/{ict}"), "_next": f"/grants/{ict}",
                "_form": f"accept-{ref}", "offer": ref, "version": "1"}
        unconfirmed = sponsor.post("/do/accept_offer", data=form)
        assert unconfirmed.status_code == 400 and "sha256" in unconfirmed.text
        done = sponsor.post("/do/accept_offer", data={**form, "sha256": sha},
                            follow_redirects=False)
        assert done.status_code == 303
        assert _row(engine, ref).state == "accepted"
        assert f"OFF-{ict}-1" not in officer.get("/").text
