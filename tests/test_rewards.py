"""Rewards, with regression tests for the defects of the paper's own code (see docs/ARCHITECTURE.md and iranker.rewards)."""

import json

import pytest

from iranker.parsing import CandidateView
from iranker.rewards import (
    RewardConfig,
    compute_score,
    exclusion_reward,
    format_reward,
    make_trl_reward,
    ranking_reward,
    step_reward,
)

POOL = [
    CandidateView("d1", "[1]", "Paris is the capital of France."),
    CandidateView("d2", "[2]", "Berlin is in Germany."),
    CandidateView("d3", "[3]", "Bananas are yellow."),
]
POOL_ROWS = [{"id": c.id, "label": c.label, "text": c.text} for c in POOL]
GOOD = "<think>bananas are unrelated</think><answer>[3]</answer>"


def test_exclusion_reward_values():
    assert exclusion_reward(GOOD, POOL, ["d1"]) == 1.0
    assert exclusion_reward("<think>x</think><answer>[1]</answer>", POOL, ["d1"]) == 0.0
    assert exclusion_reward("<think>x</think><answer>[9]</answer>", POOL, ["d1"]) == -0.5
    assert exclusion_reward("no tags at all", POOL, ["d1"]) == -0.5


def test_ties_in_best_count_as_best():
    assert exclusion_reward("<answer>[2]</answer>", POOL, ["d1", "d2"]) == 0.0


def test_format_reward():
    assert format_reward(GOOD) == 0.0
    assert format_reward("<answer>[3]</answer>") == -1.0
    assert format_reward(GOOD + GOOD) == -1.0
    assert step_reward(GOOD, POOL, ["d1"]) == 1.0
    assert step_reward("<answer>[3]</answer>", POOL, ["d1"], RewardConfig(format_weight=0.5)) == 0.5


def test_regression_format_reward_ignores_the_prompt():
    """Paper bug: reward on prompt+response made the format reward always -1."""
    prompt = [
        {"role": "system", "content": "Think in <think>...</think> then answer in <answer>...</answer>."},
        {"role": "user", "content": "Which passage is least relevant? <answer>[k]</answer>"},
    ]
    fn = make_trl_reward("format")
    assert fn(prompts=[prompt], completions=[[{"role": "assistant", "content": GOOD}]]) == [0.0]


def test_regression_ranking_reward_uses_candidate_order_not_characters():
    """Paper bug: NDCG iterated the characters of a string."""
    rel = {"d1": 2.0, "d2": 1.0}
    best = ranking_reward("<think>x</think><answer>[1] > [2] > [3]</answer>", POOL, rel)
    worst = ranking_reward("<think>x</think><answer>[3] > [2] > [1]</answer>", POOL, rel)
    assert best == pytest.approx(1.0)
    assert worst < best
    with pytest.raises(TypeError):
        make_trl_reward("ranking")(
            completions=["<answer>[1]</answer>"], pool=["d1 d2 d3"], relevance=[json.dumps(rel)]
        )


def test_ranking_reward_penalises_missing_and_duplicates():
    rel = {"d1": 1.0}
    full = ranking_reward("<answer>[1] > [2] > [3]</answer>", POOL, rel)
    partial = ranking_reward("<answer>[1] > [1]</answer>", POOL, rel)
    assert full == pytest.approx(1.0)
    assert partial == pytest.approx(1.0 - 0.5 * 3 / 3)  # 2 missing + 1 duplicate of 3


def test_regression_passage_ids_are_compared_as_ids_not_texts():
    """Paper bug: ground-truth passage ids were compared with passage texts."""
    answer_with_text = "<think>x</think><answer>Bananas are yellow.</answer>"
    assert exclusion_reward(answer_with_text, POOL, ["d3"]) == 0.0  # named the best by its text
    with pytest.raises(ValueError, match="not in the pool"):
        exclusion_reward(GOOD, POOL, ["Bananas are yellow."])


def test_trl_adapter_chat_completions_and_columns():
    fn = make_trl_reward("step")
    assert fn.__name__ == "iranker_step_reward"
    comps = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "[1]"}]]
    out = fn(
        prompts=[[], []],
        completions=comps,
        pool=[POOL_ROWS, POOL_ROWS],
        best=[["d1"], ["d1"]],
        task=["passage-5"] * 2,
    )
    assert out == [1.0, -1.5]


