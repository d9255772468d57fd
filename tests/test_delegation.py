"""Delegated decisions: the scheme of delegation, signatures, approval that
commits money, decline and expiry that commit nothing, the report back to the
next Board meeting and its endorsement.

Each refusal must say what is wrong and leave the database exactly as it was."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from moneykit import (
    CHAIR,
    MEMBERS,
    OFFICER,
    VICE1,
    VICE2,
    assert_money_adds_up,
    bid_refs,
    dump,
    money_board,
    refused,
)
from sqlalchemy import select
from sqlmodel import Session

from engine.domain.errors import (
    ConflictError,
    MoneyRuleBroken,
    NotFound,
    PermissionDenied,
    TransitionRefused,
    ValidationError,
)
from engine.read.conditions import approval_conditions
from engine.read.delegation import delegated_items, delegated_report
from engine.store import audit
from engine.store.ledger import ledger
from engine.store.models import (
    Bid,
    Decision,
    DelegatedDecision,
    Grant,
    Interest,
    Meeting,
    MoneyMovement,
    OfferLetter,
    Outbox,
    RuleSetVersion,
    Signature,
)
from notifications.papers import render
from notifications.render import body
from rules.delegation import (
    SchemeError,
    Signer,
    load_scheme,
    parse_scheme,
)

REPO = Path(__file__).resolve().parents[1]
ASH = "ash@m.example"  # a board member, not a signatory
REASONS = "the supplier's offer lapses before the June Board"
ALTERNATIVES = "wait for the June Board (offer lost); a smaller pilot (no savings)"


# ------------------------------------------------------------------ helpers


@pytest.fixture
def board(sqlite_url: str):
    q, engine, clock = money_board(sqlite_url)
    yield q, engine, clock
    engine.dispose()


# These tests pin the 2011.1 scheme (the first form: the Chair and at least one
# Vice Chair), kept as rules/delegation-2011.yaml and still evaluated as it was;
# the scheme in force (rules/delegation.yaml, 2012.1) is tested in
# tests/test_delegation_schemes.py.
SCHEME_2011 = REPO / "rules" / "delegation-2011.yaml"


def request(q, bid: str, by: str = OFFICER, **kw) -> dict:
    kw.setdefault("scheme", str(SCHEME_2011))
    return q.execute(
        "request_delegated_decision",
        {"bid": bid, "reasons": REASONS, "alternatives": ALTERNATIVES, **kw},
        by,
    )


def sign(q, item: str, who: str, decision: str = "approve", **kw) -> dict:
    return q.execute("sign", {"item": item, "decision": decision, **kw}, who)


def new_bid(q, title: str, grant: str, pot: str = "Projects") -> str:
    return q.execute(
        "submit_bid",
        {
            "title": title,
            "sponsor": "Melton BC",
            "grant": grant,
            "savings": "100,000 2 years",
            "partnership": "yes",
            "pot": pot,
        },
        OFFICER,
    )["ref"]


def approve_delegated(q, bid: str, **kw) -> str:
    ref = request(q, bid, **kw)["ref"]
    sign(q, ref, CHAIR)
    assert sign(q, ref, VICE1)["state"] == "approved"
    return ref


def pot(engine, name: str):
    with Session(engine) as s:
        return next(line for line in ledger(s) if line.name == name)


def money(engine) -> tuple:
    d = dump(engine)
    return d["money_movement"], d["grant_award"]


def dd_row(engine, ref: str) -> DelegatedDecision:
    with Session(engine) as s:
        return s.execute(select(DelegatedDecision).where(DelegatedDecision.ref == ref)).scalar_one()


def bid_state(engine, ref: str) -> str:
    with Session(engine) as s:
        return s.execute(select(Bid.state).where(Bid.ref == ref)).scalar_one()


def chain_ok(engine) -> bool:
    with Session(engine) as s:
        return audit.verify(s).ok


def write_scheme(tmp_path: Path, name: str = "test-scheme", version: str = "t1", **over) -> Path:
    parts = {
        "signatories": "[chair, vice_chair]",
        "requires": "\n  - {role: chair, at_least: 1}\n  - {role: vice_chair, at_least: 1}",
        "limits": '\n  per_decision: "50,000"\n  per_period: "150,000"\n  period: financial_year',
        "pots": "[Projects, Governance]",
        "open_for_days": "28",
        **over,
    }
    text = f'name: {name}\nversion: "{version}"\n' + "".join(
        f"{k}: {v}\n" for k, v in parts.items()
    )
    path = tmp_path / f"{name}-{version}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ approval


def test_chair_and_a_vice_chair_approve_it_commits_money_and_makes_a_grant(db_url: str) -> None:
    q, engine, clock = money_board(db_url)
    try:
        (bid,) = bid_refs(engine, "Delegated ask")
        before = pot(engine, "Projects")
        clock.set(dt.date(2011, 5, 2))
        out = request(q, bid)
        ref = out["ref"]
        assert out["state"] == "awaiting_signatures"
        assert out["requires"] == "the Chair and at least one Vice Chair"
        assert out["pot_balance_pence"] == before.available_pence == 59_000_000
        assert out["expires_on"] == "2011-05-30"
        assert out["signatories"] == ["Chris", "Vera", "Victor"]

        clock.set(dt.date(2011, 5, 3))
        first = sign(q, ref, CHAIR)
        assert first["state"] == "awaiting_signatures"
        assert "at least one Vice Chair (1 needed): no approval yet" in first["why"]
        assert pot(engine, "Projects").committed_pence == before.committed_pence  # not yet

        second = sign(q, ref, VICE1)
        assert second["state"] == "approved" and second["grant"]
        assert "approved by Vera — met" in second["why"]

        after = pot(engine, "Projects")
        assert after.committed_pence == before.committed_pence + 3_000_000
        assert after.available_pence == before.available_pence - 3_000_000
        assert bid_state(engine, bid) == "approved"
        dd = dd_row(engine, ref)
        assert (dd.state, dd.decided_on, dd.amount_pence) == (
            "approved",
            dt.date(2011, 5, 3),
            3_000_000,
        )
        with Session(engine) as s:
            grant = s.execute(select(Grant).where(Grant.ref == second["grant"])).scalar_one()
            commit = s.execute(
                select(MoneyMovement).where(MoneyMovement.grant_id == grant.id)
            ).scalar_one()
            stored = s.get(RuleSetVersion, dd.rule_set_version_id)
            sigs = s.execute(select(Signature).order_by(Signature.id)).scalars().all()
            outbox = s.execute(select(Outbox)).scalars().all()
        assert (grant.delegated_decision_id, grant.awarded_pence, grant.pot_id) == (
            dd.id,
            3_000_000,
            dd.pot_id,
        )
        assert (commit.kind, commit.amount_pence, commit.note) == (
            "commit",
            3_000_000,
            f"{ref}: approved {bid}",
        )
        # the scheme as it was, stored and linked
        assert (stored.name, stored.version) == ("delegation", "2011.1")
        assert stored.body == SCHEME_2011.read_text(encoding="utf-8")
        assert [(s.decision, s.interest_declared) for s in sigs] == [("approve", None)] * 2
        # every signatory was asked; the requester heard the outcome; the sponsor got a letter
        asked = sorted(m.to_addr for m in outbox if m.template == "delegated_signature_request")
        assert asked == sorted([CHAIR, VICE1, VICE2])
        told = [m for m in outbox if m.template == "delegated_decision_outcome"]
        assert [m.to_addr for m in told] == [OFFICER]
        for m in outbox:  # every queued message renders
            assert body(m.template, m.context)[0]
        letter = body(told[0].template, told[0].context)[0]
        assert "APPROVED" in letter and second["grant"] in letter
        assert_money_adds_up(engine)
        assert chain_ok(engine)
    finally:
        engine.dispose()


def test_a_delegated_approval_carries_the_conditions_asked_for(db_url: str) -> None:
    """An officer asks the Chair and Vice Chairs to approve on conditions: each
    signatory's request lists them, the approval copies them to the grant (open,
    numbered; one before the first payment, one during delivery), its offer letter
    and the sponsor's decision letter; a bad condition is refused by name and
    nothing is requested."""
    q, engine, clock = money_board(db_url)
    try:
        (bid,) = bid_refs(engine, "Delegated ask")
        clock.set(dt.date(2011, 5, 2))
        before = dump(engine)
        with pytest.raises(ValidationError, match="conditions: every condition given is empty"):
            request(q, bid, conditions=["  "])
        assert dump(engine) == before
        match, report = "Confirm the match funding in writing", "Report progress in June"
        ref = request(q, bid, conditions=[match, {"text": report, "when": "during_delivery"}])[
            "ref"]
        sign(q, ref, CHAIR)
        grant = sign(q, ref, VICE1)["grant"]
        with Session(engine) as s:
            gid = s.execute(select(Grant.id).where(Grant.ref == grant)).scalar_one()
            rows = approval_conditions(s.connection(), gid)
            decision = s.execute(select(Decision).where(Decision.item_ref == bid)).scalar_one()
            outbox = s.execute(select(Outbox)).scalars().all()
            letter = s.execute(select(OfferLetter.html).where(
                OfferLetter.grant_id == gid)).scalar_one()
        assert [(r["seq"], r["text"], r["when"], r["state"], r["source"]) for r in rows] == [
            (1, match, "before first payment", "open", ref),
            (2, report, "during delivery", "open", ref)]
        assert decision.conditions == [{"text": match, "before_payment": True},
                                       {"text": report, "before_payment": False}]
        asked = [m for m in outbox if m.template == "delegated_signature_request"]
        assert len(asked) == 3
        txt, html = body(asked[0].template, asked[0].context)
        assert f"1. {match}" in txt and f"2. {report} (during delivery)" in txt
        assert f"<li>{match}</li>" in (html or "")
        (told,) = [m for m in outbox if m.template == "decision_letter"
                   and m.context["ref"] == bid]  # the money board's own approvals: not these
        assert f"1. {match}" in body(told.template, told.context)[0]
        assert "Conditions of the approval" in letter and match in letter
        with engine.connect() as c:
            (item,) = delegated_items(c, DelegatedDecision.__table__.c.ref == ref)
        assert item["conditions"] == [match, f"{report} (during delivery)"]
    finally:
        engine.dispose()


def test_all_of_them_and_the_stored_scheme_version_judges_later_signatures(
    board, tmp_path: Path
) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    path = write_scheme(tmp_path, requires="\n  - {role: any, at_least: all}")
    ref = request(q, bid, scheme=str(path))["ref"]
    assert dd_row(engine, ref).state == "awaiting_signatures"
    # the file changes (a new version asking only for the Chair) after the request...
    write_scheme(tmp_path, version="t1", requires="\n  - {role: chair, at_least: 1}")
    assert sign(q, ref, CHAIR)["state"] == "awaiting_signatures"  # ...judged by t1 as stored
    assert sign(q, ref, VICE1)["state"] == "awaiting_signatures"
    out = sign(q, ref, VICE2)
    assert out["state"] == "approved"
    assert "every signatory (3 needed): approved by Chris, Vera, Victor — met" in out["why"]
    # the same name and version with other content cannot be used for a new request
    other = new_bid(q, "Other", "10,000")
    refused(
        engine,
        lambda: request(q, other, scheme=str(path)),
        ValidationError,
        "request_delegated_decision: scheme:",
        "content differs",
        "new version",
    )


# ------------------------------------------------------------------ request refusals


def test_requests_outside_the_scheme_are_refused_and_change_nothing(board, tmp_path: Path) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    big = new_bid(q, "Big ask", "80,000")
    refused(
        engine,
        lambda: request(q, big),
        MoneyRuleBroken,
        "request_delegated_decision: amount:",
        "£80,000 is above the per-decision limit of £50,000",
        "delegation 2011.1",
    )
    narrow = write_scheme(tmp_path, pots="[Governance]")
    refused(
        engine,
        lambda: request(q, bid, scheme=str(narrow)),
        ValidationError,
        "request_delegated_decision: pot:",
        "does not let delegated decisions draw on the Projects pot; it lists: Governance",
    )
    refused(
        engine,
        lambda: request(q, bid, amount="40,000"),
        ValidationError,
        "amount: £40,000 is more than the £30,000",
    )
    refused(engine, lambda: request(q, bid, reasons=""), ValidationError, "reasons: is required")
    refused(engine, lambda: request(q, "B-0099"), NotFound, "bid: no bid 'B-0099'")
    refused(engine, lambda: request(q, bid, by=CHAIR), PermissionDenied, "officer")
    g1, g2 = (
        new_bid(q, "Gov one", "30,000", "Governance"),
        new_bid(q, "Gov two", "30,000", "Governance"),
    )
    approve_delegated(q, g1)
    refused(
        engine,
        lambda: request(q, g2),
        MoneyRuleBroken,
        "more than the Governance pot has available: £20,000",
    )
    (shared,) = bid_refs(engine, "Shared ICT")  # decided at the April Board
    refused(engine, lambda: request(q, shared), TransitionRefused, "is approved")
    ref = request(q, bid)["ref"]
    refused(engine, lambda: request(q, bid), ValidationError, f"already has an open request, {ref}")


def test_the_period_limit_counts_approvals_in_the_financial_year(board) -> None:
    q, engine, clock = board
    clock.set(dt.date(2011, 5, 2))
    (bid,) = bid_refs(engine, "Delegated ask")
    for title in ("Fifty one", "Fifty two"):
        approve_delegated(q, new_bid(q, title, "50,000"))
    approve_delegated(q, bid)  # £130,000 approved in 2011/12
    last = new_bid(q, "Last", "30,000")
    refused(
        engine,
        lambda: request(q, last),
        MoneyRuleBroken,
        "£130,000 already approved under delegation in the financial year 2011/12",
        "makes £160,000: above the £150,000 limit",
        "£20,000 is left",
    )
    assert request(q, last, amount="20,000")["amount_pence"] == 2_000_000  # fits exactly
    clock.set(dt.date(2011, 5, 31))  # let it expire, then ask again in the next year
    q.execute("expire_delegated_decisions", {}, "system")
    clock.set(dt.date(2012, 4, 2))
    ref = request(q, last)["ref"]
    sign(q, ref, CHAIR)
    assert sign(q, ref, VICE2)["state"] == "approved"
    assert_money_adds_up(engine)


# ------------------------------------------------------------------ signing refusals


def test_signing_refusals_change_nothing(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    ref = request(q, bid)["ref"]
    sign(q, ref, CHAIR)
    refused(
        engine,
        lambda: sign(q, ref, CHAIR),
        ValidationError,
        f"sign: item: Chris has already signed {ref} on 2011-04-20 (approved)",
    )
    refused(
        engine,
        lambda: sign(q, ref, CHAIR, "decline", reason="changed my mind"),
        ValidationError,
        "already signed",
    )
    refused(
        engine,
        lambda: sign(q, ref, OFFICER),
        PermissionDenied,
        f"Olive may not sign {ref}",
        "only chair, vice_chair sign",
        "Olive has officer",
    )
    refused(
        engine,
        lambda: sign(q, ref, ASH),
        PermissionDenied,
        "Cllr Ash may not sign",
        "Cllr Ash has board_member",
    )
    refused(engine, lambda: sign(q, ref, "system"), PermissionDenied, "may not sign")
    refused(
        engine,
        lambda: sign(q, ref, VICE1, "decline"),
        ValidationError,
        "sign: reason: say why you decline",
    )
    refused(
        engine,
        lambda: sign(q, ref, VICE1, "maybe"),
        ValidationError,
        "'maybe' is not allowed; use one of: approve, decline",
    )
    refused(engine, lambda: sign(q, "DD-0099", VICE1), NotFound, "no delegated decision 'DD-0099'")
    refused(
        engine,
        lambda: sign(q, ref, VICE1, version=1),
        ConflictError,
        f"{ref} was changed by someone else since you loaded it (you saw version 1, it is "
        "now version 2)",
    )
    # a signatory who declares an interest cannot approve
    refused(
        engine,
        lambda: sign(q, ref, VICE1, interest="my partner works for Rutland CC"),
        ValidationError,
        "Vera declares an interest",
        "cannot approve",
    )
    assert dd_row(engine, ref).state == "awaiting_signatures"


def test_an_interest_declared_at_a_meeting_stops_the_signatory_approving(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-MAY",
            "title": "Board",
            "date": "2011-05-04",
            "quorum": 3,
            "members": MEMBERS + ["Vera"],
        },
        OFFICER,
    )
    clock.set(dt.date(2011, 5, 4))
    q.execute(
        "declare_interest",
        {"meeting": "BOARD-MAY", "item": bid, "member": "Vera", "nature": "director of a supplier"},
        OFFICER,
    )
    ref = request(q, bid)["ref"]
    refused(
        engine,
        lambda: sign(q, ref, VICE1),
        ValidationError,
        f"Vera declared an interest in {bid} (director of a supplier) and cannot approve {ref}",
    )
    out = sign(q, ref, VICE1, "decline", reason="conflicted")
    assert out["state"] == "awaiting_signatures"  # Victor may still approve
    assert out["signed"]["interest"] == "director of a supplier"
    sign(q, ref, CHAIR)
    assert sign(q, ref, VICE2)["state"] == "approved"
    with engine.connect() as conn:
        sigs = delegated_items(conn)[0]["signatures"]
    assert [(s["name"], s["decision"], s["interest_declared"]) for s in sigs] == [
        ("Vera", "decline", "director of a supplier"),
        ("Chris", "approve", None),
        ("Victor", "approve", None),
    ]


def test_declaring_an_interest_when_signing_records_it_and_declines(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    ref = request(q, bid)["ref"]
    out = sign(q, ref, VICE2, "decline", interest="Rutland CC is my employer")
    assert out["state"] == "awaiting_signatures"
    with Session(engine) as s:
        interest = s.execute(select(Interest)).scalars().one()
        sig = s.execute(select(Signature)).scalars().one()
    assert (interest.item_ref, interest.meeting_id, interest.nature) == (
        ref,
        None,
        "Rutland CC is my employer",
    )
    assert (sig.decision, sig.interest_declared, sig.reason) == (
        "decline",
        "Rutland CC is my employer",
        "declared an interest: Rutland CC is my employer",
    )


def test_signing_an_expired_request_is_refused(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    ref = request(q, bid)["ref"]  # 2011-04-20: open until 2011-05-18
    sign(q, ref, CHAIR)
    clock.set(dt.date(2011, 5, 18))
    q.execute("expire_delegated_decisions", {}, "system")  # still open on its last day
    assert dd_row(engine, ref).state == "awaiting_signatures"
    clock.set(dt.date(2011, 5, 19))
    refused(
        engine,
        lambda: sign(q, ref, VICE1),
        TransitionRefused,  # before the sweep...
        f"{ref} expired: it was open until 2011-05-18",
    )
    q.execute("expire_delegated_decisions", {}, "system")
    refused(
        engine,
        lambda: sign(q, ref, VICE1),
        TransitionRefused,  # ...and after it
        f"{ref} expired",
        "nothing was committed",
    )


# ------------------------------------------------------------------ decline and expiry


def test_a_declined_request_commits_nothing(db_url: str) -> None:
    q, engine, clock = money_board(db_url)
    try:
        (bid,) = bid_refs(engine, "Delegated ask")
        before = money(engine)
        ref = request(q, bid)["ref"]
        sign(q, ref, CHAIR)
        assert sign(q, ref, VICE1, "decline", reason="not urgent")["state"] == (
            "awaiting_signatures"
        )  # Victor may still approve
        out = sign(q, ref, VICE2, "decline", reason="wait for the Board")
        assert out["state"] == "declined"
        assert "cannot be met" in out["why"]
        assert money(engine) == before
        assert bid_state(engine, bid) == "submitted"
        assert dd_row(engine, ref).decided_on == dt.date(2011, 4, 20)
        # the Chair alone can decline it: no approval is possible without the Chair
        ref2 = request(q, bid)["ref"]
        assert sign(q, ref2, CHAIR, "decline", reason="no")["state"] == "declined"
        assert money(engine) == before
        assert_money_adds_up(engine)
        assert chain_ok(engine)
    finally:
        engine.dispose()


def test_an_expired_request_commits_nothing(board) -> None:
    q, engine, clock = board
    (bid,) = bid_refs(engine, "Delegated ask")
    before = money(engine)
    ref = request(q, bid)["ref"]
    sign(q, ref, CHAIR)
    clock.set(dt.date(2011, 6, 1))
    refused(
        engine,
        lambda: q.execute("expire_delegated_decisions", {"as_of": "2011-07-01"}, OFFICER),
        ValidationError,
        "as_of: 2011-07-01 is after today",
    )
    out = q.execute("expire_delegated_decisions", {}, "system")
    assert out["expired"] == [ref]
    assert q.execute("expire_delegated_decisions", {}, OFFICER)["expired"] == []  # once
    dd = dd_row(engine, ref)
    assert (dd.state, dd.decided_on) == ("expired", dt.date(2011, 5, 19))
    assert money(engine) == before
    assert bid_state(engine, bid) == "submitted"
    with Session(engine) as s:
        told = s.execute(
            select(Outbox).where(Outbox.template == "delegated_decision_outcome")
        ).scalar_one()
    assert "EXPIRED" in body(told.template, told.context)[0]
    # a new request may follow
    assert request(q, bid)["state"] == "awaiting_signatures"
    assert chain_ok(engine)


# ------------------------------------------------------------------ report back


def _three_requests(q, engine, clock) -> tuple[str, str, str, str]:
    """Refs of a DD approved (Delegated ask), one declined and one still open; the
    declined one's bid."""
    (bid,) = bid_refs(engine, "Delegated ask")
    clock.set(dt.date(2011, 5, 2))
    approved = approve_delegated(q, bid)
    other = new_bid(q, "Declined ask", "20,000", "Governance")
    declined = request(q, other)["ref"]
    sign(
        q,
        declined,
        CHAIR,
        "decline",
        reason="the Board should decide this",
        interest="I chair the partnership board",
    )
    clock.set(dt.date(2011, 6, 1))  # open until 29 June: across the June Board
    waiting = request(q, new_bid(q, "Waiting ask", "10,000"))["ref"]
    sign(q, waiting, VICE1)
    return approved, declined, waiting, other


