"""The one rule-file loader (rules/loader.py): one bounded cache for the four
formats, and what-if rule sets that are parsed, evaluated and released: no file
written, no cache entry, no durable_rules ruleset registered (see the trap
"Rulesets are never unregistered" in rules/durable_adapter.py)."""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moneykit import OFFICER, money_board
from webkit import closed_second_round, csrf_of, set_passwords, sign_in

from quorum_web.app import create_app
from rules import durable_adapter, loader
from rules.reminders import RemindersError, parse_ladder_rules
from rules.returns import DEFAULT_FILE as RETURNS_FILE
from rules.returns import ReturnRulesError, load_return_rules, parse_return_rules
from rules.scoring import (
    RULES_DIR,
    SAMPLE_FACTS,
    load_rule_set,
    parse_rule_set,
    rule_set_from_text,
    whatif_rule_set,
)

SHIPPED = RULES_DIR / "efficiency-bids-2011.yaml"
V2_RULES = Path(__file__).parent / "rules" / "efficiency-bids-2011-v2.yaml"


def distinct_text(i: int) -> str:
    """The shipped rule set with a version and a threshold of its own."""
    text = SHIPPED.read_text(encoding="utf-8").replace('version: "2011.1"', f'version: "w{i}"')
    assert f'"w{i}"' in text
    return text


def sample_facts() -> list[dict]:
    out = []
    for i, (partners, proven) in enumerate([(0, "no"), (2, "yes"), (1, "not_stated")]):
        involves = "yes" if partners else "no"
        out.append(dict(SAMPLE_FACTS, ref=f"B-{i + 1:04d}", partner_count=partners,
                        involves_other_councils=involves, proven=proven))  # fmt: skip
    return out


def test_many_whatifs_write_no_file_and_keep_nothing(tmp_path, monkeypatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    facts = sample_facts()
    load_rule_set("efficiency-bids-2011").score(facts)  # the rule set in use: registered once
    registered, entries = durable_adapter.registered_count(), loader.cache_info()["entries"]
    for i in range(40):
        rs = whatif_rule_set(rule_set_from_text(distinct_text(i), "upload.yaml"))
        assert rs.transient and rs.version == f"w{i}"
        assert rs.score(facts) == rs.score_python(facts)
    assert durable_adapter.registered_count() == registered
    assert loader.cache_info()["entries"] == entries
    assert list(scratch.iterdir()) == []
    with pytest.raises(durable_adapter.DurableRulesError, match="never registered"):
        rs._ensure_registered()


def test_a_transient_rule_set_scores_as_durable_rules_does() -> None:
    text = V2_RULES.read_text(encoding="utf-8")
    facts = sample_facts()
    product = parse_rule_set(text, source="v2.yaml")  # registered, like a rule set in use
    assert rule_set_from_text(text, "v2.yaml").score(facts) == product.score(facts)


def test_a_whatif_file_is_read_each_time_and_not_cached(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(distinct_text(1), encoding="utf-8")
    entries = loader.cache_info()["entries"]
    first = whatif_rule_set(str(path))
    assert first.transient and first.version == "w1" and first.source == "mine.yaml"
    path.write_text(distinct_text(2), encoding="utf-8")
    assert whatif_rule_set(path).version == "w2"
    assert loader.cache_info()["entries"] == entries
    named = whatif_rule_set("efficiency-bids-2011")  # a shipped one is the rule set in use
    assert not named.transient and named is load_rule_set("efficiency-bids-2011")


def test_the_one_cache_is_bounded_and_reads_an_edited_file_afresh(tmp_path) -> None:
    text = RETURNS_FILE.read_text(encoding="utf-8")
    paths = []
    for i in range(loader.MAX_ENTRIES + 5):
        path = tmp_path / f"returns-{i}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    first = [load_return_rules(p) for p in paths]
    assert loader.cache_info()["entries"] == loader.MAX_ENTRIES
    assert load_return_rules(paths[-1]) is first[-1]  # still cached
    assert load_return_rules(paths[0]) is not first[0]  # dropped, read again
    edited = text.replace(re.search(r'version: "?[^"\n]+"?', text).group(0), 'version: "edited"')
    paths[-1].write_text(edited, encoding="utf-8")
    again = load_return_rules(paths[-1])
    assert again is not first[-1] and again.version == "edited"
    assert loader.cache_info()["entries"] <= loader.MAX_ENTRIES


@pytest.fixture
def officer_on_a_round(sqlite_url):
    q, _engine, clock = money_board(sqlite_url)
    set_passwords(q, OFFICER)
    clock.set(dt.date(2011, 7, 5))
    closed_second_round(q, clock, OFFICER)
    app = create_app(sqlite_url, scheduler=False, clock=clock)
    with TestClient(app) as c:
        assert sign_in(c, OFFICER).status_code == 303
        yield c


def test_whatif_uploads_on_the_round_page_leave_nothing_behind(
    officer_on_a_round, tmp_path, monkeypatch
) -> None:
    officer = officer_on_a_round
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def upload(i: int):
        return officer.post(
            "/rounds/R1/whatif",
            data={"csrf_token": csrf_of(officer, "/rounds/R1")},
            files={"file": (f"w{i}.yaml", distinct_text(i).encode(), "application/x-yaml")},
        )

    assert upload(0).status_code == 200  # the round's own rule set is in use from here on
    registered, entries = durable_adapter.registered_count(), loader.cache_info()["entries"]
    for i in range(1, 16):
        r = upload(i)
        assert r.status_code == 200 and f"efficiency-bids-2011 w{i}" in r.text
    assert durable_adapter.registered_count() == registered
    assert loader.cache_info()["entries"] == entries
    assert list(scratch.iterdir()) == []
    bad = officer.post(
        "/rounds/R1/whatif",
        data={"csrf_token": csrf_of(officer, "/rounds/R1")},
        files={"file": ("bad.yaml", b"\xff\xfe", "application/x-yaml")},
    )
    assert bad.status_code == 400 and "bad.yaml is not UTF-8 text" in bad.text


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (
            "returns",
            'name: r\nversion: "1"\ndefault:\n  returns:\n    - {kind: progress, every: quarter}\n',
            "r.yaml: default.returns[0].due_days: is required",
        ),
        (
            "returns",
            'name: r\nversion: "1"\ndefault:\n  returns: [{kind: progress}]\n  frm: 2011-06-30\n',
            "r.yaml: default.frm: unknown key 'frm'; allowed here: returns, move, from",
        ),
        (
            "reminders",
            'name: r\nversion: "1"\ndefault:\n  ladder:\n    - {rung: chase, template: t, '
            "from: 1}\n",
            "r.yaml: default.ladder[0].to: is required",
        ),
        (
            "reminders",
            'name: r\nversion: "1"\ndefault:\n  ladder: []\n  rungs: []\n',
            "r.yaml: default.rungs: unknown key 'rungs'; allowed here: ladder",
        ),
    ],
)
def test_the_models_errors_keep_the_formats_wording(parse, text, message) -> None:
    fn, error = {
        "returns": (parse_return_rules, ReturnRulesError),
        "reminders": (parse_ladder_rules, RemindersError),
    }[parse]
    with pytest.raises(error) as caught:
        fn(text, "r.yaml")
    assert str(caught.value) == message


