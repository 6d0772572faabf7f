"""LLM-routing loaders (LLMRouter dcrouter JSON, GraphRouter CSV) and the routing utility.

Both sources reduce to :class:`RoutingRecord` — a query with one quality score per LLM and,
where the source measured it, one cost per LLM — plus :class:`LLMInfo` for each LLM's
description and prices. The utility that defines the "best" LLM lives here too
(:func:`routing_utilities`, :func:`routing_order`), so the task builder, baselines and reports
all rank LLMs the same way.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .atomic import _csv_field_limit

__all__ = [
    "LLMInfo",
    "RoutingRecord",
    "load_dcrouter",
    "load_graphrouter_csv",
    "load_llm_info",
    "grades_from_order",
    "price_from",
    "price_of",
    "routing_order",
    "routing_utilities",
]


@dataclass
class LLMInfo:
    """One candidate LLM: its description (shown to the ranker) and prices per million tokens."""

    name: str
    description: str
    input_price: float | None = None
    output_price: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoutingRecord:
    """One query with each LLM's measured quality (``scores``, higher is better).

    ``costs`` holds a per-query cost per LLM where the source measured one (GraphRouter);
    None means only list prices are known (dcrouter), and the utility uses those.
    """

    query_id: str
    query: str
    scores: dict[str, float]
    costs: dict[str, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def query_id_of(text: str, prefix: str = "q") -> str:
    """A stable id from the query text: the same question gets the same id in every file.

    Why: dcrouter has no ids, and 119 of its 500 test questions also occur in train.json;
    equal ids make such overlaps visible and removable.
    """
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


def load_llm_info(path: str | os.PathLike[str]) -> dict[str, LLMInfo]:
    """Read ``{name: {"feature": description, "input_price", "output_price", ...}}``.

    This is LLMRouter's ``default_llm.json`` and GraphRouter's ``LLM_Descriptions*.json``;
    other keys (size, model, service) are kept in ``meta``.
    """
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected an object mapping LLM name -> info")
    out: dict[str, LLMInfo] = {}
    for name, d in raw.items():
        if not isinstance(d, dict):
            raise ValueError(f"{path}: entry {name!r} is not an object")
        desc = d.get("feature", d.get("description"))
        if not isinstance(desc, str) or not desc.strip():
            raise ValueError(f"{path}: LLM {name!r} has no description ('feature')")

        def num(key: str) -> float | None:
            v = d.get(key)
            return None if v is None else float(v)

        out[name] = LLMInfo(
            name=name,
            description=" ".join(desc.split()),
            input_price=num("input_price"),
            output_price=num("output_price"),
            meta={
                k: v
                for k, v in d.items()
                if k not in ("feature", "description", "input_price", "output_price")
            },
        )
    return out


def load_dcrouter(path: str | os.PathLike[str]) -> list[RoutingRecord]:
    """Read LLMRouter's dcrouter ``train.json`` / ``test.json``: ``[{question, scores, ...}]``.

    Extra keys (``cluster_id`` in train.json) go to ``meta``. A question repeated within the
    file is kept once (first occurrence).
    """
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of {{question, scores}} objects")
    out: list[RoutingRecord] = []
    seen: set[str] = set()
    for i, r in enumerate(raw):
        if not isinstance(r, dict) or "question" not in r or "scores" not in r:
            raise ValueError(f"{path}: item {i} lacks 'question' or 'scores'")
        q = str(r["question"])
        qid = query_id_of(q, "dc")
        if qid in seen:
            continue
        seen.add(qid)
        scores = {str(k): float(v) for k, v in r["scores"].items()}
        meta = {k: v for k, v in r.items() if k not in ("question", "scores")}
        out.append(RoutingRecord(query_id=qid, query=q, scores=scores, costs=None, meta=meta))
    return out


def load_graphrouter_csv(
    path: str | os.PathLike[str], *, exclude_tasks: Iterable[str] = ()
) -> list[RoutingRecord]:
    """Read GraphRouter's ``router_data.csv``: one row per (query, LLM) with effect and cost.

    Rows are grouped by (``task_id``, ``query``) in order of first appearance; ``effect`` is
    the quality score and ``cost`` the measured cost (GraphRouter min-max normalises it per
    task). Embedding columns are ignored. The IRanker paper dropped ``multi_news`` (very long
    inputs): pass ``exclude_tasks=("multi_news",)`` to do the same.
    """
    _csv_field_limit()
    excluded = set(exclude_tasks)
    groups: dict[tuple[str, str], RoutingRecord] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"query", "llm", "effect", "cost"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}:1: missing column(s) {sorted(missing)}")
        for lineno, row in enumerate(reader, start=2):
            task = row.get("task_id") or ""
            if task in excluded:
                continue
            key = (task, row["query"])
            rec = groups.get(key)
            if rec is None:
                rec = RoutingRecord(
                    query_id=query_id_of(f"{task}\n{row['query']}", "gr"),
                    query=row["query"],
                    scores={},
                    costs={},
                    meta={"task_id": task} if task else {},
                )
                groups[key] = rec
            try:
                rec.scores[row["llm"]] = float(row["effect"])
                rec.costs[row["llm"]] = float(row["cost"])  # type: ignore[index]
            except ValueError:
                raise ValueError(f"{path}:{lineno}: effect/cost must be numbers") from None
    return list(groups.values())


def price_of(info: LLMInfo) -> float:
    """The single price used for routing: the mean of input and output price per 1M tokens.

    dcrouter gives no token counts, so the cost of answering is unknown; the mean price is the
    cost for a query with as many output as input tokens (and equals both prices whenever they
    are equal, as they are for all 14 LLMs in ``default_llm.json``).
    """
    price = price_from(info.input_price, info.output_price)
    if price is None:
        raise ValueError(f"LLM {info.name!r} has no price")
    return price


def price_from(input_price: float | None, output_price: float | None) -> float | None:
    """The one routing price of an input and an output price: their mean (either alone if the
    other is missing; None if both are). :func:`price_of` and augmented rows use it."""
    prices = [float(p) for p in (input_price, output_price) if p is not None]
    return sum(prices) / len(prices) if prices else None


def minmax(values: Mapping[str, float]) -> dict[str, float]:
    """Min-max scaling to [0, 1] across one query's LLMs (all 0 when they are equal)."""
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    if hi == lo:
        return {k: 0.0 for k in values}
    return {k: (v - lo) / (hi - lo) for k, v in values.items()}


