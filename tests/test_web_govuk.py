"""The pages are built on the vendored GOV.UK Frontend (issue 14, items 6 and 7): every
page served as HTML links its compiled CSS, starts with the skip link to the main
content and ends with a footer linking the accessibility statement; the statement
and the licences are public; and neither the GOV.UK crown nor its typeface (GDS
Transport) is compiled in or served, because those are for GOV.UK itself."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from moneykit import OFFICER, SPONSOR, bid_refs, grant_ref, money_board
from test_web_roles import routes
from webkit import set_passwords, sign_in

from quorum_web.app import create_app
from quorum_web.pages import STATIC

CSS = "/static/govuk/govuk-frontend.min.css"
LAYOUT = (
    f'<link rel="stylesheet" href="{CSS}">',
    '<html lang="en" class="govuk-template">',
    '<a href="#main-content" class="govuk-skip-link" data-module="govuk-skip-link">'
    "Skip to main content</a>",
    '<main class="govuk-main-wrapper" id="main-content">',
    '<footer class="govuk-footer">',
    '<a class="govuk-footer__link" href="/accessibility">Accessibility statement</a>',
    '<a class="govuk-footer__link" href="/register">Public register of decisions</a>',
    '<a class="govuk-footer__link" href="/licences">Licences</a>',
    '<script type="module" src="/static/govuk/quorum-govuk.js"></script>',
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('govuk') / 'quorum.db'}"
    q, engine, clock = money_board(url)
    set_passwords(q, OFFICER, SPONSOR)
    clock.set(dt.date(2011, 7, 5))
    refs = {"bid": bid_refs(engine, "Shared ICT")[0], "grant": grant_ref(engine, "Shared ICT"),
            "meeting": "BOARD-APR", "round": "R1"}
    app = create_app(url, scheduler=False, clock=clock)
    with TestClient(app) as anon:
        officer, sponsor = TestClient(app), TestClient(app)
        assert sign_in(officer, OFFICER).status_code == 303
        assert sign_in(sponsor, SPONSOR).status_code == 303
        yield {"app": app, "anon": anon, "officer": officer, "sponsor": sponsor, "refs": refs}
    engine.dispose()


def page_paths(app, refs: dict[str, str]) -> list[str]:
    """Every page route (GET, HTML, not the API) with its refs filled in; a route whose
    parameter has no ref here is left out only if it is not a page of its own."""
    paths = []
    for method, path in routes(app):
        if method != "GET" or path.startswith(("/api", "/static")):
            continue
        if path in ("/healthz", "/register/feed.atom") or "." in path.rsplit("/", 1)[-1]:
            continue
        names = re.findall(r"{(\w+)}", path)
        if any(n != "ref" for n in names):
            continue  # a file, a paper, an evidence download, a token link
        if names:
            kind = path.strip("/").split("/")[0].rstrip("s")
            if kind not in refs:
                continue
            paths.append(path.replace("{ref}", refs[kind]))
        else:
            paths.append(path)
    return sorted(set(paths))


def test_every_page_has_the_govuk_layout(site) -> None:
    paths = page_paths(site["app"], site["refs"])
    assert {"/", "/bids", "/accessibility", "/register", "/login"} <= set(paths), paths
    assert len(paths) >= 25, paths
    seen = 0
    for path in paths:
        for who in ("officer", "sponsor", "anon"):
            r = site[who].get(path, follow_redirects=False)
            if r.status_code != 200 or not r.headers["content-type"].startswith("text/html"):
                continue
            seen += 1
            missing = [piece for piece in LAYOUT if piece not in r.text]
            assert not missing, (who, path, missing)
            assert r.text.count('id="main-content"') == 1, (who, path)
            assert "govuk-header" not in r.text and "govuk-logo" not in r.text, (who, path)
    assert seen >= 40, seen


def test_the_accessibility_statement_is_public_and_in_the_govuk_model(site) -> None:
    r = site["anon"].get("/accessibility")
    assert r.status_code == 200
    for heading in ("Accessibility statement for Quorum", "How accessible this service is",
                    "Reporting accessibility problems with this service", "Enforcement procedure",
                    "Compliance status", "Non-accessible content",
                    "Preparation of this accessibility statement"):
        assert f">{heading}</h" in r.text, heading
    assert "Web Content Accessibility Guidelines version 2.2</a>\nAA standard" in r.text
    assert "partially compliant" in r.text and "axe-core" in r.text and "keyboard" in r.text
    assert "Equality and Human Rights Commission" in r.text
    limitations = r.text.split('id="known-limitations">')[1].split("</ul>")[0]
    assert "workflow diagrams" in limitations and "PDF" in limitations
    licences = site["anon"].get("/licences")
    assert licences.status_code == 200 and 'href="/static/govuk/LICENCE"' in licences.text
    licence = site["anon"].get("/static/govuk/LICENCE").text
    assert "Crown Copyright (Government Digital Service)" in licence


def test_the_vendored_frontend_is_served_without_the_crown_or_gds_transport(site) -> None:
    anon = site["anon"]
    css = anon.get(CSS)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".govuk-button{" in css.text and ".govuk-service-navigation" in css.text
    assert "GDS Transport" not in css.text and "@font-face" not in css.text
    assert "system-ui" in css.text  # the system font stack
    js = anon.get("/static/govuk/quorum-govuk.js")
    assert js.status_code == 200 and 'from "./govuk-frontend.min.js"' in js.text
    assert anon.get("/static/govuk/govuk-frontend.min.js").status_code == 200
    assert anon.get("/static/govuk/quorum-init.js").status_code == 200
    # no font, crown, crest or GOV.UK icon is shipped: nothing under static/ but what we use
    govuk = STATIC / "govuk"
    shipped = sorted(p.relative_to(govuk).as_posix() for p in govuk.rglob("*") if p.is_file())
    assert shipped == ["LICENCE", "govuk-frontend.min.css", "govuk-frontend.min.js",
                       "quorum-govuk.js", "quorum-govuk.scss", "quorum-init.js"], shipped
    assert not [p for p in STATIC.rglob("*") if p.suffix in (".woff", ".woff2", ".ico")
                or re.search(r"crown|crest|govuk-icon", p.name)]
    for asset in ("assets/fonts/bold-b542beb274-v2.woff2", "assets/images/govuk-crest.svg",
                  "assets/images/favicon.ico", "assets/images/govuk-icon-180.png"):
        assert anon.get(f"/static/govuk/{asset}").status_code == 404, asset
