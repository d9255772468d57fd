"""The item page decides as boards do (DOMAIN.md "Meetings"): "Approve with
conditions" (the conditions one per line, shown in the confirmation, on the
grant page where an officer records each as met, and on the agenda item), and
votes by name with the tally in the confirmation ("carried by 2 to 1, 1
abstention"); the totals-only form stays."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from fastapi.testclient import TestClient
from meetingkit import confirm, confirm_page
from moneykit import MEMBERS, OFFICER, OFFICER2, SPONSOR, accept_offer
from sqlalchemy import select
from sqlmodel import Session
from test_accountable_bodies import APPROVED_BIDS, PETRA, QUENTIN
from test_accountable_bodies import SCENARIO as PARTNERSHIPS
from test_web_meeting_pages import available, scored_bid_at_a_meeting
from test_web_pages2 import MEMBER_EMAILS, days_later, post, world  # noqa: F401 (the fixture)
from webkit import csrf_of, set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import TransitionRefused
from engine.domain.yamlio import load_yaml
from engine.entry import replay
from engine.read import views
from engine.store.db import make_engine
from engine.store.models import Decision, Grant, Meeting
from quorum_web import pages_board
from quorum_web.app import create_app

MATCH = "Confirm match funding from Hull CC"
BOARD = "Report to the Board in six months"


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _decided(world) -> list:  # noqa: F811
    with world["engine"].connect() as c:
        return c.execute(select(Decision.outcome, Decision.conditions, Decision.votes_for,
                                Decision.votes_against, Decision.votes_abstain,
                                Decision.named_votes).order_by(Decision.id.desc())).first()


def test_approve_with_conditions_from_the_item_page_to_payment(world) -> None:  # noqa: F811
    ask = scored_bid_at_a_meeting(world)
    q, officer = world["q"], world["people"][OFFICER]
    q.execute("record_attendance", {"meeting": "BOARD-MAY", "present": MEMBERS[:4]}, OFFICER)
    item = officer.get("/meetings/BOARD-MAY/items/1")
    assert 'value="approve_with_conditions"' in item.text
    assert 'aria-controls="conditional-conditions"' in item.text
    assert 'id="conditional-conditions"' in item.text and 'name="conditions"' in item.text
    # chosen without conditions: told at the conditions, nothing decided
    empty = confirm_page(officer, "BOARD-MAY", 1, outcome="approve_with_conditions",
                         conditions="  \n ")
    assert empty.status_code == 400 and 'id="f-decide-conditions-err"' in empty.text
    assert "write the Board" in _text(empty.text)
    # conditions typed but another outcome chosen (no JavaScript: the box is always shown):
    # not sent
    deferred = confirm_page(officer, "BOARD-MAY", 1, outcome="defer", conditions=MATCH)
    assert deferred.status_code == 200 and 'name="conditions"' not in deferred.text
    shown = confirm_page(officer, "BOARD-MAY", 1, outcome="approve_with_conditions",
                         conditions=f"{MATCH}\r\n\r\n{BOARD} (during delivery)\r\n")
    assert shown.status_code == 200, shown.text[:2000]
    statement = _text(re.search(r'id="confirm-statement">(.*?)</p>', shown.text, re.S).group(1))
    assert statement.strip().endswith(f"for {ask} Shared payroll, on 2 conditions?")
    listed = re.search(r'id="confirm-conditions">(.*?)</ol>', shown.text, re.S).group(1)
    assert re.findall(r"<li>([^<]*)</li>", listed) == [MATCH, f"{BOARD} (during delivery)"]
    done = confirm(officer, shown)
    assert done.status_code == 303
    outcome, conditions, *_ = _decided(world)
    assert outcome == "approve" and conditions == [
        {"text": MATCH, "before_payment": True}, {"text": BOARD, "before_payment": False}]
    # the agenda item shows the conditions with the decision
    item = officer.get("/meetings/BOARD-MAY/items/1")
    decided = item.text.split('id="decisions"', 1)[1].split("</table>", 1)[0]
    assert "On conditions:" in decided and f"<li>{MATCH}</li>" in decided
    # the grant page lists them, each open, with the form to record it met
    with world["engine"].connect() as c:
        g = c.execute(select(Grant.ref).order_by(Grant.id.desc())).scalars().first()
    page = officer.get(f"/grants/{g}")
    table = page.text.split('id="approval-conditions"', 1)[1].split("</table>", 1)[0]
    assert MATCH in table and "before first payment" in table and "open" in table
    assert 'id="form-discharge-1"' in page.text and 'id="form-discharge-2"' in page.text
    # a sponsor sees them but is offered no staff form to discharge them (issue 14:
    # a sponsor's pages are not a list of staff actions they cannot take)
    sponsor = world["people"][SPONSOR]
    seen = sponsor.get(f"/grants/{g}")
    assert MATCH in seen.text and 'id="form-discharge-1"' not in seen.text
    assert "needs role officer" not in seen.text
    # paying is refused by name until condition 1 is met
    q.execute("add_milestone", {"grant": g, "outcome": "Payroll live", "due": "2011-09-30",
                                "amount": "20,000", "approved_by": "the Board"}, OFFICER)
    accept_offer(q, g, SPONSOR)
    q.execute("submit_evidence", {"grant": g, "milestone": 1, "summary": "done"}, SPONSOR)
    q.execute("verify_milestone", {"grant": g, "milestone": 1}, OFFICER)
    refused = post(world["people"][OFFICER], "discharge_condition", f"/grants/{g}",
                   "discharge-1", grant=g, n="1", evidence="")
    assert refused.status_code == 400
    with pytest.raises(TransitionRefused, match=f"{g} condition 1 '{MATCH}' is not yet met"):
        q.execute("release_payment", {"grant": g, "milestone": 1}, OFFICER2)
    met = post(officer, "discharge_condition", f"/grants/{g}", "discharge-1", grant=g, n="1",
               evidence="Hull CC letter, 2 May 2011")
    assert met.status_code == 303
    page = officer.get(f"/grants/{g}")
    table = page.text.split('id="approval-conditions"', 1)[1].split("</table>", 1)[0]
    assert "Olive" in table and "Hull CC letter, 2 May 2011" in table
    assert 'id="form-discharge-1"' not in page.text and 'id="form-discharge-2"' in page.text
    paid = q.execute("release_payment", {"grant": g, "milestone": 1}, OFFICER2)
    assert paid["state"] in ("paid", "part_paid")


def test_votes_by_name_on_the_item_page_with_the_tally(world) -> None:  # noqa: F811
    ask = scored_bid_at_a_meeting(world)
    q, officer = world["q"], world["people"][OFFICER]
    q.execute("record_attendance", {"meeting": "BOARD-MAY", "present": MEMBERS}, OFFICER)
    q.execute("declare_interest", {"meeting": "BOARD-MAY", "item": ask, "nature": "employer",
                                   "member": MEMBERS[4]}, OFFICER)
    item = officer.get("/meetings/BOARD-MAY/items/1")
    block = item.text.split('id="votes-by-name"', 1)[1].split("Or the totals only", 1)[0]
    # the four who may vote, each For / Against / Abstain; the member with an interest not
    legends = re.findall(r"<legend[^>]*>([^<]*)</legend>", block)
    assert sorted(legends) == sorted(MEMBERS[:4])
    assert MEMBERS[4] not in block
    assert 'name="votes.for"' in item.text  # the totals-only form stays
    emails = dict(zip(MEMBERS, MEMBER_EMAILS, strict=True))
    votes = {f"vote.{emails[MEMBERS[0]]}": "for", f"vote.{emails[MEMBERS[1]]}": "for",
             f"vote.{emails[MEMBERS[2]]}": "against", f"vote.{emails[MEMBERS[3]]}": "abstain"}
    both = confirm_page(officer, "BOARD-MAY", 1, outcome="approve",
                        **{**votes, "votes.for": "2"})
    assert both.status_code == 400 and "by name or the totals, not both" in _text(both.text)
    kept = confirm_page(officer, "BOARD-MAY", 1, outcome="approve_with_conditions",
                        conditions=MATCH, **{**votes, "votes.for": "2"})
    assert kept.status_code == 400  # what was chosen and typed comes back
    assert re.search(r'value="approve_with_conditions"[^>]*checked', kept.text)
    assert f">{MATCH}</textarea>" in kept.text
    shown = confirm_page(officer, "BOARD-MAY", 1, outcome="approve", **votes)
    assert shown.status_code == 200, shown.text[:3000]
    assert re.search(r'id="confirm-tally">([^<]*)<', shown.text).group(1) == (
        "carried by 2 to 1, 1 abstention")
    named = _text(shown.text.split('id="confirm-named-votes"', 1)[1].split("</ul>", 1)[0])
    assert f"For: {MEMBERS[0]}, {MEMBERS[1]}" in named and f"Against: {MEMBERS[2]}" in named
    assert confirm(officer, shown).status_code == 303
    outcome, _, f, a, n, by_name = _decided(world)
    assert (outcome, f, a, n) == ("approve", 2, 1, 1)
    assert by_name == {"for": MEMBERS[:2], "against": [MEMBERS[2]], "abstain": [MEMBERS[3]]}
    item = officer.get("/meetings/BOARD-MAY/items/1")
    decided = _text(item.text.split('id="decisions"', 1)[1].split("</table>", 1)[0])
    assert "carried by 2 to 1, 1 abstaining" in decided
    assert f"against {MEMBERS[2]}" in decided


# ------------------------------------------------------------------ several items at once

PROGRAMME = [("Payroll", "20,000"), ("Fleet", "30,000"), ("Estates", "25,000"),
             ("Legal", "15,000")]


def programme_at_a_meeting(world) -> list[str]:  # noqa: F811
    """Round R2's four bids scored, on BOARD-MAY (11 May 2011, all members present);
    BOARD-JUN (15 June) scheduled. Returns the bids' refs."""
    q = world["q"]
    q.execute("open_round", {"ref": "R2", "name": "May", "pot": "Projects",
                             "closes": "2011-05-10", "rules": "efficiency-bids-2011"}, OFFICER)
    refs = [q.execute("submit_bid", {
        "title": title, "sponsor": "Rutland CC", "grant": grant, "savings": "50,000 per annum",
        "partnership": "yes", "round": "R2"}, OFFICER)["ref"] for title, grant in PROGRAMME]
    days_later(world, dt.date(2011, 5, 11))
    q.execute("close_round", {"round": "R2"}, OFFICER)
    q.execute("score_round", {"round": "R2"}, OFFICER)
    for ref, date in (("BOARD-MAY", "2011-05-11"), ("BOARD-JUN", "2011-06-15")):
        q.execute("schedule_meeting", {"ref": ref, "title": f"Board {date[5:7]}", "date": date,
                                       "quorum": 3, "members": MEMBERS}, OFFICER)
    q.execute("record_attendance", {"meeting": "BOARD-MAY", "present": MEMBERS}, OFFICER)
    return refs


