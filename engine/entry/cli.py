"""The ``quorum`` command line. Thin: parse, call the service, print.

A user mistake prints ``error: <what and where>`` and exits 1; it never
prints a traceback. Changes are made as ``--as EMAIL`` (or
``QUORUM_ACTOR``); reading needs no identity.
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlmodel import Session

from engine.commands.args import parse_date
from engine.commands.handlers.accounts import new_token, token_hash
from engine.commands.service import REGISTRY, Quorum
from engine.domain.actor import Actor
from engine.domain.clock import SystemClock
from engine.domain.errors import QuorumError
from engine.domain.money import format_pence
from engine.domain.yamlio import load_yaml
from engine.entry import scheduler
from engine.entry.importer import import_bids
from engine.entry.replay import load, run
from engine.read import giving360, views
from engine.read import returns as views_returns
from engine.read.accounts import role_changes, tokens
from engine.read.papers import paper_context
from engine.read.reconcile import integrity_report
from engine.settings import SettingsError, get_settings, is_key_id
from engine.store import audit
from engine.store.auditkeys import new_secret
from engine.store.checkpoints import checkpoint_file, new_signing_key_pem, write_checkpoint
from engine.store.db import current_revision, database_url, ensure_schema, make_engine, upgrade
from engine.store.models import Organisation, Person, PersonRole, Programme
from notifications import dispatch as dispatcher
from notifications.channels import channel_from_config
from notifications.dispatch import dispatch, grace_from_config, retry
from notifications.papers import render, render_pdf

DATA = Path(__file__).resolve().parents[1] / "data"


class Ctx:
    def __init__(self, db: str | None, actor: str | None) -> None:
        self.url = database_url(db)
        self.actor_email = actor or get_settings().actor
        self._engine = None

    @property
    def engine(self):  # noqa: ANN201
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def service(self):  # noqa: ANN201
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
        except (QuorumError, SettingsError) as exc:
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
    try:
        get_settings()  # every QUORUM_* value checked before any command runs
    except SettingsError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
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
    scenario = DATA / "demo.yaml"
    data = load(scenario)
    ensure_schema(obj.engine)
    with Session(obj.engine) as s:
        name = data["programme"]["name"]
        if s.execute(select(Programme.id).where(Programme.name == name)).first():
            click.echo("demo programme already loaded; nothing to do")
            _demo_users(data["people"], "unless changed since")
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
    Quorum(obj.engine).execute_batch(
        [
            ("set_password", {"email": p["email"], "password": demo_password(p["email"])})
            for p in data["people"]
        ],
        "system",
    )
    _demo_users(data["people"])


def demo_password(email: str) -> str:
    """The demo's password for a demo user: 'quorum-' and the part before the @."""
    return "quorum-" + email.split("@", 1)[0]


def _demo_users(people: list[dict], note: str = "") -> None:
    extra = f" ({note})" if note else ""
    click.echo(f"  users: sign in at /login with email and password{extra}")
    width = max(len(p["email"]) for p in people)
    for p in people:
        roles = ", ".join(p.get("roles", []))
        org = f" — {p['organisation']}" if p.get("organisation") else ""
        click.echo(f"    {p['email']:<{width}}  {demo_password(p['email']):<28} {roles}{org}")


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


@round_group.command("upload-rules")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@friendly
def round_upload_rules(obj: Ctx, path: Path) -> None:
    """Store a scoring rule set file as a new version (upload_rule_set): checked as a
    shipped file is; a round may then be opened or scored with NAME@VERSION."""
    body = path.read_text(encoding="utf-8")
    r = obj.service().execute("upload_rule_set", {"body": body}, obj.actor())
    click.echo(f"stored {r['rules']} (sha256 {r['sha256'][:12]}, {r['criteria']} criteria, "
               f"at most {r['max_points']} points)")


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
    """Board papers (Markdown, HTML or PDF)."""


PAPER_FORMATS = click.Choice(["md", "html", "pdf"])


