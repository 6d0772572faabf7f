"""``iranker data steps``: the elimination-step training set as a Hugging Face parquet dataset.

    iranker data steps --tasks rec-movie,router-balance --split train --out runs/steps \
        [--seed 0] [--max-per-task 5000] [--leave-out passage] [--data-dir DATA]
    iranker data steps --input my_examples.jsonl --out runs/steps [--test-input held_out.jsonl]

writes ``DIR/<split>.parquet`` (one row per elimination step, columns of
:func:`iranker.data.steps.step_rows`) and ``DIR/info.json`` (rows and examples per task, seed,
split rule, leak check, the prompt templates the prompts were rendered with, and each task
builder's metadata).

Splits are by user / query, never by step: the examples come from ``build_task(name,
data_dir, split, ...)``, whose split assigns whole users (recommendation) or queries (routing,
passage) to train or test. On top of that, building a non-test split also builds the test
split of the same tasks and **fails** if any test example id appears in the training set, or
(routing, passage) any test query text does. With ``--input`` the check runs against
``--test-input`` when given.

Tasks are mixed jointly by default (one shuffled dataset over all scenarios);
``--leave-out recommendation|routing|passage`` drops a scenario for the paper's zero-shot
protocol (train on the others, test on the left-out one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .. import __version__
from ..atomic_files import atomic_path, atomic_write_text
from ..cli.errors import CLIError
from ..scenarios import get_scenario
from ..signals import SignalError
from ..signals import parse_signal_names as parse_signals_arg
from ..types import SCENARIOS, RankingExample
from .io import DataError, read_examples
from .routing_augment import RoutingAugment
from .step_transforms import augment_routing, teacher_relabel
from .steps import build_step_rows
from .tasks import TASKS, build_task

#: environment variable giving the default ``--data-dir``
DATA_DIR_ENV = "IRANKER_DATA_DIR"

#: one line describing how examples are split, written to info.json
SPLIT_RULE = (
    "by user (recommendation) / by query (routing, passage), decided by the task builder "
    "(iranker.data.tasks.build_task) before any step is made; all steps of one example stay in "
    "its split; checked: no example id (and no routing/passage query) of the test split appears "
    "in a training split"
)


class StepsError(ValueError):
    """Bad arguments or data for building a step dataset (shown as one error line)."""


class LeakError(StepsError):
    """Test examples appear in a training split."""


# -- collecting examples --------------------------------------------------------------------------
@dataclass
class ExampleSet:
    """Examples per task for one split, plus where they came from."""

    split: str
    by_task: dict[str, list[RankingExample]]
    task_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def n_examples(self) -> int:
        return sum(len(v) for v in self.by_task.values())


def parse_tasks(value: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (order kept, duplicates dropped)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out


def task_scenario(task: str) -> str | None:
    """The scenario of a registered task name, or ``None`` if it is not registered."""
    try:
        from .tasks import TASKS
    except ImportError:  # pragma: no cover - tasks.py is part of the package
        return None
    spec = TASKS.get(task)
    return spec.scenario if spec else None


def example_task(example: RankingExample) -> str:
    """The task an example of an ``--input`` file belongs to: ``meta.task`` or its scenario."""
    return str(example.meta.get("task") or example.scenario)


def examples_from_tasks(
    tasks: Sequence[str],
    *,
    split: str,
    data_dir: str | os.PathLike[str],
    seed: int = 0,
    limit: int | None = None,
    leave_out: str | None = None,
    rec_history: int | None = None,
) -> ExampleSet:
    """Build ``split`` of every task with ``build_task`` (scenario ``leave_out`` skipped)."""

    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise StepsError(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    by_task: dict[str, list[RankingExample]] = {}
    meta: dict[str, dict[str, Any]] = {}
    dropped: dict[str, int] = {}
    for task in tasks:
        if leave_out and TASKS[task].scenario == leave_out:
            dropped[task] = -1  # the whole task: its scenario is left out
            continue
        if split not in TASKS[task].splits:
            raise StepsError(f"task {task!r} has no {split!r} split (it has {list(TASKS[task].splits)})")
        try:
            options = (
                {"n_history": rec_history}
                if rec_history is not None and TASKS[task].scenario == "recommendation"
                else {}
            )
            data = build_task(task, data_dir, split=split, seed=seed, limit=limit, **options)
        except FileNotFoundError as exc:
            raise StepsError(f"{task}: {exc}") from None
        by_task[task] = list(data.examples)
        meta[task] = dict(data.metadata)
    return ExampleSet(split, by_task, meta, source=f"tasks from {data_dir}", dropped=dropped)


def examples_from_file(
    path: str | os.PathLike[str],
    *,
    split: str,
    tasks: Sequence[str] = (),
    leave_out: str | None = None,
    limit: int | None = None,
) -> ExampleSet:
    """Examples of a JSONL file grouped by task (``meta.task``, else the scenario)."""

    examples = read_examples(path)
    by_task: dict[str, list[RankingExample]] = {}
    dropped: Counter = Counter()
    for ex in examples:
        task = example_task(ex)
        if tasks and task not in tasks:
            continue
        if leave_out and ex.scenario == leave_out:
            dropped[task] += 1
            continue
        by_task.setdefault(task, []).append(ex)
    if tasks:
        missing = [t for t in tasks if t not in by_task and t not in dropped]
        if missing:
            raise StepsError(
                f"{path}: no examples of task(s) {missing} (an example's task is its "
                "meta.task, else its scenario)"
            )
    if limit is not None:
        by_task = {t: v[:limit] for t, v in by_task.items()}
    return ExampleSet(split, by_task, {}, source=f"input file {path}", dropped=dict(dropped))


def check_no_leak(train: ExampleSet, test: ExampleSet) -> dict[str, Any]:
    """Raise ``LeakError`` when a test example is in ``train``; return what was checked.

    Ids are compared within each task (ids carry the task name); query texts are compared
    across all tasks of the routing and passage scenarios, where the query is the user's
    question (the same question under another routing objective is still the same question).
    Recommendation queries are history lists; equal ones between different users are counted
    but allowed.
    """
    problems: list[str] = []
    test_queries = {
        ex.query.strip() for exs in test.by_task.values() for ex in exs if ex.scenario != "recommendation"
    }
    rec_test_queries = {
        ex.query.strip() for exs in test.by_task.values() for ex in exs if ex.scenario == "recommendation"
    }
    id_overlap = 0
    query_overlap = 0
    rec_query_overlap = 0
    for task, exs in train.by_task.items():
        test_ids = {ex.id for ex in test.by_task.get(task, [])}
        shared = sorted({ex.id for ex in exs} & test_ids)
        if shared:
            id_overlap += len(shared)
            problems.append(
                f"{task}: {len(shared)} test example id(s) in the training split, e.g. {shared[:3]}"
            )
        leaked = [ex.id for ex in exs if ex.scenario != "recommendation" and ex.query.strip() in test_queries]
        if leaked:
            query_overlap += len(leaked)
            problems.append(f"{task}: {len(leaked)} training example(s) ask a test query, e.g. {leaked[:3]}")
        rec_query_overlap += sum(
            1 for ex in exs if ex.scenario == "recommendation" and ex.query.strip() in rec_test_queries
        )
    report = {
        "checked_against": test.source,
        "test_examples": test.n_examples,
        "id_overlap": id_overlap,
        "query_overlap": query_overlap,
        "recommendation_equal_histories": rec_query_overlap,
    }
    if problems:
        raise LeakError("test examples leak into the training split: " + "; ".join(problems))
    return report


# -- writing --------------------------------------------------------------------------------------
def step_features():
    """The Arrow schema of step rows (explicit, so empty lists never get a null type)."""
    from datasets import Features, List, Value

    return Features(
        {
            "prompt": List({"role": Value("string"), "content": Value("string")}),
            "pool": List(
                {
                    "id": Value("string"),
                    "label": Value("string"),
                    "text": Value("string"),
                    "names": List(Value("string")),
                }
            ),
            "best": List(Value("string")),
            "relevance": Value("string"),
            "task": Value("string"),
            "scenario": Value("string"),
            "example_id": Value("string"),
            "pool_size": Value("int64"),
            "data_source": Value("string"),
        }
    )


def write_parquet(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], features=None) -> Path:
    """Write ``rows`` as a Hugging Face dataset in parquet, atomically (``.partial`` then rename)."""
    from datasets import Dataset

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import datasets

    ds = Dataset.from_list([dict(r) for r in rows], features=features)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with atomic_path(path, suffix=".partial") as tmp:
            ds.to_parquet(str(tmp))
    finally:
        if bars:
            datasets.enable_progress_bars()
    return path


def write_json(data: Any, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def templates_used(scenarios: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{scenario: PromptTemplate.to_dict()}`` of the templates the step prompts are rendered with."""

    return {s: get_scenario(s).template.to_dict() for s in sorted(set(scenarios))}


