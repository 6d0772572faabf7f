"""The two files users pass to the providers that need history: interactions and outcomes.

Both are JSON Lines, validated line by line with ``path:line:`` errors like example files:

* interactions (``cooccur``): ``{"user"?: "u1", "items": ["item id or title", ...]}`` — one
  user's items (order does not matter). Items are matched to a candidate by id, else by text,
  and to the history by ``meta.history_ids``, else by the history titles.
* outcomes (``outcomes``): ``{"id"?: "q1", "query": "...", "outcomes": {"llm name": quality}}``
  — how each LLM did on a past query (any number, higher = better, e.g. a 0–1 score).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Iterator

from ..data.io import DataError


@dataclass(frozen=True)
class Interactions:
    """One user's items; ``user`` lets a ranked example's own user be left out."""

    items: tuple[str, ...]
    user: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How each LLM did on one past query."""

    query: str
    scores: dict[str, float] = field(default_factory=dict)
    id: str | None = None


def _records(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict]]:
    p = str(path)
    try:
        fh = open(p, "rb")
    except OSError as err:
        raise DataError(p, 0, f"cannot read file: {err.strerror or err}") from None
    n = 0
    with fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(p, lineno, f"not valid UTF-8 text ({err.reason})") from None
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as err:
                raise DataError(p, lineno, f"invalid JSON: {getattr(err, 'msg', err)}") from None
            if not isinstance(rec, dict):
                raise DataError(p, lineno, f"expected a JSON object, got {type(rec).__name__}")
            n += 1
            yield lineno, rec
    if n == 0:
        raise DataError(p, 0, "no records in file")


def _key(value: object, p: str, lineno: int, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise DataError(p, lineno, f"{what} must be a non-empty string or integer, got {value!r}"[:200])
    return str(value)


def read_interactions(path: str | os.PathLike[str]) -> list[Interactions]:
    """Every line of an interactions file (see the module docstring)."""
    p = str(path)
    out = []
    for lineno, rec in _records(p):
        unknown = sorted(set(rec) - {"user", "items"})
        if unknown:
            raise DataError(
                p,
                lineno,
                f'unknown field(s) {unknown}; an interactions line is {{"user"?: ..., "items": [...]}}',
            )
        items = rec.get("items")
        if not isinstance(items, list) or not items:
            raise DataError(p, lineno, "'items' must be a non-empty list of item ids or titles")
        keys = tuple(_key(v, p, lineno, f"items[{i}]") for i, v in enumerate(items))
        user = _key(rec["user"], p, lineno, "'user'") if rec.get("user") is not None else None
        out.append(Interactions(keys, user))
    return out


def read_outcomes(path: str | os.PathLike[str]) -> list[Outcome]:
    """Every line of an outcomes file (see the module docstring)."""
    p = str(path)
    out = []
    for lineno, rec in _records(p):
        unknown = sorted(set(rec) - {"id", "query", "outcomes"})
        if unknown:
            raise DataError(
                p,
                lineno,
                f"unknown field(s) {unknown}; an outcomes line is "
                '{"id"?: ..., "query": ..., "outcomes": {llm: number}}',
            )
        query = rec.get("query")
        if not isinstance(query, str) or not query.strip():
            raise DataError(p, lineno, "'query' must be a non-empty string")
        scores = rec.get("outcomes")
        if not isinstance(scores, dict) or not scores:
            raise DataError(p, lineno, "'outcomes' must be a non-empty object mapping LLM name -> number")
        clean: dict[str, float] = {}
        for name, v in scores.items():
            try:
                ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(float(v))
            except OverflowError:  # an integer beyond the float range
                ok = False
            if not ok:
                raise DataError(p, lineno, f"outcomes.{name}: must be a finite number, got {v!r}"[:200])
            clean[str(name)] = float(v)
        rid = _key(rec["id"], p, lineno, "'id'") if rec.get("id") is not None else None
        out.append(Outcome(query, clean, rid))
    return out


__all__ = ["Interactions", "Outcome", "read_interactions", "read_outcomes"]
