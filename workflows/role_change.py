"""A role change: registering a person with a privileged role, or granting or
removing one (officer, director, chair, vice_chair, finance:
engine.store.models.PRIVILEGED_ROLES), needs a second person's approval.

An officer (or a director or the Chair) asks (``request``); nothing changes
until a director or the Chair approves it (``approve``: the roles change, a new
person is registered) or refuses it (``refuse``). The guard ``second_person``
refuses an approval or refusal by the one who asked or by the person whose
roles would change. The one who asked may withdraw it while it waits
(``withdraw``, guard ``own_request``). A request not decided before its expiry
time (QUORUM_ROLE_CHANGE_DAYS) expires (``expire``: the daily sweep, or the
next request) and can no longer be approved.
"""

from workflows.base import Step, Workflow, roles

REQUESTERS = roles("officer", "director", "chair")
APPROVERS = roles("director", "chair")  # a second person: never the asker, never the subject
OPEN = "requested"

ROLE_CHANGE = Workflow(
    name="role change",
    initial="new",
    states={
        "new": "not yet requested",
        OPEN: "requested; waiting for a director or the Chair to approve or refuse it",
        "approved": "approved by a second person: the roles were changed",
        "refused": "refused by a director or the Chair: nothing changed",
        "withdrawn": "withdrawn by the one who asked: nothing changed",
        "expired": "not decided before it expired: nothing changed",
    },
    steps=[
        Step("request", ("new",), OPEN, REQUESTERS, label="ask for a role change"),
        Step("approve", (OPEN,), "approved", APPROVERS, rule="second_person"),
        Step("refuse", (OPEN,), "refused", APPROVERS, rule="second_person"),
        Step("withdraw", (OPEN,), "withdrawn", REQUESTERS, rule="own_request"),
        Step("expire", (OPEN,), "expired", roles("officer", "director", "chair", "system")),
    ],
)
