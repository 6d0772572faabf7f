"""The IRanker paper's released data, HF dataset ``ulab-ai/Ranking-bench``, as RankingExamples.

Schema (read from the paper's own code, ``ulab-uiuc/R1-Ranker``: ``eval/eval_*.py`` and
``examples/data_preprocess/``; the hub itself is not reachable from here): configs ``direct``
(and the per-step ``iterative`` variant), splits ``train`` / ``test``, one row per sample with

* ``problem`` — the full prompt text the paper used (history / query + candidates),
* ``candidates`` — list of candidate strings (titles, LLM names, passage texts),
* ``gt`` — the correct candidate: a title or LLM name, but for passages a *label*
  ``"passage N"`` (N = the passage's position in MS MARCO's list), not a text,
* ``task_name`` — one of ``Rec-Movie``, ``Rec-Music``, ``Rec-Game``, ``Router-Performance``,
  ``Router-Balance``, ``Router-Cost``, ``Passage-5``, ``Passage-7``, ``Passage-9``.

Assumptions (documented because we could not open the hub here): the field names above; the
prompt phrasing the paper's scripts parse ("in order:" ... "Now there are", "Here is a query:"
... "and candidate passages:", "passage N: text" lines). Where a prompt does not parse, the
example keeps the whole prompt as its query and the candidates as given, so conversion never
fails silently: a ``gt`` that names no candidate raises ``ValueError``.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..types import Candidate, RankingExample

__all__ = ["BENCH_TASKS", "load_ranking_bench", "row_to_example", "rows_to_examples"]

DEFAULT_REPO = "ulab-ai/Ranking-bench"

#: task_name -> (scenario, meta defaults)
BENCH_TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "Rec-Movie": ("recommendation", {"domain": "movie"}),
    "Rec-Music": ("recommendation", {"domain": "music album"}),
    "Rec-Game": ("recommendation", {"domain": "video game"}),
    "Router-Performance": ("routing", {"objective": "performance"}),
    "Router-Balance": ("routing", {"objective": "balance"}),
    "Router-Cost": ("routing", {"objective": "cost"}),
    "Passage-5": ("passage", {"k": 5}),
    "Passage-7": ("passage", {"k": 7}),
    "Passage-9": ("passage", {"k": 9}),
}

_PASSAGE_LINE = re.compile(r"^\s*(passage\s*\d+)\s*:\s*(.*\S)\s*$", re.IGNORECASE)
_LLM_LINE = re.compile(r"^\s*#\s*([^#:][^:]*?)\s*:\s*(.+?)\s*$")
_PRICE = re.compile(r"price is\s*\$?([0-9.]+)", re.IGNORECASE)
_NUMBERED = re.compile(r"^\s*\d+\s*[.)]\s*")


def _between(text: str, start: str, end: str) -> str | None:
    i = text.find(start)
    if i < 0:
        return None
    i += len(start)
    j = text.find(end, i)
    return text[i:j].strip() if j >= 0 else None


def _history(problem: str) -> list[str] | None:
    """The titles between "in order:" and "Now there are", written as a Python list literal."""
    block = _between(problem, "in order:", "Now there are")
    if not block:
        return None
    try:
        items = ast.literal_eval(block)
    except (ValueError, SyntaxError):
        items = [line for line in block.splitlines() if line.strip()]
    if not isinstance(items, (list, tuple)):
        return None
    return [_NUMBERED.sub("", str(x)).strip() for x in items if str(x).strip()]


def _index_of(candidates: list[str], gt: str) -> int | None:
    for i, c in enumerate(candidates):
        if c == gt:
            return i
    norm = " ".join(gt.split()).casefold()
    for i, c in enumerate(candidates):
        if " ".join(c.split()).casefold() == norm:
            return i
    return None


def row_to_example(row: Mapping[str, Any], *, index: int = 0, split: str = "test") -> RankingExample:
    """Convert one Ranking-bench row (see module docstring) to a :class:`RankingExample`."""
    for key in ("problem", "candidates", "gt", "task_name"):
        if key not in row:
            raise ValueError(f"row {index}: missing field {key!r} (have {sorted(row)})")
    task = str(row["task_name"])
    if task in BENCH_TASKS:
        scenario, defaults = BENCH_TASKS[task]
    elif task.startswith("Rec-"):
        scenario, defaults = "recommendation", {}
    elif task.startswith("Router-"):
        scenario, defaults = "routing", {}
    elif task.startswith("Passage-"):
        scenario, defaults = "passage", {}
    else:
        raise ValueError(f"row {index}: unknown task_name {task!r}; known: {sorted(BENCH_TASKS)}")
    problem = str(row["problem"] or "")
    raw_cands = [str(c) for c in (row["candidates"] or [])]
    gt = str(row["gt"]).strip()
    meta: dict[str, Any] = {**defaults, "task_name": task, "problem": problem, "source": DEFAULT_REPO}
    ex_id = f"{task}:{split}:{index}"

    if scenario == "passage":
        query = _between(problem, "Here is a query:", "and candidate passages") or problem
        block = problem.split("candidate passages:", 1)[-1]
        parsed = [m.groups() for m in map(_PASSAGE_LINE.match, block.splitlines()) if m]
        ids = {" ".join(p[0].lower().split()) for p in parsed}
        gt_id = " ".join(gt.lower().split())
        if parsed and gt_id in ids:
            cands = [Candidate(" ".join(pid.lower().split()), text) for pid, text in parsed]
        else:
            # direct config: candidates[i] is "passage i" (MS MARCO order)
            cands = [Candidate(f"passage {i}", t) for i, t in enumerate(raw_cands)]
            if gt_id not in {c.id for c in cands}:
                idx = _index_of(raw_cands, gt)
                if idx is None:
                    raise ValueError(f"row {index} ({task}): gt {gt!r} names no candidate")
                gt_id = cands[idx].id
        return RankingExample(ex_id, "passage", query.rstrip(". "), cands, {gt_id: 1.0}, meta)

    idx = _index_of(raw_cands, gt)
    if idx is None:
        raise ValueError(f"row {index} ({task}): gt {gt!r} is not among the candidates")
    ids = [str(i) for i in range(len(raw_cands))]
    if scenario == "recommendation":
        history = _history(problem)
        if history:
            meta["history"] = history
        query = "\n".join(history) if history else problem
        cands = [Candidate(i, t) for i, t in zip(ids, raw_cands)]
    else:
        query = (
            _between(problem, "Here is a query:", "and LLM condidates")  # sic, the paper's typo
            or _between(problem, "Here is a query:", "and LLM candidates")
            or problem
        )
        descriptions = {}
        for line in problem.split("## Here is a query", 1)[0].splitlines():
            m = _LLM_LINE.match(line)
            if m:
                descriptions[m.group(1).strip()] = m.group(2).strip()
        cands = []
        for i, name in zip(ids, raw_cands):
            desc = descriptions.get(name, name)
            cmeta: dict[str, Any] = {"name": name}
            price = _PRICE.search(desc)
            if price:
                cmeta["input_price"] = cmeta["output_price"] = float(price.group(1).rstrip("."))
            cands.append(Candidate(i, desc, cmeta))
    return RankingExample(ex_id, scenario, query, cands, {ids[idx]: 1.0}, meta)


def rows_to_examples(
    rows: Iterable[Mapping[str, Any]], *, split: str = "test", task_name: str | None = None
) -> list[RankingExample]:
    """Convert rows (any iterable of dicts, e.g. a ``datasets.Dataset``), optionally one task."""
    out = []
    for i, row in enumerate(rows):
        if task_name is not None and row.get("task_name") != task_name:
            continue
        out.append(row_to_example(row, index=i, split=split))
    return out


def load_ranking_bench(
    name_or_path: str | os.PathLike[str] = DEFAULT_REPO,
    *,
    config: str | None = "direct",
    split: str = "test",
    task_name: str | None = None,
    limit: int | None = None,
    **load_kwargs: Any,
) -> list[RankingExample]:
    """Load Ranking-bench (hub id, a local copy, or one .json/.jsonl/.parquet file) as examples.

    Local files go through ``load_dataset("json"|"parquet", data_files={split: path})``; a
    local folder through ``load_dataset(folder, data_dir=config)`` when it has a ``config``
    subfolder (the hub layout), else ``load_dataset(folder)``. Extra keyword arguments (e.g.
    ``cache_dir``, ``revision``) are passed to ``datasets.load_dataset``.
    """
    try:
        from datasets import load_dataset
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("loading Ranking-bench needs the datasets library: pip install datasets") from err
    path = Path(name_or_path)
    if path.is_file():
        suffix = path.suffixes[-2] if path.suffix == ".gz" and len(path.suffixes) > 1 else path.suffix
        builder = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(suffix)
        if builder is None:
            raise ValueError(f"{path}: unsupported file type (use .json, .jsonl or .parquet)")
        ds = load_dataset(builder, data_files={split: str(path)}, split=split, **load_kwargs)
    elif path.is_dir():
        if config and (path / config).is_dir():
            ds = load_dataset(str(path), data_dir=config, split=split, **load_kwargs)
        else:
            ds = load_dataset(str(path), split=split, **load_kwargs)
    else:
        ds = load_dataset(str(name_or_path), config, split=split, **load_kwargs)
    if task_name is not None:
        known = set(ds.unique("task_name")) if "task_name" in ds.column_names else set()
        if task_name not in known:
            raise ValueError(f"no rows with task_name {task_name!r}; the data has {sorted(known)}")
    examples = rows_to_examples(ds, split=split, task_name=task_name)
    return examples[:limit] if limit is not None else examples
