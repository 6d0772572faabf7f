"""`iranker ood`: lm-evaluation-harness on a model and its base, on small local tasks (offline).

The harness cannot download data sets here, so the tasks are lm-eval task YAMLs written by the
test (``dataset_path: json`` + ``dataset_kwargs: {data_files: ...}``) and passed with
``--include-path``, exactly as a user adds a local task.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from iranker.cli import main as cli
from iranker.evaluation.ood import ood_table

pytest.importorskip("lm_eval")

DOCS = [
    {
        "question": "What color is the sky on a clear day?",
        "choices": ["blue", "green", "red"],
        "answer": 0,
        "text": "The sky on a clear day is blue because air scatters blue light more than red light.",
    },
    {
        "question": "How many legs does a dog have?",
        "choices": ["two", "four", "eight"],
        "answer": 1,
        "text": "A dog has four legs, a bird has two legs and a spider has eight legs.",
    },
    {
        "question": "What is two plus two?",
        "choices": ["three", "five", "four"],
        "answer": 2,
        "text": "Two plus two is four, and four plus four is eight.",
    },
]


def write_tasks(folder: Path, docs: list[dict] = DOCS, data_name: str = "docs.jsonl") -> Path:
    """Two tasks on the same local docs: multiple choice (acc) and rolling log-likelihood (bits/byte)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / data_name
    if docs:
        data.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    common = (
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
        "test_split: test\nmetadata:\n  version: 1.0\n"
    )
    (folder / "tiny_mc.yaml").write_text(
        "task: iranker_tiny_mc\n" + common + "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: choices\ndoc_to_target: answer\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n",
        encoding="utf-8",
    )
    (folder / "tiny_ppl.yaml").write_text(
        "task: iranker_tiny_ppl\n" + common + "output_type: loglikelihood_rolling\n"
        'doc_to_text: ""\ndoc_to_target: "{{text}}"\n'
        "metric_list:\n  - metric: bits_per_byte\n",
        encoding="utf-8",
    )
    return folder


def ood_main(*args: str) -> int:
    return cli.main(["ood", *args])


