"""The accessibility check the browser tests run on every page they show
(tests/browser.py ``accessibility_problems``: axe-core, serious and critical
violations) finds what it must: a page built to fail is refused by rule name,
and a page built right passes."""

from __future__ import annotations

from browser import accessibility_problems, browser_context  # noqa: F401

BAD = """<!doctype html><html><head><title>Bad</title></head><body><main>
<h1>Bad</h1><img src="chart.png"><form><input type="text" name="title"></form>
</main></body></html>"""

GOOD = """<!doctype html><html lang="en"><head><title>Good</title></head><body><main>
<h1>Good</h1><img src="chart.png" alt="Savings by quarter"><form>
<label for="title">Title</label><input type="text" id="title" name="title"></form>
</main></body></html>"""


def test_axe_names_each_serious_problem_and_passes_a_sound_page(browser_context) -> None:  # noqa: F811
    page = browser_context.new_page()
    try:
        page.set_content(BAD)
        problems = accessibility_problems(page)
        rules = {p.split(" ", 1)[0] for p in problems}
        assert {"image-alt", "label"} <= rules, problems
        assert all("(critical)" in p or "(serious)" in p for p in problems)
        page.set_content(GOOD)
        assert accessibility_problems(page) == []
    finally:
        page.close()
