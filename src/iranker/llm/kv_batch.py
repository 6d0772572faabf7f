"""Several KV-eviction sessions advance one elimination step together, in one forward pass.

A ranking step on a small model costs mostly per-pass overhead (``results/2026-12-03-speed``:
an 8-token pass cost 40% of a 65-token one), and ``IterativeRanker(reuse="kv")`` ran its
examples' steps one after another: eval, ``rank`` and the server paid that overhead once per
example per step. Here the step of every session is one batch:

- **the step** (``batched_choice_logprobs``): each session's cache is copied into one padded
  batch cache (its slots first, masked padding after; the copy is a few MB per example, small
  beside a forward pass), each row feeds its own question and choice trie with its own
  positions and 4-D mask, and the output head runs only for the rows the read-outs need;
- **the re-encoding after an eviction** (``flush_refreshes``): ``evict(..., defer_refresh=True)``
  cuts the span at once and leaves the re-encoding of the next few tokens for later; the
  deferred re-encodings of all sessions then run as one batch, each row seeing exactly the
  slots a pass of its own would show it, and their keys and values are written back into each
  session's own slots.

The sessions' caches are never modified by the step (the batch cache is a copy), so a session
can always go on alone. Per row the arithmetic is what the batch-1 pass computes; how the
matrix kernels round a larger batch can differ in the last bit, which in bf16 can flip a
near-tie (measured by ``benchmarks/kv_batch.py``; a test checks fp32 agreement).

Measured here it is an option, not the default (``IterativeRanker(kv_batch=True)``): a step of
~60 new tokens against a ~600-token cache is bound by its arithmetic on this CPU, so four
N = 20 rankings batched were only 1.19x as fast as one after another
(``results/2026-12-04-speed/kv_batch.md``), and in bf16 none of the four rankings stayed
identical (every differing step a near-tie) - below the bar an inexact change must reach.
On a GPU, or with many short requests, per-pass overhead is what batching removes.

torch comes from the sessions' backend object, like the rest of ``iranker.llm``.
"""

from __future__ import annotations

from typing import Any, Sequence

from .base import Messages
from .choice_tree import ChoiceTrie, mask_for_model, tree_attention_block
from .kv_eviction import KVEvictionSession


def batchable(session: Any) -> bool:
    """Whether ``session`` can join a batched step (a stable ``KVEvictionSession`` whose
    refresh is not deferred into the step pass)."""
    return isinstance(session, KVEvictionSession) and session.stable and session._pending is None


def _batch_cache(llm: Any, caches: Sequence[Any], lengths: Sequence[int], width: int) -> Any:
    """A ``DynamicCache`` of batch ``len(caches)``: row ``b`` holds the first ``lengths[b]`` slots
    of ``caches[b]``, zero padding up to ``width`` (masked by the caller)."""
    from transformers import DynamicCache

    torch = llm.torch
    batch = DynamicCache(config=llm.model.config)
    sources = [[layer for layer in c.layers if getattr(layer, "keys", None) is not None] for c in caches]
    for i, layer in enumerate(batch.layers):
        first = sources[0][i].keys
        heads, dim = first.shape[1], first.shape[-1]
        keys = torch.zeros((len(caches), heads, width, dim), dtype=first.dtype, device=first.device)
        values = torch.zeros_like(keys)
        for b, (src, n) in enumerate(zip(sources, lengths)):
            if n:
                keys[b, :, :n] = src[i].keys[0, :, :n]
                values[b, :, :n] = src[i].values[0, :, :n]
        layer.keys, layer.values = keys, values
        layer.device = first.device
        layer.is_initialized = True
    return batch


def _padded_forward(
    llm: Any,
    caches: Sequence[Any],
    rows: Sequence[tuple[list[int], list[int], Any, int]],
    keep: Any,
) -> Any:
    """One forward pass of several sessions' new tokens after copies of their caches.

    ``rows[b] = (ids, positions, block, seen)``: row ``b`` feeds ``ids`` at ``positions``; its
    tokens see the first ``seen`` slots of ``caches[b]`` and each other as the ``[k, k]``
    boolean ``block`` says. Rows are padded to one width (padding tokens see only themselves,
    so no row is all masked). Returns the model output and the batch cache, whose new keys and
    values start at slot ``max(seen)``.
    """
    torch = llm.torch
    width = max(seen for _, _, _, seen in rows)
    q = max(len(ids) for ids, _, _, _ in rows)
    pad = int(llm.tokenizer.pad_token_id if llm.tokenizer.pad_token_id is not None else 0)
    input_ids = torch.full((len(rows), q), pad, dtype=torch.long)
    position_ids = torch.zeros((len(rows), q), dtype=torch.long)
    allowed = torch.zeros((len(rows), 1, q, width + q), dtype=torch.bool)
    for b, (ids, positions, block, seen) in enumerate(rows):
        k = len(ids)
        input_ids[b, :k] = torch.tensor(ids, dtype=torch.long)
        position_ids[b, :k] = torch.tensor(positions, dtype=torch.long)
        allowed[b, 0, :k, :seen] = True
        allowed[b, 0, :k, width : width + k] = block
        idle = torch.arange(k, q)
        allowed[b, 0, idle, width + idle] = True
    impl = getattr(llm.model.config, "_attn_implementation", "sdpa")
    dtype = llm.dtype if not isinstance(llm.dtype, str) else torch.float32
    cache = _batch_cache(llm, caches, [seen for _, _, _, seen in rows], width)
    device = llm.device
    with torch.inference_mode():
        out = llm.model(
            input_ids=input_ids.to(device),
            position_ids=position_ids.to(device),
            attention_mask=mask_for_model(torch, allowed, impl, dtype).to(device),
            cache=cache,
            use_cache=True,
            logits_to_keep=keep,
        )
    return out, cache


