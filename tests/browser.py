"""A real headless Chromium for the browser tests: the system's Chromium (Debian's
``chromium``; ``.ci/run`` installs it), driven by Playwright. Never downloads a
browser (no ``playwright install``).

    chromium_path()        the executable, or None (QUORUM_CHROMIUM overrides)
    launch(p, profile)     a persistent context on a fresh user-data dir
    artifacts_dir()        where screenshots go: QUORUM_ARTIFACTS, default
                           tests/artifacts/browser/
    serve(db_url, port)    the real app (``quorum serve``) in a subprocess on a free port
    accessibility_problems(page)
                           axe-core's serious and critical violations on the page as shown

The ``browser_context`` fixture skips the test when Playwright or Chromium is missing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("QUORUM_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )


def artifacts_dir() -> Path:
    path = Path(os.environ.get("QUORUM_ARTIFACTS") or ROOT / "tests" / "artifacts" / "browser")
    path.mkdir(parents=True, exist_ok=True)
    return path


def launch(playwright, profile: Path):  # noqa: ANN001, ANN201
    """A persistent browser context on the fresh user-data dir ``profile``."""
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=chromium_path(),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
        locale="en-GB",
        timezone_id="UTC",
    )


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):  # noqa: ANN201
    """One browser for a test module, on a fresh user-data dir (skips without Chromium)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if chromium_path() is None:
        pytest.skip("no Chromium (install Debian's chromium or set QUORUM_CHROMIUM)")
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path_factory.mktemp("profile")))
    with sync_api.sync_playwright() as p:
        context = launch(p, profile)
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quorum(db_url: str, *args: str, env: dict | None = None, actor: str | None = None) -> str:
    """Run the CLI (``python -m engine.entry.cli``) and return its output; fail on error."""
    cmd = [sys.executable, "-m", "engine.entry.cli", "--db", db_url]
    if actor:
        cmd += ["--as", actor]
    done = subprocess.run(
        cmd + list(args),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"quorum {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def serve(
    db_url: str,
    port: int | None = None,
    env: dict | None = None,
    log: Path | None = None,
    scheduler: bool = False,
) -> Iterator[str]:
    """``quorum serve --no-scheduler`` on ``port`` (default: a free one); yields its base URL.
    ``scheduler=True``: with the scheduler (its sweep at start, the outbox dispatcher)."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.entry.cli", "--db", db_url, "serve", "--port", str(port)]
        + ([] if scheduler else ["--no-scheduler"]),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "QUORUM_BASE_URL": base, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"quorum serve exited with {proc.returncode} (log: {log})")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"quorum serve did not answer at {base} (log: {log})")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()


# axe-core (bundled by axe-playwright-python) finds what a screen reader user or a
# keyboard user would trip on; "serious" and "critical" are the impacts we refuse.
REFUSED_IMPACTS = ("serious", "critical")
_AXE = Axe()


def fill_date(where, fid: str, day: dt.date) -> None:  # noqa: ANN001
    """Type ``day`` into the GOV.UK date input whose day box is ``fid`` (its month and
    year boxes are ``fid``-month and ``fid``-year), as a person does: three numbers."""
    for suffix, value in (("", day.day), ("-month", day.month), ("-year", day.year)):
        where.fill(fid + suffix, str(value))


def fill_date_group(form, legend: re.Pattern[str], day: dt.date) -> None:  # noqa: ANN001
    """The same, finding the date input by its question (the fieldset's legend) and
    its boxes by their labels Day, Month and Year."""
    group = form.get_by_role("group", name=legend)
    for label, value in (("Day", day.day), ("Month", day.month), ("Year", day.year)):
        group.get_by_label(label, exact=True).fill(str(value))


def accessibility_problems(page) -> list[str]:  # noqa: ANN001
    """Each serious or critical axe-core violation on ``page`` as it is now:
    ``rule (impact): help — n element(s), e.g. <selector>``."""
    results = _AXE.run(page)
    problems = []
    for v in results.response["violations"]:
        if v.get("impact") in REFUSED_IMPACTS:
            nodes = v.get("nodes", [])
            first = nodes[0]["target"] if nodes else ""
            problems.append(
                f"{v['id']} ({v['impact']}): {v['help']} — {len(nodes)} element(s), e.g. {first}"
            )
    return problems
