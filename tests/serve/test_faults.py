"""Backend failures, timeouts and overload: 5xx for that request only, and the server goes on."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from serve_helpers import live, scripted_app

from iranker.llm import ScriptedLLM
from iranker.llm.scripted import shown_labels


def faulty(slow_s: float) -> ScriptedLLM:
    """Eliminates the last shown; raises when the query says BOOM, sleeps when it says SLOW."""

    def respond(messages):
        user = messages[-1]["content"]
        if "BOOM" in user:
            raise RuntimeError("CUDA out of memory (simulated)")
        if "SLOW" in user:
            time.sleep(slow_s)
        return f"<answer>{shown_labels(messages)[-1]}</answer>"

    return ScriptedLLM(respond)


@pytest.fixture(scope="module")
def fault_server():
    with live(scripted_app(faulty(slow_s=1.0), request_timeout_s=0.5)) as srv:
        yield srv


def test_backend_error_is_502_and_the_server_keeps_serving(fault_server):
    with fault_server.client() as c:
        m0 = c.get("/metrics").json()
        r = c.post("/v2/rerank", json={"query": "BOOM", "documents": ["a", "b"]})
        assert r.status_code == 502
        assert "backend failed" in r.json()["detail"] and "out of memory" in r.json()["detail"]
        ok = c.post("/v2/rerank", json={"query": "fine", "documents": ["a", "b", "c"]})
        assert ok.status_code == 200 and [x["index"] for x in ok.json()["results"]] == [0, 1, 2]
        r = c.post("/v1/route", json={"query": "BOOM", "models": [{"name": "x"}, {"name": "y"}]})
        assert r.status_code == 502
        assert c.get("/healthz").json()["status"] == "ok"
        m1 = c.get("/metrics").json()
    assert m1["backend_errors"] == m0["backend_errors"] + 2
    assert m1["errors_5xx"] == m0["errors_5xx"] + 2
    assert m1["batcher"]["failed_batches"] >= 2


def test_timeout_is_504_and_the_server_recovers(fault_server):
    with fault_server.client() as c:
        t0 = time.perf_counter()
        r = c.post("/v1/rerank", json={"query": "SLOW", "documents": ["a", "b"]})
        assert r.status_code == 504 and "timeout" in r.json()["detail"]
        assert time.perf_counter() - t0 < 0.95  # answered at the timeout, not when the backend finished
        time.sleep(0.7)  # let the slow batch finish in the worker thread
        assert c.post("/v1/rerank", json={"query": "fast", "documents": ["a", "b"]}).status_code == 200
        assert c.get("/metrics").json()["timeouts"] >= 1


def test_a_failing_batch_fails_only_its_own_requests():
    """Two requests share a batch with a BOOM; a later batch is unaffected."""
    app = scripted_app(faulty(slow_s=0.0), batch_window_ms=200)
    with live(app) as srv:

        async def go():
            async with httpx.AsyncClient(base_url=srv.url, timeout=10) as c:
                same_batch = await asyncio.gather(
                    c.post("/v2/rerank", json={"query": "BOOM", "documents": ["a", "b"]}),
                    c.post("/v2/rerank", json={"query": "ok", "documents": ["a", "b"]}),
                )
                later = await c.post("/v2/rerank", json={"query": "ok", "documents": ["a", "b"]})
                return [r.status_code for r in same_batch], later.status_code

        statuses, later = asyncio.run(go())
    assert statuses == [502, 502]  # one rank() call per batch: the whole batch fails
    assert later == 200


def test_overload_is_503_with_retry_after():
    app = scripted_app(faulty(slow_s=0.8), max_queue=1, request_timeout_s=10, batch_window_ms=0)
    with live(app) as srv:

        async def go():
            async with httpx.AsyncClient(base_url=srv.url, timeout=10) as c:
                slow = asyncio.create_task(
                    c.post("/v2/rerank", json={"query": "SLOW", "documents": ["a", "b"]})
                )
                await asyncio.sleep(0.3)  # the slow one is running; the queue is empty
                queued = asyncio.create_task(
                    c.post("/v2/rerank", json={"query": "x", "documents": ["a", "b"]})
                )
                await asyncio.sleep(0.1)  # now the queue holds one request (the limit)
                rejected = await c.post("/v2/rerank", json={"query": "y", "documents": ["a", "b"]})
                return (await slow).status_code, (await queued).status_code, rejected

        slow, queued, rejected = asyncio.run(go())
    assert slow == 200 and queued == 200
    assert rejected.status_code == 503
    assert rejected.headers["retry-after"] == "1"
    assert "retry later" in rejected.json()["detail"]


def test_a_client_that_disconnects_mid_body_is_not_a_server_error(fault_server):
    import socket

    with fault_server.client() as c:
        m0 = c.get("/metrics").json()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", fault_server.port)) as sock:
            sock.sendall(
                b"POST /v2/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 5000\r\n\r\n" + b'{"query": "fine", "documents": ["a", '
            )
            time.sleep(0.1)
    deadline = time.monotonic() + 5
    with fault_server.client() as c:
        while True:
            m1 = c.get("/metrics").json()
            if m1["client_disconnects"] >= m0["client_disconnects"] + 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert m1["client_disconnects"] == m0["client_disconnects"] + 3
    assert m1["errors_5xx"] == m0["errors_5xx"]


def test_a_timed_out_ranking_stops_and_frees_the_worker_for_the_next_request():
    """10 documents at 0.3 s per elimination step = 2.7 s of work; its request times out at
    0.5 s, and the ranking stops at the next round, so a request behind it is answered soon."""
    app = scripted_app(faulty(slow_s=0.3), request_timeout_s=0.5, batch_window_ms=0)
    with live(app) as srv, srv.client() as c:
        slow = c.post("/v2/rerank", json={"query": "SLOW", "documents": [f"d{i}" for i in range(10)]})
        assert slow.status_code == 504
        t0 = time.perf_counter()
        fast = c.post("/v2/rerank", json={"query": "fast", "documents": ["a", "b"]})
        waited = time.perf_counter() - t0
        assert fast.status_code == 200
        assert waited < 1.2, f"the abandoned ranking kept the worker for {waited:.2f} s"
        assert c.get("/metrics").json()["batcher"]["abandoned"] == 1
