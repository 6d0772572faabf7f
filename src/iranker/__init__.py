"""iranker: one LLM ranks candidates by iterative elimination.

Plain strings in, results out (the default model is the trained ``iranker-135m``)::

    import iranker
    ranker = iranker.Ranker()
    ranker.rerank("how long do fleas live", ["Paris is in France.", "A flea can live a year."]).top_k(1)

Recommendation, LLM routing and passage re-ranking also share one interface on examples::

    from iranker import IterativeRanker, load_backend
    rankings = IterativeRanker(load_backend("transformers")).rank(examples)

Heavy dependencies are imported lazily by the backends, so this import is cheap.
"""

from __future__ import annotations

import importlib

from .types import Candidate, Ranking, RankingExample, Step, Usage

__version__ = "0.1.0"

_LAZY = {
    "Ranker": ("iranker.api", "Ranker"),
    "RankedResults": ("iranker.results", "RankedResults"),
    "IterativeRanker": ("iranker.rankers", "IterativeRanker"),
    "DirectRanker": ("iranker.rankers", "DirectRanker"),
    "load_backend": ("iranker.llm", "load_backend"),
    "ScriptedLLM": ("iranker.llm", "ScriptedLLM"),
    "get_scenario": ("iranker.scenarios", "get_scenario"),
}


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'iranker' has no attribute {name!r}")


__all__ = ["Candidate", "Ranking", "RankingExample", "Step", "Usage", "__version__", *_LAZY]
