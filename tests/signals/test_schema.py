"""The ``signals`` schema: finite numbers under valid names, the same names on every candidate,
refused with the path of the bad value in every input (JSONL here; API and server elsewhere)."""

from __future__ import annotations

import json
import math

import pytest
from helpers import passage_example
from hypothesis import given, settings
from hypothesis import strategies as st

from iranker.data.io import DataError, example_from_record
from iranker.signals.schema import SignalError, check_example_signals, check_signals, with_signals
from iranker.types import Candidate


def record(sig1, sig2=None):
    c2 = {"id": "d2", "text": "b"}
    if sig2 is not None:
        c2["signals"] = sig2
    return {
        "id": "q",
        "scenario": "passage",
        "query": "q",
        "candidates": [{"id": "d1", "text": "a", "signals": sig1}, c2],
    }


def test_valid_signals_are_floats_in_candidate_meta():
    ex = example_from_record(record({"bm25": 3, "dense": 0.5}, {"bm25": 1.5, "dense": -2}))
    assert ex.candidates[0].meta["signals"] == {"bm25": 3.0, "dense": 0.5}
    assert all(isinstance(v, float) for v in ex.candidates[1].meta["signals"].values())


@pytest.mark.parametrize(
    "bad,path",
    [
        ({"bm25": "high"}, "candidates[0].signals.bm25: must be a number"),
        ({"bm25": True}, "candidates[0].signals.bm25: must be a number"),
        ({"bm25": None}, "candidates[0].signals.bm25: must be a number"),
        ({"bm25": [1]}, "candidates[0].signals.bm25: must be a number"),
        ({"bm25": 10**400}, "candidates[0].signals.bm25: must be a finite number"),
        ({"a b": 1}, "candidates[0].signals.a b: a signal name"),
        ({"": 1}, "candidates[0].signals.: a signal name"),
        ([1, 2], "candidates[0].signals: must be an object"),
        ("bm25", "candidates[0].signals: must be an object"),
    ],
)
def test_bad_values_are_refused_with_their_path(bad, path):
    with pytest.raises(DataError, match="^<record>:1: " + path.replace("[", r"\[").replace("]", r"\]")):
        example_from_record(record(bad, {"bm25": 1}))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_json_numbers_are_refused_with_their_path(token):
    line = (
        '{"id": "q", "scenario": "passage", "query": "q", "candidates": ['
        '{"id": "d1", "text": "a", "signals": {"bm25": %s}}, {"id": "d2", "text": "b", "signals": {"bm25": 1}}]}'
        % token
    )
    with pytest.raises(DataError, match=r"candidates\[0\]\.signals\.bm25"):
        example_from_record(json.loads(line))


def test_every_candidate_needs_the_same_names():
    with pytest.raises(DataError, match=r"candidates\[1\] \(id 'd2'\) lacks signal\(s\) dense"):
        example_from_record(record({"bm25": 1, "dense": 2}, {"bm25": 1}))
    with pytest.raises(DataError, match=r"candidates\[1\] \(id 'd2'\) lacks signal\(s\) bm25"):
        example_from_record(record({"bm25": 1}))


def test_computed_signal_clashing_with_a_given_one_is_an_error():
    ex = passage_example()
    ex = with_signals(ex, {"bm25": {c.id: 1.0 for c in ex.candidates}})
    with pytest.raises(SignalError, match="already carry signal"):
        with_signals(ex, {"bm25": {c.id: 2.0 for c in ex.candidates}})


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
names = st.one_of(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,5}", fullmatch=True), st.text(max_size=6))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(names, values, max_size=4))
def test_fuzz_signals_either_validate_or_fail_with_a_path(sig):
    try:
        out = check_signals(sig, "c.signals")
    except SignalError as exc:
        assert str(exc).startswith("c.signals")
        return
    assert set(out) == set(sig)
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["bm25", "dense", "x"]), st.floats(-1e6, 1e6), max_size=3),
        min_size=2,
        max_size=4,
    )
)
def test_fuzz_name_consistency(sigs):
    cands = [Candidate(str(i), "t", {"signals": s}) for i, s in enumerate(sigs)]
    same = all(set(s) == set(sigs[0]) for s in sigs)
    if same:
        check_example_signals(cands)
    else:
        with pytest.raises(SignalError, match="lacks signal"):
            check_example_signals(cands)
