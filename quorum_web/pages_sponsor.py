"""Sponsor pages: submit a bid (with the savings parser's reading shown back
first), upload milestone evidence (quorum_web/uploads.py keeps the files
safe), returns (list, one return, submit; officers accept or query), a
grant's offer letters as issued (HTML and PDF; the Accept / Decline forms are
on the grant page, quorum_web/actions.py ``offer_actions``).

The bid form posts to ``/do/submit_bid`` like every other form; the preview
(``POST /bids/preview``) only reads the savings text back and saves nothing.
The evidence upload has its own route because it carries files: it checks
every file before storing any, then runs ``submit_evidence`` with the stored
names, and removes the files again if the command is refused.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import Session
from starlette.datastructures import UploadFile

from engine.domain.actor import Actor
from engine.domain.errors import NotFound, QuorumError
from engine.domain.savings import parse_savings
from engine.domain.savings_views import PER_PERIOD, TO_DATE
from engine.domain.words import RAG_WORDS
from engine.read import views
from engine.read.evidence import file_of
from engine.read.offers import letter_html
from engine.read.returns import return_detail
from engine.store.files import CONTENT_TYPES, path_of
from engine.store.models import Grant, Milestone, Organisation, Pot, Programme, Recovery
from notifications import letters
from notifications.papers import PdfUnavailable
from quorum_web import pages, uploads
from quorum_web.actions import ActionForm, Input
from quorum_web.api import find_grant, org_name, scope_of, scoped_return
from quorum_web.auth import ALL_ROLES, check_form_csrf, require
from rules.returns import load_return_rules
from workflows.grant import EVIDENCE_FROM
from workflows.recovery import RECOVERY
from workflows.returns import RETURN

router = APIRouter(include_in_schema=False)
BIDDERS = require({"sponsor", "officer"})
EVIDENCE = require(EVIDENCE_FROM - {"system"})  # and then the command's scope check
ANYONE = require(ALL_ROLES)
TRISTATE = [("yes", "Yes"), ("no", "No"), ("not_stated", "Not stated")]


def _engine(request: Request) -> Any:
    return request.app.state.engine


# ------------------------------------------------------------------ submit a bid


def bid_form(request: Request, actor: Actor) -> ActionForm:
    with Session(_engine(request)) as s:
        rounds = [r for r in views.rounds(s) if r["state"] == "open"]
        pots = views.pots(s)
        orgs = [o for (o,) in s.execute(select(Organisation.name).order_by(Organisation.name))]
    scope = scope_of(actor)
    hidden: dict[str, str] = {}
    inputs = [Input("title", "Title", required=True)]
    if scope is None:
        inputs.append(
            Input("sponsor", "Sponsoring authority", "select", True, [(o, o) for o in orgs])
        )
    else:
        with _engine(request).connect() as conn:
            hidden["sponsor"] = org_name(conn, scope) or ""
    inputs += [
        Input("grant", "Grant requested (£)", "money", True),
        Input(
            "savings",
            "Savings, as you would write them",
            hint="e.g. 50,000 per annum; 2.1m over 5 years; 20-30k a year",
        ),
        Input("partnership", "Partnership with other councils?", "select", False, TRISTATE),
        Input("partners", "Partner authorities", hint="separate with ;"),
        Input("builds_on_proven", "Builds on proven work?", "select", False, TRISTATE),
    ]
    # the bid needs a pot to be scored and to reach an agenda: an open round's pot
    # (the round names one), or, with no round open, a pot chosen here
    if rounds:
        inputs.append(Input(
            "round",
            "Round",
            "select",
            True,
            [(r["ref"], f"{r['ref']} {r['name']} (closes {r['closes_on']}; {r['pot']} pot)")
             for r in rounds],
        ))
    else:
        inputs.append(Input(
            "pot", "Pot", "select", True, [(p["name"], f"{p['name']} ({p['programme']})")
                                           for p in pots],
            hint="no bidding round is open: the bid goes to the Board outside a round"))
    return ActionForm("submit_bid", "submit_bid", "Submit the bid", hidden, inputs)


def render_new_bid(
    request: Request,
    actor: Actor,
    ref: str = "",
    *,
    form_error: dict | None = None,
    status: int = 200,
    values: dict | None = None,
    reading: Any = None,
) -> HTMLResponse:
    form = bid_form(request, actor)
    no_round = not any(inp.name == "round" for inp in form.inputs)
    if values:
        for inp in form.inputs:
            inp.value = str(values.get(inp.name, ""))
    return pages.render(
        request,
        "bid_new.html",
        {"form": form, "reading": reading, "form_error": form_error, "no_round": no_round},
        status,
    )


@router.get("/bids/new", response_class=HTMLResponse)
def new_bid_page(request: Request, actor: Actor = Depends(BIDDERS)) -> Response:
    return render_new_bid(request, actor)


@router.post("/bids/preview", response_class=HTMLResponse)
def preview_bid(
    request: Request, actor: Actor = Depends(BIDDERS), form: dict = Depends(check_form_csrf)
) -> Response:
    """Show the savings parser's reading of the text; nothing is saved."""
    values = pages.form_args(form)
    reading = parse_savings(values.get("savings"))
    return render_new_bid(request, actor, values=values, reading=reading)


