"""Read and write ranking examples as JSON Lines, with errors that point at the bad line.

Examples travel between the CLI, the benchmark, the server and users' own files as JSONL: one
``RankingExample.to_dict()`` per line. Users write these files by hand, so every problem is
reported as a :class:`DataError` whose message starts with ``path:line: `` (line 0 for a
problem with the whole file), the way compilers report errors, instead of a bare ``KeyError``
deep in a ranker.

Accepted line format (``?`` = optional)::

    {"id": "q1", "scenario": "recommendation" | "routing" | "passage",
     "query": "...", "candidates": [{"id": "a", "text": "...", "meta"?: {...}}, ...],
     "relevance"?: {"a": 1.0}, "history"?: ["...", ...], "objective"?: "balance",
     "weight"?: 0.5, "domain"?: "movie", "meta"?: {...}}

Top-level ``history`` / ``objective`` / ``weight`` / ``domain`` are shorthands that go into
``meta`` (where the scenarios read them). A recommendation line may omit ``query`` when it gives
``history``; the query is then the history joined one title per line. Extra keys on a candidate
(e.g. ``name``, ``input_price``) go into the candidate's ``meta``; ``signals`` (``{name: number}``,
see ``iranker.signals``) must hold finite numbers and the same names on every candidate. Unknown
top-level keys are an error (a typo such as ``relevence`` would otherwise silently drop the labels).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from ..example_fields import (
    PRICE_FIELDS,
    ExampleLimits,
    FieldError,
    candidate_text,
    objective_or_weight,
    price,
)
from ..signals.schema import check_example_signals
from ..types import SCENARIOS, Candidate, RankingExample

__all__ = [
    "DataError",
    "example_from_record",
    "iter_examples",
    "read_examples",
    "write_examples",
]

#: top-level keys that are shorthands for ``meta[key]``
META_SHORTHANDS = ("history", "objective", "weight", "domain")
_KNOWN_KEYS = {"id", "scenario", "query", "candidates", "relevance", "meta", *META_SHORTHANDS}


class DataError(ValueError):
    """Bad input data; ``str(err)`` starts with ``path:line: `` so a user can jump to it."""

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}")


def _fail(where: tuple[str, int], message: str) -> DataError:
    return DataError(where[0], where[1], message)


def example_from_record(
    record: Any, *, path: str = "<record>", line: int = 1, limits: ExampleLimits | None = None
) -> RankingExample:
    """Validate one decoded JSON object and turn it into a :class:`RankingExample`.

    Field values follow :mod:`iranker.example_fields`, the rules the server applies to request
    bodies too. ``limits`` (candidates per example, characters per candidate) are checked when
    given; the CLI passes its ``--max-candidates`` / ``--max-candidate-chars``.
    """
    where = (path, line)
    if not isinstance(record, dict):
        raise _fail(where, f"expected a JSON object, got {type(record).__name__}")
    _check_values(record, where)
    unknown = sorted(set(record) - _KNOWN_KEYS)
    if unknown:
        raise _fail(
            where,
            f"unknown field(s) {unknown}; known fields are {sorted(_KNOWN_KEYS)} "
            "(put anything else under 'meta')",
        )
    missing = [k for k in ("id", "scenario", "candidates") if k not in record]
    if "query" not in record and "history" not in record:
        missing.append("query")
    if missing:
        raise _fail(where, f"missing field(s) {missing}")

    ex_id = record["id"]
    if not isinstance(ex_id, (str, int)) or isinstance(ex_id, bool) or str(ex_id) == "":
        raise _fail(where, f"'id' must be a non-empty string or integer, got {ex_id!r}")
    scenario = record["scenario"]
    if scenario not in SCENARIOS:
        raise _fail(where, f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")

    meta = record.get("meta") or {}
    if not isinstance(meta, dict):
        raise _fail(where, f"'meta' must be an object, got {type(meta).__name__}")
    meta = dict(meta)
    for key in META_SHORTHANDS:
        if key in record:
            if key in meta and meta[key] != record[key]:
                raise _fail(where, f"'{key}' is given both at top level and in 'meta' with different values")
            meta[key] = record[key]

    history = meta.get("history")
    if history is not None:
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise _fail(where, "'history' must be a list of strings")
    if "query" in record:
        query = record["query"]
        if not isinstance(query, str):
            raise _fail(where, f"'query' must be a string, got {type(query).__name__}")
    else:
        query = "\n".join(history or [])
    if not query.strip() and not history:
        raise _fail(where, "'query' is empty")

    if scenario == "routing" and ("objective" in meta or "weight" in meta):
        try:
            objective_or_weight(meta)
        except FieldError as err:
            raise _fail(where, str(err)) from None

    candidates = _candidates(record["candidates"], where, limits)
    relevance = _relevance(record.get("relevance"), {c.id for c in candidates}, where)
    return RankingExample(
        id=str(ex_id),
        scenario=scenario,
        query=query,
        candidates=candidates,
        relevance=relevance,
        meta=meta,
    )


#: How deep ``meta`` may nest. Deeper input is not data a ranker reads, and Python's JSON writer
#: recurses, so the output of a 100k-deep record could not be written.
MAX_DEPTH = 32


def _check_values(record: dict[str, Any], where: tuple[str, int]) -> None:
    """Refuse values that would break later, far from their cause: a lone surrogate (valid JSON
    escape, but no UTF-8 output can hold it), NaN/Infinity (not JSON; NaN turns every metric
    into nan) and nesting deeper than ``MAX_DEPTH``. Iterative, so depth cannot overflow."""
    stack: list[tuple[Any, str, int]] = [(record, "", 0)]
    while stack:
        value, at, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _fail(where, f"'{at}' nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            _check_text(value, at, where)
        elif isinstance(value, float) and not math.isfinite(value):
            raise _fail(where, f"'{at}' is {value!r}; only finite numbers are allowed")
        elif isinstance(value, dict):
            for k, v in value.items():
                _check_text(k, f"{at}.{k}" if at else k, where)
                stack.append((v, f"{at}.{k}" if at else str(k), depth + 1))
        elif isinstance(value, list):
            stack.extend((v, f"{at}[{i}]", depth + 1) for i, v in enumerate(value))


def _check_text(text: str, at: str, where: tuple[str, int]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _fail(
            where,
            f"'{at}' holds a lone surrogate {text[err.start]!r} at position {err.start} "
            "(not encodable as UTF-8)",
        ) from None


def _candidates(raw: Any, where: tuple[str, int], limits: ExampleLimits | None) -> list[Candidate]:
    if not isinstance(raw, list):
        raise _fail(where, f"'candidates' must be a list, got {type(raw).__name__}")
    if len(raw) < 2:
        raise _fail(where, f"need at least 2 candidates to rank, got {len(raw)}")
    if limits is not None:
        try:
            limits.check_candidates(len(raw))
        except FieldError as err:
            raise _fail(where, f"'candidates': {err} (raise it with --max-candidates)") from None
    out: list[Candidate] = []
    seen: set[str] = set()
    for i, c in enumerate(raw):
        tag = f"candidate {i + 1}"
        if not isinstance(c, dict):
            raise _fail(where, f"{tag} must be an object with 'id' and 'text'")
        missing = [k for k in ("id", "text") if k not in c]
        if missing:
            raise _fail(where, f"{tag} is missing field(s) {missing}")
        cid, text = c["id"], c["text"]
        if not isinstance(cid, (str, int)) or isinstance(cid, bool) or str(cid) == "":
            raise _fail(where, f"{tag} has an invalid id {cid!r}")
        cid = str(cid)
        if cid in seen:
            raise _fail(where, f"duplicate candidate id {cid!r}")
        seen.add(cid)
        try:
            candidate_text(text)
        except FieldError as err:
            raise _fail(where, f"candidate {cid!r}: 'text' {err}") from None
        if limits is not None:
            try:
                limits.check_text(text)
            except FieldError as err:
                raise _fail(
                    where, f"candidate {cid!r}: 'text' has {err} (raise it with --max-candidate-chars)"
                ) from None
        meta = c.get("meta") or {}
        if not isinstance(meta, dict):
            raise _fail(where, f"candidate {cid!r}: 'meta' must be an object")
        extra = {k: v for k, v in c.items() if k not in ("id", "text", "meta")}
        meta = {**extra, **meta}
        for key in PRICE_FIELDS:
            if meta.get(key) is not None:
                try:
                    price(meta[key])
                except FieldError as err:
                    raise _fail(where, f"candidate {cid!r}: {key!r} {err}") from None
        if "signals" in meta:
            from ..signals.schema import SignalError, check_signals

            try:
                meta["signals"] = check_signals(meta["signals"], f"candidates[{i}].signals")
            except SignalError as err:
                raise _fail(where, str(err)) from None
        out.append(Candidate(id=cid, text=text, meta=meta))

    try:
        check_example_signals(out)
    except SignalError as err:
        raise _fail(where, str(err)) from None
    return out


def _relevance(raw: Any, ids: set[str], where: tuple[str, int]) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(where, "'relevance' must be an object mapping candidate id -> grade")
    out: dict[str, float] = {}
    for k, v in raw.items():
        if k not in ids:
            # The paper's code compared ids with passage texts; catch that class of mistake here.
            raise _fail(where, f"relevance names {k!r}, which is not a candidate id")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _fail(where, f"relevance grade of {k!r} must be a number, got {v!r}")
        out[k] = float(v)
    return out


def _open_binary(source: str | os.PathLike[str]) -> tuple[str, IO[bytes]]:
    # Binary, decoded line by line: a text-mode file decodes in chunks, so a bad byte would be
    # reported on the wrong line.
    path = str(source)
    try:
        if path.endswith(".gz"):
            fh: IO[bytes] = gzip.open(path, "rb")
            fh.peek(1)  # type: ignore[attr-defined]  # surface "not a gzip file" here
            return path, fh
        return path, open(path, "rb")
    except OSError as err:
        raise DataError(path, 0, f"cannot read file: {err.strerror or err}") from None


def iter_examples(
    source: str | os.PathLike[str] | IO[str] | IO[bytes],
    *,
    name: str | None = None,
    limits: ExampleLimits | None = None,
) -> Iterator[RankingExample]:
    """Yield examples one by one (for large files); blank lines are skipped.

    ``source`` is a path (``.gz`` is decompressed) or an open text stream such as
    ``sys.stdin`` (text or binary); ``name`` is what error messages call it (default: the path or ``<stream>``).
    Example ids must be unique within the file, because rankings are matched back by id.
    """
    if isinstance(source, (str, os.PathLike)):
        path, fh = _open_binary(source)
        close = True
    else:
        path, fh, close = getattr(source, "name", "<stream>"), source, False
    path = name or str(path)
    seen: dict[str, int] = {}
    lineno = 0
    try:
        while True:
            try:
                raw = fh.readline()
            except OSError as err:
                raise DataError(path, lineno + 1, f"cannot read file: {err}") from None
            if not raw:
                break
            lineno += 1
            if isinstance(raw, bytes):
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(path, lineno, f"not valid UTF-8 text ({err.reason})") from None
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataError(path, lineno, f"invalid JSON: {err.msg} (column {err.colno})") from None
            except RecursionError:
                raise DataError(
                    path, lineno, f"JSON nested too deeply (the limit is {MAX_DEPTH} levels)"
                ) from None
            except ValueError as err:  # e.g. an integer of more than 4300 digits
                raise DataError(path, lineno, f"invalid JSON: {str(err).split(';')[0]}") from None
            example = example_from_record(record, path=path, line=lineno, limits=limits)
            if example.id in seen:
                raise DataError(
                    path, lineno, f"duplicate example id {example.id!r} (first on line {seen[example.id]})"
                )
            seen[example.id] = lineno
            yield example
    finally:
        if close:
            fh.close()


def read_examples(
    source: str | os.PathLike[str] | IO[str] | IO[bytes],
    *,
    name: str | None = None,
    allow_empty: bool = False,
    limits: ExampleLimits | None = None,
) -> list[RankingExample]:
    """Read and validate every example of a JSONL file (see the module docstring for the format).

    An empty file is an error unless ``allow_empty``: ranking nothing is almost always a
    wrong path or a failed export, and saying so beats printing a metric over zero examples.
    """
    examples = list(iter_examples(source, name=name, limits=limits))
    if not examples and not allow_empty:
        path = name or (
            str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")
        )
        raise DataError(str(path), 0, "no examples in file")
    return examples


def write_examples(
    path: str | os.PathLike[str] | IO[str], examples: Iterable[RankingExample | Mapping[str, Any]]
) -> int:
    """Write examples as JSONL (``RankingExample.to_dict`` per line); returns how many.

    Parent folders are created. Non-ASCII text is written as is (UTF-8), so titles stay readable.
    """

    def lines() -> Iterator[str]:
        for ex in examples:
            d = ex.to_dict() if isinstance(ex, RankingExample) else dict(ex)
            yield json.dumps(d, ensure_ascii=False) + "\n"

    n = 0
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ".gz":
            fh: IO[str] = gzip.open(p, "wt", encoding="utf-8")
        else:
            fh = open(p, "w", encoding="utf-8")
        with fh:
            for line in lines():
                fh.write(line)
                n += 1
    else:
        for line in lines():
            path.write(line)
            n += 1
    return n
