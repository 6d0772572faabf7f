"""``bm25`` and ``dense`` are the project's baselines' own scores, so their single-signal
rankers are the existing ``bm25`` / ``dense`` rows (the dense test runs the embedded MiniLM)."""

from __future__ import annotations

import pytest
from helpers import passage_example, rec_example, route_example

from iranker.signals import make_providers
from iranker.signals.base import attach_signals
from iranker.signals.rankers import SignalRanker


def test_bm25_signal_is_the_bm25_baseline():
    pytest.importorskip("bm25s")
    from iranker.rankers.bm25 import BM25Ranker

    examples = [passage_example(), rec_example(items=("A film", "B", "C")), route_example()]
    shown = attach_signals(examples, make_providers(["bm25"]))
    for ex, base in zip(shown, BM25Ranker().rank(examples)):
        assert {c.id: c.meta["signals"]["bm25"] for c in ex.candidates} == pytest.approx(base.meta["scores"])
        assert SignalRanker("bm25").rank([ex])[0].order == base.order
    assert shown[0].candidates[1].meta["signals"]["bm25"] > 0


def test_dense_signal_is_the_dense_baseline():
    pytest.importorskip("sentence_transformers")
    from iranker.rankers.dense import DenseRanker

    examples = [passage_example(), rec_example()]
    shown = attach_signals(examples, make_providers(["dense"]))
    for ex, base in zip(shown, DenseRanker().rank(examples)):
        assert {c.id: c.meta["signals"]["dense"] for c in ex.candidates} == pytest.approx(base.meta["scores"])
        assert SignalRanker("dense").rank([ex])[0].order == base.order
    assert SignalRanker("dense").rank([shown[0]])[0].order[0] == "d2"


def test_providers_apply_only_to_their_scenarios(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"user": "x", "items": ["A", "C"]}\n')
    shown = attach_signals([passage_example(), rec_example()], make_providers(["cooccur"], interactions=log))
    assert "signals" not in shown[0].candidates[0].meta
    assert shown[1].candidates[0].meta["signals"] == {"cooccur": 1.0}
