"""``dense``: the project's dense baseline (``rankers.dense``, all-MiniLM-L6-v2) as a signal.

Cosine similarity of the query (the history, most recent first, for recommendation) and each
candidate: the scores ``--methods dense`` ranks by. All texts of a batch are embedded in one
pass; the encoder is the cached one every dense user shares.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..rankers.knn import _embed_cached
from ..types import RankingExample
from .base import SignalProvider


class DenseSignal(SignalProvider):
    """Cosine similarity of query and candidate embeddings (the ``baselines`` extra)."""

    name = "dense"

    def __init__(
        self,
        model: str | None = None,
        *,
        dense: Any = None,
        threads: int | None = None,
        cache_dir: Any = None,
    ) -> None:
        if dense is None:
            from ..rankers.dense import DEFAULT_MODEL, DenseRanker

            dense = DenseRanker(model or DEFAULT_MODEL, threads=threads)
        self.dense = dense
        self.cache_dir = cache_dir  # with one (``iranker eval``: DIR/cache), a rerun embeds nothing again

    def scores(self, examples: Sequence[RankingExample]) -> list[dict[str, float] | None]:
        import numpy as np

        queries = [self.dense.query_for(ex) for ex in examples]  # DenseRanker.rank's texts, in its order
        texts: dict[str, int] = {}
        for q, ex in zip(queries, examples):
            texts.setdefault(q, len(texts))
            for c in ex.candidates:
                texts.setdefault(c.text, len(texts))
        emb = _embed_cached(self.dense, list(texts), self.cache_dir) if texts else None
        out: list[dict[str, float] | None] = []
        for q, ex in zip(queries, examples):
            cand = emb[[texts[c.text] for c in ex.candidates]]
            scores = (cand @ emb[texts[q]]).astype(np.float64)
            out.append({c.id: float(v) for c, v in zip(ex.candidates, scores)})
        return out


__all__ = ["DenseSignal"]
