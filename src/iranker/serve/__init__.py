"""The HTTP server: Cohere-compatible rerank, LLM routing, health and metrics.

``iranker serve`` (see ``command.py``) loads one model and serves::

    POST /v1/rerank, /v2/rerank   Cohere-shaped rerank (+ scenario/history/return_trace)
    POST /v1/route                rank candidate LLMs for a query under an objective
    GET  /healthz, /metrics
    GET  /                        the playground page (``playground.py``): watch it eliminate

Requests that arrive within ``batch_window_ms`` are ranked together (``batching.py``).
FastAPI and uvicorn are imported only when the app is built: ``pip install 'iranker[serve]'``.
"""

from __future__ import annotations

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from ..llm.base import require

        require("fastapi", "serve", "the HTTP server")
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'iranker.serve' has no attribute {name!r}")
