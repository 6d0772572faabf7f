import pytest

from iranker.llm import ScriptedLLM
from iranker.rankers import IterativeRanker, UnparsableAnswerError
from iranker.types import Candidate, RankingExample


def example(n=4, eid="q", scenario="passage"):
    return RankingExample(
        eid, scenario, "query", [Candidate(f"c{i}", f"candidate text {i}") for i in range(n)], {"c0": 1}
    )


def test_order_is_reverse_of_removal_and_steps_recorded():
    llm = ScriptedLLM.eliminate_last()
    [r] = IterativeRanker(llm, show_progress=False).rank([example(4)])
    assert [s.removed for s in r.steps] == ["c3", "c2", "c1"]
    assert r.order == ["c0", "c1", "c2", "c3"]
    assert [len(s.pool) for s in r.steps] == [4, 3, 2]
    assert all(s.valid and s.how_matched == "label" for s in r.steps)
    assert r.usage.calls == 3 and r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0


def test_one_backend_call_per_round_for_the_whole_batch():
    llm = ScriptedLLM.eliminate_first()
    exs = [example(5, "a"), example(3, "b"), example(4, "c")]
    rankings = IterativeRanker(llm, batch_size=8, show_progress=False).rank(exs)
    # rounds: 4 (longest example has 5 candidates); batch widths shrink as examples finish
    assert [len(batch) for batch in llm.calls] == [3, 3, 2, 1]
    assert [r.example_id for r in rankings] == ["a", "b", "c"]
    assert rankings[1].order == ["c2", "c1", "c0"]


def test_batch_size_splits_examples():
    llm = ScriptedLLM.eliminate_last()
    IterativeRanker(llm, batch_size=2, show_progress=False).rank([example(3, str(i)) for i in range(5)])
    assert max(len(b) for b in llm.calls) == 2


def test_reask_then_valid_answer_is_recorded_with_attempts():
    answers = iter(["I don't know", "<think>ok</think><answer>[2]</answer>", "<answer>[1]</answer>"])
    llm = ScriptedLLM(lambda m: next(answers))
    [r] = IterativeRanker(llm, show_progress=False).rank([example(3)])
    first = r.steps[0]
    assert first.removed == "c1" and first.valid and first.attempts == 2
    # the re-ask turn carried the invalid answer and the list of remaining labels
    reask_prompt = llm.calls[1][0]
    assert reask_prompt[-2] == {"role": "assistant", "content": "I don't know"}
    assert "[1], [2], [3]" in reask_prompt[-1]["content"]


def test_fallback_closest_is_explicit():
    llm = ScriptedLLM(lambda m: "maybe candidate text 2 is bad, not sure")
    [r] = IterativeRanker(llm, reask=0, show_progress=False).rank([example(3)])
    assert r.steps[0].removed == "c2"
    assert not r.steps[0].valid and r.steps[0].how_matched == "fallback:closest"
    assert r.valid_rate == 0.0
    assert sorted(r.order) == ["c0", "c1", "c2"]


@pytest.mark.parametrize("policy", ["last", "random"])
def test_other_fallbacks_give_permutations(policy):
    llm = ScriptedLLM(lambda m: "???")
    [r] = IterativeRanker(llm, fallback=policy, reask=0, show_progress=False).rank([example(5)])
    assert sorted(r.order) == [f"c{i}" for i in range(5)]
    assert all(s.how_matched == f"fallback:{policy}" for s in r.steps)
    again = IterativeRanker(ScriptedLLM(lambda m: "???"), fallback=policy, reask=0, show_progress=False).rank(
        [example(5)]
    )
    assert again[0].order == r.order


def test_fallback_error_raises():
    with pytest.raises(UnparsableAnswerError, match="named no candidate"):
        IterativeRanker(ScriptedLLM(lambda m: "???"), fallback="error", reask=0, show_progress=False).rank(
            [example(3)]
        )


def test_eliminated_candidate_cannot_be_named_again():
    # always answers [3]: valid once, then [3] is gone and the fallback must decide
    llm = ScriptedLLM(lambda m: "<answer>[3]</answer>")
    [r] = IterativeRanker(llm, reask=0, fallback="last", show_progress=False).rank([example(3)])
    assert r.steps[0].removed == "c2" and r.steps[0].valid
    assert not r.steps[1].valid and r.steps[1].how_matched == "fallback:last"


def test_choice_decode_uses_logprobs_and_always_valid():
    # score: prefer (as "worst") the candidate with the highest label number
    def lp(messages, choice):
        return float(choice.strip("<answer>[]"))

    llm = ScriptedLLM(lambda m: "", logprob_fn=lp)
    [r] = IterativeRanker(llm, decode="choice", show_progress=False).rank([example(4)])
    assert [s.removed for s in r.steps] == ["c3", "c2", "c1"]
    assert all(s.valid and s.how_matched == "choice" for s in r.steps)


