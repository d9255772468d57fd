"""Set-up pages: programmes and pots, authorities and partnerships, and the
set-up forms of the Rounds and Meetings lists (open a round, schedule a meeting).

Every form runs an existing command through ``Quorum.execute`` (most through
``POST /do/{command}``; the two whose pot name is typed in, through the routes
here that turn the fields into the command's ``pots`` mapping). Nothing is
written here: a refusal re-renders the page with the GOV.UK error summary and
the message at the field (quorum_web/actions.py ``form_error``).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from engine.domain.actor import Actor
from engine.domain.errors import PermissionDenied, QuorumError, ValidationError
from engine.read import rule_preview, views
from engine.read import rulesets as rulesets_read
from engine.read import setup as setup_read
from engine.store.models import OrgKind
from quorum_web import actions, pages, pages_board
from quorum_web.actions import ActionForm, Input
from quorum_web.auth import STAFF, check_form_csrf, require
from rules.delegation import RULES_DIR as SCHEMES_DIR
from workflows.accountable_body import ACCOUNTABLE_BODY, OPEN
from workflows.meeting import MEETING
from workflows.round import ROUND

router = APIRouter(include_in_schema=False)
SETUP_ROLES = frozenset({"officer", "director"})  # who sets a programme up
SETUP = require(SETUP_ROLES)
DIRECTORS = require(frozenset({"director"}))  # create_programme's own role
STAFF_PAGES = require(STAFF)  # rule sets and previews: read by every member of staff
YES_NO = [("no", "No"), ("yes", "Yes")]


def _needs(roles: set[str], actor: Actor) -> str | None:
    return None if roles & set(actor.roles) else f"needs role {' or '.join(sorted(roles))}"


def _may_set_up(actor: Actor) -> None:
    """A re-rendered set-up page checks the role its route checks (a renderer is
    also called from ``POST /do/{command}``, which any signed-in person may use)."""
    if not actor.roles & SETUP_ROLES:
        raise PermissionDenied(f"needs role {' or '.join(sorted(SETUP_ROLES))}")


def _kind_words(kind: str) -> str:
    return kind.replace("_", " ")


def scheme_names() -> list[str]:
    """The schemes of delegation shipped in rules/ (delegation*.yaml)."""
    return sorted(p.stem for p in SCHEMES_DIR.glob("delegation*.yaml"))


# ------------------------------------------------------------------ programmes


def programme_forms(progs: list[setup_read.ProgrammeRow], actor: Actor) -> dict[str, Any]:
    """The forms of the programmes page: create one; per programme, add a pot,
    change a pot's allocation (a ratified change) and its options."""
    director = _needs({"director"}, actor)
    ratifier = _needs({"officer", "director"}, actor)
    create = ActionForm(
        "create-programme",
        "create_programme",
        "Create a programme",
        {},
        [
            Input("name", "Name of the programme", required=True),
            Input("starts_on", "Starts", "date"),
            Input("ends_on", "Ends", "date"),
            Input("pot", "Its first pot", required=True, hint="e.g. Projects"),
            Input("amount", "Allocated to that pot (£)", "money", True, hint="e.g. 750,000"),
            Input(
                "ratified_by",
                "Established by",
                hint="the minute that establishes it, e.g. Board 1 March 2011 minute 4",
            ),
        ],
        unavailable=director,
        post_to="/programmes/new",
    )
    per: dict[str, list[ActionForm]] = {}
    for p in progs:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", p["name"]).strip("-").lower() or "p"
        minute = Input(
            "ratified_by",
            "Minute reference",
            required=True,
            hint="where the Board ratified it, e.g. Board 12 Jan 2012 minute 7",
        )
        hidden = {"programme": p["name"]}
        forms = [
            ActionForm(
                f"add-pot-{slug}",
                "ratify_programme_change",
                "Add a pot",
                hidden,
                [
                    Input("pot", "Name of the pot", required=True),
                    Input("amount", "Allocated (£)", "money", True),
                    minute,
                    Input("reason", "Reason", "textarea", True),
                ],
                unavailable=ratifier,
                post_to="/programmes/pots",
            ),
        ]
        if p["pots"]:
            forms.append(
                ActionForm(
                    f"change-pot-{slug}",
                    "ratify_programme_change",
                    "Change a pot's allocation",
                    hidden,
                    [
                        Input(
                            "pot",
                            "Pot",
                            "select",
                            True,
                            [(x["name"], x["name"]) for x in p["pots"]],
                        ),
                        Input("amount", "New allocation (£)", "money", True),
                        minute,
                        Input("reason", "Reason", "textarea", True),
                    ],
                    unavailable=ratifier,
                    post_to="/programmes/pots",
                )
            )
        forms.append(
            ActionForm(
                f"payments-{slug}",
                "configure_payments",
                "Partnerships must name an accountable body before payment",
                hidden,
                [
                    Input(
                        "accountable_body_required",
                        "Required",
                        "select",
                        True,
                        YES_NO,
                        value="yes" if p["accountable_body_required"] else "no",
                    )
                ],
                unavailable=director,
                button="Save",
            )
        )
        forms.append(
            ActionForm(
                f"scheme-{slug}",
                "adopt_scheme",
                "Adopt a scheme of delegation",
                hidden,
                [
                    Input(
                        "scheme",
                        "Scheme",
                        "select",
                        True,
                        [(n, n) for n in scheme_names()],
                    ),
                    Input("minute", "Minute reference", hint="where the Board adopted it"),
                ],
                unavailable=director,
                button="Adopt the scheme",
            )
        )
        per[p["name"]] = forms
    return {"create": create, "per": per}


