"""``iranker eval --signals``: signals attached to every example (cooccur from --train), the
single-signal and RRF rows, the settings recorded so a folder never mixes runs."""

from __future__ import annotations

import json

import pytest

from iranker.cli import main as cli


def rec(ex_id, user, history, items, target):
    return {
        "id": ex_id,
        "scenario": "recommendation",
        "history": list(history),
        "meta": {"user": user},
        "candidates": [{"id": i, "text": i} for i in items],
        "relevance": {target: 1},
    }


@pytest.fixture()
def files(tmp_path):
    test = [rec("e1", "x1", ["A", "B"], ["C", "D", "E"], "C"), rec("e2", "x2", ["D"], ["E", "C", "A"], "E")]
    train = [
        rec("t1", "u1", ["A", "B"], ["C", "Z"], "C"),
        rec("t2", "u2", ["D"], ["E", "Z"], "E"),
        rec("t3", "u3", ["A"], ["C", "Z"], "C"),
    ]
    t, tr = tmp_path / "test.jsonl", tmp_path / "train.jsonl"
    t.write_text("".join(json.dumps(r) + "\n" for r in test))
    tr.write_text("".join(json.dumps(r) + "\n" for r in train))
    return t, tr


def test_signal_rows_and_recorded_settings(tmp_path, files, capsys):
    test, train = files
    out = tmp_path / "run"
    rc = cli.main(
        [
            "eval",
            "--input",
            str(test),
            "--train",
            str(train),
            "--methods",
            "bm25,cooccur,rrf",
            "--signals",
            "bm25,cooccur",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    res = metrics["results"]["test"]
    assert res["cooccur"]["MRR"] == 1.0  # the training users link A,B->C and D->E
    assert {"bm25", "cooccur", "rrf"} <= set(res)
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["signals"]["names"] == ["bm25", "cooccur"]
    capsys.readouterr()
    rc = cli.main(
        ["eval", "--input", str(test), "--train", str(train), "--methods", "bm25", "--out", str(out), "-q"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "signals" in err and len(err.strip().splitlines()) == 1, err


def test_signal_methods_need_their_signals(tmp_path, files, capsys):
    test, train = files
    rc = cli.main(
        [
            "eval",
            "--input",
            str(test),
            "--train",
            str(train),
            "--methods",
            "rrf",
            "--out",
            str(tmp_path / "o"),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "rrf ranks by signals" in err and len(err.splitlines()) == 1, err
    rc = cli.main(
        [
            "eval",
            "--input",
            str(test),
            "--methods",
            "bm25",
            "--signals",
            "cooccur",
            "--out",
            str(tmp_path / "o2"),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "no training split" in err, err


def test_llm_methods_see_the_signals_and_a_trained_model_is_checked(tmp_path, files, capsys):
    test, train = files
    rc = cli.main(
        [
            "eval",
            "--input",
            str(test),
            "--train",
            str(train),
            "--methods",
            "iterative",
            "--signals",
            "cooccur",
            "--model",
            "iranker-135m",
            "--out",
            str(tmp_path / "o"),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "iranker-135m was trained without signals" in err, err
    assert not (tmp_path / "o" / "predictions.jsonl").exists()
    out = tmp_path / "s"
    rc = cli.main(
        [
            "eval",
            "--input",
            str(test),
            "--train",
            str(train),
            "--methods",
            "iterative",
            "--signals",
            "cooccur",
            "--backend",
            "scripted",
            "--model",
            "last",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    recs = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert recs and all(r["method"] == "iterative" for r in recs)
