"""Held-out pi(best) of several models on the same step rows: pick a checkpoint by measurement.

    .venv/bin/python benchmarks/score_checkpoints.py runs/steps-test smollm2-135m runs/a/checkpoint-60 ... \
        [--rows 240] [--threads 1]

For every model (alias or folder; a trained folder is loaded with its templates) it scores the
first ``--rows`` rows of the step dataset (task-balanced, the same rows for every model) with the
training code's own ``evaluate_rows`` - the policy is the softmax over the pool's label
log-probabilities - and prints per model the mean pi(best) (lower is better) and the
removed-non-best rate (higher is better), overall and per task, with a 95% interval of the mean
pi(best) (normal approximation over rows).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("steps", help="step dataset folder (e.g. from `iranker data steps --split test`)")
    p.add_argument("models", nargs="+")
    p.add_argument("--rows", type=int, default=240)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import datasets
    import torch

    from iranker.llm.transformers_backend import TransformersLLM
    from iranker.train.choice_trainer import balanced_rows, encode_row, policy_scores, row_stats
    from iranker.train.common import dataset_paths

    parquet, _ = dataset_paths(args.steps)
    raw = balanced_rows(datasets.Dataset.from_parquet(str(parquet)), args.rows)
    print(f"{len(raw)} rows of {args.steps}; {args.threads} thread(s)")
    print("| model | mean pi(best) [95% CI] | removed non-best | per task pi(best) | s |")
    print("|---|---|---|---|---|")
    for name in args.models:
        llm = TransformersLLM(name, threads=args.threads)
        rows = [encode_row(llm.tokenizer, r) for r in raw]
        t0 = time.perf_counter()
        pis, rnb, by_task = [], [], {}
        with torch.no_grad():
            for row in rows:
                (s,) = policy_scores(torch, llm.model, llm.tokenizer.pad_token_id, [row])
                st = row_stats(torch, s, row)
                pis.append(st["pi_best"])
                rnb.append(st["removed_non_best"])
                by_task.setdefault(row.task, []).append(st["pi_best"])
        n = len(pis)
        mean = sum(pis) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in pis) / max(1, n - 1))
        half = 1.96 * sd / math.sqrt(n)
        tasks = ", ".join(f"{t} {sum(v) / len(v):.3f}" for t, v in sorted(by_task.items()))
        print(
            f"| {name} | {mean:.4f} [{mean - half:.4f}, {mean + half:.4f}] | {sum(rnb) / n:.3f} | {tasks} | "
            f"{time.perf_counter() - t0:.0f} |",
            flush=True,
        )
        del llm
    return 0


if __name__ == "__main__":
    sys.exit(main())
