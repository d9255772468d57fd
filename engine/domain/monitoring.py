"""What a monitoring or progress return reports besides savings (issue 13 item 6):
each milestone's or outcome's status (RAG: on track, at risk, off track) and the
overall status, which is the worst of its lines (docs/returns.md "Monitoring
returns"). The words are in engine/domain/words.py (``rag_words``)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.domain.words import RAG_WORDS

__all__ = ["RAGS", "RED", "REVIEW_OUTCOMES", "overall_rag"]

RAGS: tuple[str, ...] = tuple(RAG_WORDS)  # best to worst: on_track, at_risk, off_track
RED = "off_track"
# an officer's review of a submitted return: the outcome -> what it means
REVIEW_OUTCOMES: dict[str, str] = {
    "accepted": "accepted",
    "accepted_with_conditions": "accepted with conditions",
    "needs_revision": "needs revision",
}


def overall_rag(lines: Iterable[str]) -> str:
    """The worst status of the lines ("" when there are none)."""
    worst = -1
    for code in lines:
        worst = max(worst, RAGS.index(code))
    return RAGS[worst] if worst >= 0 else ""
