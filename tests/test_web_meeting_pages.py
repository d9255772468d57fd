"""Issue 14: a meeting run from its pages, one decision at a time. The outcome
has no default, a confirmation states the money it commits before `decide`
runs, a meeting dated in the future offers no Decide form but says why;
attendance with a substitute; a delegated request with its pot; standing
aside from the emailed link; a bid from the web gets a pot and can be scored."""

from __future__ import annotations

import datetime as dt
import re

from meetingkit import confirm, confirm_page
from moneykit import CHAIR, MEMBERS, OFFICER, SPONSOR, bid_refs
from sqlalchemy import select
from sqlmodel import Session
from test_web_pages2 import (  # noqa: F401 (the fixture)
    MEMBER_EMAILS,
    days_later,
    link_for,
    post,
    request_dd,
    sign_via,
    used_links,
    world,
)
from webkit import csrf_of

from engine.read import views
from engine.store.models import Decision, DelegatedDecision, Meeting, Pot, Signature
from quorum_web import pages_board

ACTION_ROW = r'<tr class="govuk-table__row" id="action-1">.*?</tr>'


def scored_bid_at_a_meeting(world, date: str = "2011-05-11") -> str:  # noqa: F811
    """Round R2's one bid ("Shared payroll", £20,000, Projects pot) scored; meeting
    BOARD-MAY on ``date``; the clock at 11 May 2011. Returns the bid's ref."""
    q = world["q"]
    q.execute(
        "open_round",
        {"ref": "R2", "name": "May", "pot": "Projects", "closes": "2011-05-10",
         "rules": "efficiency-bids-2011"},
        OFFICER,
    )
    ask = q.execute(
        "submit_bid",
        {"title": "Shared payroll", "sponsor": "Rutland CC", "grant": "20,000",
         "savings": "50,000 per annum", "partnership": "yes", "round": "R2"},
        OFFICER,
    )["ref"]
    days_later(world, dt.date(2011, 5, 11))
    q.execute("close_round", {"round": "R2"}, OFFICER)
    q.execute("score_round", {"round": "R2"}, OFFICER)
    q.execute(
        "schedule_meeting",
        {"ref": "BOARD-MAY", "title": "Board", "date": date, "quorum": 3, "members": MEMBERS},
        OFFICER,
    )
    return ask


def decisions(world) -> list:  # noqa: F811
    """The decisions at BOARD-MAY (money_board's own were made at BOARD-APR)."""
    with world["engine"].connect() as c:
        return c.execute(
            select(Decision.item_ref, Decision.outcome, Decision.amount_pence,
                   Decision.votes_for, Decision.votes_against, Decision.votes_abstain,
                   Decision.reasons)
            .join(Meeting, Meeting.id == Decision.meeting_id).where(Meeting.ref == "BOARD-MAY")
        ).all()


def available(world, pot: str) -> int:  # noqa: F811
    with Session(world["engine"]) as s:
        return next(p["available_pence"] for p in views.pots(s) if p["name"] == pot)


