"""Single-signal rankers and reciprocal-rank fusion (k = 60): the baselines a model must beat."""

from __future__ import annotations

import pytest
from helpers import passage_example

from iranker.signals.rankers import RRFRanker, SignalRanker
from iranker.signals.schema import SignalError, with_signals


def signed(ex, **signals):
    return with_signals(ex, {name: dict(zip(ex.candidate_ids, vals)) for name, vals in signals.items()})


def test_signal_ranker_orders_by_value_ties_in_candidate_order():
    ex = signed(passage_example(), bm25=[1.0, 1.0, 5.0])
    assert SignalRanker("bm25").rank([ex])[0].order == ["d3", "d1", "d2"]
    with pytest.raises(SignalError, match="no 'dense' signal"):
        SignalRanker("dense").rank([ex])


def test_rrf_matches_the_formula():
    ex = signed(passage_example(), bm25=[3, 2, 1], dense=[1, 3, 2])
    # ranks: d1 (1, 3), d2 (2, 1), d3 (3, 2); fused = 1/(60+r1) + 1/(60+r2)
    fused = {"d1": 1 / 61 + 1 / 63, "d2": 1 / 62 + 1 / 61, "d3": 1 / 63 + 1 / 62}
    r = RRFRanker().rank([ex])[0]
    assert r.order == sorted(fused, key=lambda c: -fused[c]) == ["d2", "d1", "d3"]
    assert r.meta["fused"] == ["bm25", "dense"] and r.meta["k"] == 60
    # k = 0 weighs the top ranks far more: d1 (1 + 1/3) beats d2 (1/2 + 1)? no: 1.333 < 1.5
    assert RRFRanker(k=0).rank([ex])[0].order[0] == "d2"


def test_rrf_needs_signals():
    with pytest.raises(SignalError, match="no signals to fuse"):
        RRFRanker().rank([passage_example()])
