"""A delegated decision: a request for funding between Board meetings, signed
by the Chair and Vice Chairs under the scheme of delegation (rules/delegation.py),
then reported to the next Board meeting.

Signatures that do not yet decide it leave it awaiting (``sign``); the one that
satisfies the scheme approves it (and commits the money: a grant is made); a
decline that leaves the scheme unsatisfiable declines it; a request nobody
decided by its expiry date expires. A declined or expired request commits
nothing. The Board endorses an approved one (``endorse``); a declined one is
reported for information (``note``, done when the meeting that had it on its
agenda closes). An approval the Board later reverses (reverse_decision: the
grant cancelled, the money released) revokes the delegated decision
(``revoke``): it can no longer be endorsed. A request still awaiting
signatures after its expiry date is expired by the scheduler's daily sweep
(engine/commands/sweep.py), or when a new request for its bid is made."""

from workflows.base import Step, Workflow, roles

REQUESTERS = roles("officer", "director")
# a scheme may list some of these (board_member: a committee's or cluster's members)
SIGNATORIES = roles("chair", "vice_chair", "board_member")
ENDORSERS = roles("officer", "chair", "vice_chair")  # who records the Board's endorsement
OPEN = "awaiting_signatures"
DECIDED = ("approved", "declined")  # what goes to the next Board meeting

DELEGATED = Workflow(
    name="delegated decision",
    initial="new",
    states={
        "new": "not yet requested",
        OPEN: "requested; the signatories approve or decline it under the scheme",
        "approved": "approved under the scheme; the money is committed and a grant made",
        "declined": "declined: the scheme can no longer be satisfied; nothing committed",
        "expired": "not decided by its expiry date; nothing committed",
        "endorsed": "approved, reported to and endorsed by a Board meeting",
        "revoked": "its approval was reversed: the grant cancelled, the money released",
    },
    steps=[
        Step("request", ("new",), OPEN, REQUESTERS, label="request a delegated decision"),
        Step("sign", (OPEN,), "=", SIGNATORIES, label="a signature that does not yet decide it"),
        Step("approve", (OPEN,), "approved", SIGNATORIES, rule="scheme_satisfied"),
        Step("decline", (OPEN,), "declined", SIGNATORIES, rule="scheme_unsatisfiable"),
        Step("expire", (OPEN,), "expired", roles("officer", "director", "system")),
        # after approval, and until it is reported, every other signatory's
        # approval is recorded as a concurrence (the record shows all of them)
        Step("concur", ("approved",), "=", SIGNATORIES, label="a signature after approval"),
        # a signatory declares an interest in the request and stands aside: excused,
        # recorded; while it is open, this may decide it (the rest have all signed)
        Step(
            "stand_aside",
            (OPEN, "approved"),
            "=",
            SIGNATORIES,
            label="declare an interest and stand aside",
        ),
        Step(
            "record_absence",
            (OPEN,),
            "=",
            SIGNATORIES,
            label="a signatory records another as absent (a deputy may then stand in)",
        ),
        Step("endorse", ("approved",), "endorsed", ENDORSERS),
        Step("note", ("declined",), "=", ENDORSERS, label="reported to a meeting for information"),
        Step(
            "revoke",
            ("approved", "endorsed"),
            "revoked",
            ENDORSERS,
            label="the approval it made was reversed",
        ),
    ],
)
