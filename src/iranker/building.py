"""``build_ranker``: the one place an LLM ranker is put together from a loaded backend.

The command line (``rank``, ``eval``, ``demo``, the Ray workers), ``iranker serve`` and the
Python ``iranker.Ranker`` all rank through this function, so a trained folder's prompt
templates and ranking mode, a response prefix, retrieved thoughts and signals are applied the
same way everywhere: a model served over HTTP sees the prompts it sees from the CLI. (The
anchor is AnswerDotAI/rerankers: one factory behind every entry point.) Backends are built by
``iranker.llm.load_backend`` from the registry ``iranker.llm.BACKENDS``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from .rankers import DirectRanker, IterativeRanker
from .rankers.base import Ranker
from .scenarios import SCENARIO_CLASSES, PromptTemplate, get_scenario

#: the ranking methods an LLM ranker can use
METHODS = ("iterative", "direct")


def with_response_prefix(
    templates: Mapping[str, PromptTemplate], prefix: str | None
) -> dict[str, PromptTemplate]:
    """``templates`` (scenario -> PromptTemplate) with every scenario's ``response_prefix`` set.

    ``prefix=None`` leaves them as they are; scenarios without a template get their default
    one with the prefix, so the override applies to every scenario.
    """
    if prefix is None:
        return dict(templates)
    return {
        name: dataclasses.replace(templates.get(name) or get_scenario(name).template, response_prefix=prefix)
        for name in SCENARIO_CLASSES
    }


def build_ranker(
    backend: Any,
    *,
    method: str = "iterative",
    decode: str | None = None,
    reuse: str | None = None,
    prune: Any = None,
    fallback: str = "closest",
    reask: int = 1,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    temperature: float = 0.0,
    seed: int = 0,
    templates: Mapping[str, PromptTemplate] | None = None,
    response_prefix: str | None = None,
    show_progress: bool = False,
    thoughts: Any = None,
    thoughts_k: int | None = None,
    signals: Sequence[Any] | None = None,
) -> Ranker:
    """An ``IterativeRanker`` (or ``DirectRanker``) on ``backend``, wrapped as asked.

    - ``templates``: default the backend's own (a trained folder's ``iranker.json``); an
      explicit mapping, even an empty one, wins. ``response_prefix`` then applies to every
      scenario.
    - ``decode`` / ``reuse``: ``None`` = what the model records (``iranker-135m``: choice, kv).
    - ``prune``: a pool-pruning schedule (``"quarter"``, ``"fraction=0.25,min=5"``; see
      ``iranker.rankers.pruning``), iterative choice ranking only; ``None`` = one per step.
    - ``thoughts``: a ``ThoughtMemory``; each example's header then shows ``thoughts_k``
      retrieved worked examples (``iranker.thoughts``).
    - ``signals``: ``None`` leaves signals to the caller (the server attaches them per request);
      a list of providers (``iranker.signals``), even an empty one, wraps the ranker so they are
      computed and checked against the signals the model was trained with.

    A bad value is a ``ValueError`` naming it.
    """

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use iterative or direct")
    chosen = dict(getattr(backend, "templates", None) or {}) if templates is None else dict(templates)
    opts: dict[str, Any] = dict(
        batch_size=batch_size,
        temperature=temperature,
        seed=seed,
        show_progress=show_progress,
        templates=with_response_prefix(chosen, response_prefix),
    )
    if max_new_tokens is not None:
        opts["max_new_tokens"] = max_new_tokens
    ranker: Ranker
    if method == "direct":
        if prune is not None:
            raise ValueError("prune applies to iterative elimination, not --method direct")
        ranker = DirectRanker(backend, reask=reask, **opts)
    else:
        ranker = IterativeRanker(
            backend, decode=decode, fallback=fallback, reask=reask, reuse=reuse, prune=prune, **opts
        )
    if thoughts is not None:
        from .thoughts.retrieval import DEFAULT_K, ThoughtsRanker

        ranker = ThoughtsRanker(ranker, thoughts, thoughts_k or DEFAULT_K)
    if signals is not None:
        from .signals.recorded import recorded_signals
        from .signals.wrap import SignalsRanker

        recorded = recorded_signals(backend)
        if signals or recorded is not None:
            ranker = SignalsRanker(
                ranker, list(signals), recorded=recorded, model=str(getattr(backend, "name", "the model"))
            )
    return ranker


__all__ = ["METHODS", "build_ranker", "with_response_prefix"]