def test_no_default_outcome_and_the_confirmation_states_the_money(world) -> None:  # noqa: F811
    ask = scored_bid_at_a_meeting(world)
    q, officer = world["q"], world["people"][OFFICER]
    q.execute("record_attendance", {"meeting": "BOARD-MAY", "present": MEMBERS[:4]}, OFFICER)
    meeting = officer.get("/meetings/BOARD-MAY")
    # the meeting page lists the agenda; no decide form on it
    assert f'<a href="/meetings/BOARD-MAY/items/1">{ask} Shared payroll</a>' in meeting.text
    assert 'name="outcome"' not in meeting.text and "/do/decide" not in meeting.text
    item = officer.get("/meetings/BOARD-MAY/items/1")
    radios = re.findall(r'<input class="govuk-radios__input" type="radio" name="outcome"[^>]*>',
                        item.text)
    # approve, approve with conditions, refer back, defer, reject
    assert len(radios) == 5 and not any("checked" in r for r in radios)
    # sent without choosing: a field error at the outcome, nothing decided
    none = confirm_page(officer, "BOARD-MAY", 1, reasons="good value", **{"votes.for": "4"})
    assert none.status_code == 400
    assert 'id="f-decide-outcome-err"' in none.text
    assert "choose the Board&#39;s decision" in none.text
    assert ">good value</textarea>" in none.text  # what was typed is kept
    assert decisions(world) == []
    # approve: the confirmation states the amount, the pot and its balance after
    before = available(world, "Projects")
    shown = confirm_page(officer, "BOARD-MAY", 1, outcome="approve", amount="15,000",
                         reasons="good value for money",
                         **{"votes.for": "3", "votes.against": "1", "votes.abstain": "0"})
    assert shown.status_code == 200
    after = before - 1_500_000
    statement = re.search(r'id="confirm-statement"><strong>([^<]*)<', shown.text).group(1)
    assert statement == (
        f"Approve £15,000.00 from the Projects pot (balance after: £{after // 100:,}.00) "
        f"for {ask} Shared payroll?"
    )
    assert "3 for, 1 against, 0 abstaining" in shown.text
    assert decisions(world) == []  # nothing until confirmed
    assert available(world, "Projects") == before
    done = confirm(officer, shown)
    assert done.status_code == 303 and done.headers["location"] == "/meetings/BOARD-MAY"
    assert decisions(world) == [(ask, "approve", 1_500_000, 3, 1, 0, "good value for money")]
    assert available(world, "Projects") == after
    page = officer.get("/meetings/BOARD-MAY/items/1")
    assert f"{ask} was decided at this meeting" in page.text and 'name="outcome"' not in page.text
    assert "good value for money" in page.text


def test_refer_back_needs_what_is_missing_and_names_the_meeting(world) -> None:  # noqa: F811
    ask = scored_bid_at_a_meeting(world)
    q, officer = world["q"], world["people"][OFFICER]
    q.execute("schedule_meeting", {"ref": "BOARD-JUL", "title": "July Board",
                                   "date": "2011-07-13", "quorum": 3, "members": MEMBERS},
              OFFICER)
    q.execute("record_attendance", {"meeting": "BOARD-MAY", "present": MEMBERS}, OFFICER)
    bad = confirm_page(officer, "BOARD-MAY", 1, outcome="refer_back")
    assert bad.status_code == 400 and 'id="f-decide-missing-err"' in bad.text
    shown = confirm_page(officer, "BOARD-MAY", 1, outcome="refer_back", missing="a plan",
                         to_meeting="BOARD-JUL", reasons="no evidence")
    assert (f"Refer {ask} Shared payroll back to the sponsor, to come back to July Board "
            "(2011-07-13)? No money is committed.") in shown.text
    assert confirm(officer, shown).status_code == 303
    assert [(d.outcome, d.reasons) for d in decisions(world)] == [("refer_back", "no evidence")]


def test_a_future_meeting_offers_no_decide_form_and_says_why(world) -> None:  # noqa: F811
    scored_bid_at_a_meeting(world, date="2011-06-15")
    q, officer = world["q"], world["people"][OFFICER]
    q.execute("record_attendance", {"meeting": "BOARD-MAY", "present": MEMBERS}, OFFICER)
    why = "the meeting takes place on 2011-06-15: its decisions are recorded on or after that day"
    page = officer.get("/meetings/BOARD-MAY")
    assert why in page.text and 'id="decide-why"' in page.text
    item = officer.get("/meetings/BOARD-MAY/items/1")
    assert why in item.text and 'name="outcome"' not in item.text
    forced = confirm_page(officer, "BOARD-MAY", 1, outcome="approve")
    assert forced.status_code == 400 and why in forced.text
    assert decisions(world) == []
    days_later(world, dt.date(2011, 6, 15))
    assert 'name="outcome"' in officer.get("/meetings/BOARD-MAY/items/1").text


