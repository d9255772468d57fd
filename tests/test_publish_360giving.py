"""360Giving open data (issue 16, item 2): a year of grants replayed
(tests/scenarios/money-2011-12.yaml) publishes a package that validates
against the official schema; one broken field is refused by name with
nothing written; the flat form (CSV and XLSX) reads back to the same grants."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import ValidationError
from engine.entry.cli import main as cli
from engine.entry.replay import run
from engine.read import giving360
from engine.store.db import create_schema, make_engine
from engine.store.models import Grant, Organisation, Payment

HERE = Path(__file__).parent
SCENARIO = HERE / "scenarios" / "money-2011-12.yaml"
SHARED = HERE.parent.parent / "shared" / "data" / "360giving"
FUNDER = giving360.Funder("360G-emiep", "GB-LAE-NTT", "East Midlands Improvement and Efficiency")


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('giving') / 'year.db'}"
    result = run(SCENARIO, url)
    assert result.ok, result.failed
    return url


def grants_of(url: str) -> list[dict]:
    engine = make_engine(url)
    with engine.connect() as conn:
        out = giving360.grants_360(conn, FUNDER)
    engine.dispose()
    return out


def test_the_schemas_shipped_are_the_official_ones() -> None:
    for name in ("360-giving-schema.json", "360-giving-package-schema.json"):
        assert (giving360.SCHEMA_DIR / name).read_bytes() == (SHARED / name).read_bytes(), name


def test_a_year_of_grants_validates_with_amounts_and_disbursements(year: str) -> None:
    grants = grants_of(year)
    pkg = giving360.package(grants, FUNDER, dt.date(2012, 4, 2))
    assert giving360.problems(pkg) == []
    engine = make_engine(year)
    with engine.connect() as conn:
        made = conn.execute(
            select(func.count()).select_from(Grant).where(Grant.state != "cancelled")
        ).scalar_one()
        paid = dict(conn.execute(
            select(Grant.ref, func.sum(Payment.amount_pence))
            .join(Payment, Payment.grant_id == Grant.id).group_by(Grant.ref)
        ).all())
        awarded = dict(conn.execute(select(Grant.ref, Grant.awarded_pence)).all())
    engine.dispose()
    assert len(grants) == made >= 3
    for g in grants:
        ref = g["id"].removeprefix("360G-emiep-")
        assert g["id"].startswith("360G-emiep-") and ref in awarded
        assert Decimal(str(g["amountAwarded"])) * 100 == awarded[ref]
        assert Decimal(str(g["amountDisbursed"])) * 100 == paid.get(ref, 0)
        assert sum(Decimal(str(t["value"])) for t in g["disbursementTransaction"]) == Decimal(
            str(g["amountDisbursed"]))
        assert g["recipientOrganization"][0]["id"].startswith("GB-LAE-")
        assert g["fundingOrganization"] == [{"id": FUNDER.org_id, "name": FUNDER.name}]
    assert any(g["disbursementTransaction"] for g in grants)


def test_a_recipient_without_an_identifier_is_refused_by_name_and_nothing_written(
    year: str, tmp_path: Path
) -> None:
    body = grants_of(year)[0]["recipientOrganization"][0]
    engine = make_engine(year)
    with engine.begin() as conn:  # as a database from before identifiers were kept
        conn.execute(update(Organisation).where(Organisation.name == body["name"])
                     .values(org_id=""))
    engine.dispose()
    try:
        out = tmp_path / "site"
        r = CliRunner().invoke(cli, ["--db", year, "publish", "360giving", "--out", str(out)],
                               env={"QUORUM_GIVING_PREFIX": "360G-emiep"})
        assert r.exit_code != 0
        theirs = [g["id"] for g in grants_of(year)
                  if g["recipientOrganization"][0]["name"] == body["name"]]
        assert theirs
        for grant in theirs:
            assert f"grant {grant}: recipientOrganization[0].id: is missing" in r.output
        assert "nothing was written" in r.output and "Traceback" not in r.output
        assert not out.exists()
    finally:
        engine = make_engine(year)
        with engine.begin() as conn:
            conn.execute(update(Organisation).where(Organisation.name == body["name"])
                         .values(org_id=body["id"]))
        engine.dispose()


def test_publish_writes_json_and_the_flat_form_which_read_back_to_the_same_grants(
    year: str, tmp_path: Path
) -> None:
    r = CliRunner().invoke(cli, ["--db", year, "publish", "360giving", "--out", str(tmp_path)],
                           env={"QUORUM_GIVING_PREFIX": "360G-emiep"})
    assert r.exit_code == 0, r.output
    pkg = json.loads((tmp_path / "360giving.json").read_text(encoding="utf-8"))
    assert giving360.problems(pkg) == []
    grants = pkg["grants"]
    # CSV
    main = list(csv.DictReader(io.StringIO(
        (tmp_path / "360giving-grants.csv").read_text(encoding="utf-8-sig"))))
    spent = list(csv.DictReader(io.StringIO(
        (tmp_path / "360giving-disbursements.csv").read_text(encoding="utf-8-sig"))))
    assert giving360.unflatten(main, spent) == grants
    # XLSX: two sheets, dates as date cells
    book = load_workbook(tmp_path / "360giving.xlsx")
    assert book.sheetnames == ["grants", "disbursements"]

    def rows(sheet: str) -> list[dict]:
        values = list(book[sheet].iter_rows(values_only=True))
        return [dict(zip(values[0], row, strict=True)) for row in values[1:]]

    assert giving360.unflatten(rows("grants"), rows("disbursements")) == grants


def test_the_funder_identifier_is_checked_too() -> None:
    grant = {"id": "360G-x-G-1", "title": "t", "description": "d", "currency": "GBP",
             "amountAwarded": 10, "awardDate": "2011-04-20",
             "recipientOrganization": [{"id": "GB-LAE-RUT", "name": "Rutland CC"}],
             "fundingOrganization": [{"name": "A board"}]}
    found = giving360.problems({"grants": [grant]})
    assert [str(p) for p in found] == [
        "grant 360G-x-G-1: fundingOrganization[0].id: is missing"]
    grant["amountAwarded"] = "ten pounds"
    grant["fundingOrganization"] = [{"id": "XE-EXAMPLE-b", "name": "A board"}]
    (problem,) = giving360.problems({"grants": [grant]})
    assert problem.field == "amountAwarded" and "is not of type 'number'" in problem.message


@given(st.integers(min_value=0, max_value=100_000_000_000))
def test_pounds_are_exact(pence: int) -> None:
    value = giving360.pounds(pence)
    assert Decimal(str(value)) * 100 == pence
    assert json.loads(json.dumps(value)) == value


def test_org_identifiers_are_checked_and_audited(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    q = Quorum(engine)
    q.execute_batch([
        ("register_organisation", {"name": "Kesteven DC", "org_id": "GB-LAE-KES"}),
        ("register_organisation", {"name": "Wold BC"}),
        ("register_person", {"name": "Olga", "email": "olga@x.example", "roles": ["officer"]}),
    ], "system")
    for bad, why in (("GB LAE KES", "is not an organisation identifier"),
                     ("Kesteven", "is not an organisation identifier"),
                     ("GB-LAE-KES", "is already the identifier of Kesteven DC")):
        with pytest.raises(ValidationError) as err:
            q.execute("set_org_identifier", {"organisation": "Wold BC", "org_id": bad},
                      "olga@x.example")
        assert err.value.field == "org_id" and why in err.value.message
    done = q.execute("set_org_identifier", {"organisation": "Wold BC", "org_id": "GB-LAE-WOL",
                                            "reason": "from the register"}, "olga@x.example")
    assert done == {"organisation": "Wold BC", "org_id": "GB-LAE-WOL", "changed": True}


def test_the_demo_after_its_april_board_publishes_valid_data(tmp_path: Path) -> None:
    """The demo (engine/data/demo.yaml) holds the scored April 2011 round; once the
    Board approves the three bids the paper scored 7, its grants publish and validate."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run(HERE.parent / "engine" / "data" / "demo.yaml", url).ok
    engine = make_engine(url)
    q = Quorum(engine, FixedClock(dt.date(2011, 4, 20)))
    officer = "officer@quorum.example"
    members = ["Cllr Clare Chair", "Cllr Victor Vice", "Cllr Vera Vice", "Cllr Bob Member"]
    q.execute("schedule_meeting", {"ref": "IEB-2011-04-20", "title": "Board",
                                   "date": "2011-04-20", "quorum": 3, "members": members},
              officer)
    q.execute("record_attendance", {"meeting": "IEB-2011-04-20", "present": members}, officer)
    for bid in ("B-0001", "B-0002", "B-0003"):
        q.execute("decide", {"meeting": "IEB-2011-04-20", "item": bid, "outcome": "approve"},
                  officer)
    with engine.connect() as conn:
        grants = giving360.grants_360(conn, FUNDER)
    engine.dispose()
    assert [g["recipientOrganization"][0]["id"] for g in grants] == [
        "GB-LAE-NKE", "GB-LAE-NTT", "GB-LAE-LCE"]
    assert giving360.problems(giving360.package(grants, FUNDER, dt.date(2011, 4, 21))) == []
