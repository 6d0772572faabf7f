"""Ranking metrics: reciprocal rank, nDCG@k and Hit@k over graded relevance.

Why our own implementation and not a dependency: the metrics run inside reward functions
(once per completion during RL training) and in the server, where importing a field library
(``ir-measures`` pulls ``pytrec_eval``; ``ranx`` compiles with numba on first use) costs more
than the arithmetic. The definitions are those of trec_eval, as ``ir-measures`` exposes them,
and ``tests/test_metrics.py`` checks them against ``ir-measures`` on random graded rankings:

* ``RR`` (``MRR`` when averaged): ``1 / rank`` of the first item whose grade is ``>= rel``,
  0 if there is none (in the cutoff, when one is given). trec_eval's ``recip_rank``.
* ``nDCG@k``: **linear gain**, ``DCG@k = sum_{i<k} grade(order[i]) / log2(i + 2)``, divided by
  the DCG@k of the grades sorted best first. This is trec_eval's ``ndcg_cut_k`` (and so
  ir-measures' ``nDCG@k``); it is *not* the ``(2^grade - 1)`` "exponential" gain of some
  learning-to-rank papers. With one relevant item (grade 1) both agree. Negative grades count
  as 0, and an ideal DCG of 0 gives nDCG 0 (trec_eval's convention).
* ``Hit@k``: 1 if an item with grade ``>= rel`` is in the top ``k``, else 0. ir-measures calls
  it ``Success@k`` (trec_eval's ``success_k``); it is not TREC's Recall@k.

"Relevant" defaults to ``grade > 0`` (ir-measures' default ``rel=1`` is the same thing for
integer grades); ``rel`` makes it ``grade >= rel``, as in ``RR(rel=2)``.

An ``order`` here is a list of ids best first; a ranking has no scores and no ties, so
trec_eval's tie-breaking (by document id, descending) never applies.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from .types import Ranking, RankingExample

DEFAULT_MEASURES: tuple[str, ...] = ("MRR", "NDCG@5", "NDCG@10", "Hit@1", "Hit@5")

Relevance = Mapping[str, float]


def _is_relevant(grade: float, threshold: float | None) -> bool:
    return grade > 0 if threshold is None else grade >= threshold


def reciprocal_rank(
    order: Sequence[str],
    relevance: Relevance,
    *,
    threshold: float | None = None,
    k: int | None = None,
) -> float:
    """``1 / rank`` of the first relevant item in ``order`` (1-based), 0 if none.

    ``threshold=None`` counts ``grade > 0`` as relevant; a number counts ``grade >= threshold``
    (ir-measures' ``RR(rel=threshold)``). ``k`` stops looking after the first ``k`` items
    (``RR@k``), which is what "MRR@10" means in MS MARCO reports.
    """
    limit = len(order) if k is None else min(_check_k(k), len(order))
    for i in range(limit):
        if _is_relevant(float(relevance.get(order[i], 0.0)), threshold):
            return 1.0 / (i + 1)
    return 0.0


def dcg_at_k(grades: Iterable[float], k: int | None) -> float:
    """Discounted cumulative gain with linear gain: ``sum grade_i / log2(i + 2)``."""
    total = 0.0
    for i, g in enumerate(grades):
        if k is not None and i >= k:
            break
        if g > 0:
            total += g / math.log2(i + 2)
    return total


def ndcg_at_k(order: Sequence[str], relevance: Relevance, k: int | None) -> float:
    """nDCG with linear gain (trec_eval ``ndcg_cut_k``); ``k=None`` means the whole list.

    The ideal ordering is built from every grade in ``relevance`` (as trec_eval builds it from
    every judged document), so pass only the grades of the items that could be ranked —
    ``evaluate`` restricts an example's relevance to its candidates for that reason.
    """
    if k is not None:
        _check_k(k)
    ideal = dcg_at_k(sorted((float(v) for v in relevance.values()), reverse=True), k)
    if ideal <= 0:
        return 0.0
    return dcg_at_k((float(relevance.get(x, 0.0)) for x in order), k) / ideal


def hit_at_k(order: Sequence[str], relevance: Relevance, k: int, *, threshold: float | None = None) -> float:
    """1.0 if a relevant item (see ``reciprocal_rank``) is among the first ``k``, else 0.0."""
    _check_k(k)
    return float(any(_is_relevant(float(relevance.get(x, 0.0)), threshold) for x in order[:k]))


def expected_random_rr(n: int, n_relevant: int = 1) -> float:
    """Expected reciprocal rank of a uniformly random order of ``n`` items, ``n_relevant`` relevant.

    The chance level a ranker's MRR must be read against (it depends on the pool size, so a
    bare MRR means little without it). The first relevant item is at position ``k`` with
    probability ``C(n - k, m - 1) / C(n, m)``, so the expectation is
    ``sum_k C(n - k, m - 1) / C(n, m) / k``; with one relevant item it is ``H_n / n``
    (N=20: 0.180, N=9: 0.314, N=5: 0.457). Exact (the random ranking's *measured* MRR over
    a few examples scatters around it). 0 when nothing is relevant.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"pool size n must be a positive integer, got {n!r}")
    if not isinstance(n_relevant, int) or isinstance(n_relevant, bool) or not 0 <= n_relevant <= n:
        raise ValueError(f"n_relevant must be an integer in [0, {n}], got {n_relevant!r}")
    if n_relevant == 0:
        return 0.0
    total = math.comb(n, n_relevant)
    return math.fsum(math.comb(n - k, n_relevant - 1) / total / k for k in range(1, n - n_relevant + 2))


