"""`iranker demo` and `iranker rank` end to end, with the scripted double and the real model."""

import json
from pathlib import Path

import pytest

from iranker.cli import main as cli
from iranker.demo import demo_examples

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "rank_input.jsonl"


def test_demo_examples_cover_three_scenarios_from_shipped_data():
    exs = demo_examples(per_scenario=5, candidates=10)
    by = {}
    for e in exs:
        by.setdefault(e.scenario, []).append(e)
    assert {k: len(v) for k, v in by.items()} == {"recommendation": 5, "routing": 5, "passage": 5}
    for e in by["recommendation"]:
        assert len(e.candidates) == 10 and len(e.meta["history"]) == 10
        target = e.best_id()
        assert e.candidate(target).text not in e.meta["history"]


def test_demo_with_scripted_backend(tmp_path, capsys):
    rc = cli.main(["demo", "--backend", "scripted", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "MRR per scenario" in out and "recommendation" in out and "routing" in out and "passage" in out
    rows = [json.loads(line) for line in (tmp_path / "rankings.jsonl").read_text().splitlines()]
    assert len(rows) == 45 and {r["key"].split(":")[0] for r in rows} == {"iterative", "random", "bm25"}
    assert {r["method"] for r in rows} == {"iterative", "random", "bm25"}


@pytest.mark.model
def test_demo_runs_the_real_embedded_model(tmp_path, capsys):
    """The default demo: the packaged trained model in the mode it records, beside the baselines."""
    rc = cli.main(
        ["demo", "--out", str(tmp_path), "--per-scenario", "1", "--candidates", "3", "--threads", "1"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "model: iranker-135m" in out and "decode=choice, reuse=kv" in out
    rows = [json.loads(line) for line in (tmp_path / "rankings.jsonl").read_text().splitlines()]
    assert len(rows) == 9
    llm = [r for r in rows if r["key"].startswith("iterative:")]
    assert len(llm) == 3 and {r["method"] for r in llm} == {"iterative-choice-kv"}
    assert all(s["how_matched"] == "choice" and s["valid"] for r in llm for s in r["steps"])


@pytest.mark.model
def test_demo_with_the_untrained_base_generates(tmp_path, capsys):
    rc = cli.main(
        [
            "demo",
            "--out",
            str(tmp_path),
            "--per-scenario",
            "1",
            "--candidates",
            "3",
            "--model",
            "smollm2-135m",
            "--methods",
            "iterative",
            "--max-new-tokens",
            "8",
            "--reask",
            "0",
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "model: smollm2-135m" in out
    rows = [json.loads(line) for line in (tmp_path / "rankings.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["usage"]["completion_tokens"] > 0 for r in rows)


@pytest.mark.model
@pytest.mark.parametrize("method", ["iterative", "direct"])
def test_rank_readme_example_with_the_embedded_model(tmp_path, method):
    out = tmp_path / "out.jsonl"
    rc = cli.main(
        [
            "rank",
            "-i",
            str(EXAMPLE),
            "-o",
            str(out),
            "--method",
            method,
            "--max-new-tokens",
            "8",
            "--reask",
            "0",
            "--threads",
            "1",
            "-q",
        ]
    )
    assert rc == 0
    inputs = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    outputs = [json.loads(line) for line in out.read_text().splitlines()]
    for i, o in zip(inputs, outputs, strict=True):
        assert o["id"] == i["id"]
        assert sorted(o["ranking"]) == sorted(c["id"] for c in i["candidates"])
        assert o["usage"]["prompt_tokens"] > 0
