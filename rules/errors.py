"""The one error a rule file raises when it cannot be used (scoring rules,
return schedules, reminder ladders, schemes of delegation, standing orders):
the message names the file and the place in it, and the field it answers for
is the file's kind."""

from __future__ import annotations

from engine.domain.errors import ValidationError


class RuleFileError(ValidationError):
    """A rule file that cannot be used; the message names the file and the place in it."""

    FIELD = "rules"  # each kind of rule file answers for its own field

    def __init__(self, source: str, where: str, message: str) -> None:
        text = f"{source}: {where}: {message}" if where else f"{source}: {message}"
        super().__init__(text, field=self.FIELD)
        self.source = source
        self.where = where
