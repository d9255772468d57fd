"""Server-rendered pages (Jinja2): sign-in, My work, rounds, bids, grants
(meetings, papers, delegated decisions and the dashboard: pages_board.py; a
new bid, evidence upload, returns and recoveries: pages_sponsor.py).

Pages read the views and post their forms to ONE route, ``POST /do/{command}``,
which checks the CSRF token, turns the form's fields into the command's
arguments and runs ``Quorum.execute`` — the same path as the CLI and the API.
A refusal re-renders the page the form came from with the message next to the
form (and the field) it concerns; success redirects back with a note.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader
from sqlalchemy import exists, func, or_, select
from sqlmodel import Session
from starlette.datastructures import UploadFile

from engine.commands.handlers.accounts import MIN_PASSWORD, SESSION_ADMINS
from engine.commands.service import REGISTRY
from engine.domain import words
from engine.domain.actor import Actor
from engine.domain.errors import ConflictError, KeyReused, NotFound, QuorumError, ValidationError
from engine.domain.money import format_pence
from engine.read import lists, rankings, views
from engine.read import offers as views_offers
from engine.read.accounts import second_factor, tokens, web_sessions
from engine.read.agenda import agenda_position
from engine.read.conditions import approval_conditions
from engine.read.evidence import evidence_of
from engine.read.returns import grant_conditions
from engine.read.savings import grant_page_savings
from engine.read.work import my_work
from engine.store import audit
from engine.store.factors import start_enrolment
from engine.store.models import Bid as BidRow
from engine.store.models import Decision, Meeting, Milestone, Round, Score
from engine.store.models import Grant as GrantRow
from engine.store.sessions import EVERYWHERE
from quorum_web import actions, exporting
from quorum_web.api import find_bid, find_grant, scope_of
from quorum_web.auth import (
    ALL_ROLES,
    CSRF_FIELD,
    STAFF,
    SignInRefused,
    check_form_csrf,
    csrf_token,
    require,
    start_session,
)
from quorum_web.conditions_ui import condition_forms
from quorum_web.inputs import DATE_PARTS, date_parts
from rules.scoring import available, rule_set_from_text
from workflows.bid import BID
from workflows.grant import GRANT, MILESTONE
from workflows.round import ROUND

HERE = Path(__file__).parent
STATIC = HERE / "static"
MERMAID = STATIC / "vendor" / "mermaid.min.js"
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
# GOV.UK Frontend's macros (govuk-frontend-jinja, written for the govuk-frontend version
# vendored in static/govuk/): {% from "govuk_frontend_jinja/components/tag/macro.html" ... %}
TEMPLATES.env.loader = ChoiceLoader([
    TEMPLATES.env.loader,
    PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
])
words.install(TEMPLATES.env, gbp=lambda p: "" if p is None else format_pence(p))
TEMPLATES.env.filters["date_parts"] = date_parts
TEMPLATES.env.globals["CSRF_FIELD"] = CSRF_FIELD
# every rendered form carries a fresh idempotency key (hidden "_key"): sent twice (a
# double click, Back then Submit) it takes effect once (docs/security.md "Idempotency")
TEMPLATES.env.globals["new_form_key"] = lambda: f"form-{uuid.uuid4().hex}"

MAX_RULES_UPLOAD = 256 * 1024

router = APIRouter(include_in_schema=False)
ANYONE = require(ALL_ROLES)
STAFF_ONLY = require(STAFF)
AUDITORS = require({"officer", "director", "auditor"})  # as GET /api/v1/audit/verify


# ------------------------------------------------------------------ rendering


def nav_for(actor: Actor | None) -> list[tuple[str, str]]:
    if actor is None:
        return []
    items = [("/", "My work"), ("/bids", "Bids"), ("/grants", "Grants"), ("/returns", "Returns"),
             ("/partnership-allocations", "Allocations")]
    if actor.roles & STAFF:
        items.append(("/rounds", "Rounds"))
        items.append(("/meetings", "Meetings"))
        items.append(("/actions", "Actions"))
        items.append(("/delegated", "Delegated"))
        items.append(("/dashboard", "Dashboard"))
    if actor.roles & {"officer", "director"}:
        items.append(("/programmes", "Programmes"))
        items.append(("/authorities", "Authorities"))
    if actor.roles & {"officer", "director", "chair"}:
        items.append(("/people", "People"))
    if actor.roles & {"officer", "director", "auditor"}:
        items.append(("/audit", "Audit trail"))
    items.append(("/api/v1/docs", "API"))
    items.append(("/account", "Account"))
    return items


# template -> more context for it (quorum_web/pages_setup.py adds its forms to list pages)
CONTEXT_HOOKS: dict[str, Callable[[Request, Actor], dict]] = {}


def render(
    request: Request, template: str, context: dict | None = None, status: int = 200
) -> HTMLResponse:
    who = getattr(request.state, "signed_in", None)
    actor = who.actor if who is not None else None
    ctx = {
        "actor": actor,
        "nav": nav_for(actor),
        "staff": bool(actor and actor.roles & STAFF),
        "path": request.url.path,
        "csrf": csrf_token(request),
        "flash": request.session.pop("flash", None),
        "mermaid_js": MERMAID.is_file(),
        "form_error": getattr(request.state, "form_error", None),  # a re-rendered list page
        "today": request.app.state.clock.today(),
    }
    ctx.update(context or {})
    if template in CONTEXT_HOOKS and actor is not None:  # e.g. the set-up forms of a list page
        ctx.update(CONTEXT_HOOKS[template](request, actor))
    return TEMPLATES.TemplateResponse(request, template, ctx, status_code=status)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "message": message}, status)


def safe_next(value: Any, default: str = "/") -> str:
    """Only a path on this site (no scheme, host or protocol-relative //host)."""
    text = str(value or "")
    if not text.startswith("/") or text.startswith("//") or "\\" in text or "\n" in text:
        return default
    return text


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _history(session: Session, refs: list[str]) -> list[dict]:
    out = []
    for ref in refs:
        for e in audit.history(session, ref):
            before, after = json.loads(e.before), json.loads(e.after)
            changes = [
                {"field": k, "before": before.get(k), "after": after.get(k)}
                for k in sorted(set(before) | set(after))
                if before.get(k) != after.get(k)
            ]
            out.append(
                {
                    "seq": e.seq,
                    "at": e.at,
                    "actor": e.actor,
                    "command": e.command,
                    "reason": e.reason,
                    "changes": changes,
                }
            )
    return sorted(out, key=lambda e: e["seq"])


def workflow_view(wf: Any, state: str) -> dict:
    return {"name": wf.name, "mermaid": wf.mermaid(state), "states": wf.states, "current": state}


# ------------------------------------------------------------------ sign-in


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    if request.app.state.auth.identify(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "email": ""})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: dict = Depends(check_form_csrf)) -> Response:
    email = str(form.get("email") or "")
    target = safe_next(form.get("next"))
    try:
        actor = request.app.state.auth.sign_in(email, str(form.get("password") or ""))
    except SignInRefused as exc:
        return render(
            request,
            "login.html",
            {"next": target, "email": email, "error": exc.message, "error_field": exc.field},
            status=exc.http_status,
        )
    start_session(request, actor)
    request.session["flash"] = f"Signed in as {actor.name}."
    return RedirectResponse(target, status_code=303)


