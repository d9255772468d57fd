"""A grant offer letter (issue 16): issued on approval (the original) or when
the grant is varied (re-profiled, a milestone added, delivery extended: a
variation); the recipient's authorised contact accepts it (who, when and the
letter's hash are recorded) or declines it with a reason. A newer letter
issued while one is unanswered supersedes it (the newer one states the whole
offer as it now stands). engine/commands/letters.py issues and supersedes;
engine/commands/handlers/offers.py accepts and declines."""

from workflows.base import Step, Workflow, roles
from workflows.grant import AWARDERS, OFFICERS

# a letter is issued by whoever made or varied the grant (the approval, a change)
ISSUERS = AWARDERS | OFFICERS | roles("director")
RECIPIENTS = roles("sponsor")  # the recipient's authorised contact (the handler checks whose)
OPEN = "issued"
ACCEPTED = "accepted"
SUPERSEDED = "superseded"

OFFER = Workflow(
    name="offer letter",
    initial="new",
    states={
        "new": "not yet issued",
        OPEN: "issued; awaiting the recipient's acceptance",
        ACCEPTED: "accepted by the recipient's authorised contact (the letter's hash recorded)",
        "declined": "declined by the recipient's authorised contact, with the reason",
        SUPERSEDED: "replaced by a newer letter before it was answered",
    },
    steps=[
        Step("issue", ("new",), OPEN, ISSUERS, label="issue the letter"),
        Step("accept", (OPEN,), ACCEPTED, RECIPIENTS, label="accept the offer"),
        Step("decline", (OPEN,), "declined", RECIPIENTS, label="decline the offer"),
        Step("supersede", (OPEN,), SUPERSEDED, ISSUERS,
             label="a newer letter replaces it unanswered"),
    ],
)
