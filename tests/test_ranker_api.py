"""``iranker.Ranker``: plain strings in, results out (scripted backend = the real protocol; one
test runs the README snippet with the real default model)."""

from __future__ import annotations

import pytest

import iranker


def test_rerank_assigns_safe_ids_and_returns_results():
    ranker = iranker.Ranker("last", backend="scripted")  # removes the last shown candidate each step
    docs = ["0", "[2]", "A flea can live a year."]  # texts that look like ids and labels
    res = ranker.rerank("how long do fleas live", docs)
    assert res.order == [0, 1, 2] and len(res) == 3  # 'last' keeps the shown order
    assert [i.text for i in res] == docs
    assert [i.score for i in res] == [1.0, round(2 / 3, 6), round(1 / 3, 6)]
    assert res.top_k(1)[0].index == 0 and res.by_index(2).rank == 3
    assert len(res.steps) == 2 and res.valid


def test_route_and_recommend():
    ranker = iranker.Ranker("first", backend="scripted")  # removes the first shown: reverses
    res = ranker.route(
        "prove sqrt(2) is irrational",
        models=[
            {"name": "small", "description": "cheap", "input_price": 0.1, "output_price": 0.2},
            {"name": "large", "description": "strong", "input_price": 5, "output_price": 15},
            "medium",
        ],
        objective="balance",
    )
    assert [i.name for i in res] == ["medium", "large", "small"]
    res = ranker.recommend(history=["Toy Story (1995)"], items=["Heat (1995)", "Aladdin (1992)"])
    assert res.order == [1, 0]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda r: r.rerank("", ["a", "b"]), "query"),
        (lambda r: r.rerank("q", ["a"]), "at least 2"),
        (lambda r: r.rerank("q", "ab"), "list of strings"),
        (lambda r: r.rerank("q", ["a", 3]), r"docs\[1\]"),
        (lambda r: r.route("q", ["a", "b"], objective="speed"), "objective"),
        (
            lambda r: r.route("q", [{"name": "a", "input_price": "cheap"}, "b"]),
            "could not convert|input_price",
        ),
        (lambda r: r.route("q", [{"name": "a", "input_price": float("nan")}, "b"]), "input_price"),
        (lambda r: r.recommend([], ["a", "b"]), "history"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(iranker.Ranker("last", backend="scripted"))


@pytest.mark.model
def test_readme_snippet_runs_with_the_default_model():
    """The README's three lines, verbatim, with the packaged trained model."""
    ranker = iranker.Ranker(threads=1)
    top = ranker.rerank("how long do fleas live", ["Paris is in France.", "A flea can live a year."]).top_k(1)
    assert len(top) == 1 and top[0].text in ("Paris is in France.", "A flea can live a year.")
    assert (ranker.ranker.decode, ranker.ranker.reuse) == ("choice", "kv")  # what iranker-135m records
    assert ranker.name == "iranker-135m"
