"""A backend for any OpenAI-compatible ``/v1/chat/completions`` server.

vLLM (``vllm serve``), SGLang, the llama.cpp server, TGI and OpenAI itself all speak this API,
so one client covers remote GPUs, a laptop running llama.cpp and hosted models. It uses the
official ``openai`` SDK (the ``openai`` extra) for retries, timeouts and auth, and sends the
prompts of one elimination round concurrently because a server batches concurrent requests
itself (continuous batching) — sequential requests would leave it idle.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Sequence

from .base import BackendError, Completion, Messages, chat_template_flags, is_prefilled, require

#: the answer format every ranking prompt asks for ends with this tag
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

#: placeholder key: local servers ignore the key, but the SDK refuses to run without one
PLACEHOLDER_API_KEY = "EMPTY"

#: ``stop_reason`` value meaning "the server does not report it" (only vLLM does)
NOT_REPORTED: Any = object()


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
    ) -> None:
        openai = require("openai", "openai", "OpenAI-compatible servers")
        if not model:
            raise ValueError("the openai backend needs the server's model name")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError("max_tokens_field must be 'max_tokens' or 'max_completion_tokens'")
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
            "stop": [ANSWER_CLOSE],
        }
        return params

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
            retried = f" after {self.max_retries} retries" if status >= 500 or status in (408, 409, 429) else ""
            return f"{where} answered HTTP {status}{retried}: {_one_line(_status_detail(exc))}{hint}"
        return f"{where} failed: {_one_line(str(exc))}"


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
