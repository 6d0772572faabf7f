"""Slow and idle clients are timed out (issue 19): a real uvicorn on loopback, raw sockets.

The server runs with the options ``iranker serve`` passes (``slow_clients.uvicorn_options``)
and short bounds, so the test waits about a second per case: headers within 0.6 s, a body
within 0.6 s, at most 3 connections.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from serve_helpers import live, scripted_app

from iranker.serve.slow_clients import uvicorn_options

BOUNDS = dict(header_timeout_s=0.6, body_timeout_s=0.6, max_connections=3)
BODY = json.dumps({"query": "q", "documents": ["a", "b"]}).encode()


@pytest.fixture(scope="module")
def slow_server():
    app = scripted_app(**BOUNDS)
    with live(app, **uvicorn_options(app.state.settings)) as srv:
        yield srv


def connect(srv) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return s


def read_all(s: socket.socket, wait: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or ``wait`` passes)."""
    s.settimeout(wait)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except socket.timeout:
        return data + b"<still open>"
    return data


def request(body: bytes = BODY) -> bytes:
    return (
        b"POST /v1/rerank HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def test_partial_headers_get_408_and_the_connection_is_closed(slow_server):
    s = connect(slow_server)
    s.sendall(b"POST /v1/rerank HTTP/1.1\r\nhost: x\r\ncontent-")  # and then nothing
    t0 = time.monotonic()
    reply = read_all(s)
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert b"headers not received within 0.6 s" in reply and not reply.endswith(b"<still open>")
    assert time.monotonic() - t0 < 3
    s.close()


def test_a_client_that_sends_nothing_is_closed_too(slow_server):
    s = connect(slow_server)
    reply = read_all(s)
    assert reply.startswith(b"HTTP/1.1 408 ") and not reply.endswith(b"<still open>")
    s.close()


def test_a_partial_body_gets_408_and_the_connection_is_closed(slow_server):
    s = connect(slow_server)
    full = request()
    s.sendall(full[: len(full) - 10])  # headers complete, the body 10 bytes short
    reply = read_all(s)
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert b"request body not received within 0.6 s" in reply and not reply.endswith(b"<still open>")
    s.close()


def test_a_trickled_body_is_bounded_in_total_not_per_byte(slow_server):
    s = connect(slow_server)
    full = request()
    head, body = full[: len(full) - len(BODY)], BODY
    s.sendall(head)
    t0 = time.monotonic()
    for byte in body:  # one byte every 0.1 s: each gap is short, the whole is not
        try:
            s.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.1)
        if time.monotonic() - t0 > 2:
            break
    reply = read_all(s)
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    s.close()


def test_keep_alive_then_slow_headers_on_the_same_connection(slow_server):
    s = connect(slow_server)
    s.sendall(request())
    s.settimeout(5)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 "), first
    s.sendall(b"POST /v1/rerank HTTP/1.1\r\nho")  # the next request stalls in its headers
    reply = read_all(s)
    assert b"408 Request Timeout" in reply and not reply.endswith(b"<still open>")
    s.close()


def test_connections_beyond_the_limit_get_503_and_slots_free_after_the_timeout(slow_server):
    holders = [connect(slow_server) for _ in range(BOUNDS["max_connections"])]
    for h in holders:
        h.sendall(b"GET /healthz HTTP/1.1\r\nhost")  # each holds a slot with partial headers
    time.sleep(0.1)
    extra = connect(slow_server)
    extra.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    assert read_all(extra, 3).startswith(b"HTTP/1.1 503 ")
    extra.close()
    for h in holders:
        assert read_all(h).startswith(b"HTTP/1.1 408 ")
        h.close()
    time.sleep(0.1)
    with slow_server.client() as c:
        assert c.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"]}).status_code == 200


def test_a_normal_client_is_not_affected(slow_server):
    with slow_server.client() as c:
        for _ in range(5):  # one kept-alive connection, several requests
            assert c.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"]}).status_code == 200
