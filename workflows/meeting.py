"""A Board meeting: scheduled, attendance taken, decisions and actions minuted."""

from workflows.base import Step, Workflow, roles

OFFICERS = roles("officer", "director")
CLERKS = roles("officer", "chair", "vice_chair")

MEETING = Workflow(
    name="meeting",
    initial="new",
    states={
        "new": "not yet scheduled",
        "scheduled": "on the calendar; attendance, interests, decisions and actions recorded",
        "closed": "minutes final",
    },
    steps=[
        Step("schedule", ("new",), "scheduled", OFFICERS),
        Step("record_attendance", ("scheduled",), "=", CLERKS),
        Step("declare_interest", ("scheduled",), "=", roles("board_member", "chair",
                                                            "vice_chair", "officer")),
        Step("decide", ("scheduled",), "=", CLERKS),
        Step("add_action", ("scheduled", "closed"), "=", CLERKS),
        Step("close", ("scheduled",), "closed", CLERKS),
        # the papers go on the public register (docs/publishing.md); once only
        Step("publish_papers", ("scheduled", "closed"), "=", OFFICERS,
             label="publish the papers on the public register"),
        # issue 12: the agenda's order and its report items; a report required of a
        # later meeting (docs/meetings.md)
        Step("order_agenda", ("scheduled",), "=", CLERKS),
        Step("add_report_item", ("scheduled",), "=", CLERKS),
        Step("require_report", ("scheduled",), "=", CLERKS),
    ],
)
