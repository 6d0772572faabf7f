"""``iranker eval``: rank benchmark tasks (or your own labelled examples) with several methods.

    iranker eval --tasks all --methods random,bm25,dense,knn --out results/baselines
    iranker eval --tasks rec-movie,router-cost --methods iterative --model smollm2-135m --limit 50 --out DIR
    iranker eval --input my_examples.jsonl --methods bm25,dense,direct --out DIR
    iranker eval --input my_examples.jsonl --methods iterative --ray [ADDRESS] --ray-workers 4 --out DIR

Writes ``DIR/predictions.jsonl`` (appended and flushed per chunk; rerunning the same command
continues where a killed run stopped), ``DIR/run.json`` (settings; a rerun with other settings
into the same folder is refused), ``DIR/metrics.json``, ``DIR/report.md`` and ``DIR/report.png``.

Task data: ``--data-dir``, else ``$IRANKER_DATA_DIR``, else ``./data`` if that folder exists
in the current directory. The folder is only a default lookup; the task
builders (``iranker.data.tasks``) read the public source files in their original formats.
``--seed`` fixes the tasks' negatives, shuffles and ``--limit`` subsample, and the random
baseline; train/test splits use a fixed split seed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..cli.building import backend_from_args, model_identity_from_args, ranker_from_args
from ..cli.errors import CLIError
from ..cli.options import (
    PRUNE_HELP,
    add_backend_args,
    add_limit_args,
    add_thoughts_args,
    check_backend_args,
    limits_from_args,
    thoughts_from_args,
)
from ..cli.output import check_writable_folder, same_file
from ..data.io import DataError, read_examples
from ..data.splits import sample_keys
from ..data.tasks import BENCHMARK_TASKS, TASKS, build_task
from ..rankers import FALLBACKS
from ..rankers.dense import DEFAULT_MODEL
from ..sharding.command import add_ray_args, check_ray_args
from ..signals.command import add_signals_args, attach_task_signals
from .report import (
    compute_metrics,
    headline_measure,
    read_metrics,
    write_metrics,
    write_report,
    write_report_png,
)
from .runner import (
    LLM_METHODS,
    METHODS,
    PREDICTIONS,
    ROUTING_METHODS,
    SIGNAL_METHODS,
    EvalTask,
    FolderBusy,
    FolderLock,
    MethodUnavailable,
    PredictionStore,
    RankerFactory,
    RunSettings,
    SettingsConflict,
    evaluate_methods,
    file_sha256,
    record_settings,
)

DATA_ENV = "IRANKER_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")

DATA_HELP = (
    "no task data folder: pass --data-dir DIR or set IRANKER_DATA_DIR. The folder holds the "
    "public source files (e.g. rec_movie/ml-1m_unisrec/, rec_game/Games-6k/, rec_music/cds_d3_r3/, "
    "router/llmrouter_dcrouter/, passage/trec_dl/ — MovieLens-1M, LLMRank Games-6k, R3 CDs & Vinyl, "
    "LLMRouter dcrouter, TREC DL19), downloaded from their original sources; or evaluate your own "
    "labelled examples with --input FILE.jsonl"
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate ranking methods on the benchmark tasks or a labelled JSONL file",
        description=(
            "Rank the test examples of the benchmark tasks (or of --input FILE.jsonl) with each "
            "method and write predictions.jsonl, metrics.json, report.md and report.png to --out. "
            "Interrupted runs continue when the same command is run again. --seed also fixes the "
            "tasks' sampled negatives, shuffles and --limit subset. "
            f"Methods: {', '.join(METHODS)}. Routing tasks always get the cheapest-first and "
            "most-frequent-best rows too."
        ),
    )
    src = p.add_argument_group("what to evaluate")
    which = src.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--tasks",
        help="'all' (the ten benchmark tasks) or a comma list of task names (rec-movie, ..., "
        "trec-dl19, router-heldout-performance/-balance/-cost)",
    )
    which.add_argument(
        "--input", "-i", help="your own examples JSONL (the `iranker rank` format, with relevance)"
    )
    src.add_argument(
        "--train",
        default=None,
        help="with --input: training examples JSONL for the trained baselines (knn, most-frequent-best)",
    )
    src.add_argument(
        "--methods",
        default="random,bm25,dense,knn",
        help="comma list (default: random,bm25,dense,knn); LLM methods: iterative, "
        "iterative-choice (label log-probabilities), direct",
    )
    src.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most N test examples per task (a seeded random subset, not a prefix)",
    )
    src.add_argument(
        "--data-dir", default=None, help=f"task data folder (default: ${DATA_ENV}, else ./data if it exists)"
    )
    src.add_argument("--out", "-o", required=True, help="output folder (reused to resume a run)")
    add_limit_args(p)
    b = p.add_argument_group("baselines")
    b.add_argument(
        "--embed-model",
        default=None,
        help="sentence-transformers model for dense and knn (default: all-MiniLM-L6-v2, embedded)",
    )
    b.add_argument("--knn-k", type=int, default=10, help="neighbours for the routing kNN (default 10)")
    b.add_argument(
        "--no-routing-baselines",
        action="store_true",
        help="do not add the cheapest-first / most-frequent-best rows to routing tasks",
    )
    add_backend_args(p)
    g = p.add_argument_group("LLM ranking")

    g.add_argument(
        "--fallback",
        choices=FALLBACKS,
        default="closest",
        help="when an answer names no candidate after re-asking (default closest)",
    )
    g.add_argument(
        "--reask", type=int, default=1, help="re-ask this many times before the fallback (default 1)"
    )
    g.add_argument(
        "--decode",
        choices=("generate", "choice"),
        default=None,
        help="method iterative: generate or choice (default: what the model records, else generate)",
    )
    g.add_argument(
        "--reuse",
        choices=("none", "kv"),
        default=None,
        help="iterative methods: none or kv (KV-cache eviction; default: what the model records, else none)",
    )
    g.add_argument("--prune", default=None, metavar="SCHEDULE", help=PRUNE_HELP)
    add_thoughts_args(p)

    add_signals_args(p)
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="examples per saved chunk (default: --batch-size for LLM methods, 128 otherwise); "
        "with --ray, each worker ranks one chunk at a time",
    )

    add_ray_args(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


# -- helpers ------------------------------------------------------------------------------------
def resolve_data_dir(arg: str | None) -> Path:
    """``--data-dir``, else ``$IRANKER_DATA_DIR``, else ``./data`` if it exists."""
    for value, origin in ((arg, "--data-dir"), (os.environ.get(DATA_ENV), DATA_ENV)):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise CLIError(f"{origin} {value!r} is not a folder. {DATA_HELP}")
            return path
    if DEFAULT_DATA_DIR.is_dir():
        return DEFAULT_DATA_DIR
    raise CLIError(DATA_HELP)


def _split_list(value: str, what: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        raise CLIError(f"--{what} is empty")
    return list(dict.fromkeys(items))


def parse_methods(value: str) -> list[str]:
    methods = _split_list(value, "methods")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CLIError(f"unknown method(s) {unknown}; use {', '.join(METHODS)}")
    return methods


def _task_names(value: str) -> list[str]:

    if value.strip().lower() == "all":
        return list(BENCHMARK_TASKS)
    names = _split_list(value, "tasks")
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise CLIError(f"unknown task(s) {unknown}; use 'all' or {', '.join(TASKS)}")
    return names


def load_benchmark_tasks(names: list[str], data_dir: Path, *, seed: int, limit: int | None) -> list[EvalTask]:
    """Build each task's test split now and its train split lazily (for trained baselines)."""

    tasks = []
    for name in names:
        try:
            td = build_task(name, data_dir, split="test", seed=seed, limit=limit)
        except (FileNotFoundError, ValueError) as exc:
            raise CLIError(
                f"cannot build task {name}: {exc} (pass --tasks with only the tasks whose "
                "data you have, or --data-dir / IRANKER_DATA_DIR)"
            ) from None
        if not td.examples:
            raise CLIError(f"task {name} has no test examples under {data_dir}")
        spec = TASKS[name]
        loader = None
        if "train" in spec.splits and spec.scenario in ("recommendation", "routing"):

            def loader(name: str = name) -> list:
                try:
                    return build_task(name, data_dir, split="train", seed=seed).examples
                except (FileNotFoundError, ValueError) as exc:
                    raise MethodUnavailable(f"cannot build the train split of {name}: {exc}") from None

        tasks.append(EvalTask(name, td.examples, dict(td.metadata), loader))
    return tasks


