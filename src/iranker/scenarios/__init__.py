"""The three scenarios and a registry to look them up by name."""

from __future__ import annotations

from .base import PromptTemplate, Scenario, TemplateError, label_for, response_prefill
from .passage import PassageScenario
from .recommendation import RecommendationScenario
from .routing import OBJECTIVE_WEIGHTS, RoutingScenario, objective_weight

SCENARIO_CLASSES: dict[str, type[Scenario]] = {
    "recommendation": RecommendationScenario,
    "routing": RoutingScenario,
    "passage": PassageScenario,
}


def get_scenario(name: str, template: PromptTemplate | None = None) -> Scenario:
    """The scenario called ``name``; raises ``ValueError`` naming the known ones."""
    try:
        cls = SCENARIO_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; use one of {', '.join(SCENARIO_CLASSES)}") from None
    return cls(template)


__all__ = [
    "OBJECTIVE_WEIGHTS",
    "PassageScenario",
    "PromptTemplate",
    "RecommendationScenario",
    "RoutingScenario",
    "SCENARIO_CLASSES",
    "Scenario",
    "TemplateError",
    "get_scenario",
    "label_for",
    "objective_weight",
    "response_prefill",
]
