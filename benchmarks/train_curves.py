"""Held-out and training curves of choice runs, from their ``train_log.jsonl`` files.

    .venv/bin/python benchmarks/train_curves.py runs/a/train_log.jsonl runs/b/train_log.jsonl \
        --names listwise,exclusion --out results/X/curves

Prints a markdown table per run (held-out mean pi(best) and removed-non-best rate at every
evaluation; training means over windows of log lines) and writes ``OUT.png`` (held-out
pi(best) and removed-non-best against optimiser steps, one line per run) and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_log(path: str) -> tuple[list[dict], list[dict]]:
    train, held = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("split") == "eval":
            held.append(rec)
        elif "loss" in rec:
            train.append(rec)
    return train, held


def table(name: str, train: list[dict], held: list[dict], window: int = 20) -> str:
    lines = [
        f"### {name}",
        "",
        "| step | held-out pi(best) | held-out removed non-best | rows |",
        "|---|---|---|---|",
    ]
    for h in held:
        lines.append(
            f"| {h['step']} | {h['eval/pi_best']:.4f} | {h['eval/removed_non_best']:.3f} | {h['eval/rows']} |"
        )
    lines += [
        "",
        "| steps | train pi(best) | train removed non-best | loss | s/step |",
        "|---|---|---|---|---|",
    ]
    for i in range(0, len(train), window):
        chunk = train[i : i + window]
        mean = lambda k: sum(r[k] for r in chunk if k in r) / max(1, sum(1 for r in chunk if k in r))  # noqa: E731
        lines.append(
            f"| {chunk[0]['step']}–{chunk[-1]['step']} | {mean('train/pi_best'):.4f} | "
            f"{mean('train/removed_non_best'):.3f} | {mean('loss'):.4f} | {mean('seconds_per_step'):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs", nargs="+")
    p.add_argument("--names", default=None)
    p.add_argument("--out", required=True, help="path prefix for OUT.md and OUT.png")
    args = p.parse_args(argv)
    names = args.names.split(",") if args.names else [Path(x).parent.name for x in args.logs]
    runs = [(n, *read_log(x)) for n, x in zip(names, args.logs)]
    md = "\n".join(table(n, t, h) for n, t, h in runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md, encoding="utf-8")
    print(md)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, _, held in runs:
        steps = [h["step"] for h in held]
        axes[0].plot(steps, [h["eval/pi_best"] for h in held], marker="o", label=name)
        axes[1].plot(steps, [h["eval/removed_non_best"] for h in held], marker="o", label=name)
    axes[0].set_title("held-out mean pi(best) (lower is better)")
    axes[1].set_title("held-out removed non-best (higher is better)")
    for ax in axes:
        ax.set_xlabel("optimiser step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
