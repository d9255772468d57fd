"""Who is acting: a person with roles, or the system itself.

Below every layer that needs it: the command bus checks it, the read side
scopes what it shows by it, the web and the CLI build it.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a person with roles, or the system itself."""

    name: str
    email: str
    roles: frozenset[str]
    person_id: int | None = None
    organisation_id: int | None = None

    @property
    def label(self) -> str:
        return self.email or self.name

    @classmethod
    def system(cls, why: str = "system") -> Actor:
        return cls(name=why, email=why, roles=frozenset({SYSTEM}))
