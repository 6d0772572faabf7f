"""``TrainConfig``: one place for every training setting, shared by Python, YAML and the CLI.

Like TRL's own configs, every field carries its help text (``field(metadata={"help": ...})``);
``iranker train`` turns each field into a ``--flag`` with that help, and a YAML file holds the
same names::

    model: smollm2-135m
    dataset: runs/steps            # folder written by `iranker data steps` (or a .parquet file)
    output_dir: runs/grpo-lora
    max_steps: 500
    reward: {format_weight: 1.0}

Unknown keys (in YAML or in ``reward``) are errors that name the key, so a typo never silently
falls back to a default. Settings whose right value depends on the machine (``use_cpu``,
``bf16``, ``use_vllm``) default to ``None`` = decided at start from whether CUDA is available;
``resolved()`` returns a copy with those decided.

PPO is not offered here: TRL 1.16 has no ``PPOTrainer``. The paper's PPO runs on clusters
with verl (``iranker export-verl`` writes the data, reward module and launch script).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from ..rewards import RewardConfig
from .choice_objectives import OBJECTIVES

ALGORITHMS = ("grpo", "rloo", "choice")
#: objectives of ``algorithm: choice``: the registry of ``iranker.train.choice_objectives``
CHOICE_OBJECTIVES = OBJECTIVES

PPO_MESSAGE = (
    "algorithm 'ppo' is not available on one machine: TRL 1.16 has no PPOTrainer. "
    "Use 'grpo' (default) or 'rloo' here, or train with PPO on a GPU cluster with verl: "
    "`iranker export-verl --tasks ... --out DIR` writes the parquet data, the reward module and "
    "run_verl.sh (algorithm.adv_estimator=gae is PPO)."
)


#: TRL's two ways of generating rollouts with vLLM (``GRPOConfig.vllm_mode``).
VLLM_MODES = ("colocate", "server")


class ConfigError(ValueError):
    """A bad training setting; the message names the setting."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


