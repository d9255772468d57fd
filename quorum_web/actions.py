"""The actions a page offers: each workflow step shown as a form for the command
that takes it, or with the reason this user may not take it now.

Which steps exist and who may take them come from the item's workflow
(``Workflow.available``); the command's own checks stay the only validation —
a form that should not have been offered is still refused by its command, and
the refusal is shown next to the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.commands.service import REGISTRY
from engine.domain.actor import Actor
from engine.domain.errors import QuorumError
from workflows.action import ACTION
from workflows.bid import BID
from workflows.delegated import DELEGATED
from workflows.grant import GRANT, MILESTONE
from workflows.meeting import MEETING
from workflows.offer import OFFER


@dataclass
class Input:
    name: str
    label: str
    kind: str = "text"  # text, textarea, money, date, int, select, checkboxes, file
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


# ------------------------------------------------------------------ plain words

# a refusal's prefixes ("submit_bid: title: ...") name the command and the field for
# the CLI and the API; a page shows the message at the field instead
_PREFIX = re.compile(r"^([A-Za-z_][\w .\[\]-]{0,80}?): ")
_SNAKE = re.compile(r"(?<![\w@./-])([a-z]+(?:_[a-z]+)+)(?![\w@/-])")
_PENCE = re.compile(r"\b([a-z]+) pence\b")
# command-line advice a page must not give: what the page says instead
CLI_ADVICE: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"\(known authorities are listed by 'quorum orgs list'\)"),
        "(the Authorities page lists them)",
    ),
    (re.compile(r"\s*\([^()]*'quorum [^']*'[^()]*\)"), ""),
    (re.compile(r"(?:run|use|see) '?quorum [a-z -]+'?"), "ask an officer"),
]
PAGE_PREFIXES = {"round whatif"}  # a page's own refusals (quorum_web/pages.py)
_STARTS_WITH_VERB = ("is ", "are ", "must ", "should ", "cannot ", "can ", "has ", "needs ")


def _is_name(prefix: str, fld: str | None) -> bool:
    """A prefix that names a command or a field, not words of the message."""
    bare = prefix.strip()
    if bare in REGISTRY or bare.replace(" ", "_") in REGISTRY or bare in PAGE_PREFIXES:
        return True
    if fld and (bare == fld or bare.split(".")[0].split("[")[0] == fld):
        return True
    return re.fullmatch(r"[a-z_]+(?:\.[^:]+|\[\d+\](?:\.[a-z_]+)?)?", bare) is not None and (
        "_" in bare or "." in bare or "[" in bare or bare == fld
    )


def plain_message(message: str, fld: str | None = None) -> str:
    """A refusal as a page shows it: no command name, no field name before it (the
    page shows it at the field), no snake_case, no command-line advice."""
    text = message.strip()
    named = ""
    for _ in range(3):
        found = _PREFIX.match(text)
        if found is None or not _is_name(found.group(1), fld):
            break
        named = found.group(1)
        text = text[found.end() :]
    for pattern, instead in CLI_ADVICE:
        text = pattern.sub(instead, text)
    line = re.fullmatch(r"([a-z_]+)\[(\d+)\]\.([a-z_]+)", named or "")
    if line:  # a line of a repeated group: the summary must still say which line
        text = f"{words_of(line.group(1)).capitalize()} {line.group(2)}, " \
               f"{words_of(line.group(3))}: {text}"
    simple = named and re.fullmatch(r"[a-z_]+", named) and named not in REGISTRY
    if simple and text.startswith(_STARTS_WITH_VERB):
        text = f"{words_of(named).capitalize()} {text}"
    text = _SNAKE.sub(lambda m: m.group(1).replace("_", " "), text)
    text = _PENCE.sub(lambda m: m.group(1), text)
    return text or message


def words_of(name: str) -> str:
    """A field's name in words: ``starts_on`` -> "starts on", ``pots.Main`` -> "Main"."""
    last = name.split(".")[-1] if "." in name else name.split("[")[0]
    return last.replace("_", " ")


def form_error(form_id: str, exc: QuorumError, values: dict) -> dict:
    """What a page needs to show a refusal the GOV.UK way: the message in plain words
    (once in the summary at the top, once at the field) and the anchor the summary
    links to (the field's input, or the form when no field of it is named)."""
    # members[2] is the members field; votes.for stays itself (an input of its own)
    # progress[2].rag is an input of its own (a line of a repeated group)
    shown = re.sub(r"\[\d+\]$", "", exc.field) if exc.field else None
    anchor = f"f-{form_id}-{shown.replace('.', '-')}" if shown else f"form-{form_id}"
    return {
        "form": form_id,
        "message": plain_message(exc.message, exc.field),
        "field": shown,
        "anchor": anchor,
        "fields": values,
        "exc": exc,
    }


def _state_reason(wf_name: str, trigger: str, state: str) -> str:
    return f"not possible while the {wf_name} is {state.replace('_', ' ')}"


def pounds(pence: int) -> str:
    """Pounds with pence, as a confirmation states them: "£100,000.00", "-£5.00"."""
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}£{whole:,}.{part:02d}"


def pot_input(pots: list[dict], hint: str = "") -> Input:
    """A select of the pots, each with the balance it has available now."""
    return Input(
        "pot",
        "Pot the money comes from",
        "select",
        False,
        [
            (p["name"], f"{p['name']} ({p['programme']}): {pounds(p['available_pence'])} "
             "available")
            for p in pots
        ],
        hint=hint,
    )


def delegated_conditions_input() -> Input:
    """The conditions a delegated approval is asked to carry (as a Board's: one per
    line; engine/commands/conditions.py reads them)."""
    return Input(
        "conditions", "Conditions of the approval (optional)", "textarea",
        hint="One condition per line. Each must be met (an officer records the evidence) "
        "before the first payment; end a line with \u201c(during delivery)\u201d for one that "
        "does not hold the payments.")


