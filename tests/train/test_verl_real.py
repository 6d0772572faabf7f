"""`iranker export-verl` checked by verl's OWN code (verl 0.9.1), in its own environment.

verl pins transformers<5.11, so it lives in a separate venv, ``.venv-verl`` (``make
install-verl``; ``make test`` builds it). Every check here runs verl in that venv through a
subprocess, on an export our code made from the project's embedded demo data, with the embedded
SmolLM2-135M (its dense folder: config, weights and tokenizer) as the model:

* Hydra composes verl's ``ppo_trainer.yaml`` with every override ``run_verl.sh`` passes: the
  script itself is run with Hydra's ``--cfg all`` (so bash expands it exactly as on a cluster),
  and the overrides Hydra records are compared with the ones parsed from the script text, then
  each value is looked up in the composed config. A misspelt key must make Hydra fail.
* verl's RL dataset (``RLHFDataset`` via ``create_rl_dataset``) loads our train.parquet, keeps
  every row under the exported ``max_prompt_length``, drops exactly the rows our own token count
  says are too long under a smaller limit, and its rollout tokenizer (Continuous Token builder)
  gives the same prompt tokens as our ``prompt_tokens``.
* verl's reward loading (``load_reward_manager`` -> ``get_custom_reward_fn`` -> the naive
  reward manager, which decodes response token ids) imports our ``iranker_reward.py`` by path and
  scores well-formed and malformed responses exactly like ``iranker.rewards`` here.
* ``run_verl.sh`` runs ``verl.trainer.main_ppo`` through config validation, Ray start-up, the
  TaskRunner, TransferQueue, tokenizer and both datasets, up to verl's GPU resource check
  (``ResourcePoolManager._check_resource_available``), the first point that needs a GPU.

Skips when .venv-verl is absent on a developer machine; under CI (``CI=true``) that FAILS.
The verl env never gets iranker installed: the reward module finds iranker's reward code
through the source folder it was exported from (its documented fallback).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from iranker.cli import main as cli

pq = pytest.importorskip("pyarrow.parquet")
yaml = pytest.importorskip("yaml")

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
VERL_VENV = Path(os.environ.get("IRANKER_VERL_VENV", ROOT / ".venv-verl"))
#: verl's message at the first point of main_ppo that needs a GPU
GPU_POINT = "Total available GPUs 0 is less than total desired GPUs 1"
#: Settings appended for this CPU run only (not in run_verl.sh): verl's TransferQueue starts 8
#: storage actors of 1 CPU each by default, more than a 2-core machine offers (Ray would wait
#: forever); the dashboard is not needed.
CPU_ONLY_OVERRIDES = (
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
    "+ray_kwargs.ray_init.include_dashboard=False",
)
#: Ray's message when its node did not come up in time (machine overload, not our export)
RAY_STARTUP_TIMEOUT = "The current node timed out during startup"
#: generous: on the shared 2-core machine a Ray start-up alone took minutes under load
MAIN_PPO_TIMEOUT = 1800


@pytest.fixture(scope="module")
def verl_python() -> Path:
    python = VERL_VENV / "bin" / "python"
    if not (python.is_file() and (VERL_VENV / ".verl-installed").is_file()):
        reason = f"{VERL_VENV} is missing: run `make install-verl` (verl 0.9.1 in its own venv)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " - CI must build it (`make test` does)")
        pytest.skip(reason)
    return python


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """The embedded SmolLM2-135M as a Hugging Face folder (what verl loads: config + tokenizer)."""
    from iranker.llm.base import MissingExtraError
    from iranker.llm.models import EmbeddedModelMissingError, dense_model_dir, embedded_gguf_path

    try:
        return dense_model_dir(embedded_gguf_path())
    except (EmbeddedModelMissingError, MissingExtraError) as exc:
        if os.environ.get("CI") == "true":  # `make test` installs it: CI must run these tests
            pytest.fail(f"embedded model unavailable: {exc}")
        pytest.skip(f"embedded model unavailable: {exc}")


@pytest.fixture(scope="module")
def export(tmp_path_factory, model_dir) -> Path:
    """An export of the embedded demo data (passage + routing): 3+3 examples train, 2+2 test."""
    resources = ROOT / "src" / "iranker" / "resources"
    lines = {
        name: (resources / f"demo_{name}.jsonl").read_text(encoding="utf-8").splitlines()
        for name in ("passage", "routing")
    }
    work = tmp_path_factory.mktemp("verl-real")
    train, test = work / "train.jsonl", work / "test.jsonl"
    train.write_text("".join(ls[i] + "\n" for ls in lines.values() for i in range(3)), encoding="utf-8")
    test.write_text("".join(ls[i] + "\n" for ls in lines.values() for i in range(3, 5)), encoding="utf-8")
    out = work / "export"
    assert (
        cli.main(
            [
                "export-verl",
                "--input",
                str(train),
                "--test-input",
                str(test),
                "--out",
                str(out),
                "--model",
                str(model_dir),
                "--seed",
                "3",
            ]
        )
        == 0
    )
    return out


# -- running verl's environment ---------------------------------------------------------------
def verl_env(**extra: str) -> dict[str, str]:
    """The environment of a process in .venv-verl: its bin first, offline, one thread, no iranker."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(
        {
            "PATH": f"{VERL_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TORCH_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "RAY_USAGE_STATS_ENABLED": "0",
            "WANDB_MODE": "disabled",
            # Ray waits 10 s for its raylet by default; far too short on a loaded 2-core machine
            "RAY_raylet_start_wait_time_s": "900",
        }
    )
    env.update(extra)
    return env


