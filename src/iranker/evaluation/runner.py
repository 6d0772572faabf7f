"""The resumable evaluation loop: (task, method, example) -> one prediction record.

Every prediction is appended to ``DIR/predictions.jsonl`` as soon as its chunk is ranked and
flushed to disk (``fsync``), keyed by ``task|method|example_id``. A rerun with the same
arguments reads the file, skips every key already there and ranks only the rest, so a killed
run loses at most the chunk it was working on and recomputes nothing it had written. A line
cut short by the kill (the only kind of damage an append-only file can take) is dropped.

``DIR/run.json`` records the settings that decide what a prediction *is* (seed, limit, input
file, model and generation settings, embedding model, kNN settings). A rerun into the same
folder with different values is refused (:class:`SettingsConflict`), because mixing
predictions made under two settings would silently corrupt the metrics. Adding tasks or
methods to a folder is fine: their keys are new.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ..atomic_files import atomic_write_text
from ..digests import file_sha256
from ..jsonl_store import ExclusiveLock, StoreBusy, StoreSettingsConflict, settings_differences
from ..jsonl_store import JSONLStore as PredictionStore
from ..rankers.base import Ranker, _NoBar, ranked_chunks
from ..types import Ranking, RankingExample

__all__ = [
    "LLM_METHODS",
    "METHODS",
    "ROUTING_METHODS",
    "SIGNAL_METHODS",
    "TRAINED_METHODS",
    "EvalTask",
    "FolderBusy",
    "FolderLock",
    "MethodUnavailable",
    "PredictionStore",
    "RankerFactory",
    "RunSettings",
    "SettingsConflict",
    "evaluate_methods",
    "file_sha256",
    "prediction_key",
    "record_settings",
]

#: every method name ``iranker eval --methods`` accepts, in report order
METHODS: tuple[str, ...] = (
    "random",
    "bm25",
    "dense",
    "knn",
    "cheapest-first",
    "most-frequent-best",
    "cooccur",
    "outcomes",
    "rrf",
    "iterative",
    "iterative-choice",
    "direct",
)
#: methods that call the LLM backend
LLM_METHODS = frozenset({"iterative", "iterative-choice", "direct"})
#: routing-only baselines, added to every routing task's rows
ROUTING_METHODS: tuple[str, ...] = ("cheapest-first", "most-frequent-best")
#: rankers that read the signals the examples carry (``--signals``): one signal alone, or their
#: reciprocal-rank fusion; the scenarios a single-signal method applies to (others: every one)
SIGNAL_METHODS = {"cooccur": ("recommendation",), "outcomes": ("routing",), "rrf": None}
#: methods fitted on the task's train split (knn only for recommendation and routing)
TRAINED_METHODS = frozenset({"knn", "most-frequent-best"})

PREDICTIONS = "predictions.jsonl"
RUN_FILE = "run.json"


class SettingsConflict(StoreSettingsConflict):
    """The output folder holds predictions made with other settings."""


class MethodUnavailable(ValueError):
    """A method cannot run on a task (e.g. a trained baseline without training data)."""


class FolderBusy(StoreBusy):
    """Another ``iranker eval`` is writing to the same output folder."""


def FolderLock(out_dir: str | os.PathLike[str]) -> ExclusiveLock:
    """The lock of an eval folder: ``DIR/.lock`` (see :class:`~iranker.jsonl_store.ExclusiveLock`)."""
    return ExclusiveLock(
        Path(out_dir) / ".lock",
        f"another iranker eval is writing to {out_dir}; wait for it or use another --out",
        FolderBusy,
    )


def prediction_key(task: str, method: str, example_id: str) -> str:
    """The identity of one prediction: ``task|method|example_id``."""
    return f"{task}|{method}|{example_id}"


# ---------------------------------------------------------------------------------------------
# Tasks


@dataclass
class EvalTask:
    """One column of the report: its test examples, what describes them, and its train data.

    ``train_loader`` builds the training examples on first use (only trained baselines need
    them); None means the task has none.
    """

    name: str
    examples: list[RankingExample]
    metadata: dict[str, Any] = field(default_factory=dict)
    train_loader: Callable[[], list[RankingExample]] | None = None
    _train: list[RankingExample] | None = field(default=None, repr=False)

    @property
    def scenario(self) -> str:
        scenarios = {ex.scenario for ex in self.examples}
        if len(scenarios) == 1:
            return scenarios.pop()
        return str(self.metadata.get("scenario") or "mixed")

    @property
    def has_train(self) -> bool:
        return self.train_loader is not None

    def train(self) -> list[RankingExample]:
        if self._train is None:
            if self.train_loader is None:
                raise MethodUnavailable(f"task {self.name!r} has no training data")
            self._train = list(self.train_loader())
        return self._train


# ---------------------------------------------------------------------------------------------
# Predictions file


def prediction_record(task: str, method: str, ranking: Ranking, seconds: float) -> dict[str, Any]:
    """One line of ``predictions.jsonl``."""
    valid: float | None = None
    if ranking.steps:
        valid = ranking.valid_rate
    elif "valid" in ranking.meta:
        valid = float(bool(ranking.meta["valid"]))
    meta = {k: v for k, v in ranking.meta.items() if k not in ("scores", "neighbours")}
    rec: dict[str, Any] = {
        "key": prediction_key(task, method, ranking.example_id),
        "task": task,
        "method": method,
        "example_id": ranking.example_id,
        "ranking": list(ranking.order),
        "steps": [s.to_dict() for s in ranking.steps],
        "usage": ranking.usage.to_dict(),
        "valid": valid,
        "seconds": round(seconds, 6),
    }
    if meta:
        rec["meta"] = meta
    return rec


# ---------------------------------------------------------------------------------------------
# Run settings


@dataclass
class RunSettings:
    """Everything that decides what a prediction is; stored in ``run.json``.

    ``llm`` is None when no LLM method has run in the folder yet (so a folder started with
    baselines can later get LLM rows), else the backend/model/generation settings.
    """

    mode: str  # "tasks" | "input"
    seed: int
    limit: int | None
    split: str = "test"
    input: str | None = None
    input_sha256: str | None = None
    train_input: str | None = None
    train_sha256: str | None = None
    data_dir: str | None = None
    embed_model: str | None = None
    knn: dict[str, Any] | None = None
    llm: dict[str, Any] | None = None
    #: the signals attached to every example (``--signals``), None without
    signals: dict[str, Any] | None = None

    #: fields that must match between runs sharing a folder (paths may move; their hashes may not)
    COMPARED = (
        "mode",
        "seed",
        "limit",
        "split",
        "input_sha256",
        "train_sha256",
        "embed_model",
        "knn",
        "signals",
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSettings":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


def _differences(old: RunSettings, new: RunSettings) -> list[str]:
    diffs = settings_differences(old.to_dict(), new.to_dict(), RunSettings.COMPARED)
    if old.llm is not None and new.llm is not None:
        diffs += settings_differences(old.llm, new.llm, prefix="llm.")
    return diffs


def record_settings(
    out_dir: str | os.PathLike[str],
    settings: RunSettings,
    *,
    tasks: Sequence[str],
    methods: Sequence[str],
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Check ``settings`` against ``DIR/run.json`` (raising :class:`SettingsConflict` on a
    mismatch) and write the merged file; returns its content."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_FILE
    history: list[dict[str, Any]] = []
    merged = settings
    if path.exists():
        try:
            old_doc = json.loads(path.read_text(encoding="utf-8"))
            old = RunSettings.from_dict(old_doc["settings"])
            history = list(old_doc.get("history", []))
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsConflict(
                f"{path} is not a valid run file ({exc}); use a new --out folder"
            ) from None
        diffs = _differences(old, settings)
        if diffs:
            raise SettingsConflict(
                f"{out} holds predictions made with other settings ({'; '.join(diffs)}). "
                "Rerun with the folder's settings to resume, or choose a new --out folder."
            )
        merged = RunSettings.from_dict(
            {
                **old.to_dict(),
                **{k: v for k, v in settings.to_dict().items() if v is not None or k in RunSettings.COMPARED},
            }
        )
        if merged.llm is None:
            merged.llm = old.llm
    history.append(
        {
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tasks": list(tasks),
            "methods": list(methods),
            **({"argv": list(argv)} if argv is not None else {}),
        }
    )
    doc = {"settings": merged.to_dict(), "history": history}
    atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return doc


# ---------------------------------------------------------------------------------------------
# Building rankers


class RankerFactory:
    """Builds the ranker of a method for a task, sharing what can be shared.

    One ``DenseRanker`` (one loaded encoder) serves ``dense`` and ``knn``; trained baselines
    are fitted per task (``task.train()``); LLM rankers come from ``llm_factory(method)``,
    called once per method, so the backend loads at most once and only when needed.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        embed_model: str | None = None,
        knn_k: int = 10,
        router_target: str = "rank",
        cache_dir: str | os.PathLike[str] | None = None,
        llm_factory: Callable[[str], Ranker] | None = None,
    ) -> None:
        self.seed = seed
        self.embed_model = embed_model
        self.knn_k = knn_k
        self.router_target = router_target
        self.cache_dir = cache_dir
        self.llm_factory = llm_factory
        self._dense: Ranker | None = None
        self._llm: dict[str, Ranker] = {}

    @property
    def dense(self) -> Ranker:
        if self._dense is None:
            from ..rankers.dense import DEFAULT_MODEL, DenseRanker

            self._dense = DenseRanker(self.embed_model or DEFAULT_MODEL)
        return self._dense

    def check(self, method: str, task: EvalTask) -> None:
        """Raise :class:`MethodUnavailable` if ``method`` cannot run on ``task`` (before any work)."""
        if method not in METHODS:
            raise MethodUnavailable(f"unknown method {method!r}; use {', '.join(METHODS)}")
        if method in ROUTING_METHODS and task.scenario != "routing":
            raise MethodUnavailable(f"{method} is a routing baseline; task {task.name!r} is {task.scenario}")
        needs_train = method == "most-frequent-best" or (
            method == "knn" and any(ex.scenario in ("recommendation", "routing") for ex in task.examples)
        )
        if needs_train and not task.has_train:
            raise MethodUnavailable(
                f"{method} is fitted on training data and task {task.name!r} has none "
                "(with --input, give --train FILE.jsonl)"
            )
        if method in LLM_METHODS and self.llm_factory is None:
            raise MethodUnavailable(f"{method} needs an LLM backend")
        if method == "cheapest-first":
            from ..rankers.knn import candidate_price

            unpriced = [
                ex.id for ex in task.examples if all(candidate_price(c) is None for c in ex.candidates)
            ]
            if unpriced:
                raise MethodUnavailable(
                    f"cheapest-first ranks by price and {len(unpriced)} of {len(task.examples)} examples of task "
                    f"{task.name!r} give no candidate an input_price/output_price (first: {unpriced[0]!r})"
                )
        if method in SIGNAL_METHODS:
            from ..signals.schema import example_signal_names

            wanted = None if method == "rrf" else method
            missing = [
                ex.id
                for ex in task.examples
                if not (example_signal_names(ex) if wanted is None else wanted in example_signal_names(ex))
            ]
            if missing:
                need = "signals" if wanted is None else f"the {wanted} signal"
                raise MethodUnavailable(
                    f"{method} ranks by {need}, which example {missing[0]!r} of task {task.name!r} "
                    f"does not carry; add --signals {wanted or 'bm25,dense,...'}"
                )

    def __call__(self, method: str, task: EvalTask) -> Ranker:
        self.check(method, task)
        if method == "random":
            from ..rankers.random_ranker import RandomRanker

            return RandomRanker(self.seed)
        if method == "bm25":
            from ..rankers.bm25 import BM25Ranker

            return BM25Ranker()
        if method == "dense":
            return self.dense
        if method == "knn":
            from ..rankers.knn import TaskSpecificRanker

            ranker = TaskSpecificRanker(
                k=self.knn_k, router_target=self.router_target, dense=self.dense, cache_dir=self.cache_dir
            )
            if task.has_train and any(ex.scenario != "passage" for ex in task.examples):
                ranker.fit(task.train())
            return ranker
        if method == "cheapest-first":
            from ..rankers.knn import CheapestFirstRanker

            return CheapestFirstRanker()
        if method == "most-frequent-best":
            from ..rankers.knn import MostFrequentBestRanker

            return MostFrequentBestRanker().fit(task.train())
        if method == "rrf":
            from ..signals.rankers import RRFRanker

            return RRFRanker()
        if method in SIGNAL_METHODS:
            from ..signals.rankers import SignalRanker

            return SignalRanker(method)
        if method not in self._llm:
            assert self.llm_factory is not None
            self._llm[method] = self.llm_factory(method)
        return self._llm[method]


