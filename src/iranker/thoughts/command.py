"""``iranker thoughts collect``: turn a run's step traces into a thought store.

    iranker thoughts collect --from results/run --out thoughts/                 # an eval folder
    iranker thoughts collect --from rankings.jsonl --examples input.jsonl --out thoughts/

The store is read back by ``--thoughts STORE`` on ``rank``, ``eval`` and ``serve``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..cli.errors import CLIError
from ..data.io import DataError, read_examples
from ..evaluation.command import load_benchmark_tasks, load_input_tasks
from ..evaluation.runner import RUN_FILE, file_sha256
from ..llm.base import MissingExtraError
from ..rankers.dense import DEFAULT_MODEL, DenseRanker
from .collect import CollectCounts, SourceError, index_examples, read_traces, thought_records
from .store import write_store


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``thoughts`` (with its ``collect`` action) to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "thoughts",
        help="build a retrieval memory of a trained ranker's thoughts (IRanker-COT)",
        description="Thoughts of elimination steps that removed a candidate that is not the best, "
        "embedded for retrieval; `rank`, `eval` and `serve` show the most similar ones "
        "as worked examples with --thoughts STORE.",
    )
    sub = p.add_subparsers(dest="thoughts_command", metavar="ACTION")
    c = sub.add_parser(
        "collect",
        help="keep the thoughts of a run's non-best removals and embed them",
        description="Read `iranker eval` predictions (an eval folder or its predictions.jsonl) or "
        "`iranker rank` output (with --examples), keep the <think> text of every valid "
        "step that removed a candidate that is not the best of its pool, embed each "
        "step's query and write STORE/{manifest.json, embeddings.npy, thoughts.jsonl}.",
    )
    c.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="RUN_OR_PREDICTIONS",
        help="an `iranker eval` folder, its predictions.jsonl, or an `iranker rank` output file",
    )
    c.add_argument(
        "--examples",
        default=None,
        metavar="FILE",
        help="the examples that were ranked (JSONL with relevance); required for `rank` "
        "output; for an eval folder default: rebuilt from its run.json",
    )
    c.add_argument(
        "--data-dir",
        default=None,
        help="eval folders of benchmark tasks: the task data folder (default: the one run.json records)",
    )
    c.add_argument(
        "--methods", default=None, help="comma list: keep only these methods' steps (default: all)"
    )
    c.add_argument(
        "--embed-model",
        default=None,
        help="sentence-transformers model (default: all-MiniLM-L6-v2, embedded; the dense baseline's)",
    )
    c.add_argument(
        "--threads", type=int, default=None, help="torch threads for the encoder (default $IRANKER_THREADS)"
    )
    c.add_argument("--out", "-o", required=True, metavar="STORE", help="output folder of the store")
    c.set_defaults(func=run_collect)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p


def _eval_examples(folder: Path, task_names: list[str], data_dir: str | None) -> list:
    """The examples an eval folder ranked, rebuilt from its ``run.json`` as ``iranker eval`` built them."""

    path = folder / RUN_FILE
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CLIError(f"{path}: not a readable eval run file ({exc}); pass --examples FILE") from None
    seed, limit = int(settings.get("seed", 0)), settings.get("limit")
    if settings.get("mode") == "input":
        src = settings.get("input")
        if not src or not Path(src).is_file():
            raise CLIError(f"{path}: the input file {src!r} is gone; pass --examples FILE")
        if settings.get("input_sha256") and file_sha256(src) != settings["input_sha256"]:
            raise CLIError(f"{src} changed since the run (sha256 differs); pass --examples FILE")
        tasks = load_input_tasks(src, None, seed=seed, limit=limit)
    else:
        root = data_dir or settings.get("data_dir")
        if not root or not Path(root).is_dir():
            raise CLIError(f"{path}: task data folder {root!r} not found; pass --data-dir or --examples")
        tasks = load_benchmark_tasks(task_names, Path(root), seed=seed, limit=limit)
    return [ex for t in tasks for ex in t.examples]


def run_collect(args: argparse.Namespace) -> int:

    source = Path(args.source)
    folder = source if source.is_dir() else None
    predictions = source / "predictions.jsonl" if folder else source
    if not predictions.is_file():
        raise CLIError(
            f"--from {args.source!r}: no such file"
            if folder is None
            else f"--from {args.source!r}: the folder has no predictions.jsonl (not an `iranker eval` folder)"
        )
    if (
        folder is None
        and predictions.name == "predictions.jsonl"
        and (predictions.parent / "run.json").is_file()
    ):
        folder = predictions.parent
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file; give a folder for the store")
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    try:
        traces = read_traces(predictions, default_task=Path(args.examples).stem if args.examples else "rank")
    except SourceError as exc:
        raise CLIError(str(exc)) from None
    if args.methods:
        keep = {m.strip() for m in args.methods.split(",") if m.strip()}
        traces = [t for t in traces if t.method in keep]
        if not traces:
            raise CLIError(f"--methods {args.methods!r}: no record of {predictions} has these methods")
    if args.examples:
        try:
            examples = read_examples(args.examples)
        except DataError as exc:
            raise CLIError(str(exc)) from None
    elif folder is not None:
        examples = _eval_examples(folder, sorted({t.task for t in traces}), args.data_dir)
    else:
        raise CLIError(
            f"--from {args.source!r} is not an eval folder: pass --examples FILE (the examples that were ranked)"
        )

    model = args.embed_model or DEFAULT_MODEL
    dense = DenseRanker(model, threads=args.threads)
    counts = CollectCounts()
    records = thought_records(traces, index_examples(examples), embed_text=dense.query_for, counts=counts)
    print(counts.summary(), file=sys.stderr)
    if not records:
        raise CLIError(
            f"no thoughts to keep from {predictions}: {counts.summary()}. Thoughts come from "
            "generated steps (--decode generate) that named a non-best candidate"
        )
    try:
        texts = list(dict.fromkeys(r["embed_text"] for r in records))  # the steps of one example share it
        unique = dense.embed(texts)
        row = {t: i for i, t in enumerate(texts)}
        emb = unique[[row[r["embed_text"]] for r in records]]
    except (MissingExtraError, OSError, ValueError) as exc:
        raise CLIError(f"cannot embed with {model!r}: {exc}") from None
    write_store(
        out,
        records,
        emb,
        model=model,
        sources=[{"from": str(source), "examples": args.examples, "steps": counts.steps}],
    )
    by_scenario: dict[str, int] = {}
    for r in records:
        by_scenario[r["scenario"]] = by_scenario.get(r["scenario"], 0) + 1
    print(
        f"wrote {len(records)} thoughts ({', '.join(f'{s}: {n}' for s, n in sorted(by_scenario.items()))}) "
        f"embedded with {model} to {out}",
        file=sys.stderr,
    )
    return 0
