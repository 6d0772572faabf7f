"""``IterativeRanker(reuse="kv")``: the ranker's side of KV-cache candidate eviction.

The first part needs no model: a scripted backend with scripted eviction sessions checks the
wiring (one session per example, prefilled once, the removed candidate evicted after every
step, closed at the end) and that eviction gives the same rankings as exact re-prompting when
the backend's answers are the same. The second part runs the real embedded model.
"""

from __future__ import annotations

import pytest

from iranker.cli.building import ranker_from_args
from iranker.cli.main import build_parser
from iranker.llm import ScriptedLLM
from iranker.llm.base import Completion, EvictionCapable
from iranker.llm.scripted import shown_labels
from iranker.rankers import IterativeRanker
from iranker.types import Candidate, RankingExample


def example(n=5, eid="q", scenario="passage"):
    return RankingExample(
        eid,
        scenario,
        "which passage is about apples?",
        [Candidate(f"c{i}", f"candidate text number {i}") for i in range(n)],
        {"c0": 1},
    )


class ScriptedSession:
    """Answers like ``ScriptedLLM.eliminate_last`` but only knows the pool through the calls
    it receives, so the ranker must keep it in sync with ``prefill``/``evict``."""

    def __init__(self, log: list) -> None:
        self.log = log
        self.pool: list[str] = []
        self.labels: dict[str, str] = {}
        self.closed = False

    def prefill(self, messages, segments):
        self.log.append(("prefill", [cid for cid, _ in segments]))
        self.pool = [cid for cid, _ in segments]
        self.labels = {cid: seg.split(" ", 1)[0] for cid, seg in segments}
        return 100

    def evict(self, candidate_id):
        self.log.append(("evict", candidate_id))
        self.pool.remove(candidate_id)
        return 10

    def _check(self, messages):
        # the messages of every step show exactly the candidates the session still holds
        assert shown_labels(messages) == [self.labels[c] for c in self.pool]

    def generate(self, messages, *, max_new_tokens=256, temperature=0.0, seed=0):
        self._check(messages)
        self.log.append(("generate", len(self.pool)))
        return Completion(
            f"<answer>{self.labels[self.pool[-1]]}</answer>", prompt_tokens=7, completion_tokens=3
        )

    def choice_logprobs(self, messages, choices):
        self._check(messages)
        self.log.append(("choice", len(self.pool)))
        return [-float(i) for i in range(len(choices))]  # like ScriptedLLM: the first scores best

    def close(self):
        self.closed = True
        self.log.append(("close", None))


class EvictingScriptedLLM(ScriptedLLM):
    def __init__(self):
        inner = ScriptedLLM.eliminate_last()
        super().__init__(inner._responder)
        self.log: list = []
        self.sessions: list[ScriptedSession] = []

    def eviction_session(self, **options):
        session = ScriptedSession(self.log)
        self.sessions.append(session)
        return session


def test_reuse_is_validated():
    with pytest.raises(ValueError, match="reuse must be one of"):
        IterativeRanker(ScriptedLLM.eliminate_last(), reuse="prefix")
    with pytest.raises(ValueError, match="cannot evict candidates"):
        IterativeRanker(ScriptedLLM.eliminate_last(), reuse="kv")
    assert isinstance(EvictingScriptedLLM(), EvictionCapable)
    assert not isinstance(ScriptedLLM.eliminate_last(), EvictionCapable)


def test_cli_reuse_option():
    args = build_parser().parse_args(["rank", "-i", "in.jsonl", "-o", "out.jsonl", "--reuse", "kv"])
    assert args.reuse == "kv"
    assert (
        build_parser().parse_args(["rank", "-i", "a", "-o", "b"]).reuse is None
    )  # None = what the model records, else none
    ranker = ranker_from_args(args, EvictingScriptedLLM(), show_progress=False)
    assert ranker.reuse == "kv" and ranker.name == "iterative-kv"


@pytest.mark.parametrize("decode", ["generate", "choice"])
def test_kv_wiring_prefill_once_evict_each_step(decode):
    llm = EvictingScriptedLLM()
    exs = [example(4, "a"), example(3, "b")]
    rankings = IterativeRanker(llm, decode=decode, reuse="kv", show_progress=False).rank(exs)
    assert len(llm.sessions) == 2 and all(s.closed for s in llm.sessions)
    prefills = [e for e in llm.log if e[0] == "prefill"]
    assert prefills == [("prefill", ["c0", "c1", "c2", "c3"]), ("prefill", ["c0", "c1", "c2"])]
    evicted = [e[1] for e in llm.log if e[0] == "evict"]
    removed = [s.removed for r in rankings for s in r.steps]
    # every removal but the last of each example is evicted (the session is closed instead)
    assert sorted(evicted) == sorted([s.removed for r in rankings for s in r.steps[:-1]])
    assert len(removed) == 3 + 2
    for r in rankings:
        assert r.method == ("iterative-kv" if decode == "generate" else "iterative-choice-kv")
        assert all(s.valid for s in r.steps)


@pytest.mark.parametrize("decode", ["generate", "choice"])
def test_kv_gives_the_same_rankings_as_exact_when_answers_agree(decode):
    exs = [example(5, "a"), example(2, "b"), example(4, "c", scenario="recommendation")]
    exact = IterativeRanker(ScriptedLLM.eliminate_last(), decode=decode, show_progress=False).rank(exs)
    kv = IterativeRanker(EvictingScriptedLLM(), decode=decode, reuse="kv", show_progress=False).rank(exs)
    assert [r.order for r in kv] == [r.order for r in exact]
    assert [[s.removed for s in r.steps] for r in kv] == [[s.removed for s in r.steps] for r in exact]


def test_kv_usage_counts_the_prefill_once():
    llm = EvictingScriptedLLM()
    [r] = IterativeRanker(llm, reuse="kv", show_progress=False).rank([example(4)])
    # prefill 100 once, then 7 prompt tokens per step (3 steps); 3 completion tokens per step
    assert r.usage.prompt_tokens == 100 + 3 * 7
    assert r.usage.completion_tokens == 3 * 3
    assert r.usage.calls == 3


def test_kv_reask_goes_through_the_session():
    llm = EvictingScriptedLLM()
    answers = iter(["no idea", "<answer>[2]</answer>", "<answer>[1]</answer>"])

    def session_generate(self, messages, *, max_new_tokens=256, temperature=0.0, seed=0):
        self.log.append(("generate", len(messages)))
        return Completion(next(answers), prompt_tokens=5, completion_tokens=2)

    original = ScriptedSession.generate
    ScriptedSession.generate = session_generate
    try:
        [r] = IterativeRanker(llm, reuse="kv", reask=1, show_progress=False).rank([example(3)])
    finally:
        ScriptedSession.generate = original
    gens = [e for e in llm.log if e[0] == "generate"]
    assert gens == [("generate", 2), ("generate", 4), ("generate", 2)]  # re-ask adds two turns
    assert [s.removed for s in r.steps] == ["c1", "c0"]
    assert r.steps[0].attempts == 2


# -- the real embedded model -------------------------------------------------------------------


class _Options:
    """Backend proxy that builds eviction sessions with fixed options."""

    def __init__(self, llm, **options):
        self._llm = llm
        self._options = options
        self.name = llm.name

    def __getattr__(self, name):
        return getattr(self._llm, name)

    def generate(self, *args, **kwargs):
        return self._llm.generate(*args, **kwargs)

    def choice_logprobs(self, *args, **kwargs):
        return self._llm.choice_logprobs(*args, **kwargs)

    def eviction_session(self, **options):
        return self._llm.eviction_session(**{**self._options, **options})


def _real_examples():
    from iranker.demo import packaged_examples

    return [packaged_examples("demo_passage")[0], packaged_examples("demo_routing")[1]]


@pytest.mark.model
def test_choice_with_exact_refresh_reproduces_exact_rankings(embedded_llm):
    """With every following segment re-encoded and positions shifted, the cache after an
    eviction equals a fresh prefill: the KV ranker must make exactly the exact ranker's
    choices, on real prompts, for every step."""
    exs = _real_examples()
    exact = IterativeRanker(embedded_llm, decode="choice", show_progress=False).rank(exs)
    proxy = _Options(embedded_llm, positions="shift", refresh=-1)
    kv = IterativeRanker(proxy, decode="choice", reuse="kv", show_progress=False).rank(exs)
    assert [[s.removed for s in r.steps] for r in kv] == [[s.removed for s in r.steps] for r in exact]
    assert [r.order for r in kv] == [r.order for r in exact]


@pytest.mark.model
def test_default_kv_choice_always_yields_pool_members_and_counts_tokens(embedded_llm):
    exs = _real_examples()
    kv = IterativeRanker(embedded_llm, decode="choice", reuse="kv", show_progress=False).rank(exs)
    for ex, r in zip(exs, kv):
        assert sorted(r.order) == sorted(ex.candidate_ids)
        for step in r.steps:
            assert step.valid and step.how_matched == "choice" and step.removed in step.pool
        full = len(
            embedded_llm.tokenizer(embedded_llm.render(get_prompt(ex)), add_special_tokens=False)["input_ids"]
        )
        # the prefill (< the full prompt) once plus a short question per step
        assert full < r.usage.prompt_tokens < 2 * full


@pytest.mark.model
def test_kv_generate_first_step_equals_exact(embedded_llm):
    """Before any eviction the cache is the exact prompt: greedy answers must be identical."""
    exs = _real_examples()
    exact = IterativeRanker(embedded_llm, max_new_tokens=12, reask=0, show_progress=False).rank(exs)
    kv = IterativeRanker(embedded_llm, max_new_tokens=12, reask=0, reuse="kv", show_progress=False).rank(exs)
    for a, b in zip(exact, kv):
        assert a.steps[0].raw == b.steps[0].raw
        assert a.steps[0].removed == b.steps[0].removed


def get_prompt(ex):
    from iranker.scenarios import get_scenario

    return get_scenario(ex.scenario).eliminate_prompt(ex, ex.candidate_ids)


@pytest.mark.model
def test_kv_with_a_prefilled_reply_equals_exact_on_the_first_step(embedded_llm):
    """A response prefix ends the prompt with an open assistant message; the KV session must
    continue it exactly like a full prompt does (the prefix sits in the question tail)."""
    from iranker.building import with_response_prefix

    templates = with_response_prefix({}, "<think>")
    exs = _real_examples()
    opts = dict(max_new_tokens=12, reask=0, templates=templates, show_progress=False)
    exact = IterativeRanker(embedded_llm, **opts).rank(exs)
    kv = IterativeRanker(embedded_llm, reuse="kv", **opts).rank(exs)
    for a, b in zip(exact, kv):
        assert a.steps[0].raw == b.steps[0].raw and a.steps[0].raw.startswith("<think>")
        assert a.steps[0].removed == b.steps[0].removed
        assert sorted(b.order) == sorted(a.order)
