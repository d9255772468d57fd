"""A bidding round against a pot: open for bids, closed, then scored."""

from workflows.base import Step, Workflow, roles

OFFICERS = roles("officer", "director")

ROUND = Workflow(
    name="round",
    initial="new",
    states={
        "new": "not yet opened",
        "open": "taking bids until its closing date",
        "closed": "no new bids; ready to score",
    },
    steps=[
        Step("open", ("new",), "open", OFFICERS),
        Step("close", ("open",), "closed", OFFICERS),
        Step("score", ("closed",), "=", roles("officer")),
    ],
)
