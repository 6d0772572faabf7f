"""Step rows per hour of choice training on this CPU: today's trainer against cheaper set-ups.

    .venv/bin/python benchmarks/choice_train_throughput.py runs/steps-read [--rows 8] [--threads 1]

Every set-up trains the *same* real step rows of a dataset written by ``iranker data steps``
(the first ``--rows`` of each scenario, so prompt lengths are the real ones): one optimiser
step of AdamW per row, forward + backward of ``iranker.train.choice_trainer.policy_scores``
and the listwise loss, exactly the trainer's ``compute_loss``. It prints, from one run,
seconds per row and rows per hour, with the ratio to today's set-up (bf16 base, LoRA r16 on
all linear layers of all 30 layers, one row per forward):

- ``top-N``: LoRA only on the top N layers (``lora_top_layers: N``). The frozen layers below
  need no backward pass. This changes the model class (fewer trainable weights), not the
  gradient of the weights it keeps; whether it learns as well per row is a training question
  the curves answer, not this script.
- ``batch-4``: four rows in one padded forward (``per_device_train_batch_size: 4``); the same
  gradient as four accumulated rows of one.

The machine is shared: run it on one thread and read the ratios, which come from one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", help="a folder written by `iranker data steps`")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--rows", type=int, default=6, help="rows per scenario (default 6)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--top", default="10,6", help="comma list of top-layer counts to measure")
    p.add_argument("--batch", type=int, default=0, help="also measure this many rows per forward (0: skip)")
    args = p.parse_args(argv)

    import datasets
    import peft
    import torch

    from iranker.llm.precision import torch_dtype
    from iranker.train.choice_objectives import step_loss
    from iranker.train.choice_trainer import encode_row, policy_scores
    from iranker.train.common import dataset_paths, load_policy, lora_config
    from iranker.train.config import TrainConfig

    torch.set_num_threads(args.threads)
    parquet, _ = dataset_paths(args.dataset)
    ds = datasets.Dataset.from_parquet(str(parquet))
    by_scenario: dict[str, list[dict]] = defaultdict(list)
    for row in ds:
        if len(by_scenario[row["scenario"]]) < args.rows:
            by_scenario[row["scenario"]].append(row)
        if all(len(v) >= args.rows for v in by_scenario.values()) and len(by_scenario) >= 2:
            break
    rows = [r for v in by_scenario.values() for r in v]
    dtype = torch_dtype(torch, None, torch.device("cpu"))
    dtype = torch.float32 if dtype == "auto" else dtype

    def setup(top: int | None):
        cfg = TrainConfig(
            model=args.model,
            dataset=args.dataset,
            output_dir="unused",
            algorithm="choice",
            lora_r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            lora_top_layers=top,
        )
        policy = load_policy(cfg, dtype=dtype)
        model = peft.get_peft_model(policy.model, lora_config(cfg, policy.model), autocast_adapter_dtype=True)
        from iranker.llm.transformers_backend import canonical_head_input

        canonical_head_input(model)
        model.train()
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
        return policy.tokenizer, model, opt

    def run(top: int | None, batch: int) -> tuple[float, dict[str, float], int]:
        tok, model, opt = setup(top)
        enc = [encode_row(tok, r) for r in rows]
        trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)

        def one(group):
            t0 = time.perf_counter()
            scores = policy_scores(torch, model, tok.pad_token_id, group)
            loss = torch.stack(
                [
                    step_loss(torch, "listwise", s, pool_ids=r.pool_ids, best=r.best)
                    for r, s in zip(group, scores)
                ]
            ).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            return (time.perf_counter() - t0) / len(group)

        one(enc[:batch])  # warm-up
        per_scenario: dict[str, list[float]] = defaultdict(list)
        times = []
        for i in range(0, len(enc), batch):
            group = enc[i : i + batch]
            t = one(group)
            times.extend([t] * len(group))
            for r in group:
                per_scenario[r.task.split("-")[0]].append(t)
        return statistics.mean(times), {k: statistics.mean(v) for k, v in per_scenario.items()}, trainable

    setups = [("today: all 30 layers, batch 1", None, 1)]
    if args.batch:
        setups.append((f"batch {args.batch}", None, args.batch))
    setups += [(f"top-{n} layers, batch 1", int(n), 1) for n in args.top.split(",") if n]
    results = []
    for name, top, batch in setups:
        mean, per, trainable = run(top, batch)
        results.append((name, mean, per, trainable))
        print(f"  {name}: {mean:.2f} s/row", file=sys.stderr)
    ref = results[0][1]
    print(
        f"{args.model}, base {str(dtype).replace('torch.', '')}, LoRA r16 all-linear, listwise, "
        f"{len(rows)} real rows of {args.dataset} ({', '.join(f'{len(v)} {k}' for k, v in by_scenario.items())}), "
        f"{args.threads} thread(s), one run"
    )
    print("| set-up | trainable params | s/row (mean) | rows/hour | ratio to today | s/row by task family |")
    print("|---|---|---|---|---|---|")
    for name, mean, per, trainable in results:
        fam = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items()))
        print(
            f"| {name} | {trainable / 1e6:.2f} M | {mean:.2f} | {3600 / mean:.0f} | {ref / mean:.2f}x | {fam} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
