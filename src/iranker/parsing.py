"""Turn a model's text into a decision about candidates — and say exactly how.

Small models rarely follow the format, and the paper's code silently replaced unparsable
answers with a TF-IDF nearest candidate. Here every match records its method (``exact``,
``normalized``, ``label``, ``fuzzy``) and an answer that names no candidate of the *current*
pool is returned as unmatched; what happens then is the ranker's explicit fallback policy.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Mapping, Sequence

THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
LABEL_RE = re.compile(r"\[\s*(\d+)\s*\]")
BARE_NUMBER_RE = re.compile(r"^\s*#?(\d+)\s*[.):]?\s*$")

#: minimum rapidfuzz score for a fuzzy match, and the margin it must beat the runner-up by
FUZZY_CUTOFF = 85.0
FUZZY_MARGIN = 5.0


@dataclass
class Parsed:
    """The parts of a completion: reasoning, final answer (None if absent), format check."""

    thought: str
    answer: str | None
    well_formed: bool


def extract(text: str) -> Parsed:
    """Split a completion into ``<think>`` and ``<answer>`` parts.

    ``well_formed`` is True only for exactly one ``<think>…</think>`` followed by exactly one
    ``<answer>…</answer>`` (the format the reward checks). The answer is the last
    ``<answer>`` block; an unclosed final ``<answer>`` still counts as an answer (generation
    may stop at the closing tag) but not as well-formed.
    """
    thinks = THINK_RE.findall(text)
    answers = ANSWER_RE.findall(text)
    answer = answers[-1].strip() if answers else None
    if thinks:
        thought = thinks[0].strip()
    elif answer is not None:
        thought = text[: text.lower().rfind("<answer>")].strip()
    else:
        thought = text.strip()
    well_formed = bool(
        re.fullmatch(
            r"\s*<think>(?:(?!</?think>|</?answer>).)*</think>\s*"
            r"<answer>(?:(?!</?think>|</?answer>).)*</answer>\s*",
            text,
            re.DOTALL | re.IGNORECASE,
        )
    )
    return Parsed(thought=thought, answer=answer, well_formed=well_formed)


def normalize(text: str) -> str:
    """Case-fold, strip accents, punctuation and surrounding labels; squeeze whitespace."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = LABEL_RE.sub(" ", text)
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


@dataclass
class Match:
    """Result of matching one answer against a pool: the candidate id or None, and how."""

    candidate: str | None
    how: str
    detail: str = ""


@dataclass
class CandidateView:
    """What an answer may legitimately name for one candidate: its id, label, text, name."""

    id: str
    label: str
    text: str
    names: list[str] = field(default_factory=list)

    def surface_forms(self) -> list[str]:
        forms = [self.text, self.id, *self.names, f"{self.label} {self.text}"]
        forms += [f"{self.label} {n}" for n in self.names]
        return [f for f in forms if f]


def _label_number(label: str) -> str | None:
    m = LABEL_RE.fullmatch(label.strip())
    return m.group(1) if m else None


