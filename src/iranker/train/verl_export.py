"""``iranker export-verl``: data, reward module and launch script for PPO/GRPO with verl.

verl (0.9.x) pins ``transformers<5.11`` and needs Ray, hydra and tensordict, so it cannot share
iranker's environment. Instead of depending on verl, iranker writes everything a separate verl
environment needs into one folder::

    DIR/train.parquet      step rows of the training split, verl's RL dataset schema
    DIR/test.parquet       step rows of the test split (verl's validation set)
    DIR/iranker_reward.py  the reward verl loads by path (reward.custom_reward_function.path)
    DIR/run_verl.sh        python -m verl.trainer.main_ppo with every setting spelled out
    DIR/info.json          counts per task, seed, split rule, leak check, templates, settings

verl's RL dataset schema (docs: "Prepare Data for Post-Training"): ``data_source`` (selects
the reward; here the task name), ``prompt`` (chat messages; verl applies the tokenizer's chat
template), ``ability``, ``reward_model`` = ``{"style": "rule", "ground_truth": ...}`` and
``extra_info``. Our ``ground_truth`` is a JSON string ``{"kind": "step", "pool": [...],
"best": [...], "relevance": {...}}`` (a string, so Arrow never has to unify the pools of
different tasks) that ``iranker.rewards.compute_score`` reads.

verl calls ``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)``
with the decoded response only (docs: "Implement Reward Function for Dataset"), which is what
the reward needs: it scores the completion, never the prompt.

The verl environment needs iranker's reward code but none of its dependencies except
rapidfuzz::

    pip install --no-deps iranker rapidfuzz      # or: pip install --no-deps /path/to/iranker-checkout rapidfuzz

(``iranker_reward.py`` also falls back to the source folder it was exported from, so on the
machine that exported it, it works without that install.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import stat
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import __version__
from ..data.steps import build_step_rows
from ..data.steps_command import (
    SPLIT_RULE,
    ExampleSet,
    StepsError,
    check_no_leak,
    examples_from_file,
    examples_from_tasks,
    parse_tasks,
    rows_summary,
    templates_used,
    write_json,
    write_parquet,
)
from ..llm.models import EMBEDDED_ALIASES
from ..rewards import RewardConfig

#: Every verl setting run_verl.sh uses, in verl's trainer config (verl/trainer/config/
#: ppo_trainer.yaml, verl 0.9.1). tests/train/test_verl_real.py has verl's own Hydra compose the
#: generated script's overrides (and run main_ppo to its GPU check): data.*, actor_rollout_ref.*, critic.*,
#: algorithm.*, reward.custom_reward_function.* (verl >= 0.7 moved it under ``reward``; the
#: legacy top-level ``custom_reward_function.*`` is still migrated) and trainer.*.
VERL_KEYS = (
    "algorithm.adv_estimator",
    "algorithm.use_kl_in_reward",
    "data.train_files",
    "data.val_files",
    "data.train_batch_size",
    "data.max_prompt_length",
    "data.max_response_length",
    "data.filter_overlong_prompts",
    "data.truncation",
    "data.seed",
    "actor_rollout_ref.model.path",
    "actor_rollout_ref.model.use_remove_padding",
    "actor_rollout_ref.model.enable_gradient_checkpointing",
    "actor_rollout_ref.model.lora_rank",
    "actor_rollout_ref.model.lora_alpha",
    "actor_rollout_ref.model.target_modules",
    "actor_rollout_ref.actor.optim.lr",
    "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
    "actor_rollout_ref.actor.use_kl_loss",
    "actor_rollout_ref.actor.kl_loss_coef",
    "actor_rollout_ref.actor.kl_loss_type",
    "actor_rollout_ref.actor.entropy_coeff",
    "actor_rollout_ref.rollout.name",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.rollout.temperature",
    "actor_rollout_ref.rollout.tensor_model_parallel_size",
    "actor_rollout_ref.rollout.gpu_memory_utilization",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu",
    "critic.model.path",
    "critic.optim.lr",
    "critic.ppo_micro_batch_size_per_gpu",
    "reward.custom_reward_function.path",
    "reward.custom_reward_function.name",
    "trainer.critic_warmup",
    "trainer.logger",
    "trainer.project_name",
    "trainer.experiment_name",
    "trainer.n_gpus_per_node",
    "trainer.nnodes",
    "trainer.save_freq",
    "trainer.test_freq",
    "trainer.total_epochs",
    "trainer.default_local_dir",
    "trainer.resume_mode",
    "trainer.val_before_train",
)

ADV_ESTIMATORS = ("gae", "grpo")

#: the full-precision original of the embedded model, for GPU clusters (the embedded GGUF is a
#: 4-bit quantisation made for CPUs)
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

VERL_ENV_HELP = """\
# The verl environment (separate from iranker's: verl 0.9.x pins transformers<5.11):
#   python -m venv verl-env && . verl-env/bin/activate
#   pip install 'verl[vllm]==0.9.1'           # GPU machine: verl with the vLLM/torch/transformers it pins
#   pip install --no-deps iranker rapidfuzz   # only the reward code (or: --no-deps /path/to/iranker)
"""


class ExportError(StepsError):
    """Bad arguments for export-verl."""


# -- rows -----------------------------------------------------------------------------------------
def verl_features():
    from datasets import Features, List, Value

    return Features(
        {
            "data_source": Value("string"),
            "prompt": List({"role": Value("string"), "content": Value("string")}),
            "ability": Value("string"),
            "reward_model": {"style": Value("string"), "ground_truth": Value("string")},
            "extra_info": {
                "split": Value("string"),
                "index": Value("int64"),
                "task": Value("string"),
                "example_id": Value("string"),
                "scenario": Value("string"),
                "pool_size": Value("int64"),
            },
        }
    )


def verl_row(
    step: Mapping[str, Any], *, split: str, index: int, reward_overrides: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """One step row (``iranker.data.steps``) in verl's RL dataset schema."""
    truth: dict[str, Any] = {
        "kind": "step",
        "pool": [dict(c) for c in step["pool"]],
        "best": list(step["best"]),
        "relevance": json.loads(step["relevance"])
        if isinstance(step["relevance"], str)
        else dict(step["relevance"]),
    }
    if reward_overrides:
        truth["reward"] = dict(reward_overrides)
    return {
        "data_source": str(step["data_source"]),
        "prompt": [{"role": m["role"], "content": m["content"]} for m in step["prompt"]],
        "ability": f"ranking/{step['scenario']}",
        "reward_model": {"style": "rule", "ground_truth": json.dumps(truth, ensure_ascii=False)},
        "extra_info": {
            "split": split,
            "index": index,
            "task": str(step["task"]),
            "example_id": str(step["example_id"]),
            "scenario": str(step["scenario"]),
            "pool_size": int(step["pool_size"]),
        },
    }


