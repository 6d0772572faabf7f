"""iranker: one LLM ranks candidates by iterative elimination.

Recommendation, LLM routing and passage re-ranking share one interface::

    from iranker import IterativeRanker, load_backend
    ranker = IterativeRanker(load_backend("transformers", "smollm2-135m"))
    rankings = ranker.rank(examples)

Heavy dependencies are imported lazily by the backends, so this import is cheap.
"""

from __future__ import annotations

from .types import Candidate, Ranking, RankingExample, Step, Usage

__version__ = "0.1.0"

_LAZY = {
    "IterativeRanker": ("iranker.rankers", "IterativeRanker"),
    "DirectRanker": ("iranker.rankers", "DirectRanker"),
    "load_backend": ("iranker.llm", "load_backend"),
    "ScriptedLLM": ("iranker.llm", "ScriptedLLM"),
    "get_scenario": ("iranker.scenarios", "get_scenario"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'iranker' has no attribute {name!r}")


__all__ = ["Candidate", "Ranking", "RankingExample", "Step", "Usage", "__version__", *_LAZY]
