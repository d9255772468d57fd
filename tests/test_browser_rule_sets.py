"""The rule set pages (issue 14 item 1) pass axe-core with no serious or critical
violation, in their plain and refused states: the list with the upload form and
an error at its field, a rule set's versions with a diff, and the preview with
its figures and with an error at the pasted text."""

from __future__ import annotations

from browser import accessibility_problems, browser_context  # noqa: F401
from test_rule_sets import (  # noqa: F401 (fixtures)
    CANDIDATE,
    NAME,
    OFFICER,
    V2_FILE,
    broken,
    post_file,
    upload,
    web,
    world,
)
from webkit import csrf_of


def test_rule_set_pages_pass_axe(web, browser_context) -> None:  # noqa: F811
    officer = web["c"][OFFICER]
    upload(web["q"], V2_FILE.read_text(encoding="utf-8"))
    label = upload(web["q"], broken('version: "2011.5"', 'version: "2011.6"', CANDIDATE))["rules"]
    shown = {
        "list": officer.get("/rule-sets"),
        "list, refused upload": post_file(officer, broken("points: 4", "points: -4", CANDIDATE)),
        "versions": officer.get(f"/rule-sets/{NAME}"),
        "preview form": officer.get("/rounds/R1/preview"),
        "preview": officer.get(f"/rounds/R1/preview?rules={label}"),
        "preview, refused paste": officer.post(
            "/rounds/R1/preview",
            data={"csrf_token": csrf_of(officer, "/rounds/R1/preview"), "body": "a: [b"},
        ),
    }
    page = browser_context.new_page()
    try:
        for what, response in shown.items():
            assert response.status_code in (200, 400), (what, response.status_code)
            page.set_content(response.text)
            assert accessibility_problems(page) == [], what
    finally:
        page.close()