def delegated_request_form(any_waiting: bool, pots: list[dict], actor: Actor) -> ActionForm:
    """Ask the Chair and Vice Chairs to decide a bid between meetings: the bid (its
    reference, typed: the command refuses a bid in the wrong state by name, and the
    refusal comes back at the field), the pot (with its balance), the amount, the
    reasons and the alternatives. ``any_waiting``: is any bid in a state a delegated
    decision could approve (the page reads no bid itself: it stays as fast at
    100,000 bids as at 10)."""
    request_roles = DELEGATED.step("request").roles
    why = None if request_roles & set(actor.roles) else (
        f"needs role {' or '.join(sorted(request_roles))}")
    if why is None and not any_waiting:
        why = "no bid is awaiting a decision"
    *most, last = [s.replace("_", " ") for s in BID.step("approve_delegated").source]
    states = f"{', '.join(most)} or {last}" if most else last
    return ActionForm(
        "request_delegated",
        "request_delegated_decision",
        "Ask the Chair and Vice Chairs to decide a bid between meetings",
        {},
        [
            Input("bid", "Bid", "text", True,
                  hint=f"The bid's reference, as on its page; a bid {states}. "
                  "A bid's own page offers this request too."),
            pot_input(pots, "empty: the bid's own pot"),
            Input("amount", "Amount (£)", "money", hint="empty: the amount asked"),
            Input("reasons", "Why it cannot wait for the next Board meeting", "textarea", True),
            Input("alternatives", "Alternatives considered and rejected", "textarea", True),
            delegated_conditions_input(),
        ],
        unavailable=why,
        button="Send the request",
    )


@dataclass
class BoardItem:
    """Where a bid is decided at a meeting: its item page on a scheduled agenda."""

    meeting: str
    title: str
    date: str
    href: str


def board_items(bid: dict, actor: Actor, meetings: list[dict]) -> tuple[list[BoardItem], str]:
    """The agenda items a bid may be decided on (each page asks for an explicit
    outcome and confirms the money), and why none is offered when none is."""
    avail = BID.available(bid["state"], set(actor.roles))
    steps = [t for t in ("approve", "refer_back", "defer", "reject") if t in avail]
    if not steps:
        return [], ""
    why = next((avail[t] for t in steps if avail[t]), None)
    if why:
        return [], why
    items = [
        BoardItem(m["ref"], m["title"], m["date"],
                  f"/meetings/{m['ref']}/items/{m['item'] + 1}")
        for m in meetings
        if m["state"] == "scheduled" and m["item"] is not None
    ]
    return items, "" if items else "it is not on the agenda of a scheduled Board meeting"


def bid_actions(
    bid: dict, actor: Actor, meetings: list[dict], pots: list[dict] | None = None
) -> list[ActionForm]:
    """Forms for a bid: amend, withdraw, resubmit, a delegated request. A Board decision
    is taken on the bid's agenda item, with its confirmation (:func:`board_items`)."""
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

    if "approve_delegated" in avail:
        request_roles = DELEGATED.step("request").roles
        forms.append(
            ActionForm(
                "request_delegated",
                "request_delegated_decision",
                "Ask the Chair and Vice Chairs to decide between meetings",
                {"bid": ref},
                [
                    *([pot_input(pots, "empty: the bid's own pot" if bid.get("pot")
                                 else "this bid names no pot: choose one")]
                      if pots is not None else []),
                    Input("amount", "Amount (£)", "money", hint="empty: the amount asked"),
                    Input("reasons", "Reasons", "textarea", True),
                    Input("alternatives", "Alternatives considered and rejected", "textarea", True),
                    delegated_conditions_input(),
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


def meeting_action_forms(
    meeting: dict, later: list[dict], actor: Actor
) -> dict[str, ActionForm]:
    """A meeting's action register: record an action (owner, and a due date or a
    later meeting) and, for each open action, close it as done or dropped."""
    roles = set(actor.roles)
    ref = meeting["ref"]
    steps = MEETING.available(meeting["state"], roles)
    record_why = steps.get("add_action", _state_reason("meeting", "", meeting["state"]))
    if record_why is None and not roles & ACTION.step("record").roles:
        record_why = f"needs role {' or '.join(sorted(ACTION.step('record').roles))}"
    forms = {
        "record": ActionForm(
            "record_action",
            "record_action",
            "Record an action",
            {"meeting": ref},
            [
                Input("what", "What is to be done", "textarea", True),
                Input("owner", "Owner", required=True, hint="a person's name or email, or an "
                      "organisation's name"),
                Input(
                    "owner_kind",
                    "The owner is",
                    "select",
                    True,
                    [("person", "a person"), ("partnership", "a partnership"),
                     ("organisation", "an organisation")],
                ),
                Input("due", "Due", "date", hint="a due date, or a later meeting below"),
                Input(
                    "target_meeting",
                    "…or report to",
                    "select",
                    False,
                    [(m["ref"], f"{m['title']} ({m['date']})") for m in later],
                ),
            ],
            unavailable=record_why,
            button="Record the action",
        )
    }
    for a in meeting["actions"]:
        avail = ACTION.available(a["state"], roles)
        if "complete" not in avail:
            continue
        forms[f"close-{a['number']}"] = ActionForm(
            f"close-{a['number']}",
            "close_action",
            f"Close action {a['number']}",
            {"action": a["ref"]},
            [
                Input("outcome", "Outcome", "select", True,
                      [("done", "done"), ("dropped", "dropped")]),
                Input("reason", "Note", "textarea", True, hint="goes on the minutes"),
            ],
            unavailable=avail["complete"],
            button=f"Close action {a['number']}",
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