def _write_paper(name: str, context: dict, fmt: str, out: Path | None) -> None:
    """Render paper ``name`` as md, html or pdf to ``out`` (default stdout)."""
    if fmt == "pdf":
        data = render_pdf(name, context)
        if out is None:
            click.get_binary_stream("stdout").write(data)
        else:
            out.write_bytes(data)
            click.echo(f"wrote {out}")
        return
    text = render(name, context, fmt)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")


# every paper: (name, what the command's help says)
PAPER_HELP = {
    "bids": "The ranked bid table with points, savings, recommendation and what remains.",
    "agenda": "A meeting's agenda, from scheduling (no attendance needed).",
    "minutes": "A meeting's decisions (with votes) and its numbered action list.",
    "delegated": '"Delegated decisions – <period>" for a meeting: what, amount, budget, '
    'who signed, why.',
    "returns": "Late returns by partnership, with days late, as of a meeting's date.",
    "risks": '"Risk analysis" for a meeting: the risk register, the risks to review, the reviews.',
    "partnerships": '"Partnership financial summary" for a meeting: per partnership allocation, '
    'committed, paid, savings, balance, projects carried forward.',
    "monitoring": '"Late and red returns" for a meeting: overdue, needing revision and red '
    "returns by grant, with days late and the lines at risk.",
}


def _paper_command(name: str, help_text: str) -> None:
    """``quorum paper NAME REF [--format md|html|pdf] [--out FILE]``."""

    @paper.command(name, help=help_text)
    @click.argument("ref")
    @click.option("--format", "fmt", type=PAPER_FORMATS, default="md")
    @click.option("--out", type=click.Path(path_type=Path))
    @click.pass_obj
    @friendly
    def write(obj: Ctx, ref: str, fmt: str, out: Path | None) -> None:
        _write_paper(name, paper_context(obj.engine, name, ref), fmt, out)


for _name, _help in PAPER_HELP.items():
    _paper_command(_name, _help)


@main.group()
def publish() -> None:
    """Open data: what the programme gave, in the forms the sector reads."""


@publish.command("360giving")
@click.option("--out", type=click.Path(path_type=Path), default=Path("var/publish"),
              show_default=True, help="Folder to write the files into")
@click.pass_obj
@friendly
def publish_360giving(obj: Ctx, out: Path) -> None:
    """Every awarded grant in the 360Giving Data Standard: 360giving.json (checked
    against the official schema first: nothing is written if it fails), and the flat
    form (360giving-grants.csv, 360giving-disbursements.csv, 360giving.xlsx)."""
    settings = get_settings()
    funder = giving360.Funder(settings.giving_prefix, settings.funder_id, settings.funder_name)
    with obj.engine.connect() as conn:
        grants = giving360.grants_360(conn, funder)
    if not grants:
        raise QuorumError("publish 360giving: no grant has been awarded yet; nothing to publish")
    pkg = giving360.package(grants, funder, SystemClock().today())
    found = giving360.problems(pkg)
    if found:
        raise QuorumError(
            f"publish 360giving: the package does not validate against the 360Giving schema "
            f"({len(found)} problem{'s' if len(found) != 1 else ''}); nothing was written:\n  "
            + "\n  ".join(str(p) for p in found)
        )
    out.mkdir(parents=True, exist_ok=True)
    for name, data in giving360.files(pkg).items():
        (out / name).write_bytes(data)
        click.echo(f"wrote {out / name}")
    click.echo(f"{len(grants)} grants published under {funder.prefix}")
# ------------------------------------------------------------------ generic command


@main.command("do")
@click.argument("verb")
@click.argument("pairs", nargs=-1)
@click.option(
    "--key",
    help="Idempotency key (yours, for this command; e.g. a UUID): a retry with the same "
    "key and arguments returns the first result and does nothing new",
)
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


@people.command("reset")
@click.argument("email")
@click.pass_obj
@friendly
def people_reset(obj: Ctx, email: str) -> None:
    """Email EMAIL a single-use link to set their own password (nobody sets another's)."""
    actor = obj.actor_email or Actor.system("an administrator (quorum people reset)")
    r = obj.service().execute("request_password_reset", {"email": email}, actor)
    click.echo(f"a password link was sent to {r['person']}; it works once, until {r['expires_at']}")