@router.get("/logout", response_class=HTMLResponse)
def logout_page(request: Request) -> Response:
    return render(request, "logout.html")


@router.post("/logout", dependencies=[Depends(check_form_csrf)])
def logout(request: Request) -> Response:
    request.app.state.auth.end_session(request)  # the server-side session ends too
    request.session["flash"] = "Signed out."
    return RedirectResponse("/login", status_code=303)


# ------------------------------------------------------------------ My work


WORK_SHOWN = 25  # items listed per section of My work


def work_for(conn: Any, actor: Actor, today: dt.date, shown: int | None = None,
             only: str | None = None) -> dict:
    return my_work(conn, actor, today, shown=shown, only=only)


@router.get("/", response_class=HTMLResponse)
def my_work_page(request: Request, actor: Actor = Depends(ANYONE)) -> Response:
    with _engine(request).connect() as conn:
        work = work_for(conn, actor, request.app.state.clock.today(), WORK_SHOWN + 1)
    # the oldest of each kind are listed (the counts stay whole): a long list
    # reads no better and renders slower (bench/bench_web.py)
    return render(request, "my_work.html", {"work": work, "work_shown": WORK_SHOWN})


# ------------------------------------------------------------------ rounds


@router.get("/rounds", response_class=HTMLResponse)
def rounds_page(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    with Session(_engine(request)) as s:
        rounds = views.rounds(s)
    return render(request, "rounds.html", {"rounds": rounds})


def rule_set_names() -> list[str]:
    return available()


RANK_PAGE = 100  # ranked bids shown per page of a round
UNRANKED_SHOWN = 100  # bids not in the ranking listed on the round page (the rest on /bids)


def _unranked(bid: Any) -> Any:
    """Bids a ranking leaves out: withdrawn, or without a current score."""
    scored = exists().where(Score.bid_id == bid.id, Score.current.is_(True))
    return or_(bid.state == "withdrawn", ~scored)


def render_round(
    request: Request,
    actor: Actor,
    ref: str,
    *,
    form_error: dict | None = None,
    whatif: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    with Session(_engine(request)) as s:
        rnd = s.execute(select(Round).where(Round.ref == ref)).scalars().first()
        if rnd is None:
            raise NotFound(f"no round {ref!r}", field="round", item=ref)
        kept = rankings.ranking_page(s, ref, request.query_params.get("page"), RANK_PAGE)
        ranking = kept.ranking
        # every bid of the round ranked (one count along ix_bid_round_id): none to
        # look for, and looking reads the whole round (a score checked per bid)
        in_round = s.execute(
            select(func.count()).select_from(BidRow).where(BidRow.round_id == rnd.id)
        ).scalar()
        unscored = [] if in_round == kept.total else s.execute(
            select(BidRow.ref, BidRow.title, BidRow.state)
            .where(BidRow.round_id == rnd.id)
            .where(_unranked(BidRow))
            .order_by(BidRow.id)
            .limit(UNRANKED_SHOWN + 1)
        ).all()
        history = _history(s, [ref])
    shown = ranking["bids"]
    pager = {"page": kept.page, "pages": kept.pages, "size": kept.size, "total": kept.total,
             "line_page": kept.line_page, "line_ref": kept.line_ref}
    avail = ROUND.available(rnd.state, actor.roles)
    forms: list[actions.ActionForm] = []
    if "close" in avail:
        forms.append(
            actions.ActionForm(
                "close",
                "close_round",
                "Close the round to new bids",
                {"round": ref},
                unavailable=avail["close"],
                button="Close the round",
            )
        )
    score_why = avail.get("score", f"the round is {rnd.state}: close it before scoring")
    forms.append(
        actions.ActionForm(
            "score",
            "score_round",
            "Score this round with its rule set",
            {"round": ref},
            unavailable=score_why,
            button="Score this round",
        )
    )
    override = actions.ActionForm(
        "override",
        "override_score",
        "Override a criterion's points",
        {},
        [
            actions.Input(
                "ref",
                "Bid",
                "select",
                True,
                [(b["ref"], f"{b['ref']} {b['title']}") for b in shown],
            )
            if kept.total <= RANK_PAGE
            else actions.Input("ref", "Bid", "text", True, hint="its ref, e.g. B-0001"),
            actions.Input(
                "criterion",
                "Criterion",
                "select",
                True,
                [(c["id"], c["question"] or c["id"]) for c in ranking["criteria"]],
            ),
            actions.Input("points", "Points", "int", True),
            actions.Input("reason", "Reason", "textarea", True),
        ],
        unavailable=None if "officer" in actor.roles else "needs role officer",
    )
    return render(
        request,
        "round.html",
        {
            "round": ranking,
            "shown": shown,
            "pager": pager,
            "round_state": rnd.state,
            "unscored": unscored[:UNRANKED_SHOWN],
            "unscored_more": len(unscored) > UNRANKED_SHOWN,
            "forms": forms,
            "override": override,
            "rule_sets": [n for n in rule_set_names() if n != ranking["rules"]],
            "whatif": whatif,
            "form_error": form_error,
            "history": history,
            "workflow": workflow_view(ROUND, rnd.state),
        },
        status,
    )


@router.get("/rounds/{ref}", response_class=HTMLResponse)
def round_page(
    request: Request,
    ref: str,
    rules: str | None = None,
    format: str | None = None,  # noqa: A002 (the query parameter's name)
    actor: Actor = Depends(STAFF_ONLY),
) -> Response:
    if exporting.wants_export(format):
        with Session(_engine(request)) as s:
            ranking = views.round_ranking(s, ref)
        return exporting.export(ranking["bids"], "round", format, f"round-{ref}")
    whatif, error = None, None
    if rules:
        if rules not in rule_set_names():
            error = _form_error(
                "whatif",
                ValidationError(
                    f"round whatif: rules: no rule set named {rules!r}; choose one of "
                    f"{', '.join(rule_set_names())} or upload a file",
                    field="rules",
                ),
                {"rules": rules},
            )
        else:
            try:
                with Session(_engine(request)) as s:
                    whatif = views.round_whatif(s, ref, rules)
            except QuorumError as exc:
                error = _form_error("whatif", exc, {"rules": rules})
    status = _status(error["exc"]) if error else 200
    return render_round(request, actor, ref, form_error=error, whatif=whatif, status=status)


@router.post("/rounds/{ref}/whatif", response_class=HTMLResponse)
def round_whatif_upload(
    request: Request,
    ref: str,
    actor: Actor = Depends(STAFF_ONLY),
    form: dict = Depends(check_form_csrf),
) -> Response:
    """What-if against an uploaded rule set file (read only: nothing is written)."""
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise ValidationError("round whatif: file: choose a rule set file (YAML)", field="file")
        data = upload.file.read(MAX_RULES_UPLOAD + 1)  # a thread-pool thread: may block
        if len(data) > MAX_RULES_UPLOAD:
            raise ValidationError(
                f"round whatif: file: larger than {MAX_RULES_UPLOAD // 1024} KB", field="file"
            )
        # parsed from the upload, evaluated and released: no file, no cache entry,
        # nothing registered with durable_rules (rules.scoring.rule_set_from_text)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"round whatif: file: {upload.filename} is not UTF-8 text ({exc.reason})",
                field="file",
            ) from None
        other = rule_set_from_text(text, upload.filename)
        with Session(_engine(request)) as s:
            whatif = views.round_whatif(s, ref, other)
    except QuorumError as exc:
        error = _form_error("whatif", exc, {})
        return render_round(request, actor, ref, form_error=error, status=_status(exc))
    whatif["uploaded"] = upload.filename
    return render_round(request, actor, ref, whatif=whatif)


# ------------------------------------------------------------------ bids


@router.get("/bids", response_class=HTMLResponse)
def bids_page(
    request: Request,
    format: str | None = None,  # noqa: A002 (the query parameter's name)
    actor: Actor = Depends(ANYONE),
) -> Response:
    return list_page(request, actor, "bids", "bids.html", format)


def list_page(
    request: Request, actor: Actor, name: str, template: str, fmt: str | None,
    scope: int | None | str = "actor", *, extra: dict | None = None, status: int = 200,
) -> Response:
    """A list page (engine/read/lists.py): one page of rows, paged, sorted,
    filtered and searched in SQL, with its filters' values; ``?format=csv|xlsx``
    streams every row the filters match. A bad parameter is a 400 naming it."""
    today = request.app.state.clock.today()
    lq = lists.query_for(name, request.query_params, today)
    where = scope_of(actor) if scope == "actor" else scope
    assert where is None or isinstance(where, int)
    if exporting.wants_export(fmt):
        assert fmt is not None
        return exporting.stream_list(_engine(request), name, lq, today, fmt, where)
    with Session(_engine(request)) as s:
        page, rows = lists.page_of(s, name, lq, today, where)
        filters = lists.filter_options(s, name, today, where)
        paper = lists.paper_for(s, name, lq, today)
    return render(
        request,
        template,
        {"rows": rows, "page": page, "filters": filters, "paper": paper,
         "list_path": request.url.path, **(extra or {})},
        status,
    )


@router.get("/actions", response_class=HTMLResponse)
def actions_page(
    request: Request,
    format: str | None = None,  # noqa: A002 (the query parameter's name)
    actor: Actor = Depends(STAFF_ONLY),
) -> Response:
    """The meetings' action register, every meeting's."""
    return list_page(request, actor, "actions", "actions.html", format, None)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    format: str | None = None,  # noqa: A002 (the query parameter's name)
    actor: Actor = Depends(AUDITORS),
) -> Response:
    """The audit trail: every recorded change, the latest first."""
    return list_page(request, actor, "audit", "audit.html", format, None)


