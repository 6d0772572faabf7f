"""KV-cache candidate eviction and tree choice scoring (``iranker.llm.kv_eviction``).

The trie and mask helpers are checked without a model. The rest runs the real embedded
SmolLM2-135M (marked ``model``, 1 thread): the layout's segment boundaries are token
boundaries after the chat template, an evicted span is exactly the candidate's tokens, and
where eviction must reproduce exact re-prompting (the evicted segment is the last one before
the question, or every later segment is re-encoded) the log-probabilities match to ~1e-4.
"""

from __future__ import annotations

import math

import pytest

from iranker.llm.kv_eviction import ChoiceTrie, KVEvictionSession, tree_attention_block, trie_logprobs
from iranker.scenarios import get_scenario
from iranker.types import Candidate, RankingExample

torch = pytest.importorskip("torch")


# -- no model -----------------------------------------------------------------------------------


def test_trie_shares_prefixes_and_keeps_paths():
    trie = ChoiceTrie.build([[1, 2, 3], [1, 2, 4], [1, 5], [6]])
    assert trie.tokens == [1, 2, 3, 4, 5, 6]
    assert trie.parent == [-1, 0, 1, 1, 0, -1]
    assert trie.depth == [0, 1, 2, 2, 1, 0]
    assert trie.paths == [[0, 1, 2], [0, 1, 3], [0, 4], [5]]
    with pytest.raises(ValueError):
        ChoiceTrie.build([[1], []])


def test_tree_mask_sees_prompt_and_ancestors_only():
    trie = ChoiceTrie.build([[7, 8], [7, 9]])  # nodes: 0=7, 1=8 (child of 0), 2=9 (child of 0)
    m = tree_attention_block(torch, 2, trie).int().tolist()
    assert m == [
        [1, 0, 0, 0, 0],  # prompt token 0
        [1, 1, 0, 0, 0],  # prompt token 1
        [1, 1, 1, 0, 0],  # node 0 sees the prompt and itself
        [1, 1, 1, 1, 0],  # node 1 sees node 0 and itself, not its sibling
        [1, 1, 1, 0, 1],  # node 2 likewise
    ]


def test_trie_logprobs_reads_the_right_rows():
    trie = ChoiceTrie.build([[0, 1], [0, 2], [3]])
    lp = torch.log(
        torch.tensor(
            [
                [0.5, 0.1, 0.1, 0.3],  # after the prompt
                [0.1, 0.6, 0.2, 0.1],  # after node 0 (token 0)
                [0.25, 0.25, 0.25, 0.25],  # after node 1
                [0.25, 0.25, 0.25, 0.25],  # after node 2
                [0.25, 0.25, 0.25, 0.25],  # after node 3
            ]
        )
    )
    got = trie_logprobs(torch, lp, trie)
    assert got == pytest.approx([math.log(0.5 * 0.6), math.log(0.5 * 0.2), math.log(0.3)])


# -- the real embedded model ----------------------------------------------------------------------


def passage_example(n=6):
    texts = [
        "Apples grow on trees and are harvested in autumn.",
        "The stock market fell sharply on Tuesday.",
        "An apple a day keeps the doctor away, says the proverb.",
        "Rust is a systems programming language.",
        "Granny Smith is a green apple variety from Australia.",
        "The Eiffel Tower is in Paris.",
        "Cider is made by fermenting apple juice.",
        "Mount Everest is the highest mountain on Earth.",
    ]
    return RankingExample(
        "p",
        "passage",
        "Which apple variety is green?",
        [Candidate(f"d{i}", texts[i % len(texts)]) for i in range(n)],
        {"d4": 2},
    )


def all_examples():
    from iranker.demo import demo_examples

    return demo_examples(per_scenario=2, candidates=8) + [passage_example(8)]


def prompt_ids(llm, messages):
    return llm.tokenizer(llm.render(messages), add_special_tokens=False)["input_ids"]


def labels_of(sc, ex, pool):
    labels = sc.labels(ex)
    return [f"<answer>{labels[c]}" for c in pool]