def load_input_tasks(
    path: str, train: str | None, *, seed: int, limit: int | None, limits: Any = None
) -> list[EvalTask]:
    """One task per scenario of the file (named after the file, plus the scenario if mixed);
    ``limits`` (``ExampleLimits``) bound the candidates of the examples to rank."""

    try:
        examples = read_examples(path, limits=limits)
        train_examples = read_examples(train) if train else None
    except DataError as exc:
        raise CLIError(str(exc)) from None
    if not any(ex.relevance for ex in examples):
        raise CLIError(f"{path}: no example has 'relevance' labels, so nothing can be scored")
    stem = Path(path).name
    for suffix in (".gz", ".jsonl", ".json"):
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    groups: dict[str, list] = {}
    for ex in examples:
        groups.setdefault(ex.scenario, []).append(ex)
    tasks = []
    for scenario, exs in groups.items():
        name = stem if len(groups) == 1 else f"{stem}:{scenario}"
        chosen = sample_keys(exs, limit, seed=seed, salt=name)
        meta = {
            "task": name,
            "scenario": scenario,
            "seed": seed,
            "limit": limit,
            "source": str(path),
            "n_examples": len(chosen),
            "split_rule": "the user's file, as given"
            + (f"; training examples from {train}" if train else ""),
        }
        loader = None
        if train_examples is not None:
            tr = [ex for ex in train_examples if ex.scenario == scenario]
            if tr:

                def loader(tr=tr):
                    return tr

        tasks.append(EvalTask(name, chosen, meta, loader))
    return tasks