@people.command("changes")
@click.option("--waiting", is_flag=True, help="Only role changes waiting for a decision")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly
def people_changes(obj: Ctx, waiting: bool, as_json: bool) -> None:
    """Role changes (a second person approves: 'quorum do approve_role_change item=RC-0001')."""
    obj.service()
    with obj.engine.connect() as conn:
        rows = role_changes(conn, state="requested" if waiting else None)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for c in rows:
        what = "; ".join(
            p for p in (
                f"add {', '.join(c['add'])}" if c["add"] else "",
                f"remove {', '.join(c['remove'])}" if c["remove"] else "",
            ) if p
        )  # fmt: skip
        by = f", decided by {c['decided_by']}" if c["decided_by"] else ""
        click.echo(
            f"{c['ref']:<8} {c['state']:<10} {c['email']:<34} {what} "
            f"(asked by {c['requested_by']}{by})"
        )


# ------------------------------------------------------------------ audit


@main.group("audit")
def audit_group() -> None:
    """The hash-chained audit trail."""


@audit_group.command("verify")
@click.pass_obj
@friendly
def audit_verify(obj: Ctx) -> None:
    """Check the audit trail: every event's keyed hash and link, the chain
    against the signed checkpoints, and every money row against the ledgers
    re-derived from the events. Exit 1 naming each problem."""
    report = integrity_report(obj.engine)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        problems = report.problems()
        first = report.chain.message() if not report.chain.ok else "the audit trail does not verify"
        click.echo(f"error: {first} ({len(problems)} problem(s) in all)", err=True)
        for p in problems:
            click.echo(f"  {p}", err=True)
        sys.exit(1)


@audit_group.command("checkpoint")
@click.pass_obj
@friendly
def audit_checkpoint(obj: Ctx) -> None:
    """Sign a checkpoint of the chain's head (count and hash) and append it to the
    checkpoint file outside the database (QUORUM_CHECKPOINT_DIR). The sweep does
    this too. Refused if the events since the last checkpoint do not verify."""
    cp = write_checkpoint(obj.engine, SystemClock().now())
    if cp is None:
        click.echo("audit chain is empty: nothing to checkpoint")
        return
    click.echo(f"checkpoint {cp.at}: {cp.count} events, head {cp.short_head}… signed by "
               f"{cp.signer}, in {checkpoint_file()}")  # fmt: skip


@audit_group.command("new-key")
@click.argument("key_id")
def audit_new_key(key_id: str) -> None:
    """Print a new keyring line 'KEY_ID SECRET' (append it to QUORUM_AUDIT_KEYRING
    to rotate: the last line is the current key)."""
    if not is_key_id(key_id):
        click.echo("error: KEY_ID: 1 to 32 letters, digits, '.', '_' or '-'", err=True)
        sys.exit(1)
    click.echo(f"{key_id} {new_secret()}")


