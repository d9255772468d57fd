"""Clean text in what a request carries outside a command's contract.

A command's arguments are read (and refused by name) by its contract
(engine/commands/contracts.py). What reaches a page or an endpoint otherwise
is checked here with the same rule (engine/domain/fields.py ``text_problem``:
no NUL, no other control character, no lone surrogate, one line): every path
parameter (a ref that cannot exist is the same 404 as a missing one) and
every query parameter (refused naming it), for every route of the app
(``create_app`` adds :func:`clean_url` to all of them). Sign-in and upload
file names use :func:`engine.domain.fields.text_problem` where they read them.
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
