"""Batched KV-eviction steps (``iranker.llm.kv_batch``) on the real embedded model.

Every test compares the batched path with each session stepping alone, on real prompts of
different lengths (so the padding and masks are exercised), in fp32 where the two must agree
to rounding.
"""

from __future__ import annotations

import pytest

from iranker.llm.choice_tree import label_choices
from iranker.llm.kv_batch import batched_choice_logprobs, flush_refreshes
from iranker.rankers import IterativeRanker
from iranker.scenarios import get_scenario

pytestmark = pytest.mark.model


def _examples():
    from iranker.demo import packaged_examples

    passage, routing = packaged_examples("demo_passage"), packaged_examples("demo_routing")
    return [passage[0], routing[1], passage[2]]


def _sessions(llm, exs):
    out = []
    for ex in exs:
        sc = get_scenario(ex.scenario)
        s = llm.eviction_session()
        s.prefill(sc.eliminate_prompt(ex, ex.candidate_ids), sc.candidate_segments(ex, ex.candidate_ids))
        out.append(s)
    return out


def _step_inputs(exs, pools):
    prompts, choices = [], []
    for ex, pool in zip(exs, pools):
        sc = get_scenario(ex.scenario)
        labels = sc.labels(ex)
        prompts.append(sc.eliminate_prompt(ex, pool))
        choices.append(label_choices([labels[c] for c in pool]))
    return prompts, choices


def test_a_batched_step_and_batched_re_encoding_equal_each_session_alone(embedded_llm):
    exs = _examples()
    alone, batched = _sessions(embedded_llm, exs), _sessions(embedded_llm, exs)
    pools = [list(ex.candidate_ids) for ex in exs]
    for _ in range(2):  # a step, an eviction of each pool's second candidate, a step again
        prompts, choices = _step_inputs(exs, pools)
        want = [s.choice_logprobs(p, c) for s, p, c in zip(alone, prompts, choices)]
        got = batched_choice_logprobs(batched, prompts, choices)
        for w, g in zip(want, got):
            assert g == pytest.approx(w, abs=2e-4)
        for s, t, pool in zip(alone, batched, pools):
            s.evict(pool[1])
            t.evict(pool[1], defer_refresh=True)
            assert t._deferred is not None
            pool.pop(1)
        flush_refreshes(batched)
        for s, t in zip(alone, batched):
            assert t._deferred is None and t.cached_ids == s.cached_ids
            for a, b in zip(s._layers(), t._layers()):
                assert (a.keys - b.keys).abs().max().item() < 2e-4
                assert (a.values - b.values).abs().max().item() < 2e-4
        assert [t.stats.prompt_tokens for t in batched] == [s.stats.prompt_tokens for s in alone]


def test_batched_kv_ranking_equals_batch_one(embedded_llm):
    exs = _examples()
    one = IterativeRanker(embedded_llm, decode="choice", reuse="kv", kv_batch=False, show_progress=False)
    many = IterativeRanker(embedded_llm, decode="choice", reuse="kv", kv_batch=True, show_progress=False)
    a, b = one.rank(exs), many.rank(exs)
    assert [r.order for r in b] == [r.order for r in a]
    assert [[s.removed for s in r.steps] for r in b] == [[s.removed for s in r.steps] for r in a]
    assert [r.usage.prompt_tokens for r in b] == [r.usage.prompt_tokens for r in a]
