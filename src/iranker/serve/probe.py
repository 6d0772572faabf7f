"""Is an ``iranker serve`` already running? One short ``GET /healthz``, standard library only.

``iranker demo`` uses it to point at the playground (``GET /``) of a server the user started,
without importing the server's dependencies and without slowing the demo down when there is
none: a refused connection answers at once, and the timeout bounds everything else.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

#: where ``iranker serve`` listens by default (its --host / --port defaults)
DEFAULT_URL = "http://127.0.0.1:8000"
#: ``IRANKER_SERVE_URL`` names another server to look for
URL_ENV = "IRANKER_SERVE_URL"


@dataclass(frozen=True)
class RunningServer:
    url: str  # the base URL, without a trailing slash
    model: str
    method: str

    @property
    def playground(self) -> str:
        return self.url + "/"


def serve_url() -> str:
    """The base URL to probe: ``$IRANKER_SERVE_URL`` or the serve command's default."""
    return (os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def running_server(url: str | None = None, timeout: float = 0.5) -> RunningServer | None:
    """The iranker server at ``url`` if its ``/healthz`` says ``status: ok``, else None.

    Anything else (nothing listening, a timeout, another program on the port, a server still
    loading or shutting down) is None: the caller only prints a hint, so it never raises.
    """
    base = (url or serve_url()).rstrip("/")
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=timeout) as resp:  # noqa: S310 - a URL the user set
            body = json.loads(resp.read(65536).decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError, http.client.HTTPException):
        return None
    if not isinstance(body, dict) or body.get("status") != "ok" or "model" not in body:
        return None
    return RunningServer(url=base, model=str(body.get("model")), method=str(body.get("method") or ""))
