"""The transformers backend: local models on CPU or GPU, batched with left padding.

It loads the embedded SmolLM2-135M (from its GGUF, through the cached fp32 copy made by
``models.dense_model_dir``), any ``.gguf`` file, local checkpoint folders, PEFT adapters and
Hugging Face hub ids. ``generate`` batches all prompts of an elimination round (batch 8 is
~4x the tokens/s of batch 1 on a 2-core CPU); ``choice_logprobs`` scores fixed choices with
forward passes only.

torch and transformers are imported when a ``TransformersLLM`` is built, never at module
import, so ``iranker`` works without the ``transformers`` extra.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .base import BackendError, Completion, Messages, MissingExtraError, chat_template_flags, require
from .choice_tree import has_sliding_window
from .kv_eviction import KVEvictionSession
from .models import ResolvedModel, adapter_tokenizer_dir, dense_model_dir, resolve_model
from .precision import torch_dtype
from .stop import STOP_STRINGS, first_stop
from .threads import resolve_threads

#: System message inserted when a prompt has none. SmolLM2's chat template otherwise injects
#: its own default ("You are a helpful AI assistant named SmolLM, trained by Hugging Face"):
#: a model-specific persona that the prompt author did not write, that differs between
#: models, and that would make the same messages mean different things per checkpoint. A
#: short generic message keeps the prompt under our control and identical across models.
NEUTRAL_SYSTEM = "You are a helpful assistant."


#: How a LoRA adapter runs at inference (``TransformersLLM(adapter=...)``, ``$IRANKER_ADAPTER``):
#: ``fp32`` (default) - unmerged, its weights in fp32 beside the base as in training, through
#: ``lora_inference.FusedLoRALinear``: PEFT's sum in fewer passes, the same numbers;
#: ``peft`` - the same through PEFT's own layers (the slower reference);
#: ``base-dtype`` - unmerged, its weights cast to the base's dtype (bf16 on AMX CPUs);
#: ``merged`` - folded into the base weights at load (one product per layer, rounded to the
#: base dtype). The last two change scores: ``benchmarks/fast_path.py`` measures by how much.
ADAPTER_MODES = ("fp32", "peft", "base-dtype", "merged")
ADAPTER_ENV = "IRANKER_ADAPTER"
DEFAULT_ADAPTER = "fp32"


def adapter_mode(adapter: str | None, merge_adapter: bool = False) -> str:
    """The adapter mode to use: ``adapter`` if given, else ``merged`` for the older
    ``merge_adapter=True``, else ``$IRANKER_ADAPTER``, else ``DEFAULT_ADAPTER``."""
    chosen = (
        adapter
        if adapter is not None
        else ("merged" if merge_adapter else os.environ.get(ADAPTER_ENV) or None)
    )
    chosen = DEFAULT_ADAPTER if chosen is None else str(chosen).strip().lower()
    if chosen not in ADAPTER_MODES:
        raise ValueError(f"unknown adapter mode {chosen!r}; use one of {', '.join(ADAPTER_MODES)}")
    return chosen


def with_system_message(messages: Messages) -> Messages:
    """``messages`` with ``NEUTRAL_SYSTEM`` prepended when it has no system message first."""
    msgs = [dict(m) for m in messages]
    if not msgs or msgs[0].get("role") != "system":
        msgs.insert(0, {"role": "system", "content": NEUTRAL_SYSTEM})
    return msgs


def render_prompt(tokenizer: Any, messages: Messages) -> str:
    """The exact prompt text a model sees: chat template + generation prompt (or the open final
    assistant message of a prefilled reply, continued).

    A neutral system message is added when the prompt has none (see ``NEUTRAL_SYSTEM``).
    Ranking and choice training both render through this function, so a trained model sees
    at inference exactly the text it was trained on.
    """
    return tokenizer.apply_chat_template(
        with_system_message(messages), tokenize=False, **chat_template_flags(messages)
    )


#: The chat template given to a tokenizer that has none (a base, not instruction-tuned, model
#: such as the Gemma 3 270M GGUF): plain "User:/Assistant:" turns. Without it transformers
#: refuses to render any prompt; with it a base model can be scored, trained and shipped (its
#: saved tokenizer keeps this template, so the trained model sees the same text at inference).
PLAIN_CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{{ m['content'] + '\\n\\n' }}"
    "{%- elif m['role'] == 'user' -%}{{ 'User: ' + m['content'] + '\\n\\n' }}"
    "{%- else -%}{{ 'Assistant: ' + m['content'] }}{%- if not loop.last -%}{{ '\\n\\n' }}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"
)


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give ``tokenizer`` :data:`PLAIN_CHAT_TEMPLATE` if it has no chat template; True if it did."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    return True


def canonical_head_input(model: Any) -> Any:
    """Give the output head (lm_head) inputs with canonical strides; returns ``model``.

    With ``logits_to_keep``, transformers feeds the head a slice ``[1, k, d]`` of the hidden
    states whose batch stride is that of the full sequence. For a weight that does not require
    grad - every frozen base under LoRA, i.e. every adapter at inference and in training -
    ``torch.matmul`` then refuses to fold the batch into one ``mm`` and runs ``bmm`` on a
    *copy* of the whole ``vocab x d`` weight: 56 MB and ~180 ms per forward for SmolLM2, which
    made iranker-135m rank 2x slower than its base. A pre-hook that re-lays the (tiny) input
    out contiguously restores the fast path; results are unchanged.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or getattr(head, "_iranker_canonical_input", False):
        return model
    import torch

    def _canonical(module: Any, args: tuple) -> tuple:
        if not args or not isinstance(args[0], torch.Tensor):
            return args
        return (args[0].clone(memory_format=torch.contiguous_format), *args[1:])

    head.register_forward_pre_hook(_canonical)
    head._iranker_canonical_input = True
    return model


