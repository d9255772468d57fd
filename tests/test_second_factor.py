"""The second factor (TOTP) a programme may require to sign delegated
decisions and to release payments (issue 11, separation of duties).

Switched on here with ``configure_second_factor``; the demo and every other
test leave it off (the programme's ``second_factor`` is ``{}``), so their
signatures and payments need no code, as before."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
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
    VICE2,
    bid_refs,
    grant_ref,
    money_board,
)
from sqlalchemy import func, select
from webkit import api_token, bearer, csrf_of, set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain import totp
from engine.domain.clock import FixedClock
from engine.domain.errors import NotFound, PermissionDenied, ValidationError
from engine.domain.yamlio import load_yaml
from engine.store.db import create_schema, make_engine
from engine.store.factors import start_enrolment
from engine.store.models import (
    AuditEvent,
    Payment,
    Person,
    Programme,
    SecondFactor,
    Signature,
)
from quorum_web.app import create_app

DEMO = Path(__file__).resolve().parents[1] / "engine" / "data" / "demo.yaml"
ON = {"sign": ["chair", "vice_chair"], "release_payment": ["finance", "officer"]}


@pytest.fixture
def board(sqlite_url):
    q, engine, clock = money_board(sqlite_url)
    clock.set(dt.date(2011, 7, 5))
    for ours in ("Shared ICT", "Invest to save"):
        key = {"grant": grant_ref(engine, ours), "milestone": 1}
        who = SPONSOR if ours == "Shared ICT" else SPONSOR2
        q.execute("submit_evidence", {**key, "summary": "done"}, who)
        q.execute("verify_milestone", key, OFFICER)
    yield q, engine, clock
    engine.dispose()


def switch_on(q) -> None:
    out = q.execute("configure_second_factor", ON, DIRECTOR)
    assert out["second_factor"] == ON


def person_id(engine, email: str) -> int:
    with engine.connect() as c:
        return c.execute(select(Person.id).where(Person.email == email)).scalar_one()


def enrol(q, engine, clock, email: str) -> str:
    """Set up and confirm a second factor for ``email``; its secret."""
    secret = start_enrolment(engine, person_id(engine, email), clock.now())
    q.execute("confirm_second_factor", {"code": totp.code_at(secret, clock.now())}, email)
    clock.advance(seconds=30)  # the confirming code is used: the next one is fresh
    return secret


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as c:
        return (
            c.execute(select(func.count()).select_from(Payment)).scalar_one(),
            c.execute(select(func.count()).select_from(Signature)).scalar_one(),
            c.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
        )


def pay(q, grant: str, who: str = OFFICER2, **kw):
    return q.execute("release_payment", {"grant": grant, "milestone": 1, **kw}, who)


# ------------------------------------------------------------------ the codes


def test_a_code_is_accepted_once_in_its_window_and_refused_otherwise() -> None:
    secret = totp.new_secret()
    now = dt.datetime(2011, 7, 5, 9, 0, 10, tzinfo=dt.UTC)
    code = totp.code_at(secret, now)
    step = totp.check(secret, code, now, 0)
    assert step == totp.step_of(now)
    with pytest.raises(totp.CodeRefused, match="already used"):
        totp.check(secret, code, now, step)  # replayed within its window
    # a phone a step behind or ahead is accepted; two steps is not
    late = dt.datetime(2011, 7, 5, 9, 0, 40, tzinfo=dt.UTC)
    assert totp.check(secret, code, late, 0) == step
    with pytest.raises(totp.CodeRefused, match="wrong or out of date"):
        totp.check(secret, code, now + dt.timedelta(seconds=70), 0)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(totp.CodeRefused, match="wrong or out of date"):
        totp.check(secret, wrong, now, 0)
    for bad in ("", "12345", "1234567", "12a456"):
        with pytest.raises(totp.CodeRefused, match="6-digit code"):
            totp.check(secret, bad, now, 0)
    assert totp.check(secret, f"{code[:3]} {code[3:]}", now, 0) == step  # typed with a space
    uri = totp.provisioning_uri(secret, "chris@m.example")
    assert uri.startswith("otpauth://totp/Quorum:chris%40m.example?") and f"secret={secret}" in uri


# ------------------------------------------------------------------ not required: unchanged


def test_without_the_programme_asking_signing_and_paying_need_no_code(board) -> None:
    q, engine, clock = board
    with engine.connect() as c:
        assert c.execute(select(Programme.second_factor)).scalar_one() == {}
    assert pay(q, grant_ref(engine, "Shared ICT"))["payment"]
    enrol(q, engine, clock, FINANCE)  # having one set up does not make it required
    assert pay(q, grant_ref(engine, "Invest to save"), FINANCE)["payment"]
    (bid,) = bid_refs(engine, "Delegated ask")
    dd = q.execute(
        "request_delegated_decision", {"bid": bid, "reasons": "r", "alternatives": "a"}, OFFICER
    )["ref"]
    q.execute("sign", {"item": dd, "decision": "approve"}, CHAIR)
    q.execute("sign", {"item": dd, "decision": "approve"}, VICE1)
    # the Chair and the Vice Chairs (rules/delegation.yaml 2012.1): every one of them signs
    assert q.execute("sign", {"item": dd, "decision": "approve"}, VICE2)["state"] == "approved"


# ------------------------------------------------------------------ required: payments


def test_a_payment_needs_a_fresh_code_from_a_role_the_programme_names(board) -> None:
    q, engine, clock = board
    switch_on(q)
    ours, theirs = grant_ref(engine, "Shared ICT"), grant_ref(engine, "Invest to save")
    before = counts(engine)
    # not set up: refused, saying what to do
    with pytest.raises(PermissionDenied, match="has not set one up: set it up on the Account"):
        pay(q, ours)
    secret = enrol(q, engine, clock, OFFICER2)
    before = counts(engine)
    with pytest.raises(ValidationError) as no_code:
        pay(q, ours)
    assert no_code.value.field == "otp"
    want = "P requires a second factor from the role officer to release payments"
    assert want in no_code.value.message
    code = totp.code_at(secret, clock.now())
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(ValidationError, match="otp: is wrong or out of date"):
        pay(q, ours, otp=wrong)
    assert counts(engine) == before  # nothing written by a refusal

    assert pay(q, ours, otp=code)["payment"]
    with pytest.raises(ValidationError, match="otp: this code was already used"):
        pay(q, theirs, otp=code)  # the same code again, still within its window
    assert counts(engine)[0] == before[0] + 1
    clock.advance(seconds=30)
    assert pay(q, theirs, otp=totp.code_at(secret, clock.now()))["payment"]


def test_a_refused_payment_does_not_use_up_its_code(board) -> None:
    q, engine, clock = board
    switch_on(q)
    secret = enrol(q, engine, clock, OFFICER2)
    code = totp.code_at(secret, clock.now())
    with pytest.raises(NotFound):
        pay(q, grant_ref(engine, "Shared ICT"), otp=code, milestone=9)
    assert pay(q, grant_ref(engine, "Shared ICT"), otp=code)["payment"]


# ------------------------------------------------------------------ required: signatures


def test_a_signature_needs_a_fresh_code_when_the_programme_asks(board) -> None:
    q, engine, clock = board
    switch_on(q)
    (bid,) = bid_refs(engine, "Delegated ask")
    dd = q.execute(  # the 2011.1 scheme: the Chair and one Vice Chair approve
        "request_delegated_decision",
        {"bid": bid, "reasons": "r", "alternatives": "a", "scheme": "delegation-2011"},
        OFFICER,
    )["ref"]
    chair, vice = enrol(q, engine, clock, CHAIR), enrol(q, engine, clock, VICE1)
    before = counts(engine)
    want = "otp: P requires a second factor from the role chair to sign delegated"
    with pytest.raises(ValidationError, match=want):
        q.execute("sign", {"item": dd, "decision": "approve"}, CHAIR)
    with pytest.raises(ValidationError, match="otp: is wrong"):
        q.execute("sign", {"item": dd, "decision": "approve", "otp": "000000"}, CHAIR)
    assert counts(engine) == before
    code = totp.code_at(chair, clock.now())
    q.execute("sign", {"item": dd, "decision": "approve", "otp": code}, CHAIR)
    # the vice chair's own fresh code, not the Chair's
    with pytest.raises(ValidationError, match="otp: is wrong"):
        q.execute("sign", {"item": dd, "decision": "approve", "otp": code}, VICE1)
    out = q.execute(
        "sign",
        {"item": dd, "decision": "approve", "otp": totp.code_at(vice, clock.now())},
        VICE1,
    )
    assert out["state"] == "approved" and out["grant"]


# ------------------------------------------------------------------ enrolment and its commands


def test_enrolment_is_confirmed_with_a_code_and_removed_with_one(board) -> None:
    q, engine, clock = board
    pid = person_id(engine, CHAIR)
    secret = start_enrolment(engine, pid, clock.now())
    with pytest.raises(ValidationError, match="code: is wrong"):
        q.execute("confirm_second_factor", {"code": "000000"}, CHAIR)
    secret = start_enrolment(engine, pid, clock.now())  # starting again replaces the key
    q.execute("confirm_second_factor", {"code": totp.code_at(secret, clock.now())}, CHAIR)
    with pytest.raises(ValidationError, match="already have one set up"):
        start_enrolment(engine, pid, clock.now())
    # the secret is in no event and no result
    with engine.connect() as c:
        assert not c.execute(select(AuditEvent).where(AuditEvent.after.contains(secret))).first()
    with pytest.raises(PermissionDenied, match="may remove only their own"):
        q.execute("remove_second_factor", {"email": CHAIR}, OFFICER)
    with pytest.raises(ValidationError, match="otp: give a current code"):
        q.execute("remove_second_factor", {}, CHAIR)
    clock.advance(seconds=30)
    q.execute("remove_second_factor", {"otp": totp.code_at(secret, clock.now())}, CHAIR)
    # a director may remove another person's (a lost phone)
    enrol(q, engine, clock, VICE1)
    assert q.execute("remove_second_factor", {"email": VICE1}, DIRECTOR)["second_factor"] == (
        "removed"
    )


def test_only_a_director_configures_it_and_roles_are_checked(board) -> None:
    q, engine, clock = board
    with pytest.raises(PermissionDenied, match="needs the role director"):
        q.execute("configure_second_factor", ON, OFFICER)
    with pytest.raises(ValidationError, match="release_payment: 'banker' is not a role"):
        q.execute("configure_second_factor", {"release_payment": ["banker"]}, DIRECTOR)
    switch_on(q)
    q.execute("configure_second_factor", {}, DIRECTOR)  # and off again
    assert pay(q, grant_ref(engine, "Shared ICT"))["payment"]


# ------------------------------------------------------------------ through the web and the API


def test_the_code_through_the_web_form_and_the_api_field(board, sqlite_url) -> None:
    q, engine, clock = board
    switch_on(q)
    set_passwords(q, OFFICER2, FINANCE)
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    ours, theirs = grant_ref(engine, "Shared ICT"), grant_ref(engine, "Invest to save")
    # enrolment on the account page: the key shown, then confirmed by the command
    web = TestClient(app)
    assert sign_in(web, OFFICER2).status_code == 303
    token = csrf_of(web, "/account")
    r = web.post("/account/second-factor", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = web.get("/account").text
    assert "otpauth://totp/Quorum:" in page
    with engine.connect() as c:
        secret = c.execute(
            select(SecondFactor.secret)
            .join(Person, Person.id == SecondFactor.person_id)
            .where(Person.email == OFFICER2)
        ).scalar_one()
    assert secret in page  # shown as text too, for typing in
    form = {"csrf_token": token, "_next": "/account", "_form": "confirm-2fa"}
    r = web.post(
        "/do/confirm_second_factor",
        data={**form, "code": totp.code_at(secret, clock.now())},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    assert "On since" in web.get("/account").text
    clock.advance(seconds=30)
    # the grant page offers the code field; without a code the form says what is missing
    assert 'name="otp"' in web.get(f"/grants/{ours}").text
    pay_form = {"csrf_token": token, "_next": f"/grants/{ours}", "_form": "pay-1"}
    r = web.post(
        "/do/release_payment", data={**pay_form, "grant": ours, "milestone": "1"}
    )
    assert r.status_code == 400 and "give the code your authenticator app shows now" in r.text
    now = clock.now()
    r = web.post(
        "/do/release_payment",
        data={**pay_form, "grant": ours, "milestone": "1", "otp": totp.code_at(secret, now)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    # the API: the field otp; finance, not set up, is told so
    fin = bearer(api_token(q, FINANCE))
    api = TestClient(app)
    r = api.post("/api/v1/commands/release_payment", json={"grant": theirs, "milestone": 1},
                 headers=fin)  # fmt: skip
    assert r.status_code == 403 and r.json()["field"] == "otp"
    fin_secret = enrol(q, engine, clock, FINANCE)
    code = totp.code_at(fin_secret, clock.now())
    body = {"grant": theirs, "milestone": 1, "otp": code}
    r = api.post("/api/v1/commands/release_payment", json=body, headers=fin)
    assert r.status_code == 200, r.text



def test_a_programme_declares_it_when_established(sqlite_url) -> None:
    """The programme's header (a scenario's or the demo's ``programme:``) may name
    the roles; the demo names none."""
    engine = make_engine(sqlite_url)
    create_schema(engine)
    clock = FixedClock(dt.date(2011, 4, 1))
    q = Quorum(engine, clock)
    with pytest.raises(ValidationError, match="second_factor.pay: not an action"):
        q.execute(
            "create_programme",
            {"name": "P", "pots": {"Main": "1,000"}, "second_factor": {"pay": ["finance"]}},
            "system",
        )
    with pytest.raises(ValidationError, match="second_factor.sign: 'mayor' is not a role"):
        q.execute(
            "create_programme",
            {"name": "P", "pots": {"Main": "1,000"}, "second_factor": {"sign": "chair; mayor"}},
            "system",
        )
    out = q.execute(
        "create_programme",
        {"name": "P", "pots": {"Main": "1,000"}, "second_factor": {"sign": "vice chair; chair"}},
        "system",
    )
    assert out["second_factor"] == {"sign": ["chair", "vice_chair"]}
    with engine.connect() as c:
        assert c.execute(select(Programme.second_factor)).scalar_one() == out["second_factor"]
    engine.dispose()


def test_the_demo_requires_no_second_factor() -> None:
    header = load_yaml(DEMO.read_text(encoding="utf-8"))["programme"]
    assert "second_factor" not in header  # off: the quick start signs and pays without codes
