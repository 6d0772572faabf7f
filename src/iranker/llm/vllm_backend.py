"""Offline batched generation with vLLM (GPU only; the ``vllm`` extra).

One ``vllm.LLM`` engine is built once; every ``generate`` call hands the whole batch of an
elimination round to ``LLM.chat``, which applies the model's chat template and lets vLLM's
scheduler batch the requests. Automatic prefix caching is on by default because iterative
elimination re-sends almost the same prompt every step (same instructions, same query, a
shrinking candidate list), so the shared prefix's KV cache is reused instead of recomputed.

Everything that shapes a request (engine arguments, sampling parameters, reading outputs,
resolving the model) is a pure function that does not import vllm, so it is unit-tested on
machines without a GPU. The API used here was checked against vLLM's ``vllm/entrypoints/llm.py``
(``LLM.__init__``, ``LLM.chat``, ``LLM.generate``, ``LLM.get_tokenizer``), ``vllm/logprobs.py``
(``prompt_logprobs``), the ``SamplingParams`` reference, the GGUF guide
(``docs/features/quantization/gguf.md``) and the LoRA guide (``LoRARequest``).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from . import models
from .base import BackendError, Completion, Messages, chat_template_flags, is_prefilled, require
from .stop import STOP_STRINGS


# -- pure request shaping (no vllm import) ------------------------------------------------------
def engine_kwargs(
    model: str,
    *,
    tokenizer: str | None = None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    enable_prefix_caching: bool = True,
    dtype: str = "auto",
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM(**kwargs)``.

    ``enable_prefix_caching`` is always passed explicitly (default ``True``) rather than left
    to vLLM's default, which has changed between releases: elimination prompts share long
    prefixes, and the cache is what makes repeated rounds cheap. ``max_model_len`` and
    ``tokenizer`` are only passed when set, so vLLM keeps reading them from the model.
    Anything else (``enforce_eager``, ``quantization``, ``seed``, ...) passes through.
    """
    if tensor_parallel_size < 1:
        raise ValueError("tensor_parallel_size must be at least 1")
    if not 0.0 < gpu_memory_utilization <= 1.0:
        raise ValueError("gpu_memory_utilization must be in (0, 1]")
    kwargs: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": int(tensor_parallel_size),
        "gpu_memory_utilization": float(gpu_memory_utilization),
        "enable_prefix_caching": bool(enable_prefix_caching),
        "dtype": dtype,
    }
    if tokenizer is not None:
        kwargs["tokenizer"] = tokenizer
    if max_model_len is not None:
        kwargs["max_model_len"] = int(max_model_len)
    kwargs.update(extra)
    return kwargs


