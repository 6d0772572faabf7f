"""Request and response models of the HTTP API (pydantic 2).

Shapes follow Cohere's rerank API (``/v1/rerank``, ``/v2/rerank``) so Cohere clients work
unchanged; iranker's extensions (``scenario``, ``history``, ``domain``, ``return_trace``) are
optional fields. Types are strict (a number is not a string, ``"5"`` is not an integer) so a
malformed body is rejected with a 422 naming the field instead of being coerced.

Limits that depend on the server's settings (documents per request, characters per
document, ...) are checked by the endpoints, not here, and answer 413.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from ..signals.schema import check_signals

SCORE_DOC = (
    "Rank-derived score in (0, 1]: `(n - rank) / n` where `rank` is the 0-based position in the "
    "final ranking (0 = best = the candidate left after every elimination; n - 1 = the first one "
    "eliminated) and `n` the number of inputs. The best item scores 1.0, the worst 1/n; "
    "scores are evenly spaced and only their order carries information (the elimination ranker "
    "produces an order, not calibrated probabilities). With `top_n` the scores of the returned "
    "items are unchanged (still computed over all n)."
)

#: a finite JSON number (ints accepted); strings, booleans, NaN and Infinity are rejected
Number = Annotated[StrictFloat, Field(allow_inf_nan=False)]


from ..example_fields import (  # noqa: E402
    ROUTING_OBJECTIVES,
    FieldError,
    candidate_text,
    objective_or_weight,
    price,
    routing_weight,
)
from ..results import relevance_score  # noqa: E402  (the one score rule, shared with iranker.Ranker)


def _shared_rule(rule, value: Any) -> Any:
    """Apply one of :mod:`iranker.example_fields`' rules (the CLI reads files with the same ones);
    pydantic reports its ``FieldError`` as a 422 naming the field."""
    if value is None:
        return None
    try:
        return rule(value)
    except FieldError as exc:
        raise ValueError(str(exc)) from None


# --------------------------------------------------------------------------------- rerank --
class DocumentObject(BaseModel):
    """A document as an object: ``text`` is ranked; other fields are kept and returned (v1)."""

    model_config = ConfigDict(extra="allow")

    text: Optional[StrictStr] = Field(
        default=None,
        description="The text to rank. Required unless `rank_fields` names other fields to use.",
    )
    signals: Optional[dict[StrictStr, Number]] = Field(
        default=None,
        description="iranker extension: evidence about this document, `{name: number}` (higher = better, "
        "e.g. a first-stage retriever's score). Shown to the model as the document's rank among the "
        "documents on each signal. Every document must carry the same names.",
    )


def _check_documents(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"documents: must be a list of strings or objects, got {type(value).__name__}")
    if not value:
        raise ValueError("documents: must not be empty")
    for i, d in enumerate(value):
        if isinstance(d, str):
            continue
        if isinstance(d, dict):
            if "text" in d and not isinstance(d["text"], str):
                raise ValueError(f"documents[{i}].text: must be a string, got {type(d['text']).__name__}")
            if d.get("signals") is not None:
                _signals(d["signals"], f"documents[{i}].signals")
            continue
        raise ValueError(
            f"documents[{i}]: must be a string or an object with a string 'text', got {type(d).__name__}"
        )
    return value


def _signals(value: Any, path: str) -> dict[str, float]:
    """A candidate's ``signals``, checked by the one rule every input uses (``iranker.signals``)."""

    return check_signals(value, path)  # a SignalError is a ValueError: a 422 naming the path


def _same_signal_names(items: list[Any], what: str) -> None:
    names = [set((getattr(d, "signals", None) or {})) for d in items]
    union = set().union(*names) if names else set()
    for i, n in enumerate(names):
        if union - n:
            raise ValueError(
                f"{what}[{i}].signals: lacks {', '.join(sorted(union - n))}, which other {what} carry; "
                "give every one the same signals (each is shown as a rank among them)"
            )


