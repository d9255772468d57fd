"""Scenario replay: a YAML file walks a board through its year.

Format (docs/scenarios.md): a header with ``programme``, ``organisations`` and
``people``; then ``steps``, each ``{on: DATE, by: PERSON, do: VERB, ...args}``.
The clock is set to each step's date. A refused step stops the replay unless
it says ``expect: error`` (then the replay fails if it did NOT fail).
Every step is a command through the same path as the web and the CLI.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session

from engine.commands.args import Args, parse_date
from engine.commands.service import REGISTRY, Quorum
from engine.domain.actor import Actor
from engine.domain.clock import FixedClock, SystemClock
from engine.domain.errors import QuorumError, ValidationError
from engine.domain.fields import text_problem
from engine.domain.yamlio import load_yaml
from engine.entry.importer import import_bids
from engine.read import offers as offer_views
from engine.read import returns as views_returns
from engine.read import views
from engine.store.db import ensure_schema, make_engine

STEP_KEYS = {"on", "by", "do", "expect", "key", "note", "error_contains"}
REPLAY_VERBS = {"import_bids", "advance_clock"}  # verbs the replay handles (they call commands)


class ScenarioError(QuorumError):
    """The scenario file itself is wrong, or a step failed unexpectedly."""

    code = "scenario"


@dataclass
class StepRecord:
    step: int
    on: str
    by: str
    do: str
    ok: bool
    expected_error: bool
    message: str = ""
    result: Any = None


@dataclass
class ReplayResult:
    scenario: str
    steps: list[StepRecord] = field(default_factory=list)
    failed: StepRecord | None = None
    snapshot: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failed is None

    def to_json(self) -> dict:
        return {
            "scenario": self.scenario,
            "ok": self.ok,
            "steps_run": len(self.steps),
            "failed_step": asdict(self.failed) if self.failed else None,
            "errors": [
                {
                    "step": s.step,
                    "on": s.on,
                    "by": s.by,
                    "do": s.do,
                    "message": s.message,
                    "expected": s.expected_error,
                }
                for s in self.steps
                if not s.ok or s.expected_error
            ],
            **self.snapshot,
        }


def load(path: Path) -> dict:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario {path}: no such file") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"scenario {path.name}: not UTF-8 text") from None
    except OSError as exc:
        raise ScenarioError(f"scenario {path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {path.name}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(
            f"scenario {path.name}: must be a mapping with programme, people, steps"
        )
    unknown = set(data) - {"programme", "organisations", "people", "steps", "start", "title"}
    if unknown:
        raise ScenarioError(
            f"scenario {path.name}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            "allowed: title, start, programme, organisations, people, steps"
        )
    if not isinstance(data.get("steps", []), list):
        raise ScenarioError(f"scenario {path.name}: steps must be a list")
    return data


def setup(q: Quorum, header: dict, where: str = "scenario") -> dict[str, str]:
    """Create the header's programme, organisations and people (as the system).
    Returns a map from each person's name and email (lower-cased) to email."""
    system = Actor.system("setup")
    calls: list[tuple[str, dict]] = []
    for org in header.get("organisations") or []:
        calls.append(("register_organisation", org if isinstance(org, dict) else {"name": org}))
    if header.get("programme"):
        calls.append(("create_programme", header["programme"]))
    people = header.get("people") or []
    for person in people:
        calls.append(("register_person", person))
    try:
        q.execute_batch(calls, system)
    except QuorumError as exc:
        raise ScenarioError(f"{where}: header: {exc.message}", field=exc.field) from None
    names: dict[str, str] = {}
    for person in people:
        email = str(person.get("email", "")).strip().lower()
        names[email] = email
        names[str(person.get("name", "")).strip().lower()] = email
    return names


StepHook = Callable[[StepRecord, Any], None]


