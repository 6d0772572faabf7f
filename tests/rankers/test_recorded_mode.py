"""A model's recorded ranking mode (``backend.ranking``, from iranker.json) is what rankers use
unless told otherwise; the scripted backend implements the real protocol."""

from __future__ import annotations

import pytest

from iranker.llm import ScriptedLLM
from iranker.rankers import IterativeRanker
from iranker.rankers.iterative import recorded_mode
from iranker.types import Candidate, RankingExample


class _Recorded(ScriptedLLM):
    """The scripted backend plus what a trained folder records (no KV eviction)."""

    ranking = {"decode": "choice", "reuse": "kv"}


def _example():
    return RankingExample(
        "q",
        "passage",
        "capital of france",
        [
            Candidate("a", "Paris is the capital of France."),
            Candidate("b", "Bananas are yellow."),
            Candidate("c", "Rome is in Italy."),
        ],
        {"a": 1.0},
    )


def test_plain_backends_default_to_generate_without_reuse():
    assert recorded_mode(ScriptedLLM.eliminate_last(), None, None) == ("generate", "none")


def test_recorded_decode_applies_and_kv_falls_back_where_it_cannot_run():
    backend = _Recorded.eliminate_last()
    # the scripted backend cannot evict from a KV cache: reuse falls back to none, decode stays
    assert recorded_mode(backend, None, None) == ("choice", "none")
    ranker = IterativeRanker(backend, show_progress=False)
    assert ranker.decode == "choice" and ranker.name == "iterative-choice"
    ranking = ranker.rank([_example()])[0]
    assert {s.how_matched for s in ranking.steps} == {"choice"}


def test_explicit_settings_override_the_record():
    backend = _Recorded.eliminate_last()
    assert recorded_mode(backend, "generate", None) == ("generate", "none")
    ranker = IterativeRanker(backend, decode="generate", show_progress=False)
    ranking = ranker.rank([_example()])[0]
    assert ranking.order[-1] == "c"  # the scripted policy removed the last shown candidate first
    assert {s.how_matched for s in ranking.steps} != {"choice"}
    with pytest.raises(ValueError, match="KV cache"):
        IterativeRanker(backend, reuse="kv", show_progress=False)


def test_backend_templates_are_the_default_and_an_empty_dict_means_the_defaults():
    from iranker.scenarios import get_scenario

    backend = ScriptedLLM.eliminate_last()
    custom = get_scenario("passage").template
    backend.templates = {"passage": custom}
    assert IterativeRanker(backend, show_progress=False).templates == {"passage": custom}
    assert IterativeRanker(backend, templates={}, show_progress=False).templates == {}


def test_a_backend_whose_model_cannot_evict_ranks_without_kv_reuse():
    """A model with sliding-window layers (Gemma 3) keeps only the window in its cache, so
    ``reuse=kv`` cannot cut a candidate out: the recorded mode falls back to exact re-prompting
    and an explicit request is refused with the reason."""
    import pytest

    from iranker.llm import ScriptedLLM
    from iranker.llm.base import can_evict
    from iranker.rankers import IterativeRanker

    class WindowedLLM(ScriptedLLM):
        evicts = False

        def eviction_session(self, **options):  # the capability exists, the model forbids it
            raise AssertionError("must not be used")

    llm = WindowedLLM.eliminate_last()
    llm.ranking = {"decode": "generate", "reuse": "kv"}
    assert not can_evict(llm)
    assert IterativeRanker(llm, show_progress=False).reuse == "none"
    with pytest.raises(ValueError, match="sliding-window"):
        IterativeRanker(llm, reuse="kv", show_progress=False)
