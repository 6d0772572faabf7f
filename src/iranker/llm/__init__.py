"""LLM backends behind one protocol, and ``load_backend`` to build one by name.

Heavy libraries (torch, transformers, vllm, openai) are imported only inside the backend
that needs them, so ``import iranker`` stays fast and a missing extra fails with an install
hint only when that backend is asked for.
"""

from __future__ import annotations

from typing import Any

from .base import BackendError, ChoiceScorer, Completion, LLMBackend, Messages, MissingExtraError
from .scripted import ScriptedLLM

BACKENDS = ("transformers", "openai", "vllm", "scripted")

#: the default model: the trained fast ranker shipped in iranker (a LoRA adapter on the embedded
#: SmolLM2-135M; ranks with decode=choice, reuse=kv as its iranker.json records). The untrained
#: base stays available as ``smollm2-135m``.
DEFAULT_MODEL = "iranker-135m"
#: the untrained embedded base model
BASE_MODEL = "smollm2-135m"


def load_backend(backend: str = "transformers", model: str | None = None, **kwargs: Any) -> LLMBackend:
    """Build the backend called ``backend`` for ``model`` (HF id, folder, GGUF file or alias).

    Keyword arguments go to the backend's constructor (e.g. ``base_url`` for ``openai``,
    ``threads`` for ``transformers``).
    """
    if backend == "scripted":
        policy = model or "last"
        if policy in ("last", "eliminate-last"):
            llm = ScriptedLLM.eliminate_last()
        elif policy in ("first", "eliminate-first"):
            llm = ScriptedLLM.eliminate_first()
        else:
            raise ValueError("the scripted backend takes --model last or --model first")
        if kwargs.get("keep_calls") is not None:
            llm.keep_calls(int(kwargs["keep_calls"]))
        return llm
    if backend == "transformers":
        from .transformers_backend import TransformersLLM

        return TransformersLLM(model or DEFAULT_MODEL, **kwargs)
    if backend == "openai":
        from .openai_backend import OpenAILLM

        if not model:
            raise ValueError("the openai backend needs --model (the server's model name)")
        return OpenAILLM(model, **kwargs)
    if backend == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend(model or DEFAULT_MODEL, **kwargs)
    raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "BackendError",
    "ChoiceScorer",
    "Completion",
    "BASE_MODEL",
    "DEFAULT_MODEL",
    "LLMBackend",
    "Messages",
    "MissingExtraError",
    "ScriptedLLM",
    "load_backend",
]