@pytest.mark.model
def test_segment_boundaries_are_token_boundaries_in_every_scenario(embedded_llm):
    """Layout contract after the chat template: each segment starts and ends on a token
    boundary, so removing a segment removes exactly its tokens from the tokenized prompt."""
    llm = embedded_llm
    session = KVEvictionSession(llm)
    for ex in all_examples():
        sc = get_scenario(ex.scenario)
        pool = ex.candidate_ids
        messages = sc.eliminate_prompt(ex, pool)
        segments = sc.candidate_segments(ex, pool)
        info = session.locate(messages, segments)
        assert info["stable"], ex.id
        ids = info["ids"]
        assert ids == prompt_ids(llm, messages)
        for cid, seg in segments:
            a, b = info["spans"][cid]
            assert llm.tokenizer.decode(ids[a:b]) == seg
            without = sc.eliminate_prompt(ex, [c for c in pool if c != cid])
            assert prompt_ids(llm, without) == ids[:a] + ids[b:], (ex.id, cid)


@pytest.mark.model
def test_evicted_spans_are_exactly_the_candidates_tokens(embedded_llm):
    llm = embedded_llm
    ex = passage_example(6)
    sc = get_scenario("passage")
    pool = list(ex.candidate_ids)
    session = KVEvictionSession(llm)
    session.prefill(sc.eliminate_prompt(ex, pool), sc.candidate_segments(ex, pool))
    full = prompt_ids(llm, sc.eliminate_prompt(ex, pool))
    assert session.cache_length() == len(session.cached_ids) < len(full)
    for cid in ["d2", "d0", "d5", "d3"]:  # middle, first, last, middle
        a, b = session.span(cid)
        before = session.cached_ids
        removed = session.evict(cid)
        assert removed == b - a
        pool.remove(cid)
        now = prompt_ids(llm, sc.eliminate_prompt(ex, pool))
        # the cache holds exactly the shorter prompt's tokens up to the question ...
        assert session.cached_ids == now[: len(session.cached_ids)]
        assert session.cache_length() == len(session.cached_ids) == len(before) - removed
        # ... and what follows is the step-independent question
        assert now[len(session.cached_ids) :] == full[len(full) - len(now) + len(session.cached_ids) :]
        # default positions="shift": contiguous, as in the re-prompted text
        assert session.cached_positions == list(range(len(session.cached_ids)))
    assert session.pool == ["d1", "d4"]
    with pytest.raises(KeyError):
        session.evict("d2")


@pytest.mark.model
def test_tree_choice_scoring_equals_one_sequence_per_choice(embedded_llm):
    llm = embedded_llm
    exs = [passage_example(5), passage_example(8)]
    sc = get_scenario("passage")
    prompts = [sc.eliminate_prompt(ex, ex.candidate_ids) for ex in exs]
    choices = [labels_of(sc, ex, ex.candidate_ids) for ex in exs]
    choices[1] = choices[1] + ["<answer>[12] maybe", "no"]  # multi-token, shared and unshared prefixes
    tree = llm.choice_logprobs(prompts, choices)
    pairwise = llm._pairwise_choice_logprobs(prompts, choices)
    for t, p in zip(tree, pairwise):
        assert t == pytest.approx(p, abs=2e-4)


@pytest.mark.model
@pytest.mark.parametrize("positions", ["next", "shift"])
@pytest.mark.parametrize("refresh", [0, 8])
def test_evicting_the_last_segment_matches_exact_reprompting(embedded_llm, positions, refresh):
    """Nothing before the last segment ever saw it, so after evicting it the cache is a fresh
    prefill of the shorter prompt: scores must match exact re-prompting, step after step."""
    llm = embedded_llm
    ex = passage_example(6)
    sc = get_scenario("passage")
    pool = list(ex.candidate_ids)
    session = KVEvictionSession(llm, positions=positions, refresh=refresh)
    session.prefill(sc.eliminate_prompt(ex, pool), sc.candidate_segments(ex, pool))
    while len(pool) > 1:
        messages = sc.eliminate_prompt(ex, pool)
        choices = labels_of(sc, ex, pool)
        exact = llm.choice_logprobs([messages], [choices])[0]
        kv = session.choice_logprobs(messages, choices)
        assert kv == pytest.approx(exact, abs=1e-4)
        best = max(range(len(kv)), key=lambda i: (kv[i], i))
        assert best == max(range(len(exact)), key=lambda i: (exact[i], i))
        session.evict(pool[-1])
        pool.pop()
    assert session.stats.prefills == 1


