"""Command handlers, one module per area. Importing this registers them all."""

from engine.commands.handlers import (  # noqa: F401
    accounts,
    actions,
    delegation,
    directory,
    grants,
    intake,
    meetings,
    partnerships,
    programme,
    recovery,
    returns,
    risks,
    roles,
    rounds,
)