def render_programmes(
    request: Request,
    actor: Actor,
    ref: str = "",
    *,
    form_error: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    _may_set_up(actor)
    with request.app.state.engine.connect() as conn:
        progs = setup_read.programmes(conn)
    return pages.render(
        request,
        "setup/programmes.html",
        {"programmes": progs, "forms": programme_forms(progs, actor), "form_error": form_error},
        status,
    )


@router.get("/programmes", response_class=HTMLResponse)
def programmes_page(request: Request, actor: Actor = Depends(SETUP)) -> Response:
    return render_programmes(request, actor)


def _run(
    request: Request,
    actor: Actor,
    form: dict,
    command: str,
    args: dict[str, Any],
    renderer: Any,
) -> Response:
    """Run one command for a form of these pages: success goes back with a note,
    a refusal re-renders the page with the error on its form."""
    form_id = str(form.get("_form") or command)
    typed = {k: str(v) for k, v in form.items() if k not in pages.SKIP_FIELDS}
    try:
        result = pages.execute_form(request, command, args, actor, form)
    except QuorumError as exc:
        error = actions.form_error(form_id, exc, typed)
        if exc.field and exc.field.startswith("pots"):
            error = {**error, "field": "amount", "anchor": f"f-{form_id}-amount"}
        return renderer(request, actor, "", form_error=error, status=pages._status(exc))
    request.session["flash"] = pages._summary(command, result)
    return RedirectResponse(pages.safe_next(form.get("_next"), "/programmes"), status_code=303)


def _pots(form: dict) -> dict[str, str]:
    pot = str(form.get("pot") or "").strip()
    return {pot: str(form.get("amount") or "").strip()} if pot else {}


@router.post("/programmes/new", response_class=HTMLResponse)
def create_programme(
    request: Request, actor: Actor = Depends(DIRECTORS), form: dict = Depends(check_form_csrf)
) -> Response:
    args: dict[str, Any] = {
        k: str(form.get(k) or "").strip()
        for k in ("name", "starts_on", "ends_on", "ratified_by")
        if str(form.get(k) or "").strip()
    }
    args["pots"] = _pots(form)
    return _run(request, actor, form, "create_programme", args, render_programmes)


@router.post("/programmes/pots", response_class=HTMLResponse)
def change_pots(
    request: Request, actor: Actor = Depends(SETUP), form: dict = Depends(check_form_csrf)
) -> Response:
    """Add a pot or change one's allocation: a ratified change (ratify_programme_change)."""
    args: dict[str, Any] = {
        k: str(form.get(k) or "").strip()
        for k in ("programme", "ratified_by", "reason")
        if str(form.get(k) or "").strip()
    }
    args["pots"] = _pots(form)
    return _run(request, actor, form, "ratify_programme_change", args, render_programmes)


# ------------------------------------------------------------------ authorities


def authority_forms(
    orgs: list[setup_read.OrgRow], proposals: list[setup_read.BodyProposal], actor: Actor
) -> dict[str, Any]:
    officer = _needs({"officer"}, actor)
    kinds = [(k.value, _kind_words(k.value)) for k in OrgKind]
    names = [(o["name"], o["name"]) for o in orgs]
    partnerships = [
        (o["name"], o["name"]) for o in orgs if o["kind"] == OrgKind.SUB_REGIONAL_PARTNERSHIP
    ]
    councils = [
        (o["name"], o["name"])
        for o in orgs
        if o["kind"] in {OrgKind.COUNTY, OrgKind.UNITARY, OrgKind.DISTRICT}
    ]
    org_id_hint = "e.g. GB-LAE-RUT (org-id.guide); published in 360Giving data"
    forms = [
        ActionForm(
            "register-authority",
            "register_organisation",
            "Register an authority or partnership",
            {},
            [
                Input("name", "Name", required=True),
                Input("kind", "Kind", "select", True, kinds, value=OrgKind.DISTRICT.value),
                Input("email", "Email", hint="where its notices go"),
                Input("population", "Population", "int", hint="for deposits shared by population"),
                Input("org_id", "Organisation identifier", hint=org_id_hint),
            ],
            unavailable=officer,
        )
    ]
    if names:
        forms.append(
            ActionForm(
                "org-id",
                "set_org_identifier",
                "Record an organisation identifier",
                {},
                [
                    Input("organisation", "Authority", "select", True, names),
                    Input("org_id", "Organisation identifier", required=True, hint=org_id_hint),
                    Input("reason", "Reason", "textarea"),
                ],
                unavailable=officer,
            )
        )
    propose_roles = set(ACCOUNTABLE_BODY.step("propose").roles)
    forms.append(
        ActionForm(
            "propose-body",
            "propose_accountable_body",
            "Name a partnership's accountable body",
            {},
            [
                Input("partnership", "Partnership", "select", True, partnerships),
                Input("body", "Accountable body (a council)", "select", True, councils),
                Input("reason", "Reason", "textarea"),
            ],
            unavailable=_needs(propose_roles, actor)
            or (None if partnerships else "no partnership is registered yet: register one first")
            or (None if councils else "no council is registered yet: register one first"),
            button="Propose it (a second officer approves)",
        )
    )
    waiting: dict[str, list[ActionForm]] = {}
    for p in proposals:
        if p["state"] != OPEN:
            continue
        avail = ACCOUNTABLE_BODY.available(p["state"], actor.roles)
        own = actor.person_id is not None and actor.person_id == p["proposed_by_id"]
        base = {"item": p["ref"], "version": str(p["version"])}
        steps = []
        for trigger, command, label, reason_required in (
            ("approve", "approve_accountable_body", "Approve", False),
            ("refuse", "refuse_accountable_body", "Refuse", True),
            ("withdraw", "withdraw_accountable_body", "Withdraw", False),
        ):
            if trigger not in avail or (trigger == "withdraw") != own:
                continue
            why = avail[trigger] or (
                "you proposed it: a second officer decides it" if own else None
            )
            steps.append(
                ActionForm(
                    f"{trigger}-{p['ref']}",
                    command,
                    f"{label} {p['ref']}",
                    dict(base),
                    [Input("reason", "Reason", "textarea", reason_required)],
                    unavailable=why,
                    style="danger" if trigger == "refuse" else "",
                )
            )
        waiting[p["ref"]] = steps
    return {"forms": forms, "waiting": waiting}


def render_authorities(
    request: Request,
    actor: Actor,
    ref: str = "",
    *,
    form_error: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    _may_set_up(actor)
    with request.app.state.engine.connect() as conn:
        orgs = setup_read.organisations(conn)
        proposals = setup_read.body_proposals(conn)
    return pages.render(
        request,
        "setup/authorities.html",
        {
            "orgs": orgs,
            "proposals": proposals,
            "kind_words": _kind_words,
            "forms": authority_forms(orgs, proposals, actor),
            "form_error": form_error,
        },
        status,
    )


@router.get("/authorities", response_class=HTMLResponse)
def authorities_page(request: Request, actor: Actor = Depends(SETUP)) -> Response:
    return render_authorities(request, actor)


# ------------------------------------------------------------------ rounds and meetings


def round_forms(request: Request, actor: Actor) -> dict:
    """The Rounds list's set-up forms: open a round, close an open one (officers and
    directors only; others see the list alone)."""
    open_roles = set(ROUND.step("open").roles)
    if not open_roles & set(actor.roles):
        return {"setup_forms": []}
    with request.app.state.engine.connect() as conn:
        progs = setup_read.programmes(conn)
        rounds = views.rounds(conn)
        choices = rulesets_read.rule_set_choices(conn)
    pots = [(x["name"], f"{p['name']} — {x['name']}") for p in progs for x in p["pots"]]
    forms = [
        ActionForm(
            "open-round",
            "open_round",
            "Open a round",
            {},
            [
                Input("name", "Name", required=True, hint="e.g. Spring 2011"),
                Input("pot", "Pot", "select", True, pots),
                Input(
                    "rules",
                    "Rule set",
                    "select",
                    True,
                    [(c["value"], c["label"]) for c in choices],
                    hint="how its bids are scored: a shipped file or an uploaded version "
                    "(Rule sets: upload a new version; preview it against a round first)",
                ),
                Input("opens", "Opens", "date", hint="empty: today"),
                Input("closes", "Closes", "date", True),
                Input("cap", "Most a bid may ask (£)", "money"),
                Input(
                    "scoring",
                    "Scoring",
                    "select",
                    True,
                    [
                        ("required", "required before the Board decides"),
                        ("optional", "optional: the Board may decide unscored bids"),
                    ],
                ),
            ],
            unavailable=None if pots else "no pot yet: create a programme and its pots first",
        )
    ]
    for r in rounds:
        if r["state"] == "open":
            forms.append(
                ActionForm(
                    f"close-{r['ref']}",
                    "close_round",
                    f"Close {r['ref']} ({r['name']}) to new bids",
                    {"round": r["ref"]},
                    button=f"Close {r['ref']}",
                )
            )
    return {"setup_forms": forms, "no_pots": not pots, "rule_set_links": True}


def meeting_forms(request: Request, actor: Actor) -> dict:
    """The Meetings list's set-up form: schedule a meeting (officers and directors)."""
    roles = set(MEETING.step("schedule").roles)
    if not roles & set(actor.roles):
        return {"setup_forms": []}
    with request.app.state.engine.connect() as conn:
        members = setup_read.board_people(conn)
        progs = [p["name"] for p in setup_read.programmes(conn)]
    inputs = [
        Input("title", "Title", required=True, hint="e.g. Board meeting, or Extraordinary Board"),
        Input("date", "Date", "date", True),
        Input("quorum", "Quorum", "int", True, hint="members present for it to decide"),
        Input(
            "members",
            "Members",
            "checkboxes",
            True,
            members,
            hint="people with a Board role (chair, vice chair, board member)",
        ),
    ]
    if len(progs) > 1:
        inputs.insert(0, Input("programme", "Programme", "select", True, [(p, p) for p in progs]))
    why = None
    if not progs:
        why = "no programme yet: create one on the Programmes page first"
    elif not members:
        why = "nobody has a Board role yet: register the members on the People page first"
    form = ActionForm(
        "schedule-meeting", "schedule_meeting", "Schedule a meeting", {}, inputs, unavailable=why
    )
    return {"setup_forms": [form]}


def _list_renderer(route: Any) -> Any:
    """A list page re-rendered by its own route with a refused form's error."""

    def renderer(
        request: Request,
        actor: Actor,
        ref: str = "",
        *,
        form_error: dict | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        if not actor.roles & STAFF:  # the route's own check, as its Depends is not run here
            raise PermissionDenied("needs a staff role")
        request.state.form_error = form_error
        response: HTMLResponse = route(request, actor=actor)
        response.status_code = status
        return response

    return renderer


# ------------------------------------------------------------------ rule sets

MAX_RULES_UPLOAD = pages.MAX_RULES_UPLOAD
PREVIEW_ROWS = 200  # bids listed on the preview page, in the new order (totals count all)
_RULES_PREFIX = re.compile(r"^(?:[a-z_ ]+: )?(?:body|file|rules): ")


def rules_error(form_id: str, field: str, exc: QuorumError, values: dict) -> dict:
    """A refused rule set in the GOV.UK pattern, at the form's field. The message
    keeps the file's own words (``criteria[1].outcomes[0].points``, ``grant_pence``):
    they are what to write in the YAML, so no snake_case is turned into words."""
    if exc.field not in ("body", "file", "rules"):  # not about the text: the usual words
        return actions.form_error(form_id, exc, values)
    return {
        "form": form_id,
        "message": _RULES_PREFIX.sub("", exc.message, count=1),
        "field": field,
        "anchor": f"f-{form_id}-{field}",
        "fields": values,
        "exc": exc,
    }


def _yaml_upload(upload: Any, what: str) -> str:
    """The text of an uploaded YAML file (a ValidationError naming ``file`` if none,
    too large, or not UTF-8)."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ValidationError(f"{what}: file: choose a rule set file (YAML)", field="file")
    data = upload.file.read(MAX_RULES_UPLOAD + 1)  # a thread-pool thread: may block
    if len(data) > MAX_RULES_UPLOAD:
        raise ValidationError(
            f"{what}: file: larger than {MAX_RULES_UPLOAD // 1024} KB", field="file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{what}: file: {upload.filename} is not UTF-8 text ({exc.reason})", field="file"
        ) from None


def render_rule_sets(
    request: Request, actor: Actor, *, form_error: dict | None = None, status: int = 200
) -> HTMLResponse:
    with request.app.state.engine.connect() as conn:
        names = [
            {"name": n, "versions": rulesets_read.versions(conn, n)}
            for n in rulesets_read.rule_set_names(conn)
        ]
    return pages.render(
        request,
        "setup/rule_sets.html",
        {
            "rule_sets": names,
            "may_upload": bool(actor.roles & SETUP_ROLES),
            "form_error": form_error,
        },
        status,
    )


@router.get("/rule-sets", response_class=HTMLResponse)
def rule_sets_page(request: Request, actor: Actor = Depends(STAFF_PAGES)) -> Response:
    return render_rule_sets(request, actor)


@router.get("/rule-sets/{name}", response_class=HTMLResponse)
def rule_set_page(request: Request, name: str, actor: Actor = Depends(STAFF_PAGES)) -> Response:
    with request.app.state.engine.connect() as conn:
        found = rulesets_read.versions(conn, name)
    return pages.render(request, "setup/rule_set.html", {"name": name, "versions": found})


@router.post("/rule-sets/upload", response_class=HTMLResponse)
def upload_rule_set(
    request: Request, actor: Actor = Depends(SETUP), form: dict = Depends(check_form_csrf)
) -> Response:
    """Upload a new version (upload_rule_set): validated like a shipped file; a
    refusal shows at the file field and stores nothing."""
    try:
        text = _yaml_upload(form.get("file"), "upload_rule_set")
        result = pages.execute_form(request, "upload_rule_set", {"body": text}, actor, form)
    except QuorumError as exc:
        error = rules_error("upload-rule-set", "file", exc, {})
        return render_rule_sets(request, actor, form_error=error, status=pages._status(exc))
    request.session["flash"] = (
        f"Stored version {result['version']} of {result['name']}: choose "
        f"{result['rules']} when opening a round."
    )
    return RedirectResponse(f"/rule-sets/{result['name']}", status_code=303)


def render_preview(
    request: Request,
    ref: str,
    *,
    chosen: str = "",
    pasted: str = "",
    form_error: dict | None = None,
    result: rule_preview.RulePreview | None = None,
    status: int = 200,
) -> HTMLResponse:
    with request.app.state.engine.connect() as conn:
        rnd = views.round_ranking(conn, ref)  # NotFound for no such round
        choices = rulesets_read.rule_set_choices(conn)
    return pages.render(
        request,
        "setup/rule_preview.html",
        {
            "round": rnd,
            "choices": choices,
            "chosen": chosen,
            "pasted": pasted,
            "preview": result,
            "shown": result["bids"][:PREVIEW_ROWS] if result else [],
            "form_error": form_error,
        },
        status,
    )


@router.get("/rounds/{ref}/preview", response_class=HTMLResponse)
def preview_page(
    request: Request, ref: str, rules: str = "", actor: Actor = Depends(STAFF_PAGES)
) -> Response:
    """Preview a rule set against this round: a shipped file or a stored version
    (through durable_rules, as score_round scores). Reads only."""
    if not rules:
        return render_preview(request, ref)
    try:
        with request.app.state.engine.connect() as conn:
            candidate = rulesets_read.resolve_rule_set(conn, rules)
            result = rule_preview.preview(conn, ref, candidate)
    except QuorumError as exc:
        error = rules_error("preview-stored", "rules", exc, {"rules": rules})
        return render_preview(
            request, ref, chosen=rules, form_error=error, status=pages._status(exc)
        )
    return render_preview(request, ref, chosen=rules, result=result)


@router.post("/rounds/{ref}/preview", response_class=HTMLResponse)
def preview_pasted(
    request: Request,
    ref: str,
    actor: Actor = Depends(STAFF_PAGES),
    form: dict = Depends(check_form_csrf),
) -> Response:
    """Preview pasted YAML: parsed by the files' loader as a transient rule set,
    scored in plain Python and dropped (nothing stored, nothing registered)."""
    text = str(form.get("body") or "")
    try:
        if not text.strip():
            raise ValidationError("preview: body: paste a rule set's YAML", field="body")
        candidate = rulesets_read.parse_candidate(text.strip() + "\n", "preview")
        with request.app.state.engine.connect() as conn:
            result = rule_preview.preview(conn, ref, candidate)
    except QuorumError as exc:
        error = rules_error("preview-pasted", "body", exc, {"body": text})
        return render_preview(
            request, ref, pasted=text, form_error=error, status=pages._status(exc)
        )
    return render_preview(request, ref, pasted=text, result=result)


pages.CONTEXT_HOOKS["rounds.html"] = round_forms
pages.CONTEXT_HOOKS["meetings.html"] = meeting_forms
pages.PAGES.extend(
    [
        (re.compile(r"^/programmes(?P<ref>)$"), render_programmes),
        (re.compile(r"^/authorities(?P<ref>)$"), render_authorities),
        (re.compile(r"^/rounds(?P<ref>)$"), _list_renderer(pages.rounds_page)),
        (re.compile(r"^/meetings(?P<ref>)$"), _list_renderer(pages_board.meetings_page)),
    ]
)
