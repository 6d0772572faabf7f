"""Pool pruning (``iranker.rankers.pruning``): several likely-worst candidates per step.

The scripted backend scores labels by a fixed rule, so each test knows which candidates a
step must remove; one test runs the real embedded model with KV eviction.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iranker.llm import ScriptedLLM
from iranker.rankers import IterativeRanker
from iranker.rankers.pruning import PruneSchedule
from iranker.types import Candidate, RankingExample


def example(n, eid="q", scenario="passage"):
    return RankingExample(
        eid, scenario, "query", [Candidate(f"c{i}", f"candidate text {i}") for i in range(n)], {"c0": 1}
    )


def by_label(messages, choice):  # the higher the label number, the more likely "worst"
    return float(choice.strip("<answer>[]"))


def choice_llm():
    return ScriptedLLM(lambda m: "", logprob_fn=by_label)


def test_parse_named_and_explicit_schedules():
    assert PruneSchedule.parse(None) is None and PruneSchedule.parse("none") is None
    assert PruneSchedule.parse("quarter") == PruneSchedule(fraction=0.25, min_pool=5)
    assert PruneSchedule.parse("threshold=0.1,min=3") == PruneSchedule(threshold=0.1, min_pool=3)
    s = PruneSchedule.parse("fraction=0.3")
    assert PruneSchedule.parse(s.spec()) == s


@pytest.mark.parametrize(
    "spec",
    [
        "fraction",
        "fraction=2",
        "fraction=0",
        "threshold=-1",
        "min=3",
        "fraction=0.2,threshold=0.1",
        "fraction=0.2,min=1",
        "fraction=0.2,min=x",
        "fraction=nan",
        "bogus=1",
        "fraction=0.2,fraction=0.3",
    ],
)
def test_bad_schedules_are_refused_with_what_is_accepted(spec):
    with pytest.raises(ValueError, match="prune"):
        PruneSchedule.parse(spec)


def test_quarter_at_20_removes_a_quarter_then_one_at_a_time_and_asks_10_questions():
    llm = choice_llm()
    [r] = IterativeRanker(llm, decode="choice", prune="quarter", show_progress=False).rank([example(20)])
    pools = []
    for step in r.steps:
        if not pools or pools[-1] != len(step.pool):
            pools.append(len(step.pool))
    assert pools == [20, 15, 12, 9, 7, 6, 5, 4, 3, 2]
    assert len(llm.calls) == 10  # one scoring call per pool shown
    # every candidate is in the output once, and the order is the one-at-a-time order here
    # (the rule is a strict order, so pruning removes exactly what single steps would)
    assert sorted(r.order) == sorted(example(20).candidate_ids)
    single = IterativeRanker(choice_llm(), decode="choice", show_progress=False).rank([example(20)])[0]
    assert r.order == single.order


def test_candidates_removed_together_share_the_pool_and_probs_and_go_most_likely_worst_first():
    [r] = IterativeRanker(
        choice_llm(), decode="choice", prune="fraction=0.5,min=2", show_progress=False
    ).rank([example(8)])
    first = [s for s in r.steps if len(s.pool) == 8]
    assert [s.removed for s in first] == ["c7", "c6", "c5", "c4"]
    assert all(s.how_matched == "choice:pruned" and s.pool == first[0].pool for s in first)
    assert all(s.probs == first[0].probs for s in first)
    assert r.order[-4:] == ["c4", "c5", "c6", "c7"]  # removed first = ranked last
    assert r.steps[-1].how_matched == "choice"  # pool of 2: one at a time


def test_threshold_removes_every_candidate_above_it_but_never_below_min():
    def flat_top(messages, choice):  # [1]-[3] likely worst, the rest far less
        return 0.0 if int(choice.strip("<answer>[]")) <= 3 else -10.0

    llm = ScriptedLLM(lambda m: "", logprob_fn=flat_top)
    [r] = IterativeRanker(llm, decode="choice", prune="threshold=0.2,min=2", show_progress=False).rank(
        [example(6)]
    )
    assert {s.removed for s in r.steps if len(s.pool) == 6} == {"c0", "c1", "c2"}
    sched = PruneSchedule(threshold=0.01, min_pool=4)
    assert sched.count([0.2] * 5) == 1  # 5 above the threshold, but only 1 may go (5 - 4)


def test_pruning_needs_choice_decoding():
    with pytest.raises(ValueError, match="choice"):
        IterativeRanker(ScriptedLLM.eliminate_last(), decode="generate", prune="quarter")


@given(
    n=st.integers(1, 40),
    scores=st.lists(st.floats(-50, 0, allow_nan=False), min_size=40, max_size=40),
    fraction=st.floats(0.01, 0.99),
    min_pool=st.integers(2, 8),
)
def test_any_schedule_keeps_every_candidate_once(n, scores, fraction, min_pool):
    def lp(messages, choice):
        return scores[int(choice.strip("<answer>[]")) - 1]

    llm = ScriptedLLM(lambda m: "", logprob_fn=lp)
    sched = PruneSchedule(fraction=fraction, min_pool=min_pool)
    [r] = IterativeRanker(llm, decode="choice", prune=sched, show_progress=False).rank([example(n)])
    assert sorted(r.order) == sorted(example(n).candidate_ids)
    assert len(r.steps) == max(0, n - 1)
    for step in r.steps:
        assert step.removed in step.pool


@pytest.mark.model
def test_pruned_kv_ranking_of_the_embedded_model_keeps_every_candidate(embedded_llm):
    from iranker.demo import packaged_examples

    ex = packaged_examples("demo_passage")[0]
    n = len(ex.candidates)
    sched = PruneSchedule(fraction=0.5, min_pool=2)
    [pruned] = IterativeRanker(
        embedded_llm, decode="choice", reuse="kv", prune=sched, show_progress=False
    ).rank([ex])
    [single] = IterativeRanker(embedded_llm, decode="choice", reuse="kv", show_progress=False).rank([ex])
    assert sorted(pruned.order) == sorted(ex.candidate_ids)
    assert len({len(s.pool) for s in pruned.steps}) < n - 1  # fewer questions than candidates - 1
    # the first step sees the same prompt: its most likely worst is what one-at-a-time removes
    assert pruned.steps[0].removed == single.steps[0].removed


def test_rank_command_prunes_and_records_the_schedule(tmp_path):
    import json

    from iranker.cli import main as cli

    src = tmp_path / "in.jsonl"
    ex = {
        "id": "q1",
        "scenario": "passage",
        "query": "apples",
        "candidates": [{"id": f"d{i}", "text": f"doc {i}"} for i in range(12)],
    }
    src.write_text(json.dumps(ex) + "\n")
    out = tmp_path / "out.jsonl"
    args = ["rank", "-i", str(src), "-o", str(out), "--backend", "scripted", "--decode", "choice", "-q"]
    assert cli.main([*args, "--prune", "quarter"]) == 0
    [rec] = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(rec["ranking"]) == sorted(c["id"] for c in ex["candidates"])
    assert len({len(s["pool"]) for s in rec["steps"]}) == 8  # 12, 9, 7, 6, 5, 4, 3, 2
    assert any(s["how_matched"] == "choice:pruned" for s in rec["steps"])


def test_the_python_ranker_and_serve_take_a_schedule():
    import iranker
    from iranker.serve.command import configure_parser

    r = iranker.Ranker("last", backend="scripted", decode="choice", prune="quarter")
    assert r.ranker.prune == PruneSchedule(fraction=0.25, min_pool=5)
    docs = [f"doc {i}" for i in range(12)]
    assert sorted(r.rerank("apples", docs).order) == list(range(12))
    import argparse

    args = configure_parser(argparse.ArgumentParser()).parse_args(
        ["--backend", "scripted", "--prune", "half"]
    )
    assert args.prune == "half"
