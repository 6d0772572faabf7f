"""The vLLM backend's request shaping, without vLLM or a GPU.

The fake outputs mirror vLLM's ``RequestOutput`` / ``CompletionOutput`` fields that the backend
reads (``prompt_token_ids``, ``outputs[0].text``, ``outputs[0].token_ids``, ``prompt_logprobs``
with ``Logprob`` values).
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from dataclasses import dataclass

import pytest

from iranker.llm import BackendError, Completion, MissingExtraError, load_backend
from iranker.llm.vllm_backend import (
    VLLMBackend,
    VLLMTarget,
    choice_requests,
    completions_from_outputs,
    continuation_logprob,
    engine_kwargs,
    group_scores,
    resolve_vllm_model,
    sampling_kwargs,
    scoring_kwargs,
)


@dataclass
class FakeCompletionOutput:
    text: str
    token_ids: list[int]
    index: int = 0
    finish_reason: str | None = "stop"


@dataclass
class FakeLogprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class FakeRequestOutput:
    prompt_token_ids: list[int]
    outputs: list[FakeCompletionOutput]
    prompt: str | None = None
    prompt_logprobs: list | None = None
    request_id: str = "0"
    finished: bool = True


# -- engine arguments ----------------------------------------------------------------------------
def test_engine_kwargs_turn_prefix_caching_on_by_default():
    kw = engine_kwargs("org/model")
    assert kw["enable_prefix_caching"] is True
    assert kw == {
        "model": "org/model",
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.9,
        "enable_prefix_caching": True,
        "dtype": "auto",
    }
    assert "max_model_len" not in kw and "tokenizer" not in kw  # left to vLLM unless set


def test_engine_kwargs_options_and_passthrough():
    kw = engine_kwargs(
        "m.gguf",
        tokenizer="org/base",
        tensor_parallel_size=2,
        gpu_memory_utilization=0.5,
        max_model_len=4096,
        enable_prefix_caching=False,
        dtype="bfloat16",
        enforce_eager=True,
    )
    assert kw["enable_prefix_caching"] is False
    assert kw["tokenizer"] == "org/base" and kw["max_model_len"] == 4096
    assert kw["tensor_parallel_size"] == 2 and kw["gpu_memory_utilization"] == 0.5
    assert kw["dtype"] == "bfloat16" and kw["enforce_eager"] is True


@pytest.mark.parametrize(
    "bad", [{"tensor_parallel_size": 0}, {"gpu_memory_utilization": 0.0}, {"gpu_memory_utilization": 1.5}]
)
def test_engine_kwargs_reject_nonsense(bad):
    with pytest.raises(ValueError):
        engine_kwargs("org/model", **bad)


# -- sampling parameters -------------------------------------------------------------------------
def test_sampling_kwargs_greedy_when_temperature_is_zero():
    kw = sampling_kwargs(64, 0.0, seed=7)
    assert kw["temperature"] == 0.0  # vLLM: zero temperature means greedy
    assert kw["max_tokens"] == 64
    assert "seed" not in kw  # greedy is deterministic; no per-request generator needed


def test_sampling_kwargs_keep_the_stop_string():
    kw = sampling_kwargs(64, 0.0, seed=0)
    assert kw["stop"] == ["</answer>"]
    assert kw["include_stop_str_in_output"] is True


def test_sampling_kwargs_seed_when_sampling():
    kw = sampling_kwargs(32, 0.8, seed=11)
    assert kw["temperature"] == 0.8 and kw["seed"] == 11


@pytest.mark.parametrize("args", [(0, 0.0, 0), (16, -0.1, 0)])
def test_sampling_kwargs_reject_nonsense(args):
    with pytest.raises(ValueError):
        sampling_kwargs(*args)


def test_scoring_kwargs_ask_for_prompt_logprobs():
    kw = scoring_kwargs()
    assert kw["prompt_logprobs"] >= 0 and kw["max_tokens"] == 1 and kw["temperature"] == 0.0


# -- reading outputs -----------------------------------------------------------------------------
def test_completions_from_outputs():
    outputs = [
        FakeRequestOutput([1, 2, 3, 4], [FakeCompletionOutput("<answer>[2]</answer>", [9, 8, 7])]),
        FakeRequestOutput([5, 6], [FakeCompletionOutput("", [])]),
    ]
    assert completions_from_outputs(outputs) == [
        Completion(text="<answer>[2]</answer>", prompt_tokens=4, completion_tokens=3),
        Completion(text="", prompt_tokens=2, completion_tokens=0),
    ]


def test_completions_only_read_the_first_sample():
    out = FakeRequestOutput(
        [1], [FakeCompletionOutput("a", [1]), FakeCompletionOutput("b b", [1, 2], index=1)]
    )
    assert completions_from_outputs([out]) == [Completion("a", 1, 1)]


def test_continuation_logprob_sums_the_choice_tokens():
    ids = [10, 11, 12, 13]
    logprobs = [
        None,
        {11: FakeLogprob(-0.5), 99: FakeLogprob(-0.1)},
        {12: FakeLogprob(-1.0)},
        {13: FakeLogprob(-2.0), 7: FakeLogprob(-0.2)},
    ]
    assert continuation_logprob(logprobs, ids, 2) == pytest.approx(-3.0)
    assert continuation_logprob(logprobs, ids, 0) == 0.0
    # plain floats work too
    assert continuation_logprob([None, {11: -0.25}], [10, 11], 1) == pytest.approx(-0.25)


class FakeTokenizer:
    """Chat template = "<u>content</u><a>", one token per character."""

    def apply_chat_template(
        self, messages, tokenize=False, add_generation_prompt=False, continue_final_message=False
    ):
        assert tokenize is False and add_generation_prompt != continue_final_message
        return "".join(f"<{m['role'][0]}>{m['content']}" for m in messages) + (
            "<a>" if add_generation_prompt else ""
        )

    def encode(self, text, add_special_tokens=True):
        assert add_special_tokens is False  # the template already holds the special tokens
        return [ord(ch) for ch in text]


def test_choice_requests_append_each_choice_to_the_templated_prompt():
    prompts = [[{"role": "user", "content": "q"}], [{"role": "user", "content": "r"}]]
    requests, spans = choice_requests(FakeTokenizer(), prompts, [["[1]", "[22]"], ["x"]])
    prefix = [ord(c) for c in "<u>q<a>"]
    assert requests[0] == {"prompt_token_ids": prefix + [ord(c) for c in "[1]"]}
    assert requests[1] == {"prompt_token_ids": prefix + [ord(c) for c in "[22]"]}
    assert requests[2]["prompt_token_ids"][-1] == ord("x")
    assert spans == [3, 4, 1]
    with pytest.raises(ValueError):
        choice_requests(FakeTokenizer(), prompts, [["a"]])
    # a prefilled reply is continued: the choice follows its text, with no new assistant turn
    pre = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>"}]
    (req,), _ = choice_requests(FakeTokenizer(), [pre], [["[1]"]])
    assert req["prompt_token_ids"] == [ord(c) for c in "<u>q<a><think>[1]"]


def test_group_scores():
    assert group_scores([1.0, 2.0, 3.0], [["a", "b"], [], ["c"]]) == [[1.0, 2.0], [], [3.0]]


def test_continuation_logprob_missing_token_is_an_error():
    with pytest.raises(BackendError):
        continuation_logprob([None, {99: FakeLogprob(-0.1)}], [10, 11], 1)


# -- model resolution ----------------------------------------------------------------------------
def no_densify(path):
    raise AssertionError("only the embedded model is densified")


def test_hub_ids_and_folders_pass_through(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    target = resolve_vllm_model("HuggingFaceTB/SmolLM2-135M-Instruct", densify=no_densify)
    assert target == VLLMTarget("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert resolve_vllm_model(str(tmp_path), densify=no_densify) == VLLMTarget(str(tmp_path.resolve()))
    assert resolve_vllm_model("org/model", "org/tok", densify=no_densify).tokenizer == "org/tok"
    assert VLLMTarget("org/model").engine_extra() == {}


def test_gguf_is_loaded_natively_with_the_given_tokenizer(tmp_path):
    gguf = tmp_path / "model.Q4_1.gguf"
    gguf.write_bytes(b"GGUF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        target = resolve_vllm_model(str(gguf), "org/base", densify=no_densify)
    assert target == VLLMTarget(str(gguf.resolve()), "org/base")


def test_gguf_without_tokenizer_warns(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.warns(UserWarning, match="tokenizer"):
        assert resolve_vllm_model(str(gguf), densify=no_densify) == VLLMTarget(str(gguf.resolve()))


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        resolve_vllm_model(str(tmp_path / "nope.gguf"), densify=no_densify)


def test_embedded_alias_uses_the_dense_cache(tmp_path, monkeypatch):
    from iranker.llm import models

    gguf = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(models, "embedded_gguf_path", lambda: gguf)
    seen = []

    def densify(path):
        seen.append(path)
        return tmp_path / "dense"

    target = resolve_vllm_model("smollm2-135m", densify=densify)
    assert seen == [str(gguf)]
    assert target == VLLMTarget(str(tmp_path / "dense"))


def write_adapter(folder, base, rank):
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "r": rank}))
    return folder


def test_adapter_becomes_base_plus_lora(tmp_path):
    adapter = write_adapter(tmp_path / "ranker-lora", "org/base", 32)
    target = resolve_vllm_model(str(adapter), densify=no_densify)
    assert target == VLLMTarget("org/base", None, str(adapter.resolve()), 32)
    assert target.engine_extra() == {"enable_lora": True, "max_lora_rank": 32}
    small = write_adapter(tmp_path / "small", "org/base", 8)
    assert resolve_vllm_model(str(small), densify=no_densify).engine_extra() == {"enable_lora": True}
    assert VLLMTarget("m", lora_path="x", lora_rank=48).engine_extra()["max_lora_rank"] == 64


def test_stacked_adapters_are_refused(tmp_path):
    inner = write_adapter(tmp_path / "inner", "org/base", 8)
    outer = write_adapter(tmp_path / "outer", str(inner), 8)
    with pytest.raises(BackendError, match="merge"):
        resolve_vllm_model(str(outer), densify=no_densify)


# -- construction without vllm -------------------------------------------------------------------
@pytest.fixture
def no_vllm(monkeypatch):
    """Make ``import vllm`` fail even if some environment has it."""
    monkeypatch.setitem(sys.modules, "vllm", None)


def test_missing_vllm_names_the_extra(no_vllm):
    with pytest.raises(ImportError) as info:
        VLLMBackend("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert isinstance(info.value, MissingExtraError)
    assert "pip install 'iranker[vllm]'" in str(info.value)
    with pytest.raises(ImportError, match=r"pip install 'iranker\[vllm\]'"):
        VLLMBackend()  # checked before the model is resolved or converted


def test_missing_vllm_through_load_backend(no_vllm):
    with pytest.raises(ImportError, match=r"pip install 'iranker\[vllm\]'"):
        load_backend("vllm", "org/model")


# -- the backend with a fake engine (checks the calls, not vLLM) ----------------------------------
class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def install_fake_vllm(monkeypatch, llm_cls) -> None:
    """Put a fake ``vllm`` module (``LLM`` = ``llm_cls``) in ``sys.modules`` for one test."""
    fake_vllm = types.ModuleType("vllm")
    fake_vllm.LLM = llm_cls
    fake_vllm.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)


class FakeLLM:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.chats = []

    def chat(
        self,
        conversations,
        sampling_params=None,
        use_tqdm=True,
        lora_request=None,
        add_generation_prompt=True,
        continue_final_message=False,
    ):  # vLLM's LLM.chat flags
        self.chats.append((conversations, sampling_params, lora_request))
        self.flags = getattr(self, "flags", []) + [(add_generation_prompt, continue_final_message)]
        return [
            FakeRequestOutput(
                list(range(len(c[-1]["content"].split()))),
                [FakeCompletionOutput(f"<answer>{c[-1]['content']}</answer>", [1, 2])],
            )
            for c in conversations
        ]


def test_backend_with_a_fake_engine(monkeypatch):
    install_fake_vllm(monkeypatch, FakeLLM)
    llm = VLLMBackend("org/model", max_model_len=2048, enforce_eager=True)
    assert llm._llm.kwargs["enable_prefix_caching"] is True
    assert llm._llm.kwargs["max_model_len"] == 2048 and llm._llm.kwargs["enforce_eager"] is True
    prompts = [[{"role": "user", "content": "a b c"}], [{"role": "user", "content": "d"}]]
    out = llm.generate(prompts, max_new_tokens=12)
    assert [c.text for c in out] == ["<answer>a b c</answer>", "<answer>d</answer>"]
    assert [c.prompt_tokens for c in out] == [3, 1]
    ((sent, params, lora),) = llm._llm.chats
    assert sent == prompts  # one chat call for the whole batch
    assert params.kwargs == sampling_kwargs(12, 0.0, 0)
    assert lora is None
    assert llm._llm.flags == [(True, False)]
    assert llm.generate([]) == []


def test_prefilled_prompts_are_continued_in_their_own_chat_call(monkeypatch):
    install_fake_vllm(monkeypatch, FakeLLM)
    llm = VLLMBackend("org/model")
    plain = [{"role": "user", "content": "p"}]
    pre = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>"}]
    out = llm.generate([pre, plain, pre])
    assert [c.text for c in out] == [
        "<answer><think></answer>",
        "<answer>p</answer>",
        "<answer><think></answer>",
    ]
    assert llm._llm.flags == [(True, False), (False, True)]  # LLM.chat takes the flags per call
    assert [len(c[0]) for c in llm._llm.chats] == [1, 2]


class FakeLoRARequest:
    def __init__(self, name, int_id, path):
        self.args = (name, int_id, path)


def test_backend_serves_an_adapter_as_lora(tmp_path, monkeypatch):
    install_fake_vllm(monkeypatch, FakeLLM)
    fake_request = types.ModuleType("vllm.lora.request")
    fake_request.LoRARequest = FakeLoRARequest
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", fake_request)
    adapter = write_adapter(tmp_path / "ranker-lora", "org/base", 8)
    llm = VLLMBackend(str(adapter))
    assert llm._llm.kwargs["model"] == "org/base" and llm._llm.kwargs["enable_lora"] is True
    llm.generate([[{"role": "user", "content": "x"}]])
    lora = llm._llm.chats[0][2]
    assert lora.args == ("ranker-lora", 1, str(adapter.resolve()))


class ScoringFakeLLM(FakeLLM):
    """Fake engine whose prompt logprob for token t is -t/100 (so scores are checkable)."""

    def get_tokenizer(self):
        return FakeTokenizer()

    def generate(self, requests, sampling_params=None, use_tqdm=True, lora_request=None):
        self.generated = (requests, sampling_params)
        outs = []
        for req in requests:
            ids = req["prompt_token_ids"]
            logprobs = [None] + [{t: FakeLogprob(-t / 100)} for t in ids[1:]]
            outs.append(FakeRequestOutput(ids, [FakeCompletionOutput("", [0])], prompt_logprobs=logprobs))
        return outs


def test_choice_logprobs_with_a_fake_engine(monkeypatch):
    install_fake_vllm(monkeypatch, ScoringFakeLLM)
    llm = VLLMBackend("org/model")
    prompts = [[{"role": "user", "content": "q"}]]
    scores = llm.choice_logprobs(prompts, [["[1]", "[2]"]])
    expected = [-sum(ord(c) for c in "[1]") / 100, -sum(ord(c) for c in "[2]") / 100]
    assert scores == [pytest.approx(expected)]
    assert scores[0][0] > scores[0][1]
    assert llm._llm.generated[1].kwargs == scoring_kwargs()
    assert llm.choice_logprobs(prompts, [[]]) == [[]]
