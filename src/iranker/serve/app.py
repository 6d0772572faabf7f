"""The FastAPI app: Cohere-compatible rerank, LLM routing, health and metrics.

``create_app(ranker=..., settings=...)`` (or ``create_app(backend=...)``) builds an app
around ONE loaded model. Every ranking request becomes one ``RankingExample`` that the
micro-batcher ranks together with the requests that arrived at about the same time.

Status codes (the body is always ``{"detail": str, "message": str}``, plus ``errors`` for 422):
  400 a body that is not UTF-8 or nests too deeply to parse (the detail says which)
  401 missing or wrong bearer token (only when an API key is configured), with
      ``WWW-Authenticate: Bearer``
  408 headers or body not received within ``header_timeout_s`` / ``body_timeout_s``
  413 body larger than ``max_body_bytes``, or more documents / longer documents, queries or
      histories than the configured limits
  422 malformed body: the detail names the field (``documents[2]: ...``)
  502 the backend raised while ranking this request's batch (the server keeps serving)
  503 the queue is full (``Retry-After: 1``) or the server is shutting down
  504 the ranking took longer than ``request_timeout_s``
Bad input never yields a 5xx.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI

from .. import __version__
from ..llm.base import LLMBackend
from ..rankers.base import Ranker
from .errors import install_error_handlers
from .middleware import AuthMiddleware, BodyLimitMiddleware, MetricsMiddleware
from .ops_routes import ops_router
from .playground import add_playground
from .rerank_routes import rerank_router
from .route_routes import route_router
from .schemas import SCORE_DOC
from .service import RankingService
from .settings import ServeSettings

log = logging.getLogger("iranker.serve")


def create_app(
    ranker: Ranker | None = None,
    *,
    backend: LLMBackend | None = None,
    settings: ServeSettings | None = None,
    model_name: str | None = None,
    backend_name: str | None = None,
    method: str = "iterative",
    max_new_tokens: int | None = None,
    templates: dict | None = None,
    signals: list | None = None,
) -> FastAPI:
    """Build the app around one loaded model.

    ``signals`` (``iranker.signals`` providers, ``iranker serve --signals``) are computed for
    every request; a request whose signals (computed or sent) are not those the model was
    trained with is a 422.

    Pass a ready ``ranker`` or a ``backend`` (then an ``IterativeRanker``/``DirectRanker`` is
    built with ``batch_size = settings.max_batch``). ``settings`` default to
    ``ServeSettings.from_env()`` (so ``IRANKER_API_KEY`` etc. apply).
    """
    settings = settings or ServeSettings.from_env()
    if ranker is None:
        if backend is None:
            raise ValueError("create_app needs a ranker or a backend")
        from ..building import build_ranker

        ranker = build_ranker(
            backend,
            method=method,
            batch_size=settings.max_batch,
            max_new_tokens=max_new_tokens,
            templates=templates,
        )
    backend = backend or getattr(ranker, "backend", None)
    backend_name = backend_name or getattr(backend, "name", None) or type(backend).__name__
    model_name = model_name or getattr(backend, "model_name", None) or getattr(backend, "model", None)
    model_name = str(model_name) if model_name else backend_name

    service = RankingService(
        ranker=ranker,
        backend=backend,
        settings=settings,
        model_name=model_name,
        backend_name=backend_name,
        signals=list(signals or []),
    )
    batcher, metrics = service.batcher, service.metrics

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        log.info("iranker serving %s (%s, %s)", model_name, backend_name, ranker.name)
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="iranker",
        version=__version__,
        summary="Cohere-compatible rerank and LLM routing by iterative elimination.",
        description=(
            "One LLM ranks candidates by naming the worst one, step after step; the ranking is "
            "the reverse order of elimination.\n\n**relevance_score / score**: "
            + SCORE_DOC
            + "\n\nErrors: 400 body not UTF-8 or nested too deeply to parse, 401 bad token, 408 headers "
            "or body too slow, 413 over a size limit, 422 malformed body (the detail names the field), "
            "502 backend failure, 503 overloaded or too many connections, 504 timeout."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ranker = ranker
    app.state.backend = backend
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.model_name = model_name
    app.state.service = service

    # middleware: added last = outermost. Order of work: metrics -> auth -> body limit -> app
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(AuthMiddleware, api_key=settings.api_key, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    install_error_handlers(app)

    app.include_router(rerank_router(service))
    app.include_router(route_router(service))
    app.include_router(ops_router(service))
    add_playground(app, settings)  # GET /: the page that draws the elimination trace
    return app


__all__ = ["create_app"]