def _lone_surrogate(value: Any, path: str = "body", depth: int = 0) -> str | None:
    """The path of the first string holding a lone UTF-16 surrogate (JSON allows ``"\\udc80"``,
    but it is not text: encoding it for a response fails), else None."""
    if depth > 64:
        return None
    if isinstance(value, str):
        return path if any("\ud800" <= ch <= "\udfff" for ch in value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _lone_surrogate(str(k), f"{path} key", depth + 1) or _lone_surrogate(
                v, f"{path}.{k}", depth + 1
            )
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _lone_surrogate(v, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


def _reject_surrogates(data: Any) -> Any:
    where = _lone_surrogate(data)
    if where:
        raise ValueError(
            f"{where.removeprefix('body.')}: contains a lone UTF-16 surrogate, which is not valid text"
        )
    return data


class RerankRequest(BaseModel):
    """Cohere-compatible rerank request, plus iranker extensions.

    Unknown fields are ignored (so newer Cohere clients keep working) and listed in
    ``meta.warnings`` of the response, never silently.
    """

    model_config = ConfigDict(extra="allow")

    model: Optional[StrictStr] = Field(
        default=None,
        description="Accepted for Cohere compatibility and echoed in `meta`; the server ranks "
        "with the one model it loaded.",
    )
    query: Optional[StrictStr] = Field(
        default=None,
        description="The search query (required and non-empty, except for "
        "`scenario='recommendation'` with a non-empty `history`).",
    )
    documents: list[Union[StrictStr, DocumentObject]] = Field(
        description="The texts to rerank: strings or objects with a `text` field. `index` in the "
        "results is the position in this list."
    )
    top_n: Optional[StrictInt] = Field(
        default=None,
        ge=1,
        description="Return only the best `top_n` results. Must be between 1 and the server's "
        "`max_documents`; a value above the number of documents returns them all.",
    )
    return_documents: StrictBool = Field(
        default=False, description="Include each document (`{text, ...}`) in its result."
    )
    max_tokens_per_doc: Optional[StrictInt] = Field(
        default=None,
        ge=1,
        description="Truncate each document to this many tokens before ranking. Tokens are "
        "approximated by whitespace-separated words (the backend's tokenizer is not used). "
        "Returned documents are not truncated.",
    )
    rank_fields: Optional[list[StrictStr]] = Field(
        default=None,
        description="(v1) For object documents: rank the text built from these fields, one "
        "`field: value` line each, in this order.",
    )
    max_chunks_per_doc: Optional[StrictInt] = Field(
        default=None, ge=1, description="(v1) Accepted and ignored (documents are not chunked)."
    )
    priority: Optional[StrictInt] = Field(
        default=None, description="(v2) Accepted and ignored: requests are served in arrival order."
    )
    relevant_spans: Optional[Any] = Field(
        default=None, description="(v2) Accepted and ignored: no spans are returned."
    )
    # -- iranker extensions --
    scenario: Literal["passage", "recommendation"] = Field(
        default="passage",
        description="iranker extension. `passage`: rank documents by relevance to the query. "
        "`recommendation`: documents are candidate items and `history` the user's past items; "
        "rank by how likely the user picks each next. (Routing has its own `/v1/route`.)",
    )
    history: Optional[list[StrictStr]] = Field(
        default=None,
        description="iranker extension, recommendation only: the user's past items, oldest first.",
    )
    domain: Optional[StrictStr] = Field(
        default=None,
        description="iranker extension, recommendation only: what the items are (e.g. `movie`).",
    )
    return_trace: StrictBool = Field(
        default=False,
        description="iranker extension: include the elimination trace (every step's pool, the "
        "removed candidate, each pool member's probability of being named worst under choice "
        "scoring, the model's raw answer and how it was matched) in `trace`. "
        "Candidate ids in the trace are document indices as strings.",
    )

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, data: Any) -> Any:
        return _reject_surrogates(data)

    @field_validator("documents", mode="before")
    @classmethod
    def _documents_shape(cls, v: Any) -> Any:
        return _check_documents(v)

    @model_validator(mode="after")
    def _cross_field(self) -> "RerankRequest":
        if self.scenario != "recommendation":
            if self.history is not None:
                raise ValueError("history: only used with scenario='recommendation'")
            if self.domain is not None:
                raise ValueError("domain: only used with scenario='recommendation'")
        has_history = bool(self.history)
        if self.query is None and not (self.scenario == "recommendation" and has_history):
            raise ValueError("query: Field required")
        if (
            self.query is not None
            and not self.query.strip()
            and not (self.scenario == "recommendation" and has_history)
        ):
            raise ValueError("query: must not be empty")
        _same_signal_names(list(self.documents), "documents")
        for i, d in enumerate(self.documents):
            if isinstance(d, DocumentObject) and d.text is None and not self.rank_fields:
                raise ValueError(
                    f"documents[{i}]: has no 'text' field (give 'text' or name fields in rank_fields)"
                )
            text = d if isinstance(d, str) else (None if self.rank_fields else d.text)
            if text is not None:
                try:
                    candidate_text(text)  # the rule `iranker rank` applies to a candidate's text
                except FieldError as exc:
                    where = f"documents[{i}]" if isinstance(d, str) else f"documents[{i}].text"
                    raise ValueError(f"{where}: {exc}") from None
        return self

    def extra_fields(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int = 1
    input_tokens: int = 0
    output_tokens: int = 0


class Tokens(BaseModel):
    input_tokens: int = Field(0, description="Prompt tokens the backend read, over every step.")
    output_tokens: int = Field(0, description="Tokens the backend generated, over every step.")


class Meta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits
    tokens: Tokens
    model: Optional[str] = Field(None, description="The model this server ranks with.")
    backend_calls: int = Field(0, description="Backend generations this ranking needed.")
    warnings: Optional[list[str]] = None


class RerankResult(BaseModel):
    index: int = Field(description="Position of the document in the request's `documents`.")
    relevance_score: float = Field(description=SCORE_DOC)
    document: Optional[dict[str, Any]] = Field(
        default=None, description="The document as sent (only with `return_documents`)."
    )


class Trace(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    ranking: list[str] = Field(description="Candidate ids, best first.")
    steps: list[dict[str, Any]] = Field(
        description="Elimination steps, in order. Each: `pool` (the candidate ids still in, in input "
        "order), `removed` (the id eliminated), `probs` (choice scoring only: for each pool member, "
        "in pool order, the probability of being named worst, the softmax of the label "
        "log-probabilities; sums to 1; absent when the step was generated), `raw` (the model's "
        "reply; for choice scoring the label log-probabilities as text), `thought` (the text in "
        "`<think>`), `valid` (the answer named a pool member), `how_matched` (exact, normalized, "
        "label, fuzzy, choice, choice:pruned or fallback:<policy>) and `attempts`."
    )
    usage: dict[str, int]
    method: Optional[str] = None
    valid_rate: float = Field(description="Share of steps whose answer named a candidate.")


class RerankResponse(BaseModel):
    id: str
    results: list[RerankResult] = Field(description="Best first.")
    meta: Meta
    trace: Optional[Trace] = None


# ---------------------------------------------------------------------------------- route --
class ModelIn(BaseModel):
    """One candidate LLM. Prices are per million tokens (any currency, used consistently)."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, description="Unique (case-insensitively) among the models.")
    description: StrictStr = Field(default="", description="What the model is good at.")
    input_price: Optional[Number] = Field(default=None, ge=0)
    output_price: Optional[Number] = Field(default=None, ge=0)
    signals: Optional[dict[StrictStr, Number]] = Field(
        default=None,
        description="iranker extension: evidence about this LLM for the query, `{name: number}` (higher = "
        "better, e.g. its past success rate on similar queries). Every model must carry the same names.",
    )

    @field_validator("input_price", "output_price", mode="before")
    @classmethod
    def _price(cls, v: Any) -> Any:
        return _shared_rule(price, v)


class RouteRequest(BaseModel):
    """Which LLM should answer ``query``? Unknown fields are rejected (422)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, data: Any) -> Any:
        return _reject_surrogates(data)

    query: StrictStr = Field(description="The user's query (non-empty).")
    models: list[ModelIn] = Field(description="The candidate LLMs (at least one).")
    objective: Optional[Literal[ROUTING_OBJECTIVES]] = Field(
        default=None,
        description="`performance` (quality only, weight 1.0), `balance` (0.5) or `cost` (0.2). "
        "Default `performance`. Give `objective` or `weight`, not both.",
    )
    weight: Optional[Number] = Field(
        default=None,
        ge=0,
        le=1,
        description="Weight w on quality in [0, 1] (score = w*quality - (1-w)*normalised price).",
    )
    top_n: Optional[StrictInt] = Field(default=None, ge=1, description="Return only the best `top_n`.")
    return_trace: StrictBool = Field(
        default=False,
        description="Include the elimination trace (`trace`; candidate ids are the model names).",
    )
    model: Optional[StrictStr] = Field(default=None, description="Accepted and ignored.")

    @field_validator("query")
    @classmethod
    def _query_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[ModelIn]) -> list[ModelIn]:
        if not v:
            raise ValueError("models: must not be empty")
        seen: dict[str, int] = {}
        for i, m in enumerate(v):
            if not m.name.strip():
                raise ValueError(f"models[{i}].name: must not be blank")
            key = m.name.strip().casefold()
            if key in seen:
                raise ValueError(
                    f"models: duplicate model name {m.name!r} (models[{seen[key]}] and models[{i}]; "
                    "names are compared case-insensitively)"
                )
            seen[key] = i
            if m.signals is not None:
                _signals(m.signals, f"models[{i}].signals")
        _same_signal_names(v, "models")
        return v

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, v: Any) -> Any:
        return _shared_rule(routing_weight, v)

    @model_validator(mode="after")
    def _objective_or_weight(self) -> "RouteRequest":
        try:
            objective_or_weight({"objective": self.objective, "weight": self.weight})
        except FieldError as exc:
            raise ValueError(str(exc)) from None
        return self


class RouteResult(BaseModel):
    index: int = Field(description="Position of the model in the request's `models`.")
    name: str
    score: float = Field(description=SCORE_DOC)


class RouteResponse(BaseModel):
    id: str
    objective: Optional[str] = Field(description="The objective used (None when `weight` was given).")
    weight: float = Field(description="The weight on quality that the objective stands for.")
    results: list[RouteResult] = Field(description="Best first.")
    meta: Meta
    trace: Optional[Trace] = None


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong, naming the field.")
    message: str = Field(description="The same text (Cohere clients read `message`).")
    errors: Optional[list[dict[str, Any]]] = None


__all__ = [
    "DocumentObject",
    "ErrorResponse",
    "Meta",
    "ModelIn",
    "RerankRequest",
    "RerankResponse",
    "RerankResult",
    "RouteRequest",
    "RouteResponse",
    "RouteResult",
    "SCORE_DOC",
    "Trace",
    "relevance_score",
]
