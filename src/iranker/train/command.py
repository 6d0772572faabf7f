"""``iranker train`` and ``iranker export-verl``.

``iranker train --config FILE.yaml [--resume] [--max-steps N] [--any-setting VALUE ...]``:
every ``TrainConfig`` field is also a flag (``max_steps`` -> ``--max-steps``) with the field's
help text; flags override the YAML file, which overrides the defaults. Reward settings are
``--exclusion-weight`` etc.; extra TRL arguments ``--trl KEY=VALUE`` (value read as YAML).

``iranker export-verl --tasks LIST --out DIR [...]`` writes verl's parquet data, the reward
module and ``run_verl.sh`` (see ``iranker.train.verl_export``).

``iranker.cli.main`` calls ``add_parser(subparsers)`` once; it adds both subcommands.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from typing import Any

from ..cli.errors import CLIError
from ..data.io import DataError
from ..data.steps_command import StepsError
from ..llm.base import BackendError, MissingExtraError
from ..rewards import RewardConfig
from ..types import SCENARIOS
from . import train
from .common import TrainError
from .config import ConfigError, TrainConfig
from .verl_export import ADV_ESTIMATORS, export_verl

#: TrainConfig fields that are not plain flags
_SPECIAL = {"reward", "trl"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_auto_bool(text: str):
    return None if text.strip().lower() in ("auto", "none", "null") else _parse_bool(text)


def _parse_optional_int(text: str):
    return None if text.strip().lower() in ("none", "null", "all") else int(text)


def _parse_modules(text: str):
    text = text.strip()
    return text if text == "all-linear" else [m.strip() for m in text.split(",") if m.strip()]


def _parse_trl(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--trl takes KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    import yaml

    return key.strip(), yaml.safe_load(value)


def _help(f: dataclasses.Field) -> str:
    return f.metadata.get("help", "").replace("%", "%%")


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per ``TrainConfig`` field (default: not given, so YAML/defaults apply)."""
    hints = typing.get_type_hints(TrainConfig)
    g = p.add_argument_group("settings (override the config file; defaults in brackets)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in _SPECIAL:
            continue
        hint = hints[f.name]
        args = typing.get_args(hint)
        default = f.default if f.default is not dataclasses.MISSING else None
        kw: dict[str, Any] = dict(
            dest=f.name,
            default=argparse.SUPPRESS,
            help=f"{_help(f)} [{'auto' if default is None and bool in args else default}]",
        )
        if f.name == "lora_target_modules":
            kw.update(type=_parse_modules, metavar="MODULES")
        elif hint is bool:
            kw.update(type=_parse_bool, metavar="true|false")
        elif bool in args:  # bool | None
            kw.update(type=_parse_auto_bool, metavar="true|false|auto")
        elif hint is int:
            kw.update(type=int, metavar="N")
        elif int in args:  # int | None
            kw.update(type=_parse_optional_int, metavar="N")
        elif hint is float:
            kw.update(type=float, metavar="X")
        else:
            kw.update(type=str, metavar="VALUE")
        g.add_argument(_flag(f.name), **kw)
    r = p.add_argument_group("reward (RewardConfig)")
    for f in dataclasses.fields(RewardConfig):
        r.add_argument(
            _flag(f.name),
            dest=f"reward__{f.name}",
            type=float,
            default=argparse.SUPPRESS,
            metavar="X",
            help=f"[{f.default}]",
        )
    p.add_argument(
        "--trl",
        dest="trl_items",
        type=_parse_trl,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra GRPOConfig/RLOOConfig argument (repeatable), e.g. --trl top_p=0.9",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` that ``--config`` plus the flags describe."""
    base: dict[str, Any] = TrainConfig.from_yaml(args.config).to_dict() if args.config else {}
    for f in dataclasses.fields(TrainConfig):
        if f.name not in _SPECIAL and hasattr(args, f.name):
            base[f.name] = getattr(args, f.name)
    reward = dict(base.get("reward") or {})
    for f in dataclasses.fields(RewardConfig):
        key = f"reward__{f.name}"
        if hasattr(args, key):
            reward[f.name] = getattr(args, key)
    if reward:
        base["reward"] = reward
    if args.trl_items:
        trl = dict(base.get("trl") or {})
        trl.update(dict(args.trl_items))
        base["trl"] = trl
    return TrainConfig.from_dict(base, source=args.config or "flags")


# -- train ----------------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    if not config.dataset:
        raise CLIError(
            "no dataset: set `dataset:` in --config or pass --dataset DIR (from `iranker data steps`)"
        )

    try:
        train(config, resume=args.resume)
    except (ConfigError, TrainError, BackendError, MissingExtraError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="RL-train a ranker on elimination steps with TRL (GRPO/RLOO, CPU or one GPU)",
        description="Train with TRL GRPO (default) or RLOO on a step dataset from `iranker data steps`. "
        "Checkpoints every save_steps in output_dir; --resume continues from the last one. "
        "The result folder (model or LoRA adapter + iranker.json with the prompt templates) "
        "works as --model for rank/eval/serve. PPO: use `iranker export-verl` and verl. "
        "Needs: pip install 'iranker[train]'.",
    )
    p.add_argument(
        "--config", "-c", default=None, help="YAML file of settings (the names below, with underscores)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in output_dir (weights, optimiser, RNG, step)",
    )
    p.add_argument(
        "--print-config", action="store_true", help="print the resulting settings as YAML and exit"
    )
    add_train_flags(p)
    p.set_defaults(func=run_train)
    return p


# -- export-verl ----------------------------------------------------------------------------------
def run_export(args: argparse.Namespace) -> int:

    reward_values = {
        f.name: getattr(args, f"reward__{f.name}")
        for f in dataclasses.fields(RewardConfig)
        if hasattr(args, f"reward__{f.name}")
    }
    try:
        info = export_verl(
            out=args.out,
            tasks=args.tasks or (),
            data_dir=args.data_dir,
            input_path=args.input_path,
            test_input=args.test_input,
            seed=args.seed,
            max_per_task=args.max_per_task,
            max_test_per_task=args.max_test_per_task,
            limit=args.limit,
            leave_out=args.leave_out,
            model=args.model,
            adv_estimator=args.algorithm,
            n_gpus=args.n_gpus,
            nnodes=args.nnodes,
            rollout_n=args.rollout_n,
            train_batch_size=args.train_batch_size,
            mini_batch_size=args.mini_batch_size,
            micro_batch_size=args.micro_batch_size,
            max_prompt_length=args.max_prompt_length,
            max_response_length=args.max_response_length,
            actor_lr=args.actor_lr,
            critic_lr=args.critic_lr,
            epochs=args.epochs,
            save_freq=args.save_freq,
            test_freq=args.test_freq,
            lora_rank=args.lora_rank,
            reward=RewardConfig(**reward_values) if reward_values else None,
        )
    except (StepsError, DataError, BackendError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    print(
        f"wrote {info['rows']['train']} train / {info['rows']['test']} test rows, iranker_reward.py and "
        f"run_verl.sh to {args.out} (leak check passed against {info['leak_check']['test_examples']} test "
        f"examples)",
        file=sys.stderr,
    )
    if info["verl"]["model_note"]:
        print(f"note: {info['verl']['model_note']}", file=sys.stderr)
    print(
        f"next, in a verl environment: bash {args.out}/run_verl.sh   "
        "(setup: pip install 'verl[vllm]==0.9.1'; pip install --no-deps iranker rapidfuzz)",
        file=sys.stderr,
    )
    return 0


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:

    p = subparsers.add_parser(
        "export-verl",
        help="write verl data, reward module and launch script (PPO/GRPO on GPU clusters)",
        description="Write DIR/train.parquet and DIR/test.parquet in verl's RL dataset schema, "
        "DIR/iranker_reward.py (verl's custom_reward_function) and DIR/run_verl.sh "
        "(python -m verl.trainer.main_ppo). verl needs its own environment: "
        "pip install 'verl[vllm]==0.9.1'; pip install --no-deps iranker rapidfuzz.",
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--tasks",
        default=None,
        help="comma list of tasks (train split for training, test split for validation)",
    )
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument(
        "--data-dir", default=None, help="folder with the task sources (default $IRANKER_DATA_DIR)"
    )
    d.add_argument(
        "--input", dest="input_path", default=None, help="training examples JSONL instead of --tasks"
    )
    d.add_argument(
        "--test-input", default=None, help="with --input: the test examples JSONL (validation set)"
    )
    d.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    d.add_argument("--max-per-task", type=int, default=None, help="cap training rows per task")
    d.add_argument("--max-test-per-task", type=int, default=200, help="cap test rows per task (default 200)")
    d.add_argument("--limit", type=int, default=None, help="training examples per task")
    d.add_argument(
        "--leave-out",
        choices=SCENARIOS,
        default=None,
        help="drop a scenario from training (it stays in test: zero-shot protocol)",
    )
    v = p.add_argument_group("verl run (defaults written into run_verl.sh; all overridable by env variables)")
    v.add_argument(
        "--model",
        default="smollm2-135m",
        help="model for verl: HF id or local HF folder (the alias smollm2-135m becomes "
        "HuggingFaceTB/SmolLM2-135M-Instruct)",
    )
    v.add_argument(
        "--algorithm",
        choices=ADV_ESTIMATORS,
        default="gae",
        help="algorithm.adv_estimator: gae = PPO with a critic (the paper), grpo",
    )
    v.add_argument("--n-gpus", type=int, default=1, help="GPUs per node (default 1)")
    v.add_argument("--nnodes", type=int, default=1, help="nodes (default 1)")
    v.add_argument("--rollout-n", type=int, default=4, help="completions per prompt for grpo (default 4)")
    v.add_argument("--train-batch-size", type=int, default=64, help="prompts per step (default 64)")
    v.add_argument("--mini-batch-size", type=int, default=32, help="PPO mini-batch (default 32)")
    v.add_argument("--micro-batch-size", type=int, default=4, help="micro-batch per GPU (default 4)")
    v.add_argument(
        "--max-prompt-length",
        type=int,
        default=None,
        help="tokens (default: estimated from the data, rounded up to 256)",
    )
    v.add_argument("--max-response-length", type=int, default=256, help="tokens (default 256)")
    v.add_argument("--actor-lr", type=float, default=1e-6, help="actor learning rate (default 1e-6)")
    v.add_argument(
        "--critic-lr", type=float, default=1e-5, help="critic learning rate, gae only (default 1e-5)"
    )
    v.add_argument("--epochs", type=int, default=1, help="trainer.total_epochs (default 1)")
    v.add_argument("--save-freq", type=int, default=50, help="checkpoint every N steps (default 50)")
    v.add_argument("--test-freq", type=int, default=25, help="validate every N steps (default 25)")
    v.add_argument(
        "--lora-rank", type=int, default=0, help="LoRA rank in verl (default 0 = full fine-tuning)"
    )
    r = p.add_argument_group("reward (written into each row's ground truth when not the default)")
    for f in dataclasses.fields(RewardConfig):
        r.add_argument(
            _flag(f.name),
            dest=f"reward__{f.name}",
            type=float,
            default=argparse.SUPPRESS,
            metavar="X",
            help=f"[{f.default}]",
        )
    p.set_defaults(func=run_export)
    return p


def add_parser(subparsers: Any) -> None:
    """Add ``train`` and ``export-verl`` to an argparse ``subparsers`` object."""
    add_train_parser(subparsers)
    add_export_parser(subparsers)


__all__ = ["add_parser", "config_from_args", "run_export", "run_train"]
