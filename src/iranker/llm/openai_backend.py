"""A backend for any OpenAI-compatible ``/v1/chat/completions`` server.

vLLM (``vllm serve``), SGLang, the llama.cpp server, TGI and OpenAI itself all speak this API,
so one client covers remote GPUs, a laptop running llama.cpp and hosted models. It uses the
official ``openai`` SDK (the ``openai`` extra) for retries, timeouts and auth, and sends the
prompts of one elimination round concurrently because a server batches concurrent requests
itself (continuous batching) — sequential requests would leave it idle.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Literal, Sequence

from ..parsing import ANSWER_CLOSE, ANSWER_OPEN
from .base import BackendError, Completion, Messages, chat_template_flags, is_prefilled, require
from .served_choice import (
    ChoiceStats,
    NoLogprobsError,
    Position,
    chat_positions,
    completion_positions,
    evaluated_prompt_tokens,
    score_dynamic,
    score_static,
    shared_answer_prefix,
)
from .stop import STOP_STRINGS

#: the answer format every ranking prompt asks for ends with this tag

#: placeholder key: local servers ignore the key, but the SDK refuses to run without one
PLACEHOLDER_API_KEY = "EMPTY"

#: ``stop_reason`` value meaning "the server does not report it" (only vLLM does)
NOT_REPORTED: Any = object()

#: how label scoring reaches the server (``choice_endpoint``)
CHOICE_ENDPOINTS = ("auto", "completions", "chat")
#: HTTP statuses that mean "this endpoint or field is not offered" during capability detection
_UNSUPPORTED_STATUSES = (400, 404, 405, 422, 501)


class LogprobsUnsupportedError(BackendError):
    """The server offers no way to read token log-probabilities that label scoring needs."""


def restore_answer_close(text: str, finish_reason: str | None, stop_reason: Any = NOT_REPORTED) -> str:
    """Put back the ``</answer>`` a server cut off as a stop string.

    OpenAI-compatible servers never include the matched stop string in the returned text, so a
    reply stopped at ``</answer>`` comes back as ``...<answer>[3]``. The answer parsers expect
    the closing tag, so we append it when the reply was stopped (``finish_reason == "stop"``)
    and its last ``<answer>`` is still open. vLLM also reports *which* stop fired in the
    non-standard ``stop_reason`` field (the string, a token id for EOS-like tokens, or
    ``null`` for EOS); when that field is present we trust it, so an answer the model ended
    with EOS before closing the tag is not silently "repaired". A reply truncated by the token
    budget (``finish_reason == "length"``) is left as is: it really is incomplete.
    """
    if finish_reason != "stop":
        return text
    if stop_reason is not NOT_REPORTED and stop_reason != ANSWER_CLOSE:
        return text
    last_open = text.rfind(ANSWER_OPEN)
    if last_open < 0 or ANSWER_CLOSE in text[last_open:]:
        return text
    return text + ANSWER_CLOSE


class OpenAILLM:
    """Chat generation against an OpenAI-compatible server.

    Args:
        model: the model name the server knows (``vllm serve`` uses the hub id or
            ``--served-model-name``; llama.cpp accepts anything).
        base_url: e.g. ``http://127.0.0.1:8000/v1``; default ``$OPENAI_BASE_URL``, else the
            SDK default (OpenAI's API).
        api_key: default ``$OPENAI_API_KEY``, else the placeholder ``"EMPTY"`` because local
            servers do not check it but the SDK insists on having one.
        concurrency: requests in flight at once for one batch of prompts.
        timeout: seconds per request (the SDK applies it to connect and read).
        max_retries: SDK retries with exponential backoff on connection errors, 408, 409, 429
            and 5xx before we give up with a ``BackendError``.
        extra_body: extra JSON fields sent with every request, for server-specific options
            (e.g. vLLM's ``{"top_k": 20}`` or ``{"chat_template_kwargs": {...}}``).
        max_tokens_field: ``"max_tokens"`` (default) or ``"max_completion_tokens"``.
        tokenizer: the served model as iranker names it locally (``iranker-135m``, a trained
            folder, ``smollm2-135m``, a checkpoint folder or cached hub id). Its tokenizer
            renders prompts for ``/v1/completions`` and tokenises labels exactly as the local
            backend does; a trained folder's templates and ranking mode (``decode: choice``)
            come with it. Without it, label scoring uses chat with a prefilled reply and cuts
            labels by the server's own tokens (``served_choice.score_dynamic``).
        choice_endpoint: how ``choice_logprobs`` reads log-probabilities: ``"completions"``
            (``/v1/completions`` with ``logprobs``; needs ``tokenizer``), ``"chat"``
            (``/v1/chat/completions`` with ``logprobs``/``top_logprobs`` and the reply
            prefilled as a final assistant message, which the server must continue: vLLM's
            ``continue_final_message``, llama.cpp's assistant prefill), or ``"auto"`` (default:
            the first of those the server offers, probed once).
        top_logprobs: alternatives asked per token (20 is the OpenAI API's and vLLM's limit).

    Why ``max_tokens``: it is the field every OpenAI-compatible server implements (vLLM,
    SGLang, llama.cpp server, TGI's Messages API, Ollama); ``max_completion_tokens`` is OpenAI's
    newer name, accepted by vLLM and SGLang but unknown to TGI and older llama.cpp builds, which
    would then ignore the budget. OpenAI itself still accepts ``max_tokens`` for non-reasoning
    models; pass ``max_tokens_field="max_completion_tokens"`` for its o-series models.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 2,
        extra_body: dict | None = None,
        max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
        tokenizer: str | None = None,
        choice_endpoint: Literal["auto", "completions", "chat"] = "auto",
        top_logprobs: int = 20,
    ) -> None:
        openai = require("openai", "openai", "OpenAI-compatible servers")
        if not model:
            raise ValueError("the openai backend needs the server's model name")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError("max_tokens_field must be 'max_tokens' or 'max_completion_tokens'")
        if choice_endpoint not in CHOICE_ENDPOINTS:
            raise ValueError(f"choice_endpoint must be one of {CHOICE_ENDPOINTS}, got {choice_endpoint!r}")
        if choice_endpoint == "completions" and not tokenizer:
            raise ValueError(
                "choice_endpoint='completions' needs tokenizer= (the client renders the chat template)"
            )
        if top_logprobs < 1:
            raise ValueError("top_logprobs must be at least 1")
        self.model = model
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.extra_body = dict(extra_body or {})
        self.max_tokens_field = max_tokens_field
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_API_KEY,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )
        #: the URL actually used (after env and SDK defaults), named in every error message
        self.base_url = str(self._client.base_url).rstrip("/")
        self.choice_endpoint = choice_endpoint
        self.top_logprobs = int(top_logprobs)
        self.local = None
        #: a trained folder's prompts and ranking mode, when ``tokenizer`` names one
        self.templates: dict = {}
        self.ranking: dict[str, str] = {}
        if tokenizer:
            from .local_tokenizer import load_local_tokenizer

            self.local = load_local_tokenizer(tokenizer)
            self.templates = dict(self.local.templates)
            self.ranking = dict(self.local.ranking)
        #: what label scoring cost (requests, prompt tokens sent / evaluated), summed
        self.choice_stats = ChoiceStats()
        #: per prompt of the last ``choice_logprobs`` call: (prompt tokens, completion tokens)
        self.last_choice_usage: list[tuple[int, int]] = []
        self._choice_mode: str | None = None
        self._lock = threading.Lock()

    # -- protocol ---------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[Completion]:
        """One completion per prompt, in order; requests run ``concurrency`` at a time."""
        prompts = [list(p) for p in prompts]
        if not prompts:
            return []
        params = self.request_params(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        if len(prompts) == 1 or self.concurrency == 1:
            return [self._complete(p, params) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            futures = [pool.submit(self._complete, p, params) for p in prompts]
            try:
                return [f.result() for f in futures]
            except BaseException:
                # do not keep hammering a failing server with the rest of the batch
                for f in futures:
                    f.cancel()
                raise

    def request_params(self, *, max_new_tokens: int, temperature: float, seed: int) -> dict[str, Any]:
        """The sampling fields of one request (everything except ``model`` and ``messages``)."""
        params: dict[str, Any] = {
            self.max_tokens_field: int(max_new_tokens),
            "temperature": float(temperature),
            "seed": int(seed),
            # stop right after the answer: saves the tokens a chatty model would add after it;
            # the tag itself is restored by ``restore_answer_close``
            "stop": list(STOP_STRINGS),
        }
        return params

    # -- label scoring ----------------------------------------------------------------------
    def choice_logprobs(
        self, prompts: Sequence[Messages], choices: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Per prompt, each choice's log-probability as the reply, read from the server's
        ``top_logprobs`` over the label tree (``served_choice``).

        One prompt's requests are sent one after another, so a server's prompt cache sees
        each extend the previous one by a few tokens; prompts run ``concurrency`` at a time
        (give a single-slot server such as llama-cpp-python ``concurrency=1`` and rank one
        example at a time, ``batch_size=1``, so consecutive steps share their prefix too).
        """
        if len(prompts) != len(choices):
            raise ValueError("choice_logprobs needs one list of choices per prompt")
        if not prompts:
            self.last_choice_usage = []
            return []
        mode = self.choice_mode()
        jobs = list(zip(prompts, choices))
        if len(jobs) == 1 or self.concurrency == 1:
            results = [self._score_one(mode, p, c) for p, c in jobs]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs))) as pool:
                futures = [pool.submit(self._score_one, mode, p, c) for p, c in jobs]
                try:
                    results = [f.result() for f in futures]
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
        self.last_choice_usage = [usage for _, usage in results]
        return [scores for scores, _ in results]

    def choice_mode(self) -> str:
        """``"completions"`` or ``"chat"``: what the server offers for label scoring, probed
        once; ``LogprobsUnsupportedError`` names what is missing when it offers neither."""
        if self._choice_mode is not None:
            return self._choice_mode
        if self.choice_endpoint != "auto":
            order = [self.choice_endpoint]
        else:
            order = ["completions", "chat"] if self.local is not None else ["chat"]
        reasons = []
        for mode in order:
            try:
                self._ask(mode, [{"role": "user", "content": "Hello"}], "", 1, None)
            except (NoLogprobsError, _Unsupported) as exc:
                reasons.append(f"{ENDPOINT_NAMES[mode]}: {exc}")
                continue
            self._choice_mode = mode
            return mode
        skipped = (
            ""
            if self.local is not None or self.choice_endpoint != "auto"
            else (
                "; /v1/completions was not tried: it needs the served model's tokenizer (--tokenizer) "
                "to render the chat template"
            )
        )
        raise LogprobsUnsupportedError(
            f"label scoring (decode=choice) needs token log-probabilities from the server at {self.base_url}: "
            "/v1/completions with 'logprobs', or /v1/chat/completions with 'logprobs' + 'top_logprobs' and a "
            f"prefilled assistant reply; it offers neither ({'; '.join(reasons)}){skipped}"
        )

    def _score_one(
        self, mode: str, messages: Messages, choices: Sequence[str]
    ) -> tuple[list[float], tuple[int, int]]:
        spent = ChoiceStats()

        def ask(text: str, max_tokens: int) -> list[Position]:
            return self._ask(mode, messages, text, max_tokens, spent)

        if self.local is not None:
            from .local_tokenizer import label_token_strings

            tokens = [label_token_strings(self.local.tokenizer, c) for c in choices]
            result = score_static(tokens, ask)
        else:
            result = score_dynamic(list(choices), ask, prefix=shared_answer_prefix(list(choices)))
        with self._lock:
            st = self.choice_stats
            st.requests += spent.requests
            st.prompt_tokens += spent.prompt_tokens
            st.completion_tokens += spent.completion_tokens
            st.evaluated += spent.evaluated
            st.evaluated_reported += spent.evaluated_reported
            st.bounded += result.bounded
        return result.scores, (spent.prompt_tokens, spent.completion_tokens)

    def _ask(
        self, mode: str, messages: Messages, text: str, max_tokens: int, spent: ChoiceStats | None
    ) -> list[Position]:
        """One request: the reply after ``messages`` continued by ``text``, as positions."""
        common: dict[str, Any] = {self.max_tokens_field: int(max_tokens), "temperature": 0.0, "seed": 0}
        try:
            if mode == "completions":
                from .transformers_backend import render_prompt

                assert self.local is not None
                response = self._client.completions.create(
                    model=self.model,
                    prompt=render_prompt(self.local.tokenizer, messages) + text,
                    logprobs=self.top_logprobs,
                    extra_body=self.extra_body or None,
                    **common,
                )
            else:
                prefilled = list(messages)
                if text or is_prefilled(prefilled):
                    if is_prefilled(prefilled):
                        last = dict(prefilled[-1])
                        last["content"] = str(last.get("content", "")) + text
                        prefilled[-1] = last
                    else:
                        prefilled.append({"role": "assistant", "content": text})
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=prefilled,
                    logprobs=True,
                    top_logprobs=self.top_logprobs,
                    extra_body=self._extra_body(prefilled),
                    **common,
                )
        except self._openai.APIStatusError as exc:
            if spent is None and exc.status_code in _UNSUPPORTED_STATUSES:
                raise _Unsupported(f"HTTP {exc.status_code}: {_one_line(_status_detail(exc), 160)}") from exc
            raise BackendError(self._describe(exc)) from exc
        except self._openai.OpenAIError as exc:
            raise BackendError(self._describe(exc)) from exc
        payload = response.model_dump() if hasattr(response, "model_dump") else response
        parse: Callable[[Any], list[Position]] = (
            completion_positions if mode == "completions" else chat_positions
        )
        positions = parse(payload)
        if spent is not None:
            usage = payload.get("usage") if isinstance(payload, dict) else None
            usage = usage if isinstance(usage, dict) else {}
            spent.requests += 1
            spent.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            spent.completion_tokens += int(usage.get("completion_tokens") or 0)
            evaluated = evaluated_prompt_tokens(payload)
            if evaluated is not None:
                spent.evaluated += evaluated
                spent.evaluated_reported += 1
        return positions

    # -- one request ------------------------------------------------------------------------
    def _extra_body(self, messages: Messages) -> dict[str, Any] | None:
        """``extra_body`` plus, for a prefilled reply, vLLM's ``continue_final_message`` flags
        (servers without them may open a new assistant turn instead; the reply is still
        parsed as prefix + text)."""
        body = dict(self.extra_body)
        if is_prefilled(messages):
            body.update(chat_template_flags(messages))
        return body or None

    def _complete(self, messages: Messages, params: dict[str, Any]) -> Completion:
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                extra_body=self._extra_body(messages),
                **params,
            )
        except self._openai.OpenAIError as exc:
            raise BackendError(self._describe(exc)) from exc
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise BackendError(f"the OpenAI-compatible server at {self.base_url} returned no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = (getattr(message, "content", None) or "") if message is not None else ""
        extra = getattr(choice, "model_extra", None) or {}
        stop_reason = extra["stop_reason"] if "stop_reason" in extra else NOT_REPORTED
        text = restore_answer_close(text, getattr(choice, "finish_reason", None), stop_reason)
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    def _describe(self, exc: BaseException) -> str:
        """A one-line, actionable message naming the server URL and the cause."""
        openai = self._openai
        where = f"the OpenAI-compatible server at {self.base_url}"
        if isinstance(exc, openai.APITimeoutError):
            return f"cannot reach {where}: timed out after {self.timeout:g}s (retried {self.max_retries}x)"
        if isinstance(exc, openai.APIConnectionError):
            return f"cannot reach {where}: {_connection_cause(exc)}"
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            hint = ""
            if status in (401, 403):
                hint = " (check --api-key / $OPENAI_API_KEY)"
            elif status == 404:
                hint = f" (is {self.model!r} the model name the server serves, and does the URL end in /v1?)"
            retried = (
                f" after {self.max_retries} retries" if status >= 500 or status in (408, 409, 429) else ""
            )
            return f"{where} answered HTTP {status}{retried}: {_one_line(_status_detail(exc))}{hint}"
        return f"{where} failed: {_one_line(str(exc))}"


#: the endpoints label scoring may use, as error messages name them
ENDPOINT_NAMES = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


class _Unsupported(Exception):
    """Capability probe: the endpoint answered that it does not offer what was asked."""


def _connection_cause(exc: BaseException) -> str:
    """Name the root cause of a connection error (refused, DNS, TLS, ...) in a few words."""
    seen = set()
    cur: BaseException | None = exc
    root: BaseException = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError):
            return "connection refused"
        root = cur
        cur = cur.__cause__ or cur.__context__
    text = str(root) or type(root).__name__
    low = text.lower()
    if "refused" in low or "errno 111" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low or "getaddrinfo" in low:
        return f"unknown host ({_one_line(text)})"
    return _one_line(text)


def _status_detail(exc: Any) -> str:
    """The server's own error message when the body has one (OpenAI, vLLM and TGI shapes)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("message"):
            return str(body["message"])
    return str(getattr(exc, "message", "") or exc)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