def run(
    path: Path, url: str | None = None, data: dict | None = None, after_step: StepHook | None = None
) -> ReplayResult:
    """Replay ``path`` on ``url`` (default: a fresh SQLite file in a temp dir).
    ``data``: the scenario already loaded (paths in it are relative to ``path``).
    ``after_step(record, engine)`` is called after every step (tests use it to
    check invariants at each step)."""
    data = data if data is not None else load(path)
    with tempfile.TemporaryDirectory(prefix="quorum-replay-") as tmp:
        engine = make_engine(url or f"sqlite:///{Path(tmp) / 'replay.db'}")
        try:
            ensure_schema(engine)
            return _run(path, data, engine, after_step)
        finally:
            engine.dispose()


def _run(path: Path, data: dict, engine: Any, after_step: StepHook | None = None) -> ReplayResult:
    steps = data.get("steps") or []
    start = data.get("start") or (
        steps[0].get("on") if steps and isinstance(steps[0], dict) else None
    )
    start_day = parse_date(start, f"{path.name}: start") if start else SystemClock().today()
    clock = FixedClock(start_day)
    q = Quorum(engine, clock)
    people = setup(q, data, path.name)
    result = ReplayResult(scenario=str(data.get("title") or path.name))
    last_day = start_day
    state: dict = {}  # what steps leave for later steps (advance_clock: the last day swept)
    for i, raw in enumerate(steps, start=1):
        record = _step(q, clock, people, path, i, raw, last_day, state)
        last_day = parse_date(record.on, "on")
        result.steps.append(record)
        if after_step is not None:
            after_step(record, engine)
        if not record.ok and not record.expected_error:
            result.failed = record
            break
    with Session(engine) as session:
        result.snapshot = {
            "items": views.items(session, clock.today()),
            "pots": views.pots(session),
            "meetings": views.meetings(session),
            "actions": views.actions(session),
            "returns": views_returns.returns(session, clock.today()),
            "outbox": views.outbox(session),
            "audit": views.audit_summary(session),
        }
    return result


def _step(
    q: Quorum,
    clock: FixedClock,
    people: dict[str, str],
    path: Path,
    i: int,
    raw: Any,
    last_day: dt.date,
    state: dict | None = None,
) -> StepRecord:
    where = f"step {i}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path.name}: {where}: must be a mapping with on, by, do")
    for key in ("on", "by", "do"):
        if raw.get(key) in (None, ""):
            raise ScenarioError(f"{path.name}: {where}: '{key}' is required", field=key)
    day = parse_date(raw["on"], f"{path.name}: {where}: on", field="on")
    if day < last_day:
        raise ScenarioError(
            f"{path.name}: {where}: on: {day} is before the previous step ({last_day}); "
            "steps run forward in time"
        )
    verb = str(raw["do"]).strip()
    if verb not in REGISTRY and verb not in REPLAY_VERBS:
        raise ScenarioError(
            f"{path.name}: {where}: do: unknown verb {verb!r}; verbs: "
            f"{', '.join(sorted(set(REGISTRY) | REPLAY_VERBS))}",
            field="do",
        )
    expect = raw.get("expect")
    if expect not in (None, "error", "ok"):
        raise ScenarioError(f"{path.name}: {where}: expect: use 'error' or leave it out")
    step_key = raw.get("key")
    if step_key is not None and (
        not isinstance(step_key, str | int)
        or not 0 < len(str(step_key)) <= 200
        or text_problem(str(step_key), "")
    ):
        raise ScenarioError(
            f"{path.name}: {where}: key: an idempotency key is one line of text, 1 to 200 "
            "characters",
            field="key",
        )
    by_key = str(raw["by"]).strip().lower()
    actor = "system" if by_key == "system" else people.get(by_key, by_key)
    args = {k: v for k, v in raw.items() if k not in STEP_KEYS}
    clock.set(day)
    record = StepRecord(i, day.isoformat(), actor, verb, ok=True, expected_error=expect == "error")
    try:
        if verb == "import_bids":
            record.result = _import(q, path, args, actor)
        elif verb == "advance_clock":
            store = {} if state is None else state
            record.result = _advance_clock(q, clock, path, day, args, store)
            record.on = record.result["to"]
        else:
            if verb == "accept_offer" and "grant" in args:
                args = _offer_of(q, args)
            record.result = q.execute(
                verb, args, actor, key=None if step_key is None else str(step_key)
            )
    except QuorumError as exc:
        record.ok = False
        record.message = f"{where} ({day}, {actor}, {verb}): {exc.message}"
        contains = raw.get("error_contains")
        if record.expected_error and contains and str(contains).lower() not in exc.message.lower():
            record.expected_error = False
            record.message += f" — expected an error mentioning {contains!r}"
        return record
    if record.expected_error:
        record.ok = False
        record.expected_error = False
        record.message = f"{where} ({day}, {actor}, {verb}): expected an error, but it succeeded"
    return record


