"""``?format=csv|xlsx`` on the list pages: the rows the page's filters and
search match (every page of them, in the page's order), through
engine/read/exports.py (money in pounds, formula injection neutralised).
A list's export streams (:func:`stream_list`): its rows are built 500 at a
time while the response is sent, so memory does not grow with the list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fastapi.responses import Response, StreamingResponse
from sqlmodel import Session

from engine.domain.errors import ValidationError
from engine.read import lists
from engine.read.exports import CSV_TYPE, XLSX_TYPE, csv_chunks, to_csv, to_xlsx, xlsx_chunks
from engine.read.listing import ListQuery

FORMATS = ("csv", "xlsx")

COLUMNS: dict[str, list[tuple[str, str]]] = {
    "bids": [
        ("ref", "Ref"),
        ("title", "Title"),
        ("sponsor", "Sponsor"),
        ("pot", "Pot"),
        ("round", "Round"),
        ("state", "State"),
        ("grant_requested_pence", "Grant requested"),
        ("savings_as_written", "Savings as written"),
        ("savings.basis", "Savings read as"),
        ("savings.amount_pence", "Savings"),
        ("partnership", "Partnership"),
        ("score.points", "Points"),
        ("recommendation", "Recommendation"),
        ("submitted_on", "Submitted"),
    ],
    "grants": [
        ("ref", "Ref"),
        ("title", "Project"),
        ("accountable_body", "Accountable body"),
        ("pot", "Pot"),
        ("state", "State"),
        ("approved_on", "Approved"),
        ("awarded_pence", "Awarded"),
        ("paid_pence", "Paid"),
        ("unpaid_pence", "Unpaid"),
        ("recovered_pence", "Recovered"),
        ("ends_on", "Delivery ends"),
    ],
    "returns": [
        ("ref", "Ref"),
        ("grant", "Grant"),
        ("title", "Project"),
        ("organisation", "Authority"),
        ("return_kind", "Kind"),
        ("period_start", "Period start"),
        ("period_end", "Period end"),
        ("due_on", "Due"),
        ("state", "State"),
        ("submitted_on", "Submitted"),
        ("days_late", "Days late"),
        ("savings_delivered_pence", "Savings delivered"),
        ("savings_anticipated_pence", "Savings anticipated"),
    ],
    "delegated": [
        ("ref", "Ref"),
        ("title", "Title"),
        ("bid", "Bid"),
        ("accountable_body", "Authority"),
        ("pot", "Pot"),
        ("amount_pence", "Amount"),
        ("state", "State"),
        ("requested_by", "Requested by"),
        ("requested_on", "Requested"),
        ("expires_on", "Open until"),
        ("decided_on", "Decided"),
        ("grant", "Grant"),
        ("reasons", "Reasons"),
    ],
    "actions": [
        ("ref", "Action"),
        ("meeting", "Meeting"),
        ("what", "What"),
        ("owner", "Owner"),
        ("by", "By"),
        ("state", "State"),
        ("note", "Note"),
        ("closed_by", "Closed by"),
        ("closed_on", "Closed"),
    ],
    "audit": [
        ("seq", "Event"),
        ("at", "At (UTC)"),
        ("actor", "Who"),
        ("command", "Command"),
        ("item", "Item"),
        ("reason", "Reason"),
        ("hash", "Hash"),
    ],
    "round": [
        ("rank", "Rank"),
        ("ref", "Ref"),
        ("title", "Title"),
        ("sponsor", "Sponsor"),
        ("points", "Points"),
        ("recommendation", "Recommendation"),
        ("grant_requested_pence", "Grant requested"),
        ("funding", "Funding"),
    ],
}


def wants_export(fmt: str | None) -> bool:
    if fmt in (None, "", "html"):
        return False
    if fmt not in FORMATS:
        raise ValidationError(
            f"format: {fmt!r} is not an export format; use csv or xlsx", field="format"
        )
    return True


def export(
    rows: Sequence[Mapping[str, Any]], kind: str, fmt: str, name: str | None = None
) -> Response:
    columns = COLUMNS[kind]
    filename = (name or kind).replace('"', "")
    if fmt == "csv":
        body, media = to_csv(rows, columns), CSV_TYPE
    else:
        body, media = to_xlsx(rows, columns, sheet=filename), XLSX_TYPE
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )


def stream_list(
    engine: Any, name: str, lq: ListQuery, today: dt.date, fmt: str, scope: int | None = None
) -> StreamingResponse:
    """Every row of the named list its filters and search match, streamed as
    CSV or XLSX (one connection held while the response is sent)."""

    def rows() -> Iterator[Mapping[str, Any]]:
        with Session(engine) as s:
            yield from lists.every_row(s, name, lq, today, scope)

    columns = COLUMNS[name]
    body = (
        csv_chunks(rows(), columns) if fmt == "csv" else xlsx_chunks(rows(), columns, sheet=name)
    )
    return StreamingResponse(
        body,
        media_type=CSV_TYPE if fmt == "csv" else XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )
