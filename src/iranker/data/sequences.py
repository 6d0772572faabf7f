"""The common shape every recommendation loader produces: chronological histories + titles.

MovieLens (three formats) and Amazon (three formats) reach the task builders as one
:class:`SequenceData`, so a builder never needs to know which file format a user downloaded.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Iterable

__all__ = ["SequenceData", "clean_title", "is_junk_title", "sequences_from_interactions"]


@dataclass
class SequenceData:
    """Per-user item histories, oldest first, plus an item id -> title map.

    ``next_item`` is set when the source already fixes the prediction target (UniSRec and
    LLMRank test files, R3 CSV rows); then ``histories`` excludes it. When it is None the
    histories are complete and a builder holds out the last item itself (leave-one-out).
    ``titles`` may lack items whose title was missing or junk; builders skip those items.
    """

    histories: dict[str, list[str]]
    titles: dict[str, str]
    next_item: dict[str, str] | None = None
    source: str = ""
    timestamps: dict[str, list[int]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def users(self) -> list[str]:
        return list(self.histories)

    def target_and_history(self, user: str) -> tuple[str, list[str]] | None:
        """(next item, history before it) for ``user``, or None if there is nothing to predict."""
        hist = self.histories.get(user, [])
        if self.next_item is not None:
            nxt = self.next_item.get(user)
            return (nxt, list(hist)) if nxt is not None else None
        if len(hist) < 2:
            return None
        return hist[-1], list(hist[:-1])


_JUNK = re.compile(r"<\s*/?[a-zA-Z]+[\s>/=]|\"\s*/>")


def is_junk_title(title: str | None) -> bool:
    """True for empty titles and for scraped HTML fragments such as ``<span class=...``.

    The Amazon 2018 metadata has titles that are pieces of the product page's HTML; shown to a
    model they are noise, and two different items would share the same junk "title".
    """
    if title is None:
        return True
    t = title.strip()
    return not t or bool(_JUNK.search(t))


def clean_title(title: str | None) -> str | None:
    """Unescape HTML entities (``&amp;`` -> ``&``), collapse whitespace; None if junk."""
    if title is None:
        return None
    t = " ".join(html.unescape(str(title)).split())
    return None if is_junk_title(t) else t


def sequences_from_interactions(
    rows: Iterable[tuple[str, str, float]],
    titles: dict[str, str],
    *,
    source: str,
) -> SequenceData:
    """Group (user, item, time) rows into chronological histories.

    Ties in time keep the file order (a stable sort), because several public files have many
    interactions with the same second/day timestamp and the file order is the best evidence.
    """
    per_user: dict[str, list[tuple[float, int, str]]] = {}
    for n, (user, item, t) in enumerate(rows):
        per_user.setdefault(str(user), []).append((float(t), n, str(item)))
    histories: dict[str, list[str]] = {}
    stamps: dict[str, list[int]] = {}
    for user, events in per_user.items():
        events.sort()
        histories[user] = [e[2] for e in events]
        stamps[user] = [int(e[0]) for e in events]
    return SequenceData(histories=histories, titles=titles, next_item=None, source=source, timestamps=stamps)