def _offer_of(q: Quorum, args: dict) -> dict:
    """``accept_offer grant: G-0001``: the grant's letter awaiting an answer, with
    the hash of the letter as it stands (as the sponsor reads it on the grant's page)."""
    rest = {k: v for k, v in args.items() if k != "grant"}
    with q.engine.connect() as conn:
        found = offer_views.open_letter(conn, str(args["grant"]))
    if found is None:
        raise ValidationError(f"accept_offer: grant: {args['grant']} has no offer letter "
                              "awaiting an answer", field="grant")
    return {**rest, "offer": found[0], "sha256": found[1]}


def _import(q: Quorum, path: Path, args: dict, actor: str) -> dict:
    file = args.get("file")
    if not file:
        raise ValidationError("import_bids: file: is required", field="file")
    target = (path.parent / str(file)).resolve()
    report = import_bids(q, target, actor, partial=bool(args.get("partial")), pot=args.get("pot"),
                         round_ref=args.get("round"))
    if report.problems and not report.committed:
        raise ValidationError(
            "import_bids: nothing imported: " + "; ".join(str(p) for p in report.problems)
        )
    return {"accepted": report.accepted, "problems": [str(p) for p in report.problems]}


def _advance_clock(
    q: Quorum, clock: FixedClock, path: Path, day: dt.date, args: dict, state: dict
) -> dict:
    """``advance_clock: {to: DATE}``: time passes from the step's day to ``to``, the
    scheduler sweeping once each day (days already swept are not swept again;
    days between two steps that no advance_clock covered were "downtime": not
    swept, as if the scheduler had been stopped). Optional ``returns_rules`` and
    ``reminder_rules``: rule files, relative to the scenario."""
    a = Args("advance_clock", args)
    to = a.date("to")
    rule_args = {}
    for name in ("returns_rules", "reminder_rules"):
        value = a.text(name, required=False, max_len=1000)
        if value:
            rule_args[name] = str((path.parent / value).resolve())
    a.done()
    assert to is not None
    if to < day:
        raise ValidationError(
            f"advance_clock: to: {to.isoformat()} is before the step's day ({day.isoformat()}); "
            "the clock only moves forward",
            field="to",
        )
    swept = state.get("swept")
    first = max(day, swept + dt.timedelta(days=1)) if swept else day
    scheduler = Actor.system("scheduler")
    created = 0
    queued: dict[str, int] = {}
    actions: dict[str, int] = {}
    n = 0
    current = first
    while current <= to:
        clock.set(current)
        out = q.execute("sweep", {"as_of": current, **rule_args}, scheduler)
        created += out["returns_created_total"]
        for rung, count in out["messages_queued"].items():
            queued[rung] = queued.get(rung, 0) + count
        for rung, count in out.get("actions_queued", {}).items():
            actions[rung] = actions.get(rung, 0) + count
        n += 1
        current += dt.timedelta(days=1)
    clock.set(to)
    state["swept"] = max(to, swept) if swept else to
    return {
        "from": first.isoformat() if n else None,
        "to": to.isoformat(),
        "days_swept": n,
        "returns_created": created,
        "messages_queued": dict(sorted(queued.items())),
        **({"actions_queued": dict(sorted(actions.items()))} if actions else {}),
    }
