"""People and roles: separation of duties (issue 11, point 2).

The attacks of the issue, reproduced through the web pages AND the REST API:

- an officer granting the finance role to her second account gets a request
  only: nothing changes until a different director or the Chair approves it,
  and she cannot approve it herself (nor can the person whose roles change);
- an officer setting the Chair's password is refused and nothing is written
  (every row of every table, so the audit chain too, unchanged);
- invented Chair / Vice Chair accounts are not created without a second
  approver, so they cannot sign a delegated decision;
- a reset link goes only to the person's own address, works once, expires,
  and is useless to anyone else.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from moneykit import CHAIR, DIRECTOR, OFFICER, OFFICER2, SPONSOR, VICE1, bid_refs, dump, money_board
from sqlalchemy import func, select
from sqlmodel import Session
from webkit import api_token, bearer, csrf_of, set_passwords, sign_in

from engine.domain.errors import NotFound, PermissionDenied, TransitionRefused, ValidationError
from engine.store import audit
from engine.store.models import AuditHead, DelegatedDecision, Outbox, Person, PersonRole, RoleChange
from quorum_web.app import create_app
from workflows.role_change import ROLE_CHANGE

SECOND = "olive.two@m.example"  # the officer's second account
LINK = re.compile(r"/password/reset\?token=(qr_[A-Za-z0-9_-]+)")


@pytest.fixture
def board(db_url):
    q, engine, clock = money_board(db_url)
    set_passwords(q, OFFICER, OFFICER2, DIRECTOR, CHAIR, VICE1, SPONSOR)
    yield q, engine, clock, db_url
    engine.dispose()


@pytest.fixture
def sqlite_board(sqlite_url):
    q, engine, clock = money_board(sqlite_url)
    set_passwords(q, OFFICER, OFFICER2, DIRECTOR, CHAIR, VICE1, SPONSOR)
    yield q, engine, clock, sqlite_url
    engine.dispose()


def roles_of(engine, email: str) -> set[str]:
    with engine.connect() as c:
        return set(
            c.execute(
                select(PersonRole.role)
                .join(Person, Person.id == PersonRole.person_id)
                .where(Person.email == email)
            ).scalars()
        )


def exists(engine, email: str) -> bool:
    with engine.connect() as c:
        return c.execute(select(func.count()).where(Person.email == email)).scalar_one() == 1


def state_of(engine, ref: str) -> str:
    with engine.connect() as c:
        return c.execute(select(RoleChange.state).where(RoleChange.ref == ref)).scalar_one()


def chain(engine) -> tuple[int, str, bool]:
    """The audit chain: its length, its head's hash, and whether it verifies."""
    with Session(engine) as s:
        result = audit.verify(s)
        head = s.execute(select(AuditHead.last_hash)).scalar_one()
    return result.events, head, result.ok


def mail_to(engine, email: str, template: str) -> list[dict]:
    with engine.connect() as c:
        rows = c.execute(
            select(Outbox.to_addr, Outbox.context, Outbox.subject).where(
                Outbox.to_addr == email, Outbox.template == template
            )
        ).all()
    return [{"to": r.to_addr, "subject": r.subject, **r.context} for r in rows]


def link_token(engine, email: str) -> str:
    """The token in the newest reset email to ``email`` (read from the outbox)."""
    mails = mail_to(engine, email, "password_reset")
    assert mails, f"no reset link sent to {email}"
    found = LINK.search(mails[-1]["link"])
    assert found, mails[-1]["link"]
    return found.group(1)


def post_form(client: TestClient, command: str, data: dict, page: str = "/people"):
    form = {"csrf_token": csrf_of(client, page), "_next": page, **data}
    return client.post(f"/do/{command}", data=form, follow_redirects=False)


# ------------------------------------------------------------------ the workflow


def test_the_role_change_workflow_is_declared_like_the_others() -> None:
    assert ROLE_CHANGE.step("approve").roles == {"director", "chair"}
    assert ROLE_CHANGE.step("approve").rule == "second_person"
    assert ROLE_CHANGE.step("withdraw").rule == "own_request"
    assert ROLE_CHANGE.available("requested", {"officer"}) == {
        "approve": "needs role chair or director",
        "refuse": "needs role chair or director",
        "withdraw": None,
        "expire": None,
    }
    assert ROLE_CHANGE.available("approved", {"director"}) == {}


