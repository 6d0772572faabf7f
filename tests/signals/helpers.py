"""Small examples and a deterministic bag-of-words encoder for the signal tests.

``WordEncoder`` stands in for the sentence encoder *under* the outcomes provider (a dependency,
not the thing tested): texts sharing words get cosine > 0, so the nearest past queries are
known by construction. ``test_dense.py`` and one outcomes test use the real embedded MiniLM.
"""

from __future__ import annotations

import hashlib

import numpy as np

from iranker.types import Candidate, RankingExample


class WordEncoder:
    """L2-normalised hashed bag of words (what ``DenseRanker.embed`` returns, minus the model)."""

    model_name = "test-words"

    def embed(self, texts):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in str(t).lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def rec_example(ex_id="r1", user="u1", history=("A", "B"), items=("C", "D", "E"), target="C"):
    return RankingExample(
        ex_id,
        "recommendation",
        "\n".join(history),
        [Candidate(f"i{it}", it) for it in items],
        relevance={f"i{target}": 1.0},
        meta={"history": list(history), "user": user},
    )


def route_example(
    ex_id="q1", query="prove a theorem about primes", names=("small", "large", "mid"), scores=None, qid=None
):
    meta = {"objective": "performance"}
    if scores:
        meta["scores"] = dict(scores)
    if qid:
        meta["query_id"] = qid
    return RankingExample(
        ex_id, "routing", query, [Candidate(n, f"{n} model", {"name": n}) for n in names], meta=meta
    )


def passage_example(ex_id="p1"):
    return RankingExample(
        ex_id,
        "passage",
        "how long do fleas live",
        [
            Candidate("d1", "Paris is the capital of France."),
            Candidate("d2", "A flea can live up to a year; fleas live long."),
            Candidate("d3", "Fleas are insects."),
        ],
        relevance={"d2": 1.0},
    )