def _llm_settings(args: argparse.Namespace) -> dict[str, Any]:
    extra = {} if args.response_prefix is None else {"response_prefix": args.response_prefix}
    for key in ("decode", "reuse", "prune", "tokenizer"):
        if getattr(args, key, None) is not None:
            extra[key] = getattr(args, key)
    identity = model_identity_from_args(args)
    if identity:  # a trained folder: its weights, not only its name (an alias may change)
        extra["model_identity"] = identity
    memory = thoughts_from_args(args)
    if memory is not None:  # predictions with and without (or with other) thoughts never share a folder
        from ..thoughts.retrieval import DEFAULT_K
        from ..thoughts.store import manifest_digest

        extra["thoughts"] = {
            "store": manifest_digest(memory.store),
            "count": len(memory.store),
            "model": memory.store.model,
            "k": args.thoughts_k or DEFAULT_K,
        }
    return {
        "backend": args.backend,
        "model": args.model,
        "base_url": args.base_url,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "fallback": args.fallback,
        "reask": args.reask,
        **extra,  # only when set, so folders made before the option existed still resume
    }


def llm_ranker(args: argparse.Namespace, method: str, backend: Any):
    """The ranker of the LLM ``method`` on ``backend`` (here, or on every Ray worker)."""
    ns = argparse.Namespace(**vars(args))
    ns.method = "direct" if method == "direct" else "iterative"
    # "iterative" ranks as the model records (a choice-trained folder: choice + kv), unless
    # --decode says otherwise; "iterative-choice" always scores the labels
    ns.decode = "choice" if method == "iterative-choice" else args.decode
    ns.signals_attached = True  # the tasks' examples carry their signals already (attach_task_signals)
    ranker = ranker_from_args(ns, backend, show_progress=False)
    ranker.name = method
    return ranker


def _llm_factory(args: argparse.Namespace, ray_session: Any = None):
    """method -> ranker; one backend for all methods (one per Ray worker with ``--ray``)."""
    if ray_session is not None:
        return lambda method: ray_session.ranker(llm_ranker, method)
    backend_box: list[Any] = []

    def make(method: str):
        if not backend_box:
            backend_box.append(backend_from_args(args))
        return llm_ranker(args, method, backend_box[0])

    return make


