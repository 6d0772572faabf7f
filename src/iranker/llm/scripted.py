"""A deterministic LLM double that implements the real backend protocol.

It is used by unit tests and by anyone who wants to exercise rankers, the CLI or the server
without a model. It reads the labels (``[1]``, ``[2]``, ...) of the candidates shown in a
prompt and answers with a policy: a fixed answer, a list of answers in turn, or a function of
the messages. Token counts are whitespace word counts, so usage accounting is exercised too.
"""

from __future__ import annotations

import collections
import re
from typing import Callable, Iterable, Sequence

from .base import Completion, Messages, is_prefilled

LABEL_LINE = re.compile(r"^(\[\d+\])\s?(.*)$", re.MULTILINE)

Responder = Callable[[Messages], str]


def shown_labels(messages: Messages) -> list[str]:
    """Labels of the candidates shown in the last user message, in display order."""
    user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    return [m.group(1) for m in LABEL_LINE.finditer(user)]


def is_direct_prompt(messages: Messages) -> bool:
    """True when the prompt asks for a full order (the direct questions say 'Rank all')."""
    user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    return "Rank all" in user.rsplit("\n\n", 1)[-1]


def _count(text: str) -> int:
    return len(text.split())


class ScriptedLLM:
    """Deterministic backend. ``responder`` maps a prompt's messages to the answer text.

    Policies as constructors:
      - ``ScriptedLLM.eliminate_last()`` removes the last shown candidate each step and
        ranks candidates in displayed order for direct prompts;
      - ``ScriptedLLM.eliminate_first()`` the opposite;
      - ``ScriptedLLM.replay(texts)`` answers with ``texts`` in turn (cycling);
      - ``ScriptedLLM(fn)`` any function of the messages.
    ``calls`` records every batch it was sent (the list of prompts), for assertions; a
    long-running user (``iranker serve --backend scripted``) calls ``keep_calls(n)`` so only
    the last ``n`` are kept, and ``n_calls`` still counts them all.
    """

    name = "scripted"

    def __init__(
        self, responder: Responder, *, logprob_fn: Callable[[Messages, str], float] | None = None
    ) -> None:
        self._responder = responder
        self._logprob_fn = logprob_fn
        self.calls: list[list[Messages]] | collections.deque = []
        self.n_calls = 0

    def keep_calls(self, n: int) -> "ScriptedLLM":
        """Keep only the last ``n`` batches in ``calls`` (the server would otherwise grow by
        about 10 MB per 1,000 requests)."""
        self.calls = collections.deque(self.calls, maxlen=max(0, n))
        return self

    def _record(self, prompts: Sequence[Messages]) -> None:
        self.n_calls += 1
        self.calls.append([list(p) for p in prompts])

    # -- policies ---------------------------------------------------------------------------
    @classmethod
    def eliminate_last(cls) -> "ScriptedLLM":
        def respond(messages: Messages) -> str:
            labels = shown_labels(messages)
            if is_direct_prompt(messages):
                return f"<think>keep the shown order</think><answer>{' > '.join(labels)}</answer>"
            return f"<think>the last one fits least</think><answer>{labels[-1]}</answer>"

        return cls(respond)

    @classmethod
    def eliminate_first(cls) -> "ScriptedLLM":
        def respond(messages: Messages) -> str:
            labels = shown_labels(messages)
            if is_direct_prompt(messages):
                return (
                    f"<think>reverse the shown order</think><answer>{' > '.join(reversed(labels))}</answer>"
                )
            return f"<think>the first one fits least</think><answer>{labels[0]}</answer>"

        return cls(respond)

    @classmethod
    def replay(cls, texts: Iterable[str]) -> "ScriptedLLM":
        items = list(texts)
        if not items:
            raise ValueError("replay needs at least one text")
        state = {"i": 0}

        def respond(messages: Messages) -> str:
            text = items[state["i"] % len(items)]
            state["i"] += 1
            return text

        return cls(respond)

    # -- protocol ---------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[Completion]:
        self._record(prompts)
        out = []
        for messages in prompts:
            text = self._responder(list(messages))
            # A real model continues a prefilled reply start and returns only what follows it.
            prefill = messages[-1]["content"] if is_prefilled(messages) else ""
            if prefill and text.startswith(prefill):
                text = text[len(prefill) :]
            words = text.split()
            if len(words) > max_new_tokens:  # honour the budget like a real model would
                text = " ".join(words[:max_new_tokens])
            prompt_tokens = sum(_count(m["content"]) for m in messages)
            out.append(Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=_count(text)))
        return out

    def choice_logprobs(
        self, prompts: Sequence[Messages], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Scores from ``logprob_fn``; by default later-shown choices score lower."""
        self._record(prompts)
        out = []
        for messages, opts in zip(prompts, choices):
            if self._logprob_fn is not None:
                out.append([float(self._logprob_fn(messages, c)) for c in opts])
            else:
                out.append([-float(i) for i in range(len(opts))])
        return out
