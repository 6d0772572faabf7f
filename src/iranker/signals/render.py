"""Signals in the prompt: each one as the candidate's rank among the example's candidates.

Raw scores are not comparable across corpora (a BM25 of 12 is high in one and low in
another), a rank is: ``bm25 2/20`` reads the same on every task. Ranks are taken over the
*example's* candidates, not the current pool, so a candidate's segment never changes while
others are eliminated — the prompt layout contract that KV eviction relies on
(``scenarios/base.py``). Ties share the best rank (1, 2, 2, 4). One format for every scenario:
``signals: bm25 2/20, co-occurrence 1/20`` (the template's ``signals`` field places it).
"""

from __future__ import annotations

from typing import Mapping

from ..types import Candidate, RankingExample
from .schema import candidate_signals

#: how the built-in providers' names read in a prompt; a user's own names are shown as given
DISPLAY_NAMES: Mapping[str, str] = {
    "bm25": "bm25",
    "dense": "dense",
    "cooccur": "co-occurrence",
    "outcomes": "past outcomes",
}
#: the order signals are listed in (then any other name, alphabetically)
ORDER = ("bm25", "dense", "cooccur", "outcomes")
#: the template field's default: appended to a candidate's segment when it has signals
DEFAULT_FORMAT = " (signals: {signals})"


def ordered_names(names) -> list[str]:
    """Signal names in display order: the built-in ones first, then the others sorted."""
    names = set(names)
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def signal_ranks(example: RankingExample, name: str) -> dict[str, int]:
    """Candidate id -> rank (1 = highest value) of signal ``name`` among the example's candidates.

    Competition ranking: tied values share the best rank. Candidates without the signal are
    left out (validation makes every candidate of an example carry the same names).
    """
    values = {c.id: candidate_signals(c)[name] for c in example.candidates if name in candidate_signals(c)}
    return {cid: 1 + sum(other > v for other in values.values()) for cid, v in values.items()}


def signals_text(example: RankingExample, cand: Candidate) -> str:
    """``"bm25 2/20, co-occurrence 1/20"`` for ``cand``, or ``""`` when it carries no signals."""
    mine = candidate_signals(cand)
    if not mine:
        return ""
    parts = []
    for name in ordered_names(mine):
        ranks = signal_ranks(example, name)
        parts.append(f"{DISPLAY_NAMES.get(name, name)} {ranks[cand.id]}/{len(ranks)}")
    return ", ".join(parts)


def render_signals(fmt: str, example: RankingExample, cand: Candidate) -> str:
    """The template's signals text for ``cand`` (``fmt`` with ``{signals}``), or ``""``."""
    if not fmt:
        return ""
    text = signals_text(example, cand)
    return fmt.replace("{signals}", text) if text else ""


__all__ = [
    "DEFAULT_FORMAT",
    "DISPLAY_NAMES",
    "ORDER",
    "ordered_names",
    "render_signals",
    "signal_ranks",
    "signals_text",
]
