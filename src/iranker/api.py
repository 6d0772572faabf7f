"""``iranker.Ranker``: three lines from plain strings to a ranking.

    import iranker
    ranker = iranker.Ranker()                               # the default model, iranker-135m
    ranker.rerank("how long do fleas live", ["Paris is in France.", "A flea can live a year."]).top_k(1)
    ranker.route("prove sqrt(2) is irrational", models=[{"name": "small", "description": "..."}], objective="balance")
    ranker.recommend(history=["Toy Story (1995)", "Aladdin (1992)"], items=["Heat (1995)", "The Lion King (1994)"])

One object loads the model once - with the prompt templates and ranking mode its folder
records (``iranker-135m``: label scoring with KV eviction) - and assigns safe ids itself, so
the strings' contents can never be confused with ids or labels. Every call returns
``RankedResults`` (``iranker.results``): items best first with input index, text, score (the
server's ``relevance_score``) and the elimination trace.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .building import build_ranker
from .example_fields import ROUTING_OBJECTIVES as OBJECTIVES
from .llm import load_backend
from .results import RankedItem, RankedResults, relevance_score
from .signals import check_example_signals, check_signals, make_providers, parse_signal_names
from .signals.wrap import SignalsRanker
from .types import Candidate, RankingExample


class Ranker:
    """An LLM ranker by iterative elimination behind plain-string methods.

    Args:
        model: model alias, folder, ``.gguf`` file or hub id (default ``iranker-135m``); for
            ``backend="openai"`` the server's model name; for ``"scripted"`` ``last``/``first``.
        backend: ``transformers`` (default), ``vllm``, ``openai`` or ``scripted``.
        decode, reuse: override the ranking mode the model records (``choice``/``generate``,
            ``kv``/``none``).
        prune: a pool-pruning schedule (``"quarter"``; ``iranker.rankers.pruning``): several
            likely-worst candidates per step while the pool is large. Default one per step.
        signals: signals to compute for every call (``"bm25,dense"`` or a list of ``bm25``,
            ``dense``, ``cooccur``, ``outcomes``; see ``iranker.signals``), shown to the model as
            each candidate's rank; ``interactions`` / ``outcomes`` are the files ``cooccur`` /
            ``outcomes`` read. Items may also carry their own ``signals`` (``{name: number}``).
        **backend_options: passed to the backend (e.g. ``threads=1``, ``base_url=...``).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        backend: str = "transformers",
        decode: str | None = None,
        reuse: str | None = None,
        prune: str | None = None,
        max_new_tokens: int = 256,
        signals: str | Sequence[str] | None = None,
        interactions: str | None = None,
        outcomes: str | None = None,
        **backend_options: Any,
    ) -> None:

        providers = (
            make_providers(parse_signal_names(signals), interactions=interactions, outcomes=outcomes)
            if signals
            else []
        )
        self.backend = load_backend(backend, model, **backend_options)
        # signals computed when asked and checked against the ones the model was trained with
        self._ranking = build_ranker(
            self.backend,
            decode=decode,
            reuse=reuse,
            prune=prune,
            max_new_tokens=max_new_tokens,
            signals=providers,
        )

        #: the elimination ranker itself (``decode``, ``reuse``, ``rank`` on prepared examples)
        self.ranker = self._ranking.ranker if isinstance(self._ranking, SignalsRanker) else self._ranking

    @property
    def name(self) -> str:
        return str(getattr(self.backend, "name", "model"))

    # -- one call per scenario ------------------------------------------------------------------
    def rerank(self, query: str, docs: Sequence[str | Mapping[str, Any]]) -> RankedResults:
        """Passages (or any texts) ranked by how well they answer ``query``; a doc is a string or
        ``{"text": ..., "signals": {name: number}}``."""
        _check_text("query", query)
        texts, sigs = _check_items("docs", docs)
        example = RankingExample("rerank", "passage", query, _candidates(texts, sigs))
        return self._rank(example, texts)

    def route(
        self,
        query: str,
        models: Sequence[Mapping[str, Any] | str],
        *,
        objective: str = "performance",
        weight: float | None = None,
    ) -> RankedResults:
        """Candidate LLMs ranked for ``query``: each model a name string or a mapping with
        ``name`` and optional ``description``, ``input_price``, ``output_price`` (USD / 1M tokens),
        ``signals`` ({name: number}).
        ``objective`` is performance, balance or cost; ``weight`` (0-1 on quality) overrides it."""
        _check_text("query", query)
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if weight is not None and not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"weight must be between 0 and 1, got {weight!r}")
        if not isinstance(models, Sequence) or isinstance(models, (str, bytes)) or len(models) < 2:
            raise ValueError("models must be a list of at least 2 models")
        cands, texts = [], []
        for i, m in enumerate(models):
            spec = {"name": m} if isinstance(m, str) else dict(m)
            name = spec.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"models[{i}] needs a non-empty 'name'")
            meta: dict[str, Any] = {"name": name}
            for key in ("input_price", "output_price"):
                if spec.get(key) is not None:
                    value = float(spec[key])
                    if not value >= 0 or value == float("inf"):
                        raise ValueError(f"models[{i}].{key} must be a finite number >= 0, got {spec[key]!r}")
                    meta[key] = value
            if spec.get("signals") is not None:
                from .signals import check_signals

                meta["signals"] = check_signals(spec["signals"], f"models[{i}].signals")
            text = str(spec.get("description") or name)
            cands.append(Candidate(str(i), text, meta))
            texts.append(text)

        check_example_signals(cands, "models")
        meta = {"weight": float(weight)} if weight is not None else {"objective": objective}
        example = RankingExample("route", "routing", query, cands, meta=meta)
        return self._rank(example, texts, names=[c.meta["name"] for c in cands])

    def recommend(
        self,
        history: Sequence[str],
        items: Sequence[str | Mapping[str, Any]],
        *,
        domain: str | None = None,
        user: str | None = None,
    ) -> RankedResults:
        """Candidate ``items`` ranked as the user's next choice after ``history`` (oldest first).
        An item is a title or ``{"text": ..., "signals": {...}}``; ``user`` is left out of the
        ``cooccur`` signal's interactions (a log holding this user's own next item must not vote)."""
        hist = _check_list("history", history, minimum=1)
        texts, sigs = _check_items("items", items)
        meta: dict[str, Any] = {"history": hist}
        if domain:
            meta["domain"] = domain
        if user is not None:
            meta["user"] = str(user)
        example = RankingExample(
            "recommend", "recommendation", "\n".join(hist), _candidates(texts, sigs), meta=meta
        )
        return self._rank(example, texts)

    # -- internals --------------------------------------------------------------------------------
    def _rank(
        self, example: RankingExample, texts: list[str], names: list[str] | None = None
    ) -> RankedResults:
        ranking = self._ranking.rank([example])[0]
        n = len(ranking.order)
        items = [
            RankedItem(
                index=int(cid),
                id=cid,
                text=texts[int(cid)],
                rank=pos + 1,
                score=relevance_score(pos, n),
                name=names[int(cid)] if names else None,
            )
            for pos, cid in enumerate(ranking.order)
        ]
        return RankedResults(items, ranking)

    def __repr__(self) -> str:
        return f"Ranker({self.name!r}, decode={self.ranker.decode!r}, reuse={self.ranker.reuse!r})"


