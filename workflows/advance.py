"""An advance payment: money paid on a grant not against a verified milestone
(e.g. an initial sum for partnership and programme development).

Requested with a reason (``request``); paid only when a second person approves
it (``approve``: one PAY movement, so paid ≤ awarded holds as for any payment);
or refused (``refuse``) or withdrawn by the one who asked (``withdraw``). The
guard ``four_eyes`` refuses a decision by the requester.
engine/commands/handlers/partnerships.py."""

from workflows.base import Step, Workflow, roles

REQUESTERS = roles("officer")
DECIDERS = roles("officer", "finance", "director")  # a second person: never the requester
OPEN = "requested"

ADVANCE = Workflow(
    name="advance",
    initial="new",
    states={
        "new": "not yet requested",
        OPEN: "requested with a reason; waiting for a second person's approval",
        "paid": "approved by a second person and paid to the receiving body",
        "refused": "refused: nothing paid",
        "withdrawn": "withdrawn by the one who asked: nothing paid",
    },
    steps=[
        Step("request", ("new",), OPEN, REQUESTERS, label="ask to pay an advance"),
        Step("approve", (OPEN,), "paid", DECIDERS, rule="four_eyes", label="approve and pay"),
        Step("refuse", (OPEN,), "refused", DECIDERS, rule="four_eyes"),
        Step("withdraw", (OPEN,), "withdrawn", REQUESTERS),
    ],
)
