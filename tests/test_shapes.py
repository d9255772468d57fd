"""The read views' shapes (engine/read/shapes.py) are what they claim, and the
REST API publishes them.

The views build plain dicts typed by their shapes (TypedDicts: mypy checks the
keys and types they write, nothing checks at run time until the API's edge).
Here every row of every view the REST API serves, after real scenarios, has
exactly its shape's keys (nested shapes too) and validates strictly to itself,
so a view that puts a date where text is declared, a Decimal where pence are
declared, or forgets or adds a key, fails here rather than in a client. And
the API answers with exactly the shapes' keys (no internal field), and its
OpenAPI document names a shape for every read endpoint.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from moneykit import OFFICER, SPONSOR, bid_refs, grant_ref, money_board
from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session
from typing_extensions import is_typeddict
from webkit import api_token, bearer

from engine.entry.replay import run
from engine.read import money, returns, shapes, views
from engine.store.db import make_engine
from quorum_web.app import create_app

SCENARIOS = Path(__file__).parent / "scenarios"


def keys_off(value: Any, tp: Any, where: str = "") -> list[str]:
    """Where ``value`` has keys other than its TypedDict's (nested ones too)."""
    if is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        off = set(value) ^ set(hints)
        out = [f"{where or tp.__name__}: {sorted(off)}"] if off else []
        for k, v in value.items():
            if k in hints:
                out += keys_off(v, hints[k], f"{where}.{k}")
        return out
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [bad for i, v in enumerate(value) for bad in keys_off(v, item, f"{where}[{i}]")]
    if origin in (typing.Union, types.UnionType) and value is not None:
        typed = [a for a in typing.get_args(tp) if is_typeddict(a) or typing.get_origin(a) is list]
        return keys_off(value, typed[0], where) if typed else []
    return []


def check(row: Mapping[str, Any], shape: Any) -> None:
    """``row`` has exactly its shape's keys, nested too, and validates strictly
    (no coercion: ISO text is text, pence are int) to an equal row."""
    assert keys_off(row, shape) == []
    assert TypeAdapter(shape).validate_python(row, strict=True) == row


def views_of(engine, today: dt.date) -> dict[str, list[tuple[Mapping[str, Any], Any]]]:
    with Session(engine) as s:
        rounds = views.rounds(s)
        out: dict[str, list[tuple[Mapping[str, Any], Any]]] = {
            "bids": [(b, shapes.BidRecord) for b in views.bids(s)],
            "public bids": [(b, shapes.Bid) for b in views.public(views.bids(s))],
            "pots": [(p, shapes.Pot) for p in views.pots(s)],
            "rounds": [(r, shapes.RoundSummary) for r in rounds],
            "meetings": [(m, shapes.Meeting) for m in views.meetings(s)],
            "actions": [(a, shapes.MeetingAction) for a in views.actions(s)],
            "rankings": [
                (views.round_ranking(s, r["ref"]), shapes.RoundRanking)
                for r in rounds
                if r["state"] != "open"
            ],
        }
    with engine.connect() as conn:
        out["grants"] = [(g, shapes.Grant) for g in money.grants(conn, today)]
        out["delegated"] = [(d, shapes.DelegatedDecision) for d in money.delegated_decisions(conn)]
        out["returns"] = [(r, shapes.ReturnRow) for r in returns.returns(conn, today)]
    return out


def replay_and_check(scenario: str, url: str, expect: set[str]) -> None:
    result = run(SCENARIOS / scenario, url)
    assert result.ok, result.failed
    engine = make_engine(url)
    try:
        found = views_of(engine, dt.date(2012, 6, 1))
    finally:
        engine.dispose()
    assert {name for name, rows in found.items() if rows} >= expect
    for rows in found.values():
        for row, shape in rows:
            check(row, shape)


def test_money_views_have_their_shapes(db_url: str) -> None:
    """Grants with payments, changes, instalments and recoveries; delegated
    decisions: on SQLite and PostgreSQL (whose sums come back as Decimal)."""
    replay_and_check(
        "money-2011-12.yaml", db_url, {"bids", "grants", "delegated", "returns", "meetings"}
    )


@pytest.mark.parametrize(
    ("scenario", "expect"),
    [
        ("board-2011-04.yaml", {"bids", "pots", "rounds", "rankings", "meetings", "actions"}),
        ("returns-2011-12.yaml", {"grants", "returns"}),
    ],
)
def test_round_and_return_views_have_their_shapes(
    tmp_path: Path, scenario: str, expect: set[str]
) -> None:
    replay_and_check(scenario, f"sqlite:///{tmp_path / 'quorum.db'}", expect)


