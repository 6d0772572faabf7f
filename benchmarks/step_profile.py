"""Where does one N = 20 ranking's time go, step by step, in the default mode?

    .venv/bin/python benchmarks/step_profile.py [--model iranker-135m] [--n 20] [--per-scenario 1] \
        [--threads 1] [--adapter fp32|base-dtype|merged] [--ops]

It ranks the self-contained N-candidate examples of ``benchmarks/elimination_cost.py`` (ml-100k
users, the demo's routing and passage queries with distractors; nothing is downloaded) with
``IterativeRanker`` built with no flags - the model's recorded mode, for ``iranker-135m`` label
scoring (``decode=choice``) with KV eviction (``reuse=kv``), in the dtype the backend picks
(bf16 on AMX CPUs) - after one warm-up ranking, and prints from one run:

1. **phases** (wall clock, no profiler): the time per ranking spent in every part of the KV
   session - the prefill (tokenization, forward), each step's rendering and tokenization (the
   layout check), label-tree inputs (trie, 4-D mask), the label-tree forward, the log-softmax
   read-out and the crop back to the persistent part; each eviction's slicing, key re-rotation,
   re-encoded tokens (forward and the cache copies around it) - and what the ranker itself
   spends outside the session (prompt rendering, bookkeeping). Exclusive times: a phase's own
   time without the phases it calls.
2. **tokens per step**: what the model is fed at each step (question, trie nodes, re-encoded).
3. with ``--ops``, **operators inside the model** (``torch.profiler`` over one more ranking):
   base-weight matmuls, LoRA matmuls (a dimension equal to the adapter rank), the output head,
   attention, dtype casts and copies, element-wise ops (residuals, RoPE, LoRA scaling, SiLU,
   norms), cache concatenation and slicing; "not in any op" is Python, dispatch and profiler
   overhead (the profiler inflates it).

The phases are measured by wrapping the session's own methods with timers (the real methods
run); nothing is replaced.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))


class PhaseClock:
    """Exclusive wall time per phase, from timers wrapped around methods (a call stack)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[Any]] = []

    def parent(self) -> str:
        return self._stack[-1][0] if self._stack else ""

    def wrap(self, owner: Any, attr: str, label: str | Callable[[str], str]) -> None:
        """Replace ``owner.attr`` by a timed call of the original (instance or module attribute)."""
        original = getattr(owner, attr, None)
        if original is None:
            return
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            name = label(clock.parent()) if callable(label) else label
            clock._stack.append([name, 0.0])
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                _, inner = clock._stack.pop()
                clock.seconds[name] += dt - inner
                clock.calls[name] += 1
                if clock._stack:
                    clock._stack[-1][1] += dt

        setattr(owner, attr, timed)


def _within(parent: str, what: str) -> str:
    """``"<phase>: what"`` named after the enclosing phase (the part before any colon)."""
    return f"{parent.split(':')[0] or 'other'}: {what}"


def instrument_session(session: Any, clock: PhaseClock) -> Any:
    """Time the phases of one ``KVEvictionSession`` (its own methods, wrapped per instance)."""
    clock.wrap(session, "prefill", "prefill: other")
    clock.wrap(session, "locate", lambda p: _within(p, "tokenize + locate spans"))
    clock.wrap(session, "choice_logprobs", "step: other (Python)")
    clock.wrap(session, "_tail_for", "step: render + tokenize (layout check)")
    clock.wrap(session, "_choice_inputs", "step: trie + tree mask")
    clock.wrap(session, "_readout", "step: log-softmax read-out")
    clock.wrap(session, "reset", "step: crop back")
    clock.wrap(session, "evict", "evict: slice spans (cache copy)")
    clock.wrap(session, "_shift_keys", "evict: re-rotate keys")  # before 2026-12-03
    clock.wrap(session, "_cut", "evict: slice + re-rotate keys (cache copy)")
    clock.wrap(session, "_refresh_after", "evict: re-encode, cache copies")
    clock.wrap(
        session,
        "_forward",
        lambda p: {
            "prefill": "prefill: forward",
            "step": "step: label-tree forward",
            "evict": "evict: re-encode forward",
        }.get(p.split(":")[0], "other: forward"),
    )
    return session


def instrument_backend(llm: Any, clock: PhaseClock) -> None:
    """Every eviction session the backend makes from now on is instrumented."""
    make = llm.eviction_session

    def timed_session(**options: Any) -> Any:
        return instrument_session(make(**options), clock)

    llm.eviction_session = timed_session


# -- operators ------------------------------------------------------------------------------------
def op_category(name: str, shapes: list, rank: int, vocab: int) -> str:
    """Which kind of work an aten op is, from its name and input shapes."""
    dims = [d for s in shapes if isinstance(s, (list, tuple)) for d in s]
    if name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul_out"):
        if vocab in dims:
            return "output head (lm_head)"
        mats = [s for s in shapes if isinstance(s, (list, tuple)) and len(s) == 2]
        if rank and any(rank in s for s in mats):
            return "LoRA matmuls (fp32 or base dtype)"
        return "base-weight matmuls"
    if "scaled_dot_product" in name or "attention" in name:
        return "attention (sdpa)"
    if name in ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous"):
        return "dtype casts and copies"
    if name in (
        "aten::cat",
        "aten::slice",
        "aten::narrow",
        "aten::index",
        "aten::index_select",
        "aten::as_strided",
    ):
        return "cache concatenation and slicing"
    if "log_softmax" in name or name == "aten::logsumexp":
        return "log-softmax over the vocabulary"
    if name in (
        "aten::add",
        "aten::add_",
        "aten::mul",
        "aten::mul_",
        "aten::silu",
        "aten::neg",
        "aten::pow",
        "aten::mean",
        "aten::rsqrt",
        "aten::sum",
        "aten::div_",
        "aten::where",
        "aten::sub",
        "aten::cos",
        "aten::sin",
    ):
        return "element-wise (residuals, RoPE, LoRA scaling, SiLU, norms)"
    return "other ops"