def test_verl_compute_score():
    gt = json.dumps({"kind": "step", "pool": POOL_ROWS, "best": ["d1"]})
    assert compute_score("passage-5", GOOD, gt, {"index": 0}) == 1.0
    gt_rank = {"kind": "ranking", "pool": POOL_ROWS, "relevance": {"d1": 1}, "reward": {"missing_penalty": 0}}
    assert compute_score("passage-5", "<answer>[1]</answer>", gt_rank) == pytest.approx(1.0)


def test_reward_config_rejects_unknown():
    with pytest.raises(ValueError, match="unknown reward settings"):
        RewardConfig.from_dict({"format_wieght": 1})


def test_trl_adapter_judges_prefilled_reply_start_plus_completion():
    """With ``response_prefix`` the prompt ends in an open assistant message ("<think>") that
    TRL continues; the reward must judge prefix + completion, and never the user prompt."""
    fn = make_trl_reward("step")
    user = {"role": "user", "content": GOOD * 3}  # a well-formed example inside the prompt changes nothing
    prefilled = [user, {"role": "assistant", "content": "<think>"}]
    cont = [{"role": "assistant", "content": "bananas are unrelated</think><answer>[3]</answer>"}]
    assert fn(prompts=[prefilled], completions=[cont], pool=[POOL_ROWS], best=[["d1"]]) == [1.0]
    # the same continuation without the prefill is malformed (no opening <think>)
    assert fn(prompts=[[user]], completions=[cont], pool=[POOL_ROWS], best=[["d1"]]) == [0.0]
    # plain-text prompts (non-conversational TRL datasets) carry no prefill
    assert fn(prompts=["<think>"], completions=[cont[0]["content"]], pool=[POOL_ROWS], best=[["d1"]]) == [0.0]


def test_stop_at_answer_judges_the_reply_a_ranker_would_see():
    """Backends stop right after the first </answer>; TRL's generation writes on. With
    stop_at_answer the reward judges the text up to that tag, else the whole completion."""
    from iranker.rewards import cut_after_answer

    rambling = GOOD + " and then <answer>[1]</answer> more"
    assert cut_after_answer(rambling) == GOOD and cut_after_answer("no tags") == "no tags"
    cut = make_trl_reward("step", stop_at_answer=True)
    whole = make_trl_reward("step")
    cols = dict(pool=[POOL_ROWS], best=[["d1"]])
    assert cut(prompts=[[]], completions=[rambling], **cols) == [1.0]
    assert whole(prompts=[[]], completions=[rambling], **cols) == [-1.0]  # malformed, answer [1] is the best


def test_trl_and_verl_give_one_completion_the_same_reward():
    """`iranker train` (TRL, stop_at_answer on by default) and verl's compute_score judge the
    same reply the same way, including text written after the first </answer>."""
    from iranker.train.config import TrainConfig
    from iranker.train.grpo_trainer import reward_functions

    [trl_reward], _ = reward_functions(TrainConfig())
    gt = json.dumps({"kind": "step", "pool": POOL_ROWS, "best": ["d1"]})
    replies = [
        GOOD,
        GOOD + " and then <answer>[1]</answer> more",
        "<think>x</think><answer>[1]</answer>",
        "[3]",
        "",
        "<think>x</think><answer>[9]</answer>",
        "<think>x</think><answer>Bananas are yellow.</answer>",
    ]
    got_trl = trl_reward(
        prompts=[[]] * len(replies),
        completions=replies,
        pool=[POOL_ROWS] * len(replies),
        best=[["d1"]] * len(replies),
    )
    got_verl = [compute_score("passage-5", r, gt) for r in replies]
    assert got_trl == got_verl
    assert got_trl[:3] == [1.0, 1.0, 0.0]  # the trailing answer is not read; naming the best earns 0
    # a ground truth may ask for the whole reply (the paper's reward)
    whole = json.dumps({"kind": "step", "pool": POOL_ROWS, "best": ["d1"], "stop_at_answer": False})
    assert compute_score("passage-5", replies[1], whole) == -1.0


def test_best_column_is_read_in_one_place():
    from iranker.rewards import read_best

    assert (
        read_best("d1") == ["d1"]
        and read_best('["d1", "d2"]') == ["d1", "d2"]
        and read_best(["d3"]) == ["d3"]
    )
