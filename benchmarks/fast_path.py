"""Is the faster step still today's ranking, and how much faster is it? One run, one thread.

    .venv/bin/python benchmarks/fast_path.py [--model iranker-135m] [--sizes 5,20] [--per-scenario 3] \
        [--threads 1] [--baseline 6478316] [--data-dir ../shared/data --tasks rec-movie,router-balance,passage-5 --limit 4]

Every variant ranks in the default mode (``decode=choice``, ``reuse=kv``, bf16 on AMX CPUs):

| variant | session code | adapter |
|---|---|---|
| today | ``--baseline``'s ``KVEvictionSession`` (read from git, ``baseline_code.py``) | unmerged fp32 through PEFT's layers (``peft``) |
| session | the current session (default): no output head for cache-only passes, one cache copy per eviction, leaf rows skipped, the tree mask in one write | ``fp32`` (unmerged, fused layers: PEFT's numbers) |
| session + refresh in the step | as above with ``refresh_in_step=True``: the tokens re-encoded after an eviction ride in the next step's pass | ``fp32`` |
| session + base-dtype adapter | the current session (the backend's default options) | ``base-dtype`` (unmerged, bf16) |
| session + merged adapter | the current session (the backend's default options) | ``merged`` (folded into the base at load) |

For the self-contained examples of ``benchmarks/elimination_cost.py`` at each N (and, with
``--data-dir``, the seeded test examples of the ten-task table's tasks) it prints, from one run:

- seconds per ranking and rankings/s of each variant, and the ratio to today's. Timing is
  interleaved: every variant ranks example i before any ranks example i + 1, so background
  load falls on all of them alike;
- identical final rankings to today's;
- **step agreement** along today's trajectory (teacher forcing): at every step of today's
  ranking the variant's own session scores today's pool and then evicts today's removal; the
  share of steps at which it removes the same candidate, and today's margin (best minus second
  label log-probability) at the steps where they differ;
- the same-text ratio of the issue: an N-candidate ranking of short candidates over a
  2-candidate ranking whose two candidates hold the same N texts (the same prompt length:
  one prefill, one step).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_BASELINE = "6478316"  # the code path of 2026-12-02 (0.23 rankings/s at N = 20)


def teacher_forced(backend: Any, ranker: Any, example: Any, reference: Any) -> list[str]:
    """The candidate ``backend``'s session removes at every step of ``reference``, scoring
    ``reference``'s pool; the session then evicts ``reference``'s removal."""
    from iranker.llm.choice_tree import label_choices, pick_worst

    scenario = ranker._scenario(example.scenario)
    labels = scenario.labels(example)
    session = backend.eviction_session()
    session.prefill(
        scenario.eliminate_prompt(example, example.candidate_ids),
        scenario.candidate_segments(example, example.candidate_ids),
    )
    out = []
    for step in reference.steps:
        scores = session.choice_logprobs(
            scenario.eliminate_prompt(example, step.pool), label_choices([labels[c] for c in step.pool])
        )
        out.append(step.pool[pick_worst(scores)])
        if len(step.pool) > 2:
            session.evict(step.removed)
    session.close()
    return out


def margin(step: Any) -> float:
    """Today's preference for its pick: best minus second label log-probability (from ``raw``)."""
    raw = step.raw
    if not raw.startswith("logprobs="):
        return float("nan")
    vals = sorted(float(x) for x in raw[len("logprobs=[") : -1].split(","))
    return vals[-1] - vals[-2] if len(vals) > 1 else float("inf")


def same_text_pair(example: Any) -> Any:
    """A 2-candidate example whose candidates hold ``example``'s N candidate texts (halves)."""
    from iranker.types import Candidate, RankingExample

    texts = [c.text for c in example.candidates]
    half = len(texts) // 2
    pair = [Candidate("a", "; ".join(texts[:half])), Candidate("b", "; ".join(texts[half:]))]
    return RankingExample(
        f"{example.id}-pair", example.scenario, example.query, pair, {"a": 1.0}, dict(example.meta)
    )


