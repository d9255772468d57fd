"""Awarded grants as 360Giving open data: the JSON package, its flat form, and
the check against the official schema (docs/publishing.md).

UK grant-makers publish what they gave, to whom and why in the 360Giving Data
Standard (1.4.3, copied in ``engine/read/schemas/360giving/``). Every grant
Quorum made and did not cancel is one 360Giving grant:

- ``id``: the publisher's registered prefix (``QUORUM_GIVING_PREFIX``) and the
  grant's ref; ``title`` and ``description`` from the bid or allocation;
- ``amountAppliedFor``, ``amountAwarded``, ``amountDisbursed`` in pounds (the
  standard's numbers; Quorum's pence divided by 100, exactly, two places);
- ``awardDate`` (the approval), ``plannedDates`` (approval to the grant's end,
  or its last milestone), ``dateModified``;
- ``recipientOrganization``: the accountable body, with its identifier
  (``organisation.org_id``, org-id.guide) — an organisation with none is
  published with no ``id``, which the schema refuses, so the refusal names it;
- ``fundingOrganization``: ``QUORUM_FUNDER_ID`` / ``QUORUM_FUNDER_NAME``;
- ``grantProgramme``: the programme (code: its pot, title: its name);
- ``disbursementTransaction``: one per payment released (its ref, date, value).

:func:`problems` validates a package with ``jsonschema`` against the package
schema, its ``$ref`` to the grant schema resolved from the local copy (a
``referencing`` Registry: no network), and names each failing grant and field.
:func:`flatten` gives the flat form (a grants table and a disbursements table,
column titles as the standard's spreadsheet template names them);
:func:`unflatten` reads it back to the same grants.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select

from engine.read.exports import to_csv, to_xlsx_book
from engine.read.money import Reader
from engine.store.models import (
    Bid,
    Grant,
    Milestone,
    Organisation,
    Payment,
    Pot,
    Programme,
)

__all__ = [
    "DISBURSEMENT_TITLES",
    "GRANT_TITLES",
    "Funder",
    "Problem",
    "files",
    "flatten",
    "grants_360",
    "package",
    "problems",
    "unflatten",
]

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "360giving"
STANDARD_VERSION = "1.4"
CURRENCY = "GBP"
NOT_PUBLISHED = ("cancelled",)  # an approval reversed: no grant was made

GRANT_T = Grant.__table__
BID_T = Bid.__table__
ORG_T = Organisation.__table__
POT_T = Pot.__table__
PROGRAMME_T = Programme.__table__
PAYMENT_T = Payment.__table__
MILESTONE_T = Milestone.__table__


@dataclass(frozen=True)
class Funder:
    """Who publishes: the prefix 360Giving registered for it, its identifier, its name."""

    prefix: str
    org_id: str
    name: str


@dataclass(frozen=True)
class Problem:
    """One reason a package cannot be published: which grant, which field, what."""

    grant: str  # the 360Giving id ('' for the package itself)
    field: str  # e.g. recipientOrganization[0].id
    message: str

    def __str__(self) -> str:
        where = f"grant {self.grant}: " if self.grant else "package: "
        return f"{where}{self.field}: {self.message}"


def pounds(pence: int) -> int | float:
    """Pence as the standard's number of pounds: whole pounds as an integer, else
    exactly two decimal places (Decimal arithmetic, so never 0.30000000000000004)."""
    if pence % 100 == 0:
        return pence // 100
    return float(Decimal(pence) / 100)


def grants_360(conn: Reader, funder: Funder) -> list[dict[str, Any]]:
    """Every grant made (not cancelled), oldest first, as 360Giving grants."""
    rows = conn.execute(
        select(
            GRANT_T.c.id,
            GRANT_T.c.ref,
            GRANT_T.c.awarded_pence,
            GRANT_T.c.approved_on,
            GRANT_T.c.ends_on,
            GRANT_T.c.closed_on,
            BID_T.c.title,
            BID_T.c.grant_requested_pence,
            ORG_T.c.name.label("recipient"),
            ORG_T.c.org_id.label("recipient_id"),
            POT_T.c.name.label("pot"),
            PROGRAMME_T.c.name.label("programme"),
        )
        .join(BID_T, BID_T.c.id == GRANT_T.c.bid_id)
        .join(ORG_T, ORG_T.c.id == GRANT_T.c.accountable_body_id)
        .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id)
        .join(PROGRAMME_T, PROGRAMME_T.c.id == POT_T.c.programme_id)
        .where(GRANT_T.c.state.not_in(NOT_PUBLISHED))
        .order_by(GRANT_T.c.id)
    ).all()
    ids = [r.id for r in rows]
    last_due: dict[int, dt.date] = {}
    paid: dict[int, list[Any]] = defaultdict(list)
    if ids:
        last_due = dict(
            conn.execute(
                select(MILESTONE_T.c.grant_id, func.max(MILESTONE_T.c.due_on))
                .where(MILESTONE_T.c.grant_id.in_(ids))
                .group_by(MILESTONE_T.c.grant_id)
            ).all()
        )
        for p in conn.execute(
            select(PAYMENT_T.c.grant_id, PAYMENT_T.c.ref, PAYMENT_T.c.amount_pence,
                   PAYMENT_T.c.released_on)
            .where(PAYMENT_T.c.grant_id.in_(ids))
            .order_by(PAYMENT_T.c.id)
        ):
            paid[p.grant_id].append(p)
    out = []
    for g in rows:
        recipient: dict[str, Any] = {"name": g.recipient}
        if g.recipient_id:
            recipient = {"id": g.recipient_id, **recipient}
        ends = g.ends_on or last_due.get(g.id)
        planned: dict[str, Any] = {"startDate": g.approved_on.isoformat()}
        if ends is not None:
            planned["endDate"] = ends.isoformat()
        payments = paid.get(g.id, [])
        modified = max([g.approved_on, *(p.released_on for p in payments),
                        *([g.closed_on] if g.closed_on else [])])
        out.append(
            {
                "id": f"{funder.prefix}-{g.ref}",
                "title": g.title,
                "description": (
                    f"{g.title}: a grant to {g.recipient} from the {g.pot} budget of "
                    f"{g.programme}."
                ),
                "currency": CURRENCY,
                "amountAppliedFor": pounds(g.grant_requested_pence),
                "amountAwarded": pounds(g.awarded_pence),
                "amountDisbursed": pounds(sum(p.amount_pence for p in payments)),
                "awardDate": g.approved_on.isoformat(),
                "plannedDates": [planned],
                "recipientOrganization": [recipient],
                "fundingOrganization": [{"id": funder.org_id, "name": funder.name}],
                "grantProgramme": [{"code": g.pot, "title": g.programme}],
                "disbursementTransaction": [
                    {
                        "id": f"{funder.prefix}-{p.ref}",
                        "transactionDate": p.released_on.isoformat(),
                        "value": pounds(p.amount_pence),
                        "currency": CURRENCY,
                    }
                    for p in payments
                ],
                # a date-time (the standard's type) for a day: its start, in UTC
                "dateModified": dt.datetime.combine(modified, dt.time(), dt.UTC).isoformat(),
            }
        )
    return out


def package(grants: list[dict[str, Any]], funder: Funder, issued: dt.date) -> dict[str, Any]:
    """The 360Giving data package holding ``grants``."""
    return {
        "version": STANDARD_VERSION,
        "title": f"Grants awarded by {funder.name}",
        "issued": issued.isoformat(),
        "identifier": f"{funder.prefix}-{issued.isoformat()}",
        "publisher": {"identifier": funder.org_id, "name": funder.name},
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "grants": grants,
    }


# ---------------------------------------------------------------- the schema check


@cache
def _validator() -> Draft202012Validator:
    grant = json.loads((SCHEMA_DIR / "360-giving-schema.json").read_text(encoding="utf-8"))
    pkg = json.loads((SCHEMA_DIR / "360-giving-package-schema.json").read_text(encoding="utf-8"))
    # both files name their dialect "http://json-schema.org/draft/2020-12/schema"
    # (http, not the https the specification uses), which `referencing` does not
    # recognise (UnknownDialect): the dialect is given, not detected
    resource = DRAFT202012.create_resource(grant)
    # the package schema names the grant schema by its published URL (of release
    # 1.4.2, though the file is 1.4.3): both resolve to the local copy
    registry: Registry[Any] = Registry().with_resources(
        [(grant["$id"], resource), (pkg["properties"]["grants"]["items"]["$ref"], resource)]
    )
    # formats checked (date-time needs rfc3339-validator): the schema's dates are
    # oneOf date-time / YYYY-MM-DD, so unchecked, a plain date matches both and fails
    checker = Draft202012Validator.FORMAT_CHECKER
    if "date-time" not in checker.checkers:
        raise RuntimeError("jsonschema cannot check date-time: install rfc3339-validator")
    return Draft202012Validator(pkg, registry=registry, format_checker=checker)


_REQUIRED = re.compile(r"'([^']+)' is a required property")


def _field(path: Sequence[str | int], error: SchemaError) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    missing = _REQUIRED.match(error.message) if error.validator == "required" else None
    if missing:
        out = f"{out}.{missing.group(1)}" if out else missing.group(1)
    return out or "(the package)"


def _leaves(error: SchemaError) -> Iterable[SchemaError]:
    """The errors to report for one: a grant's ``oneOf`` (an organisation or an
    individual as recipient) is reported as the organisation branch's errors."""
    if error.validator == "oneOf" and error.context:
        first = [e for e in error.context if e.schema_path and e.schema_path[0] == 0]
        for sub in first or error.context:
            yield from _leaves(sub)
    else:
        yield error


