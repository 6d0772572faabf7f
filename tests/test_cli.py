"""The `iranker rank` command: formats, atomic output, resume, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from iranker.cli import main as cli
from iranker.cli import rank_command
from iranker.llm import ScriptedLLM

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rank_input.jsonl"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("method", ["iterative", "direct"])
def test_rank_readme_example_writes_one_permutation_per_line(tmp_path, method):
    out = tmp_path / "out.jsonl"
    rc = cli.main(
        ["rank", "-i", str(EXAMPLE), "-o", str(out), "--backend", "scripted", "--method", method, "-q"]
    )
    assert rc == 0
    inputs = read_jsonl(EXAMPLE)
    outputs = read_jsonl(out)
    assert [o["id"] for o in outputs] == [i["id"] for i in inputs]
    for i, o in zip(inputs, outputs):
        assert sorted(o["ranking"]) == sorted(c["id"] for c in i["candidates"])
        assert set(o) >= {"id", "ranking", "steps", "usage"}
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_rank_as_subprocess_reports_metrics(tmp_path):
    out = tmp_path / "o.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "iranker.cli",
            "rank",
            "-i",
            str(EXAMPLE),
            "-o",
            str(out),
            "--backend",
            "scripted",
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote 3 rankings" in proc.stderr and "MRR=" in proc.stderr


BAD_LINES = {
    "invalid_json": ('{"id": "a", ', "invalid JSON"),
    "unknown_scenario": (
        '{"id":"a","scenario":"music","query":"q","candidates":[{"id":"x","text":"1"},{"id":"y","text":"2"}]}',
        "scenario",
    ),
    "one_candidate": (
        '{"id":"a","scenario":"passage","query":"q","candidates":[{"id":"x","text":"1"}]}',
        "2 candidates",
    ),
    "duplicate_ids": (
        '{"id":"a","scenario":"passage","query":"q","candidates":[{"id":"x","text":"1"},{"id":"x","text":"2"}]}',
        "duplicate",
    ),
    "empty_text": (
        '{"id":"a","scenario":"passage","query":"q","candidates":[{"id":"x","text":""},{"id":"y","text":"2"}]}',
        "empty",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_input_one_line_error_with_line_number_and_no_output(tmp_path, case, capsys):
    good = EXAMPLE.read_text().splitlines()[0]
    src = tmp_path / "in.jsonl"
    line, needle = BAD_LINES[case]
    src.write_text(good + "\n" + line + "\n")
    out = tmp_path / "out.jsonl"
    rc = cli.main(["rank", "-i", str(src), "-o", str(out), "--backend", "scripted"])
    err = capsys.readouterr().err
    assert rc != 0
    assert f"{src}:2:" in err and needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_unreadable_file(tmp_path, capsys):
    rc = cli.main(
        ["rank", "-i", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl"), "--backend", "scripted"]
    )
    assert rc != 0 and "cannot read" in capsys.readouterr().err


def test_interrupted_run_keeps_partial_and_resume_finishes_without_recompute(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in.jsonl"
    lines = []
    for i in range(6):
        lines.append(
            json.dumps(
                {
                    "id": f"q{i}",
                    "scenario": "passage",
                    "query": "q",
                    "candidates": [
                        {"id": "a", "text": "x"},
                        {"id": "b", "text": "y"},
                        {"id": "c", "text": "z"},
                    ],
                }
            )
        )
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    seen = []

    class Interrupting(ScriptedLLM):
        def generate(self, prompts, **kw):
            if len(self.calls) == 4:  # batch size 2 -> 2 rounds per chunk; die in the 3rd chunk
                raise KeyboardInterrupt
            seen.extend(prompts)
            return super().generate(prompts, **kw)

    llm = Interrupting(ScriptedLLM.eliminate_last()._responder)
    monkeypatch.setattr(rank_command, "backend_from_args", lambda args: llm)
    rc = cli.main(["rank", "-i", str(src), "-o", str(out), "--batch-size", "2", "-q"])
    assert rc == 130
    assert not out.exists()
    partial = read_jsonl(tmp_path / "out.jsonl.partial")
    assert [r["id"] for r in partial] == ["q0", "q1", "q2", "q3"]

    fresh = ScriptedLLM.eliminate_last()
    monkeypatch.setattr(rank_command, "backend_from_args", lambda args: fresh)
    rc = cli.main(["rank", "-i", str(src), "-o", str(out), "--batch-size", "2", "--resume", "-q"])
    assert rc == 0
    assert "resuming: 4 of 6" in capsys.readouterr().err
    assert sum(len(b) for b in fresh.calls) == 2 * 2  # only q4, q5: 2 rounds each
    assert [r["id"] for r in read_jsonl(out)] == [f"q{i}" for i in range(6)]


def cut_run(monkeypatch, src, out, *extra):
    """A scripted `rank` killed before its first ranking: leaves OUT.partial and its settings."""

    class Dying(ScriptedLLM):
        def generate(self, prompts, **kw):
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(
            rank_command, "backend_from_args", lambda args: Dying(ScriptedLLM.eliminate_last()._responder)
        )
        assert (
            cli.main(["rank", "-i", str(src), "-o", str(out), "--backend", "scripted", "-q", *extra]) == 130
        )
    partial = Path(str(out) + ".partial")
    assert partial.exists() and Path(str(partial) + ".json").exists()
    return partial


def test_resume_drops_a_truncated_last_line(tmp_path, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_text(EXAMPLE.read_text())
    out = tmp_path / "out.jsonl"
    partial = cut_run(monkeypatch, src, out)
    partial.write_text(
        json.dumps({"id": "movie-1", "ranking": ["m1", "m2", "m3", "m4"], "steps": [], "usage": {}})
        + '\n{"id": "rou'
    )
    rc = cli.main(["rank", "-i", str(src), "-o", str(out), "--backend", "scripted", "--resume", "-q"])
    assert rc == 0
    assert [r["id"] for r in read_jsonl(out)] == ["movie-1", "route-1", "passage-1"]


def test_bad_backend_options_are_clear(tmp_path, capsys):
    rc = cli.main(
        [
            "rank",
            "-i",
            str(EXAMPLE),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--backend",
            "scripted",
            "--base-url",
            "http://x",
        ]
    )
    assert rc != 0 and "--base-url only applies" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage: iranker" in capsys.readouterr().out


def test_response_prefix_option_overrides_every_scenario_template(tmp_path):
    import argparse

    from iranker.building import with_response_prefix
    from iranker.cli.building import ranker_from_args
    from iranker.llm import ScriptedLLM
    from iranker.scenarios import SCENARIO_CLASSES, PromptTemplate, get_scenario

    trained = {
        "passage": PromptTemplate.from_dict(
            {**get_scenario("passage").template.to_dict(), "system": "trained", "response_prefix": "<think>"}
        )
    }
    assert with_response_prefix(trained, None) == trained
    out = with_response_prefix(trained, "")
    assert set(out) == set(SCENARIO_CLASSES) and all(t.response_prefix == "" for t in out.values())
    assert out["passage"].system == "trained"  # only the prefix changes
    llm = ScriptedLLM.eliminate_last()
    llm.templates = trained
    ns = argparse.Namespace(
        batch_size=2,
        max_new_tokens=8,
        temperature=0.0,
        seed=0,
        method="iterative",
        decode="generate",
        fallback="closest",
        reask=0,
        response_prefix=None,
    )
    assert ranker_from_args(ns, llm).templates["passage"].response_prefix == "<think>"
    ns.response_prefix = "Answer: "
    assert ranker_from_args(ns, llm).templates["recommendation"].response_prefix == "Answer: "


# -- bad settings and paths: one error line, no output file (issue "Trust every answer") --------


@pytest.mark.parametrize(
    "flags,match",
    [
        (["--max-new-tokens", "0"], "--max-new-tokens must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--reask", "-1"], "--reask must be >= 0"),
        (["--temperature", "nan"], "--temperature must be a finite number"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--prune", "fraction=2"], "--prune: bad prune schedule"),
        (["--prune", "quarter", "--decode", "generate"], "--prune needs iterative choice ranking"),
    ],
)
def test_rank_refuses_impossible_settings_before_loading(tmp_path, capsys, flags, match):
    out = tmp_path / "o.jsonl"
    rc = cli.main(["rank", "-i", str(EXAMPLE), "-o", str(out), "--backend", "scripted", *flags])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "o.jsonl.partial").exists()


def test_rank_refuses_to_overwrite_its_input_or_write_into_a_folder(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(EXAMPLE.read_text())
    assert cli.main(["rank", "-i", str(src), "-o", str(src), "--backend", "scripted"]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert src.read_text() == EXAMPLE.read_text()
    assert cli.main(["rank", "-i", str(src), "-o", str(tmp_path), "--backend", "scripted"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_bad_model_leaves_no_partial_file(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    rc = cli.main(["rank", "-i", str(EXAMPLE), "-o", str(out), "--model", "/does/not/exist"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl.partial").exists()


def test_resume_refuses_a_record_without_a_ranking(tmp_path, monkeypatch, capsys):
    """A line that is not a ranking is refused with its line number (issue 19), not dropped."""
    import json as _json

    out = tmp_path / "o.jsonl"
    partial = cut_run(monkeypatch, EXAMPLE, out)
    first_id = _json.loads(EXAMPLE.read_text().splitlines()[0])["id"]
    partial.write_text(_json.dumps({"id": first_id, "note": "no ranking here"}) + "\n")
    before = partial.read_bytes()
    capsys.readouterr()
    assert (
        cli.main(["rank", "-i", str(EXAMPLE), "-o", str(out), "--backend", "scripted", "--resume", "-q"]) == 2
    )
    err = capsys.readouterr().err
    assert f"{partial}:1: not a ranking of this input" in err and "'ranking'" in err
    assert partial.read_bytes() == before and not out.exists()


def test_a_subcommand_whose_module_fails_to_import_stays_and_names_the_cause(monkeypatch, capsys):
    import importlib

    real = importlib.import_module

    def broken(name, package=None):
        if name == ".evaluation.compare":
            raise ImportError("No module named 'scipy_broken'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", broken)
    parser = cli.build_parser()
    assert "compare" in parser.format_help()
    rc = cli.main(["compare", "a", "b"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1
    assert "`iranker compare` is unavailable" in err[0] and "scipy_broken" in err[0]
    monkeypatch.setattr(importlib, "import_module", real)
    assert set(cli.SUBCOMMAND_MODULES) and all(
        cmd in cli.build_parser().format_help() for cmds in cli.SUBCOMMAND_MODULES.values() for cmd in cmds
    )


def test_resume_refuses_a_partial_of_other_settings_or_another_input(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(EXAMPLE.read_text())
    out = tmp_path / "out.jsonl"
    cut_run(monkeypatch, src, out, "--fallback", "last")
    capsys.readouterr()
    rc = cli.main(
        [
            "rank",
            "-i",
            str(src),
            "-o",
            str(out),
            "--backend",
            "scripted",
            "--resume",
            "-q",
            "--fallback",
            "random",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1
    assert "other settings" in err[0] and "fallback: the output has 'last', this run has 'random'" in err[0]

    other = tmp_path / "other.jsonl"
    other.write_text(EXAMPLE.read_text().splitlines()[0] + "\n")
    rc = cli.main(
        [
            "rank",
            "-i",
            str(other),
            "-o",
            str(out),
            "--backend",
            "scripted",
            "--resume",
            "-q",
            "--fallback",
            "last",
        ]
    )
    assert rc != 0 and "input_sha256" in capsys.readouterr().err
    # the matching settings resume and finish; nothing is left beside the output
    assert (
        cli.main(
            [
                "rank",
                "-i",
                str(src),
                "-o",
                str(out),
                "--backend",
                "scripted",
                "--resume",
                "-q",
                "--fallback",
                "last",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "other.jsonl", "out.jsonl"]


def test_resume_refuses_a_partial_without_its_settings_file(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    Path(str(out) + ".partial").write_text("")
    rc = cli.main(["rank", "-i", str(EXAMPLE), "-o", str(out), "--backend", "scripted", "--resume", "-q"])
    assert rc != 0 and "no settings file" in capsys.readouterr().err


def test_a_second_rank_into_the_same_output_is_refused_while_the_first_runs(tmp_path, capsys):
    from iranker.jsonl_store import ExclusiveLock

    out = tmp_path / "o.jsonl"
    with ExclusiveLock(str(out) + ".partial.lock", "held"):  # what a running `rank` holds
        rc = cli.main(["rank", "-i", str(EXAMPLE), "-o", str(out), "--backend", "scripted", "-q"])
        assert rc != 0 and "another iranker rank is writing" in capsys.readouterr().err
        assert not out.exists()
    assert cli.main(["rank", "-i", str(EXAMPLE), "-o", str(out), "--backend", "scripted", "-q"]) == 0


def test_concurrent_ranks_into_one_output_one_wins_and_the_file_is_its_own(tmp_path):
    import os as _os

    src = tmp_path / "in.jsonl"
    src.write_text(EXAMPLE.read_text())
    out = tmp_path / "o.jsonl"
    env = {**_os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [
        sys.executable,
        "-m",
        "iranker.cli",
        "rank",
        "-i",
        str(src),
        "-o",
        str(out),
        "--backend",
        "scripted",
        "-q",
    ]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    ok = [r for r in results if r[0] == 0]
    assert ok, results
    assert all("another iranker rank is writing" in e for rc, e in results if rc != 0)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [json.loads(line)["id"] for line in src.read_text().splitlines()]


def test_rank_settings_pin_a_trained_model_and_leave_the_base_as_before(embedded_gguf):
    """`rank --resume` records the weights of a trained model (the iranker-135m alias can change
    with an upgrade), and nothing extra for the untrained base, so its older .partial files resume."""
    parser = cli.build_parser()
    trained = rank_command._rank_settings(parser.parse_args(["rank", "-i", "x.jsonl", "-o", "y.jsonl"]), [])
    assert trained["model_identity"]["ranking"] == {"decode": "choice", "reuse": "kv"}
    base = rank_command._rank_settings(
        parser.parse_args(["rank", "-i", "x.jsonl", "-o", "y.jsonl", "--model", "smollm2-135m"]), []
    )
    assert "model_identity" not in base
    scripted = rank_command._rank_settings(
        parser.parse_args(["rank", "-i", "x.jsonl", "-o", "y.jsonl", "--backend", "scripted"]), []
    )
    assert "model_identity" not in scripted


# -- issue 19: limits on the work one example asks for -----------------------------------------
def test_candidate_limit_is_raised_by_its_flag_and_segments_render_once_per_candidate(
    tmp_path, monkeypatch, capsys
):
    """101 candidates are refused by default and ranked with --max-candidates 101. Each candidate's
    prompt segment is rendered once per example, not once per step: the N²/2 renders were the
    quadratic term of elimination that is not inherent to it."""
    from iranker.scenarios.base import Scenario

    n = 101
    src = tmp_path / "big.jsonl"
    src.write_text(
        json.dumps(
            {
                "id": "big",
                "scenario": "passage",
                "query": "q",
                "candidates": [{"id": f"c{i}", "text": f"text {i}"} for i in range(n)],
            }
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    assert cli.main(["rank", "-i", str(src), "-o", str(out), "--backend", "scripted", "-q"]) == 2
    assert "101 candidates is over the limit of 100" in capsys.readouterr().err and not out.exists()
    renders = []
    real = Scenario.render_candidate
    monkeypatch.setattr(
        Scenario, "render_candidate", lambda self, *a: renders.append(a[1].id) or real(self, *a)
    )
    assert (
        cli.main(
            [
                "rank",
                "-i",
                str(src),
                "-o",
                str(out),
                "--backend",
                "scripted",
                "-q",
                "--max-candidates",
                str(n),
            ]
        )
        == 0
    )
    assert len(read_jsonl(out)[0]["ranking"]) == n
    assert sorted(renders) == sorted(f"c{i}" for i in range(n))  # once each, over 100 steps
