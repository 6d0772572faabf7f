import pytest

from iranker.scenarios import PromptTemplate, get_scenario, objective_weight
from iranker.types import Candidate, RankingExample


def rec_example():
    return RankingExample(
        id="u1",
        scenario="recommendation",
        query="",
        candidates=[
            Candidate("i1", "Heat (1995)"),
            Candidate("i2", "Toy Story (1995)"),
            Candidate("i3", "Fargo (1996)"),
        ],
        relevance={"i2": 1},
        meta={"history": ["Aladdin (1992)", "The Lion King (1994)"], "domain": "movie"},
    )


def routing_example(**meta):
    return RankingExample(
        id="r1",
        scenario="routing",
        query="Prove that sqrt(2) is irrational.",
        candidates=[
            Candidate(
                "small", "A fast 8B model.", {"name": "small", "input_price": 0.2, "output_price": 0.2}
            ),
            Candidate("big", "A strong 70B model.", {"name": "big", "input_price": 0.9, "output_price": 1.2}),
        ],
        meta=meta,
    )


def test_recommendation_prompt_shows_history_in_order_and_labels():
    sc = get_scenario("recommendation")
    msgs = sc.eliminate_prompt(rec_example(), ["i1", "i2", "i3"])
    assert (
        msgs[0]["role"] == "system" and "<think>" in msgs[0]["content"] and "<answer>" in msgs[0]["content"]
    )
    user = msgs[1]["content"]
    assert user.index("Aladdin") < user.index("The Lion King")
    assert "[1] Heat (1995)" in user and "[3] Fargo (1996)" in user
    assert "LEAST likely" in user


def test_routing_prompt_names_objective_prices_and_models():
    sc = get_scenario("routing")
    user = sc.eliminate_prompt(routing_example(objective="cost"), ["small", "big"])[1]["content"]
    assert "Objective: a low price" in user
    assert "[1] small: A fast 8B model. Price: $0.2 per million tokens." in user
    assert "$0.9 input / $1.2 output" in user
    user = sc.direct_prompt(routing_example(weight=0.3))[1]["content"]
    assert "weight 0.3 on answer quality" in user


def test_routing_objective_validation():
    assert objective_weight({"objective": "balance"}) == 0.5
    with pytest.raises(ValueError, match="routing objective must be one of"):
        objective_weight({"objective": "speed"})
    with pytest.raises(ValueError):
        objective_weight({"weight": 2})


def test_elimination_prompts_differ_only_by_removed_segment():
    """The layout contract that prompt reuse (KV eviction, prefix caching) relies on."""
    sc = get_scenario("passage")
    ex = RankingExample("p", "passage", "q?", [Candidate(str(i), f"passage number {i}") for i in range(5)])
    full = sc.eliminate_prompt(ex, [str(i) for i in range(5)])[1]["content"]
    fewer = sc.eliminate_prompt(ex, ["0", "1", "3", "4"])[1]["content"]
    segment = sc.render_candidate(ex, ex.candidates[2], "[3]")
    assert full.replace(segment, "", 1) == fewer
    assert "[4] passage number 3" in fewer  # labels are not renumbered


def test_unknown_scenario():
    with pytest.raises(ValueError, match="unknown scenario 'music'"):
        get_scenario("music")


def test_templates_are_data():
    sc = get_scenario("passage")
    d = sc.template.to_dict()
    custom = PromptTemplate.from_dict({**d, "eliminate_question": "Worst one?"})
    user = get_scenario("passage", custom).eliminate_prompt(
        RankingExample("p", "passage", "q", [Candidate("a", "x"), Candidate("b", "y")]), ["a", "b"]
    )[1]["content"]
    assert user.endswith("Worst one?")
    with pytest.raises(ValueError):
        PromptTemplate.from_dict({**d, "bogus": 1})


