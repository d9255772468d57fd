"""People and roles (issue 11): the people page, role changes a second person
approves, and the page a password reset link opens.

- ``GET /people`` (officer, director, chair): everyone and their roles; forms
  to register a person, ask for a role change and send a reset link; the role
  changes waiting, each with the buttons ``Workflow.available`` allows this
  person (approve / refuse for a director or the Chair, withdraw for the one
  who asked), every form posting to ``POST /do/{command}``.
- ``GET``/``POST /password/reset?token=…`` (no sign-in: the link is the proof):
  set a new password with a single-use, expiring link emailed to the person's
  own address (engine/commands/handlers/accounts.py ``reset_password``, run as
  the person the link was sent to).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.commands.handlers.accounts import MIN_PASSWORD, token_hash
from engine.domain.actor import Actor
from engine.domain.errors import NotFound, PermissionDenied, QuorumError
from engine.read.accounts import people, reset_link_owner, role_changes
from engine.read.setup import organisations
from engine.store.models import PRIVILEGED_ROLES, Role
from quorum_web import actions, pages
from quorum_web.auth import check_form_csrf, require
from quorum_web.pages import error_page, render
from workflows.role_change import OPEN, REQUESTERS, ROLE_CHANGE

router = APIRouter(include_in_schema=False)
PEOPLE_ROLES = REQUESTERS  # officer, director, chair
MAX_TOKEN = 200


def role_change_actions(rc: dict, actor: Actor) -> list[actions.ActionForm]:
    """The steps of a waiting role change this person is offered, or why not."""
    avail = ROLE_CHANGE.available(rc["state"], actor.roles)
    base = {"item": rc["ref"], "version": str(rc["version"])}
    own = actor.person_id is not None and actor.person_id == rc["requested_by_id"]
    theirs = actor.person_id is not None and actor.person_id == rc["person_id"]
    second = (
        "you asked for it: a second person decides it"
        if own
        else "it changes your own roles"
        if theirs
        else None
    )
    forms: list[actions.ActionForm] = []
    reason = actions.Input("reason", "Reason", "textarea")
    for trigger, command, label, inputs, extra in (
        ("approve", "approve_role_change", "Approve", [reason], second),
        (
            "refuse",
            "refuse_role_change",
            "Refuse",
            [actions.Input("reason", "Reason", "textarea", True)],
            second,
        ),
        ("withdraw", "withdraw_role_change", "Withdraw", [], None),
    ):
        if trigger not in avail:
            continue
        why = avail[trigger] or extra
        if trigger == "withdraw" and not own:
            continue  # offered only to the one who asked (others refuse it)
        forms.append(
            actions.ActionForm(
                f"{trigger}-{rc['ref']}",
                command,
                f"{label} {rc['ref']}",
                dict(base),
                inputs,
                unavailable=why,
                style="danger" if trigger == "refuse" else "",
            )
        )
    return forms


def _people_forms(orgs: list[str]) -> list[actions.ActionForm]:
    role_opts = [(r.value, r.value.replace("_", " ")) for r in Role]
    hint = (
        f"{', '.join(sorted(r.replace('_', ' ') for r in PRIVILEGED_ROLES))}: "
        "only with a director's or the Chair's approval"
    )
    return [
        actions.ActionForm(
            "register_person",
            "register_person",
            "Register a person",
            {},
            [
                actions.Input("name", "Name", "text", True),
                actions.Input("email", "Email", "text", True),
                actions.Input("roles", "Role", "select", True, role_opts, hint=hint),
                actions.Input(
                    "organisation",
                    "Authority (for a sponsor contact)",
                    "select",
                    False,
                    [(o, o) for o in orgs],
                    hint="not listed? register it on the Authorities page first",
                ),
                actions.Input("reason", "Why", "textarea"),
            ],
        ),
        actions.ActionForm(
            "change_roles",
            "change_roles",
            "Change a person's roles",
            {},
            [
                actions.Input("email", "Email", "text", True),
                actions.Input("add", "Add the role", "select", False, role_opts, hint=hint),
                actions.Input("remove", "Remove the role", "select", False, role_opts),
                actions.Input("reason", "Why", "textarea"),
            ],
        ),
        actions.ActionForm(
            "request_password_reset",
            "request_password_reset",
            "Send a password link",
            {},
            [
                actions.Input(
                    "email",
                    "Email",
                    "text",
                    True,
                    hint="a single-use link goes to their own address; nobody sets "
                    "another person's password",
                )
            ],
        ),
    ]


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request, actor: Actor = Depends(require(PEOPLE_ROLES))) -> Response:
    return render_people(request, actor)


def render_people(
    request: Request,
    actor: Actor,
    ref: str = "",
    *,
    form_error: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The people page (re-rendered with a refused form's error next to its field)."""
    if not actor.roles & PEOPLE_ROLES:
        raise PermissionDenied(f"needs role {' or '.join(sorted(PEOPLE_ROLES))}")
    with request.app.state.engine.connect() as conn:
        everyone = people(conn)
        changes = role_changes(conn)
        orgs = [o["name"] for o in organisations(conn)]
    waiting = [
        dict(rc, forms=role_change_actions(rc, actor)) for rc in changes if rc["state"] == OPEN
    ]
    decided = [rc for rc in changes if rc["state"] != OPEN][:50]
    return render(
        request,
        "people.html",
        {
            "people": everyone,
            "waiting": waiting,
            "decided": decided,
            "forms": _people_forms(orgs),
            "privileged": sorted(PRIVILEGED_ROLES),
            "form_error": form_error,
        },
        status,
    )


pages.PAGES.append((re.compile(r"^/people(?P<ref>)$"), render_people))


# ------------------------------------------------------------------ reset links


def _reset_page(request: Request, token: str, error: str = "", status: int = 200) -> HTMLResponse:
    return render(
        request,
        "password_reset.html",
        {"token": token, "error": error, "min_password": MIN_PASSWORD},
        status,
    )


@router.get("/password/reset", response_class=HTMLResponse)
def reset_page(request: Request, token: str = "") -> Response:
    return _reset_page(request, token[:MAX_TOKEN])


@router.post("/password/reset", response_class=HTMLResponse)
def reset_submit(request: Request, form: dict = Depends(check_form_csrf)) -> Response:
    token = str(form.get("token") or "")[:MAX_TOKEN].strip()
    password = str(form.get("password") or "")
    try:
        with request.app.state.engine.connect() as conn:
            owner = reset_link_owner(conn, token_hash(token)) if token else None
        if owner is None:
            raise NotFound("this link is not valid; ask for a new one", field="token")
        # run as the person the link was sent to: the command checks it is theirs
        request.app.state.quorum.execute(
            "reset_password", {"token": token, "password": password}, owner
        )
    except QuorumError as exc:
        status = 400 if exc.code == "invalid" else exc.http_status
        if exc.field == "password":
            return _reset_page(request, token, exc.message, status)
        return error_page(request, status, "Link not valid", exc.message)
    request.session["flash"] = "Your password is set: sign in with it."
    return RedirectResponse("/login", status_code=303)
