import json

from iranker.data.steps import build_step_rows, step_rows
from iranker.rewards import compute_score, make_trl_reward
from iranker.types import Candidate, RankingExample


def ex(eid="u1", n=5):
    return RankingExample(
        eid, "passage", "q", [Candidate(f"c{i}", f"text {i}") for i in range(n)], {"c2": 2.0, "c0": 1.0}
    )


def test_pools_of_every_size_contain_the_best():
    rows = list(step_rows(ex(), task="passage-5", seed=1))
    assert sorted(r["pool_size"] for r in rows) == [2, 3, 4, 5]
    for r in rows:
        ids = [c["id"] for c in r["pool"]]
        assert "c2" in ids and r["best"] == ["c2"] and len(ids) == r["pool_size"]
        user = r["prompt"][-1]["content"]
        for c in r["pool"]:
            assert f"{c['label']} {c['text']}" in user
        assert set(json.loads(r["relevance"])) == set(ids)


def test_seeded_and_best_position_varies():
    a = list(step_rows(ex(), task="t", seed=3))
    b = list(step_rows(ex(), task="t", seed=3))
    assert a == b
    positions = {
        [c["id"] for c in r["pool"]].index("c2")
        for e in range(20)
        for r in step_rows(ex(f"u{e}"), task="t", seed=0)
    }
    assert len(positions) > 1


def test_examples_without_relevance_give_no_rows():
    e = RankingExample("x", "passage", "q", [Candidate("a", "1"), Candidate("b", "2")])
    assert list(step_rows(e, task="t")) == []


def test_mixing_and_cap_and_rewards_consume_rows():
    rows = build_step_rows({"a": [ex("1"), ex("2")], "b": [ex("3")]}, seed=0, max_per_task=3)
    assert sum(r["task"] == "a" for r in rows) == 3 and sum(r["task"] == "b" for r in rows) == 3
    r = rows[0]
    good = (
        f"<think>x</think><answer>{[c for c in r['pool'] if c['id'] not in r['best']][0]['label']}</answer>"
    )
    fn = make_trl_reward("step")
    assert fn(completions=[good], pool=[r["pool"]], best=[r["best"]]) == [1.0]
    assert compute_score(r["data_source"], good, json.dumps({"pool": r["pool"], "best": r["best"]})) == 1.0
