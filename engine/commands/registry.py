"""The command registry: every handler registers itself here with
:func:`command` when its module is imported.

Handlers import this module (and :mod:`engine.commands.uow`), never the bus
(:mod:`engine.commands.service`); the bus imports the handlers package, so
registration happens once, at import, with no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from engine.commands.args import Args
from engine.commands.contracts import CONTRACTS, Contract
from engine.commands.uow import UnitOfWork

Result = dict[str, Any]
"""A command's answer: JSON values by name, printed by the CLI, returned by the
REST API and kept in the command log. The entry points read its fields by name
(replay adds up the sweep's counts), so the values are JSON's ``Any``."""
Handler = Callable[[UnitOfWork, Args], Result]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Handler
    roles: frozenset[str] | None  # None: the item's workflow decides
    summary: str
    contract: type[Contract]  # what it takes (engine/commands/contracts.py)


REGISTRY: dict[str, CommandSpec] = {}


def command(
    name: str, *, roles: Iterable[str] | None = None, summary: str = ""
) -> Callable[[Handler], Handler]:
    """Register a handler. ``roles``: who may call it; leave None when the
    handler asks a workflow, which declares its own roles per step. Its arguments
    are read through the contract of the same name (engine/commands/contracts.py)."""

    def deco(fn: Handler) -> Handler:
        if name in REGISTRY:
            raise ValueError(f"command {name} registered twice")
        if name not in CONTRACTS:
            raise ValueError(f"command {name} has no contract in engine/commands/contracts.py")
        REGISTRY[name] = CommandSpec(
            name,
            fn,
            frozenset(roles) if roles is not None else None,
            summary or (fn.__doc__ or ""),
            CONTRACTS[name],
        )
        return fn

    return deco