def test_several_delegated_decisions_are_endorsed_in_one_step_or_none(board) -> None:
    q, engine, clock = board
    approved, declined, _, _ = _three_requests(q, engine, clock)
    second = approve_delegated(q, new_bid(q, "Second ask", "10,000"))
    q.execute(
        "schedule_meeting",
        {"ref": "BOARD-JUN", "title": "Board", "date": "2011-06-15", "quorum": 3,
         "members": MEMBERS},
        OFFICER,
    )
    clock.set(dt.date(2011, 6, 15))

    def several(items: list[str]) -> dict:
        return q.execute("endorse_several", {"meeting": "BOARD-JUN", "items": items}, OFFICER)

    # one of them cannot be endorsed: none is, and the refusal names it
    refused(engine, lambda: several([approved, declined, second]), TransitionRefused,
            f"{declined} was declined on 2011-05-02")
    refused(engine, lambda: several([approved, approved]), ValidationError,
            f"endorse_several: items: {approved} given more than once")
    refused(engine, lambda: several([]), ValidationError, "items")
    refused(engine, lambda: q.execute(
        "endorse_several", {"meeting": "BOARD-JUN", "items": [approved]}, ASH
    ), PermissionDenied, "endorse")
    out = several([approved, second])
    assert out == {"meeting": "BOARD-JUN", "endorsed": [approved, second],
                   "endorsed_on": "2011-06-15"}
    assert dd_row(engine, approved).state == dd_row(engine, second).state == "endorsed"
    refused(engine, lambda: several([second]), TransitionRefused,
            f"{second} was already endorsed at BOARD-JUN on 2011-06-15")


