"""Jinja2 rendering for messages: ``templates/<name>.subject`` (one line),
``<name>.txt`` (plain text) and optionally ``<name>.html``."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape

from engine.money import format_pence


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


def subject(template: str, context: dict) -> str:
    return environment().get_template(f"{template}.subject").render(context).strip()


def body(template: str, context: dict) -> tuple[str, str | None]:
    """(text, html or None)."""
    env = environment()
    text = env.get_template(f"{template}.txt").render(context)
    try:
        html = env.get_template(f"{template}.html").render(context)
    except TemplateNotFound:
        html = None
    return text, html
