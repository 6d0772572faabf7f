"""What a candidate's ``signals`` may hold: ``{name: finite number}``, higher = better.

Every input path (JSONL via ``data.io``, ``iranker.Ranker``, the HTTP API) validates a
candidate's signals with :func:`check_signals`, so a non-numeric or non-finite value is
refused with its path (``candidates[2].signals.bm25``) the same way everywhere. Within one
example every candidate must carry the same signal names (:func:`check_example_signals`): a
signal is shown as a rank among the example's candidates, which needs every candidate's value.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Mapping

from ..types import Candidate, RankingExample

#: the candidate field (and ``Candidate.meta`` key) that holds the signals
SIGNALS_KEY = "signals"
#: a signal name: short, printable, no separators of the rendered text (",", ":", "/")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]{0,39}$")


class SignalError(ValueError):
    """Bad signals (a value, a name, a provider's input, or a model/signals mismatch)."""


def check_signals(value: Any, path: str) -> dict[str, float]:
    """``value`` as ``{name: float}``; raises :class:`SignalError` naming ``path.name``.

    Booleans are refused (``True`` is an int in Python, but never a score someone meant).
    """
    if not isinstance(value, Mapping):
        raise SignalError(
            f"{path}: must be an object mapping signal name -> number, got {type(value).__name__}"
        )
    out: dict[str, float] = {}
    for name, v in value.items():
        at = f"{path}.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SignalError(
                f"{at}: a signal name must start with a letter and use only letters, digits "
                "and _ . + - (at most 40 characters)"
            )
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SignalError(f"{at}: must be a number, got {type(v).__name__} {v!r}"[:200])
        try:
            f = float(v)
        except OverflowError:  # an integer beyond the float range
            f = math.inf
        if not math.isfinite(f):
            shown = repr(v) if len(repr(v)) <= 40 else f"{repr(v)[:20]}... ({len(repr(v))} digits)"
            raise SignalError(f"{at}: must be a finite number, got {shown}")
        out[name] = f
    return out


def candidate_signals(cand: Candidate) -> dict[str, float]:
    """The signals a candidate carries (empty when none)."""
    value = cand.meta.get(SIGNALS_KEY)
    return dict(value) if isinstance(value, Mapping) else {}


def example_signal_names(example: RankingExample) -> set[str]:
    """Every signal name any candidate of ``example`` carries."""
    names: set[str] = set()
    for c in example.candidates:
        names.update(candidate_signals(c))
    return names


def check_example_signals(candidates: Iterable[Candidate], where: str = "candidates") -> None:
    """Refuse an example whose candidates do not all carry the same signal names."""
    cands = list(candidates)
    sets = [set(candidate_signals(c)) for c in cands]
    union = set().union(*sets) if sets else set()
    for i, (c, s) in enumerate(zip(cands, sets)):
        missing = sorted(union - s)
        if missing:
            raise SignalError(
                f"{where}[{i}] (id {c.id!r}) lacks signal(s) {', '.join(missing)} that other "
                "candidates carry; give every candidate the same signals (a signal is shown as "
                "a rank among all candidates)"
            )


def with_signals(example: RankingExample, computed: Mapping[str, Mapping[str, float]]) -> RankingExample:
    """A copy of ``example`` whose candidates also carry ``computed`` (``{name: {cid: value}}``).

    A name the input already gives is an error: silently replacing a user's own score, or
    silently ignoring the requested provider, would both rank with something else than asked.
    """

    if not computed:
        return example
    given = example_signal_names(example)
    clash = sorted(given & set(computed))
    if clash:
        raise SignalError(
            f"example {example.id!r}: candidates already carry signal(s) {', '.join(clash)}; "
            "drop them from the input or from --signals"
        )
    cands = []
    for c in example.candidates:
        sig = candidate_signals(c)
        for name, values in computed.items():
            sig[name] = float(values[c.id])
        cands.append(dataclasses.replace(c, meta={**c.meta, SIGNALS_KEY: sig}))
    return dataclasses.replace(example, candidates=cands)


__all__ = [
    "NAME_RE",
    "SIGNALS_KEY",
    "SignalError",
    "candidate_signals",
    "check_example_signals",
    "check_signals",
    "example_signal_names",
    "with_signals",
]
