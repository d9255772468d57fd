"""Every QUORUM_* variable is read into one validated object (engine/settings.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.settings import (
    Settings,
    SettingsError,
    get_settings,
    override_settings,
    reset_settings,
)
from engine.store import db, links
from quorum_web import uploads

REPO = Path(__file__).resolve().parents[1]
VARIABLES = sorted("QUORUM_" + name.upper() for name in Settings.model_fields)


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith("QUORUM_"):
            monkeypatch.delenv(name)
    reset_settings()
    yield monkeypatch
    reset_settings()


def test_defaults(clean_env) -> None:
    s = get_settings()
    assert s == Settings.from_env({})
    assert (s.database_url, s.sqlite_synchronous) == ("sqlite:///quorum.db", "NORMAL")
    assert s.actor is None
    assert (s.secret_key, s.https_only, s.base_url) == (None, False, "http://127.0.0.1:8000")
    assert (s.upload_dir, s.upload_max_mb) == (Path("var/uploads"), 10.0)
    assert (s.returns_rules, s.reminders_rules) == (None, None)
    assert (s.mail, s.mail_from, s.mail_grace_seconds, s.outbox_dir) == (
        "file", "Quorum <quorum@localhost>", 600, Path("var/outbox"),
    )  # fmt: skip
    assert (s.smtp_host, s.smtp_port, s.smtp_tls, s.smtp_user, s.smtp_password) == (
        None, None, "starttls", None, None,
    )  # fmt: skip
    assert (s.smtp_timeout, s.smtp_ca_file) == (30.0, None)
    assert (s.sweep_at, s.timezone, s.dispatch_seconds) == ("07:00", "Europe/London", 30)
    assert s.idempotency_key_hours == 24
    # what the modules read
    assert db.database_url() == "sqlite:///quorum.db"
    assert db.sqlite_synchronous() == "NORMAL"
    assert links.base_url() == "http://127.0.0.1:8000"
    assert uploads.max_bytes() == 10 * 1024 * 1024
    # blank is unset
    assert Settings.from_env({"QUORUM_MAIL": "  ", "QUORUM_UPLOAD_MAX_MB": ""}) == s


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("QUORUM_SQLITE_SYNCHRONOUS", "sometimes", ["'SOMETIMES'", "NORMAL, FULL, EXTRA"]),
        ("QUORUM_DATABASE_URL", "quorum.db", ["'quorum.db'", "sqlite:///"]),
        ("QUORUM_SECRET_KEY", "short", ["at least 32 characters", "it has 5"]),
        ("QUORUM_HTTPS_ONLY", "maybe", ["'maybe'", "1, true, yes, on, 0, false, no, off"]),
        ("QUORUM_BASE_URL", "grants.example.org", ["'grants.example.org'", "https://"]),
        ("QUORUM_UPLOAD_MAX_MB", "ten", ["'ten'", "megabytes above 0"]),
        ("QUORUM_UPLOAD_MAX_MB", "-1", ["'-1'", "megabytes above 0"]),
        ("QUORUM_MAIL", "pigeon", ["'pigeon'", "file, smtp"]),
        ("QUORUM_MAIL_FROM", "the grants team", ["'the grants team'", "email address"]),
        ("QUORUM_MAIL_GRACE_SECONDS", "1.5", ["'1.5'", "whole number of seconds"]),
        ("QUORUM_SMTP_PORT", "twenty-five", ["'twenty-five'", "1 to 65535"]),
        ("QUORUM_SMTP_TLS", "yes", ["'yes'", "none, starttls, ssl"]),
        ("QUORUM_SMTP_TIMEOUT", "soon", ["'soon'", "seconds above 0"]),
        ("QUORUM_SWEEP_AT", "7am", ["'7am'", "HH:MM"]),
        ("QUORUM_TIMEZONE", "Mars/Olympus", ["'Mars/Olympus'", "Europe/London or UTC"]),
        ("QUORUM_DISPATCH_SECONDS", "0", ["'0'", "1 or more"]),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_what_is_allowed(
    clean_env, name, value, words
) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value})
    for word in [name, *words]:
        assert word in err.value.message
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as err2:
        get_settings()
    assert err2.value.message == err.value.message


def test_the_secret_key_is_never_echoed(clean_env) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"QUORUM_SECRET_KEY": "hunter2-hunter2"})
    assert "hunter2" not in err.value.message
    assert "hunter2" not in repr(Settings.from_env({"QUORUM_SECRET_KEY": "k" * 40}))


def test_every_bad_value_is_listed_at_once(clean_env) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"QUORUM_SMTP_PORT": "x", "QUORUM_SWEEP_AT": "noon"})
    lines = err.value.message.splitlines()
    assert len(lines) == 2
    assert any("QUORUM_SMTP_PORT" in line for line in lines)
    assert any("QUORUM_SWEEP_AT" in line for line in lines)


def test_idempotency_key_hours_is_a_whole_number_of_hours(clean_env) -> None:
    assert Settings.from_env({"QUORUM_IDEMPOTENCY_KEY_HOURS": "48"}).idempotency_key_hours == 48
    for bad in ("0", "1.5", "a day"):
        with pytest.raises(SettingsError, match="QUORUM_IDEMPOTENCY_KEY_HOURS=.*whole number"):
            Settings.from_env({"QUORUM_IDEMPOTENCY_KEY_HOURS": bad})


def test_an_environment_change_and_an_override_are_seen(clean_env, tmp_path) -> None:
    clean_env.setenv("QUORUM_BASE_URL", "https://grants.example.org/")
    clean_env.setenv("QUORUM_UPLOAD_MAX_MB", "0.5")
    clean_env.setenv("QUORUM_SQLITE_SYNCHRONOUS", "full")
    assert links.base_url() == "https://grants.example.org"
    assert uploads.max_bytes() == 512 * 1024
    assert db.sqlite_synchronous() == "FULL"
    first = get_settings()
    assert get_settings() is first  # one object while the environment stands still
    with override_settings(upload_dir=str(tmp_path), base_url="http://localhost:9000") as s:
        assert get_settings() is s
        assert uploads.upload_dir() == tmp_path
        assert links.base_url() == "http://localhost:9000"
        assert uploads.max_bytes() == 10 * 1024 * 1024  # the override starts from defaults
    assert get_settings() is first
    with pytest.raises(SettingsError, match="QUORUM_SMTP_TLS"):
        with override_settings(smtp_tls="maybe"):
            pass


def test_every_change_is_seen_by_the_quick_check(clean_env) -> None:
    """get_settings checks only the number of variables and the values of the names
    the settings read, spelt in upper case: a value changed, a variable added or
    removed, and a name spelt otherwise (changed in place) are all seen."""
    first = get_settings()
    assert get_settings() is first
    clean_env.setenv("QUORUM_SWEEP_CHUNK", "7")  # a value of a name read
    assert get_settings().sweep_chunk == 7
    clean_env.setenv("QUORUM_SWEEP_CHUNK", "8")  # changed in place: same number of variables
    assert get_settings().sweep_chunk == 8
    clean_env.delenv("QUORUM_SWEEP_CHUNK")
    assert get_settings().sweep_chunk == first.sweep_chunk
    clean_env.setenv("quorum_sweep_chunk", "9")  # spelt otherwise: the number changes
    assert get_settings().sweep_chunk == 9
    clean_env.setenv("quorum_sweep_chunk", "11")  # ...and changed in place
    assert get_settings().sweep_chunk == 11
    clean_env.delenv("quorum_sweep_chunk")
    assert get_settings().sweep_chunk == first.sweep_chunk


def _quorum(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.upper().startswith("QUORUM_")}
    full.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run(
        [sys.executable, "-m", "engine.entry.cli", *args],
        capture_output=True, text=True, env=full, timeout=120,
    )  # fmt: skip


def test_the_cli_and_serve_refuse_to_start_on_a_bad_value(tmp_path) -> None:
    db_url = f"sqlite:///{tmp_path / 'q.db'}"
    bad = {"QUORUM_SMTP_PORT": "twenty-five", "QUORUM_MAIL": "smtp", "QUORUM_SMTP_HOST": "m"}
    listed = _quorum("--db", db_url, "people", "list", env=bad)
    assert listed.returncode == 1
    assert "error: QUORUM_SMTP_PORT='twenty-five': a port number from 1 to 65535" in listed.stderr
    assert "Traceback" not in listed.stderr
    served = _quorum("--db", db_url, "serve", "--port", "1", env={"QUORUM_HTTPS_ONLY": "maybe"})
    assert served.returncode == 1
    assert "error: QUORUM_HTTPS_ONLY='maybe'" in served.stderr
    assert "Traceback" not in served.stderr and "Quorum at" not in served.stdout
    ok = _quorum("--db", db_url, "people", "list", env={"QUORUM_HTTPS_ONLY": "on"})
    assert ok.returncode == 0, ok.stderr


def test_create_app_refuses_a_bad_value(clean_env, tmp_path) -> None:
    from quorum_web.app import create_app

    clean_env.setenv("QUORUM_SECRET_KEY", "too short")
    with pytest.raises(SettingsError, match="QUORUM_SECRET_KEY must be at least 32 characters"):
        create_app(f"sqlite:///{tmp_path / 'q.db'}", scheduler=False)


def test_no_module_reads_the_environment_but_the_settings() -> None:
    readers = []
    for folder in ("engine", "rules", "notifications", "quorum_web", "workflows"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path == REPO / "engine" / "settings.py":
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"os\.environ|getenv\(|environ\.get\(", text):
                readers.append(str(path.relative_to(REPO)))
    assert readers == []


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md"])
def test_every_variable_is_documented_with_its_default(doc) -> None:
    text = (REPO / doc).read_text(encoding="utf-8")
    section = text[text.index("## Configuration") :]
    section = section[: section.index("\n## ", 5)]
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^\| `(QUORUM_[A-Z_]+)`[^\n]*$", section, re.M)
    }
    assert sorted(rows) == VARIABLES
    for row in rows.values():
        assert len(row.split(" | ")) == 3  # name, default, meaning
