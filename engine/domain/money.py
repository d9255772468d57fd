"""Money as integer pence: reading pounds as people type them, and writing them back.

Amounts are never floats. :func:`parse_pounds` reads what bid authors and
officers put in spreadsheets ("100,000", "£1.5m", "250k", "1234.56") with
:class:`decimal.Decimal` and exact arithmetic, and refuses anything it cannot
read exactly: no guessing at "12,34", no rounding of fractional pence.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

from engine.domain.errors import ValidationError

__all__ = ["MAX_PENCE", "MoneyError", "check_pence", "format_pence", "parse_pounds"]

_ALLOWED = "write e.g. 100,000 or £1.5m"

# Digits are ASCII only ("\d" would also accept Arabic-Indic and other digits).
# Thousands separators, when used, must group in threes: "1,000,000" yes, "10,00" no.
_AMOUNT = re.compile(
    r"(?:£\s*)?(?P<num>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<frac>[0-9]+))?(?P<suffix>[kKmM]?)"
)
# "-5", "£-5", "−5" (Unicode minus) and accountants' "(5,000)".
_NEGATIVE = re.compile(r"^(?:£\s*)?(?:[-\u2212]|\(\s*£?\s*[0-9])")
_PENCE_PER = {"": 100, "k": 100 * 1_000, "m": 100 * 1_000_000}
# More digits than this is not an amount anyone means (and keeps the arithmetic cheap).
_MAX_DIGITS = 30
# The largest amount Quorum takes anywhere: £1,000,000,000 (docs/security.md "Input limits").
# Far below what a 64-bit column holds (about £92 quadrillion), so no sum of amounts overflows.
MAX_PENCE = 100_000_000_000
_MAX_WORDS = "£1,000,000,000"


class MoneyError(ValidationError, ValueError):
    """An amount of money that cannot be read. The message names the field and the text."""


def parse_pounds(text: str, field: str = "amount") -> int:
    """Read an amount written in pounds ("100,000", "£1.5m", "250k") as integer pence.

    Accepted: an optional "£", digits (optionally grouped in threes by commas),
    an optional decimal part, and an optional "k" (thousand) or "m" (million)
    suffix; surrounding spaces are ignored. Refused with :class:`MoneyError`:
    empty text, negative amounts, fractional pence, and anything else.
    """
    if not isinstance(text, str):
        raise MoneyError(f"{field}: {text!r} is not an amount in pounds ({_ALLOWED})", field=field)
    stripped = text.strip()
    if not stripped:
        raise MoneyError(
            f"{field}: {text!r} is empty; an amount in pounds is needed ({_ALLOWED})", field=field
        )
    match = _AMOUNT.fullmatch(stripped)
    if match is None:
        if _NEGATIVE.match(stripped):
            raise MoneyError(
                f"{field}: {text!r} is negative; amounts must be zero or more ({_ALLOWED})",
                field=field,
            )
        raise MoneyError(f"{field}: {text!r} is not an amount in pounds ({_ALLOWED})", field=field)
    num, frac, suffix = match.group("num", "frac", "suffix")
    digits = num.replace(",", "")
    frac = frac or ""
    if len(digits) + len(frac) > _MAX_DIGITS:
        raise MoneyError(
            f"{field}: {text!r} is too large to be an amount in pounds ({_ALLOWED})", field=field
        )
    with localcontext() as ctx:
        # Enough precision that the multiplication below is exact, never rounded.
        ctx.prec = len(digits) + len(frac) + 12
        pence = Decimal(f"{digits}.{frac}" if frac else digits) * _PENCE_PER[suffix.lower()]
        if pence != pence.to_integral_value():
            raise MoneyError(
                f"{field}: {text!r} has fractions of a penny; "
                f"give pounds to at most 2 decimal places ({_ALLOWED})",
                field=field,
            )
    if pence > MAX_PENCE:
        raise MoneyError(
            f"{field}: {text!r} is more than {_MAX_WORDS}, the most Quorum accepts ({_ALLOWED})",
            field=field,
        )
    return int(pence)


def check_pence(pence: object, field: str = "amount_pence") -> int:
    """An amount already in integer pence (``amount_pence: 125000``): a whole number from 0
    to :data:`MAX_PENCE`; refused with :class:`MoneyError` naming the field otherwise."""
    if isinstance(pence, bool) or not isinstance(pence, int):
        raise MoneyError(
            f"{field}: {pence!r} is not a whole number of pence (write e.g. 125000 for £1,250)",
            field=field,
        )
    if pence < 0:
        raise MoneyError(
            f"{field}: {pence} is negative; amounts must be zero or more (in pence)", field=field
        )
    if pence > MAX_PENCE:
        raise MoneyError(
            f"{field}: {pence} pence is more than {_MAX_WORDS}, the most Quorum accepts",
            field=field,
        )
    return pence


def format_pence(pence: int) -> str:
    """Write integer pence as pounds: "£2,103,290", "£12.50", "-£5"."""
    if isinstance(pence, bool) or not isinstance(pence, int):
        raise TypeError(f"format_pence needs integer pence, not {type(pence).__name__}")
    sign = "-" if pence < 0 else ""
    pounds, rest = divmod(abs(pence), 100)
    if rest:
        return f"{sign}£{pounds:,}.{rest:02d}"
    return f"{sign}£{pounds:,}"
