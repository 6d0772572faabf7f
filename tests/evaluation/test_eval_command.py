"""`iranker eval`: outputs, resume after a kill, refusal of conflicting settings, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iranker.cli import main as cli
from iranker.evaluation import command as eval_command
from iranker.evaluation.runner import RankerFactory

from .conftest import cluster_rec_data, write_dcrouter, write_jsonl

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def eval_main(*args: str) -> int:
    return cli.main(["eval", *args, "-q"])


# -- the four outputs ---------------------------------------------------------------------------
def test_input_run_writes_all_four_files(tmp_path, examples_file):
    out = tmp_path / "out"
    rc = eval_main(
        "--input",
        str(examples_file),
        "--methods",
        "random,bm25,iterative,direct",
        "--backend",
        "scripted",
        "--out",
        str(out),
    )
    assert rc == 0
    for name in ("predictions.jsonl", "metrics.json", "report.md", "report.png", "run.json"):
        assert (out / name).is_file(), name
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    preds = read_jsonl(out / "predictions.jsonl")
    # 10 passage x 4 methods + 8 routing x (4 + cheapest-first); no most-frequent-best without --train
    assert len(preds) == 10 * 4 + 8 * 5
    assert len({p["key"] for p in preds}) == len(preds)
    p = preds[0]
    assert set(p) >= {"key", "task", "method", "example_id", "ranking", "steps", "usage"}
    assert p["key"] == f"{p['task']}|{p['method']}|{p['example_id']}"
    it = next(p for p in preds if p["method"] == "iterative")
    assert it["steps"] and it["usage"]["calls"] > 0 and it["valid"] == 1.0

    metrics = json.loads((out / "metrics.json").read_text())
    res = metrics["results"]
    assert set(res) == {"mine:passage", "mine:routing"}
    assert set(res["mine:routing"]) == {"random", "bm25", "iterative", "direct", "cheapest-first"}
    for m in ("MRR", "NDCG@5", "NDCG@10", "Hit@1", "Hit@5"):
        assert 0.0 <= res["mine:passage"]["bm25"][m] <= 1.0
    assert res["mine:passage"]["bm25"]["n"] == 10
    assert res["mine:passage"]["iterative"]["valid_rate"] == 1.0
    assert "valid_rate" not in res["mine:passage"]["random"]
    assert metrics["tasks"]["mine:passage"]["seed"] == 0
    assert metrics["tasks"]["mine:passage"]["split_rule"]

    report = (out / "report.md").read_text()
    assert "| method | mine:passage | mine:routing |" in report
    assert "IRanker-3B (paper)" in report and "DRanker-3B (paper)" in report
    assert "n (test examples) | 10 | 8 |" in report


def test_routing_mrr_counts_only_the_best_llm(tmp_path, examples_file):
    """Routing grades are positive for every LLM; MRR must still look only at the best one."""
    out = tmp_path / "out"
    assert eval_main("--input", str(examples_file), "--methods", "random", "--out", str(out)) == 0
    res = json.loads((out / "metrics.json").read_text())["results"]["mine:routing"]
    # cheapest-first: odd examples have cheap-7b best (RR 1), even ones mid-70b (2nd cheapest, RR 1/2)
    assert res["cheapest-first"]["MRR"] == pytest.approx((4 * 1.0 + 4 * 0.5) / 8)
    assert res["cheapest-first"]["Hit@1"] == pytest.approx(0.5)
    # query dependence: cheapest-first ranks the same LLM first for every query
    assert res["cheapest-first"]["top1"] == {"distinct": 1, "most_common": ["cheap-7b", 8]}
    assert res["random"]["top1"]["distinct"] > 1
    report = (out / "report.md").read_text()
    assert "## Query dependence (routing)" in report and "| cheapest-first | 1 (cheap-7b 8) |" in report


# -- resume after a kill ------------------------------------------------------------------------
class _Counting:
    """Wraps a ranker: counts examples ranked; raises KeyboardInterrupt on call ``fail_at``."""

    def __init__(self, inner, log: list, fail_at: int | None):
        self.inner, self.log, self.fail_at = inner, log, fail_at
        self.name = inner.name

    def rank(self, examples):
        if self.fail_at is not None and len(self.log) + 1 >= self.fail_at:
            raise KeyboardInterrupt
        self.log.append([ex.id for ex in examples])
        return self.inner.rank(examples)


def _patch_factory(monkeypatch, log: list, fail_at: int | None):
    class Factory(RankerFactory):
        def __call__(self, method, task):
            return _Counting(super().__call__(method, task), log, fail_at)

    monkeypatch.setattr(eval_command, "RankerFactory", Factory)


def test_kill_and_rerun_recomputes_nothing_and_gives_the_same_metrics(tmp_path, examples_file, monkeypatch):
    args = [
        "--input",
        str(examples_file),
        "--methods",
        "random,bm25,iterative,direct",
        "--backend",
        "scripted",
        "--chunk-size",
        "3",
    ]
    # reference: one uninterrupted run
    ref_log: list = []
    _patch_factory(monkeypatch, ref_log, None)
    assert eval_main(*args, "--out", str(tmp_path / "ref")) == 0
    total = sum(len(c) for c in ref_log)
    assert total == 10 * 4 + 8 * 5

    # run 1 is killed during its 7th chunk
    out = tmp_path / "out"
    log1: list = []
    _patch_factory(monkeypatch, log1, 7)
    assert eval_main(*args, "--out", str(out)) == 130
    done1 = [ex for chunk in log1 for ex in chunk]
    assert len(log1) == 6 and 6 < len(done1) < total
    assert len(read_jsonl(out / "predictions.jsonl")) == len(done1)  # every finished chunk is on disk
    assert not (out / "metrics.json").exists()

    # run 2 with the same arguments finishes the rest and recomputes nothing
    log2: list = []
    _patch_factory(monkeypatch, log2, None)
    assert eval_main(*args, "--out", str(out)) == 0
    assert len(done1) + sum(len(c) for c in log2) == total
    preds = read_jsonl(out / "predictions.jsonl")
    assert len(preds) == total and len({p["key"] for p in preds}) == total

    ref = json.loads((tmp_path / "ref" / "metrics.json").read_text())["results"]
    got = json.loads((out / "metrics.json").read_text())["results"]

    def strip(r):
        return {
            t: {m: {k: v for k, v in x.items() if not k.startswith("seconds")} for m, x in per.items()}
            for t, per in r.items()
        }

    assert strip(got) == strip(ref)

    # a third run has nothing left to do
    log3: list = []
    _patch_factory(monkeypatch, log3, None)
    assert eval_main(*args, "--out", str(out)) == 0
    assert log3 == []


def test_truncated_last_line_is_dropped_and_only_that_prediction_recomputed(
    tmp_path, examples_file, monkeypatch
):
    out = tmp_path / "out"
    args = ["--input", str(examples_file), "--methods", "bm25", "--no-routing-baselines", "--out", str(out)]
    assert eval_main(*args) == 0
    path = out / "predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a write cut by a kill
    log: list = []
    _patch_factory(monkeypatch, log, None)
    assert eval_main(*args) == 0
    assert sum(len(c) for c in log) == 1
    preds = read_jsonl(path)  # parses: the broken line is gone
    assert len(preds) == len(lines)


# -- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("change", [("--seed", "1"), ("--limit", "3"), ("--model", "first")])
def test_conflicting_settings_in_the_same_folder_are_refused(tmp_path, examples_file, capsys, change):
    out = tmp_path / "out"
    base = [
        "--input",
        str(examples_file),
        "--methods",
        "random,iterative",
        "--backend",
        "scripted",
        "--out",
        str(out),
    ]
    first = [] if change[0] == "--limit" else ["--limit", "5"]
    assert eval_main(*base, *first) == 0
    before = (out / "predictions.jsonl").read_bytes()
    capsys.readouterr()
    assert eval_main(*base, *first, *change) == 2
    err = capsys.readouterr().err
    assert "iranker: error:" in err and "other settings" in err and change[0].lstrip("-") in err
    assert "new --out" in err
    assert (out / "predictions.jsonl").read_bytes() == before


def test_same_folder_accepts_new_methods_and_llm_settings_after_baselines(tmp_path, examples_file):
    out = tmp_path / "out"
    base = ["--input", str(examples_file), "--out", str(out)]
    assert eval_main(*base, "--methods", "random") == 0
    assert eval_main(*base, "--methods", "iterative", "--backend", "scripted") == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["llm"]["backend"] == "scripted"
    assert len(run["history"]) == 2
    res = json.loads((out / "metrics.json").read_text())["results"]["mine:passage"]
    assert {"random", "iterative"} <= set(res)  # metrics merge across runs


def test_a_second_run_into_a_busy_folder_is_refused(tmp_path, examples_file, capsys):
    from iranker.evaluation.runner import FolderLock

    out = tmp_path / "out"
    with FolderLock(out):
        assert eval_main("--input", str(examples_file), "--methods", "random", "--out", str(out)) == 2
    assert "another iranker eval" in capsys.readouterr().err
    assert eval_main("--input", str(examples_file), "--methods", "random", "--out", str(out)) == 0


# -- errors -------------------------------------------------------------------------------------
def test_missing_data_dir_explains_how_to_get_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IRANKER_DATA_DIR", raising=False)
    assert eval_main("--tasks", "all", "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and "IRANKER_DATA_DIR" in err and "--input" in err


def test_unknown_method_and_task_are_user_errors(tmp_path, examples_file, capsys):
    assert eval_main("--input", str(examples_file), "--methods", "magic", "--out", str(tmp_path / "o")) == 2
    assert "unknown method" in capsys.readouterr().err
    assert eval_main("--tasks", "rec-tv", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")) == 2
    assert "unknown task" in capsys.readouterr().err


def test_knn_on_input_without_train_is_a_user_error(tmp_path, capsys):
    train, test = cluster_rec_data()
    f = write_jsonl(tmp_path / "rec.jsonl", test)
    assert eval_main("--input", str(f), "--methods", "knn", "--out", str(tmp_path / "o")) == 2
    assert "--train" in capsys.readouterr().err


# -- trained baselines win where they must ------------------------------------------------------
def test_item_knn_beats_random_and_bm25_on_a_co_occurrence_task(tmp_path):
    train, test = cluster_rec_data()
    f_test = write_jsonl(tmp_path / "rec.jsonl", test)
    f_train = write_jsonl(tmp_path / "rec_train.jsonl", train)
    out = tmp_path / "out"
    assert (
        eval_main(
            "--input", str(f_test), "--train", str(f_train), "--methods", "random,bm25,knn", "--out", str(out)
        )
        == 0
    )
    res = json.loads((out / "metrics.json").read_text())["results"]["rec"]
    assert res["knn"]["MRR"] == pytest.approx(1.0)
    assert res["knn"]["MRR"] > res["random"]["MRR"] + 0.3
    assert res["knn"]["MRR"] > res["bm25"]["MRR"] + 0.3


def test_benchmark_routing_task_from_tiny_source_files(tmp_path):
    """--tasks with a self-written dcrouter folder: routing baselines, informative column,
    stand-in note; the router kNN (real MiniLM) learns which queries need the big model."""
    data = tmp_path / "data"
    write_dcrouter(data / "router" / "llmrouter_dcrouter")
    out = tmp_path / "out"
    assert (
        eval_main(
            "--tasks",
            "router-performance",
            "--data-dir",
            str(data),
            "--methods",
            "random,knn",
            "--out",
            str(out),
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    res = metrics["results"]["router-performance"]
    assert set(res) == {"random", "knn", "cheapest-first", "most-frequent-best"}
    assert res["knn"]["MRR"] == pytest.approx(1.0)
    assert res["knn"]["MRR"] > res["cheapest-first"]["MRR"] + 0.2
    assert res["knn"]["informative"]["n"] == 6
    assert metrics["tasks"]["router-performance"]["n_informative"] == 6
    report = (out / "report.md").read_text()
    assert "router-performance (informative)" in report
    assert "Stand-in: LLMRouter dcrouter" in report
    assert "n (test examples) | 12 | 6 |" in report
    assert (out / "cache").is_dir()  # training-query embeddings are cached for reruns


# -- the shared data (skipped where it is absent) -----------------------------------------------
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not available")
def test_all_tasks_on_the_shared_data(tmp_path):
    out = tmp_path / "out"
    assert (
        eval_main(
            "--tasks",
            "all",
            "--methods",
            "random,bm25",
            "--limit",
            "5",
            "--data-dir",
            str(SHARED_DATA),
            "--out",
            str(out),
        )
        == 0
    )
    report = (out / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| method |"))
    cols = [c.strip() for c in header.strip("|").split("|")][1:]
    main_cols = [c for c in cols if "(informative)" not in c]
    assert len(main_cols) == 10
    assert "trec-dl19 (nDCG@10)" in main_cols
    assert "rec-music" in main_cols and "Stand-in:" in report
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(metrics["tasks"][t]["n_examples"] <= 5 for t in metrics["tasks"])
    assert "cheapest-first" in metrics["results"]["router-cost"]


def test_resume_with_other_weights_under_the_same_model_name_is_refused(tmp_path, embedded_gguf):
    """An alias or a run folder can hold other weights tomorrow (an upgrade, a new training
    run): the settings record the trained model's digest, so resuming would not mix models."""
    import shutil

    from iranker.evaluation.runner import RunSettings, SettingsConflict, record_settings
    from iranker.llm.models import packaged_model_dir

    model = tmp_path / "my-ranker"
    shutil.copytree(packaged_model_dir(), model)
    args = cli.build_parser().parse_args(
        [
            "eval",
            "--tasks",
            "passage-5",
            "--methods",
            "iterative",
            "--model",
            str(model),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    first = eval_command._llm_settings(args)
    assert first["model_identity"]["ranking"] == {"decode": "choice", "reuse": "kv"}
    record_settings(
        tmp_path / "out",
        RunSettings(mode="tasks", seed=0, limit=3, llm=first),
        tasks=["passage-5"],
        methods=["iterative"],
    )
    weights = model / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(SettingsConflict, match="model_identity"):
        record_settings(
            tmp_path / "out",
            RunSettings(mode="tasks", seed=0, limit=3, llm=eval_command._llm_settings(args)),
            tasks=["passage-5"],
            methods=["iterative"],
        )


def test_routing_eval_without_prices_skips_cheapest_first_with_the_reason(tmp_path, capsys):
    """Issue 19 point 2: prices are optional, so the default cheapest-first row is skipped with a
    printed reason (it used to end in `internal error: ValueError` with .lock and run.json left)."""
    rows = [
        {
            "id": f"n{i}",
            "scenario": "routing",
            "query": f"question {i}",
            "candidates": [{"id": "x", "text": "model x"}, {"id": "y", "text": "model y"}],
            "relevance": {"x" if i % 2 else "y": 1},
        }
        for i in range(4)
    ]
    src = write_jsonl(tmp_path / "np.jsonl", rows)
    out = tmp_path / "ev"
    assert eval_main("--input", str(src), "--methods", "random,bm25", "--out", str(out), "-q") == 0
    err = capsys.readouterr().err
    assert (
        "skipping cheapest-first on np: cheapest-first ranks by price" in err and "internal error" not in err
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["results"]["np"]) == {"random", "bm25"}
    # asked for by name, it is refused before the folder exists, naming what avoids it
    other = tmp_path / "ev2"
    assert eval_main("--input", str(src), "--methods", "cheapest-first", "--out", str(other), "-q") == 2
    err = capsys.readouterr().err
    assert "leave it out of --methods" in err and not other.exists()
