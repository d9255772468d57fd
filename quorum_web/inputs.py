"""Clean text in what a request carries outside a command's contract.

A command's arguments are read (and refused by name) by its contract
(engine/commands/contracts.py). What reaches a page or an endpoint otherwise
is checked here with the same rule (engine/domain/fields.py ``text_problem``:
no NUL, no other control character, no lone surrogate, one line): every path
parameter (a ref that cannot exist is the same 404 as a missing one) and
every query parameter (refused naming it), for every route of the app
(``create_app`` adds :func:`clean_url` to all of them). Sign-in and upload
file names use :func:`engine.domain.fields.text_problem` where they read them.

A date is typed in GOV.UK's date input (day, month and year boxes): the boxes'
names and how a value is shown in them are here (pages.form_args joins them).
"""

from __future__ import annotations

from fastapi import Request

from engine.domain.errors import NotFound, ValidationError
from engine.domain.fields import shown, text_problem


def clean_url(request: Request) -> None:
    """Refuse a path or query parameter that is not clean text."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and text_problem(value, name) is not None:
            # no item has such a ref: answered as any missing one is
            raise NotFound(f"no item {value!r}", field=name, item=repr(value))
    for name, value in request.query_params.multi_items():
        problem = text_problem(name, "a query parameter's name") or text_problem(value, name)
        if problem is not None:
            raise ValidationError(problem, field=shown(name))


DATE_PARTS = ("day", "month", "year")  # a GOV.UK date input's boxes: <name>-day, ...


def date_parts(value: str | None) -> tuple[str, str, str]:
    """A date field's value as its day, month and year boxes show it: from ISO text
    (a default, ``2011-04-20``) or from what was typed (``20//2011``, re-shown
    with its refusal)."""
    text = (value or "").strip()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        y, m, d = text.split("-")
        return d.lstrip("0"), m.lstrip("0"), y
    if text.count("/") == 2:
        d, m, y = (p.strip() for p in text.split("/"))
        return d, m, y
    return "", "", ""
