"""Tiny self-written fixtures for `iranker eval`: example files and source-format task data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def passage_rows(n: int = 10) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"p{i}",
                "scenario": "passage",
                "query": f"what is the capital of land{i}",
                "candidates": [
                    {"id": f"p{i}-x", "text": "bananas are yellow and rich in potassium"},
                    {"id": f"p{i}-a", "text": f"the capital of land{i} is town{i}"},
                    {"id": f"p{i}-y", "text": "the weather is mild in spring"},
                    {"id": f"p{i}-z", "text": "football is played with eleven players"},
                ],
                "relevance": {f"p{i}-a": 1},
            }
        )
    return rows


LLMS = {  # name -> (price, description)
    "cheap-7b": (0.1, "a small cheap model"),
    "mid-70b": (0.9, "a mid-size model"),
    "big-x": (5.0, "the strongest and most expensive model"),
}


def routing_rows(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        cands = [
            {"id": name, "text": desc, "meta": {"name": name, "input_price": p, "output_price": p}}
            for name, (p, desc) in LLMS.items()
        ]
        rows.append(
            {
                "id": f"r{i}",
                "scenario": "routing",
                "query": f"question number {i}",
                "objective": "balance",
                "candidates": cands,
                "relevance": {"cheap-7b": 3.0, "mid-70b": 2.0, "big-x": 1.0}
                if i % 2
                else {"mid-70b": 3.0, "big-x": 2.0, "cheap-7b": 1.0},
            }
        )
    return rows


@pytest.fixture
def examples_file(tmp_path: Path) -> Path:
    """A labelled file with 10 passage and 8 routing examples."""
    return write_jsonl(tmp_path / "mine.jsonl", passage_rows() + routing_rows())


def cluster_rec_data(n_train: int = 60, n_test: int = 12, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Recommendation where co-occurrence must win: items come in 4 clusters; every user
    consumes items of one cluster; a test user's next item is in their cluster, the 9
    negatives are from other clusters. Titles are opaque ("item 17"), so text similarity
    (BM25/dense) cannot tell the clusters apart."""
    rng = random.Random(seed)
    clusters = {c: [f"i{c * 10 + j}" for j in range(10)] for c in range(4)}
    title = {i: f"item {i[1:]}" for items in clusters.values() for i in items}

    def example(uid: str, c: int) -> dict:
        items = rng.sample(clusters[c], 6)
        history, target = items[:5], items[5]
        others = [i for cc, its in clusters.items() if cc != c for i in its]
        cands = [target, *rng.sample(others, 9)]
        rng.shuffle(cands)
        return {
            "id": uid,
            "scenario": "recommendation",
            "history": [title[h] for h in history],
            "candidates": [{"id": x, "text": title[x]} for x in cands],
            "relevance": {target: 1},
        }

    train = [example(f"tr{u}", u % 4) for u in range(n_train)]
    test = [example(f"te{u}", u % 4) for u in range(n_test)]
    return train, test


def write_dcrouter(folder: Path, n_test: int = 12, n_train: int = 40) -> Path:
    """A tiny LLMRouter dcrouter folder (test.json, train.json, default_llm.json).

    Half the queries are "math" (only big-x scores 1) and half "chat" (all score 1, so the
    cheapest wins); their words differ, so a query embedding separates them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    llm = {
        name: {"feature": desc, "input_price": p, "output_price": p, "size": "?"}
        for name, (p, desc) in LLMS.items()
    }
    (folder / "default_llm.json").write_text(json.dumps(llm), encoding="utf-8")

    def rows(n: int, tag: str) -> list[dict]:
        out = []
        for i in range(n):
            if i % 2:
                q = f"Solve the equation {i} x + {i + 3} = {2 * i + 7} and give x as a fraction ({tag})."
                scores = {"cheap-7b": 0.0, "mid-70b": 0.0, "big-x": 1.0}
            else:
                q = f"Say hello in a friendly tone to my friend number {i} ({tag})."
                scores = {"cheap-7b": 1.0, "mid-70b": 1.0, "big-x": 1.0}
            out.append({"question": q, "scores": scores})
        return out

    (folder / "test.json").write_text(json.dumps(rows(n_test, "test")), encoding="utf-8")
    (folder / "train.json").write_text(json.dumps(rows(n_train, "train")), encoding="utf-8")
    return folder
