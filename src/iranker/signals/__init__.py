"""Candidate signals: the evidence a user already has, shown to the ranker as ranks.

A candidate may carry ``signals: {name: number}`` (higher = better) in any input, and
providers compute the built-in ones on request (``--signals bm25,dense,cooccur,outcomes``,
``Ranker(signals=...)``, ``iranker serve --signals``):

========== ================ ============================================================
name       scenarios        needs
========== ================ ============================================================
bm25       all              nothing (query/history vs candidate text; ``rankers.bm25``)
dense      all              nothing (all-MiniLM-L6-v2, embedded; ``rankers.dense``)
cooccur    recommendation   an interactions file (``{"user"?, "items": [...]}`` per line)
outcomes   routing          an outcomes file (``{"query", "outcomes": {llm: quality}}``)
========== ================ ============================================================

Each is shown in the candidate's segment as its rank among the example's candidates
(``signals: bm25 2/20, co-occurrence 1/20``; :mod:`.render`). ``rrf`` and the single-signal
rankers (:mod:`.rankers`) are the baselines a signal-reading model must beat.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

from ..types import SCENARIOS
from .base import SignalProvider, attach_signals
from .schema import SIGNALS_KEY, SignalError, check_example_signals, check_signals, example_signal_names

#: the built-in providers, in display order
PROVIDERS = ("bm25", "dense", "cooccur", "outcomes")
#: the scenarios each built-in provider applies to
PROVIDER_SCENARIOS = {
    "bm25": SCENARIOS,
    "dense": SCENARIOS,
    "cooccur": ("recommendation",),
    "outcomes": ("routing",),
}


def parse_signal_names(value: str | Iterable[str] | None) -> list[str]:
    """``"bm25,dense"`` -> ``["bm25", "dense"]`` (known names only, order of ``PROVIDERS``)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(x).strip() for x in items if str(x).strip()]
    if not names:
        raise SignalError("--signals is empty; give a comma list of " + ", ".join(PROVIDERS))
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        raise SignalError(f"unknown signal(s) {unknown}; use a comma list of {', '.join(PROVIDERS)}")
    return [n for n in PROVIDERS if n in names]


def make_providers(
    names: Sequence[str],
    *,
    interactions: str | os.PathLike[str] | None = None,
    outcomes: str | os.PathLike[str] | None = None,
    train_examples: Sequence[Any] | None = None,
    dense: Any = None,
    outcomes_k: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[SignalProvider]:
    """The providers ``names`` asks for.

    ``cooccur`` reads ``interactions`` (a file) or, without one, ``train_examples`` (the task's
    training users); ``outcomes`` reads ``outcomes`` or the training queries. Either without a
    source is a :class:`SignalError` saying which option to pass.
    """
    out: list[SignalProvider] = []
    for name in parse_signal_names(list(names)) if names else []:
        if name == "bm25":
            from .bm25 import BM25Signal

            out.append(BM25Signal())
        elif name == "dense":
            from .dense import DenseSignal

            out.append(DenseSignal(dense=dense, cache_dir=cache_dir))
        elif name == "cooccur":
            from .cooccur import CooccurSignal

            if interactions is not None:
                out.append(CooccurSignal.from_file(interactions))
            elif train_examples is not None:
                out.append(CooccurSignal.from_examples(train_examples))
            else:
                raise SignalError(
                    "signal cooccur needs an interactions file: pass --interactions FILE.jsonl "
                    '(one {"user"?, "items": [...]} per line)'
                )
        elif name == "outcomes":
            from .outcomes import DEFAULT_K, OutcomesSignal

            k = outcomes_k or DEFAULT_K
            if outcomes is not None:
                out.append(OutcomesSignal.from_file(outcomes, k=k, dense=dense, cache_dir=cache_dir))
            elif train_examples is not None:
                out.append(
                    OutcomesSignal.from_examples(train_examples, k=k, dense=dense, cache_dir=cache_dir)
                )
            else:
                raise SignalError(
                    "signal outcomes needs an outcomes file: pass --outcomes FILE.jsonl "
                    '(one {"query", "outcomes": {llm: quality}} per line)'
                )
    return out


__all__ = [
    "PROVIDERS",
    "PROVIDER_SCENARIOS",
    "SIGNALS_KEY",
    "SignalError",
    "SignalProvider",
    "attach_signals",
    "check_example_signals",
    "check_signals",
    "example_signal_names",
    "make_providers",
    "parse_signal_names",
]
