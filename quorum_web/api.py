"""The REST API under /api/v1: read the items, run any command.

Every endpoint declares the roles it allows (``require``); a sponsor sees only
its own authority's bids, grants and returns, and another authority's item
answers 404 exactly as a missing one does. Changes go through
``POST /api/v1/commands/{name}``: the same ``Quorum.execute`` as the CLI and
the pages. Errors are JSON ``{error, message, field?, item?}`` (docs/api.md).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.security import HTTPBearer
from sqlalchemy import select
from sqlmodel import Session

from engine.commands import handlers
from engine.commands.contracts import refuse_numbers_as_pounds
from engine.commands.service import REGISTRY
from engine.domain.actor import Actor
from engine.domain.errors import NotFound, ValidationError
from engine.read import lists, shapes, views
from engine.read import money as views_money
from engine.read import returns as views_returns
from engine.read.delegation import delegated_items
from engine.read.listing import MAX_PAGE, MAX_SEARCH
from engine.store import audit
from engine.store.models import Bid as BidRow
from engine.store.models import DelegatedDecision, Organisation, Return
from engine.store.models import Grant as GrantRow
from quorum_web import schemas, uploads
from quorum_web.auth import ALL_ROLES, CSRF_HEADER, STAFF, check_csrf, require
from rules.returns import KINDS
from workflows.action import ACTION
from workflows.bid import BID
from workflows.delegated import DELEGATED
from workflows.grant import EVIDENCE_FROM, GRANT
from workflows.returns import RETURN

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody, "description": "Malformed request or invalid input"},
    401: {"model": schemas.ErrorBody, "description": "Not signed in (no or bad token)"},
    403: {"model": schemas.ErrorBody, "description": "Forbidden for your roles"},
    404: {"model": schemas.ErrorBody, "description": "No such item (or not yours to see)"},
    409: {"model": schemas.ErrorBody, "description": "Conflict with the item's state or version"},
    422: {"model": schemas.ErrorBody, "description": "Refused by a rule"},
}

bearer = HTTPBearer(auto_error=False, description="An API token: quorum token create EMAIL")


def single_query_values(request: Request) -> None:
    """A query parameter given twice is refused, not silently read as its last value."""
    keys = [k for k, _ in request.query_params.multi_items()]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValidationError(f"{twice[0]}: give it once", field=twice[0])


router = APIRouter(
    prefix="/api/v1",
    responses=ERRORS,
    dependencies=[Depends(bearer), Depends(single_query_values)],
)

assert handlers  # imported: every command is registered before the names below are read
CommandName = Literal[tuple(sorted(REGISTRY))]  # type: ignore[valid-type]
BidState = Literal[tuple(BID.states)]  # type: ignore[valid-type]

ANYONE = require(ALL_ROLES)
STAFF_ONLY = require(STAFF)
AUDITORS = require({"officer", "director", "auditor"})
EVIDENCE = require(EVIDENCE_FROM - {"system"})  # and then the grant's scope: 404


def scope_of(actor: Actor) -> int | None:
    """The authority a person's view is limited to (sponsors), or None (everything)."""
    if actor.roles & STAFF:
        return None
    return actor.organisation_id if actor.organisation_id is not None else -1


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _today(request: Request) -> Any:
    return request.app.state.clock.today()


def find_bid(session: Session, ref: str, actor: Actor) -> shapes.BidRecord:
    """One bid as the views show it, or NotFound (also for another authority's bid)."""
    sponsor_id = session.execute(select(BidRow.sponsor_id).where(BidRow.ref == ref)).scalar()
    scope = scope_of(actor)
    if sponsor_id is None or (scope is not None and sponsor_id != scope):
        raise NotFound(f"no bid {ref!r}", field="ref", item=ref)
    return views.bids(session, refs=[ref])[0]


