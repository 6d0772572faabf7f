"""LLM routing: a query -> which LLM should answer it, given quality and price.

The objective is part of the prompt: ``performance`` (quality only), ``balance`` (quality and
price weighted equally) or ``cost`` (mostly price). It comes from ``meta["objective"]`` or a
numeric ``meta["weight"]`` w (score = w * quality - (1 - w) * normalised price).
"""

from __future__ import annotations

from typing import Any

from ..data.routing import price_from
from ..example_fields import OBJECTIVE_WEIGHTS, FieldError, routing_objective, routing_weight
from ..types import Candidate, RankingExample
from .base import FORMAT_RULES, PromptTemplate, Scenario

OBJECTIVE_TEXT = {
    "performance": "the best answer quality; price does not matter",
    "balance": "a balance of answer quality and price, weighted equally",
    "cost": "a low price; quality matters much less (weight 0.2 on quality, 0.8 on price)",
}

TEMPLATE = PromptTemplate(
    system=(
        "You are an LLM router. You read a user's query and descriptions of several LLMs and "
        "judge which LLM should answer it. " + FORMAT_RULES
    ),
    header=(
        "Query: {query}\n\nObjective: {objective_text}.\n\n"
        "Each candidate LLM below has a label in square brackets, a description and a price."
    ),
    candidate="{label} {name}: {text}{price}{price_rank}",
    segment_end=" {label}",
    eliminate_question=(
        "Which candidate LLM is the WORST choice for this query under the objective? Answer "
        "with its label and name, for example <answer>[k] model-name</answer>."
    ),
    direct_question=(
        "Rank all candidate LLMs from best to worst choice for this query under the objective. "
        "Answer with every label once, best first, for example <answer>[i] > [j] > [k]</answer>."
    ),
)


def objective_weight(meta: dict[str, Any]) -> float:
    """Weight on quality from ``meta['weight']`` or ``meta['objective']`` (default 1.0).

    The values follow :mod:`iranker.example_fields` (a weight is a number in [0, 1], never a
    string or a bool); the door an example came in by has already refused both fields given
    together, so here the weight wins.
    """
    if "weight" in meta and meta["weight"] is not None:
        try:
            return routing_weight(meta["weight"])
        except FieldError as exc:
            raise ValueError(f"routing weight {exc}") from None
    try:
        return OBJECTIVE_WEIGHTS[routing_objective(meta.get("objective", "performance"))]
    except FieldError as exc:
        raise ValueError(f"routing objective {exc}") from None


def _objective_text(meta: dict[str, Any]) -> str:
    if "weight" in meta and meta["weight"] is not None:
        w = objective_weight(meta)
        return f"weight {w:g} on answer quality and {1 - w:g} on price"
    return OBJECTIVE_TEXT[meta.get("objective", "performance")]


def _price(cand: Candidate) -> str:
    p_in, p_out = cand.meta.get("input_price"), cand.meta.get("output_price")
    if p_in is None and p_out is None:
        return ""
    if p_out is None or p_in == p_out:
        return f" Price: ${float(p_in if p_in is not None else p_out):g} per million tokens."
    if p_in is None:
        return f" Price: ${float(p_out):g} per million output tokens."
    return f" Price: ${float(p_in):g} input / ${float(p_out):g} output per million tokens."


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def price_rank_text(example: RankingExample, cand: Candidate) -> str:
    """Where ``cand``'s price stands among all of the example's priced candidates, in words.

    Why: comparing decimal prices is a skill a small model did not learn from hundreds of
    rows, while it learned to point at a word it could see (a name) quickly. "the cheapest of
    the 9 LLMs" is the same information as the prices, written as words it can point to. The
    rank is over the example's candidates, not the current pool, so a candidate's segment never
    changes while others are eliminated (the prompt layout contract of KV eviction).
    """

    def price(c: Candidate) -> float | None:
        try:
            return price_from(c.meta.get("input_price"), c.meta.get("output_price"))
        except (TypeError, ValueError, OverflowError):
            return None

    mine = price(cand)
    prices = [p for p in (price(c) for c in example.candidates) if p is not None]
    if mine is None or len(prices) < 2:
        return ""
    n = len(prices)
    cheaper = sum(p < mine for p in prices)
    pricier = sum(p > mine for p in prices)
    tied = sum(p == mine for p in prices) > 1
    if pricier == 0 and cheaper == 0:
        return f" All {n} LLMs here cost the same."
    if cheaper == 0:
        where = "the cheapest"
    elif pricier == 0:
        where = "the most expensive"
    else:
        where = f"the {_ordinal(cheaper + 1)} cheapest"
    return f" It is {'tied for ' if tied else ''}{where} of the {n} LLMs."


class RoutingScenario(Scenario):
    name = "routing"
    default_template = TEMPLATE
    worst = "the LLM that is the worst choice for the query under the objective"

    def header_fields(self, example: RankingExample) -> dict[str, Any]:
        return {"query": example.query, "objective_text": _objective_text(example.meta)}

    def candidate_fields(self, example: RankingExample, cand: Candidate) -> dict[str, Any]:
        return {
            **cand.meta,
            "name": cand.meta.get("name", cand.id),
            "text": cand.text,
            "price": _price(cand),
            "price_rank": price_rank_text(example, cand),
        }
