"""The write side: the command bus, its unit of work and the handlers, one module per area.
Every change of state goes through here."""
