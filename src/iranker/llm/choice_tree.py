"""Score every candidate label in one forward pass: a prompt followed by a trie of the choices.

Choice decoding (``IterativeRanker(decode="choice")``) reads the log-probability of each
remaining label (``<answer>[k]``) as the assistant's reply. The labels share most of their
tokens (``<answer>[``), so they are merged into a prefix tree (``ChoiceTrie``) and laid out
after the prompt with a 4-D attention mask in which each trie node sees the prompt and its own
ancestors only: every choice is scored exactly as if it alone followed the prompt, and N labels
cost one prompt, not N.

This module is the **one** implementation of that scoring. Inference
(``TransformersLLM.choice_logprobs``, ``KVEvictionSession.choice_logprobs``) and training
(``iranker.train.choice_trainer``, where the policy is the softmax over these log-probabilities)
call the same functions; training simply keeps the autograd graph
(``choice_logprob_tensors``), inference runs under ``torch.inference_mode`` and returns floats
(``tree_choice_logprobs``). What is trained is therefore exactly what ranks.

torch is never imported here at module level; callers pass the ``torch`` module in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..parsing import ANSWER_OPEN


def label_choices(labels: Sequence[str]) -> list[str]:
    """The reply scored for each label: ``<answer>LABEL`` (what a generating model would write)."""

    return [f"{ANSWER_OPEN}{label}" for label in labels]


def pick_worst(scores: Sequence[float]) -> int:
    """Index of the candidate the policy names worst: the highest score; ties -> the last shown."""
    return max(range(len(scores)), key=lambda i: (scores[i], i))


def worst_probabilities(scores: Sequence[float], digits: int = 6) -> list[float]:
    """The policy as probabilities: the softmax of the label log-probabilities over the pool.

    The same distribution the choice trainer optimises; recorded in every choice step
    (``Step.probs``) so a trace shows how sure each elimination was, not just which one won.
    Non-finite scores count as impossible; if none is finite the distribution is uniform.
    Rounded to ``digits`` so traces stay compact (the argmax is taken from the raw scores).
    """
    finite = [x for x in scores if math.isfinite(x)]
    if not finite:
        return [round(1.0 / len(scores), digits) for _ in scores] if scores else []
    top = max(finite)
    weights = [math.exp(x - top) if math.isfinite(x) else 0.0 for x in scores]
    total = sum(weights)
    return [round(w / total, digits) for w in weights]


@dataclass
class ChoiceTrie:
    """The choices' token sequences merged into a prefix tree.

    ``tokens[n]``/``parent[n]``/``depth[n]`` describe node ``n`` (parent ``-1`` = child of the
    prompt); ``paths[c]`` lists the nodes spelling choice ``c``.
    """

    tokens: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    paths: list[list[int]] = field(default_factory=list)

    @classmethod
    def build(cls, choices: Sequence[Sequence[int]]) -> "ChoiceTrie":
        trie = cls()
        children: dict[tuple[int, int], int] = {}
        for seq in choices:
            if not seq:
                raise ValueError("choices must be non-empty strings")
            node, path = -1, []
            for d, token in enumerate(seq):
                key = (node, int(token))
                if key not in children:
                    children[key] = len(trie.tokens)
                    trie.tokens.append(int(token))
                    trie.parent.append(node)
                    trie.depth.append(d)
                node = children[key]
                path.append(node)
            trie.paths.append(path)
        return trie

    def __len__(self) -> int:
        return len(self.tokens)

    def ancestors_or_self(self, node: int) -> list[int]:
        out = []
        while node >= 0:
            out.append(node)
            node = self.parent[node]
        return out

    def inner_nodes(self) -> list[int]:
        """The nodes that have a child, in order: the only ones a forward pass must feed.

        A leaf's hidden state predicts nothing that is scored, and no node attends to it (each
        node sees only its ancestors), so feeding it changes no scored logit: the leaves - one
        closing ``]`` per label, 20 of the 44 nodes at N = 20 - are left out of every pass."""
        return sorted({p for p in self.parent if p >= 0})

    def logit_rows(self) -> list[int]:
        """The logit rows a read-out needs (sorted): row 0 (after the prompt) and ``1 + n`` for
        every node ``n`` that has a child. Leaves predict nothing that is scored, so their
        ``vocab``-wide output-head rows need not be computed (``KVEvictionSession`` skips them)."""
        return sorted(set(self.gather_index()[0]))

    def gather_index(self) -> tuple[list[int], list[int], list[int]]:
        """(logit rows, target tokens, choice index) of every token of every choice.

        Row 0 is the distribution after the last prompt token, row ``1 + n`` the one after
        trie node ``n``; summing ``logprobs[rows, tokens]`` per choice gives its log-probability.
        """
        rows, toks, owner = [], [], []
        for c, path in enumerate(self.paths):
            prev = 0
            for node in path:
                rows.append(prev)
                toks.append(self.tokens[node])
                owner.append(c)
                prev = 1 + node
        return rows, toks, owner


def tree_attention_block(
    torch: Any, n_prompt: int, trie: ChoiceTrie, nodes: Sequence[int] | None = None
) -> Any:
    """Boolean ``[n_prompt + k, n_prompt + k]`` mask over the new tokens, for the ``k`` trie
    ``nodes`` fed (default all of them, in order; ``trie.inner_nodes()`` for a read-out pass).

    Prompt tokens attend causally; a trie node attends to every prompt token, its ancestors
    and itself - so each choice is scored exactly as if it alone followed the prompt.
    """
    fed = list(range(len(trie))) if nodes is None else list(nodes)
    q = n_prompt + len(fed)
    mask = torch.zeros((q, q), dtype=torch.bool)
    if n_prompt:
        mask[:n_prompt, :n_prompt] = torch.tril(torch.ones((n_prompt, n_prompt), dtype=torch.bool))
        mask[n_prompt:, :n_prompt] = True
    if fed:
        # one tensor write instead of one indexed write per (node, ancestor): that loop of tiny
        # torch ops cost ~2 ms per ranking step
        where = {n: i for i, n in enumerate(fed)}
        rows = [[False] * len(fed) for _ in range(len(fed))]
        for i, node in enumerate(fed):
            for a in trie.ancestors_or_self(node):
                if a in where:
                    rows[i][where[a]] = True
        mask[n_prompt:, n_prompt:] = torch.tensor(rows, dtype=torch.bool)
    return mask


def trie_logprob_tensor(
    torch: Any, logprobs: Any, trie: ChoiceTrie, rows_held: Sequence[int] | None = None
) -> Any:
    """Tensor ``[len(trie.paths)]``: each choice's summed log-probability (differentiable).

    ``logprobs[0]`` is the distribution after the last prompt token, ``logprobs[1 + n]`` the
    distribution after trie node ``n``. With ``rows_held`` (e.g. ``trie.logit_rows()``),
    ``logprobs[i]`` holds row ``rows_held[i]`` only: the same sums, from fewer rows.
    """
    rows, toks, owner = trie.gather_index()
    if rows_held is not None:
        where = {r: i for i, r in enumerate(rows_held)}
        rows = [where[r] for r in rows]
    device = logprobs.device
    picked = logprobs[torch.tensor(rows, device=device), torch.tensor(toks, device=device)]
    out = torch.zeros(len(trie.paths), dtype=picked.dtype, device=device)
    return out.index_add(0, torch.tensor(owner, device=device), picked)


def trie_logprobs(
    torch: Any, logprobs: Any, trie: ChoiceTrie, rows_held: Sequence[int] | None = None
) -> list[float]:
    """Sum of log-probabilities per choice, as floats (see ``trie_logprob_tensor``)."""
    return [float(x) for x in trie_logprob_tensor(torch, logprobs, trie, rows_held).tolist()]


def mask_for_model(torch: Any, allowed: Any, attn_implementation: str, dtype: Any) -> Any:
    """A 4-D mask in the form the model's attention expects (bool for sdpa, additive for eager)."""
    if attn_implementation == "eager":
        zero = torch.zeros((), dtype=dtype)
        neg = torch.full((), torch.finfo(dtype).min, dtype=dtype)
        return torch.where(allowed, zero, neg)
    if attn_implementation not in ("sdpa",):
        raise NotImplementedError(
            f"tree choice scoring needs a 4-D attention mask; attention implementation "
            f"{attn_implementation!r} is not supported (use sdpa or eager)"
        )
    return allowed


