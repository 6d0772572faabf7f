"""What every training algorithm shares: data, policy, LoRA, arguments, callbacks, run info.

Like TRL's trainers, ``grpo_trainer`` (GRPO/RLOO with TRL) and ``choice_trainer`` (the exact
policy over a pool's labels) never import each other: both build on this module, and
``iranker.train.train`` dispatches on ``algorithm`` in one place.

- data: ``load_step_dataset`` (a folder from ``iranker data steps``), prompt-length filtering,
  the templates the prompts were rendered with, a response prefix;
- model: ``load_policy`` (the embedded base through its dense folder, or a continued adapter),
  ``lora_config`` (all layers or the top ``lora_top_layers``);
- run: ``check_output_dir`` / ``--resume``, ``callbacks`` (``train_log.jsonl``, an
  ``iranker.json`` in every checkpoint), ``run_info_record`` (written once for every
  algorithm), ``finish_run``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..llm.base import chat_template_flags, is_prefilled, require
from ..llm.models import EMBEDDED_ALIASES, dense_model_dir, resolve_model
from ..llm.transformers_backend import ensure_chat_template
from ..run_info import RUN_INFO_FORMAT, set_adapter_base, write_run_info
from ..scenarios import get_scenario
from ..signals.recorded import signals_of_steps
from .config import ConfigError, TrainConfig

TRAIN_LOG_FILE = "train_log.jsonl"


CONFIG_FILE = "train_config.yaml"


#: settings that may change between a run and its --resume without changing what is trained
RESUME_SAFE = {
    "max_steps",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "threads",
    "log_completions",
    "use_cpu",
    "bf16",
    "use_vllm",
    "output_dir",
    "dataset",
    "eval_dataset",
    "eval_rows",
    "eval_steps",
}


class TrainError(RuntimeError):
    """Training cannot start or finish; the message says why and what to do."""


@dataclass
class TrainResult:
    output_dir: Path
    global_step: int
    resumed_from: str | None
    seconds: float
    steps_this_run: int
    seconds_per_step: float | None
    last_log: dict[str, Any] = field(default_factory=dict)


REQUIRED_COLUMNS = ("prompt", "pool", "best")


def dataset_paths(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any] | None]:
    """(parquet file, info.json content or None) for a steps folder or a parquet file."""
    p = Path(path).expanduser()
    if p.is_dir():
        info_path = p / "info.json"
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else None
        name = (info or {}).get("file") or "train.parquet"
        parquet = p / name
        if not parquet.is_file():
            raise TrainError(
                f"dataset folder {p} has no {name}; build it with `iranker data steps --out {p}`"
            )
        return parquet, info
    if p.is_file():
        info_path = p.with_name("info.json")
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else None
        return p, info
    raise TrainError(
        f"dataset {str(p)!r} does not exist (a folder from `iranker data steps` or a .parquet file)"
    )


def load_step_dataset(config: TrainConfig):
    """(datasets.Dataset, info) for ``config.dataset``; checks the step columns are there."""

    datasets = require("datasets", "train", "loading the step dataset")
    if not config.dataset:
        raise ConfigError("dataset is not set: pass a folder written by `iranker data steps` (dataset: DIR)")
    parquet, info = dataset_paths(config.dataset)
    ds = datasets.Dataset.from_parquet(str(parquet))
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise TrainError(f"{parquet} lacks the step column(s) {missing}; it has {ds.column_names}")
    if config.max_train_rows is not None and len(ds) > config.max_train_rows:
        ds = ds.select(range(config.max_train_rows))
    if len(ds) == 0:
        raise TrainError(f"{parquet} has no rows")
    return ds, (info or {}), parquet


def prompt_tokens(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> int:
    """Tokens of ``messages`` as the trainer feeds them (chat template + generation prompt, or
    the open final assistant message when the reply is prefilled — TRL's own rule)."""
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, **chat_template_flags(messages))
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def with_response_prefix(ds, templates: dict[str, dict[str, str]], prefix: str):
    """Prefill every prompt's reply with ``prefix`` and record it in ``templates``.

    Rows whose prompt already ends with an assistant message get that message replaced, so
    the dataset and the recorded templates always agree.
    """

    def add(row: dict[str, Any]) -> dict[str, Any]:
        msgs = [dict(m) for m in row["prompt"]]
        if is_prefilled(msgs):
            msgs = msgs[:-1]
        return {"prompt": msgs + [{"role": "assistant", "content": prefix}]}

    for t in templates.values():
        t["response_prefix"] = prefix
    return ds.map(add, desc="prefilling replies")


