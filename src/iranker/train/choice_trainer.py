"""``algorithm: choice`` — train the fast ranker: the policy over a pool's labels, exactly.

At inference, ``IterativeRanker(decode="choice")`` scores every remaining label
(``<answer>[k]``) in one forward pass (``iranker.llm.choice_tree``) and removes the most
likely one. Training here uses **the same function** with gradients: the policy of a step row
is ``softmax`` over those label log-probabilities, and the loss is one of
``iranker.train.choice_objectives`` (default: minus the exact expected exclusion reward). No
completion is sampled, so one step row costs one forward and one backward pass of its prompt,
and its gradient is the exact policy gradient.

The loop is a ``transformers.Trainer`` (so checkpoints, ``--resume`` with optimiser, scheduler,
RNG and data position, and ``save_total_limit`` work as for GRPO), with:

- the frozen base in bf16 where the CPU has native bf16 (``iranker.llm.precision``), LoRA
  weights and AdamW state in fp32;
- a line per log step in ``train_log.jsonl``: loss, and per task the mean ``pi(best)`` and the
  removed-non-best rate (the argmax is not a best candidate) on the rows just trained;
- with ``eval_dataset``, the same two numbers on fixed held-out rows every ``eval_steps``
  (and before the first step), lines with ``"split": "eval"``;
- ``iranker.json`` in every checkpoint and in the output folder, recording
  ``ranking: {decode: choice, reuse: kv}``, which every ranker built from the folder uses
  unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..llm.base import require
from ..llm.choice_tree import choice_logprob_tensors, label_choices, pick_worst
from ..llm.precision import torch_dtype
from ..llm.transformers_backend import canonical_head_input, render_prompt
from .choice_objectives import step_loss
from .common import (
    CONFIG_FILE,
    TRAIN_LOG_FILE,
    TrainError,
    TrainResult,
    callbacks,
    check_output_dir,
    dataset_paths,
    dataset_record,
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

#: how a model trained here ranks (written to iranker.json as ``ranking``)
CHOICE_RANKING = {"decode": "choice", "reuse": "kv"}


# -- one row --------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return list(value) if value is not None else []


@dataclasses.dataclass
class EncodedRow:
    """A step row as the policy sees it: prompt tokens and one token sequence per label."""

    prompt_ids: list[int]
    choice_ids: list[list[int]]
    pool_ids: list[str]
    best: list[str]
    grades: list[float]
    task: str


def encode_row(tokenizer: Any, row: Mapping[str, Any]) -> EncodedRow:
    """Tokenize a step row exactly as ``TransformersLLM.choice_logprobs`` tokenizes a ranking step."""

    pool = _as_list(row["pool"])
    prompt_ids = list(
        tokenizer(render_prompt(tokenizer, list(row["prompt"])), add_special_tokens=False)["input_ids"]
    )
    choices = label_choices([str(c["label"]) for c in pool])
    choice_ids = [list(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in choices]
    relevance = row.get("relevance")
    rel = json.loads(relevance) if isinstance(relevance, str) else dict(relevance or {})
    pool_ids = [str(c["id"]) for c in pool]
    best = [str(b) for b in _as_list(row["best"])]
    if not set(best) & set(pool_ids):
        raise TrainError(f"step row of {row.get('example_id')!r}: best {best} is not in its pool")
    return EncodedRow(
        prompt_ids,
        choice_ids,
        pool_ids,
        best,
        [float(rel.get(i, 0.0)) for i in pool_ids],
        str(row.get("task") or row.get("scenario") or "all"),
    )


def policy_scores(torch: Any, model: Any, pad_token_id: int, rows: Sequence[EncodedRow]) -> list[Any]:
    """Label log-probabilities of each row (one forward pass for the batch; keeps gradients)."""

    return choice_logprob_tensors(
        torch, model, pad_token_id, [r.prompt_ids for r in rows], [r.choice_ids for r in rows]
    )


def row_stats(torch: Any, scores: Any, row: EncodedRow) -> dict[str, float]:
    """``pi_best`` (probability of naming a best candidate) and ``removed_non_best`` (the
    argmax, as the ranker picks it, is not a best candidate) for one row."""

    values = [float(x) for x in scores.detach().float().tolist()]
    pi = torch.softmax(torch.tensor(values), dim=-1).tolist()
    best = set(row.best)
    return {
        "pi_best": sum(p for p, cid in zip(pi, row.pool_ids) if cid in best),
        "removed_non_best": float(row.pool_ids[pick_worst(values)] not in best),
    }


class MetricBuffer:
    """Means of per-row statistics, overall and per task, between two log steps."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)

    def add(self, task: str, stats: Mapping[str, float]) -> None:
        for k, v in stats.items():
            self.values[k].append(v)
            self.values[f"{k}/{task}"].append(v)

    def means(self, prefix: str = "") -> dict[str, float]:
        return {prefix + k: round(sum(v) / len(v), 5) for k, v in sorted(self.values.items()) if v}

    def clear(self) -> None:
        self.values.clear()