def problems(pkg: Mapping[str, Any]) -> list[Problem]:
    """Every reason ``pkg`` does not validate, each naming its grant and field."""
    grants = pkg.get("grants")
    found = []
    for error in _validator().iter_errors(pkg):
        for leaf in _leaves(error):
            path = list(leaf.absolute_path)
            grant = ""
            if len(path) >= 2 and path[0] == "grants" and isinstance(path[1], int):
                index = path[1]
                item = grants[index] if isinstance(grants, list) else {}
                grant = str(item.get("id") or f"#{index + 1}") if isinstance(item, dict) else ""
                path = path[2:]
            message = leaf.message
            if leaf.validator == "required":
                message = "is missing" + (
                    " (record the recipient's identifier: set_org_identifier)"
                    if path[:1] == ["recipientOrganization"] else ""
                )
            found.append(Problem(grant, _field(path, leaf), message))
    return sorted(set(found), key=lambda p: (p.grant, p.field, p.message))


# ---------------------------------------------------------------- the flat form

# (column title, key path) in the order of 360Giving's spreadsheet template
GRANT_COLUMNS: list[tuple[str, tuple[str | int, ...]]] = [
    ("Identifier", ("id",)),
    ("Title", ("title",)),
    ("Description", ("description",)),
    ("Currency", ("currency",)),
    ("Amount Applied For", ("amountAppliedFor",)),
    ("Amount Awarded", ("amountAwarded",)),
    ("Amount Disbursed", ("amountDisbursed",)),
    ("Award Date", ("awardDate",)),
    ("Planned Dates:Start Date", ("plannedDates", 0, "startDate")),
    ("Planned Dates:End Date", ("plannedDates", 0, "endDate")),
    ("Recipient Org:Identifier", ("recipientOrganization", 0, "id")),
    ("Recipient Org:Name", ("recipientOrganization", 0, "name")),
    ("Funding Org:Identifier", ("fundingOrganization", 0, "id")),
    ("Funding Org:Name", ("fundingOrganization", 0, "name")),
    ("Grant Programme:Code", ("grantProgramme", 0, "code")),
    ("Grant Programme:Title", ("grantProgramme", 0, "title")),
    ("Last Modified", ("dateModified",)),
]
# the disbursements sheet: the grant's Identifier, then each transaction's fields
DISBURSEMENT_COLUMNS: list[tuple[str, str]] = [
    ("Disbursement Transaction:Identifier", "id"),
    ("Disbursement Transaction:Transaction Date", "transactionDate"),
    ("Disbursement Transaction:Value", "value"),
    ("Disbursement Transaction:Currency", "currency"),
]
NUMBERS = {"Amount Applied For", "Amount Awarded", "Amount Disbursed",
           "Disbursement Transaction:Value"}