def _check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"cutoff k must be a positive integer, got {k!r}")
    return k


# --------------------------------------------------------------------------------------------
# Measures by name


_ALIASES = {
    "mrr": "MRR",
    "rr": "MRR",
    "recip_rank": "MRR",
    "ndcg": "NDCG",
    "hit": "Hit",
    "hits": "Hit",
    "success": "Hit",
}

_MEASURE_RE = re.compile(
    r"^\s*(?P<name>[A-Za-z_]+)\s*"
    r"(?:\(\s*rel\s*=\s*(?P<rel>-?\d+(?:\.\d+)?)\s*\))?\s*"
    r"(?:@\s*(?P<k>\d+))?\s*$"
)


@dataclass(frozen=True)
class Measure:
    """A parsed measure name: ``MRR``, ``MRR@10``, ``NDCG@10``, ``Hit(rel=2)@5``...

    A value, not a string, so that typos fail at parse time rather than after a long run, and
    so that ``RR``/``MRR``/``recip_rank`` or ``Success``/``Hit`` name the same measure.
    """

    name: str  # "MRR" | "NDCG" | "Hit"
    k: int | None = None
    rel: float | None = None

    def __str__(self) -> str:
        s = self.name
        if self.rel is not None:
            rel = int(self.rel) if float(self.rel).is_integer() else self.rel
            s += f"(rel={rel})"
        if self.k is not None:
            s += f"@{self.k}"
        return s

    def __call__(self, order: Sequence[str], relevance: Relevance) -> float:
        """The measure's value for one ranked list."""
        if self.name == "MRR":
            return reciprocal_rank(order, relevance, threshold=self.rel, k=self.k)
        if self.name == "NDCG":
            return ndcg_at_k(order, relevance, self.k)
        assert self.name == "Hit" and self.k is not None
        return hit_at_k(order, relevance, self.k, threshold=self.rel)


def parse_measure(spec: "str | Measure") -> Measure:
    """Parse ``"NDCG@10"``, ``"MRR"``, ``"RR(rel=2)"``, ``"Success@5"``... into a ``Measure``.

    Names are case-insensitive; ``RR``/``MRR``, ``Hit``/``Success`` are synonyms. ``rel=`` is
    accepted for MRR and Hit (nDCG uses the grades themselves). Hit needs a cutoff.
    """
    if isinstance(spec, Measure):
        return spec
    m = _MEASURE_RE.match(str(spec))
    if not m:
        raise ValueError(
            f"cannot parse measure {spec!r}; expected e.g. 'MRR', 'NDCG@10', 'Hit@5', 'RR(rel=2)'"
        )
    name = _ALIASES.get(m["name"].lower())
    if name is None:
        raise ValueError(f"unknown measure {m['name']!r} in {spec!r}; known: MRR, NDCG@k, Hit@k")
    k = int(m["k"]) if m["k"] is not None else None
    if k is not None and k < 1:
        raise ValueError(f"cutoff must be >= 1 in {spec!r}")
    rel = float(m["rel"]) if m["rel"] is not None else None
    if name == "NDCG" and rel is not None:
        raise ValueError(f"nDCG takes no rel= parameter (it uses the grades): {spec!r}")
    if name == "Hit" and k is None:
        raise ValueError(f"Hit needs a cutoff, e.g. 'Hit@5': {spec!r}")
    return Measure(name=name, k=k, rel=rel)