def build_plan(
    tasks: list[EvalTask], methods: list[str], factory: RankerFactory, *, routing_baselines: bool = True
) -> list[tuple[EvalTask, list[str]]]:
    """Methods per task: the requested ones that apply, plus the routing baselines.

    Every method is checked here, before the folder is touched: a requested method that cannot
    run is refused with the reason; a routing baseline that was only added by default and
    cannot run (``cheapest-first`` on examples without prices, which the input format allows)
    is skipped with the reason printed.
    """
    plan = []
    for task in tasks:
        ms = [m for m in methods if m not in ROUTING_METHODS or task.scenario == "routing"]
        ms = [m for m in ms if SIGNAL_METHODS.get(m) is None or task.scenario in SIGNAL_METHODS[m]]
        if task.scenario == "routing" and routing_baselines:
            for m in ROUTING_METHODS:
                if m not in ms and (m != "most-frequent-best" or task.has_train):
                    try:
                        factory.check(m, task)
                    except MethodUnavailable as exc:
                        print(f"skipping {m} on {task.name}: {exc}", file=sys.stderr)
                        continue
                    ms.append(m)
        for m in ms:
            try:
                factory.check(m, task)
            except MethodUnavailable as exc:
                hint = " (add prices, or leave it out of --methods)" if m == "cheapest-first" else ""
                raise CLIError(f"{exc}{hint}") from None
        plan.append((task, ms))
    return plan


#: what ``iranker eval`` writes in its --out folder (none of them may be an input file)
OUT_FILES = (
    "predictions.jsonl",
    "predictions.jsonl.tmp",
    "run.json",
    "run.json.tmp",
    "metrics.json",
    "metrics.json.tmp",
    "report.md",
    "report.md.tmp",
    "report.png",
    "report.tmp.png",
    ".lock",
)


def check_out_folder(args: argparse.Namespace) -> None:
    """Refuse an --out that is a file, sits under a file or a folder that cannot be written, or
    would write one of the input files, before anything is created (one line naming the path)."""

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        what = (
            "is the --input file"
            if args.input and same_file(args.out, getattr(args.input, "name", args.input))
            else "is a file"
        )
        raise CLIError(f"--out {args.out!r} {what}; give a folder (it is created if missing)")
    for flag, value in (("--input", args.input), ("--train", args.train)):
        if isinstance(value, (str, os.PathLike)) and Path(value).exists():
            for name in OUT_FILES:
                if same_file(value, out / name):
                    raise CLIError(
                        f"--out {args.out!r} would write {name}, which is the {flag} file; "
                        "choose another --out folder"
                    )
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CLIError(f"--out {args.out!r}: {str(existing)!r} is a file, not a folder")
    check_writable_folder(existing, "--out", args.out)


# -- the command --------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:

    methods = parse_methods(args.methods)
    check_backend_args(args)
    check_ray_args(args)
    if args.limit is not None and args.limit < 1:
        raise CLIError("--limit must be a positive integer")
    if args.seed < 0:
        raise CLIError("--seed must be a non-negative integer")
    if args.knn_k < 1:
        raise CLIError("--knn-k must be a positive integer")
    if args.train and not args.input:
        raise CLIError("--train only applies with --input (benchmark tasks bring their own train split)")
    out = Path(args.out)
    check_out_folder(args)
    limits = limits_from_args(args)
    uses_llm = any(m in LLM_METHODS for m in methods)
    if thoughts_from_args(args) is not None and not uses_llm:
        raise CLIError(
            "--thoughts only changes LLM methods (iterative, iterative-choice, direct); none is in --methods"
        )

    settings = RunSettings(
        mode="input" if args.input else "tasks",
        seed=args.seed,
        limit=args.limit,
        embed_model=args.embed_model or DEFAULT_MODEL,
        knn={"k": args.knn_k, "router_target": "rank", "item": "cosine"},
        llm=_llm_settings(args) if uses_llm else None,
    )
    if args.input:
        input_path = getattr(args.input, "name", args.input)
        if not isinstance(args.input, (str, os.PathLike)) or not Path(input_path).is_file():
            raise CLIError(f"--input must be a file path, got {input_path!r}")
        settings.input = str(input_path)
        settings.input_sha256 = file_sha256(input_path)
        if args.train:
            if not Path(args.train).is_file():
                raise CLIError(f"--train {args.train!r} is not a file")
            settings.train_input = str(args.train)
            settings.train_sha256 = file_sha256(args.train)
        tasks = load_input_tasks(str(input_path), args.train, seed=args.seed, limit=args.limit, limits=limits)
    else:
        data_dir = resolve_data_dir(args.data_dir)
        settings.data_dir = str(data_dir.resolve())
        names = _task_names(args.tasks)
        tasks = load_benchmark_tasks(names, data_dir, seed=args.seed, limit=args.limit)

    settings.signals = attach_task_signals(args, tasks, cache_dir=out / "cache")
    if uses_llm:  # a trained model shown other signals than it was trained with: refused before it loads
        from ..signals.command import preflight_from_args

        preflight_from_args(
            argparse.Namespace(**{**vars(args), "signals": None, "signal_providers": None}),
            [ex for t in tasks for ex in t.examples],
        )

    ray_session = None
    if args.ray is not None:  # the LLM methods run on Ray workers; the baselines stay here
        from ..sharding.command import RaySession

        if not uses_llm:
            raise CLIError(
                f"--ray shards the LLM methods ({', '.join(sorted(LLM_METHODS))}); --methods has none"
            )
        ray_session = RaySession(args)
    factory = RankerFactory(
        seed=args.seed,
        embed_model=args.embed_model,
        knn_k=args.knn_k,
        router_target="rank",
        cache_dir=out / "cache",
        llm_factory=_llm_factory(args, ray_session) if uses_llm else None,
    )
    plan = build_plan(tasks, methods, factory, routing_baselines=not args.no_routing_baselines)
    try:
        if ray_session is not None:
            ray_session.connect()  # a bad address fails here, before the folder is touched
        with FolderLock(out):
            return _run_locked(args, out, settings, tasks, plan, factory)
    except FolderBusy as exc:
        raise CLIError(str(exc)) from None
    finally:
        if ray_session is not None:
            ray_session.close()


