"""Trained task-specific baselines: item co-occurrence for recommendation, kNN for routing.

An LLM ranker that beats BM25 has not shown much: a recommender that has seen other users'
histories, or a router that has seen how the LLMs did on similar questions, is the bar a
ranking model must clear on its own task. These baselines are fitted on the task's **train**
split (``fit(train_examples)``), then rank like every other ``Ranker``. All are deterministic:
no sampling, and ties keep the original candidate order.

* :class:`ItemKNNRanker` (recommendation) — cosine item-item similarity over the training
  users' item sets (``co(i, j) / sqrt(n_i * n_j)``); a candidate scores the sum of its
  similarities to the items of the user's history. User sets are Python int bitsets, so a
  co-occurrence count is one ``&`` and one ``bit_count()``.
* :class:`RouterKNNRanker` (routing) — embeds the training queries with
  :meth:`DenseRanker.embed`; for a test query the ``k`` most similar training queries vote: an
  LLM scores the similarity-weighted mean of its graded rank on those neighbours under the
  test example's objective (utility ``w * quality - (1 - w) * normalised price``, ties to the
  cheaper LLM — the labels' own rule; ``target="utility"`` averages the raw utility instead,
  which on LLMRouter's tie-heavy scores loses to price alone). Ties go to the cheaper LLM.
* :class:`CheapestFirstRanker` and :class:`MostFrequentBestRanker` (routing) — the two
  baselines every routing report needs: on LLMRouter's data most per-LLM scores tie, and with
  ties going to the cheaper model, price alone already ranks well.
* :class:`TaskSpecificRanker` — dispatches by scenario (recommendation → item-kNN, routing →
  router-kNN, passage → the dense model, which needs no training), so ``--methods knn`` runs
  on every task.

What they read from the examples (see :func:`history_item_ids`, :func:`llm_quality`): item
ids of the history in ``meta["history_ids"]`` (candidate ids are item ids; without ids the
item-kNN keys items by title: ``meta["history"]`` and candidate texts), per-LLM quality
scores in ``meta["scores"]`` or candidate ``meta["score"]``, prices in candidate
``meta["input_price"]`` / ``meta["output_price"]`` (or ``meta["price"]``).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..data.routing import grades_from_order, price_from, utility
from ..scenarios.routing import objective_weight
from ..types import Candidate, Ranking, RankingExample
from .base import Ranker
from .scores import order_by_scores, score_ranking

__all__ = [
    "CheapestFirstRanker",
    "ItemKNNRanker",
    "MostFrequentBestRanker",
    "NotFittedError",
    "RouterKNNRanker",
    "TaskSpecificRanker",
    "candidate_price",
    "history_item_ids",
    "llm_quality",
    "routing_utilities",
]

#: where the history's item ids may be stored, first match wins
HISTORY_ID_KEYS = ("history_ids", "history_item_ids", "history_items")
#: where per-LLM quality scores may be stored on a routing example
SCORE_KEYS = ("scores", "llm_scores", "quality")


class NotFittedError(RuntimeError):
    """A trained baseline was asked to rank before ``fit`` saw training data for it."""


# ---------------------------------------------------------------------------------------------
# What the baselines read from examples


def history_item_ids(example: RankingExample) -> list[str]:
    """The item ids of the user's history (oldest first), from ``meta``; [] if absent.

    The task builders keep titles in ``meta["history"]`` (what the LLM sees) and ids in
    ``meta["history_ids"]``; a candidate's id is its item id, so both name items alike.
    """
    for key in HISTORY_ID_KEYS:
        ids = example.meta.get(key)
        if ids:
            return [str(i) for i in ids]
    return []


def candidate_price(cand: Candidate) -> float | None:
    """One price per LLM: mean of input and output price (per 1M tokens), else ``price``."""
    listed = price_from(cand.meta.get("input_price"), cand.meta.get("output_price"))
    if listed is not None:
        return listed
    p = cand.meta.get("price", cand.meta.get("cost"))
    return None if p is None else float(p)


def llm_quality(example: RankingExample) -> dict[str, float] | None:
    """Per-LLM measured quality for a routing example, or None if the example has none."""
    for key in SCORE_KEYS:
        s = example.meta.get(key)
        if isinstance(s, Mapping) and s:
            ids = set(example.candidate_ids)
            out = {str(k): float(v) for k, v in s.items() if str(k) in ids}
            if out:
                return out
    per_cand = {c.id: c.meta["score"] for c in example.candidates if "score" in c.meta}
    if per_cand:
        return {k: float(v) for k, v in per_cand.items()}
    return None


def _weight(example: RankingExample) -> float:

    return objective_weight(example.meta)


def _list_prices(example: RankingExample) -> dict[str, float]:
    """List price per candidate (missing prices count as the most expensive)."""
    raw = {c.id: candidate_price(c) for c in example.candidates}
    known = [p for p in raw.values() if p is not None]
    top = max(known) if known else 0.0
    return {k: (top if v is None else v) for k, v in raw.items()}


def _measured_cost(example: RankingExample) -> dict[str, float] | None:
    """The per-query cost the task builder stored (``meta["cost"]``, GraphRouter) when it
    covers every candidate with a number, else None."""
    cost = example.meta.get("cost")
    ids = example.candidate_ids
    if isinstance(cost, Mapping) and all(c in cost for c in ids):
        try:
            return {c: float(cost[c]) for c in ids}
        except (TypeError, ValueError):
            return None
    return None


def example_costs(example: RankingExample) -> dict[str, float]:
    """The cost of each candidate LLM for this query: the measured per-query cost when the
    example has one (:func:`_measured_cost`), so the utility here is the one its labels were
    made with; else list prices. A new query has no measured cost, so test-time rankers see
    list prices only (see ``RouterKNNRanker``)."""
    measured = _measured_cost(example)
    return measured if measured is not None else _list_prices(example)


def routing_utilities(example: RankingExample, weight: float | None = None) -> dict[str, float]:
    """Utility of each candidate LLM (:func:`iranker.data.routing.utility` of its quality and
    :func:`example_costs`).

    With no quality scores stored, the example's relevance grades are the utility (a user's
    own file may only say which LLMs were good). ``weight`` defaults to the example's objective.
    """
    quality = llm_quality(example)
    if quality is None:
        return {c.id: float(example.relevance.get(c.id, 0.0)) for c in example.candidates}
    w = _weight(example) if weight is None else weight
    return utility(quality, example_costs(example), w)


def _list_price_key(example: RankingExample) -> dict[str, float]:
    """Tie-break key on list prices; an LLM with no price at all sorts last."""
    return {c.id: (p if (p := candidate_price(c)) is not None else math.inf) for c in example.candidates}


def _price_key(example: RankingExample) -> dict[str, float]:
    """Tie-break key of a labelled example: the cost its utility used (:func:`example_costs`)."""
    measured = _measured_cost(example)
    return measured if measured is not None else _list_price_key(example)


def _order(
    example: RankingExample,
    score: Mapping[str, float],
    *,
    cheaper_first_on_ties: bool,
    price: Mapping[str, float] | None = None,
) -> list[str]:
    """Best first by score (rounded, so float noise cannot break a tie), then price, then order.

    ``price`` defaults to list prices: what a ranker may know of a new query."""
    if price is None:
        price = _list_price_key(example) if cheaper_first_on_ties else {}
    idx = {cid: i for i, cid in enumerate(example.candidate_ids)}
    return sorted(
        example.candidate_ids,
        key=lambda c: (-round(float(score.get(c, 0.0)), 12), price.get(c, 0.0), idx[c]),
    )


def _best_llm(example: RankingExample) -> str | None:
    """The best LLM of a training example: the builder's ``meta["best"]`` if given, else
    highest utility with ties to the cheaper one."""
    if not example.candidates:
        return None
    best = example.meta.get("best")
    if best is not None and str(best) in set(example.candidate_ids):
        return str(best)
    return _order(example, routing_utilities(example), cheaper_first_on_ties=True, price=_price_key(example))[
        0
    ]


# ---------------------------------------------------------------------------------------------
# Recommendation


class ItemKNNRanker(Ranker):
    """Item-based collaborative filtering from the training users' histories.

    ``fit``: every training example contributes one user set — its history items plus its
    relevant item (the next item). ``sim(i, j) = co(i, j) / (sqrt(n_i * n_j) + shrink)``.
    A candidate's score is ``sum_h decay**age(h) * sim(h, c)`` over the history items ``h``
    (``age`` 0 = most recent; ``decay=1`` weighs them all alike). Ties — e.g. candidates never
    seen in training — keep candidate order, or go to the more popular item first with
    ``popularity_tiebreak=True``.

    Items are keyed by id (``key="id"``: history ids from ``meta["history_ids"]``, candidate
    ids) or by title (``key="title"``: ``meta["history"]`` titles and candidate texts — the
    task builders give every item one title and keep titles distinct within an example).
    ``key="auto"`` uses ids when the training examples carry history ids, else titles.
    """

    name = "itemknn"

    def __init__(
        self, *, shrink: float = 0.0, decay: float = 1.0, popularity_tiebreak: bool = False, key: str = "auto"
    ) -> None:
        if shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {shrink}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        if key not in ("auto", "id", "title"):
            raise ValueError(f"key must be 'auto', 'id' or 'title', got {key!r}")
        self.shrink = float(shrink)
        self.decay = float(decay)
        self.popularity_tiebreak = popularity_tiebreak
        self.key = key
        self.key_used: str | None = None
        self._users: dict[str, int] = {}  # item key -> bitset of training users
        self._count: dict[str, int] = {}  # item key -> number of training users
        self.n_users = 0
        self.fitted = False

    # -- item keys ------------------------------------------------------------------------------
    def _history_keys(self, example: RankingExample) -> list[str]:
        if self.key_used == "id":
            ids = history_item_ids(example)
            if not ids and example.meta.get("history"):
                raise ValueError(
                    f"example {example.id!r} has history titles but no meta['history_ids']; "
                    "ItemKNNRanker was fitted on ids (use key='title' for such examples)"
                )
            return ids
        return [str(h) for h in example.meta.get("history") or []]

    def _cand_key(self, cand: Candidate) -> str:
        return cand.id if self.key_used == "id" else cand.text

    def fit(self, train_examples: Iterable[RankingExample]) -> "ItemKNNRanker":
        train = [ex for ex in train_examples if ex.scenario == "recommendation"]
        if self.key == "auto":
            self.key_used = "id" if any(history_item_ids(ex) for ex in train) else "title"
        else:
            self.key_used = self.key
        users: dict[str, int] = {}
        n = 0
        for ex in train:
            items = set(self._history_keys(ex))
            target = ex.best_id()
            if target is not None:
                items.add(self._cand_key(ex.candidate(target)))
            if len(items) < 2:
                continue
            bit = 1 << n
            n += 1
            for it in items:
                users[it] = users.get(it, 0) | bit
        self._users = users
        self._count = {it: b.bit_count() for it, b in users.items()}
        self.n_users = n
        self.fitted = True
        return self

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two item keys over the training users (0 if either is unseen)."""
        ua, ub = self._users.get(a), self._users.get(b)
        if not ua or not ub:
            return 0.0
        co = (ua & ub).bit_count()
        if not co:
            return 0.0
        return co / (math.sqrt(self._count[a] * self._count[b]) + self.shrink)

    def scores(self, example: RankingExample) -> np.ndarray:
        """Summed (decayed) similarity of each candidate to the history, in candidate order."""
        if not self.fitted:
            raise NotFittedError("ItemKNNRanker needs fit(train_examples) before rank()")
        weights: dict[str, float] = {}
        for age, h in enumerate(reversed(self._history_keys(example))):
            if h in self._users and h not in weights:
                weights[h] = self.decay**age
        out = np.zeros(len(example.candidates))
        for i, c in enumerate(example.candidates):
            key = self._cand_key(c)
            if key not in self._users:
                continue
            out[i] = sum(w * self.similarity(h, key) for h, w in weights.items())
        return out

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        out = []
        for ex in examples:
            s = self.scores(ex)
            ids = ex.candidate_ids
            if self.popularity_tiebreak:
                pos = {c: i for i, c in enumerate(ids)}
                score = dict(zip(ids, s))
                pop = {c.id: self._count.get(self._cand_key(c), 0) for c in ex.candidates}
                order = sorted(ids, key=lambda c: (-score[c], -pop[c], pos[c]))
            else:
                order = order_by_scores(ids, s)
            known = sum(h in self._users for h in self._history_keys(ex))
            out.append(
                score_ranking(
                    ex,
                    order,
                    self.name,
                    scores={c: float(v) for c, v in zip(ids, s)},
                    history_known=known,
                    key=self.key_used,
                )
            )
        return out