def render_bid(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None, status: int = 200
) -> HTMLResponse:
    with Session(_engine(request)) as s:
        bid = find_bid(s, ref, actor)
        grant = s.execute(select(GrantRow.ref).where(GrantRow.bid_id == bid["id"])).scalar()
        meetings = [  # with the bid's place on each agenda: it is decided on its item
            {"ref": m.ref, "title": m.title, "date": m.held_on.isoformat(), "state": m.state,
             "item": agenda_position(s, m, bid["ref"])}
            for m in s.execute(
                select(Meeting).where(Meeting.state == "scheduled").order_by(Meeting.held_on)
            ).scalars()
        ]
        decisions = (
            s.execute(select(Decision).where(Decision.item_ref == ref).order_by(Decision.id))
            .scalars()
            .all()
        )
        history = _history(s, [ref])
        pots = views.pots(s)  # the delegated request's pot select, with balances
    return render(
        request,
        "bid.html",
        {
            "bid": bid,
            "grant": grant,
            "decisions": decisions,
            "forms": actions.bid_actions(bid, actor, meetings, pots),
            "board_decision": actions.board_items(bid, actor, meetings),
            "workflow": workflow_view(BID, bid["state"]),
            "history": history,
            "form_error": form_error,
        },
        status,
    )


@router.get("/bids/{ref}", response_class=HTMLResponse)
def bid_page(request: Request, ref: str, actor: Actor = Depends(ANYONE)) -> Response:
    return render_bid(request, actor, ref)


