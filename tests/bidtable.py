"""The April 2011 bid table as bid rows, shared by the tests that score it."""

from __future__ import annotations

import csv
from pathlib import Path

from engine.domain.money import parse_pounds
from engine.domain.savings import parse_savings

BIDS_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "bids-2011-04.csv"


def tristate(text: str) -> str:
    """yes / no / not_stated as the CSV says it ("No (others have expressed interest)": no)."""
    t = text.strip().lower()
    if t == "yes" or t.startswith("yes "):
        return "yes"
    if t == "no" or t.startswith(("no ", "no(")):
        return "no"
    assert t in ("not specified", "not stated", ""), text
    return "not_stated"


def april_bids() -> list[dict]:
    """The 26 April 2011 bids as bid rows (the keys bid_facts reads), refs B-0001... in
    file order, plus the published points and the project title."""
    with BIDS_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    bids = []
    for i, row in enumerate(rows, start=1):
        s = parse_savings(row["cashable_savings_as_written"])
        bids.append(
            {
                "ref": f"B-{i:04d}",
                "title": row["project"],
                "published_points": int(row["published_points"]),
                "grant_requested_pence": parse_pounds(row["grant_requested_gbp"]),
                "savings_text": s.text,
                "savings_basis": s.basis.value,
                "savings_amount_pence": s.amount_pence,
                "savings_high_pence": s.high_pence,
                "savings_years": s.years,
                "savings_annual": s.annual,
                "partnership": tristate(row["partnership_project"]),
                "partner_count": 0,
                "builds_on_proven": tristate(row["builds_on_previous_good_practice"]),
                "invest_to_save": False,
            }
        )
    return bids