def _run_locked(
    args: argparse.Namespace,
    out: Path,
    settings: RunSettings,
    tasks: list[EvalTask],
    plan: list,
    factory: RankerFactory,
) -> int:

    try:
        doc = record_settings(
            out,
            settings,
            tasks=[t.name for t in tasks],
            methods=sorted({m for _, ms in plan for m in ms}),
            argv=sys.argv[1:],
        )
    except SettingsConflict as exc:
        raise CLIError(str(exc)) from None

    store = PredictionStore(out / PREDICTIONS)
    if store.dropped:
        print(
            f"dropped {store.dropped} unreadable line(s) from {store.path} (an interrupted write)",
            file=sys.stderr,
        )
    total = sum(len(t.examples) * len(ms) for t, ms in plan)
    have = sum(1 for t, ms in plan for m in ms for ex in t.examples if f"{t.name}|{m}|{ex.id}" in store)
    if have:
        print(f"resuming: {have} of {total} predictions already in {store.path}", file=sys.stderr)

    def chunk_size(method: str) -> int:
        if args.chunk_size:
            return args.chunk_size
        return args.batch_size if method in LLM_METHODS else 128

    try:
        evaluate_methods(plan, store, factory, chunk_size=chunk_size, progress=not args.quiet)
    except KeyboardInterrupt:
        store.close()
        print(
            f"interrupted: {len(store)} predictions kept in {store.path}; rerun the same command to continue",
            file=sys.stderr,
        )
        return 130
    except MethodUnavailable as exc:
        store.close()
        raise CLIError(str(exc)) from None
    except BaseException:
        store.close()
        print(
            f"predictions so far are kept in {store.path}; rerun the same command to continue",
            file=sys.stderr,
        )
        raise
    store.close()

    metrics = compute_metrics(plan, store, settings=doc["settings"], previous=read_metrics(out))
    write_metrics(out, metrics)
    write_report(out, metrics)
    png = write_report_png(out, metrics)
    print(
        f"wrote {out / 'metrics.json'}, {out / 'report.md'}"
        + (f", {png}" if png else " (no report.png: matplotlib is not installed)"),
        file=sys.stderr,
    )
    _print_summary(plan, metrics)
    return 0


def _print_summary(plan, metrics: dict[str, Any]) -> None:

    for task, methods in plan:
        measure = headline_measure(task.name)
        res = metrics["results"].get(task.name, {})
        parts = [
            f"{m}={100 * res[m][measure]:.1f}"
            for m in methods
            if m in res and res[m].get(measure) is not None
        ]
        print(f"{task.name} ({measure} x100, n={len(task.examples)}): " + " ".join(parts), file=sys.stderr)
