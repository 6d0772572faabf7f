"""Label scoring from top token log-probabilities: reply parsing and the label-tree walk.

The walk is checked against a small deterministic language model over a fixed vocabulary
(its next-token distribution is a function of the text so far), whose exact label
log-probabilities are computed independently by summing it token by token.
"""

from __future__ import annotations

import math
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iranker.llm.base import BackendError
from iranker.llm.served_choice import (
    LabelNotScorableError,
    NoLogprobsError,
    Position,
    ServerReplyError,
    chat_positions,
    completion_positions,
    evaluated_prompt_tokens,
    score_dynamic,
    score_static,
    shared_answer_prefix,
)

VOCAB = ["<", "answer", ">", "[", "1", "2", "3", "0", "]", " ", "x", "12", "ans"]


def toy_distribution(text: str) -> dict[str, float]:
    """log-softmax over VOCAB of scores hashed from (text, token): any text, fixed answer."""
    raw = [((zlib.crc32(f"{text}|{tok}".encode()) % 1000) / 250.0) for tok in VOCAB]
    z = math.log(sum(math.exp(r) for r in raw))
    return {tok: r - z for tok, r in zip(VOCAB, raw)}


class ToyServer:
    """Answers ``ask`` like a greedy server with ``top`` alternatives per position."""

    def __init__(self, top: int = len(VOCAB)) -> None:
        self.top = top
        self.asked: list[tuple[str, int]] = []

    def __call__(self, text: str, max_tokens: int) -> list[Position]:
        self.asked.append((text, max_tokens))
        out = []
        for _ in range(max_tokens):
            dist = toy_distribution(text)
            best = sorted(dist, key=dist.get, reverse=True)[: self.top]
            out.append(Position(best[0], {t: dist[t] for t in best}))
            text += best[0]
        return out


def exact(tokens: list[str]) -> float:
    text, total = "", 0.0
    for tok in tokens:
        total += toy_distribution(text)[tok]
        text += tok
    return total


LABELS = [
    ["<", "answer", ">", "[", "1", "]"],
    ["<", "answer", ">", "[", "2", "]"],
    ["<", "answer", ">", "[", "1", "2", "]"],
    ["<", "answer", ">", "[", "3", "]"],
]


def test_static_scores_equal_the_token_by_token_sum():
    server = ToyServer()
    result = score_static(LABELS, server)
    assert result.scores == pytest.approx([exact(t) for t in LABELS], abs=1e-12)
    assert result.bounded == 0
    # one request per tree node with children, minus those a greedy reply passed through:
    # internal nodes are root, <, answer, >, [, [1, [2, [12, [3 (9), so at most 9 requests
    assert result.requests == len(server.asked) <= 9
    assert server.asked[0] == ("", 7)  # the root asks as deep as the deepest label


def test_a_greedy_reply_fills_the_nodes_it_passes():
    # a server that always answers "<answer>[" greedily covers the chain in its first reply
    class Chain(ToyServer):
        def __call__(self, text, max_tokens):
            self.asked.append((text, max_tokens))
            out = []
            for _ in range(max_tokens):
                dist = toy_distribution(text)
                nxt = {"": "<", "<": "answer", "<answer": ">", "<answer>": "["}.get(
                    text, max(dist, key=dist.get)
                )
                out.append(Position(nxt, dist))
                text += nxt
            return out

    server = Chain()
    result = score_static(LABELS, server)
    assert result.scores == pytest.approx([exact(t) for t in LABELS], abs=1e-12)
    asked = [t for t, _ in server.asked]
    assert "<" not in asked and "<answer>" not in asked  # covered by the root's reply


def test_missing_tokens_are_bounded_and_counted():
    server = ToyServer(top=3)
    result = score_static(LABELS, server)
    assert result.bounded > 0
    for score, toks in zip(result.scores, LABELS):
        assert score >= exact(toks) - 1e-12  # an upper bound, never below the truth


def test_dynamic_cuts_labels_by_the_longest_listed_token():
    server = ToyServer()
    labels = ["<answer>[1]", "<answer>[12]", "<answer>[3]"]
    result = score_dynamic(labels, server, prefix="<answer>")
    # from "<answer>", the longest listed token continuing "[12]" is "[", then "12", then "]"
    expected = [
        toy_distribution("<answer>")["["]
        + toy_distribution("<answer>[")["1"]
        + toy_distribution("<answer>[1")["]"],
        toy_distribution("<answer>")["["]
        + toy_distribution("<answer>[")["12"]
        + toy_distribution("<answer>[12")["]"],
        toy_distribution("<answer>")["["]
        + toy_distribution("<answer>[")["3"]
        + toy_distribution("<answer>[3")["]"],
    ]
    assert result.scores == pytest.approx(expected, abs=1e-12)
    assert all(text.startswith("<answer>") for text, _ in server.asked)


