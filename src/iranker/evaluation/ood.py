"""``iranker ood``: general LLM benchmarks (lm-evaluation-harness) on a model and its base.

    iranker ood --model iranker-135m --tasks gsm8k,ifeval,mathqa --limit 200 --out results/ood

The IRanker paper reports that ranking training did not cost general ability: on GSM8K,
IFEval and MathQA the trained model beat its base. This command asks the same question of any
model iranker can load, with EleutherAI's lm-evaluation-harness (``lm_eval``) doing the
evaluation, so the numbers mean what lm-eval's numbers mean everywhere else. It runs the base
and the trained model on the same tasks, documents and settings, one after the other, and
writes one table: ``DIR/ood.md`` and ``DIR/ood.json`` (each metric's value and stderr per
model, the difference, the harness's own sample counts and versions).

Models are named as everywhere in iranker (``iranker.llm.models.resolve_model``): an alias, a
folder, a ``.gguf`` file (dequantised once into iranker's cache), a hub id, or a trained
adapter folder. An adapter is given to lm-eval's ``HFLM`` as ``peft=`` on its resolved base,
exactly as lm-eval loads any LoRA, and without ``--base`` that base is the other column.

Tasks are lm-eval task names or groups; ``--include-path DIR`` adds task YAMLs of your own
(e.g. ``dataset_path: json`` with ``dataset_kwargs: {data_files: ...}`` for local data).
Task names are checked, and every task's data loaded, before any model is: a typo or a data
set that cannot be fetched (offline) stops with one line instead of after a model load.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..atomic_files import atomic_write_text
from ..cli.errors import CLIError
from ..llm.base import BackendError, require
from ..llm.models import EmbeddedModelMissingError, adapter_tokenizer_dir, dense_model_dir, resolve_model
from ..llm.precision import torch_dtype

__all__ = ["HarnessModel", "OODError", "harness_model", "ood_table", "run_ood", "write_ood"]

OOD_JSON, OOD_MD = "ood.json", "ood.md"


class OODError(ValueError):
    """Bad ``iranker ood`` input (unknown task, task data that cannot be loaded, bad model)."""


@dataclass(frozen=True)
class HarnessModel:
    """What lm-eval's ``HFLM`` is given for one model: ``pretrained`` (+ ``peft``, ``tokenizer``)."""

    name: str
    pretrained: str
    peft: str | None = None
    tokenizer: str | None = None


def _base_path(resolved: Any) -> str:

    if resolved.kind == "gguf":
        return str(dense_model_dir(resolved.path))
    if resolved.kind == "adapter":
        raise OODError(f"{resolved.name}: an adapter on an adapter cannot be given to lm-eval as one peft=")
    return resolved.path


def harness_model(resolved: Any) -> HarnessModel:
    """The ``HFLM`` arguments for a resolved model (see ``iranker.llm.models.ResolvedModel``).

    A GGUF base is dequantised through iranker's cache (lm-eval would dequantise it on every
    load); an adapter becomes ``peft=`` on its base, with the adapter's own tokenizer when it
    ships one (as ``TransformersLLM`` loads it).
    """

    if resolved.kind != "adapter":
        return HarnessModel(resolved.name, _base_path(resolved))
    return HarnessModel(
        resolved.name,
        _base_path(resolved.base),
        peft=resolved.path,
        tokenizer=adapter_tokenizer_dir(resolved.path),
    )


# -- tasks --------------------------------------------------------------------------------------
def task_manager(tasks: Sequence[str], include_path: str | None) -> Any:
    """An lm-eval ``TaskManager`` that knows every name in ``tasks`` (``OODError`` if one is unknown).

    With ``--include-path`` only that folder is indexed first (instant); lm-eval's ~15,000
    built-in task files are indexed (tens of seconds) only when a name is not found there.
    """

    require("lm_eval", "ood", "iranker ood (lm-evaluation-harness)")
    from lm_eval.tasks import TaskManager

    if include_path is not None and not Path(include_path).is_dir():
        raise OODError(f"--include-path {include_path!r} is not a folder")
    if include_path is not None:
        tm = TaskManager(include_path=include_path, include_defaults=False)
        if all(t in tm.all_tasks for t in tasks):
            return tm
    tm = TaskManager(include_path=include_path) if include_path else TaskManager()
    unknown = [t for t in tasks if t not in tm.all_tasks]
    if unknown:
        hints = []
        for t in unknown:
            close = difflib.get_close_matches(t, tm.all_tasks, n=3)
            hints.append(f"{t!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        where = " or in " + str(include_path) if include_path else ""
        raise OODError(
            f"unknown lm-eval task {', '.join(hints)}: not among lm-eval's {len(tm.all_tasks)} "
            f"tasks and groups{where} (list them with `lm-eval ls tasks`)"
        )
    return tm


def check_task_data(tm: Any, tasks: Sequence[str]) -> None:
    """Load every task (and so its data) once, so that missing data fails before a model loads."""
    for t in tasks:
        try:
            tm.load([t])
        except Exception as exc:  # noqa: BLE001 - datasets/hub raise many types; report one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            offline = (
                " (HF_HUB_OFFLINE is set: only data already in the local cache can be used)"
                if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
                else ""
            )
            raise OODError(
                f"task {t!r}: could not load its data{offline}: {type(exc).__name__}: {first}"
            ) from None


