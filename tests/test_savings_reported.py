"""Savings as reported, and targets over groups (issue 13).

- tests/scenarios/deposit-2012.yaml replays: two deposits lodged by three
  councils by population against their combined net savings; the quarterly
  savings (one restated) add up past the first target (refunded) and short of
  the second (forfeited); each share exact to the penny; the calculation kept.
- The bug: read as running totals, the last quarter alone would have
  forfeited the first deposit; now it is refunded.
- A schedule that declares ``reading: to_date`` still reads running totals.
- Property tests: the per-period and to-date views agree for any sequence of
  returns (per period or running totals, with restatements); a settlement
  counts exactly the accepted savings in scope up to its date.
"""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moneykit import FINANCE, OFFICER, SPONSOR, SPONSOR2, grant_ref, money_board
from sqlalchemy import select
from test_papers_pdf import pdf_text
from webkit import set_passwords, sign_in

from engine.domain.errors import PermissionDenied, QuorumError, ValidationError
from engine.domain.savings_views import PER_PERIOD, TO_DATE, Reported, derive, describe
from engine.entry.replay import run
from engine.read.papers import paper_context
from engine.read.returns import latest_accepted_savings
from engine.read.savings import SavingsScope, grant_savings, savings_by, total_for
from engine.store.db import make_engine
from engine.store.models import (
    AuditEvent,
    Deposit,
    DepositShare,
    Grant,
    Organisation,
    Return,
    ReturnRestatement,
)
from notifications import papers
from quorum_web.app import create_app

SCENARIO = Path(__file__).parent / "scenarios" / "deposit-2012.yaml"
POPULATION = {"Ashby Vale DC": 48_000, "Brackenfield BC": 71_500, "Corrow County Council": 312_700}


# ---------------------------------------------------------------- the scenario


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('deposit-2012') / 'replay.db'}"
    result = run(SCENARIO, url)
    engine = make_engine(url)
    yield result, engine
    engine.dispose()


def test_the_scenario_replays(replayed) -> None:
    result, _ = replayed
    assert result.ok, result.failed and result.failed.message
    expected_refusals = [s.step for s in result.steps if s.expected_error]
    assert expected_refusals == [14, 34, 43]


def _deposit(engine, ref: str):
    with engine.connect() as c:
        dep = c.execute(select(Deposit).where(Deposit.ref == ref)).one()
        shares = c.execute(
            select(Organisation.name, DepositShare.amount_pence, DepositShare.refunded_pence,
                   DepositShare.forfeited_pence)
            .join(Organisation, Organisation.id == DepositShare.organisation_id)
            .where(DepositShare.deposit_id == dep.id)
        ).all()  # fmt: skip
    return dep, {s.name: s for s in shares}


@pytest.mark.parametrize(
    ("ref", "total", "state", "expected"),
    [
        ("DEP-MW-2012", 4_500_000, "refunded",
         {"Ashby Vale DC": 499_769, "Brackenfield BC": 744_447,
          "Corrow County Council": 3_255_784}),
        ("DEP-MW-STRETCH", 3_000_000, "forfeited",
         {"Ashby Vale DC": 333_179, "Brackenfield BC": 496_298,
          "Corrow County Council": 2_170_523}),
    ],
)  # fmt: skip
def test_shares_exact_to_the_penny_by_population(replayed, ref, total, state, expected) -> None:
    _, engine = replayed
    dep, shares = _deposit(engine, ref)
    assert dep.state == state and dep.total_pence == total
    got = {name: s.amount_pence for name, s in shares.items()}
    assert got == expected
    assert sum(got.values()) == total
    whole = sum(POPULATION.values())
    for name, pence in got.items():  # each within a penny of its exact share
        assert abs(Fraction(total * POPULATION[name], whole) - pence) < 1
    for s in shares.values():
        if state == "refunded":
            assert (s.refunded_pence, s.forfeited_pence) == (s.amount_pence, 0)
        else:
            assert (s.refunded_pence, s.forfeited_pence) == (0, s.amount_pence)


SOURCE = (
    "G-0001 £110,000: sum of 4 quarterly returns, Q1–Q4 2012/13; G-0002 £57,000: sum of 4 "
    "quarterly returns, Q1–Q4 2012/13, one restated; G-0003 £95,000: sum of 4 quarterly "
    "returns, Q1–Q4 2012/13"
)