@pytest.mark.model
def test_first_step_generation_equals_exact_greedy(embedded_llm):
    llm = embedded_llm
    for ex in all_examples()[::2]:
        sc = get_scenario(ex.scenario)
        messages = sc.eliminate_prompt(ex, ex.candidate_ids)
        session = KVEvictionSession(llm)
        n = session.prefill(messages, sc.candidate_segments(ex, ex.candidate_ids))
        exact = llm.generate([messages], max_new_tokens=10)[0]
        kv = session.generate(messages, max_new_tokens=10)
        assert kv.text == exact.text
        assert kv.completion_tokens == exact.completion_tokens
        assert n + kv.prompt_tokens == exact.prompt_tokens  # prefill + question = the prompt


@pytest.mark.model
def test_reask_turn_reuses_the_cache(embedded_llm):
    llm = embedded_llm
    ex = passage_example(5)
    sc = get_scenario("passage")
    messages = sc.eliminate_prompt(ex, ex.candidate_ids)
    followup = messages + [
        {"role": "assistant", "content": "I am not sure."},
        {"role": "user", "content": "Reply with <answer>LABEL</answer>."},
    ]
    session = KVEvictionSession(llm)
    session.prefill(messages, sc.candidate_segments(ex, ex.candidate_ids))
    exact = llm.generate([followup], max_new_tokens=8)[0]
    kv = session.generate(followup, max_new_tokens=8)
    assert kv.text == exact.text
    assert session.stats.prefills == 1
    assert kv.prompt_tokens == exact.prompt_tokens - len(session.cached_ids)


@pytest.mark.model
def test_middle_eviction_equals_the_masked_full_prompt(embedded_llm):
    """What eviction computes, stated independently: the full original prompt in which the
    question and the answer may not attend to the evicted span (original positions)."""
    llm = embedded_llm
    ex = passage_example(5)
    sc = get_scenario("passage")
    pool = list(ex.candidate_ids)
    session = KVEvictionSession(llm, positions="original", refresh=0)
    messages = sc.eliminate_prompt(ex, pool)
    info = session.locate(messages, sc.candidate_segments(ex, pool))
    session.prefill(messages, sc.candidate_segments(ex, pool))
    a, b = info["spans"]["d1"]
    session.evict("d1")
    pool.remove("d1")
    choices = labels_of(sc, ex, pool)
    kv = session.choice_logprobs(sc.eliminate_prompt(ex, pool), choices)
    ids = info["ids"]
    want = []
    for choice in choices:
        c_ids = llm.tokenizer(choice, add_special_tokens=False)["input_ids"]
        seq = ids + c_ids
        n = len(seq)
        allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
        allowed[info["block_end"] :, a:b] = False
        with torch.inference_mode():
            logits = llm.model(
                input_ids=torch.tensor([seq]),
                attention_mask=allowed[None, None],
                position_ids=torch.arange(n)[None],
                use_cache=False,
            ).logits[0]
        lp = torch.log_softmax(logits.float(), dim=-1)
        want.append(sum(float(lp[len(ids) - 1 + j, t]) for j, t in enumerate(c_ids)))
    assert kv == pytest.approx(want, abs=1e-4)


@pytest.mark.model
def test_shift_with_full_refresh_equals_exact_after_middle_evictions(embedded_llm):
    """Re-rotating keys (positions="shift") and re-encoding the following segments turns the
    cache back into a fresh prefill: this checks the RoPE re-rotation and the splicing."""
    llm = embedded_llm
    ex = passage_example(6)
    sc = get_scenario("passage")
    pool = list(ex.candidate_ids)
    session = KVEvictionSession(llm, positions="shift", refresh=-1)
    session.prefill(sc.eliminate_prompt(ex, pool), sc.candidate_segments(ex, pool))
    for cid in ["d1", "d3", "d0"]:
        session.evict(cid)
        pool.remove(cid)
        assert session.cached_positions == list(range(len(session.cached_ids)))
        messages = sc.eliminate_prompt(ex, pool)
        choices = labels_of(sc, ex, pool)
        exact = llm.choice_logprobs([messages], [choices])[0]
        assert session.choice_logprobs(messages, choices) == pytest.approx(exact, abs=2e-4)


