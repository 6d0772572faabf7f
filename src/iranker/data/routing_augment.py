"""Routing rows that cannot be ranked by remembering names: aliases and perturbed prices.

Why this exists: in dcrouter's training data one LLM alone costs $0.10, so "the cheapest" and
"gemma-2-9b-it" were the same thing on every row, and the first trained model learned the
*name* (on unseen LLMs it ranked that name first whatever its price). An augmented routing
example shows the same query, the same measured quality per LLM, and

- **aliases**: each LLM gets a per-example random name (``model-k3f9``), and every mention of
  any candidate's real name inside a description is replaced by that candidate's alias;
- **no price sentences in descriptions**: dcrouter's descriptions repeat the price in prose
  (and for qwen2.5-7b-instruct the prose says $0.30 while the field says $0.20), so a row with
  new prices would contradict itself; every sentence that states a price or cost is dropped and
  the price is shown once, from the candidate fields;
- **perturbed prices**: new input/output prices drawn per LLM from a ladder of real-world list
  prices, after which the labels are recomputed by the one routing utility
  (:func:`iranker.data.routing.utility` and :func:`~iranker.data.routing.routing_order`), so a
  cheap-looking name with a high price is ranked by its price.

Quality (``meta["scores"]``) is the measured outcome of the query and stays with the LLM.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from ..types import Candidate, RankingExample
from .routing import grades_from_order, price_from, routing_order, utility

__all__ = [
    "PRICE_LADDER",
    "RoutingAugment",
    "augment_routing_example",
    "make_aliases",
    "relabel_routing",
    "strip_price_sentences",
]

#: list prices (USD per million tokens) that real APIs charge, cheapest open models to frontier
PRICE_LADDER: tuple[float, ...] = (
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.6,
    0.8,
    0.9,
    1.0,
    1.2,
    1.5,
    1.8,
    2.0,
    2.5,
    3.0,
    5.0,
    8.0,
    10.0,
    15.0,
)

#: a sentence that talks about money: a $ amount or a price/cost word
_PRICE_WORDS = re.compile(
    r"\$|\b(price[sd]?|pricing|cost(s|ly)?|rate|affordab\w*|cheap\w*|expensive)\b", re.IGNORECASE
)
#: a sentence ends at . ! or ? followed by white space (so "$0.30" and "Llama-3.1" stay whole)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def strip_price_sentences(text: str) -> str:
    """``text`` without the sentences that state a price or cost (whitespace normalised).

    Decimal points inside numbers (``$0.30``, ``v0.3``) do not end a sentence: a sentence ends
    at ``.``, ``!`` or ``?`` followed by white space or the end of the text.
    """
    kept = [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]
    return " ".join(s for s in kept if not _PRICE_WORDS.search(s))


def make_aliases(names: Sequence[str], rng: random.Random) -> dict[str, str]:
    """A distinct random alias per name (``model-`` + 4 lowercase letters/digits)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    alphabet = string.ascii_lowercase + string.digits
    for name in names:
        while True:
            alias = "model-" + "".join(rng.choice(alphabet) for _ in range(4))
            if alias not in used:
                break
        used.add(alias)
        out[name] = alias
    return out


def _replace_names(text: str, aliases: Mapping[str, str]) -> str:
    # longest names first, so "llama3-chatqa-1.5-70b" is not eaten by a shorter name inside it
    for name in sorted(aliases, key=len, reverse=True):
        text = re.sub(re.escape(name), aliases[name], text, flags=re.IGNORECASE)
    return text


def relabel_routing(example: RankingExample, cost: Mapping[str, float], weight: float) -> RankingExample:
    """``example`` with relevance, best and utility recomputed from ``meta['scores']`` and ``cost``.

    The rule is the one routing utility of :mod:`iranker.data.routing` (``utility``, then
    ``routing_order``'s tie rule, then ``grades_from_order``): the same rule the task builder,
    cheapest-first and router-kNN use.
    """
    scores = example.meta.get("scores")
    if not isinstance(scores, Mapping):
        raise ValueError(f"{example.id}: relabelling needs meta['scores'] (each LLM's measured quality)")
    util = utility(scores, cost, weight)
    order = routing_order(util, cost)
    meta = {
        **example.meta,
        "best": order[0],
        "utility": {k: round(v, 6) for k, v in util.items()},
        "cost": dict(cost),
        "informative": len(set(scores.values())) > 1,
    }
    return replace(example, relevance=grades_from_order(order), meta=meta)


@dataclass(frozen=True)
class RoutingAugment:
    """What to change in a routing example (see the module docstring)."""

    aliases: bool = True
    prices: bool = True
    #: probability that output price differs from input price (x2..x4, as many APIs charge)
    split_price: float = 0.5

    def describe(self) -> str:
        parts = [p for p, on in (("aliases", self.aliases), ("perturbed prices", self.prices)) if on]
        return " + ".join(parts) + " (price sentences dropped from descriptions)" if parts else "none"


def _draw_prices(rng: random.Random, split_price: float) -> tuple[float, float]:
    p_in = rng.choice(PRICE_LADDER)
    p_out = p_in * rng.choice((2, 3, 4)) if rng.random() < split_price else p_in
    return p_in, round(p_out, 6)


def augment_routing_example(
    example: RankingExample, rng: random.Random, weight: float, augment: RoutingAugment = RoutingAugment()
) -> RankingExample:
    """One augmented copy of a routing ``example`` (ids, names, prices and labels consistent).

    Candidate ids become the aliases too, so no field of a training row carries the real name.
    """
    if example.scenario != "routing":
        raise ValueError(
            f"{example.id}: augment_routing_example needs a routing example, not {example.scenario}"
        )
    names = example.candidate_ids
    aliases = make_aliases(names, rng) if augment.aliases else {n: n for n in names}
    mentions = (
        {str(c.meta.get("name") or c.id): aliases[c.id] for c in example.candidates}
        if augment.aliases
        else {}
    )
    cands: list[Candidate] = []
    cost: dict[str, float] = {}
    for c in example.candidates:
        meta = dict(c.meta)
        if augment.prices:
            meta["input_price"], meta["output_price"] = _draw_prices(rng, augment.split_price)
        meta["name"] = aliases[c.id]
        text = (
            _replace_names(strip_price_sentences(c.text), mentions)
            if mentions
            else strip_price_sentences(c.text)
        )
        cands.append(Candidate(id=aliases[c.id], text=text or meta["name"], meta=meta))
        price = price_from(meta.get("input_price"), meta.get("output_price"))
        if price is None:
            raise ValueError(f"{example.id}: candidate {c.id!r} has no price to relabel with")
        cost[aliases[c.id]] = price
    scores = example.meta.get("scores") or {}
    meta = {
        **example.meta,
        "scores": {aliases[k]: v for k, v in scores.items() if k in aliases},
        "augment": augment.describe(),
        "aliases_of": {v: k for k, v in aliases.items()},
    }
    meta.pop("utility", None)
    renamed = replace(example, candidates=cands, meta=meta, relevance={})
    return relabel_routing(renamed, cost, weight)