# --------------------------------------------------------------------------------------------
# Evaluating rankings against examples


def check_permutation(ranking: Ranking, example: RankingExample) -> None:
    """Raise ``ValueError`` unless ``ranking.order`` is a permutation of the candidates.

    A ranking that drops, repeats or invents candidates would otherwise get a silently wrong
    score (a dropped relevant item just looks like a miss), so it is an error, not a zero.
    """
    expected = example.candidate_ids
    order = list(ranking.order)
    if len(order) == len(expected) and set(order) == set(expected) and len(set(order)) == len(order):
        return
    seen: set[str] = set()
    dupes = sorted({x for x in order if x in seen or seen.add(x)})  # type: ignore[func-returns-value]
    missing = sorted(set(expected) - set(order))
    extra = sorted(set(order) - set(expected))
    parts = []
    if missing:
        parts.append(f"missing {missing[:5]}")
    if extra:
        parts.append(f"unknown {extra[:5]}")
    if dupes:
        parts.append(f"repeated {dupes[:5]}")
    raise ValueError(
        f"ranking for example {example.id!r} is not a permutation of its "
        f"{len(expected)} candidates ({len(order)} ids; {', '.join(parts)})"
    )


def default_threshold(example: RankingExample, relevance: Relevance | None = None) -> float | None:
    """The grade from which a candidate counts as relevant for MRR/Hit on this example.

    ``meta["relevant_grade"]`` when the data sets it; for routing, the top grade — routing
    relevance is graded for nDCG (every LLM gets a grade), but MRR asks where the *best* LLM
    landed, as in the paper; otherwise None (any grade > 0).
    """
    if example.meta.get("relevant_grade") is not None:
        return float(example.meta["relevant_grade"])
    if example.scenario == "routing":
        rel = relevance if relevance is not None else example.relevance
        top = max((float(v) for v in rel.values()), default=0.0)
        return top if top > 0 else None
    return None


def example_relevance(example: RankingExample) -> dict[str, float]:
    """The example's grades restricted to its candidates; raises if none is positive.

    Restricting keeps nDCG's ideal ranking achievable (a grade for an item that was never a
    candidate could not be ranked). An example without a positive grade among its candidates
    cannot be scored meaningfully (every ranking would get 0), so it is an error rather than
    a silent 0 that drags the mean down.
    """
    cands = set(example.candidate_ids)
    rel = {cid: float(g) for cid, g in example.relevance.items() if cid in cands}
    if not any(g > 0 for g in rel.values()):
        raise ValueError(
            f"example {example.id!r} has no relevance judgements for its candidates "
            f"(relevance={dict(list(example.relevance.items())[:5])!r}); "
            "metrics need at least one candidate with a grade > 0"
        )
    return rel


