"""`iranker rank --ray`: sharded over Ray workers, the output is the one-process output.

Every test shares one local 2-CPU Ray cluster (the ``ray_cluster`` session fixture); the
commands see an initialised Ray and use it. Worker deaths are real: a worker process calls
``os._exit`` while ranking a chosen example (the backend it builds is the scripted one with
that fault added; it is pickled by value so the workers run this module's code).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iranker.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rank_input.jsonl"

pytestmark = pytest.mark.usefixtures("ray_cluster")


def passage_rows(n: int) -> list[dict]:
    return [
        {
            "id": f"q{i}",
            "scenario": "passage",
            "query": f"what is the capital of land{i}",
            "candidates": [{"id": f"q{i}-{c}", "text": f"text {c} about land{i}"} for c in "abcde"],
            "relevance": {f"q{i}-b": 1},
        }
        for i in range(n)
    ]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in passage_rows(9)), encoding="utf-8")
    return path


def rank(src: Path, out: Path, *extra: str) -> int:
    return cli.main(["rank", "-i", str(src), "-o", str(out), "-q", *extra])


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


# -- the scripted backend -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags",
    [
        ("--model", "last"),
        ("--model", "first", "--method", "direct"),
        ("--model", "last", "--decode", "choice"),
    ],
)
def test_sharded_rank_writes_the_one_process_file(tmp_path, src, capsys, flags):
    common = ["--backend", "scripted", "--batch-size", "2", *flags]  # 9 examples -> 5 chunks on 2 workers
    assert rank(src, tmp_path / "one.jsonl", *common) == 0
    assert rank(src, tmp_path / "ray.jsonl", *common, "--ray") == 0
    assert "ray: 2 worker(s) x 1 thread(s)" in capsys.readouterr().err
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert ids(tmp_path / "ray.jsonl") == [f"q{i}" for i in range(9)]
    assert not (tmp_path / "ray.jsonl.partial").exists()


def test_workers_and_threads_are_explicit(tmp_path, src, capsys):
    assert rank(src, tmp_path / "one.jsonl", "--backend", "scripted") == 0
    assert (
        rank(
            src,
            tmp_path / "w1.jsonl",
            "--backend",
            "scripted",
            "--ray",
            "--ray-workers",
            "1",
            "--threads",
            "2",
        )
        == 0
    )
    assert "ray: 1 worker(s) x 2 thread(s)" in capsys.readouterr().err
    assert (tmp_path / "w1.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    # 3 workers x 1 thread do not fit the 2-CPU cluster: refused instead of waiting forever
    assert rank(src, tmp_path / "w3.jsonl", "--backend", "scripted", "--ray", "--ray-workers", "3") == 2
    err = capsys.readouterr().err
    assert "need 3 CPUs" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w3.jsonl").exists() and not (tmp_path / "w3.jsonl.partial").exists()


# -- a worker killed mid-run --------------------------------------------------------------------
def dying_backend(marker: str, victim: str, always: bool, options) -> object:
    """The scripted backend of ``options``, except that the worker process exits the first
    time (or, with ``always``, every time) it is asked about the example whose query names
    ``victim``. ``marker`` is created just before the first exit."""
    from iranker.llm import ScriptedLLM
    from iranker.sharding.command import build_backend

    inner = build_backend(options)

    def respond(messages):
        if any(victim in m["content"] for m in messages) and (always or not os.path.exists(marker)):
            Path(marker).touch()
            os._exit(1)
        return inner._responder(messages)

    return ScriptedLLM(respond)


@pytest.fixture
def by_value():
    """Ray pickles this module's functions by value, so the workers can run them."""
    from ray import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def test_a_worker_killed_mid_run_is_restarted_and_its_chunk_retried(tmp_path, src, monkeypatch, by_value):
    from iranker.sharding import command as ray_command

    marker = tmp_path / "died"
    common = ["--backend", "scripted", "--batch-size", "2"]
    assert rank(src, tmp_path / "one.jsonl", *common) == 0
    monkeypatch.setattr(
        ray_command, "build_backend", functools.partial(dying_backend, str(marker), "land5", False)
    )
    assert rank(src, tmp_path / "ray.jsonl", *common, "--ray") == 0
    assert marker.exists()  # the worker did die, while ranking the chunk holding q5
    assert (tmp_path / "ray.jsonl").read_bytes() == (
        tmp_path / "one.jsonl"
    ).read_bytes()  # nothing lost or doubled


