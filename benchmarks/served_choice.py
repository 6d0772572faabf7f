"""The trained ranker served by llama.cpp vs run locally: same removals? how fast? what does the
server's prompt cache save?

    .venv/bin/python benchmarks/served_choice.py --data-dir DATA --out results/2026-12-03-openai-choice \
        [--tasks router-performance,router-balance,router-cost] [--limit 2] [--seed 0] [--interleaved]

1. converts ``iranker-135m`` into a llama.cpp LoRA GGUF (``train.gguf_lora``) and starts
   ``python -m llama_cpp.server`` on loopback with the embedded SmolLM2-135M GGUF + that LoRA
   (one thread);
2. ``iranker eval`` of the served adapter (``--backend openai --tokenizer iranker-135m``: choice
   mode, prompts sent one example at a time so each request extends the previous one) and of
   the local transformers backend in the same mode (``--reuse none``: exact re-prompting, the
   served path's semantics), on the same seeded test examples; then ``iranker compare``
   (paired MRR);
3. from the two prediction files: the share of identical removals over the steps both reach
   with the same pool, rankings per second (from the recorded seconds of each ranking);
4. prompt tokens per ranking: sent (the server's ``usage``; what a server without prefix reuse
   would evaluate) and evaluated (llama.cpp's counters in the server log), for the eval run
   (one example at a time, ``--batch-size 1``) and, with ``--interleaved``, for its first 8
   examples ranked together (``batch_size=8``: each request then follows another example's).

Writes ``served.md`` / ``served.json`` beside the eval folders. Everything runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("IRANKER_THREADS", "1")


def read_predictions(folder: Path) -> dict[str, dict]:
    rows = {}
    for line in (folder / "predictions.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("method") == "iterative":
            rows[row["example_id"]] = row
    return rows


def identical_removals(a: dict[str, dict], b: dict[str, dict]) -> tuple[int, int, int, int]:
    """(same removals, steps compared, identical rankings, rankings) over the shared examples."""
    same = total = same_rank = n = 0
    for key in sorted(set(a) & set(b)):
        n += 1
        same_rank += a[key]["ranking"] == b[key]["ranking"]
        for sa, sb in zip(a[key]["steps"], b[key]["steps"]):
            if sa["pool"] != sb["pool"]:
                break
            total += 1
            same += sa["removed"] == sb["removed"]
    return same, total, same_rank, n


def eval_args(args: argparse.Namespace, out: Path, backend: list[str]) -> list[str]:
    source = ["--input", args.input] if args.input else ["--tasks", args.tasks, "--data-dir", args.data_dir]
    return [
        "eval",
        *source,
        "--methods",
        "iterative",
        "--seed",
        str(args.seed),
        "--limit",
        str(args.limit),
        "--batch-size",
        "1",
        "--out",
        str(out),
        *backend,
    ]


def served_tokens(srv, url: str, examples, batch_size: int, concurrency: int) -> dict[str, float]:
    from iranker.llm.llama_cpp_server import evaluated_from_log
    from iranker.llm.openai_backend import OpenAILLM
    from iranker.rankers import IterativeRanker

    llm = OpenAILLM(
        "iranker-135m",
        base_url=url,
        tokenizer="iranker-135m",
        concurrency=concurrency,
        timeout=600,
        max_retries=0,
    )
    llm.choice_mode()
    before = len(evaluated_from_log(srv.log_text()))
    start = time.perf_counter()
    IterativeRanker(llm, batch_size=batch_size, show_progress=False).rank(examples)
    seconds = time.perf_counter() - start
    evaluated = evaluated_from_log(srv.log_text())[before:]
    st = llm.choice_stats
    if len(evaluated) != st.requests:
        raise RuntimeError(f"{len(evaluated)} counter lines in the server log for {st.requests} requests")
    n = len(examples)
    return {
        "rankings": n,
        "requests_per_ranking": st.requests / n,
        "sent_per_ranking": st.prompt_tokens / n,
        "evaluated_per_ranking": sum(evaluated) / n,
        "evaluated_share": sum(evaluated) / st.prompt_tokens,
        "bounded_tokens": st.bounded,
        "rankings_per_s": n / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--input", default=None, help="an example file (iranker eval --input) instead of --tasks")
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", default="router-performance,router-balance,router-cost")
    p.add_argument("--limit", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--interleaved",
        action="store_true",
        help="also rank the first 8 examples together (their requests interleave at the server)",
    )
    p.add_argument("--log", default=None, help="server log file (default: a temporary file)")
    args = p.parse_args(argv)

    import tempfile

    from iranker.cli.main import main as iranker
    from iranker.evaluation.command import load_benchmark_tasks, resolve_data_dir
    from iranker.llm.llama_cpp_server import LlamaCppServer, evaluated_from_log
    from iranker.llm.models import embedded_gguf_path
    from iranker.train.gguf_lora import adapter_to_gguf, llama_cpp_version

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="served-choice-"))
    lora = adapter_to_gguf("iranker-135m", work / "iranker-135m.gguf")
    log = Path(args.log) if args.log else work / "server.log"
    if not args.input and not args.data_dir:
        p.error("--data-dir is needed with --tasks (or pass --input FILE)")
    report: dict = {
        "tasks": args.input or args.tasks,
        "limit": args.limit,
        "seed": args.seed,
        "llama_cpp_python": llama_cpp_version(),
        "lora_gguf_bytes": lora.stat().st_size,
    }
    with LlamaCppServer(embedded_gguf_path(), "iranker-135m", log, lora=lora) as srv:
        start = time.perf_counter()
        code = iranker(
            eval_args(
                args,
                out / "served",
                [
                    "--backend",
                    "openai",
                    "--model",
                    "iranker-135m",
                    "--tokenizer",
                    "iranker-135m",
                    "--base-url",
                    srv.base_url,
                ],
            )
        )
        if code != 0:
            return code
        eval_seconds = time.perf_counter() - start
        # the eval's requests: every counter line but the first (the backend's capability probe)
        evaluated = evaluated_from_log(srv.log_text())[1:]
        if args.input:
            from iranker.data.io import read_examples

            examples = read_examples(args.input)
        else:
            tasks = load_benchmark_tasks(
                args.tasks.split(","), resolve_data_dir(args.data_dir), seed=args.seed, limit=args.limit
            )
            examples = [ex for t in tasks for ex in t.examples]
        served_rows = read_predictions(out / "served")
        sent = sum(r["usage"]["prompt_tokens"] for r in served_rows.values())
        n_served = len(served_rows)
        report["tokens"] = {
            "one example at a time (batch 1; the eval run)": {
                "rankings": n_served,
                "requests_per_ranking": len(evaluated) / n_served,
                "sent_per_ranking": sent / n_served,
                "evaluated_per_ranking": sum(evaluated) / n_served,
                "evaluated_share": sum(evaluated) / sent,
                "rankings_per_s": n_served / eval_seconds,
            },
        }
        if args.interleaved:
            k = min(8, len(examples))
            report["tokens"][f"{k} examples interleaved (batch {k})"] = served_tokens(
                srv, srv.base_url, examples[:k], k, 1
            )
    code = iranker(
        eval_args(
            args,
            out / "local",
            ["--backend", "transformers", "--model", "iranker-135m", "--reuse", "none", "--threads", "1"],
        )
    )
    if code != 0:
        return code
    code = iranker(
        [
            "compare",
            str(out / "local"),
            str(out / "served"),
            "--names",
            "local,served",
            "--out",
            str(out / "compare"),
        ]
    )
    if code != 0:
        return code
    served, local = read_predictions(out / "served"), read_predictions(out / "local")
    same, total, same_rank, n = identical_removals(served, local)
    report["identical_removals"] = {
        "same": same,
        "steps": total,
        "share": same / total,
        "identical_rankings": same_rank,
        "rankings": n,
    }
    report["rankings_per_s"] = {
        name: len(rows) / sum(r["seconds"] for r in rows.values())
        for name, rows in (("served", served), ("local", local))
    }
    (out / "served.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# iranker-135m served by llama-cpp-python {report['llama_cpp_python']} vs local",
        "",
        f"{n} rankings ({args.input or args.tasks}, seed {args.seed}, limit {args.limit}), choice mode, one thread.",
        "",
        f"- identical removals: {same}/{total} steps ({100 * same / total:.1f}%); identical rankings "
        f"{same_rank}/{n}",
        f"- rankings/s: served {report['rankings_per_s']['served']:.3f}, "
        f"local (reuse none) {report['rankings_per_s']['local']:.3f}",
        "",
        "| order of requests | requests/ranking | prompt tokens sent/ranking | evaluated/ranking | evaluated share |"
        " rankings/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in report["tokens"].items():
        lines.append(
            f"| {name} | {t['requests_per_ranking']:.1f} | {t['sent_per_ranking']:.0f} | "
            f"{t['evaluated_per_ranking']:.0f} | {100 * t['evaluated_share']:.1f}% | {t['rankings_per_s']:.3f} |"
        )
    (out / "served.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
