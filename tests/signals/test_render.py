"""Signals in the prompt: ranks among the example's candidates, one format, fixed per example."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import passage_example, rec_example, route_example

from iranker.scenarios import TemplateError, get_scenario
from iranker.signals.render import signal_ranks, signals_text
from iranker.signals.schema import with_signals


def signed(ex, **signals):
    return with_signals(ex, {name: dict(zip(ex.candidate_ids, vals)) for name, vals in signals.items()})


def test_ranks_are_competition_ranks_highest_first():
    ex = signed(passage_example(), bm25=[0.5, 3.0, 0.5])
    assert signal_ranks(ex, "bm25") == {"d1": 2, "d2": 1, "d3": 2}
    assert signals_text(ex, ex.candidates[1]) == "bm25 1/3"


def test_one_format_in_fixed_order_for_every_scenario():
    for ex in (passage_example(), rec_example(), route_example()):
        n = len(ex.candidates)
        ex = signed(ex, zeta=list(range(n)), cooccur=list(range(n)), bm25=list(range(n, 0, -1)))
        prompt = get_scenario(ex.scenario).eliminate_prompt(ex, ex.candidate_ids)[1]["content"]
        assert f"(signals: bm25 1/{n}, co-occurrence {n}/{n}, zeta {n}/{n})" in prompt, prompt


def test_segments_never_change_during_elimination():
    ex = signed(rec_example(items=("C", "D", "E", "F")), bm25=[1, 4, 2, 3], cooccur=[0, 0, 5, 1])
    scenario = get_scenario("recommendation")
    full = dict(scenario.candidate_segments(ex, ex.candidate_ids))
    for pool in (["iD", "iF"], ["iC", "iE", "iF"], ["iF"]):
        assert dict(scenario.candidate_segments(ex, pool)) == {c: full[c] for c in pool}
    assert full["iD"] == "[2] D (signals: bm25 1/4, co-occurrence 3/4) [2]\n"  # closing label last


def test_no_signals_no_text_and_the_template_field_controls_it():
    ex = passage_example()
    plain = get_scenario("passage").eliminate_prompt(ex, ex.candidate_ids)[1]["content"]
    assert "signals" not in plain
    ex = signed(ex, bm25=[1, 2, 3])
    t = get_scenario("passage").template
    off = get_scenario("passage", dataclasses.replace(t, signals=""))
    assert off.eliminate_prompt(ex, ex.candidate_ids)[1]["content"] == plain
    own = get_scenario("passage", dataclasses.replace(t, signals="\n    evidence: {signals}"))
    assert (
        "[2] A flea can live up to a year; fleas live long.\n    evidence: bm25 2/3 [2]\n"
        in own.eliminate_prompt(ex, ex.candidate_ids)[1]["content"]
    )
    assert t.to_dict()["signals"] == " (signals: {signals})"  # recorded with a trained folder's templates
    with pytest.raises(TemplateError, match="no {signals} placeholder"):
        get_scenario("passage", dataclasses.replace(t, signals=" (signals)"))


def test_templates_recorded_before_signals_existed_still_load():
    from iranker.llm.models import resolve_model
    from iranker.run_info import trained_templates

    templates = trained_templates(resolve_model("iranker-135m").path)
    assert templates and all(t.signals == " (signals: {signals})" for t in templates.values())
