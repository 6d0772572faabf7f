"""Metrics rules and the report built from them (no models, no data files)."""

from __future__ import annotations

import json
import math

import pytest

from iranker.cli import main as cli
from iranker.evaluation.paper import paper_reference
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
from iranker.metrics import expected_random_rr, reciprocal_rank
from iranker.types import Candidate, Ranking, RankingExample, Step


def _dl19(qid: str, cands: list[str], rel: dict[str, float], qrels: dict[str, int]) -> RankingExample:
    """A trec-dl19 example as its task builder makes it (TREC DL: grade >= 2 is relevant)."""
    return RankingExample(
        f"trec-dl19:{qid}",
        "passage",
        "q",
        [Candidate(c, f"text {c}") for c in cands],
        rel,
        {"qrels": qrels, "relevant_grade": 2},
    )


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
    rec = [
        RankingExample(
            f"rec-music:{i}", "recommendation", "h", [Candidate("x", "X"), Candidate("y", "Y")], {"y": 1.0}
        )
        for i in range(4)
    ]
    tasks = [
        _task("rec-music", rec, stand_in="R3 CSVs stand in for the full file", notes=["histories are <= 10"]),
        _task("trec-dl19", dl),
    ]
    store = PredictionStore(tmp_path / "predictions.jsonl")
    for t in tasks:
        for ex in t.examples:
            store.append(
                [prediction_record(t.name, "bm25", Ranking(ex.id, list(reversed(ex.candidate_ids))), 0.01)]
            )
            steps = [
                Step(
                    pool=list(ex.candidate_ids),
                    removed=ex.candidate_ids[1],
                    valid=False,
                    how_matched="fallback:closest",
                )
            ]
            store.append(
                [
                    prediction_record(
                        t.name, "iterative", Ranking(ex.id, list(ex.candidate_ids), steps=steps), 0.5
                    )
                ]
            )
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
    # the paper's rows are not rows of this run's table (they have their own section)
    results_table = report.split("## The IRanker paper's numbers")[0]
    assert not any(name in results_table for name in PAPER_REFERENCE["rows"])
    # chance of this run's pools: rec-music has 2 candidates, 1 relevant -> (1 + 1/2) / 2
    assert doc["tasks"]["rec-music"]["chance"]["MRR"] == pytest.approx(0.75)
    assert "| chance (this run's pools) | — | 75.0 | — |" in report
    assert "Stand-in: R3 CSVs stand in for the full file" in report
    assert "Note: histories are <= 10" in report
    assert "Valid-answer rate" in report and "| iterative | 0.0 | 0.0 |" in report
    png = write_report_png(tmp_path, doc)
    assert png is not None and png.stat().st_size > 1000


def test_missing_prediction_leaves_the_pair_out_of_metrics(tmp_path):
    rec = [
        RankingExample(f"e{i}", "passage", "q", [Candidate("x", "X"), Candidate("y", "Y")], {"y": 1.0})
        for i in range(2)
    ]
    task = _task("t", rec)
    store = PredictionStore(tmp_path / "p.jsonl")
    store.append([prediction_record("t", "bm25", Ranking("e0", ["y", "x"]), 0.0)])
    doc = compute_metrics([(task, ["bm25"])], store)
    assert doc["results"]["t"] == {}
    assert prediction_key("t", "bm25", "e0") in store


# -- the paper's rows and the chance row --------------------------------------------------------
#: the paper's main table as issue 13 gives it, in the paper's column order
#: (Rec-Movie, Rec-Music, Rec-Game, Router-Performance, Router-Cost, Router-Balance, Passage-5/7/9)
PAPER_ORDER = (
    "rec-movie",
    "rec-music",
    "rec-game",
    "router-performance",
    "router-cost",
    "router-balance",
    "passage-5",
    "passage-7",
    "passage-9",
)
PAPER_TABLE = {
    "IRanker-3B": (34.69, 29.18, 42.49, 23.62, 30.39, 24.44, 60.98, 53.22, 49.96),
    "Qwen2.5-3B-Instruct iterative": (22.01, 21.97, 29.49, 20.87, 20.22, 12.42, 57.74, 43.47, 39.40),
    "DRanker-3B": (18.71, 15.70, 15.77, 20.63, 9.06, 13.38, 43.85, 22.86, 16.11),
}
#: the report's column order (router-balance before router-cost)
REPORT_ORDER = (
    "rec-movie",
    "rec-music",
    "rec-game",
    "router-performance",
    "router-balance",
    "router-cost",
    "passage-5",
    "passage-7",
    "passage-9",
)


