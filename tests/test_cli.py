"""The quorum command as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BIDS_CSV

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = Path(__file__).parent / "scenarios"


def quorum(*args: str, db: str | None = None, actor: str | None = None, cwd: Path | None = None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("QUORUM_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "engine.entry.cli"]
    if db:
        cmd += ["--db", db]
    if actor:
        cmd += ["--as", actor]
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    url = f"sqlite:///{path}"
    out = quorum("demo", db=url)
    assert out.returncode == 0, out.stderr
    assert "26, £2,103,290 requested" in out.stdout
    return url


def test_demo_then_bids_list_shows_26_bids_totalling_2103290(demo_db: str) -> None:
    out = quorum("bids", "list", db=demo_db)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "26 bids, £2,103,290 requested"
    listed = json.loads(quorum("bids", "list", "--json", db=demo_db).stdout)
    assert len(listed) == 26
    assert sum(b["grant_requested_pence"] for b in listed) == 210_329_000
    shared_ict = next(b for b in listed if b["title"] == "Shared ICT")
    assert shared_ict["savings"] == {
        "basis": "over_years",
        "amount_pence": 213_741_600,
        "high_pence": None,
        "years": 5,
        "annual": False,
        "readable": True,
    }
    assert shared_ict["published_points"] == 7


def test_demo_is_idempotent_and_audit_verifies(demo_db: str) -> None:
    again = quorum("demo", db=demo_db)
    assert again.returncode == 0 and "already loaded" in again.stdout
    assert len(json.loads(quorum("bids", "list", "--json", db=demo_db).stdout)) == 26
    ok = quorum("audit", "verify", db=demo_db)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout


def test_pots_show_the_2011_13_allocations(demo_db: str) -> None:
    pots = {p["name"]: p for p in json.loads(quorum("pots", "--json", db=demo_db).stdout)}
    assert pots["Projects"]["allocated_pence"] == 75_000_000
    assert sum(p["allocated_pence"] for p in pots.values()) == 170_000_000
    assert all(p["identity_holds"] for p in pots.values())


def test_audit_verify_fails_naming_the_altered_event(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    assert quorum("demo", db=url).returncode == 0
    con = sqlite3.connect(tmp_path / "q.db")
    seq = con.execute(
        "select seq from audit_event where item_ref = 'B-0005' and command = 'submit_bid'"
    ).fetchone()[0]
    con.execute(
        "update audit_event set after = replace(after, '2200000', '9900000') where seq = ?", (seq,)
    )
    con.commit()
    con.close()
    out = quorum("audit", "verify", db=url)
    assert out.returncode == 1
    assert f"broken at event {seq}" in out.stderr
    assert "B-0005" in out.stderr
    assert "Traceback" not in out.stderr


def test_audit_show_prints_an_items_history(demo_db: str, tmp_path: Path) -> None:
    out = quorum("audit", "show", "B-0001", db=demo_db)
    assert out.returncode == 0, out.stderr
    assert "submit_bid" in out.stdout and "officer@quorum.example" in out.stdout
    missing = quorum("audit", "show", "NOPE", db=demo_db)
    assert missing.returncode == 1 and "no audit events for 'NOPE'" in missing.stderr


def _write_csv(path: Path, rows: list[str]) -> Path:
    header = BIDS_CSV.read_text(encoding="utf-8").splitlines()[0]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_import_with_bad_rows_accepts_nothing_unless_partial(demo_db: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    assert quorum("demo", db=url).returncode == 0
    bad = _write_csv(
        tmp_path / "bad.csv",
        [
            '0,Rutland CC,Good bid,"12,000",none specified,yes,yes',
            '0,Nowhere DC,Unknown sponsor,"5,000",none specified,yes,yes',
            '0,Rutland CC,Negative,"-5,000",none specified,yes,yes',
            '0,Rutland CC,Odd partnership,"5,000",none specified,perhaps,yes',
        ],
    )
    out = quorum(
        "bids", "import", str(bad), "--pot", "Projects", db=url, actor="officer@quorum.example"
    )
    assert out.returncode == 1
    assert (
        "row 3 (Nowhere DC, Unknown sponsor): sponsor: unknown authority 'Nowhere DC'" in out.stderr
    )
    assert "row 4 (Rutland CC, Negative): grant: '-5,000' is negative" in out.stderr
    assert "row 5 (Rutland CC, Odd partnership): partnership: 'perhaps'" in out.stderr
    assert "nothing was imported" in out.stderr
    assert len(json.loads(quorum("bids", "list", "--json", db=url).stdout)) == 26

    part = quorum(
        "bids",
        "import",
        str(bad),
        "--pot",
        "Projects",
        "--partial",
        db=url,
        actor="officer@quorum.example",
    )
    assert part.returncode == 0, part.stderr
    assert "imported 1 of 4 bids, £12,000 requested; skipped 3" in part.stdout
    titles = [b["title"] for b in json.loads(quorum("bids", "list", "--json", db=url).stdout)]
    assert titles.count("Good bid") == 1 and "Negative" not in titles


def test_import_xlsx(tmp_path: Path) -> None:
    import csv

    from openpyxl import Workbook

    from engine.entry.cli import DATA

    url = f"sqlite:///{tmp_path / 'q.db'}"
    header = (DATA / "demo.yaml").read_text(encoding="utf-8").split("\nsteps:")[0]
    (tmp_path / "setup.yaml").write_text(header + "\nsteps: []\n", encoding="utf-8")
    assert quorum("replay", str(tmp_path / "setup.yaml"), "--db", url).returncode == 0
    wb = Workbook()
    ws = wb.active
    for row in csv.reader(BIDS_CSV.read_text(encoding="utf-8").splitlines()):
        ws.append(row)
    wb.save(tmp_path / "bids.xlsx")
    out = quorum("bids", "import", str(tmp_path / "bids.xlsx"), "--pot", "Projects", db=url,
                 actor="officer@quorum.example")
    assert out.returncode == 0, out.stderr
    assert "imported 26 of 26 bids, £2,103,290 requested" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grant=-100"], "grant: '-100' is negative"),
        (
            ["milestones=[{outcome: x, due: 2011-09-01, payment: 5}]"],
            "payments add up to £5 but the grant requested is £1,000",
        ),
        (["sponsor=Atlantis"], "sponsor: unknown authority 'Atlantis'"),
        (
            ["milestones=[{outcome: x, due: 31/02/2011, payment: 1000}]"],
            "milestones[1].due: '31/02/2011' is not a date",
        ),
    ],
)
def test_bad_bid_is_refused_naming_the_field_and_changes_nothing(
    demo_db: str, args: list[str], message: str
) -> None:
    before = quorum("bids", "list", "--json", db=demo_db).stdout
    base = {"title": "T", "sponsor": "Rutland CC", "grant": "1000"}
    for a in args:
        base.pop(a.split("=")[0], None)
    pairs = [f"{k}={v}" for k, v in base.items()] + args
    out = quorum("do", "submit_bid", *pairs, db=demo_db, actor="officer@quorum.example")
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert quorum("bids", "list", "--json", db=demo_db).stdout == before


def test_acting_without_identity_or_as_a_stranger_is_a_clear_error(demo_db: str) -> None:
    out = quorum("bids", "withdraw", "B-0001", "--reason", "x", db=demo_db)
    assert out.returncode == 1 and "pass --as EMAIL" in out.stderr
    out = quorum("bids", "withdraw", "B-0001", "--reason", "x", db=demo_db, actor="who@x.example")
    assert out.returncode == 1 and "no person with email 'who@x.example'" in out.stderr


def test_replay_intake_scenario_json(tmp_path: Path) -> None:
    out = quorum("replay", str(SCENARIOS / "intake-2011-04.yaml"), "--json")
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout)
    assert state["ok"] is True
    assert len(state["items"]) == 27
    nk = next(i for i in state["items"] if i["ref"] == "NK-2011-02")
    assert nk["state"] == "submitted" and nk["version"] == 2
    assert nk["savings_as_written"] == "150,000 per annum"
    assert [m["payment_pence"] for m in nk["milestones"]] == [2_000_000, 4_000_000]
    projects = next(p for p in state["pots"] if p["name"] == "Projects")
    assert projects["allocated_pence"] == 80_000_000
    assert projects["available_pence"] == 80_000_000
    assert [e["step"] for e in state["errors"]] == [4, 5, 6, 8]
    assert all(e["expected"] for e in state["errors"])
    assert state["audit"]["chain_ok"] is True
    assert state["audit"]["events"] > 27
    nina = [m for m in state["outbox"] if m["to"] == "nina@nkdc.example"]
    # North Kesteven's two bids in the table (B-0001, B-0025) and the one submitted online
    assert [m["key"] for m in nina] == [
        "bid_received:B-0001:nina@nkdc.example",
        "bid_received:B-0025:nina@nkdc.example",
        "bid_received:NK-2011-02:nina@nkdc.example",
    ]


def test_replay_stops_at_a_failing_step_and_when_an_expected_error_does_not_happen(
    tmp_path: Path,
) -> None:
    text = (SCENARIOS / "intake-2011-04.yaml").read_text().split("steps:")[0]
    fail = tmp_path / "fail.yaml"
    fail.write_text(
        text
        + """steps:
  - {on: 2011-04-05, by: Olivia Officer, do: submit_bid, title: A, sponsor: Rutland CC, grant: 10}
  - {on: 2011-04-06, by: Olivia Officer, do: withdraw_bid, ref: B-0009, reason: gone}
  - {on: 2011-04-07, by: Olivia Officer, do: withdraw_bid, ref: B-0001, reason: never runs}
