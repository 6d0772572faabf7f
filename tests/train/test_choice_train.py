"""``iranker train`` with ``algorithm: choice`` on the real embedded SmolLM2-135M (CPU, 1 thread).

- two optimiser steps, a checkpoint, a refused overwrite, a resume that neither loses nor
  repeats a logged step, and a result folder that ranks with the mode it records;
- training moves the policy: a few steps on a small fixed set lower pi(best) on those rows
  (measured with the same scoring code the ranker uses, not a double).
"""

from __future__ import annotations

import json

import pytest

from iranker.cli import main as cli

from .conftest import require_embedded_training

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedded_available():
    require_embedded_training("peft", "datasets")


def _loss_lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if '"loss"' in x]


def _config(tmp_path, steps, out, **extra) -> str:
    base = {
        "algorithm": "choice",
        "dataset": str(steps),
        "output_dir": str(out),
        "model": "smollm2-135m",
        "lora_r": 4,
        "lora_alpha": 8,
        "max_train_rows": 4,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 2,
        "max_steps": 2,
        "save_steps": 1,
        "logging_steps": 1,
        "threads": 1,
        "learning_rate": 1.0e-4,
        **extra,
    }
    path = tmp_path / f"{out.name}.yaml"
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in base.items()))
    return str(path)


def test_choice_train_checkpoint_resume_and_rank(tmp_path, train_file, test_file, embedded_available, capsys):
    steps, held_out = tmp_path / "steps", tmp_path / "held"
    assert cli.main(["data", "steps", "--input", str(train_file), "--out", str(steps)]) == 0
    assert (
        cli.main(["data", "steps", "--input", str(test_file), "--split", "test", "--out", str(held_out)]) == 0
    )
    out = tmp_path / "run"
    config = _config(tmp_path, steps, out, eval_dataset=str(held_out), eval_rows=3, eval_steps=2)

    assert cli.main(["train", "--config", config]) == 0, capsys.readouterr().err
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "optimizer.pt",
        "trainer_state.json",
        "iranker.json",
    ):
        assert (out / "checkpoint-2" / name).is_file(), name
    info = json.loads((out / "iranker.json").read_text())
    assert info["algorithm"] == "choice" and info["objective"] == "exclusion" and info["global_step"] == 2
    assert info["ranking"] == {"decode": "choice", "reuse": "kv"}
    assert json.loads((out / "checkpoint-2" / "iranker.json").read_text())["ranking"]["decode"] == "choice"
    logged = _loss_lines(out / "train_log.jsonl")
    assert [r["step"] for r in logged] == [1, 2]
    for r in logged:
        assert 0.0 <= r["train/pi_best"] <= 1.0 and r["train/removed_non_best"] in (0.0, 0.5, 1.0)
        assert any(k.startswith("train/pi_best/") for k in r) and r["loss"] < 0  # minus an expected reward
    evals = [
        json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines() if '"split": "eval"' in x
    ]
    assert [e["step"] for e in evals] == [0, 2] and all(e["eval/rows"] == 3 for e in evals)

    assert cli.main(["train", "--config", config]) == 2  # would overwrite: refused
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["train", "--config", config, "--resume", "--max-steps", "3"]) == 0
    assert json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())["global_step"] == 3
    assert [r["step"] for r in _loss_lines(out / "train_log.jsonl")] == [1, 2, 3]

    from iranker.llm import load_backend
    from iranker.rankers import IterativeRanker
    from iranker.types import Candidate, RankingExample

    backend = load_backend("transformers", str(out), threads=1)
    assert backend.ranking == {"decode": "choice", "reuse": "kv"}
    ranker = IterativeRanker(backend, show_progress=False)  # no flags: the recorded mode
    assert (ranker.decode, ranker.reuse) == ("choice", "kv")
    example = RankingExample(
        "q",
        "passage",
        "what is the capital of france",
        [
            Candidate("a", "Paris is the capital of France."),
            Candidate("b", "Bananas are yellow."),
            Candidate("c", "France is in Europe."),
        ],
        {"a": 2.0},
    )
    ranking = ranker.rank([example])[0]
    assert len(ranking.steps) == 2 and {s.how_matched for s in ranking.steps} == {"choice"}
    assert all(s.valid for s in ranking.steps)
    # an explicit flag overrides the record
    assert IterativeRanker(backend, decode="generate", show_progress=False).reuse == "none"


