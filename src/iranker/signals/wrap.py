"""``SignalsRanker``: any LLM ranker, with signals computed and checked before it ranks.

It attaches the requested providers' signals to each example (the candidates then render
``signals: bm25 2/20, ...``) and refuses examples whose signals are not what the model was
trained with (:mod:`iranker.signals.recorded`), before any prompt reaches the backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from ..rankers.base import Ranker
from ..types import Ranking, RankingExample
from .base import SignalProvider, attach_signals
from .recorded import check_signals_match
from .schema import SIGNALS_KEY, SignalError, example_signal_names


def preflight(
    examples: Sequence[RankingExample],
    providers: Sequence[SignalProvider],
    recorded: Mapping[str, list[str]] | None,
    model: str = "the model",
) -> None:
    """Raise the error ``SignalsRanker`` would, from the names alone (no signal is computed)."""

    for ex in examples:
        names = {p.name for p in providers if p.applies(ex)}
        clash = sorted(names & example_signal_names(ex))
        if clash:
            raise SignalError(
                f"example {ex.id!r}: candidates already carry signal(s) {', '.join(clash)}; "
                "drop them from the input or from --signals"
            )
        if names:  # placeholder values: only the names matter to the check
            ex = dataclasses.replace(
                ex,
                candidates=[
                    dataclasses.replace(
                        c,
                        meta={
                            **c.meta,
                            SIGNALS_KEY: {**dict(c.meta.get(SIGNALS_KEY) or {}), **dict.fromkeys(names, 0.0)},
                        },
                    )
                    for c in ex.candidates
                ],
            )
        check_signals_match(recorded, ex, model)


class SignalsRanker(Ranker):
    """``ranker`` on examples with ``providers``' signals, checked against ``recorded``."""

    def __init__(
        self,
        ranker: Ranker,
        providers: Sequence[SignalProvider] = (),
        *,
        recorded: Mapping[str, list[str]] | None = None,
        model: str = "the model",
    ) -> None:
        self.ranker = ranker
        self.providers = list(providers)
        self.recorded = None if recorded is None else dict(recorded)
        self.model = model
        self.name = ranker.name
        self.backend = getattr(ranker, "backend", None)

    def prepare(self, examples: Sequence[RankingExample]) -> list[RankingExample]:
        """The examples with signals attached, each checked against what the model records."""
        shown = attach_signals(examples, self.providers)
        for ex in shown:
            check_signals_match(self.recorded, ex, self.model)
        return shown

    def preflight(self, examples: Sequence[RankingExample]) -> None:
        """Check the names the examples *will* carry, before any signal is computed or file written."""
        preflight(examples, self.providers, self.recorded, self.model)

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        return self.ranker.rank(self.prepare(examples))

    def __getattr__(self, name: str) -> Any:  # decode, reuse, templates ... of the wrapped ranker
        if name == "ranker":
            raise AttributeError(name)
        return getattr(self.ranker, name)


__all__ = ["SignalsRanker", "preflight"]
