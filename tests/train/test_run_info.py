"""iranker.json: the templates a trained folder carries back to every ranker."""

from iranker.scenarios import get_scenario
from iranker.train.run_info import templates_from_info


def _t(scenario, **changes):
    return {**get_scenario(scenario).template.to_dict(), **changes}


def test_recorded_templates_round_trip():
    info = {"templates": {"routing": _t("routing", system="trained system")}}
    out = templates_from_info(info)
    assert set(out) == {"routing"} and out["routing"].system == "trained system"
    assert templates_from_info(None) == {} and templates_from_info({}) == {}


def test_a_shared_reply_prefix_carries_over_to_scenarios_the_model_was_not_trained_on():
    info = {"templates": {"routing": _t("routing", response_prefix="<think>"),
                          "recommendation": _t("recommendation", response_prefix="<think>")}}
    out = templates_from_info(info)
    assert set(out) == {"routing", "recommendation", "passage"}
    assert out["passage"].response_prefix == "<think>"
    assert out["passage"].system == get_scenario("passage").template.system  # otherwise the default


def test_mixed_prefixes_are_left_alone():
    info = {"templates": {"routing": _t("routing", response_prefix="<think>"),
                          "recommendation": _t("recommendation")}}
    assert set(templates_from_info(info)) == {"routing", "recommendation"}
