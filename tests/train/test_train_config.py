"""TrainConfig: defaults, YAML loading, validation, the auto settings and the CLI flags."""

from __future__ import annotations

import dataclasses

import pytest

from iranker.cli import main as cli
from iranker.rewards import RewardConfig
from iranker.train.config import PPO_MESSAGE, ConfigError, TrainConfig, load_config


def test_defaults_follow_the_measured_cpu_facts():
    c = TrainConfig()
    assert c.model == "smollm2-135m" and c.algorithm == "grpo" and c.lora is True
    assert c.beta == 0.0 and c.gradient_checkpointing is False
    assert c.use_cpu is None and c.bf16 is None and c.use_vllm is None  # auto
    assert isinstance(c.reward, RewardConfig)


def test_every_field_carries_help_text():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f"{f.name} has no help text"


def test_yaml_round_trip_and_nested_reward(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "dataset: steps\nmax_steps: 7\nnum_generations: 2\nper_device_train_batch_size: 4\n"
        "lora_target_modules: [q_proj, v_proj]\nreward: {format_weight: 0.5}\ntrl: {top_p: 0.9}\n"
    )
    c = TrainConfig.from_yaml(p)
    assert c.max_steps == 7 and c.lora_target_modules == ["q_proj", "v_proj"]
    assert c.reward.format_weight == 0.5 and c.reward.exclusion_weight == 1.0
    assert c.trl == {"top_p": 0.9}
    p2 = tmp_path / "c2.yaml"
    p2.write_text(c.to_yaml())
    assert TrainConfig.from_yaml(p2) == c


@pytest.mark.parametrize(
    "text, key",
    [
        ("max_step: 3\n", "max_step"),
        ("dataset: x\nlearning_rat: 0.1\n", "learning_rat"),
    ],
)
def test_unknown_yaml_key_is_an_error_naming_it(tmp_path, text, key):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=repr(key)):
        TrainConfig.from_yaml(p)


def test_unknown_reward_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="format_weigth"):
        TrainConfig.from_dict({"reward": {"format_weigth": 1.0}})