def test_both_outcomes_keep_their_calculation(replayed) -> None:
    _, engine = replayed
    met, _ = _deposit(engine, "DEP-MW-2012")
    missed, _ = _deposit(engine, "DEP-MW-STRETCH")
    assert met.settlement["explanation"] == (
        f"savings delivered £262,000 to 31 Mar 2013 ({SOURCE}) vs target £250,000: met — "
        "refund £45,000: Ashby Vale DC £4,997.69, Brackenfield BC £7,444.47, "
        "Corrow County Council £32,557.84"
    )
    assert missed.settlement["explanation"] == (
        f"savings delivered £262,000 to 31 Mar 2013 ({SOURCE}) vs target £300,000: missed by "
        "£38,000 — forfeit £30,000 to the Projects pot: Ashby Vale DC £3,331.79, "
        "Brackenfield BC £4,962.98, Corrow County Council £21,705.23"
    )
    calc = met.settlement
    assert calc["counts"] == [
        "council Ashby Vale DC", "council Brackenfield BC", "council Corrow County Council"
    ]  # fmt: skip
    assert calc["delivered_pence"] == 26_200_000
    assert len(calc["returns"]) == 12  # four quarters of three grants
    assert sum(r["per_period_pence"] for r in calc["returns"]) == 26_200_000
    restated = next(r for r in calc["returns"] if r["return"] == "RET-0005")
    assert restated["reported_pence"] == 1_500_000
    assert restated["savings_delivered_pence"] == 1_200_000
    with engine.connect() as c:
        audited = c.execute(
            select(AuditEvent.reason).where(AuditEvent.item_ref == "DEP-MW-2012",
                                            AuditEvent.command == "settle_deposit")
        ).scalar_one()  # fmt: skip
    assert audited == met.settlement["explanation"]


def test_the_old_reading_would_have_forfeited_the_met_deposit(replayed) -> None:
    """Before issue 13 a deposit read each grant's latest accepted return as its total to
    date: here £35,000 + £20,000 + £30,000 = £85,000, short of £250,000: forfeited.
    The quarters add up to £262,000: refunded."""
    _, engine = replayed
    dep, _ = _deposit(engine, "DEP-MW-2012")
    with engine.connect() as c:
        ids = [g.id for g in c.execute(select(Grant.id).order_by(Grant.ref))]
        old = sum(
            latest_accepted_savings(c, gid, dep.target_on).savings_delivered_pence for gid in ids
        )
        new = total_for(c, SavingsScope(grants=tuple(ids)), dep.target_on)["delivered_pence"]
    assert old == 8_500_000 and old < dep.target_pence  # the old outcome: forfeited
    assert new == 26_200_000 and new >= dep.target_pence  # now: refunded
    assert dep.state == "refunded"


def test_a_restatement_keeps_the_original_and_is_audited(replayed) -> None:
    _, engine = replayed
    with engine.connect() as c:
        ret = c.execute(select(Return).where(Return.ref == "RET-0005")).one()
        rows = c.execute(
            select(ReturnRestatement).where(ReturnRestatement.return_id == ret.id)
        ).all()
        reason = c.execute(
            select(AuditEvent.reason).where(AuditEvent.item_ref == "RET-0005",
                                            AuditEvent.command == "restate_return")
        ).scalar_one()  # fmt: skip
        view = grant_savings(c, ret.grant_id)
    assert ret.savings_delivered_pence == 1_500_000  # as reported
    assert ret.restated_delivered_pence == 1_200_000 and ret.restatements == 1
    assert [(r.seq, r.previous_pence, r.delivered_pence, r.reported_in) for r in rows] == [
        (1, 1_500_000, 1_200_000, "RET-0008")
    ]
    assert reason == (
        "RET-0005 (1 Jul 2012 to 30 Sep 2012) restated: savings in the period £15,000 → "
        "£12,000 (first reported £15,000) in RET-0008: agency staff saving counted twice in Q2"
    )
    assert [p["per_period_pence"] for p in view["periods"]] == [
        1_000_000, 1_200_000, 1_500_000, 2_000_000
    ]  # fmt: skip
    assert [p["to_date_pence"] for p in view["periods"]] == [
        1_000_000, 2_200_000, 3_700_000, 5_700_000
    ]  # fmt: skip
    assert view["derivation"] == "sum of 4 quarterly returns, Q1–Q4 2012/13, one restated"


