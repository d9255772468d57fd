"""A risk of a programme's risk register (or of one of its grants): numbered,
described, scored before controls (inherent) and after them (residual), with an
owner, a management solution, key controls, indicators and a review date.

Recorded by an officer (``record``); while open its fields may be changed
(``update``: every change audited with the values before and after) and it is
reviewed at meetings (``review``: the meeting, the outcome and the residual
score before and after kept in its history). It is closed when no longer a
risk (``close``, at a review or between meetings) and may be reopened
(``reopen``). engine/commands/handlers/risks.py."""

from workflows.base import Step, Workflow, roles

KEEPERS = roles("officer", "director")  # who keeps the register
# who records a meeting's review (as add_action)
REVIEWERS = roles("officer", "chair", "vice_chair")
OPEN = "open"

RISK = Workflow(
    name="risk",
    initial="new",
    states={
        "new": "not yet recorded",
        OPEN: "on the register: reviewed at meetings; above the programme's threshold it is "
        "brought to officers and the next meeting",
        "closed": "no longer a risk (with the reason and when)",
    },
    steps=[
        Step("record", ("new",), OPEN, KEEPERS, label="record a risk on the register"),
        Step("update", (OPEN,), "=", KEEPERS, label="change its scores, owner or controls"),
        Step("review", (OPEN,), "=", REVIEWERS, label="reviewed at a meeting"),
        Step("close", (OPEN,), "closed", KEEPERS | REVIEWERS, label="no longer a risk"),
        Step("reopen", ("closed",), OPEN, KEEPERS, label="a risk again"),
    ],
)
