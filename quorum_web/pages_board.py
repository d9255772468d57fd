"""Board pages: meetings (agenda, attendance, interests, decisions, minutes,
actions), board papers as HTML and PDF, delegated decisions and the signed
email link a Chair or Vice Chair signs from.

Like quorum_web/pages.py these pages read views and post their forms to
``POST /do/{command}``; the one exception is the signed link's own POST, which
also consumes the link (see :func:`sign_by_link`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import Session

from engine.domain.actor import Actor
from engine.domain.errors import (
    ConflictError,
    KeyReused,
    NotFound,
    QuorumError,
    ValidationError,
)
from engine.domain.money import parse_pounds
from engine.domain.words import SIGNATURE_WORDS
from engine.read import accounts, views
from engine.read import risks as views_risks
from engine.read.agenda import report_items
from engine.read.dashboard import programme_dashboard
from engine.read.delegation import delegated_items
from engine.read.exports import ICS_TYPE, deadlines_ics
from engine.read.kept import SCORES_ONLY, kept
from engine.read.listing import Window, page_number
from engine.read.minutes import decision_notes
from engine.read.papers import paper_context
from engine.read.partnership_money import allocation_page, allocations_of, partnership_figures
from engine.store.links import SIGN_LINK_DAYS, SIGN_PURPOSE, link_used, read_link_token, use_link
from engine.store.models import (
    DelegatedDecision,
    Meeting,
    MeetingMember,
    MeetingObserver,
    Person,
    PersonRole,
    Programme,
)
from notifications import papers
from notifications.papers import PdfUnavailable, render
from quorum_web import charts, exporting, pages
from quorum_web.actions import (
    OTP_INPUT,
    ActionForm,
    Input,
    delegated_request_form,
    meeting_action_forms,
    pounds,
)
from quorum_web.api import org_name, scope_of
from quorum_web.auth import ALL_ROLES, STAFF, check_form_csrf, require, secret_key
from rules.standing_orders import load_standing_orders
from workflows.bid import BID, decision_step
from workflows.delegated import DELEGATED, OPEN
from workflows.meeting import MEETING

router = APIRouter(include_in_schema=False)
STAFF_ONLY = require(STAFF)
DECISIONS = ("approve", "refer_back", "defer", "reject")  # the bid steps `decide` takes
# the page's outcome for `decide` outcome=approve with conditions (one per line)
WITH_CONDITIONS = "approve_with_conditions"
ANYONE = require(ALL_ROLES)
SIGNERS = require(STAFF)  # the scheme decides who counts; the command checks it
PAPER_FORMATS = ("html", "pdf")
# a report item has no workflow: what the agenda shows in its state column is a label
REPORT_LABEL = "report"
MEETING_PAPERS = ("agenda", "minutes", "delegated", "returns", "risks", "partnerships",
                  "monitoring")


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _dd_items(conn: Any, ref: str | None = None) -> list[dict]:
    where = DelegatedDecision.__table__.c.ref == ref if ref is not None else None
    return delegated_items(conn, where)


# ------------------------------------------------------------------ meetings


@router.get("/meetings", response_class=HTMLResponse)
def meetings_page(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    with Session(_engine(request)) as s:
        rows = views.meetings_summary(s)  # counts, not every agenda item and decision
    return pages.render(request, "meetings.html", {"meetings": rows})


def decide_why(meeting: dict, actor: Actor, today: dt.date) -> str | None:
    """Why decisions cannot be recorded at this meeting now (None: they can),
    from the meeting's workflow and its date."""
    avail = MEETING.available(meeting["state"], actor.roles)
    if "decide" not in avail:
        return (f"the meeting is {meeting['state'].replace('_', ' ')}: decisions are recorded "
                "only while it is scheduled")
    if avail["decide"]:
        return avail["decide"]
    if today < dt.date.fromisoformat(meeting["date"]):
        return (f"the meeting takes place on {meeting['date']}: its decisions are recorded on "
                "or after that day")
    return None


AGENDA_PAGE = 200  # agenda items a meeting's page and its attendance page list at a time


def agenda_window(request: Request) -> tuple[int, slice]:
    """``?page=`` of a meeting's agenda: the page number and the items' positions."""
    page = page_number(request.query_params.get("page"))
    return page, Window(page, AGENDA_PAGE, 0).positions


def agenda_pager(ctx: dict, page: int) -> Window | None:
    """Showing which items of how many, and Previous/Next (None: one page holds them)."""
    pager = Window(page, AGENDA_PAGE, ctx["agenda_size"])
    return pager if pager.paged else None


