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
    "open_round": 8,
    "submit_bid": 13,  # -3: its milestones in one INSERT, not one each; -1: the last bid
    # id (its ref) read with the round
    "close_round": 8,  # -1: its bids counted with the round's read
    "score_round": 14,  # -4: old scores made not current returning their points, new
    # scores returning their ids, criteria in one INSERT
    "schedule_meeting": 9,  # -2: its members in one INSERT
    "record_attendance": 14,  # -3: the roll in one UPDATE; no observers, no DELETE
    "decide": 23,  # +1: the grant's conditions (board-decisions, merged after); -9: who
    # sits and who has an interest in one read, the decision's and grant's refs in one,
    # programme and pot named from the directory, a grant just made has no letters to
    # read, the offer's recipient and template read with its terms, and no deposits or
    # repayment instalments read for it
    "submit_evidence": 11,  # -1: the grant and its milestones in one read
    "verify_milestone": 11,  # -4: its grant, milestones, evidence and money in one read
    "release_payment": 13,  # +1: no condition before first payment still open; -2: the
    # programme's payment rules read once (returns late, offer accepted, second factor);
    # -5: its grant, milestones, money, open conditions and last payment id in one read
    "submit_return": 10,  # -2: its grant, its return of the period, the last return id: one read
    "accept_return": 8,
    "close_grant": 9,  # -3: its grant, milestones and money in one read; -1: its pot
    # named from the directory
}
TOTAL = 382  # per lifecycle (656 before issue 15's work; 504, +5: grant conditions; -36:
# the key written done at the end of its run, one statement instead of claim + complete;
# -8: release_payment reads its programme once, not three times; -60: a command on a
# milestone reads in one statement its grant, milestones and what else it needs (money,
# evidence, open conditions, last payment id), submit_return its grant, the period's
# return and the last return id; close_grant names its pot from the directory;
# -23: the once-a-lifecycle commands' rows in one multi-row INSERT or UPDATE, their
# reads merged)
# PostgreSQL runs the same statements since session 9 (725 before: the key was claimed
# in a transaction of its own, and the pool pinged every connection it handed out)
# PostgreSQL: a command's last writes (audit events, head, outbox, notices, key) go as
# one statement (engine/store/tail.py), a round trip each instead of up to five
# (345), and the handlers' one read per command on a milestone or return (-60): 285; the
# once-a-lifecycle commands' rows in one statement and their reads merged (-23): 262
TOTAL_POSTGRESQL = 262
BUDGET_POSTGRESQL = {
    "open_round": 6, "submit_bid": 7, "close_round": 6, "score_round": 11,
    "schedule_meeting": 7, "record_attendance": 12, "decide": 18, "submit_evidence": 7,
    "verify_milestone": 7, "release_payment": 9, "submit_return": 6, "accept_return": 6,
    "close_grant": 7,
}  # fmt: skip
# what every keyed command runs whatever it does: BEGIN IMMEDIATE, read the audit
# head, append the audit event, move the head, write the key done, COMMIT
GUARANTEES = 6
# PostgreSQL: BEGIN, lock the audit head, the one statement ending the command (audit
# events, head, outbox, notices, key: engine/store/tail.py), COMMIT
GUARANTEES_POSTGRESQL = 4


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


def test_a_lifecycle_on_postgresql_takes_no_more_statements(pg_url) -> None:
    counted = lifecycle.statements_per_command(pg_url)
    over = [
        f"{name}: {n} statements (budget {BUDGET_POSTGRESQL[name]})"
        for name, n in counted
        if n > BUDGET_POSTGRESQL[name]
    ]
    assert not over, "; ".join(over)
    assert all(n >= GUARANTEES_POSTGRESQL for _, n in counted), counted
    assert sum(n for _, n in counted) <= TOTAL_POSTGRESQL