def utility(quality: Mapping[str, float], cost: Mapping[str, float], weight: float) -> dict[str, float]:
    """The routing utility, the one rule every caller uses (labels, baselines, kNN targets):
    ``w * quality - (1 - w) * cost min-max normalised over the LLMs in ``cost``."""
    norm = minmax(cost)
    return {n: weight * float(quality.get(n, 0.0)) - (1.0 - weight) * norm.get(n, 0.0) for n in cost}


def routing_utilities(
    record: RoutingRecord, llms: Mapping[str, LLMInfo] | None, weight: float
) -> tuple[dict[str, float], dict[str, float]]:
    """(utility, raw cost) per LLM: utility = w * score - (1 - w) * min-max normalised cost.

    Cost is the record's measured cost when it has one, else :func:`price_of` the LLM; it is
    min-max normalised across this query's LLMs, so w = 1 is quality only and w -> 0 prefers
    the cheapest LLM. Only LLMs with a score are considered.
    """
    names = list(record.scores)
    if record.costs is not None:
        cost = {n: float(record.costs[n]) for n in names}
    else:
        if llms is None:
            raise ValueError("routing utility needs LLM prices when the record has no costs")
        missing = [n for n in names if n not in llms]
        if missing:
            raise ValueError(f"no description/price for LLM(s) {missing}")
        cost = {n: price_of(llms[n]) for n in names}
    return utility(record.scores, cost, weight), cost


def routing_order(utility: Mapping[str, float], cost: Mapping[str, float]) -> list[str]:
    """LLMs best first: higher utility, then cheaper (the tie rule), then name (determinism).

    Utilities are rounded to 12 decimals first so float noise (0.5*1 - 0.5*0.125 computed two
    ways) cannot break a real tie.
    """
    return sorted(utility, key=lambda n: (-round(utility[n], 12), cost[n], n))


def grades_from_order(order: list[str]) -> dict[str, float]:
    """Rank-based grades of a best-first order: the LLM at position r gets ``n - r`` (best = n),
    so the single best has the unique highest grade and NDCG rewards the whole order."""
    n = len(order)
    return {name: float(n - r) for r, name in enumerate(order)}
