"""The bid: from submission through scoring to a board decision."""

from workflows.base import Step, Workflow, roles

SPONSOR_OR_OFFICER = roles("sponsor", "officer")
DECIDERS = roles("officer", "chair", "vice_chair")  # who records a board decision

BID = Workflow(
    name="bid",
    initial="new",
    states={
        "new": "not yet submitted",
        "submitted": "received; may be amended until scored",
        "scored": "scored against the round's criteria",
        "referred_back": "returned to the sponsor with what is missing",
        "deferred": "decision put off to a later meeting",
        "approved": "approved; becomes a grant",
        "rejected": "not funded",
        "withdrawn": "withdrawn by the sponsor or an officer",
    },
    steps=[
        Step("submit", ("new",), "submitted", SPONSOR_OR_OFFICER, label="submit a bid"),
        Step(
            "amend", ("submitted",), "submitted", SPONSOR_OR_OFFICER, label="amend before scoring"
        ),
        Step(
            "withdraw",
            ("submitted", "scored", "referred_back", "deferred"),
            "withdrawn",
            SPONSOR_OR_OFFICER,
        ),
        Step("score", ("submitted", "scored"), "scored", roles("officer")),
        Step("approve", ("scored", "deferred"), "approved", DECIDERS, rule="pot_can_cover"),
        Step("reject", ("scored", "deferred"), "rejected", DECIDERS),
        Step("defer", ("scored",), "deferred", DECIDERS),
        Step("refer_back", ("scored", "deferred"), "referred_back", DECIDERS),
        Step("resubmit", ("referred_back",), "submitted", SPONSOR_OR_OFFICER),
    ],
)
