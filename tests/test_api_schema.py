"""schemathesis against /api/v1/openapi.json: generated requests, valid and
invalid, against the in-process app, signed in as an officer with an API
token. No 5xx, and every response keeps the document's promises (status
code, content type, headers, body schema; invalid input refused with a 4xx).

(schemathesis' pytest fixture loader does not run under pytest 9, so the
operations are driven here with their Hypothesis strategies directly.)
"""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from moneykit import OFFICER, SPONSOR, SPONSOR2, bid_refs, grant_ref, money_board
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from webkit import api_token

from quorum_web.app import create_app

EXAMPLES = 15  # per operation and mode: bounded, a few seconds in all


@pytest.fixture(scope="module")
def app_and_token(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('schema') / 'quorum.db'}"
    q, engine, clock = money_board(url)
    clock.set(dt.date(2011, 7, 5))
    for title, who in (("Shared ICT", SPONSOR), ("Invest to save", SPONSOR2)):
        q.execute(
            "submit_return",
            {"grant": grant_ref(engine, title), "kind": "progress", "period_end": "2011-06-30"},
            who,
        )
    dd = q.execute(
        "request_delegated_decision",
        {"bid": bid_refs(engine, "Delegated ask")[0], "reasons": "urgent", "alternatives": "wait"},
        OFFICER,
    )["ref"]
    app = create_app(url, scheduler=False, clock=clock)
    app.state.known = {
        "/api/v1/bids/{ref}": bid_refs(engine, "Shared ICT")[0],
        "/api/v1/grants/{ref}": grant_ref(engine, "Invest to save"),
        "/api/v1/returns/{ref}": q.execute(
            "submit_return",
            {
                "grant": grant_ref(engine, "Shared ICT"),
                "kind": "progress",
                "period_end": "2011-09-30",
            },
            SPONSOR,
        )["return"],
        "/api/v1/meetings/{ref}": "BOARD-APR",
        "/api/v1/rounds/{ref}": "R1",
        "/api/v1/delegated-decisions/{ref}": dd,
    }
    return app, api_token(q, OFFICER)


def run_operation(operation, mode: GenerationMode, **fixed: dict) -> list[str]:
    failures: list[str] = []
    # The command endpoint's body is free-form by design (each command reads and
    # validates its own arguments), so a schema-valid body may still be refused with a
    # 400 that names the field: "valid data accepted" cannot hold there, all else does.
    free_form = operation.label == "POST /api/v1/commands/{name}"
    excluded = [positive_data_acceptance] if free_form else []

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case) -> None:
        case.call_and_validate(excluded_checks=excluded)

    try:
        check()
    except Exception as exc:  # collect: report every operation that fails
        failures.append(f"{operation.label} [{mode.value}{fixed or ''}]: {exc}"[:3000])
    return failures


def test_api_keeps_its_promises(app_and_token) -> None:
    app, token = app_and_token
    # the token goes in through the document's own security scheme (HTTPBearer), so
    # negative cases that drop or break it are checked too
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"HTTPBearer": {"bearer": token}}}})
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=config)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 17, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += run_operation(operation, mode)
        # random refs are all 404s: also ask for items that exist, whole and valid
        ref = app.state.known.get(operation.path)
        if ref is not None:
            failures += run_operation(
                operation, GenerationMode.POSITIVE, path_parameters={"ref": ref}
            )
    assert not failures, "\n\n".join(dict.fromkeys(failures))
