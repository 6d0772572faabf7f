"""The FastAPI app: Cohere-compatible rerank, LLM routing, health and metrics.

``create_app(ranker=..., settings=...)`` (or ``create_app(backend=...)``) builds an app
around ONE loaded model. Every ranking request becomes one ``RankingExample`` that the
micro-batcher ranks together with the requests that arrived at about the same time.

Status codes (the body is always ``{"detail": str, "message": str}``, plus ``errors`` for 422):
  400 a body that is not UTF-8 or nests too deeply to parse (the detail says which)
  401 missing or wrong bearer token (only when an API key is configured), with
      ``WWW-Authenticate: Bearer``
  408 headers or body not received within ``header_timeout_s`` / ``body_timeout_s``
  413 body larger than ``max_body_bytes``, or more documents / longer documents, queries or
      histories than the configured limits
  422 malformed body: the detail names the field (``documents[2]: ...``)
  502 the backend raised while ranking this request's batch (the server keeps serving)
  503 the queue is full (``Retry-After: 1``) or the server is shutting down
  504 the ranking took longer than ``request_timeout_s``
Bad input never yields a 5xx.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..llm.base import LLMBackend
from ..rankers.base import Ranker
from ..scenarios import objective_weight
from ..types import Candidate, Ranking, RankingExample
from .batching import BatcherError, MicroBatcher
from .playground import PATH as PLAYGROUND_PATH, add_playground
from .schemas import (
    SCORE_DOC,
    ApiVersion,
    BilledUnits,
    DocumentObject,
    ErrorResponse,
    Meta,
    RerankRequest,
    RerankResponse,
    RerankResult,
    RouteRequest,
    RouteResponse,
    RouteResult,
    Tokens,
    Trace,
    relevance_score,
)
from .settings import ServeSettings

log = logging.getLogger("iranker.serve")

#: paths that never need the bearer token: the liveness probe and the playground page (which
#: holds no data and asks the user for the key its requests send). The API docs (/docs, /redoc,
#: /openapi.json) describe every endpoint and limit, so a server with a key shows them only to
#: clients with the key, as its help says (browse them on a local server without a key).
OPEN_PATHS = frozenset({"/healthz", PLAYGROUND_PATH})
RANKING_PATHS = ("/v1/rerank", "/v2/rerank", "/v1/route")
KNOWN_PATHS = frozenset({*RANKING_PATHS, "/healthz", "/metrics", PLAYGROUND_PATH})


class ApiError(Exception):
    """An error with an HTTP status and a readable detail (raised by the endpoints)."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}


def error_response(status: int, detail: str, headers: dict[str, str] | None = None,
                   errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "message": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


# ---------------------------------------------------------------------------- metrics --
#: nginx's "client closed request": what a request is recorded as when its client left first
CLIENT_CLOSED = 499

@dataclass
class EndpointStats:
    requests: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    #: the client went away before a response started (status 499, as nginx logs it): not an
    #: error of the server, so not in errors_5xx
    client_disconnects: int = 0
    latency_sum_s: float = 0.0
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=2048))

    def record(self, status: int, seconds: float) -> None:
        self.requests += 1
        if status == CLIENT_CLOSED:
            self.client_disconnects += 1
        elif 400 <= status < 500:
            self.errors_4xx += 1
        elif status >= 500:
            self.errors_5xx += 1
        self.latency_sum_s += seconds
        self.recent.append(seconds)

    def to_dict(self) -> dict[str, Any]:
        lat = sorted(self.recent)

        def pct(p: float) -> float:
            return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else 0.0

        return {
            "requests": self.requests,
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "client_disconnects": self.client_disconnects,
            "mean_latency_ms": round(1000 * self.latency_sum_s / self.requests, 3) if self.requests else 0.0,
            "p50_latency_ms": pct(0.50),
            "p99_latency_ms": pct(0.99),
        }


class Metrics:
    """Counters since start: requests, errors, latency, tokens, rankings, backend failures."""

    def __init__(self) -> None:
        self.started = time.time()
        self.endpoints: dict[str, EndpointStats] = collections.defaultdict(EndpointStats)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.backend_calls = 0
        self.rankings = 0
        self.documents = 0
        self.backend_errors = 0
        self.timeouts = 0
        self.overloaded = 0
        self.auth_failures = 0

    def record_request(self, path: str, status: int, seconds: float) -> None:
        self.endpoints[path if path in KNOWN_PATHS else "other"].record(status, seconds)

    def record_ranking(self, ranking: Ranking, n: int) -> None:
        self.rankings += 1
        self.documents += n
        self.prompt_tokens += ranking.usage.prompt_tokens
        self.completion_tokens += ranking.usage.completion_tokens
        self.backend_calls += ranking.usage.calls

    def to_dict(self, batcher: MicroBatcher | None = None) -> dict[str, Any]:
        eps = {k: v.to_dict() for k, v in sorted(self.endpoints.items())}
        total = sum(v.requests for v in self.endpoints.values())
        ranking = [self.endpoints[p] for p in RANKING_PATHS if p in self.endpoints]
        n_rank = sum(e.requests for e in ranking)
        d = {
            "uptime_s": round(time.time() - self.started, 3),
            "requests_total": total,
            "errors_total": sum(v.errors_4xx + v.errors_5xx for v in self.endpoints.values()),
            "errors_4xx": sum(v.errors_4xx for v in self.endpoints.values()),
            "errors_5xx": sum(v.errors_5xx for v in self.endpoints.values()),
            "client_disconnects": sum(v.client_disconnects for v in self.endpoints.values()),
            "ranking_requests": n_rank,
            "mean_latency_ms": round(1000 * sum(e.latency_sum_s for e in ranking) / n_rank, 3) if n_rank else 0.0,
            "rankings": self.rankings,
            "documents_ranked": self.documents,
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.prompt_tokens + self.completion_tokens,
            },
            "backend_prompts": self.backend_calls,
            "backend_errors": self.backend_errors,
            "timeouts": self.timeouts,
            "overloaded": self.overloaded,
            "auth_failures": self.auth_failures,
            "endpoints": eps,
        }
        if batcher is not None:
            d["batcher"] = {**batcher.stats.to_dict(), "queued": batcher.queued, "in_flight": batcher.in_flight}
        return d

    def to_prometheus(self, batcher: MicroBatcher | None = None) -> str:
        d = self.to_dict(batcher)
        lines = [
            f"iranker_uptime_seconds {d['uptime_s']}",
            f"iranker_rankings_total {d['rankings']}",
            f"iranker_documents_ranked_total {d['documents_ranked']}",
            f"iranker_prompt_tokens_total {d['tokens']['prompt']}",
            f"iranker_completion_tokens_total {d['tokens']['completion']}",
            f"iranker_backend_errors_total {d['backend_errors']}",
            f"iranker_timeouts_total {d['timeouts']}",
        ]
        for path, e in d["endpoints"].items():
            lab = f'{{path="{path}"}}'
            lines += [
                f"iranker_requests_total{lab} {e['requests']}",
                f"iranker_errors_4xx_total{lab} {e['errors_4xx']}",
                f"iranker_errors_5xx_total{lab} {e['errors_5xx']}",
                f"iranker_latency_mean_ms{lab} {e['mean_latency_ms']}",
            ]
        if "batcher" in d:
            lines += [
                f"iranker_batches_total {d['batcher']['batches']}",
                f"iranker_batch_size_mean {d['batcher']['mean_batch_size']}",
                f"iranker_queue_depth {d['batcher']['queued']}",
            ]
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------- middleware --
ASGIApp = Callable[..., Awaitable[None]]


