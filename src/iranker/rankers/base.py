"""The one interface every ranker shares: ``rank(examples) -> list[Ranking]``.

LLM rankers, lexical and dense baselines and trained task-specific baselines all implement
it, so the CLI, the benchmark and the server treat them alike.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from ..scenarios import get_scenario
from ..types import Ranking, RankingExample


class Ranker(ABC):
    """Base class. ``name`` identifies the method in outputs and reports."""

    name: str = "ranker"

    @abstractmethod
    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        """Rank every example; returns one ``Ranking`` per example, in input order."""

    def rank_one(self, example: RankingExample) -> Ranking:
        return self.rank([example])[0]


@dataclass
class RankedChunk:
    """One chunk of examples and its rankings (input order), with the seconds ranking took.

    ``seconds`` is the compute time of the chunk where it ran (in this process, or on the
    Ray worker that ranked it), so summed over chunks it is the total ranking time either way.
    """

    examples: Sequence[RankingExample]
    rankings: list[Ranking]
    seconds: float


def ranked_chunks(ranker: Any, chunks: Iterable[Sequence[RankingExample]]) -> Iterator[RankedChunk]:
    """Rank ``chunks`` with ``ranker``, yielding each chunk's result in the order given.

    The one loop both long-running writers (``iranker rank``, ``iranker eval``) rank through:
    a ranker that can rank several chunks at once offers ``rank_chunks(chunks)`` (the Ray
    sharded ranker, ``iranker.sharding``) and yields them in the same order; any other
    ranker ranks them one after another here. The caller writes each chunk before asking for
    the next, so what is written is always a prefix of the work in order.
    """
    parallel = getattr(ranker, "rank_chunks", None)
    if parallel is not None:
        yield from parallel(chunks)
        return
    for chunk in chunks:
        t0 = time.perf_counter()
        rankings = ranker.rank(chunk)
        yield RankedChunk(chunk, rankings, time.perf_counter() - t0)


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
        self.templates = (
            dict(getattr(backend, "templates", None) or {}) if templates is None else dict(templates)
        )
        self.show_progress = show_progress

    def _scenario(self, name: str):
        """The scenario, with the template override (e.g. a trained checkpoint's) if any."""

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
