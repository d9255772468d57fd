"""The statements one grant's lifecycle costs (issue 15 item 1), per command.

bench/lifecycle.py runs the 36 commands of a lifecycle (round, bid, scoring,
decision, four milestones evidenced, verified and paid, eight returns sent and
accepted, close), each with an idempotency key, and counts at the driver every
statement SQLite runs for each: BEGIN and COMMIT, what goes straight to the
driver (engine/store/rawsql.py) and each row of an executemany. A statement
count, not a clock, so it holds on a loaded machine. A change that sends more
fails here: bring it back down, or raise the budget in the same commit and say
why (a new guarantee, a new business write).
"""

from __future__ import annotations

from bench import lifecycle

# the most statements each command may take (all its calls in the lifecycle alike)
BUDGET = {
    "open_round": 9,
    "submit_bid": 18,
    "close_round": 10,
    "score_round": 19,
    "schedule_meeting": 12,
    "record_attendance": 18,
    "decide": 33,  # +1: the grant's conditions (board-decisions, merged after)
    "submit_evidence": 13,
    "verify_milestone": 16,
    "release_payment": 21,  # +1: no condition before first payment still open
    "submit_return": 13,
    "accept_return": 9,
    "close_grant": 14,
}
TOTAL = 509  # per lifecycle (656 before issue 15's work; 504, then +5: grant conditions)
# what every keyed command runs whatever it does: BEGIN IMMEDIATE, read the audit
# head, claim the key, append the audit event, move the head, mark the key done, COMMIT
GUARANTEES = 7


def test_each_command_of_a_lifecycle_stays_within_its_statements(tmp_path) -> None:
    counted = lifecycle.statements_per_command(f"sqlite:///{tmp_path / 'q.db'}")
    assert [name for name, _ in counted] == [name for name, _, _ in lifecycle.STEPS]
    over = [
        f"{name}: {n} statements (budget {BUDGET[name]})"
        for name, n in counted
        if n > BUDGET[name]
    ]
    assert not over, "; ".join(over)
    # the count sees every statement, those sent straight to the driver included
    assert all(n >= GUARANTEES for _, n in counted), counted
    assert sum(n for _, n in counted) <= TOTAL
