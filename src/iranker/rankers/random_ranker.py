"""The chance baseline: a seeded random permutation of each example's candidates.

Every report needs the chance row (on routing it is MRR ×100 ≈ 31 with 9 LLMs), and it must
be reproducible: the permutation of an example depends only on ``seed`` and the example's id,
never on which other examples are in the batch or in what order they come, so a resumed or
sharded run gives exactly the same rankings. The id is hashed with ``zlib.crc32`` because
Python's ``hash()`` of a string changes with every process (``PYTHONHASHSEED``).
"""

from __future__ import annotations

import random
import zlib
from typing import Sequence

from ..types import Ranking, RankingExample, Usage
from .base import Ranker


def example_seed(seed: int, example_id: str) -> int:
    """A stable per-example seed from the run seed and the example id (same in every process)."""
    return seed * 2**32 + zlib.crc32(example_id.encode("utf-8"))


class RandomRanker(Ranker):
    """Ranks candidates in a random order, seeded per example (``seed`` + crc32 of the id)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            # Python seeds ints by absolute value; negatives would collide with positives.
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        """One seeded permutation per example, in input order."""
        out = []
        for ex in examples:
            order = ex.candidate_ids
            # random.Random with an int seed is stable across Python versions and platforms.
            random.Random(example_seed(self.seed, ex.id)).shuffle(order)
            out.append(
                Ranking(
                    example_id=ex.id,
                    order=order,
                    usage=Usage(),
                    method=self.name,
                    meta={"seed": self.seed},
                )
            )
        return out


__all__ = ["RandomRanker", "example_seed"]
