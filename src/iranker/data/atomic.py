"""RecBole "atomic files": tab-separated tables whose header names carry a type.

A header looks like ``user_id:token	item_id_list:token_seq	rating:float``. RecBole, LLMRank and
UniSRec all publish data this way (``.inter``, ``.item``, ``.user``, ``.text``), and the column
sets differ between them, so the loaders read the header generically instead of assuming fixed
columns: ``token`` stays a string, ``token_seq`` becomes a list of strings (split on spaces),
``float`` a float and ``float_seq`` a list of floats. Items of ``token_seq`` columns that hold
free text (titles, genres) are usually wanted as one string; :func:`text_of` joins them back.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

__all__ = ["AtomicTable", "read_atomic", "text_of"]

_TYPES = ("token", "token_seq", "float", "float_seq")


@dataclass
class AtomicTable:
    """One atomic file: column names without their type suffix, their types, and the rows."""

    path: str
    columns: list[str]
    types: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def column(self, *names: str) -> str | None:
        """The first of ``names`` that is a column (files name the same thing differently)."""
        for n in names:
            if n in self.types:
                return n
        return None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _convert(value: str, kind: str, where: str) -> Any:
    if kind == "token":
        return value
    if kind == "token_seq":
        return value.split()
    try:
        if kind == "float":
            return float(value) if value.strip() else None
        if kind == "float_seq":
            return [float(v) for v in value.split()]
    except ValueError:
        raise ValueError(f"{where}: not a number: {value!r}") from None
    return value


def _csv_field_limit() -> None:
    # Some published CSVs carry embeddings in one cell; the default 128 KiB limit is too small.
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


def read_atomic(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> AtomicTable:
    """Read an atomic file (tab-separated; a comma-separated variant with quotes also works).

    Untyped header names are treated as ``token``. A row with fewer fields than the header is
    padded with empty strings (RecBole writes empty trailing fields, e.g. a missing price).
    """
    p = Path(path)
    with open(p, encoding=encoding, newline="") as fh:
        header_line = fh.readline()
        if not header_line:
            raise ValueError(f"{p}: empty file, expected a typed header such as 'item_id:token'")
        # tab unless the header is clearly comma-separated (a one-column file has neither)
        delimiter = "," if "\t" not in header_line and "," in header_line else "\t"
        fh.seek(0)
        if delimiter == "\t":
            # RecBole's tab files are not quoted: a title may contain a bare '"'.
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            _csv_field_limit()
            reader = csv.reader(fh, delimiter=",")
        header = next(reader)
        columns, types = [], {}
        for h in header:
            name, _, kind = h.strip().partition(":")
            kind = kind or "token"
            if kind not in _TYPES:
                raise ValueError(f"{p}:1: unknown atomic type {kind!r} in column {h!r}")
            columns.append(name)
            types[name] = kind
        rows = []
        for lineno, fields in enumerate(reader, start=2):
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) > len(columns):
                raise ValueError(f"{p}:{lineno}: {len(fields)} fields but the header has {len(columns)}")
            fields = fields + [""] * (len(columns) - len(fields))
            rows.append({c: _convert(v, types[c], f"{p}:{lineno}") for c, v in zip(columns, fields)})
    return AtomicTable(path=str(p), columns=columns, types=types, rows=rows)


def text_of(value: Any) -> str:
    """A cell as one string: ``token_seq`` lists are joined with spaces, None becomes ''."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)
