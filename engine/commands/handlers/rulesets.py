"""Scoring rule sets uploaded as new versions (issue 14 item 1).

``upload_rule_set`` takes a rule set's YAML (a file on the Rounds page, text
in the CLI and the API), validates it with the loader the shipped files go
through (rules/scoring.py, rules/loader.py: the same messages, each naming the
place in the file, here with its line too) and stores it as a new version in
``rule_set_version`` with who uploaded it and when. A round may then be opened
or scored with ``name@version`` (engine/read/rulesets.py resolves it). Nothing
is stored when the text is refused.

Version rules: a name and version already stored (or shipped) with other
content is refused (the check score_round makes, rounds.rule_set_version_id);
the same content again is refused as already there; a version below the
latest of that name is refused, naming the latest.
"""

from __future__ import annotations

from sqlalchemy import select

from engine.commands.args import Args
from engine.commands.handlers.rounds import rule_set_version_id
from engine.commands.registry import Result, command
from engine.commands.uow import UnitOfWork
from engine.domain.errors import ValidationError
from engine.read.rulesets import latest_version, parse_candidate, stored_label, version_key
from engine.store.models import RuleSetVersion
from rules.scoring import available, load_rule_set

RSV_T = RuleSetVersion.__table__
MAX_BODY = 256 * 1024  # characters of YAML: the largest shipped file is under 4 KB


@command("upload_rule_set", summary="Store a new version of a scoring rule set (its YAML)")
def upload_rule_set(uow: UnitOfWork, args: Args) -> Result:
    uow.require_role("officer", "director")
    body = args.text("body", max_len=MAX_BODY)
    args.done()
    text = body + "\n"  # stored as a file ends: one line break after the last line
    rs = parse_candidate(text)
    label = stored_label(rs.name, rs.version)
    same = uow.conn.execute(
        select(RSV_T.c.id, RSV_T.c.sha256).where(
            RSV_T.c.name == rs.name, RSV_T.c.version == rs.version
        )
    ).first()
    if same is not None and same.sha256 == rs.sha256:
        raise ValidationError(
            f"upload_rule_set: body: version {rs.version} of {rs.name} is already stored with "
            f"this content; choose {label} when opening a round, or give the new text a new "
            "version",
            field="body",
        )
    if rs.name in available():
        shipped = load_rule_set(rs.name)
        if shipped.version == rs.version:
            same_text = shipped.sha256 == rs.sha256
            raise ValidationError(
                f"upload_rule_set: body: version {rs.version} of {rs.name} is the shipped file"
                + (
                    f"; choose {rs.name} when opening a round"
                    if same_text
                    else " and its content differs; give it a new version"
                ),
                field="body",
            )
    latest = latest_version(uow.conn, rs.name)
    if latest is not None and same is None and version_key(rs.version) < version_key(latest):
        raise ValidationError(
            f"upload_rule_set: body: version {rs.version} is below the latest version of "
            f"{rs.name}, {latest}; give it a version after {latest}",
            field="body",
        )
    # same name and version, other content: refused here as score_round refuses it
    version_id = rule_set_version_id(uow, rs, uploaded_by=uow.actor.person_id, field="body")
    uow.record(
        label,
        {"latest": latest} if latest else {},
        {
            "rule_set": rs.name,
            "version": rs.version,
            "title": rs.title,
            "criteria": [c.id for c in rs.criteria],
            "max_points": rs.max_total,
            "sha256": rs.sha256,
        },
        f"{uow.actor.name} uploaded version {rs.version} of the scoring rule set {rs.name} "
        f"({len(rs.criteria)} criteria, at most {rs.max_total} points)"
        + (f", after version {latest}" if latest else ", its first version"),
    )
    return {
        "rules": label,
        "name": rs.name,
        "version": rs.version,
        "sha256": rs.sha256,
        "id": version_id,
        "criteria": len(rs.criteria),
        "max_points": rs.max_total,
    }
