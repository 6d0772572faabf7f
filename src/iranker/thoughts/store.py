"""The on-disk thought store: what ``iranker thoughts collect`` writes and ``--thoughts`` reads.

A store is a folder of three files, written together and checked together on load:

    manifest.json    {"format": "iranker-thoughts/1", "model", "dim", "count", "normalized": true, ...}
    embeddings.npy   float32 matrix (count x dim), row i = L2-normalised embedding of record i's query
    thoughts.jsonl   one record per row, in row order (see ``THOUGHT_FIELDS``)

Plain numpy + JSONL on purpose: at the sizes one CPU produces (thousands of thoughts) an exact
dot product over the matrix takes microseconds, needs no extra dependency and gives the same
neighbours on every machine. Past about a million thoughts an approximate index (FAISS IVF/HNSW,
hnswlib) would replace the matrix scan; the records and the manifest would stay as they are.

Every defect a store can have (a missing file, a manifest of another format, a matrix of the
wrong shape or dtype, a record line that does not parse) raises ``ThoughtStoreError`` naming
the file, so the CLI prints one line and the server refuses to start.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic_files import atomic_path, atomic_write_text

FORMAT = "iranker-thoughts/1"
MANIFEST = "manifest.json"
EMBEDDINGS = "embeddings.npy"
RECORDS = "thoughts.jsonl"

#: the fields every record carries (``collect`` writes them all; ``load_store`` checks them)
THOUGHT_FIELDS = (
    "id",
    "task",
    "scenario",
    "example_id",
    "query",
    "embed_text",
    "pool",
    "removed",
    "removed_text",
    "best",
    "thought",
)


class ThoughtStoreError(ValueError):
    """A thought store that cannot be used; the message names the file and what is wrong."""


@dataclass
class ThoughtStore:
    """A loaded store: the manifest, the records and their embedding matrix (row i = record i)."""

    path: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    embeddings: np.ndarray = field(repr=False)

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    def __len__(self) -> int:
        return len(self.records)


def write_store(
    path: str | os.PathLike[str],
    records: Sequence[dict[str, Any]],
    embeddings: np.ndarray,
    *,
    model: str,
    sources: Sequence[dict[str, Any]] = (),
) -> Path:
    """Write ``records`` and their normalised ``embeddings`` as a store folder; returns its path.

    The three files are written under temporary names and renamed at the end, the manifest
    last, so an interrupted write never leaves a folder that loads as a complete store.
    """
    out = Path(path)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(records):
        raise ValueError(f"embeddings of shape {emb.shape} do not match {len(records)} records")
    out.mkdir(parents=True, exist_ok=True)
    scenarios: dict[str, int] = {}
    for r in records:
        scenarios[r["scenario"]] = scenarios.get(r["scenario"], 0) + 1
    manifest = {
        "format": FORMAT,
        "model": model,
        "dim": int(emb.shape[1]),
        "count": len(records),
        "normalized": True,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scenarios": dict(sorted(scenarios.items())),
        "sources": list(sources),
        "files": {"embeddings": EMBEDDINGS, "records": RECORDS},
    }
    # the manifest last: it names the count the other two must match, so a store cut between
    # the renames is refused when loaded, never read as complete
    with atomic_path(out / EMBEDDINGS) as tmp, open(tmp, "wb") as fh:
        np.save(fh, emb, allow_pickle=False)
    atomic_write_text(out / RECORDS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return out


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ThoughtStoreError(
            f"thought store {str(folder)!r} is not a folder (make one with `iranker thoughts collect`)"
        )
    if not path.is_file():
        raise ThoughtStoreError(
            f"{path}: missing; {str(folder)!r} is not a thought store (make one with `iranker thoughts collect`)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ThoughtStoreError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ThoughtStoreError(f"{path}: must be a JSON object")
    if manifest.get("format") != FORMAT:
        raise ThoughtStoreError(f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}")
    for key in ("count", "dim"):
        value = manifest.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "count" else 1):
            raise ThoughtStoreError(
                f"{path}: {key!r} must be a {'non-negative' if key == 'count' else 'positive'} integer, got {value!r}"
            )
    if not isinstance(manifest.get("model"), str) or not manifest["model"]:
        raise ThoughtStoreError(f"{path}: 'model' (the embedding model) must be a non-empty string")
    return manifest


def _read_records(path: Path, count: int) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ThoughtStoreError(f"{path}: missing")
    records = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise ThoughtStoreError(f"{path}:{n}: not valid JSON ({exc})") from None
            missing = [k for k in THOUGHT_FIELDS if not isinstance(rec, dict) or k not in rec]
            if missing:
                raise ThoughtStoreError(f"{path}:{n}: record lacks {missing}")
            records.append(rec)
    if len(records) != count:
        raise ThoughtStoreError(f"{path}: {len(records)} records, but the manifest says count={count}")
    return records


def load_store(path: str | os.PathLike[str]) -> ThoughtStore:
    """Read and check a store folder (raises ``ThoughtStoreError`` on any defect)."""
    folder = Path(path)
    manifest = _read_manifest(folder)
    count, dim = manifest["count"], manifest["dim"]
    records = _read_records(folder / RECORDS, count)
    emb_path = folder / EMBEDDINGS
    if not emb_path.is_file():
        raise ThoughtStoreError(f"{emb_path}: missing")
    try:
        emb = np.load(emb_path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ThoughtStoreError(f"{emb_path}: not a readable .npy matrix ({exc})") from None
    if emb.dtype != np.float32 or emb.shape != (count, dim):
        raise ThoughtStoreError(
            f"{emb_path}: {emb.dtype} matrix of shape {emb.shape}; the manifest says float32 ({count}, {dim})"
        )
    if count and not np.isfinite(emb).all():
        raise ThoughtStoreError(f"{emb_path}: holds NaN or infinite values")
    if count and not np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-3):
        raise ThoughtStoreError(
            f"{emb_path}: rows are not L2-normalised (cosine = dot product needs them to be)"
        )
    return ThoughtStore(folder, manifest, records, emb)


def manifest_digest(store: ThoughtStore) -> str:
    """A short identity of a store's content (count, model, dim and the records' ids/thoughts).

    ``iranker eval`` records it in ``run.json``, so predictions made with one store are never
    mixed with predictions made with another in the same folder.
    """

    h = hashlib.sha256()
    h.update(json.dumps([store.manifest["model"], store.manifest["dim"], len(store)]).encode())
    for r in store.records:
        h.update(json.dumps([r["id"], r["thought"], r["embed_text"]], ensure_ascii=False).encode())
    return h.hexdigest()[:16]