def test_the_next_agenda_lists_unreported_decisions_and_endorse_reports_them(board) -> None:
    q, engine, clock = board
    approved, declined, waiting, _ = _three_requests(q, engine, clock)
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-JUN",
            "title": "Board",
            "date": "2011-06-15",
            "quorum": 3,
            "members": MEMBERS,
        },
        OFFICER,
    )
    endorse = lambda item, m="BOARD-JUN", by=OFFICER: q.execute(  # noqa: E731
        "endorse", {"meeting": m, "item": item}, by
    )
    refused(
        engine,
        lambda: endorse(approved),
        ValidationError,
        "BOARD-JUN takes place on 2011-06-15; it cannot endorse before then",
    )
    clock.set(dt.date(2011, 6, 15))
    out = q.execute("record_attendance", {"meeting": "BOARD-JUN", "present": MEMBERS}, OFFICER)
    assert out["agenda"] == [approved, declined]  # decided ones, not the one still open

    never = "endorsing a decision that was never made"
    refused(engine, lambda: endorse("DD-0099"), NotFound, "no delegated decision 'DD-0099'", never)
    refused(
        engine,
        lambda: endorse(waiting),
        TransitionRefused,
        f"{waiting} is still awaiting signatures",
        never,
    )
    refused(
        engine,
        lambda: endorse(declined),
        TransitionRefused,
        f"{declined} was declined on 2011-05-02",
        never,
    )
    refused(engine, lambda: endorse(approved, by=ASH), PermissionDenied, "endorse")
    out = endorse(approved)
    assert out == {
        "item": approved,
        "state": "endorsed",
        "meeting": "BOARD-JUN",
        "endorsed_on": "2011-06-15",
    }
    refused(
        engine,
        lambda: endorse(approved),
        TransitionRefused,
        f"{approved} was already endorsed at BOARD-JUN on 2011-06-15",
    )
    # closing the meeting notes the declined one as reported for information
    assert q.execute("close_meeting", {"meeting": "BOARD-JUN"}, OFFICER)["noted"] == [declined]
    with Session(engine) as s:
        june = s.execute(select(Meeting.id).where(Meeting.ref == "BOARD-JUN")).scalar_one()
    assert dd_row(engine, approved).reported_meeting_id == june
    assert (dd_row(engine, declined).state, dd_row(engine, declined).reported_meeting_id) == (
        "declined",
        june,
    )

    # the waiting one is approved after June: it (only) goes to the September Board
    clock.set(dt.date(2011, 6, 20))
    sign(q, waiting, CHAIR)
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-SEP",
            "title": "Board",
            "date": "2011-09-14",
            "quorum": 3,
            "members": MEMBERS,
        },
        OFFICER,
    )
    clock.set(dt.date(2011, 9, 14))
    out = q.execute("record_attendance", {"meeting": "BOARD-SEP", "present": MEMBERS}, OFFICER)
    assert out["agenda"] == [waiting]
    with engine.connect() as conn:
        sep = delegated_report(conn, "BOARD-SEP")
        jun = delegated_report(conn, "BOARD-JUN")
    assert [d["ref"] for d in sep["decisions"]] == [waiting]
    assert sep["period"]["label"] == "16 June 2011 to 14 September 2011"
    assert [d["ref"] for d in jun["decisions"]] == [approved, declined]  # as reported there
    assert chain_ok(engine)


