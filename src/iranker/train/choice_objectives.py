"""Objectives of choice training: losses on the policy over a pool's labels.

The policy of one elimination step is ``pi = softmax(s)``, where ``s[a]`` is the
log-probability of the answer ``<answer>[label of a]`` (``iranker.llm.choice_tree``): the
probability that the model names candidate ``a`` as the *worst*. The action space is the pool,
so expectations over it are exact sums and no sampling is needed.

- ``exclusion`` (default; the paper's reward): ``J = sum_a pi(a) r(a)`` with ``r`` the
  exclusion reward of ``iranker.rewards`` (+1 for a non-best candidate, 0 for a best one).
  The loss is ``-J``; its gradient is the exact policy gradient, ``-dJ/ds = d pi(best)/ds``.
- ``graded``: the same expectation with ``r(a) = (g_max - g(a)) / (g_max - g_min)`` from the
  pool's relevance grades (routing has a grade for every LLM; for one relevant item it equals
  ``exclusion``): removing the second-best LLM is worse than removing the worst.
- ``listwise``: a supervised objective on the same logits: cross-entropy of the best
  candidate under ``softmax(-s)``, i.e. "the best must be the *least* likely to be named".
  Its gradient does not fade as ``pi(best)`` gets small in a large pool (the exclusion
  gradient on ``s[best]`` is ``pi(best)(1 - pi(best))``), so it moves faster from a base model
  that has no preference - the SFT-before-RL warm start of DeepSeek-R1 and ReasonRank.

Every function takes 1-D tensors for one pool and returns a 0-d loss tensor.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..rewards import removal_reward


def exclusion_rewards(pool_ids: Sequence[str], best: Sequence[str]) -> list[float]:
    """The exclusion reward of removing each candidate: ``iranker.rewards.removal_reward``
    (the one rule the text rewards use too), by candidate id."""

    return [removal_reward(cid, best) for cid in pool_ids]


def graded_rewards(grades: Sequence[float]) -> list[float]:
    """``(g_max - g) / (g_max - g_min)`` per candidate: 0 for the best, 1 for the worst."""
    hi, lo = max(grades), min(grades)
    if hi == lo:
        return [0.0 for _ in grades]
    return [(hi - g) / (hi - lo) for g in grades]


def expected_reward_loss(torch: Any, scores: Any, rewards: Sequence[float]) -> Any:
    """``-sum_a softmax(scores)[a] * rewards[a]``: minus the exact expected reward."""
    pi = torch.softmax(scores, dim=-1)
    r = torch.tensor(list(rewards), dtype=pi.dtype, device=pi.device)
    return -(pi * r).sum()


def listwise_loss(torch: Any, scores: Any, best_mask: Sequence[bool]) -> Any:
    """``-log sum_{b in best} softmax(-scores)[b]``: the best should be the least likely named."""
    mask = torch.tensor(list(best_mask), dtype=torch.bool, device=scores.device)
    if not bool(mask.any()):
        raise ValueError("listwise_loss needs at least one best candidate in the pool")
    neg = torch.log_softmax(-scores, dim=-1)
    return -torch.logsumexp(neg[mask], dim=0)


def _exclusion(
    torch: Any, scores: Any, pool_ids: Sequence[str], best: Sequence[str], grades: Sequence[float] | None
) -> Any:
    return expected_reward_loss(torch, scores, exclusion_rewards(pool_ids, best))


def _graded(
    torch: Any, scores: Any, pool_ids: Sequence[str], best: Sequence[str], grades: Sequence[float] | None
) -> Any:
    if grades is None:
        raise ValueError("the graded objective needs the pool's relevance grades")
    return expected_reward_loss(torch, scores, graded_rewards(grades))


def _listwise(
    torch: Any, scores: Any, pool_ids: Sequence[str], best: Sequence[str], grades: Sequence[float] | None
) -> Any:
    return listwise_loss(torch, scores, [str(i) in set(best) for i in pool_ids])


#: name -> loss of one step row; the one list of objectives (``TrainConfig`` validates against it)
OBJECTIVE_LOSSES: dict[str, Callable[..., Any]] = {
    "exclusion": _exclusion,
    "graded": _graded,
    "listwise": _listwise,
}
OBJECTIVES = tuple(OBJECTIVE_LOSSES)


def step_loss(
    torch: Any,
    objective: str,
    scores: Any,
    *,
    pool_ids: Sequence[str],
    best: Sequence[str],
    grades: Sequence[float] | None = None,
) -> Any:
    """The loss of one step row under ``objective`` (see the module docstring)."""
    loss = OBJECTIVE_LOSSES.get(objective)
    if loss is None:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    return loss(torch, scores, pool_ids, best, grades)


__all__ = [
    "OBJECTIVES",
    "OBJECTIVE_LOSSES",
    "exclusion_rewards",
    "expected_reward_loss",
    "graded_rewards",
    "listwise_loss",
    "step_loss",
]
