"""A partnership naming (or changing) its accountable body: the council that
receives and answers for the partnership's money.

An officer proposes it (``propose``); nothing changes until a second officer
(or a director) approves it (``approve``: the partnership's accountable body
changes) or refuses it (``refuse``). The guard ``four_eyes`` refuses a decision
by the one who proposed it; the proposer may withdraw it (``withdraw``).
engine/commands/handlers/partnerships.py."""

from workflows.base import Step, Workflow, roles

PROPOSERS = roles("officer", "director")
DECIDERS = roles("officer", "director")  # a second person: never the proposer
OPEN = "proposed"

ACCOUNTABLE_BODY = Workflow(
    name="accountable body change",
    initial="new",
    states={
        "new": "not yet proposed",
        OPEN: "proposed; waiting for a second officer to approve or refuse it",
        "approved": "approved by a second person: the partnership's accountable body changed",
        "refused": "refused by a second person: nothing changed",
        "withdrawn": "withdrawn by the one who proposed it: nothing changed",
    },
    steps=[
        Step("propose", ("new",), OPEN, PROPOSERS, label="name an accountable body"),
        Step("approve", (OPEN,), "approved", DECIDERS, rule="four_eyes"),
        Step("refuse", (OPEN,), "refused", DECIDERS, rule="four_eyes"),
        Step("withdraw", (OPEN,), "withdrawn", PROPOSERS),
    ],
)
