"""A condition of a grant: set by the Board's approval (``decide`` with
``conditions``), copied to the grant and printed in the offer letter; open
until an officer discharges it with the evidence or a note (who and when
recorded). A condition to be met "before first payment" (the default) holds
every payment on the grant while it is open (engine/commands/conditions.py,
asked by ``release_payment``)."""

from workflows.base import Step, Workflow, roles
from workflows.grant import AWARDERS

DISCHARGERS = roles("officer")
OPEN = "open"
MET = "met"

CONDITION = Workflow(
    name="condition",
    initial="new",
    states={
        "new": "not yet set",
        OPEN: "set by the Board's approval; awaiting the evidence that it is met",
        MET: "discharged by an officer, with the evidence or a note",
    },
    steps=[
        Step("set", ("new",), OPEN, AWARDERS, label="set with the approval"),
        Step("discharge", (OPEN,), MET, DISCHARGERS, label="met: discharged by an officer"),
    ],
)