# ------------------------------------------------------------------ grants


@router.get("/grants", response_class=HTMLResponse)
def grants_page(
    request: Request,
    format: str | None = None,  # noqa: A002 (the query parameter's name)
    actor: Actor = Depends(ANYONE),
) -> Response:
    return list_page(request, actor, "grants", "grants.html", format)


def render_grant(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None, status: int = 200
) -> HTMLResponse:
    with _engine(request).connect() as conn:
        grant = find_grant(conn, ref, actor, request.app.state.clock.today())
        verified_by = dict(
            conn.execute(
                select(Milestone.seq, Milestone.verified_by_id)
                .join(GrantRow, GrantRow.id == Milestone.grant_id)
                .where(GrantRow.ref == ref)
            ).all()
        )
        otp = second_factor(conn, actor.person_id) is not None
        evidence = evidence_of(conn, ref)
        grant_id = conn.execute(select(GrantRow.id).where(GrantRow.ref == ref)).scalar_one()
        savings = grant_page_savings(conn, grant_id, request.app.state.clock.today())
        conditions = grant_conditions(conn, ref)  # set on accepting its returns (issue 13)
        offers = views_offers.letters(conn, ref)  # issue 16
        approval = approval_conditions(conn, grant_id)  # set with the Board's approval
    with Session(_engine(request)) as s:
        history = _history(s, [ref])
    milestones = [
        dict(
            m,
            forms=actions.milestone_actions(
                grant, m, actor, verified_by.get(m["seq"]) == actor.person_id, otp=otp
            ),
        )
        for m in grant["milestones"]
    ]
    return render(
        request,
        "grant.html",
        {
            "grant": grant,
            "milestones": milestones,
            "forms": actions.grant_actions(grant, actor),
            "workflow": workflow_view(GRANT, grant["state"]),
            "milestone_workflow": workflow_view(MILESTONE, ""),
            "evidence": evidence,
            "history": history,
            "form_error": form_error,
            "savings": savings,
            "return_conditions": conditions,
            "offers": offers,
            "offer_forms": actions.offer_actions(offers, actor),
            "approval_conditions": approval,
            "condition_forms": condition_forms(ref, grant["state"], approval, actor),
        },
        status,
    )


