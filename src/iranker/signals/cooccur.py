"""``cooccur``: how often other users who had the history's items also had the candidate.

Item-item cosine over the users of an interactions file (``co(i, j) / sqrt(n_i * n_j)``, the
item-kNN baseline's similarity), summed over the history items: the collaborative signal an
LLM cannot read from titles. The example's own user (``meta["user"]``) never contributes,
so a log that also holds the ranked user's next item cannot leak it; for the benchmark tasks
the interactions are the task's *training* users (history + next item), who are disjoint from
its test users (``from_examples``). Users with fewer than two items are skipped, as by the
item-kNN baseline. User sets are int bitsets: one ``&`` per pair.
"""

from __future__ import annotations

import math
import os
from typing import Iterable, Sequence

from ..rankers.knn import history_item_ids
from ..types import RankingExample
from .base import SignalProvider
from .files import Interactions, read_interactions


def example_user(example: RankingExample) -> str | None:
    """The user an example belongs to (``meta["user"]``), if it says."""
    user = example.meta.get("user")
    return None if user is None else str(user)


class CooccurSignal(SignalProvider):
    """Summed item-item cosine of each candidate with the history, over the interaction log."""

    name = "cooccur"
    scenarios = ("recommendation",)

    def __init__(self, interactions: Iterable[Interactions]) -> None:
        users: dict[str, int] = {}
        owners: dict[str, int] = {}
        n = 0
        for rec in interactions:
            items = set(rec.items)
            if len(items) < 2:  # no co-occurrence to give, only a diluted item count (as in item-kNN)
                continue
            bit = 1 << n
            n += 1
            if rec.user is not None:
                owners[rec.user] = owners.get(rec.user, 0) | bit
            for it in items:
                users[it] = users.get(it, 0) | bit
        self._users = users
        self._owners = owners
        self.n_users = n

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "CooccurSignal":
        return cls(read_interactions(path))

    @classmethod
    def from_examples(cls, examples: Iterable[RankingExample]) -> "CooccurSignal":
        """The interactions of training examples: each one's history items plus its next item."""

        log = []
        for ex in examples:
            if ex.scenario != "recommendation":
                continue
            items = list(history_item_ids(ex) or ex.meta.get("history") or [])
            best = ex.best_id()
            if best is not None:
                cand = ex.candidate(best)
                items.append(cand.id if history_item_ids(ex) else cand.text)
            if items:
                log.append(Interactions(tuple(str(i) for i in items), example_user(ex) or ex.id))
        return cls(log)

    def _key(self, *options: object) -> str | None:
        for o in options:
            if o is not None and str(o) in self._users:
                return str(o)
        return None

    def _history(self, example: RankingExample) -> list[str]:

        ids = history_item_ids(example)
        titles = [str(h) for h in example.meta.get("history") or []]
        if not ids and not titles:
            titles = [h for h in example.query.split("\n") if h.strip()]
        n = max(len(ids), len(titles))
        keys = []
        for i in range(n):
            k = self._key(ids[i] if i < len(ids) else None, titles[i] if i < len(titles) else None)
            if k is not None and k not in keys:
                keys.append(k)
        return keys

    def scores(self, examples: Sequence[RankingExample]) -> list[dict[str, float] | None]:
        out: list[dict[str, float] | None] = []
        for ex in examples:
            user = example_user(ex)
            keep = ~self._owners.get(user, 0) if user is not None else -1  # all bits but the user's own
            hist = [(h, self._users[h] & keep) for h in self._history(ex)]
            hist = [(h, b, b.bit_count()) for h, b in hist if b]
            values: dict[str, float] = {}
            for c in ex.candidates:
                key = self._key(c.id, c.text)
                score = 0.0
                if key is not None:
                    cb = self._users[key] & keep
                    nc = cb.bit_count()
                    if nc:
                        for h, hb, nh in hist:
                            if h != key:
                                co = (hb & cb).bit_count()
                                if co:
                                    score += co / math.sqrt(nh * nc)
                values[c.id] = score
            out.append(values)
        return out


__all__ = ["CooccurSignal", "example_user"]
