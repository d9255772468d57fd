"""Import a table of bids (CSV or XLSX), like the April 2011 board paper's.

Every row becomes a ``submit_bid`` command; rows are tried one by one (each
in a savepoint) so the report names every row that could not be accepted,
and nothing is kept from a file with errors unless ``partial`` is asked for.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from engine.commands.service import Quorum
from engine.domain.actor import Actor
from engine.domain.errors import QuorumError, ValidationError

# column heading (normalised) -> submit_bid argument
COLUMNS = {
    "ref": "ref",
    "sponsor": "sponsor",
    "sponsor_authority": "sponsor",
    "project": "title",
    "title": "title",
    "grant_requested_gbp": "grant",
    "grant_requested": "grant",
    "grant": "grant",
    "cashable_savings_as_written": "savings",
    "cashable_savings": "savings",
    "savings": "savings",
    "partnership_project": "partnership",
    "partnership": "partnership",
    "partners": "partners",
    "partner_authorities": "partners",
    "builds_on_previous_good_practice": "builds_on_proven",
    "builds_on_proven": "builds_on_proven",
    "invest_to_save": "invest_to_save",
    "published_points": "published_points",
    "pot": "pot",
    "round": "round",
}


@dataclass
class RowProblem:
    row: int
    label: str
    message: str
    field: str | None

    def __str__(self) -> str:
        return f"row {self.row} ({self.label}): {self.message}"


@dataclass
class ImportReport:
    rows: int = 0
    accepted: list[str] = field(default_factory=list)  # refs
    problems: list[RowProblem] = field(default_factory=list)
    committed: bool = False
    requested_pence: int = 0


def _norm(heading: str) -> str:
    return "_".join(heading.strip().lower().replace("/", " ").replace("-", " ").split())


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows as dicts keyed by normalised heading. CSV (UTF-8) or XLSX."""
    if not path.exists():
        raise ValidationError(f"bids import: file: {path} does not exist", field="file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            rows = list(reader)
    elif suffix in {".xlsx", ".xlsm"}:
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        ws = wb.worksheets[0]
        rows = [["" if c is None else str(c) for c in r] for r in ws.iter_rows(values_only=True)]
        wb.close()
    else:
        raise ValidationError(
            f"bids import: file: {path.name}: use a .csv or .xlsx file", field="file"
        )
    if not rows:
        raise ValidationError(f"bids import: file: {path.name} is empty", field="file")
    headings = [_norm(h) for h in rows[0]]
    unknown = [h for h in headings if h and h not in COLUMNS]
    if unknown:
        raise ValidationError(
            f"bids import: columns: {', '.join(unknown)} not understood; known columns: "
            f"{', '.join(sorted(COLUMNS))}",
            field="columns",
        )
    missing = {"sponsor", "title", "grant"} - {COLUMNS[h] for h in headings if h}
    if missing:
        raise ValidationError(
            f"bids import: columns: missing {', '.join(sorted(missing))}", field="columns"
        )
    out = []
    for cells in rows[1:]:
        if not any(str(c).strip() for c in cells):
            continue
        out.append({h: (cells[i] if i < len(cells) else "") for i, h in enumerate(headings) if h})
    return out


def import_bids(
    q: Quorum,
    path: Path,
    actor: str | Actor,
    *,
    partial: bool = False,
    pot: str | None = None,
    round_ref: str | None = None,
) -> ImportReport:
    table = read_table(path)
    calls = []
    labels = []
    for row in table:
        args: dict = {}
        for heading, value in row.items():
            name = COLUMNS[heading]
            value = str(value).strip()
            if value == "":
                continue
            if name == "partners":
                args[name] = [p.strip() for p in value.split(";") if p.strip()]
            else:
                args[name] = value
        if round_ref and "round" not in args:
            args["round"] = round_ref
        elif pot and "pot" not in args and "round" not in args:
            args["pot"] = pot
        calls.append(("submit_bid", args))
        labels.append(f"{args.get('sponsor', '?')}, {args.get('title', '?')}")
    report = ImportReport(rows=len(calls))
    outcomes, committed = q.execute_rows(calls, actor, partial=partial)
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, QuorumError):
            msg = outcome.message.removeprefix("submit_bid: ")
            report.problems.append(RowProblem(i + 2, labels[i], msg, outcome.field))
        else:
            report.accepted.append(outcome["ref"])
            report.requested_pence += outcome.get("grant_pence", 0)
    report.committed = committed
    if not committed:
        report.accepted = []
        report.requested_pence = 0
    return report
