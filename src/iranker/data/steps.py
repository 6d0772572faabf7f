"""The elimination-step training set: every step of the paper's decomposition is one sample.

From each training example with N candidates we build pools of size 2…N that always contain
the best candidate (the paper's decomposition). Each pool is shown exactly as the ranker shows
it at inference: the example's candidates are shuffled once per sample (seeded), labelled by
that order, and the pool keeps those labels (so gaps like ``[1] [4] [7]`` appear, as they do
after eliminations). The best candidate therefore lands at a random position.

Rows are plain dicts, ready for ``datasets.Dataset.from_list`` and parquet:
``prompt`` (chat messages), ``pool`` (``[{id, label, text, names}]``), ``best`` (ids of the
best candidate(s) in the pool), ``relevance`` (JSON string of the pool's grades), ``task``,
``scenario``, ``example_id``, ``pool_size``, ``data_source`` (= task, for verl).
"""

from __future__ import annotations

import json
import random
import zlib
from typing import Any, Iterable, Iterator, Sequence

from ..scenarios import get_scenario
from ..types import RankingExample


def _rng(seed: int, *parts: object) -> random.Random:
    key = ":".join(str(p) for p in (seed, *parts))
    return random.Random(zlib.crc32(key.encode()))


def best_ids(example: RankingExample, pool: Sequence[str]) -> list[str]:
    """Ids in ``pool`` with the highest relevance grade (several when tied)."""
    grades = {cid: float(example.relevance.get(cid, 0.0)) for cid in pool}
    top = max(grades.values())
    if top <= 0:
        return []
    return [cid for cid in pool if grades[cid] == top]


def step_rows(
    example: RankingExample,
    *,
    task: str,
    seed: int = 0,
    sizes: Iterable[int] | None = None,
    samples_per_size: int = 1,
) -> Iterator[dict[str, Any]]:
    """The step samples of one example (pools of every size in ``sizes``, default 2…N)."""
    best_all = best_ids(example, example.candidate_ids)
    if not best_all:
        return
    scenario = get_scenario(example.scenario)
    n = len(example.candidates)
    for size in sizes or range(2, n + 1):
        if not 2 <= size <= n:
            continue
        for k in range(samples_per_size):
            rng = _rng(seed, task, example.id, size, k)
            shuffled = list(example.candidates)
            rng.shuffle(shuffled)
            view = RankingExample(
                example.id, example.scenario, example.query, shuffled, example.relevance, example.meta
            )
            anchor = rng.choice(best_all)
            others = [c.id for c in shuffled if c.id != anchor]
            chosen = {anchor, *rng.sample(others, size - 1)}
            pool = [c.id for c in shuffled if c.id in chosen]
            labels = scenario.labels(view)
            by_id = {c.id: c for c in shuffled}
            yield {
                "prompt": scenario.eliminate_prompt(view, pool),
                "pool": [
                    {
                        "id": cid,
                        "label": labels[cid],
                        "text": by_id[cid].text,
                        "names": [str(by_id[cid].meta["name"])] if by_id[cid].meta.get("name") else [],
                    }
                    for cid in pool
                ],
                "best": best_ids(view, pool),
                "relevance": json.dumps({cid: float(example.relevance.get(cid, 0.0)) for cid in pool}),
                "task": task,
                "scenario": example.scenario,
                "example_id": example.id,
                "pool_size": size,
                "data_source": task,
            }


def build_step_rows(
    examples_by_task: dict[str, Sequence[RankingExample]],
    *,
    seed: int = 0,
    max_per_task: int | None = None,
    shuffle: bool = True,
    sizes: Iterable[int] | None = None,
) -> list[dict[str, Any]]:
    """Step rows for several tasks (joint multi-scenario mixing), seeded and shuffled.

    ``max_per_task`` caps the rows each task contributes (sampled, seeded) so one large task
    does not dominate the mix.
    """
    rows: list[dict[str, Any]] = []
    for task, examples in examples_by_task.items():
        task_rows = [
            r
            for ex in examples
            for r in step_rows(ex, task=task, seed=seed, sizes=list(sizes) if sizes else None)
        ]
        if max_per_task is not None and len(task_rows) > max_per_task:
            task_rows = _rng(seed, task, "cap").sample(task_rows, max_per_task)
        rows.extend(task_rows)
    if shuffle:
        _rng(seed, "mix").shuffle(rows)
    return rows