def test_attendance_with_a_substitute_apologies_and_an_observer(world) -> None:  # noqa: F811
    scored_bid_at_a_meeting(world)
    officer = world["people"][OFFICER]
    page = officer.get("/meetings/BOARD-MAY/attendance")
    assert "Chris attends in the place of" in page.text  # a Board role, not a member
    done = post(
        officer,
        "record_attendance",
        "/meetings/BOARD-MAY/attendance",
        "attendance",
        data=[("present", e) for e in MEMBER_EMAILS[:2]] + [("apologies", MEMBER_EMAILS[4])],
        meeting="BOARD-MAY",
        observers="Sam Osei",
        chair=MEMBER_EMAILS[0],
        **{f"substitutes.{CHAIR}": MEMBER_EMAILS[4]},
    )
    assert done.status_code == 303, re.findall(r'class="error"[^>]*>[^<]*', done.text)
    page = officer.get("/meetings/BOARD-MAY/attendance")
    assert "substituted by Chris" in page.text and "apologies" in page.text
    assert "Observers: Sam Osei" in page.text and "In the chair: Cllr Ash" in page.text
    assert "2 members present and 1 substitute(s); the quorum is 3" in page.text
    assert "<strong>quorate</strong>" in page.text
    item = officer.get("/meetings/BOARD-MAY/items/1")
    assert "Chris (for Cllr Elm)" in item.text  # the substitute votes in the member's place
    # a refused roll (a substitute for a member who is present) comes back on the form
    bad = post(
        officer,
        "record_attendance",
        "/meetings/BOARD-MAY/attendance",
        "attendance",
        data=[("present", MEMBER_EMAILS[0])],
        meeting="BOARD-MAY",
        **{f"substitutes.{CHAIR}": MEMBER_EMAILS[0]},
    )
    assert bad.status_code == 400 and 'id="f-attendance-err"' in bad.text
    assert "a substitute attends only for a member who is not there" in bad.text


def test_agenda_order_and_a_report_item_from_the_attendance_page(world) -> None:  # noqa: F811
    ask = scored_bid_at_a_meeting(world)
    officer = world["people"][OFFICER]
    done = post(officer, "add_report_item", "/meetings/BOARD-MAY/attendance", "report",
                meeting="BOARD-MAY", title="Budget monitoring", presenter="Olive")
    assert done.status_code == 303
    page = officer.get("/meetings/BOARD-MAY/attendance")
    order = re.findall(r'<li id="order-([^"]+)"', page.text)
    assert order == [ask, "BOARD-MAY/R1"]
    move = page.text.split('id="order-BOARD-MAY/R1"', 1)[1].split("</li>", 1)[0]
    # the last item's only button moves it up; each names the item and the way, not
    # the whole order (a page of 200 items would otherwise carry 200 orders of 20,000)
    assert re.findall(r'name="direction" value="([^"]+)"', move) == ["up"]
    assert re.findall(r'name="move" value="([^"]+)"', move) == ["BOARD-MAY/R1"]
    assert 'name="items"' not in page.text
    done = post(officer, "order_agenda", "/meetings/BOARD-MAY/attendance", "order",
                meeting="BOARD-MAY", move="BOARD-MAY/R1", direction="up")
    assert done.status_code == 303
    # now first: it cannot go further up, and the refusal says so at the form
    bad = post(officer, "order_agenda", "/meetings/BOARD-MAY/attendance", "order",
               meeting="BOARD-MAY", move="BOARD-MAY/R1", direction="up")
    assert bad.status_code == 400 and "is already first on the agenda" in bad.text
    meeting = officer.get("/meetings/BOARD-MAY")
    assert re.findall(r'<li id="agenda-([^"]+)"', meeting.text) == ["BOARD-MAY/R1", ask]
    assert f'<a href="/meetings/BOARD-MAY/items/2">{ask}' in meeting.text


