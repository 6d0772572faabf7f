"""``outcomes``: each candidate LLM's record on the k past queries most like this one.

From an outcomes file (how each LLM did on past queries; for the benchmark tasks the routing
*training* split, ``from_examples``), the ``k`` most similar past queries (cosine of
all-MiniLM-L6-v2 embeddings) vote: an LLM scores the similarity-weighted mean of its quality
on the neighbours that measured it. It is the LLM's *record* (quality), not the task's
objective: the price and objective are in the prompt already, and the model is to weigh them.
The query itself never votes: past queries with the same text (or the example's
``meta["query_id"]``) are excluded. An LLM no neighbour measured gets the lowest value.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import numpy as np

from ..rankers.knn import _embed_cached, llm_quality
from ..types import RankingExample
from .base import SignalProvider
from .files import Outcome, read_outcomes

DEFAULT_K = 10


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


class OutcomesSignal(SignalProvider):
    """Similarity-weighted mean quality of each LLM on the k nearest past queries."""

    name = "outcomes"
    scenarios = ("routing",)

    def __init__(
        self,
        outcomes: Iterable[Outcome],
        *,
        k: int = DEFAULT_K,
        dense: Any = None,
        model: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"outcomes k must be >= 1, got {k}")
        self.outcomes = list(outcomes)
        self.k = int(k)
        if dense is None:
            from ..rankers.dense import DEFAULT_MODEL, DenseRanker

            dense = DenseRanker(model or DEFAULT_MODEL)
        self.dense = dense
        self.cache_dir = cache_dir  # embeddings of the past queries, shared with the router-kNN baseline
        self._norms = np.array([_norm(o.query) for o in self.outcomes], dtype=object)
        self._ids = np.array([o.id for o in self.outcomes], dtype=object)
        self._emb: np.ndarray | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> "OutcomesSignal":
        return cls(read_outcomes(path), **kwargs)

    @classmethod
    def from_examples(cls, examples: Iterable[RankingExample], **kwargs: Any) -> "OutcomesSignal":
        """Past outcomes from training examples: each query's per-LLM quality (``meta["scores"]``).

        The router tasks ask the same queries under three objectives; each query is kept once.
        """

        seen: set[str] = set()
        recs = []
        for ex in examples:
            if ex.scenario != "routing":
                continue
            q = llm_quality(ex)
            if not q or _norm(ex.query) in seen:
                continue
            seen.add(_norm(ex.query))
            recs.append(Outcome(ex.query, dict(q), str(ex.meta.get("query_id", ex.id))))
        return cls(recs, **kwargs)

    def _embeddings(self) -> np.ndarray:
        if self._emb is None:
            from ..rankers.knn import _embed_cached

            self._emb = _embed_cached(self.dense, [o.query for o in self.outcomes], self.cache_dir)
        return self._emb

    def scores(self, examples: Sequence[RankingExample]) -> list[dict[str, float] | None]:
        if not examples:
            return []
        if not self.outcomes:
            raise ValueError("the outcomes signal has no past queries")
        past = self._embeddings()

        q = _embed_cached(self.dense, [ex.query for ex in examples], self.cache_dir)
        sims = q @ past.T
        out: list[dict[str, float] | None] = []
        for row, ex in zip(sims, examples):
            own = self._norms == _norm(ex.query)
            qid = ex.meta.get("query_id")
            if qid is not None:
                own |= self._ids == str(qid)
            row = np.where(own, -np.inf, row)
            allowed = int((~own).sum())
            nn = [int(j) for j in np.argsort(-row, kind="stable")[: min(self.k, allowed)]]
            values: dict[str, float] = {}
            for c in ex.candidates:
                names = [c.id, str(c.meta.get("name", c.id))]
                num = den = plain = 0.0
                cnt = 0
                for j in nn:
                    rec = self.outcomes[j].scores
                    name = next((n for n in names if n in rec), None)
                    if name is None:
                        continue
                    s = max(float(row[j]), 0.0)
                    num += s * rec[name]
                    den += s
                    plain += rec[name]
                    cnt += 1
                if den > 0:
                    values[c.id] = num / den
                elif cnt:
                    values[c.id] = plain / cnt
            if values:
                low = min(values.values()) - 1.0
            else:
                low = 0.0
            out.append({c.id: values.get(c.id, low) for c in ex.candidates})
        return out


__all__ = ["DEFAULT_K", "OutcomesSignal"]
