"""Errors a user can cause. Each says what, where, and what is allowed.

Entry points turn these into exit codes (CLI) or HTTP 4xx with a JSON body
(web); none of them is ever shown as a traceback.
"""

from __future__ import annotations


class QuorumError(Exception):
    """Base for every refusal caused by input or by the state of an item."""

    code = "refused"
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, item: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.item = item

    def to_dict(self) -> dict[str, str]:
        body: dict[str, str] = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.item:
            body["item"] = self.item
        return body

    def __str__(self) -> str:
        return self.message


class ValidationError(QuorumError):
    """Input that cannot be accepted (a negative grant, an unreadable date...)."""

    code = "invalid"
    http_status = 422


class NotFound(QuorumError):
    code = "not_found"
    http_status = 404


class PermissionDenied(QuorumError):
    """The actor lacks the role (or scope) the command needs."""

    code = "forbidden"
    http_status = 403


class TransitionRefused(QuorumError):
    """The item's workflow does not allow this step from its current state."""

    code = "not_allowed"
    http_status = 409


class ConflictError(QuorumError):
    """Someone else changed the item first (stale version)."""

    code = "conflict"
    http_status = 409


class MoneyRuleBroken(QuorumError):
    """A money rule would break (a pot overcommitted, a payment above the grant...)."""

    code = "money_rule"
    http_status = 409


class KeyReused(QuorumError):
    """An idempotency key sent again with other arguments (docs/security.md "Idempotency")."""

    code = "idempotency_key_reused"
    http_status = 422


class KeyInProgress(QuorumError):
    """The first request with this idempotency key is still running: retry with the same key."""

    code = "in_progress"
    http_status = 409
