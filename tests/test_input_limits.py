"""Issue 11, point 5: bad input that reached the database or gave a 500. Each
attack as it was reported, now refused with a message naming the field, and
nothing written (every row of every table, the audit chain among them, the same
before and after). docs/security.md "Input limits".
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moneykit import (
    DIRECTOR,
    OFFICER,
    SPONSOR,
    SPONSOR2,
    bid_refs,
    dump,
    grant_ref,
    money_board,
)
from sqlmodel import Session
from webkit import api_token, bearer, csrf_of, set_passwords, sign_in

from engine.domain.errors import QuorumError, ValidationError
from engine.domain.money import MAX_PENCE, MoneyError, check_pence, parse_pounds
from engine.entry import replay
from engine.entry.importer import import_bids
from engine.store import audit
from quorum_web import uploads
from quorum_web.app import create_app

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


class World:
    def __init__(self, url: str, uploads_dir: Path) -> None:
        self.q, self.engine, self.clock = money_board(url)
        self.clock.set(dt.date(2011, 7, 5))
        self.app = create_app(url, scheduler=False, clock=self.clock)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.tokens = {
            who: api_token(self.q, who) for who in (OFFICER, DIRECTOR, SPONSOR, SPONSOR2)
        }
        for token in self.tokens.values():  # a token's first use is recorded: done here
            assert self.client.get("/api/v1/me", headers=bearer(token)).status_code == 200
        self.uploads = uploads_dir

    def post(self, who: str, name: str, body: object, status: int) -> dict:
        """POST a command through the API: the status expected, and nothing written
        when it is refused."""
        before = dump(self.engine)
        r = self.client.post(
            f"/api/v1/commands/{name}",
            content=json.dumps(body),  # ASCII: a lone surrogate goes as "\ud800", as sent
            headers={**bearer(self.tokens[who]), "Content-Type": "application/json"},
        )
        assert r.status_code == status, (r.status_code, r.text)
        if status >= 400:
            assert dump(self.engine) == before, "a refused command wrote to the database"
        return r.json()

    def post_raw(self, who: str, name: str, raw: bytes, status: int) -> dict:
        """JSON text as sent (a lone surrogate cannot be built with json=)."""
        before = dump(self.engine)
        r = self.client.post(
            f"/api/v1/commands/{name}",
            content=raw,
            headers={**bearer(self.tokens[who]), "Content-Type": "application/json"},
        )
        assert r.status_code == status, (r.status_code, r.text)
        assert dump(self.engine) == before
        return r.json()


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("QUORUM_UPLOAD_DIR", str(tmp_path / "uploads"))
    return World(sqlite_url, tmp_path / "uploads")


def bid(**kw: object) -> dict:
    return {
        "title": "Shared parking",
        "sponsor": "Rutland CC",
        "grant": "40,000",
        "pot": "Projects",
        **kw,
    }


# ---------------------------------------------------------------- money


def test_money_has_a_documented_maximum() -> None:
    assert MAX_PENCE == 100_000_000_000  # £1,000,000,000
    assert parse_pounds("£1,000,000,000") == MAX_PENCE
    assert parse_pounds("1000m") == MAX_PENCE
    for text in ("1,000,000,000.01", "1,100m", "92,233,720,368,547,758.07"):
        with pytest.raises(MoneyError, match=r"^grant: .* is more than £1,000,000,000, the most"):
            parse_pounds(text, "grant")
    assert check_pence(MAX_PENCE) == MAX_PENCE
    for bad, why in (
        (MAX_PENCE + 1, "more than £1,000,000,000"),
        (-1, "negative"),
        (True, "not a whole number"),
        (12.5, "not a whole number"),
    ):
        with pytest.raises(MoneyError, match=f"^amount_pence: .*{why}"):
            check_pence(bad)


def test_amounts_above_the_maximum_are_refused_by_name(world: World) -> None:
    # reported: £92 quadrillion and more was a 500, just below it was accepted
    for amount in ("92,233,720,368,547,758.08", "92,233,720,368,547,758.07", "1,000,000,000.01"):
        out = world.post(OFFICER, "submit_bid", bid(grant=amount), 400)
        assert out["field"] == "grant"
        assert "is more than £1,000,000,000, the most Quorum accepts" in out["message"]
    out = world.post(OFFICER, "submit_bid", bid(grant=None, grant_pence=MAX_PENCE + 1), 400)
    assert out["field"] == "grant_pence" and "more than £1,000,000,000" in out["message"]
    g = grant_ref(world.engine, "Shared ICT")
    out = world.post(
        OFFICER, "release_payment", {"grant": g, "milestone": 1, "amount": "2,000,000,000"}, 400
    )
    assert out["message"].startswith("release_payment: amount: '2,000,000,000' is more than")
    milestones = [{"outcome": "Go", "due": "2011-09-01", "payment": "£5,000,000,000"}]
    out = world.post(OFFICER, "submit_bid", bid(milestones=milestones), 400)
    assert (
        "milestones[1].payment" in out["message"] and "more than £1,000,000,000" in out["message"]
    )
    # whole numbers too (a milestone's number was a 500 above 2**63)
    out = world.post(OFFICER, "verify_milestone", {"grant": g, "milestone": 10**30}, 400)
    assert out["field"] == "milestone" and "above the maximum" in out["message"]


def test_a_bare_json_number_is_not_read_as_pounds(world: World) -> None:
    # reported: {"grant": 40000} was read as £40,000 while every answer is in pence
    out = world.post(OFFICER, "submit_bid", bid(grant=40000), 400)
    assert out["field"] == "grant"
    assert out["message"] == (
        "submit_bid: grant: 40000 is a bare number, pounds or pence? give pounds as a string, "
        'e.g. "1,250.00" or "£1250", or integer pence as grant_pence (125000 for £1,250)'
    )
    milestones = [{"outcome": "Go", "due": "2011-09-01", "payment": 40000}]
    out = world.post(OFFICER, "submit_bid", bid(milestones=milestones), 400)
    assert out["message"].startswith("submit_bid: milestones[1].payment: 40000 is a bare number")
    out = world.post(
        OFFICER,
        "lodge_deposit",
        {
            "pot": "Projects",
            "amount": "1000",
            "basis": "explicit",
            "target": "2000",
            "target_date": "2012-03-31",
            "shares": {"Rutland CC": 1000.5},
        },
        400,
    )
    assert "shares.Rutland CC: 1000.5 is a bare number" in out["message"]
    # both named forms are taken, and mean the same
    a = world.post(OFFICER, "submit_bid", bid(grant="£1,250.50"), 200)
    b = world.post(OFFICER, "submit_bid", bid(grant=None, grant_pence=125050), 200)
    c = world.post(OFFICER, "submit_bid", bid(grant="1250.50"), 200)
    assert a["grant_pence"] == b["grant_pence"] == c["grant_pence"] == 125050
    out = world.post(OFFICER, "submit_bid", bid(grant_pence=125050), 400)
    assert out["message"] == (
        "submit_bid: grant_pence: give grant (in pounds) or grant_pence (in pence), not both"
    )
    out = world.post(OFFICER, "submit_bid", bid(grant=None, grant_pence="12.50"), 400)
    assert out["field"] == "grant_pence" and "not a whole number of pence" in out["message"]


def test_a_json_number_is_not_a_date(world: World) -> None:
    for when in (20110720, 40744, 2011.5):
        out = world.post(
            OFFICER,
            "open_round",
            {"name": "R9", "pot": "Projects", "closes": when, "rules": "rules/scoring.yaml"},
            400,
        )
        assert out["field"] == "closes"
        assert "is a number, not a date; write it as text, e.g. 2011-04-20" in out["message"]


# ---------------------------------------------------------------- text


@pytest.mark.parametrize(
    "bad",
    [
        "Shared\x00parking",
        "Shared\ud800parking",
        "Shared\x1bparking",
        "Shared\x7fparking",
        "Shared\u0085parking",
    ],
)
def test_control_characters_and_lone_surrogates_are_refused(world: World, bad: str) -> None:
    out = world.post(OFFICER, "submit_bid", bid(title=bad), 400)
    assert out["field"] == "title"
    assert out["message"].startswith("submit_bid: title: has ")
    assert "at character 7" in out["message"]
    # in a list of names, a key of a mapping, a value passed as given, a field's name
    out = world.post(OFFICER, "submit_bid", bid(partners=["Melton BC", bad]), 400)
    assert out["message"].startswith("submit_bid: partners[2]: has ")
    out = world.post(DIRECTOR, "create_programme", {"name": "P2", "pots": {bad: "1000"}}, 400)
    assert out["message"].startswith("create_programme: pots (a key): has ")
    out = world.post(OFFICER, "submit_bid", bid(partnership=bad), 400)
    assert out["field"] == "partnership"
    out = world.post(OFFICER, "submit_bid", {**bid(), bad: "x"}, 400)
    assert out["message"].startswith("submit_bid: unknown field")


def test_a_lone_surrogate_as_sent_in_json_is_refused_not_a_500(world: World) -> None:
    raw = b'{"title": "A\\ud800", "sponsor": "Rutland CC", "grant": "5", "pot": "Projects"}'
    out = world.post_raw(OFFICER, "submit_bid", raw, 400)
    assert out["field"] == "title" and "unpaired surrogate (U+D800)" in out["message"]
    raw = b'{"title": "A", "sponsor": "Rutland CC", "grant": "5", "\\udc00": 1}'
    out = world.post_raw(OFFICER, "submit_bid", raw, 400)
    assert out["message"].startswith("submit_bid: unknown field '\\udc00'")


def test_line_breaks_only_in_long_text(world: World) -> None:
    # reported: a title with a line break was accepted, and its receipt email failed for good
    out = world.post(OFFICER, "submit_bid", bid(title="Shared\r\nBcc: all@example.org"), 400)
    assert out["message"] == (
        "submit_bid: title: has a line break (U+000D) at character 7; it must be one line "
        "(line breaks are allowed only in long text such as reasons and notes)"
    )
    ref = world.post(SPONSOR, "submit_bid", bid(), 200)["ref"]
    out = world.post(SPONSOR, "withdraw_bid", {"ref": ref, "reason": "one\nor two\n\tlines"}, 200)
    assert out["state"] == "withdrawn"


def test_nul_and_surrogates_on_postgresql_too(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reported: a NUL was stored on SQLite and a 500 on PostgreSQL
    monkeypatch.setenv("QUORUM_UPLOAD_DIR", str(tmp_path / "uploads"))
    w = World(db_url, tmp_path / "uploads")
    for bad in ("a\x00b", "a\ud800b"):
        out = w.post(SPONSOR, "submit_bid", bid(title=bad), 400)
        assert out["field"] == "title"
        out = w.post(SPONSOR, "submit_bid", bid(savings=f"£2m {bad}"), 400)
        assert out["field"] == "savings"
    # in the URL, in a sign-in, in a query: refused before the database is asked
    before = dump(w.engine)
    r = w.client.get("/api/v1/bids/B-0001%00", headers=bearer(w.tokens[OFFICER]))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = w.client.get("/api/v1/bids?state=submitted%00", headers=bearer(w.tokens[OFFICER]))
    assert r.status_code == 400
    set_passwords(w.q, SPONSOR)
    before = dump(w.engine)
    web = TestClient(w.app, raise_server_exceptions=False)
    r = web.post(
        "/login",
        data={"csrf_token": csrf_of(web), "email": "sam\x00@rutland.example", "password": "x"},
    )
    assert r.status_code in (400, 401) and "NUL" in r.text
    assert dump(w.engine) == before


def test_web_forms_and_query_parameters_are_checked_too(world: World) -> None:
    set_passwords(world.q, SPONSOR)
    web = TestClient(world.app, raise_server_exceptions=False)
    assert sign_in(web, SPONSOR).status_code == 303
    before = dump(world.engine)
    form = {
        "csrf_token": csrf_of(web, "/bids/new"),
        "_next": "/bids/new",
        "_form": "submit_bid",
        "title": "Shared\x00parking",
        "sponsor": "Rutland CC",
        "grant": "40,000",
    }
    r = web.post("/do/submit_bid", data=form)
    assert r.status_code == 400 and "Title has NUL (U+0000)" in r.text
    r = web.get("/returns?show=late%01")
    assert r.status_code == 400 and "show: has a control character (U+0001)" in r.text
    assert dump(world.engine) == before


# ---------------------------------------------------------------- evidence files


def test_evidence_files_only_by_the_ids_issued_for_that_grant(world: World) -> None:
    ours, theirs = grant_ref(world.engine, "Shared ICT"), grant_ref(world.engine, "Invest to save")
    stored = uploads.store(ours, 1, [uploads.check("contract.pdf", PDF)], SPONSOR, "now")
    other = uploads.store(theirs, 1, [uploads.check("minutes.pdf", PDF)], SPONSOR2, "now")
    missing = f"{ours}/1/{'0' * 32}.pdf"

    def refused(file: str) -> dict:
        out = world.post(
            SPONSOR,
            "submit_evidence",
            {"grant": ours, "milestone": 1, "summary": "done", "files": [file]},
            404,
        )
        assert out["message"] == (
            f"submit_evidence: files[1]: no file {file!r} was uploaded for {ours}; upload it "
            "on the grant's page and give the id it is stored under"
        )
        return out

    # reported: names and paths into another council's folder showed on the officer's page
    for file in (
        "contract.pdf",
        f"../{theirs}/1/x.pdf",
        other[0],
        other[0].replace(theirs, ours),
        missing,
        f"{ours}/1/../../{other[0]}",
    ):
        refused(file)
    out = world.post(
        SPONSOR,
        "submit_evidence",
        {"grant": ours, "milestone": 1, "summary": "done", "files": stored},
        200,
    )
    assert out["state"] == "evidenced"


def test_an_api_client_uploads_evidence_and_gets_the_ids_issued(world: World) -> None:
    ours, theirs = grant_ref(world.engine, "Shared ICT"), grant_ref(world.engine, "Invest to save")
    headers = bearer(world.tokens[SPONSOR])

    def upload(grant: str, name: str, data: bytes, status: int) -> dict:
        before = dump(world.engine)
        r = world.client.post(
            f"/api/v1/grants/{grant}/milestones/1/evidence",
            data={"summary": "contract signed"},
            files=[("files", (name, data, "application/pdf"))],
            headers=headers,
        )
        assert r.status_code == status, (r.status_code, r.text)
        if status >= 400:
            assert dump(world.engine) == before
        return r.json()

    # another authority's grant: the 404 of a missing one, before any file is read
    assert upload(theirs, "minutes.pdf", PDF, 404)["message"] == upload(
        "G-0999", "minutes.pdf", PDF, 404
    )["message"].replace("G-0999", theirs)
    # a name with a path, or content that is not what its name says: refused by name
    assert upload(ours, "../x.pdf", PDF, 400)["field"] == "files"
    assert upload(ours, "x.pdf", b"not a pdf", 400)["field"] == "files"
    assert not list(world.uploads.rglob("*.pdf"))  # a refusal keeps no file
    out = upload(ours, "contract.pdf", PDF, 200)
    assert out["state"] == "evidenced" and len(out["files"]) == 1
    assert out["files"][0].startswith(f"{ours}/1/") and out["files"][0].endswith(".pdf")
    assert (world.uploads / out["files"][0]).read_bytes() == PDF


# ---------------------------------------------------------------- another authority's item


def test_commands_answer_404_for_what_the_caller_may_not_see(world: World) -> None:
    # reported: 403 "G-0003 is a grant to Leicester City" where reads answered 404
    theirs = grant_ref(world.engine, "Invest to save")  # Melton's
    mine = bid_refs(world.engine, "Delegated ask")[0]  # Rutland's
    answers = {}
    for ref in (theirs, "G-0999"):
        out = world.post(
            SPONSOR, "submit_evidence", {"grant": ref, "milestone": 1, "summary": "done"}, 404
        )
        answers[ref] = out
        assert out == {
            "error": "not_found",
            "message": f"submit_evidence: grant: no grant {ref!r}",
            "field": "grant",
            "item": ref,
        }
        out = world.post(
            SPONSOR,
            "submit_return",
            {"grant": ref, "kind": "progress", "period_end": "2011-06-30"},
            404,
        )
        assert out["message"] == f"submit_return: grant: no grant {ref!r}"
        read = world.client.get(f"/api/v1/grants/{ref}", headers=bearer(world.tokens[SPONSOR]))
        assert read.status_code == 404
    for ref in (mine, "B-0999"):
        out = world.post(SPONSOR2, "withdraw_bid", {"ref": ref, "reason": "mine now"}, 404)
        assert out["message"] == f"withdraw_bid: ref: no bid {ref!r}"
        out = world.post(
            SPONSOR2, "amend_bid", {"ref": ref, "title": "Hijacked", "version": 9}, 404
        )
        assert out["message"] == f"amend_bid: ref: no bid {ref!r}"
    # and through the web: the same 404
    set_passwords(world.q, SPONSOR2)
    web = TestClient(world.app, raise_server_exceptions=False)
    assert sign_in(web, SPONSOR2).status_code == 303
    before = dump(world.engine)
    for ref in (mine, "B-0999"):
        r = web.post(
            "/do/withdraw_bid",
            data={"csrf_token": csrf_of(web, "/"), "_next": "/", "ref": ref, "reason": "mine now"},
        )
        assert r.status_code == 404 and f"no bid &#39;{ref}&#39;" in r.text
    assert dump(world.engine) == before


# ---------------------------------------------------------------- imports and scenarios


def _xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_bad_imports_are_refused_with_a_clear_error(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(name: str, data: bytes, message: str) -> None:
        path = tmp_path / name
        path.write_bytes(data)
        before = dump(world.engine)
        with pytest.raises(ValidationError) as info:
            import_bids(world.q, path, OFFICER)
        assert message in info.value.message, info.value.message
        assert dump(world.engine) == before

    refused("bids.xlsx", b"PK\x03\x04 not a zip", "bids.xlsx: is not an .xlsx workbook")
    refused("bids.xlsx", b"sponsor,title,grant\n", "bids.xlsx: is not an .xlsx workbook")
    junk = io.BytesIO()
    with zipfile.ZipFile(junk, "w") as z:
        z.writestr("xl/workbook.xml", "<not really")
    refused("bids.xlsx", junk.getvalue(), "bids.xlsx: could not be read as a workbook")
    # reported: an XLSX import took 496 MB. A zip that unzips to 60 MB of nothing:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\x00" * (60 * 1024 * 1024))
    assert len(bomb.getvalue()) < 200_000
    refused(
        "bomb.xlsx",
        bomb.getvalue(),
        "bomb.xlsx: would unzip to 60 MB; at most 50 MB (QUORUM_IMPORT_MAX_UNZIPPED_MB)",
    )
    refused(
        "bids.csv",
        "sponsor,title,grant\nRutland CC,Café,5\n".encode("latin-1"),
        "bids.csv: is not UTF-8 text",
    )
    refused(
        "bids.csv",
        b'sponsor,title,grant\n"Rutland CC,"x"y,5\n' + b"a" * 200_000,
        "bids.csv: line 3: not readable as CSV (field larger than field limit",
    )
    monkeypatch.setenv("QUORUM_IMPORT_MAX_ROWS", "3")
    rows = "".join(f"Rutland CC,Bid {i},5\n" for i in range(4))
    refused(
        "bids.csv",
        f"sponsor,title,grant\n{rows}".encode(),
        "bids.csv: has more than 3 rows; at most 3 (QUORUM_IMPORT_MAX_ROWS)",
    )
    refused(
        "bids.xlsx",
        _xlsx([["sponsor", "title", "grant"]] + [["Rutland CC", "B", 5]] * 4),
        "bids.xlsx: has more than 3 rows",
    )
    monkeypatch.setenv("QUORUM_IMPORT_MAX_MB", "0.001")
    refused(
        "bids.csv",
        b"sponsor,title,grant\n" + b"Rutland CC,Bid,5\n" * 100,
        "bids.csv: is 0.0 MB; at most 0.001 MB (QUORUM_IMPORT_MAX_MB)",
    )


def test_bad_rows_are_each_named(world: World, tmp_path: Path) -> None:
    path = tmp_path / "bids.xlsx"
    path.write_bytes(
        _xlsx(
            [
                ["sponsor", "title", "grant", "pot"],
                ["Rutland CC", "Fine", "40,000", "Projects"],
                ["Rutland CC", "Too much", "2,000,000,000", "Projects"],
                ["Rutland CC", "Two\nlines", "5", "Projects"],
            ]
        )
    )
    before = dump(world.engine)
    report = import_bids(world.q, path, OFFICER)
    assert not report.committed and dump(world.engine) == before
    problems = [str(p) for p in report.problems]
    assert problems[0].startswith("row 3 (Rutland CC, Too much): grant: '2,000,000,000' is more")
    assert problems[1].startswith("row 4 (Rutland CC, 'Two\\nlines'): title: has a line break")
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"\xff\xfe bad", "not UTF-8 text"),
        (
            "programme: hello\nsteps: []\n",
            "header: create_programme: the arguments must be a mapping of name: value, got str",
        ),
        (
            "steps:\n - {on: 2011-01-01, by: system, do: register_organisation, name: X, "
            "key: [1]}\n",
            "step 1: key: an idempotency key is one line of text",
        ),
    ],
)
def test_bad_scenario_files_are_refused_naming_the_step(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(QuorumError) as info:
        replay.run(path)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "{on: 2011-01-01, by: system, do: register_organisation, name: [1, 2]}",
            "step 1 (2011-01-01, system, register_organisation): register_organisation: name: "
            "must be text, got list",
        ),
        (
            "{on: 2011-01-01, by: system, do: register_organisation, 1: x}",
            "register_organisation: unknown field 1;",
        ),
        (
            '{on: 2011-01-01, by: system, do: register_organisation, name: "a\\0b"}',
            "register_organisation: name: has NUL (U+0000) at character 2",
        ),
        (
            "{on: 2011-01-01, by: system, do: advance_clock, to: 2011}",
            "step 1 (2011-01-01, system, advance_clock): advance_clock: to: 2011 is a number",
        ),
    ],
)
def test_a_bad_step_fails_naming_the_step_and_field(
    tmp_path: Path, step: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"steps:\n - {step}\n", encoding="utf-8")
    result = replay.run(path)
    assert result.failed is not None and message in result.failed.message


def test_audit_chain_intact_after_all_refusals(world: World) -> None:
    head = dump(world.engine)
    for body in (bid(title="a\x00"), bid(grant=5), bid(grant="£2bn".replace("bn", "000m"))):
        world.post(OFFICER, "submit_bid", body, 400)
    assert dump(world.engine) == head
    with Session(world.engine) as session:
        assert audit.verify(session).ok