def test_dynamic_names_a_label_it_cannot_cut():
    with pytest.raises(LabelNotScorableError, match=r"'<answer>\[9\]'.*--tokenizer"):
        score_dynamic(["<answer>[1]", "<answer>[9]"], ToyServer(), prefix="<answer>")


def test_shared_answer_prefix():
    assert shared_answer_prefix(["<answer>[1]", "<answer>[2]"]) == "<answer>"
    assert shared_answer_prefix(["<answer>[1]", "[2]"]) == ""
    assert shared_answer_prefix(["<answer>"]) == ""


def test_empty_labels_are_refused():
    with pytest.raises(ValueError):
        score_static([["a"], []], ToyServer())
    with pytest.raises(ValueError):
        score_dynamic(["<answer>"], ToyServer(), prefix="<answer>")


# -- parsing replies ---------------------------------------------------------------------------
LLAMA_CPP_COMPLETION = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "text": "<",
            "index": 0,
            "finish_reason": "length",
            "logprobs": {
                "tokens": ["<"],
                "text_offset": [10],
                "token_logprobs": [-0.1],
                "top_logprobs": [{"<": -0.1, "The": -2.5}],
            },
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
}
OPENAI_CHAT = {
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "[3"},
            "finish_reason": "length",
            "logprobs": {
                "content": [
                    {
                        "token": "[",
                        "logprob": -0.01,
                        "bytes": [91],
                        "top_logprobs": [
                            {"token": "[", "logprob": -0.01, "bytes": [91]},
                            {"token": " [", "logprob": -4.7},
                        ],
                    },
                    {"token": "3", "logprob": -0.4, "top_logprobs": [{"token": "3", "logprob": -0.4}]},
                ]
            },
        }
    ],
    "usage": {"prompt_tokens": 30, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 24}},
}


def test_parse_completions_reply():
    (pos,) = completion_positions(LLAMA_CPP_COMPLETION)
    assert pos == Position("<", {"<": -0.1, "The": -2.5})


def test_parse_chat_reply():
    first, second = chat_positions(OPENAI_CHAT)
    assert first == Position("[", {"[": -0.01, " [": -4.7})
    assert second.token == "3" and second.top == {"3": -0.4}


def test_replies_without_logprobs_are_named():
    no_lp = {"choices": [{"text": "x", "logprobs": None}]}
    with pytest.raises(NoLogprobsError, match="/v1/completions reply has no 'logprobs'"):
        completion_positions(no_lp)
    with pytest.raises(NoLogprobsError, match="/v1/chat/completions reply has no 'logprobs'"):
        chat_positions({"choices": [{"message": {"content": "x"}}]})
    no_top = {"choices": [{"logprobs": {"content": [{"token": "x", "logprob": -1.0, "top_logprobs": []}]}}]}
    with pytest.raises(NoLogprobsError, match="top_logprobs"):
        chat_positions(no_top)


def test_evaluated_prompt_tokens():
    assert evaluated_prompt_tokens(OPENAI_CHAT) == 6
    assert evaluated_prompt_tokens({"timings": {"prompt_n": 3, "cache_n": 40}}) == 3
    assert evaluated_prompt_tokens(LLAMA_CPP_COMPLETION) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["choices", "logprobs", "tokens", "top_logprobs", "content", "token", "logprob", "x"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_reply_parses_or_raises_a_named_error(payload):
    for parse in (completion_positions, chat_positions):
        try:
            out = parse(payload)
        except (ServerReplyError, NoLogprobsError) as exc:
            assert isinstance(exc, BackendError) and str(exc)
        else:
            assert all(isinstance(p.token, str) and all(v <= 0 for v in p.top.values()) for p in out)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(VOCAB), min_size=1, max_size=5), min_size=1, max_size=6, unique_by=tuple
    )
)
def test_static_matches_the_exact_sum_for_any_label_set(labels):
    # a label that is a prefix of another is still scored on its own path
    result = score_static(labels, ToyServer())
    assert result.scores == pytest.approx([exact(t) for t in labels], abs=1e-9)
