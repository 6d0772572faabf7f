from iranker.llm import ScriptedLLM
from iranker.rankers import DirectRanker
from iranker.types import Candidate, RankingExample


def example(n=4, eid="q"):
    return RankingExample(
        eid, "passage", "query", [Candidate(f"c{i}", f"text {i}") for i in range(n)], {"c0": 1}
    )


def test_full_order_parsed():
    [r] = DirectRanker(ScriptedLLM.eliminate_first(), show_progress=False).rank([example(4)])
    assert r.order == ["c3", "c2", "c1", "c0"]
    assert r.meta["valid"] and r.meta["appended"] == [] and r.meta["duplicates"] == []
    assert r.usage.calls == 1


def test_missing_appended_in_original_order_and_duplicates_ignored():
    llm = ScriptedLLM(lambda m: "<think>x</think><answer>[3] > [1] > [3]</answer>")
    [r] = DirectRanker(llm, show_progress=False).rank([example(5)])
    assert r.order == ["c2", "c0", "c1", "c3", "c4"]
    assert r.meta["appended"] == ["c1", "c3", "c4"] and r.meta["duplicates"] == ["c2"]
    assert not r.meta["valid"]


def test_reask_when_nothing_parsed_then_append_all():
    llm = ScriptedLLM(lambda m: "no idea")
    [r] = DirectRanker(llm, reask=1, show_progress=False).rank([example(3)])
    assert r.order == ["c0", "c1", "c2"] and r.meta["attempts"] == 2 and r.meta["parsed"] == []
    assert len(llm.calls) == 2


def test_batched_one_call_for_all_examples():
    llm = ScriptedLLM.eliminate_last()
    out = DirectRanker(llm, show_progress=False).rank([example(3, "a"), example(4, "b")])
    assert len(llm.calls) == 1 and [r.example_id for r in out] == ["a", "b"]


def test_direct_prefilled_reply_is_parsed_whole():
    from iranker.scenarios import PromptTemplate, get_scenario

    t = get_scenario("passage").template
    templates = {"passage": PromptTemplate.from_dict({**t.to_dict(), "response_prefix": "<think>"})}
    llm = ScriptedLLM(lambda m: "c1 is best</think><answer>[2] > [1] > [3]</answer>")
    [r] = DirectRanker(llm, templates=templates, show_progress=False).rank([example(3)])
    assert llm.calls[0][0][-1] == {"role": "assistant", "content": "<think>"}
    assert r.order == ["c1", "c0", "c2"]
    assert r.meta["valid"] and r.meta["appended"] == []
