#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root; DATA = the benchmark sources,
# here /work/shared/data). llama-cpp-python 0.3.36 built from its sdist (make test installs it).
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 IRANKER_THREADS=1
R=results/2026-12-03-openai-choice
DATA=${DATA:-/work/shared/data}

# 1. the local side first (it resumes inside step 2 when already done): iranker-135m, choice mode,
#    exact re-prompting (--reuse none, the served path's semantics)
iranker eval --tasks router-performance,router-balance,router-cost --methods iterative --data-dir $DATA \
    --seed 0 --limit 2 --batch-size 1 --out $R/local --backend transformers --model iranker-135m \
    --reuse none --threads 1

# 2. convert the adapter (python -m iranker.train.package --gguf), start llama_cpp.server with it on the
#    embedded GGUF (1 thread), `iranker eval --backend openai --tokenizer iranker-135m` on the same
#    examples, the prompt-token counts from the server's log, an interleaved run, `iranker compare`
python benchmarks/served_choice.py --data-dir $DATA --out $R --log $R/server.log.txt

# 3. the README example through the served base and the served adapter, and the named error
#    against a server without logprobs: the tests
python -m pytest -q tests/llm/test_llama_cpp_served.py tests/llm/test_openai_backend.py tests/llm/test_served_choice.py \
    tests/train/test_gguf_lora.py