def evaluate_rows(torch: Any, model: Any, pad_token_id: int, rows: Sequence[EncodedRow]) -> dict[str, float]:
    """Mean ``pi_best`` and ``removed_non_best`` (overall and per task) on ``rows``, no gradients."""
    buf = MetricBuffer()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for row in rows:
                (scores,) = policy_scores(torch, model, pad_token_id, [row])
                buf.add(row.task, row_stats(torch, scores, row))
    finally:
        model.train(was_training)
    out = buf.means()
    out["rows"] = len(rows)
    return out


def balanced_rows(ds: Any, n: int) -> list[dict[str, Any]]:
    """The first ``n`` rows taking tasks in turn (a fixed, task-balanced held-out sample)."""
    by_task: dict[str, list[int]] = defaultdict(list)
    tasks = ds["task"] if "task" in ds.column_names else ["all"] * len(ds)
    for i, t in enumerate(tasks):
        by_task[str(t)].append(i)
    order: list[int] = []
    queues = [list(v) for _, v in sorted(by_task.items())]
    while len(order) < n and any(queues):
        for q in queues:
            if q and len(order) < n:
                order.append(q.pop(0))
    return [ds[i] for i in order]


# -- the trainer ----------------------------------------------------------------------------------
def _trainer_class():
    from transformers import Trainer

    class ChoiceTrainer(Trainer):
        """``transformers.Trainer`` whose loss is a choice objective on the label policy."""

        def __init__(
            self,
            *args: Any,
            objective: str,
            encoder: Callable[[Mapping[str, Any]], EncodedRow],
            pad_token_id: int,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.objective = objective
            self.encoder = encoder
            self.pad_token_id = pad_token_id
            self.buffer = MetricBuffer()
            # the loss is a mean over the micro-batch: let the Trainer scale it for accumulation
            self.model_accepts_loss_kwargs = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            rows = [self.encoder(r) for r in inputs]
            scores = policy_scores(torch, model, self.pad_token_id, rows)
            losses = []
            for row, s in zip(rows, scores):
                losses.append(
                    step_loss(
                        torch, self.objective, s, pool_ids=row.pool_ids, best=row.best, grades=row.grades
                    )
                )
                self.buffer.add(row.task, row_stats(torch, s, row))
            loss = torch.stack(losses).mean()
            return (loss, None) if return_outputs else loss

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if "loss" in logs:
                logs = {**logs, **self.buffer.means("train/")}
                self.buffer.clear()
            super().log(logs, *args, **kwargs)

    return ChoiceTrainer


def _eval_callback(output_dir: Path, rows: list[EncodedRow], every: int, pad_token_id: int, say: Callable):
    from transformers import TrainerCallback

    class HeldOutEval(TrainerCallback):
        """Scores the held-out rows before the first step and every ``every`` steps."""

        def _run(self, state, model) -> None:
            import torch

            t0 = time.perf_counter()
            metrics = evaluate_rows(torch, model, pad_token_id, rows)
            rec = {
                "step": state.global_step,
                "split": "eval",
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "eval_seconds": round(time.perf_counter() - t0, 2),
                **{f"eval/{k}": v for k, v in metrics.items()},
            }
            with open(output_dir / TRAIN_LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")
            say(
                f"step {state.global_step}: held-out pi(best) {metrics.get('pi_best', float('nan')):.4f}, "
                f"removed non-best {metrics.get('removed_non_best', float('nan')):.3f} on {len(rows)} rows"
            )

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if state.global_step == 0 and state.is_world_process_zero:
                self._run(state, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % every == 0 and state.is_world_process_zero:
                self._run(state, model)

    return HeldOutEval()


def training_arguments(config: TrainConfig) -> dict[str, Any]:
    """``transformers.TrainingArguments`` keyword arguments of a choice run (``trl:`` extras checked)."""
    from transformers import TrainingArguments

    args: dict[str, Any] = dict(
        **trainer_arguments(config),
        bf16=False,  # the base is cast to bf16 itself; no autocast (see TrainConfig.bf16)
        weight_decay=0.0,
    )
    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    unknown = sorted(set(config.trl) - known)
    if unknown:
        raise ConfigError(f"trl: unknown TrainingArguments argument(s) {unknown} (algorithm choice)")
    args.update(config.trl)
    return args


def _keep_short(ds: Any, tokenizer: Any, max_tokens: int) -> tuple[Any, int]:

    keep = [
        i
        for i, p in enumerate(ds["prompt"])
        if len(tokenizer(render_prompt(tokenizer, list(p)), add_special_tokens=False)["input_ids"])
        <= max_tokens
    ]
    return ds.select(keep), len(ds) - len(keep)


def train_choice(config: TrainConfig, resume: bool = False, *, quiet: bool = False) -> TrainResult:
    """Train ``config`` with ``algorithm: choice`` (see the module docstring)."""

    torch = require("torch", "train", "training")
    transformers = require("transformers", "train", "training")
    config = config.resolved()
    out = Path(config.output_dir)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    ckpt = check_output_dir(out, config, resume, say)
    targs = training_arguments(config)
    set_threads(config)

    ds, info, parquet = load_step_dataset(config)
    templates = templates_for(ds, info)
    if config.response_prefix:
        ds = with_response_prefix(ds, templates, config.response_prefix)
    device = torch.device("cpu" if config.use_cpu else "cuda")
    dtype = torch_dtype(torch, config.dtype, device)
    if dtype == "auto":
        dtype = torch.float32
    say(f"loading {config.model} ({str(dtype).replace('torch.', '')} base) ...")
    policy = load_policy(config, dtype=dtype)
    tokenizer = policy.tokenizer
    dropped_long = 0
    if config.max_prompt_tokens:
        ds, dropped_long = _keep_short(ds, tokenizer, config.max_prompt_tokens)
        say(
            f"dropped {dropped_long} rows with prompts over {config.max_prompt_tokens} tokens; {len(ds)} left"
        )
        if len(ds) == 0:
            raise TrainError(f"no rows have prompts of at most {config.max_prompt_tokens} tokens")

    model = policy.model
    adapter = bool(config.lora or policy.continued_adapter)
    if config.lora and not policy.continued_adapter:
        peft = require("peft", "train", "LoRA training")
        model = peft.get_peft_model(model, lora_config(config, model), autocast_adapter_dtype=True)
    elif not config.lora:
        model = model.float()  # full fine-tuning keeps every trained weight in fp32

    canonical_head_input(model)  # a frozen lm_head would copy its whole weight every forward

    eval_rows: list[EncodedRow] = []
    if config.eval_dataset:
        eval_parquet, _ = dataset_paths(config.eval_dataset)
        datasets = require("datasets", "train", "loading the held-out step dataset")
        eds = datasets.Dataset.from_parquet(str(eval_parquet))
        if config.response_prefix:
            eds = with_response_prefix(eds, {}, config.response_prefix)
        eval_rows = [encode_row(tokenizer, r) for r in balanced_rows(eds, config.eval_rows)]

    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(config.to_yaml(), encoding="utf-8")
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
            objective=config.objective,
            ranking=dict(CHOICE_RANKING),
            dtype=str(dtype).replace("torch.", ""),
            reward_kind="choice-expected" if config.objective != "listwise" else "choice-listwise",
            trainer_args={k: jsonable(v) for k, v in targs.items()},
        )

    step_log, ckpt_info = callbacks(out, run_info, policy.base_reference if adapter else None)
    trainer_callbacks = [step_log, ckpt_info]
    pad = tokenizer.pad_token_id
    if eval_rows:
        trainer_callbacks.append(_eval_callback(out, eval_rows, config.eval_steps, pad, say))
    trainer = _trainer_class()(
        model=model,
        args=transformers.TrainingArguments(**targs),
        train_dataset=ds,
        data_collator=lambda features: list(features),
        processing_class=tokenizer,
        callbacks=trainer_callbacks,
        objective=config.objective,
        encoder=lambda row: encode_row(tokenizer, row),
        pad_token_id=pad,
    )
    resume_from = ckpt if (resume and ckpt) else None
    if resume_from:
        say(f"resuming from {resume_from}")
    say(
        f"training choice/{config.objective} ({'LoRA' if adapter else 'full'}) on {len(ds)} step rows, "
        f"{config.max_steps} steps, output {out}"
    )
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - t0

    return finish_run(
        trainer,
        tokenizer,
        out,
        policy.base_reference if adapter else None,
        run_info,
        step_log,
        resume_from,
        seconds,
        say,
    )


__all__ = [
    "CHOICE_RANKING",
    "EncodedRow",
    "encode_row",
    "evaluate_rows",
    "policy_scores",
    "row_stats",
    "train_choice",
    "training_arguments",
]
