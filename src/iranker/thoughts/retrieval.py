"""Retrieve a ranker's stored thoughts for new examples and show them as worked examples.

For each example the memory embeds the example's query (the text the dense baseline embeds:
``DenseRanker.query_for``, i.e. the question, or the history most recent first), scores every
stored thought of the *same scenario* by cosine (dot product of normalised embeddings) and keeps
the ``k`` best. Two kinds of stored thought are never returned for an example (leave-one-out,
so an evaluation on the examples the thoughts were collected from is not contaminated): those
collected from the same example id, and those whose query text is the example's own.

Scores are rounded to 1e-6 before sorting and ties go to the earlier record, so the neighbours
do not depend on float noise from batch composition, and a rerun returns the same ones.

The chosen thoughts are rendered as one text block that goes into the example's
``meta[WORKED_EXAMPLES_META]``; ``Scenario.render_header`` puts it first in the prompt header.
Each of its lines is indented, so no line starts like a candidate label (``[3] ...``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

import numpy as np

from ..rankers.base import Ranker
from ..rankers.dense import DenseRanker
from ..scenarios.base import WORKED_EXAMPLES_META
from ..types import Ranking, RankingExample
from .store import ThoughtStore, ThoughtStoreError

DEFAULT_K = 3
#: characters kept of each field of a worked example (the prompt must stay far below the context)
CLIP = {"query": 300, "removed_text": 200, "thought": 500}

_SPACE = re.compile(r"\s+")
_TAGS = re.compile(r"</?(think|answer)>", re.IGNORECASE)


def clip(text: str, limit: int) -> str:
    """``text`` on one line (whitespace collapsed, think/answer tags dropped), at most ``limit`` chars."""
    one = _SPACE.sub(" ", _TAGS.sub(" ", str(text))).strip()
    return one if len(one) <= limit else one[: max(0, limit - 1)].rstrip() + "…"


def render_worked_examples(records: Sequence[dict[str, Any]]) -> str:
    """The header block showing ``records`` as worked examples (empty string for none)."""
    if not records:
        return ""
    parts = [
        "Worked examples: earlier elimination steps on similar queries, where a trained ranker "
        "removed a candidate that was indeed not the best. Their candidates are not the ones below."
    ]
    for i, r in enumerate(records, 1):
        parts.append(
            f"Worked example {i}:\n"
            f"  Query: {clip(r['query'], CLIP['query'])}\n"
            f"  Removed: {clip(r['removed_text'], CLIP['removed_text'])}\n"
            f"  Reasoning: {clip(r['thought'], CLIP['thought'])}"
        )
    parts.append("Now your task.")
    return "\n\n".join(parts)


def normalized(text: str) -> str:
    """``text`` with whitespace collapsed and lower-cased: two queries are "the same" when these match."""
    return _SPACE.sub(" ", text).strip().lower()


class ThoughtMemory:
    """A loaded store plus the encoder that embedded it; ``neighbours`` / ``attach`` per example."""

    def __init__(self, store: ThoughtStore, *, threads: int | None = None) -> None:

        self.store = store
        self.dense = DenseRanker(store.model, threads=threads)
        rows: dict[str, list[int]] = {}
        for i, r in enumerate(store.records):
            rows.setdefault(str(r["scenario"]), []).append(i)
        self._rows = {s: np.asarray(ix, dtype=np.int64) for s, ix in rows.items()}
        self._example_ids = np.asarray([str(r["example_id"]) for r in store.records], dtype=object)
        self._texts = np.asarray([normalized(str(r["embed_text"])) for r in store.records], dtype=object)

    def query_text(self, example: RankingExample) -> str:
        """What is embedded for ``example`` (the same rule ``collect`` used for the stored thoughts)."""
        return self.dense.query_for(example)

    def neighbours(self, examples: Sequence[RankingExample], k: int) -> list[list[int]]:
        """Record indices of the ``k`` most similar thoughts of each example (see the module doc)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        texts = [self.query_text(ex) for ex in examples]
        wanted = [i for i, ex in enumerate(examples) if ex.scenario in self._rows]
        emb = self.dense.embed([texts[i] for i in wanted]) if wanted else None
        if emb is not None and emb.shape[1] != self.store.embeddings.shape[1]:
            raise ThoughtStoreError(
                f"{self.store.path}: embedded with {emb.shape[1]}-dimensional vectors by "
                f"{self.store.model!r}, but the store holds {self.store.embeddings.shape[1]}"
            )
        out: list[list[int]] = [[] for _ in examples]
        for row, i in enumerate(wanted):
            ex = examples[i]
            rows = self._rows[ex.scenario]
            rows = rows[(self._example_ids[rows] != ex.id) & (self._texts[rows] != normalized(texts[i]))]
            if not len(rows):
                continue
            scores = np.round(self.store.embeddings[rows].astype(np.float64) @ emb[row].astype(np.float64), 6)
            order = np.lexsort((rows, -scores))  # by score, then by record index
            out[i] = [int(rows[o]) for o in order[:k]]
        return out

    def attach(
        self, examples: Sequence[RankingExample], k: int
    ) -> tuple[list[RankingExample], list[list[str]]]:
        """Copies of ``examples`` with their worked examples in the header, and the thought ids used."""
        chosen = self.neighbours(examples, k)
        out, ids = [], []
        for ex, rows in zip(examples, chosen):
            recs = [self.store.records[j] for j in rows]
            ids.append([str(r["id"]) for r in recs])
            if recs:
                ex = dataclasses.replace(
                    ex, meta={**ex.meta, WORKED_EXAMPLES_META: render_worked_examples(recs)}
                )
            out.append(ex)
        return out, ids


class ThoughtsRanker(Ranker):
    """Any ranker, with retrieved thoughts added to each example's prompt header first.

    Each ranking's ``meta["thoughts"]`` lists the ids of the thoughts its prompts showed, so a
    prediction file says exactly what the model was given.
    """

    def __init__(self, ranker: Ranker, memory: ThoughtMemory, k: int = DEFAULT_K) -> None:
        if k < 1:
            raise ValueError(f"thoughts k must be >= 1, got {k}")
        self.ranker = ranker
        self.memory = memory
        self.k = int(k)
        self.name = f"{ranker.name}+thoughts"
        self.backend = getattr(ranker, "backend", None)

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        shown, ids = self.memory.attach(examples, self.k)
        rankings = self.ranker.rank(shown)
        by_id = dict(zip((ex.id for ex in examples), ids))
        for r in rankings:
            r.meta = {**r.meta, "thoughts": by_id.get(r.example_id, [])}
        return rankings


__all__ = ["DEFAULT_K", "ThoughtMemory", "ThoughtsRanker", "clip", "render_worked_examples"]
