"""Scoring rule sets uploaded as new versions, and the what-if preview (issue 14
item 1, rounds): upload_rule_set validates with the shipped files' loader (each
refusal names the line, the place and what is allowed; nothing is stored), its
version rules, a round opened and scored with an uploaded version (the same
scores as the same YAML as a file), and the preview (read only) on a round small
enough to check by hand."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text
from webkit import csrf_of, set_passwords, sign_in

from engine.commands.service import Quorum
from engine.domain.clock import FixedClock
from engine.domain.errors import ValidationError
from engine.read import rule_preview, rulesets, views
from engine.store.db import create_schema, make_engine
from engine.store.models import AuditEvent, Round, RuleSetVersion, Score
from quorum_web import pages_setup
from quorum_web.app import create_app
from rules import durable_adapter
from rules.loader import line_of
from rules.scoring import RULES_DIR, rule_set_from_text

OFFICER, DIRECTOR, MEMBER = "olive@r.example", "dee@r.example", "ash@r.example"
SPONSOR = "sam@r.example"
SHIPPED = (RULES_DIR / "efficiency-bids-2011.yaml").read_text(encoding="utf-8")
V2_FILE = Path(__file__).parent / "rules" / "efficiency-bids-2011-v2.yaml"
NAME = "efficiency-bids-2011"

# A candidate small enough to score by hand: partnership is worth 4, breakeven
# within two years 1, a proven track record 1; approve all-full, refer back from 4.
CANDIDATE = """\
name: efficiency-bids-2011
version: "2011.5"
title: Partnership first
criteria:
  - id: partnership
    question: Does this project involve other councils?
    outcomes:
      - when: {involves_other_councils: yes}
        points: 4
        reason: "involves other councils"
      - otherwise: true
        points: 0
        reason: "a single-authority bid"
  - id: savings
    question: Does it break even within two years?
    outcomes:
      - when: {breakeven_known: yes, breakeven_years: {lte: 2}}
        points: 1
        reason: "breakeven in {breakeven_years:.1f} years"
      - otherwise: true
        points: 0
        reason: "no breakeven within two years"
  - id: track_record
    question: Has it a proven track record?
    outcomes:
      - when: {proven: yes}
        points: 1
        reason: "builds on proven earlier work"
      - otherwise: true
        points: 0
        reason: "no proven track record"
recommendations:
  - when: {all_full: yes}
    recommend: approve
    reason: "meets every criterion"
  - when: {total: {gte: 4}}
    recommend: refer_back
    reason: "{total} of {max_total}: refer back for {missing}"
  - otherwise: true
    recommend: reject
    reason: "{total} of {max_total}"
