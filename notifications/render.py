"""Jinja2 rendering for messages: ``templates/<name>.txt`` (plain text) and
optionally ``<name>.html``. Subjects are set by the command that queues the
message (they show in the outbox before anything is sent)."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape

from engine.domain.money import format_pence


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["gbp"] = format_pence
    return env


def body(template: str, context: dict) -> tuple[str, str | None]:
    """(text, html or None)."""
    env = environment()
    text = env.get_template(f"{template}.txt").render(context)
    try:
        html = env.get_template(f"{template}.html").render(context)
    except TemplateNotFound:
        html = None
    return text, html
