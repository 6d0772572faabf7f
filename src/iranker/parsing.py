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
from functools import cached_property
from typing import Mapping, Sequence

#: The reply format every prompt asks for (``scenarios.base.FORMAT_RULES``): reasoning in
#: ``<think>...</think>``, the answer in ``<answer>...</answer>``. Defined here, where answers
#: are read; the stop rule, the backends, the rewards and the label scorer import them.
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


#: a label: up to 6 digits in brackets (no pool has a million candidates; longer digit runs are
#: not labels, and int() of a 4,301-digit string raises under Python's int limit)
LABEL_RE = re.compile(r"\[\s*(\d{1,6})\s*\]")
BARE_NUMBER_RE = re.compile(r"^\s*#?(\d{1,6})\s*[.):]?\s*$")
#: an answer that is nothing but one label or number: it means label [k] of the current pool,
#: whatever the candidates' ids and texts are (ids "0".."3" or a text "[2]" never shadow it)
ONLY_LABEL_RE = re.compile(
    r"^\s*(?:label\s*)?(?:\[\s*(\d{1,6})\s*\]|#?(\d{1,6}))\s*[.):]?\s*$", re.IGNORECASE
)

#: minimum rapidfuzz score for a fuzzy match, and the margin it must beat the runner-up by
FUZZY_CUTOFF = 85.0
FUZZY_MARGIN = 5.0
#: answers are short: matching looks at most at this many characters of an answer, and fuzzy
#: comparisons at most at this many of a candidate's text (bounded work for any input)
MAX_ANSWER_CHARS = 1000
MAX_FORM_CHARS = 300
#: the closest-text fallback compares at most this many characters of the model's output
MAX_FALLBACK_CHARS = 4000


@dataclass
class Parsed:
    """The parts of a completion: reasoning, final answer (None if absent), format check."""

    thought: str
    answer: str | None
    well_formed: bool


def _blocks(text: str, low: str, open_tag: str, close_tag: str, *, allow_unclosed: bool) -> list[str]:
    """Contents of ``open_tag ... close_tag`` blocks, left to right, in one linear scan.

    Each block runs to the next ``close_tag``; with ``allow_unclosed`` a final unclosed block
    runs to the end of the text (generation may stop right at the closing tag).

    (A non-greedy regex rescans to the end of the text from every unclosed opening tag, which
    is quadratic: 56 KB of repeated ``<think>`` took 1.9 s.)
    """
    out, pos = [], 0
    while True:
        start = low.find(open_tag, pos)
        if start < 0:
            return out
        body = start + len(open_tag)
        end = low.find(close_tag, body)
        if end < 0:
            if allow_unclosed:
                out.append(text[body:])
            return out
        out.append(text[body:end])
        pos = end + len(close_tag)


_WELL_FORMED_RE = re.compile(
    r"\s*<think>(?:(?!</?think>|</?answer>).)*</think>\s*"
    r"<answer>(?:(?!</?think>|</?answer>).)*</answer>\s*",
    re.DOTALL | re.IGNORECASE,
)


def extract(text: str) -> Parsed:
    """Split a completion into ``<think>`` and ``<answer>`` parts (linear time in ``text``).

    ``well_formed`` is True only for exactly one ``<think>…</think>`` followed by exactly one
    ``<answer>…</answer>`` (the format the reward checks). The answer is the last
    ``<answer>`` block; an unclosed final ``<answer>`` still counts as an answer (generation
    may stop at the closing tag) but not as well-formed.
    """
    low = text.lower()
    thinks = _blocks(text, low, "<think>", "</think>", allow_unclosed=False)
    answers = _blocks(text, low, ANSWER_OPEN, ANSWER_CLOSE, allow_unclosed=True)
    answer = answers[-1].strip() if answers else None
    if thinks:
        thought = thinks[0].strip()
    elif answer is not None:
        thought = text[: low.rfind(ANSWER_OPEN)].strip()
    else:
        thought = text.strip()
    well_formed = bool(_WELL_FORMED_RE.fullmatch(text))
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

    @cached_property
    def normalized_forms(self) -> frozenset[str]:
        """``normalize`` of every surface form, computed once per view."""
        return frozenset(normalize(f) for f in self.surface_forms())

    @cached_property
    def label_number(self) -> str | None:
        """The number of the label (``"3"`` for ``[3]``), parsed once, not at every step."""
        return _label_number(self.label)

    @cached_property
    def fuzzy_forms(self) -> tuple[str, ...]:
        """Normalised surface forms cut to ``MAX_FORM_CHARS`` (what fuzzy matching compares)."""
        return tuple(f[:MAX_FORM_CHARS] for f in self.normalized_forms if f)


def _label_number(label: str) -> str | None:
    m = LABEL_RE.fullmatch(label.strip())
    return str(int(m.group(1))) if m else None


def _numbers(answer: str) -> list[str]:
    """The label numbers an answer names: ``[k]`` anywhere, else a bare number as the whole answer."""
    found = LABEL_RE.findall(answer)
    if not found:
        bare = BARE_NUMBER_RE.match(answer)
        found = [bare.group(1)] if bare else []
    return list(dict.fromkeys(str(int(n)) for n in found))


