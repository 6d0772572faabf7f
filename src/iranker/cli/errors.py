"""The CLI's errors and exit codes, in one place.

A command raises ``CLIError`` for bad input; ``exit_code_for`` turns it, and every other
error a user can cause (bad data, an unreachable backend, a missing extra, a template or
signal mismatch), into one ``iranker: error: ...`` line and an exit code - never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CLIError(Exception):
    """A user-facing error: printed as ``iranker: error: <message>``, exit code 2."""


def exit_code_for(exc: BaseException) -> int:
    """Print the one error line for ``exc`` on stderr and return the exit code.

    ``CLIError`` and bad data are usage errors (2); a backend, extra, answer, template, store or
    signal error is 1; anything else is an internal error (1, with ``IRANKER_DEBUG=1`` for the
    traceback: then it is re-raised).
    """
    if isinstance(exc, CLIError):
        print(f"iranker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        print("iranker: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    from ..data.io import DataError
    from ..llm import BackendError, MissingExtraError
    from ..rankers import UnparsableAnswerError
    from ..scenarios import TemplateError
    from ..signals.schema import SignalError
    from ..thoughts.store import ThoughtStoreError

    if isinstance(
        exc,
        (
            DataError,
            BackendError,
            MissingExtraError,
            UnparsableAnswerError,
            TemplateError,
            ThoughtStoreError,
            SignalError,
        ),
    ):
        print(f"iranker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, DataError) else EXIT_ERROR
    if os.environ.get("IRANKER_DEBUG"):
        raise exc
    print(
        f"iranker: internal error: {type(exc).__name__}: {exc} (set IRANKER_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return EXIT_ERROR


def run_command(func: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    """``func(args)`` as an exit code: its return value, or ``exit_code_for`` what it raised."""
    try:
        return int(func(args) or 0)
    except BaseException as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if isinstance(exc, SystemExit):
            raise
        return exit_code_for(exc)


__all__ = [
    "CLIError",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "exit_code_for",
    "run_command",
]