def test_views_per_council_partnership_and_programme(replayed) -> None:
    _, engine = replayed
    with engine.connect() as c:
        councils = savings_by(c, "council")
        programmes = savings_by(c, "programme")
        partnerships = savings_by(c, "partnership")
        early = savings_by(c, "programme", dt.date(2012, 9, 30))
    assert [(r["council"], r["to_date_pence"]) for r in councils] == [
        ("Ashby Vale DC", 11_000_000), ("Brackenfield BC", 5_700_000),
        ("Corrow County Council", 9_500_000),
    ]  # fmt: skip
    (prog,) = programmes
    assert prog["programme"] == "Marsh & Wold Efficiency Programme 2012/14"
    assert prog["to_date_pence"] == 26_200_000
    assert [(p["period"], p["per_period_pence"], p["to_date_pence"]) for p in prog["periods"]] == [
        ("Q1 2012/13", 5_000_000, 5_000_000), ("Q2 2012/13", 5_700_000, 10_700_000),
        ("Q3 2012/13", 7_000_000, 17_700_000), ("Q4 2012/13", 8_500_000, 26_200_000),
    ]  # fmt: skip
    assert partnerships == []  # no grant is made to the partnership itself
    assert early[0]["to_date_pence"] == 10_700_000


def test_the_replay_json_carries_the_settlement(replayed) -> None:
    result, _ = replayed
    items = {i["ref"]: i for i in json.loads(json.dumps(result.to_json()))["items"]}
    assert items["DEP-MW-2012"]["settlement"]["outcome"] == "refunded"
    assert items["DEP-MW-STRETCH"]["settlement"]["outcome"] == "forfeited"


# ---------------------------------------------------------------- commands on a small board


def _savings(q, grant: str, end: str, amount: str, who: str) -> str:
    ref = q.execute(
        "submit_return",
        {"grant": grant, "kind": "savings", "period_end": end, "savings_delivered": amount,
         "savings_anticipated": "500,000"},
        who,
    )["return"]  # fmt: skip
    q.execute("accept_return", {"return": ref}, OFFICER)
    return ref


def test_a_schedule_reading_running_totals(sqlite_url, tmp_path, monkeypatch) -> None:
    rules = tmp_path / "returns.yaml"
    rules.write_text(
        (Path(__file__).parents[1] / "rules" / "returns.yaml")
        .read_text()
        .replace("reading: per_period", "reading: to_date")
    )
    monkeypatch.setenv("QUORUM_RETURNS_RULES", str(rules))
    q, engine, clock = money_board(sqlite_url)
    ict = grant_ref(engine, "Shared ICT")
    clock.set(dt.date(2011, 5, 3))
    dep = q.execute(
        "lodge_deposit",
        {"grant": ict, "amount": "1,000", "basis": "equal", "partners": ["Rutland CC"],
         "target": "100,000", "target_date": "2012-03-31"},
        OFFICER,
    )  # fmt: skip
    clock.set(dt.date(2012, 1, 20))
    first = _savings(q, ict, "2011-12-31", "60,000", SPONSOR)
    clock.set(dt.date(2012, 4, 12))
    second = _savings(q, ict, "2012-03-31", "90,000", SPONSOR)
    with engine.connect() as c:
        view = grant_savings(c, c.execute(select(Grant.id).where(Grant.ref == ict)).scalar())
    assert [(p["reading"], p["per_period_pence"], p["to_date_pence"]) for p in view["periods"]] == [
        (TO_DATE, 6_000_000, 6_000_000), (TO_DATE, 3_000_000, 9_000_000)
    ]  # fmt: skip
    out = q.execute("settle_deposit", {"deposit": dep["deposit"]}, FINANCE)  # finance may
    assert out["state"] == "forfeited" and out["delivered_pence"] == 9_000_000
    assert out["explanation"].startswith(
        f"savings delivered £90,000 to 31 Mar 2012 (running total reported in {second} "
        f"(Q4 2011/12; 2 quarterly returns, Q3–Q4 2011/12): {first}, {second}, accepted)"
    )


def _refused(q, command, args, who, *words, error=ValidationError) -> str:
    with pytest.raises(error) as exc:
        q.execute(command, args, who)
    for w in words:
        assert w in exc.value.message, exc.value.message
    return exc.value.message


