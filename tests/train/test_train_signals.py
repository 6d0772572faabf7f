"""A model trained on step data with signals records them, and refuses to rank without them
(and a signal-free model refuses them): one real optimiser step on the embedded SmolLM2-135M."""

from __future__ import annotations

import json

import pytest

from iranker.cli import main as cli

from .conftest import require_embedded_training

pytestmark = pytest.mark.model


def test_trained_with_signals_records_and_requires_them(tmp_path, train_file, capsys):
    require_embedded_training("peft", "datasets")
    steps = tmp_path / "steps"
    assert (
        cli.main(["data", "steps", "--input", str(train_file), "--out", str(steps), "--signals", "bm25"]) == 0
    )
    out = tmp_path / "run"
    cfg = {
        "algorithm": "choice",
        "dataset": str(steps),
        "output_dir": str(out),
        "model": "smollm2-135m",
        "lora_r": 4,
        "lora_alpha": 8,
        "max_train_rows": 2,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "max_steps": 1,
        "save_steps": 1,
        "logging_steps": 1,
        "threads": 1,
    }
    config = tmp_path / "cfg.yaml"
    config.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in cfg.items()))
    assert cli.main(["train", "--config", str(config)]) == 0, capsys.readouterr().err
    info = json.loads((out / "iranker.json").read_text())
    assert info["signals"] == {"passage": ["bm25"], "recommendation": ["bm25"], "routing": ["bm25"]}
    assert info["templates"]["passage"]["signals"] == " (signals: {signals})"

    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps(
            {
                "id": "q",
                "scenario": "passage",
                "query": "capital of france",
                "candidates": [
                    {"id": "a", "text": "Paris is the capital of France."},
                    {"id": "b", "text": "Bananas are yellow."},
                ],
            }
        )
        + "\n"
    )
    capsys.readouterr()
    rc = cli.main(["rank", "-i", str(src), "-o", str(tmp_path / "o.jsonl"), "--model", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "was trained with signals (bm25), but example 'q' carries none" in err, err
    rc = cli.main(
        [
            "rank",
            "-i",
            str(src),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--model",
            str(out),
            "--threads",
            "1",
            "--signals",
            "bm25",
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((tmp_path / "o.jsonl").read_text())
    assert sorted(rec["ranking"]) == ["a", "b"]