"""
    )
    out = quorum("replay", str(fail))
    assert out.returncode == 1
    assert "step 2 (2011-04-06, officer@iep.example, withdraw_bid)" in out.stderr
    assert "no bid 'B-0009'" in out.stderr
    assert "never runs" not in out.stdout
    unexpected = tmp_path / "unexpected.yaml"
    unexpected.write_text(
        text
        + """steps:
  - {on: 2011-04-05, by: Olivia Officer, do: submit_bid, title: A, sponsor: Rutland CC, grant: 10,
     expect: error}
"""
    )
    out = quorum("replay", str(unexpected), "--json")
    assert out.returncode == 1
    assert "expected an error, but it succeeded" in out.stderr
    assert json.loads(out.stdout)["failed_step"]["step"] == 1


def test_replay_bad_scenario_files_are_clear_errors(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "programme: {name: P, pots: {A: 10}}\nsteps:\n  - {on: 2011-04-01, by: x, do: fly}\n"
    )
    out = quorum("replay", str(f))
    assert out.returncode == 1 and "do: unknown verb 'fly'" in out.stderr
    f.write_text("steps: [\n")
    out = quorum("replay", str(f))
    assert out.returncode == 1 and "not valid YAML" in out.stderr and "Traceback" not in out.stderr
    f.write_text(
        "programme: {name: P, pots: {A: 10}}\nsteps:\n"
        "  - {on: 2011-04-05, by: system, do: register_organisation, name: X}\n"
        "  - {on: 2011-04-01, by: system, do: register_organisation, name: Y}\n"
    )
    out = quorum("replay", str(f))
    assert out.returncode == 1 and "steps run forward in time" in out.stderr


V2 = Path(__file__).parent / "rules" / "efficiency-bids-2011-v2.yaml"


def test_round_show_whatif_rescore_and_papers(demo_db: str, tmp_path: Path) -> None:
    shown = quorum("round", "show", "EFF-2011", db=demo_db)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "B-0003" in lines[2] and "EM Public Sector Network" in lines[2]
    assert lines[-1] == "available £750,000; above the line £650,900; would remain £99,100"

    db_file = Path(demo_db.removeprefix("sqlite:///"))
    before = db_file.read_bytes()
    what = quorum("round", "whatif", "EFF-2011", "--rules", str(V2), "--json", db=demo_db)
    assert what.returncode == 0, what.stderr
    w = json.loads(what.stdout)
    assert (w["rules_now"], w["rules_then"]) == ("efficiency-bids-2011 2011.1",
                                                 "efficiency-bids-2011 2011.2")
    fleet = next(b for b in w["bids"] if b["title"] == "Fleet Management")
    assert (fleet["points_now"], fleet["points_then"]) == (6, 6)  # single-authority: no gain
    ict = next(b for b in w["bids"] if b["title"] == "Shared ICT")
    assert ict["points_then"] == 9 and ict["recommendation_then"] == "approve"
    assert w["changed"] > 0
    assert db_file.read_bytes() == before  # what-if writes nothing

    md = quorum("paper", "bids", "EFF-2011", db=demo_db)
    assert md.returncode == 0 and "| Would remain | £99,100 |" in md.stdout
    html = quorum("paper", "bids", "EFF-2011", "--format", "html", "--out",
                  str(tmp_path / "bids.html"), db=demo_db)
    assert html.returncode == 0 and (tmp_path / "bids.html").read_text().startswith("<!doctype")


def test_rescoring_with_a_new_version_keeps_the_old_scores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    assert quorum("demo", db=url).returncode == 0
    officer = "officer@quorum.example"
    out = quorum("round", "score", "EFF-2011", "--rules", str(V2), db=url, actor=officer)
    assert out.returncode == 0, out.stderr
    assert "scored 26 bids in EFF-2011 with efficiency-bids-2011 2011.2" in out.stdout
    con = sqlite3.connect(tmp_path / "q.db")
    versions = con.execute(
        "select v.version, s.current, count(*) from score s join rule_set_version v "
        "on v.id = s.rule_set_version_id group by 1, 2 order by 1").fetchall()
    assert versions == [("2011.1", 0, 26), ("2011.2", 1, 26)]
    history = json.loads(quorum("audit", "show", "B-0001", "--json", db=url).stdout)
    scorings = [e["after"]["rules"] for e in history if e["command"] == "score_round"]
    assert scorings == ["efficiency-bids-2011 2011.1", "efficiency-bids-2011 2011.2"]
    bad = quorum("round", "score", "EFF-2011", "--rules", "nonesuch", db=url, actor=officer)
    assert bad.returncode == 1 and "nonesuch" in bad.stderr and "Traceback" not in bad.stderr


def test_override_keeps_the_original_points_visible(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    assert quorum("demo", db=url).returncode == 0
    out = quorum("do", "override_score", "ref=B-0005", "criterion=savings", "points=2",
                 "reason=savings are the schools' budgets, not the council's", db=url,
                 actor="officer@quorum.example")
    assert out.returncode == 0, out.stderr
    bid = json.loads(quorum("bids", "show", "B-0005", db=url).stdout)
    savings = next(c for c in bid["score"]["criteria"] if c["criterion"] == "savings")
    assert (savings["points"], savings["rules_points"]) == (2, 5)
    assert savings["override_reason"] == "savings are the schools' budgets, not the council's"
    assert (bid["score"]["points"], bid["score"]["rules_points"]) == (4, 7)
    # the recommendation follows the officer's points (7 -> 4: no longer every criterion)
    assert bid["recommendation"] == "refer_back"
    assert "break even within two years" in bid["score"]["recommendation_reason"]
    too_many = quorum("do", "override_score", "ref=B-0005", "criterion=savings", "points=9",
                      "reason=x", db=url, actor="officer@quorum.example")
    assert too_many.returncode == 1 and "above the criterion's maximum of 5" in too_many.stderr
