"""The command contracts (engine/commands/contracts.py): one per command, read once
on the command bus, with the messages the handlers gave before contracts existed;
every entry point reads through them, and the REST API publishes them."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from moneykit import OFFICER, bid_refs, grant_ref, money_board
from webkit import api_token, bearer

from engine.commands import contracts, handlers
from engine.commands.args import Args
from engine.commands.service import REGISTRY
from engine.domain.errors import ValidationError
from quorum_web.app import create_app

assert handlers  # every command registered


def test_every_command_has_its_contract_and_every_contract_a_command() -> None:
    assert set(contracts.CONTRACTS) == set(REGISTRY)
    for name, spec in REGISTRY.items():
        assert spec.contract is contracts.CONTRACTS[name]
        assert spec.contract.command == name


def test_a_command_without_a_contract_cannot_be_registered() -> None:
    from engine.commands.service import command

    with pytest.raises(ValueError, match="no_such_thing has no contract"):
        command("no_such_thing")(lambda uow, args: {})
    assert "no_such_thing" not in REGISTRY


# (command, arguments, the message, the field) -- the words of engine/args.py, kept
REFUSALS = [
    ("submit_bid", {"sponsor": "Kent", "grant": "1"}, "submit_bid: title: is required", "title"),
    ("submit_bid", {"title": "   ", "sponsor": "Kent"}, "submit_bid: title: is required", "title"),
    (
        "submit_bid",
        {"title": "T", "sponsor": "Kent"},
        "submit_bid: grant: is required (an amount in pounds, e.g. 100,000)",
        "grant",
    ),
    (
        "submit_bid",
        {"title": "T", "sponsor": "Kent", "grant": True},
        "submit_bid: grant: must be an amount in pounds, not yes/no",
        "grant",
    ),
    (
        "submit_bid",
        {"title": "T", "sponsor": "Kent", "grant": "-5"},
        "submit_bid: grant: '-5' is negative; amounts must be zero or more "
        "(write e.g. 100,000 or £1.5m)",
        "grant",
    ),
    (
        "submit_bid",
        {"title": "T" * 301, "sponsor": "Kent", "grant": "5"},
        "submit_bid: title: is 301 characters; at most 300 allowed",
        "title",
    ),
    (
        "submit_bid",
        {"title": ["T"], "sponsor": "Kent", "grant": "5"},
        "submit_bid: title: must be text, got list",
        "title",
    ),
    (
        "submit_bid",
        {"title": "T", "sponsor": "Kent", "grant": "5", "invest_to_save": "perhaps"},
        "submit_bid: invest_to_save: 'perhaps' is not yes or no",
        "invest_to_save",
    ),
    (
        "submit_bid",
        {"title": "T", "sponsor": "Kent", "grant": "5", "partners": {"a": 1}},
        "submit_bid: partners: must be a list, got dict",
        "partners",
    ),
    (
        "submit_bid",
        {"title": "T", "sponsor": "Kent", "grant": "5", "published_points": "-1"},
        "submit_bid: published_points: -1 is below the minimum of 0",
        "published_points",
    ),
    # a bad known field is reported before an unknown one, as before
    (
        "submit_bid",
        {"titel": "T", "sponsor": "Kent", "grant": "5"},
        "submit_bid: title: is required",
        "title",
    ),
    (
        "submit_bid",
        {"title": "T", "sponsor": "Kent", "grant": "5", "titel": "T"},
        "submit_bid: unknown field(s) titel; this command takes: builds_on_proven, grant, "
        "grant_pence, invest_to_save, milestones, partners, partnership, pot, published_points, "
        "ref, round, savings, sponsor, title",
        "titel",
    ),
    (
        "decide",
        {"meeting": "M", "item": "B-1", "outcome": "maybe"},
        "decide: outcome: 'maybe' is not allowed; use one of: approve, reject, defer, refer_back",
        "outcome",
    ),
    (
        "open_round",
        {"name": "R", "pot": "P", "closes": "soon", "rules": "r"},
        "open_round: closes: 'soon' is not a date (write e.g. 2011-04-20 or 20/04/2011)",
        "closes",
    ),
    (  # a day and month left out are named, never read as 1 January
        "open_round",
        {"name": "R", "pot": "P", "closes": "//2011", "rules": "r"},
        "open_round: closes: '//2011' has no day or month (write the day, month and year, "
        "e.g. 20/04/2011 or 2011-04-20)",
        "closes",
    ),
    (
        "revoke_api_token",
        {"token": "2.5"},
        "revoke_api_token: token: '2.5' is not a whole number",
        "token",
    ),
    (
        "create_programme",
        {"name": "P", "pots": ["a"]},
        "create_programme: pots: must be a mapping of name: value, got list",
        "pots",
    ),
    (
        "register_person",
        {"name": "A", "email": "a@b.example", "roles": ["officer", {"x": 1}]},
        "register_person: roles[2]: must be a name, got dict",
        "roles[2]",
    ),
    # the kinds of return, in the order the commands have always listed them
    # (engine/domain/words.py RETURN_KINDS; the rule files list KIND_WORDS's order)
    (
        "submit_return",
        {"grant": "G-1", "kind": "minutes", "period_end": "2011-06-30"},
        "submit_return: kind: 'minutes' is not allowed; use one of: savings, progress, "
        "monitoring, benefits",
        "kind",
    ),
    # required only with another field's value
    (
        "submit_return",
        {"grant": "G-1", "kind": "savings", "period_end": "2011-06-30"},
        "submit_return: savings_delivered: is required (an amount in pounds, e.g. 100,000)",
        "savings_delivered",
    ),
    (
        "lodge_deposit",
        {"grant": "G", "amount": "10", "basis": "explicit", "target": "5", "target_date": "2012"},
        "lodge_deposit: shares: is required (a mapping of name: value)",
        "shares",
    ),
    # a field whose name is a Python keyword
    ("accept_return", {}, "accept_return: return: is required", "return"),
    # amend: a field given must be given whole
    ("amend_bid", {"ref": "B-1", "pot": "  "}, "amend_bid: pot: is required", "pot"),
    # every command takes the version it saw, and it must be a number
    (
        "close_meeting",
        {"meeting": "M", "version": "two"},
        "close_meeting: version: 'two' is not a whole number",
        "version",
    ),
]


@pytest.mark.parametrize(("command", "data", "message", "field"), REFUSALS)
def test_contract_refuses_with_the_handlers_words(
    command: str, data: dict, message: str, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        contracts.read(command, data)
    assert (refused.value.message, refused.value.field) == (message, field)


def test_contract_reads_typed_values() -> None:
    read = contracts.read(
        "submit_return",
        {
            "grant": " G-1 ",
            "kind": "Savings",
            "period_end": "30/06/2011",
            "savings_delivered": "£1.5m",
            "savings_anticipated": 0,
            "version": "3",
        },
    )
    assert read == {
        "grant": "G-1",
        "kind": "savings",
        "period_end": dt.date(2011, 6, 30),
        "savings_delivered": 150_000_000,
        "savings_anticipated": 0,
        "due": None,
        "progress": [],  # issue 13 item 6: what a progress or monitoring return reports
        "spend": None,
        "issues": "",
        "risks": "",
        "version": 3,
    }
    assert contracts.read("amend_bid", {"ref": "B-1", "title": ""})["title"] is None
    assert contracts.read("accept_return", {"return": "R-1"})["return"] == "R-1"
    equal = {"grant": "G", "amount": "10", "basis": "equal", "target": "5", "target_date": "2012"}
    assert contracts.read("lodge_deposit", {**equal, "shares": ""})["shares"] == {}


def test_args_reads_through_the_contract_once_and_refuses_fields_it_lacks() -> None:
    args = Args("withdraw_bid", {"ref": "B-1", "reason": "merged"}, contracts.WithdrawBid)
    assert args.text("ref") == "B-1"
    typed = args._typed
    assert args.text("reason", max_len=2000) == "merged"
    assert args._typed is typed  # read once
    with pytest.raises(KeyError, match="no field 'title'"):
        args.text("title")
    # without a contract (a handler's nested values), each read parses its own field
    sub = Args("submit_bid", {"milestones[1].due": "31/12/2011", "milestones[1].x": 1})
    assert sub.date("milestones[1].due") == dt.date(2011, 12, 31)
    with pytest.raises(ValidationError, match=r"unknown field\(s\) milestones\[1\]\.x"):
        sub.done()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('contracts') / 'quorum.db'}"
    q, engine, clock = money_board(url)
    clock.set(dt.date(2011, 7, 5))
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as client:
        yield q, engine, client, api_token(q, OFFICER)


def test_the_bus_and_the_api_give_the_same_refusal(world) -> None:
    # (the CLI, scenario files and web forms hand the bus a dict, as q.execute here)
    q, engine, client, token = world
    bid = bid_refs(engine, "Shared ICT")[0]
    args = {"ref": bid, "reason": "merged", "colour": "blue"}
    message = "withdraw_bid: unknown field(s) colour; this command takes: reason, ref"
    with pytest.raises(ValidationError) as refused:
        q.execute("withdraw_bid", args, OFFICER)
    assert (refused.value.message, refused.value.field) == (message, "colour")
    answer = client.post("/api/v1/commands/withdraw_bid", json=args, headers=bearer(token))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid", "message": message, "field": "colour"}


def test_openapi_publishes_every_command_with_its_contract(world) -> None:
    _, _, client, _ = world
    doc = client.get("/api/v1/openapi.json").json()
    schemas = doc["components"]["schemas"]
    generic = doc["paths"]["/api/v1/commands/{name}"]["post"]
    body = generic["requestBody"]["content"]["application/json"]["schema"]
    assert len(body["anyOf"]) == len(REGISTRY)
    for name, spec in REGISTRY.items():
        operation = doc["paths"][f"/api/v1/commands/{name}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{spec.contract.__name__}"
        assert ref in [r["$ref"] for r in body["anyOf"]]
        assert schemas[spec.contract.__name__] == spec.contract.model_json_schema()
        assert "Idempotency-Key" in [p["name"] for p in operation["parameters"]]
    submit = schemas["SubmitBid"]
    # the grant in pounds (a string) or in pence (grant_pence, an integer): one of them
    assert submit["required"] == ["title", "sponsor"]
    assert submit["allOf"] == [{"anyOf": [{"required": ["grant"]}, {"required": ["grant_pence"]}]}]
    assert submit["properties"]["grant"]["type"] == "string"
    assert submit["properties"]["grant_pence"]["anyOf"][0]["type"] == "integer"
    assert submit["additionalProperties"] is False
    assert "version" in submit["properties"]


def test_rest_command_with_an_idempotency_key_runs_once(world) -> None:
    q, engine, client, token = world
    grant = grant_ref(engine, "Shared ICT")
    body = {"grant": grant, "kind": "progress", "period_end": "2011-06-30"}
    headers = {**bearer(token), "Idempotency-Key": "contracts-return-1"}
    first = client.post("/api/v1/commands/submit_return", json=body, headers=headers)
    again = client.post("/api/v1/commands/submit_return", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()  # the first answer again: one return, not two
