"""GRPO (or RLOO) on elimination steps with TRL on one machine — CPU or one GPU.

``train_grpo(config, resume=False)`` (reached through ``iranker.train.train``):

1. loads the step dataset (``iranker data steps``) — chat-format ``prompt`` plus the columns
   the reward needs (``pool``, ``best``, ``task``), which TRL passes to reward functions as
   keyword arguments;
2. loads the policy through ``iranker.llm.models`` (the embedded SmolLM2-135M through its
   cached fp32 folder — loading the GGUF directly leaves a quantizer attached and TRL refuses
   to train it), with a LoRA adapter (peft ``LoraConfig``) unless ``lora: false``;
3. trains with ``GRPOTrainer``/``GRPOConfig`` (or RLOO), one reward function
   (``iranker_step_reward`` = exclusion + format, computed on the completion only) that also
   logs the valid-answer rate, the format rate and the reward per task;
4. writes a resumable checkpoint every ``save_steps`` (``resume=True`` continues from the last
   one: weights/adapter, optimiser, scheduler, RNG and trainer state, so nothing is lost) and a
   line per log step to ``output_dir/train_log.jsonl``;
5. saves the final model or adapter, the tokenizer and ``iranker.json`` (base model, prompt
   templates, reward config, training arguments) into ``output_dir``, which every ranker loads
   with ``--model output_dir``.

PPO is not in TRL 1.16; see ``iranker export-verl`` for PPO with verl.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..llm.base import require
from ..llm.transformers_backend import canonical_head_input
from ..parsing import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from ..rewards import make_trl_reward, response_text
from .common import (
    CONFIG_FILE,
    TrainError,
    TrainResult,
    callbacks,
    check_output_dir,
    dataset_record,
    drop_long_prompts,
    finish_run,
    jsonable,
    load_policy,
    load_step_dataset,
    lora_config,
    run_info_record,
    set_threads,
    templates_for,
    trainer_arguments,
    versions,
    with_response_prefix,
)
from .config import ConfigError, TrainConfig

_TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)


def format_shaping_score(text: str) -> float:
    """Share (0..1) of ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` found in that order."""
    low = text.lower()
    pos, found = 0, 0
    for tag in _TAGS:
        i = low.find(tag, pos)
        if i < 0:
            continue
        found += 1
        pos = i + len(tag)
    return found / len(_TAGS)


def make_format_shaping_reward(*, stop_at_answer: bool = False) -> Callable[..., list[float]]:
    """TRL reward function: partial format credit (training-only shaping, see TrainConfig)."""

    def iranker_format_shaping(prompts: Any = None, completions: Sequence[Any] = (), **_: Any) -> list[float]:
        return [
            format_shaping_score(
                response_text(prompts[i] if prompts else None, c, stop_at_answer=stop_at_answer)
            )
            for i, c in enumerate(completions)
        ]

    return iranker_format_shaping


def reward_functions(config: TrainConfig) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """The TRL reward functions of a run and their weights."""
    funcs = [make_trl_reward("step", config.reward, stop_at_answer=config.stop_at_answer)]
    weights = [1.0]
    if config.format_shaping_weight > 0:
        funcs.append(make_format_shaping_reward(stop_at_answer=config.stop_at_answer))
        weights.append(float(config.format_shaping_weight))
    return funcs, weights


def trl_classes(algorithm: str):

    trl = require("trl", "train", "RL training")
    if algorithm == "grpo":
        return trl.GRPOConfig, trl.GRPOTrainer
    if algorithm == "rloo":
        if not hasattr(trl, "RLOOTrainer"):
            raise ConfigError("this TRL has no RLOOTrainer; use algorithm: grpo")
        return trl.RLOOConfig, trl.RLOOTrainer
    raise ConfigError(f"unknown algorithm {algorithm!r}")


def trl_arguments(config: TrainConfig, config_cls: Any) -> dict[str, Any]:
    """Keyword arguments of ``GRPOConfig``/``RLOOConfig`` for a resolved ``config``."""
    args: dict[str, Any] = dict(
        **trainer_arguments(config),
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        beta=float(config.beta),
        temperature=float(config.temperature),
        bf16=bool(config.bf16),
        use_vllm=bool(config.use_vllm),
        **({"vllm_mode": config.vllm_mode} if config.use_vllm else {}),
        **({"vllm_server_base_url": config.vllm_server_base_url} if config.vllm_server_base_url else {}),
        log_completions=config.log_completions,
        reward_weights=reward_functions(config)[1],
    )
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config.trl) - known)
    if unknown:
        raise ConfigError(f"trl: unknown {config_cls.__name__} argument(s) {unknown}")
    missing = sorted(set(args) - known)
    if missing:  # dropping them would train with TRL's defaults instead of the settings asked for
        import trl

        raise ConfigError(
            f"the installed TRL {getattr(trl, '__version__', '?')} has no {config_cls.__name__} "
            f"argument(s) {missing}, which iranker sets; install the TRL iranker is tested "
            "with: pip install 'iranker[train]'"
        )
    args.update(config.trl)
    return args


def train_grpo(config: TrainConfig, resume: bool = False, *, quiet: bool = False) -> TrainResult:
    """Train ``config`` with GRPO/RLOO (see the module docstring); returns where the result went."""
    config = config.resolved()
    out = Path(config.output_dir)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    ckpt = check_output_dir(out, config, resume, say)

    config_cls, trainer_cls = trl_classes(config.algorithm)
    trl_args = trl_arguments(config, config_cls)  # checks `trl:` before anything heavy
    set_threads(config)
    ds, info, parquet = load_step_dataset(config)
    templates = templates_for(ds, info)
    if config.response_prefix:
        ds = with_response_prefix(ds, templates, config.response_prefix)

    say(f"loading {config.model} ...")
    policy = load_policy(config)

    canonical_head_input(policy.model)  # a frozen lm_head would copy its whole weight every forward
    dropped_long = 0
    if config.max_prompt_tokens:
        ds, dropped_long = drop_long_prompts(ds, policy.tokenizer, config.max_prompt_tokens)
        say(
            f"dropped {dropped_long} rows with prompts over {config.max_prompt_tokens} tokens; {len(ds)} left"
        )
        if len(ds) == 0:
            raise TrainError(f"no rows have prompts of at most {config.max_prompt_tokens} tokens")
    peft_config = (
        lora_config(config, policy.model) if (config.lora and not policy.continued_adapter) else None
    )
    adapter = bool(peft_config is not None or policy.continued_adapter)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(config.to_yaml(), encoding="utf-8")

    args = config_cls(**trl_args)
    versions_now = versions()

    record = dataset_record(parquet, len(ds), dropped_long, info)

    def run_info(step: int) -> dict[str, Any]:
        return run_info_record(
            config,
            policy,
            adapter=adapter,
            step=step,
            templates=templates,
            info=info,
            dataset=record,
            versions=versions_now,
            reward_kind="step",
            trl_args={k: jsonable(v) for k, v in trl_args.items()},
        )

    step_log, ckpt_info = callbacks(out, run_info, policy.base_reference if adapter else None)
    trainer = trainer_cls(
        model=policy.model,
        reward_funcs=reward_functions(config)[0],
        args=args,
        train_dataset=ds,
        processing_class=policy.tokenizer,
        peft_config=peft_config,
        callbacks=[step_log, ckpt_info],
    )
    resume_from = ckpt if (resume and ckpt) else None
    if resume_from:
        say(f"resuming from {resume_from}")
    say(
        f"training {config.algorithm} ({'LoRA' if adapter else 'full'}) on {len(ds)} step rows, "
        f"{config.max_steps} steps, output {out}"
    )
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - t0

    return finish_run(
        trainer,
        policy.tokenizer,
        out,
        policy.base_reference if adapter else None,
        run_info,
        step_log,
        resume_from,
        seconds,
        say,
    )


__all__ = [
    "format_shaping_score",
    "make_format_shaping_reward",
    "reward_functions",
    "train_grpo",
    "trl_arguments",
    "trl_classes",
]
