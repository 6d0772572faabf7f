"""Task builders on miniature sources: shapes, seeds, negatives, routing ties, passage pools."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import (
    LLM_PRICES,
    write_amazon_2018,
    write_graphrouter,
    write_movielens_dat,
    write_msmarco,
)
from iranker.data.io import example_from_record, read_examples
from iranker.data.splits import hash_unit, rng_for, sample_keys, split_of
from iranker.data.tasks import TASKS, SourceNotFound, build_task, list_tasks

REC = ["rec-movie", "rec-game"]


def _all_splits(name, root, **kw):
    return {s: build_task(name, root, split=s, **kw) for s in TASKS[name].splits}


def test_registry_has_the_ten_tasks():
    assert list_tasks() == [
        "rec-movie",
        "rec-music",
        "rec-game",
        "router-performance",
        "router-balance",
        "router-cost",
        "router-heldout-performance",
        "router-heldout-balance",
        "router-heldout-cost",
        "passage-5",
        "passage-7",
        "passage-9",
        "trec-dl19",
    ]


def test_splits_helpers():
    assert split_of("u1", seed=0, test_fraction=0.2) == split_of("u1", seed=0, test_fraction=0.2)
    share = sum(split_of(str(i), seed=0, test_fraction=0.2) == "test" for i in range(2000)) / 2000
    assert 0.17 < share < 0.23
    assert 0.0 <= hash_unit("a") < 1.0
    assert rng_for(1, "x").random() == rng_for(1, "x").random() != rng_for(2, "x").random()
    keys = list(range(50))
    s = sample_keys(keys, 5, seed=3)
    assert s == sorted(s) and len(s) == 5 and s == sample_keys(keys, 5, seed=3)
    assert sample_keys(keys, None, seed=3) == keys


@pytest.mark.parametrize("name", REC)
def test_rec_shapes_and_negatives(shared_root, name):
    from iranker.data.amazon import load_llmrank
    from iranker.data.movielens import load_unisrec

    data = (
        load_unisrec(shared_root / "rec_movie/ml-1m_unisrec")
        if name == "rec-movie"
        else load_llmrank(shared_root / "rec_game/Games-6k")
    )
    splits = _all_splits(name, shared_root, seed=0)
    users = {s: {e.meta["user"] for e in td.examples} for s, td in splits.items()}
    assert users["train"] and users["test"] and not users["train"] & users["test"]
    positions = Counter()
    for td in splits.values():
        for ex in td.examples:
            assert ex.scenario == "recommendation" and len(ex.candidates) == 20
            assert len(ex.meta["history"]) == 20 and ex.query == "\n".join(ex.meta["history"])
            target, history = data.target_and_history(ex.meta["user"])
            assert ex.relevance == {target: 1.0} and target in ex.candidate_ids
            assert ex.meta["history"] == [data.titles[i] for i in history][-20:]  # most recent, in order
            negatives = set(ex.candidate_ids) - {target}
            assert len(negatives) == 19 and not negatives & set(history)
            texts = [c.text.casefold() for c in ex.candidates]
            assert len(set(texts)) == 20 and not set(texts) & {h.casefold() for h in ex.meta["history"]}
            assert ex.meta["domain"] == {"rec-movie": "movie", "rec-game": "video game"}[name]
            positions[ex.candidate_ids.index(target)] += 1
            example_from_record(ex.to_dict())  # passes the JSONL validation
    assert len(positions) > 3  # the true item is not always in the same slot
    m = splits["test"].metadata
    assert m["n_examples"] == len(splits["test"]) and m["seed"] == 0 and "split_rule" in m
    assert sum(m["skipped"].values()) > 0  # the short-history users are skipped and counted


@pytest.mark.parametrize(
    "name", ["rec-movie", "rec-game", "rec-music", "router-balance", "passage-5", "trec-dl19"]
)
def test_seeds_reproducible_and_limit_is_a_subset(shared_root, name):
    a = build_task(name, shared_root, seed=7)
    b = build_task(name, shared_root, seed=7)
    assert [e.to_dict() for e in a.examples] == [e.to_dict() for e in b.examples]
    full = {e.id: e.to_dict() for e in a.examples}
    lim = build_task(name, shared_root, seed=7, limit=2)
    assert len(lim) == min(2, len(a)) and lim.metadata["limit"] == 2
    for e in lim.examples:  # an example does not depend on which others were built
        assert e.to_dict() == full[e.id]
    if name.startswith(("rec", "router", "passage")):
        c = build_task(name, shared_root, seed=8)
        assert [e.id for e in c.examples] == [e.id for e in a.examples]  # same split
        assert [e.candidate_ids for e in c.examples] != [e.candidate_ids for e in a.examples]


def test_rec_music_r3(shared_root):
    test = build_task("rec-music", shared_root, split="test")
    train = build_task("rec-music", shared_root, split="train")
    assert {e.meta["user"] for e in test.examples} == {"A", "C"}
    assert {e.meta["user"] for e in train.examples} == {"D", "E"}  # A is a test user
    assert train.metadata["users_dropped_overlap_with_test"] == 1
    a = next(e for e in test.examples if e.meta["user"] == "A")
    # 10 history items of which item 7 has a junk title -> 9 titles shown, no <span
    assert len(a.meta["history"]) == 9 and not any("<span" in h for h in a.meta["history"])
    assert a.relevance == {"13": 1.0} and len(a.candidates) == 20
    assert a.meta["domain"] == "music album"
    assert "7" not in a.candidate_ids
    assert any("<= 10" in n for n in test.metadata["notes"])


def test_rec_from_other_formats(tmp_path):
    # rec-movie from GroupLens .dat files (leave-one-out) with a small min_history
    root = tmp_path / "d"
    write_movielens_dat(root / "rec_movie" / "ml-1m")
    td = build_task("rec-movie", root, split="train", min_history=1, n_candidates=2, test_fraction=0.0)
    assert [e.relevance for e in td.examples] == [{"2": 1.0}]
    assert td.examples[0].meta["history"] == ["Toy Story (1995)", "Heat (1995)"]
    # rec-music from Amazon 2018 JSON lines
    root2 = tmp_path / "a"
    write_amazon_2018(root2 / "rec_music")
    td = build_task("rec-music", root2, split="test", n_candidates=2, test_fraction=1.0)
    assert len(td) == 0 and td.metadata["skipped"]  # U1's target A3 has a junk title


def test_router_tasks(shared_root):
    out = {obj: build_task(f"router-{obj}", shared_root) for obj in ("performance", "balance", "cost")}
    for obj, td in out.items():
        assert len(td) == 6
        for ex in td.examples:
            assert ex.scenario == "routing" and ex.meta["objective"] == obj
            assert len(ex.candidates) == 9 and set(ex.candidate_ids) == set(LLM_PRICES)
            for c in ex.candidates:
                assert c.meta["name"] == c.id and c.meta["input_price"] == LLM_PRICES[c.id]
                assert c.text.startswith(c.id)
            grades = sorted(ex.relevance.values())
            assert grades == [float(g) for g in range(1, 10)]  # unique, best = 9
            assert ex.best_id() == ex.meta["best"]
            example_from_record(ex.to_dict())
    best = {obj: {e.query: e.best_id() for e in td.examples} for obj, td in out.items()}
    p = best["performance"]
    assert p["Q1: all fail"] == "gemma"  # all tie -> cheapest
    assert p["Q2: only big ones right"] == "chatqa70"  # tie at 0.9 -> name
    assert p["Q3: two cheap ones right"] == "mistral"  # tie at 0.2 -> name
    assert p["Q4: partial"] == "chatqa70"
    assert best["cost"]["Q2: only big ones right"] == "gemma"  # 0.2*1 - 0.8*1 < 0
    assert best["cost"]["Q3: two cheap ones right"] == "mistral"  # 0.2 - 0.8*0.125 = 0.1 > 0
    m = out["balance"].metadata
    assert m["n_informative"] == 4 and m["weight"] == 0.5 and m["split_rule"]
    # train: drops the question that also occurs in test
    tr = build_task("router-balance", shared_root, split="train")
    assert len(tr) == 5 and tr.metadata["dropped_train_overlap_with_test"] == 1
    assert not {e.query for e in tr.examples} & {e.query for e in out["balance"].examples}


def test_router_balance_tie_detail(shared_root):
    # Q2 balance: chatqa70/nemotron51 u = 0.5 - 0.5*1 = 0; gemma u = 0 - 0 = 0 -> tie -> cheaper
    td = build_task("router-balance", shared_root)
    ex = next(e for e in td.examples if e.query.startswith("Q2"))
    assert ex.meta["utility"]["gemma"] == pytest.approx(0.0)
    assert ex.meta["utility"]["chatqa70"] == pytest.approx(0.0)
    assert ex.best_id() == "gemma"


def test_router_from_graphrouter(tmp_path):
    root = tmp_path / "d"
    write_graphrouter(root / "router" / "graphrouter")
    td = build_task("router-performance", root, split="test", test_fraction=1.0)
    assert len(td) == 2 and td.metadata["source"].startswith("graphrouter:")
    ex = next(e for e in td.examples if e.query == "What is 2+2?")
    assert ex.best_id() == "Qwen-1.5 (72b)" and ex.meta["task_id"] == "gsm8k"
    cheap = build_task("router-cost", root, split="test", test_fraction=1.0)
    assert next(e for e in cheap.examples if e.query == "What is 2+2?").best_id() == "LLaMA-3 (8b)"


@pytest.mark.parametrize("k", [5, 7, 9])
def test_passage_pools(shared_root, k):
    from iranker.data.passage import load_qrels

    qrels = load_qrels(shared_root / "passage/trec_dl/qrels_dl19.json")
    td = build_task(f"passage-{k}", shared_root)
    assert [e.meta["qid"] for e in td.examples] == ["101"]  # 102: no grade>=2; 103: too few zeros
    assert sum(td.metadata["skipped"].values()) == 2 and td.metadata["stand_in"]
    ex = td.examples[0]
    judged = qrels["101"]
    grades = [judged.get(c, None) for c in ex.candidate_ids]
    assert len(ex.candidates) == k and None not in grades  # only judged passages
    assert sum(g >= 2 for g in grades) == 1 and grades.count(0) == k - 1
    (pos,) = ex.relevance
    assert ex.relevance[pos] == judged[pos] >= 2
    example_from_record(ex.to_dict())
    with pytest.raises(SourceNotFound, match="MS MARCO"):
        build_task(f"passage-{k}", shared_root, split="train")
    with pytest.raises(ValueError, match="test only"):
        build_task(f"passage-{k}", shared_root, split="train", source="trec-dl19")


def test_passage_from_msmarco(tmp_path):
    root = tmp_path / "d"
    write_msmarco(root / "passage" / "msmarco_v1.1", "train")
    td = build_task("passage-5", root, split="train")
    # q2 has no selected passage, q3 has only 3 passages
    assert len(td) == 2 and td.metadata["skipped"]
    for ex in td.examples:
        assert len(ex.candidates) == 5 and len(ex.relevance) == 1
        (pos,) = ex.relevance
        assert ex.candidate(pos).text.endswith(f"passage {int(ex.meta['qid']) - 1000}")


def test_trec_dl19(shared_root):
    td = build_task("trec-dl19", shared_root)
    assert len(td) == 3 and td.metadata["metric"] == "nDCG@10"
    ex = td.examples[0]
    assert ex.candidate_ids == [f"101d{j}" for j in range(1, 13)]  # BM25 order, <= 20
    assert ex.relevance == {"101d3": 3.0, "101d5": 2.0, "101d2": 1.0}
    assert ex.meta["qrels"]["999"] == 3  # judged relevant, not retrieved: kept for trec-style nDCG
    assert build_task("trec-dl19", shared_root, depth=5).examples[0].candidate_ids[-1] == "101d5"
    with pytest.raises(ValueError, match="splits"):
        build_task("trec-dl19", shared_root, split="train")


def test_build_task_errors(shared_root, tmp_path):
    with pytest.raises(ValueError, match="unknown task 'rec-book'"):
        build_task("rec-book", shared_root)
    with pytest.raises(ValueError, match="has splits"):
        build_task("rec-movie", shared_root, split="dev")
    with pytest.raises(SourceNotFound):
        build_task("router-cost", tmp_path)
    with pytest.raises(SourceNotFound):
        build_task("rec-movie", tmp_path / "nope")


def test_taskdata_write_reads_back(shared_root, tmp_path):
    td = build_task("router-cost", shared_root, limit=3)
    meta_path = td.write(tmp_path / "out" / "router.jsonl")
    back = read_examples(tmp_path / "out" / "router.jsonl")
    assert [e.to_dict() for e in back] == [e.to_dict() for e in td.examples]
    assert '"split_rule"' in meta_path.read_text()