def test_actions_are_recorded_and_closed_from_their_page(world) -> None:  # noqa: F811
    scored_bid_at_a_meeting(world)
    officer = world["people"][OFFICER]
    done = post(officer, "record_action", "/meetings/BOARD-MAY/actions", "record_action",
                meeting="BOARD-MAY", what="Write to the sponsor", owner="Olive",
                owner_kind="person", due="2011-05-20")
    assert done.status_code == 303
    page = officer.get("/meetings/BOARD-MAY/actions")
    row = re.search(ACTION_ROW, page.text, re.S).group(0)
    assert "Write to the sponsor" in row and "Olive" in row and "2011-05-20" in row
    assert "open" in row
    bad = post(officer, "record_action", "/meetings/BOARD-MAY/actions", "record_action",
               meeting="BOARD-MAY", what="Too early", owner="Olive", due="2011-05-01")
    assert bad.status_code == 400 and "is before the meeting" in bad.text
    done = post(officer, "close_action", "/meetings/BOARD-MAY/actions", "close-1",
                action="BOARD-MAY/A1", outcome="done", reason="letter sent")
    assert done.status_code == 303
    row = re.search(ACTION_ROW, officer.get("/meetings/BOARD-MAY/actions").text,
                    re.S).group(0)
    assert "done" in row and "letter sent" in row and "Olive" in row
    assert 'id="form-close-1"' not in officer.get("/meetings/BOARD-MAY/actions").text


def test_a_delegated_request_names_its_pot(world) -> None:  # noqa: F811
    officer = world["people"][OFFICER]
    ask = bid_refs(world["engine"], "Delegated ask")[0]
    page = officer.get("/delegated")
    assert 'id="form-request_delegated"' in page.text
    governance = available(world, "Governance")
    assert f"Governance (P): £{governance // 100:,}.00 available" in page.text
    done = post(officer, "request_delegated_decision", "/delegated", "request_delegated",
                bid=ask, pot="Governance", amount="20,000", reasons="urgent",
                alternatives="wait")
    assert done.status_code == 303, re.findall(r'class="error"[^>]*>[^<]*', done.text)
    with world["engine"].connect() as c:
        pot = c.execute(select(Pot.name).join(DelegatedDecision,
                                              DelegatedDecision.pot_id == Pot.id)).scalar()
    assert pot == "Governance"
    # the bid's own page offers the pot too, and the conditions
    bid_page = officer.get(f"/bids/{ask}").text
    assert 'name="pot"' in bid_page and "Conditions of the approval (optional)" in bid_page


def test_a_delegated_request_asks_for_conditions_one_a_line(world) -> None:  # noqa: F811
    """The request's conditions box: one a line, "(during delivery)" marking one that
    does not hold the payments; the request's page shows them as the signatories
    will be asked."""
    officer = world["people"][OFFICER]
    ask = bid_refs(world["engine"], "Delegated ask")[0]
    done = post(officer, "request_delegated_decision", "/delegated", "request_delegated",
                bid=ask, reasons="urgent", alternatives="wait",
                conditions="Confirm the match funding\nReport in June (during delivery)")
    assert done.status_code == 303, re.findall(r'class="error"[^>]*>[^<]*', done.text)
    with world["engine"].connect() as c:
        ref, stored = c.execute(select(DelegatedDecision.ref, DelegatedDecision.conditions)).one()
    assert stored == [{"text": "Confirm the match funding", "before_payment": True},
                      {"text": "Report in June", "before_payment": False}]
    shown = re.search(r'<ol[^>]*id="dd-conditions">(.*?)</ol>',
                      officer.get(f"/delegated/{ref}").text, re.S).group(1)
    assert re.findall(r"<li>(.*?)</li>", shown) == [
        "Confirm the match funding", "Report in June (during delivery)"]


