"""A meeting's numbered action: what, who owns it (a person, a partnership or an
organisation) and by when (a date or a target meeting).

Recorded at (or, while its minutes are open, after) the meeting (``record``);
open until an officer or the Chair closes it as done or dropped, with a note
and who closed it (``complete`` / ``drop``). While open it may be moved to a
new due date or target meeting (``move``). Open actions from earlier meetings
are the next meeting's matters arising (engine/read/actions.py)."""

from workflows.base import Step, Workflow, roles

RECORDERS = roles("officer", "chair", "vice_chair")  # as a meeting's add_action
CLOSERS = roles("officer", "director", "chair", "vice_chair")
OPEN = "open"
CLOSED = ("done", "dropped")

ACTION = Workflow(
    name="action",
    initial="new",
    states={
        "new": "not yet recorded",
        OPEN: "recorded at a meeting; its owner is reminded before it is due and chased after",
        "done": "reported done (with a note and who closed it)",
        "dropped": "no longer needed (with a note and who closed it)",
    },
    steps=[
        Step("record", ("new",), OPEN, RECORDERS, label="record an action at a meeting"),
        Step("move", (OPEN,), "=", CLOSERS, label="a new due date or target meeting"),
        Step("complete", (OPEN,), "done", CLOSERS, label="reported done"),
        Step("drop", (OPEN,), "dropped", CLOSERS, label="dropped"),
    ],
)