def _match_label(numbers: list[str], pool: Sequence[CandidateView]) -> Match:
    by_number = {c.label_number: c.id for c in pool}
    in_pool = [by_number[n] for n in numbers if n in by_number]
    if len(numbers) == 1 and len(in_pool) == 1:
        return Match(in_pool[0], "label")
    if in_pool:
        # e.g. "[3] is worse than [5]" (even when [5] was already removed): ambiguous
        return Match(None, "ambiguous", f"labels {numbers} named")
    return Match(None, "not_in_pool", f"label(s) {numbers} not in the pool")


def match_candidate(
    answer: str | None, pool: Sequence[CandidateView], removed: Sequence[CandidateView] = ()
) -> Match:
    """Map an answer to exactly one candidate of ``pool``.

    Order: an answer that is only a label or a number (``[3]``, ``3``, ``#3``) means that
    label of the current pool, whatever the ids and texts are; then exact → normalised surface
    form → labels inside the answer → fuzzy. Returns ``Match(None, "none" | "ambiguous" |
    "not_in_pool", ...)`` when nothing (or more than one candidate) fits. Labels of candidates
    no longer in the pool do not match, and when the answer names (exactly, or as the best
    fuzzy match) one of the ``removed`` candidates, it is ``not_in_pool`` - never a fuzzy hit
    on a look-alike that is still there ("Toy Story (1995)" must not remove "Toy Story 2").
    Work is bounded: at most ``MAX_ANSWER_CHARS`` of the answer are matched.
    """
    if answer is None:
        return Match(None, "none", "no <answer> tag")
    stripped = answer.strip()[:MAX_ANSWER_CHARS]
    if not stripped:
        return Match(None, "none", "empty answer")

    # 1. only a label / number: label semantics, nothing can shadow it
    only = ONLY_LABEL_RE.match(stripped)
    if only:
        return _match_label([str(int(only.group(1) or only.group(2)))], pool)

    # 2. exact surface form, then 3. normalised surface form
    exact = {c.id for c in pool if stripped in c.surface_forms()}
    if len(exact) == 1:
        return Match(exact.pop(), "exact")
    if not exact and any(stripped in c.surface_forms() for c in removed):
        return Match(None, "not_in_pool", "names an eliminated candidate")
    norm = normalize(stripped)
    if norm:
        hits = {c.id for c in pool if norm in c.normalized_forms}
        if len(hits) == 1:
            return Match(hits.pop(), "normalized")
        if not hits and any(norm in c.normalized_forms for c in removed):
            return Match(None, "not_in_pool", "names an eliminated candidate")

    # 4. labels inside the answer: "[3]", or "[3] is the worst"
    numbers = _numbers(stripped)
    if numbers:
        return _match_label(numbers, pool)

    # 5. fuzzy: one clear winner above the cutoff, and not an eliminated candidate
    if norm:
        from rapidfuzz import fuzz

        probe = norm[:MAX_FORM_CHARS]

        def score(c: CandidateView) -> float:
            return max((fuzz.ratio(probe, f) for f in c.fuzzy_forms), default=0.0)

        scored = sorted(((score(c), c.id) for c in pool), reverse=True)
        best_score, best_id = scored[0]
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        gone = max((score(c) for c in removed), default=0.0)
        if gone >= FUZZY_CUTOFF and gone >= best_score:
            return Match(None, "not_in_pool", f"closest to an eliminated candidate (score {gone:.0f})")
        if best_score >= FUZZY_CUTOFF and best_score - runner_up >= FUZZY_MARGIN:
            return Match(best_id, "fuzzy", f"score {best_score:.0f}")
    return Match(None, "none", "answer names no candidate")


def closest_candidate(text: str, pool: Sequence[CandidateView]) -> str:
    """The candidate whose text the model's output is closest to (a *recorded* fallback).

    Uses rapidfuzz's partial ratio on normalised text (the last ``MAX_FALLBACK_CHARS`` of the
    output against each form's first ``MAX_FORM_CHARS``); ties go to the candidate shown
    last, so the fallback is deterministic.
    """
    from rapidfuzz import fuzz

    norm = normalize(text[-MAX_FALLBACK_CHARS:])
    best_id, best_score = pool[-1].id, -1.0
    for c in pool:
        score = max((fuzz.partial_ratio(norm, f) for f in c.fuzzy_forms), default=0.0)
        if score >= best_score:
            best_id, best_score = c.id, score
    return best_id


def parse_order(answer: str | None, pool: Sequence[CandidateView]) -> tuple[list[str], list[str]]:
    """Parse a full ranking ``[3] > [1] > [2]`` into candidate ids, best first.

    Returns ``(order, duplicates)``: candidates named more than once are kept at their first
    mention and listed in ``duplicates``; candidates not in the pool are ignored. Labels are
    read first; if the answer has none, it is split on ``>``, commas and newlines and each
    part is matched with ``match_candidate``. At most ``4 * len(pool)`` parts of an answer of
    at most ``MAX_ANSWER_CHARS * len(pool)`` characters are read.
    """
    if not answer:
        return [], []
    answer = answer[: MAX_ANSWER_CHARS * max(1, len(pool))]
    by_number = {c.label_number: c.id for c in pool}
    ids: list[str] = []
    numbers = LABEL_RE.findall(answer)
    if numbers:
        ids = [by_number[str(int(n))] for n in numbers if str(int(n)) in by_number]
    else:
        parts = [p for p in re.split(r">|,|;|\n", answer) if p.strip()][: 4 * max(1, len(pool))]
        for part in parts:
            part = re.sub(r"^\s*\d{1,6}[.)]\s+", "", part)  # "1. Title" list numbering
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