_FLOAT_LITERAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _yaml_floats(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``learning_rate: 5e-4`` as a number: YAML 1.1 (PyYAML) reads a float without a dot in its
    mantissa as a string, and every other tool's config (TRL, transformers) takes it as a float."""
    kinds = {f.name: str(f.type) for f in fields(cls)}
    out = dict(data)
    for key, value in data.items():
        if (
            isinstance(value, str)
            and kinds.get(key, "").startswith("float")
            and _FLOAT_LITERAL.match(value.strip())
        ):
            out[key] = float(value)
    return out


@dataclass
class TrainConfig:
    """Settings of one RL training run on elimination steps (TRL GRPO or RLOO)."""

    # -- what to train on ---------------------------------------------------------------------
    dataset: str | None = field(
        default=None,
        metadata=_help(
            "step dataset: a folder written by `iranker data steps` (uses its train.parquet and "
            "info.json) or a .parquet file with the step columns (prompt, pool, best, task, ...)"
        ),
    )
    model: str = field(
        default="smollm2-135m",
        metadata=_help(
            "base model: alias (smollm2-135m = the embedded SmolLM2-135M, trained through its cached "
            "fp32 copy), a local checkpoint folder, a .gguf file, a Hugging Face id, or a LoRA adapter "
            "folder to continue training"
        ),
    )
    output_dir: str = field(
        default="runs/iranker-grpo",
        metadata=_help(
            "folder for checkpoints (checkpoint-N/), train_log.jsonl and the final model/adapter + "
            "iranker.json; pass it to any ranker as --model"
        ),
    )
    algorithm: str = field(
        default="grpo",
        metadata=_help(
            "grpo (TRL GRPOTrainer), rloo (TRL RLOOTrainer), or choice: the fast path for CPUs - the "
            "policy is the softmax over the pool's label log-probabilities, scored by the same code "
            "as decode=choice at inference, trained on the exact expected reward (no sampling; see "
            "`objective`); the result ranks with decode=choice, reuse=kv. PPO is not in TRL 1.16: use "
            "`iranker export-verl` and verl for PPO"
        ),
    )
    objective: str = field(
        default="exclusion",
        metadata=_help(
            "algorithm choice only: exclusion (minus the exact expected exclusion reward, the paper's "
            "reward), graded (expected reward graded by the pool's relevance: 0 for the best, 1 for the "
            "worst) or listwise (cross-entropy of the best under softmax(-logprobs): the best should be "
            "the least likely to be named; a supervised warm start whose gradient does not fade in "
            "large pools)"
        ),
    )
    max_train_rows: int | None = field(
        default=None, metadata=_help("use only the first N rows of the dataset (smoke tests); default all")
    )
    max_prompt_tokens: int | None = field(
        default=None,
        metadata=_help(
            "drop rows whose chat-formatted prompt is longer than N tokens (the count is logged). "
            "On CPU a step costs ~6 x params x (prompt + completion) tokens x num_generations: a "
            "1400-token routing prompt with 4 generations took ~70 s CPU for one forward+backward "
            "and ~10 GB; 1024 keeps most rows. Default: keep all"
        ),
    )

    eval_dataset: str | None = field(
        default=None,
        metadata=_help(
            "algorithm choice: held-out step dataset (e.g. `iranker data steps --split test`); every "
            "eval_steps the mean pi(best) and removed-non-best rate on its first eval_rows rows (balanced "
            "per task) go to train_log.jsonl. Default: no held-out curve"
        ),
    )
    eval_rows: int = field(default=60, metadata=_help("held-out rows scored at each evaluation"))
    eval_steps: int = field(default=50, metadata=_help("evaluate on eval_dataset every N optimiser steps"))
    dtype: str | None = field(
        default=None,
        metadata=_help(
            "algorithm choice: dtype of the frozen base model (float32, bfloat16); default bfloat16 on a "
            "CPU with AMX/AVX-512 BF16 or a bf16 GPU, else float32. LoRA weights and the optimiser "
            "stay float32"
        ),
    )

    # -- LoRA ---------------------------------------------------------------------------------
    lora: bool = field(
        default=True,
        metadata=_help(
            "train a LoRA adapter (peft) instead of all weights; ~25% faster and ~1 GB less "
            "memory on CPU, and the result is a few MB"
        ),
    )
    lora_r: int = field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling alpha"))
    lora_dropout: float = field(default=0.05, metadata=_help("LoRA dropout"))
    lora_target_modules: list[str] | str = field(
        default="all-linear",
        metadata=_help("modules that get LoRA weights: 'all-linear' or a list such as [q_proj, v_proj]"),
    )
    lora_top_layers: int | None = field(
        default=None,
        metadata=_help(
            "put LoRA weights only on the top N decoder layers (default: every layer). The frozen "
            "layers below need no backward pass, so a step row costs less "
            "(benchmarks/choice_train_throughput.py measures how much)"
        ),
    )

    # -- optimisation -------------------------------------------------------------------------
    learning_rate: float = field(
        default=2e-5,
        metadata=_help(
            "AdamW learning rate (TRL's default 1e-6 is meant for full fine-tuning of large models)"
        ),
    )
    lr_scheduler_type: str = field(
        default="constant",
        metadata=_help(
            "learning-rate schedule (transformers names); constant keeps --resume with a larger "
            "max_steps consistent"
        ),
    )
    num_generations: int = field(
        default=4, metadata=_help("completions sampled per prompt (the GRPO/RLOO group); >= 2")
    )
    max_completion_length: int = field(
        default=64,
        metadata=_help("token budget per completion; the answer format needs ~10 tokens, thinking more"),
    )
    per_device_train_batch_size: int = field(
        default=8,
        metadata=_help(
            "completions per device per step (prompts per step = this / num_generations); must be a "
            "multiple of num_generations"
        ),
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata=_help("micro-batches accumulated per optimiser step")
    )
    max_steps: int = field(default=500, metadata=_help("optimiser steps to train in total"))
    save_steps: int = field(
        default=50,
        metadata=_help(
            "write a resumable checkpoint (model/adapter, optimiser, RNG, trainer state) every N steps"
        ),
    )
    save_total_limit: int | None = field(
        default=3, metadata=_help("keep only the newest N checkpoints (None = all)")
    )
    logging_steps: int = field(
        default=1, metadata=_help("log metrics (and a train_log.jsonl line) every N steps")
    )
    beta: float = field(
        default=0.0, metadata=_help("KL coefficient; 0 loads no reference model (half the memory, faster)")
    )
    temperature: float = field(default=1.0, metadata=_help("sampling temperature of the rollouts"))
    seed: int = field(default=0, metadata=_help("seed for data order, sampling and initialisation"))

    # -- machine ------------------------------------------------------------------------------
    use_cpu: bool | None = field(
        default=None, metadata=_help("train on CPU; default: True when no CUDA device is available")
    )
    bf16: bool | None = field(
        default=None,
        metadata=_help(
            "bfloat16 mixed precision; default: only on a CUDA GPU that supports it (on CPU it was "
            "7x slower or failed)"
        ),
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata=_help(
            "recompute activations in the backward pass (saves memory, costs time; off for small models)"
        ),
    )
    use_vllm: bool | None = field(
        default=None,
        metadata=_help("generate rollouts with vLLM; default: True only with a CUDA GPU and vllm installed"),
    )
    vllm_mode: str | None = field(
        default=None,
        metadata=_help(
            "with use_vllm: 'colocate' runs vLLM inside the trainer, sharing its GPU (the default on one "
            "GPU); 'server' sends rollouts to a separate `trl vllm-serve` process on GPUs of its own "
            "(the default with several GPUs: start the server first, see docs)"
        ),
    )
    vllm_server_base_url: str | None = field(
        default=None,
        metadata=_help("with vllm_mode 'server': the server's URL (default TRL's, http://0.0.0.0:8000)"),
    )
    threads: int | None = field(
        default=None,
        metadata=_help(
            "torch CPU threads (default $IRANKER_THREADS, else torch's choice; 1 on a shared machine)"
        ),
    )

    # -- rewards and logging ------------------------------------------------------------------
    reward: RewardConfig = field(
        default_factory=RewardConfig,
        metadata=_help(
            "reward weights and penalties (RewardConfig fields: exclusion_weight, format_weight, "
            "invalid_penalty, format_penalty, missing_penalty)"
        ),
    )
    format_shaping_weight: float = field(
        default=0.0,
        metadata=_help(
            "weight of an extra training-only reward giving partial credit (0..1) for each of "
            "<think>, </think>, <answer>, </answer> present in order. 0 = the paper's reward only. "
            "A small model that never produces the format gets the same reward for every completion "
            "(no GRPO signal); 0.5 gives it a gradient toward the format"
        ),
    )
    response_prefix: str = field(
        default="",
        metadata=_help(
            "start every reply with this text (e.g. '<think>'): the prompt ends with an open assistant "
            "message the model continues, and rewards judge prefix + completion. Recorded in the "
            "trained templates, so every ranker using the result prefills the same way. Empty = the "
            "dataset's own templates (no prefill unless they have one)"
        ),
    )
    stop_at_answer: bool = field(
        default=True,
        metadata=_help(
            "judge each completion up to its first </answer>, where every iranker backend stops "
            "generating (TRL's transformers generation cannot stop on a string, so it writes on). "
            "false = judge the whole completion (text after the answer then costs the format reward)"
        ),
    )
    log_completions: bool = field(
        default=False,
        metadata=_help("print a sample of prompts and completions at every log step (needs rich)"),
    )
    trl: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help(
            "extra GRPOConfig/RLOOConfig arguments passed through as-is (checked against TRL's fields), "
            "e.g. {top_p: 0.9, loss_type: dr_grpo}"
        ),
    )

    # -- construction -------------------------------------------------------------------------
    def __post_init__(self) -> None:
        if isinstance(self.reward, Mapping):
            try:
                self.reward = RewardConfig.from_dict(self.reward)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"reward: {exc}") from None
        if self.trl is None:
            self.trl = {}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, source: str = "config") -> "TrainConfig":
        """Build from a mapping; an unknown key is a ``ConfigError`` naming it."""
        data = dict(data or {})
        names = set(cls.field_names())
        unknown = [k for k in data if k not in names]
        if unknown:
            hint = ""
            if "ppo" in str(data.get("algorithm", "")).lower():
                hint = " " + PPO_MESSAGE
            raise ConfigError(
                f"{source}: unknown setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)}; known: {', '.join(sorted(names))}{hint}"
            )
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> "TrainConfig":
        """Load a YAML file (a mapping of field names). A relative ``dataset`` or
        ``output_dir`` stays relative to the working directory, as on the command line."""
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - pyyaml is in the train extra
            raise ConfigError("reading YAML configs needs pyyaml: pip install 'iranker[train]'") from exc
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the config {p}: {exc}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the config must be a mapping of settings, got {type(data).__name__}")
        return cls.from_dict(_yaml_floats(cls, data), source=str(p))

    def replace(self, **changes: Any) -> "TrainConfig":
        unknown = [k for k in changes if k not in self.field_names()]
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}")
        cfg = dataclasses.replace(self, **changes)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["reward"] = dataclasses.asdict(self.reward)
        d["trl"] = dict(self.trl)
        if isinstance(d["lora_target_modules"], (list, tuple)):
            d["lora_target_modules"] = list(d["lora_target_modules"])
        return d

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    # -- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ConfigError`` for values that cannot work (checked before any model loads)."""
        alg = str(self.algorithm).lower()
        if alg == "ppo":
            raise ConfigError(PPO_MESSAGE)
        if alg not in ALGORITHMS:
            raise ConfigError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        self.algorithm = alg
        for name in (
            "num_generations",
            "max_completion_length",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "max_steps",
            "save_steps",
            "logging_steps",
            "lora_r",
            "lora_alpha",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if str(self.objective) not in CHOICE_OBJECTIVES:
            raise ConfigError(
                f"objective must be one of {', '.join(CHOICE_OBJECTIVES)}, got {self.objective!r}"
            )
        for name in ("eval_rows", "eval_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.dtype is not None and str(self.dtype).lower() not in ("float32", "fp32", "bfloat16", "bf16"):
            raise ConfigError(
                f"dtype must be float32 or bfloat16 (or unset = by hardware), got {self.dtype!r}"
            )
        if alg != "choice" and self.num_generations < 2:
            raise ConfigError("num_generations must be >= 2 (GRPO/RLOO compare completions within a group)")
        generation_batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if alg != "choice" and generation_batch % self.num_generations:
            raise ConfigError(
                f"per_device_train_batch_size x gradient_accumulation_steps ({generation_batch}) must be a "
                f"multiple of num_generations ({self.num_generations})"
            )
        for name in ("learning_rate", "temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or self.beta < 0:
            raise ConfigError(f"beta must be >= 0, got {self.beta!r}")
        if (
            isinstance(self.format_shaping_weight, bool)
            or not isinstance(self.format_shaping_weight, (int, float))
            or self.format_shaping_weight < 0
        ):
            raise ConfigError(f"format_shaping_weight must be >= 0, got {self.format_shaping_weight!r}")
        if not isinstance(self.response_prefix, str):
            raise ConfigError(f"response_prefix must be a string, got {self.response_prefix!r}")
        if not isinstance(self.lora_dropout, (int, float)) or not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.lora_top_layers is not None and (
            isinstance(self.lora_top_layers, bool)
            or not isinstance(self.lora_top_layers, int)
            or self.lora_top_layers < 1
        ):
            raise ConfigError(
                f"lora_top_layers must be a positive integer or null, got {self.lora_top_layers!r}"
            )
        if not (
            self.lora_target_modules == "all-linear"
            or (
                isinstance(self.lora_target_modules, (list, tuple))
                and self.lora_target_modules
                and all(isinstance(m, str) and m for m in self.lora_target_modules)
            )
        ):
            raise ConfigError("lora_target_modules must be 'all-linear' or a non-empty list of module names")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ConfigError(f"threads must be a positive integer, got {self.threads!r}")
        if self.max_train_rows is not None and (
            not isinstance(self.max_train_rows, int) or self.max_train_rows < 1
        ):
            raise ConfigError(f"max_train_rows must be a positive integer, got {self.max_train_rows!r}")
        if self.max_prompt_tokens is not None and (
            isinstance(self.max_prompt_tokens, bool)
            or not isinstance(self.max_prompt_tokens, int)
            or self.max_prompt_tokens < 1
        ):
            raise ConfigError(f"max_prompt_tokens must be a positive integer, got {self.max_prompt_tokens!r}")
        if self.save_total_limit is not None and (
            not isinstance(self.save_total_limit, int) or self.save_total_limit < 1
        ):
            raise ConfigError(
                f"save_total_limit must be a positive integer or null, got {self.save_total_limit!r}"
            )
        for name in ("lora", "gradient_checkpointing", "log_completions", "stop_at_answer"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("use_cpu", "bf16", "use_vllm"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true, false or null (auto), got {getattr(self, name)!r}")
        if self.vllm_mode not in (None, *VLLM_MODES):
            raise ConfigError(
                f"vllm_mode must be one of {', '.join(VLLM_MODES)} or null (auto), got {self.vllm_mode!r}"
            )
        if self.vllm_server_base_url is not None and self.vllm_mode == "colocate":
            raise ConfigError("vllm_server_base_url only applies with vllm_mode: server")
        if not isinstance(self.trl, dict):
            raise ConfigError(f"trl must be a mapping of TRL config arguments, got {type(self.trl).__name__}")
        if not self.model:
            raise ConfigError("model must not be empty")
        if not self.output_dir:
            raise ConfigError("output_dir must not be empty")

    def resolved(
        self, *, cuda: bool | None = None, vllm_installed: bool | None = None, gpus: int | None = None
    ) -> "TrainConfig":
        """A copy with the auto settings (``use_cpu``, ``bf16``, ``use_vllm``, ``vllm_mode``) decided.

        ``cuda`` / ``gpus`` (visible CUDA devices) / ``vllm_installed`` default to what this
        machine has (torch is imported only to ask).
        """
        if cuda is None:
            try:
                import torch

                cuda = bool(torch.cuda.is_available())
                if gpus is None:
                    gpus = int(torch.cuda.device_count()) if cuda else 0
            except ImportError:
                cuda = False
        if gpus is None:
            gpus = 1 if cuda else 0
        bf16_ok = False
        if cuda:
            try:
                import torch

                bf16_ok = bool(torch.cuda.is_bf16_supported())
            except Exception:  # noqa: BLE001 - a probe only
                bf16_ok = False
        if vllm_installed is None:
            vllm_installed = importlib.util.find_spec("vllm") is not None
        use_cpu = (not cuda) if self.use_cpu is None else self.use_cpu
        bf16 = (bf16_ok and not use_cpu) if self.bf16 is None else self.bf16
        use_vllm = (cuda and not use_cpu and vllm_installed) if self.use_vllm is None else self.use_vllm
        if use_vllm and (use_cpu or not cuda):
            raise ConfigError("use_vllm needs a CUDA GPU (and the vllm package); set use_vllm: false on CPU")
        vllm_mode = None
        if use_vllm:
            vllm_mode = self.vllm_mode or ("server" if gpus > 1 else "colocate")
        elif self.vllm_mode is not None:
            raise ConfigError(f"vllm_mode: {self.vllm_mode} needs use_vllm (a CUDA GPU and the vllm package)")
        return dataclasses.replace(self, use_cpu=use_cpu, bf16=bf16, use_vllm=use_vllm, vllm_mode=vllm_mode)


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> TrainConfig:
    """``TrainConfig`` from an optional YAML file, then ``overrides`` (``None`` values ignored)."""
    base = TrainConfig.from_yaml(path).to_dict() if path else {}
    for key, value in overrides.items():
        if value is not None:
            base[key] = value
    return TrainConfig.from_dict(base, source=str(path) if path else "settings")


__all__ = ["ALGORITHMS", "ConfigError", "PPO_MESSAGE", "TrainConfig", "load_config"]
