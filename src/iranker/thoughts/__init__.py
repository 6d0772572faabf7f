"""IRanker-COT: a trained ranker's thoughts as a retrieval memory for another model.

``collect`` keeps the ``<think>`` text of elimination steps that removed a non-best candidate,
``store`` writes and checks the on-disk index (numpy matrix + JSONL + manifest), ``retrieval``
finds the most similar thoughts of the same scenario for an example (leave-one-out) and puts
them into the prompt header as worked examples. See ``docs/thoughts.md``.
"""

from __future__ import annotations

from .retrieval import DEFAULT_K, ThoughtMemory, ThoughtsRanker, render_worked_examples
from .store import FORMAT, ThoughtStore, ThoughtStoreError, load_store, write_store

__all__ = [
    "DEFAULT_K",
    "FORMAT",
    "ThoughtMemory",
    "ThoughtStore",
    "ThoughtStoreError",
    "ThoughtsRanker",
    "load_store",
    "render_worked_examples",
    "write_store",
]
