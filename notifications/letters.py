"""Grant offer letters (issue 16): rendered once, when issued, from the
programme's template (``templates/offers/<name>.html``; ``default`` ships), and
stored as issued: the stored HTML is what the recipient accepts and what its
SHA-256 is taken of. A PDF is printed from the stored HTML by WeasyPrint, like
the board papers (notifications/papers.py: no network, no file access)."""

from __future__ import annotations

import hashlib
import re

from jinja2 import TemplateNotFound

from engine.domain.errors import ValidationError
from notifications.papers import PAGE_CSS, _no_network_fetcher, _weasyprint
from notifications.render import environment

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,60}$")


def check_template(name: str, field: str = "offer_template") -> str:
    """A template name a programme may name: a file in templates/offers/."""
    if not NAME.match(name):
        raise ValidationError(
            f"{field}: {name!r} is not a template name (lower-case letters, digits, - and _; "
            "the file notifications/templates/offers/<name>.html)", field=field)
    try:
        environment().get_template(f"offers/{name}.html")
    except TemplateNotFound:
        raise ValidationError(
            f"{field}: no letter template {name!r} (add notifications/templates/offers/"
            f"{name}.html, or give default)", field=field) from None
    return name


def render(template: str, context: dict) -> str:
    return environment().get_template(f"offers/{template}.html").render(context)


def fingerprint(html: str) -> str:
    """The letter's SHA-256 (hex) over its UTF-8 text: what an acceptance records."""
    return hashlib.sha256(html.encode("utf-8")).hexdigest()


def render_pdf(html: str) -> bytes:
    """The stored letter as an A4 PDF (PdfUnavailable without WeasyPrint)."""
    weasyprint = _weasyprint()
    doc = weasyprint.HTML(string=html, base_url=None, url_fetcher=_no_network_fetcher(weasyprint))
    return bytes(doc.write_pdf(stylesheets=[weasyprint.CSS(string=PAGE_CSS)]))
