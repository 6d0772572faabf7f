"""The option groups commands share, and their checks (before any model loads)."""

from __future__ import annotations

import argparse
import math

from .errors import CLIError


def add_backend_args(
    p: argparse.ArgumentParser, *, default_max_new_tokens: int | None = 256, batch_size: bool = True
) -> None:
    """The options every model-using subcommand shares (``serve`` batches requests itself, so
    it passes ``batch_size=False``; ``default_max_new_tokens=None`` = the ranker's default)."""
    from ..llm import BACKENDS, DEFAULT_MODEL

    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default=None,
        help=f"model: alias ({DEFAULT_MODEL} = the trained ranker shipped in iranker, default; "
        "smollm2-135m = its untrained base), HF id, local folder, .gguf file or "
        "trained adapter folder; for --backend openai the server's model name; "
        "for --backend scripted 'last' or 'first'",
    )
    g.add_argument(
        "--backend", choices=BACKENDS, default="transformers", help="LLM backend (default: transformers)"
    )
    g.add_argument(
        "--base-url",
        default=None,
        help="OpenAI-compatible server URL for --backend openai (e.g. http://localhost:8000/v1)",
    )
    g.add_argument(
        "--tokenizer",
        default=None,
        metavar="MODEL",
        help="for --backend openai: the served model as iranker names it locally (e.g. "
        "iranker-135m or a trained folder); its tokenizer renders prompts and tokenises "
        "labels like the local backend, and a trained folder's templates and ranking "
        "mode (decode=choice) apply",
    )
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the transformers backend (default: $IRANKER_THREADS, else the cores "
        "no other process is busy on when the model loads, at least 1)",
    )
    if batch_size:
        g.add_argument("--batch-size", type=int, default=8, help="examples ranked together per backend call")
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=default_max_new_tokens,
        help=f"generation budget per answer (default: {default_max_new_tokens or 'the ranker default'})",
    )
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--seed", type=int, default=0, help="seed for sampling and random fallbacks")
    g.add_argument(
        "--response-prefix",
        default=None,
        metavar="TEXT",
        help="start every reply with TEXT (e.g. '<think>'), which the model continues; the "
        "parsed answer is TEXT + generated text. Default: the prompt templates' own "
        "(a folder trained with a prefix records it; none otherwise)",
    )


#: ``--prune`` help, shared by rank, serve and eval
PRUNE_HELP = (
    "iterative choice ranking: remove several likely-worst candidates per step while the pool is "
    "large - quarter (= fraction=0.25,min=5), half, fraction=F[,min=M] or threshold=T[,min=M]; "
    "default none (one per step, the paper's elimination)"
)


def add_method_args(p: argparse.ArgumentParser) -> None:
    from ..rankers import FALLBACKS

    g = p.add_argument_group("ranking")
    g.add_argument(
        "--method",
        choices=("iterative", "direct"),
        default="iterative",
        help="iterative elimination (default) or one-call direct ranking",
    )
    g.add_argument(
        "--decode",
        choices=("generate", "choice"),
        default=None,
        help="iterative only: generate an answer or score the labels in one forward pass "
        "(default: what the model records - choice for a choice-trained model such as "
        "the default iranker-135m - else generate)",
    )
    g.add_argument(
        "--fallback",
        choices=FALLBACKS,
        default="closest",
        help="when an answer names no candidate after re-asking: closest (default), last, random, error",
    )
    g.add_argument(
        "--reask", type=int, default=1, help="re-ask this many times before the fallback (default 1)"
    )
    g.add_argument(
        "--reuse",
        choices=("none", "kv"),
        default=None,
        help="iterative only: none = re-send the whole prompt every step (exact); "
        "kv = prefill it once and evict eliminated candidates from the KV cache "
        "(transformers backend). Default: what the model records, else none",
    )
    g.add_argument("--prune", default=None, metavar="SCHEDULE", help=PRUNE_HELP)


