"""How a scenario turns an example and a pool of candidates into chat messages.

A scenario's prompts are *data* (a ``PromptTemplate``), kept in one place per scenario, so a
trained checkpoint can ship the exact templates it was trained with (see
``PromptTemplate.to_dict``) and a user can override them without touching code.

Layout contract (it lets backends reuse the prompt across elimination steps):

    system message (fixed)
    user message = header (instructions + query/history)
                   + candidate block (one labelled segment per candidate, in original order)
                   + question (short and the same at every step)

Labels are assigned once per example from the candidate's original position (``[1]``,
``[2]``, ...) and never renumbered, so removing a candidate removes exactly its segment and
changes nothing else before the question.
"""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

from ..llm.base import is_prefilled
from ..types import Candidate, RankingExample

Messages = list[dict[str, str]]

FORMAT_RULES = (
    "Think step by step inside <think>...</think>, then give your final answer inside <answer>...</answer>."
)


@dataclass
class PromptTemplate:
    """All the text a scenario shows the model. Placeholders use ``str.format`` names.

    ``header`` may use the scenario's own fields (passage: ``{query}``; recommendation: ``{query}``,
    ``{history}``, ``{domain}``; routing: ``{query}``, ``{objective_text}``); any other name is a
    ``TemplateError`` when the scenario is built.
    ``candidate`` formats one candidate segment from ``{label}`` and ``{text}`` (plus any
    candidate ``meta`` key). ``eliminate_question`` and ``direct_question`` end the user
    message for the two ranking methods.
    """

    system: str
    header: str
    candidate: str
    eliminate_question: str
    direct_question: str
    candidates_title: str = "Candidates:"
    #: Text the assistant's reply is started with (e.g. ``"<think>"``), sent as a final, open
    #: assistant message that the model continues. A small model that never opens the tags on
    #: its own then only has to close them: TinyZero-style R1 recipes (which IRanker's code
    #: builds on) end the prompt with ``<think>`` for the same reason. The answer that is
    #: parsed and rewarded is always ``response_prefix + generated text``. Empty = no prefill.
    response_prefix: str = ""
    #: How a candidate's signals (``meta["signals"]``, ``iranker.signals``) are appended to its
    #: segment: ``{signals}`` becomes ``bm25 2/20, co-occurrence 1/20`` (ranks among the
    #: example's candidates, so a segment never changes during elimination). One format for
    #: every scenario; recorded with the templates of a trained folder. Empty = never shown.
    signals: str = " (signals: {signals})"
    #: Text that closes every candidate segment, after its signals; ``{label}`` is the only
    #: field. The scenarios repeat the label here (``... It is the cheapest of the 6 LLMs.
    #: [4]``). Why: the model answers by pointing at a label, and with causal attention the
    #: opening ``[4]`` is read *before* the candidate's text, so it cannot carry what the text
    #: says; a closing copy has read the whole segment, and "which label sits after the
    #: cheapest price" is one hop for attention. Measured on aliased, re-priced 2-3-LLM routing
    #: pools (cost objective, all-layer LoRA, lr 1e-3): held-out pi(best) fell from 0.40 to
    #: 0.25 in 175 updates with the closing label, against 0.29 without it (the control learned
    #: too, a few dozen updates later: the closing label speeds learning, the all-layer LoRA
    #: and enough updates enable it). Empty = no closing label (folders trained before this
    #: field existed record none, and keep their prompts).
    segment_end: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PromptTemplate":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown prompt template fields: {sorted(unknown)}")
        return cls(**d)


def response_prefill(messages: Sequence[Any] | None) -> str:
    """The prefilled start of the reply: the content of a final ``assistant`` message, else "".

    A prompt that ends with an assistant message asks the model to *continue* that message
    (``continue_final_message`` in transformers, TRL and vLLM), so the model's full answer is
    this text followed by what it generates.
    """

    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or not messages:
        return ""
    if isinstance(messages[-1], dict) and is_prefilled(messages):
        return str(messages[-1].get("content") or "")
    return ""


#: ``RankingExample.meta`` key of retrieved worked examples (``iranker.thoughts``): text that
#: ``render_header`` puts first in the header, so the layout (header | candidates | question)
#: and with it KV eviction stay as they are.
WORKED_EXAMPLES_META = "worked_examples"


def label_for(index: int) -> str:
    """The label of the candidate at ``index`` (0-based) in the example's original order."""
    return f"[{index + 1}]"


class TemplateError(ValueError):
    """A prompt template names a placeholder that has no value.

    A misspelt ``{histroy}`` used to render as an empty string, so the model silently saw a
    prompt without the history; naming the placeholder and the fields that exist is the fix.
    """