def drop_long_prompts(ds, tokenizer: Any, max_tokens: int):
    """(rows with prompts of at most ``max_tokens`` tokens, how many were dropped)."""
    keep = [i for i, p in enumerate(ds["prompt"]) if prompt_tokens(tokenizer, p) <= max_tokens]
    return ds.select(keep), len(ds) - len(keep)


def templates_for(ds, info: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The templates the dataset's prompts were rendered with: info.json's, else the defaults."""
    if info.get("templates"):
        return {str(k): dict(v) for k, v in info["templates"].items()}

    scenarios = sorted(set(ds["scenario"])) if "scenario" in ds.column_names else []
    return {s: get_scenario(s).template.to_dict() for s in scenarios}


@dataclass
class LoadedPolicy:
    model: Any
    tokenizer: Any
    base_reference: str  # what adapter_config.json / iranker.json name as the base
    base_folder: str  # the folder (or hub id) the weights were loaded from
    continued_adapter: str | None = None


def _detach_gguf_quantizer(model: Any) -> None:
    """transformers leaves a GGUF quantizer on a dequantised (dense fp32) model; TRL then
    refuses it. The cached dense folder has none, but be safe for any folder."""
    if getattr(model, "quantization_method", None) in ("gguf", "GGUF") or (
        getattr(model, "hf_quantizer", None) is not None
        and "gguf" in type(model.hf_quantizer).__name__.lower()
    ):
        model.hf_quantizer = None
        model.is_quantized = False
        model.quantization_method = None
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")


def base_reference(given: str, resolved: Any) -> str:
    """How to name the base model portably: the alias or hub id as given, else an absolute path."""

    if given.strip().lower() in EMBEDDED_ALIASES:
        return EMBEDDED_ALIASES[0]
    if resolved.kind == "hub":
        return resolved.path
    return str(Path(resolved.path).resolve())


def load_policy(config: TrainConfig, dtype: Any = None) -> LoadedPolicy:
    """Load tokenizer and trainable model for ``config.model`` (fp32 unless ``dtype`` is given).

    A continued LoRA adapter keeps fp32 weights whatever the base's dtype."""

    torch = require("torch", "train", "training")
    tf = require("transformers", "train", "training")
    resolved = resolve_model(config.model)
    continued = None
    if resolved.kind == "adapter":
        assert resolved.base is not None
        adapter_cfg = json.loads((Path(resolved.path) / "adapter_config.json").read_text(encoding="utf-8"))
        base_ref = str(adapter_cfg.get("base_model_name_or_path"))
        continued = resolved.path
        base = resolved.base
    else:
        base = resolved
        base_ref = base_reference(config.model, resolved)
    folder = str(dense_model_dir(base.path)) if base.kind == "gguf" else base.path
    tokenizer = tf.AutoTokenizer.from_pretrained(folder)

    ensure_chat_template(tokenizer)  # a base model without one: plain turns (saved with the run)
    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32)
    _detach_gguf_quantizer(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if continued:
        peft = require("peft", "train", "continuing a LoRA adapter")
        model = peft.PeftModel.from_pretrained(
            model, continued, is_trainable=True, autocast_adapter_dtype=True
        )
    return LoadedPolicy(model, tokenizer, base_ref, folder, continued)


def lora_config(config: TrainConfig, model: Any = None):
    """peft's LoraConfig of ``config``. ``model`` is needed when ``lora_top_layers`` restricts
    the adapter to the top decoder layers: peft takes layer indices only with a list of module
    names, so 'all-linear' becomes the names of the linear layers inside the decoder blocks."""

    peft = require("peft", "train", "LoRA training")
    targets = config.lora_target_modules
    layers = None
    if config.lora_top_layers is not None:
        num_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if not num_layers:
            raise TrainError("lora_top_layers needs a model whose config names its number of decoder layers")
        if config.lora_top_layers > num_layers:
            raise ConfigError(
                f"lora_top_layers is {config.lora_top_layers} but the model has {num_layers} layers"
            )
        layers = list(range(num_layers - config.lora_top_layers, num_layers))
        if targets == "all-linear":
            torch = require("torch", "train", "LoRA training")
            targets = sorted(
                {
                    name.rsplit(".", 1)[-1]
                    for name, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and ".layers." in name
                }
            )
    return peft.LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(targets) if isinstance(targets, (list, tuple)) else targets,
        task_type="CAUSAL_LM",
        layers_to_transform=layers,
    )