tie_break: [{total: desc}, {savings_per_pound: desc}, {grant_pence: asc}, {ref: asc}]
"""

# (title, grant, savings, partnership, proven): scored by the shipped 2011.1 rules
#   B1: 1 + 5 (breakeven 0.8 years) + 1 = 7 approve     candidate: 4 + 1 + 1 = 6 approve
#   B2: 0 + 2 (3 years)           + 1 = 3 refer back    candidate: 0 + 0 + 1 = 1 reject
#   B3: 0 + 5 (0.5 years)         + 0 = 5 refer back    candidate: 0 + 1 + 0 = 1 reject
#   B4: 1 + 0 (none stated)       + 0 = 1 reject        candidate: 4 + 0 + 0 = 4 refer back
BIDS = [
    ("B1", "Shared payroll", "40,000", "50,000 per annum", "yes", "yes"),
    ("B2", "Joint procurement", "30,000", "10,000 per annum", "no", "yes"),
    ("B3", "Digital post room", "50,000", "100,000 per annum", "no", "no"),
    ("B4", "Shared legal", "20,000", "", "yes", "not stated"),
]


@pytest.fixture
def world(sqlite_url):
    clock = FixedClock(dt.date(2011, 3, 1))
    engine = make_engine(sqlite_url)
    create_schema(engine)
    q = Quorum(engine, clock)
    q.execute_batch(
        [
            ("create_programme", {"name": "Efficiency", "pots": {"Projects": "100,000"}}),
            ("register_organisation", {"name": "Rutland CC", "kind": "unitary"}),
            ("register_organisation", {"name": "Melton BC", "kind": "district"}),
            ("register_person", {"name": "Olive", "email": OFFICER, "roles": ["officer"]}),
            ("register_person", {"name": "Dee", "email": DIRECTOR, "roles": ["director"]}),
            ("register_person", {"name": "Ash", "email": MEMBER, "roles": ["board_member"]}),
        ],
        "system",
    )
    yield {"q": q, "engine": engine, "clock": clock}
    engine.dispose()


def scored_round(w, ref: str = "R1", rules: str = NAME) -> None:
    """Round ``ref`` with the four bids of BIDS, closed and scored with ``rules``."""
    q, clock = w["q"], w["clock"]
    clock.set(dt.date(2011, 3, 1))
    q.execute(
        "open_round",
        {"ref": ref, "name": f"Round {ref}", "pot": "Projects", "closes": "2011-03-31",
         "rules": rules},
        OFFICER,
    )
    for bref, title, grant, savings, partnership, proven in BIDS:
        q.execute(
            "submit_bid",
            {"ref": f"{ref}-{bref}", "title": title, "sponsor": "Rutland CC", "grant": grant,
             "savings": savings, "partnership": partnership, "builds_on_proven": proven,
             "round": ref},
            OFFICER,
        )
    clock.set(dt.date(2011, 4, 1))
    q.execute("close_round", {"round": ref}, OFFICER)
    q.execute("score_round", {"round": ref}, OFFICER)


def counts(engine) -> dict[str, int]:
    """Rows in every table, and the audit chain's head: what 'nothing written' means."""
    with engine.connect() as conn:
        out = {
            t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
            for t in inspect(conn).get_table_names()
        }
        out["audit head"] = conn.execute(
            select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar()
    return out


def stored(engine) -> list[tuple[str, str, int | None]]:
    with engine.connect() as conn:
        return [
            (r.name, r.version, r.uploaded_by_id)
            for r in conn.execute(select(RuleSetVersion).order_by(RuleSetVersion.id))
        ]


def upload(q: Quorum, body: str, who: str = OFFICER) -> dict:
    return q.execute("upload_rule_set", {"body": body}, who)


# ------------------------------------------------------------------ upload


def test_an_upload_is_stored_as_a_version_with_who_and_an_audit_event_in_words(world) -> None:
    q, engine = world["q"], world["engine"]
    result = upload(q, V2_FILE.read_text(encoding="utf-8"), DIRECTOR)
    assert result["rules"] == f"{NAME}@2011.2" and result["version"] == "2011.2"
    with engine.connect() as conn:
        row = conn.execute(select(RuleSetVersion)).one()
        event = conn.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        dee = conn.execute(text("SELECT id FROM person WHERE email = :e"), {"e": DIRECTOR})
        dee_id = dee.scalar_one()
    assert (row.name, row.version, row.uploaded_by_id) == (NAME, "2011.2", dee_id)
    # stored exactly as the file is, so the file and the upload are one version
    assert row.body == V2_FILE.read_text(encoding="utf-8")
    assert row.sha256 == rule_set_from_text(row.body, "x").sha256 == result["sha256"]
    assert event.command == "upload_rule_set" and event.item_ref == f"{NAME}@2011.2"
    assert event.reason == (
        "Dee uploaded version 2011.2 of the scoring rule set efficiency-bids-2011 "
        "(3 criteria, at most 9 points), after version 2011.1"
    )
    # it is now a choice for a round, after the shipped file
    with engine.connect() as conn:
        choices = rulesets.rule_set_choices(conn)
    assert [c["value"] for c in choices][:2] == [NAME, f"{NAME}@2011.2"]
    assert "uploaded by Dee" in choices[1]["label"]


def broken(old: str, new: str, base: str = CANDIDATE) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


# (what is wrong, the text, the words the refusal must contain: line, place, what is allowed)
INVALID = [
    ("not YAML", "name: [x\nversion: 1\n", ["line 2: is not valid YAML: expected ',' or ']'"]),
    ("not a mapping", "- a\n- b\n", ["must be a YAML mapping with name, version, criteria"]),
    (
        "unknown key",
        broken("title: Partnership first", "titel: Partnership first"),
        ["line 3, top level: unknown key 'titel'; keys are: name, version, title"],
    ),
    (
        "missing key",
        broken('        reason: "involves other councils"\n', ""),
        ["line 8, criteria[0].outcomes[0].reason: missing"],
    ),
    (
        "version not quoted",
        broken('version: "2011.5"', "version: 2011.5"),
        ["line 2, version: 2011.5 must be a quoted string", 'version: "2011.5"'],
    ),
    (
        "points below zero",
        broken("points: 4", "points: -4"),
        ["line 9, criteria[0].outcomes[0].points: -4 is below 0"],
    ),
    (
        "unknown fact",
        broken("{proven: yes}", "{proved: yes}"),
        ["line 26, criteria[2].outcomes[0].when: unknown fact 'proved'; facts are:", "grant_pence"],
    ),
    (
        "unknown placeholder",
        broken('"meets every criterion"', '"meets every {criterion}"'),
        ["line 35, recommendations[0].reason: unknown placeholder {criterion}; placeholders are:"],
    ),
    (
        "unknown recommendation",
        broken("recommend: approve", "recommend: fund"),
        ["line 34, recommendations[0].recommend: 'fund' is not one of: approve, refer_back, "
         "reject"],
    ),
    (
        "otherwise not last",
        broken("      - otherwise: true\n        points: 0\n        reason: \"a single",
               "      - when: {partner_count: {gte: 9}}\n"
               "        points: 0\n        reason: \"a single"),
        ["line 11, criteria[0].outcomes[1]: the last entry must be 'otherwise: true'"],
    ),
    (
        "bad tie-break",
        broken("{grant_pence: asc}", "{grant_pence: up}"),
        ["line 42, tie_break[2].grant_pence: 'up' must be asc or desc"],
    ),
]


@pytest.mark.parametrize("kind, body, words", INVALID, ids=[i[0] for i in INVALID])
def test_an_invalid_upload_names_the_line_and_the_place_and_stores_nothing(
    world, kind, body, words
) -> None:
    q, engine = world["q"], world["engine"]
    before = counts(engine)
    with pytest.raises(ValidationError) as refused:
        upload(q, body)
    exc = refused.value
    assert exc.field == "body", exc.field
    assert exc.message.startswith("upload_rule_set: body: ")
    for w in words:
        assert w in exc.message, (w, exc.message)
    assert counts(engine) == before  # nothing stored, no audit event
    # the files' loader says the same thing about the same text (one loader)
    with pytest.raises(ValidationError) as as_file:
        rule_set_from_text(body.strip() + "\n", "the uploaded rule set")
    assert as_file.value.message.split(": ", 2)[-1] in exc.message


def test_line_of_finds_the_place_a_refusal_names() -> None:
    assert line_of(SHIPPED, "criteria[1].outcomes[0].points") == 31
    assert SHIPPED.splitlines()[30].strip() == "points: 5"
    assert line_of(SHIPPED, "tie_break[1]") == 67
    assert line_of(SHIPPED, "top level") is None
    assert line_of("a: [", "a") is None  # not YAML: no line from here


def test_version_rules(world) -> None:
    q, engine = world["q"], world["engine"]
    upload(q, CANDIDATE)
    refusals = {
        "same again": (CANDIDATE, "version 2011.5 of efficiency-bids-2011 is already stored "
                       "with this content; choose efficiency-bids-2011@2011.5"),
        "same version, other content": (
            broken("title: Partnership first", "title: Partnership first (edited)"),
            "says version 2011.5 but its content differs from the efficiency-bids-2011 "
            "2011.5 already used; give it a new version",
        ),
        "lower than the latest": (
            broken('version: "2011.5"', 'version: "2011.4"'),
            "version 2011.4 is below the latest version of efficiency-bids-2011, 2011.5; "
            "give it a version after 2011.5",
        ),
        "the shipped file's version": (
            broken('version: "2011.5"', 'version: "2011.1"'),
            "version 2011.1 of efficiency-bids-2011 is the shipped file and its content "
            "differs; give it a new version",
        ),
        "the shipped file itself": (
            SHIPPED,
            "is the shipped file; choose efficiency-bids-2011 when opening a round",
        ),
    }
    for what, (body, words) in refusals.items():
        before = counts(engine)
        with pytest.raises(ValidationError) as refused:
            upload(q, body)
        assert words in refused.value.message, (what, refused.value.message)
        assert refused.value.field == "body", what
        assert counts(engine) == before, what
    # versions are compared as numbers: 2011.10 comes after 2011.5
    upload(q, broken('version: "2011.5"', 'version: "2011.10"'))
    # a new name is a new rule set, at any version
    upload(q, broken("name: efficiency-bids-2011", "name: partnership-first"))
    assert [(n, v) for n, v, _ in stored(engine)] == [
        (NAME, "2011.5"), (NAME, "2011.10"), ("partnership-first", "2011.5")]
    assert rulesets.version_key("2011.10") > rulesets.version_key("2011.9")
    # only officers and directors upload
    with pytest.raises(Exception, match="needs the role director or officer"):
        upload(q, broken('version: "2011.5"', 'version: "2012.1"'), MEMBER)


def test_a_round_with_an_uploaded_version_scores_as_the_same_yaml_as_a_file(world) -> None:
    q, engine = world["q"], world["engine"]
    label = upload(q, V2_FILE.read_text(encoding="utf-8"))["rules"]
    scored_round(world, "R1", label)  # the uploaded version
    scored_round(world, "R2", str(V2_FILE))  # the same YAML as a file
    scored_round(world, "R3", NAME)  # the shipped file, 2011.1
    with engine.connect() as conn:
        rounds = dict(conn.execute(select(Round.ref, Round.rule_set)).all())
        r1 = views.round_ranking(conn, "R1")
        r2 = views.round_ranking(conn, "R2")
        r3 = views.round_ranking(conn, "R3")
        used = dict(
            conn.execute(
                select(Round.ref, func.min(Score.rule_set_version_id))
                .join(Score, Score.round_id == Round.id)
                .group_by(Round.ref)
            ).all()
        )
    assert rounds["R1"] == f"{NAME}@2011.2"
    assert (r1["rules"], r1["rules_version"]) == (NAME, "2011.2")

    def scores(r):
        return [(b["ref"][3:], b["rank"], b["points"], b["recommendation"], b["funding"])
                for b in r["bids"]]

    assert scores(r1) == scores(r2)
    assert scores(r1) != scores(r3)  # 2011.2 weighs partnership 3: the test can fail
    assert used["R1"] == used["R2"] != used["R3"]  # one stored version for file and upload
    # the stored version is scored through durable_rules, like a file
    rs = rulesets.resolve_rule_set(engine.connect(), label)
    assert not rs.transient and durable_adapter.is_registered(rs.durable_names[0])


def test_an_unknown_stored_version_is_refused_naming_those_stored(world) -> None:
    q = world["q"]
    upload(q, CANDIDATE)
    with pytest.raises(ValidationError) as refused:
        q.execute(
            "open_round",
            {"name": "X", "pot": "Projects", "closes": "2011-03-31", "rules": f"{NAME}@2099"},
            OFFICER,
        )
    assert refused.value.field == "rules"
    assert refused.value.message == (
        "rules: no stored version '2099' of rule set 'efficiency-bids-2011'; stored: "
        "efficiency-bids-2011@2011.5"
    )


# ------------------------------------------------------------------ preview


def test_the_preview_on_a_round_checked_by_hand_and_it_writes_nothing(world) -> None:
    q, engine = world["q"], world["engine"]
    scored_round(world)
    label = upload(q, CANDIDATE)["rules"]
    before = counts(engine)
    with engine.connect() as conn:
        candidate = rulesets.resolve_rule_set(conn, label)
        p = rule_preview.preview(conn, "R1", candidate)
    assert counts(engine) == before
    assert (p["rules_now"], p["rules_new"], p["transient"]) == (
        f"{NAME} 2011.1", f"{NAME} 2011.5", False)
    rows = [
        (b["ref"][3:], b["points_now"], b["points_new"], b["rank_now"], b["rank_new"],
         b["rank_change"], b["recommendation_now"], b["recommendation_new"],
         b["funding_now"], b["funding_new"])
        for b in p["bids"]
    ]
    assert rows == [  # in the new order; the line: £100,000 available
        ("B1", 7, 6, 1, 1, 0, "approve", "approve", "above_line", "above_line"),
        ("B4", 1, 4, 4, 2, 2, "reject", "refer_back", "below_line", "above_line"),
        # tied at 1: B3 saves £2 a pound a year, B2 33p
        ("B3", 5, 1, 2, 3, -1, "refer_back", "reject", "above_line", "below_line"),
        ("B2", 3, 1, 3, 4, -1, "refer_back", "reject", "below_line", "below_line"),
    ]
    t = p["totals"]
    assert (t["bids"], t["rank_changed"], t["moved_up"], t["moved_down"]) == (4, 3, 1, 2)
    assert (t["points_changed"], t["recommendation_changed"], t["newly_ranked"]) == (4, 3, 0)
    assert t["above_line_now_pence"] == 9_000_000  # B1 £40,000 + B3 £50,000
    assert t["above_line_new_pence"] == 6_000_000  # B1 £40,000 + B4 £20,000
    assert (t["crossed_in"], t["crossed_out"]) == (["R1-B4"], ["R1-B3"])
    assert t["recommendations_now"] == {"approve": 1, "refer_back": 2, "reject": 1}
    assert t["recommendations_new"] == {"approve": 1, "refer_back": 1, "reject": 2}
    # a pasted candidate gives the same figures, scored in plain Python and never kept
    registered = durable_adapter.registered_count()
    with engine.connect() as conn:
        pasted = rulesets.parse_candidate(
            broken('version: "2011.5"', 'version: "paste"'), "preview")
        again = rule_preview.preview(conn, "R1", pasted)
    assert again["transient"] and again["totals"] == p["totals"]
    assert durable_adapter.registered_count() == registered
    assert counts(engine) == before


def test_the_preview_includes_bids_not_scored_yet(world) -> None:
    q, engine, clock = world["q"], world["engine"], world["clock"]
    clock.set(dt.date(2011, 3, 1))
    q.execute("open_round", {"ref": "R9", "name": "Unscored", "pot": "Projects",
                             "closes": "2011-03-31", "rules": NAME}, OFFICER)
    q.execute("submit_bid", {"ref": "R9-B1", "title": "T", "sponsor": "Rutland CC",
                             "grant": "10,000", "savings": "50,000 per annum",
                             "partnership": "yes", "builds_on_proven": "yes", "round": "R9"},
              OFFICER)
    with engine.connect() as conn:
        p = rule_preview.preview(conn, "R9", rule_set_from_text(CANDIDATE, "x"))
    (b,) = p["bids"]
    assert (b["rank_now"], b["rank_new"], b["points_new"], b["rank_change"]) == (None, 1, 6, None)
    assert p["totals"]["newly_ranked"] == 1 and p["totals"]["above_line_new_pence"] == 1_000_000


# ------------------------------------------------------------------ versions listing


def test_versions_list_sha_who_rounds_and_a_diff(world) -> None:
    q, engine = world["q"], world["engine"]
    scored_round(world, "R1", NAME)  # stores 2011.1 on first use
    label = upload(q, V2_FILE.read_text(encoding="utf-8"))["rules"]
    scored_round(world, "R2", label)
    with engine.connect() as conn:
        found = rulesets.versions(conn, NAME)
    assert [(v["version"], v["value"], v["uploaded_by"], v["rounds"], v["shipped"])
            for v in found] == [
        ("2011.1", f"{NAME}@2011.1", "", ["R1"], True),
        ("2011.2", f"{NAME}@2011.2", "Olive", ["R2"], False),
    ]
    assert found[0]["sha256"] == rule_set_from_text(SHIPPED, "x").sha256
    assert found[0]["diff"] == [] and found[1]["previous"] == "2011.1"
    assert "-version: \"2011.1\"" in found[1]["diff"] and "+version: \"2011.2\"" in found[1]["diff"]


# ------------------------------------------------------------------ pages


@pytest.fixture
def web(world, sqlite_url):
    """The world above with round R1 scored by the shipped rules, served, with an
    officer, a board member and a sponsor signed in (after the clock has moved)."""
    q = world["q"]
    scored_round(world)
    q.execute("register_person", {"name": "Sam", "email": SPONSOR, "roles": ["sponsor"],
                                  "organisation": "Rutland CC"}, "system")
    set_passwords(q, OFFICER, MEMBER, SPONSOR)
    app = create_app(sqlite_url, scheduler=False, clock=world["clock"])
    with TestClient(app):
        clients = {}
        for email in (OFFICER, MEMBER, SPONSOR):
            c = TestClient(app)
            assert sign_in(c, email).status_code == 303
            clients[email] = c
        yield {**world, "c": clients}
        for c in clients.values():
            c.close()


def post_file(client: TestClient, body: str, name: str = "rules.yaml"):
    return client.post(
        "/rule-sets/upload",
        data={"csrf_token": csrf_of(client, "/rule-sets"), "_form": "upload-rule-set",
              "_key": f"k-{hash(body)}"},
        files={"file": (name, body.encode("utf-8"), "application/x-yaml")},
        follow_redirects=False,
    )


def problem_once(response, message: str, anchor: str) -> None:
    """The GOV.UK pattern: the summary links to the field, the message shows there, once each."""
    page = response.text
    assert response.status_code == 400, response.status_code
    assert "There is a problem" in page
    assert f'href="#{anchor}"' in page and f'id="{anchor}"' in page
    assert page.count(message) == 2, (message, page.count(message))
    assert "upload_rule_set" not in page.split("<main", 1)[1]  # no command name


def test_upload_on_the_page_then_the_versions_page(web) -> None:
    officer, engine = web["c"][OFFICER], web["engine"]
    page = officer.get("/rounds")
    assert 'href="/rule-sets#upload">Upload a new version</a>' in page.text
    assert 'href="/rounds/R1/preview">Preview against this round' in page.text
    r = post_file(officer, V2_FILE.read_text(encoding="utf-8"))
    assert r.status_code == 303 and r.headers["location"] == f"/rule-sets/{NAME}"
    page = officer.get(f"/rule-sets/{NAME}")
    assert page.status_code == 200
    assert "Stored version 2011.2 of efficiency-bids-2011" in page.text
    sha = rule_set_from_text(V2_FILE.read_text(encoding="utf-8"), "x").sha256
    row = page.text.split('id="v-2011.2"', 1)[1].split("</tr>", 1)[0]
    assert sha[:12] in row and "Olive" in row and f"{NAME}@2011.2" in row
    first = page.text.split('id="v-2011.1"', 1)[1].split("</tr>", 1)[0]
    assert 'href="/rounds/R1"' in first  # R1 was scored with 2011.1
    assert "Version 2011.2 against 2011.1" in page.text
    assert "+version: &#34;2011.2&#34;" in page.text or '+version: "2011.2"' in page.text
    # the new version is offered when opening a round, and a round opens with it
    page = officer.get("/rounds")
    assert f'<option value="{NAME}@2011.2">' in page.text
    keys = re.findall(r'name="_key" value="([^"]+)"', page.text)
    r = officer.post(
        "/do/open_round",
        data={"csrf_token": csrf_of(officer, "/rounds"), "_next": "/rounds",
              "_form": "open-round", "_key": keys[0], "name": "Summer", "pot": "Projects",
              "rules": f"{NAME}@2011.2", "closes": "2011-06-30", "scoring": "required"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:500]
    with engine.connect() as conn:
        summer = conn.execute(select(Round.ref, Round.rule_set).where(Round.name == "Summer"))
        ref, rules = summer.one()
    assert rules == f"{NAME}@2011.2"
    page = officer.get(f"/rounds/{ref}")  # its page ranks with the stored version
    assert page.status_code == 200 and "2011.2" in page.text
    assert "All rule sets" in officer.get(f"/rule-sets/{NAME}").text
    listing = officer.get("/rule-sets")
    assert f'href="/rule-sets/{NAME}"' in listing.text


def test_a_refused_upload_shows_at_the_file_field_and_stores_nothing(web) -> None:
    officer, engine = web["c"][OFFICER], web["engine"]
    before = counts(engine)
    r = post_file(officer, broken("points: 4", "points: -4"))
    problem_once(r, "line 9, criteria[0].outcomes[0].points: -4 is below 0",
                 "f-upload-rule-set-file")
    # a fact's name stays as the file writes it (it is what to type)
    r = post_file(officer, broken("{proven: yes}", "{proved: yes}"))
    assert "savings_per_pound" in r.text and "savings per pound" not in r.text
    r = officer.post("/rule-sets/upload", data={"csrf_token": csrf_of(officer, "/rule-sets")},
                     follow_redirects=False)
    problem_once(r, "choose a rule set file (YAML)", "f-upload-rule-set-file")
    assert counts(engine) == before


def test_the_preview_page_shows_the_figures_and_writes_nothing(web) -> None:
    officer, engine = web["c"][OFFICER], web["engine"]
    label = upload(web["q"], CANDIDATE)["rules"]
    page = officer.get("/rounds/R1/preview")
    assert page.status_code == 200 and f'<option value="{label}">' in page.text
    before = counts(engine)
    page = officer.get(f"/rounds/R1/preview?rules={label}")
    assert page.status_code == 200
    assert counts(engine) == before
    text_ = page.text
    assert '<dd class="govuk-summary-list__value" id="above-now">£90,000 (2 bids)</dd>' in text_
    assert '<dd class="govuk-summary-list__value" id="above-new">£60,000 (2 bids)</dd>' in text_
    b4 = text_.split('id="p-R1-B4"', 1)[1].split("</tr>", 1)[0]
    assert "up 2" in b4 and "changed" in b4
    assert "3 (1 up, 2 down)" in text_ and "above it: R1-B4; below it: R1-B3" in text_
    # pasted text: the same figures, nothing kept
    r = officer.post("/rounds/R1/preview", data={
        "csrf_token": csrf_of(officer, "/rounds/R1/preview"),
        "body": broken('version: "2011.5"', 'version: "pasted"')})
    assert r.status_code == 200 and "£60,000 (2 bids)" in r.text
    assert "checked, used for this preview and dropped" in r.text
    # pasted text that cannot be used: at the field, the text kept as typed
    bad = broken("recommend: approve", "recommend: fund")
    r = officer.post("/rounds/R1/preview", data={
        "csrf_token": csrf_of(officer, "/rounds/R1/preview"), "body": bad})
    message = ("line 34, recommendations[0].recommend: &#39;fund&#39; is not one of: "
               "approve, refer_back, reject")
    problem_once(r, message, "f-preview-pasted-body")
    assert "recommend: fund" in r.text
    r = officer.get("/rounds/R1/preview?rules=efficiency-bids-2011@9")
    problem_once(r, "no stored version &#39;9&#39; of rule set", "f-preview-stored-rules")
    assert counts(engine) == before


def test_who_may_see_and_upload_rule_sets(web) -> None:
    member, sponsor = web["c"][MEMBER], web["c"][SPONSOR]
    assert member.get("/rule-sets").status_code == 200
    assert "Officers and directors upload new versions." in member.get("/rule-sets").text
    r = member.post("/rule-sets/upload",
                    data={"csrf_token": csrf_of(member, "/rule-sets")},
                    files={"file": ("r.yaml", CANDIDATE.encode(), "application/x-yaml")},
                    follow_redirects=False)
    assert r.status_code == 403 and [v for _, v, _ in stored(web["engine"])] == ["2011.1"]
    for path in ("/rule-sets", f"/rule-sets/{NAME}", "/rounds/R1/preview"):
        assert sponsor.get(path).status_code == 403, path


def test_the_cli_uploads_a_file_and_a_round_is_scored_with_it(world, sqlite_url) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    env.pop("QUORUM_DATABASE_URL", None)

    def quorum(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "engine.entry.cli", "--db", sqlite_url, "--as", OFFICER,
             *args], capture_output=True, text=True, env=env, timeout=120)

    out = quorum("round", "upload-rules", str(V2_FILE))
    assert out.returncode == 0, out.stderr
    sha = rule_set_from_text(V2_FILE.read_text(encoding="utf-8"), "x").sha256
    assert out.stdout.strip() == (
        f"stored {NAME}@2011.2 (sha256 {sha[:12]}, 3 criteria, at most 9 points)")
    again = quorum("round", "upload-rules", str(V2_FILE))
    assert again.returncode != 0 and "is already stored with this content" in again.stderr
    scored_round(world, "R1", f"{NAME}@2011.2")
    out = quorum("round", "score", "R1")
    assert out.returncode == 0 and f"with {NAME} 2011.2" in out.stdout, out.stderr


def test_the_preview_page_lists_a_bounded_number_of_bids(web, monkeypatch) -> None:
    monkeypatch.setattr(pages_setup, "PREVIEW_ROWS", 2)
    label = upload(web["q"], CANDIDATE)["rules"]
    page = web["c"][OFFICER].get(f"/rounds/R1/preview?rules={label}").text
    assert page.count('<tr class="govuk-table__row" id="p-') == 2
    assert "The first 2 of 4 bids in the new order; the figures above count them all." in page
    assert "3 (1 up, 2 down)" in page  # the totals still count every bid
