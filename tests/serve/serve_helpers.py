"""Helpers for the server tests: a real uvicorn server on 127.0.0.1 (free port) in a thread.

A uniquely named module (not ``conftest``) so test files can import it without clashing with
the other ``conftest.py`` files of the suite.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

import httpx
import uvicorn

from iranker.llm import ScriptedLLM, load_backend
from iranker.serve.app import create_app
from iranker.serve.settings import ServeSettings


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port until ``stop()``."""

    def __init__(self, app, **options) -> None:
        self.app = app
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on", **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def backend(self):
        return self.app.state.backend

    def client(self, **kw) -> httpx.Client:
        kw.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, **kw)


@contextlib.contextmanager
def live(app, **options) -> Iterator[LiveServer]:
    """``app`` on a free loopback port; ``options`` go to ``uvicorn.Config`` (e.g.
    ``iranker.serve.slow_clients.uvicorn_options(settings)``, what ``iranker serve`` passes)."""
    srv = LiveServer(app, **options).start()
    try:
        yield srv
    finally:
        srv.stop()


#: small limits so the limit tests need small bodies
TEST_LIMITS = dict(
    max_documents=20,
    max_doc_chars=500,
    max_query_chars=1000,
    max_history=10,
    max_body_bytes=20_000,
    batch_window_ms=5,
    api_key=None,
)


def scripted_app(backend: ScriptedLLM | None = None, **settings):
    """An app over the scripted double (default: eliminate the FIRST shown, so the ranking
    is the reverse of the input order and index bugs cannot hide)."""
    backend = backend or load_backend("scripted", "first")
    return create_app(
        backend=backend,
        settings=ServeSettings(**{**TEST_LIMITS, **settings}),
        backend_name="scripted",
        model_name="scripted:first",
    )
