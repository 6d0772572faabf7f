"""Smoke tests on the real shared data (``../shared/data``); skipped when it is absent.

Run with ``-s`` to see the counts. The full test-set sizes asserted here are the numbers the
result tables report; if the source files change, these tests say so.
"""

from __future__ import annotations

import pytest

from iranker.data.io import example_from_record
from iranker.data.tasks import TASKS, build_task

#: full test split sizes with the default options (seed does not change them)
FULL_TEST_SIZES = {
    "rec-movie": 1208,
    "rec-music": 1719,
    "rec-game": 492,
    "router-performance": 500,
    "router-balance": 500,
    "router-cost": 500,
    "router-heldout-performance": 500,
    "router-heldout-balance": 500,
    "router-heldout-cost": 500,
    "passage-5": 38,
    "passage-7": 36,
    "passage-9": 36,
    "trec-dl19": 43,
}


@pytest.mark.parametrize("name", list(TASKS))
def test_real_smoke_limit_5(real_data, name):
    td = build_task(name, real_data, split="test", seed=0, limit=5)
    print(
        f"\n{name}: {len(td)} examples (limit 5) of {td.metadata.get('n_in_split', td.metadata.get('n_queries'))}; "
        f"split rule: {td.metadata['split_rule']}"
    )
    assert len(td) == 5
    for ex in td.examples:
        example_from_record(ex.to_dict())
        assert ex.best_id() is not None


@pytest.mark.parametrize("name", list(TASKS))
def test_real_full_test_sizes(real_data, name):
    td = build_task(name, real_data, split="test", seed=0)
    print(f"\n{name}: {len(td)} test examples; skipped {td.metadata.get('skipped')}")
    assert len(td) == FULL_TEST_SIZES[name]


def test_real_train_splits_are_disjoint_from_test(real_data):
    for name in ("rec-movie", "rec-music", "rec-game", "router-balance"):
        test = build_task(name, real_data, split="test")
        train = build_task(name, real_data, split="train")
        key = "user" if name.startswith("rec") else "query_id"
        assert not {e.meta[key] for e in test.examples} & {e.meta[key] for e in train.examples}
        print(f"\n{name}: train {len(train)}, test {len(test)}")
    tr = build_task("router-cost", real_data, split="train")
    assert tr.metadata["dropped_train_overlap_with_test"] == 119
    assert len(tr) == 5608 - 119


@pytest.mark.parametrize("objective, expected", [("performance", 73.4), ("balance", 83.4), ("cost", 86.3)])
def test_real_router_cheapest_first_baseline(real_data, objective, expected):
    """The honest routing baseline (README, benchmark): ordering the LLMs by price alone (ties by name)."""
    td = build_task(f"router-{objective}", real_data)
    prices = {n: p for n, p in td.metadata["prices"].items()}
    rr = []
    for ex in td.examples:
        order = sorted(ex.candidate_ids, key=lambda n: (prices[n], n))
        rr.append(1.0 / (order.index(ex.best_id()) + 1))
    mrr = 100 * sum(rr) / len(rr)
    print(
        f"\nrouter-{objective}: cheapest-first MRR x100 = {mrr:.1f}; informative {td.metadata['n_informative']}"
    )
    assert mrr == pytest.approx(expected, abs=0.1)
    assert td.metadata["n_informative"] == 367


def test_real_loaders(real_data):
    from iranker.data.amazon import load_llmrank, load_r3_csv, load_r3_info
    from iranker.data.movielens import load_recbole, load_recbole_items, load_unisrec
    from iranker.data.routing import load_llm_info

    ml = load_unisrec(real_data / "rec_movie/ml-1m_unisrec")
    assert len(ml.histories) == 6040 and len(ml.titles) == 3416
    assert max(len(h) for h in ml.histories.values()) == 50
    assert len(load_recbole_items(real_data / "rec_movie/ml-1m_unisrec/ml-1m.item.llmrank")) == 3883
    ml100k = load_recbole(real_data / "rec_movie/ml-100k_recbole/ml-100k.inter")
    assert len(ml100k.histories) == 943 and ml100k.titles["1"] == "Toy Story (1995)"
    games = load_llmrank(real_data / "rec_game/Games-6k")
    assert len(games.titles) == 16859 and not any("&amp;" in t for t in games.titles.values())
    info = load_r3_info(next((real_data / "rec_music/cds_d3_r3").glob("info.*.txt")))
    assert 5841 - len(info) >= 29  # the <span junk (and a couple of '" />' fragments)
    cds = load_r3_csv(next((real_data / "rec_music/cds_d3_r3").glob("test.*.csv")))
    assert max(len(h) for h in cds.histories.values()) == 10
    popsteer = load_recbole_items(real_data / "rec_music/cds_popsteer/Amazon_CDs_and_Vinyl.item")
    assert len(popsteer) > 1000
    gr = load_llm_info(real_data / "router/graphrouter_queries/LLM_Descriptions_v1.json")
    assert len(gr) == 10