# ------------------------------------------------------------------ evidence upload


@router.post("/grants/{ref}/milestones/{seq}/evidence", response_class=HTMLResponse)
def upload_evidence(
    request: Request,
    ref: str,
    seq: int,
    actor: Actor = Depends(EVIDENCE),
    form: dict = Depends(check_form_csrf),
) -> Response:
    form_id = f"evidence-{seq}"
    summary = str(form.get("summary") or "").strip()
    values = {"summary": summary}
    try:
        with _engine(request).connect() as conn:  # not theirs: 404, before any file is read
            find_grant(conn, ref, actor, request.app.state.clock.today())
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        limit = uploads.max_bytes()
        given = [(f.filename or "", f.file.read(limit + 1)) for f in files[: uploads.MAX_FILES + 1]]
        result, stored = uploads.evidence_with_files(
            request.app.state.quorum,
            ref,
            seq,
            summary,
            given,
            actor,
            request.app.state.clock.now().isoformat(),
        )
    except QuorumError as exc:
        if isinstance(exc, NotFound) and exc.item == ref:
            raise
        error = pages._form_error(form_id, exc, values)
        return pages.render_grant(request, actor, ref, form_error=error, status=pages._status(exc))
    request.session["flash"] = pages._summary("submit_evidence", result) + (
        f" ({len(stored)} file{'s' if len(stored) != 1 else ''} stored)" if stored else ""
    )
    return RedirectResponse(f"/grants/{ref}#milestone-{seq}", status_code=303)


