"""The vendored Mermaid renders every workflow's diagram in a real headless
Chromium, with the current state highlighted (skipped without Chromium)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from unit.test_workflow_mermaid import WORKFLOWS

MERMAID = (
    Path(__file__).resolve().parents[1] / "quorum_web" / "static" / "vendor" / "mermaid.min.js"
)

RENDER = """async (text) => {
  try {
    const { svg } = await mermaid.render("d" + Math.floor(Math.random() * 1e9), text);
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    const nodes = [...doc.querySelectorAll("g.node")];
    return {
      ok: true,
      nodes: nodes.map((n) => n.textContent.trim()).filter((t) => t),
      current: nodes
        .filter((n) => n.classList.contains("current"))
        .map((n) => n.textContent.trim()),
      labels: [...doc.querySelectorAll(".edgeLabel")].map((n) => n.textContent.trim()),
    };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
}"""


def chromium() -> str | None:
    return os.environ.get("QUORUM_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium (set QUORUM_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        pg = browser.new_page()
        pg.set_content("<!doctype html><html><body></body></html>")
        pg.add_script_tag(path=str(MERMAID))
        pg.evaluate("mermaid.initialize({startOnLoad: false, securityLevel: 'strict'})")
        yield pg
        browser.close()


@pytest.mark.parametrize("wf", WORKFLOWS, ids=lambda wf: wf.name)
def test_mermaid_renders_every_workflow(page, wf) -> None:
    plain = page.evaluate(RENDER, wf.mermaid())
    assert plain["ok"], plain.get("error")
    assert set(plain["nodes"]) == set(wf.states)
    shown_triggers = {t for label in plain["labels"] for t in label.split(", ") if t}
    assert shown_triggers == {st.trigger for st in wf.steps}
    for state in wf.states:
        shown = page.evaluate(RENDER, wf.mermaid(state))
        assert shown["ok"], shown.get("error")
        assert shown["current"] == [state]
