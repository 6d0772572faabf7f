"""Loaders for the source formats, builders for the ten tasks, and JSONL example I/O.

* :mod:`iranker.data.io` — read/write examples as JSONL, with ``path:line:`` errors.
* :mod:`iranker.data.tasks` — ``build_task(name, data_dir, split, seed, limit)`` and ``TASKS``.
* Loaders, one module per source family: :mod:`~iranker.data.movielens`,
  :mod:`~iranker.data.amazon`, :mod:`~iranker.data.routing`, :mod:`~iranker.data.passage`,
  :mod:`~iranker.data.hub` (HF ``ulab-ai/Ranking-bench``).

Loaders import pandas/pyarrow/datasets lazily inside the functions that need them, so
``import iranker.data`` stays cheap (standard library only).
"""

from __future__ import annotations

from .io import DataError, example_from_record, iter_examples, read_examples, write_examples
from .sequences import SequenceData
from .tasks import TASKS, SourceNotFound, TaskData, TaskSpec, build_task, list_tasks

__all__ = [
    "DataError",
    "SequenceData",
    "SourceNotFound",
    "TASKS",
    "TaskData",
    "TaskSpec",
    "build_task",
    "example_from_record",
    "iter_examples",
    "list_tasks",
    "read_examples",
    "write_examples",
]