@router.get("/grants/{ref}/evidence/{file_id:path}")
def evidence_file(
    request: Request, ref: str, file_id: str, actor: Actor = Depends(ANYONE)
) -> Response:
    """An evidence file of one of the grant's submissions, to whoever may see the grant
    (a sponsor: its own authority's grants only; anything else is the same 404 as a
    file that does not exist). Served as the type its checked extension says, never
    as uploaded; a PDF or an image opens in the browser in a sandbox, the rest download."""
    with _engine(request).connect() as conn:
        find_grant(conn, ref, actor, request.app.state.clock.today())
        found = file_of(conn, ref, file_id)
    if found is None or not path_of(file_id).is_file():
        raise NotFound(f"no evidence file {file_id!r} for grant {ref}", field="file", item=ref)
    ext = file_id.rsplit(".", 1)[-1]
    return FileResponse(
        path_of(file_id),
        media_type=CONTENT_TYPES[ext],
        filename=found["name"],
        content_disposition_type="inline" if found["opens_inline"] else "attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )


# ------------------------------------------------------------------ offer letters (issue 16)

# the letter is Quorum's own rendering (autoescaped), served as stored: no scripts, no fetches
LETTER_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _letter(request: Request, ref: str, offer: str, actor: Actor) -> str:
    """The letter as issued, to whoever may see the grant; another authority's grant
    and a letter that does not exist are the same 404."""
    with _engine(request).connect() as conn:
        find_grant(conn, ref, actor, request.app.state.clock.today())
        html = letter_html(conn, ref, offer)
    if html is None:
        raise NotFound(f"no offer letter {offer!r} for grant {ref}", field="offer", item=ref)
    return html


@router.get("/grants/{ref}/offers/{offer}", response_class=HTMLResponse)
def offer_letter(request: Request, ref: str, offer: str, actor: Actor = Depends(ANYONE)
                 ) -> Response:
    return HTMLResponse(_letter(request, ref, offer, actor), headers={
        "Content-Security-Policy": LETTER_CSP, "Cache-Control": "private, no-store"})


@router.get("/grants/{ref}/offers/{offer}/pdf")
def offer_letter_pdf(request: Request, ref: str, offer: str, actor: Actor = Depends(ANYONE)
                     ) -> Response:
    html = _letter(request, ref, offer, actor)
    try:
        data = letters.render_pdf(html)
    except PdfUnavailable as exc:
        return pages.error_page(request, 503, "PDF not available", exc.message)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{offer.upper()}.pdf"',
        "Cache-Control": "private, no-store"})


# ------------------------------------------------------------------ returns

@router.get("/returns", response_class=HTMLResponse)
def returns_page(
    request: Request,
    format: str | None = None,  # noqa: A002 (the query parameter's name)
    actor: Actor = Depends(ANYONE),
) -> Response:
    return pages.list_page(request, actor, "returns", "returns.html", format)


PROGRESS_FIELDS = ("line", "rag", "narrative")
BLANK_LINES = 2  # empty progress lines offered after the milestones (or the last version's)
MAX_LINES = 40


def _progress_inputs(lines: list[dict]) -> list[Input]:
    """One line per milestone or outcome (prefilled), then a few empty ones."""
    inputs = []
    rags = list(RAG_WORDS.items())
    for i, x in enumerate([*lines, *({} for _ in range(BLANK_LINES))], start=1):
        inputs += [
            Input(f"progress[{i}].line", f"Milestone or outcome {i}", "text",
                  value=x.get("line", "")),
            Input(f"progress[{i}].rag", "Status", "select", options=rags, value=x.get("rag", "")),
            Input(f"progress[{i}].narrative", "Narrative", "textarea",
                  value=x.get("narrative", "")),
        ]  # fmt: skip
    return inputs


def return_forms(
    ret: dict,
    actor: Actor,
    reading: str = PER_PERIOD,
    progress: list[dict] | None = None,
) -> list[ActionForm]:
    """``progress``: the lines to offer when the return reports progress (None: it
    does not): the last version's, else one per milestone of the grant."""
    avail = RETURN.available(ret["state"], actor.roles)
    forms = []
    if "submit" in avail:
        inputs = []
        if ret["return_kind"] == "savings":
            inputs = [
                Input(
                    "savings_delivered",
                    "Savings delivered to date (£)"
                    if reading == TO_DATE
                    else "Savings delivered in this period (£)",
                    "money",
                    True,
                ),
                Input("savings_anticipated", "Savings anticipated (£)", "money", True),
            ]
        if progress is not None:  # issue 13 item 6: progress, spend, issues, risks
            inputs += [
                *_progress_inputs(progress),
                Input("spend", "Spend to date (£)", "money"),
                Input("issues", "Issues", "textarea"),
                Input("risks", "Risks", "textarea"),
            ]
        forms.append(
            ActionForm(
                "submit",
                "submit_return",
                "Send in this return" if ret["state"] == "due" else "Send it in again, corrected",
                {
                    "grant": ret["grant"],
                    "kind": ret["return_kind"],
                    "period_end": ret["period_end"],
                },
                inputs,
                unavailable=avail["submit"],
                post_to=f"/returns/{ret['ref']}/send" if progress is not None else "",
            )
        )
    if "accept" in avail:
        forms.append(
            ActionForm(
                "accept",
                "accept_return",
                "Accept the return",
                {"return": ret["ref"]},
                unavailable=avail["accept"],
                button="Accept",
            )
        )
        forms.append(
            ActionForm(
                "accept_with_conditions",
                "accept_return_with_conditions",
                "Accept it with conditions",
                {"return": ret["ref"]},
                [Input("conditions", "Conditions (shown on the return and the grant)",
                       "textarea", True)],
                unavailable=avail["accept_with_conditions"],
                button="Accept with conditions",
            )
        )
        forms.append(
            ActionForm(
                "send_back",
                "send_back_return",
                "Needs revision: send it back to the sponsor",
                {"return": ret["ref"]},
                [Input("missing", "What is missing", "textarea", True),
                 Input("due", "Due again by", "date", True,
                       hint="the reminders ladder chases it again to this date")],
                unavailable=avail["send_back"],
                button="Send back",
            )
        )
        forms.append(
            ActionForm(
                "query",
                "query_return",
                "Query it back to the sponsor",
                {"return": ret["ref"]},
                [Input("reason", "Question", "textarea", True)],
                unavailable=avail["query"],
            )
        )
    return forms


