"""The ``quorum`` command line. Thin: parse, call the service, print.

A user mistake prints ``error: <what and where>`` and exits 1; it never
prints a traceback. Changes are made as ``--as EMAIL`` (or
``QUORUM_ACTOR``); reading needs no identity.
"""

from __future__ import annotations

import json
import os
import sys
from functools import wraps
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlmodel import Session

from engine import audit, views
from engine.db import current_revision, database_url, ensure_schema, make_engine, upgrade
from engine.errors import QuorumError
from engine.money import format_pence
from engine.yamlio import load_yaml

DATA = Path(__file__).parent / "data"


class Ctx:
    def __init__(self, db: str | None, actor: str | None) -> None:
        self.url = database_url(db)
        self.actor_email = actor or os.environ.get("QUORUM_ACTOR")
        self._engine = None

    @property
    def engine(self):  # noqa: ANN201
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def service(self):  # noqa: ANN201
        from engine.service import Quorum

        ensure_schema(self.engine)
        return Quorum(self.engine)

    def actor(self) -> str:
        if not self.actor_email:
            raise QuorumError(
                "who is acting? pass --as EMAIL (or set QUORUM_ACTOR); "
                "'quorum people list' shows who is registered"
            )
        return self.actor_email


def friendly(fn):  # noqa: ANN001, ANN201
    """Turn refusals into 'error: ...' and exit 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except QuorumError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        except Exception as exc:  # database unreachable, disk full...
            from sqlalchemy.exc import OperationalError

            if isinstance(exc, OperationalError):
                click.echo(f"error: database: {str(exc.orig).strip()}", err=True)
                sys.exit(1)
            raise

    return wrapper


@click.group()
@click.option(
    "--db", envvar="QUORUM_DATABASE_URL", help="Database URL (default sqlite:///quorum.db)"
)
@click.option("--as", "actor", help="Email of the person acting (or QUORUM_ACTOR)")
@click.pass_context
def main(ctx: click.Context, db: str | None, actor: str | None) -> None:
    """Quorum: rules-driven workflow and approvals for grant programmes run by boards."""
    ctx.obj = Ctx(db, actor)


# ------------------------------------------------------------------ db


@main.group()
def db() -> None:
    """Database schema: create and migrate."""


@db.command("upgrade")
@click.pass_obj
@friendly
def db_upgrade(obj: Ctx) -> None:
    """Create or migrate the schema to the latest version."""
    upgrade(obj.engine)
    click.echo(f"database at revision {current_revision(obj.engine)}")


@db.command("current")
@click.pass_obj
@friendly
def db_current(obj: Ctx) -> None:
    """Show the schema revision."""
    click.echo(current_revision(obj.engine) or "empty (run 'quorum db upgrade')")


# ------------------------------------------------------------------ demo


@main.command()
@click.option(
    "--bids",
    "bids_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Bid table to import (default: the April 2011 table shipped with Quorum)",
)
@click.pass_obj
@friendly
def demo(obj: Ctx, bids_file: Path | None) -> None:
    """Load the April 2011 programme, its authorities, demo users, and the 26 bids
    entered into a round, closed and scored (engine/data/demo.yaml)."""
    from engine.models import Programme
    from engine.replay import load, run

    scenario = DATA / "demo.yaml"
    data = load(scenario)
    ensure_schema(obj.engine)
    with Session(obj.engine) as s:
        name = data["programme"]["name"]
        if s.execute(select(Programme.id).where(Programme.name == name)).first():
            click.echo("demo programme already loaded; nothing to do")
            return
    if bids_file is not None:
        for step in data["steps"]:
            if step["do"] == "import_bids":
                step["file"] = str(bids_file.resolve())
    result = run(scenario, obj.url, data=data)
    if not result.ok:
        raise QuorumError(f"demo: {result.failed.message}")
    bids = [i for i in result.snapshot["items"] if i["kind"] == "bid"]
    requested = sum(b["grant_requested_pence"] for b in bids)
    click.echo(f"demo loaded into {obj.url}")
    click.echo(f"  programme: {name}")
    click.echo(f"  bids: {len(bids)}, {format_pence(requested)} requested, in round EFF-2011 "
               "(scored: 'quorum round show EFF-2011')")
    click.echo("  users (sign in by email): " + ", ".join(p["email"] for p in data["people"]))


# ------------------------------------------------------------------ bids


@main.group()
def bids() -> None:
    """Bids: list, show, import, withdraw."""


@bids.command("list")
@click.option("--state", help="Only bids in this state")
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@click.pass_obj
@friendly
def bids_list(obj: Ctx, state: str | None, as_json: bool) -> None:
    """List bids with grant requested and savings."""
    ensure_schema(obj.engine)
    with Session(obj.engine) as s:
        rows = views.public(views.bids(s, state=state))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ref':<8} {'state':<11} {'grant':>10}  {'sponsor':<26} {'title':<40} savings")
    for b in rows:
        flag = "" if b["savings"]["readable"] else "  [unreadable]"
        click.echo(
            f"{b['ref']:<8} {b['state']:<11} {format_pence(b['grant_requested_pence']):>10}  "
            f"{b['sponsor'][:26]:<26} {b['title'][:40]:<40} {b['savings_as_written']}{flag}"
        )
    total = sum(b["grant_requested_pence"] for b in rows)
    click.echo(f"{len(rows)} bids, {format_pence(total)} requested")


@bids.command("show")
@click.argument("ref")
@click.pass_obj
@friendly
def bids_show(obj: Ctx, ref: str) -> None:
    """Show one bid as JSON."""
    with Session(obj.engine) as s:
        for b in views.public(views.bids(s)):
            if b["ref"] == ref:
                click.echo(json.dumps(b, indent=2))
                return
    raise QuorumError(f"no bid {ref!r}")


@bids.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--partial", is_flag=True, help="Accept the good rows even if some rows are bad")
@click.option("--pot", help="Pot the bids are for, when the file has no pot column")
@click.option("--round", "round_ref", help="Round the bids enter (its pot is used)")
@click.pass_obj
@friendly
def bids_import(
    obj: Ctx, file: Path, partial: bool, pot: str | None, round_ref: str | None
) -> None:
    """Import bids from a CSV or XLSX table (columns as in the April 2011 paper)."""
    from engine.importer import import_bids

    report = import_bids(obj.service(), file, obj.actor(), partial=partial, pot=pot,
                         round_ref=round_ref)
    for p in report.problems:
        click.echo(f"  {p}", err=True)
    if report.problems and not report.committed:
        raise QuorumError(
            f"{len(report.problems)} of {report.rows} rows could not be accepted; nothing was "
            "imported (fix them, or use --partial to import the good rows)"
        )
    click.echo(
        f"imported {len(report.accepted)} of {report.rows} bids, "
        f"{format_pence(report.requested_pence)} requested"
        + (f"; skipped {len(report.problems)}" if report.problems else "")
    )


@bids.command("withdraw")
@click.argument("ref")
@click.option("--reason", required=True)
@click.pass_obj
@friendly
def bids_withdraw(obj: Ctx, ref: str, reason: str) -> None:
    """Withdraw a bid."""
    r = obj.service().execute("withdraw_bid", {"ref": ref, "reason": reason}, obj.actor())
    click.echo(f"{r['ref']} is now {r['state']}")


# ------------------------------------------------------------------ rounds and papers


@main.group("round")
def round_group() -> None:
    """Bidding rounds: score, ranking with the funding line, what-if."""


@round_group.command("score")
@click.argument("ref")
@click.option("--rules", help="Score with this rule set instead (a new, audited scoring)")
@click.pass_obj
@friendly
def round_score(obj: Ctx, ref: str, rules: str | None) -> None:
    """Score every bid in a closed round; store points and reasons per criterion."""
    args = {"round": ref} | ({"rules": rules} if rules else {})
    r = obj.service().execute("score_round", args, obj.actor())
    recs = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(r["recommendations"].items()))
    click.echo(f"scored {r['scored']} bids in {r['round']} with {r['rules']}: {recs}")


def _round_table(rank: dict) -> None:
    crit = [c["id"] for c in rank["criteria"]]
    click.echo(f"{rank['round']} {rank['name']} — {rank['pot']} pot, {rank['rules']} "
               f"{rank['rules_version']}")
    click.echo(f"{'#':>3} {'ref':<8} {'pts':>3} " + " ".join(f"{c[:6]:>6}" for c in crit)
               + f" {'grant':>10}  {'recommendation':<14} title")
    for b in rank["bids"]:
        mark = {"committed": "  (approved)", "below_line": "  (below the line)",
                "not_eligible": f"  ({b['state'].replace('_', ' ')})"}.get(b["funding"], "")
        click.echo(
            f"{b['rank']:>3} {b['ref']:<8} {b['points']:>3} "
            + " ".join(f"{c['points']:>6}" for c in b["criteria"])
            + f" {format_pence(b['grant_requested_pence']):>10}  {b['recommendation']:<14} "
            f"{b['title'][:40]}{mark}")
    click.echo(f"available {format_pence(rank['available_pence'])}; above the line "
               f"{format_pence(rank['funded_pence'])}; would remain "
               f"{format_pence(rank['remaining_pence'])}")


@round_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly
def round_show(obj: Ctx, ref: str, as_json: bool) -> None:
    """The ranked bids, points per criterion, and the funding line."""
    with Session(obj.engine) as s:
        rank = views.round_ranking(s, ref)
    if as_json:
        click.echo(json.dumps(rank, indent=2, default=str))
    else:
        _round_table(rank)


@round_group.command("whatif")
@click.argument("ref")
@click.option("--rules", required=True, help="The other rule set (name or YAML file)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly
def round_whatif(obj: Ctx, ref: str, rules: str, as_json: bool) -> None:
    """How ranks and recommendations would change under another rule set (writes nothing)."""
    with Session(obj.engine) as s:
        w = views.round_whatif(s, ref, rules)
    if as_json:
        click.echo(json.dumps(w, indent=2))
        return
    click.echo(f"{w['round']}: {w['rules_now']} -> {w['rules_then']}: {w['changed']} bids change")
    for b in w["bids"]:
        if b["changed"]:
            click.echo(
                f"  {b['ref']:<8} rank {b['rank_now']:>3} -> {b['rank_then']:<3} points "
                f"{b['points_now']} -> {b['points_then']}  {b['recommendation_now']} -> "
                f"{b['recommendation_then']}  {b['title'][:40]}")


@main.group()
def paper() -> None:
    """Board papers (Markdown or HTML)."""


def _write_paper(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")


@paper.command("bids")
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md")
@click.option("--out", type=click.Path(path_type=Path))
@click.pass_obj
@friendly
def paper_bids(obj: Ctx, ref: str, fmt: str, out: Path | None) -> None:
    """The ranked bid table with points, savings, recommendation and what remains."""
    from notifications.papers import render

    with Session(obj.engine) as s:
        rank = views.round_ranking(s, ref)
    overrides = [f"{b['ref']} {c['criterion']}: {c['override_reason']}"
                 for b in rank["bids"] for c in b["criteria"] if c["override_reason"]]
    _write_paper(render("bids", {"round": rank, "overrides": overrides}, fmt), out)


@paper.command("minutes")
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md")
@click.option("--out", type=click.Path(path_type=Path))
@click.pass_obj
@friendly
def paper_minutes(obj: Ctx, ref: str, fmt: str, out: Path | None) -> None:
    """A meeting's decisions (with votes) and its numbered action list."""
    from notifications.papers import render

    with Session(obj.engine) as s:
        meeting = next((m for m in views.meetings(s) if m["ref"] == ref), None)
        titles = {b["ref"]: b["title"] for b in views.bids(s)}
    if meeting is None:
        raise QuorumError(f"no meeting {ref!r}")
    _write_paper(render("minutes", {"meeting": meeting, "titles": titles}, fmt), out)


