"""`iranker demo` finds a running server by one short probe of /healthz (serve/probe.py)."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from iranker.cli import main as cli
from iranker.demo import playground_hint
from iranker.serve.probe import DEFAULT_URL, URL_ENV, running_server, serve_url


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_running_server_is_found_with_its_model(server):
    found = running_server(server.url)
    assert found is not None
    assert found.model == "scripted:first" and found.playground == server.url + "/"
    assert found.method == "iterative"


def test_nothing_listening_is_none_at_once():
    t0 = time.perf_counter()
    assert running_server(f"http://127.0.0.1:{_closed_port()}", timeout=0.5) is None
    assert time.perf_counter() - t0 < 1.0


class _Other(http.server.BaseHTTPRequestHandler):
    """Another program on the port: answers /healthz, but not as iranker does."""

    def do_GET(self):  # noqa: N802 - the stdlib's name
        body = b'{"status": "ok"}' if self.path == "/healthz" else b"nope"
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Silent(http.server.BaseHTTPRequestHandler):
    """Accepts the connection and never answers: only the timeout ends the probe."""

    def do_GET(self):  # noqa: N802
        time.sleep(3)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("handler", [_Other, _Silent])
def test_other_programs_and_silent_ports_are_not_taken_for_a_server(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        t0 = time.perf_counter()
        assert running_server(f"http://127.0.0.1:{httpd.server_address[1]}", timeout=0.3) is None
        assert time.perf_counter() - t0 < 2.0
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_url_comes_from_the_environment_or_the_serve_default(monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    assert serve_url() == DEFAULT_URL == "http://127.0.0.1:8000"
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9999/")
    assert serve_url() == "http://127.0.0.1:9999"


def test_the_hint_names_the_playground_or_how_to_start_one(server, monkeypatch):
    monkeypatch.setenv(URL_ENV, server.url)
    assert playground_hint().startswith(
        f"playground: {server.url}/ (iranker serve is running scripted:first)"
    )
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    assert "run `iranker serve` and open http://127.0.0.1:" in playground_hint()


def test_demo_prints_the_playground_address_of_a_running_server(server, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(URL_ENV, server.url)
    assert (
        cli.main(
            [
                "demo",
                "--backend",
                "scripted",
                "--out",
                str(tmp_path),
                "--per-scenario",
                "1",
                "--methods",
                "iterative",
            ]
        )
        == 0
    )
    assert f"playground: {server.url}/" in capsys.readouterr().out
