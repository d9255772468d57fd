"""Import a table of bids (CSV or XLSX), like the April 2011 board paper's.

Every row becomes a ``submit_bid`` command; rows are tried one by one (each
in a savepoint) so the report names every row that could not be accepted,
and nothing is kept from a file with errors unless ``partial`` is asked for.

Limits (engine/settings.py, docs/security.md "Input limits"), each checked
before the file is read further, each a ValidationError naming the file:

- size: at most ``QUORUM_IMPORT_MAX_MB`` (``_check_size``);
- rows: at most ``QUORUM_IMPORT_MAX_ROWS`` (counted while reading, ``_rows_within``);
- an XLSX is a zip: the uncompressed sizes its entries declare add up to at
  most ``QUORUM_IMPORT_MAX_UNZIPPED_MB`` before openpyxl opens it (a 100 KB
  file can unzip to gigabytes; zipfile stops reading an entry at its declared
  size, so the declared sizes bound what is read) (``_check_zip``).

Traps of the readers handled here: ``csv`` raises ``csv.Error`` for a NUL or
a field over its limit, and text that is not UTF-8 is a UnicodeDecodeError
(both refused naming the line, ``_read_csv``); openpyxl raises whatever its
XML and zip layers raise for a damaged workbook (KeyError, zipfile and lxml
errors...): any of them is "could not be read as a workbook" (``_read_xlsx``).
A cell with a control character is refused by the contract, for its row.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.commands.service import Quorum
from engine.domain.actor import Actor
from engine.domain.errors import QuorumError, ValidationError
from engine.domain.fields import shown
from engine.settings import get_settings

_MB = 1024 * 1024

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


def _refuse(path: Path, what: str) -> ValidationError:
    return ValidationError(f"bids import: file: {path.name}: {what}", field="file")


def _check_size(path: Path) -> None:
    limit = get_settings().import_max_mb
    size = path.stat().st_size
    if size > limit * _MB:
        raise _refuse(
            path, f"is {size / _MB:.1f} MB; at most {limit:g} MB (QUORUM_IMPORT_MAX_MB)"
        )


def _rows_within(path: Path, rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    limit = get_settings().import_max_rows
    for n, row in enumerate(rows, start=1):
        if n > limit + 1:  # the headings and ``limit`` rows of bids
            raise _refuse(
                path, f"has more than {limit} rows; at most {limit} (QUORUM_IMPORT_MAX_ROWS)"
            )
        yield row


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            return [list(row) for row in _rows_within(path, reader)]
        except UnicodeDecodeError:
            raise _refuse(path, "is not UTF-8 text; save it as CSV UTF-8") from None
        except csv.Error as exc:
            raise _refuse(
                path, f"line {reader.line_num}: not readable as CSV ({exc})"
            ) from None


def _check_zip(path: Path) -> None:
    limit = get_settings().import_max_unzipped_mb
    try:
        with zipfile.ZipFile(path) as z:
            unzipped = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _refuse(path, "is not an .xlsx workbook (it is not a zip file)") from None
    if unzipped > limit * _MB:
        raise _refuse(
            path,
            f"would unzip to {unzipped / _MB:.0f} MB; at most {limit:g} MB "
            "(QUORUM_IMPORT_MAX_UNZIPPED_MB)",
        )


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _read_xlsx(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook  # slow to import: only when a workbook is read

    _check_zip(path)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # any error of a damaged workbook (module doc)
        raise _refuse(path, f"could not be read as a workbook ({type(exc).__name__})") from None
    try:
        if not wb.worksheets:
            raise _refuse(path, "has no worksheet")
        ws = wb.worksheets[0]
        rows = [
            [_cell(c) for c in r] for r in _rows_within(path, ws.iter_rows(values_only=True))
        ]
    except QuorumError:
        raise
    except Exception as exc:  # a damaged sheet fails while it is read
        raise _refuse(path, f"could not be read as a workbook ({type(exc).__name__})") from None
    finally:
        wb.close()
    return rows


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows as dicts keyed by normalised heading. CSV (UTF-8) or XLSX, within the limits."""
    if not path.is_file():
        raise ValidationError(f"bids import: file: {path} does not exist", field="file")
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".xlsx", ".xlsm"}:
        raise ValidationError(
            f"bids import: file: {path.name}: use a .csv or .xlsx file", field="file"
        )
    _check_size(path)
    rows = _read_csv(path) if suffix == ".csv" else _read_xlsx(path)
    if not rows:
        raise ValidationError(f"bids import: file: {path.name} is empty", field="file")
    headings = [_norm(h) for h in rows[0]]
    unknown = [shown(h) for h in headings if h and h not in COLUMNS]
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
        labels.append(f"{shown(args.get('sponsor', '?'))}, {shown(args.get('title', '?'))}")
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
