"""``--signals`` on ``iranker rank`` (scripted backend: the real protocol), with one-line errors."""

from __future__ import annotations

import json

import pytest

from iranker.cli import main as cli

REC = {
    "id": "r1",
    "scenario": "recommendation",
    "history": ["Toy Story (1995)", "Aladdin (1992)"],
    "meta": {"user": "me"},
    "candidates": [
        {"id": "m1", "text": "Heat (1995)"},
        {"id": "m2", "text": "The Lion King (1994)"},
        {"id": "m3", "text": "Casino (1995)"},
    ],
}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_rank_with_computed_signals_shows_them_in_every_step(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(REC) + "\n")
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"user": "a", "items": ["Aladdin (1992)", "The Lion King (1994)"]}\n'
        '{"user": "me", "items": ["Toy Story (1995)", "Casino (1995)"]}\n'
    )
    out = tmp_path / "out.jsonl"
    rc = cli.main(
        [
            "rank",
            "-i",
            str(src),
            "-o",
            str(out),
            "--backend",
            "scripted",
            "--model",
            "last",
            "-q",
            "--signals",
            "cooccur,bm25",
            "--interactions",
            str(log),
        ]
    )
    assert rc == 0
    rec = read_jsonl(out)[0]
    assert sorted(rec["ranking"]) == ["m1", "m2", "m3"]
    # 'me' is the ranked user: their own log line never counts, so Casino gets no co-occurrence
    from iranker.data.io import read_examples
    from iranker.signals import attach_signals, make_providers

    ex = attach_signals(read_examples(src), make_providers(["bm25", "cooccur"], interactions=log))[0]
    assert {c.id: c.meta["signals"]["cooccur"] for c in ex.candidates} == {"m1": 0.0, "m2": 1.0, "m3": 0.0}


def test_rank_prompt_carries_the_ranks(tmp_path, monkeypatch):
    from iranker.llm import ScriptedLLM

    seen = []

    def respond(messages):
        seen.append(messages[1]["content"])
        return ScriptedLLM.eliminate_last()._responder(messages)

    import iranker.llm as llm_mod

    real = llm_mod.load_backend
    monkeypatch.setattr(
        llm_mod,
        "load_backend",
        lambda name, model=None, **kw: (
            ScriptedLLM(respond) if name == "scripted" else real(name, model, **kw)
        ),
    )
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps(
            {
                **REC,
                "candidates": [{**c, "signals": {"mine": float(i)}} for i, c in enumerate(REC["candidates"])],
            }
        )
        + "\n"
    )
    rc = cli.main(["rank", "-i", str(src), "-o", str(tmp_path / "o.jsonl"), "--backend", "scripted", "-q"])
    assert rc == 0
    assert "[1] Heat (1995) (signals: mine 3/3)" in seen[0]
    assert "[3] Casino (1995) (signals: mine 1/3)" in seen[0]
    assert (
        "[3]" not in seen[1] and "[1] Heat (1995) (signals: mine 3/3)" in seen[1]
    )  # same segment after a step


@pytest.mark.parametrize(
    "args,error",
    [
        (["--signals", "bm26"], "unknown signal(s) ['bm26']"),
        (["--signals", ","], "--signals is empty"),
        (["--signals", "cooccur"], "signal cooccur needs an interactions file: pass --interactions"),
        (["--signals", "outcomes"], "signal outcomes needs an outcomes file: pass --outcomes"),
        (["--signals", "cooccur", "--interactions", "NOPE"], "NOPE:0: cannot read file"),
        (["--interactions", "x.jsonl"], "--interactions is only read by the cooccur signal"),
        (["--signals", "outcomes", "--outcomes", "x", "--outcomes-k", "0"], "--outcomes-k must be >= 1"),
    ],
)
def test_bad_signal_options_are_one_line(tmp_path, capsys, args, error):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(REC) + "\n")
    out = tmp_path / "o.jsonl"
    rc = cli.main(["rank", "-i", str(src), "-o", str(out), "--backend", "scripted", "-q", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and error in err, err
    assert not out.exists()


def test_input_signal_clashing_with_a_computed_one(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({**REC, "candidates": [{**c, "signals": {"bm25": 1.0}} for c in REC["candidates"]]}) + "\n"
    )
    rc = cli.main(
        [
            "rank",
            "-i",
            str(src),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--backend",
            "scripted",
            "-q",
            "--signals",
            "bm25",
        ]
    )
    assert rc == 2 and "already carry signal(s) bm25" in capsys.readouterr().err


def test_readme_signals_example_files(tmp_path):
    """The README's `rank` call with signals, on the scripted backend (the files must stay valid)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "examples"
    out = tmp_path / "ranked.jsonl"
    rc = cli.main(
        [
            "rank",
            "-i",
            str(root / "rank_signals.jsonl"),
            "-o",
            str(out),
            "--backend",
            "scripted",
            "-q",
            "--signals",
            "bm25,cooccur",
            "--interactions",
            str(root / "interactions.jsonl"),
        ]
    )
    assert rc == 0 and len(read_jsonl(out)) == 2