def rows_summary(rows: Sequence[Mapping[str, Any]], examples: ExampleSet) -> dict[str, Any]:
    per_task: dict[str, Any] = {}
    for task, exs in examples.by_task.items():
        task_rows = [r for r in rows if r["task"] == task]
        per_task[task] = {
            "scenario": exs[0].scenario if exs else task_scenario(task),
            "examples": len(exs),
            "examples_with_labels": sum(1 for e in exs if e.relevance and max(e.relevance.values()) > 0),
            "rows": len(task_rows),
            "pool_sizes": dict(sorted(Counter(int(r["pool_size"]) for r in task_rows).items())),
        }
    return per_task


def build_steps(
    *,
    tasks: Sequence[str] = (),
    split: str = "train",
    out: str | os.PathLike[str],
    seed: int = 0,
    max_per_task: int | None = None,
    leave_out: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    input_path: str | os.PathLike[str] | None = None,
    test_input: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    check_leak: bool = True,
    routing_augment: Any = None,
    augment_copies: int = 1,
    rec_history: int | None = None,
    teacher: str | None = None,
    pool_sizes: Sequence[int] | None = None,
    signals: Sequence[str] | None = None,
    interactions: str | None = None,
    outcomes: str | None = None,
) -> dict[str, Any]:
    """Build and write the step dataset; returns the ``info.json`` content.

    ``routing_augment`` (a :class:`~iranker.data.routing_augment.RoutingAugment`) replaces each
    routing example by ``augment_copies`` aliased / re-priced copies, relabelled by the routing
    utility; ``rec_history`` keeps the last N history items of recommendation tasks;
    ``teacher`` relabels recommendation examples with a teacher's order
    (:mod:`iranker.data.step_transforms`); ``pool_sizes`` limits the pool sizes of the rows
    (default every size 2..N; a curriculum builds small pools first).
    """

    if leave_out is not None and leave_out not in SCENARIOS:
        raise StepsError(f"--leave-out must be one of {', '.join(SCENARIOS)}, got {leave_out!r}")
    if max_per_task is not None and max_per_task < 1:
        raise StepsError("--max-per-task must be >= 1")
    tasks = parse_tasks(tasks)
    if input_path is None and not tasks:
        raise StepsError("give --tasks (task names) or --input (an examples JSONL file)")
    if input_path is not None:
        examples = examples_from_file(input_path, split=split, tasks=tasks, leave_out=leave_out, limit=limit)
        test = examples_from_file(test_input, split="test", tasks=tasks) if test_input else None
    else:
        if data_dir is None:
            data_dir = os.environ.get(DATA_DIR_ENV)
        if not data_dir:
            raise StepsError(f"--data-dir is needed with --tasks (or set ${DATA_DIR_ENV})")
        examples = examples_from_tasks(
            tasks,
            split=split,
            data_dir=data_dir,
            seed=seed,
            limit=limit,
            leave_out=leave_out,
            rec_history=rec_history,
        )
        test = None
        if check_leak and split != "test":
            test = examples_from_tasks(
                list(examples.by_task), split="test", data_dir=data_dir, seed=seed, rec_history=rec_history
            )
    if not examples.by_task:
        raise StepsError("no examples left (every task was left out or filtered)")
    leak = check_no_leak(examples, test) if (test is not None and check_leak) else None
    signals_info = None
    if signals:  # from the training split only (iranker.signals.steps), before any augmentation
        from ..signals.steps import attach_split_signals

        if split == "train":
            train_by_task = examples.by_task
        elif input_path is not None:
            train_by_task = {}
        else:
            train_by_task = examples_from_tasks(
                list(examples.by_task), split="train", data_dir=data_dir, seed=seed, rec_history=rec_history
            ).by_task
        examples.by_task, signals_info = attach_split_signals(
            examples.by_task,
            signals,
            train_by_task=train_by_task,
            interactions=interactions,
            outcomes=outcomes,
        )
    if routing_augment is not None:
        examples.by_task = {
            t: augment_routing(v, routing_augment, copies=augment_copies, seed=seed)
            for t, v in examples.by_task.items()
        }
    if teacher:
        examples.by_task = {t: teacher_relabel(v, teacher) for t, v in examples.by_task.items()}
    if pool_sizes is not None and (not pool_sizes or min(pool_sizes) < 2):
        raise StepsError("--pool-sizes must be integers >= 2")

    rows = build_step_rows(examples.by_task, seed=seed, max_per_task=max_per_task, sizes=pool_sizes)
    if not rows:
        raise StepsError("the examples gave no step rows (they need relevance labels with a grade > 0)")
    out_dir = Path(out)
    parquet = write_parquet(rows, out_dir / f"{split}.parquet", features=step_features())

    info = {
        "kind": "iranker-steps",
        "split": split,
        "file": parquet.name,
        "rows": len(rows),
        "examples": examples.n_examples,
        "seed": seed,
        "max_per_task": max_per_task,
        "limit_per_task": limit,
        "leave_out": leave_out,
        "mixing": "joint: all tasks' rows shuffled together (seeded)",
        "routing_augment": routing_augment.describe() if routing_augment is not None else None,
        "augment_copies": augment_copies if routing_augment is not None else None,
        "rec_history": rec_history,
        "teacher": teacher,
        "pool_sizes": list(pool_sizes) if pool_sizes else "all (2..N)",
        **({"signals": signals_info} if signals_info else {}),
        "split_rule": SPLIT_RULE,
        "leak_check": leak
        if leak is not None
        else (
            "not run"
            + ("" if check_leak else " (disabled)")
            + (
                " (pass --test-input to check an --input file)"
                if input_path is not None and check_leak
                else ""
            )
        ),
        "source": examples.source,
        "tasks": rows_summary(rows, examples),
        "left_out_tasks": sorted(t for t, n in examples.dropped.items() if n == -1),
        "templates": templates_used(r["scenario"] for r in rows),
        "task_metadata": examples.task_meta,
        "columns": list(rows[0].keys()),
        "iranker_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(info, out_dir / "info.json")
    return info


# -- command line ---------------------------------------------------------------------------------
def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument(
        "--tasks",
        default=None,
        help="comma list of tasks (rec-movie, rec-music, rec-game, router-performance, "
        "router-balance, router-cost, passage-5, passage-7, passage-9); with --input, "
        "keeps only these tasks (an example's task is meta.task, else its scenario)",
    )
    p.add_argument("--split", default="train", help="split to build (default train)")
    p.add_argument("--out", required=True, help="output folder for <split>.parquet and info.json")
    p.add_argument("--seed", type=int, default=0, help="seed for pools, shuffling and caps (default 0)")
    p.add_argument(
        "--max-per-task",
        type=int,
        default=None,
        help="cap the rows each task contributes (seeded sample), so one task does not dominate",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="examples per task (seeded subset for --tasks, first N for --input)",
    )
    p.add_argument(
        "--leave-out",
        choices=SCENARIOS,
        default=None,
        help="drop one scenario (zero-shot protocol: train on the other two)",
    )
    p.add_argument("--data-dir", default=None, help=f"folder with the task sources (default ${DATA_DIR_ENV})")
    p.add_argument(
        "--input",
        dest="input_path",
        default=None,
        help="examples JSONL instead of --tasks (each line: an iranker example with relevance)",
    )
    p.add_argument(
        "--test-input",
        default=None,
        help="with --input: held-out examples; building fails if one of them is in --input",
    )
    p.add_argument(
        "--routing-augment",
        default=None,
        metavar="aliases,prices",
        help="routing examples with per-example random aliases and/or prices drawn from a ladder "
        "of list prices (labels recomputed by the routing utility; price sentences dropped "
        "from descriptions): 'aliases', 'prices' or 'aliases,prices'",
    )
    p.add_argument(
        "--augment-copies",
        type=int,
        default=1,
        help="with --routing-augment: augmented copies per routing example (default 1)",
    )
    p.add_argument(
        "--rec-history",
        type=int,
        default=None,
        help="recommendation tasks: keep the last N history items (default: the task's 20)",
    )
    p.add_argument(
        "--teacher",
        choices=("bm25",),
        default=None,
        help="relabel recommendation examples with a teacher's order (distillation warm start)",
    )
    p.add_argument(
        "--pool-sizes",
        default=None,
        help="comma list of pool sizes to make rows for (default every size 2..N)",
    )
    p.add_argument(
        "--signals",
        default=None,
        metavar="NAMES",
        help="show each candidate's rank on these signals (bm25, dense, cooccur, outcomes), computed "
        "from the training split only (each example's own user / query left out)",
    )
    p.add_argument(
        "--interactions",
        default=None,
        metavar="FILE",
        help="with --signals cooccur: interactions JSONL instead of the training split's users",
    )
    p.add_argument(
        "--outcomes",
        default=None,
        metavar="FILE",
        help="with --signals outcomes: outcomes JSONL instead of the training split's queries",
    )
    p.add_argument(
        "--no-leak-check",
        dest="check_leak",
        action="store_false",
        help="skip building the test split to check for leaks (not recommended)",
    )
    return p


def _find_subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action
    return None


def add_parser(subparsers: Any) -> None:
    """Add ``data steps`` to the CLI (creating the ``data`` command if nobody else did)."""
    data = subparsers.choices.get("data") if hasattr(subparsers, "choices") else None
    if data is None:
        data = subparsers.add_parser(
            "data",
            help="build datasets (elimination steps for training)",
            description="Build datasets from the task sources.",
        )
    sub = _find_subparsers(data)
    if sub is None:
        sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    p = sub.add_parser(
        "steps",
        help="the elimination-step training set as parquet",
        description="Write the elimination-step training set as a Hugging Face dataset: "
        "OUT/<split>.parquet (one row per step) and OUT/info.json (rows per task, "
        "seed, split rule, leak check, prompt templates). Examples are split by "
        "user/query by the task builder, and building a training split fails if a "
        "test example or test query is in it. Tasks are mixed jointly; "
        "--leave-out drops one scenario (zero-shot protocol).",
    )
    configure_parser(p)
    p.set_defaults(func=run)
    if data.get_default("func") is None:
        data.set_defaults(func=lambda args: (data.print_help(), 2)[1])


def run(args: argparse.Namespace) -> int:

    try:
        augment = None
        if args.routing_augment:
            parts = set(parse_tasks(args.routing_augment))
            if not parts or parts - {"aliases", "prices"}:
                raise StepsError("--routing-augment takes 'aliases', 'prices' or 'aliases,prices'")
            augment = RoutingAugment(aliases="aliases" in parts, prices="prices" in parts)
        sizes = None
        if args.pool_sizes:
            try:
                sizes = [int(x) for x in parse_tasks(args.pool_sizes)]
            except ValueError:
                raise StepsError(
                    f"--pool-sizes must be a comma list of integers, got {args.pool_sizes!r}"
                ) from None
        if args.rec_history is not None and args.rec_history < 1:
            raise StepsError("--rec-history must be >= 1")
        info = build_steps(
            tasks=parse_tasks(args.tasks),
            split=args.split,
            out=args.out,
            seed=args.seed,
            max_per_task=args.max_per_task,
            leave_out=args.leave_out,
            data_dir=args.data_dir,
            input_path=args.input_path,
            test_input=args.test_input,
            limit=args.limit,
            check_leak=args.check_leak,
            routing_augment=augment,
            augment_copies=args.augment_copies,
            rec_history=args.rec_history,
            teacher=args.teacher,
            pool_sizes=sizes,
            signals=parse_signals_arg(args.signals),
            interactions=args.interactions,
            outcomes=args.outcomes,
        )
    except (StepsError, DataError, SignalError) as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:  # a task builder's message (unknown split, bad limit, ...)
        raise CLIError(str(exc)) from None
    per_task = ", ".join(
        f"{t}: {v['rows']} rows / {v['examples']} examples" for t, v in info["tasks"].items()
    )
    print(f"wrote {info['rows']} step rows to {Path(args.out) / info['file']} ({per_task})", file=sys.stderr)
    if isinstance(info["leak_check"], dict):
        print(
            f"leak check passed against {info['leak_check']['test_examples']} test examples", file=sys.stderr
        )
    else:
        print(f"leak check: {info['leak_check']}", file=sys.stderr)
    return 0


__all__ = [
    "ExampleSet",
    "LeakError",
    "SPLIT_RULE",
    "StepsError",
    "add_parser",
    "build_steps",
    "check_no_leak",
    "examples_from_file",
    "examples_from_tasks",
    "parse_tasks",
    "step_features",
    "write_parquet",
]
