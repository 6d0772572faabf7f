"""iranker.json: the templates a trained folder carries back to every ranker."""

from iranker.run_info import templates_from_info
from iranker.scenarios import get_scenario


def _t(scenario, **changes):
    return {**get_scenario(scenario).template.to_dict(), **changes}


def test_recorded_templates_round_trip():
    info = {"templates": {"routing": _t("routing", system="trained system")}}
    out = templates_from_info(info)
    assert set(out) == {"routing"} and out["routing"].system == "trained system"
    assert templates_from_info(None) == {} and templates_from_info({}) == {}


def test_a_shared_reply_prefix_carries_over_to_scenarios_the_model_was_not_trained_on():
    info = {
        "templates": {
            "routing": _t("routing", response_prefix="<think>"),
            "recommendation": _t("recommendation", response_prefix="<think>"),
        }
    }
    out = templates_from_info(info)
    assert set(out) == {"routing", "recommendation", "passage"}
    assert out["passage"].response_prefix == "<think>"
    assert out["passage"].system == get_scenario("passage").template.system  # otherwise the default


def test_mixed_prefixes_are_left_alone():
    info = {
        "templates": {
            "routing": _t("routing", response_prefix="<think>"),
            "recommendation": _t("recommendation"),
        }
    }
    assert set(templates_from_info(info)) == {"routing", "recommendation"}


def test_a_model_recorded_without_closing_labels_keeps_them_off_its_zero_shot_scenarios():
    """iranker-135m was trained before segment_end existed: its passage prompts (zero-shot, not
    recorded) must stay as they were, not take the new default's closing label."""
    old = {k: v for k, v in _t("routing").items() if k != "segment_end"}
    rec = {k: v for k, v in _t("recommendation").items() if k != "segment_end"}
    out = templates_from_info({"templates": {"routing": old, "recommendation": rec}})
    assert get_scenario("passage").template.segment_end == " {label}"  # the default has one
    assert out["passage"].segment_end == "" and out["routing"].segment_end == ""
    # a model trained with closing labels needs no copy of the default
    assert set(templates_from_info({"templates": {"routing": _t("routing")}})) == {"routing"}


def test_the_shipped_default_ranks_passages_without_a_closing_label():
    from importlib.resources import files

    from iranker.llm.models import TRAINED_RESOURCE
    from iranker.run_info import trained_templates

    out = trained_templates(files("iranker.resources").joinpath(TRAINED_RESOURCE))
    assert out["passage"].segment_end == ""


def test_recorded_ranking_mode_is_read_and_checked():
    import pytest

    from iranker.run_info import ranking_from_info

    assert ranking_from_info({"ranking": {"decode": "choice", "reuse": "kv"}}) == {
        "decode": "choice",
        "reuse": "kv",
    }
    assert ranking_from_info({}) == {} and ranking_from_info(None) == {}
    with pytest.raises(ValueError, match="unknown ranking setting 'decoder'"):
        ranking_from_info({"ranking": {"decoder": "choice"}})
    with pytest.raises(ValueError, match="decode must be one of"):
        ranking_from_info({"ranking": {"decode": "beam"}})


def test_package_model_keeps_only_what_ranks_and_halves_the_weights(tmp_path):
    import json

    import pytest

    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    from iranker.run_info import read_run_info, write_run_info
    from iranker.train.package import package_model

    run = tmp_path / "checkpoint-9"
    run.mkdir()
    save_file({"w": torch.ones(4, 4)}, str(run / "adapter_model.safetensors"))
    (run / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/tmp/cache/x", "r": 4}))
    (run / "optimizer.pt").write_bytes(b"x" * 100)
    write_run_info(
        run,
        {
            "format": "iranker-run/1",
            "base_model": "smollm2-135m",
            "ranking": {"decode": "choice", "reuse": "kv"},
            "dataset": {"path": "/tmp/steps"},
        },
    )
    out = package_model(run, tmp_path / "pkg", note="test")
    assert sorted(f.name for f in out.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "iranker.json",
    ]
    assert load_file(str(out / "adapter_model.safetensors"))["w"].dtype == torch.float16
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2-135m"
    info = read_run_info(out)
    assert info["ranking"]["decode"] == "choice" and info["packaged"]["weights_dtype"] == "float16"
    assert "path" not in info["dataset"]
    with pytest.raises(ValueError, match="not a trained LoRA folder"):
        package_model(tmp_path / "pkg-missing", tmp_path / "x")
