"""The transformers backend, mostly against the real embedded SmolLM2-135M on CPU.

Real-model tests are marked ``model``; they share the session fixture ``embedded_llm`` and
keep ``max_new_tokens`` small so the file runs in well under a minute on one thread.
Assertions are about mechanics (padding, counting, stopping), not about answer quality:
a 135M model is not expected to be right.
"""

from __future__ import annotations

import json
import math

import pytest

from iranker.llm.base import BackendError, ChoiceScorer, Completion, LLMBackend
from iranker.llm.transformers_backend import (
    ADAPTER_ENV,
    DEFAULT_ADAPTER,
    NEUTRAL_SYSTEM,
    TransformersLLM,
    adapter_mode,
    with_system_message,
)

SYSTEM = {"role": "system", "content": "You are a concise assistant."}

PROMPTS = [
    [SYSTEM, {"role": "user", "content": "Name a fruit."}],
    [
        SYSTEM,
        {
            "role": "user",
            "content": "Here is a longer question so that this prompt needs many more tokens than "
            "the others and the batch must be padded on the left: which of these is a colour, "
            "[1] table, [2] green, [3] spoon, [4] river? Explain briefly.",
        },
    ],
    [{"role": "user", "content": "Count from one to five."}],  # no system message
    [SYSTEM, {"role": "user", "content": "What is the capital of Italy?"}],
]

# A few-shot chat in which SmolLM2 reliably answers "<answer>N</answer> comment": used to
# check that generation stops right after </answer>.
FEW_SHOT = [
    {
        "role": "system",
        "content": "Answer with the number only, wrapped as <answer>N</answer>, then a short comment.",
    },
    {"role": "user", "content": "1+1?"},
    {"role": "assistant", "content": "<answer>2</answer> Easy one, really."},
    {"role": "user", "content": "2+3?"},
    {"role": "assistant", "content": "<answer>5</answer> That was simple too."},
    {"role": "user", "content": "3+4?"},
]


# -- no model needed --------------------------------------------------------------------------


def test_with_system_message_inserts_only_when_missing():
    user = {"role": "user", "content": "hi"}
    assert with_system_message([user]) == [{"role": "system", "content": NEUTRAL_SYSTEM}, user]
    assert with_system_message([SYSTEM, user]) == [SYSTEM, user]
    msgs = [user]
    with_system_message(msgs)
    assert msgs == [user]  # the caller's list is not mutated


def test_offline_hub_id_is_a_backend_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError) as info:
        TransformersLLM("iranker-test-nobody/definitely-not-a-model-3141", threads=1)
    msg = str(info.value)
    assert "could not load the model" in msg
    assert "iranker-test-nobody/definitely-not-a-model-3141" in msg
    assert "HF_HUB_OFFLINE" in msg


def test_adapter_mode_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(ADAPTER_ENV, raising=False)
    assert adapter_mode(None) == DEFAULT_ADAPTER
    assert adapter_mode(None, merge_adapter=True) == "merged"  # the older spelling
    monkeypatch.setenv(ADAPTER_ENV, "base-dtype")
    assert adapter_mode(None) == "base-dtype"
    assert adapter_mode("fp32") == "fp32"
    for bad in ("bf16", "unmerged"):
        with pytest.raises(ValueError, match="adapter mode"):
            adapter_mode(bad)


def test_missing_local_path_fails_before_loading_anything():
    with pytest.raises(BackendError, match="does not exist"):
        TransformersLLM("./no-such-model-dir/", threads=1)


# -- the real embedded model ------------------------------------------------------------------


@pytest.mark.model
def test_implements_the_protocols(embedded_llm):
    assert isinstance(embedded_llm, LLMBackend)
    assert isinstance(embedded_llm, ChoiceScorer)
    assert embedded_llm.name == "smollm2-135m"
    assert not embedded_llm.model.training


@pytest.mark.model
def test_template_without_system_has_no_default_smollm_persona(embedded_llm):
    text = embedded_llm.render([{"role": "user", "content": "Hello"}])
    assert "SmolLM" not in text and "Hugging Face" not in text
    assert NEUTRAL_SYSTEM in text
    assert text.endswith("<|im_start|>assistant\n")  # generation prompt added
    # our own system message is kept verbatim and nothing else is injected
    own = embedded_llm.render([SYSTEM, {"role": "user", "content": "Hello"}])
    assert SYSTEM["content"] in own and NEUTRAL_SYSTEM not in own and "SmolLM" not in own


@pytest.mark.model
def test_prefilled_reply_is_continued_not_reopened(embedded_llm):
    """A final assistant message is continued (``continue_final_message``): the prompt ends
    with its text, with no end-of-turn and no new assistant header after it."""
    msgs = [SYSTEM, {"role": "user", "content": "Hello"}]
    plain = embedded_llm.render(msgs)
    text = embedded_llm.render(msgs + [{"role": "assistant", "content": "<think>"}])
    assert text == plain + "<think>"
    c = embedded_llm.generate([msgs + [{"role": "assistant", "content": "<think>"}]], max_new_tokens=4)[0]
    assert c.completion_tokens == 4 and c.prompt_tokens == len(
        embedded_llm.tokenizer(text, add_special_tokens=False)["input_ids"]
    )


