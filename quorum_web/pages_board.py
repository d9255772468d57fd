"""Board pages: meetings (agenda, attendance, interests, decisions, minutes,
actions), board papers as HTML and PDF, delegated decisions and the signed
email link a Chair or Vice Chair signs from.

Like quorum_web/pages.py these pages read views and post their forms to
``POST /do/{command}``; the one exception is the signed link's own POST, which
also consumes the link (see :func:`sign_by_link`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import Session

from engine.domain.actor import Actor
from engine.domain.errors import NotFound, QuorumError, ValidationError
from engine.domain.words import SIGNATURE_WORDS
from engine.read import accounts, views
from engine.read import risks as views_risks
from engine.read.agenda import report_items
from engine.read.dashboard import programme_dashboard
from engine.read.delegation import delegated_items
from engine.read.exports import ICS_TYPE, deadlines_ics
from engine.read.papers import paper_context
from engine.store.links import SIGN_LINK_DAYS, SIGN_PURPOSE, link_used, read_link_token, use_link
from engine.store.models import DelegatedDecision, Meeting, MeetingMember, Person
from notifications import papers
from notifications.papers import PdfUnavailable, render
from quorum_web import charts, pages
from quorum_web.actions import OTP_INPUT, ActionForm, Input
from quorum_web.api import org_name, scope_of
from quorum_web.auth import ALL_ROLES, STAFF, check_form_csrf, require, secret_key
from workflows.bid import BID, decision_step
from workflows.delegated import DELEGATED, OPEN
from workflows.meeting import MEETING

router = APIRouter(include_in_schema=False)
STAFF_ONLY = require(STAFF)
DECISIONS = ("approve", "refer_back", "defer", "reject")  # the bid steps `decide` takes
ANYONE = require(ALL_ROLES)
SIGNERS = require(STAFF)  # the scheme decides who counts; the command checks it
PAPER_FORMATS = ("html", "pdf")
# a report item has no workflow: what the agenda shows in its state column is a label
REPORT_LABEL = "report"
MEETING_PAPERS = ("agenda", "minutes", "delegated", "returns", "risks")


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _dd_items(conn: Any, ref: str | None = None) -> list[dict]:
    where = DelegatedDecision.__table__.c.ref == ref if ref is not None else None
    return delegated_items(conn, where)


# ------------------------------------------------------------------ meetings


@router.get("/meetings", response_class=HTMLResponse)
def meetings_page(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    with Session(_engine(request)) as s:
        rows = views.meetings(s)
    return pages.render(request, "meetings.html", {"meetings": rows})


def _meeting_forms(meeting: dict, actor: Actor, agenda: list[dict], roll: list[dict]) -> dict:
    avail = MEETING.available(meeting["state"], actor.roles)
    ref = meeting["ref"]

    def why(trigger: str) -> str | None:
        if trigger not in avail:
            return f"not possible while the meeting is {meeting['state']}"
        return avail[trigger]

    votes = [
        Input("votes.for", "Votes for", "int"),
        Input("votes.against", "Votes against", "int"),
        Input("votes.abstain", "Abstentions", "int"),
    ]
    outcomes = [
        ("approve", "Approve"),
        ("refer_back", "Refer back"),
        ("defer", "Defer"),
        ("reject", "Reject"),
    ]
    item_opts = [(a["ref"], f"{a['ref']} {a['title']}") for a in agenda if a["kind"] != "report"]
    is_officer = bool(actor.roles & {"officer"})
    interest_inputs = [Input("item", "Item", "select", True, item_opts)]
    if is_officer:
        interest_inputs.append(
            Input(
                "member",
                "Member",
                "select",
                False,
                [(p["email"], p["name"]) for p in roll],
                hint="empty: yourself",
            )
        )
    interest_inputs.append(Input("nature", "Nature of the interest", "textarea", True))
    forms = {
        "interest": ActionForm(
            "interest",
            "declare_interest",
            "Declare an interest",
            {"meeting": ref},
            interest_inputs,
            unavailable=why("declare_interest")
            or (None if item_opts else "the agenda is empty (nothing awaits a decision)"),
        ),
        "action": ActionForm(
            "action",
            "add_action",
            "Add an action",
            {"meeting": ref},
            [
                Input("what", "What", "textarea", True),
                Input("owner", "Owner", required=True),
                Input("due", "Due", "date"),
            ],
            unavailable=why("add_action"),
        ),
        "close": ActionForm(
            "close",
            "close_meeting",
            "Close the meeting (the minutes become final)",
            {"meeting": ref},
            unavailable=why("close"),
            button="Close the meeting",
            style="danger",
        ),
    }
    attendance_why = why("record_attendance")
    item_forms = {}
    for a in agenda:
        if a["kind"] == "bid":
            # the outcomes the bid's workflow allows from its state (None: this actor may)
            steps = BID.available(a["state"], actor.roles)
            allowed = {
                outcome: steps[step]
                for outcome in DECISIONS
                for step in [decision_step(outcome, a["state"]) if a.get("allocation")
                             else outcome]
                if step in steps
            }
            item_why = (
                None
                if None in allowed.values()
                else next(iter(allowed.values()), None)
                or f"{a['ref']} is {a['state'].replace('_', ' ')}"
            )
            item_forms[a["ref"]] = ActionForm(
                f"decide-{a['ref']}",
                "decide",
                f"Decide {a['ref']}",
                {"meeting": ref, "item": a["ref"]},
                [
                    Input(
                        "outcome",
                        "Outcome",
                        "select",
                        True,
                        [o for o in outcomes if o[0] in allowed] or outcomes,
                    ),
                    Input("amount", "Amount (£)", "money", hint="approve: empty = amount asked"),
                    Input("reasons", "Reasons", "textarea"),
                    Input("missing", "What is missing (refer back)", "textarea"),
                    *votes,
                ],
                unavailable=why("decide") or item_why,
            )
        else:
            dd_avail = DELEGATED.available(a["state"], actor.roles)
            item_forms[a["ref"]] = ActionForm(
                f"endorse-{a['ref']}",
                "endorse",
                f"Endorse {a['ref']}",
                {"meeting": ref, "item": a["ref"]},
                unavailable=dd_avail["endorse"]
                if "endorse" in dd_avail
                else f"{a['ref']} is {a['state']}",
                button="Endorse",
            )
    return {"forms": forms, "item_forms": item_forms, "attendance_why": attendance_why}


def render_meeting(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None, status: int = 200
) -> HTMLResponse:
    with Session(_engine(request)) as s:
        meeting = next((m for m in views.meetings(s) if m["ref"] == ref), None)
        if meeting is None:
            raise NotFound(f"no meeting {ref!r}", field="meeting", item=ref)
        roll = [
            {"name": r.name, "email": r.email, "present": r.present}
            for r in s.execute(
                select(Person.name, Person.email, MeetingMember.present)
                .join(Meeting, Meeting.id == MeetingMember.meeting_id)
                .join(Person, Person.id == MeetingMember.person_id)
                .where(Meeting.ref == ref)
                .order_by(Person.name)
            )
        ]
        bids = {b["ref"]: b for b in views.bids(s)}
        history = pages._history(s, [ref])
    with _engine(request).connect() as conn:
        dds = {d["ref"]: d for d in _dd_items(conn)}
        reports = report_items(conn, meeting["agenda"])  # issue 12: report items
    agenda = []
    for item in meeting["agenda"]:
        if item in reports:
            r = reports[item]
            agenda.append({"ref": item, "kind": "report", "title": r["title"],
                           "state": REPORT_LABEL, "amount_pence": None,
                           "href": r["paper"] or ""})
        elif item in dds:
            d = dds[item]
            agenda.append(
                {
                    "ref": item,
                    "kind": "delegated",
                    "title": d["title"],
                    "state": d["state"],
                    "amount_pence": d["amount_pence"],
                    "href": f"/delegated/{item}",
                }
            )
        else:
            b = bids.get(item, {})
            agenda.append(
                {
                    "ref": item,
                    "kind": "bid",
                    "title": b.get("title", ""),
                    "state": b.get("state", ""),
                    "amount_pence": b.get("grant_requested_pence"),
                    "href": f"/bids/{item}",
                    # an allocation is decided unscored (workflows/bid.py *_unscored steps)
                    "allocation": b.get("bid_kind") == "allocation",
                }
            )
    decided = {d["item"] for d in meeting["decisions"]}
    for a in agenda:
        a["decided"] = a["ref"] in decided
    made = _meeting_forms(meeting, actor, agenda, roll)
    return pages.render(
        request,
        "meeting.html",
        {
            "meeting": meeting,
            "roll": roll,
            "agenda": agenda,
            "titles": {r: b["title"] for r, b in bids.items()},
            **made,
            "papers": MEETING_PAPERS,
            "history": history,
            "workflow": pages.workflow_view(MEETING, meeting["state"]),
            "form_error": form_error,
        },
        status,
    )


@router.get("/meetings/{ref}", response_class=HTMLResponse)
def meeting_page(request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    return render_meeting(request, actor, ref)


# ------------------------------------------------------------------ papers


def paper_response(request: Request, name: str, ref: str, fmt: str) -> Response:
    if fmt not in PAPER_FORMATS:
        raise NotFound(f"papers come as {' or '.join(PAPER_FORMATS)}, not {fmt!r}", field="format")
    context = paper_context(_engine(request), name, ref)
    if fmt == "html":
        return HTMLResponse(render(name, context, "html"))
    try:
        data = papers.render_pdf(name, context)
    except PdfUnavailable as exc:
        return pages.error_page(request, 503, "PDF not available", exc.message)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}-{ref}.pdf"'},
    )


@router.get("/meetings/{ref}/papers/{name}.{fmt}")
def meeting_paper(
    request: Request, ref: str, name: str, fmt: str, actor: Actor = Depends(STAFF_ONLY)
) -> Response:
    if name not in MEETING_PAPERS:
        raise NotFound(
            f"no meeting paper {name!r}; they are {', '.join(MEETING_PAPERS)}", field="paper"
        )
    return paper_response(request, name, ref, fmt)


@router.get("/rounds/{ref}/paper.{fmt}")
def round_paper(
    request: Request, ref: str, fmt: str, actor: Actor = Depends(STAFF_ONLY)
) -> Response:
    return paper_response(request, "bids", ref, fmt)


# ------------------------------------------------------------------ risk register (issue 13)


@router.get("/risks", response_class=HTMLResponse)
def risks_page(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    """The risk register: every risk, its reviews at meetings and its audited changes."""
    with _engine(request).connect() as conn:
        rows = views_risks.register(conn)
    with Session(_engine(request)) as s:
        history = {r["ref"]: views_risks.risk_history(s, r["ref"]) for r in rows}
    return pages.render(request, "risks.html", {"risks": rows, "history": history})


# ------------------------------------------------------------------ delegated decisions


@router.get("/delegated", response_class=HTMLResponse)
def delegated_list(
    request: Request,
    format: str | None = None,  # noqa: A002 (the query parameter's name)
    actor: Actor = Depends(STAFF_ONLY),
) -> Response:
    return pages.list_page(request, actor, "delegated", "delegated_list.html", format, None)


def _dd(request: Request, ref: str) -> dict:
    with _engine(request).connect() as conn:
        found = _dd_items(conn, ref)
    if not found:
        raise NotFound(f"no delegated decision {ref!r}", field="item", item=ref)
    return found[0]


def _current_balance(request: Request, pot: str) -> int | None:
    with Session(_engine(request)) as s:
        line = next((p for p in views.pots(s) if p.get("name") == pot), None)
    return None if line is None else line.get("available_pence")


def sign_forms(
    dd: dict, actor: Actor, link: str | None = None, *, otp: bool = False
) -> list[ActionForm]:
    """Approve / decline (or stand aside) for a signatory; after approval, until it
    is reported, concur (the scheme's check stays the command's)."""
    concurring = dd["state"] == "approved" and not dd.get("reported_at")
    if dd["state"] != OPEN and not concurring:
        return []
    signer_roles = DELEGATED.step("sign").roles - {"system"}
    why = None if actor.roles & signer_roles else "only the Chair and Vice Chairs sign"
    mine = [s for s in dd["signatures"] if s["name"] == actor.name]
    if mine:
        said = SIGNATURE_WORDS.get(mine[0]["decision"], mine[0]["decision"])
        why = f"you have already signed ({said} on {mine[0]['signed_on']})"
    base = {"item": dd["ref"], "version": str(dd["version"])}
    post_to = ""
    if link:
        base["t"] = link
        post_to = f"/delegated/{dd['ref']}/sign"
    if concurring:  # a signature after approval is recorded as a concurrence
        return [
            ActionForm(
                "approve",
                "sign",
                "Concur (it is approved; your signature is recorded)",
                {**base, "decision": "approve"},
                [OTP_INPUT] if otp else [],
                unavailable=why,
                button="Concur",
                post_to=post_to,
            )
        ]
    aside = [] if link else [
        ActionForm(
            "stand_aside",
            "stand_aside",
            "Declare an interest and stand aside",
            base,
            [Input("interest", "The interest you declare", "textarea", hint="goes on the record")],
            unavailable=why,
            button="Stand aside",
        )
    ]  # fmt: skip
    return [
        ActionForm(
            "approve",
            "sign",
            "Approve",
            {**base, "decision": "approve"},
            [OTP_INPUT] if otp else [],
            unavailable=why,
            button="Approve",
            post_to=post_to,
        ),
        ActionForm(
            "decline",
            "sign",
            "Decline",
            {**base, "decision": "decline"},
            [
                Input("reason", "Why you decline", "textarea", hint="goes on the published record"),
                Input(
                    "interest",
                    "An interest you declare (if any)",
                    "textarea",
                    hint="declaring an interest means you decline",
                ),
                *([OTP_INPUT] if otp else []),
            ],
            unavailable=why,
            button="Decline",
            style="danger",
            post_to=post_to,
        ),
        *aside,
    ]


def render_delegated(
    request: Request,
    actor: Actor,
    ref: str,
    *,
    form_error: dict | None = None,
    status: int = 200,
    link: str | None = None,
    link_problem: str | None = None,
) -> HTMLResponse:
    dd = _dd(request, ref)
    with Session(_engine(request)) as s:
        history = pages._history(s, [ref])
    with _engine(request).connect() as conn:
        otp = accounts.second_factor(conn, actor.person_id) is not None
    forms = [] if link_problem else sign_forms(dd, actor, link, otp=otp)
    return pages.render(
        request,
        "delegated.html",
        {
            "dd": dd,
            "balance_now": _current_balance(request, dd["pot"]),
            "forms": forms,
            "link": link,
            "link_problem": link_problem,
            "history": history,
            "workflow": pages.workflow_view(DELEGATED, dd["state"]),
            "form_error": form_error,
        },
        status,
    )


@router.get("/delegated/{ref}", response_class=HTMLResponse)
def delegated_page(request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    return render_delegated(request, actor, ref)


def _check_link(request: Request, ref: str, token: str, actor: Actor) -> dict:
    """The link's contents if it is good for this person and this item, not
    yet used; otherwise a QuorumError saying what is wrong with it."""
    if not token:
        raise ValidationError("this page needs the link from your email (it has no token)")
    data = read_link_token(
        secret_key(_engine(request)),
        token,
        SIGN_PURPOSE,
        dt.timedelta(days=SIGN_LINK_DAYS + 1),  # the token carries its own expiry
        actor,
        now=request.app.state.clock.now(),
    )
    if data.get("i") != ref:
        raise ValidationError(f"this link is for {data.get('i')}, not {ref}")
    with _engine(request).connect() as conn:
        if link_used(conn, data["j"]):
            raise ValidationError("this link has already been used")
    return data


def _link_refused(request: Request, actor: Actor, ref: str, exc: QuorumError) -> HTMLResponse:
    status = 403 if exc.http_status == 403 else 400
    try:
        return render_delegated(request, actor, ref, link_problem=exc.message, status=status)
    except QuorumError:
        return pages.error_page(request, status, "Link not usable", exc.message)


@router.get("/delegated/{ref}/sign", response_class=HTMLResponse)
def sign_link_page(
    request: Request, ref: str, t: str = "", actor: Actor = Depends(SIGNERS)
) -> Response:
    try:
        _check_link(request, ref, t, actor)
    except QuorumError as exc:
        return _link_refused(request, actor, ref, exc)
    return render_delegated(request, actor, ref, link=t)


@router.post("/delegated/{ref}/sign", response_class=HTMLResponse)
def sign_by_link(
    request: Request,
    ref: str,
    actor: Actor = Depends(SIGNERS),
    form: dict = Depends(check_form_csrf),
) -> Response:
    """Sign from the emailed link. The link is consumed in the SAME transaction
    as the ``sign`` command (Quorum.execute's ``before`` hook): if the command
    is refused, the transaction rolls back and the link stays usable; if two
    posts race, the second finds the link used and signs nothing."""
    token = str(form.get("t") or "")
    try:
        data = _check_link(request, ref, token, actor)
    except QuorumError as exc:
        return _link_refused(request, actor, ref, exc)
    args = pages.form_args(form)
    args.pop("t", None)
    args["item"] = ref
    now = request.app.state.clock.now()
    try:
        result = request.app.state.quorum.execute(
            "sign", args, actor, before=lambda conn: use_link(conn, data["j"], now)
        )
    except QuorumError as exc:
        if str(exc.message) == "this link has already been used":
            return _link_refused(request, actor, ref, exc)
        error = pages._form_error(str(form.get("_form") or "sign"), exc, args)
        return render_delegated(
            request, actor, ref, form_error=error, status=pages._status(exc), link=token
        )
    request.session["flash"] = pages._summary("sign", result)
    return RedirectResponse(f"/delegated/{ref}", status_code=303)


# ------------------------------------------------------------------ dashboard, calendar


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    with _engine(request).connect() as conn:
        board = programme_dashboard(conn, request.app.state.clock.today())
    return pages.render(
        request,
        "dashboard.html",
        {
            "board": board,
            "charts": {
                "pots": charts.pots_chart(board["pots"]),
                "savings": charts.savings_chart(board["partnerships"]),
                "late": charts.late_returns_chart(board["partnerships"]),
            },
        },
    )


@router.get("/calendar.ics")
def calendar(request: Request, actor: Actor = Depends(ANYONE)) -> Response:
    """Every due date as iCalendar; a sponsor's: only its own authority's."""
    stamp = request.app.state.clock.now().replace(microsecond=0)
    with _engine(request).connect() as conn:
        scope = scope_of(actor)
        only = None if scope is None else (org_name(conn, scope) or "")
        body = deadlines_ics(conn, stamp, only)
    return Response(
        body,
        media_type=ICS_TYPE,
        headers={"Content-Disposition": 'attachment; filename="quorum-due-dates.ics"'},
    )


pages.PAGES.extend(
    [
        (re.compile(r"^/meetings/(?P<ref>[^/?#]+)$"), render_meeting),
        (re.compile(r"^/delegated/(?P<ref>[^/?#]+)$"), render_delegated),
    ]
)