@audit_group.command("new-signing-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def audit_new_signing_key(path: Path) -> None:
    """Write a new Ed25519 private key (PEM) for QUORUM_CHECKPOINT_KEY_FILE (never
    over an existing file)."""
    try:
        with path.open("xb") as fh:
            fh.write(new_signing_key_pem())
    except FileExistsError:
        click.echo(f"error: {path} exists; choose a new file name", err=True)
        sys.exit(1)
    path.chmod(0o600)
    click.echo(f"signing key written to {path} (mode 600); set QUORUM_CHECKPOINT_KEY_FILE")


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


# ------------------------------------------------------------------ outbox


@main.group()
def outbox() -> None:
    """Outgoing messages: list, send and retry (docs/notifications.md)."""


@outbox.command("list")
@click.option(
    "--status",
    type=click.Choice(["queued", "sending", "sent", "failed"]),
    help="Only messages in this state",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (oldest first)")
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@click.pass_obj
@friendly
def outbox_list(obj: Ctx, status: str | None, limit: int | None, as_json: bool) -> None:
    """Messages in the outbox, oldest first, with their key, state and attempts."""
    ensure_schema(obj.engine)
    found = dispatcher.rows(obj.engine, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for m in found:
        when = m["sent_at"] or m["next_attempt_at"] or m["created_at"]
        click.echo(
            f"{m['status']:<8} {m['attempts']:>3}  {(when or '')[:16]:<16}  {m['key']}\n"
            f"{'':<31}to {m['to']}: {m['subject']}"
        )
        if m["last_error"] and m["status"] != "sent":
            click.echo(f"{'':<31}last error: {m['last_error']}")
    counts: dict[str, int] = {}
    for m in found:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    click.echo(f"{len(found)} message(s)" + (f": {summary}" if summary else ""))


@outbox.command("send")
@click.option("--limit", type=click.IntRange(min=1), help="Send at most this many")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON")
@click.pass_obj
@friendly
def outbox_send(obj: Ctx, limit: int | None, as_json: bool) -> None:
    """Send the due messages once, through the configured channel (QUORUM_MAIL...)."""
    import logging

    channel = channel_from_config()
    grace = grace_from_config()
    ensure_schema(obj.engine)
    logging.getLogger("quorum.dispatch").addHandler(logging.NullHandler())  # printed below
    summary = dispatch(obj.engine, channel, limit=limit, grace=grace)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        click.echo(f"{channel.describe()}: {summary.line()}")
        for problem in summary.errors:
            click.echo(f"  not sent: {problem}")
    if summary.halted:
        click.echo(
            f"warning: stopped early: {summary.halted}; the rest wait for the next run",
            err=True,
        )


@outbox.command("retry")
@click.argument("key", required=False)
@click.option("--all-failed", is_flag=True, help="Every failed message")
@click.pass_obj
@friendly
def outbox_retry(obj: Ctx, key: str | None, all_failed: bool) -> None:
    """Queue a failed message again (attempts kept), or make a waiting one due now."""
    if key and all_failed:
        raise QuorumError("give a message KEY or --all-failed, not both")
    if not key and not all_failed:
        raise QuorumError(
            "give a message KEY (see 'quorum outbox list --status failed') or --all-failed"
        )
    ensure_schema(obj.engine)
    keys = retry(obj.engine, key, all_failed=all_failed)
    for k in keys:
        click.echo(f"queued again: {k}")
    click.echo(f"{len(keys)} message(s) queued; 'quorum outbox send' sends them now")


# ------------------------------------------------------------------ returns, sweep, scheduler


def _as_of(value: str | None, where: str) -> Any:
    return parse_date(value, where, field="as_of") if value else None


@main.command("sweep")
@click.option("--as-of", "as_of", help="Sweep as of this day (default today)")
@click.option("--returns-rules", help="Schedule file instead of rules/returns.yaml")
@click.option("--reminder-rules", help="Ladder file instead of rules/reminders.yaml")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON")
@click.pass_obj
@friendly
def sweep_cmd(
    obj: Ctx, as_of: str | None, returns_rules: str | None, reminder_rules: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Run the deadline sweep once: create returns due, queue reminders, chases and
    escalations (each once, ever). Runs as the system unless --as is given."""
    args: dict[str, Any] = {}
    day = _as_of(as_of, "sweep: --as-of")
    if day is not None:
        args["as_of"] = day
    if returns_rules:
        args["returns_rules"] = returns_rules
    if reminder_rules:
        args["reminder_rules"] = reminder_rules
    actor = obj.actor_email or Actor.system("sweep")
    r = scheduler.sweep_in_chunks(obj.service(), args, actor)  # short transactions
    scheduler.checkpoint_after_sweep(obj.engine)
    if as_json:
        click.echo(json.dumps(r, indent=2, default=str))
        return
    rungs = ", ".join(f"{k} {v}" for k, v in r["messages_queued"].items()) or "none"
    made = ", ".join(f"{k} {v}" for k, v in r["returns_created"].items()) or "none"
    expired = r["delegated_expired"]
    click.echo(
        f"sweep as of {r['as_of']}: {r['returns_created_total']} return(s) created ({made}); "
        f"{r['messages_queued_total']} message(s) queued ({rungs}); "
        f"{len(expired)} delegated request(s) expired ({', '.join(expired) or 'none'})"
    )
    for label, n in (r.get("no_recipient") or {}).items():
        click.echo(f"  warning: {n} return(s) with nobody to send {label}", err=True)
    if r.get("actions_queued"):
        about = ", ".join(f"{k} {v}" for k, v in r["actions_queued"].items())
        click.echo(f"  actions: {r['actions_queued_total']} message(s) queued ({about})")
    for label, n in (r.get("actions_no_recipient") or {}).items():
        click.echo(f"  warning: {n} action(s) with nobody to send {label}", err=True)


@main.group("scheduler")
def scheduler_group() -> None:
    """The scheduler: the daily sweep and the outbox dispatcher, one process at a time."""


@scheduler_group.command("run")
@click.option("--sweep-at", help="Daily sweep time HH:MM (default 07:00, or QUORUM_SWEEP_AT)")
@click.option("--timezone", help="Time zone of --sweep-at (default Europe/London)")
@click.option(
    "--dispatch-every", type=int, help="Seconds between outbox sends (default 30)"
)
@click.option("--wait", is_flag=True, help="If another scheduler runs, wait to take over")
@click.pass_obj
@friendly
def scheduler_run(
    obj: Ctx, sweep_at: str | None, timezone: str | None, dispatch_every: int | None, wait: bool
) -> None:
    """Run the scheduler until stopped (SIGTERM or Ctrl-C): the sweep daily and at
    start, the dispatcher every few seconds. Exits with an error if another
    scheduler holds the lock (unless --wait)."""
    _log_to_stderr()
    config = scheduler.settings(sweep_at, timezone, dispatch_every)
    obj.service()  # schema up to date
    scheduler.run_forever(obj.engine, config=config, wait=wait)
    click.echo("scheduler stopped")


def _log_to_stderr() -> None:
    """Show Quorum's own log lines (scheduler, sweep, dispatch) on stderr."""
    import logging

    log = logging.getLogger("quorum")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


@main.group("returns")
def returns_group() -> None:
    """Returns owed by grants: the list and the late ones."""


@returns_group.command("list")
@click.option("--state", help="Only returns in this state (due, submitted, queried, accepted)")
@click.option("--as-of", "as_of", help="Days late as of this day (default today)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly
def returns_list(obj: Ctx, state: str | None, as_of: str | None, as_json: bool) -> None:
    """Every return with its due date, state and days late."""

    ensure_schema(obj.engine)
    day = _as_of(as_of, "returns list: --as-of") or SystemClock().today()
    with obj.engine.connect() as conn:
        rows = [r for r in views_returns.returns(conn, day) if not state or r["state"] == state]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        late = f"{r['days_late']} days late" if r["days_late"] else ""
        click.echo(
            f"{r['ref']:<36} {r['return_kind']:<10} {r['due_on']}  {r['state']:<9} {late:<14} "
            f"{r['organisation'][:28]}"
        )
    click.echo(f"{len(rows)} returns")


@returns_group.command("late")
@click.option("--as-of", "as_of", help="Late as of this day (default today)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly
def returns_late(obj: Ctx, as_of: str | None, as_json: bool) -> None:
    """Late returns by partnership (accountable body) with days late; late repayments."""

    ensure_schema(obj.engine)
    day = _as_of(as_of, "returns late: --as-of") or SystemClock().today()
    with obj.engine.connect() as conn:
        late = views_returns.late_returns(conn, day)
    if as_json:
        click.echo(json.dumps(late, indent=2))
        return
    click.echo(f"late returns as of {late['as_of']}: {late['late_returns']}")
    for p in late["partnerships"]:
        click.echo(f"{p['partnership']} ({p['late']} late, up to {p['most_days_late']} days)")
        for r in p["returns"]:
            click.echo(
                f"  {r['days_late']:>4} days  {r['ref']:<36} {r['kind_label']:<26} due "
                f"{r['due_on']}  {r['title'][:40]}"
            )
    if late["late_instalments"]:
        click.echo("late repayment instalments:")
        for i in late["late_instalments"]:
            click.echo(
                f"  {i['days_late']:>4} days  {i['grant']} #{i['seq']} due {i['due_on']}: "
                f"{format_pence(i['outstanding_pence'])} outstanding ({i['partnership']})"
            )


@main.group("calendar")
def calendar_group() -> None:
    """Due dates as a calendar."""


@calendar_group.command("export")
@click.option("--out", type=click.Path(path_type=Path), help="Write to FILE (default stdout)")
@click.pass_obj
@friendly
def calendar_export(obj: Ctx, out: Path | None) -> None:
    """An ICS file of every due date: returns, milestones, repayment instalments."""

    ensure_schema(obj.engine)
    with obj.engine.connect() as conn:
        ics = views_returns.calendar_ics(conn, SystemClock().now())
    if out is None:
        click.echo(ics.decode("utf-8"), nl=False)
    else:
        out.write_bytes(ics)
        click.echo(f"wrote {out} ({ics.count(b'BEGIN:VEVENT')} due dates)")


# ------------------------------------------------------------------ API tokens


@main.group()
def token() -> None:
    """API tokens for machine clients (Authorization: Bearer <token>)."""


@token.command("create")
@click.argument("email")
@click.option("--name", default="", help="What the token is for (shown in 'token list')")
@click.pass_obj
@friendly
def token_create(obj: Ctx, email: str, name: str) -> None:
    """Make a token for EMAIL and print it once (only its SHA-256 is kept)."""
    secret = new_token()
    actor = obj.actor_email or Actor.system("token create")
    r = obj.service().execute(
        "create_api_token",
        {"email": email, "name": name, "token_sha256": token_hash(secret)},
        actor,
    )
    click.echo(f"token {r['token']} for {r['person']}" + (f" ({name})" if name else ""))
    click.echo("copy it now; it is not shown again:", err=True)
    click.echo(secret)


@token.command("list")
@click.option("--email", help="Only this person's tokens")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly
def token_list(obj: Ctx, email: str | None, as_json: bool) -> None:
    """Tokens (never the token itself): id, person, name, made, last used, revoked."""
    obj.service()
    with obj.engine.connect() as conn:
        rows = tokens(conn, email)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for t in rows:
        state = f"revoked {t['revoked_at'][:16]}" if t["revoked_at"] else "active"
        used = (t["last_used_at"] or "never")[:16]
        click.echo(
            f"{t['id']:>4}  {t['person']:<34} {t['name'][:20]:<20} made {t['created_at'][:16]}  "
            f"last used {used:<16}  {state}"
        )
    click.echo(f"{len(rows)} token(s)")


@token.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
@friendly
def token_revoke(obj: Ctx, token_id: int) -> None:
    """Revoke token TOKEN_ID (see 'quorum token list'): it stops working at once."""
    actor = obj.actor_email or Actor.system("token revoke")
    r = obj.service().execute("revoke_api_token", {"token": token_id}, actor)
    click.echo(f"token {r['token']} of {r['person']} revoked")


# ------------------------------------------------------------------ web


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=int)
@click.option("--no-scheduler", is_flag=True, help="Run the web app without the scheduler")
@click.pass_obj
@friendly
def serve(obj: Ctx, host: str, port: int, no_scheduler: bool) -> None:
    """Run the web app (and the scheduler) at http://HOST:PORT."""
    # Lazy on purpose: the web app (FastAPI, its pages, the API) adds about 2-3 s
    # to every other command's start-up (measured: `import quorum_web.app` after
    # the CLI is loaded, 2.1-2.8 s on this 2-core machine); only `serve` needs it.
    # It is also the one place the entry layer reaches up to the web layer, listed
    # in pyproject.toml [tool.importlinter] ignore_imports.
    import uvicorn

    from quorum_web.app import create_app

    obj.service()  # schema up to date before serving
    _log_to_stderr()  # the scheduler says when it starts, sweeps and sends
    app = create_app(obj.url, scheduler=not no_scheduler)
    click.echo(f"Quorum at http://{host}:{port}  (database {obj.url})")
    uvicorn.run(app, host=host, port=port, log_level="info")


if __name__ == "__main__":  # pragma: no cover
    main()