# ---------------------------------------------------------------------------------------------
# Routing

_EMB_CACHE: dict[tuple[str, str], np.ndarray] = {}
_EMB_LOCK = threading.Lock()


def _embed_cached(
    dense: Any, texts: list[str], cache_dir: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """Embeddings of ``texts``, cached per (model, texts) in the process and, with
    ``cache_dir``, on disk (``emb-<sha1>.npy``), so the three router tasks and a resumed run
    embed the same training queries once."""
    model = str(getattr(dense, "model_name", ""))
    digest = hashlib.sha1(("\x1f".join([model, *texts])).encode("utf-8")).hexdigest()
    key = (model, digest)
    with _EMB_LOCK:
        hit = _EMB_CACHE.get(key)
    if hit is not None:
        return hit
    path = Path(cache_dir) / f"emb-{digest[:20]}.npy" if cache_dir is not None else None
    emb = None
    if path is not None and path.is_file():
        try:
            emb = np.load(path)
            if emb.shape[0] != len(texts):
                emb = None
        except (OSError, ValueError):
            emb = None
    if emb is None:
        emb = dense.embed(texts)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            from ..atomic_files import atomic_path

            with atomic_path(path, suffix=".tmp.npy") as tmp:  # np.save adds .npy to other names
                np.save(tmp, emb)
    with _EMB_LOCK:
        if len(_EMB_CACHE) > 16:
            _EMB_CACHE.clear()
        _EMB_CACHE[key] = emb
    return emb


#: what a neighbour contributes for each LLM (see RouterKNNRanker)
ROUTER_TARGETS = ("rank", "utility", "best")


class RouterKNNRanker(Ranker):
    """k-nearest-neighbour router over embedded training queries (LLMRouter's RouterKNN idea).

    ``fit`` embeds every training query and keeps each LLM's measured quality on it (or, for
    examples without quality scores, their relevance grades). ``rank`` finds the ``k`` most
    similar training queries (cosine) and scores LLM ``m`` by ``sum_j s_j * t_j(m) / sum_j s_j``
    over the neighbours that measured ``m`` (``s_j`` = similarity clipped at 0; all-zero
    similarities fall back to the plain mean). The neighbour's target ``t_j`` is computed under
    the **test example's** objective and prices:

    * ``"rank"`` (default): the graded relevance the task builders use, ``n - position`` of
      ``m`` in the neighbour's (utility desc, cheaper first) order — it carries the tie rule,
      which matters on LLMRouter's data where most quality scores tie;
    * ``"utility"``: ``w * quality - (1 - w) * normalised price``;
    * ``"best"``: 1 for the neighbour's best LLM, else 0.

    Ties go to the cheaper LLM, then candidate order.
    """

    name = "routerknn"

    def __init__(
        self,
        k: int = 10,
        *,
        target: str = "rank",
        dense: Any = None,
        model: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if target not in ROUTER_TARGETS:
            raise ValueError(f"target must be one of {ROUTER_TARGETS}, got {target!r}")
        self.k = int(k)
        self.target = target
        if dense is None:
            from .dense import DEFAULT_MODEL, DenseRanker

            dense = DenseRanker(model or DEFAULT_MODEL)
        self.dense = dense
        self.cache_dir = cache_dir
        self._emb: np.ndarray | None = None
        self._quality: list[dict[str, float] | None] = []
        self._grades: list[dict[str, float]] = []
        self.fitted = False

    def fit(self, train_examples: Iterable[RankingExample]) -> "RouterKNNRanker":
        train = [ex for ex in train_examples if ex.scenario == "routing"]
        self._quality = [llm_quality(ex) for ex in train]
        self._grades = [{c: float(ex.relevance.get(c, 0.0)) for c in ex.candidate_ids} for ex in train]
        texts = [ex.query for ex in train]
        self._emb = _embed_cached(self.dense, texts, self.cache_dir) if texts else None
        self.fitted = True
        return self

    def _targets(
        self, j: int, w: float, price: dict[str, float], raw_price: dict[str, float]
    ) -> dict[str, float]:
        q = self._quality[j]
        if q is None:  # only grades known (a user's own file): use them as they are
            g = self._grades[j]
            if self.target == "best":
                top = max(g.values(), default=0.0)
                return {c: float(v == top and top > 0) for c, v in g.items()}
            return g
        util = {c: u for c, u in utility(q, price, w).items() if c in q}
        util.update({c: w * q[c] for c in q if c not in util})  # an LLM the test query does not offer
        if self.target == "utility":
            return util
        order = sorted(util, key=lambda c: (-round(util[c], 12), raw_price.get(c, math.inf), c))
        if self.target == "best":
            return {c: float(i == 0) for i, c in enumerate(order)}
        return grades_from_order(order)

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        if not self.fitted:
            raise NotFittedError("RouterKNNRanker needs fit(train_examples) before rank()")
        if not examples:
            return []
        if self._emb is None or len(self._emb) == 0:
            raise NotFittedError("RouterKNNRanker was fitted on no routing examples")
        q = _embed_cached(self.dense, [ex.query for ex in examples], self.cache_dir)
        sims = q @ self._emb.T
        k = min(self.k, sims.shape[1])
        out = []
        for row, ex in zip(sims, examples):
            nn = np.argsort(-row, kind="stable")[:k]
            w = _weight(ex)
            price = _list_prices(ex)  # a new query's measured cost is unknown: list prices
            raw_price = _list_price_key(ex)
            num: Counter[str] = Counter()
            den: Counter[str] = Counter()
            cnt: Counter[str] = Counter()
            plain: Counter[str] = Counter()
            for j in nn:
                s = max(float(row[j]), 0.0)
                for cid, t in self._targets(int(j), w, price, raw_price).items():
                    num[cid] += s * t
                    den[cid] += s
                    plain[cid] += t
                    cnt[cid] += 1
            score = {}
            for c in ex.candidate_ids:
                if den[c] > 0:
                    score[c] = num[c] / den[c]
                elif cnt[c]:
                    score[c] = plain[c] / cnt[c]
                else:  # no neighbour measured this LLM: rank it last, cheaper first
                    score[c] = -math.inf
            order = _order(ex, score, cheaper_first_on_ties=True)
            out.append(score_ranking(ex, order, self.name, scores=score, neighbours=[int(j) for j in nn]))
        return out


class CheapestFirstRanker(Ranker):
    """Routing baseline: LLMs by price, cheapest first (price from candidate meta; ties → order;
    an LLM without a price after the priced ones; an example with no prices at all is an error).

    Needs no training. On LLMRouter's data, where most quality scores tie, this alone gives
    MRR x100 around 73/83/86 on Router-Performance/-Balance/-Cost.
    """

    name = "cheapest-first"

    def fit(self, train_examples: Iterable[RankingExample]) -> "CheapestFirstRanker":
        return self

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        out = []
        for ex in examples:
            if all(candidate_price(c) is None for c in ex.candidates):
                # ranking by prices nobody gave would return the input order under this name;
                # LLMs with an unknown price among priced ones go last (documented above)
                raise ValueError(
                    f"cheapest-first needs LLM prices: no candidate of example {ex.id!r} has input_price/"
                    "output_price (or price) in its fields; prices written only in the text are not read"
                )
            price = _list_price_key(ex)
            idx = {c: i for i, c in enumerate(ex.candidate_ids)}
            order = sorted(ex.candidate_ids, key=lambda c: (price[c], idx[c]))
            out.append(score_ranking(ex, order, self.name))
        return out


class MostFrequentBestRanker(Ranker):
    """Routing baseline: LLMs by how often each was the best one on the training queries.

    "Best" uses the training example's utility under its objective, ties to the cheaper LLM.
    LLMs never best rank after the others; ties (equal counts) go to the cheaper LLM, then
    candidate order. One global order, the same for every query.
    """

    name = "most-frequent-best"

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.fitted = False

    def fit(self, train_examples: Iterable[RankingExample]) -> "MostFrequentBestRanker":
        counts: Counter[str] = Counter()
        for ex in train_examples:
            if ex.scenario != "routing":
                continue
            best = _best_llm(ex)
            if best is not None:
                counts[best] += 1
        self.counts = counts
        self.fitted = True
        return self

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        if not self.fitted:
            raise NotFittedError("MostFrequentBestRanker needs fit(train_examples) before rank()")
        out = []
        for ex in examples:
            score = {c: float(self.counts.get(c, 0)) for c in ex.candidate_ids}
            out.append(score_ranking(ex, _order(ex, score, cheaper_first_on_ties=True), self.name))
        return out


# ---------------------------------------------------------------------------------------------
# Dispatch


class TaskSpecificRanker(Ranker):
    """The trained baseline of each scenario behind one ranker (``--methods knn``).

    recommendation → :class:`ItemKNNRanker`, routing → :class:`RouterKNNRanker`, passage →
    :class:`~iranker.rankers.dense.DenseRanker` (no training data; the dense model is the
    task-specific baseline). ``fit`` fits the scenarios present in the training examples;
    ranking a recommendation or routing example whose scenario was never fitted raises
    :class:`NotFittedError`.
    """

    name = "knn"

    def __init__(
        self,
        *,
        k: int = 10,
        router_target: str = "rank",
        dense_model: str | None = None,
        dense: Any = None,
        item_knn: ItemKNNRanker | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if dense is None:
            from .dense import DEFAULT_MODEL, DenseRanker

            dense = DenseRanker(dense_model or DEFAULT_MODEL)
        self.dense = dense
        self.k = k
        self.router_target = router_target
        self.cache_dir = cache_dir
        self.item_knn = item_knn
        self.router_knn: RouterKNNRanker | None = None

    def fit(self, train_examples: Iterable[RankingExample]) -> "TaskSpecificRanker":
        train = list(train_examples)
        rec = [ex for ex in train if ex.scenario == "recommendation"]
        rout = [ex for ex in train if ex.scenario == "routing"]
        if rec:
            self.item_knn = (self.item_knn or ItemKNNRanker()).fit(rec)
        if rout:
            self.router_knn = RouterKNNRanker(
                self.k, target=self.router_target, dense=self.dense, cache_dir=self.cache_dir
            ).fit(rout)
        return self

    def _for(self, scenario: str) -> Ranker:
        if scenario == "passage":
            return self.dense
        if scenario == "recommendation":
            if self.item_knn is None or not self.item_knn.fitted:
                raise NotFittedError("knn: no training data for recommendation (fit on a train split first)")
            return self.item_knn
        if scenario == "routing":
            if self.router_knn is None:
                raise NotFittedError("knn: no training data for routing (fit on a train split first)")
            return self.router_knn
        raise ValueError(f"knn: unknown scenario {scenario!r}")

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        results: list[Ranking | None] = [None] * len(examples)
        groups: dict[str, list[int]] = {}
        for i, ex in enumerate(examples):
            groups.setdefault(ex.scenario, []).append(i)
        for scenario, idx in groups.items():
            ranker = self._for(scenario)
            for i, r in zip(idx, ranker.rank([examples[i] for i in idx])):
                r.meta = {**r.meta, "via": ranker.name}
                r.method = self.name
                results[i] = r
        return [r for r in results if r is not None]