def test_a_row_off_its_shape_is_caught() -> None:
    """The check above can fail: a date object where ISO text is declared, a
    key left out, a key added (nested too)."""
    good: shapes.MeetingAction = {
        "ref": "BOARD-APR/A1", "meeting": "BOARD-APR", "number": 1, "what": "w",
        "owner": "o", "owner_kind": "person", "due_on": "2011-05-01",
        "target_meeting": None, "by": "2011-05-01", "state": "open", "note": "",
        "closed_by": "", "closed_on": None, "due": False,
    }  # fmt: skip
    check(good, shapes.MeetingAction)
    with pytest.raises(ValidationError):
        check(good | {"due_on": dt.date(2011, 5, 1)}, shapes.MeetingAction)  # type: ignore[operator]
    missing = {k: v for k, v in good.items() if k != "owner"}
    with pytest.raises(AssertionError):
        check(missing, shapes.MeetingAction)
    with pytest.raises(ValidationError):  # and the validator alone refuses it too
        TypeAdapter(shapes.MeetingAction).validate_python(missing, strict=True)
    with pytest.raises(AssertionError):
        check(good | {"extra": 1}, shapes.MeetingAction)  # type: ignore[operator]
    meeting = {
        "ref": "M", "title": "t", "date": "2011-05-01", "state": "held", "quorum": 1,
        "members": [], "present": [], "quorate": False, "agenda": [], "interests": [],
        "decisions": [], "actions": [good | {"extra": 1}],
    }  # fmt: skip
    with pytest.raises(AssertionError):
        check(meeting, shapes.Meeting)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('shapes') / 'quorum.db'}"
    q, engine, clock = money_board(url)
    clock.set(dt.date(2011, 7, 5))
    q.execute(
        "submit_return",
        {"grant": grant_ref(engine, "Shared ICT"), "kind": "progress", "period_end": "2011-06-30"},
        SPONSOR,
    )
    q.execute(
        "request_delegated_decision",
        {"bid": bid_refs(engine, "Delegated ask")[0], "reasons": "urgent", "alternatives": "wait"},
        OFFICER,
    )
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as client:
        client.headers.update(bearer(api_token(q, OFFICER)))
        yield client, engine


# every read endpoint: its path (a known ref where it takes one) and its shape
def read_endpoints(engine) -> list[tuple[str, Any]]:
    return [
        ("/api/v1/bids", list[shapes.Bid]),
        ("/api/v1/grants", list[shapes.Grant]),
        (f"/api/v1/grants/{grant_ref(engine, 'Shared ICT')}", shapes.Grant),
        ("/api/v1/rounds", list[shapes.RoundSummary]),
        ("/api/v1/rounds/R1", shapes.RoundRanking),
        ("/api/v1/meetings", list[shapes.Meeting]),
        ("/api/v1/meetings/BOARD-APR", shapes.Meeting),
        ("/api/v1/delegated-decisions", list[shapes.DelegatedDecision]),
        ("/api/v1/returns", list[shapes.ReturnRow]),
        ("/api/v1/pots", list[shapes.Pot]),
    ]


def test_the_api_answers_exactly_the_shapes(api) -> None:
    """Every read endpoint answers its shape's keys, no more (a bid's internal
    id and facts are not published) and no fewer."""
    client, engine = api
    for path, shape in read_endpoints(engine):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        assert body, path
        check(body, shape)
    bid = client.get("/api/v1/bids").json()[0]
    assert not {"id", "_facts"} & set(bid)
    assert client.get(f"/api/v1/bids/{bid['ref']}").json() == bid


def test_the_openapi_document_describes_every_read_endpoint(api) -> None:
    """Each GET under /api/v1 answers 200 with a named schema (a shape of
    engine/read, or the web layer's own), whose properties are the shape's."""
    client, _ = api
    doc = client.get("/api/v1/openapi.json").json()
    components = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        if "get" not in item:
            continue
        schema = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
        assert ref, (path, schema)
        assert ref.rsplit("/", 1)[1] in components
    for name in ("Bid", "Grant", "RoundSummary", "RoundRanking", "Meeting", "DelegatedDecision",
                 "ReturnRow", "Pot", "RankedBid", "GrantMilestone", "SignatureLine"):  # fmt: skip
        shape = getattr(shapes, name)
        assert set(components[name]["properties"]) == set(typing.get_type_hints(shape)), name
    assert components["RankedBid"]["properties"]["funding"]["enum"] == [
        "committed", "above_line", "below_line", "not_eligible",
    ]  # fmt: skip