def _grant_holders(conn: Any, grant_ref_of: Any) -> tuple[int, int | None] | None:
    """The authority holding the grant (``grant_ref_of``: a clause choosing it) and, for
    a partnership, its accountable body; None if there is no such grant."""
    row = conn.execute(
        select(GrantRow.accountable_body_id, Organisation.accountable_body_id)
        .join(Organisation, Organisation.id == GrantRow.accountable_body_id)
        .where(grant_ref_of)
    ).first()
    return None if row is None else (row[0], row[1])


def _answers_for(actor: Actor, holders: tuple[int, int | None] | None) -> bool:
    """Whether the actor may see a grant held by ``holders`` (and its returns): staff,
    the holder's sponsors, and a partnership's accountable body's (the same rule as
    the lists, engine/read/lists.py held_for)."""
    scope = scope_of(actor)
    return holders is not None and (scope is None or scope in holders)


def find_grant(conn: Any, ref: str, actor: Actor, today: Any) -> shapes.Grant:
    """One grant, or NotFound (also for another authority's). A partnership's grant
    is also its accountable body's: the body receives its payments and answers its
    offer letters (docs/grants.md "Accountable bodies")."""
    if not _answers_for(actor, _grant_holders(conn, GrantRow.ref == ref)):
        raise NotFound(f"no grant {ref!r}", field="ref", item=ref)
    return views_money.grants(conn, today, refs=[ref])[0]


def org_name(conn: Any, org_id: int | None) -> str | None:
    if org_id is None:
        return None
    return conn.execute(select(Organisation.name).where(Organisation.id == org_id)).scalar()


def scoped_return(conn: Any, actor: Actor, today: Any, ref: str) -> shapes.ReturnRow:
    """One return the actor may see (a sponsor: their authority's grants' and those of
    the partnerships it is accountable for), read by its ref alone; the same refusal
    for "missing" and "not yours"."""
    of_return = GrantRow.id == select(Return.grant_id).where(Return.ref == ref).scalar_subquery()
    rows = views_returns.returns(conn, today, refs=[ref])
    if not rows or not _answers_for(actor, _grant_holders(conn, of_return)):
        raise NotFound(f"no return {ref!r}", field="ref", item=ref)
    return rows[0]


# ------------------------------------------------------------------ paging

API_PER_PAGE = 100  # rows a collection answers without ?per_page=
API_MAX_PER_PAGE = 500

# the list parameters every collection takes (engine/read/listing.py checks them:
# a bad one is a 400 naming it and the values allowed)
Page = Query(
    None, ge=1, le=MAX_PAGE, description="Page number, from 1 (default 1; past the last: empty)"
)
PerPage = Query(
    None,
    ge=1,
    le=API_MAX_PER_PAGE,
    description=f"Rows a page (default {API_PER_PAGE}, at most {API_MAX_PER_PAGE})",
)
Direction = Query(None, description="asc or desc (default: the sort's own)")
# one line of clean text (quorum_web/inputs.py refuses the rest, naming the parameter)
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
Search = Query(
    None,
    max_length=MAX_SEARCH,
    pattern=ONE_LINE,
    description="Text searched for (case-insensitive) in refs, titles and authority names",
)


def Named(description: str) -> Any:  # noqa: N802 (a parameter's declaration)
    """A filter by a name or ref (exact; at most MAX_SEARCH characters)."""
    return Query(None, max_length=MAX_SEARCH, pattern=ONE_LINE, description=description)


def _choice(values: Any) -> Any:
    return Literal[tuple(values)]


Dir = Literal["asc", "desc"]
BidSort = _choice(lists.sort_keys("bids"))
GrantSort = _choice(lists.sort_keys("grants"))
ReturnSort = _choice(lists.sort_keys("returns"))
DelegatedSort = _choice(lists.sort_keys("delegated"))
ActionSort = _choice(lists.sort_keys("actions"))
AuditSort = _choice(lists.sort_keys("audit"))
GrantState = _choice(GRANT.states)
ReturnState = _choice(RETURN.states)
ReturnShow = _choice(lists.RETURN_SHOWS)
ReturnKind = _choice(KINDS)
DelegatedState = _choice(DELEGATED.states)
ActionState = _choice(ACTION.states)


