"""Rewards for RL on elimination steps and direct rankings — computed on the completion only.

The paper's own code scored prompt + response (so the format reward was always −1, because
the prompt contains the format instructions), iterated the characters of a string when it
meant a list of candidates, and compared passage ids with passage texts. Here every reward
takes the *completion text* and the candidates as ids with their labels/texts, and the tests
in ``tests/test_rewards.py`` pin each of those defects down.

This module imports nothing heavy (stdlib + ``iranker.parsing`` / ``iranker.metrics``), so a verl environment can
use it with only ``pip install --no-deps iranker rapidfuzz`` (see ``iranker export-verl``).

Rewards (defaults follow the paper):
- exclusion: +1 when the removed candidate is not the best of the pool, 0 when it is a best
  one, ``invalid_penalty`` (−0.5) when the answer names no candidate of the pool;
- format: 0 for exactly one ``<think>…</think>`` followed by one ``<answer>…</answer>``,
  ``format_penalty`` (−1) otherwise;
- ranking (direct): NDCG of the parsed order (graded relevance; candidates never named are
  appended in input order) minus ``missing_penalty`` × share of missing or duplicated ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Mapping, Sequence

from .llm.stop import first_stop
from .metrics import ndcg_at_k
from .parsing import CandidateView, extract, match_candidate, parse_order
from .scenarios.base import response_prefill


@dataclass
class RewardConfig:
    """Weights and penalties of the rewards (one place, shared by TRL, verl and the CLI)."""

    exclusion_weight: float = 1.0
    format_weight: float = 1.0
    invalid_penalty: float = -0.5
    format_penalty: float = -1.0
    missing_penalty: float = 0.5

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "RewardConfig":
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown reward settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**{k: float(v) for k, v in d.items()})


# -- inputs ---------------------------------------------------------------------------------
def completion_text(completion: Any) -> str:
    """The assistant's text from a TRL completion (str or ``[{"role", "content"}]``)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content", ""))
    if isinstance(completion, Sequence):
        parts = [
            m.get("content", "")
            for m in completion
            if isinstance(m, Mapping) and m.get("role", "assistant") == "assistant"
        ]
        return "".join(str(p) for p in parts)
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}")


def cut_after_answer(text: str) -> str:
    """``text`` up to and including its first ``</answer>`` (all of it if there is none).

    Every iranker backend stops generating right after the first ``</answer>``, so at
    inference nothing after it exists; TRL's transformers generation cannot stop on a string,
    and judging what it writes after the answer would train for text no ranker ever sees.
    """
    end = first_stop(text)
    return text if end is None else text[:end]


def response_text(prompt: Any, completion: Any, *, stop_at_answer: bool = False) -> str:
    """The model's whole answer: the prompt's prefilled reply start (if any) + the completion.

    When the prompt ends with an open assistant message (``PromptTemplate.response_prefix``,
    e.g. ``"<think>"``), TRL continues that message and hands the reward only the generated
    part; the answer being judged is still the full reply, so the prefill is put back. Nothing
    of the user prompt is ever read. ``stop_at_answer`` judges the reply as a ranker would see
    it (``cut_after_answer``).
    """

    messages = prompt if isinstance(prompt, Sequence) and not isinstance(prompt, (str, bytes)) else None
    text = response_prefill(messages) + completion_text(completion)
    return cut_after_answer(text) if stop_at_answer else text


def pool_views(pool: Iterable[Mapping[str, Any] | CandidateView]) -> list[CandidateView]:
    """Candidate views from dataset rows ``{"id", "label", "text", "names"?}``.

    A plain string is rejected on purpose: iterating it would yield characters (the paper's
    DRanker bug), never candidates.
    """
    if isinstance(pool, (str, bytes)):
        raise TypeError("pool must be a list of candidates, not a string")
    out = []
    for c in pool:
        if isinstance(c, CandidateView):
            out.append(c)
        elif isinstance(c, Mapping):
            out.append(
                CandidateView(
                    id=str(c["id"]),
                    label=str(c["label"]),
                    text=str(c.get("text", "")),
                    names=[str(n) for n in (c.get("names") or [])],
                )
            )
        else:
            raise TypeError(f"a pool entry must be a mapping with id/label/text, got {type(c).__name__}")
    if len(out) < 2:
        raise ValueError("a pool needs at least 2 candidates")
    return out


# -- rewards --------------------------------------------------------------------------------
def format_reward(completion: str, config: RewardConfig | None = None) -> float:
    """0 for ``<think>…</think><answer>…</answer>`` (exactly one each, in order), else penalty."""
    config = config or RewardConfig()
    return 0.0 if extract(completion).well_formed else config.format_penalty


def exclusion_reward(
    completion: str, pool: Sequence[CandidateView], best: Iterable[str], config: RewardConfig | None = None
) -> float:
    """+1 if the named candidate is not a best one, 0 if it is, penalty if it names none.

    ``best`` are candidate *ids* (several when tied); the answer is matched to an id of the
    pool, so ids are compared with ids — never with texts.
    """
    config = config or RewardConfig()
    best_ids = {str(b) for b in ([best] if isinstance(best, str) else best)}
    pool_ids = {c.id for c in pool}
    if not best_ids & pool_ids:
        raise ValueError(f"best candidate(s) {sorted(best_ids)} not in the pool {sorted(pool_ids)}")
    m = match_candidate(extract(completion).answer, pool)
    if m.candidate is None:
        return config.invalid_penalty
    return removal_reward(m.candidate, best_ids)


def removal_reward(removed: str, best: Iterable[str]) -> float:
    """The exclusion rule itself: 1 for removing a candidate that is not a best one, else 0.

    ``exclusion_reward`` applies it to a parsed answer; choice training
    (``iranker.train.choice_objectives``) to every candidate of a pool, by id.
    """
    best_ids = {str(b) for b in ([best] if isinstance(best, str) else best)}
    return 0.0 if str(removed) in best_ids else 1.0


def step_reward(
    completion: str, pool: Sequence[CandidateView], best: Iterable[str], config: RewardConfig | None = None
) -> float:
    """The training reward of one elimination step: weighted exclusion + format rewards."""
    config = config or RewardConfig()
    return config.exclusion_weight * exclusion_reward(
        completion, pool, best, config
    ) + config.format_weight * format_reward(completion, config)


def ranking_reward(
    completion: str,
    pool: Sequence[CandidateView],
    relevance: Mapping[str, float],
    config: RewardConfig | None = None,
) -> float:
    """NDCG of the parsed full order minus a penalty for missing / duplicated candidates."""
    config = config or RewardConfig()
    order, duplicates = parse_order(extract(completion).answer, pool)
    missing = [c.id for c in pool if c.id not in order]
    full = order + missing
    share_bad = (len(missing) + len(duplicates)) / len(pool)
    return ndcg_at_k(full, relevance, None) - config.missing_penalty * share_bad


