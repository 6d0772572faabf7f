"""Micro-batching: requests that arrive close together are ranked in ONE ``ranker.rank`` call.

Every request becomes one ``RankingExample`` and is put on a queue. A single worker coroutine
takes the first waiting example, waits up to ``window_ms`` for more (or until ``max_batch``
examples are waiting) and then runs ``ranker.rank(batch)`` in a dedicated worker thread, so
the iterative ranker sends one batched backend call per elimination round for all of them.
While a batch runs, new requests queue up and form the next batch: under load the batches
fill by themselves and throughput grows with concurrency.

Only one batch runs at a time (backends are not thread-safe and a local model already uses
every core it is given). A backend exception fails the requests of *that* batch with
``BackendFailure`` (HTTP 502) and the worker carries on with the next batch. A request that
times out or whose client gave up is cancelled; if its batch has not started yet it is
dropped from the batch.

Known cost of "one rank call per batch": a request with 2 documents that shares a batch with
one of 50 documents waits until the long one is done (the call returns all rankings at once).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

from ..rankers.base import Ranker
from ..types import Ranking, RankingExample

log = logging.getLogger("iranker.serve")


class BatcherError(RuntimeError):
    """Base class of the errors a queued request can end with."""

    status_code = 503


class BackendFailure(BatcherError):
    """The backend (or ranker) raised while ranking the batch this request was in."""

    status_code = 502


class Overloaded(BatcherError):
    """The queue is full: the client should retry later."""

    status_code = 503


class ShuttingDown(BatcherError):
    status_code = 503


@dataclass
class _Item:
    example: RankingExample
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    batches: int = 0
    examples: int = 0
    failed_batches: int = 0
    dropped: int = 0
    #: rankings stopped early because their request had timed out or was cancelled
    abandoned: int = 0
    max_batch_seen: int = 0
    busy_s: float = 0.0
    queue_wait_s: float = 0.0

    def to_dict(self) -> dict:
        return {
            "batches": self.batches,
            "examples": self.examples,
            "mean_batch_size": round(self.examples / self.batches, 3) if self.batches else 0.0,
            "max_batch_size": self.max_batch_seen,
            "abandoned": self.abandoned,
            "failed_batches": self.failed_batches,
            "dropped_before_start": self.dropped,
            "busy_seconds": round(self.busy_s, 3),
            "mean_queue_wait_ms": round(1000 * self.queue_wait_s / self.examples, 3)
            if self.examples
            else 0.0,
        }


class MicroBatcher:
    """Gather examples for up to ``window_ms`` / ``max_batch`` and rank them together.

    Use from one event loop: ``start()`` inside it, ``await submit(example)`` per request,
    ``await stop()`` at shutdown.
    """

    def __init__(
        self,
        ranker: Ranker,
        *,
        window_ms: float = 5.0,
        max_batch: int = 16,
        max_queue: int = 1024,
    ) -> None:
        self.ranker = ranker
        self.window_s = max(0.0, float(window_ms)) / 1000.0
        self.max_batch = max(1, int(max_batch))
        self.max_queue = max(1, int(max_queue))
        self.stats = BatchStats()
        self._pending: collections.deque[_Item] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._running_batch = 0

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        return self._running_batch

    def start(self) -> None:
        if self.running:
            return
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iranker-rank")
        self._task = asyncio.get_running_loop().create_task(self._worker(), name="iranker-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.set_exception(ShuttingDown("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- requests ---------------------------------------------------------------------------
    def submit_nowait(self, example: RankingExample) -> asyncio.Future:
        """Queue ``example``; returns the future its ``Ranking`` will be set on."""
        if not self.running:
            raise ShuttingDown("the ranker is not running")
        if len(self._pending) >= self.max_queue:
            raise Overloaded(f"{len(self._pending)} requests are already waiting; retry later")
        fut = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(example, fut))
        assert self._wakeup is not None
        self._wakeup.set()
        return fut

    async def submit(self, example: RankingExample, timeout: float | None = None) -> Ranking:
        """Queue ``example`` and wait for its ranking (``asyncio.TimeoutError`` after ``timeout``).

        On timeout or cancellation the future is cancelled, so an example whose batch has
        not started yet is dropped instead of being ranked for nobody.
        """
        fut = self.submit_nowait(example)
        if timeout is None:
            return await fut
        return await asyncio.wait_for(fut, timeout)

    # -- the worker -------------------------------------------------------------------------
    async def _gather(self) -> list[_Item]:
        assert self._wakeup is not None
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.window_s > 0 and len(self._pending) < self.max_batch:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.window_s
            while len(self._pending) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    # waiting on an Event (not on a queue get) cannot lose an item on timeout
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
        batch = []
        while self._pending and len(batch) < self.max_batch:
            item = self._pending.popleft()
            if item.future.done():  # timed out / cancelled while queued
                self.stats.dropped += 1
                continue
            batch.append(item)
        return batch

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            examples = [it.example for it in batch]
            self._running_batch = len(batch)
            t0 = time.perf_counter()
            waited = sum(t0 - it.enqueued for it in batch)
            try:
                rank = self.ranker.rank
                if getattr(self.ranker, "supports_abandon", False):
                    # asked from the worker thread between elimination rounds: a request that
                    # timed out or was cancelled (its future is done) stops costing steps
                    gone = {id(it.example): it.future for it in batch}
                    rank = functools.partial(
                        self.ranker.rank, abandoned=lambda ex: bool(gone.get(id(ex)) and gone[id(ex)].done())
                    )
                rankings: Sequence[Ranking] = await loop.run_in_executor(self._executor, rank, examples)
                if len(rankings) != len(batch):
                    raise RuntimeError(f"ranker returned {len(rankings)} rankings for {len(batch)} examples")
            except asyncio.CancelledError:
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(ShuttingDown("the server is shutting down"))
                raise
            except Exception as exc:  # the backend failed: fail this batch only, keep serving
                log.exception("ranking a batch of %d failed", len(batch))
                self.stats.failed_batches += 1
                reason = str(exc)
                if len(reason) > 300:
                    reason = reason[:300] + "..."
                err = BackendFailure(f"the ranking backend failed: {type(exc).__name__}: {reason}")
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(err)
                continue
            finally:
                self._running_batch = 0
                self.stats.busy_s += time.perf_counter() - t0
            self.stats.batches += 1
            self.stats.examples += len(batch)
            self.stats.abandoned += sum(bool(r.meta.get("abandoned")) for r in rankings)
            self.stats.queue_wait_s += waited
            self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(batch))
            for it, ranking in zip(batch, rankings):
                if not it.future.done():
                    it.future.set_result(ranking)
