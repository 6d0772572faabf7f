"""`iranker compare`: paired per-example comparison of eval folders made on the same examples."""

from __future__ import annotations

import json

import pytest

from iranker.cli import main as cli
from iranker.evaluation.compare import CompareError, compare, load_run, paired

from .conftest import passage_rows, write_jsonl


def run_eval(tmp_path, name, *extra):
    data = tmp_path / "mine.jsonl"
    if not data.exists():
        write_jsonl(data, passage_rows(10))
    out = tmp_path / name
    assert (
        cli.main(
            [
                "eval",
                "--input",
                str(data),
                "--methods",
                "random,iterative",
                "--backend",
                "scripted",
                "--reask",
                "0",
                "--out",
                str(out),
                "-q",
                *extra,
            ]
        )
        == 0
    )
    return out


def test_paired_difference_counts_and_interval():
    a = {"x": 0.5, "y": 0.5, "z": 1.0}
    b = {"x": 1.0, "y": 0.5, "z": 0.0, "only-b": 1.0}
    p = paired(a, b)
    assert p["n"] == 3 and (p["wins"], p["ties"], p["losses"]) == (1, 1, 1)
    assert p["mean_diff"] == pytest.approx((0.5 + 0 - 1.0) / 3)
    lo, hi = p["ci95"]
    assert -1.0 <= lo <= p["mean_diff"] <= hi <= 0.5
    assert paired(a, b) == p  # seeded
    same = paired(a, a)
    assert same["mean_diff"] == 0 and same["ci95"] == [0.0, 0.0] and same["ties"] == 3
    assert paired(a, {"other": 1.0}) is None


def test_compare_two_scripted_runs_end_to_end(tmp_path, capsys):
    """'last' keeps the shown order (relevant passage 2nd: RR 1/2); 'first' reverses it
    (relevant passage 3rd of 4: RR 1/3): every example loses 1/6 and the report says so."""
    base = run_eval(tmp_path, "base", "--model", "last")
    other = run_eval(tmp_path, "other", "--model", "first", "--response-prefix", "<think>")
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(base), str(other), "--names", "base,other", "--out", str(out)]) == 0
    doc = json.loads((out / "compare.json").read_text())
    assert doc["runs"] == ["base", "other"]
    assert doc["differs"]["model"] == ["last", "first"]
    assert doc["differs"]["response_prefix"] == [None, "<think>"]
    rows = {r["method"]: r for r in doc["rows"]}
    it = rows["iterative"]
    assert it["value"] == [pytest.approx(0.5), pytest.approx(1 / 3)]
    assert it["valid_rate"] == [1.0, 1.0]
    d = it["vs_first"][0]["MRR"]
    assert d["n"] == 10 and d["losses"] == 10 and d["mean_diff"] == pytest.approx(-1 / 6, abs=1e-5)
    assert d["ci95"] == [pytest.approx(-1 / 6, abs=1e-5)] * 2
    assert rows["random"]["vs_first"][0]["MRR"]["ties"] == 10  # same seed, same random rankings
    md = (out / "compare.md").read_text()
    assert "| mine | iterative | 10 | 50.0 | 33.3 | -16.7 [-16.7, -16.7] (0/0/10) |" in md
    assert "`response_prefix`" in md
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    # --methods narrows the rows
    assert cli.main(["compare", str(base), str(other), "--methods", "iterative", "--out", str(out)]) == 0
    assert [r["method"] for r in json.loads((out / "compare.json").read_text())["rows"]] == ["iterative"]


