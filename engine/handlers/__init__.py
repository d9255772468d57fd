"""Command handlers, one module per area. Importing this registers them all."""

from engine.handlers import directory, intake, meetings, programme, rounds  # noqa: F401
