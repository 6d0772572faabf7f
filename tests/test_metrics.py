"""Metrics: hand-computed cases, error handling, and a cross-check against ir-measures."""

from __future__ import annotations

import math
import random

import pytest

from iranker.metrics import (
    Measure,
    evaluate,
    hit_at_k,
    ndcg_at_k,
    parse_measure,
    reciprocal_rank,
)
from iranker.types import Candidate, Ranking, RankingExample

# ---------------------------------------------------------------------------- hand-computed


def test_single_relevant_item():
    order = ["a", "b", "c", "d"]
    rel = {"c": 1.0}
    assert reciprocal_rank(order, rel) == pytest.approx(1 / 3)
    assert ndcg_at_k(order, rel, 5) == pytest.approx(1 / math.log2(4))  # 0.5
    assert ndcg_at_k(order, rel, 2) == 0.0
    assert hit_at_k(order, rel, 1) == 0.0
    assert hit_at_k(order, rel, 3) == 1.0
    # first place is perfect everywhere
    assert reciprocal_rank(["c", "a"], rel) == 1.0
    assert ndcg_at_k(["c", "a"], rel, 1) == 1.0


def test_graded_relevance_linear_gain():
    order = ["x", "b", "a"]  # grades 0, 1, 2
    rel = {"a": 2, "b": 1, "x": 0}
    dcg = 0 / 1 + 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / 1 + 1 / math.log2(3) + 0
    assert ndcg_at_k(order, rel, 3) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(order, rel, None) == pytest.approx(dcg / idcg)
    # @2: dcg = 1/log2(3); idcg = 2 + 1/log2(3)
    assert ndcg_at_k(order, rel, 2) == pytest.approx((1 / math.log2(3)) / (2 + 1 / math.log2(3)))
    # relevance thresholds: default > 0, rel=2 means >= 2
    assert reciprocal_rank(order, rel) == pytest.approx(1 / 2)
    assert reciprocal_rank(order, rel, threshold=2) == pytest.approx(1 / 3)
    assert hit_at_k(order, rel, 2) == 1.0
    assert hit_at_k(order, rel, 2, threshold=2) == 0.0
    # cutoff on RR
    assert reciprocal_rank(order, rel, threshold=2, k=2) == 0.0


def test_missing_items_count_as_zero_and_no_relevant_gives_zero():
    assert ndcg_at_k(["a", "b"], {}, 5) == 0.0
    assert reciprocal_rank(["a", "b"], {"z": 0}) == 0.0
    assert ndcg_at_k(["a", "b"], {"b": 3.5}, 1) == 0.0


def test_bad_cutoff():
    with pytest.raises(ValueError):
        hit_at_k(["a"], {"a": 1}, 0)
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a": 1}, -1)


# ---------------------------------------------------------------------------- parse_measure


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("MRR", Measure("MRR")),
        ("RR", Measure("MRR")),
        ("mrr@10", Measure("MRR", k=10)),
        ("RR(rel=2)", Measure("MRR", rel=2.0)),
        ("NDCG@10", Measure("NDCG", k=10)),
        ("nDCG@5", Measure("NDCG", k=5)),
        ("ndcg", Measure("NDCG")),
        ("Hit@1", Measure("Hit", k=1)),
        ("Success@5", Measure("Hit", k=5)),
        ("Hit(rel=2)@5", Measure("Hit", k=5, rel=2.0)),
    ],
)
def test_parse_measure(spec, expected):
    assert parse_measure(spec) == expected


def test_measure_str_roundtrip():
    for s in ["MRR", "MRR@10", "MRR(rel=2)", "NDCG@10", "NDCG", "Hit@5", "Hit(rel=2)@5"]:
        assert str(parse_measure(s)) == s


@pytest.mark.parametrize("bad", ["P@5", "NDCG@0", "Hit", "NDCG(rel=2)@5", "MRR@", ""])
def test_parse_measure_errors(bad):
    with pytest.raises(ValueError):
        parse_measure(bad)


# ---------------------------------------------------------------------------- evaluate


def _example(eid: str, n: int = 4, relevance=None) -> RankingExample:
    cands = [Candidate(id=f"c{i}", text=f"text {i}") for i in range(n)]
    return RankingExample(
        id=eid,
        scenario="passage",
        query="q",
        candidates=cands,
        relevance={"c2": 1.0} if relevance is None else relevance,
    )


