"""LLM routing: a query -> which LLM should answer it, given quality and price.

The objective is part of the prompt: ``performance`` (quality only), ``balance`` (quality and
price weighted equally) or ``cost`` (mostly price). It comes from ``meta["objective"]`` or a
numeric ``meta["weight"]`` w (score = w * quality - (1 - w) * normalised price).
"""

from __future__ import annotations

from typing import Any

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
    candidate="{label} {name}: {text}{price}",
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
        }
