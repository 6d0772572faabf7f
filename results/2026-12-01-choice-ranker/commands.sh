#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root, beside ../shared/data).
set -euo pipefail
T=rec-movie,rec-music,rec-game,router-performance,router-balance,router-cost
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# 1. step data: joint, balanced (2,000 rows per trainable task); held-out rows from the test split
iranker data steps --tasks $T --split train --data-dir ../shared/data --out runs/steps-joint --seed 0 --max-per-task 2000
iranker data steps --tasks $T --split test  --data-dir ../shared/data --out runs/steps-test  --seed 0 --max-per-task 40

# 2. objective comparison (one thread each, side by side): runs/proto/base.yaml = examples/train_choice_cpu.yaml
#    with eval_steps 20 for the first 40 steps, then resumed with --eval-steps 60 --max-steps 600
for obj in listwise exclusion; do
  iranker train --config runs/proto/base.yaml --objective $obj --output-dir runs/proto/$obj &
done; wait
iranker train --config runs/proto/base.yaml --objective listwise --output-dir runs/proto/listwise --resume \
    --eval-steps 60 --max-steps 600 --save-steps 20 --save-total-limit 3      # stopped at step 125 (time)
# 3. the kept run: listwise continued from checkpoint-120 at a 3x learning rate, new data order
iranker train --config runs/proto/base.yaml --objective listwise --model runs/proto/listwise/checkpoint-120 \
    --output-dir runs/choice-main --learning-rate 6e-4 --eval-steps 40 --max-steps 400 --save-steps 20 \
    --save-total-limit 3 --seed 1                                              # stopped for time (see README)
# 4. ship it
python -m iranker.train.package runs/choice-main/checkpoint-N src/iranker/resources/models/iranker-135m

# 5. held-out evaluation on the same seeded examples (100 per rec/routing task, every passage/trec-dl19 one)
iranker eval --tasks all --methods random,bm25,dense,knn,iterative-choice --model smollm2-135m --reuse kv \
    --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out results/2026-12-01-choice-ranker/base
iranker eval --tasks all --methods iterative --model iranker-135m \
    --data-dir ../shared/data --seed 0 --limit 100 --threads 2 --out results/2026-12-01-choice-ranker/trained
# 6. paired comparisons: the first run is the reference, so every delta is "trained - other"
R=results/2026-12-01-choice-ranker
iranker compare $R/base:iterative-choice $R/trained:iterative --names base,trained --out $R/compare-base
for m in random bm25 dense knn cheapest-first; do
  iranker compare $R/base:$m $R/trained:iterative --names $m,trained --out $R/compare-$m
done
