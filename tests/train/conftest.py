"""Tiny hand-written examples for the training tests (no data files, no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROUTING_LLMS = [
    {
        "id": "small",
        "text": "A small cheap model, good at short factual answers.",
        "name": "small-7b",
        "input_price": 0.1,
        "output_price": 0.1,
    },
    {
        "id": "medium",
        "text": "A mid-sized model, solid at reasoning, moderately priced.",
        "name": "medium-70b",
        "input_price": 0.9,
        "output_price": 0.9,
    },
    {
        "id": "large",
        "text": "The strongest and most expensive model.",
        "name": "large-pro",
        "input_price": 5.0,
        "output_price": 15.0,
    },
]


def passage(i: int, query: str, good: str, bad: list[str]) -> dict:
    cands = [{"id": "good", "text": good}] + [{"id": f"bad{j}", "text": t} for j, t in enumerate(bad)]
    return {
        "id": f"p{i}",
        "scenario": "passage",
        "query": query,
        "candidates": cands,
        "relevance": {"good": 2.0},
        "meta": {"task": "passage-mini"},
    }


def routing(i: int, query: str, best: str) -> dict:
    return {
        "id": f"r{i}",
        "scenario": "routing",
        "query": query,
        "objective": "balance",
        "candidates": ROUTING_LLMS,
        "relevance": {best: 1.0},
        "meta": {"task": "router-mini"},
    }


def recommendation(i: int, history: list[str], target: str, others: list[str]) -> dict:
    cands = [{"id": "t", "text": target}] + [{"id": f"n{j}", "text": t} for j, t in enumerate(others)]
    return {
        "id": f"u{i}",
        "scenario": "recommendation",
        "history": history,
        "domain": "movie",
        "candidates": cands,
        "relevance": {"t": 1.0},
        "meta": {"task": "rec-mini"},
    }


TRAIN = [
    passage(
        1,
        "what is the boiling point of water",
        "Water boils at 100 degrees Celsius at sea level.",
        ["The Nile is the longest river in Africa.", "Chess is played on an 8x8 board."],
    ),
    passage(
        2,
        "who wrote hamlet",
        "Hamlet is a tragedy written by William Shakespeare around 1600.",
        ["Hamburgers are usually served in a bun.", "Mount Everest is in the Himalayas."],
    ),
    routing(1, "What is 2 + 2?", "small"),
    recommendation(
        1, ["Toy Story", "Aladdin", "The Lion King"], "Beauty and the Beast", ["Saving Private Ryan", "Alien"]
    ),
]

TEST = [
    passage(
        3,
        "how many legs does a spider have",
        "Spiders have eight legs.",
        ["Bees make honey.", "Paris is the capital of France."],
    ),
    routing(2, "Prove that there are infinitely many primes.", "medium"),
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def train_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", TRAIN)


@pytest.fixture
def test_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "test.jsonl", TEST)


def require_embedded_training(*packages: str) -> None:
    """Skip (with the reason) unless the training extras and the embedded base model are here."""
    for pkg in packages:
        pytest.importorskip(pkg)
    from iranker.llm.models import EmbeddedModelMissingError, embedded_gguf_path

    try:
        embedded_gguf_path()
    except EmbeddedModelMissingError as exc:
        pytest.skip(str(exc))
