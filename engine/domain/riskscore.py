"""Risk scores as a programme declares them (docs/risks.md).

Two scorings, both giving a whole number from 1 to 9 (so one threshold reads
the same way under either):

- ``score_1_9``: one score, ``6``;
- ``likelihood_x_impact``: likelihood x impact, each 1-3 or high / medium / low (h / m / l),
  written ``3x2``, ``3 x 2``, ``3×2`` or ``high x medium``: the score is the
  product (``3x2`` is 6) and the factors are kept as written out (``3x2``).
"""

from __future__ import annotations

import re

from engine.domain.errors import ValidationError

SCORINGS = ("score_1_9", "likelihood_x_impact")
MAX_SCORE = 9
_LEVELS = {"1": 1, "2": 2, "3": 3, "l": 1, "low": 1, "m": 2, "medium": 2, "med": 2,
           "h": 3, "high": 3}  # fmt: skip
_TIMES = re.compile(r"\s*[x×*]\s*", re.IGNORECASE)


def parse_score(value: object, scoring: str, command: str, field: str) -> tuple[int, str]:
    """(score 1-9, detail): detail is the likelihood x impact factors (``"3x2"``) or ``""``.
    A refusal names the field, the programme's scoring and the forms accepted."""
    given = isinstance(value, str | int) and not isinstance(value, bool)
    text = str(value).strip() if given else ""
    if scoring == "likelihood_x_impact":
        parts = _TIMES.split(text.lower()) if text else []
        if len(parts) == 2 and all(p in _LEVELS for p in parts):
            likelihood, impact = (_LEVELS[p] for p in parts)
            return likelihood * impact, f"{likelihood}x{impact}"
        raise ValidationError(
            f"{command}: {field}: {text or 'nothing'!r} is not a score; this programme scores "
            "risks as likelihood x impact, each 1-3 or high / medium / low: give e.g. "
            "'3x2' or 'high x medium'",
            field=field,
        )
    if text.isdigit() and 1 <= int(text) <= MAX_SCORE:
        return int(text), ""
    raise ValidationError(
        f"{command}: {field}: {text or 'nothing'!r} is not a score; this programme scores "
        f"risks 1-{MAX_SCORE} (a whole number, e.g. 6)",
        field=field,
    )
