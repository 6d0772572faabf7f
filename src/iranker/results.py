"""Result objects of the plain-string Python API (``iranker.Ranker``), and the one score rule.

Like ``rerankers``' results: iterable, best first, with ``top_k`` and a lookup by input index.
Each item carries its input position, text, the score the HTTP server returns as
``relevance_score`` and, on the whole result, the elimination trace and its validity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from .types import Ranking


def relevance_score(rank: int, n: int) -> float:
    """The score of the item at 0-based ``rank`` among ``n``: ``(n - rank) / n``.

    Elimination yields an order, not calibrated scores; this rank-based score is what the
    server returns as Cohere's ``relevance_score`` (1.0 for the best, 1/n for the worst).
    """
    return round((n - rank) / n, 6) if n > 0 else 0.0


@dataclass
class RankedItem:
    """One candidate in a result: where it was in the input, what it is, where it ended up."""

    index: int  # position in the input list
    text: str
    rank: int  # 1 = best
    score: float  # relevance_score(rank - 1, n)
    id: str = ""
    name: str | None = None  # routing: the model's name


@dataclass
class RankedResults:
    """A ranking of plain inputs, best first."""

    items: list[RankedItem]
    ranking: Ranking = field(repr=False)

    def __iter__(self) -> Iterator[RankedItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> RankedItem:
        return self.items[i]

    def top_k(self, k: int) -> list[RankedItem]:
        """The ``k`` best items."""
        return self.items[: max(0, int(k))]

    def by_index(self, index: int) -> RankedItem:
        """The item that was at ``index`` in the input."""
        for item in self.items:
            if item.index == index:
                return item
        raise KeyError(index)

    @property
    def order(self) -> list[int]:
        """Input indices, best first."""
        return [item.index for item in self.items]

    @property
    def steps(self) -> list[Any]:
        """The elimination trace (``Step`` objects: pool, removed, raw answer, how matched)."""
        return list(self.ranking.steps)

    @property
    def valid(self) -> bool:
        """True when every step's answer named a candidate (no fallback decided)."""
        return all(s.valid for s in self.ranking.steps)


__all__ = ["RankedItem", "RankedResults", "relevance_score"]
