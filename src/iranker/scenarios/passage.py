"""Passage re-ranking: a query -> which passage answers it.

"Worst" = the passage least relevant to the query.
"""

from __future__ import annotations

from .base import FORMAT_RULES, PromptTemplate, Scenario

TEMPLATE = PromptTemplate(
    system=(
        "You are a search engine's re-ranker. You read a query and several passages and judge "
        "how well each passage answers the query. " + FORMAT_RULES
    ),
    header="Query: {query}\n\nEach passage below has a label in square brackets.",
    candidate="{label} {text}",
    segment_end=" {label}",
    candidates_title="Passages:",
    eliminate_question=(
        "Which passage is the LEAST relevant to the query? Answer with its label, for example "
        "<answer>[k]</answer>."
    ),
    direct_question=(
        "Rank all passages from most to least relevant to the query. Answer with every label "
        "once, best first, for example <answer>[i] > [j] > [k]</answer>."
    ),
)


class PassageScenario(Scenario):
    name = "passage"
    default_template = TEMPLATE
    worst = "the passage least relevant to the query"