def reward_overrides(config: RewardConfig | None) -> dict[str, float]:
    """The fields of ``config`` that differ from the defaults (what ground_truth must carry)."""
    if config is None:
        return {}
    default = RewardConfig()
    return {k: v for k, v in dataclasses.asdict(config).items() if getattr(default, k) != v}


# -- generated files --------------------------------------------------------------------------------
def reward_module_source(fallback_src: str | None = None) -> str:
    """The text of ``iranker_reward.py`` (verl loads it by path)."""
    fallback = repr(fallback_src) if fallback_src else "None"
    return f'''"""iranker's reward for verl (written by `iranker export-verl`).

verl loads this file by path (reward.custom_reward_function.path=.../iranker_reward.py,
reward.custom_reward_function.name=compute_score) and calls
compute_score(data_source=..., solution_str=<decoded response>, ground_truth=<JSON>, extra_info=...).
The scoring itself is iranker.rewards.compute_score: exclusion + format reward of the
response only (never the prompt), ground truth = the candidate ids of the pool.

The verl environment needs only:  pip install --no-deps iranker rapidfuzz
"""

import os
import sys

#: the iranker source folder this file was exported from (used only if iranker is not installed)
IRANKER_SRC = {fallback}

try:
    from iranker.rewards import compute_score as _compute_score
except ImportError:
    if IRANKER_SRC and os.path.isdir(IRANKER_SRC) and IRANKER_SRC not in sys.path:
        sys.path.insert(0, IRANKER_SRC)
    try:
        from iranker.rewards import compute_score as _compute_score
    except ImportError as exc:
        raise ImportError(
            "iranker_reward.py needs iranker's reward code in the verl environment: "
            "pip install --no-deps iranker rapidfuzz  (or pip install --no-deps /path/to/iranker rapidfuzz)"
        ) from exc


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl's custom reward entry point; extra keyword arguments from verl are ignored."""
    return float(_compute_score(data_source, solution_str, ground_truth, extra_info))
'''