def run_set(title: str, examples: Sequence[Any], variants: list[tuple[str, Any, Any]]) -> None:
    """Rank ``examples`` with every variant (interleaved) and print the table."""
    from elimination_cost import kendall_tau

    names = [v[0] for v in variants]
    secs = {n: 0.0 for n in names}
    orders: dict[str, list] = {n: [] for n in names}
    agree = {n: [0, 0] for n in names}
    differ_margins: dict[str, list[float]] = {n: [] for n in names}
    today_name, today_backend, today_ranker = variants[0]
    for i, ex in enumerate(examples):
        for name, backend, ranker in variants:
            t0 = time.perf_counter()
            r = ranker.rank([ex])[0]
            secs[name] += time.perf_counter() - t0
            orders[name].append(r)
        ref = orders[today_name][i]
        for name, backend, ranker in variants[1:]:
            picks = teacher_forced(backend, ranker, ex, ref)
            for pick, step in zip(picks, ref.steps):
                agree[name][1] += 1
                if pick == step.removed:
                    agree[name][0] += 1
                else:
                    differ_margins[name].append(margin(step))
        # a running line per example, so an interrupted run still says something
        print(
            f"<!-- after {ex.id}: "
            + "; ".join(
                f"{n} {secs[n]:.1f} s" + (f", steps {agree[n][0]}/{agree[n][1]}" if n != today_name else "")
                for n in names
            )
            + " -->",
            flush=True,
        )
    k = len(examples)
    print(f"\n### {title}: {k} examples\n")
    print(
        "| variant | s / ranking | rankings/s | time vs today | identical rankings | Kendall tau vs today | "
        "steps removing today's pick | today's margin where not |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        same = sum(a.order == b.order for a, b in zip(orders[name], orders[today_name]))
        tau = sum(kendall_tau(a.order, b.order) for a, b in zip(orders[name], orders[today_name])) / k
        if name == today_name:
            steps, where = "(reference)", ""
        else:
            a, t = agree[name]
            steps = f"{a}/{t} = {a / t:.1%}"
            where = ", ".join(f"{m:.3f}" for m in sorted(differ_margins[name])) or "—"
        print(
            f"| {name} | {secs[name] / k:.3f} | {k / secs[name]:.2f} | {secs[name] / secs[today_name]:.2f} | "
            f"{same}/{k} | {tau:.3f} | {steps} | {where} |"
        )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="iranker-135m")
    p.add_argument("--sizes", default="5,20")
    p.add_argument("--per-scenario", type=int, default=3)
    p.add_argument(
        "--scenarios",
        default="recommendation,routing,passage",
        help="which scenarios' examples, in this order (default all three)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision of today's session code")
    p.add_argument(
        "--variants",
        default="session,in-step,base-dtype,merged",
        help="which variants beside today's (session, in-step, base-dtype, merged)",
    )
    p.add_argument(
        "--data-dir", default=None, help="also the seeded test examples of these tasks (../shared/data)"
    )
    p.add_argument("--tasks", default="rec-movie,router-balance,passage-5")
    p.add_argument("--limit", type=int, default=4, help="seeded test examples per task")
    args = p.parse_args(argv)

    from baseline_code import BaselineSessions
    from elimination_cost import SessionOptions, build_examples
    from iranker.llm.transformers_backend import TransformersLLM
    from iranker.rankers import IterativeRanker

    def ranker(backend: Any) -> Any:
        return IterativeRanker(backend, batch_size=1, show_progress=False)

    reference = TransformersLLM(args.model, threads=args.threads, adapter="peft")
    today = BaselineSessions(reference, args.baseline)
    fp32 = TransformersLLM(args.model, threads=args.threads, adapter="fp32")
    variants: list[tuple[str, Any, Any]] = [("today", today, ranker(today))]
    wanted = args.variants.split(",")
    if "session" in wanted:
        variants.append(("session", fp32, ranker(fp32)))
    if "in-step" in wanted:
        in_step = SessionOptions(fp32, refresh_in_step=True)
        variants.append(("session + refresh in the step", in_step, ranker(in_step)))
    for mode in ("base-dtype", "merged"):
        if mode in wanted:
            llm = TransformersLLM(args.model, threads=args.threads, adapter=mode)
            variants.append((f"session + {mode} adapter", llm, ranker(llm)))
    print(
        f"model {fp32.name}; dtype {str(fp32.dtype).replace('torch.', '')}; mode decode={variants[0][2].decode}, "
        f"reuse={variants[0][2].reuse}; today = session code of {args.baseline} with PEFT's fp32 adapter layers; "
        f"{args.threads} thread(s)"
    )
    warm = build_examples(5, 1, args.seed)[:1]
    for _, _, r in variants:
        r.rank(warm)
    pairs = []
    for n in [int(x) for x in args.sizes.split(",")]:
        order = args.scenarios.split(",")
        examples = sorted(
            (e for e in build_examples(n, args.per_scenario, args.seed) if e.scenario in order),
            key=lambda e: order.index(e.scenario),
        )
        run_set(f"N = {n} (self-contained examples)", examples, variants)
        rec = next((e for e in examples if e.scenario == "recommendation"), None)
        if rec is not None and n > 2:
            pairs.append((n, rec))
    if args.data_dir:
        from iranker.data.tasks import build_task

        seeded = []
        for task in args.tasks.split(","):
            seeded += build_task(task, args.data_dir, split="test", seed=args.seed, limit=args.limit).examples
        run_set(
            f"seeded test examples of {args.tasks} (seed {args.seed}, {args.limit} each)", seeded, variants
        )
    if pairs:
        print("\n### Same text, N candidates vs 2 (a recommendation example; the issue's 5.45x)\n")
        print("| variant | N | s, N candidates | s, 2 candidates holding the same texts | ratio |")
        print("|---|---|---|---|---|")
        for n, ex in pairs:
            pair = same_text_pair(ex)
            for name, _, r in variants:
                t0 = time.perf_counter()
                r.rank([ex])
                t_n = time.perf_counter() - t0
                t0 = time.perf_counter()
                r.rank([pair])
                t_2 = time.perf_counter() - t0
                print(f"| {name} | {n} | {t_n:.3f} | {t_2:.3f} | {t_n / t_2:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
