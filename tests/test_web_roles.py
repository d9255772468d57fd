"""The role matrix: every page and API endpoint, every role.

Allowed roles succeed; others get a 403 page (pages) or a 403 JSON error
(API); nobody signed in is sent to /login (pages) or gets a 401 (API). The
routes are read from the app itself, so a new route without an entry here
fails the test. A sponsor cannot read another authority's bid, grant or
return by guessing its ref: that answers 404, exactly like a ref that does
not exist.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from moneykit import (
    CHAIR,
    DIRECTOR,
    FINANCE,
    OFFICER,
    OFFICER2,
    SPONSOR,
    SPONSOR2,
    VICE1,
    grant_ref,
    money_board,
)
from starlette.routing import Mount, Route
from webkit import api_token, bearer, closed_second_round, csrf_of, set_passwords, sign_in

from quorum_web.app import create_app

AUDITOR = "amir@m.example"
MEMBER = "ash@m.example"
PEOPLE = {
    "officer": OFFICER,
    "director": DIRECTOR,
    "chair": CHAIR,
    "vice_chair": VICE1,
    "board_member": MEMBER,
    "finance": FINANCE,
    "auditor": AUDITOR,
    "sponsor": SPONSOR,
}
ALL = frozenset(PEOPLE)
STAFF = ALL - {"sponsor"}
AUDIT = frozenset({"officer", "director", "auditor"})
BIDDERS = frozenset({"sponsor", "officer"})
PUBLIC = None
V2_RULES = Path(__file__).parent / "rules" / "efficiency-bids-2011-v2.yaml"

# (method, route path) -> roles allowed (PUBLIC: no sign-in needed)
MATRIX: dict[tuple[str, str], frozenset[str] | None] = {
    # sign-in, health, the API's own document, static files
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/logout"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/docs"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    # the public register of decisions (docs/publishing.md): no sign-in, nothing private
    ("GET", "/register"): PUBLIC,
    ("GET", "/register/decisions/{ref}"): PUBLIC,
    ("GET", "/register/meetings/{ref}/{name}.{fmt}"): PUBLIC,
    ("GET", "/register/feed.atom"): PUBLIC,
    # the accessibility statement and the licences (footer links on every page)
    ("GET", "/accessibility"): PUBLIC,
    ("GET", "/licences"): PUBLIC,
    # pages
    ("GET", "/"): ALL,
    ("GET", "/bids"): ALL,
    ("GET", "/bids/{ref}"): ALL,
    ("GET", "/grants"): ALL,
    ("GET", "/grants/{ref}"): ALL,
    ("GET", "/account"): ALL,
    # start setting up one's own second factor (a secret for oneself only; confirmed
    # by the audited command confirm_second_factor): anyone signed in
    ("POST", "/account/second-factor"): ALL,
    ("GET", "/rounds"): STAFF,
    ("GET", "/rounds/{ref}"): STAFF,
    ("POST", "/rounds/{ref}/whatif"): STAFF,
    # scoring rule sets (issue 14): versions read by staff, uploaded by officers and
    # directors; a what-if preview against a round (reads only) by staff
    ("GET", "/rule-sets"): STAFF,
    ("GET", "/rule-sets/{name}"): STAFF,
    ("POST", "/rule-sets/upload"): frozenset({"officer", "director"}),
    ("GET", "/rounds/{ref}/preview"): STAFF,
    ("POST", "/rounds/{ref}/preview"): STAFF,
    ("GET", "/bids/new"): BIDDERS,
    ("POST", "/bids/preview"): BIDDERS,
    ("POST", "/grants/{ref}/milestones/{seq}/evidence"): BIDDERS,
    # an evidence file: whoever may see the grant (a sponsor: its own only)
    ("GET", "/grants/{ref}/evidence/{file_id:path}"): ALL,
    # a grant's offer letters as issued (issue 16): whoever may see the grant
    ("GET", "/grants/{ref}/offers/{offer}"): ALL,
    ("GET", "/grants/{ref}/offers/{offer}/pdf"): ALL,
    ("GET", "/dashboard"): STAFF,
    # partnership allocations: staff see all; a partnership's people their own (else 404)
    ("GET", "/partnership-allocations"): ALL,
    ("GET", "/partnership-allocations/{pot_id}"): ALL,
    ("GET", "/calendar.ics"): ALL,
    ("GET", "/recoveries/{ref}"): ALL,
    ("GET", "/returns"): ALL,
    ("GET", "/returns/{ref}"): ALL,
    ("POST", "/returns/{ref}/send"): BIDDERS,  # the return form with progress lines
    ("GET", "/rounds/{ref}/paper.{fmt}"): STAFF,
    ("GET", "/meetings"): STAFF,
    ("GET", "/meetings/{ref}"): STAFF,
    ("GET", "/meetings/{ref}/papers/{name}.{fmt}"): STAFF,
    ("GET", "/meetings/{ref}/items/{n}"): STAFF,  # issue 14: one agenda item
    ("POST", "/meetings/{ref}/items/{n}/confirm"): STAFF,  # the decision to confirm
    ("GET", "/meetings/{ref}/decide-several"): STAFF,  # approve a programme except some
    ("POST", "/meetings/{ref}/decide-several/confirm"): STAFF,
    ("POST", "/meetings/{ref}/decide-several/record"): STAFF,
    ("GET", "/meetings/{ref}/attendance"): STAFF,
    ("GET", "/meetings/{ref}/actions"): STAFF,
    ("GET", "/delegated"): STAFF,
    ("GET", "/risks"): STAFF,
    ("GET", "/actions"): STAFF,  # the meetings' action register (tests/test_lists.py)
    ("GET", "/audit"): AUDIT,  # the audit trail, as GET /api/v1/audit/verify
    ("GET", "/delegated/{ref}"): STAFF,
    ("GET", "/delegated/{ref}/sign"): STAFF,  # the link itself names its one signatory
    ("POST", "/delegated/{ref}/sign"): STAFF,
    ("POST", "/do/{command}"): ALL,  # and then the command's own roles: see below
    ("GET", "/people"): frozenset({"officer", "director", "chair"}),
    ("GET", "/notifications"): ALL,  # one's own (issue 14)
    ("GET", "/catch-up"): frozenset({"officer"}),  # a catch-up sweep to confirm
    ("GET", "/my-work/{section}"): ALL,  # one whole section of one's own My work
    # set-up (issue 14): programmes and pots, authorities and partnerships
    ("GET", "/programmes"): frozenset({"officer", "director"}),
    ("POST", "/programmes/new"): frozenset({"director"}),  # create_programme's role
    ("POST", "/programmes/pots"): frozenset({"officer", "director"}),
    ("GET", "/authorities"): frozenset({"officer", "director"}),
    ("GET", "/password/reset"): PUBLIC,  # the emailed link is the proof
    ("POST", "/password/reset"): PUBLIC,
    # API
    ("GET", "/api/v1/me"): ALL,
    ("GET", "/api/v1/bids"): ALL,
    ("GET", "/api/v1/bids/{ref}"): ALL,
    ("GET", "/api/v1/grants"): ALL,
    ("GET", "/api/v1/grants/{ref}"): ALL,
    ("GET", "/api/v1/returns"): ALL,
    ("GET", "/api/v1/returns/{ref}"): ALL,
    ("GET", "/api/v1/rounds"): STAFF,
    ("GET", "/api/v1/rounds/{ref}"): STAFF,
    ("GET", "/api/v1/meetings"): STAFF,
    ("GET", "/api/v1/meetings/{ref}"): STAFF,
    ("GET", "/api/v1/delegated-decisions"): STAFF,
    ("GET", "/api/v1/delegated-decisions/{ref}"): STAFF,
    ("GET", "/api/v1/pots"): STAFF,
    ("GET", "/api/v1/audit/verify"): AUDIT,
    ("GET", "/api/v1/audit/events"): AUDIT,
    ("GET", "/api/v1/actions"): STAFF,
    ("GET", "/api/v1/commands"): ALL,
    ("POST", "/api/v1/commands/{name}"): ALL,
    ("POST", "/api/v1/grants/{ref}/milestones/{seq}/evidence"): BIDDERS,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('roles') / 'quorum.db'}"
    q, engine, clock = money_board(url)
    q.execute("register_person", {"name": "Amir", "email": AUDITOR, "roles": ["auditor"]}, "system")
    set_passwords(q, *PEOPLE.values(), SPONSOR2)
    ours, theirs = grant_ref(engine, "Shared ICT"), grant_ref(engine, "Invest to save")
    clock.set(dt.date(2011, 7, 5))
    returns = {}
    for grant, who in ((ours, SPONSOR), (theirs, SPONSOR2)):
        returns[grant] = q.execute(
            "submit_return",
            {"grant": grant, "kind": "progress", "period_end": "2011-06-30"},
            who,
        )["return"]
    recoveries = {}
    for grant, who in ((ours, SPONSOR), (theirs, SPONSOR2)):
        key = {"grant": grant, "milestone": 1}
        q.execute("submit_evidence", {**key, "summary": "done"}, who)
        q.execute("verify_milestone", key, OFFICER)
        q.execute("release_payment", key, OFFICER2)
        recoveries[grant] = q.execute(
            "demand_refund",
            {"grant": grant, "amount": "1,000", "reason": "not delivered", "authority": "Board"},
            OFFICER,
        )["recovery"]
    dd = q.execute(
        "request_delegated_decision",
        {"bid": _bid(engine, "Delegated ask"), "reasons": "urgent", "alternatives": "wait"},
        OFFICER,
    )["ref"]
    scored = closed_second_round(q, clock, OFFICER)
    q.execute("score_round", {"round": "R2"}, OFFICER)
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as anon:
        sessions, tokens = {}, {}
        for role, email in PEOPLE.items():
            c = TestClient(app)
            assert sign_in(c, email).status_code == 303, role
            sessions[role] = c
            tokens[role] = api_token(q, email, role)
        yield {
            "app": app,
            "anon": anon,
            "sessions": sessions,
            "tokens": tokens,
            "refs": {
                "bid": _bid(engine, "Shared ICT"),
                "their_bid": _bid(engine, "Invest to save"),
                "grant": ours,
                "their_grant": theirs,
                "return": returns[ours],
                "their_return": returns[theirs],
                "meeting": "BOARD-APR",
                "round": "R1",
                "dd": dd,
                "recovery": recoveries[ours],
                "their_recovery": recoveries[theirs],
                "scored": scored,
            },
        }


def _bid(engine, title: str) -> str:
    from moneykit import bid_refs

    return bid_refs(engine, title)[0]


def routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI keeps
    those as their own route objects)."""
    found: set[tuple[str, str]] = set()

    def walk(items, prefix: str = "") -> None:
        for r in items:
            if hasattr(r, "original_router"):  # an included router
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif isinstance(r, Mount):
                found.add(("GET", prefix + r.path))
            elif isinstance(r, APIRoute | Route):
                for method in r.methods - {"HEAD"}:
                    found.add((method, prefix + r.path))
            else:
                raise AssertionError(f"a route of an unknown kind: {r!r}")

    walk(app.routes)
    return found