# ------------------------------------------------------------------ generic command


@main.command("do")
@click.argument("verb")
@click.argument("pairs", nargs=-1)
@click.option("--key", help="Idempotency key: a retry with the same key does nothing new")
@click.pass_obj
@friendly
def do(obj: Ctx, verb: str, pairs: tuple[str, ...], key: str | None) -> None:
    """Run any command: quorum --as EMAIL do VERB field=value ... (values read as YAML)."""
    args: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise QuorumError(f"{verb}: {pair!r}: write arguments as field=value")
        name, value = pair.split("=", 1)
        args[name] = load_yaml(value) if value else ""
    result = obj.service().execute(verb, args, obj.actor(), key=key)
    click.echo(json.dumps(result, indent=2, default=str))


@main.command("commands")
def commands_list() -> None:
    """List every command (verb) with who may run it."""
    from engine import handlers  # noqa: F401
    from engine.service import REGISTRY

    for name, spec in sorted(REGISTRY.items()):
        who = ", ".join(sorted(spec.roles)) if spec.roles else "per workflow step"
        click.echo(f"{name:<26} {who:<28} {spec.summary.strip().splitlines()[0]}")


# ------------------------------------------------------------------ money


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly
def pots(obj: Ctx, as_json: bool) -> None:
    """The pot ledger: allocated, committed, paid, released, recovered, available."""
    ensure_schema(obj.engine)
    with Session(obj.engine) as s:
        rows = views.pots(s)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    cols = ["allocated", "committed", "paid", "released", "recovered", "available"]
    click.echo(f"{'pot':<26}" + "".join(f"{c:>12}" for c in cols))
    for p in rows:
        click.echo(
            f"{p['name'][:26]:<26}" + "".join(f"{format_pence(p[c + '_pence']):>12}" for c in cols)
        )
    click.echo(
        f"{'total':<26}"
        + "".join(f"{format_pence(sum(p[c + '_pence'] for p in rows)):>12}" for c in cols)
    )


