"""Bounds on what a slow or idle client can hold: header time, body time, connections.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but never times out a
request whose headers or body arrive slowly: 100 connections holding partial headers and 100
holding partial bodies were all still open after 75 s (issue 19), each one a socket and a
slot of the server. Three bounds fix that:

- **headers**: :class:`HeaderTimeoutProtocol`, uvicorn's h11 protocol with a timer from the
  first byte of a request (or the connection's opening) until its headers are complete; when
  it fires the client gets ``408 Request Timeout`` and the connection is closed. Headers never
  reach the ASGI app, so this has to live in the protocol.
- **body**: ``BodyLimitMiddleware`` (``app.py``) reads the body under a deadline of
  ``body_timeout_s`` and answers 408 when it passes (an ASGI bound, so it holds under any
  server that runs the app).
- **connections**: uvicorn's ``limit_concurrency`` from ``max_connections``; a request on a
  connection beyond it gets 503 at once instead of waiting.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import ServeSettings

#: seconds an idle keep-alive connection stays open (uvicorn's own default, stated here)
KEEP_ALIVE_S = 5


class HeaderTimeoutProtocol(H11Protocol):
    """h11 protocol whose requests must deliver their headers within ``header_timeout_s``."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            self._arm()  # the first bytes of a new request on a kept-alive connection
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:  # its headers were complete: the request started
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._between_requests():
            return
        detail = f"request headers not received within {self.header_timeout_s:g} s"
        body = json.dumps({"detail": detail, "message": detail}).encode()
        head = (
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        self.transport.write(head + body)  # raw: h11 cannot answer a request it has not parsed
        self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """A :class:`HeaderTimeoutProtocol` class bound to ``seconds`` (uvicorn takes a class)."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": float(seconds)})


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """The ``uvicorn.Config`` / ``uvicorn.run`` options that enforce ``settings``' client bounds
    (``iranker serve`` and the tests' live server use the same ones)."""
    return {
        "http": header_timeout_protocol(settings.header_timeout_s),
        # uvicorn counts the arriving connection too: +1 so exactly max_connections are served
        "limit_concurrency": settings.max_connections + 1,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }
