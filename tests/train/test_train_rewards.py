"""The TRL reward functions of `iranker train`: values, logged metrics, shaping (no model)."""

from __future__ import annotations

from collections import defaultdict

from iranker.data.io import example_from_record
from iranker.data.steps import build_step_rows
from iranker.rewards import make_trl_reward, pool_views, step_reward
from iranker.train.config import TrainConfig
from iranker.train.grpo_trainer import format_shaping_score, reward_functions

from .conftest import TRAIN


def rows():
    exs = [example_from_record(r) for r in TRAIN]
    by_task = {}
    for e in exs:
        by_task.setdefault(e.meta["task"], []).append(e)
    return build_step_rows(by_task, seed=0)


def test_step_reward_matches_rewards_module_and_logs_rates():
    rs = rows()
    good, bad = [], []
    for r in rs:
        worse = next(c for c in r["pool"] if c["id"] not in r["best"])
        good.append([{"role": "assistant", "content": f"<think>t</think><answer>{worse['label']}</answer>"}])
        bad.append([{"role": "assistant", "content": "I cannot tell."}])
    logged = defaultdict(list)
    fn = make_trl_reward("step")
    columns = {k: [r[k] for r in rs] for k in ("pool", "best", "task")}
    out = fn(
        prompts=[r["prompt"] for r in rs],
        completions=good,
        log_metric=lambda k, v: logged[k].append(v),
        **columns,
    )
    assert out == [1.0] * len(rs)
    assert sum(logged["valid_rate"]) == len(rs) and sum(logged["format_rate"]) == len(rs)
    assert sum(logged["exclusion_accuracy"]) == len(rs)
    assert {k for k in logged if k.startswith("reward/")} == {
        "reward/passage-mini",
        "reward/router-mini",
        "reward/rec-mini",
    }
    logged.clear()
    out = fn(completions=bad, log_metric=lambda k, v: logged[k].append(v), **columns)
    assert (
        out
        == [step_reward("I cannot tell.", pool_views(r["pool"]), r["best"]) for r in rs]
        == [-1.5] * len(rs)
    )
    assert sum(logged["valid_rate"]) == 0 and sum(logged["format_rate"]) == 0
    # outside TRL there is no log_metric: still works
    assert fn(completions=good, **columns) == [1.0] * len(rs)


def test_format_shaping_gives_partial_credit_in_order():
    assert format_shaping_score("nothing") == 0.0
    assert format_shaping_score("<answer>[2]") == 0.25
    assert format_shaping_score("<answer>[2]</answer>") == 0.5
    assert format_shaping_score("<think>a</think><answer>[2]</answer>") == 1.0
    assert format_shaping_score("</answer><answer>") == 0.25


def test_reward_functions_and_weights():
    funcs, weights = reward_functions(TrainConfig())
    assert [f.__name__ for f in funcs] == ["iranker_step_reward"] and weights == [1.0]
    funcs, weights = reward_functions(TrainConfig(format_shaping_weight=0.5))
    assert [f.__name__ for f in funcs] == ["iranker_step_reward", "iranker_format_shaping"] and weights == [
        1.0,
        0.5,
    ]


def test_training_rewards_judge_the_reply_up_to_the_first_answer_by_default():
    rs = rows()[:3]
    columns = {k: [r[k] for r in rs] for k in ("pool", "best", "task")}
    comps = []
    for r in rs:
        worse = next(c for c in r["pool"] if c["id"] not in r["best"])
        comps.append(f"<think>t</think><answer>{worse['label']}</answer> and more text")
    on, shaping_on = reward_functions(TrainConfig(format_shaping_weight=0.5))[0]
    off, shaping_off = reward_functions(TrainConfig(format_shaping_weight=0.5, stop_at_answer=False))[0]
    assert on(completions=comps, **columns) == [1.0] * 3  # as a ranker sees it: well-formed
    assert off(completions=comps, **columns) == [0.0] * 3  # the paper's reward: the tail breaks the format
    assert shaping_on(completions=comps) == shaping_off(completions=comps) == [1.0] * 3