# -- running ------------------------------------------------------------------------------------
def evaluate_model(
    model: HarnessModel,
    tasks: Sequence[str],
    tm: Any,
    *,
    limit: int | float | None,
    num_fewshot: int | None,
    batch_size: int,
    device: str,
    dtype: Any,
    seed: int,
    apply_chat_template: bool,
    gen_kwargs: str | None,
) -> dict[str, Any]:
    """One model through ``lm_eval.simple_evaluate``; returns the harness's result dict."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    kwargs: dict[str, Any] = {
        "pretrained": model.pretrained,
        "device": device,
        "dtype": dtype,
        "batch_size": batch_size,
    }
    if model.peft:
        kwargs["peft"] = model.peft
    if model.tokenizer:
        kwargs["tokenizer"] = model.tokenizer
    try:
        lm = HFLM(**kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BackendError(
            f"lm-eval could not load the model {model.name!r} ({model.pretrained}"
            + (f" + adapter {model.peft}" if model.peft else "")
            + f"): {type(exc).__name__}: {first}"
        ) from None
    try:
        return lm_eval.simple_evaluate(
            model=lm,
            tasks=list(tasks),
            task_manager=tm,
            limit=limit,
            num_fewshot=num_fewshot,
            log_samples=False,
            apply_chat_template=apply_chat_template,
            gen_kwargs=gen_kwargs,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
    finally:
        del lm
        gc.collect()


def _summary(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of lm-eval's result dict the table needs, JSON-safe."""

    def num(v: Any) -> Any:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return v
        return None if math.isnan(f) or math.isinf(f) else f

    results = {
        t: {k: num(v) for k, v in r.items() if k not in ("name",)} for t, r in raw.get("results", {}).items()
    }
    return {
        "results": results,
        "n-samples": raw.get("n-samples", {}),
        "higher_is_better": raw.get("higher_is_better", {}),
        "versions": {k: str(v) for k, v in (raw.get("versions") or {}).items()},
        "n-shot": raw.get("n-shot", {}),
        "lm_eval_version": raw.get("lm_eval_version"),
        "transformers_version": raw.get("transformers_version"),
        "model_num_parameters": (raw.get("config") or {}).get("model_num_parameters"),
        "model_dtype": str((raw.get("config") or {}).get("model_dtype")),
    }


