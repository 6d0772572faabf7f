"""One scoring code path for ranking and training (``iranker.llm.choice_tree``).

The ranker's ``choice_logprobs`` and the trainer's differentiable ``choice_logprob_tensors``
must give the same numbers, and the two exact layouts (one tree pass; prompt then trie on its
cache) must agree. Runs the real embedded model (fp32 fixture).
"""

from __future__ import annotations

import pytest

from iranker.llm.choice_tree import (
    ChoiceTrie,
    choice_logprob_tensors,
    label_choices,
    pick_worst,
    trie_logprob_tensor,
    worst_probabilities,
)

torch = pytest.importorskip("torch")


def test_label_choices_and_tie_rule():
    assert label_choices(["[1]", "[12]"]) == ["<answer>[1]", "<answer>[12]"]
    assert pick_worst([-1.0, -0.5, -0.5]) == 2  # ties -> the last shown
    assert pick_worst([-0.1, -3.0]) == 0


def test_trie_logprob_tensor_is_differentiable():
    trie = ChoiceTrie.build([[0, 1], [0, 2], [3]])
    logits = torch.randn(1 + len(trie), 5, requires_grad=True)
    lp = torch.log_softmax(logits, -1)
    out = trie_logprob_tensor(torch, lp, trie)
    assert out.shape == (3,)
    assert float(out[0]) == pytest.approx(float(lp[0, 0] + lp[1, 1]), abs=1e-6)
    assert float(out[2]) == pytest.approx(float(lp[0, 3]), abs=1e-6)
    out.sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_leaf_rows_are_not_needed_and_held_rows_give_the_same_sums():
    """A read-out needs the row after the prompt and after every node with a child; leaves
    (the closing ``]`` of each label) predict nothing that is scored."""
    trie = ChoiceTrie.build([[0, 1], [0, 2], [3], [0, 1, 4]])  # nodes 0=0, 1=1, 2=2, 3=3, 4=4
    assert trie.logit_rows() == [0, 1, 2]  # the prompt, node 0 (parent of 1, 2), node 1 (parent of 4)
    lp = torch.log_softmax(torch.randn(1 + len(trie), 6), -1)
    rows = trie.logit_rows()
    full = trie_logprob_tensor(torch, lp, trie)
    held = trie_logprob_tensor(torch, lp[rows], trie, rows)
    assert torch.equal(full, held)
    with pytest.raises(KeyError):  # a row the read-out needs is missing
        trie_logprob_tensor(torch, lp[[0, 1]], trie, [0, 1])


def test_only_inner_nodes_are_fed_and_their_mask_is_the_full_masks_restriction():
    """Leaves are left out of every pass (nothing attends to them, they predict nothing
    scored): the fed nodes are those with a child, and their mask is the full one restricted."""
    from iranker.llm.choice_tree import tree_attention_block

    trie = ChoiceTrie.build([[0, 1], [0, 2], [3], [0, 1, 4]])
    fed = trie.inner_nodes()
    assert fed == [0, 1] and [1 + n for n in fed] == trie.logit_rows()[1:]
    full = tree_attention_block(torch, 3, trie)
    part = tree_attention_block(torch, 3, trie, fed)
    keep = [0, 1, 2] + [3 + n for n in fed]
    assert torch.equal(part, full[keep][:, keep])
    assert ChoiceTrie.build([[5], [6]]).inner_nodes() == []  # one-token choices: nothing fed


@pytest.mark.model
def test_training_scores_equal_ranking_scores_and_layouts_agree(embedded_llm):
    from iranker.scenarios import get_scenario
    from iranker.types import Candidate, RankingExample

    llm = embedded_llm
    ex = RankingExample(
        "q",
        "passage",
        "how long do fleas live",
        [
            Candidate("a", "A flea can live up to a year."),
            Candidate("b", "Paris is in France."),
            Candidate("c", "Fleas are small insects."),
            Candidate("d", "The moon orbits the earth."),
        ],
        {"a": 2.0},
    )
    scenario = get_scenario("passage")
    pools = [["a", "b", "c", "d"], ["a", "c", "d"]]
    prompts = [scenario.eliminate_prompt(ex, p) for p in pools]
    labels = scenario.labels(ex)
    choices = [label_choices([labels[c] for c in p]) for p in pools]
    ranked = llm.choice_logprobs(prompts, choices)  # what IterativeRanker(decode="choice") reads

    tok = llm.tokenizer
    prompt_ids = [tok(llm.render(m), add_special_tokens=False)["input_ids"] for m in prompts]
    choice_ids = [[tok(c, add_special_tokens=False)["input_ids"] for c in cs] for cs in choices]
    tree = choice_logprob_tensors(torch, llm.model, tok.pad_token_id, prompt_ids, choice_ids, layout="tree")
    for r, t in zip(ranked, tree):
        assert t.tolist() == pytest.approx(r, abs=1e-4)
    for i in range(2):  # one prompt: prompt causally, then the trie on its cache - with gradients
        llm.model.get_input_embeddings().weight.requires_grad_(True)
        try:
            (prefix,) = choice_logprob_tensors(
                torch, llm.model, tok.pad_token_id, [prompt_ids[i]], [choice_ids[i]], layout="prefix"
            )
            assert prefix.requires_grad
            assert prefix.tolist() == pytest.approx(ranked[i], abs=1e-4)
        finally:
            llm.model.get_input_embeddings().weight.requires_grad_(False)


def test_worst_probabilities_are_the_softmax_and_survive_minus_infinity():
    import math

    assert worst_probabilities([0.0, 0.0]) == [0.5, 0.5]
    p = worst_probabilities([-1000.0, -1001.0, float("-inf")])  # large magnitudes do not underflow
    assert p == pytest.approx([1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1)), 0.0], abs=1e-6)
    assert worst_probabilities([float("-inf")] * 4) == [0.25] * 4
    assert pick_worst([-3.0, -0.5, -2.0]) == max(
        range(3), key=worst_probabilities([-3.0, -0.5, -2.0]).__getitem__
    )
