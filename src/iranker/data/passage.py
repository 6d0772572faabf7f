"""Passage loaders: a TREC run with passage texts, TREC qrels, and MS MARCO v1.1 parquet.

* Run JSON (``retrieve_results_dl19.json``, as published with several re-ranking papers):
  ``[{"query": str, "hits": [{"qid", "docid", "content", "rank", "score"}, ...]}, ...]`` —
  one entry per query, hits in BM25 rank order.
* Qrels JSON (``qrels_dl19.json``): ``{qid: {docid: grade}}`` with grades as strings "0".."3";
  the classic whitespace TREC format (``qid 0 docid grade``) is read too.
* MS MARCO v1.1 (HF ``ms_marco``/``microsoft/ms_marco`` config ``v1.1`` parquet): columns
  ``query``, ``query_id`` and ``passages`` = {``passage_text``: list, ``is_selected``: list}.

Ids are strings everywhere (qids are ints in the run JSON but strings in the qrels).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

__all__ = [
    "MsMarcoQuery",
    "Passage",
    "PassageQuery",
    "load_msmarco_parquet",
    "load_qrels",
    "load_trec_run_json",
]


@dataclass
class Passage:
    docid: str
    text: str
    rank: int | None = None
    score: float | None = None


@dataclass
class PassageQuery:
    """A query and its retrieved passages, best-ranked first."""

    qid: str
    query: str
    hits: list[Passage] = field(default_factory=list)


@dataclass
class MsMarcoQuery:
    """One MS MARCO QA row: the passages Bing returned and which ones the annotator selected."""

    query_id: str
    query: str
    passages: list[str]
    is_selected: list[int]


def load_trec_run_json(path: str | os.PathLike[str]) -> list[PassageQuery]:
    """Read a run with passage texts (see module docstring); hits are sorted by rank.

    Every hit of an entry must carry the same ``qid``: the entry's query text has no id of its
    own, so a mixed entry would silently attach judgements of one query to another.
    """
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of {{query, hits}} objects")
    out: list[PassageQuery] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or "query" not in entry or "hits" not in entry:
            raise ValueError(f"{path}: entry {i} lacks 'query' or 'hits'")
        hits = entry["hits"]
        qids = {str(h.get("qid")) for h in hits}
        if len(qids) != 1:
            raise ValueError(f"{path}: entry {i} ({entry['query']!r}) mixes qids {sorted(qids)}")
        passages = []
        for j, h in enumerate(hits):
            if "docid" not in h or "content" not in h:
                raise ValueError(f"{path}: entry {i} hit {j} lacks 'docid' or 'content'")
            passages.append(
                Passage(
                    docid=str(h["docid"]),
                    text=str(h["content"]),
                    rank=int(h["rank"]) if h.get("rank") is not None else j + 1,
                    score=float(h["score"]) if h.get("score") is not None else None,
                )
            )
        passages.sort(key=lambda p: p.rank if p.rank is not None else 0)
        out.append(PassageQuery(qid=qids.pop(), query=str(entry["query"]), hits=passages))
    return out


def load_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """Read graded judgements as ``{qid: {docid: grade}}`` from JSON or TREC text format."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        raw = json.loads(text)
        return {str(q): {str(d): int(float(g)) for d, g in docs.items()} for q, docs in raw.items()}
    out: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ValueError(f"{path}:{lineno}: expected 'qid iteration docid grade'")
        out.setdefault(parts[0], {})[parts[2]] = int(float(parts[3]))
    return out


def load_msmarco_parquet(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[MsMarcoQuery]:
    """Read MS MARCO v1.1 parquet file(s) (a folder reads every ``*.parquet`` in it).

    Only the needed columns are read, with pyarrow (it is already a dependency of
    ``datasets``; the import is local so ``iranker.data`` does not require it).
    """
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading MS MARCO parquet needs pyarrow: pip install pyarrow") from err
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        files = sorted(p.glob("*.parquet")) if p.is_dir() else [p]
    else:
        files = [Path(x) for x in paths]
    if not files:
        raise FileNotFoundError(f"no parquet files in {paths}")
    out: list[MsMarcoQuery] = []
    for f in files:
        table = pq.read_table(f, columns=["query", "query_id", "passages"])
        for row in table.to_pylist():
            ps = row["passages"] or {}
            texts = list(ps.get("passage_text") or [])
            sel = [int(x) for x in (ps.get("is_selected") or [])]
            if len(texts) != len(sel):
                raise ValueError(
                    f"{f}: query_id {row['query_id']}: passage_text and is_selected differ in length"
                )
            out.append(
                MsMarcoQuery(
                    query_id=str(row["query_id"]), query=str(row["query"]), passages=texts, is_selected=sel
                )
            )
    return out
