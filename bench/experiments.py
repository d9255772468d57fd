"""What-if measurements for the command path, without editing engine code.

    python -m bench.experiments --n 1000 [--sync NORMAL] [--out bench/results/experiments.json]

Each variant patches functions *in this process only* (module attributes; no
file under engine/ is touched), runs the bench_commands workload (n
submit_bid, then n amend_bid) on a fresh database, checks the audit chain,
and reports commands/s. Variants are cumulative in the order listed, so each
row's gain is over the row above. These are estimates for the suggestions in
bench/README.md, not proposed code: several patches copy engine logic and
would drift if the engine changes.

Also measured:
- framework floor: a do-nothing command that records one audit event (session,
  BEGIN IMMEDIATE, actor lookup, audit head, audit append, COMMIT), and one
  that records nothing;
- batches: 10 submissions per transaction through execute_batch, to show what
  the per-transaction costs (BEGIN, COMMIT, head, actor) are worth.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_commands import (  # noqa: E402
    OFFICER,
    WARMUP,
    amend_args,
    code_version,
    machine,
    new_engine,
    read_settings,
    seed,
    submit_args,
)


# ---------------------------------------------------------------- patches


def patch_core_audit(p: Patcher) -> None:
    """audit.lock_head / audit.append through the session's Connection (Core),
    with statements built once, instead of ORM-enabled session.execute."""
    from sqlalchemy import bindparam, select, update

    from engine import audit
    from engine.models import AuditEvent, AuditHead

    ev, head_t = AuditEvent.__table__, AuditHead.__table__
    sel = select(head_t.c.last_seq, head_t.c.last_hash).where(head_t.c.id == 1).with_for_update()
    ins = ev.insert()
    upd = update(head_t).where(head_t.c.id == 1).values(
        last_seq=bindparam("s"), last_hash=bindparam("h")
    )

    def lock_head(session):  # noqa: ANN001, ANN202
        row = session.connection().execute(sel).first()
        if row is None:
            raise RuntimeError("audit_head row missing")
        return SimpleNamespace(last_seq=row[0], last_hash=row[1])

    def append(session, head, events, actor, at):  # noqa: ANN001, ANN202
        if not events:
            return
        at_s = at.astimezone(dt.UTC).isoformat()
        seq, prev = head.last_seq, head.last_hash or audit.GENESIS
        rows = []
        for e in events:
            seq += 1
            before, after = audit.canonical(e.before), audit.canonical(e.after)
            h = audit.event_hash(seq, at_s, actor, e.command, e.item_ref, before, after,
                                 e.reason, prev)
            rows.append({"seq": seq, "at": at_s, "actor": actor, "command": e.command,
                         "item_ref": e.item_ref, "before": before, "after": after,
                         "reason": e.reason, "prev_hash": prev, "hash": h})
            prev = h
        conn = session.connection()
        conn.execute(ins, rows)
        conn.execute(upd, {"s": seq, "h": prev})
        head.last_seq, head.last_hash = seq, prev

    p.set(audit, "lock_head", lock_head)
    p.set(audit, "append", append)


def patch_children(p: Patcher) -> None:
    """On submit, skip the DELETEs of partners/milestones (a new bid has none),
    and write milestones with one Core executemany instead of ORM objects."""
    from engine.handlers import intake
    from engine.models import Milestone

    orig_partners, orig_milestones = intake._set_partners, intake._set_milestones
    ins = Milestone.__table__.insert()

    def set_partners(uow, bid, names, sponsor_id):  # noqa: ANN001, ANN202
        if uow.command != "submit_bid" or names:
            return orig_partners(uow, bid, names, sponsor_id)
        return None

    def set_milestones(uow, bid, profile):  # noqa: ANN001, ANN202
        if uow.command != "submit_bid":
            return orig_milestones(uow, bid, profile)
        if profile:
            uow.session.connection().execute(
                ins, [{"bid_id": bid.id, "seq": i, "state": "planned", "version": 1, **m}
                      for i, m in enumerate(profile, start=1)])
        return None

    p.set(intake, "_set_partners", set_partners)
    p.set(intake, "_set_milestones", set_milestones)


def patch_snapshot(p: Patcher) -> None:
    """bid_snapshot reads partners and milestones once per command and reuses
    them (amend_bid takes a snapshot before and after; submit_bid reads back
    rows it has just written). Only when the handler replaced them are they
    re-read."""
    from engine.handlers import intake

    orig = intake.bid_snapshot
    orig_partners, orig_milestones = intake._set_partners, intake._set_milestones

    def snapshot(uow, bid):  # noqa: ANN001, ANN202
        key = ("bench-snapshot-children", bid.id)
        kids = uow._cache.get(key)
        if kids is None:
            snap = orig(uow, bid)
            uow._cache[key] = (snap["partners"], snap["milestones"])
            return snap
        partners, milestones = kids
        return {
            "ref": bid.ref, "title": bid.title, "state": bid.state,
            "sponsor_id": bid.sponsor_id, "pot_id": bid.pot_id,
            "grant_requested_pence": bid.grant_requested_pence,
            "savings_text": bid.savings_text, "savings_basis": bid.savings_basis,
            "savings_amount_pence": bid.savings_amount_pence,
            "savings_high_pence": bid.savings_high_pence, "savings_years": bid.savings_years,
            "partnership": bid.partnership, "partners": list(partners),
            "builds_on_proven": bid.builds_on_proven, "invest_to_save": bid.invest_to_save,
            "milestones": [dict(m) for m in milestones],
        }

    def set_partners(uow, bid, names, sponsor_id):  # noqa: ANN001, ANN202
        uow._cache.pop(("bench-snapshot-children", bid.id), None)
        if names:
            return orig_partners(uow, bid, names, sponsor_id)
        if uow.command != "submit_bid":
            orig_partners(uow, bid, names, sponsor_id)
        return None

    def set_milestones(uow, bid, profile):  # noqa: ANN001, ANN202
        uow._cache.pop(("bench-snapshot-children", bid.id), None)
        orig_milestones(uow, bid, profile)
        if uow.command == "submit_bid":  # known exactly: no partners, this profile
            uow._cache[("bench-snapshot-children", bid.id)] = ([], [
                {"outcome": m["outcome"], "due_on": m["due_on"].isoformat(),
                 "payment_pence": m["payment_pence"]} for m in profile])

    p.set(intake, "bid_snapshot", snapshot)
    p.set(intake, "_set_partners", set_partners)
    p.set(intake, "_set_milestones", set_milestones)


def patch_actor_cache(p: Patcher) -> None:
    """Actor lookup cached in process by email (NOT safe as is: a role change or
    deactivation must invalidate it; shows what the lookup costs)."""
    from engine.service import Quorum

    orig = Quorum.actor
    cache: dict = {}

    def actor(self, who, session=None):  # noqa: ANN001, ANN202
        if not isinstance(who, str):
            return orig(self, who, session)
        hit = cache.get(who)
        if hit is None:
            hit = cache[who] = orig(self, who, session)
        return hit

    p.set(Quorum, "actor", actor)


def patch_lookup_cache(p: Patcher) -> None:
    """Organisations, pots and sponsor contacts cached across commands (NOT safe as
    is: needs invalidation on register/ratify; shows what the lookups cost)."""
    from engine.handlers import directory, intake, programme

    store: dict = {}
    orig_orgs = directory.all_organisations
    orig_pot = intake.find_pot
    orig_contacts = getattr(intake, "sponsor_contacts", None)

    def all_organisations(uow):  # noqa: ANN001, ANN202
        if "orgs" not in store:
            store["orgs"] = orig_orgs(uow)
        return store["orgs"]

    def find_pot(uow, name, programme=None, field="pot"):  # noqa: ANN001, ANN202
        k = ("pot", name, getattr(programme, "id", None))
        if k not in store:
            store[k] = orig_pot(uow, name, programme, field)
        return store[k]

    p.set(directory, "all_organisations", all_organisations)
    p.set(intake, "find_pot", find_pot)
    p.set(programme, "find_pot", find_pot)
    if orig_contacts is not None:
        def sponsor_contacts(uow, org, fallback_to_actor=False):  # noqa: ANN001, ANN202
            k = ("contacts", org.id, fallback_to_actor, uow.actor.email)
            if k not in store:
                store[k] = orig_contacts(uow, org, fallback_to_actor)
            return store[k]

        p.set(intake, "sponsor_contacts", sponsor_contacts)


class Patcher:
    def __init__(self) -> None:
        self.saved: list = []

    def set(self, obj, name: str, value) -> None:  # noqa: ANN001
        self.saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def undo(self) -> None:
        for obj, name, value in reversed(self.saved):
            setattr(obj, name, value)
        self.saved.clear()


VARIANTS = [
    ("as is", []),
    ("+ audit head/append via Core, prebuilt statements", [patch_core_audit]),
    ("+ submit: no DELETEs on a new bid, milestones via Core", [patch_children]),
    ("+ bid_snapshot children read once per command", [patch_snapshot]),
    ("+ actor cached across commands (needs invalidation)", [patch_actor_cache]),
    ("+ orgs/pots/contacts cached across commands (needs invalidation)", [patch_lookup_cache]),
]


# ---------------------------------------------------------------- runs


def workload(path: Path, n: int) -> dict:
    from sqlmodel import Session

    from engine.audit import verify
    from engine.service import Quorum

    engine = new_engine(path)
    q = Quorum(engine)
    seed(q)
    for i in range(WARMUP):
        ref = q.execute("submit_bid", submit_args(-1 - i), OFFICER)["ref"]
        q.execute("amend_bid", amend_args(ref, -1 - i), OFFICER)
    refs = []
    t0 = time.perf_counter()
    for i in range(n):
        refs.append(q.execute("submit_bid", submit_args(i), OFFICER)["ref"])
    t1 = time.perf_counter()
    for i, ref in enumerate(refs):
        q.execute("amend_bid", amend_args(ref, i), OFFICER)
    t2 = time.perf_counter()
    with Session(engine) as s:
        check = verify(s)
        assert check.ok, check.message()
        assert check.events == 3 + 2 * WARMUP + 2 * n, check.events
    engine.dispose()
    return {"submit_per_s": n / (t1 - t0), "amend_per_s": n / (t2 - t1),
            "combined_per_s": 2 * n / (t2 - t0)}


def floor(path: Path, n: int) -> dict:
    """A command doing nothing but one audit event; and one doing nothing at all."""
    from engine.service import REGISTRY, Quorum, command

    if "bench_noop" not in REGISTRY:
        @command("bench_noop", roles={"officer"}, summary="benchmark: nothing")
        def _noop(uow, args):  # noqa: ANN001, ANN202
            args.done()
            return {}

        @command("bench_noop_event", roles={"officer"}, summary="benchmark: one audit event")
        def _noop_event(uow, args):  # noqa: ANN001, ANN202
            args.done()
            uow.record("BENCH", {}, {"n": 1})
            return {}

    engine = new_engine(path)
    q = Quorum(engine)
    seed(q)
    out = {}
    for name in ("bench_noop", "bench_noop_event"):
        for _ in range(WARMUP):
            q.execute(name, {}, OFFICER)
        t0 = time.perf_counter()
        for _ in range(n):
            q.execute(name, {}, OFFICER)
        out[name + "_per_s"] = n / (time.perf_counter() - t0)
    engine.dispose()
    return out


def batches(path: Path, n: int, size: int = 10) -> dict:
    from engine.service import Quorum

    engine = new_engine(path)
    q = Quorum(engine)
    seed(q)
    q.execute_batch([("submit_bid", submit_args(-1 - i)) for i in range(size)], OFFICER)
    t0 = time.perf_counter()
    done = 0
    while done < n:
        q.execute_batch([("submit_bid", submit_args(done + i)) for i in range(size)], OFFICER)
        done += size
    out = {f"submit_batch{size}_per_s": done / (time.perf_counter() - t0)}
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--sync", default="NORMAL", type=str.upper)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/results/experiments.json"))
    opts = ap.parse_args(argv)
    os.environ["QUORUM_SQLITE_SYNCHRONOUS"] = opts.sync

    results = []
    p = Patcher()
    with tempfile.TemporaryDirectory(prefix="quorum-exp-") as tmpd:
        tmp = Path(tmpd)
        settings = None
        for label, patches in VARIANTS:
            for fn in patches:
                fn(p)
            runs = []
            for r in range(opts.repeat):
                path = tmp / f"v{len(results)}-{r}.db"
                runs.append(workload(path, opts.n))
                if settings is None:
                    from engine.db import make_engine

                    e = make_engine(f"sqlite:///{path}")
                    settings = read_settings(e)
                    e.dispose()
                path.unlink()
            med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
            results.append({"variant": label, **med})
            print(f"{label:<66}{med['submit_per_s']:>8,.0f}{med['amend_per_s']:>8,.0f}"
                  f"{med['combined_per_s']:>8,.0f}", flush=True)
        p.undo()
        fl = floor(tmp / "floor.db", opts.n)
        bt = batches(tmp / "batch.db", opts.n)
    print(f"\nframework floor (nothing / one audit event): {fl['bench_noop_per_s']:,.0f} / "
          f"{fl['bench_noop_event_per_s']:,.0f} commands/s")
    print(f"submit_bid, 10 per transaction (execute_batch): {bt['submit_batch10_per_s']:,.0f}/s")
    out = {
        "benchmark": "experiments",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_version(),
        "settings": settings,
        "n": opts.n,
        "repeat": opts.repeat,
        "columns": "median commands/s: submit, amend, combined",
        "variants_cumulative": results,
        "framework_floor": fl,
        "batches": bt,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
