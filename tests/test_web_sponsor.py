"""Sponsor pages: a bid submitted after the savings are read back, milestone
evidence uploaded (and the unsafe uploads refused with nothing stored),
returns sent in, queried and accepted from their page."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import pytest
from fastapi.testclient import TestClient
from moneykit import OFFICER, SPONSOR, SPONSOR2, dump, grant_ref, money_board
from webkit import csrf_of, set_passwords, sign_in

from quorum_web.app import create_app

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def world(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("QUORUM_UPLOAD_DIR", str(tmp_path / "uploads"))
    q, engine, clock = money_board(sqlite_url)
    set_passwords(q, OFFICER, SPONSOR, SPONSOR2)
    clock.set(dt.date(2011, 7, 5))
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    people = {}
    for email in (OFFICER, SPONSOR, SPONSOR2):
        c = TestClient(app)
        assert sign_in(c, email).status_code == 303
        people[email] = c
    yield {
        "q": q,
        "engine": engine,
        "clock": clock,
        "people": people,
        "uploads": tmp_path / "uploads",
        "grant": grant_ref(engine, "Shared ICT"),
    }
    for c in people.values():
        c.close()


def errors(text: str) -> list[str]:
    return re.findall(r'<a href="#[^"]*">([^<]*)</a>', text)


# ------------------------------------------------------------------ a new bid


def test_a_sponsor_checks_the_savings_reading_then_submits(world) -> None:
    sam = world["people"][SPONSOR]
    page = sam.get("/bids/new")
    assert page.status_code == 200 and "Check the savings" in page.text
    assert 'name="sponsor" value="Rutland CC"' in page.text  # a sponsor bids for itself
    fields = {
        "title": "Joint waste contract",
        "sponsor": "Rutland CC",
        "grant": "25,000",
        "savings": "2.1m over 5 years",
        "partnership": "yes",
    }
    before = dump(world["engine"])
    preview = sam.post("/bids/preview", data={"csrf_token": csrf_of(sam, "/bids/new"), **fields})
    assert preview.status_code == 200
    assert 'id="savings-reading"' in preview.text and "over years" in preview.text
    assert "£2,100,000" in preview.text and "5 years" in preview.text
    assert 'value="Joint waste contract"' in preview.text  # the form keeps what was typed
    assert dump(world["engine"]) == before  # nothing saved
    form = preview.text  # the form as the page has it: back here on refusal, /bids when done
    assert 'name="_next" value="/bids/new"' in form and 'name="_done" value="/bids"' in form
    done = sam.post(
        "/do/submit_bid",
        data={
            "csrf_token": csrf_of(sam, "/bids/new"),
            "_next": "/bids/new",
            "_done": "/bids",
            "_form": "submit_bid",
            **fields,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/bids", errors(done.text)
    assert "Joint waste contract" in sam.get("/bids").text
    # a refusal comes back on the new-bid form
    bad = sam.post(
        "/do/submit_bid",
        data={
            "csrf_token": csrf_of(sam, "/bids/new"),
            "_next": "/bids/new",
            "_form": "submit_bid",
            **dict(fields, grant="lots"),
        },
    )
    assert bad.status_code == 400 and 'id="form-submit_bid"' in bad.text and "grant" in bad.text
    # and a sponsor cannot bid for another authority
    other = sam.post(
        "/do/submit_bid",
        data={
            "csrf_token": csrf_of(sam, "/bids/new"),
            "_next": "/bids/new",
            "_form": "submit_bid",
            **dict(fields, sponsor="Melton BC"),
        },
    )
    assert other.status_code == 403


def test_a_form_sent_twice_makes_one_bid(world) -> None:
    """Back then Submit (or a double click) sends the same rendered form again: its
    hidden idempotency key makes the second a replay of the first, not a second bid."""
    sam = world["people"][SPONSOR]
    page = sam.get("/bids/new").text
    key = re.search(r'name="_key" value="(form-[0-9a-f]{32})"', page)
    assert key, "every rendered form carries its own key"
    assert key.group(1) not in sam.get("/bids/new").text  # a fresh key per rendering
    form = {
        "csrf_token": csrf_of(sam, "/bids/new"),
        "_next": "/bids/new",
        "_done": "/bids",
        "_form": "submit_bid",
        "_key": key.group(1),
        "title": "Joint waste contract",
        "sponsor": "Rutland CC",
        "grant": "25,000",
        "savings": "2.1m over 5 years",
    }
    first = sam.post("/do/submit_bid", data=form, follow_redirects=False)
    assert first.status_code == 303, errors(first.text)
    after_first = dump(world["engine"])
    again = sam.post("/do/submit_bid", data=form, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/bids"
    assert dump(world["engine"]) == after_first  # nothing written the second time
    assert sam.get("/bids").text.count("Joint waste contract") == 1
    # the same rendered form with other values: refused, saying what to do
    edited = sam.post("/do/submit_bid", data=dict(form, title="Another contract"))
    assert edited.status_code == 409
    assert "this form was already sent, with other values: reload the page" in edited.text
    assert dump(world["engine"]) == after_first


def test_an_officer_picks_the_sponsor(world) -> None:
    page = world["people"][OFFICER].get("/bids/new")
    assert page.status_code == 200
    assert '<select class="govuk-select" id="f-submit_bid-sponsor"' in page.text
    assert "Melton BC" in page.text


# ------------------------------------------------------------------ evidence


def upload(client: TestClient, grant: str, files, summary: str = "contract let on 1 July"):
    return client.post(
        f"/grants/{grant}/milestones/1/evidence",
        data={"csrf_token": csrf_of(client, f"/grants/{grant}"), "summary": summary},
        files=[("files", f) for f in files],
        follow_redirects=False,
    )


def stored(world) -> list[str]:
    root = world["uploads"]
    return (
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


def test_evidence_is_uploaded_and_stored_under_a_generated_name(world) -> None:
    sam, grant = world["people"][SPONSOR], world["grant"]
    page = sam.get(f"/grants/{grant}")
    assert 'enctype="multipart/form-data"' in page.text and 'type="file"' in page.text
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    r = upload(
        sam,
        grant,
        [
            ("contract.pdf", PDF, "application/pdf"),
            ("report.docx", docx.getvalue(), "application/octet-stream"),
        ],
    )
    assert r.status_code == 303, errors(r.text)
    files = stored(world)
    assert len(files) == 4  # two files and their metadata
    assert all(f.startswith(f"{grant}/1/") for f in files)
    assert not any("contract" in f for f in files)
    meta = [f for f in files if f.endswith(".json")]
    text = "".join((world["uploads"] / m).read_text() for m in meta)
    assert "contract.pdf" in text and "report.docx" in text
    assert "evidenced" in sam.get(f"/grants/{grant}").text


@pytest.mark.parametrize(
    "name, content, why",
    [
        ("big.pdf", PDF + b"x" * 2048, "larger than"),
        ("tool.exe", b"MZ\x90\x00", "only pdf"),
        ("scan.pdf", PNG, "not a pdf file"),
        ("photo.png", PDF, "not a png file"),
        ("../../etc/evil.pdf", PDF, "not a plain file name"),
        ("..\\evil.pdf", PDF, "not a plain file name"),
        ("/abs/evil.pdf", PDF, "not a plain file name"),
    ],
)
def test_unsafe_uploads_are_refused_and_nothing_is_stored(world, monkeypatch, name, content, why):
    monkeypatch.setenv("QUORUM_UPLOAD_MAX_MB", "0.001")  # about 1 KB
    sam, grant = world["people"][SPONSOR], world["grant"]
    before = dump(world["engine"])
    r = upload(sam, grant, [("fine.txt", b"all good", "text/plain"), (name, content, "x/y")])
    assert r.status_code == 400, r.status_code
    assert why in r.text and 'id="form-evidence-1"' in r.text
    assert stored(world) == []
    assert dump(world["engine"]) == before


def test_a_refused_command_leaves_no_files(world) -> None:
    """Stored, then submit_evidence refuses (no summary): the files are removed."""
    sam, grant = world["people"][SPONSOR], world["grant"]
    before = dump(world["engine"])
    r = upload(sam, grant, [("contract.pdf", PDF, "application/pdf")], summary="")
    assert r.status_code == 400 and "summary" in r.text
    assert stored(world) == [] and dump(world["engine"]) == before


def test_evidence_for_another_authoritys_grant_is_404(world) -> None:
    mel_grant = grant_ref(world["engine"], "Shared ICT")
    mel = world["people"][SPONSOR2]
    r = upload(mel, mel_grant, [("contract.pdf", PDF, "application/pdf")])
    assert r.status_code == 404 and stored(world) == []


def test_evidence_is_listed_at_its_milestone_and_opens_for_officer_and_sponsor(world) -> None:
    """Issue 14: officers verify and finance pays only after opening what was sent."""
    sam, olivia, grant = world["people"][SPONSOR], world["people"][OFFICER], world["grant"]
    csv = b"month,households\nJuly,1204\n"
    r = upload(
        sam,
        grant,
        [("contract.pdf", PDF, "text/html"), ("take-up.csv", csv, "application/x-msdownload")],
        summary="Contract let on 1 July; take-up figures attached",
    )
    assert r.status_code == 303, errors(r.text)
    page = olivia.get(f"/grants/{grant}").text
    section = page[page.index('id="milestone-1"'):]
    section = section[: section.index("</section>")]
    assert "Contract let on 1 July; take-up figures attached" in section
    assert "Evidence sent 2011-07-05 by Sam" in section
    links = re.findall(r'href="(/grants/[^"]+/evidence/[^"]+)"[^>]*>([^<]+)</a>', section)
    assert [name for _, name in links] == ["contract.pdf", "take-up.csv"]
    for client in (olivia, sam):
        pdf = client.get(links[0][0])
        assert pdf.status_code == 200 and pdf.content == PDF
        assert pdf.headers["content-type"] == "application/pdf"  # never what was claimed
        assert pdf.headers["content-disposition"].startswith("inline")
        assert 'filename="contract.pdf"' in pdf.headers["content-disposition"]
        assert pdf.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in pdf.headers["content-security-policy"]
        sheet = client.get(links[1][0])
        assert sheet.status_code == 200 and sheet.content == csv
        assert sheet.headers["content-type"].startswith("text/csv")
        assert sheet.headers["content-disposition"].startswith("attachment")


def test_evidence_files_are_404_to_others_and_for_made_up_names(world) -> None:
    sam, mel, grant = world["people"][SPONSOR], world["people"][SPONSOR2], world["grant"]
    olivia = world["people"][OFFICER]
    assert upload(sam, grant, [("contract.pdf", PDF, "application/pdf")]).status_code == 303
    page = olivia.get(f"/grants/{grant}").text
    (link,) = re.findall(r'href="(/grants/[^"]+/evidence/[^"]+)"', page)
    file_id = link.split("/evidence/", 1)[1]
    # another authority's sponsor: the same 404 as a file that does not exist
    assert mel.get(link).status_code == 404
    made_up = file_id.rsplit("/", 1)[0] + "/" + "0" * 32 + ".pdf"
    meta = file_id + ".json"  # the record beside the file is not evidence
    for path in (
        f"/grants/{grant}/evidence/{made_up}",
        f"/grants/{grant}/evidence/{meta}",
        f"/grants/{grant}/evidence/../../../etc/passwd",
        f"/grants/{grant}/evidence/%2e%2e/%2e%2e/etc/passwd",
        f"/grants/NO-SUCH-GRANT/evidence/{file_id}",
    ):
        r = olivia.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert b"%PDF" not in r.content
    # a file stored but never part of a submission (a refused command) is not served
    orphan = world["uploads"] / made_up
    orphan.write_bytes(PDF)
    orphan.with_name(orphan.name + ".json").write_text("{}")
    assert olivia.get(f"/grants/{grant}/evidence/{made_up}").status_code == 404


# ------------------------------------------------------------------ returns


def test_returns_submitted_queried_and_accepted_from_their_page(world) -> None:
    q, grant = world["q"], world["grant"]
    ref = q.execute(
        "submit_return",
        {
            "grant": grant,
            "kind": "savings",
            "period_end": "2011-06-30",
            "savings_delivered": "1,000",
            "savings_anticipated": "5,000",
        },
        SPONSOR,
    )["return"]
    officer, sam = world["people"][OFFICER], world["people"][SPONSOR]
    listing = sam.get("/returns")
    assert listing.status_code == 200 and ref in listing.text
    assert ref in sam.get("/returns?show=submitted").text
    assert ref not in sam.get("/returns?show=due").text
    assert ref not in world["people"][SPONSOR2].get("/returns").text
    assert world["people"][SPONSOR2].get(f"/returns/{ref}").status_code == 404
    page = officer.get(f"/returns/{ref}")
    assert "Accept the return" in page.text and "Query it back" in page.text

    def post(client, command, form, **fields):
        data = {
            "csrf_token": csrf_of(client, f"/returns/{ref}"),
            "_next": f"/returns/{ref}",
            "_form": form,
        }
        return client.post(f"/do/{command}", data={**data, **fields}, follow_redirects=False)

    r = post(officer, "query_return", "query", **{"return": ref, "reason": "Which budget line?"})
    assert r.status_code == 303, errors(r.text)
    page = sam.get(f"/returns/{ref}")
    assert "queried" in page.text and "Send it in again" in page.text
    bad = post(
        sam,
        "submit_return",
        "submit",
        grant=grant,
        kind="savings",
        period_end="2011-06-30",
        savings_delivered="",
        savings_anticipated="5,000",
    )
    assert bad.status_code == 400 and 'id="form-submit"' in bad.text
    r = post(
        sam,
        "submit_return",
        "submit",
        grant=grant,
        kind="savings",
        period_end="2011-06-30",
        savings_delivered="1,500",
        savings_anticipated="5,000",
    )
    assert r.status_code == 303, errors(r.text)
    r = post(officer, "accept_return", "accept", **{"return": ref})
    assert r.status_code == 303, errors(r.text)
    page = sam.get(f"/returns/{ref}")
    assert "accepted" in page.text and "£1,500" in page.text
    assert "Nothing to do on this return now" in page.text


# ------------------------------------------------------------------ dashboard and exports


def test_the_dashboard_shows_pots_savings_and_late_returns(world) -> None:
    page = world["people"][OFFICER].get("/dashboard")
    assert page.status_code == 200
    assert 'id="pots"' in page.text and "Projects" in page.text and "£750,000" in page.text
    assert 'id="partnerships"' in page.text and "Rutland CC" in page.text
    # no return is late yet: the pots and savings charts, and words instead of an empty
    # late-returns chart with a £0–£1 axis (issue 14)
    assert 'id="chart-pots"' in page.text and 'id="chart-savings"' in page.text
    assert 'id="chart-late"' not in page.text and "No return is late." in page.text
    assert (
        page.text.count("<svg") == 2
        and "<script" not in page.text.split("<main", 1)[1].split("</main>")[0]
    )
    assert world["people"][SPONSOR].get("/dashboard").status_code == 403


@pytest.mark.parametrize(
    "path, wanted",
    [
        ("/bids", "Shared ICT"),
        ("/grants", "Shared ICT"),
        ("/returns", None),
        ("/delegated", None),
        ("/rounds/R1", "Shared ICT"),
    ],
)
def test_list_pages_export_csv_and_xlsx(world, path: str, wanted: str | None) -> None:
    import csv

    from openpyxl import load_workbook

    officer = world["people"][OFFICER]
    r = officer.get(f"{path}?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] in ("Ref", "Rank")
    if wanted:
        assert any(wanted in cell for row in rows[1:] for cell in row)
    x = officer.get(f"{path}?format=xlsx")
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws.cell(1, 1).value == rows[0][0] and ws.max_row == len(rows)
    assert officer.get(f"{path}?format=exe").status_code == 400


def test_a_sponsor_exports_only_its_own(world) -> None:
    import csv

    sam = world["people"][SPONSOR]
    text = sam.get("/grants?format=csv").content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["Accountable body"] for r in rows] == ["Rutland CC"]
    assert "Invest to save" not in sam.get("/bids?format=csv").text


def test_the_calendar_is_scoped_for_sponsors(world) -> None:
    from icalendar import Calendar

    def summaries(client) -> list[str]:
        r = client.get("/calendar.ics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
        return [str(e["summary"]) for e in Calendar.from_ical(r.content).walk("VEVENT")]

    everyone = summaries(world["people"][OFFICER])
    assert any("Rutland CC" in s for s in everyone) and any("Melton BC" in s for s in everyone)
    mine = summaries(world["people"][SPONSOR])
    assert mine and all("Rutland CC" in s for s in mine)


def test_a_recovery_page_reads_the_demand(world) -> None:
    from moneykit import OFFICER2

    q, grant = world["q"], world["grant"]
    key = {"grant": grant, "milestone": 1}
    q.execute("submit_evidence", {**key, "summary": "done"}, SPONSOR)
    q.execute("verify_milestone", key, OFFICER)
    q.execute("release_payment", key, OFFICER2)
    ref = q.execute(
        "demand_refund",
        {"grant": grant, "amount": "1,000", "reason": "not delivered", "authority": "Board min 7"},
        OFFICER,
    )["recovery"]
    page = world["people"][SPONSOR].get(f"/recoveries/{ref}")
    assert page.status_code == 200
    for text in ("£1,000", "not delivered", "Board min 7", grant):
        assert text in page.text
    assert world["people"][SPONSOR2].get(f"/recoveries/{ref}").status_code == 404
    assert world["people"][OFFICER].get("/recoveries/REC-9999").status_code == 404


def test_an_officer_records_money_received_on_the_recovery_page(world) -> None:
    from moneykit import OFFICER2

    q, grant = world["q"], world["grant"]
    key = {"grant": grant, "milestone": 1}
    q.execute("submit_evidence", {**key, "summary": "done"}, SPONSOR)
    q.execute("verify_milestone", key, OFFICER)
    q.execute("release_payment", key, OFFICER2)
    ref = q.execute(
        "demand_refund",
        {"grant": grant, "amount": "1,000", "reason": "not delivered", "authority": "Board min 7"},
        OFFICER,
    )["recovery"]
    officer, sam = world["people"][OFFICER], world["people"][SPONSOR]
    # a sponsor sees the demand but no staff step to take (issue 14); staff see it
    seen = sam.get(f"/recoveries/{ref}")
    assert seen.status_code == 200 and ref in seen.text and "needs role" not in seen.text
    assert 'action="/do/record_recovery"' not in seen.text
    assert 'action="/do/record_recovery"' in officer.get(f"/recoveries/{ref}").text

    def post(**fields):
        data = {
            "csrf_token": csrf_of(officer, f"/recoveries/{ref}"),
            "_next": f"/recoveries/{ref}",
            "_form": "receive",
            "recovery": ref,
        }
        return officer.post("/do/record_recovery", data={**data, **fields},
                            follow_redirects=False)

    before = dump(world["engine"])
    refused = post(amount="1,500")  # only £1,000 is outstanding
    assert 400 <= refused.status_code < 500  # a money rule: refused, re-rendered
    assert "outstanding" in refused.text and 'id="form-receive"' in refused.text
    assert dump(world["engine"]) == before
    assert post(amount="400").status_code == 303
    page = officer.get(f"/recoveries/{ref}")
    assert "part recovered" in page.text
    assert "£400" in page.text and "£600" in page.text  # recovered, outstanding


def test_a_sponsor_is_offered_no_staff_action_an_officer_sees_why_not(world) -> None:
    """Issue 14 ("a sponsor's pages full of staff actions they cannot take"): a
    form a sponsor could never take (it needs a staff role) is not on their pages
    at all; staff still see every action, and why one is not theirs now."""
    sam, olivia, grant = world["people"][SPONSOR], world["people"][OFFICER], world["grant"]
    mine = sam.get(f"/grants/{grant}").text
    staff = olivia.get(f"/grants/{grant}").text
    assert "needs role" not in mine
    # the sponsor's own actions are still there (sending evidence)
    assert 'id="form-evidence-1"' in mine
    # the staff forms that were hidden from the sponsor are on the officer's page
    forms = r'id="(form-[\w-]+)"'
    hidden = set(re.findall(forms, staff)) - set(re.findall(forms, mine))
    assert hidden, "the officer's page has staff forms the sponsor's has not"