def render_return(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None, status: int = 200
) -> HTMLResponse:
    with _engine(request).connect() as conn:
        ret = scoped_return(conn, actor, request.app.state.clock.today(), ref)
        # how the schedule in force asks for the figure (issue 13)
        programme = conn.execute(
            select(Programme.name)
            .join(Pot, Pot.programme_id == Programme.id)
            .join(Grant, Grant.pot_id == Pot.id)
            .where(Grant.ref == ret["grant"])
        ).scalar() or ""
        rules = load_return_rules()
        reading = rules.reading_for(programme, ret["grant"], "savings")
        detail = return_detail(conn, ref)
        progress = None
        if rules.progress_for(programme, ret["grant"], ret["return_kind"]):
            progress = (detail or {}).get("progress") or [
                {"line": outcome} for outcome in conn.execute(
                    select(Milestone.outcome).join(Grant, Grant.id == Milestone.grant_id)
                    .where(Grant.ref == ret["grant"]).order_by(Milestone.seq)).scalars()
            ]  # fmt: skip
    with Session(_engine(request)) as s:
        history = pages._history(s, [ref])
    return pages.render(
        request,
        "return.html",
        {
            "ret": ret,
            "detail": detail,
            "forms": return_forms(ret, actor, reading, progress),
            "history": history,
            "workflow": pages.workflow_view(RETURN, ret["state"]),
            "form_error": form_error,
        },
        status,
    )


@router.get("/returns/{ref}", response_class=HTMLResponse)
def return_page(request: Request, ref: str, actor: Actor = Depends(ANYONE)) -> Response:
    return render_return(request, actor, ref)


