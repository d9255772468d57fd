"""A return a grant owes for a period: a quarterly progress report or a
quarterly efficiency-savings return (savings delivered to date, savings
anticipated). The daily sweep creates returns as they fall due
(``fall_due``, in bulk: engine/commands/sweep.py); a sponsor may also submit
one that was never scheduled (it is created and submitted at once). An
officer accepts it or queries it back to the sponsor."""

from workflows.base import Step, Workflow, roles

RETURN = Workflow(
    name="return",
    initial="new",
    states={
        "new": "not yet owed",
        "due": "owed by the sponsor by its due date",
        "submitted": "sent in; awaiting an officer's review",
        "queried": "sent back to the sponsor with a question",
        "accepted": "accepted by an officer; its figures count",
    },
    steps=[
        Step(
            "fall_due",
            ("new",),
            "due",
            roles("officer", "director"),
            label="its period has started (the daily sweep, in bulk)",
        ),
        Step(
            "submit",
            ("new", "due", "submitted", "queried"),
            "submitted",
            roles("sponsor", "officer"),
            label="send in (or correct before review)",
        ),
        Step("accept", ("submitted",), "accepted", roles("officer")),
        Step("query", ("submitted",), "queried", roles("officer")),
    ],
)