def test_a_chunk_whose_worker_is_gone_goes_to_another_and_a_poison_chunk_stops_the_run(
    tmp_path, src, by_value
):
    import argparse

    from iranker.data.io import read_examples
    from iranker.llm import ScriptedLLM
    from iranker.rankers import IterativeRanker
    from iranker.sharding.command import rank_ranker, worker_options
    from iranker.sharding.workers import WorkerFailed, WorkerPool

    examples = read_examples(str(src))
    options = worker_options(
        argparse.Namespace(
            backend="scripted",
            model="last",
            batch_size=2,
            max_new_tokens=64,
            temperature=0.0,
            seed=0,
            method="iterative",
            fallback="closest",
            reask=1,
        ),
        threads=1,
    )
    reference = IterativeRanker(
        ScriptedLLM.eliminate_last(), batch_size=2, max_new_tokens=64, show_progress=False
    ).rank(examples)
    chunks = [examples[i : i + 2] for i in range(0, len(examples), 2)]
    make = functools.partial(rank_ranker, options)

    # no restarts: the worker that dies is gone for good and its chunk is ranked by the other one
    marker = tmp_path / "died-once"
    pool = WorkerPool(
        functools.partial(dying_backend, str(marker), "land3", False, options),
        workers=2,
        threads=1,
        max_restarts=0,
    )
    try:
        got = [r for ranked in pool.ranker(make, chunk_size=2).rank_chunks(chunks) for r in ranked.rankings]
    finally:
        pool.close()
    assert marker.exists()
    assert [r.to_dict() for r in got] == [r.to_dict() for r in reference]

    # an example that kills every worker that touches it: a clear error, not a hang
    pool = WorkerPool(
        functools.partial(dying_backend, str(tmp_path / "poison"), "land3", True, options),
        workers=2,
        threads=1,
        max_restarts=0,
    )
    try:
        with pytest.raises(WorkerFailed, match="Ray workers? died"):
            list(pool.ranker(make, chunk_size=2).rank_chunks(chunks))
    finally:
        pool.close()


# -- resume -------------------------------------------------------------------------------------
def test_a_cut_sharded_run_resumes_without_duplicates(tmp_path, src, monkeypatch, capsys):
    from iranker.sharding import command as ray_command

    common = ["--backend", "scripted", "--batch-size", "2"]
    assert rank(src, tmp_path / "one.jsonl", *common) == 0
    real_ranker = ray_command.RaySession.ranker

    def cut_after_two_chunks(self, make, *extra):
        sharded = real_ranker(self, make, *extra)

        class Cut:
            name = sharded.name

            def rank_chunks(self, chunks):
                for n, ranked in enumerate(sharded.rank_chunks(chunks)):
                    if n == 2:
                        raise KeyboardInterrupt  # the other chunks are still on the workers
                    yield ranked

        return Cut()

    out = tmp_path / "ray.jsonl"
    monkeypatch.setattr(ray_command.RaySession, "ranker", cut_after_two_chunks)
    assert rank(src, out, *common, "--ray") == 130
    assert not out.exists()
    assert ids(tmp_path / "ray.jsonl.partial") == ["q0", "q1", "q2", "q3"]

    monkeypatch.setattr(ray_command.RaySession, "ranker", real_ranker)
    capsys.readouterr()
    assert rank(src, out, *common, "--ray", "--resume") == 0
    assert "resuming: 4 of 9 already ranked" in capsys.readouterr().err
    assert out.read_bytes() == (tmp_path / "one.jsonl").read_bytes()


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--ray", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
        (["--ray", "not an address"], "is not host:port"),
        (["--ray", "--ray-workers", "0"], "--ray-workers must be >= 1"),
        (["--ray-workers", "2"], "--ray-workers only applies with --ray"),
    ],
)
def test_bad_ray_options_are_one_line_errors(tmp_path, src, capsys, flags, needle):
    rc = rank(src, tmp_path / "o.jsonl", "--backend", "scripted", *flags)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "o.jsonl.partial").exists()


def test_bad_address_from_the_shell_fails_fast(tmp_path, src):
    """A fresh process (no Ray running in it): one line and exit 2 in seconds, not Ray's minutes of retries."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "iranker.cli",
            "rank",
            "-i",
            str(src),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--backend",
            "scripted",
            "--ray",
            "127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("iranker: error: cannot reach the Ray cluster at 127.0.0.1:1")
    assert time.monotonic() - t0 < 60


def test_missing_ray_names_the_extra(tmp_path, src, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    assert rank(src, tmp_path / "o.jsonl", "--backend", "scripted", "--ray") == 2
    assert "pip install 'iranker[ray]'" in capsys.readouterr().err


def test_import_iranker_does_not_import_ray():
    code = (
        "import sys, iranker, iranker.cli.main; iranker.cli.main.build_parser(); "
        "import iranker.sharding.command, iranker.sharding.workers, iranker.sharding.cluster; "
        "print('ray' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# -- the real model -----------------------------------------------------------------------------
@pytest.mark.model
def test_sharded_rank_with_the_default_model_matches_one_process(tmp_path, capsys):
    """iranker-135m in its recorded mode (choice + KV eviction), one example per chunk."""
    common = ["--batch-size", "1", "--threads", "1"]
    rc = rank(EXAMPLE, tmp_path / "one.jsonl", *common)
    if rc != 0:
        pytest.skip(f"default model unavailable: {capsys.readouterr().err.strip()}")
    assert rank(EXAMPLE, tmp_path / "ray.jsonl", *common, "--ray") == 0
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    rows = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["iterative-choice-kv"] * 3