def test_an_unchanged_file_is_not_read_again_and_any_edit_is_seen(tmp_path, monkeypatch) -> None:
    text = RETURNS_FILE.read_text(encoding="utf-8")
    old = re.search(r'version: "?[^"\n]+"?', text).group(0)
    path = tmp_path / "returns.yaml"
    path.write_text(text, encoding="utf-8")
    settled = 1_000_000_000  # 2001: long settled
    os.utime(path, (settled, settled))
    monkeypatch.setattr(loader, "SETTLED_SECONDS", 0)  # (its change time is now)
    reads = []
    real = loader._read
    monkeypatch.setattr(loader, "_read", lambda fmt, p: reads.append(p) or real(fmt, p))
    first = load_return_rules(path)
    assert load_return_rules(path) is first and load_return_rules(path) is first
    assert len(reads) == 1  # the file's identity unchanged: neither read nor hashed again
    # an edit of the same size with the modification time put back: its change time moved
    same_size = text.replace(old, 'version: "' + "e" * (len(old) - len('version: ""')) + '"')
    assert len(same_size) == len(text) and same_size != text
    time.sleep(0.02)  # past the clock's tick, so its change time moves
    path.write_text(same_size, encoding="utf-8")
    os.utime(path, (settled, settled))
    again = load_return_rules(path)
    assert again is not first and again.version == "e" * (len(old) - len('version: ""'))
    # a file changed within SETTLED_SECONDS is read each time (an edit within the
    # clock's tick could keep its times)
    monkeypatch.setattr(loader, "SETTLED_SECONDS", 60)
    path.write_text(text, encoding="utf-8")
    reads.clear()
    assert load_return_rules(path).version == first.version
    load_return_rules(path)
    assert len(reads) == 2