def _get(item: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        try:
            item = item[key]
        except (KeyError, IndexError, TypeError):
            return None
    return item


def flatten(grants: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The flat form: (grants rows, disbursements rows), each row keyed by the
    column titles of :data:`GRANT_TITLES` / :data:`DISBURSEMENT_TITLES`."""
    main: list[dict[str, Any]] = []
    spent: list[dict[str, Any]] = []
    for g in grants:
        main.append({title: _get(g, path) for title, path in GRANT_COLUMNS})
        for t in g.get("disbursementTransaction") or []:
            spent.append({"Identifier": g["id"],
                          **{title: t.get(key) for title, key in DISBURSEMENT_COLUMNS}})
    return main, spent


GRANT_TITLES = [title for title, _ in GRANT_COLUMNS]
DISBURSEMENT_TITLES = ["Identifier", *(title for title, _ in DISBURSEMENT_COLUMNS)]


DATETIMES = {"Last Modified"}  # date-time columns; the other dates are days


def _cell(title: str, value: Any) -> Any:
    """A cell as the flat form holds it: a date cell (XLSX: read back as a naive
    datetime, in UTC as written) back to its ISO text."""
    if isinstance(value, dt.datetime):
        if title in DATETIMES:
            return value.replace(tzinfo=dt.UTC).isoformat()
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _number(text: Any) -> int | float:
    if isinstance(text, int | float):
        return text
    value = Decimal(str(text).strip())
    return int(value) if value == value.to_integral_value() else float(value)


def _put(item: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    here: Any = item
    for key, nxt in zip(path, path[1:], strict=False):
        if isinstance(key, int):
            continue  # the list it indexes was made, and entered, at the key before
        if isinstance(nxt, int):
            items = here.setdefault(key, [])
            while len(items) <= nxt:
                items.append({})
            here = items[nxt]
        else:
            here = here.setdefault(key, {})
    here[path[-1]] = value


def unflatten(
    main: Iterable[Mapping[str, Any]], spent: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The grants a flat form holds (its two tables' rows, keyed by column title):
    the inverse of :func:`flatten`; blank cells are absent fields."""
    paths = dict(GRANT_COLUMNS)
    grants: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for row in main:
        g: dict[str, Any] = {}
        for title, raw in row.items():
            cell = _cell(title, raw)
            if cell in (None, "") or title not in paths:
                continue
            _put(g, paths[title], _number(cell) if title in NUMBERS else str(cell))
        g["disbursementTransaction"] = []
        grants.append(g)
        by_id[g["id"]] = g
    keys = dict(DISBURSEMENT_COLUMNS)
    for row in spent:
        cells = {title: _cell(title, raw) for title, raw in row.items()}
        t = {
            keys[title]: _number(cell) if title in NUMBERS else str(cell)
            for title, cell in cells.items()
            if title in keys and cell not in (None, "")
        }
        by_id[str(row["Identifier"])]["disbursementTransaction"].append(t)
    return grants


def files(pkg: Mapping[str, Any]) -> dict[str, bytes]:
    """The files to publish for a package: the JSON, and the flat form as two CSVs
    and one workbook of two sheets."""
    main, spent = flatten(list(pkg["grants"]))
    grant_cols = [(t, t) for t in GRANT_TITLES]
    spent_cols = [(t, t) for t in DISBURSEMENT_TITLES]
    return {
        "360giving.json": (json.dumps(pkg, indent=2, ensure_ascii=False) + "\n").encode(),
        "360giving-grants.csv": to_csv(main, grant_cols),
        "360giving-disbursements.csv": to_csv(spent, spent_cols),
        "360giving.xlsx": to_xlsx_book(
            [("grants", main, grant_cols), ("disbursements", spent, spent_cols)]
        ),
    }