def _bool(v: bool) -> str:
    return "True" if v else "False"


def launch_script(
    *,
    out: Path,
    model: str,
    adv_estimator: str,
    n_gpus: int,
    nnodes: int,
    rollout_n: int,
    train_batch_size: int,
    mini_batch_size: int,
    micro_batch_size: int,
    max_prompt_length: int,
    max_response_length: int,
    actor_lr: float,
    critic_lr: float,
    epochs: int,
    save_freq: int,
    test_freq: int,
    lora_rank: int,
    seed: int,
    experiment: str,
    project: str = "iranker",
) -> str:
    """The text of ``run_verl.sh``; every setting is an environment variable with a default."""
    q = shlex.quote

    def line(key: str, value: str) -> str:
        assert key in VERL_KEYS, key  # only settings checked against verl's documented config
        return f"    {key}={value} \\\n"

    common = "".join(
        [
            line("algorithm.adv_estimator", '"$ADV_ESTIMATOR"'),
            line("algorithm.use_kl_in_reward", "False"),
            line("data.train_files", '"$HERE/train.parquet"'),
            line("data.val_files", '"$HERE/test.parquet"'),
            line("data.train_batch_size", '"$TRAIN_BATCH_SIZE"'),
            line("data.max_prompt_length", '"$MAX_PROMPT_LENGTH"'),
            line("data.max_response_length", '"$MAX_RESPONSE_LENGTH"'),
            line("data.filter_overlong_prompts", "True"),
            line("data.truncation", "error"),
            line("data.seed", '"$SEED"'),
            line("actor_rollout_ref.model.path", '"$MODEL"'),
            line("actor_rollout_ref.model.use_remove_padding", "True"),
            line("actor_rollout_ref.model.enable_gradient_checkpointing", "True"),
            line("actor_rollout_ref.model.lora_rank", '"$LORA_RANK"'),
            line("actor_rollout_ref.model.lora_alpha", '"$LORA_ALPHA"'),
            line("actor_rollout_ref.model.target_modules", "all-linear"),
            line("actor_rollout_ref.actor.optim.lr", '"$ACTOR_LR"'),
            line("actor_rollout_ref.actor.ppo_mini_batch_size", '"$MINI_BATCH_SIZE"'),
            line("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"'),
            line("actor_rollout_ref.actor.entropy_coeff", "0"),
            line("actor_rollout_ref.rollout.name", "vllm"),
            line("actor_rollout_ref.rollout.n", '"$ROLLOUT_N"'),
            line("actor_rollout_ref.rollout.temperature", "1.0"),
            line("actor_rollout_ref.rollout.tensor_model_parallel_size", "1"),
            line("actor_rollout_ref.rollout.gpu_memory_utilization", '"$GPU_MEMORY_UTILIZATION"'),
            line("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"'),
            line("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"'),
            line("reward.custom_reward_function.path", '"$HERE/iranker_reward.py"'),
            line("reward.custom_reward_function.name", "compute_score"),
            line("trainer.critic_warmup", "0"),
            line("trainer.logger", "'[\"console\"]'"),
            line("trainer.project_name", q(project)),
            line("trainer.experiment_name", '"$EXPERIMENT"'),
            line("trainer.n_gpus_per_node", '"$N_GPUS"'),
            line("trainer.nnodes", '"$NNODES"'),
            line("trainer.save_freq", '"$SAVE_FREQ"'),
            line("trainer.test_freq", '"$TEST_FREQ"'),
            line("trainer.total_epochs", '"$EPOCHS"'),
            line("trainer.default_local_dir", '"$CHECKPOINTS"'),
            line("trainer.resume_mode", "auto"),
            line("trainer.val_before_train", "True"),
        ]
    )
    gae = "".join(
        [
            line("actor_rollout_ref.actor.use_kl_loss", "False"),
            line("critic.model.path", '"$MODEL"'),
            line("critic.optim.lr", '"$CRITIC_LR"'),
            line("critic.ppo_micro_batch_size_per_gpu", '"$MICRO_BATCH_SIZE"'),
        ]
    )
    grpo = "".join(
        [
            line("actor_rollout_ref.actor.use_kl_loss", "True"),
            line("actor_rollout_ref.actor.kl_loss_coef", "0.001"),
            line("actor_rollout_ref.actor.kl_loss_type", "low_var_kl"),
        ]
    )

    def to_array(block: str) -> str:  # bash array elements; "$VAR" values still expand
        return "\n".join("    " + ln.strip().rstrip("\\").strip() for ln in block.splitlines())

    return f"""#!/usr/bin/env bash
# Train iranker's elimination ranker with verl (written by `iranker export-verl`).
#
#   bash run_verl.sh                          # PPO (algorithm.adv_estimator=gae), as in the paper
#   ADV_ESTIMATOR=grpo bash run_verl.sh       # GRPO (ROLLOUT_N completions per prompt, default {rollout_n})
#   N_GPUS=8 MODEL=/models/Qwen2.5-3B-Instruct bash run_verl.sh trainer.total_epochs=3   # extra hydra overrides last
#
{VERL_ENV_HELP}#
# Every key below is in verl's documented trainer config (verl/trainer/config/ppo_trainer.yaml).
# The reward is iranker_reward.py next to this script; data are train.parquet / test.parquet.
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"

MODEL="${{MODEL:-{model}}}"
ADV_ESTIMATOR="${{ADV_ESTIMATOR:-{adv_estimator}}}"      # gae = PPO with a critic | grpo
N_GPUS="${{N_GPUS:-{n_gpus}}}"
NNODES="${{NNODES:-{nnodes}}}"
TRAIN_BATCH_SIZE="${{TRAIN_BATCH_SIZE:-{train_batch_size}}}"
MINI_BATCH_SIZE="${{MINI_BATCH_SIZE:-{mini_batch_size}}}"
MICRO_BATCH_SIZE="${{MICRO_BATCH_SIZE:-{micro_batch_size}}}"
MAX_PROMPT_LENGTH="${{MAX_PROMPT_LENGTH:-{max_prompt_length}}}"
MAX_RESPONSE_LENGTH="${{MAX_RESPONSE_LENGTH:-{max_response_length}}}"
ACTOR_LR="${{ACTOR_LR:-{actor_lr:g}}}"
CRITIC_LR="${{CRITIC_LR:-{critic_lr:g}}}"
LORA_RANK="${{LORA_RANK:-{lora_rank}}}"                # 0 = full fine-tuning
LORA_ALPHA="${{LORA_ALPHA:-$(( LORA_RANK > 0 ? 2 * LORA_RANK : 16 ))}}"
GPU_MEMORY_UTILIZATION="${{GPU_MEMORY_UTILIZATION:-0.5}}"
EPOCHS="${{EPOCHS:-{epochs}}}"
SAVE_FREQ="${{SAVE_FREQ:-{save_freq}}}"
TEST_FREQ="${{TEST_FREQ:-{test_freq}}}"
SEED="${{SEED:-{seed}}}"
EXPERIMENT="${{EXPERIMENT:-{experiment}-$ADV_ESTIMATOR}}"
CHECKPOINTS="${{CHECKPOINTS:-$HERE/checkpoints/$EXPERIMENT}}"

if [ "$ADV_ESTIMATOR" = "gae" ]; then
  ROLLOUT_N="${{ROLLOUT_N:-1}}"
  ALGO_ARGS=(
{to_array(gae)}
  )
elif [ "$ADV_ESTIMATOR" = "grpo" ]; then
  ROLLOUT_N="${{ROLLOUT_N:-{rollout_n}}}"
  ALGO_ARGS=(
{to_array(grpo)}
  )
else
  echo "ADV_ESTIMATOR must be gae (PPO) or grpo, got $ADV_ESTIMATOR" >&2
  exit 2
fi

# fail early (not after Ray started) if the reward module cannot import iranker's reward code
python3 -c "import importlib.util as u; s = u.spec_from_file_location('iranker_reward', '$HERE/iranker_reward.py'); s.loader.exec_module(u.module_from_spec(s))" || {{
  echo "the reward needs iranker in this environment: pip install --no-deps iranker rapidfuzz" >&2
  exit 2
}}

python3 -m verl.trainer.main_ppo \\
{common}    "${{ALGO_ARGS[@]}}" \\
    "$@"
"""


def estimate_prompt_tokens(rows: Sequence[Mapping[str, Any]]) -> int:
    """A safe upper estimate of the longest prompt in tokens (~3 characters per token + template)."""
    longest = max((sum(len(m["content"]) for m in r["prompt"]) for r in rows), default=0)
    return longest // 3 + 64


def _round_up(n: int, step: int = 256) -> int:
    return max(step, ((n + step - 1) // step) * step)


def verl_model(model: str) -> tuple[str, str | None]:
    """(model path/id for verl, note) — verl needs a full Hugging Face model, not a GGUF or alias."""

    if model.strip().lower() in EMBEDDED_ALIASES:
        return EMBEDDED_HUB_ID, (
            f"{model!r} is the embedded 4-bit GGUF made for CPUs; verl gets its "
            f"full-precision original {EMBEDDED_HUB_ID}"
        )
    p = Path(model).expanduser()
    if p.exists():
        if (p / "adapter_config.json").is_file():
            raise ExportError(
                f"{model} is a LoRA adapter; verl needs a full model folder or Hugging Face id "
                "(merge the adapter first, or pass its base model)"
            )
        if p.is_file() or not (p / "config.json").is_file():
            raise ExportError(
                f"{model} is not a Hugging Face model folder (no config.json); verl cannot load GGUF files"
            )
        return str(p.resolve()), None
    return model, None


# -- the export -----------------------------------------------------------------------------------
def export_verl(
    *,
    out: str | os.PathLike[str],
    tasks: Sequence[str] | str = (),
    data_dir: str | os.PathLike[str] | None = None,
    input_path: str | os.PathLike[str] | None = None,
    test_input: str | os.PathLike[str] | None = None,
    seed: int = 0,
    max_per_task: int | None = None,
    max_test_per_task: int | None = 200,
    limit: int | None = None,
    leave_out: str | None = None,
    model: str = "smollm2-135m",
    adv_estimator: str = "gae",
    n_gpus: int = 1,
    nnodes: int = 1,
    rollout_n: int = 4,
    train_batch_size: int = 64,
    mini_batch_size: int = 32,
    micro_batch_size: int = 4,
    max_prompt_length: int | None = None,
    max_response_length: int = 256,
    actor_lr: float = 1e-6,
    critic_lr: float = 1e-5,
    epochs: int = 1,
    save_freq: int = 50,
    test_freq: int = 25,
    lora_rank: int = 0,
    reward: RewardConfig | None = None,
) -> dict[str, Any]:
    """Write train/test parquet, ``iranker_reward.py``, ``run_verl.sh`` and ``info.json`` to ``out``."""

    if adv_estimator not in ADV_ESTIMATORS:
        raise ExportError(
            f"--algorithm must be one of {', '.join(ADV_ESTIMATORS)} (gae = PPO), got {adv_estimator!r}"
        )
    if adv_estimator == "grpo" and rollout_n < 2:
        raise ExportError("GRPO needs --rollout-n >= 2")
    if mini_batch_size > train_batch_size:
        raise ExportError("--mini-batch-size must not exceed --train-batch-size")
    tasks = parse_tasks(tasks)
    verl_model_path, model_note = verl_model(model)

    train_set: ExampleSet
    test_set: ExampleSet
    if input_path is not None:
        if test_input is None:
            raise ExportError("with --input, also pass --test-input (verl validates on the test split)")
        train_set = examples_from_file(
            input_path, split="train", tasks=tasks, leave_out=leave_out, limit=limit
        )
        test_set = examples_from_file(test_input, split="test", tasks=tasks)
    else:
        if not tasks:
            raise ExportError("give --tasks (task names) or --input/--test-input (examples JSONL files)")
        if data_dir is None:
            data_dir = os.environ.get("IRANKER_DATA_DIR")
        if not data_dir:
            raise ExportError("--data-dir is needed with --tasks (or set $IRANKER_DATA_DIR)")
        train_set = examples_from_tasks(
            tasks, split="train", data_dir=data_dir, seed=seed, limit=limit, leave_out=leave_out
        )
        # the left-out scenario stays in the test split: that is the zero-shot evaluation
        test_set = examples_from_tasks(tasks, split="test", data_dir=data_dir, seed=seed)
    if not train_set.by_task:
        raise ExportError("no training examples left (every task was left out or filtered)")
    leak = check_no_leak(train_set, test_set)

    overrides = reward_overrides(reward)
    train_steps = build_step_rows(train_set.by_task, seed=seed, max_per_task=max_per_task)
    test_steps = build_step_rows(test_set.by_task, seed=seed, max_per_task=max_test_per_task)
    if not train_steps or not test_steps:
        raise ExportError("no step rows (examples need relevance labels with a grade > 0)")
    train_rows = [
        verl_row(r, split="train", index=i, reward_overrides=overrides) for i, r in enumerate(train_steps)
    ]
    test_rows = [
        verl_row(r, split="test", index=i, reward_overrides=overrides) for i, r in enumerate(test_steps)
    ]

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(train_rows, out_dir / "train.parquet", features=verl_features())
    write_parquet(test_rows, out_dir / "test.parquet", features=verl_features())

    import iranker

    src = str(Path(iranker.__file__).resolve().parent.parent)
    (out_dir / "iranker_reward.py").write_text(reward_module_source(src), encoding="utf-8")

    prompt_estimate = estimate_prompt_tokens(train_rows + test_rows)
    max_prompt = max_prompt_length or _round_up(prompt_estimate)
    script = launch_script(
        out=out_dir,
        model=verl_model_path,
        adv_estimator=adv_estimator,
        n_gpus=n_gpus,
        nnodes=nnodes,
        rollout_n=rollout_n,
        train_batch_size=train_batch_size,
        mini_batch_size=mini_batch_size,
        micro_batch_size=micro_batch_size,
        max_prompt_length=max_prompt,
        max_response_length=max_response_length,
        actor_lr=actor_lr,
        critic_lr=critic_lr,
        epochs=epochs,
        save_freq=save_freq,
        test_freq=test_freq,
        lora_rank=lora_rank,
        seed=seed,
        experiment=out_dir.resolve().name or "iranker",
    )
    script_path = out_dir / "run_verl.sh"
    script_path.write_text(script, encoding="utf-8")
    script_path.chmod(script_path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    info = {
        "kind": "iranker-verl-export",
        "files": {
            "train": "train.parquet",
            "test": "test.parquet",
            "reward": "iranker_reward.py",
            "launch": "run_verl.sh",
        },
        "rows": {"train": len(train_rows), "test": len(test_rows)},
        "seed": seed,
        "max_per_task": max_per_task,
        "max_test_per_task": max_test_per_task,
        "limit_per_task": limit,
        "leave_out": leave_out,
        "split_rule": SPLIT_RULE,
        "leak_check": leak,
        "train_tasks": rows_summary(train_steps, train_set),
        "test_tasks": rows_summary(test_steps, test_set),
        "templates": templates_used(r["scenario"] for r in train_steps + test_steps),
        "reward": dataclasses.asdict(reward or RewardConfig()),
        "verl": {
            "model": verl_model_path,
            "model_note": model_note,
            "adv_estimator": adv_estimator,
            "max_prompt_length": max_prompt,
            "prompt_tokens_estimate": prompt_estimate,
            "max_response_length": max_response_length,
            "keys": list(VERL_KEYS),
            "reward_function": {"path": "iranker_reward.py", "name": "compute_score"},
        },
        "verl_environment": "pip install 'verl[vllm]==0.9.1'; pip install --no-deps iranker rapidfuzz",
        "task_metadata": {"train": train_set.task_meta, "test": test_set.task_meta},
        "iranker_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(info, out_dir / "info.json")
    return info


__all__ = [
    "ADV_ESTIMATORS",
    "EMBEDDED_HUB_ID",
    "ExportError",
    "VERL_KEYS",
    "export_verl",
    "launch_script",
    "reward_module_source",
    "verl_features",
    "verl_row",
]
