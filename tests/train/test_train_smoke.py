"""CI smoke test: `iranker train` runs real GRPO steps with LoRA on the embedded SmolLM2-135M on
CPU, checkpoints, resumes, and the result folder ranks through the transformers backend."""

from __future__ import annotations

import json
import time

import pytest

from iranker.cli import main as cli

from .conftest import require_embedded_training

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedded_available():
    require_embedded_training("trl", "peft", "datasets")


def log_steps(path):
    """Training-step lines of train_log.jsonl (the end-of-run summary lines have no loss)."""
    return [json.loads(line) for line in path.read_text().splitlines() if '"loss"' in line]


def test_train_resume_and_rank(tmp_path, train_file, embedded_available, capsys):
    steps = tmp_path / "steps"
    assert cli.main(["data", "steps", "--input", str(train_file), "--out", str(steps)]) == 0
    out = tmp_path / "run"
    config = tmp_path / "train.yaml"
    config.write_text(
        f"dataset: {steps}\noutput_dir: {out}\nmodel: smollm2-135m\nlora: true\nlora_r: 4\n"
        "max_train_rows: 4\nnum_generations: 2\nper_device_train_batch_size: 2\nmax_completion_length: 16\n"
        "max_steps: 2\nsave_steps: 1\nlogging_steps: 1\nthreads: 1\nlearning_rate: 1.0e-4\n"
        "format_shaping_weight: 0.5\nresponse_prefix: <think>\n"
    )

    t0 = time.perf_counter()
    assert cli.main(["train", "--config", str(config)]) == 0, capsys.readouterr().err
    first = time.perf_counter() - t0
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "optimizer.pt",
        "trainer_state.json",
        "iranker.json",
    ):
        assert (out / "checkpoint-2" / name).is_file(), name
    info = json.loads((out / "iranker.json").read_text())
    assert info["global_step"] == 2 and info["base_model"] == "smollm2-135m" and info["adapter"] is True
    assert set(info["templates"]) == {"passage", "routing", "recommendation"}
    assert {t["response_prefix"] for t in info["templates"].values()} == {"<think>"}
    assert info["reward"]["exclusion_weight"] == 1.0 and info["trl_args"]["num_generations"] == 2
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2-135m"
    logged = log_steps(out / "train_log.jsonl")
    assert [r["step"] for r in logged] == [1, 2]
    for r in logged:
        assert {"reward", "valid_rate", "format_rate", "seconds_per_step"} <= set(r)
        assert any(k.startswith("reward/") and k.count("/") == 1 for k in r)

    # a second plain run would overwrite: refused with one error line
    assert cli.main(["train", "--config", str(config)]) == 2
    assert "--resume" in capsys.readouterr().err

    assert cli.main(["train", "--config", str(config), "--resume", "--max-steps", "3"]) == 0
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert [r["step"] for r in log_steps(out / "train_log.jsonl")] == [1, 2, 3]  # nothing lost or repeated
    assert json.loads((out / "iranker.json").read_text())["global_step"] == 3
    print(
        f"\nGRPO LoRA smoke: first run (load + 2 steps) {first:.1f} s; "
        f"s/step {[r['seconds_per_step'] for r in log_steps(out / 'train_log.jsonl')]}"
    )

    from iranker.llm import load_backend
    from iranker.rankers import IterativeRanker
    from iranker.train import trained_templates
    from iranker.types import Candidate, RankingExample

    backend = load_backend("transformers", str(out), threads=1)
    assert backend.resolved.kind == "adapter" and backend.resolved.base.name == "smollm2-135m"
    templates = backend.templates  # read from the run's iranker.json by the backend
    assert set(templates) == {"passage", "routing", "recommendation"}
    assert templates == trained_templates(out)
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
    sent = []
    generate = backend.generate
    backend.generate = lambda prompts, **kw: sent.extend(prompts) or generate(prompts, **kw)
    ranking = IterativeRanker(backend, templates=templates, max_new_tokens=16, show_progress=False).rank(
        [example]
    )[0]
    assert sorted(ranking.order) == ["a", "b", "c"] and len(ranking.steps) == 2
    # the trained prefill travels with the model: every prompt asks it to continue that prefix
    assert sent and all(p[-1] == {"role": "assistant", "content": "<think>"} for p in sent)
