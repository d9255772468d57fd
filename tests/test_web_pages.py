"""The pages as people use them: a round scored and overridden, a what-if, a
bid referred back at a meeting, a milestone evidenced, verified and paid (by
someone else), My work — every form through POST /do/{command}."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from meetingkit import confirm_page, decide_on_page
from moneykit import OFFICER, OFFICER2, SPONSOR, bid_refs, grant_ref, money_board
from webkit import closed_second_round, csrf_of, set_passwords, sign_in

from quorum_web.app import create_app

V2_RULES = Path(__file__).parent / "rules" / "efficiency-bids-2011-v2.yaml"


@pytest.fixture
def world(sqlite_url):
    q, engine, clock = money_board(sqlite_url)
    set_passwords(q, OFFICER, OFFICER2, SPONSOR)
    clock.set(dt.date(2011, 7, 5))
    scored = closed_second_round(q, clock, OFFICER)
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    people = {}
    for email in (OFFICER, OFFICER2, SPONSOR):
        c = TestClient(app)
        assert sign_in(c, email).status_code == 303
        people[email] = c
    yield {"q": q, "engine": engine, "clock": clock, "people": people, "scored": scored}
    for c in people.values():
        c.close()


def post(client: TestClient, command: str, page: str, form: str, **fields):
    data = {"csrf_token": csrf_of(client, page), "_next": page, "_form": form, **fields}
    return client.post(f"/do/{command}", data=data, follow_redirects=False)


def test_an_officer_scores_a_round_and_overrides_with_a_reason(world) -> None:
    officer = world["people"][OFFICER]
    page = officer.get("/rounds/R2")
    assert page.status_code == 200
    assert "Not scored yet" in page.text and "Score this round" in page.text
    done = post(officer, "score_round", "/rounds/R2", "score", round="R2")
    assert done.status_code == 303 and done.headers["location"] == "/rounds/R2"
    page = officer.get("/rounds/R2")
    assert "score round: done" in page.text
    ref = world["scored"]
    assert f'id="rank-{ref}"' in page.text
    assert "why these points" in page.text and "involves other councils" in page.text
    assert 'id="remaining"' in page.text and 'id="available"' in page.text
    # a bad override comes back on the form, next to its field, and saves nothing
    bad = post(
        officer,
        "override_score",
        "/rounds/R2",
        "override",
        ref=ref,
        criterion="partnership",
        points="9",
        reason="x",
    )
    assert bad.status_code == 400
    assert "above the criterion&#39;s maximum of 1" in bad.text
    assert re.search(r'name="points"[^>]*aria-invalid="true"', bad.text)
    assert 'value="9"' in bad.text  # what was typed is kept
    good = post(
        officer,
        "override_score",
        "/rounds/R2",
        "override",
        ref=ref,
        criterion="track_record",
        points="1",
        reason="proven in Lincolnshire",
    )
    assert good.status_code == 303
    assert "officer override from 0: proven in Lincolnshire" in officer.get("/rounds/R2").text


def test_what_if_against_an_uploaded_rule_set_saves_nothing(world) -> None:
    officer = world["people"][OFFICER]
    from moneykit import dump

    before = dump(world["engine"])
    r = officer.post(
        "/rounds/R1/whatif",
        data={"csrf_token": csrf_of(officer, "/rounds/R1")},
        files={"file": ("v2.yaml", V2_RULES.read_bytes(), "application/x-yaml")},
    )
    assert r.status_code == 200
    assert re.search(r"efficiency-bids-2011 [\d.]+</strong> → <strong>efficiency-bids-2011", r.text)
    assert "Nothing was saved" in r.text
    bad = officer.post(
        "/rounds/R1/whatif",
        data={"csrf_token": csrf_of(officer, "/rounds/R1")},
        files={"file": ("bad.yaml", b"criteria: [", "application/x-yaml")},
    )
    assert bad.status_code == 400 and 'id="whatif-error"' in bad.text
    assert officer.get("/rounds/R1?rules=nope").status_code == 400
    assert dump(world["engine"]) == before


def test_a_bid_is_referred_back_at_a_meeting_from_its_page(world) -> None:
    q, officer = world["q"], world["people"][OFFICER]
    q.execute("score_round", {"round": "R2"}, OFFICER)
    ref = world["scored"]
    page = officer.get(f"/bids/{ref}")
    assert '<pre class="mermaid">' in page.text and "class scored current" in page.text
    # the bid page decides nothing itself: it leads to the bid's agenda item
    item = re.search(r'href="(/meetings/BOARD-APR/items/(\d+))"', page.text)
    assert item and 'id="board-decision"' in page.text, page.text[:3000]
    n = int(item.group(2))
    assert "Approve at a Board meeting" not in page.text
    missing = confirm_page(officer, "BOARD-APR", n, item=ref)
    assert missing.status_code == 400 and "outcome" in missing.text.lower()  # none chosen
    done = decide_on_page(officer, "BOARD-APR", n, item=ref,
                          outcome="refer_back", missing="a costed savings plan")
    assert done.status_code == 303, done.text[:2000]
    page = officer.get(f"/bids/{ref}")
    assert 'id="bid-state">referred back<' in page.text
    assert "a costed savings plan" in page.text
    assert "decide" in page.text and "olive@m.example" in page.text  # the history
    # the sponsor sees it in My work, and may resubmit it
    sponsor = world["people"][SPONSOR]
    work = sponsor.get("/")
    assert "Bids referred back to you" in work.text and ref in work.text
    assert "Resubmit to the Board" in sponsor.get(f"/bids/{ref}").text


def test_evidence_verified_and_paid_by_someone_else(world) -> None:
    engine = world["engine"]
    grant = grant_ref(engine, "Shared ICT")
    page = f"/grants/{grant}"
    sponsor, officer, officer2 = (world["people"][e] for e in (SPONSOR, OFFICER, OFFICER2))
    sent = post(
        sponsor,
        "submit_evidence",
        page,
        "evidence-1",
        grant=grant,
        milestone="1",
        summary="contract let on 30 June",
    )
    assert sent.status_code == 303
    work = officer.get("/")
    assert "Evidence to verify" in work.text and f"{grant}#milestone-1" in work.text
    assert (
        post(officer, "verify_milestone", page, "verify-1", grant=grant, milestone="1").status_code
        == 303
    )
    mine = officer.get(page)
    assert "you verified this milestone: someone else must release its payment" in mine.text
    # the verifier trying anyway is refused by the command, shown on the form
    refused = post(officer, "release_payment", page, "pay-1", grant=grant, milestone="1")
    assert refused.status_code == 403 and "four eyes" in refused.text
    paid = post(officer2, "release_payment", page, "pay-1", grant=grant, milestone="1")
    assert paid.status_code == 303
    after = officer2.get(page)
    assert 'id="paid">£40,000' in after.text
    assert "release payment" in after.text  # in the history
    assert "class active current" in after.text


def test_a_stale_form_is_a_conflict_not_a_lost_update(world) -> None:
    q, sponsor = world["q"], world["people"][SPONSOR]
    ref = bid_refs(world["engine"], "Delegated ask")[0]
    page = sponsor.get(f"/bids/{ref}")
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
    q.execute("amend_bid", {"ref": ref, "title": "Delegated ask (revised)"}, OFFICER)
    r = post(
        sponsor,
        "amend_bid",
        f"/bids/{ref}",
        "amend",
        ref=ref,
        version=version,
        title="Mine",
    )
    assert r.status_code == 409 and "changed by someone else" in r.text
    assert "Delegated ask (revised)" in sponsor.get(f"/bids/{ref}").text


def test_unknown_pages_and_refs_are_404_pages(world) -> None:
    officer = world["people"][OFFICER]
    assert officer.get("/bids/B-9999").status_code == 404
    assert officer.get("/grants/G-9999").status_code == 404
    assert officer.get("/rounds/NOPE").status_code == 404
    r = officer.get("/no/such/page")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
