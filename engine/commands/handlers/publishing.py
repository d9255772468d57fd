"""Publishing: a meeting's papers go on the public register (docs/publishing.md).

The register (engine/read/register.py) shows a meeting's agenda and delegated
decisions report from the day they are published, and its minutes once it has
closed. The programme declares how many clear working days before the meeting
that must be (``papers_clear_days``, default 5); publishing later is allowed
(a meeting cannot wait for its papers) but recorded as late, and officers' My
work warns before the deadline passes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.lookups import load_meeting
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork
from engine.domain.errors import ValidationError
from engine.domain.words import long_date
from engine.read.register import papers_deadline
from engine.store.models import Meeting, Programme
from workflows.meeting import MEETING


@command("publish_papers", summary="Publish a meeting's papers on the public register")
def publish_papers(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(MEETING, "publish_papers")
    m = load_meeting(uow, args.text("meeting", max_len=40))
    args.done()
    if m.papers_published_on is not None:
        raise ValidationError(
            f"publish_papers: meeting: the papers of {m.ref} were published on "
            f"{long_date(m.papers_published_on)}; they stay published",
            field="meeting",
        )
    moved = uow.fire(MEETING, "publish_papers", m.state, m.ref)
    clear_days = uow.conn.execute(
        select(col(Programme.papers_clear_days)).where(col(Programme.id) == m.programme_id)
    ).scalar_one()
    deadline = papers_deadline(m.held_on, clear_days)
    late = uow.today > deadline
    uow.update_versioned(
        Meeting, m.id, m.version, {"papers_published_on": uow.today}, m.ref, moved
    )
    after: dict[str, object] = {
        "papers_published_on": uow.today.isoformat(),
        "papers_due_by": deadline.isoformat(),
    }
    if late:
        after["late"] = f"{clear_days} clear working days before the meeting were not given"
    uow.record(m.ref, {"papers_published_on": None}, after)
    return {
        "meeting": m.ref,
        "published_on": uow.today.isoformat(),
        "due_by": deadline.isoformat(),
        "late": late,
        "summary": (
            f"papers of {m.ref} published"
            + (f", late: they were due by {long_date(deadline)}" if late else "")
        ),
    }