def several_confirm(client, data: list[tuple[str, str]]):
    page = "/meetings/BOARD-MAY/decide-several"
    payload = [("csrf_token", csrf_of(client, page)), ("_form", "several"), *data]
    return client.post(f"{page}/confirm", data=_multi(payload), follow_redirects=False)


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


def _press_confirm(client, shown):
    form = shown.text.split('data-form="confirm-several"', 1)[1].split("</form>", 1)[0]
    pairs = [(k, html.unescape(v)) for k, v in
             re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)]
    return client.post("/meetings/BOARD-MAY/decide-several/record", data=_multi(pairs),
                       follow_redirects=False)


def _outcomes(world) -> dict[str, tuple]:  # noqa: F811
    with world["engine"].connect() as c:
        return {r.item_ref: (r.outcome, r.missing) for r in c.execute(
            select(Decision.item_ref, Decision.outcome, Decision.missing)
            .join(Meeting, Meeting.id == Decision.meeting_id).where(Meeting.ref == "BOARD-MAY"))}


def test_approve_a_programme_except_two_referred_to_the_next_meeting(world) -> None:  # noqa: F811
    refs = programme_at_a_meeting(world)
    q, officer = world["q"], world["people"][OFFICER]
    meeting = officer.get("/meetings/BOARD-MAY")
    assert 'href="/meetings/BOARD-MAY/decide-several"' in meeting.text
    page = officer.get("/meetings/BOARD-MAY/decide-several")
    assert page.status_code == 200
    for ref in refs:  # nothing is chosen for the Board
        assert f'value="{ref}" id="items-{ref}">' in page.text
    before = available(world, "Projects")
    wants = "a costed savings plan per council"
    chosen = [("items", r) for r in refs] + [("except", refs[1]), ("except", refs[3])]
    # referred without saying what the Board wants to see: refused at the page, nothing done
    bare = several_confirm(officer, [*chosen, ("to_meeting", "BOARD-JUN")])
    assert bare.status_code == 400 and "wants to see" in _text(bare.text)
    assert f'value="{refs[1]}" id="except-{refs[1]}" checked' in bare.text  # kept
    shown = several_confirm(officer, [*chosen, ("to_meeting", "BOARD-JUN"),
                                      ("missing", wants)])
    assert shown.status_code == 200, _text(shown.text)[:2000]
    statement = _text(re.search(r'id="several-statement">(.*?)</p>', shown.text, re.S).group(1))
    assert " ".join(statement.split()) == (
        "Approve 2 items, £45,000 in total, except 2 referred back to Board 06 "
        "(2011-06-15)?")
    pots = _text(shown.text.split('id="several-pots"', 1)[1].split("</table>", 1)[0])
    after = before - 4_500_000
    assert f"£{after // 100:,}" in pots and "Projects" in pots
    assert _outcomes(world) == {}  # nothing until confirmed
    done = _press_confirm(officer, shown)
    assert done.status_code == 303 and done.headers["location"] == "/meetings/BOARD-MAY"
    flash = _text(officer.get("/meetings/BOARD-MAY").text)
    assert "Decided 4 items: 2 approved (£45,000.00), 2 referred back to Board 06" in flash
    assert _outcomes(world) == {refs[0]: ("approve", ""), refs[2]: ("approve", ""),
                                refs[1]: ("refer_back", wants), refs[3]: ("refer_back", wants)}
    assert available(world, "Projects") == after
    # the referred bids come back to BOARD-JUN once re-submitted
    q.execute("close_meeting", {"meeting": "BOARD-MAY"}, OFFICER)
    for ref in (refs[1], refs[3]):
        q.execute("amend_bid", {"ref": ref, "savings": "60,000 per annum"}, SPONSOR)
        q.execute("resubmit_bid", {"ref": ref}, SPONSOR)
    with Session(world["engine"]) as s:
        june = next(m for m in views.meetings(s) if m["ref"] == "BOARD-JUN")
    assert june["agenda"] == [refs[1], refs[3]]


