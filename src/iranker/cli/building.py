"""The backend and the ranker that the shared options describe.

Every command that ranks with an LLM builds it here, and this module builds it with the one
``iranker.building.build_ranker`` that ``serve`` and ``iranker.Ranker`` use too.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..building import build_ranker
from .errors import CLIError
from .options import thoughts_from_args


def backend_from_args(args: argparse.Namespace, **extra: Any):
    """Build the backend the options describe (``extra``: more constructor arguments, e.g. the
    server's batch size); errors become ``CLIError``."""
    from ..llm import BackendError, MissingExtraError, load_backend

    kwargs: dict[str, Any] = dict(extra)
    if args.backend == "transformers" and getattr(args, "threads", None):
        kwargs["threads"] = args.threads
    if args.backend == "openai" and args.base_url:
        kwargs["base_url"] = args.base_url
    if args.backend != "openai" and args.base_url:
        raise CLIError("--base-url only applies to --backend openai")
    if getattr(args, "tokenizer", None):
        if args.backend != "openai":
            raise CLIError("--tokenizer only applies to --backend openai")
        kwargs["tokenizer"] = args.tokenizer
    try:
        return load_backend(args.backend, args.model, **kwargs)
    except (BackendError, MissingExtraError, ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None


def model_identity_from_args(args: argparse.Namespace) -> dict[str, object]:
    """``model_identity`` of the model the options name, for the local backends (the weights
    ``transformers``/``vllm`` load from disk); empty for other backends and untrained models.
    ``eval`` and ``rank --resume`` record it when it is not empty, so their settings from
    before it existed, or of an untrained model, compare equal."""
    if getattr(args, "backend", None) not in ("transformers", "vllm"):
        return {}
    from ..llm import DEFAULT_MODEL
    from ..llm.models import model_identity

    return model_identity(getattr(args, "model", None) or DEFAULT_MODEL)


def ranker_from_args(args: argparse.Namespace, backend, *, show_progress: bool = True):
    """The ranker of ``rank`` / ``eval`` / ``demo`` / the Ray workers: ``build_ranker`` with the
    shared options (``--signals`` computed unless the examples carry them already)."""
    from ..signals.command import providers_from_args

    compute = not getattr(args, "signals_attached", False)
    try:
        return build_ranker(
            backend,
            method=args.method,
            decode=getattr(args, "decode", None),
            reuse=getattr(args, "reuse", None),
            prune=getattr(args, "prune", None),
            fallback=args.fallback,
            reask=args.reask,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            seed=args.seed,
            response_prefix=getattr(args, "response_prefix", None),
            show_progress=show_progress,
            thoughts=thoughts_from_args(args),
            thoughts_k=getattr(args, "thoughts_k", None),
            signals=providers_from_args(args) if compute else [],
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None


__all__ = ["backend_from_args", "model_identity_from_args", "ranker_from_args"]