def _sort(name: str) -> Any:
    keys = ", ".join(lists.sort_keys(name))
    return Query(None, description=f"Sort by one of: {keys}")


def paged(
    request: Request,
    response: Response,
    name: str,
    scope: int | None,
    page: int | None = None,
    per_page: int | None = None,
) -> list[Any]:
    """One page of the named list (engine/read/lists.py) as the body, a JSON
    array as before; the paging in headers: ``X-Total-Count``, ``X-Page``,
    ``X-Per-Page``, ``X-Pages`` and ``Link`` (rel next / prev). ``page``,
    ``per_page``: as FastAPI read them (``5.0`` is the integer 5)."""
    today = _today(request)
    params: dict[str, Any] = dict(request.query_params)
    params.update({k: v for k, v in (("page", page), ("per_page", per_page)) if v is not None})
    lq = lists.query_for(
        name, params, today, per_page=API_PER_PAGE, max_per_page=API_MAX_PER_PAGE
    )
    with Session(_engine(request)) as s:
        found, rows = lists.page_of(s, name, lq, today, scope, past_end=True)
    response.headers["X-Total-Count"] = str(found.total)
    response.headers["X-Page"] = str(found.page)
    response.headers["X-Per-Page"] = str(found.per_page)
    response.headers["X-Pages"] = str(found.pages)
    base = str(request.base_url).rstrip("/")
    links = [f'<{base}{url}>; rel="{rel}"'
             for rel, url in found.api_links(request.url.path).items() if url]
    if links:
        response.headers["Link"] = ", ".join(links)
    return rows


# ------------------------------------------------------------------ who am I


@router.get("/me", response_model=schemas.Me, summary="Who the request is signed in as")
def me(request: Request, actor: Actor = Depends(ANYONE)) -> dict:
    with _engine(request).connect() as conn:
        org = org_name(conn, actor.organisation_id)
    return {
        "name": actor.name,
        "email": actor.email,
        "roles": sorted(actor.roles),
        "organisation": org,
        "via": request.state.signed_in.via,
    }


# ------------------------------------------------------------------ bids

# The response models are the views' own shapes (engine/read/shapes.py, TypedDicts):
# FastAPI validates each answer against its shape once, here at the edge, and
# publishes the shape in the OpenAPI document. A bid row's internal keys (id,
# facts) are not in the Bid shape, so they are dropped, never published.


@router.get("/bids", response_model=list[shapes.Bid], summary="Bids (a sponsor: its own), a page")
def api_bids(
    request: Request,
    response: Response,
    state: BidState | None = None,
    round: str | None = Named("A round's ref"),  # noqa: A002
    authority: str | None = Named("The sponsoring authority's name"),
    q: str | None = Search,
    sort: BidSort | None = _sort("bids"),
    direction: Dir | None = Direction,
    page: int | None = Page,
    per_page: int | None = PerPage,
    actor: Actor = Depends(ANYONE),
) -> list[shapes.BidRecord]:
    return paged(request, response, "bids", scope_of(actor), page, per_page)


@router.get("/bids/{ref}", response_model=shapes.Bid, summary="One bid")
def api_bid(request: Request, ref: str, actor: Actor = Depends(ANYONE)) -> shapes.BidRecord:
    with Session(_engine(request)) as s:
        return find_bid(s, ref, actor)


# ------------------------------------------------------------------ grants


@router.get(
    "/grants", response_model=list[shapes.Grant], summary="Grants (a sponsor: its own), a page"
)
def api_grants(
    request: Request,
    response: Response,
    state: GrantState | None = None,
    pot: str | None = Named("A pot's name"),
    authority: str | None = Named("The accountable body's name"),
    q: str | None = Search,
    sort: GrantSort | None = _sort("grants"),
    direction: Dir | None = Direction,
    page: int | None = Page,
    per_page: int | None = PerPage,
    actor: Actor = Depends(ANYONE),
) -> list[shapes.Grant]:
    return paged(request, response, "grants", scope_of(actor), page, per_page)