@router.get("/grants/{ref}", response_class=HTMLResponse)
def grant_page(request: Request, ref: str, actor: Actor = Depends(ANYONE)) -> Response:
    return render_grant(request, actor, ref)


# ------------------------------------------------------------------ account


def render_account(
    request: Request,
    actor: Actor,
    ref: str = "",
    *,
    form_error: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    auth = request.app.state.auth
    with _engine(request).connect() as conn:
        mine = tokens(conn, actor.email)
        live = web_sessions(
            conn, actor.person_id, request.app.state.clock.now(), auth.limits()  # type: ignore[arg-type]
        )
        factor = second_factor(conn, actor.person_id, actor.email)
    form = actions.ActionForm(
        "password",
        "set_password",
        "Change your password",
        {},
        [
            actions.Input("current_password", "Current password", "password", True),
            actions.Input(
                "password",
                "New password",
                "password",
                True,
                hint=f"at least {MIN_PASSWORD} characters",
            ),
        ],
    )
    session_forms = [
        actions.ActionForm(
            "everywhere",
            "sign_out_everywhere",
            "Sign out everywhere",
            {},
            button="Sign out everywhere",
            style="danger",
        )
    ]
    if actor.roles & SESSION_ADMINS:
        session_forms.append(
            actions.ActionForm(
                "everywhere-other",
                "sign_out_everywhere",
                "Sign someone else out everywhere",
                {},
                [actions.Input("email", "Their email", required=True)],
                button="Sign them out everywhere",
                style="danger",
            )
        )
    factor_forms = []
    if factor is not None and factor["confirmed_at"] is None:
        factor_forms.append(
            actions.ActionForm(
                "confirm-2fa",
                "confirm_second_factor",
                "Confirm your second factor",
                {},
                [actions.Input("code", "Code from your app", required=True, hint="six digits")],
                button="Confirm",
            )
        )
    elif factor is not None:
        factor_forms.append(
            actions.ActionForm(
                "remove-2fa",
                "remove_second_factor",
                "Remove your second factor",
                {},
                [actions.Input("otp", "A current code", required=True)],
                button="Remove",
                style="danger",
            )
        )
    return render(
        request,
        "account.html",
        {
            "form": form,
            "tokens": mine,
            "form_error": form_error,
            "sessions": live,
            "idle_minutes": int(auth.limits().idle.total_seconds() // 60),
            "max_hours": int(auth.limits().absolute.total_seconds() // 3600),
            "session_forms": session_forms,
            "factor": factor,
            "factor_forms": factor_forms,
        },
        status,
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, actor: Actor = Depends(ANYONE)) -> Response:
    return render_account(request, actor)


@router.post("/account/second-factor", response_class=HTMLResponse)
def start_second_factor(
    request: Request, actor: Actor = Depends(ANYONE), form: dict = Depends(check_form_csrf)
) -> Response:
    """Start setting up a second factor: a new secret, shown on the account page
    until the person confirms it with a code (``confirm_second_factor``)."""
    try:
        start_enrolment(_engine(request), actor.person_id, request.app.state.clock.now())  # type: ignore[arg-type]
    except QuorumError as exc:
        error = _form_error("start-2fa", exc, {})
        return render_account(request, actor, form_error=error, status=_status(exc))
    request.session["flash"] = (
        "Add the key below to your authenticator app, then confirm it with a code."
    )
    return RedirectResponse("/account#second-factor", status_code=303)


# ------------------------------------------------------------------ the one form handler

PageRenderer = Callable[..., HTMLResponse]
PAGES: list[tuple[re.Pattern[str], PageRenderer]] = [
    (re.compile(r"^/bids/(?P<ref>[^/?#]+)$"), render_bid),
    (re.compile(r"^/grants/(?P<ref>[^/?#]+)$"), render_grant),
    (re.compile(r"^/rounds/(?P<ref>[^/?#]+)$"), render_round),
    (re.compile(r"^/account(?P<ref>)$"), render_account),
]
SKIP_FIELDS = {CSRF_FIELD, "_next", "_form", "_done", "_key"}


def form_args(form: Any) -> dict:
    """Form fields -> command arguments: empty fields left out (the command's
    defaults apply), ``a.b`` fields gathered into a mapping ``a``, a date's
    ``x-day``, ``x-month`` and ``x-year`` joined as ``x`` = "day/month/year"
    (left out if all three are empty; the command names a missing part)."""
    args: dict[str, Any] = {}
    dates: dict[str, dict[str, str]] = {}
    for name, value in form.multi_items():
        if name in SKIP_FIELDS or isinstance(value, UploadFile):
            continue
        value = str(value).strip()
        base, _, part = name.rpartition("-")
        if base and part in DATE_PARTS:
            dates.setdefault(base, {})[part] = value
            continue
        if value == "":
            continue
        if "." in name:
            outer, inner = name.split(".", 1)
            nested = args.setdefault(outer, {})
            if isinstance(nested, dict):
                nested[inner] = value
        elif name in args and isinstance(args[name], str):
            args[name] = f"{args[name]}; {value}"  # repeated (checkboxes): a list
        else:
            args[name] = value
    for base, got in dates.items():
        if any(got.values()):
            args[base] = "/".join(got.get(p, "") for p in DATE_PARTS)
    return args


def _status(exc: QuorumError) -> int:
    return 400 if exc.code == "invalid" else exc.http_status


def _form_error(form_id: str, exc: QuorumError, values: dict) -> dict:
    return actions.form_error(form_id, exc, values)  # in plain words, with its anchor


def _summary(command: str, result: Any) -> str:
    if not isinstance(result, dict):
        return f"{command}: done."
    parts = [
        f"{k.removesuffix('_pence').replace('_', ' ')} "
        f"{format_pence(v) if k.endswith('_pence') and isinstance(v, int) else v}"
        for k, v in result.items()
        if isinstance(v, str | int) and not isinstance(v, bool) and k != "version"
    ]
    return f"{command.replace('_', ' ')}: done" + (f" — {', '.join(parts)}"[:300] if parts else "")


def execute_form(request: Request, command: str, args: dict, actor: Actor, form: Any) -> Any:
    """Run a form's command once under the form's idempotency key (hidden ``_key``)."""
    key = str(form.get("_key") or "").strip() or None
    try:
        return request.app.state.quorum.execute(command, args, actor, key=key)
    except KeyReused:
        raise ConflictError(
            "this form was already sent, with other values: reload the page to send it again",
            field="_key",
        ) from None


@router.post("/do/{command}", response_class=HTMLResponse)
def do_command(
    request: Request,
    command: str,
    actor: Actor = Depends(ANYONE),
    form: dict = Depends(check_form_csrf),
) -> Response:
    target = safe_next(form.get("_next"))
    form_id = str(form.get("_form") or command)
    args = form_args(form)
    try:
        if command not in REGISTRY:
            raise NotFound(f"unknown command {command!r}", field="command")
        result = execute_form(request, command, args, actor, form)
    except QuorumError as exc:
        error = _form_error(form_id, exc, args)
        path = target.split("?", 1)[0].split("#", 1)[0]
        for pattern, renderer in PAGES:
            match = pattern.match(path)
            if match:
                try:
                    return renderer(
                        request, actor, match["ref"], form_error=error, status=_status(exc)
                    )
                except QuorumError:
                    break  # the page itself is gone or not theirs: plain error page
        return error_page(request, _status(exc), "Not done", error["message"])
    own = str(args.get("email") or actor.email).lower() == (actor.email or "").lower()
    if command == "set_password" and own:
        request.app.state.auth.refresh_session(request, actor)
    if command == "sign_out_everywhere" and own:
        request.app.state.auth.end_session(request, EVERYWHERE)
        request.session["flash"] = "Signed out everywhere: sign in again."
        return RedirectResponse("/login", status_code=303)
    request.session["flash"] = _summary(command, result)
    # _done: where to go on success when it is not the page the form came from
    return RedirectResponse(safe_next(form.get("_done"), target), status_code=303)