def test_choice_steps_record_the_probability_of_each_pool_member_being_named_worst():
    import math

    def lp(messages, choice):  # log-probabilities 0, -1, -2, ... by label: [1] most likely "worst"
        return -float(choice.strip("<answer>[]")) + 1

    llm = ScriptedLLM(lambda m: "", logprob_fn=lp)
    [r] = IterativeRanker(llm, decode="choice", show_progress=False).rank([example(3)])
    first, second = r.steps
    assert first.pool == ["c0", "c1", "c2"] and first.removed == "c0"
    z = 1 + math.exp(-1) + math.exp(-2)
    assert first.probs == pytest.approx([1 / z, math.exp(-1) / z, math.exp(-2) / z], abs=1e-6)
    assert second.pool == ["c1", "c2"] and second.probs == pytest.approx(
        [1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))], abs=1e-6
    )
    # the removed candidate is the most probable one; the trace carries the numbers
    assert max(range(3), key=first.probs.__getitem__) == first.pool.index(first.removed)
    assert r.to_dict()["steps"][0]["probs"] == first.probs


def test_generated_steps_have_no_probabilities_and_do_not_claim_any():
    [r] = IterativeRanker(ScriptedLLM.eliminate_last(), show_progress=False).rank([example(3)])
    assert all(s.probs is None for s in r.steps)
    assert all("probs" not in d for d in r.to_dict()["steps"])


def test_single_candidate_needs_no_call():
    llm = ScriptedLLM.eliminate_last()
    ex = RankingExample("one", "passage", "q", [Candidate("a", "x")])
    [r] = IterativeRanker(llm, show_progress=False).rank([ex])
    assert r.order == ["a"] and not r.steps and not llm.calls


def test_mixed_scenarios_in_one_batch():
    llm = ScriptedLLM.eliminate_last()
    rec = RankingExample(
        "u",
        "recommendation",
        "",
        [Candidate("i1", "Heat"), Candidate("i2", "Fargo")],
        meta={"history": ["Alien"]},
    )
    route = RankingExample(
        "r",
        "routing",
        "q",
        [Candidate("m1", "d1", {"name": "m1"}), Candidate("m2", "d2", {"name": "m2"})],
        meta={"objective": "cost"},
    )
    out = IterativeRanker(llm, show_progress=False).rank([rec, route, example(2)])
    assert [r.order for r in out] == [["i1", "i2"], ["m1", "m2"], ["c0", "c1"]]
    assert len(llm.calls) == 1 and len(llm.calls[0]) == 3


def prefilled_templates(prefix="<think>"):
    from iranker.scenarios import PromptTemplate, get_scenario

    t = get_scenario("passage").template
    return {"passage": PromptTemplate.from_dict({**t.to_dict(), "response_prefix": prefix})}


def test_prefilled_reply_is_continued_and_parsed_whole():
    """With a response prefix the backend sees an open assistant message and returns only the
    continuation; the ranker parses prefix + continuation, so a well-formed step is recorded."""
    from iranker.llm.scripted import shown_labels

    llm = ScriptedLLM(lambda m: f"the last one fits least</think><answer>{shown_labels(m)[-1]}</answer>")
    [r] = IterativeRanker(llm, templates=prefilled_templates(), show_progress=False).rank([example(3)])
    assert all(p[-1] == {"role": "assistant", "content": "<think>"} for batch in llm.calls for p in batch)
    assert [s.removed for s in r.steps] == ["c2", "c1"]
    assert all(s.valid and s.raw.startswith("<think>the last") for s in r.steps)
    assert r.steps[0].thought == "the last one fits least"


def test_reask_after_prefilled_reply_replaces_the_open_message_and_reopens_it():
    answers = iter(
        ["no idea", "<think>ok</think><answer>[2]</answer>", "<think>x</think><answer>[1]</answer>"]
    )
    llm = ScriptedLLM(lambda m: next(answers))
    [r] = IterativeRanker(llm, templates=prefilled_templates(), show_progress=False).rank([example(3)])
    reask = llm.calls[1][0]
    assert [m["role"] for m in reask] == ["system", "user", "assistant", "user", "assistant"]
    assert reask[2]["content"] == "<think>no idea" and reask[-1]["content"] == "<think>"
    # the scripted reply repeated the prefill; like a real model, only the continuation counts once
    assert r.steps[0].removed == "c1" and r.steps[0].raw == "<think>ok</think><answer>[2]</answer>"


def test_an_abandoned_example_stops_at_the_next_round_and_the_others_finish():
    from iranker.llm import ScriptedLLM
    from iranker.rankers import IterativeRanker
    from iranker.types import Candidate, RankingExample

    def ex(i):
        return RankingExample(
            id=f"e{i}",
            scenario="passage",
            query="q",
            candidates=[Candidate(f"c{j}", f"text {j}") for j in range(6)],
        )

    llm = ScriptedLLM.eliminate_last()
    ranker = IterativeRanker(llm, decode="generate", reuse="none", batch_size=2, show_progress=False)
    rounds = {"n": 0}

    def abandoned(example):
        rounds["n"] += example.id == "e0"
        return example.id == "e0" and rounds["n"] > 2  # e0's caller leaves after two rounds

    gone, kept = ranker.rank([ex(0), ex(1)], abandoned=abandoned)
    assert len(gone.steps) == 2 and gone.meta == {"abandoned": True}
    assert sorted(gone.order) == sorted(c.id for c in ex(0).candidates)
    assert len(kept.steps) == 5 and kept.meta == {}
    assert kept.order == ranker.rank([ex(1)])[0].order