async def _send_json(send: Callable, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail, "message": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Outermost: times every HTTP request and records its status (including 401/413)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500, "started": False, "gone": False}

        async def wrapped(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        async def watched():
            message = await receive()
            if message["type"] == "http.disconnect":
                status["gone"] = True
            return message

        try:
            await self.app(scope, watched, wrapped)
        except Exception:
            if not (status["gone"] and not status["started"]):
                raise  # a real failure: the 500 it becomes is counted
        finally:
            if status["gone"] and not status["started"]:
                status["code"] = CLIENT_CLOSED
            self.metrics.record_request(scope.get("path", ""), status["code"], time.perf_counter() - t0)


class AuthMiddleware:
    """With an API key set, every path except ``OPEN_PATHS`` needs ``Authorization: Bearer``."""

    def __init__(self, app: ASGIApp, api_key: str | None, metrics: Metrics) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else None
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.key is None or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = b""
        for k, v in scope.get("headers", []):
            if k == b"authorization":
                header = v
                break
        scheme, _, token = header.partition(b" ")
        if not header or scheme.lower() != b"bearer":
            self.metrics.auth_failures += 1
            return await _send_json(
                send, 401, "missing bearer token: send 'Authorization: Bearer <key>'",
                {"WWW-Authenticate": 'Bearer realm="iranker"'},
            )
        if not hmac.compare_digest(token.strip(), self.key):
            self.metrics.auth_failures += 1
            return await _send_json(
                send, 401, "invalid bearer token",
                {"WWW-Authenticate": 'Bearer realm="iranker", error="invalid_token"'},
            )
        return await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: checks Content-Length, then the bytes actually read
    (chunked uploads have no Content-Length). The body is read here and replayed to the app.

    The whole body must arrive within ``timeout_s`` (a client trickling bytes, or sending
    fewer than its Content-Length, would hold the request forever): after that the answer is
    408 with ``Connection: close``, and the server closes the connection.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        too_big = f"request body larger than the limit of {self.max_bytes} bytes"
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    return await _send_json(send, 400, "invalid Content-Length header")
                if declared > self.max_bytes:
                    return await _send_json(send, 413, too_big)
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s
        while True:
            try:
                if deadline is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return await _send_json(send, 408, f"request body not received within {self.timeout_s:g} s "
                                                   f"({size} bytes arrived)", {"Connection": "close"})
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return await _send_json(send, 413, too_big)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


# ---------------------------------------------------------------------- helpers --
def _loc_text(loc: tuple) -> str:
    parts = list(loc[1:]) if len(loc) > 1 and loc[0] == "body" else list(loc)
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


def format_validation_errors(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """A readable one-line detail naming each field, and a JSON-safe list of the errors."""
    msgs: list[str] = []
    clean: list[dict[str, Any]] = []
    for e in errors:
        where = "body" if e.get("type") == "json_invalid" else _loc_text(tuple(e.get("loc", ())))
        msg = str(e.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx") or {}
            msg = f"invalid JSON ({ctx.get('error', 'could not decode')})"
        if e.get("type") == "missing" and where == "body":
            msg = "a JSON object is required"
        if where == "body" and e.get("type") == "value_error":
            text = msg  # model-level checks already name their field(s)
        elif msg.startswith(where):
            text = msg
        else:
            text = f"{where}: {msg}"
        if text not in msgs:
            msgs.append(text)
        clean.append({"loc": [str(x) for x in e.get("loc", ())], "msg": msg, "type": e.get("type", "")})
    return "; ".join(msgs) or "invalid request", clean


def body_parse_detail(cause: BaseException | None) -> str | None:
    """What was wrong with a body FastAPI could not parse, naming it (FastAPI's own 400 says
    only "There was an error parsing the body"); None for another cause."""
    if isinstance(cause, UnicodeDecodeError):
        return (f"body: not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at position {cause.start}); "
                "send JSON encoded as UTF-8")
    if isinstance(cause, RecursionError):
        return "body: JSON nested too deeply to parse; no field of this API nests more than a few levels"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return f"body: invalid JSON ({str(cause).split(';')[0]})"
    return None


def _truncate_words(text: str, max_tokens: int | None) -> str:
    if not max_tokens:
        return text
    words = text.split()
    if len(words) <= max_tokens:
        return text
    return " ".join(words[:max_tokens])


def _document_text(doc: str | DocumentObject, rank_fields: list[str] | None, index: int) -> str:
    if isinstance(doc, str):
        return doc
    if rank_fields:
        data = doc.model_dump()
        lines = []
        for f in rank_fields:
            if f not in data or data[f] is None:
                continue
            v = data[f]
            if isinstance(v, (dict, list)):
                raise ApiError(422, f"documents[{index}].{f}: rank_fields must name string or number fields")
            lines.append(f"{f}: {v}")
        if not lines:
            raise ApiError(422, f"documents[{index}]: has none of the rank_fields {rank_fields}")
        return "\n".join(lines)
    return doc.text or ""


def _document_signals(doc: str | DocumentObject) -> dict[str, Any]:
    """A document's ``signals`` as candidate meta (empty for strings and documents without)."""
    sig = getattr(doc, "signals", None)
    return {"signals": {k: float(v) for k, v in sig.items()}} if sig else {}


def _trace(ranking: Ranking) -> Trace:
    d = ranking.to_dict()
    d["valid_rate"] = round(ranking.valid_rate, 6)
    return Trace(**d)


def build_ranker(backend: LLMBackend, *, method: str = "iterative", max_batch: int = 16,
                 max_new_tokens: int | None = None, **kwargs: Any) -> Ranker:
    """The ranker the server uses: one batch per ``rank`` call, no progress bar.

    A trained folder's prompt templates (``backend.templates``) are used unless ``templates``
    is passed: a served model must see the prompts it was trained with.
    """
    from ..rankers import DirectRanker, IterativeRanker

    opts: dict[str, Any] = {"batch_size": max_batch, "show_progress": False, **kwargs}
    if opts.get("templates") is None and getattr(backend, "templates", None):
        opts["templates"] = backend.templates
    if max_new_tokens is not None:
        opts["max_new_tokens"] = max_new_tokens
    if method == "iterative":
        return IterativeRanker(backend, **opts)
    if method == "direct":
        return DirectRanker(backend, **opts)
    raise ValueError(f"unknown method {method!r}; use iterative or direct")


# -------------------------------------------------------------------------- the app --
def create_app(
    ranker: Ranker | None = None,
    *,
    backend: LLMBackend | None = None,
    settings: ServeSettings | None = None,
    model_name: str | None = None,
    backend_name: str | None = None,
    method: str = "iterative",
    max_new_tokens: int | None = None,
    templates: dict | None = None,
    signals: list | None = None,
) -> FastAPI:
    """Build the app around one loaded model.

    ``signals`` (``iranker.signals`` providers, ``iranker serve --signals``) are computed for
    every request; a request whose signals (computed or sent) are not those the model was
    trained with is a 422.

    Pass a ready ``ranker`` or a ``backend`` (then an ``IterativeRanker``/``DirectRanker`` is
    built with ``batch_size = settings.max_batch``). ``settings`` default to
    ``ServeSettings.from_env()`` (so ``IRANKER_API_KEY`` etc. apply).
    """
    settings = settings or ServeSettings.from_env()
    if ranker is None:
        if backend is None:
            raise ValueError("create_app needs a ranker or a backend")
        ranker = build_ranker(backend, method=method, max_batch=settings.max_batch,
                              max_new_tokens=max_new_tokens, templates=templates)
    backend = backend or getattr(ranker, "backend", None)
    backend_name = backend_name or getattr(backend, "name", None) or type(backend).__name__
    model_name = model_name or getattr(backend, "model_name", None) or getattr(backend, "model", None)
    model_name = str(model_name) if model_name else backend_name

    metrics = Metrics()
    batcher = MicroBatcher(ranker, window_ms=settings.batch_window_ms, max_batch=settings.max_batch,
                           max_queue=settings.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        log.info("iranker serving %s (%s, %s)", model_name, backend_name, ranker.name)
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="iranker",
        version=__version__,
        summary="Cohere-compatible rerank and LLM routing by iterative elimination.",
        description=(
            "One LLM ranks candidates by naming the worst one, step after step; the ranking is "
            "the reverse order of elimination.\n\n**relevance_score / score**: " + SCORE_DOC +
            "\n\nErrors: 400 body not UTF-8 or nested too deeply to parse, 401 bad token, 408 headers "
            "or body too slow, 413 over a size limit, 422 malformed body (the detail names the field), "
            "502 backend failure, 503 overloaded or too many connections, 504 timeout."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ranker = ranker
    app.state.backend = backend
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.model_name = model_name

    # middleware: added last = outermost. Order of work: metrics -> auth -> body limit -> app
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(AuthMiddleware, api_key=settings.api_key, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    # -- error handlers -----------------------------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        detail, errors = format_validation_errors(list(exc.errors()))
        return error_response(422, detail, errors=errors)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status_code, exc.detail, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        detail = body_parse_detail(exc.__cause__) if exc.status_code == 400 else None
        return error_response(exc.status_code, detail or str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # pragma: no cover - a bug
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}")

    # -- shared ranking path ------------------------------------------------------------
    def check_limit(count: int, limit: int, what: str) -> None:
        if count > limit:
            raise ApiError(413, f"{what}: {count} is over the server limit of {limit}")

    from ..signals.recorded import recorded_signals
    from ..signals.wrap import SignalsRanker

    signal_ranker = SignalsRanker(ranker, signals or [], recorded=recorded_signals(backend), model=model_name)
    signals_needed = bool(signals) or signal_ranker.recorded is not None

    async def rank(example: RankingExample) -> Ranking:
        if signals_needed:
            from ..signals.schema import SignalError

            try:  # providers may embed texts: off the event loop
                example = (await asyncio.to_thread(signal_ranker.prepare, [example]))[0]
            except SignalError as exc:
                raise ApiError(422, str(exc)) from None
        try:
            ranking = await batcher.submit(example, timeout=settings.request_timeout_s)
        except asyncio.TimeoutError:
            metrics.timeouts += 1
            raise ApiError(504, f"ranking took longer than the {settings.request_timeout_s:g} s timeout") from None
        except BatcherError as exc:
            if exc.status_code == 502:
                metrics.backend_errors += 1
            else:
                metrics.overloaded += 1
            headers = {"Retry-After": "1"} if exc.status_code == 503 else None
            raise ApiError(exc.status_code, str(exc), headers=headers) from None
        metrics.record_ranking(ranking, len(example.candidates))
        return ranking

    def make_meta(version: str, ranking: Ranking, warnings: list[str]) -> Meta:
        u = ranking.usage
        return Meta(
            api_version=ApiVersion(version=version),
            billed_units=BilledUnits(search_units=1, input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens),
            tokens=Tokens(input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens),
            model=model_name,
            backend_calls=u.calls,
            warnings=warnings or None,
        )

    async def rerank(req: RerankRequest, version: str) -> RerankResponse:
        n = len(req.documents)
        check_limit(n, settings.max_documents, "documents")
        if req.top_n is not None and req.top_n > settings.max_documents:
            raise ApiError(422, f"top_n: must be between 1 and {settings.max_documents}, got {req.top_n}")
        if req.query is not None:
            check_limit(len(req.query), settings.max_query_chars, "query characters")
        if req.history:
            check_limit(len(req.history), settings.max_history, "history items")
            for i, h in enumerate(req.history):
                check_limit(len(h), settings.max_doc_chars, f"history[{i}] characters")
        texts = []
        for i, d in enumerate(req.documents):
            t = _truncate_words(_document_text(d, req.rank_fields, i), req.max_tokens_per_doc)
            check_limit(len(t), settings.max_doc_chars, f"documents[{i}] characters")
            texts.append(t)
        warnings = []
        extra = req.extra_fields()
        if extra:
            warnings.append(f"ignored unknown fields: {', '.join(extra)}")
        rid = str(uuid.uuid4())
        meta: dict[str, Any] = {}
        query = req.query or ""
        if req.scenario == "recommendation":
            if req.history:
                meta["history"] = list(req.history)
                if not query.strip():
                    query = "\n".join(req.history)
            if req.domain:
                meta["domain"] = req.domain
        example = RankingExample(
            id=rid, scenario=req.scenario, query=query,
            candidates=[Candidate(id=str(i), text=t, meta=_document_signals(req.documents[i]))
                        for i, t in enumerate(texts)], meta=meta,
        )
        ranking = await rank(example)
        top = ranking.order[: req.top_n] if req.top_n else ranking.order
        results = []
        for rank_pos, cid in enumerate(top):
            idx = int(cid)
            doc = None
            if req.return_documents:
                d = req.documents[idx]
                doc = {"text": d} if isinstance(d, str) else d.model_dump(exclude_none=True)
            results.append(RerankResult(index=idx, relevance_score=relevance_score(rank_pos, n), document=doc))
        return RerankResponse(
            id=rid, results=results, meta=make_meta(version, ranking, warnings),
            trace=_trace(ranking) if req.return_trace else None,
        )

    errors_doc = {
        400: {"model": ErrorResponse, "description": "Body not UTF-8 or nested too deeply to parse"},
        401: {"model": ErrorResponse, "description": "Missing or invalid bearer token"},
        408: {"model": ErrorResponse, "description": "Headers or body not received in time (connection closed)"},
        413: {"model": ErrorResponse, "description": "Body, document count or document length over a limit"},
        422: {"model": ErrorResponse, "description": "Malformed body; the detail names the field"},
        502: {"model": ErrorResponse, "description": "The backend failed on this batch"},
        503: {"model": ErrorResponse, "description": "Overloaded (retry) or shutting down"},
        504: {"model": ErrorResponse, "description": "Timed out"},
    }

    # -- endpoints ----------------------------------------------------------------------
    @app.post("/v1/rerank", response_model=RerankResponse, response_model_exclude_none=True,
              responses=errors_doc, tags=["rerank"],
              summary="Rerank documents (Cohere v1 shape)")
    async def rerank_v1(req: RerankRequest) -> RerankResponse:
        """Rank `documents` against `query`, best first. Cohere-compatible (v1), with
        iranker's `scenario`/`history`/`return_trace` extensions."""
        return await rerank(req, "1")

    @app.post("/v2/rerank", response_model=RerankResponse, response_model_exclude_none=True,
              responses=errors_doc, tags=["rerank"],
              summary="Rerank documents (Cohere v2 shape)")
    async def rerank_v2(req: RerankRequest) -> RerankResponse:
        """Rank `documents` against `query`, best first. Cohere-compatible (v2), with
        iranker's `scenario`/`history`/`return_trace` extensions."""
        return await rerank(req, "2")

    @app.post("/v1/route", response_model=RouteResponse, response_model_exclude_none=True,
              responses=errors_doc, tags=["route"], summary="Rank LLMs for a query")
    async def route(req: RouteRequest) -> RouteResponse:
        """Rank the candidate `models` for `query` under an `objective` (performance, balance,
        cost) or a quality `weight`, best first."""
        n = len(req.models)
        check_limit(n, settings.max_documents, "models")
        check_limit(len(req.query), settings.max_query_chars, "query characters")
        if req.top_n is not None and req.top_n > settings.max_documents:
            raise ApiError(422, f"top_n: must be between 1 and {settings.max_documents}, got {req.top_n}")
        cands = []
        for i, m in enumerate(req.models):
            check_limit(len(m.description), settings.max_doc_chars, f"models[{i}].description characters")
            meta: dict[str, Any] = {"name": m.name}
            if m.input_price is not None:
                meta["input_price"] = float(m.input_price)
            if m.output_price is not None:
                meta["output_price"] = float(m.output_price)
            if m.signals:
                meta["signals"] = {k: float(v) for k, v in m.signals.items()}
            cands.append(Candidate(id=m.name, text=m.description, meta=meta))
        ex_meta: dict[str, Any] = {}
        if req.weight is not None:
            ex_meta["weight"] = float(req.weight)
        else:
            ex_meta["objective"] = req.objective or "performance"
        weight = objective_weight(ex_meta)
        rid = str(uuid.uuid4())
        example = RankingExample(id=rid, scenario="routing", query=req.query, candidates=cands, meta=ex_meta)
        ranking = await rank(example)
        index = {m.name: i for i, m in enumerate(req.models)}
        top = ranking.order[: req.top_n] if req.top_n else ranking.order
        results = [RouteResult(index=index[name], name=name, score=relevance_score(pos, n))
                   for pos, name in enumerate(top)]
        return RouteResponse(
            id=rid, objective=ex_meta.get("objective"), weight=weight, results=results,
            meta=make_meta("1", ranking, []), trace=_trace(ranking) if req.return_trace else None,
        )

    @app.get("/healthz", tags=["ops"], summary="Liveness and what is loaded")
    async def healthz():
        """`status: ok` (200) when the model is loaded and the batcher runs, else 503."""
        ok = batcher.running
        body = {
            "status": "ok" if ok else "unavailable",
            "loaded": ok,
            "model": model_name,
            "backend": backend_name,
            "method": ranker.name,
            "version": __version__,
            "queued": batcher.queued,
            "in_flight": batcher.in_flight,
            "limits": settings.public(),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], summary="Counters since start")
    async def get_metrics(format: str = "json"):
        """Requests, errors (4xx/5xx), mean/p50/p99 latency per endpoint, tokens, batches.
        `?format=prometheus` gives the Prometheus text format."""
        if format == "prometheus":
            return PlainTextResponse(metrics.to_prometheus(batcher))
        if format != "json":
            raise ApiError(422, "format: must be json or prometheus")
        return metrics.to_dict(batcher)

    add_playground(app, settings)  # GET /: the page that draws the elimination trace
    return app
