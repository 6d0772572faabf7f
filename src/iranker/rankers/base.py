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


class LLMRanker(Ranker):
    """Shared settings of the rankers that prompt an LLM (iterative and direct)."""

    def __init__(
        self,
        backend,
        *,
        reask: int,
        batch_size: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        templates: dict | None,
        show_progress: bool,
    ) -> None:
        self.backend = backend
        self.reask = max(0, int(reask))
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        # None = the backend's own templates (a trained folder records the prompts it was
        # trained with); {} = the scenarios' defaults.
        self.templates = dict(getattr(backend, "templates", None) or {}) if templates is None else dict(templates)
        self.show_progress = show_progress

    def _scenario(self, name: str):
        """The scenario, with the template override (e.g. a trained checkpoint's) if any."""
        from ..scenarios import get_scenario

        return get_scenario(name, self.templates.get(name))


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