def evaluate(
    rankings: Sequence[Ranking],
    examples: Sequence[RankingExample],
    measures: Sequence["str | Measure"] = DEFAULT_MEASURES,
    *,
    require_all: bool = True,
    no_positive: str = "error",
) -> dict[str, Any]:
    """Score rankings against their examples, matched by id.

    Returns ``{"measures": [names], "n": count, "mean": {name: value},
    "per_example": {example_id: {name: value}}}``; names are the canonical ``str(Measure)``
    (``"MRR"``, ``"NDCG@10"``, ``"Hit(rel=2)@5"``) and per-example entries follow the order
    of ``examples``. Raises ``ValueError`` for a ranking of an unknown example, two rankings of
    one example, an order that is not a permutation of the candidates, an example with no
    positive relevance (unless ``no_positive`` is ``zero`` or ``skip``: see
    :data:`NO_POSITIVE_POLICIES`; the result then has ``n_without_positive``), and — when
    ``require_all`` — an example with no ranking (so that a partial run cannot be mistaken for
    a complete one).
    """
    parsed = [parse_measure(m) for m in measures]
    names = [str(m) for m in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate measures: {names}")

    by_id: dict[str, RankingExample] = {}
    for ex in examples:
        if ex.id in by_id:
            raise ValueError(f"duplicate example id {ex.id!r}")
        by_id[ex.id] = ex
    ranked: dict[str, Ranking] = {}
    for r in rankings:
        if r.example_id not in by_id:
            raise ValueError(f"ranking for unknown example id {r.example_id!r}")
        if r.example_id in ranked:
            raise ValueError(f"two rankings for example id {r.example_id!r}")
        ranked[r.example_id] = r
    if require_all:
        missing = [ex.id for ex in examples if ex.id not in ranked]
        if missing:
            raise ValueError(
                f"{len(missing)} of {len(by_id)} examples have no ranking (first: {missing[:5]}); "
                "pass require_all=False to score only the ranked ones"
            )

    per_example: dict[str, dict[str, float]] = {}
    without_positive = 0
    for ex in examples:
        r = ranked.get(ex.id)
        if r is None:
            continue
        check_permutation(r, ex)
        scores = score_example(r.order, ex, parsed, no_positive=no_positive)
        without_positive += not has_positive(ex)
        if scores is not None:
            per_example[ex.id] = scores

    n = len(per_example)
    mean = {
        name: (math.fsum(v[name] for v in per_example.values()) / n if n else float("nan")) for name in names
    }
    out: dict[str, Any] = {"measures": names, "n": n, "mean": mean, "per_example": per_example}
    if no_positive != "error":
        out["n_without_positive"] = without_positive
    return out


#: What to do with an example none of whose candidates is relevant: ``error`` (raise: every
#: ranking would score 0, so it is usually a data mistake), ``zero`` (score it 0 and count it:
#: the TREC convention, what ``iranker eval`` and ``iranker rank`` report), ``skip`` (leave it out).
NO_POSITIVE_POLICIES = ("error", "zero", "skip")


def has_positive(example: RankingExample) -> bool:
    """Whether any candidate of ``example`` has a grade > 0."""
    cands = set(example.candidate_ids)
    return any(float(g) > 0 for c, g in example.relevance.items() if c in cands)


def score_example(
    order: Sequence[str],
    example: RankingExample,
    measures: Sequence["str | Measure"],
    *,
    no_positive: str = "error",
) -> dict[str, float] | None:
    """The measures of one ranked example, by canonical name; the one per-example rule behind
    :func:`evaluate` and the eval reports.

    MRR and Hit without an explicit ``rel=`` use the example's :func:`default_threshold`
    (routing: the best LLM; ``meta["relevant_grade"]``, e.g. 2 for TREC DL); nDCG uses the
    grades. Grades of items that are not candidates are ignored. Returns None for an example
    skipped under ``no_positive="skip"``.
    """
    if no_positive not in NO_POSITIVE_POLICIES:
        raise ValueError(f"no_positive must be one of {NO_POSITIVE_POLICIES}, got {no_positive!r}")
    parsed = [parse_measure(m) for m in measures]
    cands = set(example.candidate_ids)
    rel = {cid: float(g) for cid, g in example.relevance.items() if cid in cands}
    if not has_positive(example):
        if no_positive == "error":
            example_relevance(example)  # raises with the message that names the example
        if no_positive == "skip":
            return None
    thr = default_threshold(example, rel)
    return {
        str(m): (m if m.rel is not None or m.name == "NDCG" or thr is None else replace(m, rel=thr))(
            order, rel
        )
        for m in parsed
    }


__all__ = [
    "DEFAULT_MEASURES",
    "Measure",
    "check_permutation",
    "default_threshold",
    "dcg_at_k",
    "evaluate",
    "example_relevance",
    "expected_random_rr",
    "hit_at_k",
    "ndcg_at_k",
    "parse_measure",
    "reciprocal_rank",
    "has_positive",
    "score_example",
    "NO_POSITIVE_POLICIES",
]
