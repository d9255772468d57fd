"""Year one of the 2011/13 projects replayed (tests/scenarios/money-2011-12.yaml):
grants through evidence, verification and four-eyes payment, an extension and a
re-profile, closure with an underspend, invest-to-save repayments with one late
instalment, two deposits settled both ways, a clawback recovered in two parts,
and a delegated decision reported to and endorsed by the next Board.

After EVERY step the pot and grant ledger identities hold and the audit chain
verifies; the figures at the end are worked out here from the scenario's own
numbers, not read back from the engine."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from sqlmodel import Session

from engine.domain.yamlio import load_yaml
from engine.entry.replay import StepRecord, run
from engine.store import audit
from engine.store.ledger import grant_lines, ledger

SCENARIO = Path(__file__).parent / "scenarios" / "money-2011-12.yaml"
POUND = 100


def check_every_step(record: StepRecord, engine) -> None:
    with Session(engine) as s:
        for line in ledger(s):
            assert line.identity_holds(), (record.step, record.do, line)
        for g in grant_lines(s).values():
            assert 0 <= g.paid_pence <= g.committed_pence <= g.awarded_pence, (record.step, g)
        result = audit.verify(s)
        assert result.ok, (record.step, result.message())


@pytest.fixture
def year(db_url: str) -> dict:
    result = run(SCENARIO, db_url, after_step=check_every_step)
    state = result.to_json()
    assert state["ok"], state["failed_step"]
    return state


def by_ref(state: dict) -> dict[str, dict]:
    return {item["ref"]: item for item in state["items"]}


def test_every_refusal_in_the_scenario_was_expected(year: dict) -> None:
    steps = load_yaml(SCENARIO.read_text())["steps"]
    expected = [i for i, s in enumerate(steps, start=1) if s.get("expect") == "error"]
    assert [e["step"] for e in year["errors"]] == expected
    assert all(e["expected"] for e in year["errors"])
    assert year["audit"]["chain_ok"]


def test_the_projects_pot_adds_up(year: dict) -> None:
    pot = next(p for p in year["pots"] if p["name"] == "Projects")
    committed_by_approval = (100_000 + 95_000 + 125_000 + 22_000) * POUND  # 3 Board + 1 delegated
    released = 10_000 * POUND  # Shared ICT closed £10,000 under its award
    recovered = 40_000 * POUND  # clawback from the Public Sector Network
    repaid = (30_000 + 30_000 + 35_000) * POUND  # invest to save, all three instalments
    forfeited = 15_000 * POUND  # Shared ICT's partners missed their target
    paid_out = (40_000 + 30_000 + 20_000 + 50_000 + 45_000 + 60_000) * POUND
    assert pot["allocated_pence"] == 750_000 * POUND + forfeited
    assert pot["committed_pence"] == committed_by_approval - released - recovered - repaid
    assert pot["paid_pence"] == paid_out - recovered - repaid
    assert pot["available_pence"] == pot["allocated_pence"] - pot["committed_pence"]
    assert pot["identity_holds"]


def test_shared_ict_paid_against_verified_milestones_and_closed_with_underspend(year) -> None:
    g = by_ref(year)["G-0001"]
    assert g["state"] == "closed"
    assert g["paid_pence"] == 90_000 * POUND
    assert g["released_pence"] == 10_000 * POUND
    assert [m["paid_pence"] for m in g["milestones"]] == [p * POUND for p in (40_000, 30_000,
                                                                             20_000)]
    assert all(m["state"] == "paid" for m in g["milestones"])
    assert g["milestones"][1]["due_on"] == "2012-02-29"  # re-profiled
    assert g["ends_on"] is not None  # extended by six months
    bid = by_ref(year)["B-0001"]
    assert bid["grant"] == "G-0001" and bid["paid_pence"] == 90_000 * POUND


def test_invest_to_save_repaid_with_one_late_instalment(year: dict) -> None:
    g = by_ref(year)["G-0002"]
    assert g["repaid_pence"] == 95_000 * POUND
    assert g["paid_pence"] == 0 and g["committed_pence"] == 0
    late = [(r["seq"], r["repaid_late"]) for r in g["repayments"]]
    assert late == [(1, True), (2, False), (3, False)]
    assert [r["repaid_on"] for r in g["repayments"]] == ["2012-01-20", "2012-03-30",
                                                         "2012-06-28"]


def test_clawback_recovered_in_two_parts(year: dict) -> None:
    g = by_ref(year)["G-0003"]
    (rec,) = g["recoveries"]
    assert rec["ref"] == "REC-0001" and rec["state"] == "recovered"
    assert rec["recovered_pence"] == rec["demanded_pence"] == 40_000 * POUND
    assert g["recovered_pence"] == 40_000 * POUND
    assert g["paid_pence"] == (60_000 - 40_000) * POUND
    assert by_ref(year)["B-0003"]["recovered_pence"] == 40_000 * POUND


def test_deposits_settled_both_ways(year: dict) -> None:
    items = by_ref(year)
    met, missed = items["DEP-0001"], items["DEP-0002"]
    assert met["state"] == "refunded" and missed["state"] == "forfeited"
    # population shares of £30,000, to the penny, by largest remainder
    population = {"Leicester City": 329_600, "Derby City Council": 248_700,
                  "Nottingham City": 305_700}
    total = 30_000 * POUND
    exact = {k: Fraction(total * v, sum(population.values())) for k, v in population.items()}
    shares = {s["partner"]: s for s in met["shares"]}
    assert sum(s["amount_pence"] for s in shares.values()) == total
    for partner, share in shares.items():
        assert abs(share["amount_pence"] - exact[partner]) < 1
        assert share["refunded_pence"] == share["amount_pence"]
        assert share["forfeited_pence"] == 0
    assert {s["partner"]: s["forfeited_pence"] for s in missed["shares"]} == {
        "North Kesteven DC": 10_000 * POUND, "Rutland CC": 5_000 * POUND}


def test_delegated_decision_signed_reported_and_endorsed(year: dict) -> None:
    items = by_ref(year)
    dd = items["DD-0001"]
    assert dd["kind"] == "delegated_decision"
    assert dd["state"] == "endorsed"
    assert dd["amount_pence"] == 22_000 * POUND
    assert [(s["name"], s["decision"]) for s in dd["signatures"]] == [
        ("Cllr Chair", "approve"), ("Cllr Vice Two", "decline"), ("Cllr Vice One", "approve")]
    assert dd["signatures"][1]["interest_declared"]
    assert items["G-0004"]["approved_by"] == "DD-0001"
    june = next(m for m in year["meetings"] if m["ref"] == "IEB-2011-06-15")
    assert "DD-0001" in june["agenda"]