def placeholders(fmt: str) -> list[str]:
    """The top-level ``str.format`` field names in ``fmt`` (``{a.b}`` and ``{a[0]}`` give ``a``)."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise TemplateError(f"prompt template {fmt[:60]!r} is not a valid format string: {exc}") from None
    names = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise TemplateError(f"prompt template {fmt[:60]!r} uses a positional placeholder; name it")
        names.append(re.split(r"[.\[]", name, maxsplit=1)[0])
    return names


class _Fields(dict):
    """``format_map`` values that raise ``TemplateError`` naming a missing placeholder."""

    def __init__(self, values: dict[str, Any], where: str) -> None:
        super().__init__(values)
        self.where = where

    def __missing__(self, key: str) -> str:
        raise TemplateError(
            f"prompt template placeholder {{{key}}} has no value in the {self.where} "
            f"(available: {', '.join('{' + k + '}' for k in sorted(self))}); fix the template, "
            "or give every candidate that meta field"
        )


class Scenario:
    """Base class: renders elimination and direct-ranking prompts for one scenario.

    Subclasses set ``name``, ``default_template`` and override ``header_fields`` (what the
    header shows) and, if needed, ``candidate_fields``.
    """

    name: str = ""
    default_template: PromptTemplate
    #: one-line description of what "worst" means, used in docs and the CLI help
    worst: str = ""

    #: how many examples' rendered segments are kept (a ranker works on one batch at a time)
    SEGMENT_CACHE_SIZE = 256

    def __init__(self, template: PromptTemplate | None = None) -> None:
        self.template = template or self.default_template
        self._check_header()
        self._segments: dict[int, tuple[RankingExample, dict[str, str]]] = {}

    def _check_header(self) -> None:
        """Refuse a header placeholder this scenario never fills, when the template is loaded.

        Header fields do not depend on the data (candidate fields can: any ``meta`` key), so a
        misspelt header placeholder is caught here, before anything is ranked or served.
        """
        probe = RankingExample(id="probe", scenario=self.name, query="", candidates=[])
        known = set(self.header_fields(probe))
        unknown = [n for n in placeholders(self.template.header) if n not in known]
        closing = [n for n in placeholders(self.template.segment_end) if n != "label"]
        if closing:
            raise TemplateError(
                f"the {self.name or 'scenario'} segment_end uses "
                f"{', '.join('{' + n + '}' for n in closing)}; it may only use {{label}}"
            )
        if unknown:
            raise TemplateError(
                f"the {self.name or 'scenario'} prompt header uses {', '.join('{' + n + '}' for n in unknown)}, "
                f"which it never fills (available: {', '.join('{' + k + '}' for k in sorted(known))})"
            )
        placeholders(self.template.candidate)  # a malformed candidate format fails here too
        if self.template.signals and "{signals}" not in self.template.signals:
            raise TemplateError(
                f"the {self.name or 'scenario'} template's signals format "
                f"{self.template.signals[:60]!r} has no {{signals}} placeholder"
            )

    # -- pieces -----------------------------------------------------------------------------
    def header_fields(self, example: RankingExample) -> dict[str, Any]:
        return {"query": example.query}

    def candidate_fields(self, example: RankingExample, cand: Candidate) -> dict[str, Any]:
        return {"text": cand.text, **cand.meta}

    def labels(self, example: RankingExample) -> dict[str, str]:
        """Candidate id -> label, fixed for the whole ranking of ``example``."""
        return {c.id: label_for(i) for i, c in enumerate(example.candidates)}

    def render_header(self, example: RankingExample) -> str:
        """The template's header; retrieved worked examples (``WORKED_EXAMPLES_META``) first."""
        values = _Fields(self.header_fields(example), f"{self.name or 'scenario'} header")
        header = self.template.header.format_map(values)
        worked = example.meta.get(WORKED_EXAMPLES_META)
        return f"{worked}\n\n{header}" if worked else header

    def render_candidate(self, example: RankingExample, cand: Candidate, label: str) -> str:
        values = _Fields(self.candidate_fields(example, cand), f"candidate {cand.id!r}")
        values["label"] = label
        text = self.template.candidate.format_map(values).rstrip()
        if cand.meta.get("signals"):
            from ..signals.render import render_signals

            text += render_signals(self.template.signals, example, cand)
        if self.template.segment_end:
            text += self.template.segment_end.format(label=label)
        return text + "\n"

    def candidate_segments(self, example: RankingExample, pool: Sequence[str]) -> list[tuple[str, str]]:
        """(candidate id, segment text) for the pool, in the example's original order.

        Each candidate's segment is rendered once per example and reused at every step (a
        segment depends only on the candidate and its fixed label): rendering all of them
        again at each of the N - 1 steps was the quadratic part of elimination that is not
        inherent to it (the prompt itself still shows the pool).
        """
        segments = self._rendered_segments(example)
        keep = set(pool)
        return [(c.id, segments[c.id]) for c in example.candidates if c.id in keep]

    def _rendered_segments(self, example: RankingExample) -> dict[str, str]:
        key = id(example)
        hit = self._segments.get(key)
        if hit is not None and hit[0] is example and len(hit[1]) == len(example.candidates):
            return hit[1]
        labels = self.labels(example)
        segments = {c.id: self.render_candidate(example, c, labels[c.id]) for c in example.candidates}
        if len(self._segments) >= self.SEGMENT_CACHE_SIZE:
            self._segments.clear()
        self._segments[key] = (example, segments)  # the example is held, so its id is not reused
        return segments

    # -- prompts ----------------------------------------------------------------------------
    def _messages(self, example: RankingExample, pool: Sequence[str], question: str) -> Messages:
        block = "".join(seg for _, seg in self.candidate_segments(example, pool))
        user = f"{self.render_header(example)}\n\n{self.template.candidates_title}\n{block}\n{question}"
        messages = [
            {"role": "system", "content": self.template.system},
            {"role": "user", "content": user},
        ]
        if self.template.response_prefix:
            messages.append({"role": "assistant", "content": self.template.response_prefix})
        return messages

    def eliminate_prompt(self, example: RankingExample, pool: Sequence[str]) -> Messages:
        """Messages asking for the single worst candidate of ``pool``."""
        return self._messages(example, pool, self.template.eliminate_question)

    def direct_prompt(self, example: RankingExample, pool: Sequence[str] | None = None) -> Messages:
        """Messages asking for the full order of ``pool`` (all candidates by default)."""
        pool = example.candidate_ids if pool is None else pool
        return self._messages(example, pool, self.template.direct_question)
