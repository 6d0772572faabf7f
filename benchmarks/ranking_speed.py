"""How fast does the default model rank, in the mode it records? Rankings per second at N = 5/10/20.

    .venv/bin/python benchmarks/ranking_speed.py [--model iranker-135m] [--threads 1] [--per-scenario 3]

For N in {5, 10, 20} it ranks the benchmark's self-contained examples (the same builders as
``benchmarks/elimination_cost.py``: ml-100k users from the recbole package, the demo's passage
and routing queries with distractors; nothing is downloaded) with ``IterativeRanker`` built
with no flags, i.e. the model's recorded mode (``iranker-135m``: ``decode=choice``,
``reuse=kv``), and prints from one run:

- rankings per second (wall clock, after a warm-up ranking), per N;
- prompt tokens processed per ranking as a ratio to one direct call on the same example (the
  unit: one prompt with all N candidates), i.e. what iterative elimination costs on top of the
  prompt a single-call ranker must read anyway;
- the dtype the backend chose (bf16 on AMX CPUs);
- agreement of the recorded mode with exact re-prompting (``reuse=none``, same decode): the
  share of identical final rankings and their mean Kendall tau.
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
    p.add_argument("--sizes", default="5,10,20")
    p.add_argument("--per-scenario", type=int, default=3, help="examples per scenario and N (default 3)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from elimination_cost import build_examples, kendall_tau
    from iranker.llm.transformers_backend import TransformersLLM
    from iranker.rankers import IterativeRanker
    from iranker.scenarios import get_scenario

    llm = TransformersLLM(args.model, threads=args.threads)
    ranker = IterativeRanker(llm, batch_size=1, show_progress=False)
    print(
        f"model {llm.name}; dtype {str(llm.dtype).replace('torch.', '')}; mode decode={ranker.decode}, "
        f"reuse={ranker.reuse}; {args.threads} thread(s)"
    )
    exact = IterativeRanker(llm, batch_size=1, show_progress=False, decode=ranker.decode, reuse="none")
    print(
        "| N | examples | rankings/s | s/ranking | prompt tokens / ranking | one direct call | ratio | "
        "same rankings as reuse=none | Kendall tau vs reuse=none |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in [int(x) for x in args.sizes.split(",")]:
        examples = build_examples(n, args.per_scenario, args.seed)
        ranker.rank(examples[:1])  # warm-up
        t0 = time.perf_counter()
        rankings = ranker.rank(examples)
        secs = time.perf_counter() - t0
        direct = 0
        for ex in examples:
            scenario = (
                ranker._scenario(ex.scenario) if hasattr(ranker, "_scenario") else get_scenario(ex.scenario)
            )
            direct += len(
                llm.tokenizer(llm.render(scenario.direct_prompt(ex)), add_special_tokens=False)["input_ids"]
            )
        processed = sum(r.usage.prompt_tokens for r in rankings)
        reference = exact.rank(examples)
        same_rank = sum(a.order == b.order for a, b in zip(rankings, reference))
        taus = [kendall_tau(a.order, b.order) for a, b in zip(rankings, reference)]
        print(
            f"| {n} | {len(examples)} | {len(examples) / secs:.2f} | {secs / len(examples):.2f} | "
            f"{processed / len(examples):.0f} | {direct / len(examples):.0f} | {processed / direct:.2f} | "
            f"{same_rank}/{len(examples)} | {sum(taus) / len(taus):.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