def batched_choice_logprobs(
    sessions: Sequence[Any], messages: Sequence[Messages], choices: Sequence[Sequence[str]]
) -> list[list[float]]:
    """``[s.choice_logprobs(m, c) for ...]`` with every batchable session in one forward pass.

    Sessions that cannot join (not ``KVEvictionSession``, unstable layout, a refresh deferred
    into the step) and a batch of one take their own ``choice_logprobs``: the batch-1 path
    stays what it was.
    """
    if not (len(sessions) == len(messages) == len(choices)):
        raise ValueError("one prompt and one list of choices per session")
    out: list[list[float] | None] = [None] * len(sessions)
    rows: list[tuple[int, Any, list[int], ChoiceTrie]] = []
    for i, (s, m, c) in enumerate(zip(sessions, messages, choices)):
        if not batchable(s):
            out[i] = s.choice_logprobs(m, c)
            continue
        s._flush_refresh()
        tail = s._tail_for(m)  # may re-prefill this session (batch 1)
        if not batchable(s):
            out[i] = s.choice_logprobs(m, c)
            continue
        tok = s.llm.tokenizer
        rows.append(
            (i, s, tail, ChoiceTrie.build([tok(x, add_special_tokens=False)["input_ids"] for x in c]))
        )
    if len(rows) == 1:
        i, s, _, _ = rows[0]
        out[i] = s.choice_logprobs(messages[i], choices[i])
        rows = []
    if rows:
        for (i, _, _, _), scores in zip(rows, _step(rows)):
            out[i] = scores
    return [o if o is not None else [] for o in out]


def _step(rows: list[tuple[int, Any, list[int], ChoiceTrie]]) -> list[list[float]]:
    llm = rows[0][1].llm
    torch = llm.torch
    feds = [trie.inner_nodes() for _, _, _, trie in rows]  # leaves are never fed
    inputs, wanted = [], []
    for (_, s, tail, trie), fed in zip(rows, feds):
        start = s._next_position()
        inputs.append(
            (
                tail + [trie.tokens[n] for n in fed],
                list(range(start, start + len(tail))) + [start + len(tail) + trie.depth[n] for n in fed],
                tree_attention_block(torch, len(tail), trie, fed),
                s.cache_length(),
            )
        )
        wanted.append([len(tail) - 1 + i for i in range(1 + len(fed))])
    keep = sorted({r for w in wanted for r in w})
    where = {r: j for j, r in enumerate(keep)}
    out, _ = _padded_forward(
        llm, [s._cache for _, s, _, _ in rows], inputs, torch.tensor(keep, dtype=torch.long)
    )
    results = []
    for b, ((_, s, tail, trie), fed) in enumerate(zip(rows, feds)):
        picked = out.logits[b, [where[r] for r in wanted[b]]]
        s.stats.step_tokens += len(tail)
        s.stats.answer_tokens += len(fed)
        results.append(s._readout(picked, trie, trie.logit_rows()))
    return results


def flush_refreshes(sessions: Sequence[Any]) -> None:
    """Run every session's deferred re-encoding (``evict(..., defer_refresh=True)``) as one batch.

    Row ``b`` feeds the cached tokens of its slots ``lo:we`` at their positions, seeing its slots
    ``:lo`` and the refreshed tokens before it - what ``_refresh_after`` shows them in a pass of
    their own - and the new keys and values go back into those slots.
    """
    todo = [s for s in sessions if isinstance(s, KVEvictionSession) and s._deferred is not None]
    if len(todo) <= 1:
        for s in todo:
            s._flush_refresh()
        return
    llm = todo[0].llm
    torch = llm.torch
    windows = [s._deferred for s in todo]
    inputs = [
        (s._ids[lo:we], s._pos[lo:we], torch.tril(torch.ones((we - lo, we - lo), dtype=torch.bool)), lo)
        for s, (lo, we) in zip(todo, windows)
    ]
    _, cache = _padded_forward(
        llm, [s._cache for s in todo], inputs, torch.zeros(0, dtype=torch.long, device=llm.device)
    )
    width = max(lo for lo, _ in windows)
    for b, (s, (lo, we)) in enumerate(zip(todo, windows)):
        k = we - lo
        for layer, new in zip(s._layers(), cache.layers):
            keys = layer.keys.clone() if layer.keys._base is not None else layer.keys
            values = layer.values.clone() if layer.values._base is not None else layer.values
            keys[..., lo:we, :] = new.keys[b : b + 1, :, width : width + k]
            values[..., lo:we, :] = new.values[b : b + 1, :, width : width + k]
            layer.keys, layer.values = keys, values
        s._deferred = None
        s.stats.refresh_tokens += k


__all__ = ["batchable", "batched_choice_logprobs", "flush_refreshes"]
