"""The first trained IRanker (results/2026-11-27-rl-smollm2/adapter) loads and ranks.

It is a LoRA adapter of SmolLM2-135M trained with GRPO on this CPU; its folder records the
base model and the prompt templates (with the ``<think>`` reply prefix) it was trained with.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ADAPTER = Path(__file__).resolve().parents[2] / "results" / "2026-11-27-rl-smollm2" / "adapter"


@pytest.mark.model
def test_committed_adapter_ranks_with_its_trained_templates():
    pytest.importorskip("peft")
    from iranker.llm import load_backend
    from iranker.rankers import IterativeRanker
    from iranker.train import read_run_info
    from iranker.types import Candidate, RankingExample

    assert (ADAPTER / "adapter_model.safetensors").stat().st_size < 20 * 2**20
    info = read_run_info(ADAPTER)
    assert info["base_model"] == "smollm2-135m" and info["adapter"] and info["algorithm"] == "grpo"
    backend = load_backend("transformers", str(ADAPTER), threads=1)
    assert backend.resolved.kind == "adapter" and backend.resolved.base.name == "smollm2-135m"
    # trained on recommendation and routing; the reply prefix carries over to passages
    assert {t.response_prefix for t in backend.templates.values()} == {"<think>"}
    assert set(backend.templates) == {"recommendation", "routing", "passage"}
    ex = RankingExample(
        "u",
        "recommendation",
        "",
        [Candidate("a", "Toy Story (1995)"), Candidate("b", "Heat (1995)"), Candidate("c", "Fargo (1996)")],
        {"a": 1.0},
        meta={"history": ["Aladdin (1992)", "The Lion King (1994)"]},
    )
    sent = []
    generate = backend.generate
    backend.generate = lambda prompts, **kw: sent.extend(prompts) or generate(prompts, **kw)
    [r] = IterativeRanker(
        backend, templates=backend.templates, max_new_tokens=64, reask=0, show_progress=False
    ).rank([ex])
    assert sorted(r.order) == ["a", "b", "c"] and len(r.steps) == 2
    # the model is asked to continue the trained prefix (an open assistant turn) ...
    assert sent and all(p[-1] == {"role": "assistant", "content": "<think>"} for p in sent)
    # ... and the adapter answers in the trained format: the base model names a candidate in
    # none of its answers, so an adapter that was not applied fails here
    assert any(s.valid and s.how_matched == "label" for s in r.steps), [s.raw for s in r.steps]
    assert all(len(s.raw) > len("<think>") for s in r.steps)