@pytest.mark.model
def test_refresh_in_the_step_equals_a_pass_of_its_own(embedded_llm):
    """Re-encoding the tokens after an evicted span inside the next step's forward pass writes
    the same keys and values into the same slots, and scores like the separate pass; a
    generation after a deferred refresh re-encodes first."""
    llm = embedded_llm
    ex = passage_example(7)
    sc = get_scenario("passage")
    pool = list(ex.candidate_ids)
    merged, alone = KVEvictionSession(llm, refresh_in_step=True), KVEvictionSession(llm)
    for s in (merged, alone):
        s.prefill(sc.eliminate_prompt(ex, pool), sc.candidate_segments(ex, pool))
    for cid in ["d2", "d0", "d5", "d3"]:
        messages, choices = sc.eliminate_prompt(ex, pool), labels_of(sc, ex, pool)
        assert merged.choice_logprobs(messages, choices) == pytest.approx(
            alone.choice_logprobs(messages, choices), abs=1e-4
        )
        assert merged.cached_ids == alone.cached_ids and merged.cached_positions == alone.cached_positions
        for a, b in zip(merged._cache.layers, alone._cache.layers):
            assert a.keys.shape == b.keys.shape
            assert torch.allclose(a.keys, b.keys, atol=1e-4) and torch.allclose(a.values, b.values, atol=1e-4)
        merged.evict(cid)
        alone.evict(cid)
        pool.remove(cid)
        assert merged.stats.refresh_tokens == alone.stats.refresh_tokens
    messages = sc.eliminate_prompt(ex, pool)
    assert merged.generate(messages, max_new_tokens=6).text == alone.generate(messages, max_new_tokens=6).text


@pytest.mark.model
def test_shift_keeps_positions_contiguous_and_refresh_counts_tokens(embedded_llm):
    llm = embedded_llm
    ex = passage_example(5)
    sc = get_scenario("passage")
    for refresh in (0, 8):
        session = KVEvictionSession(llm, positions="shift", refresh=refresh)
        session.prefill(
            sc.eliminate_prompt(ex, ex.candidate_ids), sc.candidate_segments(ex, ex.candidate_ids)
        )
        session.evict("d2")
        assert session.cached_positions == list(range(len(session.cached_ids)))
        assert session.stats.refresh_tokens == refresh
    session.evict("d4")  # the last segment: nothing follows it in the cache, nothing to refresh
    assert session.stats.refresh_tokens == 8


@pytest.mark.model
def test_a_prompt_that_breaks_the_layout_is_re_prefilled_not_answered_from_a_stale_cache(embedded_llm):
    llm = embedded_llm
    ex = passage_example(5)
    sc = get_scenario("passage")
    session = KVEvictionSession(llm)
    session.prefill(sc.eliminate_prompt(ex, ex.candidate_ids), sc.candidate_segments(ex, ex.candidate_ids))
    other = RankingExample(ex.id, ex.scenario, "A different query entirely?", ex.candidates, ex.relevance)
    messages = sc.eliminate_prompt(other, other.candidate_ids)
    choices = labels_of(sc, other, other.candidate_ids)
    got = session.choice_logprobs(messages, choices)
    assert session.stats.prefills == 2
    assert got == pytest.approx(llm.choice_logprobs([messages], [choices])[0], abs=1e-4)


@pytest.mark.model
def test_cached_question_mode_processes_one_token_per_step(embedded_llm):
    llm = embedded_llm
    ex = passage_example(6)
    sc = get_scenario("passage")
    pool = list(ex.candidate_ids)
    session = KVEvictionSession(llm, positions="shift", fresh_tokens=1)
    n = session.prefill(sc.eliminate_prompt(ex, pool), sc.candidate_segments(ex, pool))
    assert n == len(prompt_ids(llm, sc.eliminate_prompt(ex, pool))) - 1
    for cid in ["d5", "d2"]:
        scores = session.choice_logprobs(sc.eliminate_prompt(ex, pool), labels_of(sc, ex, pool))
        assert len(scores) == len(pool) and all(math.isfinite(x) for x in scores)
        session.evict(cid)
        pool.remove(cid)
    assert session.stats.step_tokens == 2  # one prompt token per step
