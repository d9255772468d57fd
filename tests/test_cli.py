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
    cmd = [sys.executable, "-m", "engine.cli"]
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
    from openpyxl import Workbook

    url = f"sqlite:///{tmp_path / 'q.db'}"
    assert (
        quorum("demo", "--bids", str(_write_csv(tmp_path / "none.csv", [])), db=url).returncode == 0
    )
    wb = Workbook()
    ws = wb.active
    lines = BIDS_CSV.read_text(encoding="utf-8").splitlines()
    import csv

    for row in csv.reader(lines):
        ws.append(row)
    wb.save(tmp_path / "bids.xlsx")
    out = quorum(
        "bids",
        "import",
        str(tmp_path / "bids.xlsx"),
        "--pot",
        "Projects",
        db=url,
        actor="officer@quorum.example",
    )
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
