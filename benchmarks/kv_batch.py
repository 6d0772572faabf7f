"""Rankings per second with KV-eviction steps batched across examples, and with pool pruning.

    .venv/bin/python benchmarks/kv_batch.py [--model iranker-135m] [--threads 1] [--n 20] \
        [--examples 8] [--batches 1,2,4,8] [--prune quarter]

Ranks the same ``--examples`` self-contained N = ``--n`` examples (the builders of
``benchmarks/elimination_cost.py``: ml-100k users from the recbole package, the demo's passage
and routing queries with distractors; nothing is downloaded) in the model's recorded mode
(``iranker-135m``: choice + kv) and prints, from one run:

- today's path (every example's steps one after another, ``kv_batch=False``) as the unit;
- batched steps at each batch size: rankings/s, the ratio to today's, and the share of
  elimination steps that remove what today's path removes along its own trajectory and of
  identical final rankings (bf16 kernels can round a larger batch differently);
- each ``--prune`` schedule (today's path otherwise): rankings/s, ratio, identical rankings.

The variants are interleaved example by example in one process, so a busy machine slows all
of them alike; only the ratios mean anything on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="iranker-135m")
    p.add_argument("--n", type=int, default=20, help="candidates per example (default 20)")
    p.add_argument("--examples", type=int, default=8, help="examples, spread over the scenarios (default 8)")
    p.add_argument("--batches", default="1,2,4,8")
    p.add_argument("--prune", default="quarter", help="comma list of schedules to time ('' for none)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the whole comparison (default 1)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from elimination_cost import build_examples, kendall_tau
    from iranker.llm.transformers_backend import TransformersLLM
    from iranker.rankers import IterativeRanker

    llm = TransformersLLM(args.model, threads=args.threads)
    per = max(1, -(-args.examples // 3))
    examples = build_examples(args.n, per, args.seed)[: args.examples]
    batches = [int(x) for x in args.batches.split(",") if x]
    prunes = [x for x in args.prune.split(",") if x]
    today = IterativeRanker(llm, kv_batch=False, batch_size=1, show_progress=False)
    variants = {"today (steps one example at a time)": today}
    for b in batches:
        variants[f"batched steps, batch {b}"] = IterativeRanker(
            llm, batch_size=b, kv_batch=True, show_progress=False
        )
    for sched in prunes:
        variants[f"prune {sched} (steps one example at a time)"] = IterativeRanker(
            llm, batch_size=1, prune=sched, show_progress=False
        )
    print(
        f"model {llm.name}; dtype {str(llm.dtype).replace('torch.', '')}; mode decode={today.decode}, "
        f"reuse={today.reuse}; {args.threads} thread(s); {len(examples)} examples of N = {args.n}"
    )
    for r in variants.values():
        r.rank(examples[:1])  # warm-up
    secs = {k: 0.0 for k in variants}
    out: dict[str, list] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, r in variants.items():  # all examples of a variant at once: that is what batches
            t0 = time.perf_counter()
            rankings = r.rank(examples)
            secs[name] += time.perf_counter() - t0
            out[name] = rankings
    ref = out["today (steps one example at a time)"]
    base = secs["today (steps one example at a time)"]
    print()
    print(
        "| variant | rankings/s | s/ranking | vs today | steps identical to today's | identical rankings | Kendall tau |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in variants:
        rs = out[name]
        n_rank = len(rs) * args.rounds
        steps = same = 0
        for a, b in zip(rs, ref):
            if "prune" in name:
                continue
            for sa, sb in zip(a.steps, b.steps):
                steps += 1
                same += sa.removed == sb.removed and sa.pool == sb.pool
        agree = "—" if "prune" in name else f"{same}/{steps} = {100 * same / max(1, steps):.1f}%"
        ident = sum(a.order == b.order for a, b in zip(rs, ref))
        tau = sum(kendall_tau(a.order, b.order) for a, b in zip(rs, ref)) / len(rs)
        print(
            f"| {name} | {n_rank / secs[name]:.3f} | {secs[name] / n_rank:.2f} | {base / secs[name]:.2f}× | "
            f"{agree} | {ident}/{len(rs)} | {tau:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