def _hub_offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


class TransformersLLM:
    """A local causal LM behind the ``LLMBackend`` and ``ChoiceScorer`` protocols.

    Args:
        model: alias (``smollm2-135m``), ``.gguf`` file, checkpoint folder, PEFT adapter
            folder or Hugging Face hub id (see ``models.resolve_model``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default CUDA when available.
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"auto"``; default
            ``$IRANKER_DTYPE``, else bfloat16 on a CPU with native bf16 (AMX / AVX-512 BF16;
            ~3.6x faster than fp32 there) or a GPU that supports it, float16 on other GPUs and
            float32 on other CPUs (see ``iranker.llm.precision``).
        threads: torch intra-op threads. Default ``$IRANKER_THREADS`` if set, else the CPUs
            no other process is busy on when the model loads (``threads.default_threads``; at
            least 1): torch's one-thread-per-core default ran >10x slower beside another busy
            process here.
        batch_size: prompts per forward batch (generation and choice scoring).
        adapter: how a LoRA adapter runs (``ADAPTER_MODES``): ``fp32`` (unmerged, as trained,
            fused layers), ``peft`` (the same through PEFT's layers), ``base-dtype`` (unmerged,
            in the base's dtype) or ``merged`` (folded into the base weights at load). Default
            ``$IRANKER_ADAPTER``, else ``DEFAULT_ADAPTER``.
        merge_adapter: the older spelling of ``adapter="merged"``.
    """

    def __init__(
        self,
        model: str = "iranker-135m",
        *,
        device: str | None = None,
        dtype: str | None = None,
        threads: int | None = None,
        batch_size: int = 8,
        adapter: str | None = None,
        merge_adapter: bool = False,
    ) -> None:
        self.adapter = adapter_mode(adapter, merge_adapter)
        self.fused_lora_layers = 0  # LoRA layers run by lora_inference.FusedLoRALinear
        self.merge_adapter = self.adapter == "merged"
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.torch = torch = require("torch", "transformers", "the transformers backend")
        self._tf = require("transformers", "transformers", "the transformers backend")

        self.threads = resolve_threads(threads)
        torch.set_num_threads(self.threads)

        self.resolved: ResolvedModel = resolve_model(model)
        self.name = self.resolved.name
        # A folder trained by `iranker train` records the prompt templates it was trained
        # with (iranker.json); rankers built by the CLI use them instead of the defaults.
        self.templates: dict = {}
        #: how the model ranks unless told otherwise (``iranker.json`` ``ranking``), e.g.
        #: ``{"decode": "choice", "reuse": "kv"}`` for a choice-trained folder
        self.ranking: dict[str, str] = {}
        if self.resolved.is_local:
            from ..run_info import trained_ranking, trained_templates

            try:
                self.templates = trained_templates(self.resolved.path)
                self.ranking = trained_ranking(self.resolved.path)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
        self.batch_size = batch_size
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = self._pick_dtype(dtype)
        self.model, self.tokenizer = self._load(self.resolved)
        self.model.to(self.device)
        self.model.eval()
        canonical_head_input(self.model)

        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.eos_ids = self._eos_token_ids()

    # -- loading ----------------------------------------------------------------------------
    def _pick_dtype(self, dtype: str | None) -> Any:

        return torch_dtype(self.torch, dtype, self.device)

    def _load_folder(self, folder: str) -> tuple[Any, Any]:
        tf = self._tf
        tokenizer = tf.AutoTokenizer.from_pretrained(folder)
        ensure_chat_template(tokenizer)
        model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=self.dtype)
        return model, tokenizer

    def _load_base(self, resolved: ResolvedModel) -> tuple[Any, Any]:
        if resolved.kind == "gguf":
            return self._load_folder(str(dense_model_dir(resolved.path)))
        if resolved.kind == "folder":
            try:
                return self._load_folder(resolved.path)
            except (OSError, ValueError) as exc:
                raise BackendError(f"could not load the model folder {resolved.path!r}: {exc}") from exc
        if resolved.kind == "hub":
            try:
                return self._load_folder(resolved.path)
            except (OSError, ValueError) as exc:
                if _hub_offline():
                    why = (
                        "HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set, so only models already in "
                        "the local Hugging Face cache can be used"
                    )
                else:
                    why = "it is not in the local Hugging Face cache and the hub could not be reached (no network?) or has no such model"
                raise BackendError(
                    f"could not load the model {resolved.path!r} from the Hugging Face hub: {why}. "
                    "Pass a local folder or .gguf file, or the embedded alias 'smollm2-135m'. "
                    f"(cause: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                ) from exc
        raise BackendError(f"cannot load a {resolved.kind!r} model as a base model")

    def _load(self, resolved: ResolvedModel) -> tuple[Any, Any]:
        if resolved.kind != "adapter":
            return self._load_base(resolved)
        assert resolved.base is not None
        try:
            import peft  # noqa: F401  (optional: only adapters need it)
        except ImportError as exc:
            raise MissingExtraError("train", "peft", "loading LoRA/PEFT adapters") from exc
        model, tokenizer = self._load_base(resolved.base)
        # An adapter folder may ship its own tokenizer (e.g. with added tokens); prefer it.
        own_tokenizer = adapter_tokenizer_dir(resolved.path)
        if own_tokenizer is not None:
            tokenizer = self._tf.AutoTokenizer.from_pretrained(own_tokenizer)
            ensure_chat_template(tokenizer)
        try:
            model = peft.PeftModel.from_pretrained(model, resolved.path)
        except (OSError, ValueError) as exc:
            raise BackendError(f"could not load the adapter {resolved.path!r}: {exc}") from exc
        return self._place_adapter(model), tokenizer

    def _place_adapter(self, model: Any) -> Any:
        """Run the adapter the way ``self.adapter`` says (see ``ADAPTER_MODES``)."""
        if self.adapter == "fp32":
            from .lora_inference import fuse_lora

            model, self.fused_lora_layers, _ = fuse_lora(model)
            return model
        if self.adapter == "merged":
            # fold B·A·scale into each base weight once, in fp32, rounded once to the base
            # dtype: one product per layer and token instead of three, and no fp32 casts
            return model.merge_and_unload()
        if self.adapter == "base-dtype":
            base = next(
                (p.dtype for n, p in model.named_parameters() if "lora_" not in n and p.is_floating_point()),
                None,
            )
            for name, param in model.named_parameters():
                if "lora_" in name and base is not None and param.dtype != base:
                    param.data = param.data.to(base)
        return model

    def _eos_token_ids(self) -> list[int]:
        ids: set[int] = set()
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        for value in (gen_eos, self.tokenizer.eos_token_id):
            if value is None:
                continue
            ids.update(value if isinstance(value, (list, tuple)) else [value])
        return sorted(ids)

    # -- prompts ----------------------------------------------------------------------------
    def render(self, messages: Messages) -> str:
        """The exact prompt text the model sees (``render_prompt`` with this tokenizer)."""
        return render_prompt(self.tokenizer, messages)

    def _encode(self, texts: list[str]) -> Any:
        # The chat template already carries every special token: add none.
        return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )

    # -- generation -------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[Completion]:
        """One completion per prompt, in order; batched ``batch_size`` prompts at a time.

        Greedy when ``temperature == 0``; otherwise sampling (no top-k/top-p truncation) after
        ``torch.manual_seed(seed)``, so a call is reproducible for the same batch size.
        Generation stops at EOS or right after ``</answer>``; the text excludes the prompt
        and special tokens and is cut after the first ``</answer>``.
        """
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if temperature < 0:
            raise ValueError("temperature must be >= 0")
        torch = self.torch
        texts = [self.render(p) for p in prompts]
        if temperature > 0:
            torch.manual_seed(seed)
        out: list[Completion] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(
                self._generate_batch(texts[start : start + self.batch_size], max_new_tokens, temperature)
            )
        return out

    def _generation_config(self, max_new_tokens: int, temperature: float) -> Any:
        config = self._tf.GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=temperature > 0,
            eos_token_id=self.eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
            stop_strings=list(STOP_STRINGS),
        )
        if temperature > 0:
            config.temperature = float(temperature)
            config.top_k = None
            config.top_p = None
        return config

    def _generate_batch(self, texts: list[str], max_new_tokens: int, temperature: float) -> list[Completion]:
        torch = self.torch
        enc = self._encode(texts)
        prompt_len = enc["input_ids"].shape[1]
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                generation_config=self._generation_config(max_new_tokens, temperature),
                tokenizer=self.tokenizer,
            )
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        new_tokens = output[:, prompt_len:].tolist()
        return [self.completion(ids, int(n_prompt)) for ids, n_prompt in zip(new_tokens, prompt_tokens)]

    def completion(self, ids: list[int], prompt_tokens: int) -> Completion:
        """Decode one row of generated ids and count the tokens it really generated.

        Finished rows are filled with the pad token, which for SmolLM is also EOS, so a real
        EOS and padding look alike: the first EOS/pad ends the text. It counts as a generated
        token unless the row had already stopped on ``</answer>`` (then it is padding).
        """
        eos = set(self.eos_ids)
        eos.add(self.tokenizer.pad_token_id)
        cut = next((i for i, t in enumerate(ids) if t in eos), None)
        body = ids if cut is None else ids[:cut]
        text = self.tokenizer.decode(body, skip_special_tokens=True)
        stop_at = first_stop(text)
        if stop_at is not None:
            text = text[:stop_at]
            n = self._tokens_to_stop(body)
        elif cut is not None:
            n = cut + 1  # the EOS the model emitted
        else:
            n = len(body)
        return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=n)

    def _tokens_to_stop(self, body: list[int]) -> int:
        """Smallest k such that ``body[:k]`` already contains a stop string.

        Normally ``len(body)`` (the stopping criterion fires on the completing token); the
        search keeps the count right if the stop string was produced mid-token or missed.
        """
        lo, hi = 1, len(body)
        while lo < hi:
            mid = (lo + hi) // 2
            if first_stop(self.tokenizer.decode(body[:mid], skip_special_tokens=True)) is None:
                lo = mid + 1
            else:
                hi = mid
        return hi

    # -- choice scoring ---------------------------------------------------------------------
    def choice_logprobs(
        self, prompts: Sequence[Messages], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Log-probability of each choice as the assistant's reply, summed over its tokens.

        Each choice is scored as the rendered prompt (with generation prompt) followed by the
        choice's own tokenisation, exactly what the model would have to generate. With sdpa
        or eager attention, a prompt and *all* its choices go through the model once: the
        choices' tokens are laid out as a prefix tree after the prompt with a 4-D attention
        mask (``choice_tree.tree_choice_logprobs``), so scoring N labels costs one prompt,
        not N. Prompts are left-padded ``batch_size`` at a time.
        """
        if len(prompts) != len(choices):
            raise ValueError("choice_logprobs needs one list of choices per prompt")
        impl = getattr(self.model.config, "_attn_implementation", "sdpa")
        if impl in ("sdpa", "eager"):
            from .choice_tree import tree_choice_logprobs

            tok = self.tokenizer
            prompt_ids = [tok(self.render(m), add_special_tokens=False)["input_ids"] for m in prompts]
            choice_ids = [[tok(c, add_special_tokens=False)["input_ids"] for c in opts] for opts in choices]
            if any(not c for opts in choice_ids for c in opts):
                raise ValueError("choices must be non-empty strings")
            return tree_choice_logprobs(self, prompt_ids, choice_ids, self.batch_size)
        return self._pairwise_choice_logprobs(prompts, choices)

    def _pairwise_choice_logprobs(
        self, prompts: Sequence[Messages], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """One sequence per (prompt, choice) pair, for attention kernels without 4-D masks.

        Pairs are left-padded in batches of ``batch_size`` so every choice ends at the last
        position, which lets the model compute logits for the last few positions only
        (``logits_to_keep``) instead of ``seq_len x vocab``.
        """
        torch = self.torch
        tok = self.tokenizer
        pairs: list[tuple[list[int], list[int]]] = []
        for messages, opts in zip(prompts, choices):
            prompt_ids = tok(self.render(messages), add_special_tokens=False)["input_ids"]
            for choice in opts:
                choice_ids = tok(choice, add_special_tokens=False)["input_ids"]
                if not choice_ids:
                    raise ValueError("choices must be non-empty strings")
                pairs.append((prompt_ids, choice_ids))

        flat: list[float] = []
        pad = tok.pad_token_id
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            seqs = [p + c for p, c in chunk]
            width = max(len(s) for s in seqs)
            input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
            mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
            # left padding: positions must start at 0 on the first real token
            position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
            keep = max(len(c) for _, c in chunk) + 1
            with torch.inference_mode():
                logits = self.model(
                    input_ids=input_ids,
                    attention_mask=mask,
                    position_ids=position_ids,
                    logits_to_keep=keep,
                    use_cache=False,
                ).logits.float()
            logprobs = torch.log_softmax(logits, dim=-1)  # [batch, keep, vocab]
            for row, (_, choice_ids) in enumerate(chunk):
                n = len(choice_ids)
                # logits at position t predict token t+1; the kept window ends at width-1,
                # so the choice's tokens (last n) are predicted by kept rows keep-n-1 .. keep-2
                rows = logprobs[row, keep - n - 1 : keep - 1]
                target = torch.tensor(choice_ids, device=self.device)
                flat.append(float(rows.gather(1, target[:, None]).sum()))

        out: list[list[float]] = []
        i = 0
        for opts in choices:
            out.append(flat[i : i + len(opts)])
            i += len(opts)
        return out

    # -- KV-cache eviction -------------------------------------------------------------------
    @property
    def evicts(self) -> bool:
        """KV eviction needs the whole prompt in the cache: not so with sliding-window layers."""

        return not has_sliding_window(self.model)

    def eviction_session(self, **options: Any) -> Any:
        """A ``KVEvictionSession`` for one example (the ``EvictionCapable`` capability).

        Options (``positions``, ``refresh``, ``fresh_tokens``) are documented in
        ``iranker.llm.kv_eviction``; ``IterativeRanker(reuse="kv")`` uses the defaults.
        """

        return KVEvictionSession(self, **options)

    def __repr__(self) -> str:
        return f"TransformersLLM({self.name!r}, device={str(self.device)!r}, batch_size={self.batch_size})"


__all__ = [
    "ADAPTER_ENV",
    "ADAPTER_MODES",
    "DEFAULT_ADAPTER",
    "NEUTRAL_SYSTEM",
    "PLAIN_CHAT_TEMPLATE",
    "STOP_STRINGS",
    "TransformersLLM",
    "adapter_mode",
    "canonical_head_input",
    "ensure_chat_template",
    "render_prompt",
    "with_system_message",
]
