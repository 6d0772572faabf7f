"""Trained task-specific baselines: item-kNN, router-kNN, cheapest-first, most-frequent-best."""

from __future__ import annotations

import numpy as np
import pytest

from iranker.metrics import reciprocal_rank
from iranker.rankers.base import Ranker
from iranker.rankers.knn import (
    CheapestFirstRanker,
    ItemKNNRanker,
    MostFrequentBestRanker,
    NotFittedError,
    RouterKNNRanker,
    TaskSpecificRanker,
    routing_utilities,
)
from iranker.rankers.random_ranker import RandomRanker
from iranker.types import Candidate, Ranking, RankingExample, Usage

from .conftest import LLMS, cluster_rec_data


def _rec(d: dict, with_ids: bool = False) -> RankingExample:
    titles = {c["id"]: c["text"] for c in d["candidates"]}
    meta = {"history": d["history"]}
    if with_ids:
        meta["history_ids"] = [f"i{h.split()[1]}" for h in d["history"]]
    return RankingExample(
        d["id"],
        "recommendation",
        "\n".join(d["history"]),
        [Candidate(i, t) for i, t in titles.items()],
        {k: float(v) for k, v in d["relevance"].items()},
        meta,
    )


def _mrr(rankings, examples) -> float:
    by = {e.id: e for e in examples}
    return float(np.mean([reciprocal_rank(r.order, by[r.example_id].relevance) for r in rankings]))


@pytest.mark.parametrize("with_ids", [False, True])
def test_item_knn_wins_where_co_occurrence_decides(with_ids):
    train, test = cluster_rec_data()
    train = [_rec(d, with_ids) for d in train]
    test = [_rec(d, with_ids) for d in test]
    knn = ItemKNNRanker().fit(train)
    assert knn.key_used == ("id" if with_ids else "title")
    assert knn.n_users == len(train)
    got = knn.rank(test)
    assert [r.example_id for r in got] == [e.id for e in test]
    assert _mrr(got, test) == pytest.approx(1.0)
    assert _mrr(RandomRanker(0).rank(test), test) < 0.6
    assert [r.order for r in knn.rank(test)] == [r.order for r in got]  # deterministic


def test_item_knn_similarity_is_cosine_over_user_sets_and_ties_keep_order():
    def ex(eid, hist, target, cands):
        return RankingExample(
            eid,
            "recommendation",
            "",
            [Candidate(c, f"t{c}") for c in cands],
            {target: 1.0},
            {"history_ids": hist, "history": [f"t{h}" for h in hist]},
        )

    train = [
        ex("u1", ["a", "b"], "c", ["c", "x"]),
        ex("u2", ["a"], "b", ["b", "y"]),
        ex("u3", ["d"], "e", ["e", "z"]),
    ]
    knn = ItemKNNRanker().fit(train)
    # users: u1={a,b,c}, u2={a,b}, u3={d,e}; co(a,b)=2, n_a=n_b=2 -> 1.0; co(a,c)=1 -> 1/sqrt(2)
    assert knn.similarity("a", "b") == pytest.approx(1.0)
    assert knn.similarity("a", "c") == pytest.approx(1 / np.sqrt(2))
    assert knn.similarity("a", "d") == 0.0 and knn.similarity("a", "unknown") == 0.0
    test = ex("t", ["a"], "c", ["q1", "d", "c", "q2", "b"])
    r = knn.rank([test])[0]
    assert r.order == ["b", "c", "q1", "d", "q2"]  # b (1.0) > c (0.71) > zeros in candidate order
    pop = ItemKNNRanker(popularity_tiebreak=True).fit(train).rank([test])[0]
    assert pop.order == ["b", "c", "d", "q1", "q2"]  # zero scores: seen item d before unseen ones


def test_item_knn_needs_fit():
    _, test = cluster_rec_data()
    with pytest.raises(NotFittedError):
        ItemKNNRanker().rank([_rec(test[0])])


def _route(eid, query, quality, objective="performance", relevance=None, best=None):
    cands = [Candidate(n, d, {"name": n, "input_price": p, "output_price": p}) for n, (p, d) in LLMS.items()]
    meta = {"objective": objective}
    if quality is not None:
        meta["scores"] = quality
    if best:
        meta["best"] = best
    return RankingExample(eid, "routing", query, cands, relevance or {n: 1.0 for n in LLMS}, meta)


