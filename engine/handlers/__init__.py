"""Command handlers, one module per area. Importing this registers them all."""

from engine import sweep  # noqa: F401  (the deadline sweep command, engine/sweep.py)
from engine.handlers import (  # noqa: F401
    accounts,
    delegation,
    directory,
    grants,
    intake,
    meetings,
    programme,
    recovery,
    returns,
    rounds,
)