# -- adapters -------------------------------------------------------------------------------
def _as_list(value: Any) -> Any:
    """Dataset columns may hold JSON strings (Arrow-friendly) or the decoded value."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise TypeError(
                f"expected a list/object or its JSON, got the plain string {value[:40]!r}"
            ) from None
    return value


def read_best(value: Any) -> list[str]:
    """The best candidate ids of a step row's ``best`` column: one id, a list, or its JSON.

    The one place that reads ``best`` for TRL, verl and the tests."""
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return [value]
    return [str(x) for x in _as_list(value)]


def make_trl_reward(
    kind: str = "step",
    config: RewardConfig | Mapping[str, Any] | None = None,
    *,
    stop_at_answer: bool = False,
) -> Callable[..., list[float]]:
    """A TRL reward function ``(prompts, completions, **columns) -> list[float]``.

    ``kind``: ``step`` (exclusion + format; needs dataset columns ``pool`` and ``best``),
    ``exclusion``, ``format``, or ``ranking`` (needs ``pool`` and ``relevance``, a JSON
    object string). Of the prompts (TRL passes them) only a prefilled reply start is read
    (see ``response_text``); the user prompt is never scored. ``iranker train`` uses
    ``make_trl_reward("step", config.reward, stop_at_answer=config.stop_at_answer)``.

    With TRL's ``log_metric`` hook (absent outside TRL) a ``step``/``exclusion`` reward also
    logs ``valid_rate`` (share of completions whose answer names a candidate of the pool),
    ``format_rate`` (share with exactly ``<think>…</think><answer>…</answer>``),
    ``exclusion_accuracy`` (share that removed a candidate other than the best), and, with a
    ``task`` column, ``reward/<task>`` and ``valid_rate/<task>``.
    """
    cfg = config if isinstance(config, RewardConfig) else RewardConfig.from_dict(config)
    if kind not in ("step", "exclusion", "format", "ranking"):
        raise ValueError(f"unknown reward kind {kind!r}")

    def reward(
        prompts: Any = None,
        completions: Sequence[Any] = (),
        *,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float]:
        out = []
        for i, comp in enumerate(completions):
            text = response_text(prompts[i] if prompts else None, comp, stop_at_answer=stop_at_answer)
            if kind == "format":
                out.append(format_reward(text, cfg))
                continue
            pool = pool_views(_as_list(columns["pool"][i]))
            if kind == "ranking":
                rel = _as_list(columns["relevance"][i])
                out.append(ranking_reward(text, pool, {str(k): float(v) for k, v in rel.items()}, cfg))
                continue
            best = read_best(columns["best"][i])
            fn = exclusion_reward if kind == "exclusion" else step_reward
            out.append(fn(text, pool, best, cfg))
            if log_metric is not None:
                _log_step(log_metric, text, pool, best, out[-1], (columns.get("task") or [None] * (i + 1))[i])
        return out

    reward.__name__ = f"iranker_{kind}_reward"  # TRL logs rewards under the function's name
    return reward


def _log_step(
    log_metric: Callable[[str, float], None],
    text: str,
    pool: Sequence[CandidateView],
    best: Sequence[str],
    reward: float,
    task: str | None,
) -> None:
    parsed = extract(text)
    chosen = match_candidate(parsed.answer, pool).candidate
    valid = chosen is not None
    log_metric("valid_rate", float(valid))
    log_metric("format_rate", float(parsed.well_formed))
    log_metric("exclusion_accuracy", float(valid and chosen not in best))
    if task is not None:
        log_metric(f"reward/{task}", reward)
        log_metric(f"valid_rate/{task}", float(valid))


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None
) -> float:
    """verl's ``custom_reward_function`` entry point.

    ``solution_str`` is the decoded response (verl decodes the response tokens only).
    ``ground_truth`` is what ``iranker export-verl`` wrote in ``reward_model.ground_truth``: a
    JSON string ``{"kind": "step"|"ranking", "pool": [...], "best": [...], "relevance": {...},
    "reward": {RewardConfig overrides}, "stop_at_answer"?: bool}``. Like ``iranker train``
    (``stop_at_answer``, default on) the reply is judged up to its first ``</answer>``, as a
    ranker reads it, so TRL and verl give one completion the same reward.
    """
    gt = _as_list(ground_truth)
    cfg = RewardConfig.from_dict(gt.get("reward"))
    pool = pool_views(gt["pool"])
    text = response_text(None, solution_str, stop_at_answer=bool(gt.get("stop_at_answer", True)))
    if gt.get("kind", "step") == "ranking":
        return ranking_reward(text, pool, {str(k): float(v) for k, v in gt["relevance"].items()}, cfg)
    return step_reward(text, pool, read_best(gt["best"]), cfg)
