"""Jinja2 rendering for messages: ``templates/<name>.txt`` (plain text) and
optionally ``<name>.html``. Subjects are set by the command that queues the
message (they show in the outbox before anything is sent); the deadline
sweep's messages carry codes and ISO dates, and their words (and subject) are
written here, when the message is rendered, by engine/domain/words.py — whose
functions are also this environment's filters (``long_date``, ``period_words``,
``gbp``, ...), shared with the board papers."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape

from engine.domain import words


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return words.install(env)


def body(template: str, context: dict) -> tuple[str, str | None]:
    """(text, html or None). A context the deadline sweep stored (codes, ISO
    dates) gets its words first (words.return_message)."""
    context = words.return_message(context)
    env = environment()
    text = env.get_template(f"{template}.txt").render(context)
    try:
        html = env.get_template(f"{template}.html").render(context)
    except TemplateNotFound:
        html = None
    return text, html

