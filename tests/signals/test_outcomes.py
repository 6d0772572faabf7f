"""``outcomes``: each LLM's record on the k nearest past queries, the query itself never voting."""

from __future__ import annotations

import pytest
from helpers import WordEncoder, route_example

from iranker.data.io import DataError
from iranker.signals.files import Outcome, read_outcomes
from iranker.signals.outcomes import OutcomesSignal

PAST = [
    Outcome("prove a theorem about primes", {"small": 0.0, "large": 1.0, "mid": 0.5}, "p1"),
    Outcome("prove a lemma about graphs", {"small": 0.2, "large": 0.8}, "p2"),
    Outcome("write a poem about cats", {"small": 1.0, "large": 0.0, "mid": 0.0}, "p3"),
]


def test_nearest_past_queries_vote_with_their_similarity():
    sig = OutcomesSignal(PAST, k=1, dense=WordEncoder())
    s = sig.scores([route_example(query="compose a poem about cats")])[0]
    assert s == {"small": 1.0, "large": 0.0, "mid": 0.0}
    s = sig.scores([route_example(query="prove a theorem about primes today")])[0]
    assert s["large"] == 1.0 and s["small"] == 0.0


def test_the_query_itself_never_votes():
    """A past record of the very query (same text, or same query_id) is excluded."""
    sig = OutcomesSignal(PAST, k=1, dense=WordEncoder())
    s = sig.scores([route_example(query="Prove a   theorem about primes")])[0]  # same text, other spacing
    assert s == {"small": 0.2, "large": 0.8, "mid": 0.2 - 1.0}  # from p2; mid unmeasured: below the lowest
    by_id = sig.scores([route_example(query="prove theorems about primes", qid="p1")])[0]
    assert by_id["large"] == 0.8


def test_llms_match_by_id_or_name_and_unmeasured_ones_rank_last():
    sig = OutcomesSignal(PAST, k=3, dense=WordEncoder())
    ex = route_example(query="prove a lemma", names=("large", "unknown"))
    s = sig.scores([ex])[0]
    assert s["unknown"] < s["large"]


def test_from_examples_keeps_each_training_query_once():
    train = [
        route_example(f"t{i}", "prove it", scores={"small": 1.0, "large": 0.0}, qid="q") for i in range(3)
    ]
    sig = OutcomesSignal.from_examples(train, dense=WordEncoder())
    assert len(sig.outcomes) == 1 and sig.outcomes[0].id == "q"


def test_real_encoder_end_to_end():
    pytest.importorskip("sentence_transformers")
    sig = OutcomesSignal(PAST, k=1)
    s = sig.scores([route_example(query="write a short poem about a cat")])[0]
    assert max(s, key=s.get) == "small"


def test_outcomes_file_errors_name_the_line(tmp_path):
    f = tmp_path / "out.jsonl"
    f.write_text('{"query": "q", "outcomes": {"a": 1}}\n{"query": "q2", "outcomes": {"a": NaN}}\n')
    with pytest.raises(DataError, match=r"out.jsonl:2: outcomes.a: must be a finite number"):
        read_outcomes(f)
    f.write_text('{"query": "", "outcomes": {"a": 1}}\n')
    with pytest.raises(DataError, match=":1: 'query' must be a non-empty string"):
        read_outcomes(f)
    f.write_text('{"query": "q", "outcomes": {"a": "good"}}\n')
    with pytest.raises(DataError, match=":1: outcomes.a"):
        read_outcomes(f)
    f.write_text('{"query": "q", "outcomes": {"a": 1%s}}\n' % ("0" * 400))
    with pytest.raises(DataError, match=":1: outcomes.a: must be a finite number"):
        read_outcomes(f)
    f.write_text('{"query": "q", "outcomes": {"a": 1}, "id": 5}\n')
    assert read_outcomes(f) == [Outcome("q", {"a": 1.0}, "5")]
