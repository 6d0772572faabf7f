"""What does iterative elimination cost, and what do the fast modes buy?

    .venv/bin/python benchmarks/elimination_cost.py            # the committed table (~15 min, 1 thread)
    .venv/bin/python benchmarks/elimination_cost.py --quick    # a smoke run (N=5,10; ~5 min)

(add ``--out results/<date>-elimination-cost/table.md`` to write the report, as committed).

For N in {5, 10, 20} candidates and the three scenarios it ranks the same small set of examples
with the embedded SmolLM2-135M (transformers backend, CPU, 1 thread) in every mode:

| mode | what runs |
|---|---|
| direct | one call that asks for the full order (the unit) |
| naive | exact re-prompting: the whole prompt is prefilled at every step (generation) |
| kv | KV-cache eviction: prefill once, evict the eliminated candidate, re-run only the question (generation) |
| choice | exact re-prompting, single-forward choice scoring of the labels |
| kv+choice | KV-cache eviction and single-forward choice scoring |
| kv+choice, cached question | as kv+choice, but the question's keys are cached too; each step recomputes only the last prompt token |

and prints per mode and N: prompt tokens processed per ranking, wall time per ranking, both as
ratios to one direct call; the agreement of each fast mode with its exact counterpart on the
same examples (share of identical steps, Kendall's tau of the final orders) and the MRR of
every mode. Prompt tokens are the tokens pushed through the model for the prompt (prefill,
re-sent prompts, the question and re-encoded tokens in KV mode); generated tokens and
choice-trie nodes are counted separately as "answer tokens". A second table scores each exact
choice step's pool with KV sessions that follow the exact trajectory (teacher forcing), for
the issue's literal design and the defaults, split by how clearly exact re-prompting preferred
its label.

Data: built from what ships with iranker and its demo, so the benchmark needs no download -
recommendation = ml-100k users (the ``recbole`` package's files, as in ``iranker demo``):
10 history movies, the next movie among N candidates; passage = the 5 hand-written demo
queries, each with its own 5 passages plus the other queries' passages as distractors (up to
25); routing = the 5 demo queries with the 5 demo LLMs plus 15 further LLM descriptions
written here (synthetic pool: their relevance is 0, only the demo's best LLM is relevant).
Candidates are shuffled with a fixed seed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from iranker.types import Candidate, Ranking, RankingExample  # noqa: E402

#: LLMs added to the 5 demo LLMs so that routing pools reach 20 (descriptions written for this
#: benchmark; prices are rough public list prices in USD per million tokens, input/output).
EXTRA_LLMS: list[tuple[str, str, float, float]] = [
    (
        "gpt-4o-mini",
        "OpenAI's small model: cheap and fast, good at everyday questions and light coding, weaker on hard reasoning.",
        0.15,
        0.6,
    ),
    (
        "claude-3.5-sonnet",
        "Anthropic's mid-size model: strong at coding, analysis and careful writing, fairly expensive.",
        3.0,
        15.0,
    ),
    (
        "claude-3-haiku",
        "Anthropic's smallest model: very fast and cheap, fine for classification and short answers.",
        0.25,
        1.25,
    ),
    (
        "gemini-1.5-pro",
        "Google's large model with a very long context: strong at reasoning over long documents, expensive.",
        1.25,
        5.0,
    ),
    (
        "gemini-1.5-flash",
        "Google's fast model: cheap, good at summaries and extraction, weaker at multi-step math.",
        0.075,
        0.3,
    ),
    (
        "mixtral-8x7b-instruct",
        "Mistral's mixture-of-experts model: cheap, decent at general chat and simple code.",
        0.45,
        0.45,
    ),
    (
        "mixtral-8x22b-instruct",
        "Mistral's large mixture-of-experts model: good general knowledge and reasoning, moderately priced.",
        1.2,
        1.2,
    ),
    (
        "qwen2.5-7b-instruct",
        "Alibaba's 7B open model: cheap, surprisingly good at math for its size, limited world knowledge.",
        0.1,
        0.1,
    ),
    ("deepseek-v3", "DeepSeek's large open model: strong at code and math at a low price.", 0.27, 1.1),
    (
        "deepseek-r1",
        "DeepSeek's reasoning model: thinks at length before answering, the best of the open models at hard math, slow.",
        0.55,
        2.19,
    ),
    (
        "llama-3.3-70b-instruct",
        "Meta's updated 70B open model: strong instruction following and general knowledge, moderately priced.",
        0.6,
        0.6,
    ),
    (
        "gemma-2-9b-it",
        "Google's 9B open model: cheap, fluent at simple questions and summaries, weak at long reasoning.",
        0.2,
        0.2,
    ),
    (
        "gemma-2-27b-it",
        "Google's 27B open model: good at general questions, moderately priced, average at code.",
        0.8,
        0.8,
    ),
    (
        "phi-3-mini",
        "Microsoft's 3.8B model: the cheapest here, fine for simple factual questions, weak at everything long.",
        0.05,
        0.05,
    ),
    (
        "command-r-plus",
        "Cohere's retrieval-oriented model: good at grounded answers with citations, expensive for its quality.",
        2.5,
        10.0,
    ),
]


# -- examples -------------------------------------------------------------------------------------
def _shuffled(example: RankingExample, seed: int) -> RankingExample:
    cands = list(example.candidates)
    random.Random(f"{seed}:{example.id}").shuffle(cands)
    return RankingExample(
        example.id, example.scenario, example.query, cands, dict(example.relevance), dict(example.meta)
    )


def passage_examples(n: int, count: int, seed: int = 0) -> list[RankingExample]:
    from iranker.demo import packaged_examples

    base = packaged_examples("demo_passage")
    out = []
    for ex in base[:count]:
        own = [Candidate(f"{ex.id}-{c.id}", c.text, dict(c.meta)) for c in ex.candidates]
        others = [
            Candidate(f"{o.id}-{c.id}", c.text, dict(c.meta))
            for o in base
            if o.id != ex.id
            for c in o.candidates
        ]
        random.Random(f"{seed}:{ex.id}:distractors").shuffle(others)
        relevance = {f"{ex.id}-{k}": v for k, v in ex.relevance.items()}
        best = max(relevance, key=relevance.get)
        own_sorted = sorted(own, key=lambda c: (c.id != best, c.id))  # keep the best passage
        pool = (own_sorted + others)[:n]
        keep = {c.id for c in pool}
        out.append(
            _shuffled(
                RankingExample(
                    f"{ex.id}-n{n}",
                    "passage",
                    ex.query,
                    pool,
                    {k: v for k, v in relevance.items() if k in keep},
                    dict(ex.meta),
                ),
                seed,
            )
        )
    return out


def routing_examples(n: int, count: int, seed: int = 0) -> list[RankingExample]:
    from iranker.demo import packaged_examples

    out = []
    for ex in packaged_examples("demo_routing")[:count]:
        extra = [
            Candidate(name, text, {"name": name, "input_price": p_in, "output_price": p_out})
            for name, text, p_in, p_out in EXTRA_LLMS
        ]
        best = ex.best_id()
        own = sorted(ex.candidates, key=lambda c: c.id != best)
        pool = (own + extra)[:n]
        keep = {c.id for c in pool}
        out.append(
            _shuffled(
                RankingExample(
                    f"{ex.id}-n{n}",
                    "routing",
                    ex.query,
                    pool,
                    {k: v for k, v in ex.relevance.items() if k in keep},
                    dict(ex.meta),
                ),
                seed,
            )
        )
    return out


def recommendation_examples(n: int, count: int, seed: int = 0) -> list[RankingExample]:
    from iranker.demo import recommendation_examples as ml100k

    return [
        RankingExample(f"{ex.id}-n{n}", ex.scenario, ex.query, ex.candidates, ex.relevance, ex.meta)
        for ex in ml100k(count, candidates=n, seed=seed)
    ]


def build_examples(n: int, per_scenario: int, seed: int = 0) -> list[RankingExample]:
    return (
        recommendation_examples(n, per_scenario, seed)
        + routing_examples(n, per_scenario, seed)
        + passage_examples(n, per_scenario, seed)
    )


# -- modes ----------------------------------------------------------------------------------------
class SessionOptions:
    """A backend proxy whose eviction sessions use fixed options (e.g. the cached question)."""

    def __init__(self, llm: Any, **options: Any) -> None:
        self._llm = llm
        self._options = options
        self.name = llm.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self._llm.generate(*args, **kwargs)

    def choice_logprobs(self, *args: Any, **kwargs: Any) -> Any:
        return self._llm.choice_logprobs(*args, **kwargs)

    def eviction_session(self, **options: Any) -> Any:
        return self._llm.eviction_session(**{**self._options, **options})


@dataclass
class Mode:
    name: str
    reference: str | None  # the exact mode it must agree with
    build: Callable[[Any, int, int], Any]  # (llm, n, batch) -> ranker
    choice: bool = False


def modes(max_new_tokens: int) -> list[Mode]:
    from iranker.rankers import DirectRanker, IterativeRanker

    common = dict(max_new_tokens=max_new_tokens, reask=0, show_progress=False)
    return [
        Mode(
            "direct",
            None,
            lambda llm, n, b: DirectRanker(
                llm, reask=0, batch_size=b, max_new_tokens=5 * n + 8, show_progress=False
            ),
        ),
        Mode("naive", None, lambda llm, n, b: IterativeRanker(llm, batch_size=b, **common)),
        Mode("kv", "naive", lambda llm, n, b: IterativeRanker(llm, batch_size=b, reuse="kv", **common)),
        Mode(
            "choice",
            None,
            lambda llm, n, b: IterativeRanker(llm, batch_size=b, decode="choice", **common),
            True,
        ),
        Mode(
            "kv+choice",
            "choice",
            lambda llm, n, b: IterativeRanker(llm, batch_size=b, decode="choice", reuse="kv", **common),
            True,
        ),
        Mode(
            "kv+choice, cached question",
            "choice",
            lambda llm, n, b: IterativeRanker(
                SessionOptions(llm, fresh_tokens=1), batch_size=b, decode="choice", reuse="kv", **common
            ),
            True,
        ),
    ]


# -- measures -------------------------------------------------------------------------------------
def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's tau between two orders of the same items (no ties)."""
    pos = {x: i for i, x in enumerate(b)}
    n = len(a)
    if n < 2:
        return 1.0
    conc = disc = 0
    for i in range(n):
        for j in range(i + 1, n):
            if pos[a[i]] < pos[a[j]]:
                conc += 1
            else:
                disc += 1
    return (conc - disc) / (n * (n - 1) / 2)


