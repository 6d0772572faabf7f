"""``POST /v1/rerank`` and ``/v2/rerank``: Cohere-compatible reranking of documents (passages,
or a recommendation pool with ``scenario``/``history``), best first."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from ..types import Candidate, RankingExample
from .errors import ERRORS_DOC, ApiError
from .schemas import DocumentObject, RerankRequest, RerankResponse, RerankResult, relevance_score
from .service import RankingService


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


async def rerank(service: RankingService, req: RerankRequest, version: str) -> RerankResponse:
    """The one rerank path of both API versions: limits, documents as candidates, the ranking,
    the Cohere-shaped response."""
    n = len(req.documents)
    settings, check_limit = service.settings, service.check_limit
    check_limit(n, settings.max_documents, "documents")
    service.check_top_n(req.top_n)
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
        id=rid,
        scenario=req.scenario,
        query=query,
        candidates=[
            Candidate(id=str(i), text=t, meta=_document_signals(req.documents[i]))
            for i, t in enumerate(texts)
        ],
        meta=meta,
    )
    ranking = await service.rank(example)
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
        id=rid,
        results=results,
        meta=service.meta(version, ranking, warnings),
        trace=service.trace(ranking) if req.return_trace else None,
    )


def rerank_router(service: RankingService) -> APIRouter:
    router = APIRouter(tags=["rerank"])

    @router.post(
        "/v1/rerank",
        response_model=RerankResponse,
        response_model_exclude_none=True,
        responses=ERRORS_DOC,
        summary="Rerank documents (Cohere v1 shape)",
    )
    async def rerank_v1(req: RerankRequest) -> RerankResponse:
        """Rank `documents` against `query`, best first. Cohere-compatible (v1), with
        iranker's `scenario`/`history`/`return_trace` extensions."""
        return await rerank(service, req, "1")

    @router.post(
        "/v2/rerank",
        response_model=RerankResponse,
        response_model_exclude_none=True,
        responses=ERRORS_DOC,
        summary="Rerank documents (Cohere v2 shape)",
    )
    async def rerank_v2(req: RerankRequest) -> RerankResponse:
        """Rank `documents` against `query`, best first. Cohere-compatible (v2), with
        iranker's `scenario`/`history`/`return_trace` extensions."""
        return await rerank(service, req, "2")

    return router


__all__ = ["rerank", "rerank_router"]
