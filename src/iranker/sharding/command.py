"""The ``--ray [ADDRESS]`` and ``--ray-workers N`` options of ``iranker rank`` and ``iranker eval``.

Workers and threads are explicit: every worker is a Ray actor reserving ``--threads`` CPUs
(the transformers backend runs that many torch threads), and ``--ray-workers`` of them run.
Left out, ``--ray-workers`` is the cluster's CPUs divided by ``--threads``, and
``--threads`` is the cluster's CPUs divided by ``--ray-workers`` (1 when neither is given);
a request the cluster cannot hold is refused before anything starts, since Ray would
otherwise wait for CPUs forever.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

from ..cli.building import backend_from_args, ranker_from_args
from ..cli.errors import CLIError
from ..llm.base import MissingExtraError
from .cluster import LOCAL, Cluster, ClusterError, check_address, connect
from .workers import WorkerFailed, WorkerPool

#: the options a worker needs to build the same backend and ranker as the single-process path
WORKER_OPTIONS = (
    "backend",
    "model",
    "base_url",
    "threads",
    "batch_size",
    "max_new_tokens",
    "temperature",
    "seed",
    "response_prefix",
    "method",
    "decode",
    "fallback",
    "reask",
    "reuse",
    "signals",
    "interactions",
    "outcomes",
    "outcomes_k",
    "signals_attached",
)


def add_ray_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray (shard the examples over workers; needs iranker[ray])")
    g.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        default=None,
        metavar="ADDRESS",
        help="rank on Ray workers, each loading the model once: with no ADDRESS start a local "
        "cluster for this run; else connect to ADDRESS (host:port printed by `ray start --head`, "
        "ray://host:port, or auto). Output files and resume are the same as without --ray",
    )
    g.add_argument(
        "--ray-workers",
        type=int,
        default=None,
        metavar="N",
        help="number of workers (default: the cluster's CPUs divided by --threads); "
        "--threads is per worker (default: the cluster's CPUs divided by N, else 1)",
    )


def check_ray_args(args: argparse.Namespace) -> None:
    """One error line for Ray options that cannot work (before any cluster starts)."""

    address = getattr(args, "ray", None)
    workers = getattr(args, "ray_workers", None)
    if address is None:
        if workers is not None:
            raise CLIError("--ray-workers only applies with --ray")
        return
    if workers is not None and workers < 1:
        raise CLIError(f"--ray-workers must be >= 1, got {workers}")
    try:
        args.ray = check_address(address)
    except ClusterError as exc:
        raise CLIError(str(exc)) from None


def plan_workers(cpus: int, workers: int | None, threads: int | None) -> tuple[int, int]:
    """(workers, threads per worker) for a cluster with ``cpus`` CPUs (see the module doc)."""
    cpus = max(1, cpus)
    if workers is None:
        workers = max(1, cpus // (threads or 1))
    if threads is None:
        threads = max(1, cpus // workers)
    return workers, threads


def worker_options(args: argparse.Namespace, threads: int) -> argparse.Namespace:
    """The picklable subset of ``args`` a worker builds its backend and ranker from."""
    opts = argparse.Namespace(**{k: getattr(args, k, None) for k in WORKER_OPTIONS})
    opts.threads = threads
    if opts.model and opts.backend in ("transformers", "vllm") and Path(opts.model).exists():
        opts.model = str(Path(opts.model).resolve())  # a worker's current folder is not the driver's
    for key in ("interactions", "outcomes"):  # the signal providers' files, read on every worker
        if getattr(opts, key, None):
            setattr(opts, key, str(Path(getattr(opts, key)).resolve()))
    return opts


# -- what the workers run (module-level so that Ray pickles them by reference) -------------------
def build_backend(options: argparse.Namespace) -> Any:

    return backend_from_args(options)


def rank_ranker(options: argparse.Namespace, backend: Any) -> Any:
    """The ranker ``iranker rank`` builds, on a worker's backend."""

    return ranker_from_args(options, backend, show_progress=False)


class RaySession:
    """The Ray cluster and worker pool of one command run: made on first use, closed at the end."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cluster: Cluster | None = None
        self._pool: Any = None
        self._options: argparse.Namespace | None = None

    def connect(self) -> Cluster:
        """Connect (or start the local cluster); ``CLIError`` with one line on failure."""

        if self.cluster is None:
            workers, threads = self.args.ray_workers, self.args.threads
            local_cpus = None
            if self.args.ray == LOCAL and workers is not None:
                local_cpus = max(os.cpu_count() or 1, workers * (threads or 1))
            try:
                self.cluster = connect(self.args.ray, num_cpus=local_cpus)
            except (ClusterError, MissingExtraError) as exc:
                raise CLIError(str(exc)) from None
        return self.cluster

    def pool(self) -> Any:
        """The worker pool; the backend loads in every worker here (errors: one line)."""

        if self._pool is None:
            cluster = self.connect()
            workers, threads = plan_workers(cluster.cpus, self.args.ray_workers, self.args.threads)
            if workers * threads > cluster.cpus:
                raise CLIError(
                    f"{workers} Ray workers x {threads} threads need {workers * threads} CPUs; "
                    f"{cluster.describe()} has {cluster.cpus}. Lower --ray-workers or --threads"
                )
            self._options = worker_options(self.args, threads)
            print(f"ray: {workers} worker(s) x {threads} thread(s) on {cluster.describe()}", file=sys.stderr)
            try:
                self._pool = WorkerPool(
                    functools.partial(build_backend, self._options), workers=workers, threads=threads
                )
            except WorkerFailed as exc:
                raise CLIError(str(exc)) from None
        return self._pool

    def ranker(self, make: Callable[..., Any], *extra: Any) -> Any:
        """A sharded ranker: every worker runs ``make(options, *extra, backend)``."""
        pool = self.pool()
        assert self._options is not None
        return pool.ranker(functools.partial(make, self._options, *extra), chunk_size=self.args.batch_size)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
