"""Torch threads beside another busy process: which default does not fall off the cliff?

    .venv/bin/python benchmarks/threads.py [--model iranker-135m] [--tokens 400] [--repeats 3]

Each setting runs in a fresh subprocess (OpenMP reads its settings once, at start): load the
model, one warm-up forward, then ``--repeats`` forwards of a ``--tokens``-token prompt; the
median forward time is printed. Settings: 1 thread; 2 threads (torch's default on 2 cores);
2 threads with ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep instead of spinning); and the
backend's default (``iranker.llm.threads.default_threads``: the cores no other process keeps
busy when the model loads). Each is measured as the machine is, and beside one extra busy
process that this script starts (a Python loop, one core) and stops by its own PID. The ratio
column is against 1 thread in the same condition. The load average is printed: on a shared
machine "as it is" is not idle.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import json, os, statistics, sys, time
import torch
from iranker.llm.transformers_backend import TransformersLLM
threads = None if sys.argv[2] == "default" else int(sys.argv[2])
llm = TransformersLLM(sys.argv[1], threads=threads)
ids = torch.tensor([[1000 + (i * 37) % 20000 for i in range(int(sys.argv[3]))]])
times = []
with torch.inference_mode():
    llm.model(input_ids=ids, logits_to_keep=1)
    for _ in range(int(sys.argv[4])):
        t0 = time.perf_counter()
        llm.model(input_ids=ids, logits_to_keep=1)
        times.append(time.perf_counter() - t0)
print(json.dumps({"threads": torch.get_num_threads(), "median": statistics.median(times)}))
"""


def measure(model: str, threads: str, tokens: int, repeats: int, passive: bool) -> dict:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("IRANKER_THREADS", None)
    env.setdefault("HF_HUB_OFFLINE", "1")
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(
        [sys.executable, "-c", WORKER, model, threads, str(tokens), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="iranker-135m")
    p.add_argument("--tokens", type=int, default=400)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    settings = [
        ("1 thread", "1", False),
        ("2 threads", "2", False),
        ("2 threads, OMP_WAIT_POLICY=PASSIVE", "2", True),
        ("default (free cores)", "default", False),
    ]
    print(f"model {args.model}; {args.tokens}-token forward, median of {args.repeats}; {os.cpu_count()} CPUs")
    print("\n| condition | setting | threads used | s / forward | vs 1 thread |\n|---|---|---|---|---|")
    for condition in ("as the machine is", "+ one busy process"):
        spinner = None
        if condition.startswith("+"):
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            load = os.getloadavg()[0]
            rows = [
                (name, measure(args.model, t, args.tokens, args.repeats, passive))
                for name, t, passive in settings
            ]
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
        one = rows[0][1]["median"]
        for name, r in rows:
            print(
                f"| {condition} (load avg {load:.1f}) | {name} | {r['threads']} | {r['median']:.3f} | "
                f"{r['median'] / one:.2f} |"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