def test_evaluate_means_and_per_example():
    exs = [_example("e1"), _example("e2", relevance={"c0": 2.0, "c1": 1.0})]
    # rankings given in a different order than the examples: matched by id
    rankings = [
        Ranking("e2", ["c1", "c0", "c2", "c3"], method="m"),
        Ranking("e1", ["c2", "c0", "c1", "c3"], method="m"),
    ]
    out = evaluate(rankings, exs)
    assert out["measures"] == ["MRR", "NDCG@5", "NDCG@10", "Hit@1", "Hit@5"]
    assert out["n"] == 2
    assert list(out["per_example"]) == ["e1", "e2"]
    assert out["per_example"]["e1"]["MRR"] == 1.0
    assert out["per_example"]["e2"]["MRR"] == 1.0
    e2_ndcg = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert out["per_example"]["e2"]["NDCG@5"] == pytest.approx(e2_ndcg)
    assert out["mean"]["NDCG@5"] == pytest.approx((1 + e2_ndcg) / 2)
    assert out["mean"]["Hit@1"] == 1.0

    out2 = evaluate(rankings, exs, measures=["RR(rel=2)", "Success@1"])
    assert out2["per_example"]["e2"] == {"MRR(rel=2)": 0.5, "Hit@1": 1.0}


def test_evaluate_ignores_relevance_of_non_candidates():
    # a grade for an item that was never a candidate must not make nDCG=1 unreachable
    ex = _example("e", relevance={"c1": 1.0, "not-a-candidate": 3.0})
    out = evaluate([Ranking("e", ["c1", "c0", "c2", "c3"])], [ex], ["NDCG@5"])
    assert out["mean"]["NDCG@5"] == 1.0


@pytest.mark.parametrize(
    "order, msg",
    [
        (["c0", "c1", "c2"], "missing"),
        (["c0", "c1", "c2", "c3", "c9"], "unknown"),
        (["c0", "c1", "c2", "c2"], "repeated"),
    ],
)
def test_evaluate_rejects_non_permutation(order, msg):
    with pytest.raises(ValueError, match=msg):
        evaluate([Ranking("e", order)], [_example("e")])


def test_evaluate_errors():
    ex = _example("e")
    ok = Ranking("e", ["c0", "c1", "c2", "c3"])
    with pytest.raises(ValueError, match="no relevance"):
        evaluate([ok], [_example("e", relevance={})])
    with pytest.raises(ValueError, match="no relevance"):
        evaluate([ok], [_example("e", relevance={"c0": 0.0})])
    with pytest.raises(ValueError, match="unknown example"):
        evaluate([Ranking("zzz", ["c0"])], [ex])
    with pytest.raises(ValueError, match="two rankings"):
        evaluate([ok, ok], [ex])
    with pytest.raises(ValueError, match="no ranking"):
        evaluate([ok], [ex, _example("f")])
    partial = evaluate([ok], [ex, _example("f")], require_all=False)
    assert partial["n"] == 1 and list(partial["per_example"]) == ["e"]


# ---------------------------------------------------------------------------- ir-measures


def test_cross_check_against_ir_measures():
    """Our values equal ir-measures' (pytrec_eval) on 300 random graded rankings, to 1e-9.

    ir-measures sorts each query's run by score (descending; ties by doc id, descending), so
    the run gives each candidate the score ``n - position``: distinct and in our order.
    Grades are integers 0..3 (trec_eval reads integer qrels); some queries have no relevant
    item at all, which both sides score as 0.
    """
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import RR, Qrel, ScoredDoc, Success, nDCG

    rng = random.Random(12345)
    qrels, run, ours = [], [], {}
    theirs_spec = {
        "RR": RR,
        "RR(rel=2)": RR(rel=2),
        "RR@5": RR @ 5,
        "nDCG@1": nDCG @ 1,
        "nDCG@5": nDCG @ 5,
        "nDCG@10": nDCG @ 10,
        "Success@1": Success @ 1,
        "Success@5": Success @ 5,
        "Success@10": Success @ 10,
        "Success(rel=2)@5": Success(rel=2) @ 5,
    }
    for q in range(300):
        qid = f"q{q}"
        n = rng.randint(1, 25)
        ids = [f"d{rng.randrange(10**6)}_{i}" for i in range(n)]  # ids unrelated to order
        rel = {d: rng.choice([0, 0, 0, 1, 1, 2, 3]) for d in ids}
        order = ids[:]
        rng.shuffle(order)
        for d, g in rel.items():
            qrels.append(Qrel(qid, d, g))
        for pos, d in enumerate(order):
            run.append(ScoredDoc(qid, d, float(n - pos)))
        ours[qid] = {
            "RR": reciprocal_rank(order, rel),
            "RR(rel=2)": reciprocal_rank(order, rel, threshold=2),
            "RR@5": reciprocal_rank(order, rel, k=5),
            "nDCG@1": ndcg_at_k(order, rel, 1),
            "nDCG@5": ndcg_at_k(order, rel, 5),
            "nDCG@10": ndcg_at_k(order, rel, 10),
            "Success@1": hit_at_k(order, rel, 1),
            "Success@5": hit_at_k(order, rel, 5),
            "Success@10": hit_at_k(order, rel, 10),
            "Success(rel=2)@5": hit_at_k(order, rel, 5, threshold=2),
        }

    name_of = {str(m): key for key, m in theirs_spec.items()}
    seen = 0
    for row in ir_measures.iter_calc(list(theirs_spec.values()), qrels, run):
        key = name_of[str(row.measure)]
        assert abs(ours[row.query_id][key] - row.value) <= 1e-9, (row, ours[row.query_id][key])
        seen += 1
    assert seen == 300 * len(theirs_spec)
    # the sample exercises non-trivial values, not just 0s and 1s
    assert any(0 < v["nDCG@10"] < 1 for v in ours.values())
    assert any(v["RR"] == 0 for v in ours.values())