def match_candidate(answer: str | None, pool: Sequence[CandidateView]) -> Match:
    """Map an answer to exactly one candidate of ``pool`` (exact → normalized → label → fuzzy).

    Returns ``Match(None, "none" | "ambiguous" | "not_in_pool", ...)`` when nothing (or more
    than one candidate) fits. Labels of candidates that are no longer in the pool do not
    match: an eliminated candidate cannot be eliminated twice.
    """
    if answer is None:
        return Match(None, "none", "no <answer> tag")
    stripped = answer.strip()
    if not stripped:
        return Match(None, "none", "empty answer")

    # 1. exact surface form
    exact = {c.id for c in pool if stripped in c.surface_forms()}
    if len(exact) == 1:
        return Match(exact.pop(), "exact")

    # 2. normalised surface form
    norm = normalize(stripped)
    if norm:
        hits = {c.id for c in pool if norm in {normalize(f) for f in c.surface_forms()}}
        if len(hits) == 1:
            return Match(hits.pop(), "normalized")

    # 3. label: "[3]" anywhere, or a bare number as the whole answer
    numbers = LABEL_RE.findall(stripped)
    if not numbers:
        bare = BARE_NUMBER_RE.match(stripped)
        numbers = [bare.group(1)] if bare else []
    if numbers:
        distinct = list(dict.fromkeys(str(int(n)) for n in numbers))
        by_number = {_label_number(c.label): c.id for c in pool}
        in_pool = [by_number[n] for n in distinct if n in by_number]
        if len(distinct) == 1 and len(in_pool) == 1:
            return Match(in_pool[0], "label")
        if len(in_pool) == 1 and len(distinct) > 1:
            # e.g. "[3] is worse than [5]" where [5] was already removed: still ambiguous
            return Match(None, "ambiguous", f"labels {distinct} named")
        if len(in_pool) > 1:
            return Match(None, "ambiguous", f"labels {distinct} named")
        if not in_pool:
            return Match(None, "not_in_pool", f"label(s) {distinct} not in the pool")

    # 4. fuzzy: one clear winner above the cutoff
    if norm:
        from rapidfuzz import fuzz

        scored = sorted(
            (
                (max(fuzz.ratio(norm, normalize(f)) for f in c.surface_forms()), c.id)
                for c in pool
            ),
            reverse=True,
        )
        best_score, best_id = scored[0]
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        if best_score >= FUZZY_CUTOFF and best_score - runner_up >= FUZZY_MARGIN:
            return Match(best_id, "fuzzy", f"score {best_score:.0f}")
    return Match(None, "none", "answer names no candidate")


def closest_candidate(text: str, pool: Sequence[CandidateView]) -> str:
    """The candidate whose text the model's output is closest to (a *recorded* fallback).

    Uses rapidfuzz's partial ratio on normalised text; ties go to the candidate shown last,
    so the fallback is deterministic.
    """
    from rapidfuzz import fuzz

    norm = normalize(text)
    best_id, best_score = pool[-1].id, -1.0
    for c in pool:
        score = max((fuzz.partial_ratio(norm, normalize(f)) for f in c.surface_forms()), default=0.0)
        if score >= best_score:
            best_id, best_score = c.id, score
    return best_id


def parse_order(answer: str | None, pool: Sequence[CandidateView]) -> tuple[list[str], list[str]]:
    """Parse a full ranking ``[3] > [1] > [2]`` into candidate ids, best first.

    Returns ``(order, duplicates)``: candidates named more than once are kept at their first
    mention and listed in ``duplicates``; candidates not in the pool are ignored. Labels are
    read first; if the answer has none, it is split on ``>``, commas and newlines and each
    part is matched with ``match_candidate``.
    """
    if not answer:
        return [], []
    by_number = {_label_number(c.label): c.id for c in pool}
    ids: list[str] = []
    numbers = LABEL_RE.findall(answer)
    if numbers:
        ids = [by_number[str(int(n))] for n in numbers if str(int(n)) in by_number]
    else:
        for part in re.split(r">|,|;|\n", answer):
            part = re.sub(r"^\s*\d+[.)]\s+", "", part)  # "1. Title" list numbering
            m = match_candidate(part, pool)
            if m.candidate is not None:
                ids.append(m.candidate)
    order: list[str] = []
    duplicates: list[str] = []
    for cid in ids:
        if cid in order:
            duplicates.append(cid)
        else:
            order.append(cid)
    return order, duplicates


def views_for(
    labels: Mapping[str, str], texts: Mapping[str, str], names: Mapping[str, list[str]] | None = None
) -> dict[str, CandidateView]:
    """Build ``CandidateView`` objects for every candidate id (helper for rankers)."""
    names = names or {}
    return {
        cid: CandidateView(id=cid, label=labels[cid], text=texts[cid], names=list(names.get(cid, [])))
        for cid in labels
    }
