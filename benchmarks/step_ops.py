"""Operator profile of one KV-eviction step, and the cost of bare forward passes by length.

    .venv/bin/python benchmarks/step_ops.py [--model iranker-135m] [--n 20] [--threads 1]

Prefills one self-contained N-candidate recommendation example (``elimination_cost.py``'s
builder), times its choice step (mean of 5 after 2 warm-ups), times bare forward passes of 8,
65, 200 and 800 tokens (the intercept is per-pass overhead, the slope per-token arithmetic),
and prints the torch profiler's operator table for 3 steps. It says whether a step is bound by
overhead (batching helps) or by the tokens it feeds (fewer tokens or fewer steps help).
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
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from elimination_cost import build_examples
    from iranker.llm.choice_tree import label_choices
    from iranker.llm.transformers_backend import TransformersLLM
    from iranker.scenarios import get_scenario

    llm = TransformersLLM(args.model, threads=args.threads)
    ex = build_examples(args.n, 1, 0)[0]
    sc = get_scenario(ex.scenario)
    labels = sc.labels(ex)
    pool = list(ex.candidate_ids)
    s = llm.eviction_session()
    t = time.perf_counter()
    s.prefill(sc.eliminate_prompt(ex, pool), sc.candidate_segments(ex, pool))
    print(f"prefill: {time.perf_counter() - t:.3f} s for {len(s.cached_ids)} tokens")
    prompt, choices = sc.eliminate_prompt(ex, pool), label_choices([labels[x] for x in pool])
    for _ in range(2):
        s.choice_logprobs(prompt, choices)
    t = time.perf_counter()
    for _ in range(5):
        s.choice_logprobs(prompt, choices)
    print(f"one step: {(time.perf_counter() - t) / 5:.3f} s")
    ids = s.cached_ids
    print("\n| tokens in one bare forward pass | s |\n|---|---|")
    with torch.inference_mode():
        for n in (8, 65, 200, 800):
            x = torch.tensor([(ids * (1 + n // max(1, len(ids))))[:n]])
            llm.model(input_ids=x, logits_to_keep=1)
            t = time.perf_counter()
            for _ in range(3):
                llm.model(input_ids=x, logits_to_keep=1)
            print(f"| {n} | {(time.perf_counter() - t) / 3:.3f} |")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            s.choice_logprobs(prompt, choices)
    print()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


if __name__ == "__main__":
    sys.exit(main())
