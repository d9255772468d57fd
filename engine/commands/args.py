"""Reading a command's arguments with errors that name the field.

Every entry point (CLI, scenario YAML, REST JSON, web form) hands a command a
plain dict; :class:`Args` reads it and raises :class:`ValidationError` saying
which field, what was wrong and what is allowed. Unknown fields are refused
too, so a typo never silently does nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from dateutil import parser as dateparser

from engine.domain.errors import ValidationError
from engine.domain.money import MoneyError, parse_pounds

_DEFAULT_DAY = dt.datetime(2000, 1, 1)
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}


class Args:
    def __init__(self, command: str, data: dict[str, Any] | None) -> None:
        self.command = command
        self.data = dict(data or {})
        self._seen: set[str] = set()

    def _fail(self, name: str, what: str) -> ValidationError:
        return ValidationError(f"{self.command}: {name}: {what}", field=name)

    def has(self, name: str) -> bool:
        return self.data.get(name) not in (None, "")

    def raw(self, name: str) -> Any:
        self._seen.add(name)
        return self.data.get(name)

    def text(
        self, name: str, *, required: bool = True, default: str = "", max_len: int = 500
    ) -> str:
        value = self.raw(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise self._fail(name, "is required")
            return default
        if not isinstance(value, str | int | float):
            raise self._fail(name, f"must be text, got {type(value).__name__}")
        value = str(value).strip()
        if len(value) > max_len:
            raise self._fail(name, f"is {len(value)} characters; at most {max_len} allowed")
        return value

    def pence(self, name: str, *, required: bool = True, allow_zero: bool = False) -> int | None:
        """An amount written in pounds (100000, '100,000', '£1.5m') -> pence."""
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise self._fail(name, "is required (an amount in pounds, e.g. 100,000)")
            return None
        if isinstance(value, bool):
            raise self._fail(name, "must be an amount in pounds, not yes/no")
        try:
            pence = parse_pounds(str(value), field=name)
        except MoneyError as exc:
            raise ValidationError(f"{self.command}: {exc}", field=name) from None
        if pence == 0 and not allow_zero:
            raise self._fail(name, "must be more than £0")
        return pence

    def date(self, name: str, *, required: bool = True) -> dt.date | None:
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise self._fail(name, "is required (a date such as 2011-04-20)")
            return None
        return parse_date(value, f"{self.command}: {name}", field=name)

    def choice(self, name: str, allowed: Iterable[str], *, default: str | None = None) -> str:
        allowed = list(allowed)
        value = self.raw(name)
        if value is None or value == "":
            if default is None:
                raise self._fail(name, f"is required (one of: {', '.join(allowed)})")
            return default
        norm = str(value).strip().lower().replace(" ", "_").replace("-", "_")
        if norm not in allowed:
            raise self._fail(name, f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
        return norm

    def flag(self, name: str, *, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        norm = str(value).strip().lower()
        if norm in YES:
            return True
        if norm in NO:
            return False
        raise self._fail(name, f"{value!r} is not yes or no")

    def integer(
        self, name: str, *, required: bool = True, minimum: int | None = None
    ) -> int | None:
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise self._fail(name, "is required (a whole number)")
            return None
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(str(value).strip())
        except ValueError:
            raise self._fail(name, f"{value!r} is not a whole number") from None
        if minimum is not None and number < minimum:
            raise self._fail(name, f"{number} is below the minimum of {minimum}")
        return number

    def items(self, name: str, *, required: bool = False) -> list:
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise self._fail(name, "is required (a list)")
            return []
        if isinstance(value, str):
            return [v.strip() for v in value.split(";") if v.strip()]
        if not isinstance(value, list):
            raise self._fail(name, f"must be a list, got {type(value).__name__}")
        return value

    def mapping(self, name: str, *, required: bool = True) -> dict:
        value = self.raw(name)
        if value is None:
            if required:
                raise self._fail(name, "is required (a mapping of name: value)")
            return {}
        if not isinstance(value, dict):
            raise self._fail(name, f"must be a mapping of name: value, got {type(value).__name__}")
        return value

    def done(self, *also_allowed: str) -> None:
        """Refuse fields the command does not know."""
        unknown = set(self.data) - self._seen - set(also_allowed) - {"version"}
        if unknown:
            known = sorted(self._seen | set(also_allowed))
            raise ValidationError(
                f"{self.command}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                f"this command takes: {', '.join(known)}",
                field=sorted(map(str, unknown))[0],
            )


def parse_date(value: Any, where: str, field: str | None = None) -> dt.date:
    """A date from a date, ISO text or a day-first British date ('20/04/2011')."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10 and text[4] == "-":
            return dt.date.fromisoformat(text)
        # a fixed default so 'July 2011' reads as 1 July 2011, never as today's day
        return dateparser.parse(text, dayfirst=True, default=_DEFAULT_DAY).date()
    except (ValueError, OverflowError, dateparser.ParserError):
        raise ValidationError(
            f"{where}: {text!r} is not a date (write e.g. 2011-04-20 or 20/04/2011)", field=field
        ) from None
