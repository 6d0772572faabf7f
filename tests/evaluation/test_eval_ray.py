"""`iranker eval --ray`: the LLM methods sharded over Ray workers give the one-process predictions.

All tests share one local 2-CPU Ray cluster (the ``ray_cluster`` session fixture). Records
are compared whole, except ``seconds`` (a timing, different between any two runs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iranker.cli import main as cli
from iranker.evaluation import command as eval_command
from iranker.evaluation.runner import RankerFactory

from .conftest import passage_rows, routing_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("ray_cluster")

ROOT = Path(__file__).resolve().parents[2]


def eval_main(*args: str) -> int:
    return cli.main(["eval", *args, "-q"])


def predictions(out: Path) -> list[dict]:
    """The records of ``predictions.jsonl`` in file order, without their timings."""
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def results(out: Path) -> dict:
    res = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["results"]
    return {
        t: {m: {k: v for k, v in x.items() if not k.startswith("seconds")} for m, x in per.items()}
        for t, per in res.items()
    }


ARGS = ["--methods", "random,iterative,iterative-choice,direct", "--backend", "scripted", "--chunk-size", "3"]


def test_sharded_eval_gives_the_one_process_predictions_and_metrics(tmp_path, examples_file, capsys):
    assert eval_main("--input", str(examples_file), *ARGS, "--out", str(tmp_path / "one")) == 0
    assert eval_main("--input", str(examples_file), *ARGS, "--ray", "--out", str(tmp_path / "ray")) == 0
    assert "ray: 2 worker(s) x 1 thread(s)" in capsys.readouterr().err
    one, ray = predictions(tmp_path / "one"), predictions(tmp_path / "ray")
    assert len(one) == 10 * 4 + 8 * 5
    assert ray == one  # same records, same order
    assert results(tmp_path / "ray") == results(tmp_path / "one")
    rows = [json.loads(line) for line in (tmp_path / "ray" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["seconds"] > 0 for r in rows if r["method"] != "random")  # worker-measured compute time


class _CutAfter:
    """Wraps a sharded ranker: raises KeyboardInterrupt when asked for chunk ``cut`` (counted
    over the whole run), while the workers still hold the chunks after it."""

    def __init__(self, inner, seen: list, cut: int):
        self.inner, self.seen, self.cut, self.name = inner, seen, cut, inner.name

    def rank_chunks(self, chunks):
        for ranked in self.inner.rank_chunks(chunks):
            if len(self.seen) + 1 >= self.cut:
                raise KeyboardInterrupt
            self.seen.append([ex.id for ex in ranked.examples])
            yield ranked


def test_a_cut_sharded_eval_resumes_without_duplicates(tmp_path, examples_file, monkeypatch, capsys):
    args = ["--input", str(examples_file), *ARGS]
    assert eval_main(*args, "--out", str(tmp_path / "one")) == 0

    seen: list = []

    class Factory(RankerFactory):
        def __call__(self, method, task):
            ranker = super().__call__(method, task)
            return _CutAfter(ranker, seen, 6) if hasattr(ranker, "rank_chunks") else ranker

    out = tmp_path / "ray"
    monkeypatch.setattr(eval_command, "RankerFactory", Factory)
    assert eval_main(*args, "--ray", "--out", str(out)) == 130
    cut = predictions(out)
    assert len(seen) == 5 and len(cut) < 10 * 4 + 8 * 5
    assert not (out / "metrics.json").exists()

    monkeypatch.setattr(eval_command, "RankerFactory", RankerFactory)
    capsys.readouterr()
    assert eval_main(*args, "--ray", "--out", str(out)) == 0
    assert f"resuming: {len(cut)} of {10 * 4 + 8 * 5}" in capsys.readouterr().err
    done = predictions(out)
    assert done[: len(cut)] == cut  # kept as written
    assert len({r["key"] for r in done}) == len(done)  # no duplicates
    assert sorted(done, key=lambda r: r["key"]) == sorted(
        predictions(tmp_path / "one"), key=lambda r: r["key"]
    )
    assert results(out) == results(tmp_path / "one")


def test_eval_ray_errors_are_one_line(tmp_path, examples_file, capsys):
    base = ["--input", str(examples_file), "--backend", "scripted"]
    for flags, needle in (
        (["--methods", "iterative", "--ray", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
        (["--methods", "bm25", "--ray"], "--ray shards the LLM methods"),
        (["--methods", "iterative", "--ray-workers", "2"], "--ray-workers only applies with --ray"),
    ):
        out = tmp_path / "out"
        assert eval_main(*base, *flags, "--out", str(out)) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()  # refused before the folder is touched


@pytest.mark.model
def test_sharded_eval_with_the_untrained_base_in_choice_mode_matches_one_process(tmp_path):
    """smollm2-135m scoring the labels (iterative-choice), 4 examples, one per chunk."""
    path = write_jsonl(tmp_path / "few.jsonl", passage_rows(2) + routing_rows(2))
    args = [
        "--input",
        str(path),
        "--methods",
        "iterative-choice",
        "--no-routing-baselines",
        "--model",
        "smollm2-135m",
        "--chunk-size",
        "1",
        "--batch-size",
        "1",
        "--threads",
        "1",
    ]
    rc = eval_main(*args, "--out", str(tmp_path / "one"))
    if rc != 0:
        pytest.skip("the embedded model is unavailable")
    assert eval_main(*args, "--ray", "--out", str(tmp_path / "ray")) == 0
    one = predictions(tmp_path / "one")
    assert len(one) == 4 and all(s["how_matched"] == "choice" for r in one for s in r["steps"])
    assert predictions(tmp_path / "ray") == one
