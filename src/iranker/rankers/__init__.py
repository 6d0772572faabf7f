"""Rankers: LLM elimination and direct ranking, and non-LLM baselines, behind one interface."""

from __future__ import annotations

from .base import Ranker
from .direct import DirectRanker
from .iterative import FALLBACKS, IterativeRanker, UnparsableAnswerError

__all__ = ["DirectRanker", "FALLBACKS", "IterativeRanker", "Ranker", "UnparsableAnswerError"]