def test_response_prefix_opens_the_reply_and_round_trips():
    from iranker.scenarios import response_prefill

    plain = get_scenario("recommendation")
    assert [m["role"] for m in plain.eliminate_prompt(rec_example(), ["i1", "i2"])] == ["system", "user"]
    assert response_prefill(plain.eliminate_prompt(rec_example(), ["i1", "i2"])) == ""
    t = PromptTemplate.from_dict({**plain.template.to_dict(), "response_prefix": "<think>"})
    sc = get_scenario("recommendation", t)
    pairs = [
        (
            sc.eliminate_prompt(rec_example(), ["i1", "i2"]),
            plain.eliminate_prompt(rec_example(), ["i1", "i2"]),
        ),
        (sc.direct_prompt(rec_example()), plain.direct_prompt(rec_example())),
    ]
    for msgs, without in pairs:
        assert msgs[-1] == {"role": "assistant", "content": "<think>"}
        assert response_prefill(msgs) == "<think>"
        # system and user messages (the KV layout header | segments | question) are unchanged
        assert msgs[:-1] == without


def test_misspelt_header_placeholder_is_refused_when_the_template_is_loaded():
    from dataclasses import replace

    from iranker.scenarios import TemplateError

    sc = get_scenario("recommendation")
    with pytest.raises(TemplateError, match=r"\{histroy\}.*available: \{domain\}, \{history\}, \{query\}"):
        type(sc)(replace(sc.template, header="Watched:\n{histroy}"))
    with pytest.raises(TemplateError, match="positional"):
        type(sc)(replace(sc.template, header="Watched: {}"))
    with pytest.raises(TemplateError, match="not a valid format string"):
        type(sc)(replace(sc.template, candidate="{label} {text"))


def test_candidate_placeholder_without_a_value_names_the_field_and_candidate():
    from dataclasses import replace

    from iranker.scenarios import TemplateError

    sc = get_scenario("recommendation")
    custom = type(sc)(replace(sc.template, candidate="{label} {text} ({genre})"))
    ex = rec_example()
    ex.candidates[0].meta["genre"] = "crime"
    assert "[1] Heat (1995) (crime)" in custom.render_candidate(ex, ex.candidates[0], "[1]")
    with pytest.raises(TemplateError, match=r"\{genre\} has no value in the candidate 'i2'"):
        custom.eliminate_prompt(ex, ["i1", "i2", "i3"])


@pytest.mark.parametrize("name", ["recommendation", "routing", "passage"])
def test_every_segment_ends_with_its_label_after_the_signals(name):
    """The closing label (``segment_end``) has read the whole segment, signals included: it is
    the last thing before the newline, and removing a candidate still removes exactly its
    segment (both labels go with it)."""
    sc = get_scenario(name)
    ex = {
        "recommendation": rec_example(),
        "routing": routing_example(objective="cost"),
        "passage": RankingExample("p", "passage", "q?", [Candidate("a", "one"), Candidate("b", "two")]),
    }[name]
    ex.candidates[1].meta["signals"] = {"bm25": 2.0}
    ex.candidates[0].meta["signals"] = {"bm25": 1.0}
    seg = sc.render_candidate(ex, ex.candidates[1], "[2]")
    assert seg.startswith("[2] ") and seg.endswith("bm25 1/2) [2]\n")
    ids = [c.id for c in ex.candidates]
    full = sc.eliminate_prompt(ex, ids)[1]["content"]
    fewer = sc.eliminate_prompt(ex, [i for i in ids if i != ids[1]])[1]["content"]
    assert full.replace(seg, "", 1) == fewer and "[2]" not in fewer


def test_templates_recorded_without_segment_end_keep_their_prompts():
    """A folder trained before ``segment_end`` existed records no such field: it loads with
    an empty one and renders its segments exactly as it was trained."""
    sc = get_scenario("recommendation")
    old = sc.template.to_dict()
    del old["segment_end"]
    legacy = type(sc)(PromptTemplate.from_dict(old))
    assert legacy.render_candidate(rec_example(), rec_example().candidates[0], "[1]") == "[1] Heat (1995)\n"


def test_segment_end_may_only_use_the_label():
    from dataclasses import replace

    from iranker.scenarios import TemplateError

    sc = get_scenario("passage")
    with pytest.raises(TemplateError, match=r"segment_end uses \{text\}; it may only use \{label\}"):
        type(sc)(replace(sc.template, segment_end=" {text}"))
