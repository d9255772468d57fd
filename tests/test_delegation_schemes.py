"""The scheme language of issue 12 (rules/delegation.py, docs/delegation.md):
signatory groups by role, by named people and as a committee with a quorum;
the requirement kinds; stand-aside, absence and concurrence; several routes
side by side with their own limits; a programme's own scheme; and the two
scenario files replayed side by side in one database.

Each refusal must name the rule (or the file and key) that refused and leave
the database exactly as it was."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moneykit import CHAIR, OFFICER, VICE1, VICE2, bid_refs, money_board, refused
from sqlalchemy import select
from sqlmodel import Session
from webkit import csrf_of, set_passwords, sign_in

from engine.domain.errors import (
    MoneyRuleBroken,
    PermissionDenied,
    TransitionRefused,
    ValidationError,
)
from engine.entry.replay import run
from engine.read.delegation import delegated_items, delegated_report
from engine.read.work import my_work
from engine.store.db import make_engine
from engine.store.ledger import ledger
from engine.store.models import DelegatedDecision, Interest, Signature
from notifications.papers import render
from quorum_web.app import create_app
from rules.delegation import (
    DEFAULT_SCHEME,
    KINDS,
    SchemeError,
    Signer,
    load_scheme,
    parse_scheme,
)

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "tests" / "scenarios"
REASONS = "the offer lapses before the next Board"
ALTERNATIVES = "wait for the Board (offer lost)"
MEMBER_EMAILS = [f"{n}@m.example" for n in ("ash", "birch", "cedar", "damson", "elm")]

TWO_ROUTES = """
name: two-routes
version: "t1"
groups:
  chair: {label: the Chair, roles: [chair]}
  vice_chairs: {label: the Vice Chairs, roles: [vice_chair]}
  everyone: {label: the Chair and the Vice Chairs, roles: [chair, vice_chair]}
default_route: normal
routes:
  normal:
    requires:
      - {name: all of them bar interests, kind: all_without_interest, group: everyone}
    limits: {per_decision: "50,000", per_period: "150,000", period: financial_year}
    pots: [Projects, Governance]
    open_for_days: 28
  urgency:
    requires:
      - {name: the Chair or a deputy, kind: chair_or_deputy, group: chair, deputy: vice_chairs}
      - {name: two signatures, kind: at_least, n: 2, group: everyone}
    limits: {per_decision: "20,000", per_period: "25,000", period: financial_year}
    pots: [Projects]
    open_for_days: 7
"""

ROOMY = TWO_ROUTES.replace('per_decision: "20,000"', 'per_decision: "30,000"').replace(
    'per_period: "25,000"', 'per_period: "60,000"'
)  # an urgency route that allows the moneykit bid (£30,000)

COMMITTEE = f"""
name: committee
version: "c1"
groups:
  panel:
    label: the Panel
    people: [{", ".join(MEMBER_EMAILS)}]
    quorum: 3
