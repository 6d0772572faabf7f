"""Pool pruning: remove several likely-worst candidates in one elimination step.

Iterative elimination of N candidates asks N - 1 questions. The IRanker paper's *dynamic pool
pruning* removes more than one candidate per step while the pool is large, where the bottom of
the ranking matters least (MRR and nDCG@10 are decided at the top), and goes back to one at a
time near the top. With label scoring one step already gives the probability that each
candidate is the worst (``Step.probs``), so pruning costs nothing extra to decide: it takes the
``m`` most likely worst instead of the single most likely.

A schedule is written ``fraction=0.25`` (each step removes a quarter of the pool, at least
one) or ``threshold=0.1`` (each step removes every candidate whose probability of being worst
exceeds 0.1, at least the most likely one), optionally with ``,min=5``: once the pool holds
``min`` candidates or fewer, one at a time, and a pruning step never leaves fewer than ``min``.
``quarter`` is ``fraction=0.25,min=5``. At N = 20, ``quarter`` asks 10 questions instead of 19.

Candidates removed together are ranked among themselves by that step's probabilities: the most
likely worst is removed first, so it ends up last. Every candidate is still in the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..llm.choice_tree import pick_worst

#: named schedules accepted by ``PruneSchedule.parse``
NAMED = {"quarter": "fraction=0.25,min=5", "half": "fraction=0.5,min=5"}
DEFAULT_MIN_POOL = 5


@dataclass(frozen=True)
class PruneSchedule:
    """How many candidates one elimination step removes (see the module docstring).

    Args:
        fraction: remove ``max(1, floor(fraction * pool))`` per step (0 < fraction < 1), or
        threshold: remove every candidate whose probability of being worst is above it (0 < t < 1);
            exactly one of the two.
        min_pool: at or below this pool size, one candidate per step (≥ 2).
    """

    fraction: float | None = None
    threshold: float | None = None
    min_pool: int = DEFAULT_MIN_POOL

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.threshold is None):
            raise ValueError("a prune schedule needs exactly one of fraction or threshold")
        for name in ("fraction", "threshold"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v < 1):
                raise ValueError(f"prune {name} must be a number between 0 and 1 (exclusive), got {v!r}")
        if isinstance(self.min_pool, bool) or not isinstance(self.min_pool, int) or self.min_pool < 2:
            raise ValueError(f"prune min must be an integer >= 2, got {self.min_pool!r}")

    @classmethod
    def parse(cls, spec: "str | PruneSchedule | None") -> "PruneSchedule | None":
        """``None``/``""``/``"none"`` → no pruning; a name (``quarter``, ``half``) or
        ``fraction=F[,min=M]`` / ``threshold=T[,min=M]``. A bad spec is a ``ValueError`` that
        says what is accepted."""
        if spec is None or isinstance(spec, PruneSchedule):
            return spec
        text = str(spec).strip().lower()
        if text in ("", "none"):
            return None
        text = NAMED.get(text, text)
        usage = (
            f"bad prune schedule {spec!r}: use none, {', '.join(NAMED)}, fraction=F[,min=M] "
            "or threshold=T[,min=M] (0 < F, T < 1; M >= 2)"
        )
        values: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in ("fraction", "threshold", "min") or key in values:
                raise ValueError(usage)
            values[key] = value.strip()
        try:
            fraction = float(values["fraction"]) if "fraction" in values else None
            threshold = float(values["threshold"]) if "threshold" in values else None
            min_pool = int(values["min"]) if "min" in values else DEFAULT_MIN_POOL
            return cls(fraction=fraction, threshold=threshold, min_pool=min_pool)
        except ValueError as exc:
            raise ValueError(f"{usage}: {exc}") from None

    def spec(self) -> str:
        """The canonical text form (what ``parse`` reads back; recorded in eval settings)."""
        head = f"fraction={self.fraction:g}" if self.fraction is not None else f"threshold={self.threshold:g}"
        return f"{head},min={self.min_pool}"

    def count(self, probs: Sequence[float]) -> int:
        """How many candidates this step removes, for a pool with these worst-probabilities."""
        n = len(probs)
        if n <= self.min_pool:
            return 1 if n > 1 else 0
        room = n - self.min_pool
        if self.fraction is not None:
            m = max(1, math.floor(self.fraction * n))
        else:
            m = max(1, sum(1 for p in probs if p > self.threshold))
        return min(m, room)

    def pick(self, scores: Sequence[float], probs: Sequence[float]) -> list[int]:
        """Indices (into the pool) to remove this step, most likely worst first.

        Ordered by score, ties to the last shown - the same rule as ``pick_worst``, so the first
        index is always what one-at-a-time elimination removes.
        """
        if not scores:
            return []
        first = pick_worst(scores)

        def key(i: int) -> tuple[float, int]:
            return (scores[i] if math.isfinite(scores[i]) else -math.inf, i)

        rest = sorted((i for i in range(len(scores)) if i != first), key=key, reverse=True)
        return [first, *rest][: max(1, self.count(probs))]


__all__ = ["NAMED", "PruneSchedule"]
