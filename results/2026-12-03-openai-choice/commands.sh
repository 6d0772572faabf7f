#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root). llama-cpp-python 0.3.36 built from
# its sdist (make test installs it the same way: CMAKE_ARGS=-DLLAVA_BUILD=OFF).
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 IRANKER_THREADS=1
export IRANKER_LLAMA_CPP_SOURCE=.venv/llama-cpp-src/llama_cpp_python-0.3.36.tar.gz   # the kept sdist
R=results/2026-12-03-openai-choice

# 1. what is in readme-example/: convert iranker-135m (python -m iranker.train.package --gguf), start
#    llama_cpp.server with it on the embedded GGUF (1 thread), `iranker eval --backend openai --tokenizer
#    iranker-135m` of the README example, the server's prompt-token counters, the local eval in the same
#    mode (--reuse none), `iranker compare`
python benchmarks/served_choice.py --input examples/rank_input.jsonl --limit 10 --out $R/readme-example \
    --log /tmp/served23-readme.log

# 2. routing/: the same on the seeded routing tasks, 1 test example per task (the local eval was run first
#    as its own process, with the arguments the script passes, and resumed inside it)
DATA=${DATA:-/work/shared/data}
iranker eval --tasks router-performance,router-balance,router-cost --data-dir $DATA --methods iterative \
    --seed 0 --limit 1 --batch-size 1 --out $R/routing/local --backend transformers --model iranker-135m \
    --reuse none --threads 1
python benchmarks/served_choice.py --data-dir $DATA --limit 1 --out $R/routing --log /tmp/served23-routing.log

# 3. the tests: served base and served adapter vs local, prompt-cache reuse, `iranker rank` through the
#    served adapter, capability probe, the named error against a server without logprobs
python -m pytest -q tests/llm/test_llama_cpp_served.py tests/llm/test_openai_backend.py \
    tests/llm/test_served_choice.py tests/train/test_gguf_lora.py