def test_every_route_has_a_matrix_entry(world) -> None:
    have = routes(world["app"])
    assert have - set(MATRIX) == set(), "routes without a role-matrix entry"
    assert set(MATRIX) - have == set(), "matrix entries for routes that no longer exist"


def concrete(key: tuple[str, str], refs: dict) -> str:
    path = key[1].replace("{name}.{fmt}", "minutes.html").replace("{fmt}", "html")
    path = path.replace("{seq}", "1").replace("{pot_id}", "1").replace("{n}", "1")
    if "/delegated/" in path:
        return path.replace("{ref}", refs["dd"])
    if "/grants/" in path:
        return path.replace("{offer}", f"OFF-{refs['grant']}-1").replace("{ref}", refs["grant"])
    if "/bids/" in path:
        return path.replace("{ref}", refs["bid"])
    if "/recoveries/" in path:
        return path.replace("{ref}", refs["recovery"])
    if "/returns/" in path:
        return path.replace("{ref}", refs["return"])
    if "/meetings/" in path:
        return path.replace("{ref}", refs["meeting"])
    if "/rounds/" in path:
        return path.replace("{ref}", refs["round"])
    if path.startswith("/rule-sets/"):
        return path.replace("{name}", "efficiency-bids-2011")
    if "/delegated-decisions/" in path:
        return path.replace("{ref}", refs["dd"])
    if path == "/api/v1/commands/{name}":
        return "/api/v1/commands/no_such_command"  # passes the gate, then 400 for everyone
    if path == "/do/{command}":
        return "/do/no_such_command"
    if path == "/my-work/{section}":
        return "/my-work/no_such_section"  # passes the gate, then 404 for everyone
    return path


