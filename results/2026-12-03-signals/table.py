"""Print the signals table (markdown) from this folder's run and the baseline folder's run.

    python results/2026-12-03-signals/table.py results/2026-12-03-signals results/2026-12-01-choice-ranker/base

Each task's signal rows come from the first of signals-rec/, signals-passage/, signals/ that has it.
"""

import json
import sys
from pathlib import Path

TASKS = ["rec-movie", "rec-music", "rec-game", "router-performance", "router-balance", "router-cost",
         "passage-5", "passage-7", "passage-9", "trec-dl19"]
SIGNALS = {"recommendation": ["bm25", "dense", "cooccur"], "routing": ["bm25", "dense", "outcomes"],
           "passage": ["bm25", "dense"]}


def main(root: str, base_dir: str) -> None:
    sig: dict = {}
    for sub in ("signals-rec", "signals-passage", "signals"):
        f = Path(root) / sub / "metrics.json"
        if f.is_file():
            for task, res in json.loads(f.read_text())["results"].items():
                sig.setdefault(task, res)
    base = json.loads((Path(base_dir) / "metrics.json").read_text())["results"]
    print("| task | measure | n | random | bm25 | dense | cooccur / outcomes | RRF of the signals | "
          "knn (item-/router-kNN) | cheapest-first | base LLM zero-shot |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t in TASKS:
        if t not in sig:
            continue
        measure = "NDCG@10" if t == "trec-dl19" else "MRR"
        get = lambda res, m: f"{100 * res[m][measure]:.1f}" if m in res and res[m].get(measure) is not None else "–"
        third = get(sig[t], "cooccur") if t.startswith("rec") else get(sig[t], "outcomes") if t.startswith("router") else "–"
        b = base.get(t, {})
        print(f"| {t} | {measure} | {sig[t]['rrf']['n']} | {get(sig[t], 'random')} | {get(sig[t], 'bm25')} | "
              f"{get(b, 'dense')} | {third} | **{get(sig[t], 'rrf')}** | {get(b, 'knn')} | "
              f"{get(sig[t], 'cheapest-first')} | {get(b, 'iterative-choice')} |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
