"""Response models of the REST API that are the web layer's own: errors, who is
signed in, the command list, the audit check, health.

The read endpoints' response models are the views' shapes, defined once in
engine/read/shapes.py (the read side never imports this package). FastAPI
validates every response against its model, so /api/v1/openapi.json stays
truthful (and tests/test_api_schema.py checks it from the outside with
schemathesis). Amounts are integer pence; dates are ISO-8601 text.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorBody(Model):
    error: str  # invalid, unauthenticated, forbidden, not_found, conflict, not_allowed, ...
    message: str
    field: str | None = None
    item: str | None = None


class AuditCheck(Model):
    ok: bool
    events: int
    first_bad_seq: int | None
    message: str


class CommandInfo(Model):
    name: str
    roles: list[str] | None  # None: the item's workflow decides, step by step
    summary: str


class Me(Model):
    name: str
    email: str
    roles: list[str]
    organisation: str | None
    via: str  # session or token


class Health(Model):
    status: str