def _session_pids(sid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid:  # fields after "pid (comm)": state ppid pgrp session ...
            pids.append(int(stat.parent.name))
    return pids


def run_verl(
    args: list[str], *, cwd: Path, timeout: float, until: str | None = None, **env: str
) -> tuple[int | None, str, str]:
    """Run ``args`` in .venv-verl in a new session; return (exit code or None, stdout, stderr).

    With ``until``, stop as soon as that text is printed (after the GPU error, main_ppo's driver
    was seen still running 45 s later while Ray wound down). Every process of the session (Ray's raylet, GCS and actors included) is
    killed afterwards, by pid: they are this test's own processes.
    """
    logs = Path(tempfile.mkdtemp(prefix="verl-run-"))
    out_path, err_path = logs / "stdout", logs / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            ["nice", "-n", "15", *args],
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=verl_env(**env),
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if until and until in err_path.read_text(errors="replace") + out_path.read_text(errors="replace"):
                time.sleep(2)  # let the traceback finish printing
                break
            time.sleep(1)
    finally:
        for pid in _session_pids(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code = proc.wait()
    text = (out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))
    shutil.rmtree(logs, ignore_errors=True)
    return (code if code >= 0 else None), *text


def run_verl_python(code: str, payload: Any, *, cwd: Path, timeout: float = 900) -> Any:
    """Run ``code`` with .venv-verl's python; it reads ``payload`` (JSON) from argv[1] and writes
    its result as JSON to argv[2]."""
    work = Path(tempfile.mkdtemp(prefix="verl-py-"))
    try:
        (work / "in.json").write_text(json.dumps(payload), encoding="utf-8")
        (work / "check.py").write_text(textwrap.dedent(code), encoding="utf-8")
        rc, out, err = run_verl(
            ["python", str(work / "check.py"), str(work / "in.json"), str(work / "out.json")],
            cwd=cwd,
            timeout=timeout,
        )
        assert rc == 0, f"verl check failed (rc={rc}):\n{out[-3000:]}\n{err[-5000:]}"
        return json.loads((work / "out.json").read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- the script's overrides -------------------------------------------------------------------------
OVERRIDE = re.compile(r"^\s+([a-z_]+(?:\.[a-z_]+)+)=", re.M)


def script_override_keys(text: str, algorithm: str) -> list[str]:
    """The override keys ``run_verl.sh`` passes for ``algorithm``, in order, parsed from its text:
    the main_ppo call's own lines, then the ``ALGO_ARGS`` of that algorithm's branch."""
    call = text.split("python3 -m verl.trainer.main_ppo", 1)[1].split('"${ALGO_ARGS[@]}"', 1)[0]
    branch = re.search(rf'\[ "\$ADV_ESTIMATOR" = "{algorithm}" \]; then\n(.*?)\n  \)', text, re.S)
    assert branch, f"no {algorithm} branch in run_verl.sh"
    return OVERRIDE.findall(call) + OVERRIDE.findall(branch.group(1).split("ALGO_ARGS=(", 1)[1])


def lookup(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{dotted} is not in the composed config"
        node = node[part]
    return node


def as_value(text: str) -> Any:
    """A Hydra override value as Python (YAML, plus floats like 1e-06 that YAML 1.1 reads as text)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


_composed: dict[tuple[str, str], tuple[dict, list[str]]] = {}


def composed(export: Path, algorithm: str) -> tuple[dict, list[str]]:
    """(verl's composed job config, the overrides Hydra recorded) for ``bash run_verl.sh --cfg all``."""
    key = (str(export), algorithm)
    if key not in _composed:
        rc, out, err = run_verl(
            ["bash", str(export / "run_verl.sh"), "--cfg", "all"],
            cwd=export,
            timeout=900,
            ADV_ESTIMATOR=algorithm,
        )
        assert rc == 0, f"hydra could not compose run_verl.sh ({algorithm}):\n{err[-5000:]}"
        config = yaml.safe_load(out)
        _composed[key] = (
            {k: v for k, v in config.items() if k != "hydra"},
            config["hydra"]["overrides"]["task"],
        )
    return _composed[key]


@pytest.mark.parametrize("algorithm", ["gae", "grpo"])
def test_hydra_composes_every_override_of_run_verl_sh(verl_python, export, algorithm):
    text = (export / "run_verl.sh").read_text()
    config, overrides = composed(export, algorithm)
    keys = script_override_keys(text, algorithm)
    assert len(keys) >= 40 and len(set(keys)) == len(keys)
    # Hydra saw exactly the script's overrides, in the script's order (nothing lost by bash)
    assert [o.split("=", 1)[0] for o in overrides] == keys
    for override in overrides:
        key, raw = override.split("=", 1)
        got, want = lookup(config, key), as_value(raw)
        if isinstance(want, float) and not isinstance(want, bool):
            assert float(got) == pytest.approx(want), key
        else:
            assert got == want, key
    assert config["algorithm"]["adv_estimator"] == algorithm
    assert config["data"]["train_files"] == str(export / "train.parquet")
    assert config["reward"]["custom_reward_function"] == {
        **config["reward"]["custom_reward_function"],
        "path": str(export / "iranker_reward.py"),
        "name": "compute_score",
    }
    assert config["actor_rollout_ref"]["actor"]["use_kl_loss"] is (algorithm == "grpo")
    assert config["actor_rollout_ref"]["rollout"]["n"] == (1 if algorithm == "gae" else 4)


@pytest.mark.parametrize(
    "right, wrong",
    [
        ("data.max_prompt_length=", "data.max_prompt_lenght="),  # a typo in the main call
        (
            "actor_rollout_ref.actor.kl_loss_type=",
            "actor_rollout_ref.kl_loss_type=",
        ),  # wrong level, grpo branch
    ],
)
def test_a_wrong_key_in_the_overrides_fails_hydra(verl_python, export, right, wrong):
    text = (export / "run_verl.sh").read_text()
    assert text.count(right) == 1
    broken = export / "run_verl_broken.sh"
    broken.write_text(text.replace(right, wrong), encoding="utf-8")
    try:
        rc, _, err = run_verl(
            ["bash", str(broken), "--cfg", "job"], cwd=export, timeout=900, ADV_ESTIMATOR="grpo"
        )
    finally:
        broken.unlink()
    wrong_key = wrong.rstrip("=")
    assert rc not in (0, None), err[-3000:]
    assert f"Could not override '{wrong_key}'" in err and "is not in struct" in err, err[-3000:]


DATASET_CHECK = """
import json, sys
from omegaconf import OmegaConf
from verl.trainer.ppo.utils import create_rl_dataset
from verl.utils.config import omega_conf_to_dataclass
from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

payload = json.load(open(sys.argv[1]))
config = OmegaConf.create(payload["config"])
model = omega_conf_to_dataclass(config.actor_rollout_ref.model)   # as verl's trainer does
tokenizer, processor = model.tokenizer, model.processor
builder = create_continuous_token_builder(tokenizer, hf_model_type=model.hf_config.model_type,
                                          chat_template_kwargs=dict(config.data.get("apply_chat_template_kwargs", {})))
result = {}
for split, files in (("train", config.data.train_files), ("test", config.data.val_files)):
    dataset = create_rl_dataset(files, config.data, tokenizer, processor, is_train=split == "train")
    items = [dataset[i] for i in range(len(dataset))]
    result[split] = {
        "class": type(dataset).__name__,
        "prompts": [item["raw_prompt"] for item in items],
        "prompt_ids": [builder.build_initial_tokens(item["raw_prompt"]) for item in items],
        "ground_truth": [item["reward_model"]["ground_truth"] for item in items],
        "index": [int(item["index"]) for item in items],
    }
config.data.max_prompt_length = payload["smaller_limit"]
result["kept_under_smaller_limit"] = len(create_rl_dataset(config.data.train_files, config.data, tokenizer, processor))
json.dump(result, open(sys.argv[2], "w"))
"""


def test_verl_rl_dataset_loads_the_export_with_our_token_lengths(verl_python, export, model_dir):
    from transformers import AutoTokenizer

    from iranker.train.common import prompt_tokens

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    config, _ = composed(export, "gae")
    rows = {s: pq.read_table(export / f"{s}.parquet").to_pylist() for s in ("train", "test")}
    ours = {s: [prompt_tokens(tokenizer, r["prompt"]) for r in rows[s]] for s in rows}
    train_lengths = sorted(ours["train"])
    smaller = train_lengths[len(train_lengths) // 2]  # a limit some prompts exceed
    assert train_lengths[0] <= smaller < train_lengths[-1]

    got = run_verl_python(DATASET_CHECK, {"config": config, "smaller_limit": smaller}, cwd=export)

    assert config["data"]["max_prompt_length"] >= max(ours["train"] + ours["test"])
    for split in ("train", "test"):
        assert got[split]["class"] == "RLHFDataset"
        # nothing dropped under the exported max_prompt_length, rows in order, messages unchanged
        assert got[split]["index"] == list(range(len(rows[split])))
        assert got[split]["prompts"] == [r["prompt"] for r in rows[split]]
        assert got[split]["ground_truth"] == [r["reward_model"]["ground_truth"] for r in rows[split]]
        # the prompt tokens verl's rollout sends to the engine are the ones we count
        assert [len(ids) for ids in got[split]["prompt_ids"]] == ours[split]
        expected_ids = [
            tokenizer(
                tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True),
                add_special_tokens=False,
            )["input_ids"]
            for r in rows[split]
        ]
        assert got[split]["prompt_ids"] == expected_ids
    # verl's overlong filter drops exactly the prompts our count puts over the limit
    assert got["kept_under_smaller_limit"] == sum(n <= smaller for n in ours["train"])


REWARD_CHECK = """
import json, sys
import numpy as np
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.reward import load_reward_manager
from verl.utils.config import omega_conf_to_dataclass

payload = json.load(open(sys.argv[1]))
config = OmegaConf.create(payload["config"])
tokenizer = omega_conf_to_dataclass(config.actor_rollout_ref.model).tokenizer
manager = load_reward_manager(config, tokenizer)   # imports reward.custom_reward_function.path by path
pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
width = max(len(tokenizer.encode(c["response"], add_special_tokens=False)) for c in payload["cases"]) + 1
scores = []
for case in payload["cases"]:
    prompt = tokenizer.apply_chat_template(case["prompt"], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    # a rollout's response: its tokens, then EOS, right-padded (the mask marks the real ones)
    response_ids = tokenizer.encode(case["response"], add_special_tokens=False) + [tokenizer.eos_token_id]
    mask = [1] * len(prompt_ids) + [1] * len(response_ids) + [0] * (width - len(response_ids))
    response_ids = response_ids + [pad] * (width - len(response_ids))
    data = DataProto.from_dict(
        tensors={"prompts": torch.tensor([prompt_ids]), "responses": torch.tensor([response_ids]),
                 "attention_mask": torch.tensor([mask])},
        non_tensors={"data_source": np.array([case["data_source"]], dtype=object),
                     "reward_model": np.array([{"style": "rule", "ground_truth": case["ground_truth"]}], dtype=object),
                     "extra_info": np.array([dict(case["extra_info"])], dtype=object)},
    )
    result = manager.loop.run_until_complete(manager.run_single(data))
    scores.append(result["reward_score"])
json.dump({"manager": type(manager).__name__, "scores": scores}, open(sys.argv[2], "w"))
"""


def reward_cases(rows: list[dict]) -> list[dict]:
    """Well-formed and malformed responses for each row (the reward's whole range)."""
    cases = []
    for r in rows:
        truth = json.loads(r["reward_model"]["ground_truth"])
        worst = next(c for c in truth["pool"] if c["id"] not in truth["best"])
        best = next(c for c in truth["pool"] if c["id"] in truth["best"])
        for response in (
            f"<think>{worst['text'][:40]} is the least relevant.</think><answer>{worst['label']}</answer>",
            f"<think>Removing one.</think><answer>{best['label']}</answer>",  # removes a relevant one
            f"<think>hmm</think><answer>[{worst['label']}]</answer>",  # bracketed label
            f"<answer>{worst['label']}</answer>",  # no think block
            "<think>I would remove the last one</think>",  # no answer
            "<think>x</think><answer>Z9</answer>",  # not a candidate
            "no idea",
            "",
            "<think>Ünïcödé → ok</think><answer>" + worst["label"] + "</answer> trailing",
        ):
            cases.append(
                {
                    "prompt": r["prompt"],
                    "response": response,
                    "data_source": r["data_source"],
                    "ground_truth": r["reward_model"]["ground_truth"],
                    "extra_info": r["extra_info"],
                }
            )
    return cases


def test_verl_reward_loader_scores_like_iranker_rewards(verl_python, export):
    from iranker.rewards import compute_score

    config, _ = composed(export, "gae")
    rows = pq.read_table(export / "train.parquet").to_pylist()
    test_rows = pq.read_table(export / "test.parquet").to_pylist()
    # the first passage and routing row of each split
    picked = [
        next(r for r in split if r["extra_info"]["scenario"] == scenario)
        for split in (rows, test_rows)
        for scenario in ("passage", "routing")
    ]
    cases = reward_cases(picked)
    expected = [
        compute_score(c["data_source"], c["response"], c["ground_truth"], dict(c["extra_info"]))
        for c in cases
    ]
    assert len(set(expected)) >= 3  # the cases span the reward's range, not one value

    got = run_verl_python(REWARD_CHECK, {"config": config, "cases": cases}, cwd=export)

    assert got["manager"] == "NaiveRewardManager"
    assert got["scores"] == pytest.approx(expected, abs=1e-9)


def test_run_verl_sh_runs_main_ppo_up_to_the_gpu_check(verl_python, export):
    rows = {s: pq.read_table(export / f"{s}.parquet").num_rows for s in ("train", "test")}
    for _ in range(2):
        ray_tmp = tempfile.mkdtemp(prefix="rv", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        try:
            rc, out, err = run_verl(
                ["bash", str(export / "run_verl.sh"), *CPU_ONLY_OVERRIDES],
                cwd=export,
                timeout=MAIN_PPO_TIMEOUT,
                until=GPU_POINT,
                RAY_TMPDIR=ray_tmp,
            )
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)
        # Ray's own start-up can time out on an overloaded machine (nothing to do with the export):
        # one more try, then the assertions below report whatever happened
        if RAY_STARTUP_TIMEOUT not in err:
            break
    both = out + err
    assert GPU_POINT in err, f"main_ppo did not reach the GPU check (rc={rc}):\n{out[-3000:]}\n{err[-6000:]}"
    assert "the reward needs iranker" not in both  # the script's reward pre-check passed
    # the TaskRunner got past validation, Ray, TransferQueue, the tokenizer and both datasets...
    assert "TaskRunnerV1" in both
    assert re.findall(r"filter dataset len: (\d+)", out) == [str(rows["train"]), str(rows["test"])]
    # ...and stopped where verl asks Ray for GPUs, nowhere else
    tail = err[err.rfind("Traceback") :]
    assert "create_resource_pool" in tail and "_check_resource_available" in tail, tail[-3000:]
