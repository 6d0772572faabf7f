"""Ray workers that each load the backend once, and the pool that shards chunks over them.

The pattern is the one Ray documents for offline batch inference (an actor pool whose
actors hold the model): :class:`RankWorker` builds the backend in its constructor and then
ranks the chunks it is sent with the very ranker the single-process path builds (made by a
picklable ``make_ranker(backend)``, e.g. ``iranker.cli.building.ranker_from_args``). The driver keeps
writing: :meth:`WorkerPool.rank_chunks` keeps every worker busy but yields the chunks in the
order they were given, so the output file (and a ``.partial`` file cut by a kill) is what
one process would have written.

Failures:

* an exception raised by the ranking itself (``UnparsableAnswerError`` under
  ``--fallback error``, a backend error) is raised in the driver as it is, as in one process;
* a worker process that dies (killed, out of memory, its node lost) is restarted by Ray
  (``max_restarts``, the backend loads again) and its chunks are retried
  (``max_task_retries``); a chunk whose worker is gone for good goes to another worker, at
  most ``max_chunk_attempts`` times, then :class:`WorkerFailed`. A chunk is written only
  when its result arrives, so a retry never duplicates a record and a lost one is redone.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..llm.base import BackendError
from ..rankers.base import RankedChunk, Ranker
from ..types import Ranking, RankingExample
from .cluster import require_ray

BackendBuilder = Callable[[], Any]
RankerBuilder = Callable[[Any], Ranker]


class WorkerFailed(BackendError):
    """Ray workers died (or never started) and the work could not be finished elsewhere."""


class RankWorker:
    """One Ray actor: the backend, built once, and the rankers made on it.

    A backend that fails to load is kept as the error and raised by every call, so the
    driver gets the original exception (a bad ``--model``: one line) rather than an actor
    that died in its constructor.
    """

    def __init__(self, build_backend: BackendBuilder) -> None:
        self.backend: Any = None
        self.error: BaseException | None = None
        self.rankers: dict[str, Ranker] = {}
        try:
            self.backend = build_backend()
        except Exception as exc:  # noqa: BLE001 - re-raised by every call, in the driver
            self.error = exc

    def info(self) -> dict[str, Any]:
        """Where this worker runs; raises the backend's load error if it had one."""
        if self.error is not None:
            raise self.error
        return {"pid": os.getpid(), "host": socket.gethostname()}

    def _ranker(self, key: str, make_ranker: RankerBuilder) -> Ranker:
        if self.error is not None:
            raise self.error
        if key not in self.rankers:
            self.rankers[key] = make_ranker(self.backend)
        return self.rankers[key]

    def prepare(self, key: str, make_ranker: RankerBuilder) -> str:
        """Build the ranker now (so bad settings fail before any work); returns its name."""
        return self._ranker(key, make_ranker).name

    def rank(
        self, key: str, make_ranker: RankerBuilder, examples: Sequence[RankingExample]
    ) -> tuple[list[Ranking], float]:
        """Rank one chunk; returns its rankings and the seconds they took here."""
        ranker = self._ranker(key, make_ranker)
        t0 = time.perf_counter()
        rankings = ranker.rank(list(examples))
        return rankings, time.perf_counter() - t0


