"""What does one choice-training step cost on this CPU, per dtype and layout?

    .venv/bin/python benchmarks/choice_train_step.py [--tokens 800] [--labels 20] [--threads 1] [--repeats 3]

One step row of ``algorithm: choice`` is one forward and one backward pass of the prompt plus the
trie of its labels (``iranker.llm.choice_tree.choice_logprob_tensors``), with LoRA r=16 on all
linear layers as in ``examples/train_choice_cpu.yaml``. This prints, from one run, the median
seconds of forward+backward (and forward only) for

- fp32 vs bf16 base (LoRA weights stay fp32), and
- the two exact layouts: ``tree`` (prompt and trie in one pass with a boolean 4-D mask: sdpa
  falls back to its math kernel) vs ``prefix`` (prompt causally with no mask, then the trie on
  its KV cache: the default for one row),

as ratios to the fp32 tree pass, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--tokens", type=int, default=800)
    p.add_argument("--labels", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import peft
    import torch

    from iranker.llm.choice_tree import choice_logprob_tensors, label_choices
    from iranker.llm.transformers_backend import TransformersLLM

    torch.set_num_threads(args.threads)
    rng = random.Random(0)
    rows = {}
    for dtype in ("float32", "bfloat16"):
        llm = TransformersLLM(args.model, dtype=dtype, threads=args.threads)
        tok = llm.tokenizer
        model = peft.get_peft_model(
            llm.model,
            peft.LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
            autocast_adapter_dtype=True,
        )
        prompt = [rng.randrange(100, 40000) for _ in range(args.tokens)]
        choices = [
            tok(c, add_special_tokens=False)["input_ids"]
            for c in label_choices([f"[{i + 1}]" for i in range(args.labels)])
        ]
        for layout in ("tree", "prefix"):

            def step(backward: bool, model: Any = model) -> float:
                t0 = time.perf_counter()
                if backward:
                    (s,) = choice_logprob_tensors(
                        torch, model, tok.pad_token_id, [prompt], [choices], layout=layout
                    )
                    torch.log_softmax(s, -1)[0].backward()
                else:
                    with torch.no_grad():
                        choice_logprob_tensors(
                            torch, model, tok.pad_token_id, [prompt], [choices], layout=layout
                        )
                return time.perf_counter() - t0

            step(True)  # warm-up
            fb = statistics.median(step(True) for _ in range(args.repeats))
            fw = statistics.median(step(False) for _ in range(args.repeats))
            rows[(dtype, layout)] = (fb, fw)
        del model, llm
    ref = rows[("float32", "tree")][0]
    print(
        f"{args.model}: {args.tokens}-token prompt, {args.labels} labels, LoRA r16 all-linear, "
        f"{args.threads} thread(s), median of {args.repeats}"
    )
    print("| base dtype | layout | fwd+bwd s | ratio to fp32 tree | fwd s |")
    print("|---|---|---|---|---|")
    for (dtype, layout), (fb, fw) in rows.items():
        print(f"| {dtype} | {layout} | {fb:.2f} | {fb / ref:.2f} | {fw:.2f} |")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