def test_paper_reference_file_holds_the_papers_table_by_task_id():
    ref = paper_reference()
    assert set(ref["paper_columns"].values()) == set(PAPER_ORDER)
    assert ref["url"].endswith("2506.21638")
    for name, values in PAPER_TABLE.items():
        assert ref["rows"][name]["mrr_x100"] == dict(zip(PAPER_ORDER, values)), name


@pytest.mark.parametrize("n, expected", [(20, 18.0), (10, 29.3), (9, 31.4), (7, 37.0), (5, 45.7), (1, 100.0)])
def test_expected_random_rr_one_relevant_is_the_mean_harmonic_number(n, expected):
    assert round(100 * expected_random_rr(n), 1) == expected


@pytest.mark.parametrize("n, m", [(1, 1), (4, 1), (5, 2), (6, 3), (6, 6), (5, 0)])
def test_expected_random_rr_equals_reciprocal_rank_over_all_placements(n, m):
    """Exhaustive check against the metric itself: every set of relevant positions is equally likely."""
    from itertools import combinations

    ids = [str(i) for i in range(n)]
    rrs = [reciprocal_rank(ids, {ids[i]: 1.0 for i in pos}) for pos in combinations(range(n), m)]
    assert expected_random_rr(n, m) == pytest.approx(sum(rrs) / len(rrs))


def test_expected_random_rr_rejects_bad_sizes():
    for n, m in [(0, 0), (3, 4), (3, -1), (2.0, 1)]:
        with pytest.raises(ValueError):
            expected_random_rr(n, m)


def test_eval_report_shows_the_paper_rows_and_the_chance_of_this_runs_pools(tmp_path):
    """A tiny `iranker eval` (scripted backend) on the three routing tasks of a 3-LLM dcrouter folder."""
    from .conftest import write_dcrouter

    data = tmp_path / "data"
    write_dcrouter(data / "router" / "llmrouter_dcrouter", n_test=6, n_train=4)
    out = tmp_path / "out"
    rc = cli.main(
        [
            "eval",
            "--tasks",
            "router-performance,router-cost,router-balance",
            "--data-dir",
            str(data),
            "--methods",
            "random,iterative",
            "--backend",
            "scripted",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## The IRanker paper's numbers (the paper's own samples)" in report
    assert "not comparable one-to-one" in report
    head, paper = report.split("## The IRanker paper's numbers (the paper's own samples)")
    assert "(paper)" not in head
    assert "| MRR ×100 | " + " | ".join(REPORT_ORDER) + " |" in paper
    for name, values in PAPER_TABLE.items():
        cells = dict(zip(PAPER_ORDER, values))
        row = f"| {name} (paper) | " + " | ".join(f"{cells[t]:.2f}" for t in REPORT_ORDER) + " |"
        assert row in paper, row
    # IRanker-3B: Router-Balance 24.44 sits in the router-balance column, Router-Cost 30.39 in router-cost
    assert (
        "| IRanker-3B (paper) | 34.69 | 29.18 | 42.49 | 23.62 | 24.44 | 30.39 | 60.98 | 53.22 | 49.96 |"
        in paper
    )
    # chance of this run's pools: 3 LLMs, one best -> (1 + 1/2 + 1/3) / 3 = 61.1; tasks not run: —
    assert "| chance (this run's pools) | — | — | — | 61.1 | 61.1 | 61.1 | — | — | — |" in paper
    assert "| pool size N (this run) | — | — | — | 3 | 3 | 3 | — | — | — |" in paper
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["tasks"]["router-cost"]["chance"]["MRR"] == pytest.approx(expected_random_rr(3))
    assert metrics["paper_reference"]["rows"]["DRanker-3B"]["mrr_x100"]["router-cost"] == 9.06
    png = (out / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