@router.get("/grants/{ref}", response_model=shapes.Grant, summary="One grant with its money")
def api_grant(request: Request, ref: str, actor: Actor = Depends(ANYONE)) -> shapes.Grant:
    with _engine(request).connect() as conn:
        return find_grant(conn, ref, actor, _today(request))


# ------------------------------------------------------------------ rounds


@router.get("/rounds", response_model=list[shapes.RoundSummary], summary="Bidding rounds")
def api_rounds(
    request: Request, actor: Actor = Depends(STAFF_ONLY)
) -> list[shapes.RoundSummary]:
    with Session(_engine(request)) as s:
        return views.rounds(s)


@router.get(
    "/rounds/{ref}",
    response_model=shapes.RoundRanking,
    summary="A round's ranked bids, points per criterion and the funding line",
)
def api_round(
    request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)
) -> shapes.RoundRanking:
    with Session(_engine(request)) as s:
        return views.round_ranking(s, ref)


# ------------------------------------------------------------------ meetings


@router.get("/meetings", response_model=list[shapes.Meeting], summary="Board meetings")
def api_meetings(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> list[shapes.Meeting]:
    with Session(_engine(request)) as s:
        return views.meetings(s)


@router.get("/meetings/{ref}", response_model=shapes.Meeting, summary="One meeting")
def api_meeting(request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)) -> shapes.Meeting:
    with Session(_engine(request)) as s:
        for m in views.meetings(s, refs=[ref]):
            return m
    raise NotFound(f"no meeting {ref!r}", field="ref", item=ref)


# ------------------------------------------------------------------ delegated decisions


@router.get(
    "/delegated-decisions",
    response_model=list[shapes.DelegatedDecision],
    summary="Delegated decisions with their signatures",
)
def api_delegated(
    request: Request,
    response: Response,
    state: DelegatedState | None = None,
    pot: str | None = Named("A pot's name"),
    q: str | None = Search,
    sort: DelegatedSort | None = _sort("delegated"),
    direction: Dir | None = Direction,
    page: int | None = Page,
    per_page: int | None = PerPage,
    actor: Actor = Depends(STAFF_ONLY),
) -> list[shapes.DelegatedDecision]:
    return paged(request, response, "delegated", None, page, per_page)


@router.get(
    "/delegated-decisions/{ref}",
    response_model=shapes.DelegatedDecision,
    summary="One delegated decision",
)
def api_delegated_one(
    request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)
) -> shapes.DelegatedDecision:
    with _engine(request).connect() as conn:
        for d in delegated_items(conn, DelegatedDecision.__table__.c.ref == ref):
            return d
    raise NotFound(f"no delegated decision {ref!r}", field="ref", item=ref)


# ------------------------------------------------------------------ returns, pots, audit


@router.get(
    "/returns", response_model=list[shapes.ReturnRow], summary="Returns owed by grants, a page"
)
def api_returns(
    request: Request,
    response: Response,
    show: ReturnShow | None = Query(None, description="late: outstanding past its due date"),
    state: ReturnState | None = None,
    kind: ReturnKind | None = None,
    programme: str | None = Named("A programme's name"),
    authority: str | None = Named("The accountable body's name"),
    q: str | None = Search,
    sort: ReturnSort | None = _sort("returns"),
    direction: Dir | None = Direction,
    page: int | None = Page,
    per_page: int | None = PerPage,
    actor: Actor = Depends(ANYONE),
) -> list[shapes.ReturnRow]:
    return paged(request, response, "returns", scope_of(actor), page, per_page)