class FakeDense(Ranker):
    """Embeds a text by keyword: 'math' -> e0, else e1 (no model needed)."""

    name = "dense"
    model_name = "fake"

    def __init__(self):
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        return np.array([[1.0, 0.0] if "math" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    def rank(self, examples):
        return [
            Ranking(e.id, list(reversed(e.candidate_ids)), usage=Usage(), method="dense") for e in examples
        ]


MATH = {"cheap-7b": 0.0, "mid-70b": 0.0, "big-x": 1.0}
CHAT = {"cheap-7b": 1.0, "mid-70b": 1.0, "big-x": 1.0}


def test_router_knn_learns_which_queries_need_the_big_model(tmp_path):
    train = [_route(f"m{i}", f"math problem {i}", MATH) for i in range(5)]
    train += [_route(f"c{i}", f"chat message {i}", CHAT) for i in range(5)]
    dense = FakeDense()
    knn = RouterKNNRanker(k=3, dense=dense, cache_dir=tmp_path).fit(train)
    got = knn.rank([_route("t1", "a math question", None), _route("t2", "a chat", None)])
    assert got[0].order == ["big-x", "cheap-7b", "mid-70b"]  # big-x best; others tie -> cheaper first
    assert got[1].order == ["cheap-7b", "mid-70b", "big-x"]  # all tie -> by price
    assert len(list(tmp_path.glob("emb-*.npy"))) == 2  # train and test embeddings cached on disk
    # a second ranker over the same texts reuses the cache
    calls = dense.calls
    RouterKNNRanker(k=3, dense=dense, cache_dir=tmp_path).fit(train)
    assert dense.calls == calls


def test_router_knn_uses_the_test_objective():
    # quality: big-x slightly better everywhere; under "cost" the price dominates
    q = {"cheap-7b": 0.6, "mid-70b": 0.7, "big-x": 0.8}
    train = [_route(f"x{i}", f"math {i}", q) for i in range(4)]
    knn = RouterKNNRanker(k=4, dense=FakeDense(), target="utility").fit(train)
    perf = knn.rank([_route("p", "math", None, "performance")])[0]
    cost = knn.rank([_route("c", "math", None, "cost")])[0]
    assert perf.order[0] == "big-x"
    assert cost.order[0] == "cheap-7b"
    u = routing_utilities(_route("u", "m", q, "cost"))
    assert u["cheap-7b"] == pytest.approx(0.2 * 0.6) and u["big-x"] == pytest.approx(0.2 * 0.8 - 0.8)


def test_cheapest_first_and_most_frequent_best():
    ex = _route("e", "q", None)
    assert CheapestFirstRanker().rank([ex])[0].order == ["cheap-7b", "mid-70b", "big-x"]
    no_price = RankingExample(
        "n", "routing", "q", [Candidate("a", "A"), Candidate("b", "B", {"price": 1.0})], {"a": 1.0}
    )
    assert CheapestFirstRanker().rank([no_price])[0].order == ["b", "a"]  # unknown price goes last

    train = [_route(f"m{i}", "math", MATH) for i in range(3)] + [_route("c", "chat", CHAT)]
    mfb = MostFrequentBestRanker().fit(train)
    assert mfb.counts == {"big-x": 3, "cheap-7b": 1}
    assert mfb.rank([ex])[0].order == ["big-x", "cheap-7b", "mid-70b"]
    # the builder's recorded best wins over recomputation
    assert MostFrequentBestRanker().fit([_route("b", "q", CHAT, best="mid-70b")]).counts == {"mid-70b": 1}
    with pytest.raises(NotFittedError):
        MostFrequentBestRanker().rank([ex])


def test_task_specific_ranker_dispatches_by_scenario_and_keeps_input_order():
    train_rec, test_rec = cluster_rec_data(n_test=2)
    rtrain = [_route(f"m{i}", f"math {i}", MATH) for i in range(3)] + [_route("c", "chat", CHAT)]
    passage = RankingExample("p", "passage", "q", [Candidate("a", "x"), Candidate("b", "y")], {"a": 1.0})
    ts = TaskSpecificRanker(k=2, dense=FakeDense()).fit([_rec(d) for d in train_rec] + rtrain)
    mixed = [_rec(test_rec[0]), passage, _route("t", "math q", None), _rec(test_rec[1])]
    out = ts.rank(mixed)
    assert [r.example_id for r in out] == [e.id for e in mixed]
    assert all(r.method == "knn" for r in out)
    assert [r.meta["via"] for r in out] == ["itemknn", "dense", "routerknn", "itemknn"]
    assert out[1].order == ["b", "a"]
    assert out[2].order[0] == "big-x"
    with pytest.raises(NotFittedError):
        TaskSpecificRanker(dense=FakeDense()).rank([_rec(test_rec[0])])
