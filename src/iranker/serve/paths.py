"""The server's paths, as the middleware and the metrics need them (one list, no app import)."""

from __future__ import annotations

from .playground import PATH as PLAYGROUND_PATH

#: paths that never need the bearer token: the liveness probe and the playground page (which
#: holds no data and asks the user for the key its requests send). The API docs (/docs, /redoc,
#: /openapi.json) describe every endpoint and limit, so a server with a key shows them only to
#: clients with the key, as its help says (browse them on a local server without a key).
OPEN_PATHS = frozenset({"/healthz", PLAYGROUND_PATH})
RANKING_PATHS = ("/v1/rerank", "/v2/rerank", "/v1/route")
KNOWN_PATHS = frozenset({*RANKING_PATHS, "/healthz", "/metrics", PLAYGROUND_PATH})

__all__ = ["KNOWN_PATHS", "OPEN_PATHS", "RANKING_PATHS"]
