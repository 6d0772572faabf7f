"""A small, real OpenAI-compatible ``/v1/chat/completions`` server for tests.

It listens on loopback (port 0 → a free port) in a background thread and behaves like vLLM or
llama.cpp where it matters to a client: it answers from a scripted policy, applies ``stop``
strings the way real servers do (the matched stop string is *not* returned and
``finish_reason`` is ``"stop"``), truncates to ``max_tokens`` words with ``finish_reason ==
"length"``, reports ``usage`` (whitespace word counts), and records every request (headers and
JSON body). It can be told to fail with an HTTP status or to delay its answers, so tests can
exercise retries, errors and concurrency without a model.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Responder = Callable[[list[dict[str, str]]], str]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ServerState:
    responder: Responder
    #: seconds to wait before answering, as a function of the request's messages
    delay: Callable[[list[dict[str, str]]], float] = lambda messages: 0.0
    #: answer every request with this HTTP status (None = behave)
    fail_status: int | None = None
    #: only fail this many times, then behave (None = fail forever)
    fail_times: int | None = None
    #: omit the ``usage`` object from responses (some servers do)
    report_usage: bool = True
    #: add vLLM's non-standard ``stop_reason`` (the matched stop string, or null for EOS)
    report_stop_reason: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _words(text: str) -> int:
    return len(text.split())


def _apply_stop(text: str, stop: Any) -> tuple[str, str | None]:
    """Cut at the earliest stop string, excluding it, like vLLM / llama.cpp / OpenAI."""
    if not stop:
        return text, None
    stops = [stop] if isinstance(stop, str) else list(stop)
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return text, None
    pos, which = min(hits)
    return text[:pos], which


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        with state.lock:
            state.requests.append(RecordedRequest(self.path, dict(self.headers.items()), body))
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            failing = state.fail_status is not None and (state.fail_times is None or state.fail_times > 0)
            if failing and state.fail_times is not None:
                state.fail_times -= 1
        try:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            messages = body.get("messages") or []
            time.sleep(max(0.0, float(state.delay(messages))))
            if failing:
                self._send_json(
                    int(state.fail_status),  # type: ignore[arg-type]
                    {"error": {"message": "scripted failure", "type": "server_error"}},
                )
                return
            self._send_json(200, self._completion(body, messages))
        finally:
            with state.lock:
                state.in_flight -= 1

    def _completion(self, body: dict[str, Any], messages: list[dict[str, str]]) -> dict[str, Any]:
        state = self.server.state
        text = state.responder(messages)
        text, stopped_at = _apply_stop(text, body.get("stop"))
        finish = "stop"
        budget = body.get("max_tokens", body.get("max_completion_tokens"))
        words = text.split()
        if budget is not None and len(words) > int(budget):
            text = " ".join(words[: int(budget)])
            finish, stopped_at = "length", None
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{len(state.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
        }
        if state.report_stop_reason:
            payload["choices"][0]["stop_reason"] = stopped_at
        if state.report_usage:
            prompt_tokens = sum(_words(str(m.get("content", ""))) for m in messages)
            completion_tokens = _words(text)
            payload["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        return payload


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ServerState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class OpenAICompatibleServer:
    """Context manager: ``with OpenAICompatibleServer(responder) as srv: srv.base_url``."""

    def __init__(self, responder: Responder, **options: Any) -> None:
        self.state = ServerState(responder=responder, **options)
        self._server = _Server(self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    def start(self) -> "OpenAICompatibleServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "OpenAICompatibleServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
