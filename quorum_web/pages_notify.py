"""Telling people (issue 14): the notifications page, the catch-up sweep's
confirmation page, a whole section of My work, the header's unread count and
an item page's activity feed (a partial, ``_activity.html``).

Forms post to ``POST /do/{command}`` like every other page
(``mark_notifications_read``, ``confirm_catchup``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import pass_context
from sqlalchemy import func, select

from engine.domain.actor import Actor
from engine.read.activity import Activity, activity
from engine.read.listing import Window, page_number
from engine.read.notices import notifications, unread_count
from engine.read.work import sections_for
from engine.store.models import Outbox
from quorum_web import pages
from quorum_web.auth import require

router = APIRouter(include_in_schema=False)
ANYONE = require(None)
OFFICERS = require({"officer"})
OUT = Outbox.__table__
HELD_SHOWN = 200  # messages listed on the catch-up page (the counts stay whole)


@pass_context
def unread_notifications(ctx: Any) -> int:
    """The header's number: the signed-in person's unread notifications."""
    actor = ctx.get("actor")
    request = ctx.get("request")
    if actor is None or request is None or actor.person_id is None:
        return 0
    with request.app.state.engine.connect() as conn:
        return unread_count(conn, actor.person_id)


@pass_context
def activity_feed(ctx: Any) -> list[Activity] | None:
    """The feed of the item whose page this is (its ``ref`` in the path): the page
    itself has already checked that this person may see the item. None when the
    page is not at the item's own address (a form's refusal shown again)."""
    request = ctx.get("request")
    ref = request.path_params.get("ref") if request is not None else None
    if not ref:
        return None
    with request.app.state.engine.connect() as conn:
        return activity(conn, str(ref))


pages.TEMPLATES.env.globals["unread_notifications"] = unread_notifications
pages.TEMPLATES.env.globals["activity_feed"] = activity_feed


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, actor: Actor = Depends(ANYONE)) -> Response:
    with request.app.state.engine.connect() as conn:
        notes = notifications(conn, actor.person_id)
        unread = unread_count(conn, actor.person_id)
    return pages.render(request, "notifications.html", {"notes": notes, "unread": unread})


@router.get("/catch-up", response_class=HTMLResponse)
def catchup_page(request: Request, actor: Actor = Depends(OFFICERS)) -> Response:
    with request.app.state.engine.connect() as conn:
        people = conn.execute(
            select(OUT.c.to_addr, func.count().label("n"))
            .where(OUT.c.status == "held")
            .group_by(OUT.c.to_addr)
            .order_by(func.count().desc(), OUT.c.to_addr)
            .limit(HELD_SHOWN)
        ).all()
        held = int(
            conn.execute(select(func.count()).where(OUT.c.status == "held")).scalar() or 0
        )
        n_people = int(
            conn.execute(
                select(func.count(func.distinct(func.lower(OUT.c.to_addr)))).where(
                    OUT.c.status == "held"
                )
            ).scalar()
            or 0
        )
    return pages.render(
        request,
        "catchup.html",
        {"held": held, "n_people": n_people, "people": [(r.to_addr, r.n) for r in people]},
    )


@router.get("/my-work/{section}", response_class=HTMLResponse)
def my_work_section(request: Request, section: str, actor: Actor = Depends(ANYONE)) -> Response:
    """One section of My work, every item, oldest first, a page of SECTION_PAGE at a
    time (``?page=N``); only that section is read (My work itself lists the oldest)."""
    if section not in sections_for(actor.roles):
        return pages.error_page(request, 404, "Not found",
                                "There is no such section of My work for your roles.")  # fmt: skip
    page = page_number(request.query_params.get("page"))
    with request.app.state.engine.connect() as conn:
        work = pages.work_for(conn, actor, request.app.state.clock.today(), only=section)
    items = work["sections"][section]["items"]
    pager = Window(page, SECTION_PAGE, len(items))
    work["sections"][section]["items"] = items[pager.positions]
    shown = max(1, len(work["sections"][section]["items"]))
    return pages.render(request, "my_work.html",
                        {"work": work, "work_shown": shown, "one_section": True,
                         "pager": pager if pager.paged else None})  # fmt: skip


SECTION_PAGE = 200  # items a section's own page lists at a time