def step_agreement(a: Ranking, b: Ranking) -> tuple[int, int]:
    """(identical steps, steps): step i removed the same candidate in both runs."""
    same = sum(1 for x, y in zip(a.steps, b.steps) if x.removed == y.removed)
    return same, max(len(a.steps), len(b.steps))


def valid_share(rankings: Sequence[Ranking]) -> str:
    """Share of steps whose answer named a candidate (the rest went to the fallback policy);
    for a direct ranking, whether its answer was parsed at all."""
    steps = [s for r in rankings for s in r.steps]
    if not steps:
        return "—"
    return f"{sum(s.valid for s in steps) / len(steps):.0%}"


def mrr(rankings: Sequence[Ranking], examples: Sequence[RankingExample]) -> float:
    from iranker.metrics import default_threshold, reciprocal_rank

    by_id = {ex.id: ex for ex in examples}
    vals = [
        reciprocal_rank(
            r.order, by_id[r.example_id].relevance, threshold=default_threshold(by_id[r.example_id])
        )
        for r in rankings
    ]
    return sum(vals) / len(vals) if vals else float("nan")


def prompt_len(llm: Any, messages: Any) -> int:
    return len(llm.tokenizer(llm.render(messages), add_special_tokens=False)["input_ids"])


def exact_choice_tokens(llm: Any, ranking: Ranking, example: RankingExample) -> int:
    """Prompt tokens the exact choice mode processed: one full prompt per step."""
    from iranker.scenarios import get_scenario

    sc = get_scenario(example.scenario)
    return sum(prompt_len(llm, sc.eliminate_prompt(example, step.pool)) for step in ranking.steps)


