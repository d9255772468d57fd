"""The actions a page offers: each workflow step shown as a form for the command
that takes it, or with the reason this user may not take it now.

Which steps exist and who may take them come from the item's workflow
(``Workflow.available``); the command's own checks stay the only validation —
a form that should not have been offered is still refused by its command, and
the refusal is shown next to the form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.domain.actor import Actor
from workflows.bid import BID
from workflows.delegated import DELEGATED
from workflows.grant import GRANT, MILESTONE
from workflows.offer import OFFER


@dataclass
class Input:
    name: str
    label: str
    kind: str = "text"  # text, textarea, money, date, int, select, file
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    value: str = ""
    hint: str = ""


@dataclass
class ActionForm:
    id: str  # unique on its page: errors come back to this form
    command: str
    label: str
    hidden: dict[str, str] = field(default_factory=dict)
    inputs: list[Input] = field(default_factory=list)
    unavailable: str | None = None  # why this user cannot take it now
    button: str = ""
    style: str = ""  # "danger" for irreversible steps
    post_to: str = ""  # default: /do/{command}


def _state_reason(wf_name: str, trigger: str, state: str) -> str:
    return f"not possible while the {wf_name} is {state.replace('_', ' ')}"


def bid_actions(bid: dict, actor: Actor, meetings: list[dict]) -> list[ActionForm]:
    """Forms for a bid: amend, withdraw, resubmit, a Board decision, a delegated request."""
    roles = set(actor.roles)
    state = bid["state"]
    avail = BID.available(state, roles)
    ref, version = bid["ref"], str(bid["version"])
    base = {"version": version}
    forms: list[ActionForm] = []

    def add(trigger: str, form: ActionForm, extra_reason: str | None = None) -> None:
        if trigger not in avail:
            return
        form.unavailable = avail[trigger] or extra_reason
        forms.append(form)

    scheduled = [m for m in meetings if m["state"] == "scheduled"]
    meeting_opts = [(m["ref"], f"{m['ref']} — {m['title']} ({m['date']})") for m in scheduled]
    no_meeting = None if scheduled else "no Board meeting is scheduled to decide it"
    votes = [
        Input("votes.for", "Votes for", "int"),
        Input("votes.against", "Votes against", "int"),
        Input("votes.abstain", "Abstentions", "int"),
    ]
    decide_base = {"item": ref, **base}
    add(
        "approve",
        ActionForm(
            "approve",
            "decide",
            "Approve at a Board meeting",
            {**decide_base, "outcome": "approve"},
            [
                Input("meeting", "Meeting", "select", True, meeting_opts),
                Input("amount", "Amount (£)", "money", hint="leave empty for the amount asked"),
                Input("reasons", "Reasons", "textarea"),
                *votes,
            ],
        ),
        no_meeting,
    )
    add(
        "refer_back",
        ActionForm(
            "refer_back",
            "decide",
            "Refer back to the sponsor",
            {**decide_base, "outcome": "refer_back"},
            [
                Input("meeting", "Meeting", "select", True, meeting_opts),
                Input(
                    "missing",
                    "What is missing",
                    "textarea",
                    hint="what the sponsor must supply (empty: what the scoring found missing)",
                ),
                Input("reasons", "Reasons", "textarea"),
                *votes,
            ],
        ),
        no_meeting,
    )
    for trigger, label in (("defer", "Defer to a later meeting"), ("reject", "Reject")):
        add(
            trigger,
            ActionForm(
                trigger,
                "decide",
                label,
                {**decide_base, "outcome": trigger},
                [
                    Input("meeting", "Meeting", "select", True, meeting_opts),
                    Input("reasons", "Reasons", "textarea"),
                    *votes,
                ],
                style="danger" if trigger == "reject" else "",
            ),
            no_meeting,
        )
    if "approve_delegated" in avail:
        request_roles = DELEGATED.step("request").roles
        forms.append(
            ActionForm(
                "request_delegated",
                "request_delegated_decision",
                "Ask the Chair and Vice Chairs to decide between meetings",
                {"bid": ref},
                [
                    Input("amount", "Amount (£)", "money", hint="empty: the amount asked"),
                    Input("reasons", "Reasons", "textarea", True),
                    Input("alternatives", "Alternatives considered and rejected", "textarea", True),
                ],
                unavailable=None
                if request_roles & roles
                else f"needs role {' or '.join(sorted(request_roles))}",
            )
        )
    add(
        "amend",
        ActionForm(
            "amend",
            "amend_bid",
            "Amend the bid",
            {"ref": ref, **base},
            [
                Input("title", "Title", value=bid["title"]),
                Input("grant", "Grant requested (£)", "money"),
                Input("savings", "Savings as written", value=bid["savings_as_written"]),
                Input("reason", "Why", "textarea"),
            ],
        ),
    )
    add(
        "resubmit",
        ActionForm(
            "resubmit",
            "resubmit_bid",
            "Resubmit to the Board",
            {"ref": ref, **base},
            [Input("note", "Note", "textarea")],
        ),
    )
    add(
        "withdraw",
        ActionForm(
            "withdraw",
            "withdraw_bid",
            "Withdraw the bid",
            {"ref": ref, **base},
            [Input("reason", "Reason", "textarea", True)],
            style="danger",
        ),
    )
    if "score" in avail and bid.get("round"):
        forms.append(
            ActionForm(
                "score",
                "score_round",
                f"Score round {bid['round']}",
                {"round": bid["round"]},
                unavailable=avail["score"],
                button="Score the round",
            )
        )
    return forms


def grant_actions(grant: dict, actor: Actor) -> list[ActionForm]:
    """Grant-level forms: add a milestone, extend, close."""
    roles = set(actor.roles)
    avail = GRANT.available(grant["state"], roles)
    ref = grant["ref"]
    forms: list[ActionForm] = []
    if "reprofile" in avail:
        forms.append(
            ActionForm(
                "add_milestone",
                "add_milestone",
                "Add a milestone",
                {"grant": ref},
                [
                    Input("outcome", "Outcome", required=True),
                    Input("due", "Due", "date", True),
                    Input("amount", "Payment (£)", "money", True),
                    Input(
                        "approved_by",
                        "Approved by",
                        required=True,
                        hint="who or which meeting approved it, e.g. Board 12 Jan 2012",
                    ),
                    Input("reason", "Reason", "textarea"),
                ],
                unavailable=avail["reprofile"],
            )
        )
    if "extend" in avail:
        forms.append(
            ActionForm(
                "extend",
                "extend_grant",
                "Extend delivery",
                {"grant": ref},
                [
                    Input("months", "By months", "int"),
                    Input("until", "…or until", "date"),
                    Input("approved_by", "Approved by", required=True),
                    Input("reason", "Reason", "textarea"),
                ],
                unavailable=avail["extend"],
            )
        )
    if "close" in avail:
        forms.append(
            ActionForm(
                "close",
                "close_grant",
                "Close the grant (release what is unspent)",
                {"grant": ref},
                [Input("reason", "Reason", "textarea", True)],
                unavailable=avail["close"],
                style="danger",
            )
        )
    if not avail:
        forms.append(
            ActionForm(
                "none",
                "",
                "No further steps",
                unavailable=_state_reason("grant", "", grant["state"]),
            )
        )
    return forms


OTP_INPUT = Input(
    "otp",
    "Authenticator code",
    hint="the six digits your authenticator app shows now, if your programme asks for a "
    "second factor",
)


def milestone_actions(
    grant: dict, milestone: dict, actor: Actor, verified_by_me: bool, *, otp: bool = False
) -> list[ActionForm]:
    """Forms for one milestone: evidence, verify or reject it, release payment, re-profile."""
    roles = set(actor.roles)
    seq = str(milestone["seq"])
    ref = grant["ref"]
    grant_open = grant["state"] == "active"
    avail = MILESTONE.available(milestone["state"], roles) if grant_open else {}
    key = {"grant": ref, "milestone": seq}
    forms: list[ActionForm] = []
    if "submit_evidence" in avail:
        forms.append(
            ActionForm(
                f"evidence-{seq}",
                "submit_evidence",
                "Submit evidence",
                key,
                [
                    Input("summary", "What was achieved, and where the proof is", "textarea", True),
                    Input(
                        "files",
                        "Files",
                        "file",
                        hint="pdf, png, jpg, docx, xlsx, csv or txt; at most 10 MB each",
                    ),
                ],
                unavailable=avail["submit_evidence"],
                post_to=f"/grants/{ref}/milestones/{seq}/evidence",
            )
        )
    if "verify" in avail:
        forms.append(
            ActionForm(
                f"verify-{seq}",
                "verify_milestone",
                "Verify the evidence",
                key,
                [Input("note", "Note", "textarea")],
                unavailable=avail["verify"],
            )
        )
        forms.append(
            ActionForm(
                f"reject-{seq}",
                "reject_evidence",
                "Reject the evidence",
                key,
                [Input("reason", "Reason", "textarea", True)],
                unavailable=avail["reject_evidence"],
                style="danger",
            )
        )
    if "pay" in avail:
        why = avail["pay"]
        if why is None and verified_by_me:
            why = "you verified this milestone: someone else must release its payment"
        left = milestone["payment_pence"] - milestone["paid_pence"]
        forms.append(
            ActionForm(
                f"pay-{seq}",
                "release_payment",
                "Release payment",
                key,
                [
                    Input(
                        "amount",
                        "Amount (£)",
                        "money",
                        hint=f"empty: what is left (£{left / 100:,.2f})",
                    ),
                    *([OTP_INPUT] if otp else []),
                ],
                unavailable=why,
            )
        )
    if "reprofile" in avail:
        forms.append(
            ActionForm(
                f"reprofile-{seq}",
                "reprofile_milestone",
                "Re-profile",
                key,
                [
                    Input("due", "New due date", "date"),
                    Input("amount", "New amount (£)", "money"),
                    Input("outcome", "New outcome"),
                    Input("approved_by", "Approved by", required=True),
                    Input("reason", "Reason", "textarea"),
                ],
                unavailable=avail["reprofile"],
            )
        )
    return forms


def offer_actions(letters: list[dict], actor: Actor) -> list[ActionForm]:
    """Accept / Decline for each letter awaiting an answer, to a sponsor of its
    recipient (or of the grant's authority); accepting is confirmed by choosing the
    statement that carries the letter's hash (engine/commands/handlers/offers.py)."""
    roles = set(actor.roles)
    forms: list[ActionForm] = []
    for letter in letters:
        avail = OFFER.available(letter["state"], roles)
        if "accept" not in avail:
            continue
        ours = actor.organisation_id in (letter["recipient_id"], letter["grant_body_id"])
        why = avail["accept"] or (
            None if ours else f"only a sponsor of {letter['recipient']} answers it")
        ref, sha = letter["ref"], letter["sha256"]
        base = {"offer": ref, "version": str(letter["version"])}
        forms.append(ActionForm(
            f"accept-{ref}", "accept_offer", f"Accept {ref}", dict(base),
            [Input("sha256", "Confirm", "select", True,
                   [("", "choose…"),
                    (sha, f"I have read {ref} (fingerprint {sha[:12]}…) and accept it for "
                          f"{letter['recipient']}")])],
            unavailable=why, button="Accept the offer"))
        forms.append(ActionForm(
            f"decline-{ref}", "decline_offer", f"Decline {ref}", dict(base),
            [Input("reason", "Why you decline it", "textarea", True)],
            unavailable=why, button="Decline the offer", style="danger"))
    return forms