def call(client: TestClient, key: tuple[str, str], refs: dict, headers: dict | None = None):
    method, _ = key
    path = concrete(key, refs)
    if method == "GET":
        return client.get(path, headers=headers, follow_redirects=False)
    if path.startswith("/api/"):
        return client.post(path, json={}, headers=headers, follow_redirects=False)
    data = {"csrf_token": csrf_of(client, "/bids"), "_next": "/"}  # (anyone: via /login)
    files = None
    if path.endswith("/whatif"):
        files = {"file": ("v2.yaml", V2_RULES.read_bytes(), "application/x-yaml")}
    if path.endswith("/preview"):
        data["body"] = V2_RULES.read_text(encoding="utf-8")
    return client.post(path, data=data, files=files, follow_redirects=False)


PROTECTED = sorted(k for k, v in MATRIX.items() if v is not None)


@pytest.mark.parametrize("key", PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_role_matrix(world, key: tuple[str, str]) -> None:
    allowed = MATRIX[key]
    refs = world["refs"]
    api = key[1].startswith("/api/")
    gate_passed = {
        "/api/v1/commands/{name}": 400,
        "/do/{command}": 404,
        "/delegated/{ref}/sign": 400,  # passes the gate, then: no token from an email
        "/meetings/{ref}/items/{n}/confirm": 400,  # then: the meeting is closed, no decision
        "/meetings/{ref}/decide-several/confirm": 400,  # then: nothing chosen
        "/meetings/{ref}/decide-several/record": 400,  # then: nothing chosen
        "/grants/{ref}/milestones/{seq}/evidence": 400,  # then: no summary
        "/grants/{ref}/evidence/{file_id:path}": 404,  # then: no such file
        "/api/v1/grants/{ref}/milestones/{seq}/evidence": 400,  # then: no summary
        "/account/second-factor": 303,  # the key is made: back to the account page
        "/partnership-allocations/{pot_id}": 404,  # then: pot 1 is a regional pot
        "/my-work/{section}": 404,  # then: no such section for anyone
        "/returns/{ref}/send": 303,  # sent in again (no figures: a progress report)
        "/programmes/new": 400,  # then: the command wants a name
        "/programmes/pots": 400,  # then: the command wants a pot
        "/rule-sets/upload": 400,  # then: no file chosen
    }
    for role in sorted(PEOPLE):
        if api:
            r = call(world["anon"], key, refs, headers=bearer(world["tokens"][role]))
        else:
            r = call(world["sessions"][role], key, refs)
        if role in allowed:
            want = gate_passed.get(key[1], 200)
            assert r.status_code == want, (role, key, r.status_code, r.text[:300])
        else:
            assert r.status_code == 403, (role, key, r.status_code, r.text[:300])
            if api:
                assert r.json()["error"] == "forbidden" and r.json()["message"]
            else:
                assert r.headers["content-type"].startswith("text/html")
                assert "Not allowed" in r.text


@pytest.mark.parametrize("key", PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_nobody_signed_in_is_sent_to_sign_in(world, key: tuple[str, str]) -> None:
    anon = world["anon"]
    anon.cookies.clear()
    r = call(anon, key, world["refs"])
    if key[1].startswith("/api/"):
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    else:
        assert r.status_code in (303, 403)  # a form without a session fails CSRF first
        if r.status_code == 303:
            assert r.headers["location"].startswith("/login")


def test_public_pages_answer_without_sign_in(world) -> None:
    anon = world["anon"]
    anon.cookies.clear()
    for path in (
        "/login",
        "/logout",
        "/healthz",
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/static/quorum.css",
        "/password/reset?token=qr_x",  # the form; the token is checked when it is sent
    ):
        assert anon.get(path).status_code == 200, path


def test_commands_keep_their_own_roles_on_pages_and_api(world) -> None:
    """override_score is for officers: the page form and the API refuse everyone else."""
    args = {
        "ref": world["refs"]["scored"],
        "criterion": "partnership",
        "points": "1",
        "reason": "confirmed by the partners",
    }
    for role in sorted(PEOPLE):
        c = world["sessions"][role]
        page = c.post(
            "/do/override_score",
            data={"csrf_token": csrf_of(c, "/bids"), "_next": "/bids", **args},
            follow_redirects=False,
        )
        api = world["anon"].post(
            "/api/v1/commands/override_score", json=args, headers=bearer(world["tokens"][role])
        )
        if role == "officer":
            assert page.status_code == 303 and api.status_code == 200, (page.text[:300], api.text)
        else:
            assert page.status_code == 403 and "needs the role officer" in page.text, role
            assert api.status_code == 403 and api.json()["error"] == "forbidden", role


# ------------------------------------------------------------------ sponsors see their own


def test_a_sponsor_lists_only_its_own_items(world) -> None:
    refs, anon = world["refs"], world["anon"]
    auth = bearer(world["tokens"]["sponsor"])
    bids = {b["ref"] for b in anon.get("/api/v1/bids", headers=auth).json()}
    assert refs["bid"] in bids and refs["their_bid"] not in bids
    assert all(b["sponsor"] == "Rutland CC" for b in anon.get("/api/v1/bids", headers=auth).json())
    grants = {g["ref"] for g in anon.get("/api/v1/grants", headers=auth).json()}
    assert grants == {refs["grant"]}
    returns = {r["ref"] for r in anon.get("/api/v1/returns", headers=auth).json()}
    assert returns == {refs["return"]}
    page = world["sessions"]["sponsor"]
    assert "Invest to save" not in page.get("/bids").text
    assert "Invest to save" not in page.get("/grants").text
    assert "Shared ICT" in page.get("/grants").text
    # officers see everything
    everything = {
        g["ref"]
        for g in anon.get("/api/v1/grants", headers=bearer(world["tokens"]["officer"])).json()
    }
    assert everything == {refs["grant"], refs["their_grant"]}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bids/{their_bid}",
        "/api/v1/grants/{their_grant}",
        "/api/v1/returns/{their_return}",
        "/bids/{their_bid}",
        "/grants/{their_grant}",
        "/grants/{their_grant}/offers/OFF-{their_grant}-1",
        "/grants/{their_grant}/offers/OFF-{their_grant}-1/pdf",
        "/returns/{their_return}",
        "/recoveries/{their_recovery}",
    ],
)
def test_a_sponsor_guessing_another_authoritys_ref_gets_404(world, path: str) -> None:
    refs = world["refs"]
    theirs = path.format(**refs)
    missing = path.format(
        their_bid="B-9999", their_grant="G-9999", their_return="R-9999", their_recovery="REC-9999"
    )
    if path.startswith("/api/"):
        auth = bearer(world["tokens"]["sponsor"])
        got, none = (
            world["anon"].get(theirs, headers=auth),
            world["anon"].get(missing, headers=auth),
        )
        assert got.status_code == none.status_code == 404
        assert got.json()["error"] == none.json()["error"] == "not_found"
        assert "Melton" not in got.text and "Invest" not in got.text
        # and an officer reads it
        ok = world["anon"].get(theirs, headers=bearer(world["tokens"]["officer"]))
        assert ok.status_code == 200
    else:
        c = world["sessions"]["sponsor"]
        got, none = c.get(theirs), c.get(missing)
        assert got.status_code == none.status_code == 404
        assert "Melton" not in got.text and "Invest to save" not in got.text


def test_a_sponsor_cannot_act_on_another_authoritys_grant(world) -> None:
    c = world["sessions"]["sponsor"]
    their = world["refs"]["their_grant"]
    r = c.post(
        "/do/submit_evidence",
        data={
            "csrf_token": csrf_of(c, "/bids"),
            "grant": their,
            "milestone": "1",
            "summary": "done",
            "_next": f"/grants/{their}",
        },
    )
    # not theirs to see: the 404 of a grant that does not exist (issue 11), not a 403
    assert r.status_code == 404
    assert f"no grant &#39;{their}&#39;" in r.text and "is a grant to" not in r.text