def adapter_rank(llm: Any) -> int:
    """The LoRA rank of the loaded adapter (0 for none or a merged one)."""
    config = getattr(llm.model, "peft_config", None)
    if config:
        return int(getattr(next(iter(config.values())), "r", 0) or 0)
    for module in llm.model.modules():
        if type(module).__name__ == "FusedLoRALinear":
            return int(module.rank)
    return 0


def op_table(llm: Any, ranker: Any, example: Any) -> str:
    from torch.profiler import ProfilerActivity, profile

    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        ranker.rank([example])
    wall = time.perf_counter() - t0
    rank, vocab = adapter_rank(llm), int(llm.model.config.vocab_size)
    by: dict[str, float] = defaultdict(float)
    for evt in prof.key_averages(group_by_input_shape=True):
        if not evt.key.startswith("aten::"):
            continue
        by[op_category(evt.key, list(evt.input_shapes or []), rank, vocab)] += evt.self_cpu_time_total / 1e6
    by["not in any op (Python, dispatch, profiler)"] = max(0.0, wall - sum(by.values()))
    lines = [
        f"one ranking under torch.profiler: {wall:.2f} s wall (the profiler slows it)",
        "",
        "| operators | s | share |",
        "|---|---|---|",
    ]
    for cat, sec in sorted(by.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {cat} | {sec:.3f} | {sec / wall:.1%} |")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="iranker-135m")
    p.add_argument("--n", type=int, default=20, help="candidates per example (default 20)")
    p.add_argument("--per-scenario", type=int, default=1, help="examples per scenario (default 1)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--adapter", default=None, help="the backend's adapter mode (default: the backend's default)"
    )
    p.add_argument("--ops", action="store_true", help="also profile the operators of one ranking")
    args = p.parse_args(argv)

    from elimination_cost import build_examples
    from iranker.llm.transformers_backend import TransformersLLM
    from iranker.rankers import IterativeRanker

    kwargs = {} if args.adapter is None else {"adapter": args.adapter}
    llm = TransformersLLM(args.model, threads=args.threads, **kwargs)
    ranker = IterativeRanker(llm, batch_size=1, show_progress=False)
    examples = build_examples(args.n, args.per_scenario, args.seed)
    ranker.rank(examples[:1])  # warm-up (allocator, oneDNN kernels)

    clock = PhaseClock()
    instrument_backend(llm, clock)
    clock.wrap(ranker, "_choice_round", "ranker: prompts, bookkeeping")
    clock.wrap(ranker, "_session", "ranker: prompts, bookkeeping")
    clock.wrap(ranker, "_remove", "ranker: prompts, bookkeeping")
    t0 = time.perf_counter()
    rankings = ranker.rank(examples)
    wall = time.perf_counter() - t0
    clock.seconds["ranker: prompts, bookkeeping"] += wall - sum(clock.seconds.values())
    k = len(examples)
    steps = sum(len(r.steps) for r in rankings) / k

    print(
        f"model {llm.name}; adapter {getattr(llm, 'adapter', 'fp32')}; dtype {str(llm.dtype).replace('torch.', '')}; "
        f"mode decode={ranker.decode}, reuse={ranker.reuse}; {args.threads} thread(s); N = {args.n}; "
        f"{k} examples ({', '.join(e.id for e in examples)}); {steps:.0f} steps per ranking"
    )
    print(f"\n{wall / k:.3f} s per ranking = {k / wall:.2f} rankings/s\n")
    print("| phase | ms / ranking | share | calls / ranking | ms / call |")
    print("|---|---|---|---|---|")
    order = sorted(
        clock.seconds,
        key=lambda name: (name.split(":")[0] != "prefill", name.split(":")[0], -clock.seconds[name]),
    )
    for name in order:
        sec, calls = clock.seconds[name], clock.calls.get(name, 0)
        per_call = f"{1000 * sec / calls:.2f}" if calls else ""
        print(f"| {name} | {1000 * sec / k:.1f} | {sec / wall:.1%} | {calls / k:.1f} | {per_call} |")
    groups: dict[str, float] = defaultdict(float)
    for name, sec in clock.seconds.items():
        groups[name.split(":")[0]] += sec
    print("\n| group | ms / ranking | share |\n|---|---|---|")
    for g, sec in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"| {g} | {1000 * sec / k:.1f} | {sec / wall:.1%} |")

    # tokens fed per step (one more ranking of the first example, stats of its session)
    probe = llm.eviction_session
    sessions: list[Any] = []

    def keep(**options: Any) -> Any:
        s = probe(**options)
        sessions.append(s)
        return s

    llm.eviction_session = keep
    ranker.rank(examples[:1])
    st = sessions[0].stats
    n_steps = len(examples[0].candidates) - 1
    print(
        f"\ntokens fed for {examples[0].id}: prefill {st.prefill_tokens}; per step: question + trie "
        f"{(st.step_tokens + st.answer_tokens) / n_steps:.1f} (question {st.step_tokens / n_steps:.1f}, "
        f"trie nodes {st.answer_tokens / n_steps:.1f}), re-encoded after evictions {st.refresh_tokens / max(1, n_steps - 1):.1f}"
    )
    llm.eviction_session = probe
    if args.ops:
        print()
        print(op_table(llm, ranker, examples[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
