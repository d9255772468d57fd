"""The risk register: numbered risks of a programme (or of one of its grants),
each with an inherent score, an owner, a management solution, key controls, a
residual score, indicators and a review date; reviewed at meetings; closed
when no longer a risk (workflows/risk.py, docs/risks.md).

A risk's ref is ``RK-0001`` (global); its ``number`` counts per programme, as
the Risk analysis paper numbers them. Scores follow the programme's scoring
(``configure_risk_register``: ``score_1_9`` or ``likelihood_x_impact``, engine/domain/riskscore.py);
a risk whose residual score is above the programme's threshold is listed in
officers' My work and among the risks to bring to the next meeting
(engine/read/risks.py). Every change is audited with the values before and
after; a review also keeps its meeting, outcome and scores in ``risk_review``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel import col

from engine.commands.args import Args
from engine.commands.handlers.programme import find_programme
from engine.commands.lookups import find_owner, load_meeting
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork, inserted_id
from engine.domain.errors import NotFound, ValidationError
from engine.domain.riskscore import MAX_SCORE, parse_score
from engine.store.models import Grant, Pot, Programme, Risk, RiskReview
from engine.store.refs import next_ref
from workflows.meeting import MEETING
from workflows.risk import RISK

RISK_T = Risk.__table__
PROG_T = Programme.__table__
GRANT_T = Grant.__table__
POT_T = Pot.__table__
OWNER_KINDS = ("person", "organisation")
# the register's text fields, as the command names them -> column
TEXTS = {"description": "description", "solution": "solution", "controls": "controls",
         "indicators": "indicators"}  # fmt: skip
_RISK_BY_REF = select(RISK_T).where(RISK_T.c.ref == bindparam("ref"))


def _scoring(uow: UnitOfWork, programme_id: int) -> str:
    return str(uow.conn.execute(
        select(PROG_T.c.risk_scoring).where(PROG_T.c.id == programme_id)).scalar_one())


def _load(uow: UnitOfWork, ref: str) -> Any:
    row = uow.conn.execute(_RISK_BY_REF, {"ref": ref.upper()}).first()
    if row is None:
        raise NotFound(f"{uow.command}: risk: no risk {ref!r} (refs look like RK-0001; "
                       "the register lists them)", field="risk", item=ref)
    return row


def _grant(uow: UnitOfWork, ref: str, programme_id: int) -> int:
    g = uow.conn.execute(
        select(GRANT_T.c.id, POT_T.c.programme_id)
        .join(POT_T, POT_T.c.id == GRANT_T.c.pot_id).where(GRANT_T.c.ref == ref)).first()
    if g is None:
        raise NotFound(f"{uow.command}: grant: no grant {ref!r}", field="grant", item=ref)
    if g.programme_id != programme_id:
        raise ValidationError(
            f"{uow.command}: grant: {ref} is not a grant of this programme; a project-level "
            "risk belongs to its grant's programme", field="grant")
    return int(g.id)


def _shown(score: int, detail: str) -> str:
    return f"{score} ({detail})" if detail else str(score)


@command("configure_risk_register", roles={"director"},
         summary="How a programme scores risks, and the residual score above which they go "
                 "to officers and the next meeting")
def configure_risk_register(uow: UnitOfWork, args: Args) -> Result:
    prog_id, prog_name = find_programme(uow, args.text("programme", required=False))
    scoring = args.choice("scoring", ("score_1_9", "likelihood_x_impact"), default="score_1_9")
    threshold = args.integer("threshold", required=False, minimum=1)
    args.done()
    if threshold is not None and threshold > MAX_SCORE:
        raise ValidationError(
            f"configure_risk_register: threshold: {threshold} is above the highest score "
            f"({MAX_SCORE}); give 1-{MAX_SCORE}, or leave it out for no threshold",
            field="threshold")
    before = uow.conn.execute(
        select(PROG_T.c.risk_scoring, PROG_T.c.risk_threshold).where(PROG_T.c.id == prog_id)
    ).one()
    uow.conn.execute(update(PROG_T).where(PROG_T.c.id == prog_id)
                     .values(risk_scoring=scoring, risk_threshold=threshold))
    uow.record(f"PROGRAMME:{prog_name}",
               {"risk_scoring": before.risk_scoring, "risk_threshold": before.risk_threshold},
               {"risk_scoring": scoring, "risk_threshold": threshold})
    return {"programme": prog_name, "scoring": scoring, "threshold": threshold}


@command("record_risk", summary="Record a numbered risk on a programme's (or a grant's) register")
def record_risk(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RISK, "record")
    prog_id, prog_name = find_programme(uow, args.text("programme", required=False))
    grant_ref = args.text("grant", required=False, max_len=40)
    description = args.text("description", max_len=4000)
    inherent_given = args.text("inherent", max_len=30)
    who = args.text("owner", max_len=200)
    kind = args.choice("owner_kind", OWNER_KINDS, default="person")
    solution = args.text("solution", required=False, max_len=4000)
    controls = args.text("controls", required=False, max_len=4000)
    residual_given = args.text("residual", max_len=30)
    indicators = args.text("indicators", required=False, max_len=4000)
    review_on = args.date("review_on", required=False)
    args.done()
    scoring = _scoring(uow, prog_id)
    inherent, inherent_detail = parse_score(inherent_given, scoring, uow.command, "inherent")
    residual, residual_detail = parse_score(residual_given, scoring, uow.command, "residual")
    owner, owner_id = find_owner(uow, kind, who, "organisation")
    grant_id = _grant(uow, grant_ref, prog_id) if grant_ref else None
    if review_on is not None and review_on < uow.today:
        raise ValidationError(
            f"record_risk: review_on: {review_on.isoformat()} is in the past (today is "
            f"{uow.today.isoformat()}); a review date is today or later", field="review_on")
    number = (uow.conn.execute(
        select(func.max(col(Risk.number))).where(col(Risk.programme_id) == prog_id)
    ).scalar() or 0) + 1
    ref = next_ref(uow.conn, Risk, "risk")
    created = uow.fire(RISK, "record", "new", ref)
    values = {
        "description": description, "inherent_score": inherent,
        "inherent_detail": inherent_detail, "owner": owner, "owner_kind": kind,
        "owner_id": owner_id, "solution": solution, "controls": controls,
        "residual_score": residual, "residual_detail": residual_detail,
        "indicators": indicators, "review_on": review_on,
    }
    inserted_id(uow.conn.execute(insert(Risk).values(
        ref=ref, programme_id=prog_id, number=number, grant_id=grant_id, state=created.dest,
        recorded_on=uow.today, version=1, **values)))
    uow.record(ref, {}, {"programme": prog_name, "number": number, "grant": grant_ref or None,
                         **values})
    return {"risk": ref, "number": number, "programme": prog_name, "grant": grant_ref or None,
            "inherent": inherent, "residual": residual, "owner": owner, "state": created.dest}


@command("update_risk",
         summary="Change a risk's description, scores, owner, controls or review date")
def update_risk(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RISK, "update")
    ref = args.text("risk", max_len=40)
    given = {name: args.text(name, required=False, max_len=4000) for name in ("description",)}
    inherent_given = args.text("inherent", required=False, max_len=30)
    who = args.text("owner", required=False, max_len=200)
    kind = args.choice("owner_kind", OWNER_KINDS, default="person")
    for name in ("solution", "controls"):
        given[name] = args.text(name, required=False, max_len=4000)
    residual_given = args.text("residual", required=False, max_len=30)
    given["indicators"] = args.text("indicators", required=False, max_len=4000)
    review_on = args.date("review_on", required=False)
    reason = args.text("reason", required=False, max_len=2000)
    args.done()
    r = _load(uow, ref)
    uow.check_version(r.ref, r.version, args)
    step = uow.fire(RISK, "update", r.state, r.ref)
    scoring = _scoring(uow, r.programme_id)
    values: dict[str, Any] = {TEXTS[k]: v for k, v in given.items() if v}
    if inherent_given:
        values["inherent_score"], values["inherent_detail"] = parse_score(
            inherent_given, scoring, uow.command, "inherent")
    if residual_given:
        values["residual_score"], values["residual_detail"] = parse_score(
            residual_given, scoring, uow.command, "residual")
    if who:
        values["owner"], values["owner_id"] = find_owner(uow, kind, who, "organisation")
        values["owner_kind"] = kind
    if review_on is not None:
        values["review_on"] = review_on
    values = {k: v for k, v in values.items() if getattr(r, k) != v}
    if not values:
        raise ValidationError(
            f"update_risk: risk: nothing to change on {r.ref}: give a field with a new value "
            "(description, inherent, owner, solution, controls, residual, indicators, "
            "review_on)", field="risk", item=r.ref)
    version = uow.update_versioned(Risk, r.id, r.version, values, r.ref, step)
    uow.record(r.ref, {k: getattr(r, k) for k in values}, values, reason)
    return {"risk": r.ref, "version": version, "changed": sorted(values)}


@command("review_risk", summary="Record a meeting's review of a risk: noted, rescored or closed")
def review_risk(uow: UnitOfWork, args: Args) -> Result:
    uow.authorise(RISK, "review")
    ref = args.text("risk", max_len=40)
    meeting = args.text("meeting")
    outcome = args.choice("outcome", ("noted", "rescored", "closed"))
    residual_given = args.text("residual", required=False, max_len=30)
    note = args.text("reason", required=False, max_len=2000)  # kept as the review's note
    next_review = args.date("next_review", required=False)
    args.done()
    m = load_meeting(uow, meeting)
    r = _load(uow, ref)
    uow.check_version(r.ref, r.version, args)
    uow.step(MEETING, "add_action", m.state, m.ref)  # while its minutes may take items
    if m.programme_id != r.programme_id:
        raise ValidationError(
            f"review_risk: meeting: {m.ref} is a meeting of another programme than {r.ref}'s; "
            "a risk is reviewed at its own programme's meetings", field="meeting")
    if m.held_on > uow.today:
        raise ValidationError(
            f"review_risk: meeting: {m.ref} is on {m.held_on.isoformat()}, after today "
            f"({uow.today.isoformat()}); a review is recorded at or after the meeting",
            field="meeting")
    residual, detail = r.residual_score, r.residual_detail
    if outcome == "rescored":
        if not residual_given:
            raise ValidationError(
                "review_risk: residual: a rescored risk needs its new residual score",
                field="residual")
        residual, detail = parse_score(residual_given, _scoring(uow, r.programme_id),
                                       uow.command, "residual")
    elif residual_given:
        raise ValidationError(
            f"review_risk: residual: give a new residual score only with outcome rescored "
            f"(this review is {outcome})", field="residual")
    if outcome == "closed" and not note:
        raise ValidationError("review_risk: reason: say why the risk is closed",
                              field="reason")
    if next_review is not None and next_review <= m.held_on:
        raise ValidationError(
            f"review_risk: next_review: {next_review.isoformat()} is not after the meeting "
            f"({m.held_on.isoformat()})", field="next_review")
    step = uow.fire(RISK, "close" if outcome == "closed" else "review", r.state, r.ref)
    values: dict[str, Any] = {"residual_score": residual, "residual_detail": detail}
    if next_review is not None:
        values["review_on"] = next_review
    if outcome == "closed":
        values["closed_on"] = uow.today
    version = uow.update_versioned(Risk, r.id, r.version, values, r.ref, step)
    inserted_id(uow.conn.execute(insert(RiskReview).values(
        risk_id=r.id, meeting_id=m.id, reviewed_on=m.held_on, outcome=outcome,
        residual_before=r.residual_score, residual_after=residual, note=note,
        next_review_on=next_review, recorded_by_id=uow.actor.person_id)))
    uow.record(r.ref, {"state": r.state, "residual": _shown(r.residual_score, r.residual_detail),
                       "review_on": r.review_on},
               {"state": step.dest, "residual": _shown(residual, detail),
                "review_on": values.get("review_on", r.review_on), "meeting": m.ref,
                "outcome": outcome}, note)
    return {"risk": r.ref, "meeting": m.ref, "outcome": outcome, "state": step.dest,
            "residual_before": r.residual_score, "residual": residual, "version": version}


def _close_or_reopen(uow: UnitOfWork, args: Args, trigger: str) -> Result:
    ref = args.text("risk", max_len=40)
    reason = args.text("reason", max_len=2000)
    args.done()
    uow.authorise(RISK, trigger)
    r = _load(uow, ref)
    uow.check_version(r.ref, r.version, args)
    step = uow.fire(RISK, trigger, r.state, r.ref)
    closed_on: dt.date | None = uow.today if trigger == "close" else None
    version = uow.update_versioned(Risk, r.id, r.version, {"closed_on": closed_on}, r.ref, step)
    uow.record(r.ref, {"state": r.state}, {"state": step.dest}, reason)
    return {"risk": r.ref, "state": step.dest, "version": version}


@command("close_risk", summary="Close a risk that is no longer a risk, with the reason")
def close_risk(uow: UnitOfWork, args: Args) -> Result:
    return _close_or_reopen(uow, args, "close")


@command("reopen_risk", summary="Reopen a closed risk, with the reason")
def reopen_risk(uow: UnitOfWork, args: Args) -> Result:
    return _close_or_reopen(uow, args, "reopen")


