"""Board papers rendered from views with Jinja2: Markdown and HTML."""

from __future__ import annotations

from notifications.render import environment

FORMATS = {"md": "md", "markdown": "md", "html": "html"}


def render(paper: str, context: dict, fmt: str = "md") -> str:
    ext = FORMATS.get(fmt.lower())
    if ext is None:
        raise ValueError(f"format {fmt!r}: use md or html")
    return environment().get_template(f"papers/{paper}.{ext}").render(context)