@pytest.mark.model
def test_batched_greedy_equals_one_by_one(embedded_llm):
    """Left padding is right iff padding a prompt in a batch does not change its output."""
    llm = embedded_llm
    old = llm.batch_size
    try:
        llm.batch_size = len(PROMPTS)
        batched = llm.generate(PROMPTS, max_new_tokens=12)
        llm.batch_size = 1
        single = [llm.generate([p], max_new_tokens=12)[0] for p in PROMPTS]
    finally:
        llm.batch_size = old
    assert len({c.prompt_tokens for c in batched}) > 1  # lengths differ, so padding happened
    assert [c.text for c in batched] == [c.text for c in single]
    assert [(c.prompt_tokens, c.completion_tokens) for c in batched] == [
        (c.prompt_tokens, c.completion_tokens) for c in single
    ]


@pytest.mark.model
def test_token_counts_match_the_tokenizer(embedded_llm):
    llm = embedded_llm
    out = llm.generate(PROMPTS[:2], max_new_tokens=8)
    assert all(isinstance(c, Completion) for c in out) and len(out) == 2
    for prompt, c in zip(PROMPTS[:2], out):
        expected = len(llm.tokenizer(llm.render(prompt), add_special_tokens=False)["input_ids"])
        assert c.prompt_tokens == expected > 0
        assert 1 <= c.completion_tokens <= 8
        assert c.text and "<|im_" not in c.text and "<|im_end|>" not in c.text
        # the prompt is not echoed back
        assert not c.text.startswith("<|im_start|>") and prompt[-1]["content"] not in c.text


@pytest.mark.model
def test_max_new_tokens_is_honoured(embedded_llm):
    # a long explanation: the model keeps going, so the budget is what stops it
    prompt = [SYSTEM, {"role": "user", "content": "Write a long essay about the history of Rome."}]
    c = embedded_llm.generate([prompt], max_new_tokens=5)[0]
    assert c.completion_tokens == 5
    assert len(embedded_llm.tokenizer(c.text, add_special_tokens=False)["input_ids"]) <= 6


@pytest.mark.model
def test_stops_right_after_answer_tag(embedded_llm):
    c = embedded_llm.generate([FEW_SHOT], max_new_tokens=16)[0]
    assert c.text.endswith("</answer>")
    assert c.text.count("</answer>") == 1
    assert c.completion_tokens < 16  # stopped early, not by the budget
    assert (
        c.completion_tokens >= len(embedded_llm.tokenizer(c.text, add_special_tokens=False)["input_ids"]) - 1
    )


@pytest.mark.model
def test_sampling_is_seeded(embedded_llm):
    p = [PROMPTS[0]]
    a = embedded_llm.generate(p, max_new_tokens=8, temperature=1.0, seed=7)
    b = embedded_llm.generate(p, max_new_tokens=8, temperature=1.0, seed=7)
    assert [c.text for c in a] == [c.text for c in b]


@pytest.mark.model
def test_choice_logprobs_shape_and_plausibility(embedded_llm):
    prompts = [
        [SYSTEM, {"role": "user", "content": "What is the capital of France? Reply with one word."}],
        [SYSTEM, {"role": "user", "content": "Pick a number."}],
    ]
    choices = [["Paris", "xylophone quantum sandwich"], ["1", "2", "3"]]
    scores = embedded_llm.choice_logprobs(prompts, choices)
    assert [len(s) for s in scores] == [2, 3]
    assert all(math.isfinite(x) and x < 0 for row in scores for x in row)
    assert scores[0][0] > scores[0][1]

    # batching (left padding + explicit positions) does not change the scores
    llm = embedded_llm
    old = llm.batch_size
    try:
        llm.batch_size = 1
        single = llm.choice_logprobs(prompts, choices)
    finally:
        llm.batch_size = old
    for row, ref in zip(scores, single):
        assert row == pytest.approx(ref, abs=1e-3)


@pytest.mark.model
def test_choice_logprob_matches_greedy_first_token(embedded_llm):
    """The greedy continuation's first token must be the best-scored single-token choice."""
    llm = embedded_llm
    prompt = [SYSTEM, {"role": "user", "content": "What is the capital of Italy?"}]
    out = llm.generate([prompt], max_new_tokens=1)[0]
    first = out.text
    others = [w for w in ["Rome", "The", "Italy", "I", "Milan"] if w != first][:3]
    scores = llm.choice_logprobs([prompt], [[first, *others]])[0]
    single_token = [
        len(llm.tokenizer(c, add_special_tokens=False)["input_ids"]) == 1 for c in [first, *others]
    ]
    assert single_token[0]
    assert all(scores[0] >= s for s, one in zip(scores[1:], single_token[1:]) if one)


