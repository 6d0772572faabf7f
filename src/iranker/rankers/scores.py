"""Scores to rankings: the one rule every score-based ranker (BM25, dense, kNN, fusion) uses.

A score ranker produces one number per candidate; the ranking is the candidates by descending
score, ties in the example's original order (stable, so equal scores never reorder by chance),
with the scores kept in ``meta["scores"]`` for the trace and for fusion.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..types import Ranking, RankingExample, Usage


def order_by_scores(candidate_ids: list[str], scores: np.ndarray | Sequence[float]) -> list[str]:
    """Candidate ids by descending score; ties keep the original candidate order (stable)."""
    idx = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [candidate_ids[i] for i in idx]


def score_ranking(example: RankingExample, order: list[str], method: str, **meta: Any) -> Ranking:
    """A ranking made without an LLM (no usage), with ``meta`` as given."""
    return Ranking(example_id=example.id, order=order, usage=Usage(), method=method, meta=meta)


def ranking_from_scores(
    example: RankingExample, scores: np.ndarray | Sequence[float], method: str, **meta: Any
) -> Ranking:
    """``example``'s candidates ordered by ``scores`` (one per candidate, in candidate order),
    the scores recorded by candidate id in ``meta["scores"]`` beside any other ``meta``."""
    ids = example.candidate_ids
    return score_ranking(
        example,
        order_by_scores(ids, scores),
        method,
        **meta,
        scores={cid: float(v) for cid, v in zip(ids, scores)},
    )


__all__ = ["order_by_scores", "ranking_from_scores", "score_ranking"]
