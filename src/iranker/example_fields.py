"""The rules for the fields of an example, shared by every door examples come in by.

``iranker rank`` / ``eval`` read examples from JSONL (``data/io.py``), the server builds them
from request bodies (``serve/``). Before this module each door had its own checks, and they
disagreed: a 400-digit integer price passed the CLI and crashed while rendering the prompt,
``"weight": "0.5"`` and ``"weight": true`` were coerced by the CLI and refused by the server.
Now both call these functions, which raise :class:`FieldError` (a ``ValueError``) with a
message that does not name its field, so each caller prefixes its own path
(``candidate 'x'`` in a file, ``models[2].input_price`` in a body).

The size limits (candidates per example, characters per candidate) live here too: the server's
defaults and the CLI's ``--max-candidates`` / ``--max-candidate-chars`` defaults are the same
numbers, because elimination work grows with both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

#: objective name -> weight on quality (the paper's Router-Performance/-Balance/-Cost)
OBJECTIVE_WEIGHTS = {"performance": 1.0, "balance": 0.5, "cost": 0.2}
#: the routing objectives by name, in that order (the tasks, ``Ranker.route``, the server's schema)
ROUTING_OBJECTIVES: tuple[str, ...] = tuple(OBJECTIVE_WEIGHTS)

#: Candidate fields the routing scenario and cheapest-first read as USD per million tokens.
PRICE_FIELDS = ("input_price", "output_price")

#: Default most candidates in one example (CLI ``--max-candidates``, server ``max_documents``).
#: Elimination asks N - 1 questions about a prompt of N candidates: the work grows as N².
MAX_CANDIDATES = 100
#: Default most characters in one candidate's text (CLI ``--max-candidate-chars``, server
#: ``max_doc_chars``): every elimination step shows every remaining candidate's text.
MAX_CANDIDATE_CHARS = 8000


class FieldError(ValueError):
    """A field value the rules refuse; the message says what is wrong, the caller says where."""


@dataclass(frozen=True)
class ExampleLimits:
    """How big one example may be; ``None`` for a limit means no limit."""

    max_candidates: int | None = MAX_CANDIDATES
    max_candidate_chars: int | None = MAX_CANDIDATE_CHARS

    def check_candidates(self, n: int) -> None:
        if self.max_candidates is not None and n > self.max_candidates:
            raise FieldError(f"{n} candidates is over the limit of {self.max_candidates}")

    def check_text(self, text: str) -> None:
        if self.max_candidate_chars is not None and len(text) > self.max_candidate_chars:
            raise FieldError(f"{len(text)} characters is over the limit of {self.max_candidate_chars}")


def finite_number(value: Any) -> float:
    """``value`` as a finite float: a JSON number (int or float), not a bool or a string.

    An integer too large for a float (JSON allows any number of digits) is refused here,
    not by an ``OverflowError`` where the number is first used.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"must be a number, got {type(value).__name__} {_short(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise FieldError(f"must be a finite number, got {_short(value)}") from None
    if not math.isfinite(number):
        raise FieldError(f"must be a finite number, got {number!r}")
    return number


def price(value: Any) -> float:
    """A price in USD per million tokens: a finite number >= 0."""
    number = finite_number(value)
    if number < 0:
        raise FieldError(f"must be >= 0 (USD per million tokens), got {_short(value)}")
    return number


def routing_weight(value: Any) -> float:
    """A weight on quality: a finite number in [0, 1]."""
    number = finite_number(value)
    if not 0.0 <= number <= 1.0:
        raise FieldError(f"must be between 0 and 1, got {_short(value)}")
    return number


def routing_objective(value: Any) -> str:
    """One of ``performance``, ``balance``, ``cost``."""
    if not isinstance(value, str) or value not in OBJECTIVE_WEIGHTS:
        raise FieldError(f"must be one of {', '.join(OBJECTIVE_WEIGHTS)}, got {_short(value)}")
    return value


def objective_or_weight(meta: Mapping[str, Any]) -> float:
    """The weight on quality that ``meta``'s ``objective`` or ``weight`` stands for (1.0 when
    neither is given). Giving both is refused: which one would win is a guess."""
    has_weight = meta.get("weight") is not None
    has_objective = meta.get("objective") is not None
    if has_weight and has_objective:
        raise FieldError("objective, weight: give one of them, not both")
    if has_weight:
        try:
            return routing_weight(meta["weight"])
        except FieldError as exc:
            raise FieldError(f"weight: {exc}") from None
    if has_objective:
        try:
            return OBJECTIVE_WEIGHTS[routing_objective(meta["objective"])]
        except FieldError as exc:
            raise FieldError(f"objective: {exc}") from None
    return OBJECTIVE_WEIGHTS["performance"]


def candidate_text(text: Any) -> str:
    """A candidate's (document's) text: a string with something besides whitespace."""
    if not isinstance(text, str):
        raise FieldError(f"must be a string, got {type(text).__name__}")
    if not text.strip():
        raise FieldError("is empty" if not text else "is empty (only whitespace)")
    return text


def _short(value: Any, limit: int = 40) -> str:
    if isinstance(value, int) and value.bit_length() > 128:  # repr of a huge int is slow or refused
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "ExampleLimits",
    "FieldError",
    "MAX_CANDIDATES",
    "MAX_CANDIDATE_CHARS",
    "OBJECTIVE_WEIGHTS",
    "PRICE_FIELDS",
    "candidate_text",
    "finite_number",
    "objective_or_weight",
    "price",
    "routing_objective",
    "routing_weight",
]
