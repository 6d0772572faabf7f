"""``bm25``: the project's BM25 baseline (``rankers.bm25``) as a signal.

The query (the history text for recommendation) against each candidate's text, IDF within
the example's candidates — exactly the scores ``--methods bm25`` ranks by, so the single-signal
baseline of this signal is the existing ``bm25`` row.
"""

from __future__ import annotations

from typing import Sequence

from ..rankers.bm25 import BM25Ranker
from ..types import RankingExample
from .base import SignalProvider


class BM25Signal(SignalProvider):
    """BM25 score of every candidate (needs the ``baselines`` extra: ``bm25s``)."""

    name = "bm25"

    def __init__(self) -> None:

        self.ranker = BM25Ranker()

    def scores(self, examples: Sequence[RankingExample]) -> list[dict[str, float] | None]:
        out: list[dict[str, float] | None] = []
        for ex in examples:
            s = self.ranker.scores(ex)
            out.append({c.id: float(v) for c, v in zip(ex.candidates, s)})
        return out


__all__ = ["BM25Signal"]
