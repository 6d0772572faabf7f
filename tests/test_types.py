import json

from iranker.types import Candidate, Ranking, RankingExample, Step, Usage


def test_example_json_round_trip():
    ex = RankingExample(
        id="q1",
        scenario="routing",
        query="2+2?",
        candidates=[Candidate("m1", "small model", {"input_price": 0.1}), Candidate("m2", "big model")],
        relevance={"m2": 2.0},
        meta={"objective": "balance"},
    )
    back = RankingExample.from_dict(json.loads(json.dumps(ex.to_dict())))
    assert back == ex
    assert back.best_id() == "m2"


def test_ranking_json_round_trip_keeps_steps_and_usage():
    r = Ranking(
        example_id="q1",
        order=["b", "a", "c"],
        steps=[
            Step(pool=["a", "b", "c"], removed="c", raw="<answer>[3]</answer>", how_matched="label"),
            Step(
                pool=["a", "b"],
                removed="a",
                raw="??",
                valid=False,
                how_matched="fallback:closest",
                attempts=2,
            ),
        ],
        usage=Usage(calls=3, prompt_tokens=120, completion_tokens=9),
        method="iterative",
    )
    d = json.loads(json.dumps(r.to_dict()))
    assert d["id"] == "q1" and d["ranking"] == ["b", "a", "c"]
    back = Ranking.from_dict(d)
    assert back == r
    assert back.valid_rate == 0.5


def test_best_id_none_without_positive_relevance():
    ex = RankingExample("q", "passage", "x", [Candidate("a", "A"), Candidate("b", "B")], {"a": 0.0})
    assert ex.best_id() is None


def test_step_records_without_validity_are_refused_not_defaulted():
    import pytest

    from iranker.types import Step

    ok = {"pool": ["a", "b"], "removed": "b", "valid": False, "how_matched": "fallback:last"}
    assert Step.from_dict(ok).valid is False
    for key in ("valid", "how_matched"):
        with pytest.raises(ValueError, match=key):
            Step.from_dict({k: v for k, v in ok.items() if k != key})
    with pytest.raises(ValueError, match="true or false"):
        Step.from_dict({**ok, "valid": "yes"})


def test_step_probs_round_trip_and_must_match_the_pool():
    import pytest

    step = Step(
        pool=["a", "b"], removed="a", raw="logprobs=[-0.1, -2.4]", how_matched="choice", probs=[0.9, 0.1]
    )
    d = json.loads(json.dumps(step.to_dict()))
    assert d["probs"] == [0.9, 0.1] and Step.from_dict(d) == step
    old = {k: v for k, v in d.items() if k != "probs"}  # a step written before the field existed
    assert Step.from_dict(old).probs is None
    with pytest.raises(ValueError, match="2 values for a pool of 3"):
        Step(pool=["a", "b", "c"], removed="a", probs=[0.5, 0.5])
