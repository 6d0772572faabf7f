"""RL training on elimination steps with TRL (GRPO, or RLOO) on one machine — CPU or one GPU.

``train(config, resume=False)``:

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
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..llm.base import chat_template_flags, is_prefilled
from ..rewards import make_trl_reward, response_text
from ..signals.recorded import signals_of_steps
from ..run_info import RUN_INFO_FORMAT, set_adapter_base, write_run_info
from .config import ConfigError, TrainConfig

TRAIN_LOG_FILE = "train_log.jsonl"
CONFIG_FILE = "train_config.yaml"

#: settings that may change between a run and its --resume without changing what is trained
RESUME_SAFE = {"max_steps", "save_steps", "save_total_limit", "logging_steps", "threads",
               "log_completions", "use_cpu", "bf16", "use_vllm", "output_dir", "dataset",
               "eval_dataset", "eval_rows", "eval_steps"}


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


# -- rewards --------------------------------------------------------------------------------------
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


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
        return [format_shaping_score(response_text(prompts[i] if prompts else None, c, stop_at_answer=stop_at_answer))
                for i, c in enumerate(completions)]

    return iranker_format_shaping


def reward_functions(config: TrainConfig) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """The TRL reward functions of a run and their weights."""
    funcs = [make_trl_reward("step", config.reward, stop_at_answer=config.stop_at_answer)]
    weights = [1.0]
    if config.format_shaping_weight > 0:
        funcs.append(make_format_shaping_reward(stop_at_answer=config.stop_at_answer))
        weights.append(float(config.format_shaping_weight))
    return funcs, weights


# -- data -----------------------------------------------------------------------------------------
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
            raise TrainError(f"dataset folder {p} has no {name}; build it with `iranker data steps --out {p}`")
        return parquet, info
    if p.is_file():
        info_path = p.with_name("info.json")
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else None
        return p, info
    raise TrainError(f"dataset {str(p)!r} does not exist (a folder from `iranker data steps` or a .parquet file)")


def load_step_dataset(config: TrainConfig):
    """(datasets.Dataset, info) for ``config.dataset``; checks the step columns are there."""
    from ..llm.base import require

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
    from ..scenarios import get_scenario

    scenarios = sorted(set(ds["scenario"])) if "scenario" in ds.column_names else []
    return {s: get_scenario(s).template.to_dict() for s in scenarios}


# -- model ----------------------------------------------------------------------------------------
@dataclass
class LoadedPolicy:
    model: Any
    tokenizer: Any
    base_reference: str      # what adapter_config.json / iranker.json name as the base
    base_folder: str         # the folder (or hub id) the weights were loaded from
    continued_adapter: str | None = None


def _detach_gguf_quantizer(model: Any) -> None:
    """transformers leaves a GGUF quantizer on a dequantised (dense fp32) model; TRL then
    refuses it. The cached dense folder has none, but be safe for any folder."""
    if getattr(model, "quantization_method", None) in ("gguf", "GGUF") or (
            getattr(model, "hf_quantizer", None) is not None
            and "gguf" in type(model.hf_quantizer).__name__.lower()):
        model.hf_quantizer = None
        model.is_quantized = False
        model.quantization_method = None
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")


def base_reference(given: str, resolved: Any) -> str:
    """How to name the base model portably: the alias or hub id as given, else an absolute path."""
    from ..llm.models import EMBEDDED_ALIASES

    if given.strip().lower() in EMBEDDED_ALIASES:
        return EMBEDDED_ALIASES[0]
    if resolved.kind == "hub":
        return resolved.path
    return str(Path(resolved.path).resolve())


def load_policy(config: TrainConfig, dtype: Any = None) -> LoadedPolicy:
    """Load tokenizer and trainable model for ``config.model`` (fp32 unless ``dtype`` is given).

    A continued LoRA adapter keeps fp32 weights whatever the base's dtype."""
    from ..llm.base import require
    from ..llm.models import dense_model_dir, resolve_model

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
    from ..llm.transformers_backend import ensure_chat_template

    ensure_chat_template(tokenizer)  # a base model without one: plain turns (saved with the run)
    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32)
    _detach_gguf_quantizer(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if continued:
        peft = require("peft", "train", "continuing a LoRA adapter")
        model = peft.PeftModel.from_pretrained(model, continued, is_trainable=True, autocast_adapter_dtype=True)
    return LoadedPolicy(model, tokenizer, base_ref, folder, continued)


def lora_config(config: TrainConfig, model: Any = None):
    """peft's LoraConfig of ``config``. ``model`` is needed when ``lora_top_layers`` restricts
    the adapter to the top decoder layers: peft takes layer indices only with a list of module
    names, so 'all-linear' becomes the names of the linear layers inside the decoder blocks."""
    from ..llm.base import require

    peft = require("peft", "train", "LoRA training")
    targets = config.lora_target_modules
    layers = None
    if config.lora_top_layers is not None:
        num_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if not num_layers:
            raise TrainError("lora_top_layers needs a model whose config names its number of decoder layers")
        if config.lora_top_layers > num_layers:
            raise ConfigError(f"lora_top_layers is {config.lora_top_layers} but the model has {num_layers} layers")
        layers = list(range(num_layers - config.lora_top_layers, num_layers))
        if targets == "all-linear":
            torch = require("torch", "train", "LoRA training")
            targets = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                              if isinstance(m, torch.nn.Linear) and ".layers." in name})
    return peft.LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=list(targets) if isinstance(targets, (list, tuple)) else targets,
        task_type="CAUSAL_LM", layers_to_transform=layers,
    )


