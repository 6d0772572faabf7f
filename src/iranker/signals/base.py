"""The provider interface: compute one signal for the candidates of many examples at once.

A provider has a ``name`` (what ``--signals`` lists and the prompt shows), the ``scenarios``
it applies to (co-occurrence means nothing for a passage) and ``scores(examples)``: one
``{candidate id: value}`` per example (higher = better), or ``None`` for an example it does
not apply to. Providers see whole batches so the dense one embeds every text in one pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from ..types import SCENARIOS, RankingExample
from .schema import SignalError, with_signals


class SignalProvider(ABC):
    """One signal. Subclasses set ``name`` and ``scenarios`` and implement ``scores``."""

    name: str = ""
    scenarios: tuple[str, ...] = SCENARIOS

    def applies(self, example: RankingExample) -> bool:
        return example.scenario in self.scenarios

    @abstractmethod
    def scores(self, examples: Sequence[RankingExample]) -> list[dict[str, float] | None]:
        """One ``{candidate id: value}`` per example (``None`` where the signal does not apply)."""


def attach_signals(
    examples: Sequence[RankingExample], providers: Sequence[SignalProvider]
) -> list[RankingExample]:
    """Copies of ``examples`` whose candidates carry every applicable provider's signal."""
    if not providers:
        return list(examples)
    computed: list[dict[str, dict[str, float]]] = [{} for _ in examples]
    for provider in providers:
        idx = [i for i, ex in enumerate(examples) if provider.applies(ex)]
        if not idx:
            continue
        values = provider.scores([examples[i] for i in idx])
        if len(values) != len(idx):
            raise SignalError(
                f"signal provider {provider.name!r} returned {len(values)} results for {len(idx)} examples"
            )
        for i, v in zip(idx, values):
            if v is not None:
                computed[i][provider.name] = v
    return [with_signals(ex, c) for ex, c in zip(examples, computed)]


__all__ = ["SignalProvider", "attach_signals"]
