"""Persistence: the tables, engines and migrations, references, the reference-data cache, the
ledgers and the audit chain. Imports only engine.domain."""