def choice_nodes(llm: Any, ranking: Ranking, example: RankingExample) -> int:
    """Choice-trie tokens scored over a ranking (the 'answer' of choice modes)."""
    from iranker.llm.kv_eviction import ChoiceTrie
    from iranker.scenarios import get_scenario

    labels = get_scenario(example.scenario).labels(example)
    tok = llm.tokenizer
    return sum(
        len(
            ChoiceTrie.build(
                [tok(f"<answer>{labels[c]}", add_special_tokens=False)["input_ids"] for c in step.pool]
            )
        )
        for step in ranking.steps
    )


@dataclass
class Cell:
    """One (N, mode): per-ranking numbers over all examples."""

    prompt_tokens: list[int] = field(default_factory=list)
    answer_tokens: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    rankings: list[Ranking] = field(default_factory=list)
    examples: list[RankingExample] = field(default_factory=list)


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


#: KV variants checked along the exact choice trajectory (teacher forcing): the issue's literal
#: design (original position ids, nothing re-encoded) against the defaults and the cached question
FORCED_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("kv: positions=next, refresh=0 (literal design)", {"positions": "next", "refresh": 0}),
    ("kv: positions=shift, refresh=0", {"positions": "shift", "refresh": 0}),
    ("kv: positions=next, refresh=8", {"positions": "next", "refresh": 8}),
    ("kv: positions=shift, refresh=8 (default)", {}),
    ("kv: default + cached question", {"fresh_tokens": 1}),
]
MARGIN = 0.5


