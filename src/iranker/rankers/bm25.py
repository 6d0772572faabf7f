"""The lexical baseline: BM25 of the query against each example's own candidates.

Each example is its own tiny corpus (its 5–20 candidates), so the IDF is computed within the
example: a word shared by every candidate carries little weight, a word that singles one out
carries much. That is the usual re-ranking setting (score a fixed candidate list) and needs no
global index. The query is the scenario's main input — the user's history text for
recommendation, the question for routing (against the LLM descriptions) and passages.

``bm25s`` is imported on first use, so ``import iranker`` stays cheap without the extra.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..llm.base import MissingExtraError
from ..types import Ranking, RankingExample
from .base import Ranker
from .scores import ranking_from_scores


def query_text(example: RankingExample) -> str:
    """The text a baseline matches candidates against: ``example.query``.

    Falls back to the history list (``meta["history"]``) when ``query`` is empty, so a
    recommendation example built with only a history list still has a query.
    """
    if example.query.strip():
        return example.query
    history = example.meta.get("history") or []
    return "\n".join(str(h) for h in history)


def _import_bm25s() -> Any:
    try:
        import bm25s
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingExtraError("baselines", "bm25s", "BM25Ranker") from e
    return bm25s


class BM25Ranker(Ranker):
    """BM25 (``bm25s``, Lucene variant by default) of the query over each example's candidates.

    Ties — including the all-zero scores of a query with no token in common with any candidate,
    or with no tokens at all — keep the original candidate order, so the baseline is
    deterministic and never worse-than-chance by accident of a sort.
    """

    name = "bm25"

    def __init__(
        self,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        stopwords: str | list[str] | None = "en",
        stemmer: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        self.k1 = k1
        self.b = b
        self.method = method
        self.stopwords = stopwords if stopwords is not None else []
        self.stemmer = stemmer

    def _tokenize(self, bm25s: Any, texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(
            texts,
            stopwords=self.stopwords,
            stemmer=self.stemmer,
            return_ids=False,
            show_progress=False,
        )

    def scores(self, example: RankingExample) -> np.ndarray:
        """BM25 score of every candidate (in candidate order) for the example's query."""
        bm25s = _import_bm25s()
        n = len(example.candidates)
        if n == 0:
            return np.zeros(0)
        docs = self._tokenize(bm25s, [c.text for c in example.candidates])
        query = self._tokenize(bm25s, [query_text(example)])[0]
        if not query or not any(docs):
            # nothing to match (bm25s cannot index an all-empty corpus): every score is 0
            return np.zeros(n)
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        retriever.index(docs, show_progress=False)
        known = [t for t in query if t in retriever.vocab_dict]
        if not known:
            return np.zeros(n)
        return np.asarray(retriever.get_scores(known), dtype=np.float64)

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        """Score and sort each example independently; returns rankings in input order."""
        return [ranking_from_scores(ex, self.scores(ex), self.name) for ex in examples]


__all__ = ["BM25Ranker", "query_text"]
