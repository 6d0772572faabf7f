"""``cooccur``: item-item cosine over an interactions log, the ranked user's own items left out."""

from __future__ import annotations

import json
import math

import pytest
from helpers import rec_example

from iranker.data.io import DataError
from iranker.signals.cooccur import CooccurSignal
from iranker.signals.files import Interactions, read_interactions


def log(*users):
    return [Interactions(tuple(items), user) for user, items in users]


def test_scores_are_summed_cosines_with_the_history():
    sig = CooccurSignal(log(("a", "ABC"), ("b", "ACD"), ("c", "BD"), ("d", "E")))
    ex = rec_example(user="z", history=("A", "B"), items=("C", "D", "E"))
    s = sig.scores([ex])[0]
    # n_A=2 n_B=2 n_C=2 n_D=2; co(A,C)=2 co(B,C)=1 co(A,D)=1 co(B,D)=1
    assert s["iC"] == pytest.approx(2 / 2 + 1 / 2)
    assert s["iD"] == pytest.approx(1 / 2 + 1 / 2)
    assert s["iE"] == 0.0


def test_items_match_by_id_or_by_title():
    by_id = CooccurSignal(log(("a", ["h1", "iC"])))
    ex = rec_example(user="z", history=("A",), items=("C", "D"))
    ex.meta["history_ids"] = ["h1"]
    assert by_id.scores([ex])[0] == {"iC": 1.0, "iD": 0.0}
    by_title = CooccurSignal(log(("a", ["A", "C"])))
    assert by_title.scores([rec_example(user="z", history=("A",), items=("C", "D"))])[0] == {
        "iC": 1.0,
        "iD": 0.0,
    }


def test_the_ranked_users_own_items_never_count():
    """A log that holds the test user's own next item must not leak it into their signal."""
    others = [("a", "AD"), ("b", "BD")]
    ex = rec_example(user="me", history=("A", "B"), items=("C", "D"), target="C")
    with_me = CooccurSignal(log(*others, ("me", "ABC")))
    without_me = CooccurSignal(log(*others))
    assert with_me.scores([ex])[0] == without_me.scores([ex])[0]
    assert without_me.scores([ex])[0]["iC"] == 0.0
    # the same log does help another user whose history overlaps "me"
    other = rec_example(user="x", history=("A", "B"), items=("C", "D"))
    assert with_me.scores([other])[0]["iC"] > 0


def test_from_examples_uses_history_plus_next_item_per_training_user():
    train = [
        rec_example("t1", "u1", ("A", "B"), ("C", "X"), "C"),
        rec_example("t2", "u2", ("B",), ("C", "Y"), "C"),
    ]
    sig = CooccurSignal.from_examples(train)
    assert sig.n_users == 2
    test = rec_example("e1", "u9", ("B",), ("C", "X"), "C")
    s = sig.scores([test])[0]
    assert s["iC"] == pytest.approx(2 / math.sqrt(2 * 2)) and s["iX"] == 0.0  # X was a negative, not an item


def test_interactions_file_errors_name_the_line(tmp_path):
    f = tmp_path / "log.jsonl"
    f.write_text('{"user": "a", "items": ["x", "y"]}\n\n{"items": []}\n')
    with pytest.raises(DataError, match=r"log.jsonl:3: 'items' must be a non-empty list"):
        read_interactions(f)
    f.write_text('{"user": "a", "itmes": ["x"]}\n')
    with pytest.raises(DataError, match=r":1: unknown field\(s\) \['itmes'\]"):
        read_interactions(f)
    f.write_text('{"items": ["x", true]}\n')
    with pytest.raises(DataError, match=r":1: items\[1\] must be a non-empty string"):
        read_interactions(f)
    f.write_text("")
    with pytest.raises(DataError, match=":0: no records"):
        read_interactions(f)
    with pytest.raises(DataError, match="cannot read file"):
        read_interactions(tmp_path / "missing.jsonl")
    f.write_text(json.dumps({"user": 7, "items": ["x", 3]}) + "\n")
    assert read_interactions(f) == [Interactions(("x", "3"), "7")]