def _check_text(what: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")


def _check_items(what: str, values: Any) -> tuple[list[str], list[dict[str, float] | None]]:
    """Texts and signals of items given as strings or ``{"text", "signals"?}`` mappings."""

    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{what} must be a list of strings (or of {{'text', 'signals'}} objects)")
    texts, sigs = [], []
    for i, v in enumerate(values):
        if isinstance(v, Mapping):
            unknown = sorted(set(map(str, v)) - {"text", "signals"})
            if unknown:
                raise ValueError(f"{what}[{i}]: unknown key(s) {unknown}; an item is {{'text', 'signals'?}}")
            text = v.get("text")
            sig = (
                check_signals(v["signals"], f"{what}[{i}].signals") if v.get("signals") is not None else None
            )
        else:
            text, sig = v, None
        texts.append(text)
        sigs.append(sig)
    _check_list(what, texts)
    check_example_signals(_candidates(texts, sigs), what)
    return texts, sigs


def _candidates(texts: list[str], sigs: list[dict[str, float] | None]) -> list[Candidate]:
    return [Candidate(str(i), t, {"signals": s} if s else {}) for i, (t, s) in enumerate(zip(texts, sigs))]


def _check_list(what: str, values: Any, *, minimum: int = 2) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{what} must be a list of strings")
    out = list(values)
    if len(out) < minimum:
        raise ValueError(
            f"{what} needs at least {minimum} entr{'y' if minimum == 1 else 'ies'}, got {len(out)}"
        )
    for i, v in enumerate(out):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{what}[{i}] must be a non-empty string")
    return out


__all__ = ["Ranker"]