def sampling_kwargs(max_new_tokens: int, temperature: float, seed: int) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams(**kwargs)``.

    ``temperature == 0`` is vLLM's greedy decoding; then no seed is passed, since greedy has no
    randomness and seeded requests take vLLM's slower per-request-generator path. Generation
    stops at ``</answer>`` (the end of every answer format) and ``include_stop_str_in_output``
    keeps the tag, so answers look the same as from the other backends.
    """
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    kwargs: dict[str, Any] = {
        "max_tokens": int(max_new_tokens),
        "temperature": float(temperature),
        "stop": list(STOP_STRINGS),
        "include_stop_str_in_output": True,
    }
    if temperature > 0:
        kwargs["seed"] = int(seed)
    return kwargs


def scoring_kwargs() -> dict[str, Any]:
    """``SamplingParams`` for scoring a given continuation: one throwaway token, prompt logprobs.

    ``prompt_logprobs=1`` asks for the top-1 plus the actual prompt token at every position
    (vLLM always includes the actual token), which is what ``continuation_logprob`` reads.
    """
    return {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}


def completions_from_outputs(outputs: Sequence[Any]) -> list[Completion]:
    """``Completion``s from vLLM ``RequestOutput``s (text and token counts of the first sample)."""
    completions = []
    for output in outputs:
        sample = output.outputs[0]
        completions.append(
            Completion(
                text=sample.text,
                prompt_tokens=len(output.prompt_token_ids or ()),
                completion_tokens=len(sample.token_ids or ()),
            )
        )
    return completions


def continuation_logprob(
    prompt_logprobs: Sequence[Any], prompt_token_ids: Sequence[int], n_tokens: int
) -> float:
    """Sum of the log-probabilities of the last ``n_tokens`` prompt tokens.

    ``prompt_logprobs`` is vLLM's per-position list (``None`` at position 0, then a
    ``{token_id: Logprob}`` mapping; newer releases return a ``FlatLogprobs`` sequence that
    indexes the same way). The values may be ``Logprob`` objects or plain floats.
    """
    if n_tokens <= 0:
        return 0.0
    total = 0.0
    start = len(prompt_token_ids) - n_tokens
    if start < 1:
        raise BackendError("the scored continuation must follow a non-empty prompt")
    for pos in range(start, len(prompt_token_ids)):
        position = prompt_logprobs[pos]
        token = prompt_token_ids[pos]
        if position is None or token not in position:
            raise BackendError(f"vLLM returned no prompt logprob for token {token} at position {pos}")
        value = position[token]
        total += float(getattr(value, "logprob", value))
    return total


def choice_requests(
    tokenizer: Any, prompts: Sequence[Messages], choices: Sequence[Sequence[str]]
) -> tuple[list[dict[str, Any]], list[int]]:
    """Token prompts for scoring each choice after its prompt, and each choice's token count.

    The prompt is rendered with the chat template and the generation prompt (so the choice is
    scored as the start of the assistant's reply), then the choice is tokenized on its own and
    appended: the boundary between prompt and choice is exact, so exactly the choice's tokens
    are summed. Prompts go to ``LLM.generate`` as ``{"prompt_token_ids": [...]}``
    (vLLM's ``TokensPrompt``).
    """
    if len(prompts) != len(choices):
        raise ValueError("one list of choices per prompt")
    requests: list[dict[str, Any]] = []
    spans: list[int] = []
    for messages, options in zip(prompts, choices):
        prefix = tokenizer.apply_chat_template(
            list(messages), tokenize=False, **chat_template_flags(messages)
        )
        prefix_ids = list(tokenizer.encode(prefix, add_special_tokens=False))
        for option in options:
            option_ids = list(tokenizer.encode(option, add_special_tokens=False))
            requests.append({"prompt_token_ids": prefix_ids + option_ids})
            spans.append(len(option_ids))
    return requests, spans


def group_scores(flat: Sequence[float], choices: Sequence[Sequence[str]]) -> list[list[float]]:
    """Split the flat per-(prompt, choice) scores back into one list per prompt."""
    result, i = [], 0
    for options in choices:
        result.append(list(flat[i : i + len(options)]))
        i += len(options)
    return result


def is_gguf(path: str) -> bool:
    return str(path).lower().endswith(".gguf")


#: ranks vLLM accepts for ``max_lora_rank`` (its default is 16)
_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class VLLMTarget:
    """What to hand to vLLM for one ``--model``: engine model/tokenizer and an optional LoRA."""

    model: str
    tokenizer: str | None = None
    lora_path: str | None = None
    lora_rank: int | None = None

    def engine_extra(self) -> dict[str, Any]:
        """Engine arguments the target itself needs (LoRA support sized to the adapter)."""
        if self.lora_path is None:
            return {}
        extra: dict[str, Any] = {"enable_lora": True}
        if self.lora_rank and self.lora_rank > 16:
            extra["max_lora_rank"] = next((r for r in _LORA_RANKS if r >= self.lora_rank), self.lora_rank)
        return extra


def resolve_vllm_model(
    model: str,
    tokenizer: str | None = None,
    *,
    densify: Callable[[str], Any] | None = None,
) -> VLLMTarget:
    """Map ``--model`` to what ``vllm.LLM`` loads, via ``iranker.llm.models.resolve_model``.

    - a hub id or a local checkpoint folder is used as is;
    - the embedded alias (``smollm2-135m``) becomes the cached dense fp32 folder of its GGUF
      (``models.dense_model_dir``, shared with the transformers backend): a plain safetensors
      checkpoint with its tokenizer loads in any vLLM offline, whereas GGUF support in vLLM is
      experimental and recent releases moved it to a separate plugin;
    - any other ``.gguf`` file is loaded natively by vLLM from its path. vLLM's GGUF guide
      recommends passing the original model's tokenizer (``tokenizer="org/base-model"``)
      because converting the tokenizer stored in the GGUF is slow and fragile for large
      vocabularies; without one we let vLLM convert it and warn;
    - a PEFT adapter folder becomes its base model plus a LoRA applied to every request.

    ``densify`` replaces ``models.dense_model_dir`` (tests).
    """

    resolved = models.resolve_model(model)  # BackendError with a helpful message if bad
    if densify is None:
        densify = models.dense_model_dir
    return _target_for(resolved, tokenizer, densify, models)


def _target_for(
    resolved: Any, tokenizer: str | None, densify: Callable[[str], Any], models: Any
) -> VLLMTarget:
    kind = resolved.kind
    if kind in ("hub", "folder"):
        return VLLMTarget(resolved.path, tokenizer)
    if kind == "gguf":
        if resolved.name == models.EMBEDDED_ALIASES[0]:
            return VLLMTarget(os.fspath(densify(resolved.path)), tokenizer)
        if tokenizer is None:
            warnings.warn(
                f"loading {resolved.path} into vLLM with the tokenizer stored in the GGUF; vLLM "
                "recommends the original model's tokenizer instead: pass tokenizer='org/base-model'",
                stacklevel=4,
            )
        return VLLMTarget(resolved.path, tokenizer)
    if kind == "adapter":
        base = resolved.base
        if base is None or base.kind == "adapter":
            raise BackendError(
                f"vLLM applies one LoRA adapter on a base model; {resolved.path} is stacked on "
                "another adapter: merge them first (PEFT merge_and_unload)"
            )
        target = _target_for(base, tokenizer, densify, models)
        return VLLMTarget(target.model, target.tokenizer, resolved.path, adapter_rank(resolved.path))
    raise BackendError(f"vLLM cannot load a model of kind {kind!r} ({resolved.path})")


def adapter_rank(adapter_dir: str) -> int | None:
    """The LoRA rank ``r`` from ``adapter_config.json`` (vLLM must be started with a rank >= it)."""
    try:
        with open(os.path.join(adapter_dir, "adapter_config.json"), encoding="utf-8") as handle:
            rank = json.load(handle).get("r")
    except (OSError, ValueError):
        return None
    return int(rank) if isinstance(rank, (int, float)) else None


# -- the backend ---------------------------------------------------------------------------------
class VLLMBackend:
    """Batched chat generation on GPU with vLLM (offline engine, prefix caching on).

    ``model`` is a hub id, a local folder, a single-file ``.gguf`` (pass
    ``tokenizer="org/base-model"`` as vLLM recommends), a PEFT adapter folder (served as a
    LoRA on its base) or the embedded alias; see ``resolve_vllm_model``. Extra keyword
    arguments go to ``vllm.LLM`` unchanged (``enforce_eager=True``, ``quantization=...``,
    ``tokenizer=...``). Implements ``generate`` and ``choice_logprobs``.
    """

    name = "vllm"

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        dtype: str = "auto",
        **engine_kwargs: Any,
    ) -> None:
        vllm = require("vllm", "vllm", "GPU inference")  # first: a missing extra says how to fix it
        self.model = model
        target = resolve_vllm_model(model, engine_kwargs.pop("tokenizer", None))
        self.target = target
        kwargs = _engine_kwargs(
            target.model,
            tokenizer=target.tokenizer,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=enable_prefix_caching,
            dtype=dtype,
            **{**target.engine_extra(), **engine_kwargs},
        )
        self.engine_kwargs = kwargs
        # a trained folder's prompts and ranking mode travel with it, as in the transformers backend
        self.templates: dict = {}
        self.ranking: dict[str, str] = {}
        if target.lora_path is not None:
            from ..run_info import trained_ranking, trained_templates

            try:
                self.templates = trained_templates(target.lora_path)
                self.ranking = trained_ranking(target.lora_path)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
        self._lora_request = None
        if target.lora_path is not None:
            lora = require("vllm.lora.request", "vllm", "LoRA adapters")
            lora_name = os.path.basename(target.lora_path.rstrip("/")) or "adapter"
            self._lora_request = lora.LoRARequest(lora_name, 1, target.lora_path)
        try:
            self._llm = vllm.LLM(**kwargs)
        except Exception as exc:  # vLLM raises many types; the user needs one clear line
            hint = ""
            if is_gguf(target.model):
                hint = (
                    " (recent vLLM releases load GGUF through `pip install vllm-gguf-plugin`; "
                    "a hub id or a local safetensors folder avoids GGUF altogether)"
                )
            raise BackendError(f"vLLM could not load {model!r}: {' '.join(str(exc).split())}{hint}") from exc
        self._SamplingParams = vllm.SamplingParams

    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[Completion]:
        """One ``LLM.chat`` call for the whole batch; vLLM applies the chat template."""
        conversations = [list(p) for p in prompts]
        if not conversations:
            return []
        params = self._SamplingParams(**sampling_kwargs(max_new_tokens, temperature, seed))
        # LLM.chat takes the template flags per call: prefilled and plain prompts go separately.
        out: list[Completion | None] = [None] * len(conversations)
        for prefilled in (False, True):
            idx = [i for i, c in enumerate(conversations) if is_prefilled(c) == prefilled]
            if not idx:
                continue
            outputs = self._llm.chat(
                [conversations[i] for i in idx],
                sampling_params=params,
                use_tqdm=False,
                lora_request=self._lora_request,
                **chat_template_flags(conversations[idx[0]]),
            )
            for i, c in zip(idx, completions_from_outputs(outputs)):
                out[i] = c
        return [c for c in out if c is not None]

    def choice_logprobs(
        self, prompts: Sequence[Messages], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Log-probability of each choice as the assistant's reply, via vLLM prompt logprobs.

        Each (prompt, choice) pair becomes one token prompt: the chat-templated prompt (with
        the generation prompt) followed by the choice's tokens, tokenized separately so the
        boundary is exact. vLLM scores the whole prompt in one forward pass and we sum the
        logprobs of the choice tokens. vLLM does not read the prefix cache for requests that
        ask for prompt logprobs (it recomputes the prompt); if scores ever look order-dependent,
        build the backend with ``enable_prefix_caching=False`` (vLLM issue #42019 reports stale
        prompt logprobs with prefix caching on).
        """
        requests, spans = choice_requests(self._llm.get_tokenizer(), prompts, choices)
        if not requests:
            return [[] for _ in prompts]
        params = self._SamplingParams(**scoring_kwargs())
        outputs = self._llm.generate(
            requests, sampling_params=params, use_tqdm=False, lora_request=self._lora_request
        )
        flat = [
            continuation_logprob(out.prompt_logprobs, out.prompt_token_ids, n)
            for out, n in zip(outputs, spans)
        ]
        return group_scores(flat, choices)


#: module-level alias: inside ``VLLMBackend.__init__`` the name ``engine_kwargs`` is the
#: constructor's ``**engine_kwargs`` parameter
_engine_kwargs = engine_kwargs
