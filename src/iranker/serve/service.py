"""What every ranking endpoint shares: the loaded ranker behind its micro-batcher, the
server's limits and metrics, and the signals the model needs.

The endpoint modules (``rerank_routes``, ``route_routes``, ``ops_routes``) each turn a request
into a ``RankingExample``, call ``RankingService.rank`` and shape the response; none of them
knows how ranking is scheduled or how signals are attached.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..llm.base import LLMBackend
from ..rankers.base import Ranker
from ..signals.recorded import recorded_signals
from ..signals.wrap import SignalsRanker
from ..types import Ranking, RankingExample
from .batching import BatcherError, MicroBatcher
from .errors import ApiError
from .metrics import Metrics
from .schemas import ApiVersion, BilledUnits, Meta, Tokens, Trace
from .settings import ServeSettings


@dataclass
class RankingService:
    """One loaded model, served: ``rank`` an example (signals attached, batched, timed out,
    errors mapped to HTTP statuses) and describe the result (``meta``, ``trace``)."""

    ranker: Ranker
    backend: LLMBackend | None
    settings: ServeSettings
    model_name: str
    backend_name: str
    signals: list[Any] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        s = self.settings
        self.batcher = MicroBatcher(
            self.ranker, window_ms=s.batch_window_ms, max_batch=s.max_batch, max_queue=s.max_queue
        )
        self.signal_ranker = SignalsRanker(
            self.ranker, self.signals, recorded=recorded_signals(self.backend), model=self.model_name
        )
        #: a model trained with signals needs them on every request, as does a server with providers
        self.signals_needed = bool(self.signals) or self.signal_ranker.recorded is not None

    def check_limit(self, count: int, limit: int, what: str) -> None:
        """413 when ``count`` is over the server's ``limit`` for ``what``."""
        if count > limit:
            raise ApiError(413, f"{what}: {count} is over the server limit of {limit}")

    def check_top_n(self, top_n: int | None) -> None:
        if top_n is not None and top_n > self.settings.max_documents:
            raise ApiError(422, f"top_n: must be between 1 and {self.settings.max_documents}, got {top_n}")

    async def rank(self, example: RankingExample) -> Ranking:
        if self.signals_needed:
            from ..signals.schema import SignalError

            try:  # providers may embed texts: off the event loop
                example = (await asyncio.to_thread(self.signal_ranker.prepare, [example]))[0]
            except SignalError as exc:
                raise ApiError(422, str(exc)) from None
        metrics, timeout = self.metrics, self.settings.request_timeout_s
        try:
            ranking = await self.batcher.submit(example, timeout=timeout)
        except asyncio.TimeoutError:
            metrics.timeouts += 1
            raise ApiError(504, f"ranking took longer than the {timeout:g} s timeout") from None
        except BatcherError as exc:
            if exc.status_code == 502:
                metrics.backend_errors += 1
            else:
                metrics.overloaded += 1
            headers = {"Retry-After": "1"} if exc.status_code == 503 else None
            raise ApiError(exc.status_code, str(exc), headers=headers) from None
        metrics.record_ranking(ranking, len(example.candidates))
        return ranking

    def meta(self, version: str, ranking: Ranking, warnings: list[str]) -> Meta:
        u = ranking.usage
        return Meta(
            api_version=ApiVersion(version=version),
            billed_units=BilledUnits(
                search_units=1, input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens
            ),
            tokens=Tokens(input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens),
            model=self.model_name,
            backend_calls=u.calls,
            warnings=warnings or None,
        )

    @staticmethod
    def trace(ranking: Ranking) -> Trace:
        d = ranking.to_dict()
        d["valid_rate"] = round(ranking.valid_rate, 6)
        return Trace(**d)


__all__ = ["RankingService"]
