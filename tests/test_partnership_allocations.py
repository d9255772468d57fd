"""Partnership allocations (issue 13 item 4; docs/grants.md "Partnership allocations"):
a programme split by ratified shares between partnerships' allocations and regional
pots, exact to the penny; each partnership bids only on its own allocation;
underspends returned and ring-fenced funds made by ratified moves that never take a
pot below what is committed; per-partnership figures on the dashboard, on the
allocation page and in the "Partnership financial summary" paper."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moneykit import assert_money_adds_up, dump
from sqlmodel import Session
from test_papers_pdf import pdf_text
from webkit import set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import MoneyRuleBroken, NotFound, ValidationError
from engine.domain.yamlio import load_yaml
from engine.entry import replay
from engine.read.papers import paper_context
from engine.read.partnership_money import partnership_figures, pot_history
from engine.read.reconcile import integrity_report
from engine.store import audit
from engine.store.db import make_engine
from engine.store.ledger import ledger
from notifications import papers
from notifications.papers import render
from quorum_web.app import create_app

SCENARIO = Path(__file__).parent / "scenarios" / "partnership-allocations-2012.yaml"
OWEN, NELL = "owen@northmarch.example", "nell@northmarch.example"
TESS, EWAN, DORA = "tess@tamar-srp.example", "ewan@exe-srp.example", "dora@dart-srp.example"
PROGRAMME = "Northmarch Efficiency Programme 2012/14"
MEETING = "NMB-2013-03-20"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('partalloc') / 'quorum.db'}"
    result = replay.run(SCENARIO, url=url)
    assert result.ok, result.failed
    engine = make_engine(url)
    yield url, engine, result
    engine.dispose()


def _row(rows: list[dict], name: str) -> dict:
    return next(r for r in rows if r["partnership"] == name)


def test_the_scenario_replays_with_its_refusals(replayed) -> None:
    _, engine, result = replayed
    refused = [(s.do, s.message.split(": ", 1)[1]) for s in result.steps if s.expected_error]
    assert [do for do, _ in refused] == ["split_programme", "split_programme", "submit_bid",
                                         "return_underspend", "return_underspend", "ring_fence"]
    assert "Tamar allocation is Tamar SRP's allocation; only Tamar SRP bids from it (Exe SRP " \
        "cannot)" in refused[2][1]
    assert_money_adds_up(engine)
    assert integrity_report(engine).money_problems == []


def test_the_split_is_exact_to_the_penny(replayed) -> None:
    """£2,500,000.01 at 30/25/15/30: the odd penny goes to the largest remainder listed
    first (Tamar's, tied with the regional pot's 0.3p)."""
    _, engine, result = replayed
    split = next(s.result for s in result.steps if s.do == "split_programme" and s.ok)
    assert split["ref"] == "PC-0002" and split["amount_pence"] == 250_000_001
    assert [(s["pot"], s["partnership"], s["share"], s["amount_pence"]) for s in split["shares"]] \
        == [("Tamar allocation", "Tamar SRP", "30%", 75_000_001),
            ("Exe allocation", "Exe SRP", "25%", 62_500_000),
            ("Dart allocation", "Dart SRP", "15%", 37_500_000),
            ("Regional programmes", None, "30%", 75_000_000)]
    assert "largest remainders" in split["rule"]


def test_the_paper_figures_per_partnership(replayed) -> None:
    _, engine, _ = replayed
    ctx = paper_context(engine, "partnerships", MEETING)
    keys = ("pots", "allocation_pence", "committed_pence", "paid_pence",
            "savings_delivered_pence", "savings_anticipated_pence", "balance_pence",
            "grants", "carried_forward", "carried_forward_refs")
    got = {r["partnership"]: tuple(r[k] for k in keys)
           for r in [*ctx["partnerships"], ctx["regional"]]}
    assert got == {
        # 30% + 1p, less £100,000 ring-fenced; G-0001's target (£450,000) is what it
        # anticipates; its second milestone is due after 31 March 2013: carried forward
        "Tamar SRP": (["Tamar allocation"], 65_000_001, 60_000_000, 10_000_000, 4_000_000,
                      45_000_000, 5_000_001, 1, 1, ["G-0001"]),
        # 25% less £100,000; anticipated as its latest accepted return states it
        "Exe SRP": (["Exe allocation"], 52_500_000, 50_000_000, 20_000_000, 2_500_000,
                    30_000_000, 2_500_000, 1, 0, []),
        # 15% less the £50,000 underspend and £25,000 ring-fenced; no return yet: its
        # bid's claim; its one milestone is due in February: not carried forward
        "Dart SRP": (["Dart allocation"], 30_000_000, 30_000_000, 0, 0, 60_000_000, 0, 1, 0,
                     []),
        # 30% + the underspend − its £50,000 contribution, and the fund of £275,000
        "Regional pots": (["Regional programmes", "Transformation fund"], 102_500_000, 0, 0, 0,
                          0, 102_500_000, 0, 0, []),
    }
    assert [r["partnership"] for r in ctx["partnerships"]] == ["Dart SRP", "Exe SRP",
                                                               "Tamar SRP"]
    assert ctx["totals"]["allocation_pence"] == 250_000_001  # nothing made or lost
    assert ctx["totals"]["balance_pence"] == 110_000_001
    assert ctx["programme_target"] == {"target_pence": 200_000_000, "by": "2014-03-31"}
    assert [m["ref"] for m in ctx["moves"]] == ["PC-0001", "PC-0002", "PC-0003", "PC-0004"]
    md = render("partnerships", ctx, "md")
    assert ("| Tamar SRP | Tamar allocation | £650,000.01 | £600,000 | £100,000 | £40,000 | "
            "£450,000 | £50,000.01 | 1 (G-0001) |") in md
    assert "| **Total** | | £2,500,000.01 |" in md
    assert ("Dart allocation: underspend of £50,000 returned to Regional programmes "
            "(£375,000 → £325,000)") in md
    assert ("Transformation fund: ring-fenced: £275,000 contributed by Tamar allocation, Exe "
            "allocation, Dart allocation, Regional programmes (£0 → £275,000)") in md
    assert "Northmarch Board 23 January 2013, minute 9" in md
    html = render("partnerships", ctx, "html")
    assert "<td>Exe SRP</td><td>Exe allocation</td><td class=\"n\">£525,000</td>" in html
    text = pdf_text(papers.render_pdf("partnerships", ctx))
    assert "Partnership financial summary" in text and "Tamar SRP" in text
    assert "£650,000.01" in text


def test_figures_as_of_an_earlier_day(replayed) -> None:
    """Money booked after the day is left out: before the January moves, Dart still
    holds its 15%."""
    _, engine, _ = replayed
    with engine.connect() as conn:
        prog = ledger(conn)[0]
        before = partnership_figures(conn, dt.date(2013, 1, 20))
    assert prog.programme == PROGRAMME
    dart = _row(before["partnerships"], "Dart SRP")
    assert dart["allocation_pence"] == 37_500_000 and dart["balance_pence"] == 7_500_000
    assert _row(before["partnerships"], "Exe SRP")["paid_pence"] == 20_000_000
    assert before["regional"]["allocation_pence"] == 75_000_000  # the fund holds nothing yet


def test_each_move_is_audited_and_in_the_pots_history(replayed) -> None:
    _, engine, _ = replayed
    with Session(engine) as s:
        (event,) = audit.history(s, "PC-0003")
        assert event.command == "return_underspend"
        assert json.loads(event.before) == {"total_pence": 250_000_001,
                                            "Dart allocation": 37_500_000,
                                            "Regional programmes": 75_000_000}
        assert json.loads(event.after)["Dart allocation"] == 32_500_000
        assert "Northmarch Board 23 January 2013, minute 8" in event.reason
        (fence,) = audit.history(s, "PC-0004")
        assert fence.command == "ring_fence"
    with engine.connect() as conn:
        from_prog = conn.exec_driver_sql("SELECT id FROM programme").scalar()
        history = pot_history(conn, "Dart allocation", from_prog)
    assert [(h["ref"], h["words"], h["from_pence"], h["to_pence"]) for h in history] == [
        ("PC-0002", "15% of the £2,500,000.01 split (Dart SRP's allocation)", 0, 37_500_000),
        ("PC-0003", "underspend of £50,000 returned to Regional programmes", 37_500_000,
         32_500_000),
        ("PC-0004", "contributed £25,000 to the ring-fenced Transformation fund", 32_500_000,
         30_000_000),
    ]
    assert history[1]["ratified_by"] == "Northmarch Board 23 January 2013, minute 8"


# ---------------------------------------------------------------- refusals leave nothing


@pytest.fixture
def split(sqlite_url):
    """The scenario up to the split and the three bids (before the Board approves)."""
    result = replay.run(SCENARIO, url=sqlite_url, data=_first_steps(9))
    assert result.ok, result.failed
    engine = make_engine(sqlite_url)
    clock = FixedClock(dt.date(2012, 6, 10))
    yield Quorum(engine, clock), engine, clock
    engine.dispose()


def _first_steps(n: int) -> dict:
    data = load_yaml(SCENARIO.read_text(encoding="utf-8"))
    data["steps"] = data["steps"][:n]
    return data


def _refused(q, engine, exc, name, args, who, field, words) -> None:
    before = dump(engine)
    with pytest.raises(exc) as e:
        q.execute(name, args, who)
    assert words in e.value.message, e.value.message
    assert e.value.field == field, (name, e.value.field)
    assert dump(engine) == before


def test_bids_go_to_their_own_allocation(split) -> None:
    q, engine, _ = split
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT bid.ref, pot.name FROM bid JOIN pot ON pot.id = bid.pot_id ORDER BY bid.ref"
        ).all()
    assert [tuple(r) for r in rows] == [("B-0001", "Tamar allocation"),
                                        ("B-0002", "Exe allocation"),
                                        ("B-0003", "Dart allocation")]
    # moving a bid into another partnership's allocation is refused as well
    _refused(q, engine, ValidationError, "amend_bid", {"ref": "B-0002", "pot": "Dart allocation"},
             OWEN, "pot", "Dart allocation is Dart SRP's allocation; only Dart SRP bids from "
             "it (Exe SRP cannot)")
    # and an allocation (funding without a bid) for someone else from it
    q.execute("register_organisation", {"name": "Northmarch programme team",
                                        "kind": "programme_team"}, OWEN)
    _refused(q, engine, ValidationError, "propose_allocation",
             {"purpose": "Programme manager", "recipient": "Northmarch programme team",
              "pot": "Tamar allocation", "amount": "50,000", "reasons": "salaries"}, OWEN,
             "pot", "Tamar allocation is Tamar SRP's allocation")
    # a regional pot is open to anyone
    q.execute("amend_bid", {"ref": "B-0003", "pot": "Regional programmes"}, OWEN)


def test_split_refusals(split) -> None:
    q, engine, _ = split
    base = {"amount": "1,000", "ratified_by": "Board, minute 1"}
    _refused(q, engine, ValidationError, "split_programme",
             {**base, "shares": [{"pot": "New", "share": "£600"}, {"pot": "Other",
                                                                    "share": "£500"}]},
             OWEN, "shares", "the fixed amounts add up to £1,100, more than the £1,000")
    _refused(q, engine, ValidationError, "split_programme",
             {**base, "shares": [{"pot": "New", "share": "£600"}]},
             OWEN, "shares", "the fixed amounts add up to £600, not the £1,000 to split")
    _refused(q, engine, ValidationError, "split_programme",
             {**base, "shares": [{"pot": "New", "share": "70 percent"}]},
             OWEN, "shares[1].share", "neither a percentage (70%) nor an amount")
    _refused(q, engine, ValidationError, "split_programme",
             {**base, "shares": [{"pot": "Tamar allocation", "partnership": "Exe SRP",
                                  "share": "100%"}]},
             OWEN, "shares[1].partnership",
             "Tamar allocation is Tamar SRP's allocation, not Exe SRP's allocation")
    _refused(q, engine, ValidationError, "split_programme",
             {**base, "shares": [{"pot": "A", "share": "50%"}, {"pot": "a", "share": "50%"}]},
             OWEN, "shares[2].pot", "is named twice")
    _refused(q, engine, Exception, "split_programme",
             {**base, "shares": [{"pot": "A", "share": "100%"}]}, TESS, None,
             "needs the role")


@pytest.mark.parametrize(
    ("amount", "shares", "want"),
    [
        # thirds of 10p: each 3.3333p; the penny left goes to the largest remainder
        ("0.10", ["33.3333%", "33.3333%", "33.3334%"], [3, 3, 4]),
        # equal remainders: the pot listed first
        ("0.10", ["50%", "50%"], [5, 5]),
        ("0.01", ["50%", "50%"], [1, 0]),
        # fixed amounts first, the percentages share the rest
        ("1,000", ["£100", "50%", "50%"], [10_000, 45_000, 45_000]),
        ("1,000.01", ["£0.01", "£999", "100%"], [1, 99_900, 100]),
    ],
)
def test_shares_add_up_exactly(split, amount, shares, want) -> None:
    q, engine, _ = split
    out = q.execute("split_programme", {
        "amount": amount, "ratified_by": "Board, minute 2",
        "shares": [{"pot": f"Pot {i}", "share": s} for i, s in enumerate(shares)],
    }, NELL)
    assert [s["amount_pence"] for s in out["shares"]] == want
    assert sum(want) == out["amount_pence"] == out["new_total_pence"] - out["old_total_pence"]
    assert_money_adds_up(engine)


def test_moves_never_go_below_what_is_committed(split) -> None:
    q, engine, clock = split
    clock.set(dt.date(2012, 7, 18))
    q.execute("schedule_meeting", {"ref": "B1", "title": "Board", "date": "2012-07-18",
                                   "quorum": 1, "members": ["Cllr Ada Trelawny"]}, OWEN)
    q.execute("record_attendance", {"meeting": "B1", "present": ["Cllr Ada Trelawny"]}, OWEN)
    q.execute("decide", {"meeting": "B1", "item": "B-0003", "outcome": "approve"}, OWEN)
    # Dart: £375,000 allocated, £300,000 committed
    _refused(q, engine, MoneyRuleBroken, "return_underspend",
             {"from": "Dart allocation", "to": "Regional programmes", "amount": "75,000.01",
              "ratified_by": "Board, minute 3"}, OWEN, "amount", "at most £75,000 can leave it")
    _refused(q, engine, MoneyRuleBroken, "ring_fence",
             {"fund": "Fund", "contributions": {"Exe allocation": "10,000",
                                                "Dart allocation": "80,000"},
              "ratified_by": "Board, minute 3"}, OWEN, "contributions.Dart allocation",
             "£300,000 committed, so at most £75,000 can leave it")
    _refused(q, engine, ValidationError, "ring_fence",
             {"fund": "Exe allocation", "contributions": {"Dart allocation": "1,000"},
              "ratified_by": "Board, minute 3"}, OWEN, "fund",
             "Exe allocation is Exe SRP's allocation, not a regional pot")
    _refused(q, engine, ValidationError, "return_underspend",
             {"from": "Dart allocation", "to": "Tamar allocation", "amount": "1,000",
              "ratified_by": "Board, minute 3"}, OWEN, "to",
             "Tamar allocation is Tamar SRP's allocation, not a regional pot")
    # all that may leave it may leave it
    out = q.execute("return_underspend", {"from": "Dart allocation", "to": "Regional programmes",
                                          "amount": "75,000", "ratified_by": "Board, minute 3"},
                    OWEN)
    assert out["from_allocated_pence"] == 30_000_000 and out["partnership"] == "Dart SRP"
    assert_money_adds_up(engine)


def test_savings_targets(split) -> None:
    q, engine, clock = split
    _refused(q, engine, ValidationError, "set_savings_target", {"target": "1"}, OWEN, "grant",
             "name a grant or a programme")
    _refused(q, engine, NotFound, "set_savings_target", {"grant": "G-0099", "target": "1"},
             OWEN, "grant", "G-0099")
    first = q.execute("set_savings_target", {"programme": PROGRAMME, "target": "1,000,000"}, OWEN)
    again = q.execute("set_savings_target", {"programme": PROGRAMME, "target": "1,500,000",
                                             "target_date": "31/03/2014",
                                             "reason": "Board, minute 4"}, OWEN)
    assert first["replaced_pence"] is None and again["replaced_pence"] == 100_000_000
    with Session(engine) as s:
        events = audit.history(s, f"PROGRAMME:{PROGRAMME}")
    assert [(json.loads(e.before), json.loads(e.after)) for e in events][-1] == (
        {"savings_target_pence": 100_000_000, "savings_target_on": None},
        {"savings_target_pence": 150_000_000, "savings_target_on": "2014-03-31"})


# ---------------------------------------------------------------- pages


def test_pages_show_each_partnership_its_own(replayed) -> None:
    url, engine, _ = replayed
    clock = FixedClock(dt.date(2013, 3, 20))
    set_passwords(Quorum(engine, clock), OWEN, TESS, EWAN)
    with engine.connect() as conn:
        pots = dict(conn.exec_driver_sql("SELECT name, id FROM pot").all())
    tamar, regional = pots["Tamar allocation"], pots["Regional programmes"]
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as officer, TestClient(app) as tess, TestClient(app) as ewan:
        for client, who in ((officer, OWEN), (tess, TESS), (ewan, EWAN)):
            assert sign_in(client, who).status_code == 303
        board = officer.get("/dashboard").text
        assert 'id="partnership-allocations"' in board
        assert f'<a href="/partnership-allocations/{tamar}">Tamar allocation</a>' in board
        page = tess.get(f"/partnership-allocations/{tamar}")
        assert page.status_code == 200
        assert '<dd class="govuk-summary-list__value" id="balance">£50,000.01</dd>' in page.text
        assert "contributed £100,000 to the ring-fenced Transformation fund" in page.text
        assert "Northmarch Board 23 January 2013, minute 9" in page.text
        own = tess.get("/partnership-allocations").text
        assert f'id="balance-{tamar}">£50,000.01<' in own and "Exe allocation" not in own
        # another partnership's allocation, a regional pot and no pot: the same 404
        ewan.get("/")  # (the sign-in's flash message shows once)
        asked = (tamar, regional, 9999)
        answers = [ewan.get(f"/partnership-allocations/{p}") for p in asked]
        assert {r.status_code for r in answers} == {404}
        bodies = {r.text.replace(f"&#39;{p}&#39;", "N")
                  for r, p in zip(answers, asked, strict=True)}
        assert len(bodies) == 1
        assert officer.get(f"/partnership-allocations/{tamar}").status_code == 200
        assert officer.get("/meetings/NMB-2013-03-20/papers/partnerships.html").status_code == 200
