"""``iranker.Ranker`` with signals: computed (``signals=``) or given per item, validated with paths."""

from __future__ import annotations

import pytest

import iranker


def prompts(ranker):
    return [p[1]["content"] for batch in ranker.backend.calls for p in batch]


def test_ranker_computes_signals_and_shows_ranks():
    ranker = iranker.Ranker("last", backend="scripted", signals="bm25")
    res = ranker.rerank(
        "how long do fleas live", ["Paris is in France.", "A flea can live a year; fleas live."]
    )
    assert sorted(res.order) == [0, 1]
    assert "[2] A flea can live a year; fleas live. (signals: bm25 1/2)" in prompts(ranker)[0]


def test_items_carry_their_own_signals():
    ranker = iranker.Ranker("last", backend="scripted")
    ranker.rerank(
        "q", [{"text": "a", "signals": {"retriever": 0.2}}, {"text": "b", "signals": {"retriever": 0.9}}]
    )
    assert "[1] a (signals: retriever 2/2)" in prompts(ranker)[0]
    ranker.route("q", models=[{"name": "s", "signals": {"wins": 3}}, {"name": "l", "signals": {"wins": 5}}])
    assert "(signals: wins 1/2)" in prompts(ranker)[-1]
    ranker.recommend(
        ["Toy Story (1995)"],
        [{"text": "Heat (1995)", "signals": {"cf": 1}}, {"text": "Up", "signals": {"cf": 2}}],
        user="u1",
    )
    assert "[2] Up (signals: cf 1/2)" in prompts(ranker)[-1]


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda r: r.rerank("q", [{"text": "a", "signals": {"x": float("nan")}}, "b"]),
            r"docs\[0\]\.signals\.x: must be a finite",
        ),
        (
            lambda r: r.rerank(
                "q", [{"text": "a", "signals": {"x": "1"}}, {"text": "b", "signals": {"x": 1}}]
            ),
            r"docs\[0\]\.signals\.x: must be a number",
        ),
        (
            lambda r: r.rerank("q", [{"text": "a", "signals": {"x": 1}}, "b"]),
            r"docs\[1\] \(id '1'\) lacks signal",
        ),
        (lambda r: r.rerank("q", [{"txt": "a"}, "b"]), r"docs\[0\]: unknown key"),
        (
            lambda r: r.route(
                "q", [{"name": "a", "signals": {"x": float("inf")}}, {"name": "b", "signals": {"x": 1}}]
            ),
            r"models\[0\]\.signals\.x",
        ),
        (
            lambda r: r.recommend(["h"], [{"text": "a", "signals": []}, "b"]),
            r"items\[0\]\.signals: must be an object",
        ),
    ],
)
def test_bad_signals_are_value_errors_naming_the_path(call, match):
    with pytest.raises(ValueError, match=match):
        call(iranker.Ranker("last", backend="scripted"))


def test_unknown_provider_and_missing_file():
    with pytest.raises(ValueError, match="unknown signal"):
        iranker.Ranker("last", backend="scripted", signals="pagerank")
    with pytest.raises(ValueError, match="needs an interactions file"):
        iranker.Ranker("last", backend="scripted", signals=["cooccur"])


def test_the_shipped_model_refuses_signals_it_was_not_trained_with():
    """The default iranker-135m was trained without signals (real model, loaded once)."""
    pytest.importorskip("torch")
    ranker = iranker.Ranker(threads=1)
    from iranker.signals.recorded import SignalsMismatch

    with pytest.raises(SignalsMismatch, match="trained without signals"):
        ranker.rerank("q", [{"text": "a", "signals": {"bm25": 1}}, {"text": "b", "signals": {"bm25": 2}}])
    assert len(ranker.rerank("how long do fleas live", ["Paris.", "A flea lives a year."])) == 2
