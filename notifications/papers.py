"""Board papers rendered from views with Jinja2: Markdown and HTML, and PDF
(the HTML paper printed by WeasyPrint)."""

from __future__ import annotations

import contextlib
import io
from functools import cache
from typing import Any

from engine.domain.errors import QuorumError
from notifications.render import environment

FORMATS = {"md": "md", "markdown": "md", "html": "html"}

# Page set-up added to every PDF paper; wide tables print landscape.
PAGE_CSS = "@page { size: A4; margin: 1.5cm } body { margin: 0 !important; font-size: 10pt }"
LANDSCAPE = {"bids", "risks", "partnerships"}  # wide tables (a column per criterion, per figure)
LANDSCAPE_CSS = "@page { size: A4 landscape }"


class PdfUnavailable(QuorumError):
    """WeasyPrint (or the system libraries it needs) is not installed."""

    code = "unavailable"
    http_status = 503


def render(paper: str, context: dict, fmt: str = "md") -> str:
    ext = FORMATS.get(fmt.lower())
    if ext is None:
        raise ValueError(f"format {fmt!r}: use md or html")
    return environment().get_template(f"papers/{paper}.{ext}").render(context)


@cache
def _weasyprint() -> Any:
    """The weasyprint module, or a clear refusal when it (or Pango, which it
    loads at import) is missing. WeasyPrint prints its own hint to stdout when
    a library is missing; that is swallowed so a PDF on stdout stays clean."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import weasyprint
    except (ImportError, OSError) as exc:
        raise PdfUnavailable(
            "PDF papers need WeasyPrint and the system libraries it uses (Pango, "
            "HarfBuzz, fontconfig): pip install weasyprint, and on Debian/Ubuntu "
            "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0; "
            f"HTML and Markdown papers work without them ({type(exc).__name__}: {exc})"
        ) from None
    return weasyprint


def _no_network_fetcher(weasyprint: Any) -> Any:
    """A URL fetcher that allows only ``data:`` URLs: a paper never fetches
    anything over the network or from the file system. A refused URL (say an
    image a user linked) is left out of the PDF with a warning in the log."""
    urls = weasyprint.urls
    if hasattr(urls, "URLFetcher"):  # WeasyPrint 68 and later
        return urls.URLFetcher(allowed_protocols={"data"}, allow_redirects=False)

    def fetch(url: str, *args: Any, **kwargs: Any) -> dict:  # WeasyPrint 62-67
        if not url.lower().startswith("data:"):
            raise ValueError(f"papers fetch nothing: {url} refused")
        return urls.default_url_fetcher(url, *args, **kwargs)

    return fetch


def render_pdf(name: str, context: dict) -> bytes:
    """The paper ``name`` as PDF: its HTML rendering printed by WeasyPrint (A4;
    landscape for the wide bids table), with no network or file access.
    Raises :class:`PdfUnavailable` (a QuorumError, HTTP 503) when WeasyPrint
    cannot be loaded."""
    weasyprint = _weasyprint()
    html = render(name, context, "html")
    css = [weasyprint.CSS(string=PAGE_CSS)]
    if name in LANDSCAPE:
        css.append(weasyprint.CSS(string=LANDSCAPE_CSS))
    doc = weasyprint.HTML(string=html, base_url=None, url_fetcher=_no_network_fetcher(weasyprint))
    return doc.write_pdf(stylesheets=css)
