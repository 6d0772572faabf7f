"""The OpenAI-compatible backend against a real HTTP server on loopback."""

from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("openai")

from iranker.llm import BackendError, Completion, LLMBackend, load_backend  # noqa: E402
from iranker.llm.openai_backend import OpenAILLM, restore_answer_close  # noqa: E402

from .openai_compatible_server import OpenAICompatibleServer  # noqa: E402


def user(text: str, system: str = "You rank things.") -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def echo_answer(messages: list[dict[str, str]]) -> str:
    """Answers with the user text inside the answer tags, then keeps talking (like a chatty model)."""
    return f"<think>ok</think><answer>{messages[-1]['content']}</answer> and some trailing chatter"


@pytest.fixture
def server():
    with OpenAICompatibleServer(echo_answer) as srv:
        yield srv


def backend(srv: OpenAICompatibleServer, **kwargs) -> OpenAILLM:
    kwargs.setdefault("timeout", 10.0)
    kwargs.setdefault("max_retries", 0)
    return OpenAILLM("test-model", base_url=srv.base_url, api_key="sk-test", **kwargs)


def free_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- behaviour against the server ----------------------------------------------------------------
def test_implements_the_protocol(server):
    llm = backend(server)
    assert isinstance(llm, LLMBackend)
    assert llm.base_url == server.base_url


def test_order_is_kept_under_concurrency():
    # earlier prompts answer *later*, so completion order is the reverse of submission order
    n = 8

    def delay(messages):
        i = int(messages[-1]["content"].split()[-1])
        return 0.05 * (n - i)

    with OpenAICompatibleServer(echo_answer, delay=delay) as srv:
        llm = backend(srv, concurrency=4)
        prompts = [user(f"prompt {i}") for i in range(n)]
        out = llm.generate(prompts)
        assert [c.text.split("<answer>")[1].split("</answer>")[0] for c in out] == [
            f"prompt {i}" for i in range(n)
        ]
        assert srv.state.max_in_flight > 1, "requests of one batch should run concurrently"
        assert srv.state.max_in_flight <= 4, "concurrency must bound the requests in flight"


def test_parameters_reach_the_server(server):
    llm = backend(server)
    prompt = user("rank [1] [2]")
    llm.generate([prompt], max_new_tokens=17, temperature=0.7, seed=123)
    (req,) = server.requests
    assert req.path == "/v1/chat/completions"
    body = req.body
    assert body["model"] == "test-model"
    assert body["messages"] == prompt
    assert body["max_tokens"] == 17
    assert "max_completion_tokens" not in body
    assert body["temperature"] == 0.7
    assert body["seed"] == 123
    assert body["stop"] == ["</answer>"]


def test_max_completion_tokens_field_and_extra_body(server):
    llm = backend(server, max_tokens_field="max_completion_tokens", extra_body={"top_k": 5})
    llm.generate([user("x")], max_new_tokens=9)
    body = server.requests[0].body
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body
    assert body["top_k"] == 5


def test_prefilled_reply_asks_the_server_to_continue_it(server):
    """vLLM's server continues a final assistant message when asked with its template flags."""
    llm = backend(server, extra_body={"top_k": 5})
    prefilled = user("x") + [{"role": "assistant", "content": "<think>"}]
    llm.generate([prefilled, user("y")])
    by_last = {r.body["messages"][-1]["role"]: r.body for r in server.requests}
    assert by_last["assistant"]["continue_final_message"] is True
    assert by_last["assistant"]["add_generation_prompt"] is False and by_last["assistant"]["top_k"] == 5
    assert "continue_final_message" not in by_last["user"] and by_last["user"]["top_k"] == 5


def test_api_key_is_sent_as_bearer(server):
    backend(server).generate([user("x")])
    headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
    assert headers["authorization"] == "Bearer sk-test"


