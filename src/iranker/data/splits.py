"""Seeded, order-independent splits and random streams.

Two properties matter for honest results:

* A user or query is assigned to train or test by a hash of (split seed, key) alone, so the
  split never depends on which other keys exist, on file order, or on ``limit`` — and an
  example's elimination steps can never straddle train and test (the paper's router data
  was split per step, leaking test queries into training).
* Every example draws its negatives/shuffle from its own stream seeded by (seed, task, key),
  so building 5 examples or 5,000 gives the same first 5.
"""

from __future__ import annotations

import hashlib
import random
from typing import Sequence, TypeVar

__all__ = ["hash_unit", "rng_for", "sample_keys", "split_of"]

T = TypeVar("T")


def hash_unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (stable across runs and platforms)."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def split_of(key: str, *, seed: int, test_fraction: float) -> str:
    """``"test"`` for about ``test_fraction`` of keys, else ``"train"``; fixed per (seed, key)."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    return "test" if hash_unit("split", seed, key) < test_fraction else "train"


def rng_for(*parts: object) -> random.Random:
    """An independent ``random.Random`` for one example, seeded from ``parts``.

    String seeds are hashed with SHA-512 by ``random.Random`` itself, independent of
    ``PYTHONHASHSEED``, so streams are reproducible across processes.
    """
    return random.Random("\x1f".join(map(str, parts)))


def sample_keys(keys: Sequence[T], limit: int | None, *, seed: int, salt: str = "") -> list[T]:
    """``limit`` keys chosen at random (seeded), kept in their original order; all if None.

    Random rather than the first ``limit``: files are often sorted by user id or topic, and a
    prefix would be a biased sample.
    """
    if limit is None or limit >= len(keys):
        return list(keys)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    chosen = set(random.Random(f"limit\x1f{seed}\x1f{salt}").sample(range(len(keys)), limit))
    return [k for i, k in enumerate(keys) if i in chosen]