def test_decide_several_is_one_transaction(world) -> None:  # noqa: F811
    refs = programme_at_a_meeting(world)
    officer = world["people"][OFFICER]
    before = available(world, "Projects")
    # the referral (the batch's last command) is refused: what it asks is too long
    shown = several_confirm(officer, [*(("items", r) for r in refs), ("except", refs[3]),
                                      ("to_meeting", "BOARD-JUN"), ("missing", "x" * 4001)])
    assert shown.status_code == 200
    refused = _press_confirm(officer, shown)
    assert refused.status_code == 400 and "4000" in _text(refused.text)
    assert _outcomes(world) == {}  # the three approvals before it were not kept
    assert available(world, "Projects") == before


# ------------------------------------------------------------------ partnerships


def test_the_accountable_bodys_sponsor_opens_the_partnerships_grant(sqlite_url) -> None:
    """A sponsor of a partnership's accountable body opens the partnership's grant
    page (it answers the offer and receives the payments); before the body is
    named, and for any other council's sponsor, the grant does not exist (404)."""
    data = load_yaml(PARTNERSHIPS.read_text(encoding="utf-8"))
    data["steps"] = data["steps"][:APPROVED_BIDS]
    assert replay.run(PARTNERSHIPS, url=sqlite_url, data=data).ok
    engine = make_engine(sqlite_url)
    clock = FixedClock(dt.date(2012, 5, 17))
    q = Quorum(engine, clock)
    body, other = "bea@ashbury.example", "otto@otterford.example"
    for name, email, org in (("Bea Ash", body, "Ashbury BC"),
                             ("Otto Otter", other, "Otterford DC")):
        q.execute("register_person", {"name": name, "email": email, "roles": ["sponsor"],
                                      "organisation": org}, PETRA)
    set_passwords(q, body, other)
    try:
        with TestClient(create_app(sqlite_url, scheduler=False, clock=clock)) as web:
            assert sign_in(web, body).status_code == 303
            assert web.get("/grants/G-0001").status_code == 404  # not yet its body
            assert "G-0001" not in web.get("/grants").text
            q.execute("propose_accountable_body", {"partnership": "Vale SRP",
                                                   "body": "Ashbury BC"}, PETRA)
            q.execute("approve_accountable_body", {"item": "ABC-0001"}, QUENTIN)
            page = web.get("/grants/G-0001")
            assert page.status_code == 200 and "Vale partnership programme" in page.text
            assert web.get("/grants/G-0002").status_code == 404  # Fenmoor's: not its body
            assert web.get("/api/v1/grants/G-0001").status_code == 200
            # and it is in the body's lists (page and API), Fenmoor's is not
            listed = web.get("/grants").text
            assert 'href="/grants/G-0001"' in listed and "G-0002" not in listed
            assert [g["ref"] for g in web.get("/api/v1/grants").json()] == ["G-0001"]
        with TestClient(create_app(sqlite_url, scheduler=False, clock=clock)) as web:
            assert sign_in(web, other).status_code == 303
            assert web.get("/grants/G-0001").status_code == 404
    finally:
        engine.dispose()


