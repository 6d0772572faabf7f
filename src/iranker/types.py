"""Plain data types shared by every part of iranker.

They are dataclasses (not pydantic models) so that ``import iranker`` stays fast and so that
every type round-trips through JSON with ``to_dict`` / ``from_dict``: rankings are written as
JSONL by the CLI, the benchmark and the server, and read back to resume interrupted runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCENARIOS = ("recommendation", "routing", "passage")


@dataclass
class Candidate:
    """One thing to rank: an item, an LLM, a passage. ``id`` is unique within an example."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.meta:
            d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Candidate":
        return cls(id=str(d["id"]), text=str(d["text"]), meta=dict(d.get("meta") or {}))


@dataclass
class RankingExample:
    """A query and its candidates; ``relevance`` is graded (id -> grade, missing = 0).

    ``query`` is the scenario's main input: the user's history for recommendation (also kept
    as a list in ``meta["history"]``), the question for routing and passages.
    """

    id: str
    scenario: str
    query: str
    candidates: list[Candidate]
    relevance: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def candidate(self, cid: str) -> Candidate:
        for c in self.candidates:
            if c.id == cid:
                return c
        raise KeyError(cid)

    @property
    def candidate_ids(self) -> list[str]:
        return [c.id for c in self.candidates]

    def best_id(self) -> str | None:
        """The most relevant candidate (first in candidate order on ties), or None."""
        if not self.relevance:
            return None
        best = max(self.candidates, key=lambda c: self.relevance.get(c.id, 0.0))
        return best.id if self.relevance.get(best.id, 0.0) > 0 else None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "scenario": self.scenario,
            "query": self.query,
            "candidates": [c.to_dict() for c in self.candidates],
        }
        if self.relevance:
            d["relevance"] = dict(self.relevance)
        if self.meta:
            d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RankingExample":
        return cls(
            id=str(d["id"]),
            scenario=str(d["scenario"]),
            query=str(d.get("query", "")),
            candidates=[Candidate.from_dict(c) for c in d["candidates"]],
            relevance={str(k): float(v) for k, v in (d.get("relevance") or {}).items()},
            meta=dict(d.get("meta") or {}),
        )


def _required(d: dict[str, Any], key: str) -> Any:
    if key not in d:
        raise ValueError(f"step record lacks {key!r} (fields: {sorted(d)})")
    return d[key]


def _required_bool(d: dict[str, Any], key: str) -> bool:
    value = _required(d, key)
    if not isinstance(value, bool):
        raise ValueError(f"step record field {key!r} must be true or false, got {value!r}")
    return value


@dataclass
class Step:
    """One elimination step: the pool shown, the candidate removed and how it was decided.

    ``how_matched`` is one of ``exact``, ``normalized``, ``label``, ``fuzzy`` (the answer named
    a candidate), ``choice`` (log-probability scoring), ``choice:pruned`` (one of several
    candidates a pruning step removed together: each has its own ``Step`` with the same pool and
    ``probs``, most likely worst first; ``iranker.rankers.pruning``) or ``fallback:<policy>``
    (the answer named no candidate and the ranker's fallback policy chose; then ``valid`` is
    False).

    ``probs`` (choice scoring only, else None): for each candidate of ``pool``, in pool order,
    the probability that the model names it worst, i.e. the softmax over the pool of the
    label log-probabilities it was scored by. It is what a trace viewer draws as bars, and it
    sums to 1. Generation has no such distribution, so it stays None and is left out of
    ``to_dict`` (rankings written before the field existed read back unchanged).
    """

    pool: list[str]
    removed: str
    raw: str = ""
    thought: str = ""
    valid: bool = True
    how_matched: str = "exact"
    attempts: int = 1
    probs: list[float] | None = None

    def __post_init__(self) -> None:
        if self.probs is not None and len(self.probs) != len(self.pool):
            raise ValueError(f"step probs has {len(self.probs)} values for a pool of {len(self.pool)}")

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it deep-copies every pool id, and the pools of an N-candidate
        # ranking hold N²/2 ids
        d = {
            "pool": list(self.pool),
            "removed": self.removed,
            "raw": self.raw,
            "thought": self.thought,
            "valid": self.valid,
            "how_matched": self.how_matched,
            "attempts": self.attempts,
        }
        if self.probs is not None:
            d["probs"] = list(self.probs)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Step":
        return cls(
            pool=[str(x) for x in d["pool"]],
            removed=str(d["removed"]),
            raw=str(d.get("raw", "")),
            thought=str(d.get("thought", "")),
            # no silent defaults: a step without these fields would read as a valid exact match
            valid=_required_bool(d, "valid"),
            how_matched=str(_required(d, "how_matched")),
            attempts=int(d.get("attempts", 1)),
            probs=None if d.get("probs") is None else [float(x) for x in d["probs"]],
        )


@dataclass
class Usage:
    """Token accounting for one ranking (summed over every backend call it needed)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int, calls: int = 1) -> None:
        self.calls += calls
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Usage":
        return cls(**{k: int(d.get(k, 0)) for k in ("calls", "prompt_tokens", "completion_tokens")})


@dataclass
class Ranking:
    """The result of ranking one example: candidate ids best first, plus the trace."""

    example_id: str
    order: list[str]
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    method: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def top_k(self, k: int) -> list[str]:
        return self.order[:k]

    @property
    def valid_rate(self) -> float:
        """Share of steps whose answer named a candidate (1.0 when there were no steps)."""
        if not self.steps:
            return 1.0
        return sum(s.valid for s in self.steps) / len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.example_id,
            "ranking": list(self.order),
            "steps": [s.to_dict() for s in self.steps],
            "usage": self.usage.to_dict(),
        }
        if self.method:
            d["method"] = self.method
        if self.meta:
            d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Ranking":
        return cls(
            example_id=str(d["id"]),
            order=[str(x) for x in d["ranking"]],
            steps=[Step.from_dict(s) for s in d.get("steps", [])],
            usage=Usage.from_dict(d.get("usage") or {}),
            method=str(d.get("method", "")),
            meta=dict(d.get("meta") or {}),
        )
