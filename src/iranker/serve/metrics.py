"""Counters of a running server: requests, errors, latency percentiles, tokens, batches;
as JSON (``GET /metrics``) or the Prometheus text format."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from ..types import Ranking
from .batching import MicroBatcher
from .paths import KNOWN_PATHS, RANKING_PATHS

#: nginx's "client closed request": what a request is recorded as when its client left first
CLIENT_CLOSED = 499


@dataclass
class EndpointStats:
    requests: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    #: the client went away before a response started (status 499, as nginx logs it): not an
    #: error of the server, so not in errors_5xx
    client_disconnects: int = 0
    latency_sum_s: float = 0.0
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=2048))

    def record(self, status: int, seconds: float) -> None:
        self.requests += 1
        if status == CLIENT_CLOSED:
            self.client_disconnects += 1
        elif 400 <= status < 500:
            self.errors_4xx += 1
        elif status >= 500:
            self.errors_5xx += 1
        self.latency_sum_s += seconds
        self.recent.append(seconds)

    def to_dict(self) -> dict[str, Any]:
        lat = sorted(self.recent)

        def pct(p: float) -> float:
            return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else 0.0

        return {
            "requests": self.requests,
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "client_disconnects": self.client_disconnects,
            "mean_latency_ms": round(1000 * self.latency_sum_s / self.requests, 3) if self.requests else 0.0,
            "p50_latency_ms": pct(0.50),
            "p99_latency_ms": pct(0.99),
        }


class Metrics:
    """Counters since start: requests, errors, latency, tokens, rankings, backend failures."""

    def __init__(self) -> None:
        self.started = time.time()
        self.endpoints: dict[str, EndpointStats] = collections.defaultdict(EndpointStats)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.backend_calls = 0
        self.rankings = 0
        self.documents = 0
        self.backend_errors = 0
        self.timeouts = 0
        self.overloaded = 0
        self.auth_failures = 0

    def record_request(self, path: str, status: int, seconds: float) -> None:
        self.endpoints[path if path in KNOWN_PATHS else "other"].record(status, seconds)

    def record_ranking(self, ranking: Ranking, n: int) -> None:
        self.rankings += 1
        self.documents += n
        self.prompt_tokens += ranking.usage.prompt_tokens
        self.completion_tokens += ranking.usage.completion_tokens
        self.backend_calls += ranking.usage.calls

    def to_dict(self, batcher: MicroBatcher | None = None) -> dict[str, Any]:
        eps = {k: v.to_dict() for k, v in sorted(self.endpoints.items())}
        total = sum(v.requests for v in self.endpoints.values())
        ranking = [self.endpoints[p] for p in RANKING_PATHS if p in self.endpoints]
        n_rank = sum(e.requests for e in ranking)
        d = {
            "uptime_s": round(time.time() - self.started, 3),
            "requests_total": total,
            "errors_total": sum(v.errors_4xx + v.errors_5xx for v in self.endpoints.values()),
            "errors_4xx": sum(v.errors_4xx for v in self.endpoints.values()),
            "errors_5xx": sum(v.errors_5xx for v in self.endpoints.values()),
            "client_disconnects": sum(v.client_disconnects for v in self.endpoints.values()),
            "ranking_requests": n_rank,
            "mean_latency_ms": round(1000 * sum(e.latency_sum_s for e in ranking) / n_rank, 3)
            if n_rank
            else 0.0,
            "rankings": self.rankings,
            "documents_ranked": self.documents,
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.prompt_tokens + self.completion_tokens,
            },
            "backend_prompts": self.backend_calls,
            "backend_errors": self.backend_errors,
            "timeouts": self.timeouts,
            "overloaded": self.overloaded,
            "auth_failures": self.auth_failures,
            "endpoints": eps,
        }
        if batcher is not None:
            d["batcher"] = {
                **batcher.stats.to_dict(),
                "queued": batcher.queued,
                "in_flight": batcher.in_flight,
            }
        return d

    def to_prometheus(self, batcher: MicroBatcher | None = None) -> str:
        d = self.to_dict(batcher)
        lines = [
            f"iranker_uptime_seconds {d['uptime_s']}",
            f"iranker_rankings_total {d['rankings']}",
            f"iranker_documents_ranked_total {d['documents_ranked']}",
            f"iranker_prompt_tokens_total {d['tokens']['prompt']}",
            f"iranker_completion_tokens_total {d['tokens']['completion']}",
            f"iranker_backend_errors_total {d['backend_errors']}",
            f"iranker_timeouts_total {d['timeouts']}",
        ]
        for path, e in d["endpoints"].items():
            lab = f'{{path="{path}"}}'
            lines += [
                f"iranker_requests_total{lab} {e['requests']}",
                f"iranker_errors_4xx_total{lab} {e['errors_4xx']}",
                f"iranker_errors_5xx_total{lab} {e['errors_5xx']}",
                f"iranker_latency_mean_ms{lab} {e['mean_latency_ms']}",
            ]
        if "batcher" in d:
            lines += [
                f"iranker_batches_total {d['batcher']['batches']}",
                f"iranker_batch_size_mean {d['batcher']['mean_batch_size']}",
                f"iranker_queue_depth {d['batcher']['queued']}",
            ]
        return "\n".join(lines) + "\n"


__all__ = ["CLIENT_CLOSED", "EndpointStats", "Metrics"]
