"""Reading a command's arguments with errors that name the field.

Every entry point (CLI, scenario YAML, REST JSON, web form) hands a command a
plain dict. The command bus gives the handler an :class:`Args` over it with
the command's contract (engine/commands/contracts.py): on the handler's first
read the whole dict is read through the contract, once (after the handler's
own role check), and ``text``/``pence``/``date``... return the contract's
typed values. A field's rules (required, length, zero allowed...) are the
contract's; the keywords the handlers still pass say the same for the reader.

Without a contract (the nested values a handler reads itself, such as one
milestone of a profile), each call reads its field with the readers of
engine/domain/fields.py, and :meth:`Args.done` refuses fields nobody read.
Either way :class:`ValidationError` says which field, what was wrong and what
is allowed, and unknown fields are refused, so a typo never silently does
nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Literal, overload

from engine.commands.contracts import VERSION, Contract
from engine.domain import fields
from engine.domain.errors import ValidationError
from engine.domain.fields import NO, YES, FieldProblem, parse_date

__all__ = ["NO", "YES", "Args", "parse_date"]


class Args:
    def __init__(
        self,
        command: str,
        data: dict[str, Any] | None,
        contract: type[Contract] | None = None,
        typed: dict[str, Any] | None = None,
    ) -> None:
        """``typed``: ``contract.read(data)`` when the caller already has it (the bus
        reads a keyed command's arguments for the key's fingerprint)."""
        self.command = command
        if data is not None and not isinstance(data, dict):  # a scenario's "programme: x"
            raise ValidationError(
                f"{command}: the arguments must be a mapping of name: value, "
                f"got {type(data).__name__}"
            )
        self.data = dict(data or {})
        self._contract = contract
        self._typed: dict[str, Any] | None = typed if contract is not None else None
        self._seen: set[str] = set()

    def _values(self) -> dict[str, Any] | None:
        if self._typed is None and self._contract is not None:
            self._typed = self._contract.read(self.data)
        return self._typed

    def _read(self, name: str, reader: Any, *args: Any, **opts: Any) -> Any:
        self._seen.add(name)
        typed = self._values()
        if typed is not None:
            if name in typed:
                return typed[name]
            if name != VERSION:
                raise KeyError(f"the contract of {self.command} has no field {name!r}")
        try:
            return reader(self.data.get(name), name, *args, **opts)
        except FieldProblem as problem:
            what = f"{self.command}: {problem.detail}"
            raise ValidationError(what, field=problem.field) from None

    def has(self, name: str) -> bool:
        return self.data.get(name) not in (None, "")

    def raw(self, name: str) -> Any:
        return self._read(name, _as_given)

    # Each reader below returns what the contract (or the reader of
    # engine/domain/fields.py) made of the field: ``_read`` is untyped because
    # the contract's values come back by name, so each states its type here.
    # ``required=True`` (the default) never gives None: the overloads say so.

    def text(
        self, name: str, *, required: bool = True, default: str = "", max_len: int = 500
    ) -> str:
        value: str = self._read(
            name, fields.text, required=required, default=default, max_len=max_len
        )
        return value

    @overload
    def pence(self, name: str, *, required: Literal[True] = ..., allow_zero: bool = ...) -> int: ...
    @overload
    def pence(self, name: str, *, required: bool, allow_zero: bool = ...) -> int | None: ...
    def pence(self, name: str, *, required: bool = True, allow_zero: bool = False) -> int | None:
        """An amount written in pounds (100000, '100,000', '£1.5m') -> pence."""
        value: int | None = self._read(name, fields.pence, required=required, allow_zero=allow_zero)
        return value

    @overload
    def date(self, name: str, *, required: Literal[True] = ...) -> dt.date: ...
    @overload
    def date(self, name: str, *, required: bool) -> dt.date | None: ...
    def date(self, name: str, *, required: bool = True) -> dt.date | None:
        value: dt.date | None = self._read(name, fields.date, required=required)
        return value

    def choice(self, name: str, allowed: Iterable[str], *, default: str | None = None) -> str:
        value: str = self._read(name, fields.choice, allowed, default=default)
        return value

    def flag(self, name: str, *, default: bool = False) -> bool:
        value: bool = self._read(name, fields.flag, default=default)
        return value

    @overload
    def integer(
        self, name: str, *, required: Literal[True] = ..., minimum: int | None = ...
    ) -> int: ...
    @overload
    def integer(self, name: str, *, required: bool, minimum: int | None = ...) -> int | None: ...
    def integer(
        self, name: str, *, required: bool = True, minimum: int | None = None
    ) -> int | None:
        value: int | None = self._read(name, fields.integer, required=required, minimum=minimum)
        return value

    def items(self, name: str, *, required: bool = False) -> list[Any]:
        value: list[Any] = self._read(name, fields.items, required=required)
        return value

    def mapping(self, name: str, *, required: bool = True) -> dict[str, Any]:
        value: dict[str, Any] = self._read(name, fields.mapping, required=required)
        return value

    def done(self, *also_allowed: str) -> None:
        """Refuse fields the command does not know (its contract has refused them already)."""
        if self._contract is not None:
            self._values()
            return
        unknown = set(self.data) - self._seen - set(also_allowed) - {VERSION}
        if unknown:
            known = sorted(self._seen | set(also_allowed))
            raise ValidationError(
                f"{self.command}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                f"this command takes: {', '.join(known)}",
                field=sorted(map(str, unknown))[0],
            )


def _as_given(value: Any, name: str) -> Any:
    return value