# ---------------------------------------------------------------------------------------------
# The loop


def _bar(total: int, enabled: bool):

    if not enabled or total <= 0:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="eval", unit="ex", dynamic_ncols=True, file=sys.stderr)


def evaluate_methods(
    plan: Sequence[tuple[EvalTask, Sequence[str]]],
    store: PredictionStore,
    make_ranker: Callable[[str, EvalTask], Ranker],
    *,
    chunk_size: Callable[[str], int] | int = 64,
    progress: bool = True,
) -> dict[str, dict[str, int]]:
    """Rank every example of every (task, method) in ``plan`` that ``store`` lacks.

    Returns ``{task: {method: n_ranked_now}}``. Rankers are built only for pairs with work
    left. Each chunk's records are on disk before the next chunk is taken; a sharded ranker
    (``--ray``) ranks several chunks at once but hands them back in order, so the file is
    written exactly as by one process. A
    ``KeyboardInterrupt`` (or any error) propagates after the bar is closed; what was written
    stays written.
    """
    work: list[tuple[EvalTask, str, list[RankingExample]]] = []
    for task, methods in plan:
        for method in methods:
            todo = [ex for ex in task.examples if prediction_key(task.name, method, ex.id) not in store]
            if todo:
                work.append((task, method, todo))
    done: dict[str, dict[str, int]] = {t.name: {m: 0 for m in ms} for t, ms in plan}
    bar = _bar(sum(len(t) for _, _, t in work), progress)
    try:
        for task, method, todo in work:
            if hasattr(bar, "set_description"):
                bar.set_description(f"{task.name} {method}")
            ranker = make_ranker(method, task)
            size = chunk_size(method) if callable(chunk_size) else int(chunk_size)
            size = max(1, size)
            chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
            for ranked in ranked_chunks(ranker, chunks):
                chunk = ranked.examples
                per = ranked.seconds / len(chunk)
                by_id = {r.example_id: r for r in ranked.rankings}
                missing = [ex.id for ex in chunk if ex.id not in by_id]
                if missing:
                    raise RuntimeError(f"{method} returned no ranking for {missing[:3]} on {task.name}")
                store.append(prediction_record(task.name, method, by_id[ex.id], per) for ex in chunk)
                done[task.name][method] += len(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
    return done