def test_ppo_points_to_verl():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"algorithm": "ppo"})
    assert "PPOTrainer" in str(err.value) and "export-verl" in str(err.value)
    assert "verl" in PPO_MESSAGE
    assert TrainConfig.from_dict({"algorithm": "RLOO"}).algorithm == "rloo"


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"num_generations": 1}, "num_generations"),
        ({"num_generations": 4, "per_device_train_batch_size": 6}, "multiple of num_generations"),
        ({"max_steps": 0}, "max_steps"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"beta": -0.1}, "beta"),
        ({"lora": "yes"}, "lora"),
        ({"threads": 0}, "threads"),
        ({"lora_target_modules": []}, "lora_target_modules"),
        ({"format_shaping_weight": -1}, "format_shaping_weight"),
        ({"lora_top_layers": 0}, "lora_top_layers"),
        ({"lora_top_layers": True}, "lora_top_layers"),
    ],
)
def test_invalid_values_are_rejected(changes, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict(changes)


def test_empty_yaml_and_non_mapping(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert TrainConfig.from_yaml(empty) == TrainConfig()
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        TrainConfig.from_yaml(bad)


def test_auto_settings_on_cpu_and_gpu():
    cpu = TrainConfig().resolved(cuda=False, vllm_installed=True)
    assert (cpu.use_cpu, cpu.bf16, cpu.use_vllm) == (True, False, False)
    gpu = TrainConfig().resolved(cuda=True, vllm_installed=False)
    assert gpu.use_cpu is False and gpu.use_vllm is False
    gpu_vllm = TrainConfig().resolved(cuda=True, vllm_installed=True)
    assert gpu_vllm.use_vllm is True
    explicit = TrainConfig(use_vllm=False, bf16=False).resolved(cuda=True, vllm_installed=True)
    assert explicit.use_vllm is False and explicit.bf16 is False
    with pytest.raises(ConfigError, match="use_vllm"):
        TrainConfig(use_vllm=True).resolved(cuda=False, vllm_installed=True)


def test_load_config_overrides_ignore_none(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("dataset: a\nmax_steps: 5\n")
    c = load_config(p, max_steps=9, seed=None)
    assert c.max_steps == 9 and c.seed == 0 and c.dataset == "a"


def test_cli_flags_override_yaml(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("dataset: steps\nmax_steps: 5\nreward: {format_weight: 0.5}\n")
    rc = cli.main(
        [
            "train",
            "--config",
            str(p),
            "--max-steps",
            "3",
            "--lora",
            "false",
            "--use-cpu",
            "auto",
            "--lora-target-modules",
            "q_proj,v_proj",
            "--invalid-penalty",
            "-1",
            "--trl",
            "top_p=0.9",
            "--print-config",
        ]
    )
    assert rc == 0
    import yaml

    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["max_steps"] == 3 and printed["lora"] is False and printed["use_cpu"] is None
    assert printed["lora_target_modules"] == ["q_proj", "v_proj"]
    assert printed["reward"]["format_weight"] == 0.5 and printed["reward"]["invalid_penalty"] == -1.0
    assert printed["trl"] == {"top_p": 0.9}


def test_cli_bad_yaml_key_is_one_error_line(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("dataset: steps\nmax_stepz: 5\n")
    assert cli.main(["train", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert "iranker: error:" in err and "'max_stepz'" in err and "Traceback" not in err


def test_cli_train_without_dataset(capsys):
    assert cli.main(["train", "--max-steps", "1"]) == 2
    assert "dataset" in capsys.readouterr().err


def test_trl_arguments_build_real_trl_configs(tmp_path):
    trl = pytest.importorskip("trl")
    from iranker.train.grpo_trainer import trl_arguments

    c = TrainConfig(
        dataset="x",
        output_dir=str(tmp_path / "o"),
        num_generations=2,
        per_device_train_batch_size=2,
        trl={"top_p": 0.9},
    ).resolved(cuda=False, vllm_installed=False)
    args = trl.GRPOConfig(**trl_arguments(c, trl.GRPOConfig))
    assert args.use_cpu is True and args.bf16 is False and args.use_vllm is False
    assert args.num_generations == 2 and args.beta == 0.0 and args.top_p == 0.9
    assert args.gradient_checkpointing is False and args.remove_unused_columns is False
    rloo = TrainConfig(**{**c.to_dict(), "algorithm": "rloo", "trl": {}})
    assert trl.RLOOConfig(**trl_arguments(rloo, trl.RLOOConfig)).num_generations == 2
    with pytest.raises(ConfigError, match="no_such_arg"):
        trl_arguments(TrainConfig(trl={"no_such_arg": 1}).resolved(cuda=False), trl.GRPOConfig)


def test_existing_run_needs_resume(tmp_path):
    pytest.importorskip("transformers")
    from iranker.train import train
    from iranker.train.common import TrainError

    out = tmp_path / "run"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "trainer_state.json").write_text("{}")
    with pytest.raises(TrainError, match="--resume"):
        train(TrainConfig(dataset="nowhere", output_dir=str(out)), quiet=True)


def test_drop_long_prompts_counts_tokens_of_the_chat_prompt():
    datasets = pytest.importorskip("datasets")
    from iranker.train.common import drop_long_prompts

    class WordTokenizer:  # one token per word of the rendered chat prompt
        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
            return " ".join(m["content"] for m in messages) + " <assistant>"

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": text.split()}

    ds = datasets.Dataset.from_list(
        [
            {"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "a b"}]},
            {"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "a b c d e f"}]},
        ]
    )
    kept, dropped = drop_long_prompts(ds, WordTokenizer(), 4)
    assert len(kept) == 1 and dropped == 1 and kept[0]["prompt"][1]["content"] == "a b"
    with pytest.raises(ConfigError, match="max_prompt_tokens"):
        TrainConfig(max_prompt_tokens=0).validate()


def test_response_prefix_prefills_every_prompt_and_is_recorded_in_the_templates():
    datasets = pytest.importorskip("datasets")
    from iranker.train.common import prompt_tokens, with_response_prefix

    rows = [
        {"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]},
        {
            "prompt": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "u"},
                {"role": "assistant", "content": "old"},
            ]
        },
    ]
    templates = {"passage": {"system": "s", "response_prefix": ""}}
    ds = with_response_prefix(datasets.Dataset.from_list(rows), templates, "<think>")
    assert [p[-1] for p in ds["prompt"]] == [{"role": "assistant", "content": "<think>"}] * 2
    assert [len(p) for p in ds["prompt"]] == [3, 3]  # an existing open reply is replaced, not stacked
    assert templates["passage"]["response_prefix"] == "<think>"

    class Tok:  # records the flags TRL's own rule would use
        def apply_chat_template(self, messages, tokenize=False, **flags):
            self.flags = flags
            return " ".join(m["content"] for m in messages)

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": text.split()}

    tok = Tok()
    assert prompt_tokens(tok, ds["prompt"][0]) == 3
    assert tok.flags == {"add_generation_prompt": False, "continue_final_message": True}
    prompt_tokens(tok, rows[0]["prompt"])
    assert tok.flags == {"add_generation_prompt": True}
    with pytest.raises(ConfigError, match="response_prefix"):
        TrainConfig(response_prefix=1).validate()


def test_the_shipped_example_config_is_valid():
    from pathlib import Path

    from iranker.train import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "train_grpo_cpu.yaml")
    cfg.validate()
    assert cfg.response_prefix == "<think>" and cfg.lora and cfg.algorithm == "grpo"


def test_choice_settings_are_validated_and_do_not_need_generation_groups():
    from iranker.train.config import ConfigError, TrainConfig

    cfg = TrainConfig.from_dict(
        {
            "algorithm": "choice",
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 3,
            "num_generations": 4,
        }
    )
    assert cfg.algorithm == "choice" and cfg.objective == "exclusion"
    for bad, match in (
        ({"objective": "ppo"}, "objective must be one of"),
        ({"eval_rows": 0}, "eval_rows"),
        ({"eval_steps": -1}, "eval_steps"),
        ({"dtype": "int8"}, "dtype must be"),
    ):
        with pytest.raises(ConfigError, match=match):
            TrainConfig.from_dict({"algorithm": "choice", **bad})
    # GRPO still needs whole groups
    with pytest.raises(ConfigError, match="multiple of num_generations"):
        TrainConfig.from_dict({"algorithm": "grpo", "per_device_train_batch_size": 3, "num_generations": 2})


def test_the_shipped_choice_config_is_valid():
    from pathlib import Path

    from iranker.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(Path(__file__).resolve().parents[2] / "examples" / "train_choice_cpu.yaml")
    assert cfg.algorithm == "choice"


def test_vllm_mode_is_explicit_colocate_on_one_gpu_and_server_on_several():
    one = TrainConfig().resolved(cuda=True, vllm_installed=True, gpus=1)
    assert (one.use_vllm, one.vllm_mode) == (True, "colocate")
    many = TrainConfig().resolved(cuda=True, vllm_installed=True, gpus=8)
    assert (many.use_vllm, many.vllm_mode) == (True, "server")
    chosen = TrainConfig(vllm_mode="colocate").resolved(cuda=True, vllm_installed=True, gpus=8)
    assert chosen.vllm_mode == "colocate"
    assert TrainConfig().resolved(cuda=False, vllm_installed=True).vllm_mode is None
    with pytest.raises(ConfigError, match="vllm_mode must be one of colocate, server"):
        TrainConfig(vllm_mode="remote").validate()
    with pytest.raises(ConfigError, match="needs use_vllm"):
        TrainConfig(vllm_mode="server").resolved(cuda=False, vllm_installed=False)
    with pytest.raises(ConfigError, match="only applies with vllm_mode: server"):
        TrainConfig(vllm_mode="colocate", vllm_server_base_url="http://h:8000").validate()


def test_trl_arguments_carry_vllm_mode_into_real_trl_configs(tmp_path):
    trl = pytest.importorskip("trl")
    from iranker.train.grpo_trainer import trl_arguments

    base = dict(dataset="x", output_dir=str(tmp_path / "o"), num_generations=2, per_device_train_batch_size=2)
    server = TrainConfig(**base, vllm_server_base_url="http://10.0.0.2:8000").resolved(
        cuda=True, vllm_installed=True, gpus=4
    )
    args = trl_arguments(server, trl.GRPOConfig)
    assert (args["use_vllm"], args["vllm_mode"], args["vllm_server_base_url"]) == (
        True,
        "server",
        "http://10.0.0.2:8000",
    )
    colocate = trl_arguments(
        TrainConfig(**base).resolved(cuda=True, vllm_installed=True, gpus=1), trl.RLOOConfig
    )
    assert (colocate["use_vllm"], colocate["vllm_mode"]) == (
        True,
        "colocate",
    ) and "vllm_server_base_url" not in colocate
    cpu = trl_arguments(TrainConfig(**base).resolved(cuda=False, vllm_installed=False), trl.GRPOConfig)
    assert cpu["use_vllm"] is False and "vllm_mode" not in cpu
    for name in ("vllm_mode", "vllm_server_base_url"):  # the names are TRL's own
        assert name in {f.name for f in __import__("dataclasses").fields(trl.GRPOConfig)}


def test_an_iranker_setting_the_installed_trl_lacks_is_an_error_not_a_silent_drop(tmp_path):
    trl = pytest.importorskip("trl")
    import dataclasses

    from iranker.train.grpo_trainer import trl_arguments

    # a TRL release whose config has no `log_completions`
    OldGRPOConfig = dataclasses.make_dataclass(
        "OldGRPOConfig",
        [
            (f.name, object, dataclasses.field(default=None))
            for f in dataclasses.fields(trl.GRPOConfig)
            if f.name != "log_completions"
        ],
    )
    c = TrainConfig(dataset="x", output_dir=str(tmp_path / "o")).resolved(cuda=False, vllm_installed=False)
    with pytest.raises(ConfigError, match=r"has no OldGRPOConfig argument\(s\) \['log_completions'\]"):
        trl_arguments(c, OldGRPOConfig)


def test_yaml_float_without_a_dot_is_a_number(tmp_path):
    # PyYAML (YAML 1.1) reads 5e-4 as the string '5e-4'; a config must take it as TRL's do
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 5e-4\nbeta: 1E-2\nlora_dropout: 0\n", encoding="utf-8")
    cfg = TrainConfig.from_yaml(path)
    assert cfg.learning_rate == 0.0005 and cfg.beta == 0.01
    path.write_text("learning_rate: fast\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="learning_rate must be a positive number"):
        TrainConfig.from_yaml(path)