@dataclass
class Forced:
    same: int = 0
    total: int = 0
    clear_same: int = 0
    clear_total: int = 0
    tokens: int = 0


def teacher_forced(
    llm: Any,
    exact: Sequence[Ranking],
    examples: Sequence[RankingExample],
    cells: dict[tuple[int, str], Forced],
    n: int,
) -> None:
    """Score each exact choice step's pool with KV sessions that follow the exact trajectory.

    Free-running modes diverge after their first different step; this isolates how often a
    single step of KV choice scoring picks what exact re-prompting picks, and whether the
    disagreements are near-ties (exact gap between the two best labels < ``MARGIN`` nats).
    """
    import json

    from iranker.scenarios import get_scenario

    for ranking, ex in zip(exact, examples):
        sc = get_scenario(ex.scenario)
        labels = sc.labels(ex)
        pool = list(ex.candidate_ids)
        sessions = [(name, llm.eviction_session(**opts)) for name, opts in FORCED_VARIANTS]
        for _, session in sessions:
            session.prefill(sc.eliminate_prompt(ex, pool), sc.candidate_segments(ex, pool))
        for step in ranking.steps:
            assert step.pool == pool
            ref = json.loads(step.raw.split("=", 1)[1])
            top = sorted(ref)[-2:]
            clear = len(ref) < 2 or top[1] - top[0] >= MARGIN
            messages = sc.eliminate_prompt(ex, pool)
            choices = [f"<answer>{labels[c]}" for c in pool]
            for name, session in sessions:
                scores = session.choice_logprobs(messages, choices)
                pick = max(range(len(scores)), key=lambda i: (scores[i], i))
                cell = cells.setdefault((n, name), Forced())
                ok = pool[pick] == step.removed
                cell.same += ok
                cell.total += 1
                cell.clear_same += ok and clear
                cell.clear_total += clear
            pool.remove(step.removed)
            for _, session in sessions:
                if len(pool) > 1:
                    session.evict(step.removed)
        for name, session in sessions:
            cells[(n, name)].tokens += session.stats.prompt_tokens
            session.close()