def _raise_cause(exc: Any) -> None:
    """Raise the exception a worker's code raised (a ``RayTaskError`` carries it as ``cause``)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        raise cause from None
    raise exc


class WorkerPool:
    """``workers`` Ray actors, each reserving ``threads`` CPUs, each with the backend loaded once.

    ``build_backend`` is called in every worker (and again after a restart); it must be
    picklable by reference, e.g. ``functools.partial`` of a module-level function.
    """

    def __init__(
        self,
        build_backend: BackendBuilder,
        *,
        workers: int,
        threads: int,
        max_restarts: int = 3,
        max_task_retries: int = -1,
        max_chunk_attempts: int = 3,
    ) -> None:
        if workers < 1 or threads < 1:
            raise ValueError(f"workers and threads must be >= 1, got {workers} and {threads}")

        ray = require_ray()
        self.workers = workers
        self.threads = threads
        self.max_chunk_attempts = max(1, int(max_chunk_attempts))
        actor = ray.remote(RankWorker).options(
            num_cpus=threads,
            max_restarts=max_restarts,
            max_task_retries=max_task_retries,
        )
        self.actors: list[Any] = [actor.remote(build_backend) for _ in range(workers)]
        self._keys = 0
        try:
            self.info = self._get_all([a.info.remote() for a in self.actors])
        except BaseException:
            self.close()
            raise

    def _get_all(self, refs: list[Any]) -> list[Any]:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        try:
            return ray.get(refs)
        except RayTaskError as exc:
            _raise_cause(exc)
        except RayActorError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise WorkerFailed(
                f"the Ray workers could not start ({first}); "
                "is iranker installed on every node of the cluster?"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def ranker(self, make_ranker: RankerBuilder, *, chunk_size: int, name: str | None = None) -> "RayRanker":
        """A ranker that shards over this pool; ``make_ranker(backend)`` builds it in each worker."""
        self._keys += 1
        key = f"r{self._keys}"
        names = self._get_all([a.prepare.remote(key, make_ranker) for a in self.actors])
        return RayRanker(self, key, make_ranker, name=name or names[0], chunk_size=chunk_size)

    def rank_chunks(
        self, key: str, make_ranker: RankerBuilder, chunks: Iterable[Sequence[RankingExample]]
    ) -> Iterator[RankedChunk]:
        """Rank ``chunks`` on the workers, at most two per worker at a time; yield them in order."""
        import ray
        from ray.exceptions import ActorDiedError, RayActorError, RayTaskError

        chunks = [list(c) for c in chunks]
        live = list(self.actors)
        load = {id(a): 0 for a in live}
        inflight: dict[Any, tuple[int, Any]] = {}
        attempts = [0] * len(chunks)
        finished: dict[int, RankedChunk] = {}
        next_submit = next_yield = 0

        def submit(i: int) -> None:
            actor = min(live, key=lambda a: load[id(a)])
            ref = actor.rank.remote(key, make_ranker, chunks[i])
            inflight[ref] = (i, actor)
            load[id(actor)] += 1
            attempts[i] += 1

        try:
            while next_yield < len(chunks):
                while next_submit < len(chunks) and next_submit - next_yield < 2 * len(live):
                    submit(next_submit)
                    next_submit += 1
                (ref,), _ = ray.wait(list(inflight), num_returns=1)
                i, actor = inflight.pop(ref)
                load[id(actor)] -= 1
                try:
                    rankings, seconds = ray.get(ref)
                except RayTaskError as exc:
                    _raise_cause(exc)
                except RayActorError as exc:
                    if isinstance(exc, ActorDiedError):
                        live = [a for a in live if a is not actor]  # out of restarts: gone for good
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    if not live:
                        raise WorkerFailed(
                            f"all {len(self.actors)} Ray workers died; last error: {first}"
                        ) from None
                    if attempts[i] >= self.max_chunk_attempts:
                        ids = [ex.id for ex in chunks[i]]
                        raise WorkerFailed(
                            f"a Ray worker died {attempts[i]} times ranking the chunk "
                            f"{ids[:3]}{'...' if len(ids) > 3 else ''}; last error: {first}"
                        ) from None
                    submit(i)
                    continue
                finished[i] = RankedChunk(chunks[i], rankings, seconds)
                while next_yield in finished:
                    yield finished.pop(next_yield)
                    next_yield += 1
        finally:
            for ref in inflight:  # an interrupted run leaves the workers idle, not ranking
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - already finished or its worker is gone
                    pass

    def close(self) -> None:
        """Stop the workers (their CPUs are free again for the next pool on the cluster)."""
        import ray

        for a in self.actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []


class RayRanker(Ranker):
    """A ranker whose chunks are ranked by the workers of a :class:`WorkerPool`.

    ``rank_chunks`` is what ``iranker.rankers.base.ranked_chunks`` uses (parallel, in
    order); ``rank`` splits its examples into chunks of ``chunk_size`` and does the same.
    """

    def __init__(
        self, pool: WorkerPool, key: str, make_ranker: RankerBuilder, *, name: str, chunk_size: int
    ) -> None:
        self.pool = pool
        self.key = key
        self.make_ranker = make_ranker
        self.name = name
        self.chunk_size = max(1, int(chunk_size))

    def rank_chunks(self, chunks: Iterable[Sequence[RankingExample]]) -> Iterator[RankedChunk]:
        return self.pool.rank_chunks(self.key, self.make_ranker, chunks)

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        size = self.chunk_size
        chunks = [examples[i : i + size] for i in range(0, len(examples), size)]
        return [r for ranked in self.rank_chunks(chunks) for r in ranked.rankings]