def test_choice_training_lowers_pi_best_on_the_rows_it_trains(tmp_path, train_file, embedded_available):
    import torch

    from iranker.train import train
    from iranker.train.choice_trainer import encode_row, evaluate_rows
    from iranker.train.common import load_policy
    from iranker.train.config import TrainConfig

    steps = tmp_path / "steps"
    assert cli.main(["data", "steps", "--input", str(train_file), "--out", str(steps)]) == 0
    import datasets

    ds = datasets.Dataset.from_parquet(str(steps / "train.parquet")).select(range(4))
    out = tmp_path / "learn"
    config = TrainConfig.from_dict(
        {
            "algorithm": "choice",
            "dataset": str(steps),
            "output_dir": str(out),
            "lora_r": 8,
            "lora_alpha": 16,
            "max_train_rows": 4,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 1,
            "max_steps": 6,
            "save_steps": 100,
            "logging_steps": 1,
            "threads": 1,
            "learning_rate": 2.0e-3,
        }
    )
    policy = load_policy(config, dtype=torch.bfloat16)
    rows = [encode_row(policy.tokenizer, r) for r in ds]
    before = evaluate_rows(torch, policy.model, policy.tokenizer.pad_token_id, rows)["pi_best"]
    train(config, quiet=True)

    from iranker.llm import load_backend

    trained = load_backend("transformers", str(out), threads=1)
    after = evaluate_rows(torch, trained.model, trained.tokenizer.pad_token_id, rows)["pi_best"]
    print(f"\npi(best) on the 4 trained rows: base {before:.4f} -> trained {after:.4f}")
    assert after < before * 0.8


def test_lora_top_layers_trains_only_the_top_layers(tmp_path, train_file, embedded_available):
    """``lora_top_layers: 3``: adapter weights exist only in the top 3 decoder layers, and
    training them still moves the policy (the lower layers stay the base's)."""
    import peft
    import torch

    from iranker.train import train
    from iranker.train.common import load_policy, lora_config
    from iranker.train.config import ConfigError, TrainConfig

    steps = tmp_path / "steps"
    assert cli.main(["data", "steps", "--input", str(train_file), "--out", str(steps)]) == 0
    out = tmp_path / "top"
    config = TrainConfig.from_dict(
        {
            "algorithm": "choice",
            "dataset": str(steps),
            "output_dir": str(out),
            "lora_r": 4,
            "lora_alpha": 8,
            "lora_top_layers": 3,
            "max_train_rows": 2,
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 1,
            "max_steps": 1,
            "save_steps": 100,
            "logging_steps": 1,
            "threads": 1,
        }
    )
    policy = load_policy(config, dtype=torch.bfloat16)
    n = policy.model.config.num_hidden_layers
    model = peft.get_peft_model(policy.model, lora_config(config, policy.model))
    layers = {
        int(name.split(".layers.")[1].split(".")[0])
        for name, p in model.named_parameters()
        if p.requires_grad
    }
    assert layers == {n - 3, n - 2, n - 1}
    with pytest.raises(ConfigError, match="lora_top_layers"):
        lora_config(TrainConfig.from_dict({**config.to_dict(), "lora_top_layers": n + 1}), policy.model)
    train(config, quiet=True)
    from safetensors.torch import load_file

    saved = load_file(str(out / "adapter_model.safetensors"))
    assert saved and all(int(k.split(".layers.")[1].split(".")[0]) >= n - 3 for k in saved)
