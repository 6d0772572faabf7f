"""``GET /healthz`` (liveness and what is loaded) and ``GET /metrics`` (counters since start)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from .. import __version__
from .errors import ApiError
from .service import RankingService


def ops_router(service: RankingService) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", tags=["ops"], summary="Liveness and what is loaded")
    async def healthz():
        """`status: ok` (200) when the model is loaded and the batcher runs, else 503."""
        ok = service.batcher.running
        body = {
            "status": "ok" if ok else "unavailable",
            "loaded": ok,
            "model": service.model_name,
            "backend": service.backend_name,
            "method": service.ranker.name,
            "version": __version__,
            "queued": service.batcher.queued,
            "in_flight": service.batcher.in_flight,
            "limits": service.settings.public(),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics", tags=["ops"], summary="Counters since start")
    async def get_metrics(format: str = "json"):
        """Requests, errors (4xx/5xx), mean/p50/p99 latency per endpoint, tokens, batches.
        `?format=prometheus` gives the Prometheus text format."""
        if format == "prometheus":
            return PlainTextResponse(service.metrics.to_prometheus(service.batcher))
        if format != "json":
            raise ApiError(422, "format: must be json or prometheus")
        return service.metrics.to_dict(service.batcher)

    return router


__all__ = ["ops_router"]