# ---------------------------------------- attack 1: finance to her second account


def test_an_officer_granting_finance_to_her_second_account_gets_a_request_only_api(board) -> None:
    q, engine, clock, url = board
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as c:
        olive, otto, dee = (api_token(q, e) for e in (OFFICER, OFFICER2, DIRECTOR))
        for t in (olive, otto, dee):  # a token's first use is recorded: not part of the test
            assert c.get("/api/v1/me", headers=bearer(t)).status_code == 200
        # her second account, registered straight away with a role that needs no approval
        r = c.post(
            "/api/v1/commands/register_person",
            json={"name": "Olive Two", "email": SECOND, "roles": ["auditor"]},
            headers=bearer(olive),
        )
        assert r.status_code == 200, r.text
        assert roles_of(engine, SECOND) == {"auditor"}
        r = c.post(
            "/api/v1/commands/change_roles",
            json={"email": SECOND, "add": ["finance"], "reason": "cover in August"},
            headers=bearer(olive),
        )
        assert r.status_code == 200, r.text
        ask = r.json()
        assert ask["state"] == "requested" and ask["add"] == ["finance"]
        ref = ask["role_change"]
        assert roles_of(engine, SECOND) == {"auditor"}  # nothing changed yet
        before, count = dump(engine), chain(engine)
        for who in (olive, otto):  # she, or another officer: not a director or the Chair
            r = c.post(
                "/api/v1/commands/approve_role_change", json={"item": ref}, headers=bearer(who)
            )
            assert r.status_code == 403, r.text
            assert "needs the role chair or director" in r.json()["message"]
        assert dump(engine) == before and chain(engine) == count
        assert roles_of(engine, SECOND) == {"auditor"}
        # a different person, a director, approves it: only then does it change
        r = c.post(
            "/api/v1/commands/approve_role_change",
            json={"item": ref, "reason": "agreed at the team meeting"},
            headers=bearer(dee),
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "approved"
    assert roles_of(engine, SECOND) == {"auditor", "finance"}
    assert state_of(engine, ref) == "approved"
    # told: the person, the one who asked, and (when asked) the deciders
    for email in (SECOND, OFFICER):
        events = {m["event"] for m in mail_to(engine, email, "role_change")}
        assert events == {"requested", "approved"}, (email, events)
    asked = mail_to(engine, DIRECTOR, "role_change")
    assert [m["event"] for m in asked] == ["requested"]
    assert mail_to(engine, CHAIR, "role_change")[0]["ref"] == ref
    assert chain(engine)[2]
    with Session(engine) as session:
        history = [e.command for e in audit.history(session, ref)]
    assert history == ["change_roles", "approve_role_change"]


def test_an_officer_granting_finance_is_a_request_only_web(sqlite_board) -> None:
    q, engine, clock, url = sqlite_board
    q.execute("register_person", {"name": "Olive Two", "email": SECOND, "roles": ["auditor"]},
              "system")  # fmt: skip
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as olive, TestClient(app) as dee, TestClient(app) as chris:
        for client, who in ((olive, OFFICER), (dee, DIRECTOR), (chris, CHAIR)):
            assert sign_in(client, who).status_code == 303
        r = post_form(olive, "change_roles", {"email": SECOND, "add": "finance"})
        assert r.status_code == 303, r.text
        ref = _open_ref(engine)
        assert roles_of(engine, SECOND) == {"auditor"}
        # the officer sees it waiting, with Withdraw, and no Approve she could use
        page = olive.get("/people").text
        assert ref in page and "Withdraw " + ref in page
        assert 'action="/do/approve_role_change"' not in page
        before = dump(engine)
        r = post_form(olive, "approve_role_change", {"item": ref})
        assert r.status_code == 403 and "needs the role chair or director" in r.text
        assert dump(engine) == before
        # a director sees it in My work and approves it with the page's button
        assert ref in dee.get("/").text
        page = dee.get("/people").text
        assert 'action="/do/approve_role_change"' in page
        r = post_form(dee, "approve_role_change", {"item": ref, "version": "1"})
        assert r.status_code == 303, r.text
        assert ref not in chris.get("/").text  # decided: off everyone's list
    assert roles_of(engine, SECOND) == {"auditor", "finance"}


def _open_ref(engine) -> str:
    with engine.connect() as c:
        return c.execute(
            select(RoleChange.ref).where(RoleChange.state == "requested").order_by(RoleChange.id)
        ).scalars().first()


def test_a_person_cannot_approve_a_change_to_their_own_roles(sqlite_board) -> None:
    q, engine, clock, _ = sqlite_board
    ref = q.execute("change_roles", {"email": DIRECTOR, "add": ["finance"]}, OFFICER)[
        "role_change"
    ]
    before = dump(engine)
    with pytest.raises(PermissionDenied, match="changes your own roles"):
        q.execute("approve_role_change", {"item": ref}, DIRECTOR)
    with pytest.raises(PermissionDenied, match="changes your own roles"):
        q.execute("refuse_role_change", {"item": ref, "reason": "no"}, DIRECTOR)
    with pytest.raises(PermissionDenied, match="only the one who asked"):
        q.execute("withdraw_role_change", {"item": ref}, OFFICER2)
    assert dump(engine) == before
    q.execute("refuse_role_change", {"item": ref, "reason": "not needed"}, CHAIR)
    assert state_of(engine, ref) == "refused" and "finance" not in roles_of(engine, DIRECTOR)
    with pytest.raises(TransitionRefused, match="while it is refused"):
        q.execute("approve_role_change", {"item": ref}, CHAIR)
    # a director asking for a role for herself: neither she nor ... she approves it
    ref2 = q.execute("change_roles", {"email": DIRECTOR, "add": ["officer"]}, DIRECTOR)[
        "role_change"
    ]
    with pytest.raises(PermissionDenied):
        q.execute("approve_role_change", {"item": ref2}, DIRECTOR)
    q.execute("withdraw_role_change", {"item": ref2}, DIRECTOR)
    assert state_of(engine, ref2) == "withdrawn" and "officer" not in roles_of(engine, DIRECTOR)
    # a director who asks for someone else's change cannot approve it either
    ref3 = q.execute("change_roles", {"email": SPONSOR, "add": ["finance"]}, DIRECTOR)[
        "role_change"
    ]
    with pytest.raises(PermissionDenied, match="you asked for"):
        q.execute("approve_role_change", {"item": ref3}, DIRECTOR)
    q.execute("approve_role_change", {"item": ref3}, CHAIR)
    assert roles_of(engine, SPONSOR) == {"sponsor", "finance"}


def test_removing_a_privileged_role_is_a_request_too_and_other_roles_are_direct(
    sqlite_board,
) -> None:
    q, engine, clock, _ = sqlite_board
    ask = q.execute("change_roles", {"email": OFFICER2, "remove": ["officer"]}, OFFICER)
    assert ask["state"] == "requested" and roles_of(engine, OFFICER2) == {"officer"}
    q.execute("approve_role_change", {"item": ask["role_change"]}, CHAIR)
    assert roles_of(engine, OFFICER2) == set()
    done = q.execute("change_roles", {"email": SPONSOR, "add": ["board_member"]}, OFFICER)
    assert done == {"person": SPONSOR, "roles": ["board_member", "sponsor"], "changed": True}
    assert mail_to(engine, SPONSOR, "roles_changed")
    with pytest.raises(PermissionDenied):  # a sponsor asks for nothing
        q.execute("change_roles", {"email": SPONSOR, "add": ["finance"]}, SPONSOR)


def test_a_request_not_decided_in_time_expires_and_cannot_be_approved(sqlite_board) -> None:
    q, engine, clock, _ = sqlite_board
    ref = q.execute("change_roles", {"email": SPONSOR, "add": ["finance"]}, OFFICER)[
        "role_change"
    ]
    clock.advance(days=15)  # QUORUM_ROLE_CHANGE_DAYS: 14
    before = dump(engine)
    with pytest.raises(TransitionRefused, match="expired"):
        q.execute("approve_role_change", {"item": ref}, DIRECTOR)
    assert dump(engine) == before
    assert q.execute("sweep", {}, "system")  # the daily sweep expires it
    assert state_of(engine, ref) == "expired" and roles_of(engine, SPONSOR) == {"sponsor"}
    assert q.execute("expire_role_changes", {}, "system") == {"expired": []}
    assert {m["event"] for m in mail_to(engine, OFFICER, "role_change")} == {
        "requested",
        "expired",
    }


# ---------------------------------------- attack 3: invented Chair and Vice Chair


@pytest.mark.parametrize("via", ["api", "web"])
def test_invented_chair_accounts_are_not_created_without_a_second_approver(
    sqlite_board, via: str
) -> None:
    q, engine, clock, url = sqlite_board
    bid = bid_refs(engine, "Delegated ask")[0]
    dd = q.execute(
        "request_delegated_decision",
        {"bid": bid, "reasons": "urgent", "alternatives": "wait"},
        OFFICER,
    )["ref"]
    fakes = [("Cllr Fake Chair", "fake.chair@m.example", "chair"),
             ("Cllr Fake Vice", "fake.vice@m.example", "vice_chair")]  # fmt: skip
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as c:
        if via == "api":
            token = api_token(q, OFFICER)
        else:
            sign_in(c, OFFICER)
        for name, email, role in fakes:
            args = {"name": name, "email": email, "roles": [role]}
            if via == "api":
                r = c.post("/api/v1/commands/register_person", json=args, headers=bearer(token))
                assert r.status_code == 200 and r.json()["state"] == "requested", r.text
            else:
                r = post_form(c, "register_person", {**args, "roles": role})
                assert r.status_code == 303, r.text
    for _, email, _ in fakes:
        assert not exists(engine, email)  # no account: nothing to sign with
        with pytest.raises(NotFound):
            q.execute("sign", {"item": dd, "decision": "approve"}, email)
    with engine.connect() as conn:
        state = conn.execute(
            select(DelegatedDecision.state).where(DelegatedDecision.ref == dd)
        ).scalar_one()
    assert state == "awaiting_signatures"
    # approved by the Chair, the new person is registered and gets a link to set a password
    ref = _open_ref(engine)
    q.execute("approve_role_change", {"item": ref}, CHAIR)
    assert roles_of(engine, fakes[0][1]) == {"chair"}
    assert link_token(engine, fakes[0][1])


# ------------------------------------------------------------------ attack 2: the Chair's password


def test_an_officer_cannot_set_the_chairs_password_api(board) -> None:
    q, engine, clock, url = board
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as c:
        token = api_token(q, OFFICER)
        assert c.get("/api/v1/me", headers=bearer(token)).status_code == 200
        before, count = dump(engine), chain(engine)
        r = c.post(
            "/api/v1/commands/set_password",
            json={"email": CHAIR, "password": "officer-knows-it"},
            headers=bearer(token),
        )
        assert r.status_code == 403, r.text
        assert "nobody sets another person's" in r.json()["message"]
        assert dump(engine) == before and chain(engine) == count
        with TestClient(app) as chair:
            assert sign_in(chair, CHAIR, "officer-knows-it").status_code != 303
            assert sign_in(chair, CHAIR).status_code == 303


def test_an_officer_cannot_set_the_chairs_password_web(sqlite_board) -> None:
    q, engine, clock, url = sqlite_board
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as c:
        sign_in(c, OFFICER)
        csrf_of(c, "/account")
        before, count = dump(engine), chain(engine)
        r = post_form(c, "set_password", {"email": CHAIR, "password": "officer-knows-it"},
                      "/account")  # fmt: skip
        assert r.status_code == 403 and "nobody sets another person" in r.text
        assert dump(engine) == before and chain(engine) == count


# ------------------------------------------------------------------ reset links


def test_a_reset_link_goes_to_the_person_works_once_and_is_useless_to_anyone_else(
    board,
) -> None:
    q, engine, clock, url = board
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as c:
        olive = api_token(q, OFFICER)
        assert c.get("/api/v1/me", headers=bearer(olive)).status_code == 200
        r = c.post(
            "/api/v1/commands/request_password_reset", json={"email": CHAIR}, headers=bearer(olive)
        )
        assert r.status_code == 200, r.text
        assert "qr_" not in r.text  # the officer never sees the link
        token = link_token(engine, CHAIR)
        assert token not in str(dump(engine)["password_reset"])  # only its SHA-256
        assert token not in str(dump(engine)["audit_event"])
        assert token not in str(dump(engine)["command_log"])
        assert mail_to(engine, CHAIR, "password_reset")[0]["asked_by"] == "Olive"
        # useless to the officer: it is not her link (same answer as no link)
        before, count = dump(engine), chain(engine)
        r = c.post(
            "/api/v1/commands/reset_password",
            json={"token": token, "password": "officer-knows-it"},
            headers=bearer(olive),
        )
        assert r.status_code == 404 and "not valid" in r.json()["message"]
        assert dump(engine) == before and chain(engine) == count
        # the Chair opens the link and sets a new password: once
        page = c.get(f"/password/reset?token={token}")
        assert page.status_code == 200 and "Set your password" in page.text
        form = {"csrf_token": csrf_of(c, f"/password/reset?token={token}"), "token": token}
        short = c.post("/password/reset", data={**form, "password": "short"})
        assert short.status_code == 400 and "at least 10" in short.text
        done = c.post(
            "/password/reset", data={**form, "password": "chairs-own-secret"},
            follow_redirects=False,
        )  # fmt: skip
        assert done.status_code == 303 and done.headers["location"] == "/login"
        again = c.post("/password/reset", data={**form, "password": "officer-knows-it"})
        assert again.status_code == 400 and "used already" in again.text
        with TestClient(app) as chair:
            assert sign_in(chair, CHAIR, "chairs-own-secret").status_code == 303
            assert sign_in(chair, CHAIR, "officer-knows-it").status_code != 303
        assert mail_to(engine, CHAIR, "password_changed")
        forged = {**form, "token": "qr_forged", "password": "x" * 12}
        forged = c.post("/password/reset", data=forged)
        assert forged.status_code == 404


def test_a_reset_link_expires_and_a_newer_one_replaces_it(sqlite_board) -> None:
    q, engine, clock, _ = sqlite_board
    q.execute("request_password_reset", {}, SPONSOR)  # for herself
    first = link_token(engine, SPONSOR)
    q.execute("request_password_reset", {"email": SPONSOR}, DIRECTOR)
    second = link_token(engine, SPONSOR)
    assert first != second
    with pytest.raises(ValidationError, match="expired"):
        q.execute("reset_password", {"token": first, "password": "a-long-password"}, SPONSOR)
    clock.advance(minutes=61)  # QUORUM_RESET_LINK_MINUTES: 60
    before = dump(engine)
    with pytest.raises(ValidationError, match="expired"):
        q.execute("reset_password", {"token": second, "password": "a-long-password"}, SPONSOR)
    assert dump(engine) == before
    with pytest.raises(PermissionDenied, match="only for themselves"):
        q.execute("request_password_reset", {"email": OFFICER}, SPONSOR)
    q.execute("request_password_reset", {}, SPONSOR)
    q.execute("reset_password", {"token": link_token(engine, SPONSOR),
                                 "password": "a-long-password"}, SPONSOR)  # fmt: skip


def test_the_system_sets_a_first_password_only(sqlite_board) -> None:
    q, engine, *_ = sqlite_board
    q.execute("register_person", {"name": "New", "email": "new@m.example", "roles": ["officer"]},
              "system")  # the bootstrap: the system registers the first people directly
    q.execute("set_password", {"email": "new@m.example", "password": "first-password"}, "system")
    with pytest.raises(PermissionDenied, match="already has a password"):
        q.execute("set_password", {"email": "new@m.example", "password": "second-one!"}, "system")
