"""Micro-batching: concurrent requests share one batched elimination (fewer backend calls)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from serve_helpers import live, scripted_app

from iranker.llm import ScriptedLLM
from iranker.llm.scripted import shown_labels
from iranker.rankers.base import Ranker
from iranker.serve.batching import BackendFailure, MicroBatcher, Overloaded, ShuttingDown
from iranker.types import Candidate, Ranking, RankingExample


def ex(i: int, n: int = 3) -> RankingExample:
    return RankingExample(
        id=f"e{i}",
        scenario="passage",
        query=f"q{i}",
        candidates=[Candidate(str(j), f"doc {i}.{j}") for j in range(n)],
    )


class RecordingRanker(Ranker):
    """Records the size of every batch; optional delay; raises for queries containing BOOM."""

    name = "recording"

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.delay = delay
        self.threads: set[str] = set()

    def rank(self, examples):
        self.batches.append([e.id for e in examples])
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if any("BOOM" in e.query for e in examples):
            raise RuntimeError("boom")
        return [Ranking(example_id=e.id, order=list(reversed(e.candidate_ids))) for e in examples]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_submits_are_ranked_in_one_call():
    async def go():
        ranker = RecordingRanker()
        b = MicroBatcher(ranker, window_ms=50, max_batch=16)
        b.start()
        out = await asyncio.gather(*(b.submit(ex(i)) for i in range(10)))
        await b.stop()
        return ranker, out

    ranker, out = run(go())
    assert ranker.batches == [[f"e{i}" for i in range(10)]]
    assert [r.example_id for r in out] == [f"e{i}" for i in range(10)]  # each future gets its own
    assert ranker.threads == {"iranker-rank_0"}  # ranked in the worker thread, not the loop


def test_max_batch_splits_and_later_arrivals_form_the_next_batch():
    async def go():
        ranker = RecordingRanker(delay=0.05)
        b = MicroBatcher(ranker, window_ms=20, max_batch=4)
        b.start()
        await asyncio.gather(*(b.submit(ex(i)) for i in range(10)))
        stats = b.stats.to_dict()
        await b.stop()
        return ranker, stats

    ranker, stats = run(go())
    assert [len(x) for x in ranker.batches] == [4, 4, 2]
    assert stats["batches"] == 3 and stats["examples"] == 10 and stats["max_batch_size"] == 4


def test_window_zero_takes_only_what_is_waiting():
    async def go():
        ranker = RecordingRanker()
        b = MicroBatcher(ranker, window_ms=0, max_batch=8)
        b.start()
        r = await b.submit(ex(0))
        await b.stop()
        return ranker, r

    ranker, r = run(go())
    assert ranker.batches == [["e0"]] and r.order == ["2", "1", "0"]


def test_backend_exception_fails_that_batch_only():
    async def go():
        ranker = RecordingRanker()
        b = MicroBatcher(ranker, window_ms=30, max_batch=8)
        b.start()
        bad = ex(0)
        bad.query = "BOOM"
        first = await asyncio.gather(b.submit(bad), b.submit(ex(1)), return_exceptions=True)
        second = await b.submit(ex(2))
        stats = b.stats.to_dict()
        await b.stop()
        return first, second, stats

    first, second, stats = run(go())
    assert all(isinstance(x, BackendFailure) for x in first)
    assert "RuntimeError: boom" in str(first[0]) and first[0].status_code == 502
    assert second.example_id == "e2"
    assert stats["failed_batches"] == 1 and stats["batches"] == 1


def test_timed_out_requests_are_dropped_before_their_batch_starts():
    async def go():
        ranker = RecordingRanker(delay=0.3)
        b = MicroBatcher(ranker, window_ms=0, max_batch=8)
        b.start()
        running = asyncio.ensure_future(b.submit(ex(0)))
        await asyncio.sleep(0.05)  # e0 is being ranked; e1 waits in the queue
        with pytest.raises(asyncio.TimeoutError):
            await b.submit(ex(1), timeout=0.05)
        await running
        await b.submit(ex(2))
        dropped = b.stats.dropped
        await b.stop()
        return ranker, dropped

    ranker, dropped = run(go())
    assert ranker.batches == [["e0"], ["e2"]] and dropped == 1


def test_queue_limit_and_shutdown():
    async def go():
        ranker = RecordingRanker(delay=0.2)
        b = MicroBatcher(ranker, window_ms=0, max_batch=1, max_queue=1)
        b.start()
        running = asyncio.ensure_future(b.submit(ex(0)))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(b.submit(ex(1)))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            b.submit_nowait(ex(2))
        await b.stop()
        results = await asyncio.gather(running, waiting, return_exceptions=True)
        with pytest.raises(ShuttingDown):
            b.submit_nowait(ex(3))
        return results

    results = run(go())
    assert isinstance(results[1], ShuttingDown)


# --------------------------------------------------------------------- over real HTTP --
def slow_per_call(delay: float) -> ScriptedLLM:
    """Eliminate-first with a fixed cost per backend *call* (like a batched GPU forward)."""

    def respond(messages):
        return f"<answer>{shown_labels(messages)[0]}</answer>"

    llm = ScriptedLLM(respond)
    generate = llm.generate

    def timed(prompts, **kw):
        time.sleep(delay)
        return generate(prompts, **kw)

    llm.generate = timed  # type: ignore[method-assign]
    return llm


def test_concurrent_http_requests_share_backend_calls():
    n_req, n_docs = 16, 4
    backend = slow_per_call(0.02)
    with live(scripted_app(backend, batch_window_ms=20, max_batch=16)) as srv:

        async def go():
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
                return await asyncio.gather(
                    *(
                        c.post(
                            "/v2/rerank",
                            json={
                                "query": f"q{r}",
                                "return_documents": True,
                                "documents": [f"req{r}-doc{d}" for d in range(n_docs)],
                            },
                        )
                        for r in range(n_req)
                    )
                )

        responses = asyncio.run(go())
        stats = srv.app.state.batcher.stats.to_dict()
    assert all(r.status_code == 200 for r in responses)
    for r, resp in enumerate(responses):  # no cross-talk between requests of one batch
        res = resp.json()["results"]
        assert [x["index"] for x in res] == [3, 2, 1, 0]
        assert [x["document"]["text"] for x in res] == [f"req{r}-doc{d}" for d in (3, 2, 1, 0)]
    sequential_calls = n_req * (n_docs - 1)
    calls = len(backend.calls)
    assert calls < sequential_calls / 2, (calls, stats)
    assert max(len(c) for c in backend.calls) > 1
    assert stats["mean_batch_size"] > 2
