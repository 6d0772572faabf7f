"""Compute the elimination prompt once: KV-cache candidate eviction and tree choice scoring.

Iterative elimination asks N-1 questions about almost the same prompt. Re-sending it every
step prefills ~N^2/2 candidate segments; this module prefills it **once** per example and then
edits the KV cache instead of the text.

Layout (``scenarios/base.py``): ``system + header | segment_1 ... segment_N | question``.
A ``KVEvictionSession`` keeps the KV cache of everything before the question. Each step it

1. renders and tokenizes the step's messages and checks that they start with exactly the
   cached tokens (the layout contract, verified every step, not assumed);
2. feeds only the rest - the question, end-of-user and the assistant header (and, for a
   re-ask, the previous answer and the follow-up turn) - then generates an answer or scores the
   candidate labels;
3. crops the cache back to the persistent part; ``evict(candidate_id)`` then deletes the
   eliminated candidate's token span from every layer's keys and values.

What a step costs (``benchmarks/step_profile.py``, ``results/2026-12-03-speed``). On a small
model a forward pass of a few dozen tokens costs mostly per-pass overhead. The exact
savings are on by default: the prefill and re-encoded tokens skip the output head (only their
keys and values are kept), the read-out computes output-head rows only for trie nodes that
predict a scored token, and an eviction cuts and re-rotates the cache in one copy per layer.
Letting the re-encoded tokens ride in the next step's pass (``refresh_in_step``) saves a pass
per step but is not bit-exact in bf16, so it is an option.

Batch 1: one session per example, run one after another by ``IterativeRanker(reuse="kv")``.
After evictions every example's cache has its own length and holes, so batching examples
would mean re-padding (copying) every cache at every step; with choice scoring a step is one
short forward pass and batch 1 costs little, with generation the decode loop is batch 1
(on CPU, batched decoding is ~4x faster per token: see the benchmark).

What an evicted cache gets wrong, and the defaults. After evicting segment k, the tokens of
later segments still hold keys and values computed while segment k was visible (causal
attention: nothing *before* it ever saw it). Two cheap corrections, chosen by measuring
agreement with exact re-prompting (choice scoring along the exact trajectory, SmolLM2-135M;
see ``results/2026-11-27-elimination-cost``):

- ``positions="shift"`` (default): the keys after the evicted span are re-rotated by
  ``-len(span)`` (RoPE is a rotation), so positions stay contiguous as in the re-prompted
  text. The issue's literal design keeps the original position ids (``"next"``: new tokens
  continue right after the last cached position; ``"original"``: they keep their position in
  the full prompt). All three are exact when the evicted segment is the last one before the
  question, except ``"original"``, whose question then sits after a gap that exact
  re-prompting does not have (it alone moved scores by ~1 nat).
- ``refresh=8`` (default): the first 8 tokens after the evicted span - the next candidate's
  label, which attended most to the evicted text right before it - are re-encoded.
  With neither, or one of them, 26-67% of steps agree with exact re-prompting; with both,
  96% / 89% / 79% for N = 5 / 10 / 20, at 8 extra tokens per step. ``refresh=-1``
  re-encodes everything after the span and is exact (a test checks it), at the cost of
  re-prompting the suffix.

The remaining disagreements are near-ties: zero-shot SmolLM2 barely prefers one label over
another (median gap between the two best label log-probabilities ~0.25 nats); on steps where
exact re-prompting prefers its label by at least 0.5 nats, eviction agreed on 96-100%.

Spans. The rendered prompt is tokenized with ``return_offsets_mapping`` and each segment's
character span is mapped to token indices. A span is usable only when both its ends fall on
token boundaries (no token straddles them); with SmolLM2's tokenizer and the scenarios'
layout (every segment ends with ``"\\n"``, ``"\\n\\n"`` is two tokens) they always do. If a
tokenizer merges across a boundary the session says so (``stable=False``) and re-prefills the
exact prompt at every step instead of editing the cache: slower, never wrong.

Choice scoring. ``tree_choice_logprobs`` lays a prompt and a *trie* of the choices' tokens out
as one sequence with a 4-D attention mask (each choice token sees the prompt and its own
prefix only), so all choices are scored in one forward pass - with a cache (after the
question) or without one (``TransformersLLM.choice_logprobs``).

torch is imported lazily (from the backend object), like the rest of ``iranker.llm``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Sequence

from .base import Completion, Messages
from .choice_tree import ChoiceTrie, mask_for_model, tree_attention_block, tree_choice_logprobs, trie_logprobs
from .stop import first_stop

POSITIONS = ("shift", "next", "original")
#: tokens re-encoded after each evicted span by default (see ``KVEvictionSession``)
DEFAULT_REFRESH = 8


class LayoutError(ValueError):
    """The messages do not follow the header | segments | question layout the session needs."""


# -- the session ----------------------------------------------------------------------------------
@dataclass
class SessionStats:
    """Tokens the session pushed through the model, by kind."""

    prefill_tokens: int = 0  # the persistent part (once, plus any re-prefill)
    step_tokens: int = 0  # question / follow-up tokens fed each step
    answer_tokens: int = 0  # generated tokens fed back, and choice-trie nodes
    prefills: int = 0
    evicted_tokens: int = 0
    refresh_tokens: int = 0  # segments re-encoded after an eviction (``refresh``)

    @property
    def prompt_tokens(self) -> int:
        return self.prefill_tokens + self.step_tokens + self.refresh_tokens


class KVEvictionSession:
    """One example's elimination prompt, prefilled once and edited by eviction (batch 1).

    Args:
        llm: a ``TransformersLLM`` (uses its model, tokenizer, ``render`` and stop handling).
        positions: position ids after an eviction -
            ``"shift"`` (default): the keys after an evicted span are re-rotated (RoPE is a
            rotation, so rotating by ``-len(span)`` moves a key back by that many positions),
            so positions stay contiguous exactly as in the re-prompted text;
            ``"next"``: cached tokens keep their original position ids (their keys already
            carry that rotation; an evicted span leaves a gap) and new tokens continue right
            after the last cached position;
            ``"original"``: like ``"next"`` but new tokens also keep their position in the
            original full prompt (the question never moves).
        refresh: after an eviction, re-encode this many tokens that followed the evicted span
            (default 8): their keys and values were computed while it was visible, and they
            are the next candidate's label, which the answer refers to. ``0`` re-encodes
            nothing, ``-1`` everything after it (then, with ``positions="shift"``, the cache
            equals a fresh prefill of the shorter prompt).
        refresh_in_step: re-encode those tokens in the next step's forward pass instead of a
            pass of their own (default False). A step on a small model costs mostly per-pass
            overhead, so this saved ~25% of the time of a ranking; their keys and values are
            written into their own slots (``SpliceLayer``) and the step's mask lets them see
            only what a separate pass would show them, so the numbers equal the separate
            pass's up to how the bf16 matrix kernels round a larger batch of rows (a test
            checks them in fp32). In bf16 that rounding flipped 2 of 19 near-tie steps of a
            recommendation ranking (``results/2026-12-03-speed``), below the 99% step
            agreement an inexact change must reach, hence off by default. Generation and
            ``feed`` re-encode first, in a pass of their own.
        fresh_tokens: how much of the prompt's end is recomputed each step. ``None``
            (default): everything after the candidate block (the question, end-of-user and
            the assistant header). ``k``: the whole prompt is cached once and only its last
            ``k`` tokens are recomputed (``k >= 1``); the question's keys were then computed
            with every candidate visible (an extra approximation that makes a step cost
            ~``k`` prompt tokens).

    Use: ``prefill(messages, segments)`` once, then per step ``generate(messages, ...)`` or
    ``choice_logprobs(messages, choices)`` and ``evict(candidate_id)``. ``stats`` counts the
    tokens pushed through the model.
    """

    def __init__(
        self,
        llm: Any,
        *,
        positions: str = "shift",
        refresh: int = DEFAULT_REFRESH,
        fresh_tokens: int | None = None,
        refresh_in_step: bool = False,
    ) -> None:
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        if fresh_tokens is not None and int(fresh_tokens) < 1:
            raise ValueError("fresh_tokens must be None or >= 1")
        self.llm = llm
        self.torch = llm.torch
        self.positions = positions
        self.fresh_tokens = None if fresh_tokens is None else int(fresh_tokens)
        if int(refresh) < -1:
            raise ValueError("refresh must be >= 0, or -1 for every following token")
        self.refresh = int(refresh)
        self.refresh_in_step = bool(refresh_in_step)
        #: slots ``(lo, we)`` whose keys/values are stale until re-encoded (``refresh_in_step``)
        self._pending: tuple[int, int] | None = None
        #: slots ``(lo, we)`` to re-encode before the next use (``evict(defer_refresh=True)``):
        #: ``kv_batch.flush_refreshes`` re-encodes those of several sessions in one pass
        self._deferred: tuple[int, int] | None = None
        self.stats = SessionStats()
        self.stable = True
        self._cache: Any = None
        self._ids: list[int] = []  # token ids held in the cache, slot by slot
        self._pos: list[int] = []  # their position ids
        self._orig: list[int] = []  # their index in the original (prefill) token sequence
        self._orig_len = 0  # length of the persistent part at prefill
        self._spans: dict[str, tuple[int, int]] = {}  # candidate id -> original token span
        self._segments: dict[str, str] = {}  # candidate id -> segment text (for re-prefill)
        self._order: list[str] = []  # candidates still in the cache, in order
        self._inv_freq: Any = None
        if positions == "shift":
            self._inv_freq = self._rope_inv_freq()

    # -- inspection -----------------------------------------------------------------------------
    @property
    def cached_ids(self) -> list[int]:
        """Token ids of the persistent cache, slot by slot."""
        return list(self._ids)

    @property
    def cached_positions(self) -> list[int]:
        return list(self._pos)

    @property
    def pool(self) -> list[str]:
        """Candidates whose segments are still cached, in display order."""
        return list(self._order)

    def span(self, candidate_id: str) -> tuple[int, int]:
        """The candidate's token span ``[start, end)`` in the original prefill sequence."""
        return self._spans[candidate_id]

    def cache_length(self) -> int:
        if self._cache is None:
            return 0
        return int(self._cache.get_seq_length())

    # -- tokenization ---------------------------------------------------------------------------
    def _encode(self, messages: Messages) -> list[int]:
        return list(self.llm.tokenizer(self.llm.render(messages), add_special_tokens=False)["input_ids"])

    @staticmethod
    def _boundary(offsets: Sequence[tuple[int, int]], ends: Sequence[int], char: int) -> int | None:
        """Token index ``k`` such that tokens ``< k`` end at or before ``char`` and tokens
        ``>= k`` start at or after it; ``None`` when a token straddles ``char``."""
        k = bisect.bisect_right(ends, char)
        if k < len(offsets) and offsets[k][0] < char:
            return None
        return k

    def locate(self, messages: Messages, segments: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Tokenize the rendered prompt and map every segment to its token span.

        Returns ``ids``, ``spans`` (id -> ``(start, end)`` token indices), ``block_end`` (the
        token index right after the last segment) and ``stable`` (every segment boundary is a
        token boundary, i.e. no token merges a segment with its neighbour).
        """
        text = self.llm.render(messages)
        enc = self.llm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        block = "".join(seg for _, seg in segments)
        if not segments or not block:
            raise LayoutError("no candidate segments to locate")
        start = text.rfind(block)
        if start < 0:
            raise LayoutError(
                "the candidate segments do not appear, contiguous and in order, in the rendered prompt"
            )
        ends = [e for _, e in offsets]
        for i in range(1, len(ends)):  # make the ends monotone for bisect
            if ends[i] < ends[i - 1]:
                ends[i] = ends[i - 1]
        spans: dict[str, tuple[int, int]] = {}
        stable = True
        pos = start
        for cid, seg in segments:
            a = self._boundary(offsets, ends, pos)
            b = self._boundary(offsets, ends, pos + len(seg))
            if a is None or b is None or b <= a:
                stable = False
                a = a if a is not None else 0
                b = b if b is not None else a
            spans[cid] = (a, b)
            pos += len(seg)
        block_end = spans[segments[-1][0]][1]
        return {"ids": ids, "spans": spans, "block_end": block_end, "stable": stable, "text": text}

    # -- model plumbing -------------------------------------------------------------------------
    def _rope_inv_freq(self) -> Any:
        model = self.llm.model
        for module in model.modules():
            inv = getattr(module, "inv_freq", None)
            if inv is not None and hasattr(module, "rope_type"):
                if (
                    getattr(module, "rope_type", "default") not in ("default", "linear", "llama3")
                    or float(getattr(module, "attention_scaling", 1.0)) != 1.0
                ):
                    break
                return inv.detach().float()
        raise NotImplementedError(
            "positions='shift' needs a model with plain rotary embeddings (RoPE with no attention scaling)"
        )

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        cache = DynamicCache(config=self.llm.model.config)
        if any(getattr(layer, "is_sliding", False) for layer in cache.layers):
            raise NotImplementedError("KV eviction needs full-attention layers (no sliding window)")
        if cache.layers and all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers):
            layer_class = splice_layer_class()
            cache.layers = [layer_class() for _ in cache.layers]
        return cache

    def _set_splice(self, at: int | None, length: int = 0) -> bool:
        """Make the next forward write its first ``length`` keys/values into slots ``at:``."""
        layers = self._cache.layers if self._cache is not None else []
        if not layers or not all(hasattr(layer, "splice_at") for layer in layers):
            return False
        for layer in layers:
            layer.splice_at, layer.splice_len = at, length
        return True

    def _forward(
        self, ids: Sequence[int], positions: Sequence[int], *, mask: Any = None, keep: Any = 1
    ) -> Any:
        """Run ``ids`` after the cache; logits of the last ``keep`` positions, or of the
        positions listed in a ``keep`` tensor, or ``None`` for ``keep=None`` (only the cache is
        wanted: the prefill and re-encoded tokens skip the ``vocab``-wide output head)."""
        torch = self.torch
        device = self.llm.device
        if keep is None:
            keep = torch.zeros(0, dtype=torch.long, device=device)
        with torch.inference_mode():
            out = self.llm.model(
                input_ids=torch.tensor([list(ids)], dtype=torch.long, device=device),
                position_ids=torch.tensor([list(positions)], dtype=torch.long, device=device),
                attention_mask=None if mask is None else mask.to(device),
                cache=self._cache,
                use_cache=True,
                logits_to_keep=keep,
            )
        return out.logits[0] if out.logits.shape[1] else None

    def _crop_to(self, length: int) -> None:
        extra = self.cache_length() - length
        if extra > 0:
            self._cache.crop(-extra)

    def _layers(self) -> list[Any]:
        return [
            layer
            for layer in self._cache.layers
            if getattr(layer, "keys", None) is not None and getattr(layer, "is_initialized", True)
        ]

    def _rotation(self, delta: int, like: Any) -> tuple[Any, Any]:
        """``cos``/``sin`` rows that move a RoPE key by ``-delta`` positions, in ``like``'s dtype."""
        torch = self.torch
        angle = -float(delta) * self._inv_freq  # [head_dim / 2]
        emb = torch.cat([angle, angle])
        return emb.cos().to(like.device, like.dtype), emb.sin().to(like.device, like.dtype)

    @staticmethod
    def _rotate(torch: Any, keys: Any, cos: Any, sin: Any) -> Any:
        half = keys.shape[-1] // 2
        rotated = torch.cat([-keys[..., half:], keys[..., :half]], dim=-1)
        return keys * cos + rotated * sin

    def _cut(self, lo: int, hi: int, shift: bool) -> None:
        """Delete slots ``lo:hi`` of every layer; with ``shift``, the keys after them are
        re-rotated back by ``hi - lo`` positions in the same pass (one new tensor per layer
        instead of a cut and then a rotated copy: the same values, one cache copy fewer)."""
        torch = self.torch
        cos = sin = None
        for layer in self._layers():
            tail = layer.keys[..., hi:, :]
            if shift and tail.shape[-2]:
                if cos is None:
                    cos, sin = self._rotation(hi - lo, layer.keys)
                tail = self._rotate(torch, tail, cos, sin)
            layer.keys = torch.cat([layer.keys[..., :lo, :], tail], dim=-2)
            layer.values = torch.cat([layer.values[..., :lo, :], layer.values[..., hi:, :]], dim=-2)

    # -- lifecycle ------------------------------------------------------------------------------
    def prefill(self, messages: Messages, segments: Sequence[tuple[str, str]]) -> int:
        """Prefill the persistent part of the prompt; returns the number of tokens processed.

        ``segments`` are ``(candidate id, segment text)`` in display order, exactly as the
        scenario rendered them (``Scenario.candidate_segments``). The persistent part is
        everything before the question (or all but the last ``fresh_tokens`` tokens).
        """
        info = self.locate(messages, segments)
        self.stable = bool(info["stable"])
        self._segments = {cid: seg for cid, seg in segments}
        self._order = [cid for cid, _ in segments]
        self._cache = self._new_cache()
        self._pending = None
        self._deferred = None
        ids = info["ids"]
        if not self.stable:
            end = 0
        elif self.fresh_tokens is None:
            end = info["block_end"]
        else:
            end = max(info["block_end"], len(ids) - self.fresh_tokens)
        base = ids[:end]
        self._spans = dict(info["spans"]) if self.stable else {}
        self._ids = list(base)
        self._pos = list(range(len(base)))
        self._orig = list(range(len(base)))
        self._orig_len = len(base)
        if base:
            self._forward(base, self._pos, keep=None)
        self.stats.prefill_tokens += len(base)
        self.stats.prefills += 1
        return len(base)

    def evict(self, candidate_id: str, *, defer_refresh: bool = False) -> int:
        """Delete the candidate's token span from the cache; returns the tokens removed.

        ``defer_refresh``: leave the re-encoding of the tokens after the span for the next use
        of the session, or for ``kv_batch.flush_refreshes`` to do for several sessions in one
        pass (the same numbers as a pass of its own, up to kernel rounding)."""
        if candidate_id not in self._order:
            raise KeyError(f"candidate {candidate_id!r} is not in this session's pool")
        self._flush_refresh()
        self._order.remove(candidate_id)
        if not self.stable or candidate_id not in self._spans:
            return 0
        s, e = self._spans.pop(candidate_id)
        lo = bisect.bisect_left(self._orig, s)
        hi = bisect.bisect_left(self._orig, e)
        if hi <= lo:
            return 0
        self._crop_to(len(self._ids))
        shift = self.positions == "shift" and hi < len(self._ids)
        self._cut(lo, hi, shift)
        del self._ids[lo:hi], self._pos[lo:hi], self._orig[lo:hi]
        if shift:
            self._pos[lo:] = [p - (hi - lo) for p in self._pos[lo:]]
        self.stats.evicted_tokens += hi - lo
        if self.refresh:
            we = len(self._ids) if self.refresh < 0 else min(len(self._ids), lo + self.refresh)
            if defer_refresh and not self.refresh_in_step and we > lo:
                self._deferred = (lo, we)
            elif self.refresh_in_step and we > lo and self._set_splice(None):
                self._pending = (lo, we)  # re-encoded by the next choice_logprobs
                self.stats.refresh_tokens += we - lo
            else:
                self._refresh_after(lo)
        return hi - lo

    def _flush_refresh(self) -> None:
        """Re-encode a deferred refresh now, in a pass of its own."""
        if self._deferred is not None:
            lo, we = self._deferred
            self._deferred = None
            self._refresh_after(lo, we)
        if self._pending is not None:
            lo, we = self._pending
            self._pending = None
            self.stats.refresh_tokens -= we - lo  # counted again by _refresh_after
            self._refresh_after(lo, we)

    def _refresh_after(self, lo: int, we: int | None = None) -> None:
        """Re-encode the cached tokens of slots ``lo:we`` after an evicted span (now at slot
        ``lo``); by default the first ``refresh`` of them.

        They attended most to the evicted tokens right before them - and they are the next
        candidate's label, which choice scoring compares. The tokens after the window keep
        their keys and values.
        """
        if we is None:
            we = len(self._ids) if self.refresh < 0 else min(len(self._ids), lo + self.refresh)
        if we <= lo:
            return
        torch = self.torch
        rest = [(layer.keys[..., we:, :], layer.values[..., we:, :]) for layer in self._layers()]
        self._crop_to(lo)
        self._forward(self._ids[lo:we], self._pos[lo:we], keep=None)
        for layer, (k, v) in zip(self._layers(), rest):
            layer.keys = torch.cat([layer.keys, k], dim=-2)
            layer.values = torch.cat([layer.values, v], dim=-2)
        self.stats.refresh_tokens += we - lo

    def close(self) -> None:
        """Free the cache."""
        self._cache = None
        self._pending = None
        self._deferred = None

    # -- one step -------------------------------------------------------------------------------
    def _next_position(self) -> int:
        """Position id of the first token fed after the persistent cache."""
        if not self._pos:
            return 0
        if self.positions == "original":
            return max(self._orig_len, self._pos[-1] + 1)
        return self._pos[-1] + 1

    def _remaining_segments(self) -> list[tuple[str, str]]:
        return [(cid, self._segments[cid]) for cid in self._order]

    def _tail_for(self, messages: Messages) -> list[int]:
        """The tokens to feed after the cache for ``messages``.

        The messages must start with exactly the cached tokens (the layout contract, checked
        at every step: one tokenization). If they do not, the session re-prefills the current
        prompt (counted in ``stats.prefills``); if even that does not line up (a tokenizer
        that merges across segment boundaries) it stops caching and feeds the whole prompt
        every step - exact, just not faster.
        """
        ids = self._encode(messages)
        n = len(self._ids)
        if not self.stable:
            self._crop_to(0)
            return ids
        if ids[:n] == self._ids and len(ids) > n:
            return ids[n:]
        self.prefill(list(messages[:2]), self._remaining_segments())  # system + elimination prompt
        n = len(self._ids)
        if self.stable and ids[:n] == self._ids and len(ids) > n:
            return ids[n:]
        self.stable = False
        self._cache = self._new_cache()
        self._ids, self._pos, self._orig, self._spans = [], [], [], {}
        self._orig_len = 0
        return ids

    def feed(self, tokens: Sequence[int], *, keep: int = 1) -> Any:
        """Feed ``tokens`` after everything in the cache; logits of the last ``keep`` of them.

        They stay in the cache until ``reset()``.
        """
        self._flush_refresh()
        start = self._next_position() + (self.cache_length() - len(self._ids))
        return self._forward(tokens, list(range(start, start + len(tokens))), keep=keep)

    def reset(self) -> None:
        """Drop everything after the persistent part (question, answers, trie nodes)."""
        self._crop_to(len(self._ids))

    def generate(
        self,
        messages: Messages,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> Completion:
        """Answer ``messages`` (the current pool's prompt, possibly with a re-ask turn).

        Greedy when ``temperature == 0`` (the same argmax decoding as the backend's
        ``generate``); sampling draws from a generator seeded with ``seed``. Stops at EOS or
        right after ``</answer>``. ``prompt_tokens`` counts the prompt tokens this call pushed
        through the model (the prefill on a first or repeated prefill, then only the question).
        """

        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        torch = self.torch
        before = self.stats.prompt_tokens
        tail = self._tail_for(messages)
        self.stats.step_tokens += len(tail)
        logits = self.feed(tail)[-1]
        eos = set(self.llm.eos_ids)
        gen = torch.Generator().manual_seed(int(seed)) if temperature > 0 else None
        out: list[int] = []
        for i in range(max_new_tokens):
            if temperature > 0:
                probs = torch.softmax(logits.float() / float(temperature), dim=-1).cpu()
                token = int(torch.multinomial(probs, 1, generator=gen))
            else:
                token = int(torch.argmax(logits))
            out.append(token)
            if token in eos or i == max_new_tokens - 1:
                break
            if first_stop(self.llm.tokenizer.decode(out[-12:], skip_special_tokens=True)) is not None:
                break
            logits = self.feed([token])[-1]
            self.stats.answer_tokens += 1
        self.reset()
        comp = self.llm.completion(out, 0)
        comp.prompt_tokens = self.stats.prompt_tokens - before
        return comp

    def choice_logprobs(self, messages: Messages, choices: Sequence[str]) -> list[float]:
        """Log-probability of each choice as the assistant's reply, in one forward pass:
        the question followed by a trie of the choices' tokens, after the cached prompt."""
        if self._deferred is not None:
            self._flush_refresh()
        tail = self._tail_for(messages)  # a re-prefill here drops any deferred refresh
        lo, we = self._pending if self._pending is not None else (0, 0)
        trie, ids, positions, mask, rows = self._choice_inputs(tail, choices, (lo, we))
        # the last question token, then every fed trie node: one kept row each (trie.logit_rows())
        keep = self.torch.tensor(
            [(we - lo) + len(tail) - 1 + i for i in range(len(rows))], dtype=self.torch.long
        )
        if we > lo:
            self._set_splice(lo, we - lo)
        try:
            logits = self._forward(ids, positions, mask=mask, keep=keep)
        finally:
            if we > lo:
                self._set_splice(None)
                self._pending = None
        self.reset()
        self.stats.step_tokens += len(tail)
        self.stats.answer_tokens += len(rows) - 1
        return self._readout(logits, trie, rows)

    def _choice_inputs(
        self, tail: list[int], choices: Sequence[str], refresh: tuple[int, int] = (0, 0)
    ) -> tuple[ChoiceTrie, list[int], list[int], Any, list[int]]:
        """The trie of ``choices``, the step's tokens and positions, its 4-D mask (the question
        causal, each trie node seeing the question and its own ancestors, everything seeing the
        cache) and the logit rows the read-out needs (``ChoiceTrie.logit_rows``). Only the
        trie's inner nodes are fed (``ChoiceTrie.inner_nodes``): a leaf changes no scored logit.

        ``refresh = (lo, we)``: the cached tokens of slots ``lo:we`` go first and are written
        back into those slots; each sees slots ``:lo`` and itself and the refreshed tokens
        before it - exactly what a pass of their own would show it - and the step's tokens
        see the whole cache (those slots holding the new values) as usual."""
        torch = self.torch
        tok = self.llm.tokenizer
        trie = ChoiceTrie.build([tok(c, add_special_tokens=False)["input_ids"] for c in choices])
        n_cache = self.cache_length()
        lo, we = refresh
        r = we - lo
        fed = trie.inner_nodes()
        block = tree_attention_block(torch, len(tail), trie, fed)
        q = block.shape[0]
        allowed = torch.zeros((1, 1, r + q, n_cache + q), dtype=torch.bool)
        if r:
            allowed[0, 0, :r, :lo] = True
            allowed[0, 0, :r, lo:we] = torch.tril(torch.ones((r, r), dtype=torch.bool))
        allowed[0, 0, r:, :n_cache] = True
        allowed[0, 0, r:, n_cache:] = block
        impl = getattr(self.llm.model.config, "_attn_implementation", "sdpa")
        dtype = self.llm.dtype if not isinstance(self.llm.dtype, str) else torch.float32
        mask = mask_for_model(torch, allowed, impl, dtype)
        start = self._next_position()
        positions = (
            list(self._pos[lo:we])
            + list(range(start, start + len(tail)))
            + [start + len(tail) + trie.depth[n] for n in fed]
        )
        ids = list(self._ids[lo:we]) + tail + [trie.tokens[n] for n in fed]
        return trie, ids, positions, mask, trie.logit_rows()

    def _readout(self, logits: Any, trie: ChoiceTrie, rows: list[int]) -> list[float]:
        """Each choice's summed log-probability from the kept logit rows."""
        torch = self.torch
        return trie_logprobs(torch, torch.log_softmax(logits.float(), dim=-1), trie, rows)


_SPLICE: type | None = None


def splice_layer_class() -> type:
    """``SpliceLayer``: a transformers ``DynamicLayer`` that can write a forward's first keys
    and values into existing slots instead of appending them (built on first use)."""
    global _SPLICE
    if _SPLICE is not None:
        return _SPLICE
    import torch
    from transformers.cache_utils import DynamicLayer

    class SpliceLayer(DynamicLayer):
        """With ``splice_at = lo`` and ``splice_len = r``, ``update`` writes the first ``r`` new
        keys/values into slots ``lo:lo + r`` (re-encoded cached tokens) and appends the rest."""

        splice_at: int | None = None
        splice_len: int = 0

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if self.splice_at is None or not self.is_initialized:
                return super().update(key_states, value_states, *args, **kwargs)
            lo, r = self.splice_at, self.splice_len
            keys = (
                self.keys.clone() if self.keys._base is not None else self.keys
            )  # never write into a shared base
            values = self.values.clone() if self.values._base is not None else self.values
            keys[..., lo : lo + r, :] = key_states[..., :r, :]
            values[..., lo : lo + r, :] = value_states[..., :r, :]
            self.keys = torch.cat([keys, key_states[..., r:, :]], dim=-2)
            self.values = torch.cat([values, value_states[..., r:, :]], dim=-2)
            return self.keys, self.values

    _SPLICE = SpliceLayer
    return SpliceLayer


__all__ = [
    "ChoiceTrie",
    "KVEvictionSession",
    "LayoutError",
    "DEFAULT_REFRESH",
    "POSITIONS",
    "SessionStats",
    "tree_attention_block",
    "tree_choice_logprobs",
    "trie_logprobs",
]