def trainer_arguments(config: TrainConfig) -> dict[str, Any]:
    """The ``TrainingArguments`` keywords every algorithm shares (schedule, batch, checkpoints,
    logging, device); each trainer adds its own (``trl_arguments``, ``choice_trainer``)."""
    return dict(
        output_dir=config.output_dir,
        learning_rate=float(config.learning_rate),
        lr_scheduler_type=config.lr_scheduler_type,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_steps=config.max_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        seed=config.seed,
        use_cpu=bool(config.use_cpu),
        fp16=False,
        gradient_checkpointing=config.gradient_checkpointing,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        report_to="none",
    )


def dataset_record(
    parquet: Path, rows_used: int, dropped_long: int, info: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``dataset`` entry of ``iranker.json``: where the rows came from and how many were used."""
    return {
        "path": str(parquet),
        "rows_used": rows_used,
        "rows_dropped_long_prompt": dropped_long,
        **{
            k: info.get(k)
            for k in (
                "split",
                "seed",
                "rows",
                "examples",
                "leave_out",
                "max_per_task",
                "split_rule",
                "mixing",
                "source",
            )
            if k in info
        },
        "tasks": {
            t: {"rows": v.get("rows"), "examples": v.get("examples"), "scenario": v.get("scenario")}
            for t, v in (info.get("tasks") or {}).items()
        },
    }


def jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def callbacks(output_dir: Path, run_info: Callable[[int], dict[str, Any]], base_ref: str | None):
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        """Appends every log event to ``train_log.jsonl`` with the step and seconds per step.

        On resume, lines logged after the checkpoint's step are dropped first: those steps are
        trained again, so the log never holds a step twice.
        """

        def __init__(self) -> None:
            self.path = output_dir / TRAIN_LOG_FILE
            self.step_times: list[float] = []
            self._pending: list[float] = []
            self._t0: float | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                keep = []
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue  # a line cut by an interruption
                    if int(rec.get("step", 0)) <= state.global_step:
                        keep.append(line)
                self.path.write_text("".join(k + "\n" for k in keep), encoding="utf-8")

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self._t0 is not None:
                dt = time.perf_counter() - self._t0
                self.step_times.append(dt)
                self._pending.append(dt)
                self._t0 = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:
                return
            rec = {
                "step": state.global_step,
                "epoch": state.epoch,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            if self._pending:
                rec["seconds_per_step"] = round(sum(self._pending) / len(self._pending), 3)
                self._pending = []
            rec.update({k: jsonable(v) for k, v in (logs or {}).items()})
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")
            self.last = rec

    class CheckpointInfo(TrainerCallback):
        """Makes every checkpoint loadable on its own: ``iranker.json`` + a resolvable adapter base."""

        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            ckpt = output_dir / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                if base_ref:
                    set_adapter_base(ckpt, base_ref)
                write_run_info(ckpt, run_info(state.global_step))

    return StepLog(), CheckpointInfo()


def set_threads(config: TrainConfig) -> None:
    threads = config.threads
    if threads is None and os.environ.get("IRANKER_THREADS"):
        threads = int(os.environ["IRANKER_THREADS"])
    if threads:
        import torch

        torch.set_num_threads(threads)


def last_checkpoint(output_dir: str | os.PathLike[str]) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    p = Path(output_dir)
    return get_last_checkpoint(str(p)) if p.is_dir() else None


def _check_resume_config(output_dir: Path, config: TrainConfig) -> list[str]:
    """Settings that differ from the saved run's (other than the resume-safe ones)."""
    saved = output_dir / CONFIG_FILE
    if not saved.is_file():
        return []
    import yaml

    old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    new = config.to_dict()
    return sorted(k for k in new if k not in RESUME_SAFE and k in old and old[k] != new[k])


def check_output_dir(out: Path, config: TrainConfig, resume: bool, say: Callable[..., None]) -> str | None:
    """The checkpoint to resume from (or None); refuses to overwrite a run without ``resume``."""
    ckpt = last_checkpoint(out)
    if resume:
        if ckpt is None:
            say(f"no checkpoint in {out} yet: starting from the beginning")
        else:
            changed = _check_resume_config(out, config)
            if changed:
                say(
                    f"warning: resuming with changed settings {changed}; the run is no longer one "
                    "consistent training run"
                )
    elif ckpt is not None or (out / "iranker.json").is_file():
        raise TrainError(
            f"{out} already holds a training run ({'checkpoint ' + Path(ckpt).name if ckpt else 'a final model'}); "
            "pass --resume to continue it, or choose another output_dir"
        )
    return ckpt


def finish_run(
    trainer: Any,
    tokenizer: Any,
    out: Path,
    adapter_base: str | None,
    run_info: Callable[[int], dict[str, Any]],
    step_log: Any,
    resume_from: str | None,
    seconds: float,
    say: Callable[..., None],
) -> TrainResult:
    """Save the final model (adapter: its base named by alias) with ``iranker.json``, and
    report the run: the one ending of every algorithm's run."""
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    if adapter_base is not None:
        set_adapter_base(out, adapter_base)
    write_run_info(out, run_info(trainer.state.global_step))
    times = step_log.step_times
    result = TrainResult(
        output_dir=out,
        global_step=trainer.state.global_step,
        resumed_from=resume_from,
        seconds=seconds,
        steps_this_run=len(times),
        seconds_per_step=(sum(times) / len(times)) if times else None,
        last_log=getattr(step_log, "last", {}),
    )
    say(
        f"done: step {result.global_step}, {result.steps_this_run} steps in {seconds:.1f} s"
        + (f" ({result.seconds_per_step:.1f} s/step)" if result.seconds_per_step else "")
        + f"; model in {out} (use --model {out})"
    )
    return result


def versions() -> dict[str, str]:

    out = {}
    for pkg in ("iranker", "trl", "transformers", "peft", "torch", "datasets", "accelerate"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_info_record(
    config: TrainConfig,
    policy: LoadedPolicy,
    *,
    adapter: bool,
    step: int,
    templates: Mapping[str, Any],
    info: Mapping[str, Any],
    dataset: Mapping[str, Any],
    versions: Mapping[str, str],
    **by_algorithm: Any,
) -> dict[str, Any]:
    """The ``iranker.json`` of a run at ``step``: the fields every algorithm writes, then its own
    (``by_algorithm``: e.g. the choice objective and ranking mode, or GRPO's TRL arguments).
    Every checkpoint and the final folder carry it, so any of them loads on its own."""
    return {
        "format": RUN_INFO_FORMAT,
        "base_model": policy.base_reference,
        "base_model_loaded_from": policy.base_folder,
        "adapter": adapter,
        "continued_from_adapter": policy.continued_adapter,
        "algorithm": config.algorithm,
        "global_step": step,
        "templates": dict(templates),
        "signals": signals_of_steps(info),  # {scenario: [names]} the prompts showed; {} = none
        "reward": dataclasses.asdict(config.reward),
        "train_config": config.to_dict(),
        **by_algorithm,
        "dataset": dict(dataset),
        "versions": dict(versions),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


__all__ = [
    "CONFIG_FILE",
    "LoadedPolicy",
    "REQUIRED_COLUMNS",
    "RESUME_SAFE",
    "TRAIN_LOG_FILE",
    "TrainError",
    "TrainResult",
    "base_reference",
    "callbacks",
    "check_output_dir",
    "dataset_paths",
    "dataset_record",
    "drop_long_prompts",
    "finish_run",
    "jsonable",
    "last_checkpoint",
    "load_policy",
    "load_step_dataset",
    "lora_config",
    "prompt_tokens",
    "run_info_record",
    "set_threads",
    "templates_for",
    "trainer_arguments",
    "versions",
    "with_response_prefix",
]
