"""Command handlers, one module per area. Importing this registers them all."""

from engine.commands.handlers import (  # noqa: F401
    accounts,
    actions,
    allocations,
    conditions,
    delegation,
    directory,
    grants,
    intake,
    meeting_run,
    meetings,
    offers,
    partnership_money,
    partnerships,
    programme,
    publishing,
    recovery,
    returns,
    risks,
    roles,
    rounds,
)
