"""The ``iranker`` entry point: build the parser from the command modules and dispatch.

Nothing imports this module (``tests/test_layering.py``): commands live in their own modules
(``SUBCOMMAND_MODULES``) and import what they share from the other modules of ``iranker.cli``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .. import __version__
from .errors import EXIT_USAGE, CLIError, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iranker",
        description="Rank candidates with an LLM by iterative elimination "
        "(recommendation, LLM routing, passage re-ranking).",
    )
    parser.add_argument("--version", action="version", version=f"iranker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_module_subcommands(sub)
    return parser


#: Subcommands defined in their own modules (each with an ``add_parser(subparsers)``), and the
#: commands each adds. These modules import only the core; optional parts (fastapi, trl, ...)
#: are imported when a command runs, so an import failure here is a broken install. It must not
#: make a command vanish from ``--help`` (a user then reads "invalid choice"): the command stays
#: and running it names the cause.
SUBCOMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "cli.rank_command": ("rank",),
    "demo": ("demo",),
    "serve.command": ("serve",),
    "data.steps_command": ("data",),
    "train.command": ("train", "export-verl"),
    "evaluation.command": ("eval",),
    "evaluation.compare": ("compare",),
    "evaluation.ood": ("ood",),
    "thoughts.command": ("thoughts",),
}


def _add_module_subcommands(sub) -> None:
    for name, commands in SUBCOMMAND_MODULES.items():
        try:
            module = importlib.import_module(f".{name}", "iranker")
        except ImportError as exc:
            for command in commands:
                _add_broken_subcommand(sub, command, name, exc)
            continue
        module.add_parser(sub)


def _add_broken_subcommand(sub, command: str, module: str, exc: ImportError) -> None:
    cause = f"{type(exc).__name__}: {exc}"

    def fail(args: argparse.Namespace) -> int:
        raise CLIError(
            f"`iranker {command}` is unavailable: importing iranker.{module} failed ({cause}); "
            "reinstall iranker (pip install -e .) or set IRANKER_DEBUG=1 and report the error"
        )

    p = sub.add_parser(command, help=f"(unavailable: {cause})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=fail)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if getattr(args, "input", None) == "-":
        args.input = sys.stdin
    return run_command(args.func, args)


__all__ = ["SUBCOMMAND_MODULES", "build_parser", "main"]
