"""The ``--signals`` options of ``iranker rank``, ``eval`` and ``serve``, and their checks.

    iranker rank -i in.jsonl -o out.jsonl --signals bm25,dense,cooccur --interactions log.jsonl
    iranker eval --tasks all --signals bm25,dense,cooccur,outcomes --methods rrf,cooccur,outcomes ...

Bad values (an unknown name, a provider without its file, an unreadable file) become one
``CLIError`` line before any model loads.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from ..cli.errors import CLIError
from ..data.io import DataError
from ..digests import file_sha256
from ..evaluation.runner import MethodUnavailable
from . import PROVIDER_SCENARIOS, SignalError, make_providers, parse_signal_names
from .base import attach_signals
from .recorded import recorded_signals, recorded_signals_for_model
from .wrap import SignalsRanker, preflight


def add_signals_args(p: argparse.ArgumentParser, *, files: bool = True) -> None:
    """``--signals NAMES`` (and, with ``files``, ``--interactions`` / ``--outcomes`` / ``--outcomes-k``)."""
    g = p.add_argument_group("signals (evidence shown in each candidate's segment)")
    g.add_argument(
        "--signals",
        default=None,
        metavar="NAMES",
        help="compute these signals and show each candidate's rank on them in the prompt: a comma "
        "list of bm25, dense (any scenario), cooccur (recommendation; needs --interactions), "
        "outcomes (routing; needs --outcomes). Candidates may also carry their own "
        "'signals': {name: number}",
    )
    if files:
        g.add_argument(
            "--interactions",
            default=None,
            metavar="FILE",
            help='for cooccur: JSONL of other users\' items, one {"user"?, "items": [...]} per line '
            "(benchmark tasks: their training users)",
        )
        g.add_argument(
            "--outcomes",
            default=None,
            metavar="FILE",
            help='for outcomes: JSONL of past queries, one {"query", "outcomes": {llm: quality}} '
            "per line (benchmark tasks: their training queries)",
        )
        g.add_argument(
            "--outcomes-k",
            type=int,
            default=None,
            metavar="K",
            help="for outcomes: past queries that vote (default 10)",
        )


def signal_names_from_args(args: argparse.Namespace) -> list[str]:
    """The names ``--signals`` lists (checked), [] without it."""

    try:
        return parse_signal_names(getattr(args, "signals", None))
    except SignalError as exc:
        raise CLIError(str(exc)) from None


def providers_from_args(
    args: argparse.Namespace,
    *,
    train_examples: Sequence[Any] | None = None,
    dense: Any = None,
    cache_dir: Any = None,
) -> list:
    """The providers the options ask for; errors become one ``CLIError`` line."""

    cached = getattr(args, "signal_providers", None)
    if cached is not None and train_examples is None:
        return cached
    names = signal_names_from_args(args)
    k = getattr(args, "outcomes_k", None)
    if k is not None and k < 1:
        raise CLIError(f"--outcomes-k must be >= 1, got {k}")
    for flag, name in (("interactions", "cooccur"), ("outcomes", "outcomes")):
        if getattr(args, flag, None) and name not in names:
            raise CLIError(f"--{flag} is only read by the {name} signal; add it to --signals")
    if not names:
        return []
    try:
        providers = make_providers(
            names,
            interactions=getattr(args, "interactions", None),
            outcomes=getattr(args, "outcomes", None),
            train_examples=train_examples,
            dense=dense,
            outcomes_k=k,
            cache_dir=cache_dir,
        )
    except (SignalError, DataError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if train_examples is None:
        args.signal_providers = providers  # read the files once per run
    return providers


def preflight_from_args(args: argparse.Namespace, examples: Sequence[Any]) -> None:
    """Refuse, before the model loads, examples whose signals the named model was not trained with."""

    recorded = recorded_signals_for_model(
        getattr(args, "model", None), getattr(args, "backend", "transformers")
    )
    try:
        preflight(
            examples, providers_from_args(args), recorded, str(getattr(args, "model", None) or "iranker-135m")
        )
    except SignalError as exc:
        raise CLIError(str(exc)) from None


def with_signals(ranker: Any, args: argparse.Namespace, backend: Any, *, compute: bool = True) -> Any:
    """``ranker`` wrapped to attach ``--signals`` (when ``compute``) and check them against what
    the model was trained with; ``ranker`` itself when there is nothing to do."""

    providers = providers_from_args(args) if compute else []
    recorded = recorded_signals(backend)
    if not providers and recorded is None:
        return ranker
    return SignalsRanker(
        ranker, providers, recorded=recorded, model=str(getattr(backend, "name", "the model"))
    )


def attach_task_signals(
    args: argparse.Namespace, tasks: Sequence[Any], *, cache_dir: Any = None
) -> dict[str, Any] | None:
    """Attach ``--signals`` to every task's examples (in place); what ``run.json`` records.

    ``cooccur`` / ``outcomes`` read ``--interactions`` / ``--outcomes`` when given, else the
    task's own training split (benchmark tasks: training users and queries, disjoint from the
    test ones; with ``--input``: ``--train``), never its test examples.
    """

    names = signal_names_from_args(args)
    if not names:
        for flag in ("interactions", "outcomes"):
            if getattr(args, flag, None):
                raise CLIError(f"--{flag} is only read with --signals")
        return None
    for task in tasks:
        wanted = [n for n in names if task.scenario in PROVIDER_SCENARIOS[n]]
        from_train = ("cooccur" in wanted and not args.interactions) or (
            "outcomes" in wanted and not args.outcomes
        )
        if from_train and not task.has_train:
            raise CLIError(
                f"task {task.name!r} has no training split to compute {', '.join(wanted)} from; "
                "pass --interactions / --outcomes (or --train with --input)"
            )
        ns = argparse.Namespace(
            **{
                **vars(args),
                "signals": ",".join(wanted) if wanted else None,
                "signal_providers": None,
                "interactions": args.interactions if "cooccur" in wanted else None,
                "outcomes": args.outcomes if "outcomes" in wanted else None,
            }
        )
        try:
            providers = providers_from_args(
                ns, train_examples=task.train() if from_train else None, cache_dir=cache_dir
            )
            task.examples = attach_signals(task.examples, providers)
        except (MethodUnavailable, SignalError) as exc:
            raise CLIError(f"{task.name}: {exc}") from None
    record: dict[str, Any] = {
        "names": names,
        "outcomes_k": args.outcomes_k,
        "sources": "--interactions/--outcomes files when given, else each task's train split",
    }
    for flag in ("interactions", "outcomes"):
        path = getattr(args, flag, None)
        if path:
            if not Path(path).is_file():
                raise CLIError(f"--{flag} {path!r} is not a file")
            record[f"{flag}_sha256"] = file_sha256(path)
    return record


__all__ = [
    "add_signals_args",
    "attach_task_signals",
    "preflight_from_args",
    "providers_from_args",
    "signal_names_from_args",
    "with_signals",
]