def meeting_context(request: Request, ref: str, window: slice | None = None) -> dict:
    """A meeting as its pages show it: the view, the roll (members present, apologies,
    substitutes), observers, the chair, the agenda in order with each item's page.
    ``window``: only the agenda items at those positions (from 0) are read and
    shown, with their decisions and interests (``meeting["agenda"]`` holds those
    items; ``agenda_size`` says how many there are in all); None: every item."""
    with Session(_engine(request)) as s:
        found = views.meeting_window(s, ref, window or slice(None))
        if found is None:
            raise NotFound(f"no meeting {ref!r}", field="meeting", item=ref)
        meeting, agenda_page = found
        row = s.execute(select(Meeting).where(Meeting.ref == ref)).scalar_one()
        people = {p.id: p for p in s.execute(select(Person)).scalars()}
        roll = [
            {"name": people[r.person_id].name, "email": people[r.person_id].email,
             "present": r.present, "apologies": r.apologies,
             "substitute": people[r.substitute_id].name if r.substitute_id else "",
             "substitute_email": people[r.substitute_id].email if r.substitute_id else ""}
            for r in s.execute(
                select(MeetingMember).where(MeetingMember.meeting_id == row.id)).scalars()
        ]
        roll.sort(key=lambda r: r["name"])
        observers = [o.name for o in s.execute(
            select(MeetingObserver).where(MeetingObserver.meeting_id == row.id)
            .order_by(MeetingObserver.id)).scalars()]
        chair = people[row.chair_id].name if row.chair_id else ""
        programme = s.execute(
            select(Programme.name).where(Programme.id == row.programme_id)).scalar()
        shown = agenda_page.refs
        positions = range(agenda_page.start, agenda_page.start + len(shown))
        # only what this page of the agenda names: not every bid or meeting there is
        bids = {b["ref"]: b for b in views.bids(s, refs=shown)} if shown else {}
        pots = {p["name"]: p for p in views.pots(s)}
        later = views.later_meetings(s, dt.date.fromisoformat(meeting["date"]))
        history = pages._history(s, [ref])
    orders = load_standing_orders(row.standing_orders or None).for_programme(str(programme))
    with _engine(request).connect() as conn:
        dds = {d["ref"]: d for d in delegated_items(
            conn, DelegatedDecision.__table__.c.ref.in_(shown))} if shown else {}
        reports = report_items(conn, shown)  # issue 12: report items
    agenda = []
    for n, item in zip((i + 1 for i in positions), shown, strict=True):
        page = f"/meetings/{ref}/items/{n}"
        if item in reports:
            r = reports[item]
            agenda.append({"ref": item, "kind": "report", "title": r["title"],
                           "state": REPORT_LABEL, "amount_pence": None,
                           "href": r["paper"] or "", "page": page, "n": n,
                           "presenter": r.get("presenter", "")})
        elif item in dds:
            d = dds[item]
            agenda.append({"ref": item, "kind": "delegated", "title": d["title"],
                           "state": d["state"], "amount_pence": d["amount_pence"],
                           "href": f"/delegated/{item}", "page": page, "n": n, "pot": d["pot"]})
        else:
            b = bids.get(item, {})
            agenda.append({
                "ref": item, "kind": "bid", "title": b.get("title", ""),
                "state": b.get("state", ""), "amount_pence": b.get("grant_requested_pence"),
                "href": f"/bids/{item}", "page": page, "n": n, "pot": b.get("pot") or "",
                "version": b.get("version"),
                # an allocation is decided unscored (workflows/bid.py *_unscored steps)
                "allocation": b.get("bid_kind") == "allocation",
            })
    decided = {d["item"] for d in meeting["decisions"]}
    for a in agenda:
        a["decided"] = a["ref"] in decided
        # what THIS meeting left the bid as; ``now`` when it has moved on since
        a["now"] = a["state"]
        a["state"] = meeting["left_here"].get(a["ref"], a["state"])
    sitting = [r for r in roll if r["present"]] + [
        {"name": r["substitute"], "email": r["substitute_email"], "for": r["name"]}
        for r in roll if r["substitute"]]
    return {
        "meeting": meeting, "roll": roll, "observers": observers, "chair": chair,
        "sitting": sitting, "agenda": agenda, "agenda_size": agenda_page.size, "pots": pots,
        "later": later,
        "casting": orders.voting.casting_vote == "chair", "voting": orders.voting.words,
        "orders_voting": orders.voting,
        "titles": {r: b["title"] for r, b in bids.items()}, "history": history,
    }


def _meeting_forms(ctx: dict, actor: Actor) -> dict[str, ActionForm]:
    """The meeting page's own forms: close the meeting (items are decided on
    their pages, attendance and actions on theirs)."""
    meeting = ctx["meeting"]
    avail = MEETING.available(meeting["state"], actor.roles)
    why = (avail["close"] if "close" in avail
           else f"not possible while the meeting is {meeting['state']}")
    return {"close": ActionForm(
        "close", "close_meeting", "Close the meeting (the minutes become final)",
        {"meeting": meeting["ref"]}, unavailable=why, button="Close the meeting",
        style="danger")}


def render_meeting(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None, status: int = 200
) -> HTMLResponse:
    page, window = agenda_window(request)
    ctx = meeting_context(request, ref, window)
    meeting = ctx["meeting"]
    return pages.render(
        request,
        "meeting.html",
        {
            **ctx,
            "pager": agenda_pager(ctx, page),
            "forms": _meeting_forms(ctx, actor),
            "decide_why": decide_why(meeting, actor, request.app.state.clock.today()),
            "papers": MEETING_PAPERS,
            "workflow": pages.workflow_view(MEETING, meeting["state"]),
            "form_error": form_error,
        },
        status,
    )


