"""Meetings as they run (issue 12): attendance with substitutes, observers and
apologies; votes by name with abstentions; standing orders (majority, two-thirds,
majority of members present) and the Chair's casting vote; refusals that name
the standing order; the agenda's order and report items; a referral back to a
named later meeting. Each refusal leaves the database as it was."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from meetingkit import assert_pages_agree
from sqlalchemy import MetaData, text
from sqlmodel import Session
from webkit import set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import ValidationError
from engine.entry import replay
from engine.read import views
from engine.read.papers import paper_context
from engine.store.db import create_schema, make_engine
from notifications import papers as paper_render
from quorum_web.app import create_app
from rules.standing_orders import StandingOrdersError, parse_standing_orders

OFFICER = "officer@b.example"
MEMBERS = [f"Cllr {n}" for n in ("Ash", "Birch", "Cedar", "Damson", "Elm", "Fir", "Gorse")]
COUNCILS = ["Alder DC", "Bracken BC"]


def dump(engine) -> dict:
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as c:
        return {
            t.name: [tuple(r) for r in c.execute(t.select().order_by(*t.primary_key.columns))]
            for t in meta.sorted_tables
        }


def orders_file(tmp_path: Path, carried_by: str, casting: str = "chair") -> str:
    path = tmp_path / f"so-{carried_by}-{casting}.yaml"
    path.write_text(
        "name: test-orders\nversion: '1'\ndefault:\n"
        "  quorum: {order: '7'}\n  interests: {order: '9'}\n"
        f"  voting: {{order: '12', carried_by: {carried_by}, casting_vote: {casting}}}\n"
    )
    return str(path)


@pytest.fixture
def board(db_url: str):
    clock = FixedClock(dt.date(2011, 3, 1))
    engine = make_engine(db_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute_batch(
        [("create_programme", {"name": "P", "pots": {"Projects": "300,000"}})]
        + [("register_organisation", {"name": c}) for c in COUNCILS]
        + [("register_person", {"name": "Olive", "email": OFFICER, "roles": ["officer"]}),
           ("register_person", {"name": "Sam", "email": "sam@alder.example",
                                "roles": ["sponsor"], "organisation": "Alder DC"}),
           ("register_person", {"name": "Cllr Oak", "email": "oak@b.example",
                                "roles": ["board_member"], "organisation": "Bracken BC"}),
           ("register_person", {"name": "Vic Visitor", "email": "vic@b.example",
                                "roles": ["auditor"], "organisation": "Alder DC"})]
        + [("register_person", {"name": n, "email": f"{n.split()[1].lower()}@b.example",
                                "roles": ["board_member"], "organisation": COUNCILS[i % 2]})
           for i, n in enumerate(MEMBERS)],
        "system",
    )
    q.execute("open_round", {"ref": "R1", "name": "Round", "pot": "Projects",
                             "closes": "2011-03-31", "rules": "efficiency-bids-2011"}, OFFICER)
    for title, grant in (("Shared ICT", "100,000"), ("Fleet", "50,000"), ("Vague", "40,000")):
        q.execute("submit_bid", {"title": title, "sponsor": "Alder DC", "grant": grant,
                                 "savings": "1m per annum", "partnership": "yes",
                                 "builds_on_proven": "yes", "round": "R1"}, OFFICER)
    clock.set(dt.date(2011, 4, 1))
    q.execute("close_round", {"round": "R1"}, OFFICER)
    q.execute("score_round", {"round": "R1"}, OFFICER)
    yield q, engine, clock
    engine.dispose()


def schedule(q: Quorum, ref: str, date: str, **kw) -> None:
    q.execute("schedule_meeting", {"ref": ref, "title": "Board", "date": date, "quorum": 5,
                                   "members": MEMBERS, **kw}, OFFICER)


def attend(q: Quorum, ref: str = "BOARD-APR", **kw) -> dict:
    return q.execute("record_attendance", {"meeting": ref, **kw}, OFFICER)


def decide(q: Quorum, item: str, outcome: str = "approve", meeting: str = "BOARD-APR", **kw):
    return q.execute("decide", {"meeting": meeting, "item": item, "outcome": outcome, **kw},
                     OFFICER)


def meeting(engine, ref: str) -> dict:
    """The meeting as views.meetings gives it; the meetings list's counts
    (views.meetings_summary, counted in SQL) agree with it every time."""
    with Session(engine) as s:
        found = next(m for m in views.meetings(s) if m["ref"] == ref)
        summary = next(m for m in views.meetings_summary(s) if m["ref"] == ref)
    assert summary["agenda_size"] == len(found["agenda"]), (ref, found["agenda"])
    assert summary["decisions_count"] == len(found["decisions"])
    assert (summary["present"], summary["quorate"]) == (found["present"], found["quorate"])
    with engine.connect() as c:
        assert_pages_agree(c, ref, found["agenda"])
    return found


def minutes(engine, ref: str = "BOARD-APR", fmt: str = "md") -> str:
    return paper_render.render("minutes", paper_context(engine, "minutes", ref), fmt)


def test_a_substitute_counts_for_quorum_and_votes_observers_do_not(board) -> None:
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20")
    clock.set(dt.date(2011, 4, 20))
    # four members and an observer: not quorate; the refusal names the standing order
    out = attend(q, present=MEMBERS[:4], observers=["Vic Visitor", "Ms Guest (LGA)"],
                 apologies=[MEMBERS[4]])
    assert (out["present"], out["quorate"]) == (4, False)
    before = dump(engine)
    with pytest.raises(ValidationError,
                       match=r"not quorate for B-0001: 4 members present may take part, the "
                             r"quorum is 5 \(standing order 3\.1\)"):
        decide(q, "B-0001")
    assert dump(engine) == before
    # a substitute for the member who sent apologies: quorate, and votes in their place
    out = attend(q, present=MEMBERS[:4], apologies=[MEMBERS[4], MEMBERS[5]],
                 substitutes={"Cllr Oak": MEMBERS[4]}, observers=["Vic Visitor"],
                 chair="Cllr Ash")
    assert (out["present"], out["substitutes"], out["quorate"]) == (4, 1, True)
    assert meeting(engine, "BOARD-APR")["quorate"]
    with pytest.raises(ValidationError, match="Cllr Elm is not a member present"):
        decide(q, "B-0001", votes={"for": ["Cllr Elm", "Cllr Ash"]})
    decide(q, "B-0001", votes={"for": ["Cllr Oak", "Cllr Ash", "Cllr Birch"],
                               "against": ["Cllr Cedar"], "abstain": ["Cllr Damson"]})
    md = minutes(engine)
    assert "Members present: Cllr Ash (Alder DC), Chair; Cllr Birch (Bracken BC);" in md
    assert "Substitutes: Cllr Oak (Bracken BC), substituted for Cllr Elm." in md
    assert "Observers: Vic Visitor (Alder DC); Ms Guest (LGA)." not in md  # replaced roll
    assert "Observers: Vic Visitor (Alder DC)." in md
    assert ("Apologies: Cllr Elm (Alder DC), substituted by Cllr Oak; Cllr Fir (Bracken BC)."
            in md)
    assert ("APPROVE — £100,000 (carried by 3 to 1, 1 abstaining)" in md
            and "Votes: for Cllr Oak, Cllr Ash, Cllr Birch; against Cllr Cedar; abstaining "
                "Cllr Damson." in md)
    assert "standing order 4.2 (a majority of those voting)" in md
    html = minutes(engine, fmt="html")
    assert "Cllr Oak, Bracken BC, substituted for Cllr Elm" in html
    assert '<ul id="apologies">' in html and '<ul id="observers">' in html


def test_attendance_refusals_name_the_rule(board) -> None:
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20")
    before = dump(engine)
    cases = [
        ({"present": MEMBERS[:5], "substitutes": {"Cllr Oak": "Cllr Ash"}},
         "Cllr Ash is present; a substitute attends only for a member who is not there"),
        ({"present": MEMBERS[:5], "substitutes": {"Cllr Fir": "Cllr Gorse"}},
         "Cllr Fir is a member of BOARD-APR and attends in their own right"),
        ({"present": MEMBERS[:5], "apologies": ["Cllr Ash"]}, "Cllr Ash is listed as present"),
        ({"present": MEMBERS[:5], "observers": ["Cllr Ash"]}, "not an observer"),
        ({"present": MEMBERS[:5], "chair": "Cllr Fir"}, "chair: Cllr Fir is not a member present"),
        ({"present": MEMBERS[:5], "apologies": ["Cllr Oak"]},
         "apologies\\[1\\]: Cllr Oak is not a member of BOARD-APR"),
    ]
    for kw, message in cases:
        with pytest.raises(ValidationError, match=message):
            attend(q, **kw)
    assert dump(engine) == before


def test_two_thirds_and_majority_of_members_present(board, tmp_path) -> None:
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20",
             standing_orders=orders_file(tmp_path, "two_thirds_of_those_voting"))
    schedule(q, "BOARD-MAY", "2011-05-18",
             standing_orders=orders_file(tmp_path, "majority_of_members_present"))
    clock.set(dt.date(2011, 4, 20))
    attend(q, present=MEMBERS)
    before = dump(engine)
    with pytest.raises(ValidationError,
                       match=r"4 for and 3 against do not carry the motion to approve: not "
                             r"carried under standing order 12 \(two-thirds of those voting\); "
                             r"record the outcome the Board carried"):
        decide(q, "B-0001", votes={"for": 4, "against": 3})
    assert dump(engine) == before
    decide(q, "B-0001", votes={"for": 4, "against": 2, "abstain": 1})  # 4 of 6: two-thirds
    with engine.connect() as c:
        so = c.execute(text("select standing_order from decision")).scalar()
    assert so == "test-orders 1, standing order 12 (two-thirds of those voting)"
    clock.set(dt.date(2011, 5, 18))
    attend(q, "BOARD-MAY", present=MEMBERS)
    with pytest.raises(ValidationError, match=r"3 for and 1 against do not carry .*standing "
                                              r"order 12 \(a majority of the members present\)"):
        decide(q, "B-0002", meeting="BOARD-MAY", votes={"for": 3, "against": 1, "abstain": 3})
    decide(q, "B-0002", meeting="BOARD-MAY", votes={"for": 4, "against": 0, "abstain": 3})


def test_a_tie_with_and_without_the_chairs_casting_vote(board, tmp_path) -> None:
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20")
    schedule(q, "BOARD-MAY", "2011-05-18",
             standing_orders=orders_file(tmp_path, "majority_of_those_voting", "none"))
    clock.set(dt.date(2011, 4, 20))
    attend(q, present=MEMBERS[:6], chair="Cllr Ash")
    before = dump(engine)
    with pytest.raises(ValidationError) as e:
        decide(q, "B-0001", votes={"for": 3, "against": 3})
    assert e.value.message == (
        "decide: votes: 3 for and 3 against do not carry the motion to approve: not carried "
        "under standing order 4.2 (a majority of those voting); the Chair's casting vote may "
        "decide it: give casting: for|against")
    with pytest.raises(ValidationError, match="the Chair's casting vote was against"):
        decide(q, "B-0001", votes={"for": 3, "against": 3}, casting="against")
    with pytest.raises(ValidationError, match="decides only an equality of votes; 4 for"):
        decide(q, "B-0001", votes={"for": 4, "against": 2}, casting="for")
    with pytest.raises(ValidationError, match="record the votes"):
        decide(q, "B-0001", casting="for")
    assert dump(engine) == before
    decide(q, "B-0001", votes={"for": 3, "against": 3}, casting="for")
    md = minutes(engine)
    assert "APPROVE — £100,000 (3 to 3, carried on the Chair's casting vote (Cllr Ash))" in md
    # standing orders that grant no casting vote: the tie stands
    clock.set(dt.date(2011, 5, 18))
    attend(q, "BOARD-MAY", present=MEMBERS[:6])
    with pytest.raises(ValidationError, match="3 for and 3 against do not carry.*record the "
                                              "outcome the Board carried"):
        decide(q, "B-0002", meeting="BOARD-MAY", votes={"for": 3, "against": 3})
    with pytest.raises(ValidationError, match=r"standing order 12 \(a majority of those "
                                              r"voting\) gives the Chair no casting vote"):
        decide(q, "B-0002", meeting="BOARD-MAY", votes={"for": 3, "against": 3}, casting="for")


def test_too_many_members_conflicted(board) -> None:
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20")
    clock.set(dt.date(2011, 4, 20))
    attend(q, present=MEMBERS[:5], substitutes={"Cllr Oak": "Cllr Fir"})  # 6 sit
    for who in ("Cllr Ash", "Cllr Oak"):  # a substitute declares too
        q.execute("declare_interest", {"meeting": "BOARD-APR", "item": "B-0001", "member": who,
                                       "nature": "council tenant"}, OFFICER)
    before = dump(engine)
    with pytest.raises(ValidationError) as e:
        decide(q, "B-0001")
    assert e.value.message == (
        "decide: meeting: BOARD-APR is not quorate for B-0001: 4 members present may take part, "
        "the quorum is 5; Cllr Ash, Cllr Oak declared an interest: too many members are "
        "conflicted (standing order 5.3), members with an interest take no part in the item")
    assert dump(engine) == before
    decide(q, "B-0002")  # the interests are in B-0001 only


def test_agenda_order_and_report_items(board) -> None:
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20")
    schedule(q, "BOARD-JUN", "2011-06-15")
    schedule(q, "BOARD-SEP", "2011-09-21")
    r1 = q.execute("add_report_item", {"meeting": "BOARD-APR", "title": "Annual report",
                                       "presenter": "Olive",
                                       "paper": "https://example.org/annual.pdf"}, OFFICER)
    assert r1["item"] == "BOARD-APR/R1"
    assert meeting(engine, "BOARD-APR")["agenda"] == ["B-0001", "B-0002", "B-0003",
                                                       "BOARD-APR/R1"]
    out = q.execute("order_agenda", {"meeting": "BOARD-APR",
                                     "items": ["BOARD-APR/R1", "B-0003"]}, OFFICER)
    assert out["agenda"] == ["BOARD-APR/R1", "B-0003", "B-0001", "B-0002"]
    assert meeting(engine, "BOARD-APR")["agenda"] == out["agenda"]
    before = dump(engine)
    with pytest.raises(ValidationError, match=r"items\[2\]: B-0099 is not on the agenda"):
        q.execute("order_agenda", {"meeting": "BOARD-APR", "items": ["B-0001", "B-0099"]},
                  OFFICER)
    with pytest.raises(ValidationError, match=r"items\[2\]: B-0001 is listed twice"):
        q.execute("order_agenda", {"meeting": "BOARD-APR", "items": ["B-0001", "B-0001"]},
                  OFFICER)
    # one item moved one place: the rest keep the order they had, a stored one included
    with pytest.raises(ValidationError, match=r"move: B-0002 is already last on the agenda"):
        q.execute("order_agenda", {"meeting": "BOARD-APR", "move": "B-0002",
                                   "direction": "down"}, OFFICER)
    with pytest.raises(ValidationError, match=r"direction: say which way B-0001 moves"):
        q.execute("order_agenda", {"meeting": "BOARD-APR", "move": "B-0001"}, OFFICER)
    with pytest.raises(ValidationError, match=r"move: B-0099 is not on the agenda of BOARD-APR"):
        q.execute("order_agenda", {"meeting": "BOARD-APR", "move": "B-0099",
                                   "direction": "up"}, OFFICER)
    with pytest.raises(ValidationError, match=r"not both"):
        q.execute("order_agenda", {"meeting": "BOARD-APR", "items": ["B-0001"],
                                   "move": "B-0001", "direction": "up"}, OFFICER)
    with pytest.raises(ValidationError, match=r"items: give the agenda's items"):
        q.execute("order_agenda", {"meeting": "BOARD-APR"}, OFFICER)
    assert dump(engine) == before
    out = q.execute("order_agenda", {"meeting": "BOARD-APR", "move": "B-0001",
                                     "direction": "up"}, OFFICER)
    assert out["agenda"] == ["BOARD-APR/R1", "B-0001", "B-0003", "B-0002"]
    out = q.execute("order_agenda", {"meeting": "BOARD-APR", "move": "B-0001",
                                     "direction": "down"}, OFFICER)
    assert out["agenda"] == ["BOARD-APR/R1", "B-0003", "B-0001", "B-0002"]
    before = dump(engine)
    md = paper_render.render("agenda", paper_context(engine, "agenda", "BOARD-APR"), "md")
    assert ("| 1 | BOARD-APR/R1 | report | Annual report | Olive |  | report | receive the "
            "report |") in md
    assert md.index("declarations of interest") < md.index("BOARD-APR/R1")
    html = paper_render.render("agenda", paper_context(engine, "agenda", "BOARD-APR"), "html")
    assert '<a href="https://example.org/annual.pdf">paper</a>' in html
    # reports required: for the next meeting (none named), and for a named one
    clock.set(dt.date(2011, 4, 20))
    attend(q, present=MEMBERS[:5])
    q.execute("require_report", {"meeting": "BOARD-APR", "title": "Budget monitoring",
                                 "presenter": "Olive"}, OFFICER)
    q.execute("require_report", {"meeting": "BOARD-APR", "title": "Fleet review",
                                 "presenter": "Cllr Ash", "for_meeting": "BOARD-SEP"}, OFFICER)
    with pytest.raises(ValidationError, match="is not a later scheduled meeting"):
        q.execute("require_report", {"meeting": "BOARD-APR", "title": "x", "presenter": "y",
                                     "for_meeting": "BOARD-APR"}, OFFICER)
    assert meeting(engine, "BOARD-JUN")["agenda"][-1] == "BOARD-APR/R2"
    assert meeting(engine, "BOARD-SEP")["agenda"][-1] == "BOARD-APR/R3"
    assert "BOARD-APR/R3" not in meeting(engine, "BOARD-JUN")["agenda"]
    q.execute("close_meeting", {"meeting": "BOARD-APR"}, OFFICER)
    md = minutes(engine)
    tail = md[md.index("## Reports required for the next meeting"):]
    assert "- Budget monitoring — Olive (Board (2011-06-15))" in tail
    assert "- Fleet review — Cllr Ash (Board (2011-09-21))" in tail
    assert "BOARD-APR/R1 Annual report (Olive): https://example.org/annual.pdf" in md
    # closed: the agenda is frozen in the officer's order
    with engine.connect() as c:
        stored = c.execute(text("select agenda from meeting where ref = 'BOARD-APR'")).scalar()
    assert str(stored).index("BOARD-APR/R1") < str(stored).index("B-0001")


def test_refer_back_to_a_named_meeting(board) -> None:
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20")
    schedule(q, "BOARD-JUN", "2011-06-15")
    schedule(q, "BOARD-SEP", "2011-09-21")
    clock.set(dt.date(2011, 4, 20))
    attend(q, present=MEMBERS[:5])
    before = dump(engine)
    with pytest.raises(ValidationError, match="only a referral back names the meeting"):
        decide(q, "B-0001", to_meeting="BOARD-SEP")
    with pytest.raises(ValidationError, match="BOARD-APR .* is not a later scheduled meeting"):
        decide(q, "B-0001", "refer_back", missing="x", to_meeting="BOARD-APR")
    assert dump(engine) == before
    decide(q, "B-0001", "refer_back", to_meeting="BOARD-SEP",
           reasons="Identify the benefits the project will deliver and how they support the "
                   "partnership's targets", missing="the benefits, against the targets")
    decide(q, "B-0002", "refer_back", missing="quantify the cashable savings")  # the next one
    decide(q, "B-0003", "approve")
    q.execute("close_meeting", {"meeting": "BOARD-APR"}, OFFICER)
    clock.set(dt.date(2011, 5, 2))
    for ref in ("B-0001", "B-0002"):
        q.execute("resubmit_bid", {"ref": ref}, "sam@alder.example")
    jun, sep = meeting(engine, "BOARD-JUN"), meeting(engine, "BOARD-SEP")
    assert jun["present"] == [] and sep["present"] == []  # before anyone attends
    assert jun["agenda"] == ["B-0002"]
    assert sep["agenda"] == ["B-0001"]
    md = paper_render.render("agenda", paper_context(engine, "agenda", "BOARD-SEP"), "md")
    assert "| 1 | B-0001 | bid | Shared ICT | Alder DC | £100,000 | resubmitted | decide " in md
    assert "To come back to: Board (2011-09-21)" in minutes(engine)
    with engine.connect() as c:
        ctx = c.execute(text("select context from outbox where template = 'referred_back' "
                             "order by id")).scalars().first()
    assert "2011-09-21" in str(ctx)
    # the named meeting closes without it: the next scheduled meeting after takes it
    q.execute("close_meeting", {"meeting": "BOARD-JUN"}, OFFICER)
    schedule(q, "BOARD-DEC", "2011-12-07")
    clock.set(dt.date(2011, 9, 21))
    q.execute("close_meeting", {"meeting": "BOARD-SEP"}, OFFICER)
    assert "B-0001" in meeting(engine, "BOARD-DEC")["agenda"]


def test_standing_orders_file_errors_name_the_key() -> None:
    good = ("name: so\nversion: '1'\ndefault:\n  voting: {order: '4', carried_by: "
            "majority_of_those_voting}\n")
    assert parse_standing_orders(good).default.voting.casting_vote == "none"
    with pytest.raises(StandingOrdersError, match=r"default\.voting\.carried_by: 'most' is not "
                                                  r"allowed; use one of: majority_of_those"):
        parse_standing_orders(good.replace("majority_of_those_voting", "most"))
    with pytest.raises(StandingOrdersError, match=r"default\.voting: is required"):
        parse_standing_orders("name: so\nversion: '1'\ndefault: {quorum: {order: '3'}}\n")
    with pytest.raises(StandingOrdersError, match=r"default\.voting\.rule: unknown key 'rule'"):
        parse_standing_orders(good.replace("order: '4'", "rule: '4', order: '4'"))
    two = parse_standing_orders(good + "programmes:\n  P2:\n    voting: {order: '9', "
                                       "carried_by: two_thirds_of_those_voting}\n")
    assert two.for_programme("P2").voting.carried_by == "two_thirds_of_those_voting"
    assert two.for_programme("other").voting.order == "4"


SCENARIO = Path(__file__).parent / "scenarios" / "meeting-2012.yaml"
BENEFITS = ("Identify the benefits the project will deliver and how they support the "
            "partnership's targets")


def test_a_past_meetings_papers_say_what_it_decided_not_todays_state(board, db_url) -> None:
    """A bid referred back in April and approved in June reads "referred back" on
    April's agenda and meeting page (with where it is now), "approved" on June's;
    a decision reversed at the same meeting leaves the bid as it was before it."""
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20")
    schedule(q, "BOARD-JUN", "2011-06-15")
    clock.set(dt.date(2011, 4, 20))
    attend(q, present=MEMBERS[:5])
    decide(q, "B-0001", "refer_back", missing="the benefits", to_meeting="BOARD-JUN")
    wrong = decide(q, "B-0002", "approve")
    q.execute("reverse_decision", {"decision": wrong["decision"],
                                   "reason": "approved in error"}, OFFICER)
    q.execute("close_meeting", {"meeting": "BOARD-APR"}, OFFICER)
    clock.set(dt.date(2011, 5, 2))
    q.execute("resubmit_bid", {"ref": "B-0001"}, "sam@alder.example")
    clock.set(dt.date(2011, 6, 15))
    attend(q, "BOARD-JUN", present=MEMBERS[:5])
    decide(q, "B-0001", "approve", meeting="BOARD-JUN")

    def row(meeting_ref: str, ref: str) -> str:
        md = paper_render.render("agenda", paper_context(engine, "agenda", meeting_ref), "md")
        return next(line for line in md.splitlines() if f"| {ref} |" in line)

    assert "| referred back | decide |" in row("BOARD-APR", "B-0001")
    assert "| scored | decide |" in row("BOARD-APR", "B-0002")  # reversed there: as before
    assert "| approved |" in row("BOARD-JUN", "B-0001")
    assert meeting(engine, "BOARD-APR")["left_here"] == {"B-0001": "referred_back",
                                                         "B-0002": "scored"}
    if not db_url.startswith("sqlite"):
        return  # the page is the same on both backends
    set_passwords(q, OFFICER)
    with TestClient(create_app(db_url, scheduler=False, clock=clock)) as client:
        assert sign_in(client, OFFICER).status_code == 303
        page = client.get("/meetings/BOARD-APR").text
    item = page[page.index('id="agenda-B-0001"'):]
    item = item[:item.index("</li>")]
    assert "referred back <strong>(decided here)</strong>; now approved" in item


def test_the_meeting_scenario_replays() -> None:
    """tests/scenarios/meeting-2012.yaml (docs/scenarios.md "Meetings"): the April
    Board refers three projects back with its own reasons and approves one by a
    recorded vote; the resubmitted projects are on the agendas of the meetings they
    were referred to before anyone attends; the minutes record it all."""
    seen: dict[str, object] = {}

    def capture(record, engine) -> None:
        if record.do == "order_agenda" and record.ok and not record.expected_error:
            seen["july"] = meeting(engine, "WB-2012-07-11")
            seen["october"] = meeting(engine, "WB-2012-10-10")
            seen["agenda_md"] = paper_render.render(
                "agenda", paper_context(engine, "agenda", "WB-2012-07-11"), "md")
            seen["minutes_md"] = minutes(engine, "WB-2012-04-18")
            seen["minutes_html"] = minutes(engine, "WB-2012-04-18", "html")
            seen["april"] = meeting(engine, "WB-2012-04-18")

    result = replay.run(SCENARIO, after_step=capture)
    assert result.ok, result.failed
    refused = [s.message for s in result.steps if s.expected_error]
    assert len(refused) == 2 and "casting vote may decide it" in refused[0]

    july, october = seen["july"], seen["october"]
    assert july["present"] == [] and october["present"] == []  # before attendance
    assert july["agenda"] == ["WB-2012-04-18/R2", "B-0003", "B-0002"]  # as the officer ordered
    assert october["agenda"] == ["B-0004"]  # referred to the named meeting only
    agenda = seen["agenda_md"]
    assert ("| 2 | B-0003 | bid | Customer Contact Centre | Calder Vale CC | £90,000 | "
            "resubmitted | decide (resubmitted) |") in agenda
    assert "| 1 | WB-2012-04-18/R2 | report | Programme budget monitoring to June 2012 |" in agenda

    april = seen["april"]
    assert april["state"] == "closed"
    assert [(d["item"], d["outcome"]) for d in april["decisions"]] == [
        ("B-0001", "approve"), ("B-0002", "refer_back"), ("B-0003", "refer_back"),
        ("B-0004", "refer_back")]
    md = seen["minutes_md"]
    assert ("Members present: Cllr Hazel Quinn (Ashcombe DC), Chair; Cllr Ivor Rhodes "
            "(Brayford BC);") in md
    assert ("Substitutes: Cllr Pat Zeal (Dunmere County Council), substituted for Cllr Omar "
            "Yates.") in md
    assert "Observers: Sam Osei (Wealdmoor SRP)." in md
    assert ("Apologies: Cllr Omar Yates (Dunmere County Council), substituted by Cllr Pat Zeal; "
            "Cllr Rae Abbott (Calder Vale CC).") in md
    assert ("- Cllr Jean Soto: B-0003 — a member of the cabinet of Calder Vale CC, the sponsor"
            in md)
    assert md.index("## Declarations of interest") < md.index("## Decisions")
    assert ("**B-0001** Shared Revenues and Benefits Service: APPROVE — £150,000 (carried by 5 "
            "to 2, 1 abstaining)") in md
    assert ("Votes: for Cllr Hazel Quinn, Cllr Ivor Rhodes, Cllr Jean Soto, Cllr Lena Udall, "
            "Cllr Pat Zeal; against Cllr Ken Tull, Cllr Mo Vance; abstaining Cllr Nia Wren.") in md
    assert md.count("The Board's reasons: " + BENEFITS) == 2
    assert "The Board asks for: the fleet savings per year" in md
    assert "To come back to: Wealdmoor Board (2012-10-10)" in md
    assert "generate cashable savings" not in md  # the Board's words, not the scoring's
    assert ("| 1 | Re-work the referred projects as the Board asked | Wealdmoor SRP | Wealdmoor "
            "Board (2012-07-11) |") in md
    tail = md[md.index("## Reports required for the next meeting"):]
    assert ("- Programme budget monitoring to June 2012 — Priya Patel (Wealdmoor Board "
            "(2012-07-11))") in tail
    html = seen["minutes_html"]
    assert "<h2>Reports required for the next meeting</h2>" in html
    assert "carried by 5 to 2, 1 abstaining" in html


def test_the_meeting_page_shows_report_items(board, db_url) -> None:
    """The web app's meeting page lists a report item as a report (no amount, no
    decision form for it) beside the bids."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the web page is the same on both backends")
    q, engine, clock = board
    schedule(q, "BOARD-APR", "2011-04-20")
    q.execute("add_report_item", {"meeting": "BOARD-APR", "title": "Annual report",
                                  "presenter": "Olive"}, OFFICER)
    set_passwords(q, OFFICER)
    with TestClient(create_app(db_url, scheduler=False, clock=clock)) as client:
        assert sign_in(client, OFFICER).status_code == 303
        page = client.get("/meetings/BOARD-APR")
        n = page.text.count('<li id="agenda-')  # the report item comes last
        item = client.get(f"/meetings/BOARD-APR/items/{n}")  # issue 14: its own page
    assert page.status_code == 200
    row = page.text[page.text.index('id="agenda-BOARD-APR/R1"'):]
    row = row[:row.index("</li>")]
    assert "BOARD-APR/R1 Annual report</a>" in row and "— report;" in row and "£" not in row
    assert 'value="BOARD-APR/R1"' not in page.text  # not offered to decide or declare on
    assert item.status_code == 200 and f"Item {n}: BOARD-APR/R1 Annual report" in item.text
    assert "The Board receives this report" in item.text and 'name="outcome"' not in item.text