def test_api_key_and_base_url_from_env(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    llm = OpenAILLM("m", max_retries=0, timeout=10)
    assert llm.base_url == server.base_url
    llm.generate([user("x")])
    headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
    assert headers["authorization"] == "Bearer sk-from-env"


def test_placeholder_key_when_none_is_configured(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    OpenAILLM("m", base_url=server.base_url, max_retries=0, timeout=10).generate([user("x")])
    headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
    assert headers["authorization"] == "Bearer EMPTY"


def test_usage_is_reported_per_completion_and_sums(server):
    llm = backend(server)
    prompts = [user("a b c"), user("d e")]
    out = llm.generate(prompts)
    assert all(isinstance(c, Completion) for c in out)
    # the server counts whitespace words: system "You rank things." = 3 words
    assert [c.prompt_tokens for c in out] == [6, 5]
    # the answer is cut at the stop string: "<think>ok</think><answer>a b c" = 3 words
    assert [c.completion_tokens for c in out] == [3, 2]
    assert sum(c.prompt_tokens + c.completion_tokens for c in out) == 16


def test_missing_usage_counts_zero():
    with OpenAICompatibleServer(echo_answer, report_usage=False) as srv:
        (c,) = backend(srv).generate([user("x")])
    assert (c.prompt_tokens, c.completion_tokens) == (0, 0)


def test_closing_answer_tag_is_restored(server):
    (c,) = backend(server).generate([user("[2] > [1]")])
    # the server dropped the stop string and everything after it; we put the tag back
    assert c.text == "<think>ok</think><answer>[2] > [1]</answer>"


def test_truncated_answer_is_not_repaired():
    with OpenAICompatibleServer(lambda m: "<answer> [1] [2] [3] [4] </answer>") as srv:
        (c,) = backend(srv).generate([user("x")], max_new_tokens=2)
    assert c.text == "<answer> [1]"  # finish_reason == "length": incomplete, left as is


def test_text_without_answer_is_untouched():
    with OpenAICompatibleServer(lambda m: "I cannot rank these.") as srv:
        (c,) = backend(srv).generate([user("x")])
    assert c.text == "I cannot rank these."


def test_restore_answer_close_rules():
    assert restore_answer_close("<answer>[1]", "stop") == "<answer>[1]</answer>"
    assert restore_answer_close("<answer>[1]</answer>", "stop") == "<answer>[1]</answer>"
    assert restore_answer_close("<answer>[1]", "length") == "<answer>[1]"
    assert restore_answer_close("no tags", "stop") == "no tags"
    # an earlier closed answer does not hide a later open one
    assert (
        restore_answer_close("<answer>a</answer> <answer>b", "stop")
        == "<answer>a</answer> <answer>b</answer>"
    )
    # vLLM says which stop fired: trust it
    assert restore_answer_close("<answer>[1]", "stop", "</answer>") == "<answer>[1]</answer>"
    assert restore_answer_close("<answer>[1]", "stop", 2) == "<answer>[1]"  # stopped by an EOS-like token
    assert restore_answer_close("<answer>[1]", "stop", None) == "<answer>[1]"  # vLLM: plain EOS


def test_vllm_stop_reason_is_trusted():
    replies = {"stop": "<answer>[1]</answer> more", "eos": "<answer>[1]"}
    with OpenAICompatibleServer(lambda m: replies[m[-1]["content"]], report_stop_reason=True) as srv:
        by_stop, by_eos = backend(srv).generate([user("stop"), user("eos")])
    assert by_stop.text == "<answer>[1]</answer>"
    assert by_eos.text == "<answer>[1]"  # the model ended without closing: not "repaired"


def test_empty_batch_sends_nothing(server):
    assert backend(server).generate([]) == []
    assert server.requests == []


# -- errors --------------------------------------------------------------------------------------
def test_persistent_500_raises_backend_error_after_retries():
    with OpenAICompatibleServer(echo_answer, fail_status=500) as srv:
        llm = backend(srv, max_retries=1)
        with pytest.raises(BackendError) as info:
            llm.generate([user("x")])
        assert len(srv.requests) == 2  # first try + one retry
    msg = str(info.value)
    assert srv.base_url in msg and "500" in msg and "\n" not in msg


def test_transient_500_is_retried_then_succeeds():
    with OpenAICompatibleServer(echo_answer, fail_status=503, fail_times=1) as srv:
        (c,) = backend(srv, max_retries=2).generate([user("ok")])
        assert c.text.endswith("<answer>ok</answer>")
        assert len(srv.requests) == 2


def test_client_error_is_not_retried_and_names_the_cause():
    with OpenAICompatibleServer(echo_answer, fail_status=404) as srv:
        with pytest.raises(BackendError) as info:
            backend(srv, max_retries=2).generate([user("x")])
        assert len(srv.requests) == 1
    assert "404" in str(info.value) and "test-model" in str(info.value)


def test_error_in_one_request_fails_the_batch():
    with OpenAICompatibleServer(echo_answer, fail_status=500, fail_times=1) as srv:
        with pytest.raises(BackendError):
            backend(srv, concurrency=1, max_retries=0).generate([user("a"), user("b")])


def test_refused_port_raises_backend_error_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = OpenAILLM("m", base_url=url, timeout=2.0, max_retries=0)
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        llm.generate([user("x")])
    assert time.monotonic() - start < 5
    assert str(info.value) == f"cannot reach the OpenAI-compatible server at {url}: connection refused"


def test_timeout_raises_backend_error():
    with OpenAICompatibleServer(echo_answer, delay=lambda m: 1.0) as srv:
        llm = backend(srv, timeout=0.2, max_retries=0)
        with pytest.raises(BackendError) as info:
            llm.generate([user("x")])
    assert srv.base_url in str(info.value) and "timed out" in str(info.value)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        OpenAILLM("m", base_url="http://127.0.0.1:1/v1", concurrency=0)
    with pytest.raises(ValueError):
        OpenAILLM("", base_url="http://127.0.0.1:1/v1")


# -- construction through the registry -----------------------------------------------------------
def test_load_backend_builds_it(server):
    llm = load_backend("openai", "m", base_url=server.base_url, max_retries=0, timeout=10)
    assert isinstance(llm, OpenAILLM)
    assert llm.name == "openai" and llm.model == "m"
    (c,) = llm.generate([user("hello")])
    assert c.text.endswith("<answer>hello</answer>")
    assert server.requests[0].body["model"] == "m"


def test_load_backend_needs_a_model_name():
    with pytest.raises(ValueError):
        load_backend("openai", None, base_url="http://127.0.0.1:1/v1")


def test_missing_sdk_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"pip install 'iranker\[openai\]'"):
        OpenAILLM("m", base_url="http://127.0.0.1:1/v1")


# -- label scoring: a server that offers no log-probabilities -----------------------------------
# The loopback server above is a real HTTP peer that, like many chat-only deployments, serves
# /v1/chat/completions without logprobs and has no /v1/completions (404).
def test_choice_scoring_names_the_missing_capability(server):
    from iranker.llm.openai_backend import LogprobsUnsupportedError

    llm = backend(server)
    with pytest.raises(LogprobsUnsupportedError) as info:
        llm.choice_logprobs([user("x")], [["<answer>[1]", "<answer>[2]"]])
    msg = str(info.value)
    assert server.base_url in msg and "/v1/chat/completions: " in msg and "no 'logprobs'" in msg
    assert "--tokenizer" in msg  # /v1/completions needs the chat template rendered by the client
    body = server.requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 20


def test_choice_scoring_with_a_tokenizer_tries_both_endpoints(server, embedded_gguf):
    from iranker.llm.openai_backend import LogprobsUnsupportedError

    llm = backend(server, tokenizer="smollm2-135m")
    with pytest.raises(LogprobsUnsupportedError) as info:
        llm.choice_logprobs([user("x")], [["<answer>[1]", "<answer>[2]"]])
    msg = str(info.value)
    assert "/v1/completions: HTTP 404" in msg and "/v1/chat/completions: " in msg and "--tokenizer" not in msg


def test_choice_ranking_does_not_fall_back_silently(server):
    from iranker.llm.openai_backend import LogprobsUnsupportedError
    from iranker.rankers import IterativeRanker
    from iranker.types import Candidate, RankingExample

    example = RankingExample(
        id="e", scenario="passage", query="q", candidates=[Candidate("a", "alpha"), Candidate("b", "beta")]
    )
    ranker = IterativeRanker(backend(server), decode="choice", show_progress=False)
    with pytest.raises(LogprobsUnsupportedError):
        ranker.rank([example])


def test_choice_endpoint_options_are_checked(server):
    with pytest.raises(ValueError, match="tokenizer"):
        backend(server, choice_endpoint="completions")
    with pytest.raises(ValueError, match="choice_endpoint"):
        backend(server, choice_endpoint="grpc")
    with pytest.raises(ValueError, match="top_logprobs"):
        backend(server, top_logprobs=0)