def forced_table(forced: dict[tuple[int, str], Forced], sizes: Sequence[int]) -> str:
    lines = [
        f"| N | KV variant | steps agreeing with exact | on clear steps (exact gap ≥ {MARGIN} nats) "
        "| clear steps | prompt tok / ranking |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for name, _ in FORCED_VARIANTS:
            c = forced.get((n, name))
            if c is None or not c.total:
                continue
            clear = (
                f"{c.clear_same / c.clear_total:.0%} ({c.clear_same}/{c.clear_total})"
                if c.clear_total
                else "—"
            )
            lines.append(
                f"| {n} | {name} | {c.same / c.total:.0%} ({c.same}/{c.total}) | {clear} "
                f"| {c.clear_total / c.total:.0%} | {c.tokens / c.total * (n - 1):.0f} |"
            )
    return "\n".join(lines)


# -- run ------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> tuple[dict[tuple[int, str], Cell], list[Mode], dict[str, Any]]:
    """Rank every (N, scenario) group in every mode; ``info["forced"]`` holds teacher forcing."""
    from iranker.llm.transformers_backend import TransformersLLM

    t_load = time.time()
    llm = TransformersLLM("smollm2-135m", threads=args.threads, batch_size=8)
    info: dict[str, Any] = {"load_s": time.time() - t_load, "forced": {}}
    mode_list = modes(args.max_new_tokens)
    cells: dict[tuple[int, str], Cell] = {}
    # warm-up (first calls allocate)
    warm = build_examples(5, 1, args.seed)[:1]
    mode_list[4].build(llm, 5, 1).rank(warm)
    started = time.time()
    for n in args.sizes:
        groups: dict[str, list[RankingExample]] = {}
        for ex in build_examples(n, args.per_scenario[n], args.seed):
            groups.setdefault(ex.scenario, []).append(ex)
        for scenario, group in groups.items():
            for mode in mode_list:
                ranker = mode.build(llm, n, len(group))
                t0 = time.perf_counter()
                rankings = ranker.rank(group)
                dt = time.perf_counter() - t0
                cell = cells.setdefault((n, mode.name), Cell())
                for ex, r in zip(group, rankings):
                    if mode.choice and not r.usage.prompt_tokens:
                        cell.prompt_tokens.append(exact_choice_tokens(llm, r, ex))
                    else:
                        cell.prompt_tokens.append(r.usage.prompt_tokens)
                    cell.answer_tokens.append(
                        choice_nodes(llm, r, ex) if mode.choice else r.usage.completion_tokens
                    )
                    cell.seconds.append(dt / len(group))
                    cell.rankings.append(r)
                    cell.examples.append(ex)
                print(
                    f"  N={n:<3d} {scenario:<15s} {mode.name:<27s} {dt / len(group):7.2f} s/ranking"
                    f"  ({time.time() - started:5.0f} s elapsed)",
                    file=sys.stderr,
                    flush=True,
                )
                if mode.name == "choice":
                    teacher_forced(llm, rankings, group, info["forced"], n)
    info["run_s"] = time.time() - started
    return cells, mode_list, info


def table(cells: dict[tuple[int, str], Cell], mode_list: list[Mode], sizes: Sequence[int]) -> str:
    lines = [
        "| N | mode | prompt tok / ranking | × direct | answer tok / ranking | wall s / ranking | × direct | × naive "
        "| valid answers | identical steps vs exact | Kendall τ vs exact | MRR |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        direct = cells[(n, "direct")]
        naive = cells[(n, "naive")]
        d_tok, d_s, n_s = mean(direct.prompt_tokens), mean(direct.seconds), mean(naive.seconds)
        for mode in mode_list:
            c = cells[(n, mode.name)]
            agree = tau = "—"
            if mode.reference:
                ref = cells[(n, mode.reference)]
                same = total = 0
                taus = []
                for a, b in zip(c.rankings, ref.rankings):
                    s, t = step_agreement(a, b)
                    same, total = same + s, total + t
                    taus.append(kendall_tau(a.order, b.order))
                agree = f"{same / total:.0%} ({same}/{total}) vs {mode.reference}"
                tau = f"{mean(taus):.2f}"
            lines.append(
                f"| {n} | {mode.name} | {mean(c.prompt_tokens):.0f} | {mean(c.prompt_tokens) / d_tok:.2f} "
                f"| {mean(c.answer_tokens):.0f} | {mean(c.seconds):.1f} | {mean(c.seconds) / d_s:.2f} "
                f"| {mean(c.seconds) / n_s:.2f} | {valid_share(c.rankings)} | {agree} | {tau} "
                f"| {mrr(c.rankings, c.examples):.3f} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", default="5,10,20", help="candidate counts N (default 5,10,20)")
    p.add_argument(
        "--per-scenario",
        default="2,1,1",
        help="examples per scenario for each N, one number or one per size (default 2,1,1)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=12,
        help="generation budget per elimination step (default 12; no re-ask)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: N=5 and 10, one example per scenario")
    p.add_argument("--out", default=None, help="also write the report (markdown) to this file")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in str(args.sizes).split(",") if x]
    counts = [int(x) for x in str(args.per_scenario).split(",") if x]
    if args.quick:
        args.sizes, counts = [5, 10], [1]
    if len(counts) == 1:
        counts = counts * len(args.sizes)
    if len(counts) != len(args.sizes):
        p.error("--per-scenario needs one number or one per size")
    args.per_scenario = dict(zip(args.sizes, counts))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cells, mode_list, info = run(args)
    command = "benchmarks/elimination_cost.py " + " ".join(sys.argv[1:] if argv is None else argv)
    import torch
    import transformers

    header = [
        f"# Elimination cost - {_dt.date.today().isoformat()}",
        "",
        f"Command: `.venv/bin/python {command.strip()}`",
        "",
        f"Model: embedded SmolLM2-135M (transformers {transformers.__version__}, torch {torch.__version__}, CPU, "
        f"{args.threads} thread(s)); {platform.machine()}, {os.cpu_count()} cores (shared: other jobs were running). "
        f"Examples per scenario for each N: {args.per_scenario}, seed {args.seed}; generation: greedy, "
        f"≤{args.max_new_tokens} new tokens per step, no re-ask; direct: ≤5N+8 new tokens. "
        f"Run time {info['run_s'] / 60:.1f} min.",
        "",
        "",
    ]
    report = (
        "\n".join(header)
        + table(cells, mode_list, args.sizes)
        + "\n\n"
        + "KV choice scoring along the exact choice trajectory (teacher forcing: every variant "
        "scores the pool exact re-prompting saw, then evicts what it removed):\n\n"
        + forced_table(info["forced"], args.sizes)
        + "\n"
    )
    print(report)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
