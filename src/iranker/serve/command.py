"""``iranker serve``: load one model and serve the HTTP API with uvicorn.

``iranker.cli.main`` calls ``add_parser(subparsers)``; ``python -m iranker.serve ...`` runs the
same command standalone. The model options are the shared group of ``iranker.cli.options`` and
errors are ``CLIError`` lines, as for every other command. Limits not given as flags come from ``IRANKER_*`` environment variables
(see ``settings.py``); the API key only from ``IRANKER_API_KEY`` (a flag would show it in ``ps``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields
from typing import Any, Sequence

from ..building import build_ranker
from ..cli.building import backend_from_args
from ..cli.errors import CLIError, run_command
from ..cli.options import (
    add_backend_args,
    add_method_args,
    add_thoughts_args,
    check_backend_args,
    thoughts_from_args,
)
from ..llm import DEFAULT_MODEL
from ..llm.base import MissingExtraError, require
from ..signals.command import add_signals_args, providers_from_args
from .settings import ServeSettings

#: prompts the scripted backend of ``iranker serve`` keeps for inspection (the last ones)
SCRIPTED_KEEP_CALLS = 64

#: ServeSettings fields exposed as flags (flag name -> field); the API key is env-only
_SETTING_FLAGS = {
    "--max-documents": "max_documents",
    "--max-doc-chars": "max_doc_chars",
    "--max-query-chars": "max_query_chars",
    "--max-history": "max_history",
    "--max-body-bytes": "max_body_bytes",
    "--timeout": "request_timeout_s",
    "--header-timeout": "header_timeout_s",
    "--body-timeout": "body_timeout_s",
    "--max-connections": "max_connections",
    "--batch-window-ms": "batch_window_ms",
    "--max-batch": "max_batch",
    "--max-queue": "max_queue",
}


def _help(name: str) -> str:
    f = {f.name: f for f in fields(ServeSettings)}[name]
    return f"{f.metadata.get('help', '')} (default {f.default}; env IRANKER_{name.upper()})"


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the serve flags to ``p`` (shared by ``add_parser`` and ``main``)."""

    add_backend_args(p, default_max_new_tokens=None, batch_size=False)  # requests are batched by --max-batch
    add_method_args(p)
    add_thoughts_args(p)
    add_signals_args(p)
    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn log level",
    )
    s.add_argument("--no-access-log", action="store_true", help="do not log every request")
    lim = p.add_argument_group("limits and batching")
    for flag, name in _SETTING_FLAGS.items():
        kind = (
            float
            if name in ("request_timeout_s", "header_timeout_s", "body_timeout_s", "batch_window_ms")
            else int
        )
        lim.add_argument(flag, dest=name, type=kind, default=None, help=_help(name))
    return p


def add_parser(subparsers: Any) -> None:
    """Add the ``serve`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "serve",
        help="serve a Cohere-compatible rerank API and a routing API",
        description="Load one model and serve POST /v1/rerank, /v2/rerank (Cohere-compatible), "
        "POST /v1/route, GET /healthz and /metrics. Set IRANKER_API_KEY to require "
        "'Authorization: Bearer <key>' on every path but /healthz (the API docs /docs, "
        "/redoc and /openapi.json too). Limits on clients: headers within "
        "--header-timeout, the body within --body-timeout (408 and the connection closed "
        "after either), at most --max-connections open connections (503 beyond), idle "
        "keep-alive connections closed after 5 s. Limits on work: --max-documents per "
        "request, --max-doc-chars per document, --max-query-chars, --max-history, "
        "--max-body-bytes (413 above each). Needs: pip install 'iranker[serve]'.",
    )
    configure_parser(p)
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings.from_env(**{name: getattr(args, name, None) for name in _SETTING_FLAGS.values()})


def backend_kwargs(args: argparse.Namespace, settings: ServeSettings) -> dict[str, Any]:
    """What the server adds to the shared backend options: the transformers backend batches
    ``--max-batch`` requests, and the scripted one keeps a bounded log of prompts."""
    kwargs: dict[str, Any] = {}
    if args.backend == "transformers":
        if args.threads is not None:
            kwargs["threads"] = args.threads
        kwargs["batch_size"] = settings.max_batch
    elif args.backend == "openai" and args.base_url:
        kwargs["base_url"] = args.base_url
    elif args.backend == "scripted":
        kwargs["keep_calls"] = SCRIPTED_KEEP_CALLS  # a long-running server must not keep every prompt
    return kwargs


def run(args: argparse.Namespace) -> int:
    """Load the backend once, then run uvicorn until interrupted. Bad input is a ``CLIError``."""

    check_backend_args(args)
    try:
        require("fastapi", "serve", "the HTTP server")
        uvicorn = require("uvicorn", "serve", "the HTTP server")
        settings = settings_from_args(args)
    except (MissingExtraError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    thoughts = thoughts_from_args(args)  # a bad --thoughts store: refuse to start, before the model loads
    signal_providers = providers_from_args(args)  # so do bad --signals / --interactions / --outcomes
    if args.backend != "transformers" and args.threads is not None:
        print("note: --threads only applies to --backend transformers", file=sys.stderr)
    print(f"loading {args.backend} backend ({args.model or 'default model'}) ...", file=sys.stderr)
    extra = {k: v for k, v in backend_kwargs(args, settings).items() if k in ("batch_size", "keep_calls")}
    backend = backend_from_args(args, **extra)

    model_name = args.model or (DEFAULT_MODEL if args.backend != "scripted" else "last")
    if args.backend == "scripted":
        model_name = f"scripted:{model_name}"
    try:  # one batch per rank call, no progress bar; signals are attached per request by the app
        ranker = build_ranker(
            backend,
            method=args.method,
            decode=args.decode,
            reuse=args.reuse,
            prune=args.prune,
            fallback=args.fallback,
            reask=args.reask,
            batch_size=settings.max_batch,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            seed=args.seed,
            response_prefix=args.response_prefix,
            thoughts=thoughts,
            thoughts_k=args.thoughts_k,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    from .app import create_app  # fastapi: only when serving, so `iranker --help` stays fast

    app = create_app(
        ranker,
        backend=backend,
        settings=settings,
        model_name=model_name,
        backend_name=args.backend,
        signals=signal_providers,
    )
    auth = "bearer token required" if settings.api_key else "no auth (set IRANKER_API_KEY)"
    print(
        f"serving {model_name} ({args.backend}, {ranker.name}) on http://{args.host}:{args.port} "
        f"[{auth}; playground at http://{args.host}:{args.port}/, docs at /docs]",
        file=sys.stderr,
    )
    logging.getLogger("iranker.serve").setLevel(args.log_level.upper())

    from .slow_clients import uvicorn_options

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        **uvicorn_options(settings),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m iranker.serve``: the serve command without the rest of the CLI."""

    parser = configure_parser(argparse.ArgumentParser(prog="iranker serve", description=__doc__))
    return run_command(run, parser.parse_args(argv))