@router.post("/returns/{ref}/send", response_class=HTMLResponse)
def send_return(
    request: Request, ref: str, actor: Actor = Depends(BIDDERS),
    form: Any = Depends(check_form_csrf),
) -> Response:
    """The return form with progress lines (issue 13 item 6): its numbered fields
    (``progress[2].rag``) become submit_return's list of lines; blank lines are left
    out, and a refusal names the line as the form numbered it."""
    values = {k: str(v).strip() for k, v in form.multi_items()
              if k not in pages.SKIP_FIELDS and not isinstance(v, UploadFile)}  # fmt: skip
    given: list[int] = []  # the form's line numbers, in the order sent
    lines = []
    for i in range(1, MAX_LINES + 1):
        line = {k: values.get(f"progress[{i}].{k}", "") for k in PROGRESS_FIELDS}
        if any(line.values()):
            given.append(i)
            lines.append({k: v for k, v in line.items() if v})
    try:
        with _engine(request).connect() as conn:
            ret = scoped_return(conn, actor, request.app.state.clock.today(), ref)
        args: dict[str, Any] = {"grant": ret["grant"], "kind": ret["return_kind"],
                                "period_end": ret["period_end"], "progress": lines}  # fmt: skip
        for name in ("savings_delivered", "savings_anticipated", "spend", "issues", "risks",
                     "version"):  # fmt: skip
            if values.get(name):
                args[name] = values[name]
        key = str(form.get("_key") or "").strip() or None
        result = request.app.state.quorum.execute("submit_return", args, actor, key=key)
    except QuorumError as exc:
        if isinstance(exc, NotFound) and exc.item == ref:
            raise
        field = exc.field or ""
        match = re.fullmatch(r"progress\[(\d+)\](.*)", field)
        if match and 0 < int(match[1]) <= len(given):  # as the form numbered it
            form_line = given[int(match[1]) - 1]
            exc.field = f"progress[{form_line}]{match[2]}"
            exc.message = exc.message.replace(f"progress[{match[1]}]", f"progress[{form_line}]")
        error = pages._form_error("submit", exc, values)
        return render_return(request, actor, ref, form_error=error, status=pages._status(exc))
    request.session["flash"] = pages._summary("submit_return", result)
    return RedirectResponse(f"/returns/{ref}", status_code=303)


pages.PAGES[:0] = [(re.compile(r"^/bids/new(?P<ref>)$"), render_new_bid)]
pages.PAGES.append((re.compile(r"^/returns/(?P<ref>[^/?#]+)$"), render_return))


# ------------------------------------------------------------------ recoveries


def recovery_forms(recovery: dict, actor: Actor) -> list[ActionForm]:
    """Record money received (officer, finance) and write off the rest
    (director, chair), as the recovery's workflow allows now."""
    avail = RECOVERY.available(recovery["state"], actor.roles)
    forms = []
    if "recover_part" in avail:
        forms.append(
            ActionForm(
                "receive",
                "record_recovery",
                "Record money received",
                {"recovery": recovery["ref"]},
                [
                    Input("amount", "Amount received (£)", "money", True),
                    Input("received_on", "Received on (default today)", "date"),
                ],
                unavailable=avail["recover_part"],
            )
        )
    if "write_off" in avail:
        forms.append(
            ActionForm(
                "write-off",
                "write_off",
                "Write off what is outstanding",
                {"recovery": recovery["ref"]},
                [
                    Input(
                        "approved_by",
                        "Approved by (who, or which meeting and minute)",
                        required=True,
                    ),
                    Input("reason", "Reason", "textarea", True),
                ],
                unavailable=avail["write_off"],
                style="danger",
            )
        )
    return forms


def render_recovery(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None, status: int = 200
) -> HTMLResponse:
    """A refund demand: what was demanded, why, on whose authority, what has
    come back or been written off (a sponsor: only its own authority's)."""
    with _engine(request).connect() as conn:
        grant_ref = conn.execute(
            select(Grant.ref)
            .join(Recovery, Recovery.grant_id == Grant.id)
            .where(Recovery.ref == ref)
        ).scalar()
        if grant_ref is None:
            raise NotFound(f"no recovery {ref!r}", field="ref", item=ref)
        try:
            grant = find_grant(conn, grant_ref, actor, request.app.state.clock.today())
        except NotFound:
            raise NotFound(f"no recovery {ref!r}", field="ref", item=ref) from None
    recovery = next(r for r in grant["recoveries"] if r["ref"] == ref)
    with Session(_engine(request)) as s:
        history = pages._history(s, [ref])
    return pages.render(
        request,
        "recovery.html",
        {
            "r": recovery,
            "grant": grant,
            "history": history,
            "forms": recovery_forms(recovery, actor),
            "form_error": form_error,
        },
        status,
    )


@router.get("/recoveries/{ref}", response_class=HTMLResponse)
def recovery_page(request: Request, ref: str, actor: Actor = Depends(ANYONE)) -> Response:
    return render_recovery(request, actor, ref)


pages.PAGES.append((re.compile(r"^/recoveries/(?P<ref>[^/?#]+)$"), render_recovery))
