"""The grant and its milestones: evidence, verification, payment, change, closure.

A grant is active from approval until it is closed (its unspent commitment
released back to the pot) or cancelled (its approval reversed). While it is
active its milestone and funding profile may be re-profiled and its delivery
extended, each with the approval recorded.

Each milestone is paid only against evidence an officer has verified, and
only by someone other than the verifier (four eyes; checked by the handler,
engine/commands/handlers/grants.py, which knows who verified). A milestone may be paid
in parts: ``pay_part`` leaves it part paid, ``pay`` (the payment that brings
it to its full amount) makes it paid. Closing the grant cancels the
milestones that never got evidence."""

from workflows.base import Step, Workflow, roles

OFFICERS = roles("officer")
PAYERS = roles("officer", "finance")
EVIDENCE_FROM = roles("sponsor", "officer")
DECIDERS = roles("officer", "chair", "vice_chair")  # who records (or reverses) a decision
# a committee of board members approving under a scheme of delegation makes the grant too
AWARDERS = DECIDERS | roles("board_member")

# milestone states in which its profile line (due date, amount, outcome) may change
CHANGEABLE = ("planned", "evidence_rejected", "evidenced", "verified", "part_paid")
PAYABLE = ("verified", "part_paid")

GRANT = Workflow(
    name="grant",
    initial="new",
    states={
        "new": "not yet made",
        "active": "awarded; milestones are evidenced, verified and paid",
        "closed": "delivery over; unspent commitment released back to the pot",
        "cancelled": "the approval was reversed; the commitment released",
    },
    steps=[
        Step(
            "award",
            ("new",),
            "active",
            AWARDERS,
            rule="pot_can_cover",
            label="a bid is approved (by the Board, or under delegation)",
        ),
        Step("submit_evidence", ("active",), "=", EVIDENCE_FROM),
        Step("verify", ("active",), "=", OFFICERS),
        Step("reject_evidence", ("active",), "=", OFFICERS),
        Step("pay", ("active",), "=", PAYERS, label="release a payment"),
        Step("reprofile", ("active",), "=", OFFICERS, label="re-profile or add a milestone"),
        Step("extend", ("active",), "=", OFFICERS, label="extend delivery"),
        Step("close", ("active",), "closed", OFFICERS),
        Step("cancel", ("active",), "cancelled", DECIDERS, label="approval reversed"),
    ],
)

MILESTONE = Workflow(
    name="milestone",
    initial="new",
    states={
        "new": "not yet in the bid's profile",
        "planned": "awaiting evidence that its outcome was achieved",
        "evidenced": "evidence submitted; awaiting an officer's verification",
        "evidence_rejected": "evidence rejected with a reason; awaiting new evidence",
        "verified": "evidence verified; payment may be released by someone else",
        "part_paid": "verified and paid in part",
        "paid": "paid in full (or re-profiled down to what was paid)",
        "cancelled": "never evidenced; cancelled when the grant closed",
    },
    steps=[
        # the Director too: the one milestone of an allocation the Director proposes
        Step("plan", ("new",), "planned", EVIDENCE_FROM | roles("director"),
             label="in the bid's profile, or added"),
        Step("submit_evidence", ("planned", "evidence_rejected"), "evidenced", EVIDENCE_FROM),
        Step("verify", ("evidenced",), "verified", OFFICERS),
        Step("reject_evidence", ("evidenced",), "evidence_rejected", OFFICERS),
        Step("pay_part", PAYABLE, "part_paid", PAYERS, label="part payment"),
        Step("pay", PAYABLE, "paid", PAYERS, label="payment of what is left"),
        Step("reprofile", CHANGEABLE, "=", OFFICERS, label="due date, amount or outcome"),
        Step("settle", PAYABLE, "paid", OFFICERS, label="amount re-profiled down to what was paid"),
        Step(
            "cancel", ("planned", "evidence_rejected"), "cancelled", OFFICERS, label="grant closed"
        ),
    ],
)