# -- bad input: one line, non-zero exit, before any model is loaded ---------------------------
def test_missing_model_is_one_error_line(tmp_path, capsys):
    rc = ood_main(
        "--model",
        str(tmp_path / "no-such-model"),
        "--tasks",
        "iranker_tiny_mc",
        "--include-path",
        str(write_tasks(tmp_path / "tasks")),
        "--out",
        str(tmp_path / "out"),
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("iranker: error: ") and "does not exist" in err[0]
    assert not (tmp_path / "out").exists()


def test_unknown_task_is_one_error_line_with_a_suggestion(tmp_path, capsys):
    rc = ood_main(
        "--model",
        "smollm2-135m",
        "--tasks",
        "iranker_tiny_mc,iranker_tiny_mcq",
        "--include-path",
        str(write_tasks(tmp_path / "tasks")),
        "--out",
        str(tmp_path / "out"),
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "unknown lm-eval task 'iranker_tiny_mcq'" in err[0] and "did you mean iranker_tiny_mc" in err[0]
    assert not (tmp_path / "out").exists()


def test_task_whose_data_cannot_be_loaded_is_one_error_line(tmp_path, capsys):
    tasks = write_tasks(tmp_path / "tasks", docs=[], data_name="missing.jsonl")
    rc = ood_main("--tasks", "iranker_tiny_mc", "--include-path", str(tasks), "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "task 'iranker_tiny_mc': could not load its data" in err[0]


def test_include_path_must_be_a_folder(tmp_path, capsys):
    rc = ood_main("--tasks", "x", "--include-path", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "is not a folder" in err[0]


@pytest.mark.parametrize("limit", ["0", "-1", "2.5"])
def test_bad_limit(tmp_path, capsys, limit):
    rc = ood_main("--tasks", "x", "--limit", limit, "--out", str(tmp_path / "out"))
    assert rc == 2 and "--limit" in capsys.readouterr().err


# -- the table ---------------------------------------------------------------------------------
def test_table_rows_pair_metrics_and_take_the_difference():
    def run(acc, bpb):
        return {
            "results": {
                "t": {
                    "alias": "t",
                    "acc,none": acc,
                    "acc_stderr,none": 0.1,
                    "bits_per_byte,none": bpb,
                    "bits_per_byte_stderr,none": "N/A",
                }
            },
            "n-samples": {"t": {"original": 10, "effective": 4}},
            "higher_is_better": {"t": {"acc": True, "bits_per_byte": False}},
        }

    rows = ood_table([("base", run(0.25, 1.5)), ("trained", run(0.75, 1.0))], ["t"])
    assert [(r["metric"], r["filter"]) for r in rows] == [("acc", "none"), ("bits_per_byte", "none")]
    acc, bpb = rows
    assert acc["values"] == {"base": 0.25, "trained": 0.75} and acc["delta"] == pytest.approx(0.5)
    assert (
        acc["stderr"] == {"base": 0.1, "trained": 0.1} and acc["n"] == 4 and acc["higher_is_better"] is True
    )
    assert bpb["delta"] == pytest.approx(-0.5) and bpb["higher_is_better"] is False


# -- end to end with the real embedded model ---------------------------------------------------
@pytest.mark.model
def test_ood_runs_the_harness_on_the_trained_adapter_and_its_base(tmp_path, capsys):
    """iranker-135m (a LoRA adapter) vs its base smollm2-135m through lm-eval's HFLM (peft=)."""
    out = tmp_path / "out"
    rc = ood_main(
        "--model",
        "iranker-135m",
        "--tasks",
        "iranker_tiny_mc,iranker_tiny_ppl",
        "--include-path",
        str(write_tasks(tmp_path / "tasks")),
        "--limit",
        "3",
        "--threads",
        "1",
        "--batch-size",
        "4",
        "--dtype",
        "float32",
        "--out",
        str(out),
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    doc = json.loads((out / "ood.json").read_text(encoding="utf-8"))
    assert doc["columns"] == ["smollm2-135m (base)", "iranker-135m"]
    base, trained = doc["models"]["smollm2-135m (base)"], doc["models"]["iranker-135m"]
    assert base["peft"] is None and trained["peft"].endswith("iranker-135m")
    assert trained["pretrained"] == base["pretrained"]  # the adapter runs on the base's dense folder
    rows = {(r["task"], r["metric"]): r for r in doc["rows"]}
    assert set(rows) == {("iranker_tiny_mc", "acc"), ("iranker_tiny_ppl", "bits_per_byte")}
    for r in rows.values():
        assert r["n"] == 3
        for v in r["values"].values():
            assert isinstance(v, float) and math.isfinite(v)
    acc = rows[("iranker_tiny_mc", "acc")]
    assert all(v in (0.0, 1 / 3, 2 / 3, 1.0) for v in acc["values"].values())
    bpb = rows[("iranker_tiny_ppl", "bits_per_byte")]
    assert bpb["higher_is_better"] is False
    assert all(0.1 < v < 10 for v in bpb["values"].values())
    # the adapter is really applied: the trained model scores the same text differently
    assert bpb["values"]["iranker-135m"] != bpb["values"]["smollm2-135m (base)"]
    assert bpb["delta"] == pytest.approx(bpb["values"]["iranker-135m"] - bpb["values"]["smollm2-135m (base)"])
    md = (out / "ood.md").read_text(encoding="utf-8")
    assert (
        "| task | metric | n | smollm2-135m (base) | iranker-135m | iranker-135m − smollm2-135m (base) |"
        in md
    )
    assert "| iranker_tiny_ppl | bits_per_byte ↓ | 3 |" in md


def test_a_plain_model_without_base_is_one_column(tmp_path):
    from iranker.evaluation.ood import write_ood

    summary = {
        "results": {"t": {"acc,none": 0.5, "acc_stderr,none": 0.25}},
        "n-samples": {"t": {"effective": 4}},
        "higher_is_better": {"t": {"acc": True}},
    }
    doc = {
        "tasks": ["t"],
        "columns": ["m"],
        "rows": ood_table([("m", summary)], ["t"]),
        "models": {"m": {"pretrained": "/x", "peft": None, "seconds": 1.0}},
        "settings": {"limit": 4, "lm_eval_version": "0.4.13", "dtype": "float32", "device": "cpu", "seed": 0},
    }
    md = write_ood(tmp_path, doc)[1].read_text(encoding="utf-8")
    assert "| task | metric | n | m |" in md and "| t | acc | 4 | 0.5000 ± 0.2500 |" in md
    assert json.loads((tmp_path / "ood.json").read_text())["rows"][0]["delta"] is None


def test_without_lm_eval_the_error_names_the_extra(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # makes `import lm_eval` raise ImportError
    rc = ood_main("--tasks", "gsm8k", "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "pip install 'iranker[ood]'" in err[0]