def test_paper_delegated_renders_signatories_amounts_and_totals(board, sqlite_url: str) -> None:
    q, engine, clock = board
    approved, declined, _, other = _three_requests(q, engine, clock)
    q.execute(
        "schedule_meeting",
        {
            "ref": "BOARD-JUN",
            "title": "Board",
            "date": "2011-06-15",
            "quorum": 3,
            "members": MEMBERS,
        },
        OFFICER,
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("QUORUM_DATABASE_URL", None)

    def paper(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.entry.cli",
                "--db",
                sqlite_url,
                "paper",
                "delegated",
                *extra,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    out = paper("BOARD-JUN")
    assert out.returncode == 0, out.stderr
    md = out.stdout
    assert "# Delegated decisions – 21 April 2011 to 15 June 2011" in md
    assert f"## 1. {approved}: Delegated ask — £30,000, APPROVED" in md
    assert f"## 2. {declined}: Declined ask — £20,000, DECLINED" in md
    # the paper's layout of issue 12: date, amount, budget and balance, purpose, reasons,
    # alternatives rejected, scheme, every signature (in words) and every interest
    assert "Delegated ask (B-0003); for Rutland CC; grant G-0003" in md
    assert "**Budget**: Projects — balance available when requested (2 May 2011): £590,000" in md
    assert "**Budget**: Governance — balance available when requested (2 May 2011): £50,000" in md
    assert "**Date of decision**: 2 May 2011" in md
    assert f"**Reasons**: {REASONS}" in md
    assert f"**Alternatives rejected**: {ALTERNATIVES}" in md
    assert "**Scheme**: delegation 2011.1: the Chair and at least one Vice Chair" in md
    assert "| Chris | Chair | Approved | 2 May 2011 | none |  |" in md
    assert "| Vera | Vice Chair | Approved | 2 May 2011 | none |  |" in md
    assert (
        "| Chris | Chair | Declined | 2 May 2011 | I chair the partnership board | the Board "
        "should decide this |"
    ) in md
    assert "- Chris, 2 May 2011 (in " in md and "): I chair the partnership board" in md
    assert "**That the Board endorses the 1 decision taken under the scheme" in md
    assert "| Approved | 1 | £30,000 |" in md
    assert "| Declined | 1 | £20,000 |" in md
    assert f"Declined ask ({other}); for Melton BC" in md
    out = paper("BOARD-JUN", "--format", "html")
    assert out.returncode == 0, out.stderr
    assert "<h1>Delegated decisions – 21 April 2011 to 15 June 2011</h1>" in out.stdout
    assert "<td>Vera</td><td>Vice Chair</td><td>Approved</td>" in out.stdout
    out = paper("NOPE")
    assert out.returncode == 1 and "error: paper delegated: no meeting 'NOPE'" in out.stderr
    # the same through notifications.papers.render, for a meeting with nothing to report
    with engine.connect() as conn:
        empty = render("delegated", delegated_report(conn, "BOARD-APR"), "md")
    assert "No delegated decisions were taken in this period." in empty


# ------------------------------------------------------------------ the scheme file


def test_the_2011_scheme_still_reads_as_it_did() -> None:
    s = load_scheme("delegation-2011")
    assert (s.name, s.version, s.describe()) == (
        "delegation",
        "2011.1",
        "the Chair and at least one Vice Chair",
    )
    assert (s.per_decision_pence, s.per_period_pence, s.period) == (
        5_000_000,
        15_000_000,
        "financial_year",
    )
    assert s.pots == ("Projects", "Governance") and s.open_for_days == 28
    assert load_scheme("rules/delegation-2011.yaml") is s
    p = s.period_of(dt.date(2012, 3, 31))
    assert (p.start, p.end) == (dt.date(2011, 4, 1), dt.date(2012, 3, 31))
    assert s.check_amount(5_000_001)[0] is False and s.check_amount(5_000_000)[0] is True


def test_evaluation_says_why() -> None:
    s = load_scheme("delegation-2011")
    chair, vera, victor = (
        Signer("Chris", "chair"),
        Signer("Vera", "vice_chair"),
        Signer("Victor", "vice_chair"),
    )
    assert s.evaluate([chair, vera, victor]).outcome == "awaiting"
    e = s.evaluate(
        [
            Signer("Chris", "chair", "approve"),
            Signer("Vera", "vice_chair", "decline"),
            Signer("Victor", "vice_chair", conflicted=True),
        ]
    )
    assert e.outcome == "declined"
    assert e.why == (
        "the Chair (1 needed): approved by Chris — met; at least one Vice Chair (1 needed): no "
        "approval yet; declined by Vera; Victor declared an interest — cannot be met"
    )
    assert [r.status for r in e.requirements] == ["met", "cannot be met"]
    ok = s.evaluate(
        [Signer("Chris", "chair", "approve"), Signer("Vera", "vice_chair", "approve"), victor]
    )
    assert ok.outcome == "approved"
    every = parse_scheme(
        SCHEME_2011.read_text().replace(
            "at_least: 1\n  - role: vice_chair\n    at_least: 1",
            "at_least: 1\n  - role: vice_chair\n    at_least: all",
        )
    )
    assert every.describe() == "the Chair and every Vice Chair"
    assert (
        every.evaluate(
            [Signer("Chris", "chair", "approve"), Signer("Vera", "vice_chair", "approve"), victor]
        ).outcome
        == "awaiting"
    )
    # a person holding both roles counts once, under the first role the scheme lists
    assert s.counting_role({"vice_chair", "chair"}) == "chair"


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"limit": "{}"}, ["test-scheme-t1.yaml: limit: unknown key 'limit'", "limits, pots"]),
        (
            {"limits": '\n  per_decision: "fifty thousand"'},
            ["limits.per_decision: 'fifty thousand' is not an amount in pounds"],
        ),
        ({"limits": "\n  per_decision: -5"}, ["limits.per_decision: -5 is not an amount"]),
        (
            {"limits": '\n  per_decison: "50,000"'},
            ["limits.per_decison: unknown key 'per_decison'", "per_decision, per_period, period"],
        ),
        (
            {"limits": '\n  per_decision: "50,000"\n  per_period: "150,000"\n  period: weekly'},
            ["limits.period: 'weekly' is not allowed", "financial_year"],
        ),
        (
            {
                "limits": (
                    '\n  per_decision: "50,000"\n  per_period: "10,000"\n  period: financial_year'
                )
            },
            ["limits.per_period: £10,000 is below the per-decision limit £50,000"],
        ),
        (
            {"signatories": "[chair, director]"},
            ["signatories[1]: 'director' is not a role that may sign; use chair, vice_chair"],
        ),
        (
            {"requires": "\n  - {role: chair, at_least: 0}"},
            ["requires[0].at_least: 0 is not allowed", "or all"],
        ),
        (
            {"requires": "\n  - {role: treasurer, at_least: 1}"},
            ["requires[0].role: 'treasurer' is not allowed"],
        ),
        (
            {"requires": "\n  - {role: chair, at_least: 1, quorum: 2}"},
            ["requires[0].quorum: unknown key 'quorum'", "role, at_least"],
        ),
        ({"pots": "[]"}, ["pots: [] must be a non-empty list"]),
        ({"open_for_days": "0"}, ["open_for_days: 0 is not allowed", "1 to 366"]),
    ],
)
def test_a_scheme_file_with_a_mistake_names_the_key(
    tmp_path: Path, change: dict, needles: list[str]
) -> None:
    path = write_scheme(tmp_path, **change)
    with pytest.raises(SchemeError) as info:
        load_scheme(str(path))
    for needle in needles:
        assert needle in str(info.value)


def test_a_bad_scheme_refuses_the_request_and_changes_nothing(board, tmp_path: Path) -> None:
    q, engine, _ = board
    (bid,) = bid_refs(engine, "Delegated ask")
    bad = write_scheme(tmp_path, limits='\n  per_decision: "lots"')
    refused(
        engine,
        lambda: request(q, bid, scheme=str(bad)),
        ValidationError,
        "request_delegated_decision: scheme: test-scheme-t1.yaml: limits.per_decision: "
        "'lots' is not an amount in pounds",
    )
    refused(
        engine,
        lambda: request(q, bid, scheme="nosuch"),
        ValidationError,
        "no scheme named 'nosuch'",
    )
    no_version = tmp_path / "v.yaml"
    no_version.write_text(SCHEME_2011.read_text().replace('version: "2011.1"\n', ""))
    refused(
        engine,
        lambda: request(q, bid, scheme=str(no_version)),
        ValidationError,
        "v.yaml: version: missing",
    )
