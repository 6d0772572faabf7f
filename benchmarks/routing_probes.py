"""Probes that tell a router that reads prices from one that remembers names.

    python benchmarks/routing_probes.py write OUT --data-dir DATA [--n 60] [--seed 0]
    iranker eval --input OUT/price-permuted.jsonl --methods iterative,random --model M --out OUT/eval-perm-M
    python benchmarks/routing_probes.py report OUT/eval-*

``write`` takes ``--n`` seeded informative test queries of dcrouter (``router-cost``, the nine
LLMs) and writes three example files, each relabelled by the one routing utility
(:func:`iranker.data.routing_augment.relabel_routing`) so ``iranker eval`` scores them:

- ``price-permuted.jsonl``: real names, descriptions without their price sentences, and the
  query's nine real prices **permuted among the LLMs** (seeded per query). A model that learned
  "gemma-2-9b-it is cheap" ranks gemma first wherever its price went; one that reads prices
  follows them.
- ``aliased.jsonl``: real prices, every name replaced by a per-query alias (also inside
  descriptions). A model that ranks by names loses here; one that reads does not.
- ``pairs.jsonl``: two candidates, the query's cheapest and its most expensive LLM (prices
  permuted first, so the cheap one is not always the same name); cost objective.

``report`` reads ``predictions.jsonl`` of eval folders and prints, per method: how often the
top-1 is a cheapest candidate (ties count; on pairs: the cheaper ranked first), the mean price
rank of the top-1 (1 + the number of strictly cheaper candidates), and how many distinct LLMs
are ranked first.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path


def _neutral(example, rng: random.Random, *, permute: bool, alias: bool):
    from iranker.data.routing import price_from
    from iranker.data.routing_augment import (
        RoutingAugment,
        augment_routing_example,
        relabel_routing,
        strip_price_sentences,
    )
    from iranker.scenarios.routing import objective_weight

    w = objective_weight(example.meta)
    if alias:
        return augment_routing_example(example, rng, w, RoutingAugment(aliases=True, prices=False))
    prices = [(c.meta.get("input_price"), c.meta.get("output_price")) for c in example.candidates]
    if permute:
        rng.shuffle(prices)
    cands = []
    for c, (p_in, p_out) in zip(example.candidates, prices):
        cands.append(
            replace(
                c,
                text=strip_price_sentences(c.text) or c.id,
                meta={**c.meta, "input_price": p_in, "output_price": p_out},
            )
        )
    cost = {c.id: price_from(c.meta["input_price"], c.meta["output_price"]) for c in cands}
    return relabel_routing(replace(example, candidates=cands), cost, w)


def write(args: argparse.Namespace) -> int:
    from iranker.data.io import write_examples
    from iranker.data.routing_augment import relabel_routing
    from iranker.data.tasks import build_task
    from iranker.scenarios.routing import objective_weight

    td = build_task("router-cost", args.data_dir, split="test", seed=args.seed)
    informative = [e for e in td.examples if e.meta.get("informative")]
    chosen = random.Random(args.seed).sample(informative, min(args.n, len(informative)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"price-permuted": [], "aliased": [], "pairs": []}
    for ex in chosen:
        rng = random.Random(f"{args.seed}:{ex.id}")
        files["price-permuted"].append(
            replace(_neutral(ex, rng, permute=True, alias=False), id=f"perm:{ex.id}")
        )
        files["aliased"].append(replace(_neutral(ex, rng, permute=False, alias=True), id=f"alias:{ex.id}"))
        perm = _neutral(ex, random.Random(f"{args.seed}:pair:{ex.id}"), permute=True, alias=False)
        cost = perm.meta["cost"]
        lo = min(cost.values())
        hi = max(cost.values())
        cheap = sorted(c for c in cost if cost[c] == lo)[0]
        dear = sorted(c for c in cost if cost[c] == hi)[0]
        pair = [perm.candidate(cheap), perm.candidate(dear)]
        random.Random(f"{args.seed}:order:{ex.id}").shuffle(pair)
        two = replace(
            perm,
            id=f"pair:{ex.id}",
            candidates=pair,
            meta={**perm.meta, "scores": {c.id: perm.meta["scores"][c.id] for c in pair}},
        )
        files["pairs"].append(
            relabel_routing(two, {c.id: cost[c.id] for c in pair}, objective_weight(perm.meta))
        )
    for name, exs in files.items():
        for e in exs:
            e.meta["task"] = f"probe-{name}"
        write_examples(out / f"{name}.jsonl", exs)
        print(f"wrote {len(exs)} examples to {out / f'{name}.jsonl'}", file=sys.stderr)
    return 0


def report(args: argparse.Namespace) -> int:
    from iranker.data.routing import price_from

    print(
        "| eval folder | probe | method | n | top-1 is a cheapest | mean price rank of top-1 | "
        "distinct top-1 |"
    )
    print("|---|---|---|---|---|---|---|")
    for folder in args.folders:
        folder = Path(folder)
        pred = folder / "predictions.jsonl"
        if not pred.exists():
            continue
        inputs = {}
        run = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
        src = run.get("settings", {}).get("input")
        if src and Path(src).exists():
            for line in Path(src).read_text().splitlines():
                d = json.loads(line)
                inputs[d["id"]] = d
        stats = defaultdict(list)
        for line in pred.read_text().splitlines():
            d = json.loads(line)
            ex = inputs.get(d["example_id"])
            if ex is None:
                continue
            price = {
                c["id"]: price_from(c["meta"].get("input_price"), c["meta"].get("output_price"))
                for c in ex["candidates"]
            }
            top = d["ranking"][0]
            rank = 1 + sum(p < price[top] for p in price.values())
            stats[(d["task"], d["method"])].append((rank, top))
        for (task, method), vals in sorted(stats.items()):
            n = len(vals)
            cheapest = sum(r == 1 for r, _ in vals) / n
            mean_rank = sum(r for r, _ in vals) / n
            distinct = "n/a (aliases)" if "alias" in task else len(Counter(t for _, t in vals))
            print(
                f"| {folder.name} | {task} | {method} | {n} | {cheapest:.0%} | {mean_rank:.2f} | {distinct} |"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("out")
    w.add_argument("--data-dir", required=True)
    w.add_argument("--n", type=int, default=60)
    w.add_argument("--seed", type=int, default=0)
    w.set_defaults(func=write)
    r = sub.add_parser("report")
    r.add_argument("folders", nargs="+")
    r.set_defaults(func=report)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
