"""A local copy of a served model's tokenizer, chat template and recorded ranking settings.

A remote server applies its own chat template on ``/v1/chat/completions`` but not on
``/v1/completions``, and never says how it tokenises a label. Given the served model's name
as iranker knows it (``iranker-135m``, ``smollm2-135m``, a trained folder, a checkpoint folder
or a hub id in the local cache), the OpenAI backend renders prompts exactly as the local
backend does (``render_prompt``), tokenises labels as the local tree does, and a trained
folder's templates and ranking mode travel with it. Only the tokenizer is loaded, never
weights (the embedded GGUF is read through the cached fp32 folder, made once if missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..run_info import trained_ranking, trained_templates
from .base import BackendError, require
from .models import ResolvedModel, adapter_tokenizer_dir, dense_model_dir, resolve_model
from .transformers_backend import ensure_chat_template


@dataclass
class LocalTokenizer:
    """The tokenizer of ``name`` and what its folder records (templates, ranking mode)."""

    name: str
    tokenizer: Any
    templates: dict = field(default_factory=dict)
    ranking: dict[str, str] = field(default_factory=dict)


def _tokenizer_folder(resolved: ResolvedModel) -> str:
    if resolved.kind == "adapter":
        own = adapter_tokenizer_dir(resolved.path)
        assert resolved.base is not None
        return own or _tokenizer_folder(resolved.base)
    if resolved.kind == "gguf":
        return str(dense_model_dir(resolved.path))
    return resolved.path


def load_local_tokenizer(name: str) -> LocalTokenizer:
    """Load ``name``'s tokenizer (with a chat template) and its recorded templates/ranking."""

    transformers = require("transformers", "transformers", "the served model's tokenizer (--tokenizer)")
    resolved = resolve_model(name)
    templates: dict = {}
    ranking: dict[str, str] = {}
    if resolved.is_local:
        try:
            templates = trained_templates(resolved.path)
            ranking = trained_ranking(resolved.path)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
    folder = _tokenizer_folder(resolved)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot load the tokenizer of {name!r} from {folder!r}: {exc}") from exc
    ensure_chat_template(tokenizer)
    return LocalTokenizer(resolved.name, tokenizer, templates, ranking)


def label_token_strings(tokenizer: Any, label: str) -> list[str]:
    """``label``'s tokens as text (how a server names them in ``top_logprobs``), checked to
    spell the label exactly: a token that is only part of a character cannot be matched."""
    ids = tokenizer(label, add_special_tokens=False)["input_ids"]
    strings = [tokenizer.decode([i]) for i in ids]
    if not strings or "".join(strings) != label:
        raise BackendError(
            f"the tokenizer splits the label {label!r} into tokens that do not spell it one by one "
            f"({strings!r}); its log-probability cannot be read from a server's top_logprobs"
        )
    return strings


__all__ = ["LocalTokenizer", "label_token_strings", "load_local_tokenizer"]
