"""Does bf16 choice scoring rank like fp32? And how much faster is it, on this CPU?

    .venv/bin/python benchmarks/bf16_agreement.py --model iranker-135m --data-dir ../shared/data \
        [--tasks rec-movie,router-balance,passage-5] [--limit 10] [--threads 1]

The transformers backend runs in bf16 by default on CPUs with AMX / AVX-512 BF16
(``iranker.llm.precision``). Speed must not be bought with silent changes, so this script ranks
the same seeded test examples with ``decode=choice`` in fp32 and in bf16 and prints, from one
run:

- **step agreement**: along the exact fp32 trajectory (``reuse=none``), the share of steps at
  which bf16 scoring of the *same* pool removes the same candidate, overall and on steps where
  fp32 prefers its pick by at least 0.5 nats (near-ties are where rounding can flip a choice);
- **ranking agreement**: the share of examples whose final bf16 ranking (in the default
  ``reuse=kv`` mode) equals the fp32 one, and their mean Kendall tau;
- **speed**: wall seconds per ranking in each dtype and their ratio.

It reads the task data from ``--data-dir`` (the benchmark may; the product does not need it).
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
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--tasks", default="rec-movie,router-balance,passage-5")
    p.add_argument("--limit", type=int, default=10, help="test examples per task (seeded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    from elimination_cost import kendall_tau
    from iranker.data.tasks import build_task
    from iranker.llm.transformers_backend import TransformersLLM
    from iranker.rankers import IterativeRanker

    examples = []
    for task in args.tasks.split(","):
        examples += build_task(task, args.data_dir, split="test", seed=args.seed, limit=args.limit).examples
    fp32 = TransformersLLM(args.model, dtype="float32", threads=args.threads)
    bf16 = TransformersLLM(args.model, dtype="bfloat16", threads=args.threads)

    def ranker(backend, reuse):
        return IterativeRanker(backend, decode="choice", reuse=reuse, batch_size=1, show_progress=False)

    # 1. step agreement along the exact fp32 trajectory
    same = total = clear_same = clear_total = 0
    exact = ranker(fp32, "none")
    for ex in examples:
        ranking = exact.rank([ex])[0]
        scenario = exact._scenario(ex.scenario)
        labels = scenario.labels(ex)
        for step in ranking.steps:
            prompt = scenario.eliminate_prompt(ex, step.pool)
            choices = [f"<answer>{labels[c]}" for c in step.pool]
            s32 = fp32.choice_logprobs([prompt], [choices])[0]
            s16 = bf16.choice_logprobs([prompt], [choices])[0]
            pick32 = max(range(len(s32)), key=lambda i: (s32[i], i))
            pick16 = max(range(len(s16)), key=lambda i: (s16[i], i))
            total += 1
            same += pick32 == pick16
            gap = sorted(s32)[-1] - sorted(s32)[-2]
            if gap >= 0.5:
                clear_total += 1
                clear_same += pick32 == pick16

    # 2. final rankings and speed in the default mode (kv)
    times, orders = {}, {}
    for name, backend in (("fp32", fp32), ("bf16", bf16)):
        r = ranker(backend, "kv")
        t0 = time.perf_counter()
        orders[name] = [x.order for x in r.rank(examples)]
        times[name] = (time.perf_counter() - t0) / len(examples)
    equal = sum(a == b for a, b in zip(orders["fp32"], orders["bf16"]))
    taus = [kendall_tau(a, b) for a, b in zip(orders["fp32"], orders["bf16"])]

    print(f"model {args.model}; tasks {args.tasks}; {len(examples)} examples; {args.threads} thread(s)")
    print("| measure | value |\n|---|---|")
    print(f"| steps with the same pick (bf16 vs fp32, same pool) | {same}/{total} = {same / total:.1%} |")
    if clear_total:
        print(
            f"| ... where fp32 prefers its pick by >= 0.5 nats | {clear_same}/{clear_total} = {clear_same / clear_total:.1%} |"
        )
    print(f"| identical final rankings (kv) | {equal}/{len(examples)} = {equal / len(examples):.1%} |")
    print(f"| mean Kendall tau of final rankings | {sum(taus) / len(taus):.3f} |")
    print(f"| s/ranking fp32 (kv, choice) | {times['fp32']:.2f} |")
    print(f"| s/ranking bf16 (kv, choice) | {times['bf16']:.2f} |")
    print(f"| speed-up bf16 / fp32 | {times['fp32'] / times['bf16']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
