"""Iterative elimination: at each step the model names the worst remaining candidate.

The ranking is the reverse order of removal. Examples are ranked together: every round sends
*one* batched backend call holding the current prompt of every unfinished example, so a
batched backend (left-padded transformers, vLLM, a concurrent server) works at full width.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..llm.base import Completion, LLMBackend, Messages, can_evict
from ..llm.choice_tree import label_choices, pick_worst, worst_probabilities
from ..llm.kv_batch import batchable, batched_choice_logprobs, flush_refreshes
from ..parsing import CandidateView, closest_candidate, extract, match_candidate
from ..scenarios import Scenario, response_prefill
from ..types import Ranking, RankingExample, Step, Usage
from .base import LLMRanker, progress_bar
from .pruning import PruneSchedule

FALLBACKS = ("closest", "last", "random", "error")
DECODES = ("generate", "choice")
REUSES = ("none", "kv")


def _processed(session: Any) -> int:
    """Prompt tokens an eviction session has pushed through the model so far (0 if unknown)."""
    stats = getattr(session, "stats", None)
    return int(getattr(stats, "prompt_tokens", 0))


def _choice_usage(backend: Any, n: int) -> list[tuple[int, int]]:
    """Tokens the last ``choice_logprobs`` call cost per prompt, when the backend says
    (``last_choice_usage``: a server backend's requests); zeros otherwise (local scoring)."""
    usage = getattr(backend, "last_choice_usage", None)
    if isinstance(usage, list) and len(usage) == n:
        return [(int(p), int(c)) for p, c in usage]
    return [(0, 0)] * n


def recorded_mode(backend: Any, decode: str | None, reuse: str | None) -> tuple[str, str]:
    """(decode, reuse): the explicit values, else what the backend's model records, else
    ``("generate", "none")``.

    A trained folder records how it ranks (``iranker.json`` ``ranking``, exposed as
    ``backend.ranking``). The recorded ``reuse`` applies only while ``decode`` is the recorded
    one too: asking a choice-trained model to ``generate`` starts from the plain defaults.
    """
    recorded = dict(getattr(backend, "ranking", None) or {})
    if decode is None:
        decode = str(recorded.get("decode") or "generate")
    if reuse is None:
        reuse = str(recorded.get("reuse") or "none") if decode == recorded.get("decode") else "none"
        if reuse == "kv" and not can_evict(backend):
            reuse = "none"  # e.g. the same adapter served by vLLM (prefix caching instead), or Gemma 3
    return decode, reuse


class UnparsableAnswerError(RuntimeError):
    """Raised under ``fallback="error"`` when an answer names no candidate."""


def reask_message(pool: Sequence[CandidateView]) -> dict[str, str]:
    """The follow-up turn sent when an answer named no candidate of the pool."""
    labels = ", ".join(c.label for c in pool)
    return {
        "role": "user",
        "content": (
            "Your answer did not name exactly one of the remaining candidates. Reply with "
            f"<answer>LABEL</answer>, where LABEL is one of: {labels}."
        ),
    }


def reply_text(prompt: Messages, generated: str) -> str:
    """The model's whole reply: the prompt's prefilled start (``response_prefix``) + generated text."""
    return response_prefill(prompt) + generated


def with_reask(prompt: Messages, reply: str, reask: dict[str, str]) -> Messages:
    """``prompt`` continued by the model's ``reply`` and the re-ask turn.

    A prefilled reply start (an open final assistant message) is replaced by the full reply
    and opened again after the re-ask, so the second answer starts the same way.
    """
    prefix = response_prefill(prompt)
    head = list(prompt[:-1]) if prefix else list(prompt)
    tail = [{"role": "assistant", "content": prefix}] if prefix else []
    return head + [{"role": "assistant", "content": reply}, reask] + tail


def candidate_views(scenario: Scenario, example: RankingExample) -> dict[str, CandidateView]:
    """Views of every candidate with the labels the scenario shows (and routing names)."""
    labels = scenario.labels(example)
    views = {}
    for c in example.candidates:
        names = [str(c.meta["name"])] if c.meta.get("name") else []
        views[c.id] = CandidateView(id=c.id, label=labels[c.id], text=c.text, names=names)
    return views


@dataclass
class _State:
    example: RankingExample
    scenario: Scenario
    views: dict[str, CandidateView]
    pool: list[str]
    removed: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    session: Any = None  # the example's KV-eviction session under reuse="kv"
    abandoned: bool = False  # its caller is gone: stop spending steps on it

    @property
    def done(self) -> bool:
        return len(self.pool) <= 1 or self.abandoned

    def pool_views(self) -> list[CandidateView]:
        return [self.views[c] for c in self.pool]

    def removed_views(self) -> list[CandidateView]:
        """The candidates eliminated so far: an answer naming one of them is not_in_pool."""
        return [self.views[c] for c in self.removed]

    def remove(self, step: Step) -> None:
        self.pool.remove(step.removed)
        self.removed.append(step.removed)
        self.steps.append(step)

    def ranking(self, method: str) -> Ranking:
        order = list(self.pool) + list(reversed(self.removed))
        return Ranking(
            example_id=self.example.id,
            order=order,
            steps=self.steps,
            usage=self.usage,
            method=method,
            meta={"abandoned": True} if self.abandoned else {},
        )


class IterativeRanker(LLMRanker):
    """Rank by repeated elimination of the worst candidate.

    Args:
        backend: any ``LLMBackend``.
        decode: ``"generate"`` (the model reasons and answers) or ``"choice"`` (read the
            log-probabilities of the candidate labels in one forward pass; needs a backend with
            ``choice_logprobs``; always yields a pool member). Default (``None``): what the
            model records (``backend.ranking``, from a trained folder's ``iranker.json``; a
            model trained with ``algorithm: choice`` records choice + kv), else generate.
        fallback: what to do when an answer names no candidate after ``reask`` re-asks:
            ``closest`` (the candidate the model's text is closest to), ``last`` (the last
            shown), ``random`` (seeded), or ``error`` (raise). Always recorded in the step as
            ``how_matched="fallback:<policy>"`` with ``valid=False``.
        reask: how many times to re-ask (one follow-up turn) before the fallback.
        batch_size: examples ranked together (one backend call per round for all of them).
        max_new_tokens, temperature, seed: generation settings.
        templates: per-scenario ``PromptTemplate`` overrides; default (``None``) the
            backend's own (``backend.templates``: a trained checkpoint's), ``{}`` = the defaults.
        reuse: ``None`` (default: what the model records when ``decode`` is too, else none),
            ``"none"`` (exact: the whole prompt is re-sent at every step) or
            ``"kv"`` (needs an ``EvictionCapable`` backend such as transformers: each example's
            prompt is prefilled once, the eliminated candidate's tokens are evicted from the
            KV cache and each step processes only the question and the answer; see
            ``iranker.llm.kv_eviction``). Examples then run one by one (batch 1 per example),
            unless ``kv_batch``.
            ``usage.prompt_tokens`` counts the tokens actually processed.
        prune: ``None`` (default: one candidate per step, the paper's elimination) or a
            ``PruneSchedule`` / its text (``"quarter"``, ``"fraction=0.25,min=5"``,
            ``"threshold=0.1"``): while the pool is large, one step removes several of the most
            likely worst candidates (``decode="choice"`` only: it needs the step's
            probabilities). Each removed candidate gets its own ``Step`` with the pool shown.
        kv_batch: under ``reuse="kv"`` with choice scoring, the examples of a batch take each
            step together in one forward pass (``iranker.llm.kv_batch``). Off by default: on
            this CPU a step is bound by its arithmetic, not by per-pass overhead, so batching
            gained 1.19x at batch 4, and in bf16 its differently rounded kernels flipped near-tie steps
            (``benchmarks/kv_batch.py``). The same rankings as batch 1 in fp32 (a test).
    """

    name = "iterative"

    def __init__(
        self,
        backend: LLMBackend,
        *,
        decode: str | None = None,
        fallback: str = "closest",
        reask: int = 1,
        batch_size: int = 8,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        templates: dict | None = None,
        show_progress: bool = True,
        reuse: str | None = None,
        prune: "PruneSchedule | str | None" = None,
        kv_batch: bool = False,
    ) -> None:
        decode, reuse = recorded_mode(backend, decode, reuse)
        schedule = PruneSchedule.parse(prune)
        if schedule is not None and decode != "choice":
            raise ValueError("prune needs decode='choice' (it removes by the step's probabilities)")
        if decode not in DECODES:
            raise ValueError(f"decode must be one of {DECODES}, got {decode!r}")
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        if decode == "choice" and not hasattr(backend, "choice_logprobs"):
            raise ValueError(f"backend {getattr(backend, 'name', backend)!r} cannot score choices")
        if reuse not in REUSES:
            raise ValueError(f"reuse must be one of {REUSES}, got {reuse!r}")
        if reuse == "kv" and not can_evict(backend):
            raise ValueError(
                f"backend {getattr(backend, 'name', backend)!r} cannot evict candidates from a KV cache; "
                "reuse='kv' needs the transformers backend and a model without sliding-window layers "
                "(vLLM reuses prompts through prefix caching)"
            )
        super().__init__(
            backend,
            reask=reask,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            templates=templates,
            show_progress=show_progress,
        )
        self.reuse = reuse
        self.decode = decode
        self.fallback = fallback
        self.prune = schedule
        self.kv_batch = bool(kv_batch)
        if decode == "choice":
            self.name = "iterative-choice"
        if reuse == "kv":
            self.name += "-kv"

    # -- public -----------------------------------------------------------------------------
    #: ``rank`` takes ``abandoned`` (the server passes it so a timed-out request stops costing)
    supports_abandon = True

    def rank(
        self, examples: Sequence[RankingExample], *, abandoned: Callable[[RankingExample], bool] | None = None
    ) -> list[Ranking]:
        """Rank ``examples``. ``abandoned(example)`` is asked before every elimination round:
        once it is true that example's ranking stops where it is (its remaining pool keeps the
        shown order, ``meta["abandoned"] = True``), so a caller that has gone (an HTTP request
        past its timeout) does not keep the backend busy for the others."""
        results: list[Ranking] = []
        chunks = [examples[i : i + self.batch_size] for i in range(0, len(examples), self.batch_size)]
        bar = progress_bar(len(examples), self.name, self.show_progress)
        try:
            for chunk in chunks:
                results.extend(self._rank_chunk(chunk, bar, abandoned))
        finally:
            bar.close()
        return results

    # -- internals --------------------------------------------------------------------------
    def _rank_chunk(
        self,
        examples: Sequence[RankingExample],
        bar=None,
        abandoned: Callable[[RankingExample], bool] | None = None,
    ) -> list[Ranking]:
        states = []
        for ex in examples:
            scenario = self._scenario(ex.scenario)
            states.append(_State(ex, scenario, candidate_views(scenario, ex), pool=list(ex.candidate_ids)))
        round_no = 0
        finished = 0
        while True:
            if abandoned is not None:
                for s in states:
                    if not s.done and abandoned(s.example):
                        s.abandoned = True
                        if s.session is not None:
                            s.session.close()
                            s.session = None
            active = [s for s in states if not s.done]
            if bar is not None and len(states) - len(active) > finished:
                bar.update(len(states) - len(active) - finished)
                finished = len(states) - len(active)
            if not active:
                break
            if self.decode == "choice":
                self._choice_round(active)
            else:
                self._generate_round(active, round_no)
            round_no += 1
        return [s.ranking(self.name) for s in states]

    def _choice_round(self, active: list[_State]) -> None:
        prompts = [s.scenario.eliminate_prompt(s.example, s.pool) for s in active]
        choices = [label_choices([v.label for v in s.pool_views()]) for s in active]
        if self.reuse == "kv":
            sessions = [self._session(s) for s in active]
            before = [_processed(x) for x in sessions]
            if self.kv_batch:  # every example's step (and last re-encoding) in one forward pass
                flush_refreshes(sessions)
                scores = batched_choice_logprobs(sessions, prompts, choices)
            else:
                scores = [x.choice_logprobs(p, c) for x, p, c in zip(sessions, prompts, choices)]
            used = [(_processed(x) - b, 0) for x, b in zip(sessions, before)]
        else:
            scores = self.backend.choice_logprobs(prompts, choices)  # type: ignore[attr-defined]
            used = _choice_usage(self.backend, len(active))
        for s, sc, (n_prompt, n_answer) in zip(active, scores, used):
            s.usage.add(n_prompt, n_answer)
            probs = worst_probabilities(sc)
            # highest probability of being named "worst"; ties -> the last shown
            picks = [pick_worst(sc)] if self.prune is None else self.prune.pick(sc, probs)
            shown = list(s.pool)
            for best in picks:
                self._remove(
                    s,
                    Step(
                        pool=list(shown),
                        removed=shown[best],
                        raw=f"logprobs={[round(x, 4) for x in sc]}",
                        valid=True,
                        how_matched="choice" if len(picks) == 1 else "choice:pruned",
                        probs=probs,
                    ),
                )

    # -- KV reuse ---------------------------------------------------------------------------
    def _session(self, s: _State) -> Any:
        """The example's eviction session, prefilled on first use (its tokens go to usage)."""
        if s.session is None:
            s.session = self.backend.eviction_session()  # type: ignore[attr-defined]
            n = s.session.prefill(
                s.scenario.eliminate_prompt(s.example, s.pool),
                s.scenario.candidate_segments(s.example, s.pool),
            )
            s.usage.add(n, 0, calls=0)
        return s.session

    def _remove(self, s: _State, step: Step) -> None:
        s.remove(step)
        if s.session is not None:
            if s.done:
                s.session.close()
                s.session = None
            else:
                before = _processed(s.session)
                if self.kv_batch and self.decode == "choice" and batchable(s.session):
                    # re-encoded together with the other examples' at the next round
                    s.session.evict(step.removed, defer_refresh=True)
                else:
                    s.session.evict(step.removed)  # may re-encode a few tokens (refresh): count them
                s.usage.add(_processed(s.session) - before, 0, calls=0)

    def _generate(
        self, active: list[_State], idx: list[int], prompts: list[Messages], seed: int
    ) -> list[Completion]:
        if self.reuse != "kv":
            return self.backend.generate(
                [prompts[i] for i in idx],
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
                seed=seed,
            )
        return [
            self._session(active[i]).generate(
                prompts[i], max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=seed
            )
            for i in idx
        ]

    def _generate_round(self, active: list[_State], round_no: int) -> None:
        prompts: list[Messages] = [s.scenario.eliminate_prompt(s.example, s.pool) for s in active]
        pending = list(range(len(active)))
        raws: dict[int, list[str]] = {i: [] for i in pending}
        decided: dict[int, Step] = {}
        for attempt in range(self.reask + 1):
            outs = self._generate(active, pending, prompts, self.seed + round_no * 1000 + attempt)
            if len(outs) != len(pending):
                raise RuntimeError(f"backend returned {len(outs)} completions for {len(pending)} prompts")
            still = []
            for i, out in zip(pending, outs):
                s = active[i]
                s.usage.add(out.prompt_tokens, out.completion_tokens)
                text = reply_text(prompts[i], out.text)
                raws[i].append(text)
                parsed = extract(text)
                m = match_candidate(parsed.answer, s.pool_views(), s.removed_views())
                if m.candidate is not None:
                    decided[i] = Step(
                        pool=list(s.pool),
                        removed=m.candidate,
                        raw=text,
                        thought=parsed.thought,
                        valid=True,
                        how_matched=m.how,
                        attempts=attempt + 1,
                    )
                else:
                    still.append(i)
                    prompts[i] = with_reask(prompts[i], text, reask_message(s.pool_views()))
            pending = still
            if not pending:
                break
        for i in pending:
            s = active[i]
            decided[i] = self._fallback_step(s, raws[i])
        for i, s in enumerate(active):
            self._remove(s, decided[i])

    def _fallback_step(self, s: _State, raws: list[str]) -> Step:
        text = "\n".join(raws)
        pool = s.pool_views()
        if self.fallback == "error":
            raise UnparsableAnswerError(
                f"example {s.example.id!r}: the model's answer named no candidate of the pool "
                f"{[v.label for v in pool]}: {raws[-1][:200]!r}"
            )
        if self.fallback == "closest":
            removed = closest_candidate(text, pool)
        elif self.fallback == "last":
            removed = pool[-1].id
        else:  # random, seeded by example and step so it is reproducible
            rng = random.Random(zlib.crc32(f"{self.seed}:{s.example.id}:{len(s.steps)}".encode()))
            removed = rng.choice(pool).id
        parsed = extract(raws[-1])
        return Step(
            pool=list(s.pool),
            removed=removed,
            raw=raws[-1],
            thought=parsed.thought,
            valid=False,
            how_matched=f"fallback:{self.fallback}",
            attempts=len(raws),
        )