# -- TRL arguments --------------------------------------------------------------------------------
def trl_classes(algorithm: str):
    from ..llm.base import require

    trl = require("trl", "train", "RL training")
    if algorithm == "grpo":
        return trl.GRPOConfig, trl.GRPOTrainer
    if algorithm == "rloo":
        if not hasattr(trl, "RLOOTrainer"):
            raise ConfigError("this TRL has no RLOOTrainer; use algorithm: grpo")
        return trl.RLOOConfig, trl.RLOOTrainer
    raise ConfigError(f"unknown algorithm {algorithm!r}")


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

        raise ConfigError(f"the installed TRL {getattr(trl, '__version__', '?')} has no {config_cls.__name__} "
                          f"argument(s) {missing}, which iranker sets; install the TRL iranker is tested "
                          "with: pip install 'iranker[train]'")
    args.update(config.trl)
    return args


def dataset_record(parquet: Path, rows_used: int, dropped_long: int, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``dataset`` entry of ``iranker.json``: where the rows came from and how many were used."""
    return {
        "path": str(parquet),
        "rows_used": rows_used,
        "rows_dropped_long_prompt": dropped_long,
        **{k: info.get(k) for k in ("split", "seed", "rows", "examples", "leave_out", "max_per_task",
                                    "split_rule", "mixing", "source") if k in info},
        "tasks": {t: {"rows": v.get("rows"), "examples": v.get("examples"), "scenario": v.get("scenario")}
                  for t, v in (info.get("tasks") or {}).items()},
    }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


# -- callbacks ------------------------------------------------------------------------------------
def _callbacks(output_dir: Path, run_info: Callable[[int], dict[str, Any]], base_ref: str | None):
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
            rec = {"step": state.global_step, "epoch": state.epoch, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            if self._pending:
                rec["seconds_per_step"] = round(sum(self._pending) / len(self._pending), 3)
                self._pending = []
            rec.update({k: _jsonable(v) for k, v in (logs or {}).items()})
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


# -- the run --------------------------------------------------------------------------------------
def _set_threads(config: TrainConfig) -> None:
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
                say(f"warning: resuming with changed settings {changed}; the run is no longer one "
                    "consistent training run")
    elif ckpt is not None or (out / "iranker.json").is_file():
        raise TrainError(
            f"{out} already holds a training run ({'checkpoint ' + Path(ckpt).name if ckpt else 'a final model'}); "
            "pass --resume to continue it, or choose another output_dir")
    return ckpt


def train(config: TrainConfig, resume: bool = False, *, quiet: bool = False) -> TrainResult:
    """Train ``config`` (see the module docstring); returns where the result went and timings."""
    config.validate()
    if config.algorithm == "choice":
        from .choice_trainer import train_choice

        return train_choice(config, resume=resume, quiet=quiet)
    config = config.resolved()
    out = Path(config.output_dir)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    ckpt = check_output_dir(out, config, resume, say)

    config_cls, trainer_cls = trl_classes(config.algorithm)
    trl_args = trl_arguments(config, config_cls)  # checks `trl:` before anything heavy
    _set_threads(config)
    ds, info, parquet = load_step_dataset(config)
    templates = templates_for(ds, info)
    if config.response_prefix:
        ds = with_response_prefix(ds, templates, config.response_prefix)

    say(f"loading {config.model} ...")
    policy = load_policy(config)
    from ..llm.transformers_backend import canonical_head_input

    canonical_head_input(policy.model)  # a frozen lm_head would copy its whole weight every forward
    dropped_long = 0
    if config.max_prompt_tokens:
        ds, dropped_long = drop_long_prompts(ds, policy.tokenizer, config.max_prompt_tokens)
        say(f"dropped {dropped_long} rows with prompts over {config.max_prompt_tokens} tokens; {len(ds)} left")
        if len(ds) == 0:
            raise TrainError(f"no rows have prompts of at most {config.max_prompt_tokens} tokens")
    peft_config = lora_config(config, policy.model) if (config.lora and not policy.continued_adapter) else None
    adapter = bool(peft_config is not None or policy.continued_adapter)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(config.to_yaml(), encoding="utf-8")

    args = config_cls(**trl_args)
    versions = _versions()

    def run_info(step: int) -> dict[str, Any]:
        return {
            "format": RUN_INFO_FORMAT,
            "base_model": policy.base_reference,
            "base_model_loaded_from": policy.base_folder,
            "adapter": adapter,
            "continued_from_adapter": policy.continued_adapter,
            "algorithm": config.algorithm,
            "global_step": step,
            "templates": templates,
            "signals": signals_of_steps(info),  # {scenario: [names]} the prompts showed; {} = none
            "reward_kind": "step",
            "reward": dataclasses.asdict(config.reward),
            "train_config": config.to_dict(),
            "trl_args": {k: _jsonable(v) for k, v in trl_args.items()},
            "dataset": dataset_record(parquet, len(ds), dropped_long, info),
            "versions": versions,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    step_log, ckpt_info = _callbacks(out, run_info, policy.base_reference if adapter else None)
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
    say(f"training {config.algorithm} ({'LoRA' if adapter else 'full'}) on {len(ds)} step rows, "
        f"{config.max_steps} steps, output {out}")
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - t0

    return finish_run(trainer, policy.tokenizer, out, policy.base_reference if adapter else None,
                      run_info, step_log, resume_from, seconds, say)


def finish_run(trainer: Any, tokenizer: Any, out: Path, adapter_base: str | None,
               run_info: Callable[[int], dict[str, Any]], step_log: Any, resume_from: str | None,
               seconds: float, say: Callable[..., None]) -> TrainResult:
    """Save the final model (adapter: its base named by alias) with ``iranker.json``, and
    report the run: the one ending of every algorithm's run."""
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    if adapter_base is not None:
        set_adapter_base(out, adapter_base)
    write_run_info(out, run_info(trainer.state.global_step))
    times = step_log.step_times
    result = TrainResult(
        output_dir=out, global_step=trainer.state.global_step, resumed_from=resume_from,
        seconds=seconds, steps_this_run=len(times),
        seconds_per_step=(sum(times) / len(times)) if times else None,
        last_log=getattr(step_log, "last", {}),
    )
    say(f"done: step {result.global_step}, {result.steps_this_run} steps in {seconds:.1f} s"
        + (f" ({result.seconds_per_step:.1f} s/step)" if result.seconds_per_step else "")
        + f"; model in {out} (use --model {out})")
    return result


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("iranker", "trl", "transformers", "peft", "torch", "datasets", "accelerate"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


__all__ = ["TrainError", "TrainResult", "finish_run", "load_policy", "load_step_dataset", "train",
           "trainer_arguments", "trl_arguments"]
