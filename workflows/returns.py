"""A return a grant owes for a period: a quarterly progress report or a
quarterly efficiency-savings return (savings delivered to date, savings
anticipated). The daily sweep creates returns as they fall due
(``fall_due``, in bulk: engine/commands/sweep.py); a sponsor may also submit
one that was never scheduled (it is created and submitted at once). An
officer reviews it (issue 13 item 6): accepts it, accepts it with conditions,
or sends it back to the sponsor as needing revision (with what is missing and
a new due date; ``query`` is the older name of the same outcome: back to the
sponsor with a question, keeping its due date). A return sent back is
outstanding again: chased by the reminders ladder, and sent in again."""

from workflows.base import Step, Workflow, roles

RETURN = Workflow(
    name="return",
    initial="new",
    states={
        "new": "not yet owed",
        "due": "owed by the sponsor by its due date",
        "submitted": "sent in; awaiting an officer's review",
        "queried": "sent back to the sponsor: needs revision (what is missing, or a question)",
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
        Step(
            "accept_with_conditions",
            ("submitted",),
            "accepted",
            roles("officer"),
            label="accept, with conditions the sponsor must meet",
        ),
        Step("query", ("submitted",), "queried", roles("officer")),
        Step(
            "send_back",
            ("submitted",),
            "queried",
            roles("officer"),
            label="needs revision: back to the sponsor with what is missing and a new due date",
        ),
    ],
)
