"""Label scoring through a real llama.cpp server (llama-cpp-python's ``llama_cpp.server``).

The servers are started on loopback by these tests: the embedded SmolLM2-135M GGUF alone, and
the same GGUF with the trained ``iranker-135m`` adapter converted by
``python -m iranker.train.package --gguf``. Their rankings are compared with the local
transformers backend on the same examples: both run the same Q4_1 weights (dequantised to
fp32 locally, llama.cpp's quantised kernels on the server), so most removals agree and the
few near-ties may not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("openai")
pytest.importorskip(
    "llama_cpp.server", reason="llama-cpp-python[server] is not installed (make test installs it)"
)

from iranker.data.io import read_examples  # noqa: E402
from iranker.llm.llama_cpp_server import LlamaCppServer, evaluated_from_log  # noqa: E402
from iranker.llm.openai_backend import OpenAILLM  # noqa: E402
from iranker.rankers import IterativeRanker  # noqa: E402

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rank_input.jsonl"


@pytest.fixture(scope="module")
def examples():
    """The README example's routing and passage queries (3 candidates each: 2 steps each);
    llama-cpp-python's server computes log-probabilities in Python over every prompt row, so
    each request costs ~0.3 s of CPU per 600 prompt tokens: the tests keep the examples small."""
    return read_examples(str(EXAMPLE))[1:]


@pytest.fixture(scope="module")
def lora_gguf(tmp_path_factory, embedded_gguf):
    from iranker.train.gguf_lora import adapter_to_gguf

    return adapter_to_gguf("iranker-135m", tmp_path_factory.mktemp("lora") / "iranker-135m.gguf")


@pytest.fixture(scope="module")
def base_server(tmp_path_factory, embedded_gguf):
    with LlamaCppServer(
        embedded_gguf, "smollm2", tmp_path_factory.mktemp("srv") / "base.log", n_ctx=2048
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def adapter_server(tmp_path_factory, embedded_gguf, lora_gguf):
    with LlamaCppServer(
        embedded_gguf, "iranker-135m", tmp_path_factory.mktemp("srv") / "lora.log", lora=lora_gguf, n_ctx=2048
    ) as srv:
        yield srv


def served(srv: LlamaCppServer, alias: str, tokenizer: str | None) -> OpenAILLM:
    return OpenAILLM(
        alias, base_url=srv.base_url, tokenizer=tokenizer, concurrency=1, timeout=600, max_retries=0
    )


@pytest.fixture(scope="module")
def base_run(base_server, examples):
    """The examples ranked through the served base in choice mode, with the server's counters."""
    llm = served(base_server, "smollm2", "smollm2-135m")
    mode = llm.choice_mode()
    before = len(evaluated_from_log(base_server.log_text()))
    rankings = IterativeRanker(llm, decode="choice", batch_size=1, show_progress=False).rank(examples)
    evaluated = evaluated_from_log(base_server.log_text())[before:]
    return {"llm": llm, "mode": mode, "rankings": rankings, "evaluated": evaluated}


def identical_share(a, b) -> float:
    """Share of steps, over the steps both rankings reach with the same pool, that remove the same candidate."""
    same = total = 0
    for ra, rb in zip(a, b):
        for sa, sb in zip(ra.steps, rb.steps):
            if sa.pool != sb.pool:
                break
            total += 1
            same += sa.removed == sb.removed
    return same / total


def step_logprobs(ranking) -> list[list[float]]:
    return [json.loads(s.raw.split("=", 1)[1]) for s in ranking.steps]