# ------------------------------------------------------------------ directory


@main.group()
def orgs() -> None:
    """Authorities and partnerships."""


@orgs.command("list")
@click.pass_obj
@friendly
def orgs_list(obj: Ctx) -> None:
    from engine.models import Organisation

    ensure_schema(obj.engine)
    with Session(obj.engine) as s:
        for o in s.execute(select(Organisation).order_by(Organisation.name)).scalars():
            aka = f"  (also: {', '.join(o.aliases)})" if o.aliases else ""
            click.echo(f"{o.name:<34} {o.kind}{aka}")


@main.group()
def people() -> None:
    """People and their roles."""


@people.command("list")
@click.pass_obj
@friendly
def people_list(obj: Ctx) -> None:
    from engine.models import Organisation, Person, PersonRole

    ensure_schema(obj.engine)
    with Session(obj.engine) as s:
        orgs = {o.id: o.name for o in s.execute(select(Organisation)).scalars()}
        roles: dict[int, list[str]] = {}
        for pid, role in s.execute(select(PersonRole.person_id, PersonRole.role)):
            roles.setdefault(pid, []).append(role)
        for p in s.execute(select(Person).order_by(Person.email)).scalars():
            click.echo(
                f"{p.email:<34} {p.name:<22} {', '.join(sorted(roles.get(p.id, []))):<28} "
                f"{orgs.get(p.organisation_id, '')}"
            )


