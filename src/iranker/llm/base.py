"""The one protocol every LLM backend implements.

Rankers only ever talk to this protocol, so a scripted double (tests), a local transformers
model, a vLLM engine and a remote OpenAI-compatible server are interchangeable. Prompts are
chat messages (``[{"role": ..., "content": ...}]``): each backend applies the chat template its
model expects. A prompt may end with an open ``assistant`` message (a prefilled reply start,
``PromptTemplate.response_prefix``): backends then continue that message instead of opening a
new one (``chat_template_flags``) and return only the generated continuation.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

Messages = list[dict[str, str]]


def is_prefilled(messages: Sequence[dict[str, str]]) -> bool:
    """True when ``messages`` end with an assistant message the model should continue."""
    return bool(messages) and messages[-1].get("role") == "assistant"


def chat_template_flags(messages: Sequence[dict[str, str]]) -> dict[str, bool]:
    """``apply_chat_template`` / vLLM flags: continue a final assistant message, else open one.

    The same two names are used by transformers' ``apply_chat_template``, vLLM's ``LLM.chat``
    and vLLM's OpenAI-compatible server (as extra request fields).
    """
    if is_prefilled(messages):
        return {"add_generation_prompt": False, "continue_final_message": True}
    return {"add_generation_prompt": True}


@dataclass
class Completion:
    """One generated answer and the tokens it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class LLMBackend(Protocol):
    """Batched chat generation.

    ``generate`` receives every prompt of one elimination round at once so that backends can
    batch them (left-padded batches in transformers, one ``LLM.generate`` call in vLLM,
    concurrent requests for a server). It must return exactly one ``Completion`` per prompt,
    in order. ``temperature == 0`` means greedy; ``seed`` makes sampling reproducible.
    """

    name: str

    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[Completion]: ...


@runtime_checkable
class ChoiceScorer(Protocol):
    """Optional capability: log-probability of each choice string as the continuation.

    Returns, per prompt, one log-probability per choice (summed over the choice's tokens).
    Used for single-forward choice scoring; backends that cannot do it simply do not
    implement it.
    """

    def choice_logprobs(
        self, prompts: Sequence[Messages], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]: ...


@runtime_checkable
class EvictionSession(Protocol):
    """One example's elimination prompt held in a KV cache and edited by eviction.

    ``prefill`` processes the prompt once (``segments`` = ``(candidate id, segment text)`` as
    the scenario rendered them); ``generate`` / ``choice_logprobs`` answer the current pool's
    messages by processing only what follows the cached part (the question); ``evict`` drops
    an eliminated candidate's tokens from the cache; ``close`` frees it.
    """

    def prefill(self, messages: Messages, segments: Sequence[tuple[str, str]]) -> int: ...

    def evict(self, candidate_id: str) -> int: ...

    def generate(
        self, messages: Messages, *, max_new_tokens: int = 256, temperature: float = 0.0, seed: int = 0
    ) -> Completion: ...

    def choice_logprobs(self, messages: Messages, choices: Sequence[str]) -> list[float]: ...

    def close(self) -> None: ...


@runtime_checkable
class EvictionCapable(Protocol):
    """Optional capability: KV-cache candidate eviction (``IterativeRanker(reuse="kv")``).

    ``eviction_session()`` returns a fresh ``EvictionSession`` for one example.
    """

    def eviction_session(self, **options: Any) -> EvictionSession: ...


def can_evict(backend: Any) -> bool:
    """Whether ``backend`` can run ``reuse="kv"``: it has the capability and its model allows it
    (``backend.evicts``: False for a model with sliding-window layers, whose cache holds only
    the window, so a candidate's span cannot be cut out of it)."""
    return isinstance(backend, EvictionCapable) and bool(getattr(backend, "evicts", True))


class BackendError(RuntimeError):
    """A backend failed in a way the user can act on (bad model path, server down, ...)."""


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the exact install command."""

    def __init__(self, extra: str, package: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"The '{package}' package is needed{what} but is not installed. "
            f"Install it with: pip install 'iranker[{extra}]'"
        )
        self.extra = extra
        self.package = package


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional dependency or raise ``MissingExtraError`` naming the extra."""

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(extra, module.split(".")[0], purpose) from exc