@router.get("/returns/{ref}", response_model=shapes.ReturnRow, summary="One return")
def api_return(request: Request, ref: str, actor: Actor = Depends(ANYONE)) -> shapes.ReturnRow:
    ret_t, grant_t = Return.__table__, GrantRow.__table__
    with _engine(request).connect() as conn:
        body = conn.execute(
            select(grant_t.c.accountable_body_id)
            .join(ret_t, ret_t.c.grant_id == grant_t.c.id)
            .where(ret_t.c.ref == ref)
        ).scalar()
        scope = scope_of(actor)
        if body is not None and (scope is None or body == scope):
            for r in views_returns.returns(conn, _today(request), refs=[ref]):
                return r
    raise NotFound(f"no return {ref!r}", field="ref", item=ref)


@router.get("/pots", response_model=list[shapes.Pot], summary="The pot ledger")
def api_pots(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> list[shapes.Pot]:
    with Session(_engine(request)) as s:
        return views.pots(s)


@router.get("/audit/verify", response_model=schemas.AuditCheck, summary="Check the audit chain")
def api_audit_verify(request: Request, actor: Actor = Depends(AUDITORS)) -> dict:
    with Session(_engine(request)) as s:
        r = audit.verify(s)
    return {
        "ok": r.ok,
        "events": r.events,
        "first_bad_seq": r.first_bad_seq,
        "message": r.message(),
    }


@router.get(
    "/audit/events",
    response_model=list[shapes.AuditLine],
    summary="The audit trail's events, the latest first, a page",
)
def api_audit_events(
    request: Request,
    response: Response,
    item: str | None = Named("Only this item's events (its ref)"),
    actor: str | None = Named("Only this person's (their email)"),
    command: str | None = Named("Only this command's"),
    q: str | None = Search,
    sort: AuditSort | None = _sort("audit"),
    direction: Dir | None = Direction,
    page: int | None = Page,
    per_page: int | None = PerPage,
    who: Actor = Depends(AUDITORS),
) -> list[shapes.AuditLine]:
    return paged(request, response, "audit", None, page, per_page)


@router.get(
    "/actions",
    response_model=list[shapes.MeetingAction],
    summary="The meetings' actions, the latest meeting's first, a page",
)
def api_actions(
    request: Request,
    response: Response,
    state: ActionState | None = None,
    meeting: str | None = Named("A meeting's ref"),
    q: str | None = Search,
    sort: ActionSort | None = _sort("actions"),
    direction: Dir | None = Direction,
    page: int | None = Page,
    per_page: int | None = PerPage,
    actor: Actor = Depends(STAFF_ONLY),
) -> list[shapes.MeetingAction]:
    return paged(request, response, "actions", None, page, per_page)


# ------------------------------------------------------------------ commands


@router.get(
    "/commands", response_model=list[schemas.CommandInfo], summary="Every command and its roles"
)
def api_commands(actor: Actor = Depends(ANYONE)) -> list[dict]:
    return [
        {
            "name": name,
            "roles": sorted(spec.roles) if spec.roles is not None else None,
            "summary": spec.summary.strip().splitlines()[0] if spec.summary.strip() else "",
        }
        for name, spec in sorted(REGISTRY.items())
    ]


@router.post(
    "/grants/{ref}/milestones/{seq}/evidence",
    response_model=dict[str, Any],
    summary="Evidence a milestone with files (multipart: summary, files)",
    description=(
        "Uploads the files (at most 10, each within QUORUM_UPLOAD_MAX_MB, of the allowed "
        "types checked against their content) and runs `submit_evidence` with the ids the "
        "server issued for them: the only way an API client names evidence files. The "
        "answer is the command's result plus `files`, those ids. Another authority's grant "
        "is a 404, as a missing one."
    ),
)
def api_evidence(
    request: Request,
    ref: str,
    seq: int = Path(ge=1, le=1000),
    summary: str = Form(default=""),
    files: list[UploadFile] = File(default_factory=list),
    actor: Actor = Depends(EVIDENCE),
) -> dict[str, Any]:
    if request.state.signed_in.via == "session":
        check_csrf(request, request.headers.get(CSRF_HEADER))
    with _engine(request).connect() as conn:  # not theirs: 404, before any file is read
        find_grant(conn, ref, actor, _today(request))
    limit = uploads.max_bytes()
    given = [
        (f.filename or "", f.file.read(limit + 1))
        for f in files[: uploads.MAX_FILES + 1]
        if f.filename
    ]
    result, stored = uploads.evidence_with_files(
        request.app.state.quorum,
        ref,
        seq,
        summary.strip(),
        given,
        actor,
        request.app.state.clock.now().isoformat(),
    )
    return {**result, "files": stored}


_RUN = (
    "The same command handlers as the CLI (`quorum commands` lists them). The body is "
    "the command's arguments; the answer is the handler's result. Send an "
    "`Idempotency-Key` header (a new random value, e.g. a UUID, per action) to make a "
    "retry safe: the same key from the same caller on the same command returns the "
    "first result and does nothing else; with other arguments it is refused (422, "
    "naming the fields that differ); while the first request still runs, a retry waits "
    "for it, then gets its result or 409 `in_progress`. Keys are per caller and expire "
    "(QUORUM_IDEMPOTENCY_KEY_HOURS, 24 by default)."
)


@router.post(
    "/commands/{name}",
    response_model=dict[str, Any],
    summary="Run a command with a JSON object of its arguments",
    description=(
        _RUN + " The body is the named command's schema: each command is published as "
        "its own operation, `POST /api/v1/commands/<name>`, whose request body is that "
        "command's contract (components/schemas); this operation takes any of them."
    ),
)
def api_command(
    request: Request,
    name: CommandName = Path(description="A command: GET /api/v1/commands lists them"),
    args: dict[str, Any] = Body(default_factory=dict),
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", min_length=1, max_length=200
    ),
    actor: Actor = Depends(ANYONE),
) -> dict:
    if request.state.signed_in.via == "session":
        # a browser's cookie is an ambient credential: script calls prove their origin
        check_csrf(request, request.headers.get(CSRF_HEADER))
    refuse_numbers_as_pounds(name, args)  # 1250: pounds or pence? (docs/api.md)
    return request.app.state.quorum.execute(name, args, actor, key=idempotency_key)