def test_restatement_refusals(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    ict = grant_ref(engine, "Shared ICT")
    its = grant_ref(engine, "Invest to save")
    clock.set(dt.date(2011, 10, 20))
    q1 = _savings(q, ict, "2011-06-30", "1,000", SPONSOR)
    q2 = q.execute(
        "submit_return",
        {"grant": ict, "kind": "savings", "period_end": "2011-09-30", "savings_delivered": "2,000",
         "savings_anticipated": "0"},
        SPONSOR,
    )["return"]  # fmt: skip
    other = _savings(q, its, "2011-09-30", "5,000", SPONSOR2)
    progress = q.execute(
        "submit_return", {"grant": ict, "kind": "progress", "period_end": "2011-09-30"}, SPONSOR
    )["return"]
    base = {"savings_delivered": "900", "reason": "a late invoice"}
    _refused(q, "restate_return", {"return": q2, **base}, OFFICER, "not accepted",
             "submit_return")  # fmt: skip
    _refused(q, "restate_return", {"return": progress, **base}, OFFICER, "only savings")
    _refused(q, "restate_return", {"return": q1, "savings_delivered": "1,000", "reason": "x"},
             OFFICER, "nothing to restate")  # fmt: skip
    _refused(q, "restate_return", {"return": q1, **base, "reported_in": other}, OFFICER,
             "reported_in", "not a later return of the same grant")  # fmt: skip
    _refused(q, "restate_return", {"return": q1, "savings_delivered": "900"}, OFFICER,
             "reason")  # fmt: skip
    _refused(q, "restate_return", {"return": q1, **base}, SPONSOR, "officer",
             error=PermissionDenied)  # fmt: skip
    out = q.execute("restate_return", {"return": q1, **base, "reported_in": q2}, OFFICER)
    assert out["previous_pence"] == 100_000 and out["savings_delivered_pence"] == 90_000
    again = q.execute("restate_return", {"return": q1, "savings_delivered": "950",
                                         "reason": "audited figure"}, OFFICER)  # fmt: skip
    assert again["restatement"] == 2 and again["previous_pence"] == 90_000
    assert again["reported_pence"] == 100_000  # the original is kept


def test_deposit_counts_and_ref_refusals(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    ict = grant_ref(engine, "Shared ICT")
    its = grant_ref(engine, "Invest to save")
    clock.set(dt.date(2011, 5, 3))
    base = {"pot": "Projects", "amount": "10,000", "basis": "equal",
            "partners": ["Rutland CC", "Melton BC"], "target": "50,000",
            "target_date": "2012-03-31"}  # fmt: skip
    _refused(q, "lodge_deposit", {**base, "counts": {"wards": ["x"]}}, OFFICER,
             "counts.wards: unknown key")  # fmt: skip
    _refused(q, "lodge_deposit", {**base, "counts": {"grants": ["G-0099"]}}, OFFICER,
             "counts.grants[1]", error=QuorumError)  # fmt: skip
    _refused(q, "lodge_deposit", {**base, "counts": {"councils": ["Rutland CC", "Rutland CC"]}},
             OFFICER, "council Rutland CC is named twice")  # fmt: skip
    _refused(q, "lodge_deposit", {**base, "ref": "DEP-0007"}, OFFICER, "looks like an automatic")
    by_grants = q.execute("lodge_deposit", {**base, "ref": "NS-2011",
                                            "counts": {"grants": [ict, its]}}, OFFICER)  # fmt: skip
    assert by_grants["deposit"] == "NS-2011"
    assert by_grants["counts"] == [f"grant {ict}", f"grant {its}"]
    one_council = q.execute(
        "lodge_deposit", {**base, "counts": {"councils": ["Melton BC"]}}, OFFICER
    )
    clock.set(dt.date(2011, 10, 20))
    _savings(q, ict, "2011-06-30", "30,000", SPONSOR)
    _savings(q, ict, "2011-09-30", "25,000", SPONSOR)
    _savings(q, its, "2011-09-30", "10,000", SPONSOR2)
    clock.set(dt.date(2012, 4, 2))
    both = q.execute("settle_deposit", {"deposit": "NS-2011"}, OFFICER)
    assert both["state"] == "refunded" and both["delivered_pence"] == 6_500_000
    melton = q.execute("settle_deposit", {"deposit": one_council["deposit"]}, FINANCE)
    assert melton["state"] == "forfeited" and melton["delivered_pence"] == 1_000_000
    _refused(q, "settle_deposit", {"deposit": "NS-2011"}, SPONSOR, error=PermissionDenied)


# ---------------------------------------------------------------- properties


@st.composite
def histories(draw):
    """A grant's true per-period savings, each period reported per period or as a running
    total, some first reported wrong and restated (once or more) to the true figure."""
    n = draw(st.integers(1, 10))
    truth = draw(st.lists(st.integers(-500_000, 5_000_000), min_size=n, max_size=n))
    ends = sorted(draw(st.sets(st.integers(0, 40), min_size=n, max_size=n)))
    reports, running = [], 0
    for i, (true, q) in enumerate(zip(truth, ends, strict=True)):
        running += true
        reading = draw(st.sampled_from([PER_PERIOD, TO_DATE]))
        right = true if reading == PER_PERIOD else running
        wrong = draw(st.none() | st.integers(0, 9_000_000).filter(lambda w, r=right: w != r))
        start = dt.date(2011 + (q * 3 + 3) // 12, (q * 3 + 3) % 12 + 1, 1)
        end = (dt.date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
               - dt.timedelta(days=1))  # fmt: skip
        times = 0 if wrong is None else draw(st.integers(1, 3))
        reports.append(
            Reported(f"RET-{i}", start, end, reading, wrong if wrong is not None else right,
                     right if wrong is not None else None, times)
        )  # fmt: skip
    order = draw(st.permutations(reports))
    return truth, order


@settings(max_examples=400, deadline=None)
@given(histories())
def test_views_agree_for_any_history(history) -> None:
    truth, reports = history
    views = derive(reports)
    assert [v.per_period_pence for v in views] == truth  # the true savings of each period
    running = 0
    for v, r in zip(views, sorted(reports, key=lambda r: r.period_end), strict=True):
        running += v.per_period_pence
        assert v.to_date_pence == running  # to date = the sum of the periods so far
        stated = v.per_period_pence if r.reading == PER_PERIOD else v.to_date_pence
        assert stated == r.figure_pence  # each figure reads back as it was stated
        assert v.reported_pence == r.reported_pence  # the original is kept
    words = describe(views)
    assert ("restated" in words) == any(r.restatements for r in reports)


@pytest.fixture(scope="module")
def board_with_returns(tmp_path_factory):
    """Two grants with eight quarters of savings each (2011/12 and 2012/13): the true
    per-period figures, some restated to them, some never accepted."""
    url = f"sqlite:///{tmp_path_factory.mktemp('savings') / 'q.db'}"
    q, engine, clock = money_board(url)
    grants = {
        grant_ref(engine, "Shared ICT"): SPONSOR,
        grant_ref(engine, "Invest to save"): SPONSOR2,
    }
    ends = [dt.date(2011, 6, 30), dt.date(2011, 9, 30), dt.date(2011, 12, 31),
            dt.date(2012, 3, 31), dt.date(2012, 6, 30), dt.date(2012, 9, 30),
            dt.date(2012, 12, 31), dt.date(2013, 3, 31)]  # fmt: skip
    counted: dict[str, list[tuple[dt.date, int]]] = {g: [] for g in grants}
    for n, end in enumerate(ends):
        clock.set(end + dt.timedelta(days=10))
        for k, (g, who) in enumerate(grants.items()):
            true = 100_000 * (3 + 7 * n + 11 * k) % 4_100_000
            shown = true + 55_500 if (n + k) % 3 == 0 else true  # restated below
            ref = q.execute("submit_return", {"grant": g, "kind": "savings",
                            "period_end": end.isoformat(), "savings_delivered_pence": shown,
                            "savings_anticipated": "0"}, who)["return"]  # fmt: skip
            if (n * 5 + k) % 7 == 3:
                continue  # submitted, never accepted: does not count
            q.execute("accept_return", {"return": ref}, OFFICER)
            if shown != true:
                q.execute("restate_return", {"return": ref, "savings_delivered_pence": true,
                                             "reason": "corrected"}, OFFICER)  # fmt: skip
            counted[g].append((end, true))
    yield q, engine, clock, counted
    engine.dispose()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    data=st.data(),
    target=st.integers(1, 6_000_000),
    day=st.dates(dt.date(2011, 7, 1), dt.date(2013, 6, 30)),
)
def test_a_settlement_counts_the_accepted_savings_in_scope(
    board_with_returns, data, target, day
) -> None:
    q, engine, clock, counted = board_with_returns
    refs = sorted(counted)
    bodies = {refs[0]: "Rutland CC", refs[1]: "Melton BC"}
    grants = data.draw(st.lists(st.sampled_from(refs), unique=True))
    councils = data.draw(st.lists(st.sampled_from(sorted(bodies.values())), unique=True))
    if not grants and not councils:
        grants = [refs[0]]
    in_scope = set(grants) | {g for g, b in bodies.items() if b in councils}
    expected = sum(p for g in in_scope for end, p in counted[g] if end <= day)
    clock.set(day - dt.timedelta(days=1))
    dep = q.execute(
        "lodge_deposit",
        {"pot": "Projects", "amount": "100", "basis": "equal", "partners": ["Rutland CC"],
         "target_pence": target, "target_date": day.isoformat(),
         "counts": {"grants": grants, "councils": councils}},
        OFFICER,
    )  # fmt: skip
    clock.set(day)
    out = q.execute("settle_deposit", {"deposit": dep["deposit"]}, OFFICER)
    assert out["delivered_pence"] == expected
    assert sum(r["per_period_pence"] for r in out["returns"]) == expected
    assert out["met"] == (expected >= target)
    assert out["state"] == ("refunded" if expected >= target else "forfeited")


# ---------------------------------------------------------------- the grant's page


def test_the_grant_page_shows_both_views_and_the_deposit(sqlite_url) -> None:
    q, engine, clock = money_board(sqlite_url)
    ict = grant_ref(engine, "Shared ICT")
    clock.set(dt.date(2011, 5, 3))
    q.execute(
        "lodge_deposit",
        {"grant": ict, "ref": "NS-ICT", "amount": "3,000", "basis": "equal",
         "partners": ["Rutland CC", "Melton BC"], "target": "50,000",
         "target_date": "2012-03-31"},
        OFFICER,
    )  # fmt: skip
    clock.set(dt.date(2011, 10, 20))
    _savings(q, ict, "2011-06-30", "30,000", SPONSOR)
    second = _savings(q, ict, "2011-09-30", "25,000", SPONSOR)
    q.execute("restate_return", {"return": second, "savings_delivered": "15,000",
                                 "reason": "a saving booked twice"}, OFFICER)  # fmt: skip
    set_passwords(q, OFFICER, SPONSOR)
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    with TestClient(app) as officer, TestClient(app) as sponsor:
        assert sign_in(officer, OFFICER).status_code == 303
        assert sign_in(sponsor, SPONSOR).status_code == 303
        page = officer.get(f"/grants/{ict}").text
        assert (
            "To date £45,000: sum of 2 quarterly returns, Q1–Q2 2011/12, one restated"
        ) in page
        table = page.split('id="savings"', 1)[1].split("</table>", 1)[0]
        assert "Q2 2011/12" in table and "restated £15,000" in table
        assert "£25,000" in table and "£45,000" in table
        lodged = page.split('id="deposit-NS-ICT"', 1)[1].split("</li>", 1)[0]
        assert "so far £45,000 of £50,000 by 31 Mar 2012" in lodged
        clock.set(dt.date(2012, 4, 2))
        q.execute("settle_deposit", {"deposit": "NS-ICT"}, OFFICER)
        assert sign_in(officer, OFFICER).status_code == 303  # months later: a new session
        assert sign_in(sponsor, SPONSOR).status_code == 303
        settled = officer.get(f"/grants/{ict}").text.split('id="deposit-NS-ICT"', 1)[1]
        assert "missed by £5,000" in settled.split("</li>", 1)[0]
        # the return's form asks for the period's savings, as the shipped schedule reads them
        due = q.execute("submit_return", {"grant": ict, "kind": "savings",
                        "period_end": "2011-12-31", "savings_delivered": "1",
                        "savings_anticipated": "1"}, SPONSOR)["return"]  # fmt: skip
        form = sponsor.get(f"/returns/{due}").text
        assert "Savings delivered in this period (£)" in form


# ---------------------------------------------------------------- the board paper


def test_the_returns_paper_shows_savings_and_both_calculations(replayed) -> None:
    _, engine = replayed
    context = paper_context(engine, "returns", "MW-BOARD-MAY")
    assert context["savings_total_pence"] == 26_200_000
    assert [(b["body"], b["to_date_pence"]) for b in context["savings_by_body"]] == [
        ("Ashby Vale DC", 11_000_000), ("Brackenfield BC", 5_700_000),
        ("Corrow County Council", 9_500_000),
    ]  # fmt: skip
    md = papers.render("returns", context, "md")
    assert (
        "| Brackenfield BC | 1 | £57,000 | G-0002: sum of 4 quarterly returns, Q1–Q4 2012/13, "
        "one restated |"
    ) in md
    assert "**DEP-MW-2012** (refunded)" in md and "**DEP-MW-STRETCH** (forfeited)" in md
    assert "missed by £38,000" in md
    html = papers.render("returns", context, "html")
    assert 'id="savings"' in html and "vs target £250,000: met" in html
    pdf = papers.render_pdf("returns", context)
    text = " ".join(pdf_text(pdf).split())
    assert "DEP-MW-STRETCH" in text and "£262,000" in text