@pytest.mark.model
def test_peft_adapter_folder_loads_on_its_base(embedded_llm, tmp_path):
    """A fresh LoRA (B = 0) changes nothing: same greedy text as the base model."""
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    from iranker.llm.models import dense_model_dir, embedded_gguf_path

    # a private copy of the base: get_peft_model edits modules in place, and the session
    # model is shared with other tests
    base = AutoModelForCausalLM.from_pretrained(dense_model_dir(embedded_gguf_path()))
    cfg = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    adapter = tmp_path / "lora"
    peft.get_peft_model(base, cfg).save_pretrained(adapter)
    del base
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "smollm2-135m"
    (adapter / "adapter_config.json").write_text(json.dumps(config))

    llm = TransformersLLM(str(adapter), threads=1)
    assert llm.resolved.kind == "adapter" and llm.name == "smollm2-135m+lora"
    assert llm.adapter == "fp32" and llm.fused_lora_layers == 2 * llm.model.config.num_hidden_layers  # q, v
    want = embedded_llm.generate([PROMPTS[0]], max_new_tokens=6)
    got = llm.generate([PROMPTS[0]], max_new_tokens=6)
    assert got[0].text == want[0].text


@pytest.mark.model
def test_adapter_modes_apply_the_same_adapter(tmp_path):
    """A LoRA with random A and B (it moves scores). The default fused fp32 layers give PEFT's
    numbers exactly; merged at load it scores like the unmerged fp32 adapter (fp32 base: the
    same sums, rounded differently); kept in the base's dtype (bf16) its weights are bf16 and
    it still applies the adapter."""
    peft = pytest.importorskip("peft")
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from iranker.llm.models import dense_model_dir, embedded_gguf_path

    base = AutoModelForCausalLM.from_pretrained(dense_model_dir(embedded_gguf_path()))
    cfg = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "up_proj"],
        task_type="CAUSAL_LM",
        init_lora_weights=False,
    )
    adapter = tmp_path / "lora"
    torch.manual_seed(0)
    peft.get_peft_model(base, cfg).save_pretrained(adapter)
    del base
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "smollm2-135m"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    prompt = [SYSTEM, {"role": "user", "content": "Which is a fruit: [1] chair, [2] apple, [3] cloud?"}]
    choices = [["<answer>[1]", "<answer>[2]", "<answer>[3]"]]

    def scores(**kw):
        llm = TransformersLLM(str(adapter), threads=1, **kw)
        return llm, llm.choice_logprobs([prompt], choices)[0]

    _, plain = scores(dtype="float32", adapter="fp32")
    _, through_peft = scores(dtype="float32", adapter="peft")
    assert plain == through_peft  # the fused layers compute PEFT's sum, bit for bit
    _, bf16_fused = scores(dtype="bfloat16", adapter="fp32")
    _, bf16_peft = scores(dtype="bfloat16", adapter="peft")
    assert bf16_fused == bf16_peft  # also with the bf16 base (fp32 casts, s folded into B)
    merged_llm, merged = scores(dtype="float32", adapter="merged")
    assert not type(merged_llm.model).__name__.startswith("Peft")
    assert merged == pytest.approx(plain, abs=1e-3)
    bf16_fp32_lora = bf16_fused
    low_llm, low = scores(dtype="bfloat16", adapter="base-dtype")
    lora = [p for n, p in low_llm.model.named_parameters() if "lora_" in n]
    assert lora and all(p.dtype == torch.bfloat16 for p in lora)
    no_adapter = TransformersLLM("smollm2-135m", threads=1, dtype="bfloat16").choice_logprobs(
        [prompt], choices
    )[0]
    moved = max(abs(a - b) for a, b in zip(bf16_fp32_lora, no_adapter))
    assert moved > 0.2  # the random adapter matters, so agreeing below says something
    assert max(abs(a - b) for a, b in zip(low, bf16_fp32_lora)) < moved / 4


def test_a_tokenizer_without_a_chat_template_gets_plain_turns_that_keep_the_prompt_layout(tmp_path):
    """A base (not instruction-tuned) model ships no chat template; transformers would refuse
    to render any prompt. It gets plain User/Assistant turns, a prefilled reply is continued,
    and the prompt's layout (one contiguous span per candidate) holds for KV eviction."""
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    from iranker.llm.models import EmbeddedModelMissingError, dense_model_dir, embedded_gguf_path
    from iranker.llm.transformers_backend import PLAIN_CHAT_TEMPLATE, ensure_chat_template, render_prompt

    try:
        folder = dense_model_dir(embedded_gguf_path())
    except EmbeddedModelMissingError as exc:
        pytest.skip(str(exc))
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert ensure_chat_template(tok) is False and tok.chat_template != PLAIN_CHAT_TEMPLATE  # kept as shipped
    tok.chat_template = None
    assert ensure_chat_template(tok) is True
    user = {"role": "user", "content": "Which is worst?\n[1] a\n[2] b"}
    assert render_prompt(tok, [SYSTEM, user]) == (
        "You are a concise assistant.\n\nUser: Which is worst?\n[1] a\n[2] b\n\nAssistant:"
    )
    prefilled = render_prompt(tok, [user, {"role": "assistant", "content": "<think>"}])
    assert prefilled.endswith("[2] b\n\nAssistant: <think>") and prefilled.startswith(NEUTRAL_SYSTEM)
