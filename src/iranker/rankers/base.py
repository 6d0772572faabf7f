"""The one interface every ranker shares: ``rank(examples) -> list[Ranking]``.

LLM rankers, lexical and dense baselines and trained task-specific baselines all implement
it, so the CLI, the benchmark and the server treat them alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from ..types import Ranking, RankingExample


class Ranker(ABC):
    """Base class. ``name`` identifies the method in outputs and reports."""

    name: str = "ranker"

    @abstractmethod
    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        """Rank every example; returns one ``Ranking`` per example, in input order."""

    def rank_one(self, example: RankingExample) -> Ranking:
        return self.rank([example])[0]


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool = True):
    """A tqdm bar (stderr, with ETA) for multi-example runs; a no-op object otherwise."""
    if not enabled or total <= 1:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ex", dynamic_ncols=True)