def centered_gap(a: list[float], b: list[float]) -> float:
    """Largest difference between two score vectors after removing each one's mean: a shared
    token scored by its top-20 bound shifts every label alike and is not a difference."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    return max(abs((x - ma) - (y - mb)) for x, y in zip(a, b))


def test_served_base_ranks_in_choice_mode_like_the_local_backend(base_run, examples, embedded_llm):
    assert base_run["mode"] == "completions"
    out = base_run["rankings"]
    for ex, r in zip(examples, out):
        assert sorted(r.order) == sorted(ex.candidate_ids)
        assert all(s.how_matched == "choice" and s.valid for s in r.steps)
        assert r.usage.prompt_tokens > 0  # the server's usage reaches the ranking
    local = IterativeRanker(
        embedded_llm, decode="choice", reuse="none", batch_size=1, show_progress=False
    ).rank(examples)
    # first steps see the same pool: the label log-probabilities agree up to Q4_1 kernel numerics
    for rs, rl in zip(out, local):
        assert centered_gap(step_logprobs(rs)[0], step_logprobs(rl)[0]) < 0.3, (
            step_logprobs(rs),
            step_logprobs(rl),
        )
    assert identical_share(out, local) >= 0.5


def test_served_adapter_is_the_trained_ranker(adapter_server, base_server, examples):
    from iranker.llm.transformers_backend import TransformersLLM

    llm = served(adapter_server, "iranker-135m", "iranker-135m")
    assert llm.ranking.get("decode") == "choice" and llm.templates  # recorded mode + trained templates
    ranker = IterativeRanker(llm, batch_size=1, show_progress=False)
    assert (ranker.decode, ranker.reuse) == ("choice", "none")  # kv eviction is local-only
    out = ranker.rank(examples)
    local_llm = TransformersLLM("iranker-135m", threads=1, dtype="float32")
    local = IterativeRanker(local_llm, reuse="none", batch_size=1, show_progress=False).rank(examples)
    assert identical_share(out, local) >= 0.5
    for rs, rl in zip(out, local):
        assert centered_gap(step_logprobs(rs)[0], step_logprobs(rl)[0]) < 0.3, (
            step_logprobs(rs),
            step_logprobs(rl),
        )
    # the adapter is really applied: the same prompts score otherwise on the bare base
    base = served(base_server, "smollm2", "iranker-135m")
    base_first = base.choice_logprobs(
        [
            ranker._scenario(examples[0].scenario).eliminate_prompt(
                examples[0], list(examples[0].candidate_ids)
            )
        ],
        [[f"<answer>[{i + 1}]" for i in range(3)]],
    )[0]
    assert centered_gap(base_first, step_logprobs(out[0])[0]) > 0.3


def test_consecutive_steps_reuse_the_servers_prompt_cache(base_run):
    evaluated, st = base_run["evaluated"], base_run["llm"].choice_stats
    assert len(evaluated) == st.requests  # one counter line per request
    # each request extends the previous one by a label prefix, so most prompt tokens come from the cache
    assert sum(evaluated) < 0.3 * st.prompt_tokens, (sum(evaluated), st.prompt_tokens)


def test_rank_command_through_the_served_adapter(adapter_server, tmp_path):
    from iranker.cli.main import main

    one = tmp_path / "one.jsonl"
    one.write_text(EXAMPLE.read_text().splitlines()[1] + "\n")
    out = tmp_path / "served.jsonl"
    code = main(
        [
            "rank",
            "--backend",
            "openai",
            "--model",
            "iranker-135m",
            "--tokenizer",
            "iranker-135m",
            "--base-url",
            adapter_server.base_url,
            "--batch-size",
            "1",
            "-i",
            str(one),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["id"] == "route-1" and all(s["how_matched"] == "choice" for s in row["steps"])


def test_capability_probe_reads_both_endpoints_of_a_real_server(base_server):
    from iranker.llm.served_choice import chat_positions

    # without a tokenizer only chat can be used (the client cannot render the template itself);
    # llama-cpp-python answers the chat probe with real logprobs.content / top_logprobs
    chat = served(base_server, "smollm2", None)
    assert chat.choice_mode() == "chat"
    reply = chat._client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=2,
        logprobs=True,
        top_logprobs=5,
        temperature=0,
    )
    positions = chat_positions(reply.model_dump())
    assert len(positions) == 2 and all(len(p.top) >= 2 for p in positions)
    forced = OpenAILLM(
        "smollm2",
        base_url=base_server.base_url,
        tokenizer="smollm2-135m",
        choice_endpoint="chat",
        max_retries=0,
        timeout=300,
    )
    assert forced.choice_mode() == "chat"