# ------------------------------------------------------------------ audit


@main.group("audit")
def audit_group() -> None:
    """The hash-chained audit trail."""


@audit_group.command("verify")
@click.pass_obj
@friendly
def audit_verify(obj: Ctx) -> None:
    """Check every event's hash; exit 1 naming the first broken event."""
    with Session(obj.engine) as s:
        result = audit.verify(s)
    if not result.ok:
        click.echo(f"error: {result.message()}", err=True)
        sys.exit(1)
    click.echo(result.message())


@audit_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly
def audit_show(obj: Ctx, ref: str, as_json: bool) -> None:
    """An item's history: who did what, when, and what changed."""
    with Session(obj.engine) as s:
        events = audit.history(s, ref)
    if not events:
        raise QuorumError(f"no audit events for {ref!r}")
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "actor": e.actor,
                        "command": e.command,
                        "before": json.loads(e.before),
                        "after": json.loads(e.after),
                        "reason": e.reason,
                    }
                    for e in events
                ],
                indent=2,
            )
        )
        return
    for e in events:
        click.echo(
            f"#{e.seq} {e.at} {e.actor} {e.command}" + (f" — {e.reason}" if e.reason else "")
        )
        before, after = json.loads(e.before), json.loads(e.after)
        for k in sorted(set(before) | set(after)):
            if before.get(k) != after.get(k):
                click.echo(f"    {k}: {_short(before.get(k))} -> {_short(after.get(k))}")


def _short(v: Any) -> str:
    s = json.dumps(v, default=str)
    return s if len(s) < 70 else s[:67] + "..."


# ------------------------------------------------------------------ replay


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the end state as JSON")
@click.option("--db", "replay_db", help="Replay into this database instead of a fresh one")
@click.pass_obj
@friendly
def replay(obj: Ctx, file: Path, as_json: bool, replay_db: str | None) -> None:
    """Replay a scenario YAML file against a fresh database."""
    from engine.replay import run

    result = run(file, database_url(replay_db) if replay_db else None)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        for s in result.steps:
            mark = "ok " if s.ok else ("ok!" if s.expected_error else "ERR")
            detail = f"  refused as expected: {s.message}" if s.expected_error else ""
            click.echo(f"{mark} {s.step:>3} {s.on} {s.by:<30} {s.do}{detail}")
        audit_state = result.snapshot.get("audit", {})
        click.echo(
            f"{len(result.steps)} steps; audit chain "
            f"{'intact' if audit_state.get('chain_ok') else 'BROKEN'} "
            f"({audit_state.get('events')} events)"
        )
    if result.failed:
        click.echo(f"error: {result.failed.message}", err=True)
        sys.exit(1)


# ------------------------------------------------------------------ web


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=int)
@click.option("--no-scheduler", is_flag=True, help="Run the web app without the scheduler")
@click.pass_obj
@friendly
def serve(obj: Ctx, host: str, port: int, no_scheduler: bool) -> None:
    """Run the web app (and the scheduler) at http://HOST:PORT."""
    import uvicorn

    from quorum_web.app import create_app

    obj.service()  # schema up to date before serving
    app = create_app(obj.url, scheduler=not no_scheduler)
    click.echo(f"Quorum at http://{host}:{port}  (database {obj.url})")
    uvicorn.run(app, host=host, port=port, log_level="info")


if __name__ == "__main__":  # pragma: no cover
    main()
