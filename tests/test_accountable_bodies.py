"""Accountable bodies and advance payments (issue 13): a partnership names the
council that receives and receipts its money by an approved, audited change
(two people); a programme may refuse every payment to a partnership until it
has; an advance (not against a milestone) needs a reason and a second person's
approval, shows on the grant and in the papers, and keeps the money adding up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moneykit import accept_offer, assert_money_adds_up, dump
from sqlalchemy import select
from sqlmodel import Session
from webkit import set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import (
    MoneyRuleBroken,
    NotFound,
    PermissionDenied,
    TransitionRefused,
    ValidationError,
)
from engine.domain.yamlio import load_yaml
from engine.entry import replay
from engine.read import money as views_money
from engine.read.papers import paper_context
from engine.read.partnerships import accountable_bodies
from engine.read.reconcile import integrity_report
from engine.read.returns import return_detail
from engine.store import audit
from engine.store.db import make_engine
from engine.store.models import Outbox
from notifications.papers import render
from quorum_web.app import create_app

SCENARIO = Path(__file__).parent / "scenarios" / "partnerships-2012.yaml"
PETRA, QUENTIN = "petra@wealdshire.example", "quentin@wealdshire.example"
IMOGEN, FERGUS = "imogen@wealdshire.example", "fergus@wealdshire.example"
SADIE = "sadie@vale-srp.example"
APPROVED_BIDS = 10  # the scenario's steps up to the Board's two approvals


def _grants(engine) -> dict[str, dict]:
    with engine.connect() as c:
        return {g["ref"]: g for g in views_money.grants(c, dt.date(2013, 1, 1))}


def test_the_worked_example_replays(sqlite_url) -> None:
    """tests/scenarios/partnerships-2012.yaml (docs/grants.md): refused before the
    body is named, paid an initial sum after; later payments to the new body."""
    result = replay.run(SCENARIO, url=sqlite_url)
    assert result.ok, result.failed
    engine = make_engine(sqlite_url)
    try:
        vale, fen = _grants(engine)["G-0001"], _grants(engine)["G-0002"]
        assert vale["partnership"] and vale["accountable_body"] == "Vale SRP"
        assert vale["receiving_body"] == "Otterford DC"  # changed in September
        assert [(a["ref"], a["state"], a["paid_to"], a["requested_by"], a["decided_by"],
                 a["amount_pence"]) for a in vale["advances"]] == [
            ("ADV-0001", "paid", "Ashbury BC", "Petra Hale", "Fergus Dunn", 2_500_000)]
        assert vale["advances_paid_pence"] == 2_500_000
        assert [(p["ref"], p["paid_to"], p["amount_pence"]) for p in vale["payments"]] == [
            ("P-0001", "Otterford DC", 10_000_000)]
        assert vale["paid_pence"] == 12_500_000 and vale["unpaid_pence"] == 12_500_000
        assert fen["receiving_body"] == "Kingsmere CC"
        # then monitored six-monthly, with progress and RAG status (issue 13)
        with engine.connect() as c:
            seen = {ref: return_detail(c, ref) for ref in (
                "RET-G-0001-monitoring-2012-09-30", "RET-G-0001-monitoring-2013-03-31",
                "RET-G-0002-monitoring-2012-09-30")}
        assert [(r["rag_words"], r["review_words"], [x["rag_words"] for x in r["progress"]])
                for r in seen.values()] == [
            ("At risk", "accepted", ["On track", "At risk"]),
            ("On track", "accepted", ["On track", "On track"]),
            ("On track", "accepted", ["On track", "On track"])]
        assert fen["advances"][0]["paid_to"] == "Kingsmere CC"
        with engine.connect() as c:
            assert accountable_bodies(c) == [
                {"partnership": "Fenmoor SRP", "accountable_body": "Kingsmere CC"},
                {"partnership": "Vale SRP", "accountable_body": "Otterford DC"}]
            mail = c.execute(select(Outbox.template, Outbox.to_addr, Outbox.context)
                             .order_by(Outbox.id)).all()
        advance_to = {to for t, to, _ in mail if t == "advance_paid"}
        assert {"finance@ashbury.example", SADIE, "grants@kingsmere.example",
                "tom@fenmoor-srp.example"} == advance_to
        paid = [(to, ctx["paid_to"]) for t, to, ctx in mail if t == "payment_released"]
        assert ("treasurer@otterford.example", "Otterford DC") in paid and (SADIE,
                                                                            "Otterford DC") in paid
        assert_money_adds_up(engine)
        assert integrity_report(engine).money_problems == []
        # the papers: advances paid since the May Board, in the July Board's returns paper
        md = render("returns", paper_context(engine, "returns", "WIB-2012-07-18"), "md")
        assert ("| ADV-0001 | G-0001 | Vale partnership programme | Vale SRP | Ashbury BC | "
                "£25,000 | 2012-05-22 | Fergus Dunn | Initial sum for partnership and programme "
                "development |") in md
        assert "| ADV-0002 | G-0002 |" in md
        assert "ADV-0001" not in render("returns",
                                        paper_context(engine, "returns", "WIB-2012-05-16"), "md")
        # the grant page: the partnership, its accountable body, the advance
        clock = FixedClock(dt.date(2012, 10, 4))
        set_passwords(Quorum(engine, clock), PETRA)
        with TestClient(create_app(sqlite_url, scheduler=False, clock=clock)) as web:
            assert sign_in(web, PETRA).status_code == 303
            page = web.get("/grants/G-0001").text
        assert '<dd class="govuk-summary-list__value" id="partnership">Vale SRP</dd>' in page
        assert '<dd class="govuk-summary-list__value" id="receiving-body">Otterford DC' in page
        assert "of which £25,000 in advance, not against a milestone" in page
        assert '<td class="govuk-table__cell">ADV-0001</td>' in page
        assert "Initial sum for partnership" in page
    finally:
        engine.dispose()


@pytest.fixture
def world(sqlite_url):
    """The scenario up to the Board's approval of both partnerships' programmes."""
    data = load_yaml(SCENARIO.read_text(encoding="utf-8"))
    data["steps"] = data["steps"][:APPROVED_BIDS]
    assert replay.run(SCENARIO, url=sqlite_url, data=data).ok
    engine = make_engine(sqlite_url)
    clock = FixedClock(dt.date(2012, 5, 17))
    q = Quorum(engine, clock)
    accept_offer(q, "G-0001", SADIE)  # each partnership accepts its offer (issue 16)
    accept_offer(q, "G-0002", "tom@fenmoor-srp.example")
    yield q, engine, clock
    engine.dispose()


def _refused(q, engine, exc, name, args, who, field, words) -> None:
    before = dump(engine)
    with pytest.raises(exc) as e:
        q.execute(name, args, who)
    assert words in e.value.message, e.value.message
    assert e.value.field == field, (name, e.value.field)
    assert dump(engine) == before


def test_no_payment_before_the_body_is_named(world) -> None:
    q, engine, clock = world
    q.execute("submit_evidence", {"grant": "G-0001", "milestone": 1, "summary": "plan"}, SADIE)
    q.execute("verify_milestone", {"grant": "G-0001", "milestone": 1}, PETRA)
    how = ("G-0001 is a grant to Vale SRP, a partnership that has not named its accountable "
           "body; Wealdshire Improvement Programme 2012/14 pays a partnership only through its "
           "accountable body: an officer proposes one (propose_accountable_body partnership: "
           "Vale SRP, body: <the council>) and a second officer approves it")
    _refused(q, engine, ValidationError, "release_payment", {"grant": "G-0001", "milestone": 1},
             QUENTIN, "grant", f"release_payment: grant: {how}")
    _refused(q, engine, ValidationError, "request_advance",
             {"grant": "G-0001", "amount": "10,000", "reason": "start-up"}, PETRA, "grant", how)
    # a programme that does not require the name pays the partnership itself
    q.execute("configure_payments", {"accountable_body_required": "no"}, IMOGEN)
    out = q.execute("release_payment", {"grant": "G-0001", "milestone": 1}, QUENTIN)
    assert "paid_to" in out and out["paid_to"] is None
    assert _grants(engine)["G-0001"]["payments"][0]["paid_to"] is None


def test_accountable_body_refusals(world) -> None:
    q, engine, clock = world
    for args, who, exc, field, words in [
        ({"partnership": "Ashbury BC", "body": "Kingsmere CC"}, PETRA, ValidationError,
         "partnership", "Ashbury BC is not a partnership (it is a district)"),
        ({"partnership": "Vale SRP", "body": "Hallow Trust"}, PETRA, ValidationError, "body",
         "Hallow Trust is not a council (it is registered as other)"),
        ({"partnership": "Vale SRP", "body": "Nowhere DC"}, PETRA, NotFound, "body",
         "body: no organisation 'Nowhere DC'"),
        ({"partnership": "Vale SRP", "body": "Ashbury BC"}, SADIE, PermissionDenied, None,
         "propose_accountable_body needs the role director or officer"),
        ({"partnership": "Vale SRP", "body": "Ashbury BC"}, FERGUS, PermissionDenied, None,
         "needs the role director or officer"),
    ]:
        _refused(q, engine, exc, "propose_accountable_body", args, who, field, words)
    q.execute("propose_accountable_body", {"partnership": "Vale SRP", "body": "Ashbury BC"},
              PETRA)
    _refused(q, engine, ValidationError, "propose_accountable_body",
             {"partnership": "Vale SRP", "body": "Otterford DC"}, QUENTIN, "partnership",
             "ABC-0001 already proposes an accountable body for Vale SRP")
    _refused(q, engine, PermissionDenied, "approve_accountable_body", {"item": "ABC-0001"},
             PETRA, "item", "Petra Hale asked for ABC-0001; four eyes: a second person "
             "(another officer or a director) must decide it")
    _refused(q, engine, PermissionDenied, "approve_accountable_body", {"item": "ABC-0001"},
             FERGUS, None, "needs the role director or officer")
    _refused(q, engine, ValidationError, "refuse_accountable_body", {"item": "ABC-0001"},
             QUENTIN, "reason", "reason: is required")
    _refused(q, engine, ValidationError, "withdraw_accountable_body", {"item": "ABC-0001"},
             QUENTIN, "item", "only Petra Hale, who proposed ABC-0001, may withdraw it")
    _refused(q, engine, NotFound, "approve_accountable_body", {"item": "ABC-0009"},
             QUENTIN, "item", "no accountable body proposal 'ABC-0009'")
    q.execute("approve_accountable_body", {"item": "ABC-0001"}, QUENTIN)
    _refused(q, engine, TransitionRefused, "refuse_accountable_body",
             {"item": "ABC-0001", "reason": "late"}, IMOGEN, None,
             "while it is approved")
    _refused(q, engine, ValidationError, "propose_accountable_body",
             {"partnership": "Vale SRP", "body": "Ashbury BC"}, QUENTIN, "body",
             "Ashbury BC is already Vale SRP's accountable body")
    with Session(engine) as s:
        org = [e.command for e in audit.history(s, "ORG:Vale SRP")]
    assert org == ["register_organisation", "approve_accountable_body"]


def test_advance_refusals(world) -> None:
    q, engine, clock = world
    q.execute("propose_accountable_body", {"partnership": "Vale SRP", "body": "Ashbury BC"},
              PETRA)
    q.execute("approve_accountable_body", {"item": "ABC-0001"}, QUENTIN)
    ask = {"grant": "G-0001", "amount": "25,000", "reason": "initial sum"}
    _refused(q, engine, PermissionDenied, "request_advance", ask, SADIE, None,
             "request_advance needs the role officer")
    _refused(q, engine, ValidationError, "request_advance", {**ask, "reason": ""}, PETRA,
             "reason", "reason: is required")
    _refused(q, engine, MoneyRuleBroken, "request_advance", {**ask, "amount": "250,001"},
             PETRA, "amount", "£250,001 is more than G-0001 may still pay: awarded £250,000, "
             "paid £0, so at most £250,000")
    assert q.execute("request_advance", ask, PETRA)["item"] == "ADV-0001"
    _refused(q, engine, PermissionDenied, "approve_advance", {"item": "ADV-0001"}, PETRA,
             "item", "Petra Hale asked for ADV-0001; four eyes: a second person (another "
             "officer, finance or a director) must decide it")
    _refused(q, engine, ValidationError, "refuse_advance", {"item": "ADV-0001"}, QUENTIN,
             "reason", "reason: is required")
    _refused(q, engine, ValidationError, "withdraw_advance", {"item": "ADV-0001"}, QUENTIN,
             "item", "only Petra Hale, who asked for ADV-0001, may withdraw it")
    paid = q.execute("approve_advance", {"item": "ADV-0001", "reason": "agreed"}, FERGUS)
    assert paid["paid_to"] == "Ashbury BC" and paid["grant_paid_pence"] == 2_500_000
    _refused(q, engine, TransitionRefused, "approve_advance", {"item": "ADV-0001"}, QUENTIN,
             None, "cannot approve advance ADV-0001 while it is paid")
    q.execute("request_advance", {**ask, "amount": "10,000"}, PETRA)
    assert q.execute("withdraw_advance", {"item": "ADV-0002"}, PETRA)["state"] == "withdrawn"
    q.execute("request_advance", {**ask, "amount": "10,000"}, PETRA)
    assert q.execute("refuse_advance", {"item": "ADV-0003", "reason": "not yet"},
                     IMOGEN)["state"] == "refused"
    assert [(a["ref"], a["state"]) for a in _grants(engine)["G-0001"]["advances"]] == [
        ("ADV-0001", "paid"), ("ADV-0002", "withdrawn"), ("ADV-0003", "refused")]
    assert_money_adds_up(engine)
    assert integrity_report(engine).money_problems == []


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asks=st.lists(st.tuples(st.integers(1, 300_000), st.sampled_from(["approve", "refuse"])),
                     min_size=1, max_size=6))
def test_advances_keep_the_money_adding_up(world, asks) -> None:
    """Whatever advances are asked for and approved or refused, paid ≤ awarded,
    each pot's allocated = committed + available, and the audit re-derives it all.
    (The examples share one database: each runs on the grant as the ones before
    left it, so later ones also meet a grant with nothing left to pay.)"""
    q, engine, clock = world
    q.execute("configure_payments", {"accountable_body_required": "no"}, IMOGEN)
    for pounds, outcome in asks:
        try:
            item = q.execute("request_advance", {"grant": "G-0002", "amount": str(pounds),
                                                 "reason": "initial sum"}, PETRA)["item"]
        except MoneyRuleBroken:
            continue
        if outcome == "approve":
            q.execute("approve_advance", {"item": item}, QUENTIN)
        else:
            q.execute("refuse_advance", {"item": item, "reason": "no"}, QUENTIN)
    fen = _grants(engine)["G-0002"]
    assert fen["paid_pence"] == fen["advances_paid_pence"] <= fen["awarded_pence"]
    assert_money_adds_up(engine)
    assert integrity_report(engine).money_problems == []
