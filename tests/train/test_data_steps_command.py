"""`iranker data steps` on a tiny input file: parquet schema, info.json, leave-out, leak check."""

from __future__ import annotations

import json

import pytest

from iranker.cli import main as cli

from .conftest import TRAIN, write_jsonl

pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("datasets")


def test_steps_from_input_file(tmp_path, train_file, test_file, capsys):
    out = tmp_path / "steps"
    rc = cli.main(
        [
            "data",
            "steps",
            "--input",
            str(train_file),
            "--test-input",
            str(test_file),
            "--out",
            str(out),
            "--seed",
            "3",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    table = pq.read_table(out / "train.parquet")
    assert table.column_names == [
        "prompt",
        "pool",
        "best",
        "relevance",
        "task",
        "scenario",
        "example_id",
        "pool_size",
        "data_source",
    ]
    assert str(table.schema.field("pool").type) == (
        "list<element: struct<id: string, label: string, text: string, names: list<element: string>>>"
    )
    rows = table.to_pylist()
    # every step of every example: 3 candidates -> pools of 2 and 3; 4 examples -> 8 rows
    assert len(rows) == 8
    assert {r["task"] for r in rows} == {"passage-mini", "router-mini", "rec-mini"}
    for r in rows:
        ids = [c["id"] for c in r["pool"]]
        assert len(ids) == r["pool_size"] and set(r["best"]) <= set(ids)
        assert r["prompt"][0]["role"] == "system" and r["prompt"][-1]["role"] == "user"
        assert r["data_source"] == r["task"]
    routing = [r for r in rows if r["scenario"] == "routing"]
    assert any(c["names"] for r in routing for c in r["pool"])

    info = json.loads((out / "info.json").read_text())
    assert info["rows"] == 8 and info["examples"] == 4 and info["seed"] == 3 and info["split"] == "train"
    assert info["tasks"]["passage-mini"] == {
        "scenario": "passage",
        "examples": 2,
        "examples_with_labels": 2,
        "rows": 4,
        "pool_sizes": {"2": 2, "3": 2},
    }
    assert info["leak_check"]["id_overlap"] == 0 and info["leak_check"]["test_examples"] == 2
    assert set(info["templates"]) == {"passage", "routing", "recommendation"}
    assert "by user" in info["split_rule"]
    assert "wrote 8 step rows" in capsys.readouterr().err


def test_same_seed_same_rows_and_cap(tmp_path, train_file):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(["data", "steps", "--input", str(train_file), "--out", str(a)]) == 0
    assert cli.main(["data", "steps", "--input", str(train_file), "--out", str(b)]) == 0
    assert pq.read_table(a / "train.parquet").to_pylist() == pq.read_table(b / "train.parquet").to_pylist()
    c = tmp_path / "c"
    assert (
        cli.main(["data", "steps", "--input", str(train_file), "--out", str(c), "--max-per-task", "1"]) == 0
    )
    assert len(pq.read_table(c / "train.parquet")) == 3


def test_leave_out_and_task_filter(tmp_path, train_file):
    out = tmp_path / "s"
    assert (
        cli.main(["data", "steps", "--input", str(train_file), "--out", str(out), "--leave-out", "passage"])
        == 0
    )
    rows = pq.read_table(out / "train.parquet").to_pylist()
    assert {r["scenario"] for r in rows} == {"routing", "recommendation"}
    info = json.loads((out / "info.json").read_text())
    assert info["leave_out"] == "passage" and "passage-mini" not in info["tasks"]
    out2 = tmp_path / "s2"
    assert (
        cli.main(["data", "steps", "--input", str(train_file), "--out", str(out2), "--tasks", "router-mini"])
        == 0
    )
    assert {r["task"] for r in pq.read_table(out2 / "train.parquet").to_pylist()} == {"router-mini"}


def test_leak_is_an_error(tmp_path, train_file, capsys):
    leaked = write_jsonl(tmp_path / "test.jsonl", [TRAIN[0]])
    out = tmp_path / "s"
    assert (
        cli.main(
            ["data", "steps", "--input", str(train_file), "--test-input", str(leaked), "--out", str(out)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "leak" in err and "p1" in err
    assert not (out / "train.parquet").exists()


def test_same_query_under_another_id_is_a_leak(tmp_path, train_file, capsys):
    copy = dict(TRAIN[2], id="other-id")  # the routing question again, renamed
    leaked = write_jsonl(tmp_path / "test.jsonl", [copy])
    assert (
        cli.main(
            [
                "data",
                "steps",
                "--input",
                str(train_file),
                "--test-input",
                str(leaked),
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 2
    )
    assert "test query" in capsys.readouterr().err


def test_errors_are_one_line(tmp_path, train_file, capsys):
    assert cli.main(["data", "steps", "--out", str(tmp_path / "s")]) == 2
    assert "--tasks" in capsys.readouterr().err
    assert (
        cli.main(
            ["data", "steps", "--input", str(train_file), "--out", str(tmp_path / "s"), "--tasks", "nope"]
        )
        == 2
    )
    assert "nope" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "data",
                "steps",
                "--tasks",
                "no-such-task",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 2
    )
    assert "no-such-task" in capsys.readouterr().err


def test_check_no_leak_unit():
    from iranker.data.io import example_from_record
    from iranker.data.steps_command import ExampleSet, LeakError, check_no_leak

    tr = ExampleSet("train", {"t": [example_from_record(r) for r in TRAIN[:2]]})
    ok = ExampleSet(
        "test", {"t": [example_from_record(dict(TRAIN[0], id="p9", query="a different question"))]}
    )
    assert check_no_leak(tr, ok)["id_overlap"] == 0
    with pytest.raises(LeakError):
        check_no_leak(tr, ExampleSet("test", {"t": [example_from_record(TRAIN[1])]}))
