"""The parser never removes the wrong candidate, never crashes, and does bounded work.

Regression tests for what adversarial answers did to it (issue: "Trust every answer"), and a
seeded hypothesis fuzz test: 2,000 generated answers (and pools whose ids and texts look like
labels) with 0 exceptions and 0 wrong valid matches. Time bounds are ratios to a normal
answer on the same machine, never absolute times.
"""

from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iranker.parsing import CandidateView, closest_candidate, extract, match_candidate, parse_order


def pool_of(texts, ids=None, labels=None):
    ids = ids or [str(i) for i in range(len(texts))]
    labels = labels or [f"[{i + 1}]" for i in range(len(texts))]
    return [CandidateView(id=i, label=lab, text=t) for i, lab, t in zip(ids, labels, texts)]


def test_a_bare_number_is_a_label_even_when_ids_are_numbers():
    pool = pool_of(["alpha", "beta", "gamma", "delta"])  # ids "0".."3", labels [1]..[4]
    m = match_candidate("2", pool)
    assert (m.candidate, m.how) == ("1", "label")  # label [2] = id "1", not the id "2"
    assert match_candidate("[2]", pool).candidate == "1"
    assert match_candidate("#4", pool).candidate == "3"


def test_texts_that_look_like_labels_do_not_capture_the_label():
    pool = pool_of(["[2]", "2", "x", "y"], ids=["a", "b", "c", "d"])
    assert match_candidate("[2]", pool).candidate == "b"  # label [2] is candidate b
    assert match_candidate("2", pool).candidate == "b"
    assert match_candidate("[1]", pool).candidate == "a"


def test_an_eliminated_candidate_is_not_in_pool_not_a_fuzzy_look_alike():
    views = pool_of(["Toy Story (1995)", "Toy Story 2 (1999)", "Heat (1995)"], ids=["t1", "t2", "h"])
    pool, removed = [views[1], views[2]], [views[0]]
    m = match_candidate("Toy Story (1995)", pool, removed)
    assert m.candidate is None and m.how == "not_in_pool"
    m = match_candidate("toy story 1995", pool, removed)
    assert m.candidate is None and m.how == "not_in_pool"
    assert (
        match_candidate("Toy Story 2 (1999)", pool, removed).candidate == "t2"
    )  # the sequel itself still works


def test_huge_numbers_and_labels_do_not_raise():
    pool = pool_of(["a", "b"])
    big = "9" * 4301
    for answer in (big, f"[{big}]", f"{big}.", f"[1] and [{big}]"):
        m = match_candidate(answer, pool)
        assert m.candidate in (None, "0")
    assert parse_order(f"[1] > [{big}]", pool) == (["0"], [])  # the answer is read up to a bound


def _ratio(fn, normal, hostile, repeat=3):
    def timed(arg):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(arg)
            best = min(best, time.perf_counter() - t0)
        return best

    return timed(hostile) / max(timed(normal), 1e-6)


def test_unclosed_think_tags_are_linear_not_quadratic():
    small = "<think>" * 700  # ~5 KB
    large = "<think>" * 7000  # ~50 KB: 10x the input
    ratio = _ratio(extract, small, large)
    assert ratio < 40, f"10x more input took {ratio:.0f}x longer"  # quadratic would be ~100x
    assert extract("<think>a</think><answer>[2]</answer>").answer == "[2]"


def test_parse_order_over_long_candidates_is_bounded():
    long_pool = pool_of([("word%d " % i) * 1000 for i in range(100)])  # 100 x ~7,000 chars
    short_pool = pool_of([f"word{i}" for i in range(100)])
    answer = ", ".join(f"word{i} something" for i in range(100))
    ratio = _ratio(lambda p: parse_order(answer, p), short_pool, long_pool, repeat=1)
    assert ratio < 60, f"long candidate texts made parse_order {ratio:.0f}x slower"
    ratio = _ratio(lambda p: closest_candidate(answer * 20, p), short_pool, long_pool, repeat=1)
    assert ratio < 60


LABELISH = st.sampled_from(
    ["[1]", "[2]", "2", "3", "[10]", "#1", "1.", "Toy Story", "none", "[", "]", "<answer>"]
)
ANSWERS = st.one_of(
    st.text(max_size=60),
    st.lists(LABELISH, max_size=6).map(" ".join),
    st.builds(lambda a, b: f"{a}[{b}]", st.text(max_size=10), st.integers(0, 10**8)),
    st.integers(-5, 10**12).map(str),
)


#: 2,000 in CI; ``benchmarks/parser_fuzz.py`` sets 10,000 through this variable
FUZZ_EXAMPLES = int(os.environ.get("IRANKER_FUZZ_EXAMPLES", "2000"))


@settings(
    max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    answer=ANSWERS,
    n=st.integers(2, 8),
    removed=st.integers(0, 3),
    numeric_ids=st.booleans(),
    labelish_texts=st.booleans(),
)
def test_fuzz_no_exception_and_no_wrong_valid_match(answer, n, removed, numeric_ids, labelish_texts):
    texts = [
        f"[{i + 1}]" if labelish_texts and i % 2 else f"Title number {chr(65 + i)} ({1990 + i})"
        for i in range(n)
    ]
    ids = [str(i) for i in range(n)] if numeric_ids else [f"id{i}" for i in range(n)]
    views = pool_of(texts, ids=ids)
    gone = views[: min(removed, n - 2)]
    pool = views[len(gone) :]
    m = match_candidate(answer, pool, gone)
    pool_ids = {c.id for c in pool}
    assert m.candidate is None or m.candidate in pool_ids
    stripped = answer.strip()
    # an answer that is exactly one label must mean that label of the pool, or nothing
    for c in views:
        if stripped == c.label:
            assert m.candidate == (c.id if c.id in pool_ids else None)
    order, dups = parse_order(answer, pool)
    assert set(order) <= pool_ids and len(order) == len(set(order))
    assert closest_candidate(answer, pool) in pool_ids
    parsed = extract(answer)
    assert parsed.answer is None or isinstance(parsed.answer, str)