routes:
  panel:
    requires: [{{name: the Panel's quorum, kind: quorum, group: panel}}]
    limits: {{per_decision: "50,000"}}
    pots: [Projects]
    open_for_days: 28
"""


# ------------------------------------------------------------------ the language


def who(name: str, role: str, decision: str | None = None, **kw) -> Signer:
    return Signer(name, role, decision, roles=frozenset({role}), **kw)


def test_the_shipped_scheme_reads_the_chair_and_the_vice_chairs_as_written() -> None:
    s = load_scheme()
    assert (s.name, s.version, s.route, s.routes) == ("delegation", "2012.1", "normal", ("normal",))
    assert [r.kind for r in s.requires] == ["all_without_interest", "at_least"]
    assert (s.per_decision_pence, s.per_period_pence, s.pots) == (
        5_000_000,
        15_000_000,
        ("Projects", "Governance"),
    )
    assert load_scheme("delegation") is s and load_scheme(str(DEFAULT_SCHEME)) is s
    chair, v1, v2 = (
        who("Chris", "chair", "approve"),
        who("Vera", "vice_chair", "approve"),
        who("Victor", "vice_chair"),
    )
    two_of_three = s.evaluate([chair, v1, v2])
    assert two_of_three.outcome == "awaiting"  # not "two of three": Victor is waited for
    assert "Victor may still sign — open" in two_of_three.why
    assert s.evaluate([chair, v1, who("Victor", "vice_chair", "approve")]).outcome == "approved"
    # Victor declares an interest and stands aside: the decision is still possible
    aside = s.evaluate([chair, v1, who("Victor", "vice_chair", "stand_aside")])
    assert aside.outcome == "approved"
    assert "Victor declared an interest" in aside.why
    # and an interest declared elsewhere (in the bid) excuses likewise
    assert s.evaluate([chair, v1, who("Victor", "vice_chair", conflicted=True)]).outcome == (
        "approved"
    )
    # a decline by someone without an interest makes it impossible
    no = s.evaluate([chair, v1, who("Victor", "vice_chair", "decline")])
    assert no.outcome == "declined"
    assert 'rule 1 "the Chair and the Vice Chairs, except any who stand aside"' in no.why


def test_all_without_interest_when_everyone_stands_aside_cannot_be_met() -> None:
    s = parse_scheme(TWO_ROUTES, source="t.yaml")
    e = s.evaluate([who("C", "chair", "stand_aside"), who("V", "vice_chair", conflicted=True)])
    assert e.outcome == "declined"
    assert e.requirements[0].status == "cannot be met"
    assert "every member of the Chair and the Vice Chairs declared an interest" in e.why


def test_at_least_n_met_open_and_unmeetable() -> None:
    s = parse_scheme(TWO_ROUTES, source="t.yaml", route="urgency")
    rule = s.requires[1]
    assert (rule.kind, rule.n, rule.rule) == ("at_least", 2, 'rule 2 "two signatures"')
    c, v1, v2 = who("C", "chair", "approve"), who("V1", "vice_chair"), who("V2", "vice_chair")
    assert s.evaluate([c, v1, v2]).requirements[1].status == "open"
    met = s.evaluate([c, who("V1", "vice_chair", "approve"), v2])
    assert met.requirements[1].status == "met" and met.outcome == "approved"
    gone = s.evaluate(
        [c, who("V1", "vice_chair", "decline"), who("V2", "vice_chair", "stand_aside")]
    )
    assert gone.requirements[1].status == "cannot be met" and gone.outcome == "declined"


def test_chair_or_deputy_when_the_chair_is_conflicted_or_absent() -> None:
    s = parse_scheme(TWO_ROUTES, source="t.yaml", route="urgency")
    rule = s.requires[0]
    assert rule.kind == "chair_or_deputy"

    def judge(*signers: Signer) -> str:
        return s.evaluate(list(signers)).requirements[0].status

    v1, v2 = who("V1", "vice_chair", "approve"), who("V2", "vice_chair")
    # the Chair has not signed: a Vice Chair's approval does not stand in
    assert judge(who("C", "chair"), v1, v2) == "open"
    assert judge(who("C", "chair", "approve"), v2) == "met"
    assert judge(who("C", "chair", "decline"), v1, v2) == "cannot be met"
    # conflicted (stood aside, or an interest declared elsewhere): a Vice Chair decides
    assert judge(who("C", "chair", "stand_aside"), v1, v2) == "met"
    assert judge(who("C", "chair", conflicted=True), v1, v2) == "met"
    assert judge(who("C", "chair", "absent"), who("V1", "vice_chair"), v2) == "open"
    assert judge(who("C", "chair", "absent"), v1, v2) == "met"
    e = s.evaluate([who("C", "chair", "absent"), who("V1", "vice_chair", "stand_aside"),
                    who("V2", "vice_chair", "decline")])  # fmt: skip
    assert e.requirements[0].status == "cannot be met"
    assert "C is conflicted or absent, so one of the Vice Chairs decides" in e.why


def test_quorum_of_a_committee_of_named_people() -> None:
    s = parse_scheme(COMMITTEE, source="c.yaml")
    assert s.requires[0].group.people == tuple(MEMBER_EMAILS)
    assert s.counts("ash@m.example", ["board_member"]) == "panel"
    assert s.counts("someone@m.example", ["chair"]) is None

    def member(i: int, decision: str | None = None, **kw) -> Signer:
        return Signer(f"M{i}", "panel", decision, email=MEMBER_EMAILS[i], **kw)

    rest = [member(3), member(4)]
    two = s.evaluate([member(0, "approve"), member(1, "approve"), member(2), *rest])
    assert two.outcome == "awaiting" and two.requirements[0].status == "open"
    three = [member(0, "approve"), member(1, "approve"), member(2, "approve"), *rest]
    assert s.evaluate(three).outcome == "approved"
    split = [member(i, "approve") for i in range(3)] + [member(3, "decline"), member(4, "decline")]
    assert s.evaluate(split).outcome == "approved"  # a quorum approves, 3 to 2
    # three declines: the quorum of approvals can no longer be reached
    no = [member(i, "decline") for i in range(3)] + [member(3, "approve"), member(4)]
    assert s.evaluate(no).outcome == "declined"
    three_conflicted = [member(i, conflicted=True) for i in range(3)] + [
        member(3, "approve"),
        member(4),
    ]
    e = s.evaluate(three_conflicted)
    assert e.outcome == "declined"
    assert "only 2 of 5 members of the Panel have no interest" in e.why


def test_all_is_strict_an_interest_makes_it_impossible() -> None:
    text = TWO_ROUTES.replace("kind: all_without_interest", "kind: all")
    s = parse_scheme(text, source="t.yaml")
    ok = [who("C", "chair", "approve"), who("V", "vice_chair", "approve")]
    assert s.evaluate(ok).outcome == "approved"
    e = s.evaluate([who("C", "chair", "approve"), who("V", "vice_chair", "stand_aside")])
    assert e.outcome == "declined"


@pytest.mark.parametrize(
    "change, where",
    [
        (("kind: all_without_interest", "kind: most"), "t.yaml: routes.normal.requires[0].kind"),
        (("group: everyone}", "group: nobody}"), "t.yaml: routes.normal.requires[0].group"),
        (('per_decision: "50,000"', "per_decision: lots"), "routes.normal.limits.per_decision"),
        (("open_for_days: 7", "open_for_days: 0"), "t.yaml: routes.urgency.open_for_days"),
        (("default_route: normal\n", ""), "t.yaml: default_route: missing"),
        (("default_route: normal", "default_route: slow"), "t.yaml: default_route: 'slow'"),
        (("kind: at_least, n: 2", "kind: at_least"), "routes.urgency.requires[1].n: missing"),
        (("roles: [chair]}", "roles: [mayor]}"), "t.yaml: groups.chair.roles[0]"),
        (
            ("    pots: [Projects]\n", "    pots: [Projects]\n    quorum: 2\n"),
            "routes.urgency.quorum: unknown key",
        ),  # fmt: skip
        (("routes:", "signatories: [chair]\nroutes:"), "t.yaml: signatories: belongs to the first"),
        (("deputy: vice_chairs}", "deputy: deputies}"), "routes.urgency.requires[0].deputy"),
    ],
)
def test_parse_errors_name_the_file_and_the_key(change: tuple[str, str], where: str) -> None:
    text = TWO_ROUTES.replace(*change)
    assert text != TWO_ROUTES
    with pytest.raises(SchemeError) as info:
        parse_scheme(text, source="t.yaml")
    assert where in str(info.value)


def test_a_committee_quorum_larger_than_its_members_and_quorum_without_one() -> None:
    with pytest.raises(SchemeError, match=r"c.yaml: groups.panel.quorum: 6 is more than the 5"):
        parse_scheme(COMMITTEE.replace("quorum: 3", "quorum: 6"), source="c.yaml")
    no_quorum = r"routes.panel.requires\[0\].group: 'panel' has no quorum"
    with pytest.raises(SchemeError, match=no_quorum):
        parse_scheme(COMMITTEE.replace("    quorum: 3\n", ""), source="c.yaml")
    with pytest.raises(SchemeError, match=r"groups.panel.people\[1\]: 'birch' is not an email"):
        parse_scheme(COMMITTEE.replace("birch@m.example", "birch"), source="c.yaml")


def test_a_route_that_is_not_there_is_named() -> None:
    with pytest.raises(SchemeError, match="'urgent' is not a route of two-routes t1"):
        parse_scheme(TWO_ROUTES, source="t.yaml", route="urgent")
    assert set(KINDS) == {"all_without_interest", "all", "at_least", "quorum", "chair_or_deputy"}


# ------------------------------------------------------------------ commands


@pytest.fixture
def board(sqlite_url: str):
    q, engine, clock = money_board(sqlite_url)
    yield q, engine, clock
    engine.dispose()


def request(q, bid: str, **kw) -> dict:
    return q.execute(
        "request_delegated_decision",
        {"bid": bid, "reasons": REASONS, "alternatives": ALTERNATIVES, **kw},
        OFFICER,
    )


def sign(q, item: str, who: str, decision: str = "approve", **kw) -> dict:
    return q.execute("sign", {"item": item, "decision": decision, **kw}, who)


def new_bid(q, title: str, grant: str, pot: str = "Projects") -> str:
    return q.execute(
        "submit_bid",
        {"title": title, "sponsor": "Melton BC", "grant": grant, "pot": pot},
        OFFICER,
    )["ref"]


def signatures(engine, ref: str) -> list[tuple[str, str | None]]:
    with Session(engine) as s:
        dd = s.execute(select(DelegatedDecision).where(DelegatedDecision.ref == ref)).scalar_one()
        rows = s.execute(
            select(Signature.decision, Signature.interest_declared)
            .where(Signature.delegated_decision_id == dd.id)
            .order_by(Signature.id)
        ).all()
    return [(r[0], r[1]) for r in rows]


def scheme_file(tmp_path: Path, text: str, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_every_signatory_signs_under_the_shipped_scheme_three_of_three(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2012, 5, 2))
    out = request(q, bid)
    ref = out["ref"]
    assert (out["scheme"], out["route"]) == ("delegation 2012.1", "normal")
    assert sign(q, ref, CHAIR)["state"] == "awaiting_signatures"
    assert sign(q, ref, VICE1)["state"] == "awaiting_signatures"  # not two of three
    last = sign(q, ref, VICE2)
    assert last["state"] == "approved" and last["grant"]
    assert signatures(engine, ref) == [("approve", None)] * 3
    with engine.connect() as conn:
        (item,) = delegated_items(conn)
    assert [s["name"] for s in item["signatures"]] == ["Chris", "Vera", "Victor"]


def test_a_vice_chair_stands_aside_and_cannot_then_sign(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2012, 5, 2))
    ref = request(q, bid)["ref"]
    out = q.execute("stand_aside", {"item": ref, "interest": "a governor of the school"}, VICE2)
    assert out["state"] == "awaiting_signatures"
    message = refused(
        engine,
        lambda: sign(q, ref, VICE2),
        ValidationError,
        f"Victor declared an interest in {ref} (a governor of the school) and stands aside",
        'rule 1 "the Chair and the Vice Chairs, except any who stand aside"',
        "delegation 2012.1",
    )
    assert 'rule 2 "at least two signatures"' in message
    refused(engine, lambda: sign(q, ref, VICE2, "decline", reason="no"), ValidationError, "rule 1")
    sign(q, ref, CHAIR)
    assert sign(q, ref, VICE1)["state"] == "approved"  # Victor's absence of a signature is excused
    assert signatures(engine, ref) == [
        ("stand_aside", "a governor of the school"),
        ("approve", None),
        ("approve", None),
    ]
    with Session(engine) as s:
        interest = s.execute(select(Interest).where(Interest.item_ref == ref)).scalar_one()
    assert (interest.nature, interest.meeting_id) == ("a governor of the school", None)
    with engine.connect() as conn:
        (item,) = delegated_items(conn)
    assert item["interests"][0]["nature"] == "a governor of the school"


def test_the_last_one_standing_aside_decides_it(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2012, 5, 2))
    ref = request(q, bid)["ref"]
    sign(q, ref, CHAIR)
    sign(q, ref, VICE1)
    out = q.execute("stand_aside", {"item": ref, "interest": "related to the bidder"}, VICE2)
    assert out["state"] == "approved" and out["grant"]


def test_second_signature_is_refused_by_name(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2012, 5, 2))
    ref = request(q, bid)["ref"]
    sign(q, ref, CHAIR)
    clock.set(dt.date(2012, 5, 3))
    refused(
        engine,
        lambda: sign(q, ref, CHAIR),
        ValidationError,
        f"Chris has already signed {ref} on 2012-05-02 (approved)",
    )


def test_concurrence_after_approval_is_recorded_until_reported(board, tmp_path: Path) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    path = scheme_file(tmp_path, ROOMY)
    clock.set(dt.date(2012, 5, 2))
    ref = request(q, bid, scheme=path, route="urgency")["ref"]
    sign(q, ref, CHAIR)
    assert sign(q, ref, VICE1)["state"] == "approved"
    clock.set(dt.date(2012, 5, 4))
    concur = sign(q, ref, VICE2)
    assert concur["state"] == "approved" and concur["signed"]["decision"] == "concur"
    assert [d for d, _ in signatures(engine, ref)] == ["approve", "approve", "concur"]
    with engine.connect() as conn:
        (item,) = delegated_items(conn)
    assert [(s["name"], s["decision"], s["signed_on"]) for s in item["signatures"]] == [
        ("Chris", "approve", "2012-05-02"),
        ("Vera", "approve", "2012-05-02"),
        ("Victor", "concur", "2012-05-04"),
    ]
    # a decline after approval is not a concurrence
    other = new_bid(q, "Second", "5,000")
    ref2 = request(q, other, scheme=path, route="urgency")["ref"]
    sign(q, ref2, CHAIR)
    sign(q, ref2, VICE1)
    refused(
        engine,
        lambda: sign(q, ref2, VICE2, "decline", reason="too quick"),
        TransitionRefused,
        "a signature now is a concurrence",
    )
    # once reported and endorsed, signing is closed
    q.execute(
        "schedule_meeting",
        {"title": "Board", "date": "2012-06-01", "quorum": 1, "members": ["Chris"], "ref": "B6"},
        OFFICER,
    )
    clock.set(dt.date(2012, 6, 1))
    q.execute("endorse", {"meeting": "B6", "item": ref2}, OFFICER)
    refused(engine, lambda: sign(q, ref2, VICE2), TransitionRefused, "signing is closed")


def test_urgency_route_has_its_own_lower_limits_counted_per_route(board, tmp_path: Path) -> None:
    q, engine, clock = board
    path = scheme_file(tmp_path, TWO_ROUTES)
    clock.set(dt.date(2012, 5, 2))
    big = new_bid(q, "Big", "40,000")
    refused(
        engine,
        lambda: request(q, big, scheme=path, route="urgency"),
        MoneyRuleBroken,
        "£40,000 is above the per-decision limit of £20,000",
        "two-routes t1 (urgency route)",
    )
    refused(
        engine,
        lambda: request(q, big, scheme=path, route="urgency", pot="Governance"),
        ValidationError,
        "does not let delegated decisions draw on the Governance pot",
    )
    normal = request(q, big, scheme=path)["ref"]  # the normal route allows £50,000
    for who_ in (CHAIR, VICE1, VICE2):
        sign(q, normal, who_)
    first = request(q, new_bid(q, "Quick one", "20,000"), scheme=path, route="urgency")["ref"]
    sign(q, first, CHAIR)
    assert sign(q, first, VICE1)["state"] == "approved"
    # £20,000 approved under urgency this year (the normal route's £40,000 is not counted)
    quick_two = new_bid(q, "Quick two", "10,000")
    refused(
        engine,
        lambda: request(q, quick_two, scheme=path, route="urgency"),
        MoneyRuleBroken,
        "£20,000 already approved under delegation under two-routes t1 (urgency route) in the "
        "financial year 2012/13, plus £10,000, makes £30,000: above the £25,000 limit",
    )


def test_chair_absent_a_vice_chair_stands_in(board, tmp_path: Path) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    path = scheme_file(tmp_path, ROOMY)
    clock.set(dt.date(2012, 5, 2))
    ref = request(q, bid, scheme=path, route="urgency")["ref"]
    refused(
        engine,
        lambda: q.execute(
            "record_absence", {"item": ref, "person": "Chris", "reason": "x"}, OFFICER
        ),
        PermissionDenied,
        "Olive may not sign",
    )
    out = q.execute(
        "record_absence", {"item": ref, "person": "Chris", "reason": "in hospital"}, VICE1
    )
    assert out["state"] == "awaiting_signatures"
    sign(q, ref, VICE1)
    assert sign(q, ref, VICE2)["state"] == "approved"
    refused(engine, lambda: sign(q, ref, CHAIR), ValidationError, "(recorded absent)")


def test_committee_quorum_by_named_people(board, tmp_path: Path) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    path = scheme_file(tmp_path, COMMITTEE)
    clock.set(dt.date(2012, 5, 2))
    out = request(q, bid, scheme=path)
    ref = out["ref"]
    assert out["signatories"] == ["Cllr Ash", "Cllr Birch", "Cllr Cedar", "Cllr Damson", "Cllr Elm"]
    refused(
        engine,
        lambda: sign(q, ref, CHAIR),
        PermissionDenied,
        "Chris may not sign",
        "only the Panel sign",
    )
    # the Panel's members (board members, not Chair or Vice Chairs) see it in My work
    with engine.connect() as conn:
        work = my_work(conn, q.actor(MEMBER_EMAILS[0]), clock.today())
        chair_work = my_work(conn, q.actor(CHAIR), clock.today())
    assert [i["ref"] for i in work["sections"]["signatures_awaited"]["items"]] == [ref]
    assert chair_work["sections"]["signatures_awaited"]["items"] == []  # not the Panel's
    sign(q, ref, MEMBER_EMAILS[0])
    sign(q, ref, MEMBER_EMAILS[1], "decline", reason="too early")
    assert sign(q, ref, MEMBER_EMAILS[2])["state"] == "awaiting_signatures"  # 2 approvals
    last = sign(q, ref, MEMBER_EMAILS[3])
    assert last["state"] == "approved" and 'rule 1 "the Panel\'s quorum" (3 needed)' in last["why"]
    # a fifth signature after approval is a concurrence
    assert sign(q, ref, MEMBER_EMAILS[4])["signed"]["decision"] == "concur"


def test_a_programme_adopts_its_own_scheme_and_old_versions_keep_theirs(
    board, tmp_path: Path
) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2012, 5, 2))
    old = request(q, bid, scheme=str(REPO / "rules" / "delegation-2011.yaml"))["ref"]
    path = scheme_file(tmp_path, COMMITTEE)
    refused(
        engine,
        lambda: q.execute("adopt_scheme", {"programme": "P", "scheme": path}, OFFICER),
        PermissionDenied,
        "adopt_scheme needs the role director",
    )
    minute = {"programme": "P", "scheme": path, "minute": "Board minute 9"}
    adopted = q.execute("adopt_scheme", minute, "dee@m.example")
    assert adopted["scheme"] == "committee c1" and adopted["default_route"] == "panel"
    other = new_bid(q, "Other", "5,000")
    assert request(q, other)["scheme"] == "committee c1"  # the programme's scheme
    # the request made under 2011.1 is still judged by 2011.1 (the Chair and one Vice Chair)
    sign(q, old, CHAIR)
    assert sign(q, old, VICE1)["state"] == "approved"


# ------------------------------------------------------------------ the scenarios


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("schemes") / "both.db"
    url = f"sqlite:///{db}"
    results = [run(SCENARIOS / name, url).to_json() for name in
               ("delegation-2012.yaml", "committee-2013.yaml")]  # fmt: skip
    engine = make_engine(url)
    yield results, engine
    engine.dispose()


def test_both_scenarios_replay_side_by_side_every_refusal_expected(both) -> None:
    results, _ = both
    for r in results:
        assert r["ok"], r["failed_step"]
        assert r["errors"] and all(e["expected"] for e in r["errors"])


def test_every_pot_balance_is_right_after_the_year(both) -> None:
    _, engine = both
    with Session(engine) as s:
        pots = {line.name: line for line in ledger(s)}
    pence = 100
    assert pots["Programme Support"].committed_pence == (48_000 + 12_500 + 35_000) * pence
    assert pots["Programme Support"].available_pence == (300_000 - 95_500) * pence
    assert pots["Councils in Difficulty"].committed_pence == 15_000 * pence
    assert pots["Councils in Difficulty"].available_pence == 85_000 * pence
    assert pots["Shared Services Fund"].committed_pence == (60_000 + 9_000 + 20_000) * pence
    assert pots["Shared Services Fund"].available_pence == (250_000 - 89_000) * pence
    assert all(line.identity_holds() for line in pots.values())


def test_the_year_is_endorsed_together_with_every_signature_and_interest(both) -> None:
    _, engine = both
    with engine.connect() as conn:
        items = {d["ref"]: d for d in delegated_items(conn)}
        paper = delegated_report(conn, "FIP-2013-01-16")
    fip = [items[f"FIP-DD-{i}"] for i in range(1, 5)]
    assert {d["state"] for d in fip} == {"endorsed"}
    assert {d["reported_at"] for d in fip} == {"FIP-2013-01-16"}
    assert [d["pot_balance_pence"] // 100 for d in fip] == [300_000, 252_000, 100_000, 239_500]
    assert [d["route"] for d in fip] == ["normal", "normal", "urgency", "normal"]
    assert [[s["decision"] for s in d["signatures"]] for d in fip] == [
        ["approve"] * 4,
        ["stand_aside", "approve", "approve", "approve"],
        ["approve", "approve", "concur", "concur"],  # three, then four signatures of four
        ["approve"] * 4,
    ]
    (interest,) = fip[1]["interests"]
    assert interest["name"] == "Cllr Idris Moor" and "hosts two of the events" in interest["nature"]
    assert [d["ref"] for d in paper["decisions"]] == [d["ref"] for d in fip]
    wss = [items[f"WSS-DD-{i}"] for i in range(1, 4)]
    assert {d["state"] for d in wss} == {"endorsed"}
    assert [d["scheme"] for d in wss] == ["wealden-delegation 2013.1"] * 3
    assert [[s["decision"] for s in d["signatures"]] for d in wss] == [
        ["stand_aside", "approve", "decline", "approve", "approve"],
        ["approve", "approve", "concur"],
        ["approve", "approve", "approve"],
    ]
    assert wss[0]["signatures"][1]["role"] == "member, the Resources Committee"


def test_the_delegated_decisions_paper_shows_the_record(both) -> None:
    _, engine = both
    with engine.connect() as conn:
        context = delegated_report(conn, "FIP-2013-01-16")
    context["audit_checkpoint"] = None
    for fmt in ("md", "html"):
        text = render("delegated", context, fmt)
        for needle in (
            "Delegated decisions – 8 May 2012 to 16 January 2013",
            "Councils in Difficulty — balance available when requested (10 September 2012)",
            "£100,000",
            "Concurred (after approval)",
            "Stood aside (interest)",
            "Ashgrove District Council&#39;s cabinet member"
            if fmt == "html"
            else "Ashgrove District Council's cabinet member",
            "fenmoor-delegation 2012.1, urgency route",
            "That the Board endorses the 4 decisions taken under the scheme of delegation",
            "a smaller programme of three workshops",
        ):
            assert needle in text, (fmt, needle)
        assert text.count("That the Board endorses") == 1


# ------------------------------------------------------------------ the web page


def test_stand_aside_and_concur_from_the_delegated_page(sqlite_url: str, tmp_path: Path) -> None:
    q, engine, clock = money_board(sqlite_url)
    set_passwords(q, CHAIR, VICE1, VICE2)
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2012, 5, 2))
    aside_ref = request(q, bid)["ref"]  # the shipped scheme: all of them, bar interests
    other = new_bid(q, "Urgent one", "5,000")
    urgent_ref = request(q, other, scheme=scheme_file(tmp_path, ROOMY), route="urgency")["ref"]
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    try:
        with TestClient(app) as victor, TestClient(app) as vera:
            assert sign_in(victor, VICE2).status_code == 303
            assert sign_in(vera, VICE1).status_code == 303
            page = f"/delegated/{aside_ref}"
            shown = victor.get(page).text
            assert "Stand aside" in shown and "Approve" in shown
            version = re.search(r'name="version" value="(\d+)"', shown).group(1)
            r = victor.post(
                "/do/stand_aside",
                data={
                    "csrf_token": csrf_of(victor, page),
                    "_next": page,
                    "_form": "stand_aside",
                    "item": aside_ref,
                    "version": version,
                    "interest": "a governor of the school",
                },
                follow_redirects=False,
            )
            assert r.status_code == 303, r.text[:500]
            assert signatures(engine, aside_ref) == [("stand_aside", "a governor of the school")]
            assert "you have already signed (stood aside on 2012-05-02)" in victor.get(page).text
            sign(q, urgent_ref, CHAIR)
            sign(q, urgent_ref, VICE2)  # approved: Vera's signature is now a concurrence
            page = f"/delegated/{urgent_ref}"
            shown = vera.get(page).text
            assert "Concur" in shown and "Stand aside" not in shown
            version = re.search(r'name="version" value="(\d+)"', shown).group(1)
            r = vera.post(
                "/do/sign",
                data={
                    "csrf_token": csrf_of(vera, page),
                    "_next": page,
                    "_form": "approve",
                    "item": urgent_ref,
                    "decision": "approve",
                    "version": version,
                },
                follow_redirects=False,
            )
            assert r.status_code == 303, r.text[:500]
            decisions = [d for d, _ in signatures(engine, urgent_ref)]
            assert decisions == ["approve", "approve", "concur"]
    finally:
        engine.dispose()