def add_thoughts_args(p: argparse.ArgumentParser) -> None:
    """``--thoughts STORE [--thoughts-k K]``: retrieved thoughts as worked examples (rank, eval, serve)."""
    g = p.add_argument_group("thoughts (IRanker-COT)")
    g.add_argument(
        "--thoughts",
        default=None,
        metavar="STORE",
        help="a store made by `iranker thoughts collect`: each example's prompt header shows "
        "the K stored thoughts of the same scenario whose queries are most similar "
        "(never the example's own); see docs/thoughts.md",
    )
    g.add_argument(
        "--thoughts-k",
        type=int,
        default=None,
        metavar="K",
        help="thoughts shown per example (default 3; needs --thoughts)",
    )


def add_limit_args(p: argparse.ArgumentParser) -> None:
    """``--max-candidates`` / ``--max-candidate-chars`` (rank, eval --input)."""
    from ..example_fields import MAX_CANDIDATE_CHARS, MAX_CANDIDATES

    g = p.add_argument_group("input limits")
    g.add_argument(
        "--max-candidates",
        type=int,
        default=MAX_CANDIDATES,
        metavar="N",
        help=f"refuse an example with more than N candidates (default {MAX_CANDIDATES}; "
        "elimination work grows as N²)",
    )
    g.add_argument(
        "--max-candidate-chars",
        type=int,
        default=MAX_CANDIDATE_CHARS,
        metavar="N",
        help=f"refuse a candidate text longer than N characters (default {MAX_CANDIDATE_CHARS})",
    )


def check_backend_args(args: argparse.Namespace) -> None:
    """Refuse settings that cannot work, before any model loads (one error line each)."""

    for name, low in (("max_new_tokens", 1), ("batch_size", 1), ("reask", 0), ("threads", 1)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise CLIError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    temperature = getattr(args, "temperature", None)
    if temperature is not None and (not math.isfinite(temperature) or temperature < 0):
        raise CLIError(f"--temperature must be a finite number >= 0, got {temperature}")
    prune = getattr(args, "prune", None)
    if prune is not None:
        from ..rankers.pruning import PruneSchedule

        try:
            PruneSchedule.parse(prune)
        except ValueError as exc:
            raise CLIError(f"--prune: {exc}") from None
        if getattr(args, "method", "iterative") == "direct" or getattr(args, "decode", None) == "generate":
            raise CLIError(
                "--prune needs iterative choice ranking (not --method direct or --decode generate)"
            )


def limits_from_args(args: argparse.Namespace):
    """The ``ExampleLimits`` of ``--max-candidates`` / ``--max-candidate-chars``."""
    from ..example_fields import ExampleLimits

    for name, low in (("max_candidates", 2), ("max_candidate_chars", 1)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise CLIError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    return ExampleLimits(getattr(args, "max_candidates", None), getattr(args, "max_candidate_chars", None))


def thoughts_from_args(args: argparse.Namespace):
    """The ``ThoughtMemory`` of ``--thoughts`` (None without it), checked before any model loads.

    A missing folder, a corrupt manifest or a matrix that does not match becomes one
    ``CLIError`` line. The memory is kept on ``args.thoughts_memory`` so it is opened once.
    """
    if getattr(args, "thoughts_memory", None) is not None:
        return args.thoughts_memory
    store_path, k = getattr(args, "thoughts", None), getattr(args, "thoughts_k", None)
    if not store_path:
        if k is not None:
            raise CLIError("--thoughts-k needs --thoughts STORE")
        return None
    if k is not None and k < 1:
        raise CLIError(f"--thoughts-k must be >= 1, got {k}")
    from ..llm.base import MissingExtraError
    from ..thoughts.retrieval import ThoughtMemory
    from ..thoughts.store import ThoughtStoreError, load_store

    try:
        memory = ThoughtMemory(load_store(store_path), threads=getattr(args, "threads", None))
    except ThoughtStoreError as exc:
        raise CLIError(str(exc)) from None
    try:
        memory.dense.encoder  # load the store's embedding model now: a missing one fails before the LLM loads
    except (MissingExtraError, OSError, ValueError) as exc:
        raise CLIError(
            f"{store_path}: cannot load its embedding model {memory.store.model!r}: {exc}"
        ) from None
    args.thoughts_memory = memory
    return memory


__all__ = [
    "add_backend_args",
    "add_limit_args",
    "PRUNE_HELP",
    "add_method_args",
    "add_thoughts_args",
    "check_backend_args",
    "limits_from_args",
    "thoughts_from_args",
]
