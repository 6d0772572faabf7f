"""Training: RL on elimination steps with TRL on one machine, and export for verl on clusters.

``TrainConfig`` (config.py) holds every setting; ``train(config, resume=False)`` dispatches on
``config.algorithm``: ``choice`` (choice_trainer.py, exact policy gradients on the label
logits) or ``grpo``/``rloo`` (grpo_trainer.py, TRL). The two trainers never import each other;
what they share (dataset loading, the policy, LoRA, callbacks, run info) is in common.py.
``export_verl`` (verl_export.py) writes verl's parquet data, a reward module and a launch
script. Heavy libraries (torch, trl, peft, datasets) are imported only when training starts.
"""

from __future__ import annotations

from typing import Any

from ..run_info import read_run_info, trained_templates
from .config import ConfigError, TrainConfig, load_config
from .grpo_trainer import train_grpo

__all__ = ["ConfigError", "TrainConfig", "load_config", "read_run_info", "train", "trained_templates"]


def train(config: TrainConfig, resume: bool = False, *, quiet: bool = False) -> Any:
    """Train ``config`` with its algorithm; returns a ``TrainResult`` (where the model went,
    steps and timings). ``resume=True`` continues from the last checkpoint in ``output_dir``."""
    config.validate()
    if config.algorithm == "choice":
        from .choice_trainer import train_choice

        return train_choice(config, resume=resume, quiet=quiet)

    return train_grpo(config, resume=resume, quiet=quiet)
