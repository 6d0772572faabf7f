"""ASGI middleware of the server, outermost first: metrics (times every request and records
its status), bearer-token auth, and the body limit with its read timeout."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Awaitable, Callable

from .errors import send_json
from .metrics import CLIENT_CLOSED, Metrics
from .paths import OPEN_PATHS

ASGIApp = Callable[..., Awaitable[None]]


class MetricsMiddleware:
    """Outermost: times every HTTP request and records its status (including 401/413)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500, "started": False, "gone": False}

        async def wrapped(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        async def watched():
            message = await receive()
            if message["type"] == "http.disconnect":
                status["gone"] = True
            return message

        try:
            await self.app(scope, watched, wrapped)
        except Exception:
            if not (status["gone"] and not status["started"]):
                raise  # a real failure: the 500 it becomes is counted
        finally:
            if status["gone"] and not status["started"]:
                status["code"] = CLIENT_CLOSED
            self.metrics.record_request(scope.get("path", ""), status["code"], time.perf_counter() - t0)


class AuthMiddleware:
    """With an API key set, every path except ``OPEN_PATHS`` needs ``Authorization: Bearer``."""

    def __init__(self, app: ASGIApp, api_key: str | None, metrics: Metrics) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else None
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.key is None or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = b""
        for k, v in scope.get("headers", []):
            if k == b"authorization":
                header = v
                break
        scheme, _, token = header.partition(b" ")
        if not header or scheme.lower() != b"bearer":
            self.metrics.auth_failures += 1
            return await send_json(
                send,
                401,
                "missing bearer token: send 'Authorization: Bearer <key>'",
                {"WWW-Authenticate": 'Bearer realm="iranker"'},
            )
        if not hmac.compare_digest(token.strip(), self.key):
            self.metrics.auth_failures += 1
            return await send_json(
                send,
                401,
                "invalid bearer token",
                {"WWW-Authenticate": 'Bearer realm="iranker", error="invalid_token"'},
            )
        return await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: checks Content-Length, then the bytes actually read
    (chunked uploads have no Content-Length). The body is read here and replayed to the app.

    The whole body must arrive within ``timeout_s`` (a client trickling bytes, or sending
    fewer than its Content-Length, would hold the request forever): after that the answer is
    408 with ``Connection: close``, and the server closes the connection.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        too_big = f"request body larger than the limit of {self.max_bytes} bytes"
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    return await send_json(send, 400, "invalid Content-Length header")
                if declared > self.max_bytes:
                    return await send_json(send, 413, too_big)
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s
        while True:
            try:
                if deadline is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return await send_json(
                    send,
                    408,
                    f"request body not received within {self.timeout_s:g} s ({size} bytes arrived)",
                    {"Connection": "close"},
                )
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return await send_json(send, 413, too_big)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


__all__ = ["ASGIApp", "AuthMiddleware", "BodyLimitMiddleware", "MetricsMiddleware"]