def ood_table(runs: Sequence[tuple[str, Mapping[str, Any]]], tasks: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (task, metric, filter) found in any run, values and stderrs per run name.

    Row order: the harness's task order (groups before their subtasks, as lm-eval prints),
    metrics as the harness names them (``acc,none``, ``exact_match,strict-match``...). ``delta``
    is the last run minus the first where both have the metric.
    """
    names = [n for n, _ in runs]
    task_order = list(dict.fromkeys(t for _, s in runs for t in s["results"]))
    rows = []
    for t in task_order:
        keys = list(
            dict.fromkeys(
                k for _, s in runs for k in s["results"].get(t, {}) if "," in k and "_stderr," not in k
            )
        )
        for key in keys:
            metric, filt = key.split(",", 1)
            values = {n: s["results"].get(t, {}).get(key) for n, s in runs}
            stderr = {n: s["results"].get(t, {}).get(f"{metric}_stderr,{filt}") for n, s in runs}
            hib = next(
                (
                    s["higher_is_better"].get(t, {}).get(metric)
                    for _, s in runs
                    if metric in s["higher_is_better"].get(t, {})
                ),
                None,
            )
            first, last = values[names[0]], values[names[-1]]
            delta = (
                last - first
                if len(names) > 1 and isinstance(first, float) and isinstance(last, float)
                else None
            )
            n = next(
                (s["n-samples"].get(t, {}).get("effective") for _, s in runs if t in s["n-samples"]), None
            )
            rows.append(
                {
                    "task": t,
                    "metric": metric,
                    "filter": filt,
                    "n": n,
                    "higher_is_better": hib,
                    "values": values,
                    "stderr": stderr,
                    "delta": delta,
                }
            )
    return rows


def run_ood(
    model: str,
    base: str | None,
    tasks: Sequence[str],
    *,
    limit: int | float | None = None,
    include_path: str | None = None,
    num_fewshot: int | None = None,
    batch_size: int = 8,
    device: str | None = None,
    dtype: str | None = None,
    seed: int = 0,
    apply_chat_template: bool = False,
    gen_kwargs: str | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Evaluate the base (``base``, else an adapter's own base, else none) and ``model``.

    Everything that can fail on bad input (model names, task names, task data) is checked
    before the first model is loaded. Returns the ``ood.json`` document.
    """

    if not tasks:
        raise OODError("--tasks is empty")
    resolved = resolve_model(model)
    resolved_base = resolve_model(base) if base else (resolved.base if resolved.kind == "adapter" else None)
    sides = ([("base", resolved_base)] if resolved_base is not None else []) + [("model", resolved)]
    tm = task_manager(tasks, include_path)
    check_task_data(tm, tasks)

    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch_dtype(torch, dtype, torch.device(device))
    runs, models = [], {}
    for role, res in sides:
        hm = harness_model(res)
        label = f"{hm.name} (base)" if role == "base" else hm.name
        if log:
            log(
                f"lm-eval: {label} on {', '.join(tasks)}" + (f" (limit {limit})" if limit is not None else "")
            )
        t0 = time.time()
        raw = evaluate_model(
            hm,
            tasks,
            tm,
            limit=limit,
            num_fewshot=num_fewshot,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            seed=seed,
            apply_chat_template=apply_chat_template,
            gen_kwargs=gen_kwargs,
        )
        summary = _summary(raw)
        summary["seconds"] = round(time.time() - t0, 1)
        runs.append((label, summary))
        models[label] = {
            "role": role,
            **asdict(hm),
            "seconds": summary["seconds"],
            "model_num_parameters": summary["model_num_parameters"],
            "model_dtype": summary["model_dtype"],
        }
    return {
        "tasks": list(tasks),
        "models": models,
        "columns": [n for n, _ in runs],
        "settings": {
            "limit": limit,
            "num_fewshot": num_fewshot,
            "batch_size": batch_size,
            "device": device,
            "dtype": str(dtype).replace("torch.", ""),
            "seed": seed,
            "apply_chat_template": apply_chat_template,
            "gen_kwargs": gen_kwargs,
            "include_path": include_path,
            "lm_eval_version": runs[0][1]["lm_eval_version"] if runs else None,
        },
        "rows": ood_table(runs, tasks),
        "runs": dict(runs),
    }


# -- output -------------------------------------------------------------------------------------
def _num(v: Any, err: Any = None) -> str:
    """A value as lm-eval prints it (raw: accuracies 0-1, perplexities and bits/byte as they are)."""
    if not isinstance(v, (int, float)):
        return "—"
    s = f"{v:.4f}"
    return s + (f" ± {err:.4f}" if isinstance(err, (int, float)) else "")


def write_ood(out_dir: str | os.PathLike[str], doc: Mapping[str, Any]) -> list[Path]:
    """``ood.json`` (everything) and ``ood.md`` (the table), each written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = list(doc["columns"])
    s = doc["settings"]
    lines = [
        "# Out-of-domain benchmarks (lm-evaluation-harness)",
        "",
        f"lm-eval {s.get('lm_eval_version')}; limit {s.get('limit') if s.get('limit') is not None else 'none (full tasks)'}, "
        f"num_fewshot {s.get('num_fewshot') if s.get('num_fewshot') is not None else 'task default'}, "
        f"chat template {'on' if s.get('apply_chat_template') else 'off'}, {s.get('dtype')} on {s.get('device')}, "
        f"seed {s.get('seed')}. Values as lm-eval reports them (accuracies 0-1) ± its standard error; "
        "n = documents per task.",
        "",
    ]
    for name, m in doc["models"].items():
        where = m["pretrained"] + (f" + adapter {m['peft']}" if m.get("peft") else "")
        lines.append(f"- **{name}**: `{where}` ({m['seconds']} s)")
    lines.append("")
    header = ["task", "metric", "n", *cols] + ([f"{cols[-1]} − {cols[0]}"] if len(cols) > 1 else [])
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in doc["rows"]:
        metric = r["metric"] + ("" if r["filter"] == "none" else f" ({r['filter']})")
        if r["higher_is_better"] is False:
            metric += " ↓"
        cells = [
            r["task"],
            metric,
            str(r["n"] if r["n"] is not None else "—"),
            *[_num(r["values"].get(c), r["stderr"].get(c)) for c in cols],
        ]
        if len(cols) > 1:
            cells.append("—" if r["delta"] is None else f"{r['delta']:+.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "↓ = lower is better. Few documents (`--limit`) give wide standard errors: read the "
        "difference against them.",
        "",
    ]
    written = []
    for name, text in (
        (OOD_JSON, json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"),
        (OOD_MD, "\n".join(lines)),
    ):
        written.append(atomic_write_text(out / name, text))
    return written


# -- command ------------------------------------------------------------------------------------
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ood",
        help="general LLM benchmarks (lm-evaluation-harness) on a model and its base, side by side",
        description=(
            "Run EleutherAI's lm-evaluation-harness on --model and on its base (--base, or the base "
            "of an adapter such as iranker-135m) for the same tasks and write DIR/ood.md and "
            "DIR/ood.json. Needs pip install 'iranker[ood]'; hub tasks (gsm8k, ifeval, mathqa) need "
            "their data sets, offline use --include-path with local task YAMLs."
        ),
    )
    p.add_argument(
        "--model",
        default="iranker-135m",
        help="model: alias, folder, .gguf file, hub id or trained adapter folder (default iranker-135m)",
    )
    p.add_argument(
        "--base",
        default=None,
        help="the model to compare against (default: the adapter's base; none for a plain model)",
    )
    p.add_argument("--tasks", required=True, help="comma list of lm-eval task or group names")
    p.add_argument(
        "--limit",
        type=float,
        default=None,
        help="documents per task (an integer), or a fraction < 1; default all",
    )
    p.add_argument("--include-path", default=None, help="folder of extra lm-eval task YAMLs")
    p.add_argument(
        "--num-fewshot", type=int, default=None, help="few-shot examples (default: each task's own)"
    )
    p.add_argument("--batch-size", type=int, default=8, help="lm-eval batch size (default 8)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: cuda if available)")
    p.add_argument(
        "--dtype",
        default=None,
        help="float32, bfloat16, float16 (default: as every iranker backend, $IRANKER_DTYPE or by hardware)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: $IRANKER_THREADS or torch's)"
    )
    p.add_argument(
        "--apply-chat-template", action="store_true", help="wrap prompts in the model's chat template"
    )
    p.add_argument(
        "--gen-kwargs",
        default=None,
        help="generation overrides for generate tasks, lm-eval syntax (e.g. max_gen_toks=128)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="lm-eval's random, numpy, torch and few-shot seeds (default 0)"
    )
    p.add_argument("--out", "-o", required=True, help="folder for ood.md and ood.json")
    p.set_defaults(func=run)
    return p


def _limit(value: float | None) -> int | float | None:

    if value is None:
        return None
    if value <= 0:
        raise CLIError(f"--limit must be > 0, got {value:g}")
    if value >= 1:
        if not float(value).is_integer():
            raise CLIError(f"--limit >= 1 must be a whole number of documents, got {value:g}")
        return int(value)
    return float(value)


def run(args: argparse.Namespace) -> int:

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.threads is not None and args.threads < 1:
        raise CLIError("--threads must be >= 1")
    if args.batch_size < 1:
        raise CLIError("--batch-size must be >= 1")
    threads = args.threads or (
        int(os.environ["IRANKER_THREADS"]) if os.environ.get("IRANKER_THREADS", "").isdigit() else None
    )
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        doc = run_ood(
            args.model,
            args.base,
            tasks,
            limit=_limit(args.limit),
            include_path=args.include_path,
            num_fewshot=args.num_fewshot,
            batch_size=args.batch_size,
            device=args.device,
            dtype=args.dtype,
            seed=args.seed,
            apply_chat_template=args.apply_chat_template,
            gen_kwargs=args.gen_kwargs,
            log=lambda m: print(m, file=sys.stderr),
        )
    except (OODError, BackendError, EmbeddedModelMissingError) as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:  # e.g. an unknown --dtype
        raise CLIError(str(exc)) from None
    written = write_ood(args.out, doc)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    for r in doc["rows"]:
        vals = " ".join(f"{c}={_num(r['values'].get(c))}" for c in doc["columns"])
        print(f"{r['task']} {r['metric']},{r['filter']} (n={r['n']}): {vals}", file=sys.stderr)
    return 0
