"""How boards actually decide (DOMAIN.md "Outcomes at a meeting", "Meetings"):
an approval with conditions, discharged by an officer before the first payment;
votes by name; a programme approved except some projects referred to a later
meeting. Each refusal says what is wrong and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moneykit import (
    OFFICER,
    OFFICER2,
    SPONSOR,
    dump,
    grant_ref,
    money_board,
    refused,
)
from sqlalchemy import select

from engine.domain.errors import PermissionDenied, TransitionRefused, ValidationError
from engine.entry import replay
from engine.read.conditions import approval_conditions
from engine.read.papers import paper_context
from engine.store.models import AuditEvent, Decision, Grant, OfferLetter, Outbox
from notifications import papers as paper_render
from notifications.render import body

MATCH = "Confirm match funding from Hull CC"
BOARD_REPORT = "Report progress to the Board in six months"


@pytest.fixture
def conditional(db_url: str):
    """The money board, "Shared ICT" approved on two conditions: one before the
    first payment (the default), one during delivery; its offer accepted."""
    q, engine, clock = money_board(db_url, conditions={
        "Shared ICT": [MATCH, {"text": BOARD_REPORT, "when": "during_delivery"}]})
    yield q, engine, clock, grant_ref(engine, "Shared ICT")
    engine.dispose()


def _grant_id(engine, ref: str) -> int:
    with engine.connect() as c:
        return c.execute(select(Grant.id).where(Grant.ref == ref)).scalar_one()


def _ready_to_pay(q, g: str) -> None:
    q.execute("submit_evidence", {"grant": g, "milestone": 1, "summary": "contract"}, SPONSOR)
    q.execute("verify_milestone", {"grant": g, "milestone": 1}, OFFICER)


def test_an_approval_with_conditions_is_recorded_copied_to_the_grant_and_in_the_letter(
    conditional,
) -> None:
    q, engine, _, g = conditional
    with engine.connect() as c:
        d = c.execute(select(Decision).where(Decision.outcome == "approve")
                      .order_by(Decision.id)).first()
        assert d.conditions == [{"text": MATCH, "before_payment": True},
                                {"text": BOARD_REPORT, "before_payment": False}]
        rows = approval_conditions(c, _grant_id(engine, g))
        letter = c.execute(select(OfferLetter.html).where(
            OfferLetter.grant_id == _grant_id(engine, g))).scalar_one()
    assert [(r["seq"], r["text"], r["when"], r["state"]) for r in rows] == [
        (1, MATCH, "before first payment", "open"),
        (2, BOARD_REPORT, "during delivery", "open")]
    assert "Conditions of the approval" in letter
    assert f"<td>1</td><td>{MATCH}</td><td>before first payment</td>" in letter
    assert f"<td>2</td><td>{BOARD_REPORT}</td><td>during delivery</td>" in letter
    # the other grant was approved without conditions: its letter says nothing of them
    other = grant_ref(engine, "Invest to save")
    with engine.connect() as c:
        plain = c.execute(select(OfferLetter.html).where(
            OfferLetter.grant_id == _grant_id(engine, other))).scalar_one()
    assert "Conditions of the approval" not in plain
    # the decision letter to the sponsor lists them; a plain approval's says nothing of them
    with engine.connect() as c:
        mail = {r.context["title"]: r for r in c.execute(
            select(Outbox.template, Outbox.context).where(Outbox.template == "decision_letter"))}
    txt, html = body("decision_letter", mail["Shared ICT"].context)
    assert f"1. {MATCH}" in txt and f"<li>{MATCH}</li>" in (html or "")
    plain_txt, _ = body("decision_letter", mail["Invest to save"].context)
    assert "conditions" not in plain_txt


def test_payment_waits_for_a_before_payment_condition_then_is_made_once_discharged(
    conditional,
) -> None:
    q, engine, _, g = conditional
    _ready_to_pay(q, g)
    refused(engine, lambda: q.execute("release_payment", {"grant": g, "milestone": 1}, OFFICER2),
            TransitionRefused, f"{g} condition 1 '{MATCH}' is not yet met")
    # only an officer discharges; evidence is required; a condition that does not exist
    refused(engine, lambda: q.execute("discharge_condition", {
        "grant": g, "n": 1, "evidence": "letter"}, SPONSOR), PermissionDenied,
        "discharge_condition needs the role officer")
    refused(engine, lambda: q.execute("discharge_condition", {"grant": g, "n": 1}, OFFICER),
            ValidationError, "evidence")
    refused(engine, lambda: q.execute("discharge_condition", {
        "grant": g, "n": 3, "evidence": "x"}, OFFICER), Exception, f"{g} has no condition 3")
    out = q.execute("discharge_condition", {
        "grant": g, "n": 1, "evidence": "Hull CC letter of 2 May 2011 confirming £50,000",
        "note": "seen by Olive"}, OFFICER)
    assert out == {"grant": g, "condition": 1, "state": "met"}
    with engine.connect() as c:
        rows = approval_conditions(c, _grant_id(engine, g))
        event = c.execute(select(AuditEvent.item_ref, AuditEvent.reason, AuditEvent.after).where(
            AuditEvent.command == "discharge_condition")).one()
    assert (rows[0]["state"], rows[0]["discharged_by"], rows[1]["state"]) == (
        "met", "Olive", "open")
    # audited in words: which condition, who, the evidence and the note
    assert event.item_ref == g and event.reason == "seen by Olive"
    after = json.loads(event.after)
    assert after["condition"] == f"1: {MATCH}" and after["state"] == "met"
    assert after["discharged by"] == "Olive" and after["evidence"].startswith("Hull CC letter")
    refused(engine, lambda: q.execute("discharge_condition", {
        "grant": g, "n": 1, "evidence": "again"}, OFFICER), TransitionRefused,
        f"{g} condition 1 '{MATCH}' was discharged on")
    # condition 2 (during delivery) is still open: it does not hold the payment
    paid = q.execute("release_payment", {"grant": g, "milestone": 1}, OFFICER2)
    assert paid["amount_pence"] == 4_000_000


def test_conditions_only_on_an_approval_and_read_in_plain_words(db_url: str) -> None:
    q, engine, _ = money_board(db_url, accept_offers=False)
    before = dump(engine)
    bid = "B-0003"
    q.execute("schedule_meeting", {"ref": "M2", "title": "Board", "date": "2011-04-20",
                                   "quorum": 3, "members": ["Cllr Ash", "Cllr Birch",
                                                            "Cllr Cedar"]}, OFFICER)
    q.execute("record_attendance", {"meeting": "M2", "present": [
        "Cllr Ash", "Cllr Birch", "Cllr Cedar"]}, OFFICER)
    with pytest.raises(ValidationError, match="decide: conditions: only an approval has"):
        q.execute("decide", {"meeting": "M2", "item": bid, "outcome": "reject",
                             "conditions": ["x"]}, OFFICER)
    with pytest.raises(ValidationError, match=r"conditions\[1\]: when: 'soon' is not one of"):
        q.execute("decide", {"meeting": "M2", "item": bid, "outcome": "approve",
                             "conditions": [{"text": "x", "when": "soon"}]}, OFFICER)
    # text: one condition per line, blank lines ignored
    q.execute("decide", {"meeting": "M2", "item": bid, "outcome": "approve",
                         "conditions": "Sign the partnership agreement\n\n  Appoint a lead  "},
              OFFICER)
    with engine.connect() as c:
        gid = c.execute(select(Grant.id).order_by(Grant.id.desc())).scalars().first()
        assert [r["text"] for r in approval_conditions(c, gid)] == [
            "Sign the partnership agreement", "Appoint a lead"]
    assert before != dump(engine)


SCENARIO = Path(__file__).parent / "scenarios" / "conditions-2012.yaml"


def test_the_conditions_scenario_replays() -> None:
    """tests/scenarios/conditions-2012.yaml: an approval by a vote by name carried
    5 to 2 on two conditions; the first payment waits for the before-payment
    condition; discharged, the milestone is paid. The minutes paper shows the vote
    by name and the conditions; the offer letter prints them."""
    seen: dict[str, object] = {}

    def capture(record, engine) -> None:  # noqa: ANN001
        seen["engine"] = engine
        if record.do == "release_payment" and record.ok and not record.expected_error:
            seen["minutes"] = paper_render.render(
                "minutes", paper_context(engine, "minutes", "HB-2012-05"), "md")
            with engine.connect() as c:
                seen["letter"] = c.execute(select(OfferLetter.html)).scalars().first()
                seen["conditions"] = approval_conditions(c, 1)

    result = replay.run(SCENARIO, after_step=capture)
    assert result.ok, result.failed
    refused = [s.message for s in result.steps if s.expected_error]
    assert len(refused) == 3
    assert "G-0001 condition 1 'Confirm match funding from Hull CC' is not yet met" in refused[1]
    minutes = str(seen["minutes"])
    assert "APPROVE — £120,000 (carried by 5 to 2, 1 abstaining)" in minutes
    assert ("Votes: for Cllr Ada Ames, Cllr Bo Birt, Cllr Cy Cole, Cllr Di Dale, Cllr Ed Eyre; "
            "against Cllr Flo Fenn, Cllr Gus Gale; abstaining Cllr Hal Hart") in minutes
    assert ("On conditions: (1) Confirm match funding from Hull CC; (2) Report progress to the "
            "Board in six months (during delivery)") in minutes
    assert "Confirm match funding from Hull CC" in str(seen["letter"])
    conditions = seen["conditions"]
    assert [(c["state"], c["discharged_by"]) for c in conditions] == [  # type: ignore[union-attr]
        ("met", "Omar Osman"), ("open", "")]
