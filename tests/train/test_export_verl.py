"""`iranker export-verl` on tiny input files: verl's dataset schema, the reward module loaded
by path exactly as verl loads it, and the launch script's keys."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from iranker.cli import main as cli
from iranker.train.verl_export import VERL_KEYS

pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("datasets")


def load_like_verl(module_path: str, name: str = "compute_score"):
    """verl.utils.import_utils.load_module + load_extern_object (verl 0.9), step by step."""
    spec_name = f"custom_module_{hash(os.path.abspath(module_path))}"
    spec = importlib.util.spec_from_file_location(spec_name, module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec_name, None)
    return getattr(module, name)


@pytest.fixture
def exported(tmp_path, train_file, test_file):
    out = tmp_path / "verl"
    rc = cli.main(
        [
            "export-verl",
            "--input",
            str(train_file),
            "--test-input",
            str(test_file),
            "--out",
            str(out),
            "--seed",
            "1",
        ]
    )
    assert rc == 0
    return out


def test_files_and_schema(exported):
    assert {p.name for p in exported.iterdir()} >= {
        "train.parquet",
        "test.parquet",
        "iranker_reward.py",
        "run_verl.sh",
        "info.json",
    }
    for split, n in (("train", 8), ("test", 4)):
        table = pq.read_table(exported / f"{split}.parquet")
        assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
        schema = {f.name: str(f.type) for f in table.schema}
        assert schema["data_source"] == "string" and schema["ability"] == "string"
        assert schema["prompt"] == "list<element: struct<role: string, content: string>>"
        assert schema["reward_model"] == "struct<style: string, ground_truth: string>"
        assert schema["extra_info"].startswith(
            "struct<split: string, index: int64, task: string, example_id: string"
        )
        rows = table.to_pylist()
        assert len(rows) == n
        for i, r in enumerate(rows):
            assert r["reward_model"]["style"] == "rule"
            truth = json.loads(r["reward_model"]["ground_truth"])
            assert truth["kind"] == "step" and set(truth) >= {"pool", "best", "relevance"}
            assert set(truth["best"]) <= {c["id"] for c in truth["pool"]}
            assert set(truth["relevance"]) == {c["id"] for c in truth["pool"]}
            assert r["extra_info"]["split"] == split and r["extra_info"]["index"] == i
            assert r["data_source"] == r["extra_info"]["task"]
            assert r["ability"] == f"ranking/{r['extra_info']['scenario']}"
            assert [m["role"] for m in r["prompt"]] == ["system", "user"]
    train_ids = {r["extra_info"]["example_id"] for r in pq.read_table(exported / "train.parquet").to_pylist()}
    test_ids = {r["extra_info"]["example_id"] for r in pq.read_table(exported / "test.parquet").to_pylist()}
    assert not train_ids & test_ids
    info = json.loads((exported / "info.json").read_text())
    assert info["rows"] == {"train": 8, "test": 4} and info["leak_check"]["id_overlap"] == 0
    assert info["verl"]["reward_function"] == {"path": "iranker_reward.py", "name": "compute_score"}


def test_reward_module_loaded_by_path_scores_like_verl(exported):
    compute_score = load_like_verl(str(exported / "iranker_reward.py"))
    rows = pq.read_table(exported / "train.parquet").to_pylist()
    for r in rows:
        truth = json.loads(r["reward_model"]["ground_truth"])
        worse = next(c for c in truth["pool"] if c["id"] not in truth["best"])
        best = next(c for c in truth["pool"] if c["id"] in truth["best"])
        kwargs = dict(
            data_source=r["data_source"],
            ground_truth=r["reward_model"]["ground_truth"],
            extra_info=dict(r["extra_info"], num_turns=None, rollout_reward_scores={}),
        )
        good = f"<think>{worse['text'][:20]} does not fit.</think><answer>{worse['label']}</answer>"
        assert compute_score(solution_str=good, **kwargs) == 1.0
        assert (
            compute_score(solution_str=f"<think>x</think><answer>{best['label']}</answer>", **kwargs) == 0.0
        )
        assert compute_score(solution_str="no idea", **kwargs) == -1.5
        # verl may pass extra keyword arguments (reward_router_address, ...): ignored
        assert compute_score(solution_str=good, reward_router_address=None, **kwargs) == 1.0


def test_reward_overrides_travel_in_the_ground_truth(tmp_path, train_file, test_file):
    out = tmp_path / "v"
    assert (
        cli.main(
            [
                "export-verl",
                "--input",
                str(train_file),
                "--test-input",
                str(test_file),
                "--out",
                str(out),
                "--format-penalty",
                "-0.25",
            ]
        )
        == 0
    )
    row = pq.read_table(out / "train.parquet").to_pylist()[0]
    truth = json.loads(row["reward_model"]["ground_truth"])
    assert truth["reward"] == {"format_penalty": -0.25}
    compute_score = load_like_verl(str(out / "iranker_reward.py"))
    assert compute_score(row["data_source"], "no idea", row["reward_model"]["ground_truth"], None) == -0.75


def test_launch_script_uses_only_documented_keys(exported):
    text = (exported / "run_verl.sh").read_text()
    assert subprocess.run(["bash", "-n", str(exported / "run_verl.sh")]).returncode == 0
    assert os.access(exported / "run_verl.sh", os.X_OK)
    assert "python3 -m verl.trainer.main_ppo" in text
    keys = set(re.findall(r"^\s+([a-z_]+(?:\.[a-z_]+)+)=", text, flags=re.M))
    assert keys and keys <= set(VERL_KEYS), keys - set(VERL_KEYS)
    for needed in (
        "algorithm.adv_estimator",
        "data.train_files",
        "data.val_files",
        "actor_rollout_ref.model.path",
        "actor_rollout_ref.rollout.name",
        "reward.custom_reward_function.path",
        "reward.custom_reward_function.name",
        "critic.model.path",
        "trainer.n_gpus_per_node",
    ):
        assert needed in keys
    assert 'ADV_ESTIMATOR="${ADV_ESTIMATOR:-gae}"' in text and "actor_rollout_ref.rollout.name=vllm" in text
    assert "pip install --no-deps iranker rapidfuzz" in text
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in text  # the alias becomes the full-precision original


def test_grpo_default_and_bad_arguments(tmp_path, train_file, test_file, capsys):
    out = tmp_path / "g"
    assert (
        cli.main(
            [
                "export-verl",
                "--input",
                str(train_file),
                "--test-input",
                str(test_file),
                "--out",
                str(out),
                "--algorithm",
                "grpo",
                "--rollout-n",
                "8",
            ]
        )
        == 0
    )
    text = (out / "run_verl.sh").read_text()
    assert 'ADV_ESTIMATOR="${ADV_ESTIMATOR:-grpo}"' in text and 'ROLLOUT_N="${ROLLOUT_N:-8}"' in text
    capsys.readouterr()
    assert cli.main(["export-verl", "--input", str(train_file), "--out", str(tmp_path / "x")]) == 2
    assert "--test-input" in capsys.readouterr().err
    leaky = tmp_path / "leaky.jsonl"
    leaky.write_text(train_file.read_text().splitlines()[0] + "\n")
    assert (
        cli.main(
            [
                "export-verl",
                "--input",
                str(train_file),
                "--test-input",
                str(leaky),
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    assert "leak" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "export-verl",
                "--input",
                str(train_file),
                "--test-input",
                str(test_file),
                "--out",
                str(tmp_path / "z"),
                "--model",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "config.json" in capsys.readouterr().err
