#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root, beside ../shared/data).
# Step data as in results/2026-12-01-choice-ranker/commands.sh (runs/steps-joint, runs/steps-test).
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
R=results/2026-12-02-choice-ranker

# 1. continue the listwise run of 2026-12-01 (runs/proto/listwise, checkpoint-120) on one thread:
#    training/train_config.yaml = that run's config with max_steps 3000 and save_total_limit 40
iranker train --config $R/training/train_config.yaml --resume        # stopped at step 325 (session end)

# 2. pick a checkpoint by held-out pi(best) on 120 step rows (two processes side by side)
python benchmarks/score_checkpoints.py runs/steps-test iranker-135m runs/proto/listwise/checkpoint-320 --rows 120 --threads 1
python benchmarks/score_checkpoints.py runs/steps-test runs/proto/listwise/checkpoint-240 runs/proto/listwise/checkpoint-300 --rows 120 --threads 1
python benchmarks/train_curves.py $R/training/listwise.train_log.jsonl --names listwise --out $R/training/curves

# 3. package the kept checkpoint (fp16 adapter + iranker.json)
python -m iranker.train.package runs/proto/listwise/checkpoint-320 $R/candidate

# 4. held-out evaluation on the seeded examples of results/2026-12-01-choice-ranker (two processes;
#    both resume where they stopped)
iranker eval --tasks router-performance,router-balance,router-cost --methods iterative --model $R/candidate \
    --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out $R/trained-routing
iranker eval --tasks passage-5,passage-7,passage-9,trec-dl19 --methods iterative \
    --model $R/candidate --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out $R/trained-other
iranker eval --tasks rec-movie,rec-music,rec-game --methods iterative \
    --model $R/candidate --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out $R/trained-rec

# 5. paired comparisons against the base, the shipped iranker-135m and the baselines (same examples)
B=results/2026-12-01-choice-ranker
for F in trained-routing trained-other trained-rec; do
  iranker compare $B/base:iterative-choice $R/$F:iterative --names base,candidate --out $R/$F/compare-base
  iranker compare $B/trained:iterative $R/$F:iterative --names iranker-135m,candidate --out $R/$F/compare-shipped
  for m in random bm25 dense knn; do
    iranker compare $B/base:$m $R/$F:iterative --names $m,candidate --out $R/$F/compare-$m
  done
done
iranker compare $B/base:cheapest-first $R/trained-routing:iterative --names cheapest-first,candidate --out $R/trained-routing/compare-cheapest-first