def test_routing_mrr_counts_only_the_best_llm_by_default():
    """Routing relevance is graded for nDCG; MRR asks where the best LLM landed."""
    from iranker.metrics import evaluate
    from iranker.types import Candidate, Ranking, RankingExample

    ex = RankingExample("r", "routing", "q", [Candidate(c, c) for c in "abc"], {"a": 3, "b": 2, "c": 1})
    res = evaluate([Ranking("r", ["c", "a", "b"])], [ex], measures=("MRR", "Hit@1", "RR(rel=1)"))
    assert res["mean"]["MRR"] == 0.5 and res["mean"]["Hit@1"] == 0.0
    assert res["mean"]["MRR(rel=1)"] == 1.0  # an explicit threshold still wins
    ex.meta["relevant_grade"] = 1
    assert evaluate([Ranking("r", ["c", "a", "b"])], [ex], measures=("MRR",))["mean"]["MRR"] == 1.0


def test_rank_and_eval_score_an_example_by_the_same_rule():
    """`iranker rank` prints metrics.evaluate, `iranker eval` writes report.example_metrics:
    the same per-example rule (thresholds, examples without a relevant candidate) for both."""
    from iranker.evaluation.report import MEASURES, example_metrics
    from iranker.metrics import evaluate
    from iranker.types import Candidate, Ranking, RankingExample

    cands = [Candidate(c, f"text {c}") for c in "abcd"]
    examples = [
        RankingExample("p", "passage", "q", cands, {"c": 1.0}),
        RankingExample("dl", "passage", "q", cands, {"a": 1.0, "d": 3.0}, {"relevant_grade": 2}),
        RankingExample("r", "routing", "q", cands, {"a": 1.0, "b": 4.0, "c": 2.0, "d": 3.0}),
        RankingExample("none", "passage", "q", cands, {"a": 0.0}),
    ]
    order = ["a", "b", "c", "d"]
    res = evaluate([Ranking(ex.id, order) for ex in examples], examples, MEASURES, no_positive="zero")
    for ex in examples:
        assert res["per_example"][ex.id] == example_metrics(order, ex)
    assert [res["per_example"][i]["MRR"] for i in ("p", "dl", "r", "none")] == [
        pytest.approx(1 / 3),
        0.25,
        0.5,
        0.0,
    ]
    assert res["n_without_positive"] == 1
    with pytest.raises(ValueError, match="no relevance judgements"):
        evaluate([Ranking(ex.id, order) for ex in examples], examples, MEASURES)  # the strict default
    skipped = evaluate([Ranking(ex.id, order) for ex in examples], examples, MEASURES, no_positive="skip")
    assert skipped["n"] == 3 and "none" not in skipped["per_example"]


def test_rank_counts_examples_without_a_relevant_candidate_as_eval_does(tmp_path, capsys):
    import json

    from iranker.cli import main as cli

    rows = [
        {
            "id": f"q{i}",
            "scenario": "passage",
            "query": "q",
            "candidates": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}],
            "relevance": {"a": 1 if i else 0},
        }
        for i in range(3)
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        cli.main(["rank", "-i", str(src), "-o", str(tmp_path / "o.jsonl"), "--backend", "scripted", "-q"])
        == 0
    )
    err = capsys.readouterr().err  # was: "internal error" (evaluate raised on q0)
    assert "passage: n=3 " in err and "(1 without a relevant candidate, scored 0)" in err
