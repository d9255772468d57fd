"""The bid: from submission through scoring to a board decision.

A bid referred back goes to its sponsor, who may amend it and resubmit it;
it is on every meeting's agenda until decided. Decisions are never edited:
`reverse` (a new, audited decision) puts the bid back where it was.

An item that is not scored (an allocation, a bid outside any round, a bid of
a round with ``scoring: optional``) is decided from ``submitted`` by the
``*_unscored`` steps, each guarded by rules/guards.py ``may_decide_unscored``;
:func:`decision_step` names the step a Board decision takes."""

from workflows.base import BACK, Step, Workflow, roles

SPONSOR_OR_OFFICER = roles("sponsor", "officer")
DECIDERS = roles("officer", "chair", "vice_chair")  # who records a board decision
AWAITING_DECISION = ("scored", "deferred", "resubmitted", "referred_back")
# what a decision leaves a bid in (resubmitted: a referral the sponsor acted on)
DECIDED = ("approved", "rejected", "deferred", "referred_back", "resubmitted")
UNSCORED = "_unscored"  # the suffix of the steps that decide an item still submitted
UNSCORED_FROM = ("submitted",)  # where an unscored decision is taken from


def decision_step(outcome: str, state: str) -> str:
    """The step a Board decision ``outcome`` (approve, reject, defer, refer_back)
    takes from ``state``: from ``submitted`` (not scored), its ``_unscored`` step."""
    return f"{outcome}{UNSCORED}" if state in UNSCORED_FROM else outcome


BID = Workflow(
    name="bid",
    initial="new",
    states={
        "new": "not yet submitted",
        "submitted": "received; may be amended until scored",
        "scored": "scored against the round's criteria; awaiting the Board",
        "referred_back": "returned to the sponsor with what is missing",
        "resubmitted": "re-worked after a referral; awaiting the Board again",
        "deferred": "decision put off to a later meeting",
        "approved": "approved; a grant has been made",
        "rejected": "not funded",
        "withdrawn": "withdrawn by the sponsor or an officer",
    },
    steps=[
        Step("submit", ("new",), "submitted", SPONSOR_OR_OFFICER, label="submit a bid"),
        # an allocation (handlers/allocations.py): funding an officer or Director proposes
        Step("propose", ("new",), "submitted", roles("officer", "director"),
             label="propose an allocation"),
        Step(
            "amend",
            ("submitted", "referred_back"),
            "=",
            SPONSOR_OR_OFFICER,
            label="amend before scoring, or while referred back",
        ),
        Step(
            "withdraw",
            ("submitted", "scored", "referred_back", "resubmitted", "deferred"),
            "withdrawn",
            SPONSOR_OR_OFFICER,
        ),
        Step("score", ("submitted", "scored", "resubmitted"), "scored", roles("officer")),
        Step("approve", AWAITING_DECISION, "approved", DECIDERS, rule="pot_can_cover"),
        # the Chair and Vice Chairs between meetings, under the scheme of delegation
        # (workflows/delegated.py): the signature that satisfies the scheme approves
        Step(
            "approve_delegated",
            ("submitted", *AWAITING_DECISION),
            "approved",
            roles("chair", "vice_chair", "board_member", "system"),
            rule="scheme_satisfied",
        ),
        Step("reject", AWAITING_DECISION, "rejected", DECIDERS),
        Step("defer", AWAITING_DECISION, "deferred", DECIDERS),
        Step("refer_back", AWAITING_DECISION, "referred_back", DECIDERS),
        Step("resubmit", ("referred_back",), "resubmitted", SPONSOR_OR_OFFICER),
        # a decision on an item that is not scored: allowed only if it is in no round
        # or its round does not require scoring (rules/guards.py may_decide_unscored)
        *(
            Step(f"{outcome}{UNSCORED}", UNSCORED_FROM, dest, DECIDERS,
                 rule="may_decide_unscored", label=f"{outcome.replace('_', ' ')} unscored")
            for outcome, dest in (("approve", "approved"), ("reject", "rejected"),
                                  ("defer", "deferred"), ("refer_back", "referred_back"))
        ),
        # reverse_decision: a new, audited decision; an approval's grant is cancelled
        # (workflows/grant.py) and a delegated one revoked (workflows/delegated.py)
        Step(
            "reverse",
            DECIDED,
            BACK,
            DECIDERS,
            label="a decision reversed: back to where it was before it",
            back_to=("submitted", *AWAITING_DECISION),
        ),
    ],
)
