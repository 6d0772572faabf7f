"""Training: RL on elimination steps with TRL on one machine, and export for verl on clusters.

``TrainConfig`` (config.py) holds every setting; ``train(config, resume=False)``
(trl_trainer.py) runs GRPO/RLOO with TRL; ``export_verl`` (verl_export.py) writes verl's
parquet data, a reward module and a launch script. Heavy libraries (torch, trl, peft,
datasets) are imported only when training or exporting starts.
"""

from __future__ import annotations

from .config import ConfigError, TrainConfig, load_config
from ..run_info import read_run_info, trained_templates

__all__ = ["ConfigError", "TrainConfig", "load_config", "read_run_info", "train", "trained_templates"]


def train(config: TrainConfig, resume: bool = False, **kwargs):
    """Run RL training (see ``iranker.train.trl_trainer.train``)."""
    from .trl_trainer import train as _train

    return _train(config, resume=resume, **kwargs)