# ------------------------------------------------------------------ the published commands


def publish_commands(app: FastAPI) -> None:
    """Publish every command's contract in the app's OpenAPI document: one operation per
    command, ``POST /api/v1/commands/<name>`` (served by the route above, which reads the
    body through the same contract on the command bus), with the contract as its request
    body; ``POST /api/v1/commands/{name}`` takes any of them."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_commands(plain())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def add_commands(doc: dict[str, Any]) -> None:
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    generic_path = f"{router.prefix}/commands/{{name}}"
    generic = doc["paths"][generic_path]["post"]
    refs = []
    for name, spec in sorted(REGISTRY.items()):
        contract = spec.contract
        schema_name = contract.__name__
        if schema_name in components:
            raise ValueError(f"the contract {schema_name} clashes with a schema of the API")
        components[schema_name] = contract.model_json_schema()
        ref = {"$ref": f"#/components/schemas/{schema_name}"}
        refs.append(ref)
        operation = copy.deepcopy(generic)
        operation["parameters"] = [p for p in operation["parameters"] if p["in"] != "path"]
        operation["operationId"] = f"command_{name}"
        operation["summary"] = spec.summary.strip().splitlines()[0] if spec.summary else name
        roles = ", ".join(sorted(spec.roles)) if spec.roles is not None else None
        operation["description"] = (
            f"Runs {name}: {_RUN} Who may: "
            + (roles or "as the item's workflow allows, step by step")
            + "."
        )
        operation["requestBody"] = _body(ref, f"The arguments of {name}.")
        doc["paths"][f"{router.prefix}/commands/{name}"] = {"post": operation}
    generic["requestBody"] = _body(
        {"anyOf": refs}, "The named command's arguments: its schema (see its own operation)."
    )


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    # not required: no body is read as {} (a command with nothing to say, e.g. sweep)
    return {
        "required": False,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
