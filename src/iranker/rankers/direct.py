"""Direct ranking: one call, the model writes the full order (the paper's DRanker).

Small models omit and repeat candidates. The parser keeps the first mention of each
candidate, ignores repeats, and appends candidates the answer never named in their original
order; all of that is recorded in ``Ranking.meta`` so nothing is silent.
"""

from __future__ import annotations

from typing import Sequence

from ..llm.base import LLMBackend
from ..parsing import extract, parse_order
from ..types import Ranking, RankingExample, Usage
from .base import LLMRanker, progress_bar
from .iterative import candidate_views, reask_message, reply_text, with_reask


class DirectRanker(LLMRanker):
    """Rank every example with one generation call (batched across examples).

    ``reask``: when the answer names no candidate at all, re-ask this many times.
    """

    name = "direct"

    def __init__(
        self,
        backend: LLMBackend,
        *,
        reask: int = 1,
        batch_size: int = 8,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int = 0,
        templates: dict | None = None,
        show_progress: bool = True,
    ) -> None:
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

    def rank(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        out: list[Ranking] = []
        bar = progress_bar(len(examples), self.name, self.show_progress)
        try:
            for i in range(0, len(examples), self.batch_size):
                chunk = examples[i : i + self.batch_size]
                out.extend(self._rank_chunk(chunk))
                bar.update(len(chunk))
        finally:
            bar.close()
        return out

    def _rank_chunk(self, examples: Sequence[RankingExample]) -> list[Ranking]:
        scenarios = [self._scenario(ex.scenario) for ex in examples]
        views = [candidate_views(sc, ex) for sc, ex in zip(scenarios, examples)]
        prompts = [sc.direct_prompt(ex) for sc, ex in zip(scenarios, examples)]
        usage = [Usage() for _ in examples]
        raws: list[list[str]] = [[] for _ in examples]
        parsed: list[tuple[list[str], list[str]]] = [([], []) for _ in examples]
        pending = list(range(len(examples)))
        for attempt in range(self.reask + 1):
            outs = self.backend.generate(
                [prompts[i] for i in pending],
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
                seed=self.seed + attempt,
            )
            still = []
            for i, o in zip(pending, outs):
                usage[i].add(o.prompt_tokens, o.completion_tokens)
                text = reply_text(prompts[i], o.text)
                raws[i].append(text)
                pool = list(views[i].values())
                order, dups = parse_order(extract(text).answer, pool)
                parsed[i] = (order, dups)
                if not order:
                    still.append(i)
                    prompts[i] = with_reask(prompts[i], text, reask_message(pool))
            pending = still
            if not pending:
                break
        rankings = []
        for i, ex in enumerate(examples):
            order, dups = parsed[i]
            missing = [cid for cid in ex.candidate_ids if cid not in order]
            full = order + missing
            p = extract(raws[i][-1])
            rankings.append(
                Ranking(
                    example_id=ex.id,
                    order=full,
                    usage=usage[i],
                    method=self.name,
                    meta={
                        "raw": raws[i][-1],
                        "thought": p.thought,
                        "parsed": order,
                        "appended": missing,
                        "duplicates": dups,
                        "valid": not missing and not dups,
                        "attempts": len(raws[i]),
                    },
                )
            )
        return rankings