@router.get("/meetings/{ref}", response_class=HTMLResponse)
def meeting_page(request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    return render_meeting(request, actor, ref)


# ------------------------------------------------------------------ one agenda item

OUTCOME_LABELS = {
    "approve": "Approve",
    WITH_CONDITIONS: "Approve with conditions",
    "refer_back": "Refer back to the sponsor",
    "defer": "Defer to a later meeting",
    "reject": "Reject",
}
VOTE_INPUTS = [
    Input("votes.for", "Votes for", "int"),
    Input("votes.against", "Votes against", "int"),
    Input("votes.abstain", "Abstentions", "int"),
]
# the fields the decide form sends on to the confirmation and then to `decide`
DECIDE_FIELDS = ("meeting", "item", "outcome", "amount", "reasons", "missing", "to_meeting",
                 "votes.for", "votes.against", "votes.abstain", "casting", "conditions")
VOTE_SIDES = (("for", "For"), ("against", "Against"), ("abstain", "Abstain"))
COUNTS = ("votes.for", "votes.against", "votes.abstain")


def item_context(request: Request, ref: str, n: int) -> tuple[dict, dict]:
    """The meeting's context for its agenda item ``n`` (from 1) alone, and the item."""
    ctx = meeting_context(request, ref, slice(n - 1, n) if n >= 1 else slice(0, 0))
    found = [a for a in ctx["agenda"] if a["n"] == n]
    if not found:
        size = ctx["agenda_size"]
        raise NotFound(
            f"{ctx['meeting']['ref']} has {size} agenda items; there is no item {n}",
            field="item")
    return ctx, dict(found[0])


def _outcomes(item: dict, actor: Actor) -> dict[str, str | None]:
    """The outcomes the bid's workflow allows from its state: outcome -> why not (None: may)."""
    steps = BID.available(item["state"], actor.roles)
    return {
        outcome: steps[step]
        for outcome in DECISIONS
        for step in [decision_step(outcome, item["state"]) if item.get("allocation") else outcome]
        if step in steps
    }


def item_forms(ctx: dict, item: dict, actor: Actor, today: dt.date) -> dict:
    """The forms of one agenda item's page: the decision (for a bid) or the
    endorsement (for a delegated decision), and a declaration of interest."""
    meeting = ctx["meeting"]
    ref = meeting["ref"]
    out: dict[str, Any] = {"decide": None, "endorse": None, "interest": None}
    if item["kind"] == "bid":
        allowed = _outcomes(item, actor)
        why = decide_why(meeting, actor, today)
        if why is None and item["decided"]:
            why = f"{item['ref']} was decided at this meeting"
        if why is None and None not in allowed.values():
            why = (next(iter(allowed.values()), None)
                   or f"{item['ref']} is {item['state'].replace('_', ' ')}")
        asked = item["amount_pence"]
        out["decide"] = ActionForm(
            "decide", "decide", f"Decide {item['ref']}", {"meeting": ref, "item": item["ref"]},
            [
                Input("outcome", "The Board's decision", "radio", True,
                      [(choice, OUTCOME_LABELS[choice])
                       for o in DECISIONS if allowed.get(o, "") is None
                       for choice in ((o, WITH_CONDITIONS) if o == "approve" else (o,))]),
                Input("amount", "Amount approved (£)", "money",
                      hint="approve only; empty: the amount asked"
                      + (f" ({pounds(asked)})" if asked is not None else "")),
                Input("reasons", "The Board's reasons", "textarea",
                      hint="go on the minutes and to the sponsor"),
                Input("missing", "What the Board asks the sponsor to supply", "textarea",
                      hint="required to refer back"),
                Input("to_meeting", "Comes back to", "select", False,
                      [(m["ref"], f"{m['title']} ({m['date']})") for m in ctx["later"]],
                      hint="refer back only; empty: the next meeting"),
                *VOTE_INPUTS,
                *([Input("casting", "The Chair's casting vote (on an equality of votes)",
                         "select", False, [("for", "For"), ("against", "Against")])]
                  if ctx["casting"] else []),
            ],
            unavailable=why,
            button="Continue",
            post_to=f"/meetings/{ref}/items/{item['n']}/confirm",
        )
        is_officer = bool(actor.roles & {"officer"})
        interest_inputs = []
        if is_officer:
            interest_inputs.append(Input(
                "member", "Member", "select", False,
                [(p["email"], p["name"]) for p in ctx["roll"]]
                + [(p["email"], f"{p['name']} (substitute)") for p in ctx["sitting"]
                   if p.get("for")],
                hint="empty: yourself"))
        interest_inputs.append(Input("nature", "Nature of the interest", "textarea", True))
        avail = MEETING.available(meeting["state"], actor.roles)
        out["interest"] = ActionForm(
            "interest", "declare_interest", "Declare an interest and stand aside from this item",
            {"meeting": ref, "item": item["ref"]}, interest_inputs,
            unavailable=(avail["declare_interest"] if "declare_interest" in avail
                         else f"not possible while the meeting is {meeting['state']}"),
            button="Declare the interest")
    elif item["kind"] == "delegated":
        dd_avail = DELEGATED.available(item["state"], actor.roles)
        out["endorse"] = ActionForm(
            f"endorse-{item['ref']}", "endorse", f"Endorse {item['ref']}",
            {"meeting": ref, "item": item["ref"]},
            unavailable=dd_avail["endorse"] if "endorse" in dd_avail
            else f"{item['ref']} is {item['state'].replace('_', ' ')}",
            button="Endorse")
    return out


def render_item(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    """One agenda item's page; ``ref`` is "<meeting>/items/<n>" (the page's path
    after /meetings/, so a refused decision comes back here)."""
    meeting_ref, _, n = ref.partition("/items/")
    ctx, item = item_context(request, meeting_ref, int(n) if n.isdigit() else 0)
    today = request.app.state.clock.today()
    interests = [i for i in ctx["meeting"]["interests"] if i["item"] == item["ref"]]
    decisions = [d for d in ctx["meeting"]["decisions"] if d["item"] == item["ref"]]
    with _engine(request).connect() as conn:
        row = conn.execute(select(Meeting).where(Meeting.ref == meeting_ref)).one()
        notes = decision_notes(conn, row, ctx["chair"]) if decisions else {}
    return pages.render(
        request,
        "meeting_item.html",
        {
            **ctx,
            "item": item,
            "forms": item_forms(ctx, item, actor, today),
            "interests": interests,
            "may_vote": may_vote(ctx, item),
            "vote_sides": VOTE_SIDES,
            "item_decisions": decisions,
            "decision_notes": notes,
            "pot": ctx["pots"].get(item.get("pot") or ""),
            "form_error": form_error,
        },
        status,
    )


def may_vote(ctx: dict, item: dict) -> list[dict]:
    """Who may vote on the item: those sitting (members present, substitutes),
    less those who declared an interest in it."""
    interested = {i["member"] for i in ctx["meeting"]["interests"] if i["item"] == item["ref"]}
    return [p for p in ctx["sitting"] if p["name"] not in interested]


def named_votes(form: Any, voters: list[dict]) -> dict[str, list[dict]]:
    """The votes by name the item's page sends (``vote.<email>``: for, against or
    abstain; a member left blank did not vote), by side."""
    out: dict[str, list[dict]] = {side: [] for side, _ in VOTE_SIDES}
    for p in voters:
        side = str(form.get(f"vote.{p['email']}") or "").strip()
        if side in out:
            out[side].append(p)
        elif side:
            raise ValidationError(
                f"votes: {p['name']}'s vote {side!r} is not for, against or abstain",
                field="votes.for")
    return out


def tally(counts: dict[str, int], voting: Any, voters: int, casting: str) -> str:
    """The vote in the minutes' words: "carried by 5 to 2, 1 abstention"."""
    f, a, n = counts["for"], counts["against"], counts["abstain"]
    abstained = f", {n} abstention{'' if n == 1 else 's'}" if n else ""
    if voting.carried(f, a, voters):
        return f"carried by {f} to {a}{abstained}"
    if casting == "for" and voting.casting_decides(f, a, voters):
        return f"{f} to {a}{abstained}, carried on the Chair's casting vote"
    return f"not carried: {f} to {a}{abstained} (under {voting.words})"


@router.get("/meetings/{ref}/items/{n}", response_class=HTMLResponse)
def meeting_item_page(
    request: Request, ref: str, n: int, actor: Actor = Depends(STAFF_ONLY)
) -> Response:
    return render_item(request, actor, f"{ref}/items/{n}")


def _confirmation(ctx: dict, item: dict, values: dict) -> str:
    """What the Board is about to decide, with the money it commits."""
    outcome = values["outcome"]
    if outcome == "approve" and values.get("conditions"):
        n = len(values["conditions"].splitlines())
        plain = _confirmation(ctx, item, {**values, "conditions": ""})
        return f"{plain[:-1]}, on {n} condition{'' if n == 1 else 's'}?"
    if outcome == "approve":
        amount = (parse_pounds(values["amount"], "amount") if values.get("amount")
                  else item["amount_pence"] or 0)
        pot = ctx["pots"].get(item.get("pot") or "")
        if pot is None:
            return f"Approve {pounds(amount)} for {item['ref']} {item['title']}?"
        after = pot["available_pence"] - amount
        return (f"Approve {pounds(amount)} from the {pot['name']} pot (balance after: "
                f"{pounds(after)}) for {item['ref']} {item['title']}?")
    words = {"refer_back": "Refer {ref} {title} back to the sponsor",
             "defer": "Defer {ref} {title} to a later meeting",
             "reject": "Reject {ref} {title}"}[outcome]
    text = words.format(ref=item["ref"], title=item["title"])
    if outcome == "refer_back" and values.get("to_meeting"):
        target = next((m for m in ctx["later"] if m["ref"] == values["to_meeting"]), None)
        if target is not None:
            text += f", to come back to {target['title']} ({target['date']})"
    return text + "? No money is committed."


@router.post("/meetings/{ref}/items/{n}/confirm", response_class=HTMLResponse)
def confirm_decision(
    request: Request,
    ref: str,
    n: int,
    actor: Actor = Depends(STAFF_ONLY),
    form: dict = Depends(check_form_csrf),
) -> Response:
    """The decision as the Board is about to record it, with the money it commits;
    nothing is recorded until it is confirmed (the confirm form posts to /do/decide)."""
    page = f"{ref}/items/{n}"
    ctx, item = item_context(request, ref, n)
    values = {k: str(form.get(k) or "").strip() for k in DECIDE_FIELDS}
    values.update(meeting=ref, item=item["ref"])
    forms = item_forms(ctx, item, actor, request.app.state.clock.today())
    decide = forms["decide"]
    chosen = values["outcome"]  # as the page offered it (approve with conditions: its own)
    try:
        if decide is None or decide.unavailable:
            raise ValidationError(
                f"{item['ref']} cannot be decided now: "
                f"{decide.unavailable if decide else 'it is not a bid'}", field="outcome")
        choices = [v for v, _ in decide.inputs[0].options]
        if values["outcome"] not in choices:
            raise ValidationError(
                "choose the Board's decision: "
                + ", ".join(OUTCOME_LABELS[c].lower() for c in choices), field="outcome")
        if values["outcome"] == "refer_back" and not values["missing"]:
            raise ValidationError(
                "say what the Board asks the sponsor to supply before the bid comes back",
                field="missing")
        conditions = [" ".join(line.split()) for line in values["conditions"].splitlines()]
        values["conditions"] = "\n".join(c for c in conditions if c)
        if values["outcome"] == WITH_CONDITIONS:
            if not values["conditions"]:
                raise ValidationError(
                    "write the Board's conditions, one per line (or choose Approve)",
                    field="conditions")
            values["outcome"] = "approve"
        else:
            values["conditions"] = ""  # shown without JavaScript; only this outcome sends them
        voters = may_vote(ctx, item)
        by_name = named_votes(form, voters)
        counts = {side: len(people) for side, people in by_name.items()}
        if any(counts.values()):
            if any(values[k] for k in COUNTS):
                raise ValidationError(
                    "give the votes by name or the totals, not both", field="votes.for")
            for side, people in by_name.items():
                values[f"votes.{side}"] = "; ".join(p["email"] for p in people)
        elif any(values[k] for k in COUNTS):
            for side, _ in VOTE_SIDES:
                text = values[f"votes.{side}"] or "0"
                if not text.isdigit():
                    raise ValidationError(f"votes {side}: give a whole number (or leave it "
                                          "empty)", field=f"votes.{side}")
                counts[side] = int(text)
        statement = _confirmation(ctx, item, values)
    except QuorumError as exc:
        kept = {k: v for k, v in {**values, "outcome": chosen,
                                  "conditions": str(form.get("conditions") or "")}.items() if v}
        error = pages._form_error("decide", exc, kept)
        return render_item(request, actor, page, form_error=error, status=pages._status(exc))
    return pages.render(
        request,
        "meeting_confirm.html",
        {
            **ctx,
            "item": item,
            "statement": statement,
            "values": {k: v for k, v in values.items() if v},
            "conditions": values["conditions"].splitlines(),
            "named": {side: [p["name"] for p in people] for side, people in by_name.items()
                      if people},
            "counts": counts if any(counts.values()) else None,
            "tally": (tally(counts, ctx["orders_voting"], len(voters), values["casting"])
                      if any(counts.values()) else ""),
            "back": f"/meetings/{page}",
        },
    )


# ------------------------------------------------------------------ several items at once
# DOMAIN.md "Meetings": the Board approves a programme except some projects, which it
# asks to be re-submitted to a named later meeting with what it wants to see. One
# confirmation, then every decision in ONE transaction (Quorum.execute_batch).

SEVERAL = "several"


def several_rows(ctx: dict, actor: Actor, today: dt.date) -> list[dict]:
    """The agenda's bids not yet decided, each with whether it may be approved or
    referred back now (the bid's workflow, as its own page offers it)."""
    rows = []
    for item in ctx["agenda"]:
        if item["kind"] != "bid" or item["decided"]:
            continue
        decide = item_forms(ctx, item, actor, today)["decide"]
        choices = [v for v, _ in decide.inputs[0].options] if decide else []
        why = decide.unavailable if decide else "not a bid"
        rows.append({**item, "why": why, "may_approve": not why and "approve" in choices,
                     "may_refer": not why and "refer_back" in choices})
    return rows


def render_several(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    page, window = agenda_window(request)
    ctx = meeting_context(request, ref, window)
    today = request.app.state.clock.today()
    return pages.render(
        request,
        "meeting_several.html",
        {**ctx, "rows": several_rows(ctx, actor, today), "pager": agenda_pager(ctx, page),
         "page_query": f"?page={page}" if page > 1 else "",
         "decide_why": decide_why(ctx["meeting"], actor, today), "form_error": form_error},
        status,
    )


@router.get("/meetings/{ref}/decide-several", response_class=HTMLResponse)
def several_page(request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    return render_several(request, actor, ref)


def several_plan(ctx: dict, rows: list[dict], form: Any) -> dict:
    """What the Board is about to decide: the approvals (each at the amount asked)
    with the total and each pot's balance after, the referrals with the meeting
    they come back to and what the Board wants to see; or a refusal naming the field."""
    chosen = [str(v).strip() for v in form.getlist("items") if str(v).strip()]
    refer = {str(v).strip() for v in form.getlist("except") if str(v).strip()}
    by_ref = {r["ref"]: r for r in rows}
    order = {row["ref"]: i for i, row in enumerate(rows)}
    wanted = list(dict.fromkeys(chosen + sorted(refer, key=lambda r: (order.get(r, 0), r))))
    if not wanted:
        raise ValidationError("choose the agenda items the Board decides", field="items")
    for item_ref in wanted:
        if item_ref not in by_ref:
            raise ValidationError(f"{item_ref} is not an undecided bid on this agenda",
                                  field="items")
    approvals = [by_ref[r] for r in wanted if r not in refer]
    referrals = [by_ref[r] for r in wanted if r in refer]
    for r in approvals:
        if not r["may_approve"]:
            raise ValidationError(f"{r['ref']} cannot be approved now: "
                                  f"{r['why'] or 'its state does not allow it'}", field="items")
    for r in referrals:
        if not r["may_refer"]:
            raise ValidationError(f"{r['ref']} cannot be referred back now: "
                                  f"{r['why'] or 'its state does not allow it'}", field="except")
    missing = str(form.get("missing") or "").strip()
    to_ref = str(form.get("to_meeting") or "").strip()
    reasons = str(form.get("reasons") or "").strip()
    target = None
    if referrals:
        if not ctx["later"]:
            raise ValidationError("no later meeting of this programme is scheduled for the "
                                  "referred items to come back to: schedule it first",
                                  field="to_meeting")
        target = next((m for m in ctx["later"] if m["ref"] == to_ref), None)
        if target is None:
            raise ValidationError("choose the later meeting the referred items come back to",
                                  field="to_meeting")
        if not missing:
            raise ValidationError("say what the Board wants to see when the referred items "
                                  "come back", field="missing")
    by_pot: dict[str, int] = {}
    for r in approvals:
        by_pot[r.get("pot") or ""] = by_pot.get(r.get("pot") or "", 0) + (r["amount_pence"] or 0)
    pots = []
    for name, total in by_pot.items():
        pot = ctx["pots"].get(name)
        if pot is None:
            raise ValidationError(f"{', '.join(r['ref'] for r in approvals if not r.get('pot'))}"
                                  " is for no pot; amend it to name one first", field="items")
        after = pot["available_pence"] - total
        if after < 0:
            raise ValidationError(
                f"the {name} pot has {pounds(pot['available_pence'])} available; these "
                f"approvals need {pounds(total)} from it", field="items")
        pots.append({"name": name, "before_pence": pot["available_pence"],
                     "total_pence": total, "after_pence": after})
    return {"approvals": approvals, "referrals": referrals, "target": target,
            "missing": missing, "reasons": reasons, "pots": pots,
            "total_pence": sum(by_pot.values())}


def several_calls(meeting: str, plan: dict) -> list[tuple[str, dict[str, Any]]]:
    """The decisions as commands, approvals first, for Quorum.execute_batch."""
    calls: list[tuple[str, dict[str, Any]]] = []
    for r in plan["approvals"]:
        calls.append(("decide", {"meeting": meeting, "item": r["ref"], "outcome": "approve",
                                 **({"reasons": plan["reasons"]} if plan["reasons"] else {})}))
    for r in plan["referrals"]:
        calls.append(("decide", {"meeting": meeting, "item": r["ref"], "outcome": "refer_back",
                                 "missing": plan["missing"], "to_meeting": plan["target"]["ref"],
                                 **({"reasons": plan["reasons"]} if plan["reasons"] else {})}))
    return calls


def _several_error(request: Request, actor: Actor, ref: str, exc: QuorumError,
                   form: Any) -> HTMLResponse:
    values = {"items": form.getlist("items"), "except": form.getlist("except"),
              **{k: str(form.get(k) or "") for k in ("to_meeting", "missing", "reasons")}}
    error = pages._form_error(SEVERAL, exc, values)
    return render_several(request, actor, ref, form_error=error, status=pages._status(exc))


@router.post("/meetings/{ref}/decide-several/confirm", response_class=HTMLResponse)
def several_confirm(
    request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY),
    form: Any = Depends(check_form_csrf),
) -> Response:
    """The decisions as the Board is about to record them, with the money: nothing
    is recorded until it is confirmed."""
    page, window = agenda_window(request)  # the page the items were chosen on
    ctx = meeting_context(request, ref, window)
    today = request.app.state.clock.today()
    try:
        why = decide_why(ctx["meeting"], actor, today)
        if why:
            raise ValidationError(f"decisions cannot be recorded now: {why}", field="items")
        plan = several_plan(ctx, several_rows(ctx, actor, today), form)
    except QuorumError as exc:
        return _several_error(request, actor, ref, exc, form)
    page_query = f"?page={page}" if page > 1 else ""
    return pages.render(request, "meeting_several_confirm.html",
                        {**ctx, "plan": plan, "page_query": page_query,
                         "back": f"/meetings/{ref}/decide-several{page_query}"})


@router.post("/meetings/{ref}/decide-several/record", response_class=HTMLResponse)
def several_decide(
    request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY),
    form: Any = Depends(check_form_csrf),
) -> Response:
    """Record the confirmed decisions: all of them in one transaction, or none."""
    ctx = meeting_context(request, ref, agenda_window(request)[1])
    today = request.app.state.clock.today()
    key = str(form.get("_key") or "").strip() or None
    try:
        plan = several_plan(ctx, several_rows(ctx, actor, today), form)
        try:
            request.app.state.quorum.execute_batch(several_calls(ref, plan), actor, key=key)
        except KeyReused:
            raise ConflictError("these decisions were already sent, with other values: reload "
                                "the page to send them again", field="_key") from None
    except QuorumError as exc:
        return _several_error(request, actor, ref, exc, form)
    words = f"{len(plan['approvals'])} approved ({pounds(plan['total_pence'])})"
    if plan["referrals"]:
        words += (f", {len(plan['referrals'])} referred back to {plan['target']['title']} "
                  f"({plan['target']['date']})")
    request.session["flash"] = f"Decided {len(plan['approvals']) + len(plan['referrals'])} " \
                               f"items: {words}."
    return RedirectResponse(f"/meetings/{ref}", status_code=303)


def render_attendance(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    meeting_ref = ref.removesuffix("/attendance")
    page, window = agenda_window(request)
    ctx = meeting_context(request, meeting_ref, window)
    meeting = ctx["meeting"]
    avail = MEETING.available(meeting["state"], actor.roles)

    def why(step: str) -> str | None:
        if step not in avail:
            return f"not possible while the meeting is {meeting['state']}"
        return avail[step]

    members = {r["name"] for r in ctx["roll"]}
    with Session(_engine(request)) as s:
        # who may substitute: a person with a Board role who is not a member
        candidates = sorted(
            {(p.name, p.email) for p in s.execute(
                select(Person).join(PersonRole, PersonRole.person_id == Person.id)
                .where(PersonRole.role.in_(("board_member", "chair", "vice_chair")),
                       Person.active.is_(True))).scalars()
             if p.name not in members})
    # each item's buttons name the item and the way (order_agenda move=, direction=):
    # the command moves it in the agenda as it stands, so a page holds no whole order
    last = ctx["agenda_size"]
    moves = {a["ref"]: [way for way, ok in (("up", a["n"] > 1), ("down", a["n"] < last)) if ok]
             for a in ctx["agenda"]}
    bid_items = [(a["ref"], f"{a['ref']} {a['title']}")
                 for a in ctx["agenda"] if a["kind"] == "bid"]
    interest_form = ActionForm(
        "interest", "declare_interest", "Declare an interest (the member stands aside)",
        {"meeting": meeting_ref},
        [Input("item", "Item", "select", True, bid_items),
         *([Input("member", "Member", "select", False,
                  [(p["email"], p["name"]) for p in ctx["roll"]]
                  + [(p["email"], f"{p['name']} (substitute)") for p in ctx["sitting"]
                     if p.get("for")], hint="empty: yourself")]
           if actor.roles & {"officer"} else []),
         Input("nature", "Nature of the interest", "textarea", True)],
        unavailable=why("declare_interest")
        or (None if bid_items else "the agenda has no bid to declare an interest in"))
    report_form = ActionForm(
        "report", "add_report_item", "Add a report item", {"meeting": meeting_ref},
        [Input("title", "Title", required=True), Input("presenter", "Presenter", required=True),
         Input("paper", "Link to the paper")],
        unavailable=why("add_report_item"))
    require_form = ActionForm(
        "require", "require_report", "Require a report for a later meeting",
        {"meeting": meeting_ref},
        [Input("title", "Title", required=True), Input("presenter", "Presenter", required=True),
         Input("for_meeting", "For the meeting", "select", False,
               [(m["ref"], f"{m['title']} ({m['date']})") for m in ctx["later"]],
               hint="empty: the next meeting")],
        unavailable=why("require_report"))
    return pages.render(
        request,
        "meeting_attendance.html",
        {
            **ctx,
            "attendance_why": why("record_attendance"),
            "order_why": why("order_agenda"),
            "candidates": candidates,
            "moves": moves,
            "pager": agenda_pager(ctx, page),
            "forms": {"report": report_form, "require": require_form, "interest": interest_form},
            "form_error": form_error,
        },
        status,
    )


@router.get("/meetings/{ref}/attendance", response_class=HTMLResponse)
def attendance_page(request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    return render_attendance(request, actor, ref)


def render_actions(
    request: Request, actor: Actor, ref: str, *, form_error: dict | None = None,
    status: int = 200,
) -> HTMLResponse:
    meeting_ref = ref.removesuffix("/actions")
    ctx = meeting_context(request, meeting_ref, slice(0, 0))  # actions, not agenda items
    meeting = ctx["meeting"]
    return pages.render(
        request,
        "meeting_actions.html",
        {
            **ctx,
            "forms": meeting_action_forms(meeting, ctx["later"], actor),
            "form_error": form_error,
        },
        status,
    )


@router.get("/meetings/{ref}/actions", response_class=HTMLResponse)
def actions_page(request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    return render_actions(request, actor, ref)


# ------------------------------------------------------------------ papers


def paper_response(request: Request, name: str, ref: str, fmt: str) -> Response:
    if fmt not in PAPER_FORMATS:
        raise NotFound(f"papers come as {' or '.join(PAPER_FORMATS)}, not {fmt!r}", field="format")
    context = paper_context(_engine(request), name, ref)
    if fmt == "html":
        return HTMLResponse(render(name, context, "html"))
    try:
        data = papers.render_pdf(name, context)
    except PdfUnavailable as exc:
        return pages.error_page(request, 503, "PDF not available", exc.message)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}-{ref}.pdf"'},
    )


@router.get("/meetings/{ref}/papers/{name}.{fmt}")
def meeting_paper(
    request: Request, ref: str, name: str, fmt: str, actor: Actor = Depends(STAFF_ONLY)
) -> Response:
    if name not in MEETING_PAPERS:
        raise NotFound(
            f"no meeting paper {name!r}; they are {', '.join(MEETING_PAPERS)}", field="paper"
        )
    return paper_response(request, name, ref, fmt)


@router.get("/rounds/{ref}/paper.{fmt}")
def round_paper(
    request: Request, ref: str, fmt: str, actor: Actor = Depends(STAFF_ONLY)
) -> Response:
    return paper_response(request, "bids", ref, fmt)


# ------------------------------------------------------------------ risk register (issue 13)


@router.get("/risks", response_class=HTMLResponse)
def risks_page(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    """The risk register: every risk, its reviews at meetings and its audited changes."""
    with _engine(request).connect() as conn:
        rows = views_risks.register(conn)
    with Session(_engine(request)) as s:
        history = {r["ref"]: views_risks.risk_history(s, r["ref"]) for r in rows}
    return pages.render(request, "risks.html", {"risks": rows, "history": history})


# ------------------------------------------------------------------ delegated decisions


@router.get("/delegated", response_class=HTMLResponse)
def delegated_list(
    request: Request,
    format: str | None = None,  # noqa: A002 (the query parameter's name)
    actor: Actor = Depends(STAFF_ONLY),
) -> Response:
    if exporting.wants_export(format):
        return pages.list_page(request, actor, "delegated", "delegated_list.html", format, None)
    return render_delegated_list(request, actor, "")


def render_delegated_list(
    request: Request, actor: Actor, ref: str = "", *, form_error: dict | None = None,
    status: int = 200,
) -> Response:
    """One page of the delegated decisions (paged, sorted, searched in SQL), with the
    form that requests one (bid, pot and its balance, amount, reasons, alternatives)."""
    with Session(_engine(request)) as s:
        # is any bid waiting (one indexed row at most; the bid is typed, not chosen
        # from a list of every bid a delegated decision could approve)
        waiting = views.any_bid_in(s, BID.step("approve_delegated").source)
        form = delegated_request_form(waiting, views.pots(s), actor)
    return pages.list_page(request, actor, "delegated", "delegated_list.html", None, None,
                           extra={"request_form": form, "form_error": form_error,
                                  "list_path": "/delegated"},  # also when re-shown by /do/
                           status=status)


def _dd(request: Request, ref: str) -> dict:
    with _engine(request).connect() as conn:
        found = _dd_items(conn, ref)
    if not found:
        raise NotFound(f"no delegated decision {ref!r}", field="item", item=ref)
    return found[0]


def _current_balance(request: Request, pot: str) -> int | None:
    with Session(_engine(request)) as s:
        line = next((p for p in views.pots(s) if p.get("name") == pot), None)
    return None if line is None else line.get("available_pence")


def sign_forms(
    dd: dict, actor: Actor, link: str | None = None, *, otp: bool = False
) -> list[ActionForm]:
    """Approve / decline (or stand aside) for a signatory; after approval, until it
    is reported, concur (the scheme's check stays the command's)."""
    concurring = dd["state"] == "approved" and not dd.get("reported_at")
    if dd["state"] != OPEN and not concurring:
        return []
    signer_roles = DELEGATED.step("sign").roles - {"system"}
    why = None if actor.roles & signer_roles else "only the Chair and Vice Chairs sign"
    mine = [s for s in dd["signatures"] if s["name"] == actor.name]
    if mine:
        said = SIGNATURE_WORDS.get(mine[0]["decision"], mine[0]["decision"])
        why = f"you have already signed ({said} on {mine[0]['signed_on']})"
    base = {"item": dd["ref"], "version": str(dd["version"])}
    post_to = ""
    if link:
        base["t"] = link
        post_to = f"/delegated/{dd['ref']}/sign"
    aside = [
        ActionForm(
            "stand_aside",
            "stand_aside",
            "Declare an interest and stand aside",
            base,
            [Input("interest", "The nature of the interest you declare", "textarea", True,
                   hint="goes on the record; the decision goes ahead without you")],
            unavailable=why,
            button="Stand aside",
            post_to=post_to,
        )
    ]
    if concurring:  # a signature after approval is recorded as a concurrence
        return [
            ActionForm(
                "approve",
                "sign",
                "Concur (it is approved; your signature is recorded)",
                {**base, "decision": "approve"},
                [OTP_INPUT] if otp else [],
                unavailable=why,
                button="Concur",
                post_to=post_to,
            ),
        ]  # standing aside is for a decision still open, not one already taken
    return [
        ActionForm(
            "approve",
            "sign",
            "Approve",
            {**base, "decision": "approve"},
            [OTP_INPUT] if otp else [],
            unavailable=why,
            button="Approve",
            post_to=post_to,
        ),
        ActionForm(
            "decline",
            "sign",
            "Decline",
            {**base, "decision": "decline"},
            [
                Input("reason", "Why you decline", "textarea", hint="goes on the published record"),
                Input(
                    "interest",
                    "An interest you declare (if any)",
                    "textarea",
                    hint="declaring an interest means you decline",
                ),
                *([OTP_INPUT] if otp else []),
            ],
            unavailable=why,
            button="Decline",
            style="danger",
            post_to=post_to,
        ),
        *aside,
    ]


def render_delegated(
    request: Request,
    actor: Actor,
    ref: str,
    *,
    form_error: dict | None = None,
    status: int = 200,
    link: str | None = None,
    link_problem: str | None = None,
) -> HTMLResponse:
    dd = _dd(request, ref)
    with Session(_engine(request)) as s:
        history = pages._history(s, [ref])
    with _engine(request).connect() as conn:
        otp = accounts.second_factor(conn, actor.person_id) is not None
    forms = [] if link_problem else sign_forms(dd, actor, link, otp=otp)
    return pages.render(
        request,
        "delegated.html",
        {
            "dd": dd,
            "balance_now": _current_balance(request, dd["pot"]),
            "forms": forms,
            "link": link,
            "link_problem": link_problem,
            "history": history,
            "workflow": pages.workflow_view(DELEGATED, dd["state"]),
            "form_error": form_error,
        },
        status,
    )


@router.get("/delegated/{ref}", response_class=HTMLResponse)
def delegated_page(request: Request, ref: str, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    return render_delegated(request, actor, ref)


def _check_link(request: Request, ref: str, token: str, actor: Actor) -> dict:
    """The link's contents if it is good for this person and this item, not
    yet used; otherwise a QuorumError saying what is wrong with it."""
    if not token:
        raise ValidationError("this page needs the link from your email (it has no token)")
    data = read_link_token(
        secret_key(_engine(request)),
        token,
        SIGN_PURPOSE,
        dt.timedelta(days=SIGN_LINK_DAYS + 1),  # the token carries its own expiry
        actor,
        now=request.app.state.clock.now(),
    )
    if data.get("i") != ref:
        raise ValidationError(f"this link is for {data.get('i')}, not {ref}")
    with _engine(request).connect() as conn:
        if link_used(conn, data["j"]):
            raise ValidationError("this link has already been used")
    return data


def _link_refused(request: Request, actor: Actor, ref: str, exc: QuorumError) -> HTMLResponse:
    status = 403 if exc.http_status == 403 else 400
    try:
        return render_delegated(request, actor, ref, link_problem=exc.message, status=status)
    except QuorumError:
        return pages.error_page(request, status, "Link not usable", exc.message)


@router.get("/delegated/{ref}/sign", response_class=HTMLResponse)
def sign_link_page(
    request: Request, ref: str, t: str = "", actor: Actor = Depends(SIGNERS)
) -> Response:
    try:
        _check_link(request, ref, t, actor)
    except QuorumError as exc:
        return _link_refused(request, actor, ref, exc)
    return render_delegated(request, actor, ref, link=t)


@router.post("/delegated/{ref}/sign", response_class=HTMLResponse)
def sign_by_link(
    request: Request,
    ref: str,
    actor: Actor = Depends(SIGNERS),
    form: dict = Depends(check_form_csrf),
) -> Response:
    """Sign from the emailed link. The link is consumed in the SAME transaction
    as the ``sign`` command (Quorum.execute's ``before`` hook): if the command
    is refused, the transaction rolls back and the link stays usable; if two
    posts race, the second finds the link used and signs nothing."""
    token = str(form.get("t") or "")
    try:
        data = _check_link(request, ref, token, actor)
    except QuorumError as exc:
        return _link_refused(request, actor, ref, exc)
    args = pages.form_args(form)
    args.pop("t", None)
    args["item"] = ref
    now = request.app.state.clock.now()
    # the link signs (approve, decline, concur) or stands aside with the interest declared
    command = "stand_aside" if form.get("_form") == "stand_aside" else "sign"
    try:
        result = request.app.state.quorum.execute(
            command, args, actor, before=lambda conn: use_link(conn, data["j"], now)
        )
    except QuorumError as exc:
        if str(exc.message) == "this link has already been used":
            return _link_refused(request, actor, ref, exc)
        error = pages._form_error(str(form.get("_form") or "sign"), exc, args)
        return render_delegated(
            request, actor, ref, form_error=error, status=pages._status(exc), link=token
        )
    request.session["flash"] = pages._summary(command, result)
    return RedirectResponse(f"/delegated/{ref}", status_code=303)


# ------------------------------------------------------------------ dashboard, calendar


def _draw_dashboard(conn: Any, today: dt.date) -> dict:
    board = programme_dashboard(conn, today)
    return {
        "board": board,
        "allocations": partnership_figures(conn, today),
        "charts": {
            "pots": charts.pots_chart(board["pots"]),
            "savings": charts.savings_chart(board["partnerships"]),
            "late": charts.late_returns_chart(board["partnerships"]),
        },
    }


def dashboard_view(conn: Any, today: dt.date) -> dict:
    """The dashboard's figures and charts, kept between requests until a command
    other than a score's runs (engine/read/kept.py; with 20,000 grants drawing takes
    a third of a second; a score overridden once a second leaves them standing)."""
    return kept(conn, "dashboard page", today, SCORES_ONLY, lambda: _draw_dashboard(conn, today))


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, actor: Actor = Depends(STAFF_ONLY)) -> Response:
    today = request.app.state.clock.today()
    with _engine(request).connect() as conn:
        view = dashboard_view(conn, today)
    return pages.render(request, "dashboard.html", view)


# ------------------------------------------------------------------ partnership allocations


@router.get("/partnership-allocations", response_class=HTMLResponse)
def partnership_allocations_page(request: Request, actor: Actor = Depends(ANYONE)) -> Response:
    """Staff: every partnership's figures; a partnership's people: its own allocations."""
    today = request.app.state.clock.today()
    scope = scope_of(actor)
    with _engine(request).connect() as conn:
        if scope is None:
            figures, own = partnership_figures(conn, today), []
        else:
            figures, own = None, [allocation_page(conn, a["id"], today)
                                  for a in allocations_of(conn, scope)]
    return pages.render(request, "partnership_allocations.html",
                        {"figures": figures, "own": own})


@router.get("/partnership-allocations/{pot_id}", response_class=HTMLResponse)
def partnership_allocation_page(
    request: Request, pot_id: str, actor: Actor = Depends(ANYONE)
) -> Response:
    """One partnership allocation: its balance, grants and history in words. Not
    found alike for no such pot, a regional pot, and another partnership's."""
    scope = scope_of(actor)
    found = None
    if pot_id.isdigit() and len(pot_id) < 10:
        with _engine(request).connect() as conn:
            found = allocation_page(conn, int(pot_id), request.app.state.clock.today())
    if found is None or (scope is not None and found["partnership_id"] != scope):
        raise NotFound(f"no partnership allocation {pot_id!r}", field="pot")
    return pages.render(request, "partnership_allocation.html", {"pot": found})


@router.get("/calendar.ics")
def calendar(request: Request, actor: Actor = Depends(ANYONE)) -> Response:
    """Every due date as iCalendar; a sponsor's: only its own authority's."""
    stamp = request.app.state.clock.now().replace(microsecond=0)
    with _engine(request).connect() as conn:
        scope = scope_of(actor)
        only = None if scope is None else (org_name(conn, scope) or "")
        body = deadlines_ics(conn, stamp, only)
    return Response(
        body,
        media_type=ICS_TYPE,
        headers={"Content-Disposition": 'attachment; filename="quorum-due-dates.ics"'},
    )


pages.PAGES.extend(
    [
        (re.compile(r"^/meetings/(?P<ref>[^/?#]+)$"), render_meeting),
        (re.compile(r"^/meetings/(?P<ref>[^/?#]+/items/\d+)$"), render_item),
        (re.compile(r"^/meetings/(?P<ref>[^/?#]+)/decide-several$"), render_several),
        (re.compile(r"^/meetings/(?P<ref>[^/?#]+/attendance)$"), render_attendance),
        (re.compile(r"^/meetings/(?P<ref>[^/?#]+/actions)$"), render_actions),
        (re.compile(r"^/delegated/(?P<ref>[^/?#]+)$"), render_delegated),
        (re.compile(r"^/delegated(?P<ref>)$"), render_delegated_list),
    ]
)
