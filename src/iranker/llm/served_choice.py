"""Label scoring over an OpenAI-compatible API, from the server's top token log-probabilities.

A server cannot run ``choice_tree``'s one-pass tree mask, but every OpenAI-compatible server
can return, for each token it generates, the log-probabilities of its ``top_logprobs`` most
likely alternatives. That is enough to score a label such as ``<answer>[12]``: the labels are
laid out as the same prefix tree ``choice_tree.ChoiceTrie`` builds locally, and each tree node
that has children (one distinct next-token branch) costs one request whose reply gives the
distribution of the next token. A label's log-probability is the sum of its tokens' entries
along its path, exactly as ``trie_logprob_tensor`` sums them locally.

Requests are cheap when the server caches prompts: every request of one step extends the same
prompt by a few tokens. A request at a node asks for as many tokens as the tree is deep below
it, and every reply position whose greedy token is a tree edge gives that node's distribution
too, so a chain such as ``<``, ``answer``, ``>``, ``[`` costs one request, not four.

Two ways to know a label's tokens:

- ``static``: a local tokenizer of the served model tokenises each label (``ChoiceTrie`` on
  its token ids, matched to the server's token strings); every token is scored, so the scores
  are those of the local backend (up to the server's numerics).
- ``dynamic`` (no tokenizer): the reply is prefilled with the ``<answer>`` tag all labels share
  (a constant, so it never changes which label wins) and the label is cut into the longest
  token of each reply's top list that continues it.

A token that is not in a reply's top list has a log-probability below the smallest listed
one; that value is used as its upper bound and counted (``TreeScores.bounded``) rather than
hidden. Only this module parses server replies (``completion_positions``, ``chat_positions``);
malformed ones raise ``ServerReplyError``, a reply without log-probabilities raises
``NoLogprobsError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..parsing import ANSWER_OPEN  # the tag every label choice starts with (choice_tree.label_choices)
from .base import BackendError
from .choice_tree import ChoiceTrie


class ServerReplyError(BackendError):
    """A server reply's log-probabilities are not in the OpenAI shape (names what is wrong)."""


class NoLogprobsError(BackendError):
    """A server replied without the token log-probabilities that were asked for."""


class LabelNotScorableError(BackendError):
    """Without a tokenizer, a label could not be cut into tokens the server listed."""


@dataclass(frozen=True)
class Position:
    """One generated token of a reply: its text and its top alternatives (text -> log-prob)."""

    token: str
    top: dict[str, float]


#: ``ask(text, max_tokens)``: the reply positions after the prompt continued by ``text``
Ask = Callable[[str, int], list[Position]]


@dataclass
class TreeScores:
    """Per label, its summed log-probability; ``requests`` made, ``bounded`` tokens missing from
    a top list (scored by the smallest listed log-probability, an upper bound)."""

    scores: list[float]
    requests: int = 0
    bounded: int = 0


