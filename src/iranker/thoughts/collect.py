"""Which thoughts of a ranking run are worth keeping, and where they are read from.

A thought is kept when its step *removed a candidate that is not the best of the pool* — the
paper's exclusion rule, applied by ``rewards.removal_reward`` on the pool's best ids
(``data.steps.best_ids``), the same functions training uses — and when the model itself made
that choice: the step is ``valid`` (its answer named the candidate; a fallback pick is not the
model's) and has a non-empty ``<think>`` text. Examples without a positive relevance grade are
skipped, since nothing there says which candidate is best.

Two record formats carry step traces with the model's text (``Step.raw`` / ``Step.thought``):

- ``iranker eval`` predictions (``DIR/predictions.jsonl``: ``key``, ``task``, ``method``,
  ``example_id``, ``steps``); the examples are rebuilt from ``DIR/run.json`` (the input file,
  checked by its sha256, or the benchmark tasks with the run's seed and limit);
- ``iranker rank`` output (``id``, ``ranking``, ``steps``), with the ranked examples file.

Training logs are not a source: GRPO samples at temperature 1 and TRL keeps its completions in
its own console/W&B logs, not in a file iranker writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..data.steps import best_ids
from ..rewards import removal_reward
from ..types import RankingExample, Step
from .retrieval import clip


class SourceError(ValueError):
    """A source of traces that cannot be read; the message names the file (and line)."""


@dataclass
class Trace:
    """The steps one method took on one example."""

    task: str
    method: str
    example_id: str
    steps: list[Step]


@dataclass
class CollectCounts:
    """How many steps were seen and why the others were not kept (printed by the command)."""

    steps: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def summary(self) -> str:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"kept {self.kept} of {self.steps} steps" + (f" (skipped: {why})" if why else "")


def _steps(raw: Any, where: str) -> list[Step]:
    if not isinstance(raw, list):
        raise SourceError(f"{where}: 'steps' must be a list")
    try:
        return [Step.from_dict(s) for s in raw]
    except (KeyError, ValueError, TypeError) as exc:
        raise SourceError(f"{where}: a step is malformed ({exc})") from None


def read_traces(path: str | os.PathLike[str], *, default_task: str = "") -> list[Trace]:
    """The traces of an eval ``predictions.jsonl`` or an ``iranker rank`` output file."""
    traces = []
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{p}: cannot read ({exc})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise SourceError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(rec, dict):
            raise SourceError(f"{where}: not a JSON object")
        if "key" in rec and "example_id" in rec:  # iranker eval
            traces.append(
                Trace(
                    str(rec.get("task", default_task)),
                    str(rec.get("method", "")),
                    str(rec["example_id"]),
                    _steps(rec.get("steps", []), where),
                )
            )
        elif "id" in rec and "ranking" in rec:  # iranker rank
            traces.append(
                Trace(
                    default_task,
                    str(rec.get("method", "")),
                    str(rec["id"]),
                    _steps(rec.get("steps", []), where),
                )
            )
        else:
            raise SourceError(
                f"{where}: neither an `iranker eval` prediction (key, example_id, steps) "
                "nor an `iranker rank` result (id, ranking, steps)"
            )
    if not traces:
        raise SourceError(f"{p}: no records")
    return traces


def thought_records(
    traces: Iterable[Trace],
    examples: dict[str, RankingExample],
    *,
    embed_text: Callable[[RankingExample], str],
    counts: CollectCounts | None = None,
) -> list[dict[str, Any]]:
    """The store records of the steps worth keeping (see the module docstring), in trace order.

    ``examples`` maps example id to the example ranked; ``embed_text`` is the text retrieval
    will embed (``ThoughtMemory.query_text``'s rule), stored with the record.
    """
    counts = counts if counts is not None else CollectCounts()
    out = []
    for tr in traces:
        ex = examples.get(tr.example_id)
        for i, step in enumerate(tr.steps):
            counts.steps += 1
            if ex is None:
                counts.skip("example not found")
                continue
            if not step.valid:
                counts.skip("fallback (not the model's choice)")
                continue
            if not clip(step.thought, 10**9):
                counts.skip("no thought")
                continue
            best = best_ids(ex, step.pool)
            if not best:
                counts.skip("no relevant candidate in the pool")
                continue
            if removal_reward(step.removed, best) != 1.0:
                counts.skip("removed the best")
                continue
            by_id = {c.id: c for c in ex.candidates}
            if step.removed not in by_id or any(c not in by_id for c in step.pool):
                counts.skip("candidate not in the example")
                continue
            counts.kept += 1
            rec: dict[str, Any] = {
                "id": f"{tr.task}|{tr.method}|{tr.example_id}|{i}",
                "task": tr.task,
                "method": tr.method,
                "scenario": ex.scenario,
                "example_id": ex.id,
                "step": i,
                "query": ex.query,
                "embed_text": embed_text(ex),
                "pool": [{"id": c, "text": by_id[c].text} for c in step.pool],
                "removed": step.removed,
                "removed_text": by_id[step.removed].text,
                "best": best,
                "thought": step.thought.strip(),
                "raw": step.raw,
            }
            if ex.meta.get("history"):
                rec["history"] = [str(h) for h in ex.meta["history"]]
            out.append(rec)
    return out


def index_examples(examples: Sequence[RankingExample]) -> dict[str, RankingExample]:
    """Examples by id (ids are unique within one source: the eval task builders prefix them)."""
    return {ex.id: ex for ex in examples}


__all__ = ["CollectCounts", "SourceError", "Trace", "index_examples", "read_traces", "thought_records"]