def _float_dtype(torch: Any, model: Any) -> Any:
    try:
        return next(p for p in model.parameters() if p.is_floating_point()).dtype
    except StopIteration:  # pragma: no cover - a model always has weights
        return torch.float32


def has_sliding_window(model: Any) -> bool:
    """Whether some attention layers of ``model`` see only a window of recent tokens (their
    KV cache then holds the window only: no prefix-then-trie scoring, no KV eviction)."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config
    types = getattr(config, "layer_types", None) or ()
    return bool(getattr(config, "sliding_window", None)) and (not types or "sliding_attention" in types)


def choice_logprob_tensors(
    torch: Any,
    model: Any,
    pad_token_id: int,
    prompt_ids: Sequence[Sequence[int]],
    choice_ids: Sequence[Sequence[Sequence[int]]],
    *,
    device: Any = None,
    layout: str = "auto",
) -> list[Any]:
    """Per prompt, a tensor of its choices' log-probabilities.

    Two exact layouts (a test checks they agree):

    - ``"tree"``: one forward pass for the batch. The prompts are left-padded; each row is
      ``[pad.., prompt, trie nodes]`` with explicit positions and its own 4-D mask, and logits
      are computed for the last ``max(trie size) + 1`` positions only.
    - ``"prefix"`` (one prompt only): the prompt runs causally with no explicit mask - which
      lets sdpa use its fused kernel; with a boolean 4-D mask it falls back to the math
      kernel, whose backward pass was ~1.4x slower for an 800-token prompt here - then the
      trie nodes run on its KV cache with a small ``[trie, prompt + trie]`` mask, exactly as
      ``KVEvictionSession.choice_logprobs`` scores a step.

    ``"auto"`` (default) takes ``prefix`` for a single prompt and ``tree`` for a batch, and
    ``tree`` always for a model with sliding-window layers (Gemma 3): its cache keeps only the
    window, so a mask over the whole prompt would not fit the cached keys. Runs with whatever
    autograd mode the caller set: under ``inference_mode`` for ranking, with gradients for
    training.
    """
    if len(prompt_ids) != len(choice_ids):
        raise ValueError("one list of choices per prompt is needed")
    impl = getattr(model.config, "_attn_implementation", "sdpa")
    dtype = _float_dtype(torch, model)
    device = device if device is not None else next(model.parameters()).device
    rows = [(list(p), ChoiceTrie.build(c)) for p, c in zip(prompt_ids, choice_ids)]
    if layout == "prefix" and has_sliding_window(model):
        raise ValueError(
            "the prefix layout needs a full KV cache; this model has sliding-window layers (use 'tree')"
        )
    if len(rows) == 1 and layout in ("auto", "prefix") and rows[0][0] and not has_sliding_window(model):
        return [_prefix_then_trie(torch, model, rows[0][0], rows[0][1], impl, dtype, device)]
    feds = [t.inner_nodes() for _, t in rows]  # leaves are never fed (ChoiceTrie.inner_nodes)
    width = max(len(p) + len(f) for (p, _), f in zip(rows, feds))
    keep = max(len(f) for f in feds) + 1
    n_rows = len(rows)
    input_ids = torch.full((n_rows, width), int(pad_token_id), dtype=torch.long)
    positions = torch.zeros((n_rows, width), dtype=torch.long)
    allowed = torch.zeros((n_rows, 1, width, width), dtype=torch.bool)
    for b, ((p, trie), fed) in enumerate(zip(rows, feds)):
        pad = width - len(p) - len(fed)
        input_ids[b, pad:] = torch.tensor(p + [trie.tokens[n] for n in fed], dtype=torch.long)
        positions[b, pad:] = torch.tensor(
            list(range(len(p))) + [len(p) + trie.depth[n] for n in fed], dtype=torch.long
        )
        allowed[b, 0, pad:, pad:] = tree_attention_block(torch, len(p), trie, fed)
        idx = torch.arange(pad)
        allowed[b, 0, idx, idx] = True  # padding rows see themselves: no all-masked (NaN) rows
    mask = mask_for_model(torch, allowed, impl, dtype)
    logits = model(
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        logits_to_keep=keep,
        use_cache=False,
    ).logits
    out = []
    for b, ((p, trie), fed) in enumerate(zip(rows, feds)):
        # kept window = the last `keep` positions; this row's last prompt token is
        # len(fed) + 1 positions before the end, then one row per fed node: trie.logit_rows()
        first = keep - len(fed) - 1
        lp = torch.log_softmax(logits[b, first:].float(), dim=-1)
        out.append(trie_logprob_tensor(torch, lp, trie, trie.logit_rows()))
    return out


def _prefix_then_trie(
    torch: Any, model: Any, prompt: list[int], trie: ChoiceTrie, impl: str, dtype: Any, device: Any
) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    n = len(prompt)
    head = model(
        input_ids=torch.tensor([prompt], device=device), cache=cache, use_cache=True, logits_to_keep=1
    )
    fed = trie.inner_nodes()  # leaves are never fed (ChoiceTrie.inner_nodes)
    logits = head.logits[0, -1:]
    if fed:
        allowed = torch.ones((1, 1, len(fed), n + len(fed)), dtype=torch.bool)
        allowed[0, 0, :, n:] = tree_attention_block(torch, 0, trie, fed)
        positions = torch.tensor([[n + trie.depth[k] for k in fed]], device=device)
        tail = model(
            input_ids=torch.tensor([[trie.tokens[k] for k in fed]], device=device),
            cache=cache,
            attention_mask=mask_for_model(torch, allowed, impl, dtype).to(device),
            position_ids=positions,
            use_cache=True,
            logits_to_keep=len(fed),
        )
        logits = torch.cat([logits, tail.logits[0]], dim=0)
    lp = torch.log_softmax(logits.float(), dim=-1)
    return trie_logprob_tensor(torch, lp, trie, trie.logit_rows())


def tree_choice_logprobs(
    llm: Any,
    prompt_ids: Sequence[Sequence[int]],
    choice_ids: Sequence[Sequence[Sequence[int]]],
    batch_size: int,
) -> list[list[float]]:
    """Score every choice of every prompt (no cache, no gradients), ``batch_size`` prompts per pass."""
    torch = llm.torch
    items = list(zip(prompt_ids, choice_ids))
    out: list[list[float]] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        with torch.inference_mode():
            scores = choice_logprob_tensors(
                torch,
                llm.model,
                llm.tokenizer.pad_token_id,
                [p for p, _ in chunk],
                [c for _, c in chunk],
                device=llm.device,
            )
        out.extend([float(x) for x in s.tolist()] for s in scores)
    return out


__all__ = [
    "ChoiceTrie",
    "choice_logprob_tensors",
    "label_choices",
    "pick_worst",
    "worst_probabilities",
    "mask_for_model",
    "tree_attention_block",
    "tree_choice_logprobs",
    "trie_logprob_tensor",
    "trie_logprobs",
]
