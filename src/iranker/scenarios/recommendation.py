"""Recommendation: a user's history (oldest first) -> which candidate item comes next.

"Worst" = the item the user is least likely to interact with next.
"""

from __future__ import annotations

from typing import Any

from ..types import RankingExample
from .base import FORMAT_RULES, PromptTemplate, Scenario

TEMPLATE = PromptTemplate(
    system=(
        "You are a recommender system. You read a user's interaction history and judge which "
        "candidate items the user is likely to choose next. " + FORMAT_RULES
    ),
    header=(
        "A user interacted with these {domain}s, oldest first:\n{history}\n\n"
        "Each candidate below has a label in square brackets."
    ),
    candidate="{label} {text}",
    segment_end=" {label}",
    eliminate_question=(
        "Which candidate is the user LEAST likely to choose next? Answer with its label and "
        "title, for example <answer>[k] Title</answer>."
    ),
    direct_question=(
        "Rank all candidates from most to least likely to be chosen next. Answer with every "
        "label once, best first, for example <answer>[i] > [j] > [k]</answer>."
    ),
)


class RecommendationScenario(Scenario):
    name = "recommendation"
    default_template = TEMPLATE
    worst = "the item the user is least likely to choose next"

    def header_fields(self, example: RankingExample) -> dict[str, Any]:
        history = example.meta.get("history")
        if history:
            lines = "\n".join(f"- {h}" for h in history)
        else:
            lines = example.query
        return {
            "query": example.query,
            "history": lines,
            "domain": example.meta.get("domain", "item"),
        }
