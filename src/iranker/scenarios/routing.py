"""LLM routing: a query -> which LLM should answer it, given quality and price.

The objective is part of the prompt: ``performance`` (quality only), ``balance`` (quality and
price weighted equally) or ``cost`` (mostly price). It comes from ``meta["objective"]`` or a
numeric ``meta["weight"]`` w (score = w * quality - (1 - w) * normalised price).
"""

from __future__ import annotations

from typing import Any

from ..types import Candidate, RankingExample
from .base import FORMAT_RULES, PromptTemplate, Scenario

#: objective name -> weight on quality (the paper's Router-Performance/-Balance/-Cost)
OBJECTIVE_WEIGHTS = {"performance": 1.0, "balance": 0.5, "cost": 0.2}

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
    """Weight on quality from ``meta['weight']`` or ``meta['objective']`` (default 1.0)."""
    if "weight" in meta and meta["weight"] is not None:
        w = float(meta["weight"])
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"routing weight must be in [0, 1], got {w}")
        return w
    objective = meta.get("objective", "performance")
    if objective not in OBJECTIVE_WEIGHTS:
        raise ValueError(
            f"unknown routing objective {objective!r}; use one of {sorted(OBJECTIVE_WEIGHTS)}"
        )
    return OBJECTIVE_WEIGHTS[objective]


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
