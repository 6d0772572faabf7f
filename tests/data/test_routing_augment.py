"""Aliased / re-priced routing rows: names never leak, prices and labels agree, one utility."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import LLM_PRICES
from iranker.data.routing import grades_from_order, price_from, routing_order, utility
from iranker.data.routing_augment import (
    PRICE_LADDER,
    RoutingAugment,
    augment_routing_example,
    make_aliases,
    relabel_routing,
    strip_price_sentences,
)
from iranker.data.step_transforms import augment_routing, teacher_relabel
from iranker.data.tasks import HELD_OUT_LLMS, build_task
from iranker.rankers.knn import CheapestFirstRanker
from iranker.scenarios import get_scenario
from iranker.scenarios.routing import OBJECTIVE_WEIGHTS, price_rank_text
from iranker.types import Candidate, RankingExample


def test_price_sentences_are_dropped_and_decimals_do_not_split():
    text = (
        "Qwen2.5-7B-Instruct is an upgraded model. It is competitively priced at $0.30 per million "
        "input tokens. Mistral-7B-Instruct-v0.3 is fast."
    )
    assert (
        strip_price_sentences(text)
        == "Qwen2.5-7B-Instruct is an upgraded model. Mistral-7B-Instruct-v0.3 is fast."
    )
    assert strip_price_sentences("Cheap and cheerful. Good at maths.") == "Good at maths."
    assert strip_price_sentences("") == ""


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_stripping_never_keeps_a_dollar_sign(text):
    out = strip_price_sentences(text)
    assert "$" not in out
    assert len(out) <= len(" ".join(text.split()))


def test_aliases_are_distinct_and_seeded():
    names = [f"llm-{i}" for i in range(50)]
    a = make_aliases(names, random.Random(3))
    assert len(set(a.values())) == 50 and all(re.fullmatch(r"model-[a-z0-9]{4}", v) for v in a.values())
    assert a == make_aliases(names, random.Random(3))


@pytest.mark.parametrize("obj", ["performance", "balance", "cost"])
def test_augmented_example_hides_names_and_is_relabelled_by_the_routing_utility(shared_root, obj):
    td = build_task(f"router-{obj}", shared_root)
    scenario = get_scenario("routing")
    w = OBJECTIVE_WEIGHTS[obj]
    for i, ex in enumerate(td.examples):
        aug = augment_routing_example(ex, random.Random(i), w)
        prompt = scenario.eliminate_prompt(aug, aug.candidate_ids)[1]["content"]
        prompt = prompt.split("Candidates:", 1)[1]  # the fixture's queries name LLMs themselves
        for real in LLM_PRICES:  # no real name anywhere in what the model sees, nor in the ids
            assert not re.search(rf"\b{re.escape(real)}\b", prompt, re.IGNORECASE), (real, prompt)
            assert real not in aug.candidate_ids
        assert "Priced at" not in prompt  # the description's price sentence is gone
        # quality travels with the LLM; labels come from the new prices by the one rule
        back = aug.meta["aliases_of"]
        assert {back[a]: q for a, q in aug.meta["scores"].items()} == ex.meta["scores"]
        cost = {c.id: price_from(c.meta["input_price"], c.meta["output_price"]) for c in aug.candidates}
        order = routing_order(utility(aug.meta["scores"], cost, w), cost)
        assert aug.relevance == grades_from_order(order) and aug.best_id() == order[0]
        assert all(c.meta["input_price"] in PRICE_LADDER for c in aug.candidates)


def test_cheap_looking_name_with_a_high_price_is_ranked_by_its_price(shared_root):
    # Q1: every LLM fails, so the cheapest is best under every objective
    ex = next(e for e in build_task("router-cost", shared_root).examples if e.query.startswith("Q1"))
    for seed in range(20):
        aug = augment_routing_example(ex, random.Random(seed), 0.2)
        cheapest_first = CheapestFirstRanker().fit([]).rank([aug])[0].order
        assert aug.best_id() == cheapest_first[0]  # the same rule the baseline uses
        gemma_alias = {v: k for k, v in aug.meta["aliases_of"].items()}["gemma"]
        gemma_price = aug.candidate(gemma_alias).meta["input_price"]
        if gemma_price > min(c.meta["input_price"] for c in aug.candidates):
            assert aug.best_id() != gemma_alias


def test_prices_only_keeps_names_and_aliases_only_keeps_prices(shared_root):
    ex = build_task("router-balance", shared_root).examples[0]
    names_kept = augment_routing_example(ex, random.Random(0), 0.5, RoutingAugment(aliases=False))
    assert names_kept.candidate_ids == ex.candidate_ids
    prices_kept = augment_routing_example(ex, random.Random(0), 0.5, RoutingAugment(prices=False))
    assert [c.meta["input_price"] for c in prices_kept.candidates] == [
        c.meta["input_price"] for c in ex.candidates
    ]
    back = prices_kept.meta["aliases_of"]
    assert {back[a]: u for a, u in prices_kept.meta["utility"].items()} == ex.meta["utility"]
    # the same order up to the name tie-break (aliases sort differently from the real names)
    key = {back[a]: (-u, ex.meta["cost"][back[a]]) for a, u in prices_kept.meta["utility"].items()}
    order = sorted(prices_kept.relevance, key=lambda a: -prices_kept.relevance[a])
    assert [key[back[a]] for a in order] == sorted(key.values())


def test_relabel_refuses_an_example_without_scores():
    ex = RankingExample("x", "routing", "q", [Candidate("a", "A")], {"a": 1.0}, {})
    with pytest.raises(ValueError, match="scores"):
        relabel_routing(ex, {"a": 1.0}, 0.5)


def test_augment_copies_have_their_own_ids_and_other_scenarios_pass_through(shared_root):
    routing = build_task("router-cost", shared_root).examples[:2]
    rec = RankingExample("r", "recommendation", "h", [Candidate("a", "A")], {"a": 1.0})
    out = augment_routing(routing + [rec], RoutingAugment(), copies=3, seed=1)
    assert [e.id for e in out[:3]] == [f"{routing[0].id}#aug{k}" for k in range(3)] and out[-1] is rec
    assert out[0].candidate_ids != out[1].candidate_ids  # a new draw per copy
    assert augment_routing(routing, RoutingAugment(), seed=1)[0].candidate_ids == out[0].candidate_ids


def test_price_rank_words_follow_the_prices_and_ignore_the_pool():
    def c(i, p):
        return Candidate(f"m{i}", "d", {"input_price": p, "output_price": p})

    ex = RankingExample("x", "routing", "q", [c(0, 0.5), c(1, 0.1), c(2, 3.0), c(3, 0.5)])
    words = [price_rank_text(ex, cand) for cand in ex.candidates]
    assert words == [
        " It is tied for the 2nd cheapest of the 4 LLMs.",
        " It is the cheapest of the 4 LLMs.",
        " It is the most expensive of the 4 LLMs.",
        " It is tied for the 2nd cheapest of the 4 LLMs.",
    ]
    scenario = get_scenario("routing")
    full = scenario.eliminate_prompt(ex, ex.candidate_ids)[1]["content"]
    part = scenario.eliminate_prompt(ex, ["m0", "m2"])[1]["content"]
    assert "[3] m2: d Price: $3 per million tokens. It is the most expensive of the 4 LLMs." in full
    assert "[3] m2: d Price: $3 per million tokens. It is the most expensive of the 4 LLMs." in part
    no_price = RankingExample("y", "routing", "q", [Candidate("a", "d"), Candidate("b", "d")])
    assert price_rank_text(no_price, no_price.candidates[0]) == ""


def test_held_out_llm_tasks(shared_root):
    tr = build_task("router-heldout-cost", shared_root, split="train")
    te = build_task("router-heldout-cost", shared_root, split="test")
    # the fixture's names differ from dcrouter's: nothing is held out there, and the task says so
    assert tr.metadata.get("held_out_llms") is None and len(tr.examples[0].candidates) == 9
    assert set(HELD_OUT_LLMS) == {"gemma-2-9b-it", "mistral-7b-instruct-v0.3", "llama3-chatqa-1.5-70b"}
    assert len(te.examples) == 6


def test_held_out_llm_tasks_on_the_real_data(real_data):
    tr = build_task("router-heldout-balance", real_data, split="train", limit=50)
    te = build_task("router-heldout-balance", real_data, split="test", limit=50)
    assert all(not set(HELD_OUT_LLMS) & set(e.candidate_ids) for e in tr.examples)
    assert all(len(e.candidates) == 6 for e in tr.examples)
    assert all(set(HELD_OUT_LLMS) <= set(e.candidate_ids) for e in te.examples)
    assert te.metadata["held_out_llms"] == list(HELD_OUT_LLMS)
    assert te.metadata["best_is_held_out"] == sum(e.best_id() in HELD_OUT_LLMS for e in te.examples)


def test_teacher_relabel_keeps_true_labels():
    ex = RankingExample(
        "r",
        "recommendation",
        "Toy Story; Aladdin",
        [
            Candidate("a", "Heat (1995)"),
            Candidate("b", "Toy Story 2 (1999)"),
            Candidate("c", "Casino (1995)"),
        ],
        {"a": 1.0},
        {"history": ["Toy Story", "Aladdin"]},
    )
    (out,) = teacher_relabel([ex], "bm25")
    assert out.meta["true_relevance"] == {"a": 1.0} and out.meta["teacher"] == "bm25"
    assert out.best_id() == "b" and sorted(out.relevance.values()) == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="teacher"):
        teacher_relabel([ex], "oracle")
