"""Metrics rules and the report built from them (no models, no data files)."""

from __future__ import annotations

import json
import math

import pytest

from iranker.evaluation.report import (
    ALL_QRELS,
    PAPER_REFERENCE,
    compute_metrics,
    example_metrics,
    write_metrics,
    write_report,
    write_report_png,
)
from iranker.evaluation.runner import EvalTask, PredictionStore, prediction_key, prediction_record
from iranker.types import Candidate, Ranking, RankingExample, Step


def _dl19(qid: str, cands: list[str], rel: dict[str, float], qrels: dict[str, int]) -> RankingExample:
    """A trec-dl19 example as its task builder makes it (TREC DL: grade >= 2 is relevant)."""
    return RankingExample(f"trec-dl19:{qid}", "passage", "q", [Candidate(c, f"text {c}") for c in cands],
                          rel, {"qrels": qrels, "relevant_grade": 2})


def test_trec_dl19_ndcg_uses_all_judgements_and_mrr_uses_grade_2():
    ex = _dl19("1", ["a", "b", "c"], {"b": 1.0, "c": 3.0}, {"a": 0, "b": 1, "c": 3, "unshown": 2})
    m = example_metrics(["b", "c", "a"], ex)
    assert m["MRR"] == pytest.approx(0.5)  # b has grade 1 < 2
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert m[ALL_QRELS] == pytest.approx((1 + 3 / math.log2(3)) / ideal)
    assert m["NDCG@10"] == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))


def test_routing_mrr_uses_the_highest_grade():
    ex = RankingExample("r", "routing", "q", [Candidate(c, c) for c in "abc"], {"a": 1.0, "b": 3.0, "c": 2.0})
    m = example_metrics(["c", "b", "a"], ex)
    assert m["MRR"] == pytest.approx(0.5) and m["Hit@1"] == 0.0 and m["Hit@5"] == 1.0


def _task(name, examples, **meta):
    return EvalTask(name, examples, {"seed": 0, "split_rule": "rule", **meta})


def test_report_columns_reference_rows_notes_and_valid_rate(tmp_path):
    dl = [_dl19(str(i), ["a", "b"], {"a": 2.0}, {"a": 2, "b": 0}) for i in range(3)]
    rec = [RankingExample(f"rec-music:{i}", "recommendation", "h", [Candidate("x", "X"), Candidate("y", "Y")], {"y": 1.0})
           for i in range(4)]
    tasks = [
        _task("rec-music", rec, stand_in="R3 CSVs stand in for the full file", notes=["histories are <= 10"]),
        _task("trec-dl19", dl),
    ]
    store = PredictionStore(tmp_path / "predictions.jsonl")
    for t in tasks:
        for ex in t.examples:
            store.append([prediction_record(t.name, "bm25", Ranking(ex.id, list(reversed(ex.candidate_ids))), 0.01)])
            steps = [Step(pool=list(ex.candidate_ids), removed=ex.candidate_ids[1], valid=False,
                          how_matched="fallback:closest")]
            store.append([prediction_record(t.name, "iterative", Ranking(ex.id, list(ex.candidate_ids), steps=steps), 0.5)])
    plan = [(t, ["bm25", "iterative"]) for t in tasks]
    doc = compute_metrics(plan, store, settings={"seed": 0, "limit": None})
    assert doc["results"]["rec-music"]["bm25"]["MRR"] == 1.0
    assert doc["results"]["rec-music"]["iterative"]["valid_rate"] == 0.0
    assert doc["results"]["trec-dl19"]["bm25"][ALL_QRELS] == pytest.approx(1 / math.log2(3))
    write_metrics(tmp_path, doc)
    json.loads((tmp_path / "metrics.json").read_text())  # valid JSON (no NaN)
    report = write_report(tmp_path, doc).read_text()
    assert "| method | rec-music | trec-dl19 (nDCG@10) |" in report
    assert "| bm25 | 100.0 | 63.1 |" in report
    assert "| n (test examples) | 4 | 3 |" in report
    for name in PAPER_REFERENCE["rows"]:
        assert f"| {name} | n/a | n/a |" in report
    assert "Stand-in: R3 CSVs stand in for the full file" in report
    assert "Note: histories are <= 10" in report
    assert "Valid-answer rate" in report and "| iterative | 0.0 | 0.0 |" in report
    png = write_report_png(tmp_path, doc)
    assert png is not None and png.stat().st_size > 1000


def test_missing_prediction_leaves_the_pair_out_of_metrics(tmp_path):
    rec = [RankingExample(f"e{i}", "passage", "q", [Candidate("x", "X"), Candidate("y", "Y")], {"y": 1.0})
           for i in range(2)]
    task = _task("t", rec)
    store = PredictionStore(tmp_path / "p.jsonl")
    store.append([prediction_record("t", "bm25", Ranking("e0", ["y", "x"]), 0.0)])
    doc = compute_metrics([(task, ["bm25"])], store)
    assert doc["results"]["t"] == {}
    assert prediction_key("t", "bm25", "e0") in store
