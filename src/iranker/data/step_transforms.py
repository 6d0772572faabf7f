"""Changes to training examples before their step rows are made (``iranker data steps``).

Each transform keeps the example's split and id and is seeded per example, so a step dataset
is reproducible from its ``info.json``:

- :func:`augment_routing` — aliases and perturbed prices (:mod:`iranker.data.routing_augment`),
  ``copies`` augmented copies of each routing example (ids ``<id>#aug<k>``);
- :func:`teacher_relabel` — a *teacher's* full order of each pool as its relevance (the
  distillation warm start: FIRST-style, the model learns the teacher's whole order on the same
  label logits before it is trained on the true next items). ``bm25`` is a teacher whose
  evidence (word overlap of history and candidate) the model can see in its prompt. The true
  labels are kept in ``meta["true_relevance"]``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..rankers.bm25 import BM25Ranker
from ..scenarios.routing import objective_weight
from ..types import RankingExample
from .routing import grades_from_order
from .routing_augment import RoutingAugment, augment_routing_example
from .splits import rng_for

__all__ = ["TEACHERS", "augment_routing", "teacher_relabel"]

TEACHERS = ("bm25",)


def augment_routing(
    examples: Sequence[RankingExample], augment: RoutingAugment, *, copies: int = 1, seed: int = 0
) -> list[RankingExample]:
    """Routing examples replaced by ``copies`` augmented copies each (others unchanged)."""

    if copies < 1:
        raise ValueError(f"augment copies must be >= 1, got {copies}")
    out: list[RankingExample] = []
    for ex in examples:
        if ex.scenario != "routing":
            out.append(ex)
            continue
        weight = objective_weight(ex.meta)
        for k in range(copies):
            aug = augment_routing_example(ex, rng_for(seed, "augment", ex.id, k), weight, augment)
            out.append(replace(aug, id=f"{ex.id}#aug{k}" if copies > 1 else ex.id))
    return out


def teacher_relabel(examples: Sequence[RankingExample], teacher: str) -> list[RankingExample]:
    """Recommendation examples relabelled with ``teacher``'s order (grade = n - position)."""
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}; use one of {', '.join(TEACHERS)}")

    rec = [ex for ex in examples if ex.scenario == "recommendation"]
    orders = {r.example_id: r.order for r in BM25Ranker().rank(rec)} if rec else {}
    out = []
    for ex in examples:
        order = orders.get(ex.id)
        if order is None:
            out.append(ex)
            continue
        out.append(
            replace(
                ex,
                relevance=grades_from_order(order),
                meta={**ex.meta, "true_relevance": dict(ex.relevance), "teacher": teacher},
            )
        )
    return out