def test_deciding_several_on_a_long_agenda_goes_a_page_at_a_time(
    world, monkeypatch  # noqa: F811
) -> None:
    """A page of the agenda's items is decided at a time: page 2 lists its own
    bids only, its confirmation and record keep to page 2, and a bid of page 1
    sent from page 2 is refused by name with nothing done."""
    monkeypatch.setattr(pages_board, "AGENDA_PAGE", 2)
    refs = programme_at_a_meeting(world)
    officer = world["people"][OFFICER]
    first = officer.get("/meetings/BOARD-MAY/decide-several")
    assert [r for r in refs if f'id="items-{r}"' in first.text] == refs[:2]
    assert "Showing 1 to 2 of 4" in first.text
    second = officer.get("/meetings/BOARD-MAY/decide-several?page=2")
    assert [r for r in refs if f'id="items-{r}"' in second.text] == refs[2:]
    assert 'action="/meetings/BOARD-MAY/decide-several/confirm?page=2"' in second.text
    page = "/meetings/BOARD-MAY/decide-several?page=2"
    token = csrf_of(officer, page)
    stray = officer.post("/meetings/BOARD-MAY/decide-several/confirm?page=2", data=_multi(
        [("csrf_token", token), ("_form", "several"), ("items", refs[0])]),
        follow_redirects=False)
    assert stray.status_code == 400
    assert f"{refs[0]} is not an undecided bid on this agenda" in _text(stray.text)
    shown = officer.post("/meetings/BOARD-MAY/decide-several/confirm?page=2", data=_multi(
        [("csrf_token", token), ("_form", "several"), ("items", refs[2]),
         ("items", refs[3])]), follow_redirects=False)
    assert shown.status_code == 200, _text(shown.text)[:2000]
    assert 'action="/meetings/BOARD-MAY/decide-several/record?page=2"' in shown.text
    form = shown.text.split('data-form="confirm-several"', 1)[1].split("</form>", 1)[0]
    pairs = [(k, html.unescape(v)) for k, v in
             re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)]
    done = officer.post("/meetings/BOARD-MAY/decide-several/record?page=2",
                        data=_multi(pairs), follow_redirects=False)
    assert done.status_code == 303
    assert _outcomes(world) == {refs[2]: ("approve", ""), refs[3]: ("approve", "")}
