"""The choice-training objectives (``iranker.train.choice_objectives``) on tiny pools, no model.

The exclusion objective must give the *exact* policy gradient: for ``pi = softmax(s)`` and
``J = sum_a pi(a) r(a)`` with the paper's exclusion reward, ``-dJ/ds = d pi(best)/ds``, which
is ``pi_b (1[a=b] - pi_a)`` in closed form; both it and a central finite difference are
checked against autograd.
"""

from __future__ import annotations

import pytest

from iranker.rewards import exclusion_reward, pool_views, removal_reward
from iranker.train.choice_objectives import (
    exclusion_rewards,
    expected_reward_loss,
    graded_rewards,
    listwise_loss,
    step_loss,
)

torch = pytest.importorskip("torch")

POOL = ["a", "b", "c", "d"]
SCORES = [-1.3, -0.2, -2.5, -0.9]


def _grad(objective, scores, **kw):
    s = torch.tensor(scores, dtype=torch.float64, requires_grad=True)
    loss = step_loss(torch, objective, s, pool_ids=POOL, **kw)
    loss.backward()
    return float(loss), s.grad.tolist()


def test_exclusion_rewards_follow_the_one_rule():
    assert exclusion_rewards(POOL, ["b"]) == [1.0, 0.0, 1.0, 1.0]
    # the text reward applies the same rule to a parsed answer
    views = pool_views([{"id": c, "label": f"[{i + 1}]", "text": f"text {c}"} for i, c in enumerate(POOL)])
    for i, c in enumerate(POOL):
        assert exclusion_reward(f"<answer>[{i + 1}]</answer>", views, ["b"]) == removal_reward(c, ["b"])


def test_exclusion_loss_is_minus_the_exact_expected_reward_and_its_gradient_is_closed_form():
    loss, grad = _grad("exclusion", SCORES, best=["b"])
    pi = torch.softmax(torch.tensor(SCORES, dtype=torch.float64), dim=0).tolist()
    assert loss == pytest.approx(-(1 - pi[1]), abs=1e-12)  # J = 1 - pi(best)
    b = 1
    closed = [pi[b] * ((1.0 if a == b else 0.0) - pi[a]) for a in range(len(POOL))]  # d pi_b / d s_a
    assert grad == pytest.approx(closed, abs=1e-12)


@pytest.mark.parametrize(
    "objective,kw",
    [
        ("exclusion", {"best": ["b"]}),
        ("exclusion", {"best": ["b", "d"]}),  # tied best candidates
        ("graded", {"best": ["b"], "grades": [1.0, 4.0, 0.0, 2.0]}),
        ("listwise", {"best": ["b"]}),
    ],
)
def test_autograd_matches_a_central_finite_difference(objective, kw):
    _, grad = _grad(objective, SCORES, **kw)
    h = 1e-6
    for a in range(len(POOL)):
        up, down = list(SCORES), list(SCORES)
        up[a] += h
        down[a] -= h
        f_up = float(step_loss(torch, objective, torch.tensor(up, dtype=torch.float64), pool_ids=POOL, **kw))
        f_down = float(
            step_loss(torch, objective, torch.tensor(down, dtype=torch.float64), pool_ids=POOL, **kw)
        )
        assert grad[a] == pytest.approx((f_up - f_down) / (2 * h), abs=1e-7)


def test_descending_the_exclusion_loss_lowers_pi_best():
    s = torch.tensor(SCORES, dtype=torch.float64, requires_grad=True)
    before = float(torch.softmax(s, 0)[1])
    for _ in range(50):
        loss = step_loss(torch, "exclusion", s, pool_ids=POOL, best=["b"])
        (g,) = torch.autograd.grad(loss, s)
        s = (s - 1.0 * g).detach().requires_grad_(True)
    assert float(torch.softmax(s, 0)[1]) < before / 2


def test_graded_rewards_scale_from_best_to_worst():
    assert graded_rewards([3.0, 1.0, 2.0]) == [0.0, 1.0, 0.5]
    assert graded_rewards([1.0, 1.0]) == [0.0, 0.0]
    # one relevant item (recommendation): graded == exclusion
    assert graded_rewards([0.0, 1.0, 0.0]) == exclusion_rewards(["x", "y", "z"], ["y"])


def test_expected_reward_loss_with_uniform_scores():
    loss = expected_reward_loss(torch, torch.zeros(4), [1.0, 0.0, 1.0, 1.0])
    assert float(loss) == pytest.approx(-0.75)


def test_listwise_wants_the_best_least_likely_named():
    good = float(listwise_loss(torch, torch.tensor([0.0, -5.0, 0.0]), [False, True, False]))
    bad = float(listwise_loss(torch, torch.tensor([-5.0, 0.0, 0.0]), [False, True, False]))
    assert good < 0.05 < 1.0 < bad
    with pytest.raises(ValueError, match="best"):
        listwise_loss(torch, torch.zeros(2), [False, False])


def test_unknown_objective_and_missing_grades_are_errors():
    with pytest.raises(ValueError, match="objective must be one of"):
        step_loss(torch, "ppo", torch.zeros(2), pool_ids=["a", "b"], best=["a"])
    with pytest.raises(ValueError, match="grades"):
        step_loss(torch, "graded", torch.zeros(2), pool_ids=["a", "b"], best=["a"])
