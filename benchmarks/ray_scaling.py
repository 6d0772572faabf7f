"""Does sharding over Ray pay? Examples/s with 1 vs 2 Ray workers, and Ray's overhead.

    nice -n 15 .venv/bin/python benchmarks/ray_scaling.py [--model iranker-135m] [--candidates 10]
        [--per-scenario 2] [--scripted-examples 400]

From one run, on one local Ray cluster with 2 CPUs (``ray.init(num_cpus=2)``), it prints:

1. the embedded model (default ``iranker-135m`` in its recorded mode: ``decode=choice``,
   ``reuse=kv``) ranking the benchmark's self-contained examples (the builders of
   ``benchmarks/elimination_cost.py``: ml-100k users from recbole, the demo's routing and
   passage queries with distractors; ``--per-scenario`` of each, ``--candidates`` each), one
   example per chunk as ``iranker rank --batch-size 1`` would: examples/s in one process (no
   Ray), on 1 Ray worker and on 2 Ray workers (1 thread each; the backend loads once per
   worker before timing starts, and one warm-up example is ranked first). The three set-ups
   alternate for ``--repeats`` rounds, since a shared machine's load drifts; each row also
   shows the compute time summed over chunks (measured where they ran) and the load average;
2. the scripted backend (no model: what is left is Ray's own cost) on ``--scripted-examples``
   examples in chunks of 8: wall seconds in one process vs on 2 Ray workers, and their ratio.

The rankings on Ray are checked to equal the single-process ones. Timings are wall clock.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def options(backend: str, model: str, batch_size: int):
    from iranker.sharding.command import worker_options

    return worker_options(
        argparse.Namespace(
            backend=backend,
            model=model,
            batch_size=batch_size,
            max_new_tokens=64,
            temperature=0.0,
            seed=0,
            method="iterative",
            fallback="closest",
            reask=1,
        ),
        threads=1,
    )


def timed(ranker, chunks) -> tuple[float, list, float]:
    """(wall seconds, rankings, compute seconds summed over chunks where they ran)."""
    from iranker.rankers.base import ranked_chunks

    t0 = time.perf_counter()
    done = list(ranked_chunks(ranker, chunks))
    wall = time.perf_counter() - t0
    return wall, [r.to_dict() for ranked in done for r in ranked.rankings], sum(r.seconds for r in done)


def on_ray(opts, workers: int, chunks, warmup) -> tuple[float, list, float, float]:
    """(wall seconds, rankings, compute seconds, seconds to start the workers) on a fresh pool."""
    from iranker.sharding.command import build_backend, rank_ranker
    from iranker.sharding.workers import WorkerPool

    t0 = time.perf_counter()
    pool = WorkerPool(functools.partial(build_backend, opts), workers=workers, threads=1)
    try:
        ranker = pool.ranker(functools.partial(rank_ranker, opts), chunk_size=len(chunks[0]))
        start = time.perf_counter() - t0
        if warmup:
            timed(ranker, [warmup] * workers)
        wall, out, compute = timed(ranker, chunks)
    finally:
        pool.close()
        time.sleep(2)  # let Ray free the CPUs before the next pool asks for them
    return wall, out, compute, start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="iranker-135m")
    p.add_argument("--candidates", type=int, default=10)
    p.add_argument("--per-scenario", type=int, default=2)
    p.add_argument("--scripted-examples", type=int, default=400)
    p.add_argument("--repeats", type=int, default=2, help="rounds of the three model set-ups (default 2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import ray

    from elimination_cost import build_examples
    from iranker.cli.building import backend_from_args, ranker_from_args
    from iranker.sharding.cluster import start_local

    examples = build_examples(args.candidates, args.per_scenario, args.seed)
    t0 = time.perf_counter()
    start_local(ray, 2, logging_level=logging.ERROR, log_to_driver=False)
    print(
        f"local Ray cluster with {int(ray.cluster_resources()['CPU'])} CPUs started in "
        f"{time.perf_counter() - t0:.1f} s; os.cpu_count() = {os.cpu_count()}; load average at start "
        f"{os.getloadavg()[0]:.1f}"
    )

    # 1. the embedded model, one example per chunk; the three set-ups alternate, --repeats rounds
    opts = options("transformers", args.model, 1)
    chunks = [[ex] for ex in examples]
    one = ranker_from_args(opts, backend_from_args(opts), show_progress=False)
    print(
        f"model {args.model}: decode={one.decode}, reuse={one.reuse}; {len(examples)} examples x "
        f"{args.candidates} candidates; 1 thread per process; {args.repeats} round(s)"
    )
    timed(one, chunks[:1])  # warm-up
    rows = []
    ref = None
    for round_no in range(1, args.repeats + 1):
        wall, out, compute = timed(one, chunks)
        ref = ref or out
        assert out == ref
        rows.append((round_no, "one process (no Ray)", wall, compute, None, os.getloadavg()[0]))
        for workers in (1, 2):
            wall, out, compute, start = on_ray(opts, workers, chunks, chunks[0])
            assert out == ref, f"{workers} Ray worker(s) ranked differently from one process"
            rows.append(
                (round_no, f"Ray, {workers} worker(s) x 1 thread", wall, compute, start, os.getloadavg()[0])
            )
    del one
    print(
        "\n| round | embedded model | wall s | examples/s | compute s (sum over chunks) | "
        "workers ready after (s) | load avg (1 min) |"
    )
    print("|---|---|---|---|---|---|---|")
    for round_no, name, wall, compute, start, load in rows:
        print(
            f"| {round_no} | {name} | {wall:.1f} | {len(examples) / wall:.3f} | {compute:.1f} | "
            f"{'' if start is None else f'{start:.1f}'} | {load:.1f} |"
        )
    for name in dict.fromkeys(r[1] for r in rows):
        walls = [r[2] for r in rows if r[1] == name]
        print(
            f"{name}: mean {len(examples) * len(walls) / sum(walls):.3f} examples/s over {len(walls)} round(s)"
        )

    # 2. the scripted backend: Ray's own cost
    many = (examples * (args.scripted_examples // len(examples) + 1))[: args.scripted_examples]
    many = [dataclasses.replace(ex, id=f"{ex.id}#{i}") for i, ex in enumerate(many)]
    sopts = options("scripted", "last", 8)
    schunks = [many[i : i + 8] for i in range(0, len(many), 8)]
    sone = ranker_from_args(sopts, backend_from_args(sopts), show_progress=False)
    s_single, sref, _ = timed(sone, schunks)
    s_ray, sout, _, start = on_ray(sopts, 2, schunks, None)
    assert sout == sref, "Ray ranked the scripted examples differently from one process"
    print(
        f"\n| scripted backend, {len(many)} examples in {len(schunks)} chunks of 8 | seconds | examples/s |"
    )
    print("|---|---|---|")
    print(f"| one process | {s_single:.2f} | {len(many) / s_single:.0f} |")
    print(
        f"| Ray, 2 workers (ready after {start:.1f} s, not counted) | {s_ray:.2f} | {len(many) / s_ray:.0f} |"
    )
    print(
        f"\nRay / one process (scripted, wall time): {s_ray / s_single:.2f}x; "
        f"{1000 * (s_ray - s_single / 2) / len(schunks):.1f} ms per chunk over a perfect 2-way split"
    )
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
