"""``POST /v1/route``: rank candidate LLMs for a query under an objective or a quality weight."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from ..scenarios import objective_weight
from ..types import Candidate, RankingExample
from .errors import ERRORS_DOC
from .schemas import RouteRequest, RouteResponse, RouteResult, relevance_score
from .service import RankingService


async def rank_route(service: RankingService, req: RouteRequest) -> RouteResponse:
    """Rank the candidate `models` for `query` under an `objective` (performance, balance,
    cost) or a quality `weight`, best first."""
    """Rank the candidate `models` for `query` under an `objective` (performance, balance,
    cost) or a quality `weight`, best first."""
    n = len(req.models)
    settings, check_limit = service.settings, service.check_limit
    check_limit(n, settings.max_documents, "models")
    check_limit(len(req.query), settings.max_query_chars, "query characters")
    service.check_top_n(req.top_n)
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
    ranking = await service.rank(example)
    index = {m.name: i for i, m in enumerate(req.models)}
    top = ranking.order[: req.top_n] if req.top_n else ranking.order
    results = [
        RouteResult(index=index[name], name=name, score=relevance_score(pos, n))
        for pos, name in enumerate(top)
    ]
    return RouteResponse(
        id=rid,
        objective=ex_meta.get("objective"),
        weight=weight,
        results=results,
        meta=service.meta("1", ranking, []),
        trace=service.trace(ranking) if req.return_trace else None,
    )


def route_router(service: RankingService) -> APIRouter:
    router = APIRouter(tags=["route"])

    @router.post(
        "/v1/route",
        response_model=RouteResponse,
        response_model_exclude_none=True,
        responses=ERRORS_DOC,
        summary="Rank LLMs for a query",
    )
    async def route(req: RouteRequest) -> RouteResponse:
        """Rank the candidate `models` for `query` under an `objective` (performance, balance,
        cost) or a quality `weight`, best first."""
        return await rank_route(service, req)

    return router


__all__ = ["rank_route", "route_router"]
