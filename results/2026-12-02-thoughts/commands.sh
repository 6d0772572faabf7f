#!/usr/bin/env bash
# The exact commands behind this folder (run from this folder, with the task data in ../shared/data beside the project root).
# Every command ran niced on one thread, beside a training run on the same 2-core CPU.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 IRANKER_THREADS=1
N="nice -n 15"

# 1. 16 seeded train and 16 seeded test examples of router-performance, as `iranker rank` JSONL
$N python export_examples.py router-performance train 16 train-router-performance.jsonl ../../../shared/data
$N python export_examples.py router-performance test 16 test-router-performance.jsonl ../../../shared/data

# 2. the generating model: the GRPO-trained SmolLM2-135M adapter ranks the TRAIN examples, writing thoughts
$N iranker eval --input train-router-performance.jsonl --methods iterative --no-routing-baselines \
    --model ../2026-11-27-rl-smollm2/adapter --decode generate --response-prefix '<think>' \
    --max-new-tokens 64 --reask 0 --threads 1 --batch-size 8 --out thought-source
#    ^ stopped (killed) after its first chunk of 8 examples (~117 s per example on the loaded CPU) to leave the
#      CPU to step 4; thought-source/predictions.jsonl holds those 8, so no metrics.json. Rerunning it resumes.

# 3. keep the thoughts of its valid non-best removals, embedded with the embedded all-MiniLM-L6-v2
$N iranker thoughts collect --from thought-source --out store

# 4. the receiving model, iranker-135m in its recorded mode (label scoring + KV eviction), on the TEST
#    examples without and with the 3 nearest thoughts in the prompt header
$N iranker eval --input test-router-performance.jsonl --methods iterative --no-routing-baselines \
    --threads 1 --batch-size 8 --quiet --out without-thoughts        # interrupted once, resumed by rerunning it
$N iranker eval --input test-router-performance.jsonl --methods iterative --no-routing-baselines \
    --threads 1 --batch-size 8 --quiet --thoughts store --thoughts-k 3 --out with-thoughts

# 5. paired per example
$N iranker compare without-thoughts with-thoughts --names without,with --out compare

# reference rows on the same 16 test examples (seeded random, BM25, and the routing baseline cheapest-first)
$N iranker eval --input test-router-performance.jsonl --methods random,bm25 --quiet --out baselines
