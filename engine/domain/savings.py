"""Reading "cashable savings as written" by bid authors.

Bid authors write savings freehand: "2,137,416 5 years", "10m per annum",
"15,000/ 30,000 annual saving", "none specified". :func:`parse_savings` reads
the forms whose meaning is unambiguous and keeps everything else exactly as
written, flagged :attr:`SavingsBasis.UNREADABLE`: it never guesses.

Forms read (case and spacing do not matter; "£", "k" and "m" are allowed on
amounts, which are read by :func:`engine.domain.money.parse_pounds`):

* ``AMOUNT``: a total with no period stated (ONE_OFF), optionally followed by
  "one-off", "total", "in total", "anticipated", "expected", "estimated",
  "projected" or "forecast".
* ``AMOUNT per annum`` / ``per year`` / ``a year`` / ``each year`` / ``p.a.`` /
  ``pa`` / ``annual`` / ``annually`` / ``yearly`` / ``/yr``: PER_ANNUM.
* ``AMOUNT 5 years`` / ``over 5 years`` / ``over five years`` / ``over a 5 year
  period``: OVER_YEARS, a total over that many years (1 to 100).
* ``LOW / HIGH``, ``LOW - HIGH``, ``LOW to HIGH``, ``between LOW and HIGH``,
  optionally followed by an annual phrase (then ``annual`` is True) or by one of
  the ONE_OFF words: RANGE. LOW must not exceed HIGH, and "k"/"m" must be
  written on both ends or neither ("10-20k" is not read).
* Empty text, "none specified", "none", "not stated", "n/a", "nil", "tbc"...:
  NONE_STATED.

The words "cashable", "saving" and "savings" are ignored wherever they appear.
Bounds and approximations ("up to 50,000", "over 50,000", "c. 50k") are not
read: an upper bound is not an amount.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from engine.domain.money import MoneyError, format_pence, parse_pounds

__all__ = ["SavingsBasis", "ParsedSavings", "parse_savings"]

MAX_YEARS = 100


class SavingsBasis(enum.StrEnum):
    ONE_OFF = "one_off"
    PER_ANNUM = "per_annum"
    OVER_YEARS = "over_years"
    RANGE = "range"
    NONE_STATED = "none_stated"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class ParsedSavings:
    text: str  # exactly as written
    basis: SavingsBasis
    amount_pence: int | None  # the (low) amount
    high_pence: int | None  # RANGE only: the upper amount
    years: int | None  # OVER_YEARS only
    annual: bool  # True when the amount(s) are per year
    note: str  # human explanation

    def __post_init__(self) -> None:
        has_amount = self.basis not in (SavingsBasis.NONE_STATED, SavingsBasis.UNREADABLE)
        if has_amount != (self.amount_pence is not None):
            raise ValueError(f"{self.basis.value}: amount_pence must be set iff there is an amount")
        if self.amount_pence is not None and self.amount_pence < 0:
            raise ValueError("amount_pence must not be negative")
        if (self.basis is SavingsBasis.RANGE) != (self.high_pence is not None):
            raise ValueError("high_pence is set for RANGE and only for RANGE")
        if self.high_pence is not None and self.amount_pence is not None:
            if self.high_pence < self.amount_pence:
                raise ValueError("a RANGE's high_pence must not be below its amount_pence")
        if (self.basis is SavingsBasis.OVER_YEARS) != (self.years is not None):
            raise ValueError("years is set for OVER_YEARS and only for OVER_YEARS")
        if self.years is not None and not 1 <= self.years <= MAX_YEARS:
            raise ValueError(f"years must be 1 to {MAX_YEARS}")
        if self.annual and self.basis not in (SavingsBasis.PER_ANNUM, SavingsBasis.RANGE):
            raise ValueError("only PER_ANNUM and RANGE savings can be annual")
        if self.basis is SavingsBasis.PER_ANNUM and not self.annual:
            raise ValueError("PER_ANNUM savings are always annual")

    @property
    def readable(self) -> bool:
        """False only when the text could not be read (and was kept as written)."""
        return self.basis is not SavingsBasis.UNREADABLE

    def annual_pence(self) -> int | None:
        """Average saving per year, where the text gives one; conservative for ranges.

        PER_ANNUM: the amount. OVER_YEARS: the amount divided by the years
        (rounded down). An annual RANGE: its low end. Anything else: None
        (a one-off total says nothing about years).
        """
        if self.basis is SavingsBasis.PER_ANNUM:
            return self.amount_pence
        if self.basis is SavingsBasis.OVER_YEARS:
            assert self.amount_pence is not None and self.years is not None
            return self.amount_pence // self.years
        if self.basis is SavingsBasis.RANGE and self.annual:
            return self.amount_pence
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "basis": self.basis.value,
            "amount_pence": self.amount_pence,
            "high_pence": self.high_pence,
            "years": self.years,
            "annual": self.annual,
            "annual_pence": self.annual_pence(),
            "readable": self.readable,
            "note": self.note,
        }


# --- grammar (applied to lower-cased text with single spaces) -----------------------------

# A loose amount token; parse_pounds decides whether it really is an amount.
_AMT = r"£?\s*[0-9][0-9,]*(?:\.[0-9]+)?[km]?"
# An annual phrase after an amount: " per annum", " p.a.", " annual", "/yr", " / year"...
_ANNUAL = (
    r"(?: (?:per annum|per year|per yr|a year|each year|every year|yearly|annually|annual"
    r"|p\.?a\.?)| ?/ ?(?:annum|year|yr))"
)
_TOTAL = r"(?:one-off|one off|in total|total|anticipated|expected|estimated|projected|forecast)"
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
_YEARS = (
    r"(?:over |across )?(?:a )?(?P<years>[0-9]+|" + "|".join(_NUMBER_WORDS) + r")"
    r"[ -]?(?:years|year|yrs|yr)(?: period)?"
)

_ONE_OFF_RE = re.compile(rf"(?P<amt>{_AMT})(?: {_TOTAL})?")
_PER_ANNUM_RE = re.compile(rf"(?P<amt>{_AMT}){_ANNUAL}")
_OVER_YEARS_RE = re.compile(rf"(?P<amt>{_AMT}) {_YEARS}")
_RANGE_TAIL = rf"(?:(?P<annual>{_ANNUAL})| {_TOTAL})?"
_RANGE_RES = (
    re.compile(rf"(?P<low>{_AMT}) ?(?:/|-|to) ?(?P<high>{_AMT}){_RANGE_TAIL}"),
    re.compile(rf"between (?P<low>{_AMT}) and (?P<high>{_AMT}){_RANGE_TAIL}"),
)
_BOUND_RE = re.compile(
    r"^(?:up to|upto|max(?:imum)?|at least|min(?:imum)?|over|more than|less than|in excess of"
    r"|around|about|approx(?:imately)?\.?|circa|c\.?|~|<|>)\s*[£0-9]"
)
_NONE_STATED = frozenset({
    "none", "none specified", "none stated", "none given", "none identified",
    "not specified", "not stated", "not given", "not known", "not applicable",
    "no savings", "no savings specified", "no cashable savings",
    "n/a", "nil", "tbc", "tbd", "to be confirmed",
})  # fmt: skip
_FILLER = re.compile(r"\b(?:cashable|savings|saving)\b")


def parse_savings(text: str | None) -> ParsedSavings:
    """Read savings as a bid author wrote them; keep the text if it cannot be read exactly."""
    if text is None:
        return _none_stated("")
    if not isinstance(text, str):
        raise TypeError(f"savings text must be str or None, not {type(text).__name__}")
    base = " ".join(text.replace("\u2013", "-").replace("\u2014", "-").split()).lower()
    base = base.rstrip(".").strip()
    if not base or base in _NONE_STATED:
        return _none_stated(text)
    spoken = " ".join(_FILLER.sub(" ", base).split())
    try:
        return _read(text, spoken)
    except MoneyError as exc:
        # "cashable_savings: '12,34' is not ... (write e.g. ...)" -> "'12,34' is not ..."
        return _unreadable(text, exc.message.split(": ", 1)[-1].rsplit(" (", 1)[0])


def _read(text: str, s: str) -> ParsedSavings:
    if m := _ONE_OFF_RE.fullmatch(s):
        amount = _pence(m["amt"])
        return ParsedSavings(
            text,
            SavingsBasis.ONE_OFF,
            amount,
            None,
            None,
            False,
            f"{format_pence(amount)} in total (no period stated)",
        )
    if m := _PER_ANNUM_RE.fullmatch(s):
        amount = _pence(m["amt"])
        return ParsedSavings(
            text,
            SavingsBasis.PER_ANNUM,
            amount,
            None,
            None,
            True,
            f"{format_pence(amount)} per year",
        )
    if m := _OVER_YEARS_RE.fullmatch(s):
        amount = _pence(m["amt"])
        raw = m["years"]
        years = _NUMBER_WORDS[raw] if raw in _NUMBER_WORDS else int(raw)
        if not 1 <= years <= MAX_YEARS:
            return _unreadable(text, f"{raw} years is not a period of 1 to {MAX_YEARS} years")
        plural = "year" if years == 1 else "years"
        return ParsedSavings(
            text,
            SavingsBasis.OVER_YEARS,
            amount,
            None,
            years,
            False,
            f"{format_pence(amount)} over {years} {plural}",
        )
    for pattern in _RANGE_RES:
        if m := pattern.fullmatch(s):
            return _range(text, m)
    if _BOUND_RE.match(s):
        return _unreadable(text, "a bound or an estimate, not an amount")
    return _unreadable(text, "")


def _range(text: str, m: re.Match[str]) -> ParsedSavings:
    low_raw, high_raw = m["low"].strip(), m["high"].strip()
    if low_raw.endswith(("k", "m")) != high_raw.endswith(("k", "m")):
        return _unreadable(text, "'k'/'m' is written on only one end of the range")
    low, high = _pence(low_raw), _pence(high_raw)
    if low > high:
        return _unreadable(text, "the range's low end is above its high end")
    annual = m["annual"] is not None
    when = "per year" if annual else "in total (no period stated)"
    return ParsedSavings(
        text,
        SavingsBasis.RANGE,
        low,
        high,
        None,
        annual,
        f"{format_pence(low)} to {format_pence(high)} {when}",
    )


def _pence(token: str) -> int:
    return parse_pounds(token, field="cashable_savings")


def _none_stated(text: str) -> ParsedSavings:
    return ParsedSavings(
        text, SavingsBasis.NONE_STATED, None, None, None, False, "no savings stated"
    )


def _unreadable(text: str, reason: str) -> ParsedSavings:
    note = f"could not read {text!r}: kept as written"
    if reason:
        note += f" ({reason})"
    return ParsedSavings(text, SavingsBasis.UNREADABLE, None, None, None, False, note)