def test_the_delegated_request_takes_a_typed_bid_and_refuses_one_in_the_wrong_state(
    world,  # noqa: F811
) -> None:
    """The bid is typed (a list of every bid waiting would grow without bound); a
    bid a delegated decision cannot approve, or none at all, is refused by the
    command, by name, at the field, in GOV.UK's error message, and nothing is
    written."""
    officer = world["people"][OFFICER]
    page = officer.get("/delegated").text
    form = re.search(r'id="form-request_delegated".*?</form>', page, re.S).group(0)
    assert '<input class="govuk-input' in form and 'name="bid"' in form
    assert 'id="f-request_delegated-bid"' in form
    assert '<select class="govuk-select" id="f-request_delegated-bid"' not in form  # not a list
    assert "The bid&#39;s reference" in form or "The bid's reference" in form
    approved = bid_refs(world["engine"], "Shared ICT")[0]  # approved at BOARD-APR
    for bid, says in ((approved, "approved"), ("B-9999", "B-9999")):
        refused = post(officer, "request_delegated_decision", "/delegated",
                       "request_delegated", bid=bid, reasons="urgent", alternatives="wait")
        assert refused.status_code in (400, 404, 409), refused.status_code
        form = re.search(r'id="form-request_delegated".*?</form>', refused.text, re.S).group(0)
        err = re.search(r'<p class="govuk-error-message[^>]*>(.*?)</p>', form, re.S)
        assert err and says in err.group(1), (bid, err and err.group(1))
        assert f'value="{bid}"' in form  # what was typed, kept
        # the page's own links stay on /delegated (not on the command's address)
        assert 'action="/delegated" class="filters"' in refused.text
    with world["engine"].connect() as c:
        assert c.execute(select(DelegatedDecision.id)).first() is None


def test_a_signatory_stands_aside_from_the_emailed_link(world) -> None:  # noqa: F811
    ref = request_dd(world)
    chair = world["people"][CHAIR]
    link = link_for(world, ref, CHAIR)
    page = chair.get(link)
    assert 'id="form-stand_aside"' in page.text
    refused = sign_via(chair, link, _form="stand_aside")  # no interest given
    assert refused.status_code == 400 and used_links(world) == 0
    done = sign_via(chair, link, _form="stand_aside", interest="my partner advises the council")
    assert done.status_code == 303 and done.headers["location"] == f"/delegated/{ref}"
    with world["engine"].connect() as c:
        signed = c.execute(select(Signature.decision, Signature.interest_declared)).all()
    assert [(s.decision, s.interest_declared) for s in signed] == [
        ("stand_aside", "my partner advises the council")]
    assert used_links(world) == 1
    assert "my partner advises the council" in chair.get(f"/delegated/{ref}").text


