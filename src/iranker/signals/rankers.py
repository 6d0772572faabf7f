"""Baselines that keep a signal-reading model honest: one signal alone, and RRF of them all.

A model that copies its best signal has learned nothing, so ``iranker eval`` reports each
signal as a ranker of its own (``--methods cooccur``, ``outcomes``; ``bm25`` and ``dense``
already are) and the reciprocal-rank fusion of every signal an example carries (``rrf``,
``sum_s 1 / (k + rank_s)`` with k = 60, Cormack et al. 2009). Ranks are the ones the prompt
shows (:func:`~iranker.signals.render.signal_ranks`); ties keep the candidate order.
"""

from __future__ import annotations

from typing import Sequence

from ..rankers.base import Ranker
from ..types import Ranking, RankingExample, Usage
from .render import ordered_names, signal_ranks
from .schema import SignalError, candidate_signals, example_signal_names

RRF_K = 60


def _sorted(example: RankingExample, score: dict[str, float]) -> list[str]:
    pos = {c.id: i for i, c in enumerate(example.candidates)}
    return sorted(example.candidate_ids, key=lambda c: (-score[c], pos[c]))


class SignalRanker(Ranker):
    """Ranks by one signal the candidates carry (highest first)."""

    def __init__(self, signal: str) -> None:
        self.signal = signal
        self.name = signal

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        out = []
        for ex in examples:
            missing = [c.id for c in ex.candidates if self.signal not in candidate_signals(c)]
            if missing:
                raise SignalError(
                    f"example {ex.id!r} has no {self.signal!r} signal (candidate {missing[0]!r}); "
                    f"compute it with --signals {self.signal}"
                )
            score = {c.id: candidate_signals(c)[self.signal] for c in ex.candidates}
            out.append(
                Ranking(
                    ex.id, _sorted(ex, score), usage=Usage(), method=self.name, meta={"signal": self.signal}
                )
            )
        return out


class RRFRanker(Ranker):
    """Reciprocal-rank fusion of every signal each example carries (``k`` = 60)."""

    name = "rrf"

    def __init__(self, k: int = RRF_K) -> None:
        if k < 0:
            raise ValueError(f"RRF k must be >= 0, got {k}")
        self.k = k

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        out = []
        for ex in examples:
            names = ordered_names(example_signal_names(ex))
            if not names:
                raise SignalError(
                    f"example {ex.id!r} carries no signals to fuse; compute some with --signals"
                )
            score = {c.id: 0.0 for c in ex.candidates}
            for name in names:
                for cid, r in signal_ranks(ex, name).items():
                    score[cid] += 1.0 / (self.k + r)
            out.append(
                Ranking(
                    ex.id,
                    _sorted(ex, score),
                    usage=Usage(),
                    method=self.name,
                    meta={"fused": names, "k": self.k},
                )
            )
        return out


__all__ = ["RRF_K", "RRFRanker", "SignalRanker"]
