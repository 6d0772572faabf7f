"""``iranker.json``: what a trained model folder (or checkpoint) was trained from and with.

Every folder ``iranker train`` writes — the final output folder and each ``checkpoint-N/`` —
holds an ``iranker.json`` next to the weights or adapter::

    {"format": "iranker-run/1", "base_model": "smollm2-135m", "adapter": true,
     "templates": {"passage": {...PromptTemplate.to_dict()...}, ...},
     "reward": {...RewardConfig...}, "train_config": {...}, "trl_args": {...}, ...}

so the prompts a model was trained with travel with it. ``trained_templates(path)`` turns the
``templates`` entry back into ``{scenario: PromptTemplate}`` — the ``templates=`` argument of
``IterativeRanker`` / ``DirectRanker``.

This module imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping

from .atomic_files import atomic_write_text
from .scenarios import SCENARIO_CLASSES, PromptTemplate, get_scenario

RUN_INFO_FILE = "iranker.json"
RUN_INFO_FORMAT = "iranker-run/1"


def read_run_info(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``iranker.json`` of a model folder (or the file itself); ``None`` if there is none."""
    p = Path(path).expanduser()
    f = p if p.is_file() and p.name.endswith(".json") else p / RUN_INFO_FILE
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {f}: {exc}") from None
    if not isinstance(data, dict) or data.get("format", "").split("/")[0] != RUN_INFO_FORMAT.split("/")[0]:
        raise ValueError(
            f"{f} is not an iranker run file (format {data.get('format') if isinstance(data, dict) else '?'!r})"
        )
    return data


def templates_from_info(info: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{scenario: PromptTemplate}`` from a run-info mapping (empty when it has none).

    The reply prefix and the closing label (``segment_end``) are habits of the *model*, not of
    a scenario: when every recorded template has the same one (e.g. replies starting with
    ``<think>``, or segments without a closing label because the model was trained before it
    existed), the scenarios the model was not trained on (zero-shot transfer) get their
    default template with that habit too, so the model sees them in the format it learned -
    and a model trained without closing labels does not silently get them on its zero-shot
    scenarios when the defaults change.
    """

    out = {}
    for scenario, d in ((info or {}).get("templates") or {}).items():
        out[str(scenario)] = PromptTemplate.from_dict(dict(d))
    habits: dict[str, str] = {}
    for key in ("response_prefix", "segment_end"):
        values = {getattr(t, key) for t in out.values()}
        if len(values) == 1:
            habits[key] = values.pop()
    for name in SCENARIO_CLASSES:
        if name not in out and habits:
            default = get_scenario(name).template
            changed = {k: v for k, v in habits.items() if getattr(default, k) != v}
            if changed:
                out[name] = dataclasses.replace(default, **changed)
    return out


def trained_templates(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The prompt templates a trained folder was trained with (empty dict if not an iranker run)."""
    return templates_from_info(read_run_info(path))


#: ranking settings a run may record (``iranker.json`` ``ranking``) and their allowed values
RANKING_KEYS = {"decode": ("generate", "choice"), "reuse": ("none", "kv")}


def ranking_from_info(info: Mapping[str, Any] | None) -> dict[str, str]:
    """How the model ranks by default (``{"decode": ..., "reuse": ...}``; empty if unrecorded).

    Unknown keys or values are errors: a checkpoint must not silently rank differently from
    what it says.
    """
    rec = dict((info or {}).get("ranking") or {})
    for key, value in rec.items():
        if key not in RANKING_KEYS:
            raise ValueError(f"iranker.json: unknown ranking setting {key!r}; known: {sorted(RANKING_KEYS)}")
        if value not in RANKING_KEYS[key]:
            raise ValueError(f"iranker.json: ranking {key} must be one of {RANKING_KEYS[key]}, got {value!r}")
    return {k: str(v) for k, v in rec.items()}


def trained_ranking(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ranking settings a trained folder records (empty dict if none)."""
    return ranking_from_info(read_run_info(path))


def write_run_info(folder: str | os.PathLike[str], info: Mapping[str, Any]) -> Path:
    """Write ``folder/iranker.json`` atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(
        folder / RUN_INFO_FILE, json.dumps(dict(info), indent=2, ensure_ascii=False, default=str) + "\n"
    )


def set_adapter_base(folder: str | os.PathLike[str], base: str) -> bool:
    """Point ``folder/adapter_config.json``'s ``base_model_name_or_path`` at ``base``.

    PEFT writes the path the base was loaded from (for the embedded model: the cached fp32
    folder under the user's cache). The alias (``smollm2-135m``) or the path the user gave is
    what iranker's model resolution should see, on this machine and on others. Returns
    whether the file existed.
    """
    f = Path(folder) / "adapter_config.json"
    if not f.is_file():
        return False
    data = json.loads(f.read_text(encoding="utf-8"))
    data["base_model_name_or_path"] = base
    atomic_write_text(f, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return True


__all__ = [
    "RUN_INFO_FILE",
    "RUN_INFO_FORMAT",
    "RANKING_KEYS",
    "ranking_from_info",
    "read_run_info",
    "trained_ranking",
    "set_adapter_base",
    "templates_from_info",
    "trained_templates",
    "write_run_info",
]