def test_runs_on_different_examples_are_refused(tmp_path, capsys):
    base = run_eval(tmp_path, "base")
    other = run_eval(tmp_path, "other", "--limit", "5")
    with pytest.raises(CompareError, match="limit"):
        compare([load_run(base), load_run(other)], ["a", "b"])
    assert cli.main(["compare", str(base), str(other), "--out", str(tmp_path / "c")]) == 2
    assert "different examples: limit is None vs 5" in capsys.readouterr().err


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    base = run_eval(tmp_path, "base")
    assert cli.main(["compare", str(base), str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert cli.main(["compare", str(base), "--out", str(tmp_path / "c")]) == 2
    assert "at least two runs" in capsys.readouterr().err
    assert cli.main(["compare", str(base), str(base), "--names", "a,a", "--out", str(tmp_path / "c")]) == 2
    assert "distinct names" in capsys.readouterr().err
    assert (
        cli.main(["compare", str(base), str(base), "--methods", "direct", "--out", str(tmp_path / "c")]) == 2
    )
    assert "none of the methods" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_one_method_per_folder_pairs_different_methods(tmp_path, capsys):
    """FOLDER:METHOD compares e.g. the LLM against a baseline of the same folder, per example."""
    a = run_eval(tmp_path, "a")
    out = tmp_path / "cmp"
    assert (
        cli.main(["compare", f"{a}:random", f"{a}:iterative", "--names", "random,llm", "--out", str(out)])
        == 0
    )
    doc = json.loads((out / "compare.json").read_text())
    assert {r["method"] for r in doc["rows"]} == {"selected"}
    row = doc["rows"][0]
    metrics = json.loads((a / "metrics.json").read_text())["results"]
    task = row["task"]
    assert row["value"] == [metrics[task]["random"]["MRR"], metrics[task]["iterative"]["MRR"]]
    diff = row["vs_first"][0]["MRR"]
    assert diff["mean_diff"] == pytest.approx(
        metrics[task]["iterative"]["MRR"] - metrics[task]["random"]["MRR"]
    )
    # mixing the two forms, or naming a method the folder lacks, is one clear error
    assert cli.main(["compare", f"{a}:random", str(a), "--out", str(out)]) == 2
    assert "FOLDER:METHOD" in capsys.readouterr().err
    assert cli.main(["compare", f"{a}:random", f"{a}:bm99", "--out", str(out)]) == 2
    assert "no task has the method 'bm99'" in capsys.readouterr().err


def test_routing_rows_repeat_on_the_informative_subset():
    def doc(values):
        cell = {
            "n": 3,
            "MRR": sum(values.values()) / 3,
            "per_example": values,
            "informative": {"n": 2, "MRR": (values["a"] + values["b"]) / 2, "ids": ["a", "b"]},
        }
        return {
            "settings": {"mode": "tasks", "seed": 0, "limit": 3},
            "results": {"router-balance": {"x": cell}},
        }

    out = compare([doc({"a": 0.5, "b": 0.5, "c": 1.0}), doc({"a": 1.0, "b": 1.0, "c": 0.0})], ["base", "new"])
    rows = {r["task"]: r for r in out["rows"]}
    assert set(rows) == {"router-balance", "router-balance (informative)"}
    inf = rows["router-balance (informative)"]
    assert inf["n"] == [2, 2] and inf["vs_first"][0]["MRR"]["mean_diff"] == pytest.approx(0.5)
    assert rows["router-balance"]["vs_first"][0]["MRR"]["mean_diff"] == pytest.approx(0.0)


def test_differing_settings_reads_an_unset_mode_as_the_one_the_model_records():
    """A run without --reuse ranked in the mode its trained model records: it is not listed
    as differing from a run that set that mode explicitly, only the model is."""
    from iranker.evaluation.compare import differing_settings

    explicit = {"settings": {"llm": {"model": "smollm2-135m", "reuse": "kv", "decode": "choice"}}}
    recorded = {
        "settings": {
            "llm": {
                "model": "iranker-135m",
                "model_identity": {"sha256": "ab", "ranking": {"decode": "choice", "reuse": "kv"}},
            }
        }
    }
    differs = differing_settings([explicit, recorded])
    assert "reuse" not in differs and "decode" not in differs
    assert differs["model"] == ["smollm2-135m", "iranker-135m"]
    other = {
        "settings": {
            "llm": {
                "model": "iranker-135m",
                "reuse": "none",
                "model_identity": {"sha256": "ab", "ranking": {"decode": "choice", "reuse": "kv"}},
            }
        }
    }
    assert differing_settings([recorded, other])["reuse"] == ["kv", "none"]  # a flag beats the record