# -- parsing server replies -------------------------------------------------------------------
def _logprob(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServerReplyError(f"{where} is {value!r}, not a number")
    out = float(value)
    if math.isnan(out) or out > 1e-6:
        raise ServerReplyError(f"{where} is {out!r}, not a log-probability (<= 0)")
    return min(out, 0.0)


def _first_choice(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ServerReplyError(f"the reply is a {type(payload).__name__}, not a JSON object")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise ServerReplyError("the reply has no 'choices' list with an object in it")
    return choices[0]


def completion_positions(payload: Any) -> list[Position]:
    """Positions of a ``/v1/completions`` reply (``logprobs: {tokens, top_logprobs}``)."""
    choice = _first_choice(payload)
    lp = choice.get("logprobs")
    if lp is None:
        raise NoLogprobsError(
            "the /v1/completions reply has no 'logprobs' (the 'logprobs' field was ignored)"
        )
    if not isinstance(lp, Mapping):
        raise ServerReplyError("choices[0].logprobs is not an object")
    tokens, tops = lp.get("tokens"), lp.get("top_logprobs")
    if tops is None:
        raise NoLogprobsError("the /v1/completions reply has no 'logprobs.top_logprobs'")
    if not isinstance(tokens, list) or not isinstance(tops, list) or len(tokens) != len(tops):
        raise ServerReplyError("choices[0].logprobs needs 'tokens' and 'top_logprobs' lists of one length")
    out = []
    for i, (tok, top) in enumerate(zip(tokens, tops)):
        if not isinstance(tok, str):
            raise ServerReplyError(f"logprobs.tokens[{i}] is not a string")
        if not isinstance(top, Mapping) or not all(isinstance(k, str) for k in top):
            raise ServerReplyError(f"logprobs.top_logprobs[{i}] is not an object of token -> log-probability")
        out.append(
            Position(tok, {k: _logprob(v, f"logprobs.top_logprobs[{i}][{k!r}]") for k, v in top.items()})
        )
    return out


def chat_positions(payload: Any) -> list[Position]:
    """Positions of a ``/v1/chat/completions`` reply (``logprobs.content[i].top_logprobs``)."""
    choice = _first_choice(payload)
    lp = choice.get("logprobs")
    if lp is None:
        raise NoLogprobsError(
            "the /v1/chat/completions reply has no 'logprobs' (the 'logprobs' field was ignored)"
        )
    if not isinstance(lp, Mapping):
        raise ServerReplyError("choices[0].logprobs is not an object")
    content = lp.get("content")
    if not isinstance(content, list):
        raise NoLogprobsError("the /v1/chat/completions reply has no 'logprobs.content' list")
    out = []
    for i, item in enumerate(content):
        if not isinstance(item, Mapping) or not isinstance(item.get("token"), str):
            raise ServerReplyError(f"logprobs.content[{i}] has no string 'token'")
        alts = item.get("top_logprobs")
        if not isinstance(alts, list) or not alts:
            raise NoLogprobsError(
                f"logprobs.content[{i}] has no 'top_logprobs' (the 'top_logprobs' field was ignored)"
            )
        top: dict[str, float] = {}
        for j, alt in enumerate(alts):
            if not isinstance(alt, Mapping) or not isinstance(alt.get("token"), str):
                raise ServerReplyError(f"logprobs.content[{i}].top_logprobs[{j}] has no string 'token'")
            lpv = _logprob(alt.get("logprob"), f"logprobs.content[{i}].top_logprobs[{j}].logprob")
            top[alt["token"]] = max(lpv, top.get(alt["token"], -math.inf))
        if "logprob" in item:
            top.setdefault(item["token"], _logprob(item["logprob"], f"logprobs.content[{i}].logprob"))
        out.append(Position(item["token"], top))
    return out


# -- walking the label tree -------------------------------------------------------------------
class _Distributions:
    """Next-token distributions by the reply text they follow, filled from replies' positions."""

    def __init__(self, ask: Ask) -> None:
        self.ask = ask
        self.known: dict[str, dict[str, float]] = {}
        self.requests = 0

    def after(self, text: str, depth: int) -> dict[str, float]:
        if text not in self.known:
            positions = self.ask(text, max(1, depth))
            self.requests += 1
            if not positions:
                raise ServerReplyError("the reply has no token log-probabilities (no token was generated)")
            consumed = text
            for pos in positions:
                if not pos.top:
                    raise ServerReplyError("a reply position has an empty top_logprobs list")
                self.known.setdefault(consumed, pos.top)
                if not pos.token:
                    break  # an end-of-text token: what follows is not a continuation
                consumed += pos.token
        return self.known[text]


def _lookup(top: Mapping[str, float], token: str) -> tuple[float, bool]:
    """(log-prob of ``token``, whether it was bounded: absent from the list)."""
    if token in top:
        return top[token], False
    return min(top.values()), True


def score_static(label_tokens: Sequence[Sequence[str]], ask: Ask) -> TreeScores:
    """Score labels whose tokens are known (token strings as the server spells them).

    The tree is ``ChoiceTrie.build`` on the token strings (interned to ints), i.e. the tree
    the local backend lays out; every node with children gets the distribution of its next
    token from one reply (or from a longer reply that passed through it).
    """
    if not label_tokens or any(not toks or any(not t for t in toks) for toks in label_tokens):
        raise ValueError("every label needs at least one non-empty token")
    ids: dict[str, int] = {}
    seqs = [[ids.setdefault(t, len(ids)) for t in toks] for toks in label_tokens]
    trie = ChoiceTrie.build(seqs)
    strings = {v: k for k, v in ids.items()}
    has_child = set(p for p in trie.parent)
    height = [0] * len(trie)
    for node in reversed(range(len(trie))):  # children always come after their parent
        if trie.parent[node] >= 0:
            height[trie.parent[node]] = max(height[trie.parent[node]], height[node] + 1)
    root_height = 1 + max((height[n] for n in range(len(trie)) if trie.parent[n] == -1), default=0)

    def text_of(node: int) -> str:
        return (
            "".join(strings[trie.tokens[a]] for a in reversed(trie.ancestors_or_self(node)))
            if node >= 0
            else ""
        )

    dists = _Distributions(ask)
    edge: dict[int, tuple[float, bool]] = {}
    for parent in sorted(has_child):  # -1 first, then in creation order (parents before children)
        top = dists.after(text_of(parent), root_height if parent < 0 else height[parent])
        for node in range(len(trie)):
            if trie.parent[node] == parent:
                edge[node] = _lookup(top, strings[trie.tokens[node]])
    scores = [sum(edge[n][0] for n in path) for path in trie.paths]
    bounded = sum(1 for b in edge.values() if b[1])
    return TreeScores(scores, dists.requests, bounded)


def shared_answer_prefix(labels: Sequence[str]) -> str:
    """``<answer>`` when every label starts with it (and continues after it), else ``""``."""
    if labels and all(lab.startswith(ANSWER_OPEN) and len(lab) > len(ANSWER_OPEN) for lab in labels):
        return ANSWER_OPEN
    return ""


def score_dynamic(labels: Sequence[str], ask: Ask, *, prefix: str = "") -> TreeScores:
    """Score label strings with no tokenizer: from ``prefix`` on (prefilled, not scored), each
    label is cut into the longest token of the server's top list that continues it; labels
    cut the same way share a request. A label no listed token continues cannot be scored
    without a tokenizer (``LabelNotScorableError``)."""
    if not labels or any(not lab.startswith(prefix) or len(lab) <= len(prefix) for lab in labels):
        raise ValueError("every label must continue the prefix with at least one character")
    dists = _Distributions(ask)
    scores = [0.0] * len(labels)
    bounded = 0
    frontier: dict[str, list[int]] = {prefix: list(range(len(labels)))}
    while frontier:
        text, members = next(iter(frontier.items()))
        del frontier[text]
        depth = max(len(labels[i]) - len(text) for i in members)
        top = dists.after(text, min(depth, 8))
        for i in members:
            rest = labels[i][len(text) :]
            fits = [t for t in top if t and rest.startswith(t)]
            if not fits:
                raise LabelNotScorableError(
                    f"no token among the server's top {len(top)} continues the label {labels[i]!r} after "
                    f"{text!r}; pass the served model's tokenizer (--tokenizer) so labels are tokenised exactly"
                )
            tok = max(fits, key=len)
            scores[i] += top[tok]
            if len(tok) < len(rest):
                frontier.setdefault(text + tok, []).append(i)
    return TreeScores(scores, dists.requests, bounded)


@dataclass
class ChoiceStats:
    """What label scoring cost at the server, summed over requests (``requests``, prompt tokens
    sent, tokens generated, tokens scored by a bound) and, where the server reports it
    (``usage.prompt_tokens_details.cached_tokens`` or llama.cpp's ``timings.prompt_n``), the
    prompt tokens it actually evaluated (``evaluated`` over ``evaluated_reported`` requests)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    evaluated: int = 0
    evaluated_reported: int = 0
    bounded: int = 0
    per_prompt: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, int]:
        return {
            k: int(getattr(self, k))
            for k in (
                "requests",
                "prompt_tokens",
                "completion_tokens",
                "evaluated",
                "evaluated_reported",
                "bounded",
            )
        }


def evaluated_prompt_tokens(payload: Any) -> int | None:
    """Prompt tokens the server says it evaluated (not served from its cache), if it says."""
    if not isinstance(payload, Mapping):
        return None
    timings = payload.get("timings")
    if isinstance(timings, Mapping) and isinstance(timings.get("prompt_n"), int):
        return int(timings["prompt_n"])
    usage = payload.get("usage")
    if isinstance(usage, Mapping):
        details = usage.get("prompt_tokens_details")
        total = usage.get("prompt_tokens")
        if (
            isinstance(details, Mapping)
            and isinstance(details.get("cached_tokens"), int)
            and isinstance(total, int)
        ):
            return max(0, total - int(details["cached_tokens"]))
    return None


__all__ = [
    "ChoiceStats",
    "LabelNotScorableError",
    "NoLogprobsError",
    "Position",
    "ServerReplyError",
    "TreeScores",
    "chat_positions",
    "completion_positions",
    "evaluated_prompt_tokens",
    "score_dynamic",
    "score_static",
    "shared_answer_prefix",
]