def test_a_bid_from_the_web_has_a_pot_and_can_be_scored(world) -> None:  # noqa: F811
    q, sam = world["q"], world["people"][SPONSOR]
    # no round open: the page says why and what to do, and offers the pots
    page = sam.get("/bids/new")
    assert 'id="no-round"' in page.text and "Contact the programme team" in page.text
    assert 'name="pot"' in page.text and 'name="round"' not in page.text
    q.execute("open_round", {"ref": "R2", "name": "May", "pot": "Projects",
                             "closes": "2011-05-10", "rules": "efficiency-bids-2011"}, OFFICER)
    page = sam.get("/bids/new")
    assert 'id="no-round"' not in page.text
    select_html = page.text.split('name="round"', 1)[1].split("</select>", 1)[0]
    assert '<option value=""' not in select_html and "R2 May" in select_html
    done = sam.post(
        "/do/submit_bid",
        data={"csrf_token": csrf_of(sam, "/bids/new"), "_next": "/bids/new", "_done": "/bids",
              "_form": "submit_bid", "title": "Web bid", "sponsor": "Rutland CC",
              "grant": "10,000", "savings": "50,000 per annum", "partnership": "yes",
              "round": "R2"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    ref = bid_refs(world["engine"], "Web bid")[0]
    with Session(world["engine"]) as s:
        bid = next(b for b in views.bids(s) if b["ref"] == ref)
    assert bid["pot"] == "Projects"
    days_later(world, dt.date(2011, 5, 11))
    q.execute("close_round", {"round": "R2"}, OFFICER)
    q.execute("score_round", {"round": "R2"}, OFFICER)
    q.execute("schedule_meeting", {"ref": "BOARD-MAY", "title": "Board", "date": "2011-05-11",
                                   "quorum": 3, "members": MEMBERS}, OFFICER)
    with Session(world["engine"]) as s:
        bid = next(b for b in views.bids(s) if b["ref"] == ref)
        agenda = next(m for m in views.meetings(s) if m["ref"] == "BOARD-MAY")["agenda"]
    assert bid["state"] == "scored" and ref in agenda


def test_a_long_agenda_is_shown_a_page_at_a_time(world, monkeypatch) -> None:  # noqa: F811
    """A Board that decided 20,000 bids shows its agenda 200 items a page, with the
    decisions and interests on those items only; an item's page reads that item
    alone. Here a page holds two, so four items make two pages."""
    monkeypatch.setattr(pages_board, "AGENDA_PAGE", 2)
    ask = scored_bid_at_a_meeting(world)
    q = world["q"]
    for title in ("Budget monitoring", "Fleet review", "Risk register"):
        q.execute("add_report_item", {"meeting": "BOARD-MAY", "title": title,
                                      "presenter": "Olive"}, OFFICER)
    q.execute("record_attendance", {"meeting": "BOARD-MAY", "present": MEMBERS}, OFFICER)
    q.execute("decide", {"meeting": "BOARD-MAY", "item": ask, "outcome": "approve"}, OFFICER)
    officer = world["people"][OFFICER]

    first = officer.get("/meetings/BOARD-MAY")
    assert re.findall(r'<li id="agenda-([^"]+)"', first.text) == [ask, "BOARD-MAY/R1"]
    assert "Showing 1 to 2 of 4" in first.text
    assert 'href="/meetings/BOARD-MAY?page=2" rel="next"' in first.text
    assert 'rel="prev"' not in first.text
    assert 'id="decisions"' in first.text and f'<a href="/bids/{ask}">{ask}</a>' in first.text

    second = officer.get("/meetings/BOARD-MAY?page=2")
    assert re.findall(r'<li id="agenda-([^"]+)"', second.text) == ["BOARD-MAY/R2",
                                                                   "BOARD-MAY/R3"]
    assert '<ol id="agenda" class="govuk-list govuk-list--number agenda" start="3">' \
        in second.text
    assert "Showing 3 to 4 of 4" in second.text and 'rel="next"' not in second.text
    # the decision on item 1 is on page 1's table, not this page's
    assert 'id="decisions"' not in second.text and "No decisions yet." in second.text

    last = officer.get("/meetings/BOARD-MAY/items/4")
    assert last.status_code == 200 and "Risk register" in last.text
    assert "Previous item" in last.text and "Next item" not in last.text
    missing = officer.get("/meetings/BOARD-MAY/items/5")
    assert missing.status_code == 404 and "BOARD-MAY has 4 agenda items" in missing.text

    order = officer.get("/meetings/BOARD-MAY/attendance?page=2")
    assert re.findall(r'<li id="order-([^"]+)"', order.text) == ["BOARD-MAY/R2",
                                                                 "BOARD-MAY/R3"]
    tail = order.text.split('id="order-BOARD-MAY/R3"', 1)[1].split("</li>", 1)[0]
    assert re.findall(r'name="direction" value="([^"]+)"', tail) == ["up"]
    bad = officer.get("/meetings/BOARD-MAY?page=two")
    assert bad.status_code == 400 and "is not a number" in bad.text and "two" in bad.text
