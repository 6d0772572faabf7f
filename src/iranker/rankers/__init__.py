"""Rankers: LLM elimination and direct ranking, and non-LLM baselines, behind one interface.

Baselines are exported lazily so that importing the LLM rankers does not pull in numpy,
bm25s or sentence-transformers.
"""

from __future__ import annotations

import importlib

from .base import Ranker
from .direct import DirectRanker
from .iterative import FALLBACKS, IterativeRanker, UnparsableAnswerError

_LAZY = {
    "RandomRanker": "random_ranker",
    "BM25Ranker": "bm25",
    "DenseRanker": "dense",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DirectRanker", "FALLBACKS", "IterativeRanker", "Ranker", "UnparsableAnswerError", *_LAZY]
