"""Money coming back: clawback recoveries and deposits against a savings target.

A recovery starts when the Board (or its delegated signatories) demands that a
grant be refunded; money recorded against it moves it to part-recovered and
then recovered; what cannot be recovered is written off with an approval.

A deposit is lodged by partner authorities against a savings target and a
date; on or after that date it is settled from the savings returns: refunded
in full if the target was met, otherwise forfeited to its pot."""

from workflows.base import Step, Workflow, roles

DEMANDERS = roles("officer", "chair", "vice_chair")  # the Board's or a DD's decision, recorded
RECEIVERS = roles("officer", "finance")  # who records money received
WRITERS_OFF = roles("director", "chair")
OPEN_RECOVERY = ("demanded", "part_recovered")

RECOVERY = Workflow(
    name="recovery",
    initial="new",
    states={
        "new": "not yet demanded",
        "demanded": "refund demanded from the accountable body; nothing received yet",
        "part_recovered": "some of the demand received; the rest outstanding",
        "recovered": "the whole demand received and returned to the pot",
        "written_off": "the outstanding amount written off, with an approval",
    },
    steps=[
        Step("demand", ("new",), "demanded", DEMANDERS, label="demand a refund of a grant"),
        Step(
            "recover_part",
            OPEN_RECOVERY,
            "part_recovered",
            RECEIVERS,
            label="record money received, leaving some outstanding",
        ),
        Step(
            "recover_in_full",
            OPEN_RECOVERY,
            "recovered",
            RECEIVERS,
            label="record money received that clears the demand",
        ),
        Step("write_off", OPEN_RECOVERY, "written_off", WRITERS_OFF, label="write off the rest"),
    ],
)

SETTLERS = roles("officer", "finance")
DEPOSIT = Workflow(
    name="deposit",
    initial="new",
    states={
        "new": "not yet lodged",
        "lodged": "held against a savings target until its date",
        "refunded": "target met: refunded in full to the partners",
        "forfeited": "target missed: forfeited to the pot",
    },
    steps=[
        Step("lodge", ("new",), "lodged", roles("officer")),
        # officers or finance settle a deposit (issue 13)
        Step("refund", ("lodged",), "refunded", SETTLERS, label="settle: target met"),
        Step("forfeit", ("lodged",), "forfeited", SETTLERS, label="settle: target missed"),
    ],
)
