import pytest

from iranker.parsing import CandidateView, closest_candidate, extract, match_candidate, normalize, parse_order

POOL = [
    CandidateView("m1", "[1]", "The Matrix (1999)"),
    CandidateView("m2", "[2]", "Toy Story (1995)"),
    CandidateView("m3", "[3]", "Heat (1995)"),
]


def test_extract_well_formed():
    p = extract("<think>Heat is a crime film.</think>\n<answer>[3] Heat (1995)</answer>")
    assert p.thought == "Heat is a crime film."
    assert p.answer == "[3] Heat (1995)"
    assert p.well_formed


@pytest.mark.parametrize(
    "text",
    [
        "<answer>[3]</answer>",  # no think
        "<think>a</think><think>b</think><answer>[3]</answer>",  # two thinks
        "<think>a</think><answer>[3]</answer><answer>[1]</answer>",
        "<answer>[3]</answer><think>late</think>",
        "<think>a</think><answer>[3]",  # unclosed
    ],
)
def test_extract_flags_malformed(text):
    assert not extract(text).well_formed


def test_extract_no_answer():
    p = extract("I think the first one.")
    assert p.answer is None and p.thought == "I think the first one."


def test_unclosed_answer_is_still_read():
    assert extract("<think>x</think><answer>[2] Toy").answer == "[2] Toy"


@pytest.mark.parametrize(
    "answer,expected,how",
    [
        ("Heat (1995)", "m3", "exact"),
        ("[2] Toy Story (1995)", "m2", "exact"),
        ("toy story 1995", "m2", "normalized"),
        ("[1]", "m1", "label"),
        ("Candidate [1] is the least likely", "m1", "label"),
        ("2", "m2", "label"),
        ("The Matrx (1999)", "m1", "fuzzy"),
    ],
)
def test_match_candidate(answer, expected, how):
    m = match_candidate(answer, POOL)
    assert (m.candidate, m.how) == (expected, how)


@pytest.mark.parametrize(
    "answer,how",
    [
        (None, "none"),
        ("", "none"),
        ("[7]", "not_in_pool"),
        ("[1] or [2]", "ambiguous"),
        ("a romantic comedy", "none"),
    ],
)
def test_unmatched_answers(answer, how):
    m = match_candidate(answer, POOL)
    assert m.candidate is None and m.how == how


def test_removed_candidate_label_does_not_match():
    pool = [POOL[0], POOL[2]]  # [2] was eliminated already
    assert match_candidate("[2]", pool).how == "not_in_pool"


def test_closest_candidate_is_deterministic_pool_member():
    assert closest_candidate("I would drop toy story", POOL) == "m2"
    assert closest_candidate("zzz", POOL) in {"m1", "m2", "m3"}
    assert closest_candidate("zzz", POOL) == closest_candidate("zzz", POOL)


def test_parse_order_labels_duplicates_and_unknown():
    order, dups = parse_order("[3] > [1] > [3] > [9]", POOL)
    assert order == ["m3", "m1"] and dups == ["m3"]


def test_parse_order_titles():
    order, _ = parse_order("1. Heat (1995)\n2. The Matrix (1999)\n3. Toy Story (1995)", POOL)
    assert order == ["m3", "m1", "m2"]


def test_normalize():
    assert normalize("[3]  Amélie (2001)!") == "amelie 2001"
